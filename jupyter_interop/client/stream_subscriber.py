"""The subscriber side of streams: the :class:`Subscription` a subscriber holds and its data.

:class:`Subscriber` routes the hub's ``event``/``event-many`` and ``subscription-cancelled``
messages to the subscriptions by subscription id, and re-makes them after a reconnect. A
:class:`Subscription` picks its publishers (through the invoker's waiting), sends one GW3
``subscribe`` per publisher, and records each publisher that accepted in one place,
:meth:`Subscription._accepted` (docs/ARCHITECTURE.md, "Client"). The semantics are those
described in ``client/streams.py``.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple

from ..protocol import messages
from ..protocol.wire import (
    AGM_DOMAIN,
    EVENT_MANY_TYPE,
    EVENT_TYPE,
    SUBSCRIBED_TYPE,
    SUBSCRIPTION_CANCELLED_TYPE,
)
from .codec import unwrap_value
from .connection import RequestTimeout
from .dispatch import OutputTarget, capture_output_target, is_async_callable
from .errors import (
    ArgumentError,
    ClientClosedError,
    ConnectionLostError,
    HubUnreachableError,
    RemoteError,
    SubscriptionError,
)
from .instance import Instance, InstanceFilter
from .method_invoker import Invoker, Target, check_timeout, parse_target
from .registry import MethodInfo
from .twins import blocking, on_io_loop

if TYPE_CHECKING:
    from .session import ClientSession

__all__ = ["ClosedInfo", "StreamData", "Subscriber", "Subscription"]

_MAX_QUEUED = 10_000


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


def _published_items(
    datas: list[Any], server: Instance, arguments: dict[str, Any]
) -> list[StreamData]:
    """:func:`_stream_items` for the data of published items (an ``event-many``'s items)."""
    new = tuple.__new__
    return [new(StreamData, (unwrap_value(data), server, arguments, False)) for data in datas]


@dataclass(frozen=True)
class ClosedInfo:
    """Why a subscription closed: ``message`` is ``"ServerInitiated"`` or
    ``"ClientInitiated"`` (io.Connect's values), ``reason`` the hub's text."""

    message: str
    reason: str
    server: Instance | None
    stream: str


@dataclass(frozen=True)
class SubscriptionHandlers:
    """The callbacks given to ``subscribe`` (each may be None)."""

    on_data: Callable[[StreamData], Any] | None = None
    on_closed: Callable[[ClosedInfo], Any] | None = None
    on_failed: Callable[[SubscriptionError], Any] | None = None
    on_connected: Callable[[Instance, bool], Any] | None = None


class Subscription:
    """A subscription to a stream (subscriber side)."""

    def __init__(
        self,
        subscriber: Subscriber,
        name: str,
        arguments: dict[str, Any],
        target: str | list[InstanceFilter],
        wait_timeout: float,
        timeout: float,
        output: OutputTarget | None,
        handlers: SubscriptionHandlers | None = None,
    ) -> None:
        self._subscriber = subscriber
        self._session = subscriber.session
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
        if handlers is not None:
            self._handle(handlers)

    def _handle(self, handlers: SubscriptionHandlers) -> None:
        """The callbacks given to ``subscribe``, in place before anything arrives."""
        slots: list[tuple[list[Any], Any]] = [
            (self._on_data, handlers.on_data),
            (self._on_closed, handlers.on_closed),
            (self._on_failed, handlers.on_failed),
            (self._on_connected, handlers.on_connected),
        ]
        for callbacks, callback in slots:
            if callback is not None:
                if not callable(callback):
                    raise ArgumentError(
                        f"A subscription callback must be callable, not {callback!r}"
                    )
                callbacks.append(callback)
        if handlers.on_data is not None:
            self._on_data_kinds.append((handlers.on_data, is_async_callable(handlers.on_data)))

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
                        messages.stream_unsubscribe(sub_id, "ClientInitiated"),
                        self._session.settings.request_timeout,
                        f"unsubscribe from {self.name!r}",
                    )

    close = blocking(aclose)

    def _finish(self, message: str, reason: str, server: Instance | None) -> None:
        if self.closed:
            return
        self.closed = True
        self._subscriber.finished(self, list(self._servers))
        self._servers.clear()
        info = ClosedInfo(message, reason, server, self.name)
        for callback in self._on_closed:
            self._post(callback, info)

    def _fail(self, error: SubscriptionError) -> None:
        for callback in self._on_failed:
            self._post(callback, error)

    # ------------------------------------------------------------------ events

    def events(self, sub_id: str, messages: list[dict[str, Any]]) -> None:
        """On the loop (from :class:`Subscriber`): a run of events from the publisher of
        ``sub_id``. Every ``on_data`` callback gets the run's items in order, with one
        hand-off to the lane per callback."""
        server = self._servers.get(sub_id)
        if server is not None:
            self._deliver(_stream_items(messages, server, self.arguments))

    def published(self, sub_id: str, datas: list[Any]) -> None:
        """:meth:`events` for the items of one ``event-many`` message (``runs`` extension):
        their data only, all published (none private)."""
        server = self._servers.get(sub_id)
        if server is not None:
            self._deliver(_published_items(datas, server, self.arguments))

    def _deliver(self, items: list[StreamData]) -> None:
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

    def cancelled(self, sub_id: str, reason: str) -> None:
        """On the loop (from :class:`Subscriber`): the publisher of ``sub_id`` is gone; the
        subscription closes with the last one."""
        server = self._servers.pop(sub_id, None)
        self._subscriber.ended(sub_id)
        if not self._servers and not self.closed:
            self._finish("ServerInitiated", reason, server)

    def lost(self) -> None:
        """On the loop: the connection dropped, and every publisher with it (for now)."""
        self._servers.clear()

    # ------------------------------------------------------------------ establish

    async def start(self) -> None:
        """On the loop: subscribe to the publishers the target picks (raises, and calls
        ``on_failed``, when none accepted)."""
        try:
            await self._establish(self._wait_timeout, reconnect=False)
        except SubscriptionError as error:
            self._fail(error)
            raise

    async def restore(self) -> None:
        """On the loop, after a reconnect: subscribe again, waiting for publishers to come
        back; ``on_failed`` and ``on_closed`` fire when none does."""
        wait = max(self._wait_timeout, self._session.settings.restore_timeout)
        try:
            await self._establish(wait, reconnect=True)
        except (ConnectionLostError, ClientClosedError):
            return  # the next reconnect tries again
        except SubscriptionError as error:
            self._fail(
                SubscriptionError(
                    f"Could not restore the subscription to {self.name!r} after reconnecting: "
                    f"{error}",
                    error.reason_uri,
                )
            )
            self._finish("ServerInitiated", "not restored after reconnect", None)

    async def _establish(self, wait: float, reconnect: bool) -> None:
        chosen = await self._subscriber.find_publishers(self.name, self._target, wait)
        if not chosen:
            raise SubscriptionError(
                f"Subscription to {self.name!r} failed. No available servers matched the target "
                f"params (waited {wait:g} s)."
            )
        outcomes = await asyncio.gather(
            *(self._subscribe_one(server, info) for server, info in chosen),
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
                    f'Subscription to {self.name!r} rejected. Publisher said "{reasons}". '
                    f"Called with: {self.arguments!r}",
                    rejections[0].reason_uri,
                )
            raise SubscriptionError(
                f"Subscription to {self.name!r} failed. Subscription attempt timed out after "
                f"{self._timeout * 1000:.0f} ms."
                + (
                    f" ({errors[0]})"
                    if errors and not isinstance(errors[0], RequestTimeout)
                    else ""
                )
            )
        for server in accepted:
            for callback in self._on_connected:
                self._post(callback, server, reconnect)
        partial = [o for o in outcomes if isinstance(o, RemoteError)]
        if partial:
            self._fail(
                SubscriptionError(
                    f"{len(partial)} of {len(outcomes)} publishers of {self.name!r} refused: "
                    + "; ".join(e.reason for e in partial),
                    partial[0].reason_uri,
                )
            )

    async def _subscribe_one(self, server: Instance, info: MethodInfo) -> Instance:
        def accepted(reply: dict[str, Any]) -> None:
            self._accepted(str(reply.get("subscription_id")), server)

        await self._session.conn.request(
            messages.stream_subscribe(server.peer_id, info.id, arguments_kv=self.arguments),
            self._timeout,
            f"subscription to {self.name!r}",
            internal=True,
            on_reply=accepted,
        )
        return server

    def _accepted(self, sub_id: str, server: Instance) -> None:
        """A publisher accepted (its GW3 ``subscribed`` reply, read before any event that
        follows it): its events reach this subscription from now on."""
        self._servers[sub_id] = server
        self._subscriber.accepted(sub_id, self)

    def __repr__(self) -> str:
        state = "closed" if self.closed else f"{len(self._servers)} publisher(s)"
        return f"<Subscription {self.name!r} {state}>"


