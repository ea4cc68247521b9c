"""Interop streams: publish with branches, subscribe, and survive reconnects (docs/ARCHITECTURE.md,
"Semantics kept from io.Connect").

Publisher: :meth:`Streams.create` registers a streaming method. Each subscription request goes
to ``on_subscription_request(request)`` (on a handler thread, or the loop for ``async def``),
which calls ``request.accept()``, ``request.accept_on_branch(key)`` or
``request.reject(reason)``; a handler that returns without deciding accepts on the default
branch, one that raises rejects with the exception as the reason (io.Connect would leave the
subscriber waiting until it times out). ``stream.push(data, branch=...)`` multicasts;
``subscription.push(data)`` sends to one subscriber only (``private=True`` on arrival).
``on_added`` runs on the event thread once the hub accepted the subscription, so a push made
meanwhile from another thread may reach the new subscriber before what ``on_added`` sends
(io.Connect's single-threaded JS cannot interleave them; a Python publisher can).

Subscriber: :meth:`Streams.subscribe` returns a :class:`Subscription` once at least one
publisher accepted. Data that arrives before an ``on_data`` handler is attached is queued and
handed to the first one. ``on_closed`` fires once, when the last publisher is gone;
``on_failed`` fires when subscribing fails (also raised) and when a subscription cannot be
restored after a reconnect. After a reconnect, subscriptions are re-made with the same
arguments (publishers get a fresh ``on_subscription_request``) and ``on_connected(server,
True)`` fires; data published during the outage is lost, as in io.Connect.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import threading
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple

from ..protocol.errors import Reason
from .codec import plain_json, unwrap_value, wrap_value
from .connection import RequestTimeout
from .dispatch import OutputTarget, capture_output_target, is_async_callable
from .errors import (
    ArgumentError,
    ClientClosedError,
    ConnectionLostError,
    HubUnreachableError,
    RegistrationError,
    RemoteError,
    SubscriptionError,
)
from .instance import Instance, InstanceFilter
from .methods import LocalMethod, Methods, Target, check_timeout, definition, parse_target
from .registry import MethodInfo
from .twins import blocking, on_io_loop

if TYPE_CHECKING:
    from .session import ClientSession

__all__ = [
    "ClosedInfo",
    "Stream",
    "StreamBranch",
    "StreamData",
    "StreamSubscription",
    "Streams",
    "Subscription",
    "SubscriptionRequest",
]

_MAX_QUEUED = 10_000


# ---------------------------------------------------------------------- publisher side


class SubscriptionRequest:
    """A subscriber asks to subscribe: decide with one of :meth:`accept`,
    :meth:`accept_on_branch` or :meth:`reject` (the first decision counts)."""

    def __init__(
        self, stream: Stream, subscription_id: str, instance: Instance, arguments: dict[str, Any]
    ) -> None:
        self.stream = stream
        self.subscription_id = subscription_id
        self.instance = instance
        self.arguments = arguments
        self._decision: tuple[str, str] | None = None
        self._lock = threading.Lock()

    def accept(self) -> None:
        """Accept on the default branch (``""``)."""
        self.accept_on_branch("")

    def accept_on_branch(self, branch: str) -> None:
        """Accept on ``branch``: ``stream.push(data, branch=...)`` reaches this subscriber."""
        if not isinstance(branch, str):
            raise ArgumentError(f"A branch key must be a string, not {type(branch).__name__}")
        self._decide("accept", branch)

    def reject(self, reason: str = "") -> None:
        """Refuse the subscription; the subscriber's ``subscribe`` fails with ``reason``."""
        self._decide("reject", str(reason))

    @property
    def decided(self) -> bool:
        return self._decision is not None

    def _decide(self, kind: str, value: str) -> None:
        with self._lock:
            if self._decision is not None:
                return
            self._decision = (kind, value)
        self.stream._streams.session.io.call_soon(self.stream._apply, self)

    def __repr__(self) -> str:
        return f"<SubscriptionRequest {self.stream.name!r} from {self.instance!r}>"


