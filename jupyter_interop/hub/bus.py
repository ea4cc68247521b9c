"""Pub/sub on topics (GW3 ``bus`` domain) with ``*`` / ``>`` wildcards, routing keys, targets.

Exact topics are a dict lookup; wildcard subscriptions are matched once per distinct topic and
the answer cached until the set of wildcard subscriptions changes, so a publish never scans
every subscription.

A federated hub's link (its hidden observer, docs/FEDERATION.md "The bus") joins the bus as a
*link peer*: it is told which topics local peers subscribe to (``interest-added`` /
``-removed``, once per topic, not per subscriber), it gets each local publication once, and
it publishes the messages of other hubs in their publishers' names, each for the one topic
of the NATS subscription it came through. A subscription on a topic new to the hub is
confirmed (``subscribed``) only once every link said ``interest-ready`` for it (its NATS
subscription is in place), so nothing published on another hub after the confirmation is
lost; the link bounds that wait, and a link that leaves releases what it held.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from ..protocol import ProtocolError, Reason, messages
from ..protocol.wire import (
    BUS_DOMAIN,
    BUS_INTEREST_ADDED_TYPE,
    BUS_INTEREST_READY_TYPE,
    BUS_INTEREST_REMOVED_TYPE,
    FOR_TOPIC_KEY,
    PUBLISH_TYPE,
    PUBLISHER_IDENTITY_KEY,
    SUBSCRIBE_TYPE,
    UNSUBSCRIBE_TYPE,
)
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
        #: wildcard topic as subscribed -> its subscriptions (what a link peer's message for
        #: that topic goes to; exact topics are :attr:`exact`)
        self.wildcard_topics: dict[str, dict[str, BusRoute]] = {}
        #: the federation link's peers on the bus, by peer id (see the module docstring)
        self.links: dict[str, Peer] = {}
        self._match_cache: dict[str, tuple[BusRoute, ...]] = {}
        #: topic new to the hub -> (link peer ids not ready for it yet, the ``subscribed``
        #: replies held until they are)
        self.held: dict[str, tuple[set[str], Outgoing]] = {}
        #: message type -> handler, for the hub's table (``hub/core.py``): one per type of
        #: ``protocol/wire.py:BUS_MESSAGE_TYPES``
        self.handlers: dict[str, Handler] = {
            PUBLISH_TYPE: self._publish,
            SUBSCRIBE_TYPE: self._subscribe,
            UNSUBSCRIBE_TYPE: self._unsubscribe,
            BUS_INTEREST_READY_TYPE: self._ready,
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
        if peer.hidden:
            identity = field(msg, PUBLISHER_IDENTITY_KEY, dict)
            subs = self._for_topic(topic, field(msg, FOR_TOPIC_KEY, str))
        else:
            identity = peer.identity
            subs = self.matching(topic)
            if self.links:
                self._tap(peer, topic, data, routing_key, target, out)
        for sub in subs:
            if routing_key and sub.routing_key and routing_key != sub.routing_key:
                continue
            if target and not _identity_matches(sub.peer.identity, target):
                continue
            message = messages.bus_event(
                sub.peer.peer_id, identity, topic, data, subscription_id=sub.subscription_id
            )
            out.append((sub.peer.conn, message))

    def _for_topic(self, topic: str, subscribed: str) -> list[BusRoute]:
        """The subscriptions on ``subscribed`` (a topic as subscribed) if ``topic`` matches it."""
        if not is_wildcard(subscribed):
            return list(self.exact.get(topic, {}).values()) if topic == subscribed else []
        subs = self.wildcard_topics.get(subscribed)
        if not subs or not topic_pattern(subscribed).match(topic):
            return []
        return list(subs.values())

    def _tap(
        self,
        peer: Peer,
        topic: str,
        data: Any,
        routing_key: str | None,
        target: dict[str, Any] | None,
        out: Outgoing,
    ) -> None:
        """A local publication, once to each link peer, with what the other hubs filter on."""
        for link in self.links.values():
            message = messages.bus_event(
                link.peer_id,
                peer.identity,
                topic,
                data,
                routing_key=routing_key,
                target_identity=target,
            )
            out.append((link.conn, message))

    def attach_link(self, peer: Peer, out: Outgoing) -> None:
        """``peer``, the federation link's hidden observer, joined the bus: it learns the
        topics local peers subscribe to now, and later each change."""
        self.links[peer.peer_id] = peer
        for topic in [*self.exact, *self.wildcard_topics]:
            out.append((peer.conn, self._interest(peer, BUS_INTEREST_ADDED_TYPE, topic)))

    @staticmethod
    def _interest(link: Peer, mtype: str, topic: str) -> Message:
        return {"domain": BUS_DOMAIN, "type": mtype, "peer_id": link.peer_id, "topic": topic}

    def _interest_changed(self, mtype: str, topic: str, out: Outgoing) -> None:
        for link in self.links.values():
            out.append((link.conn, self._interest(link, mtype, topic)))

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
            same = self.wildcard_topics.setdefault(topic, {})
        else:
            same = self.exact.setdefault(topic, {})
        same[sub.subscription_id] = sub
        if len(same) == 1 and self.links:
            self._interest_changed(BUS_INTEREST_ADDED_TYPE, topic, out)
            self.held[topic] = (set(self.links), [])
        reply = messages.subscribed(
            BUS_DOMAIN, msg.get("request_id"), peer.peer_id, sub.subscription_id
        )
        held = self.held.get(topic)
        (held[1] if held else out).append((peer.conn, reply))

    def _ready(self, peer: Peer, msg: Message, out: Outgoing) -> None:
        """A link's NATS subscription for ``topic`` is in place: once every link's is, the
        subscriptions held for it are confirmed."""
        if peer.peer_id not in self.links:
            raise ProtocolError(
                Reason.BUS_INVALID_SUBSCRIPTION, "Only the federation link says a topic is ready"
            )
        self._release(field(msg, "topic", str), peer.peer_id, out)

    def _release(self, topic: str, link_id: str, out: Outgoing) -> None:
        held = self.held.get(topic)
        if held is None:
            return
        waiting, replies = held
        waiting.discard(link_id)
        if not waiting:
            del self.held[topic]
            out.extend(replies)

    def _unsubscribe(self, peer: Peer, msg: Message, out: Outgoing) -> None:
        sub_id = ident(msg, "subscription_id")
        sub = self.subscriptions.get(sub_id)
        if sub is None or sub.peer is not peer:
            raise ProtocolError(
                Reason.BUS_INVALID_SUBSCRIPTION, f"No bus subscription {sub_id} of yours"
            )
        self._remove(sub, out)
        self.hub.success(out, peer, msg)

    def _remove(self, sub: BusRoute, out: Outgoing) -> None:
        self.subscriptions.pop(sub.subscription_id, None)
        sub.peer.bus_subscriptions.discard(sub.subscription_id)
        if sub.pattern is not None:
            self.wildcards.pop(sub.subscription_id, None)
            self._match_cache.clear()
            index = self.wildcard_topics
        else:
            index = self.exact
        subs = index.get(sub.topic)
        if subs is not None:
            subs.pop(sub.subscription_id, None)
            if not subs:
                del index[sub.topic]
                self.held.pop(sub.topic, None)  # its subscribers are gone
                if self.links:
                    self._interest_changed(BUS_INTEREST_REMOVED_TYPE, sub.topic, out)

    def detach(self, peer: Peer, out: Outgoing) -> None:
        if self.links.pop(peer.peer_id, None) is not None:
            for topic in list(self.held):
                self._release(topic, peer.peer_id, out)
        for sub_id in list(peer.bus_subscriptions):
            sub = self.subscriptions.get(sub_id)
            if sub is not None:
                self._remove(sub, out)


def _identity_matches(identity: dict[str, Any], target: dict[str, Any]) -> bool:
    return all(identity.get(key) == value for key, value in target.items())
