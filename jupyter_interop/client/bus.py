"""Pub/sub on topics (io.Connect ``bus.*``), restored after a reconnect.

Topics are dot-separated; a subscription may use ``*`` (one segment) and ``>`` (the rest).
``routing_key``: delivered when either side has none or both are equal. A publisher's
``target`` (identity fields) is matched by the hub against subscribers; a subscriber's
``target`` filters publishers here. ``publish`` is fire and forget, with no retention or
replay, as in io.Connect; unlike io.Connect's client, subscriptions come back after a
reconnect. Non-dict data travels as ``{"_value": x}``; an empty dict ``{}`` is delivered as
it is (the hub drops only a missing ``data``, as the Glue42 gateway does).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..protocol import messages
from ..protocol.wire import (
    BUS_DOMAIN,
    EVENT_TYPE,
    SUBSCRIBE_TYPE,
    SUBSCRIBED_TYPE,
)
from .codec import unwrap_value, wrap_value
from .contexts import adapt_callback
from .dispatch import OutputTarget, capture_output_target, is_async_callable
from .errors import ArgumentError, RemoteError
from .instance import Instance, InstanceFilter, matches, normalize_filter, wire_identity
from .twins import blocking, on_io_loop

if TYPE_CHECKING:
    from .session import ClientSession

__all__ = ["Bus", "BusSubscription"]


def _check_topic(topic: Any) -> str:
    if not isinstance(topic, str) or not topic.strip():
        raise ArgumentError(f"A topic must be a non-empty string, not {topic!r}")
    return topic


def _check_key(routing_key: Any) -> str | None:
    if routing_key is not None and not isinstance(routing_key, str):
        raise ArgumentError(f"routing_key must be a string, not {type(routing_key).__name__}")
    return routing_key or None


@dataclass(eq=False)
class BusSubscription:
    """A topic subscription; :meth:`unsubscribe` stops it."""

    topic: str
    routing_key: str | None
    source: InstanceFilter | None
    callback: Callable[..., Any]
    output: OutputTarget | None
    bus: Bus
    subscription_id: str | None = None
    active: bool = True
    #: whether ``callback`` is ``async def`` (looked up once, not per message)
    is_async: bool = False

    @on_io_loop
    async def aunsubscribe(self) -> None:
        """Stop receiving messages on this subscription."""
        if not self.active:
            return
        self.active = False
        await self.bus.remove(self)

    unsubscribe = blocking(aunsubscribe)

    def __call__(self) -> None:
        """Calling the subscription stops it (as with the other subscribe functions)."""
        self.unsubscribe()

    @property
    def _session(self) -> ClientSession:
        return self.bus.session

    def __repr__(self) -> str:
        return f"<BusSubscription {self.topic!r}{' (stopped)' if not self.active else ''}>"


class Bus:
    """``io.bus``: publish to topics and subscribe with wildcards."""

    def __init__(self, session: ClientSession) -> None:
        self._session = session
        self._subscriptions: set[BusSubscription] = set()
        self._by_id: dict[str, BusSubscription] = {}
        conn = session.conn
        conn.on_many(BUS_DOMAIN, EVENT_TYPE, self._on_events)
        conn.on(BUS_DOMAIN, SUBSCRIBED_TYPE, self._on_stray_subscribed)
        conn.add_lost_hook(self._lost)
        conn.add_restorer(self._restore)

    @property
    def session(self) -> ClientSession:
        """The client session this service runs in."""
        return self._session

    async def remove(self, sub: BusSubscription) -> None:
        """On the loop: forget ``sub`` and unsubscribe it on the hub (when connected)."""
        self._subscriptions.discard(sub)
        sub_id = sub.subscription_id
        if sub_id is None:
            return
        self._by_id.pop(sub_id, None)
        conn = self._session.conn
        if conn.connected.is_set():
            with contextlib.suppress(RemoteError):
                await conn.request(
                    messages.bus_unsubscribe(sub_id),
                    self._session.settings.request_timeout,
                    f"unsubscribe from {sub.topic!r}",
                )

    def publish(
        self,
        topic: str,
        data: Any,
        *,
        routing_key: str | None = None,
        target: dict[str, Any] | Instance | None = None,
    ) -> None:
        """Publish ``data`` on ``topic`` (fire and forget; dropped while disconnected)."""
        message = messages.bus_publish(
            _check_topic(topic),
            wrap_value(data),
            _check_key(routing_key) or None,
            None if target is None else wire_identity(target),
        )
        self._session.check_open()
        self._session.conn.send_threadsafe(message)

    async def apublish(
        self,
        topic: str,
        data: Any,
        *,
        routing_key: str | None = None,
        target: dict[str, Any] | Instance | None = None,
    ) -> None:
        """Async twin of :meth:`publish` (it never blocks)."""
        self.publish(topic, data, routing_key=routing_key, target=target)

    @on_io_loop
    async def asubscribe(
        self,
        topic: str,
        callback: Callable[..., Any],
        *,
        routing_key: str | None = None,
        target: dict[str, Any] | Instance | None = None,
    ) -> BusSubscription:
        """``callback(data, topic, source)`` for every message on ``topic`` (wildcards ``*``
        and ``>``); ``target`` keeps only publishers matching those identity fields."""
        _check_topic(topic)
        if not callable(callback):
            raise ArgumentError(f"The bus callback must be callable, not {callback!r}")
        adapted = adapt_callback(callback, 3)
        sub = BusSubscription(
            topic,
            _check_key(routing_key),
            normalize_filter(target) if target is not None else None,
            adapted,
            capture_output_target(),
            self,
            is_async=is_async_callable(adapted),
        )
        await self._subscribe(sub, internal=False)
        self._subscriptions.add(sub)
        return sub

    subscribe = blocking(asubscribe)

    async def _subscribe(self, sub: BusSubscription, internal: bool) -> None:
        message: dict[str, Any] = {"domain": BUS_DOMAIN, "type": SUBSCRIBE_TYPE, "topic": sub.topic}
        if sub.routing_key:
            message["routing_key"] = sub.routing_key

        def registered(reply: dict[str, Any]) -> None:
            sub.subscription_id = str(reply.get("subscription_id"))
            self._by_id[sub.subscription_id] = sub

        await self._session.conn.request(
            message,
            self._session.settings.request_timeout,
            f"bus subscription to {sub.topic!r}",
            internal=internal,
            on_reply=registered,
        )

    def _on_events(self, messages: list[dict[str, Any]]) -> None:
        """A run of bus ``event`` messages (see Connection.on_many): each subscription's
        callback gets its consecutive deliveries with one hand-off to the event lane."""
        post = self._session.dispatcher.post_items
        current: BusSubscription | None = None
        calls: list[tuple[Any, str, Instance]] = []
        # consecutive deliveries from one publisher share its (immutable) Instance
        last_identity: Any = None
        source: Instance | None = None
        for msg in messages:
            sub = self._by_id.get(str(msg.get("subscription_id")))
            if sub is None or not sub.active:
                continue
            identity = msg.get("publisher-identity")
            if source is None or identity != last_identity:
                last_identity = identity
                source = Instance.from_identity(identity if isinstance(identity, dict) else {})
            if sub.source is not None and not matches(source, sub.source):
                continue
            topic = msg.get("topic")
            if not isinstance(topic, str):
                topic = sub.topic
            if sub is not current:
                if current is not None and calls:
                    post(current.callback, calls, current.output, current.is_async, True)
                current, calls = sub, []
            calls.append((unwrap_value(msg.get("data")), topic, source))
        if current is not None and calls:
            post(current.callback, calls, current.output, current.is_async, True)

    def _on_stray_subscribed(self, msg: dict[str, Any]) -> None:
        sub_id = msg.get("subscription_id")
        if sub_id is not None and str(sub_id) not in self._by_id:
            self._session.conn.send(messages.bus_unsubscribe(sub_id))

    def _lost(self) -> None:
        self._by_id.clear()
        for sub in self._subscriptions:
            sub.subscription_id = None

    async def _restore(self) -> None:
        for sub in list(self._subscriptions):
            if sub.active:
                await self._subscribe(sub, internal=True)