class StreamSubscription:
    """One accepted subscriber of a stream (publisher side)."""

    def __init__(
        self,
        stream: Stream,
        subscription_id: str,
        instance: Instance,
        arguments: dict[str, Any],
        branch: str,
    ) -> None:
        self.stream = stream
        self.subscription_id = subscription_id
        self.instance = instance
        self.arguments = arguments
        self.branch = branch
        self.closed = False

    def push(self, data: Any) -> None:
        """Send ``data`` to this subscriber only (fire and forget)."""
        self.stream._check_open()
        if self.closed:
            return
        self.stream._streams.session.conn.send_threadsafe(
            {
                "domain": "agm",
                "type": "post",
                "subscription_id": self.subscription_id,
                "data": wrap_value(data),
            }
        )

    async def apush(self, data: Any) -> None:
        """Async twin of :meth:`push` (it never blocks)."""
        self.push(data)

    def close(self) -> None:
        """Drop this subscription (the subscriber's ``on_closed`` fires)."""
        self.stream._streams.session.io.call_soon(
            self.stream._drop, self, "Server dropping a single subscription"
        )

    async def aclose(self) -> None:
        """Async twin of :meth:`close`."""
        self.close()

    def __repr__(self) -> str:
        return f"<StreamSubscription {self.stream.name!r} branch={self.branch!r} {self.instance!r}>"


@dataclass(frozen=True)
class StreamBranch:
    """A branch of a stream (its subscribers are those accepted on ``key``)."""

    stream: Stream
    key: str

    def subscriptions(self) -> list[StreamSubscription]:
        return [s for s in self.stream.subscriptions() if s.branch == self.key]

    def push(self, data: Any) -> None:
        self.stream.push(data, branch=self.key)

    def close(self) -> None:
        for sub in self.subscriptions():
            sub.close()


