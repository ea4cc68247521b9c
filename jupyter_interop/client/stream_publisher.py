"""The publisher side of streams: what a stream's owner handles (docs/ARCHITECTURE.md, "Client").

:class:`Publisher` registers this client's streams (as streaming methods, through the method
server) and answers the hub's ``add-interest`` with a :class:`SubscriptionRequest` for the
stream's ``on_subscription_request``. The request's decision reaches :meth:`Stream.settle` on
the loop, the one place where a subscription is accepted (GW3 ``accepted``, a
:class:`StreamSubscription`, ``on_added``) or rejected. The semantics are those described in
``client/streams.py``.
"""

from __future__ import annotations

import asyncio
import itertools
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..protocol import messages
from ..protocol.errors import Reason
from ..protocol.wire import (
    ADD_INTEREST_TYPE,
    AGM_DOMAIN,
    REMOVE_INTEREST_TYPE,
    RUNS_EXTENSION,
)
from .codec import plain_json, wrap_value
from .dispatch import OutputTarget, capture_output_target
from .errors import ArgumentError, RegistrationError
from .instance import Instance
from .method_server import LocalMethod, MethodServer, definition
from .twins import blocking, on_io_loop

if TYPE_CHECKING:
    from .session import ClientSession

__all__ = ["Publisher", "Stream", "StreamBranch", "StreamSubscription", "SubscriptionRequest"]

#: a decision on a subscription request: ("accept", branch) or ("reject", reason)
Decision = tuple[str, str]