class Subscriber:
    """This client's subscriptions to streams, by the hub's subscription id."""

    def __init__(self, session: ClientSession, invoker: Invoker) -> None:
        self._session = session
        self._invoker = invoker
        #: subscription id -> our subscription
        self._subscribed: dict[str, Subscription] = {}
        self._subscriptions: set[Subscription] = set()
        conn = session.conn
        conn.on_many(AGM_DOMAIN, EVENT_TYPE, self._on_events)
        conn.on(AGM_DOMAIN, EVENT_MANY_TYPE, self._on_event_many)
        conn.on(AGM_DOMAIN, SUBSCRIPTION_CANCELLED_TYPE, self._on_cancelled)
        conn.on(AGM_DOMAIN, SUBSCRIBED_TYPE, self._on_stray_subscribed)
        conn.add_lost_hook(self._lost)
        conn.add_restorer(self._restore)

    @property
    def session(self) -> ClientSession:
        """The client session this service runs in."""
        return self._session

    async def find_publishers(
        self, name: str, target: str | list[InstanceFilter], wait: float
    ) -> list[tuple[Instance, MethodInfo]]:
        """The publishers of ``name`` the target picks, waiting up to ``wait`` s for one."""
        return await self._invoker.wait_for_targets(name, target, True, wait)

    def accepted(self, sub_id: str, sub: Subscription) -> None:
        """Events for ``sub_id`` go to ``sub`` from now on."""
        self._subscribed[sub_id] = sub

    def ended(self, sub_id: str) -> None:
        """Events for ``sub_id`` go nowhere from now on."""
        self._subscribed.pop(sub_id, None)

    def finished(self, sub: Subscription, sub_ids: list[str]) -> None:
        """``sub`` closed: forget it and its subscription ids."""
        for sub_id in sub_ids:
            self._subscribed.pop(sub_id, None)
        self._subscriptions.discard(sub)

    async def subscribe(
        self,
        name: str,
        arguments: dict[str, Any] | None,
        target: Target | None,
        handlers: SubscriptionHandlers,
        wait_timeout: float | None,
        timeout: float | None,
    ) -> Subscription:
        """On the loop: what :meth:`Streams.asubscribe` documents."""
        settings = self._session.settings
        if not isinstance(name, str) or not name:
            raise ArgumentError(f"A stream name must be a non-empty string, not {name!r}")
        if arguments is None:
            arguments = {}
        elif not isinstance(arguments, dict):
            raise ArgumentError(
                f"Subscription arguments must be a dict, not {type(arguments).__name__}"
            )
        parsed = parse_target(target)
        wait = check_timeout(wait_timeout, settings.method_wait_timeout, "wait_timeout")
        accept = check_timeout(timeout, settings.subscribe_timeout, "timeout")
        output = capture_output_target()
        sub = Subscription(self, name, arguments, parsed, wait, accept, output, handlers)
        conn = self._session.conn
        await conn.wait_connected(conn.loop.time() + accept, f"subscribe({name!r})")
        await sub.start()
        self._subscriptions.add(sub)
        return sub

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
            key = str(msg.get("subscription_id"))
            sub = self._subscribed.get(key)
            if sub is not None:
                sub.published(key, items)

    def _events_of(self, sub_id: Any, messages: list[dict[str, Any]]) -> None:
        key = str(sub_id)
        sub = self._subscribed.get(key)
        if sub is not None:
            sub.events(key, messages)

    def _on_cancelled(self, msg: dict[str, Any]) -> None:
        sub_id = str(msg.get("subscription_id"))
        sub = self._subscribed.get(sub_id)
        if sub is not None:
            sub.cancelled(sub_id, str(msg.get("reason") or ""))

    def _on_stray_subscribed(self, msg: dict[str, Any]) -> None:
        """An accept that came after we gave up waiting: unsubscribe, nobody wants it."""
        sub_id = msg.get("subscription_id")
        if sub_id is not None and str(sub_id) not in self._subscribed:
            self._session.conn.send(
                messages.stream_unsubscribe(sub_id, "Subscription attempt timed out")
            )

    # ------------------------------------------------------------------ reconnect

    def _lost(self) -> None:
        self._subscribed.clear()
        for sub in self._subscriptions:
            sub.lost()

    async def _restore(self) -> None:
        # publishers come back on their own schedule: wait for them in the background
        for sub in list(self._subscriptions):
            if not sub.closed:
                self._session.conn.spawn(sub.restore())