class Stream:
    """A stream this client publishes (``io.streams.create``)."""

    def __init__(
        self,
        streams: Streams,
        local: LocalMethod,
        on_subscription_request: Callable[[SubscriptionRequest], Any] | None,
        on_added: Callable[[StreamSubscription], Any] | None,
        on_removed: Callable[[StreamSubscription], Any] | None,
        target: OutputTarget | None,
    ) -> None:
        self._streams = streams
        self._local = local
        self.on_subscription_request = on_subscription_request
        self.on_added = on_added
        self.on_removed = on_removed
        self._target = target
        #: branch key -> stream id (owned by the loop; copied atomically by push)
        self._branch_ids: dict[str, str] = {}
        #: every branch's stream id, replaced (never changed) by the loop: what a push to all
        #: branches reads from any thread, with no copy
        self._all_ids: tuple[str, ...] = ()
        self._subs: dict[str, StreamSubscription] = {}
        self.closed = False

    @property
    def name(self) -> str:
        return self._local.name

    @property
    def definition(self) -> dict[str, Any]:
        return dict(self._local.wire)

    def _check_open(self) -> None:
        if self.closed:
            raise ArgumentError(f"The stream {self.name!r} is closed")
        self._streams._session.check_open()

    # ------------------------------------------------------------------ push

    def push(self, data: Any, branch: str | list[str] | None = None) -> None:
        """Send ``data`` to every subscriber, or only to those on ``branch`` (a key or a list
        of keys). Fire and forget: returns at once; dropped while disconnected."""
        if self.closed:
            raise ArgumentError(f"The stream {self.name!r} is closed")
        session = self._streams.session
        session.check_open()
        if branch is None:
            stream_ids: Sequence[str] = self._all_ids
        elif isinstance(branch, str):
            stream_id = self._branch_ids.get(branch)
            stream_ids = () if stream_id is None else (stream_id,)
        elif isinstance(branch, (list, tuple)) and all(isinstance(b, str) for b in branch):
            ids = dict(self._branch_ids)  # an atomic copy: the loop owns the dict
            stream_ids = [ids[k] for k in branch if k in ids]
        else:
            raise ArgumentError(f"branch must be a string or a list of strings, not {branch!r}")
        if not stream_ids:
            return  # nobody listens: as in io.Connect, pushing to no branch does nothing
        conn = session.conn
        payload: Any = wrap_value(data)
        if len(stream_ids) == 1 and conn.extensions.get("runs"):
            encoded = plain_json(payload)  # plain JSON: joins the run of this stream's items
            if encoded is not None:
                conn.send_item_threadsafe(stream_ids[0], encoded)
                return
        elif len(stream_ids) > 1:
            payload = conn.codec.prepare(payload)  # encoded once for every branch
        for stream_id in stream_ids:
            conn.send_threadsafe(
                {"domain": "agm", "type": "publish", "stream_id": stream_id, "data": payload}
            )

    async def apush(self, data: Any, branch: str | list[str] | None = None) -> None:
        """Async twin of :meth:`push` (it never blocks)."""
        self.push(data, branch)

    # ------------------------------------------------------------------ views

    def branches(self) -> list[str]:
        """Keys of the branches that have subscribers now."""
        return list(dict(self._branch_ids))

    def branch(self, key: str) -> StreamBranch | None:
        return StreamBranch(self, key) if key in dict(self._branch_ids) else None

    def subscriptions(self) -> list[StreamSubscription]:
        return list(dict(self._subs).values())

    # ------------------------------------------------------------------ close

    @on_io_loop
    async def aclose(self) -> None:
        """Drop every subscription and unregister the stream."""
        if self.closed:
            return
        self.closed = True
        for sub in list(self._subs.values()):
            self._drop(sub, "Server dropping all subscriptions on the stream")
        methods = self._streams.methods
        if self._local.id in methods.own:
            await methods.unregister_ids([self._local.id])

    close = blocking(aclose)

    # ------------------------------------------------------------------ on the loop

    @property
    def _session(self) -> ClientSession:
        return self._streams.session

    def _request(self, msg: dict[str, Any]) -> None:
        session = self._streams.session
        sub_id = str(msg.get("subscription_id"))
        caller_id = str(msg.get("caller_id"))
        server = session.registry.servers.get(caller_id)
        instance = server.instance if server is not None else Instance(peer_id=caller_id)
        arguments = msg.get("arguments_kv") if isinstance(msg.get("arguments_kv"), dict) else {}
        assert isinstance(arguments, dict)
        request = SubscriptionRequest(self, sub_id, instance, arguments)
        handler = self.on_subscription_request
        if handler is None or self.closed:
            if self.closed:
                request.reject("The stream is closed")
            else:
                request.accept()
            return
        future = session.dispatcher.run_handler(handler, (request,), self._target)

        def settle(f: asyncio.Future[Any]) -> None:
            if f.cancelled():
                request.reject("The publisher was closed")
            elif f.exception() is not None:
                error = f.exception()
                request.reject(f"{type(error).__name__}: {error}")
            else:
                request.accept()  # no-op if the handler decided

        future.add_done_callback(settle)

    def _apply(self, request: SubscriptionRequest) -> None:
        conn = self._session.conn
        decision = request._decision
        assert decision is not None
        kind, value = decision
        if kind == "reject":
            conn.send(
                {
                    "domain": "agm",
                    "type": "error",
                    "request_id": request.subscription_id,
                    "reason_uri": Reason.SUBSCRIPTION_REJECTED,
                    "reason": f"Subscription rejected by user. {value}".rstrip(),
                }
            )
            return
        stream_id = self._branch_ids.get(value)
        if stream_id is None:
            stream_id = self._streams._new_stream_id()
        if not conn.send(
            {
                "domain": "agm",
                "type": "accepted",
                "subscription_id": request.subscription_id,
                "stream_id": stream_id,
            }
        ):
            return
        self._branch_ids[value] = stream_id
        self._all_ids = tuple(self._branch_ids.values())
        sub = StreamSubscription(
            self, request.subscription_id, request.instance, request.arguments, value
        )
        self._subs[sub.subscription_id] = sub
        self._streams._publishing[sub.subscription_id] = sub
        if self.on_added is not None:
            self._session.dispatcher.post_event(self.on_added, (sub,), self._target)

    def _drop(self, sub: StreamSubscription, reason: str) -> None:
        if sub.closed:
            return
        self._session.conn.send(
            {
                "domain": "agm",
                "type": "drop-subscription",
                "subscription_id": sub.subscription_id,
                "reason": reason,
            }
        )
        self._removed(sub)

    def _removed(self, sub: StreamSubscription) -> None:
        if sub.closed:
            return
        sub.closed = True
        self._subs.pop(sub.subscription_id, None)
        self._streams._publishing.pop(sub.subscription_id, None)
        if not any(s.branch == sub.branch for s in self._subs.values()):
            self._branch_ids.pop(sub.branch, None)
            self._all_ids = tuple(self._branch_ids.values())
        if self.on_removed is not None:
            self._session.dispatcher.post_event(self.on_removed, (sub,), self._target)

    def __repr__(self) -> str:
        return f"<Stream {self.name!r} {len(self._subs)} subscription(s)>"


