"""Pub/sub on topics (GW3 ``bus`` domain) with ``*`` / ``>`` wildcards, routing keys, targets.

Exact topics are a dict lookup; wildcard subscriptions are matched once per distinct topic and
the answer cached until the set of wildcard subscriptions changes, so a publish never scans
every subscription.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from ..protocol import ProtocolError, Reason, messages
from ..protocol.wire import BUS_DOMAIN, EVENT_TYPE, PUBLISH_TYPE, SUBSCRIBE_TYPE, UNSUBSCRIBE_TYPE
from ._fields import field, ident, optional
from ._services import Handler, HubServices
from .connection import Outgoing
from .peers import Message, Peer, with_id

_SEGMENT = re.compile(r"[A-Za-z0-9_\-]+")
_CACHE_LIMIT = 10_000


def topic_pattern(topic: str) -> re.Pattern[str]:
    """Compile a subscription topic: ``*`` is one segment, ``>`` is the rest (one or more)."""
    parts = []
    for segment in topic.split("."):
        if segment == "*":
            parts.append(r"[^.]+")
        elif segment == ">":
            parts.append(r".+")
        else:
            parts.append(re.escape(segment))
    return re.compile(r"\.".join(parts) + r"\Z")


def is_wildcard(topic: str) -> bool:
    return any(segment in ("*", ">") for segment in topic.split("."))


@dataclass(eq=False)
class BusRoute:
    """One bus topic subscription as the hub routes it: which peer gets which topics."""

    subscription_id: str
    peer: Peer
    topic: str
    routing_key: str | None
    pattern: re.Pattern[str] | None = None


class BusDomain:
    """Topic subscriptions indexed by exact topic, plus cached wildcard matches."""

    def __init__(self, hub: HubServices) -> None:
        self.hub = hub
        self.subscriptions: dict[str, BusRoute] = {}
        self.exact: dict[str, dict[str, BusRoute]] = {}
        self.wildcards: dict[str, BusRoute] = {}
        self._match_cache: dict[str, tuple[BusRoute, ...]] = {}
        #: message type -> handler, for the hub's table (``hub/core.py``): one per type of
        #: ``protocol/wire.py:BUS_MESSAGE_TYPES``
        self.handlers: dict[str, Handler] = {
            PUBLISH_TYPE: self._publish,
            SUBSCRIBE_TYPE: self._subscribe,
            UNSUBSCRIBE_TYPE: self._unsubscribe,
        }

    def matching(self, topic: str) -> list[BusRoute]:
        subs = list(self.exact.get(topic, {}).values())
        if self.wildcards:
            cached = self._match_cache.get(topic)
            if cached is None:
                cached = tuple(
                    s for s in self.wildcards.values() if s.pattern and s.pattern.match(topic)
                )
                if len(self._match_cache) >= _CACHE_LIMIT:
                    self._match_cache.clear()
                self._match_cache[topic] = cached
            subs.extend(cached)
        return subs

    def _publish(self, peer: Peer, msg: Message, out: Outgoing) -> None:
        topic = field(msg, "topic", str)
        data = msg.get("data")
        if data is None or data is False:
            # as in the Glue42 gateway (``when-let``: only nil and false are falsy there), so an
            # empty object ``{}`` is delivered
            return
        routing_key = optional(msg, "routing_key", str)
        target = optional(msg, "target_identity", dict)
        for sub in self.matching(topic):
            if routing_key and sub.routing_key and routing_key != sub.routing_key:
                continue
            if target and not _identity_matches(sub.peer.identity, target):
                continue
            out.append(
                (
                    sub.peer.conn,
                    {
                        "domain": BUS_DOMAIN,
                        "type": EVENT_TYPE,
                        "peer_id": sub.peer.peer_id,
                        "subscription_id": sub.subscription_id,
                        "publisher-identity": peer.identity,
                        "topic": topic,
                        "data": data,
                    },
                )
            )

    def _subscribe(self, peer: Peer, msg: Message, out: Outgoing) -> None:
        topic = field(msg, "topic", str)
        if not topic:
            raise ProtocolError(Reason.BUS_INVALID_SUBSCRIPTION, "A topic must not be empty")
        routing_key = optional(msg, "routing_key", str)
        if len(peer.bus_subscriptions) >= self.hub.max_bus_subscriptions_per_peer:
            raise ProtocolError(
                Reason.LIMITS_EXCEEDED,
                f"A peer may hold at most {self.hub.max_bus_subscriptions_per_peer} "
                "bus subscriptions",
            )
        sub = BusRoute(self.hub.new_id("b"), peer, topic, routing_key or None)
        self.subscriptions[sub.subscription_id] = sub
        peer.bus_subscriptions = with_id(peer.bus_subscriptions, sub.subscription_id)
        if is_wildcard(topic):
            sub.pattern = topic_pattern(topic)
            self.wildcards[sub.subscription_id] = sub
            self._match_cache.clear()
        else:
            self.exact.setdefault(topic, {})[sub.subscription_id] = sub
        reply = messages.subscribed(
            BUS_DOMAIN, msg.get("request_id"), peer.peer_id, sub.subscription_id
        )
        out.append((peer.conn, reply))

    def _unsubscribe(self, peer: Peer, msg: Message, out: Outgoing) -> None:
        sub_id = ident(msg, "subscription_id")
        sub = self.subscriptions.get(sub_id)
        if sub is None or sub.peer is not peer:
            raise ProtocolError(
                Reason.BUS_INVALID_SUBSCRIPTION, f"No bus subscription {sub_id} of yours"
            )
        self._remove(sub)
        self.hub.success(out, peer, msg)

    def _remove(self, sub: BusRoute) -> None:
        self.subscriptions.pop(sub.subscription_id, None)
        sub.peer.bus_subscriptions.discard(sub.subscription_id)
        if sub.pattern is not None:
            self.wildcards.pop(sub.subscription_id, None)
            self._match_cache.clear()
        else:
            subs = self.exact.get(sub.topic)
            if subs is not None:
                subs.pop(sub.subscription_id, None)
                if not subs:
                    del self.exact[sub.topic]

    def detach(self, peer: Peer) -> None:
        for sub_id in list(peer.bus_subscriptions):
            sub = self.subscriptions.get(sub_id)
            if sub is not None:
                self._remove(sub)


def _identity_matches(identity: dict[str, Any], target: dict[str, Any]) -> bool:
    return all(identity.get(key) == value for key, value in target.items())