class SubscriptionRequest:
    """A subscriber asks to subscribe: decide with one of :meth:`accept`,
    :meth:`accept_on_branch` or :meth:`reject` (the first decision counts)."""

    def __init__(
        self,
        stream: Stream,
        subscription_id: str,
        instance: Instance,
        arguments: dict[str, Any],
        session: ClientSession,
    ) -> None:
        self.stream = stream
        self.subscription_id = subscription_id
        self.instance = instance
        self.arguments = arguments
        self._session = session
        self._decision: Decision | None = None
        self._lock = threading.Lock()

    def accept(self) -> None:
        """Accept on the default branch (``""``)."""
        self.accept_on_branch("")

    def accept_on_branch(self, branch: str) -> None:
        """Accept on ``branch``: ``stream.push(data, branch=...)`` reaches this subscriber."""
        if not isinstance(branch, str):
            raise ArgumentError(f"A branch key must be a string, not {type(branch).__name__}")
        self._decide(("accept", branch))

    def reject(self, reason: str = "") -> None:
        """Refuse the subscription; the subscriber's ``subscribe`` fails with ``reason``."""
        self._decide(("reject", str(reason)))

    @property
    def decided(self) -> bool:
        return self._decision is not None

    def _decide(self, decision: Decision) -> None:
        with self._lock:
            if self._decision is not None:
                return
            self._decision = decision
        self._session.io.call_soon(self.stream.settle, self, decision)

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
        session: ClientSession,
    ) -> None:
        self.stream = stream
        self.subscription_id = subscription_id
        self.instance = instance
        self.arguments = arguments
        self.branch = branch
        self._session = session
        self.closed = False

    def push(self, data: Any) -> None:
        """Send ``data`` to this subscriber only (fire and forget)."""
        self.stream.check_open()
        if self.closed:
            return
        self._session.conn.send_threadsafe(
            messages.stream_post(self.subscription_id, wrap_value(data))
        )

    async def apush(self, data: Any) -> None:
        """Async twin of :meth:`push` (it never blocks)."""
        self.push(data)

    def close(self) -> None:
        """Drop this subscription (the subscriber's ``on_closed`` fires)."""
        self._session.io.call_soon(self.stream.drop, self, "Server dropping a single subscription")

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
        publisher: Publisher,
        local: LocalMethod,
        on_subscription_request: Callable[[SubscriptionRequest], Any] | None,
        on_added: Callable[[StreamSubscription], Any] | None,
        on_removed: Callable[[StreamSubscription], Any] | None,
        target: OutputTarget | None,
    ) -> None:
        self._publisher = publisher
        self._session = publisher.session
        self._local = local
        self.on_subscription_request = on_subscription_request
        self.on_added = on_added
        self.on_removed = on_removed
        #: where the handlers' output goes (the cell that created the stream)
        self.output = target
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

    def check_open(self) -> None:
        """Raise unless this stream and its client are open."""
        if self.closed:
            raise ArgumentError(f"The stream {self.name!r} is closed")
        self._session.check_open()

    # ------------------------------------------------------------------ push

    def push(self, data: Any, branch: str | list[str] | None = None) -> None:
        """Send ``data`` to every subscriber, or only to those on ``branch`` (a key or a list
        of keys). Fire and forget: returns at once; dropped while disconnected.

        The common case (one branch, plain JSON, the hub accepted ``runs``) is kept short: an
        open check, the encoding and an append to the connection's queue, whose writer folds
        what piled up (the pushing thread's time per item bounds a stream's throughput)."""
        self.check_open()
        stream_ids = self._all_ids if branch is None else self._stream_ids(branch)
        if not stream_ids:
            return  # nobody listens: as in io.Connect, pushing to no branch does nothing
        conn = self._session.conn
        payload: Any = data if isinstance(data, dict) else wrap_value(data)
        if len(stream_ids) == 1:
            if conn.extensions.get(RUNS_EXTENSION):
                encoded = plain_json(payload)  # plain JSON: joins the run of this stream's items
                if encoded is not None:
                    conn.send_item_threadsafe(stream_ids[0], encoded)
                    return
        else:
            payload = conn.codec.prepare(payload)  # encoded once for every branch
        for stream_id in stream_ids:
            conn.send_threadsafe(messages.stream_publish(stream_id, payload))

    def _stream_ids(self, branch: str | list[str] | None) -> Sequence[str]:
        """The stream ids a push to ``branch`` goes to (from any thread)."""
        if branch is None:
            return self._all_ids
        if isinstance(branch, str):
            stream_id = self._branch_ids.get(branch)
            return () if stream_id is None else (stream_id,)
        if isinstance(branch, (list, tuple)) and all(isinstance(b, str) for b in branch):
            ids = dict(self._branch_ids)  # an atomic copy: the loop owns the dict
            return [ids[k] for k in branch if k in ids]
        raise ArgumentError(f"branch must be a string or a list of strings, not {branch!r}")

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
            self.drop(sub, "Server dropping all subscriptions on the stream")
        await self._publisher.unregister(self._local)

    close = blocking(aclose)

    # ------------------------------------------------------------------ on the loop

    def request(self, msg: dict[str, Any]) -> None:
        """The hub's ``add-interest``: ask ``on_subscription_request`` (accept without one)."""
        session = self._session
        sub_id = str(msg.get("subscription_id"))
        caller_id = str(msg.get("caller_id"))
        server = session.registry.servers.get(caller_id)
        instance = server.instance if server is not None else Instance(peer_id=caller_id)
        arguments = msg.get("arguments_kv") if isinstance(msg.get("arguments_kv"), dict) else {}
        assert isinstance(arguments, dict)
        request = SubscriptionRequest(self, sub_id, instance, arguments, session)
        handler = self.on_subscription_request
        if handler is None or self.closed:
            if self.closed:
                request.reject("The stream is closed")
            else:
                request.accept()
            return
        future = session.dispatcher.run_handler(handler, (request,), self.output)

        def settle(f: asyncio.Future[Any]) -> None:
            if f.cancelled():
                request.reject("The publisher was closed")
            elif f.exception() is not None:
                error = f.exception()
                request.reject(f"{type(error).__name__}: {error}")
            else:
                request.accept()  # no-op if the handler decided

        future.add_done_callback(settle)

    def settle(self, request: SubscriptionRequest, decision: Decision) -> None:
        """On the loop: apply the request's decision. Accepting is done here and only here:
        GW3 ``accepted`` on the branch's stream id, a :class:`StreamSubscription`,
        ``on_added``."""
        kind, value = decision
        if kind == "reject":
            self._session.conn.send(
                messages.stream_refusal(
                    request.subscription_id,
                    Reason.SUBSCRIPTION_REJECTED,
                    f"Subscription rejected by user. {value}".rstrip(),
                )
            )
            return
        stream_id = self._branch_ids.get(value)
        if stream_id is None:
            stream_id = self._publisher.new_stream_id()
        if not self._session.conn.send(messages.accepted(request.subscription_id, stream_id)):
            return
        self._branch_ids[value] = stream_id
        self._all_ids = tuple(self._branch_ids.values())
        sub = StreamSubscription(
            self, request.subscription_id, request.instance, request.arguments, value, self._session
        )
        self._subs[sub.subscription_id] = sub
        self._publisher.accepted(sub)
        if self.on_added is not None:
            self._session.dispatcher.post_event(self.on_added, (sub,), self.output)

    def drop(self, sub: StreamSubscription, reason: str) -> None:
        """On the loop: tell the hub to drop ``sub``, then forget it (see :meth:`removed`)."""
        if sub.closed:
            return
        self._session.conn.send(messages.drop_subscription(sub.subscription_id, reason))
        self.removed(sub)

    def removed(self, sub: StreamSubscription) -> None:
        """On the loop: ``sub`` is gone (dropped, unsubscribed, or the connection was lost)."""
        if sub.closed:
            return
        sub.closed = True
        self._subs.pop(sub.subscription_id, None)
        self._publisher.removed(sub)
        if not any(s.branch == sub.branch for s in self._subs.values()):
            self._branch_ids.pop(sub.branch, None)
            self._all_ids = tuple(self._branch_ids.values())
        if self.on_removed is not None:
            self._session.dispatcher.post_event(self.on_removed, (sub,), self.output)

    def __repr__(self) -> str:
        return f"<Stream {self.name!r} {len(self._subs)} subscription(s)>"