# ---------------------------------------------------------------------- subscriber side


class StreamData(NamedTuple):
    """One item received on a subscription (``private``: unicast to this subscriber).

    Immutable; a named tuple because a batch frame brings hundreds of them at once, and a
    tuple is the cheapest immutable record to build (see :func:`_stream_items`).
    """

    data: Any
    server: Instance
    arguments: dict[str, Any]
    private: bool = False

    def __repr__(self) -> str:
        return f"StreamData({self.data!r}, server={self.server.application!r})"


def _stream_items(
    messages: list[dict[str, Any]], server: Instance, arguments: dict[str, Any]
) -> list[StreamData]:
    """The items of a run of GW3 ``event`` messages of one subscription, in order."""
    new = tuple.__new__  # what StreamData(...) does, without its per-call Python frame
    return [
        new(StreamData, (unwrap_value(m.get("data")), server, arguments, m.get("oob") is True))
        for m in messages
    ]


@dataclass(frozen=True)
class ClosedInfo:
    """Why a subscription closed: ``message`` is ``"ServerInitiated"`` or
    ``"ClientInitiated"`` (io.Connect's values), ``reason`` the hub's text."""

    message: str
    reason: str
    server: Instance | None
    stream: str


class Subscription:
    """A subscription to a stream (subscriber side)."""

    def __init__(
        self,
        streams: Streams,
        name: str,
        arguments: dict[str, Any],
        target: str | list[InstanceFilter],
        wait_timeout: float,
        timeout: float,
        output: OutputTarget | None,
    ) -> None:
        self._streams = streams
        self.name = name
        self.arguments = arguments
        self._target = target
        self._wait_timeout = wait_timeout
        self._timeout = timeout
        self._output = output
        #: subscription id -> server, for the publishers that accepted
        self._servers: dict[str, Instance] = {}
        self._queue: deque[StreamData] = deque()
        self.dropped = 0
        self._on_data: list[Callable[[StreamData], Any]] = []
        #: (callback, is it ``async def``) for each of ``_on_data``
        self._on_data_kinds: list[tuple[Callable[[StreamData], Any], bool]] = []
        self._on_closed: list[Callable[[ClosedInfo], Any]] = []
        self._on_failed: list[Callable[[SubscriptionError], Any]] = []
        self._on_connected: list[Callable[[Instance, bool], Any]] = []
        self.closed = False

    @property
    def _session(self) -> ClientSession:
        return self._streams.session

    @property
    def servers(self) -> list[Instance]:
        """The publishers this subscription receives from now."""
        return list(dict(self._servers).values())

    # ------------------------------------------------------------------ handlers

    def on_data(self, callback: Callable[[StreamData], Any]) -> None:
        """``callback(StreamData)`` per item; the first handler also gets what was queued.

        Each handler sees every item in order, on the event lane; with several handlers,
        the items of one burst reach the first handler, then the next (not item by item)."""
        self._add(self._on_data, callback)

    def on_closed(self, callback: Callable[[ClosedInfo], Any]) -> None:
        """``callback(ClosedInfo)`` once, when the subscription ends."""
        self._add(self._on_closed, callback)

    def on_failed(self, callback: Callable[[SubscriptionError], Any]) -> None:
        """``callback(error)`` when the subscription could not be (re)established."""
        self._add(self._on_failed, callback)

    def on_connected(self, callback: Callable[[Instance, bool], Any]) -> None:
        """``callback(server, reconnect)`` when a publisher accepted (again, after a reconnect)."""
        self._add(self._on_connected, callback)

    def _add(self, handlers: list[Any], callback: Any) -> None:
        if not callable(callback):
            raise ArgumentError(f"A subscription callback must be callable, not {callback!r}")
        self._session.io.call_soon(self._add_on_loop, handlers, callback)

    def _add_on_loop(self, handlers: list[Any], callback: Any) -> None:
        handlers.append(callback)
        if handlers is self._on_data:  # looked up once here, not per event
            self._on_data_kinds.append((callback, is_async_callable(callback)))
        if handlers is self._on_data and len(handlers) == 1:
            while self._queue:
                self._post(callback, self._queue.popleft())

    def _post(self, callback: Any, *args: Any) -> None:
        self._session.dispatcher.post_event(callback, args, self._output)

    # ------------------------------------------------------------------ close

    @on_io_loop
    async def aclose(self) -> None:
        """Unsubscribe from every publisher; ``on_closed`` fires with ``"ClientInitiated"``."""
        if self.closed:
            return
        ids = list(self._servers)
        servers = list(self._servers.values())
        self._finish("ClientInitiated", "ClientInitiated", servers[0] if servers else None)
        conn = self._session.conn
        for sub_id in ids:
            if conn.connected.is_set():
                with contextlib.suppress(RemoteError, HubUnreachableError):  # gone already
                    await conn.request(
                        {
                            "domain": "agm",
                            "type": "unsubscribe",
                            "subscription_id": sub_id,
                            "reason_uri": "",
                            "reason": "ClientInitiated",
                        },
                        self._session.settings.request_timeout,
                        f"unsubscribe from {self.name!r}",
                    )

    close = blocking(aclose)

    def _finish(self, message: str, reason: str, server: Instance | None) -> None:
        if self.closed:
            return
        self.closed = True
        for sub_id in self._servers:
            self._streams._subscribed.pop(sub_id, None)
        self._servers.clear()
        self._streams._subscriptions.discard(self)
        info = ClosedInfo(message, reason, server, self.name)
        for callback in self._on_closed:
            self._post(callback, info)

    def _fail(self, error: SubscriptionError) -> None:
        for callback in self._on_failed:
            self._post(callback, error)

    # ------------------------------------------------------------------ events

    def _events(self, sub_id: str, messages: list[dict[str, Any]]) -> None:
        """A run of events from the publisher of ``sub_id``: every ``on_data`` callback gets
        the run's items in order, with one hand-off to the lane per callback."""
        server = self._servers.get(sub_id)
        if server is None:
            return
        items = _stream_items(messages, server, self.arguments)
        kinds = self._on_data_kinds
        if kinds:
            post = self._session.dispatcher.post_items
            last = len(kinds) - 1
            for i, (callback, is_async) in enumerate(kinds):
                post(callback, items if i == last else list(items), self._output, is_async)
            return
        room = _MAX_QUEUED - len(self._queue)
        if room < len(items):
            self.dropped += len(items) - max(0, room)
            items = items[: max(0, room)]
        self._queue.extend(items)

    def _cancelled(self, sub_id: str, msg: dict[str, Any]) -> None:
        server = self._servers.pop(sub_id, None)
        self._streams._subscribed.pop(sub_id, None)
        if not self._servers and not self.closed:
            self._finish("ServerInitiated", str(msg.get("reason") or ""), server)

    def __repr__(self) -> str:
        state = "closed" if self.closed else f"{len(self._servers)} publisher(s)"
        return f"<Subscription {self.name!r} {state}>"