class Publisher:
    """The streams this client publishes and their accepted subscribers (by subscription id)."""

    def __init__(self, session: ClientSession, server: MethodServer) -> None:
        self._session = session
        self._server = server
        self._stream_ids = itertools.count(1)
        #: subscription id -> our accepted subscriber
        self._accepted: dict[str, StreamSubscription] = {}
        conn = session.conn
        conn.on(AGM_DOMAIN, ADD_INTEREST_TYPE, self._on_add_interest)
        conn.on(AGM_DOMAIN, REMOVE_INTEREST_TYPE, self._on_remove_interest)
        conn.add_lost_hook(self._lost)

    @property
    def session(self) -> ClientSession:
        """The client session this service runs in."""
        return self._session

    def new_stream_id(self) -> str:
        """An id for a new branch of one of our streams."""
        return str(next(self._stream_ids))

    def accepted(self, sub: StreamSubscription) -> None:
        """Remember an accepted subscriber (from :meth:`Stream.settle`)."""
        self._accepted[sub.subscription_id] = sub

    def removed(self, sub: StreamSubscription) -> None:
        """Forget a subscriber that is gone (from :meth:`Stream.removed`)."""
        self._accepted.pop(sub.subscription_id, None)

    async def unregister(self, local: LocalMethod) -> None:
        """Stop offering a stream (it is closed)."""
        if local.id in self._server.own:
            await self._server.unregister_ids([local.id])

    async def create(
        self,
        name: str,
        on_subscription_request: Callable[[SubscriptionRequest], Any] | None,
        on_added: Callable[[StreamSubscription], Any] | None,
        on_removed: Callable[[StreamSubscription], Any] | None,
        **options: Any,
    ) -> Stream:
        """On the loop: register the stream ``name``, or update the handlers of ours."""
        for label, fn in (
            ("on_subscription_request", on_subscription_request),
            ("on_added", on_added),
            ("on_removed", on_removed),
        ):
            if fn is not None and not callable(fn):
                raise ArgumentError(f"{label} must be callable, not {fn!r}")
        wire = definition(name, streaming=True, **options)
        target = capture_output_target()
        existing = self._server.own_by_name(name)
        if existing is not None:
            if not existing.streaming:
                raise RegistrationError(f"{name!r} is already registered here as a method")
            stream: Stream = existing.stream
            if not stream.closed and {k: v for k, v in existing.wire.items() if k != "id"} == wire:
                stream.on_subscription_request = on_subscription_request
                stream.on_added = on_added
                stream.on_removed = on_removed
                stream.output = target
                return stream
            await stream.aclose()
        local = LocalMethod(self._server.new_id(), name, wire, None, target, streaming=True)
        stream = Stream(self, local, on_subscription_request, on_added, on_removed, target)
        local.stream = stream
        await self._server.register_local(local)
        return stream

    def _stream_for(self, method_id: str) -> Stream | None:
        local = self._server.own.get(method_id)
        return local.stream if local is not None and local.streaming else None

    def _on_add_interest(self, msg: dict[str, Any]) -> None:
        stream = self._stream_for(str(msg.get("method_id")))
        if stream is None:
            self._session.conn.send(
                messages.stream_refusal(
                    str(msg.get("subscription_id")),
                    Reason.SUBSCRIPTION_REJECTED,
                    "No such stream is published here",
                )
            )
            return
        stream.request(msg)

    def _on_remove_interest(self, msg: dict[str, Any]) -> None:
        sub = self._accepted.get(str(msg.get("subscription_id")))
        if sub is not None:
            sub.stream.removed(sub)

    def _lost(self) -> None:
        for sub in list(self._accepted.values()):
            sub.stream.removed(sub)