# ---------------------------------------------------------------------- service


class Streams:
    """``io.streams``: create streams and subscribe to them."""

    def __init__(self, session: ClientSession, methods: Methods) -> None:
        self._session = session
        self._methods = methods
        self._stream_ids = itertools.count(1)
        #: subscription id -> our accepted subscriber (publisher side)
        self._publishing: dict[str, StreamSubscription] = {}
        #: subscription id -> our subscription (subscriber side)
        self._subscribed: dict[str, Subscription] = {}
        self._subscriptions: set[Subscription] = set()
        conn = session.conn
        conn.on("agm", "add-interest", self._on_add_interest)
        conn.on("agm", "remove-interest", self._on_remove_interest)
        conn.on_many("agm", "event", self._on_events)
        conn.on("agm", "event-many", self._on_event_many)
        conn.on("agm", "subscription-cancelled", self._on_cancelled)
        conn.on("agm", "subscribed", self._on_stray_subscribed)
        conn.add_lost_hook(self._lost)
        conn.add_restorer(self._restore)

    @property
    def session(self) -> ClientSession:
        """The client session this service runs in."""
        return self._session

    @property
    def methods(self) -> Methods:
        """The methods service: streams are registered as streaming methods."""
        return self._methods

    def _new_stream_id(self) -> str:
        return str(next(self._stream_ids))

    # ------------------------------------------------------------------ create

    def create(
        self,
        name: str,
        on_subscription_request: Callable[[SubscriptionRequest], Any] | None = None,
        on_added: Callable[[StreamSubscription], Any] | None = None,
        on_removed: Callable[[StreamSubscription], Any] | None = None,
        **options: Any,
    ) -> Stream:
        """Create (register) the stream ``name`` and return it.

        ``on_subscription_request(request)`` decides on each request (default: accept);
        ``on_added(subscription)`` / ``on_removed(subscription)`` follow subscribers (send a
        snapshot with ``subscription.push(...)`` in ``on_added``). ``options`` are those of a
        method definition. Creating a name again (a re-run cell) updates the handlers of the
        existing stream and returns it.
        """
        return self._create_blocking(name, on_subscription_request, on_added, on_removed, **options)

    @on_io_loop
    async def acreate(
        self,
        name: str,
        on_subscription_request: Callable[[SubscriptionRequest], Any] | None = None,
        on_added: Callable[[StreamSubscription], Any] | None = None,
        on_removed: Callable[[StreamSubscription], Any] | None = None,
        **options: Any,
    ) -> Stream:
        """Async twin of :meth:`create`."""
        for label, fn in (
            ("on_subscription_request", on_subscription_request),
            ("on_added", on_added),
            ("on_removed", on_removed),
        ):
            if fn is not None and not callable(fn):
                raise ArgumentError(f"{label} must be callable, not {fn!r}")
        wire = definition(name, streaming=True, **options)
        methods = self._methods
        target = capture_output_target()
        existing = methods.own_by_name(name)
        if existing is not None:
            if not existing.streaming:
                raise RegistrationError(f"{name!r} is already registered here as a method")
            stream: Stream = existing.stream
            if not stream.closed and {k: v for k, v in existing.wire.items() if k != "id"} == wire:
                stream.on_subscription_request = on_subscription_request
                stream.on_added = on_added
                stream.on_removed = on_removed
                stream._target = target
                return stream
            await stream.aclose()
        local = LocalMethod(methods.new_id(), name, wire, None, target, streaming=True)
        stream = Stream(self, local, on_subscription_request, on_added, on_removed, target)
        local.stream = stream
        await methods.register_local(local)
        return stream

    _create_blocking = blocking(acreate)

    def _stream_for(self, method_id: str) -> Stream | None:
        local = self._methods.own.get(method_id)
        return local.stream if local is not None and local.streaming else None

    def _on_add_interest(self, msg: dict[str, Any]) -> None:
        stream = self._stream_for(str(msg.get("method_id")))
        if stream is None:
            self._session.conn.send(
                {
                    "domain": "agm",
                    "type": "error",
                    "request_id": str(msg.get("subscription_id")),
                    "reason_uri": Reason.SUBSCRIPTION_REJECTED,
                    "reason": "No such stream is published here",
                }
            )
            return
        stream._request(msg)

    def _on_remove_interest(self, msg: dict[str, Any]) -> None:
        sub = self._publishing.get(str(msg.get("subscription_id")))
        if sub is not None:
            sub.stream._removed(sub)

    # ------------------------------------------------------------------ subscribe

    @on_io_loop
    async def asubscribe(
        self,
        name: str,
        arguments: dict[str, Any] | None = None,
        target: Target | None = "best",
        *,
        on_data: Callable[[StreamData], Any] | None = None,
        on_closed: Callable[[ClosedInfo], Any] | None = None,
        on_failed: Callable[[SubscriptionError], Any] | None = None,
        on_connected: Callable[[Instance, bool], Any] | None = None,
        wait_timeout: float | None = None,
        timeout: float | None = None,
    ) -> Subscription:
        """Subscribe to the stream ``name`` and return the :class:`Subscription`.

        ``target`` as for :meth:`Methods.invoke` (``"all"`` subscribes to every publisher);
        ``wait_timeout`` (default ``method_wait_timeout``) waits for a publisher to appear;
        ``timeout`` (default ``subscribe_timeout``, 10 s) waits for the publisher to accept.
        Raises :class:`SubscriptionError` (and calls ``on_failed``) when no publisher accepted.
        """
        session = self._session
        if not isinstance(name, str) or not name:
            raise ArgumentError(f"A stream name must be a non-empty string, not {name!r}")
        if arguments is None:
            arguments = {}
        elif not isinstance(arguments, dict):
            raise ArgumentError(
                f"Subscription arguments must be a dict, not {type(arguments).__name__}"
            )
        parsed = parse_target(target)
        wait = check_timeout(wait_timeout, session.settings.method_wait_timeout, "wait_timeout")
        accept = check_timeout(timeout, session.settings.subscribe_timeout, "timeout")
        sub = Subscription(self, name, arguments, parsed, wait, accept, capture_output_target())
        slots: list[tuple[list[Any], Any]] = [
            (sub._on_data, on_data),
            (sub._on_closed, on_closed),
            (sub._on_failed, on_failed),
            (sub._on_connected, on_connected),
        ]
        for handlers, callback in slots:
            if callback is not None:
                if not callable(callback):
                    raise ArgumentError(
                        f"A subscription callback must be callable, not {callback!r}"
                    )
                handlers.append(callback)
        if on_data is not None:
            sub._on_data_kinds.append((on_data, is_async_callable(on_data)))
        await session.conn.wait_connected(session.io.loop.time() + accept, f"subscribe({name!r})")
        try:
            await self._establish(sub, wait, reconnect=False)
        except SubscriptionError as error:
            sub._fail(error)
            raise
        self._subscriptions.add(sub)
        return sub

    subscribe = blocking(asubscribe)

    async def _establish(self, sub: Subscription, wait: float, reconnect: bool) -> None:
        methods = self._methods
        chosen = await methods.wait_for_targets(sub.name, sub._target, True, wait)
        if not chosen:
            raise SubscriptionError(
                f"Subscription to {sub.name!r} failed. No available servers matched the target "
                f"params (waited {wait:g} s)."
            )
        outcomes = await asyncio.gather(
            *(self._subscribe_one(sub, server, info) for server, info in chosen),
            return_exceptions=True,
        )
        accepted = [o for o in outcomes if isinstance(o, Instance)]
        for outcome in outcomes:
            if isinstance(outcome, (ClientClosedError, ConnectionLostError)):
                raise outcome
        if not accepted:
            errors = [o for o in outcomes if isinstance(o, BaseException)]
            rejections = [e for e in errors if isinstance(e, RemoteError)]
            if rejections:
                reasons = "; ".join(e.reason for e in rejections)
                raise SubscriptionError(
                    f'Subscription to {sub.name!r} rejected. Publisher said "{reasons}". '
                    f"Called with: {sub.arguments!r}",
                    rejections[0].reason_uri,
                )
            raise SubscriptionError(
                f"Subscription to {sub.name!r} failed. Subscription attempt timed out after "
                f"{sub._timeout * 1000:.0f} ms."
                + (
                    f" ({errors[0]})"
                    if errors and not isinstance(errors[0], RequestTimeout)
                    else ""
                )
            )
        for server in accepted:
            for callback in sub._on_connected:
                sub._post(callback, server, reconnect)
        partial = [o for o in outcomes if isinstance(o, RemoteError)]
        if partial:
            sub._fail(
                SubscriptionError(
                    f"{len(partial)} of {len(outcomes)} publishers of {sub.name!r} refused: "
                    + "; ".join(e.reason for e in partial),
                    partial[0].reason_uri,
                )
            )

    async def _subscribe_one(
        self, sub: Subscription, server: Instance, info: MethodInfo
    ) -> Instance:
        def registered(reply: dict[str, Any]) -> None:
            sub_id = str(reply.get("subscription_id"))
            sub._servers[sub_id] = server
            self._subscribed[sub_id] = sub

        await self._session.conn.request(
            {
                "domain": "agm",
                "type": "subscribe",
                "server_id": server.peer_id,
                "method_id": info.id,
                "arguments_kv": sub.arguments,
            },
            sub._timeout,
            f"subscription to {sub.name!r}",
            internal=True,
            on_reply=registered,
        )
        return server

    def _on_events(self, messages: list[dict[str, Any]]) -> None:
        """A run of ``event`` messages (see Connection.on_many), split per subscription."""
        start = 0
        current = messages[0].get("subscription_id")
        for i, msg in enumerate(messages):
            sub_id = msg.get("subscription_id")
            if sub_id != current:
                self._events_of(current, messages[start:i])
                start, current = i, sub_id
        self._events_of(current, messages[start:] if start else messages)

    def _on_event_many(self, msg: dict[str, Any]) -> None:
        """A run of one publisher's items for one subscription (``runs`` extension)."""
        items = msg.get("items")
        if isinstance(items, list) and items:
            self._events_of(msg.get("subscription_id"), [{"data": item} for item in items])

    def _events_of(self, sub_id: Any, messages: list[dict[str, Any]]) -> None:
        key = str(sub_id)
        sub = self._subscribed.get(key)
        if sub is not None:
            sub._events(key, messages)

    def _on_cancelled(self, msg: dict[str, Any]) -> None:
        sub_id = str(msg.get("subscription_id"))
        sub = self._subscribed.get(sub_id)
        if sub is not None:
            sub._cancelled(sub_id, msg)

    def _on_stray_subscribed(self, msg: dict[str, Any]) -> None:
        """An accept that came after we gave up waiting: unsubscribe, nobody wants it."""
        sub_id = msg.get("subscription_id")
        if sub_id is not None and str(sub_id) not in self._subscribed:
            self._session.conn.send(
                {
                    "domain": "agm",
                    "type": "unsubscribe",
                    "subscription_id": sub_id,
                    "reason_uri": "",
                    "reason": "Subscription attempt timed out",
                }
            )

    # ------------------------------------------------------------------ reconnect

    def _lost(self) -> None:
        for accepted in list(self._publishing.values()):
            accepted.stream._removed(accepted)
        self._subscribed.clear()
        for sub in self._subscriptions:
            sub._servers.clear()

    async def _restore(self) -> None:
        # publishers come back on their own schedule: wait for them in the background
        for sub in list(self._subscriptions):
            if not sub.closed:
                self._session.conn.spawn(self._restore_one(sub))

    async def _restore_one(self, sub: Subscription) -> None:
        wait = max(sub._wait_timeout, self._session.settings.restore_timeout)
        try:
            await self._establish(sub, wait, reconnect=True)
        except (ConnectionLostError, ClientClosedError):
            return  # the next reconnect tries again
        except SubscriptionError as error:
            sub._fail(
                SubscriptionError(
                    f"Could not restore the subscription to {sub.name!r} after reconnecting: "
                    f"{error}",
                    error.reason_uri,
                )
            )
            sub._finish("ServerInitiated", "not restored after reconnect", None)
