"""The bus across hubs (docs/FEDERATION.md, "The bus").

The hub tells its link's observer which topics local peers subscribe to, once per topic
(``hub/bus.py``); the link holds one NATS subscription per such topic on
``ji.<space>.bus.<topic>``, shared by all the hub's subscribers of that topic. Each local
publication reaches the link once and goes once to NATS, which forwards it only to the hubs
with a matching subscription; the link's NATS connection has ``no_echo``, so it never comes
back to the hub it came from. A message from NATS goes back into the hub in its publisher's
name, for the one topic of the subscription it came through: a message matching two
subscribed topics arrives once for each, and each of the hub's subscribers gets it once.

Once the NATS server has a topic's subscription (the link flushed it), the link tells the hub
``interest-ready`` for it; the hub holds the confirmation of the first subscription on that
topic until then, so a message another hub publishes after the subscriber got its
confirmation reaches it. If the subscription fails or takes longer than ``ready_timeout``
(``c.InteropHub.federation_bus_ready_timeout``), the link logs why and says
``interest-ready`` anyway: the subscriber is confirmed, and only the bus across hubs misses
that topic until the subscription is in place.

A message with binary values (bytes, numpy arrays, DataFrames) crosses as one binary frame,
or offered and pulled in chunks when it is larger than a NATS message
(``federation_values.py``); the receiving link hands it to its hub with its values as
attachments, so each subscriber gets it as it negotiated. One above the link's budget is not
sent, with a log line on the hub that could not send or take it (a publication has no answer
to carry an error).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from typing import Any

import orjson

from ..protocol import ProtocolError, messages
from ..protocol.wire import (
    BUS_DOMAIN,
    BUS_INTEREST_ADDED_TYPE,
    BUS_INTEREST_READY_TYPE,
    BUS_INTEREST_REMOVED_TYPE,
    EVENT_TYPE,
    FOR_TOPIC_KEY,
    PUBLISHER_IDENTITY_KEY,
)
from .federation_nats import Reconnects, subscribed
from .federation_values import ValueTooLarge, ValueTransfers

__all__ = ["FederationBus", "subject_pattern", "subject_token", "topic_subject"]

Message = dict[str, Any]

_SAFE = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-")


def subject_token(segment: str) -> str:
    """One topic segment as one NATS subject token: letters, digits, ``_`` and ``-`` as they
    are, every other character percent-encoded (UTF-8), the empty segment as ``%``. Distinct
    segments give distinct tokens, and no token is a wildcard or holds a space."""
    if not segment:
        return "%"
    if _SAFE.issuperset(segment):
        return segment
    return "".join(c if c in _SAFE else "".join(f"%{b:02X}" for b in c.encode()) for c in segment)


def topic_subject(base: str, topic: str) -> str:
    """The NATS subject a publication on ``topic`` goes to."""
    return ".".join([base, *(subject_token(s) for s in topic.split("."))])


def subject_pattern(base: str, topic: str) -> str:
    """The NATS subject pattern of a subscription to ``topic``: ``*`` and ``>`` stay
    wildcards; a ``>`` before the last segment takes the rest (the hub then keeps only the
    messages that match the topic itself)."""
    tokens = [base]
    for segment in topic.split("."):
        if segment == ">":
            tokens.append(">")
            break
        tokens.append("*" if segment == "*" else subject_token(segment))
    return ".".join(tokens)


class FederationBus:
    """One hub's side of the bus across hubs. ``send`` writes to the link's observer
    connection; ``publish`` queues a NATS publication (subject, payload, reply subject; in
    order); ``values`` packs and
    unpacks messages with binary values; ``spawn`` runs a task the link cancels when it
    closes; ``ready_timeout`` bounds the wait for a NATS subscription before the hub
    confirms its subscribers anyway; ``reconnects`` starts that wait over on a new
    connection."""

    def __init__(
        self,
        *,
        space: str,
        nats: Any,
        send: Callable[[Message], None],
        publish: Callable[[str, bytes, str], None],
        values: ValueTransfers,
        spawn: Callable[[Coroutine[Any, Any, Any]], None],
        log: logging.Logger,
        ready_timeout: float,
        reconnects: Reconnects,
    ) -> None:
        self.base = f"ji.{space}.bus"
        self.ready_timeout = ready_timeout
        self._reconnects = reconnects
        self._nats = nats
        self._send = send
        self._publish = publish
        self._values = values
        self._spawn = spawn
        self.log = log
        #: topic as subscribed on this hub -> its NATS subscription (being made)
        self.subscriptions: dict[str, asyncio.Task[Any]] = {}

    def on_hub_message(self, message: Message) -> None:
        """A ``bus`` message of the hub to the observer."""
        mtype = message.get("type")
        topic = message.get("topic")
        if not isinstance(topic, str):
            return
        if mtype == EVENT_TYPE:
            self._outgoing(topic, message)
        elif mtype == BUS_INTEREST_ADDED_TYPE and topic not in self.subscriptions:
            self.subscriptions[topic] = asyncio.ensure_future(self._subscribe(topic))
        elif mtype == BUS_INTEREST_REMOVED_TYPE:
            pending = self.subscriptions.pop(topic, None)
            if pending is not None:
                self._spawn(self._unsubscribe(pending))

    def _outgoing(self, topic: str, event: Message) -> None:
        message = {
            "topic": topic,
            "data": event.get("data"),
            "routing_key": event.get("routing_key"),
            "target_identity": event.get("target_identity"),
            "publisher": event.get("publisher-identity"),
        }
        reply = ""
        try:
            payload = orjson.dumps(message)
        except TypeError:  # binary values: one binary frame, or offered in chunks
            try:
                payload, reply = self._values.pack_for_anyone(message)
            except ValueTooLarge as error:
                self.log.warning(
                    "Interop federation: a message on %r not sent to other hubs: %s", topic, error
                )
                return
        self._publish(topic_subject(self.base, topic), payload, reply)

    async def _subscribe(self, topic: str) -> Any:
        """Make the NATS subscription of ``topic``; say ``interest-ready`` once it is in
        place or after ``ready_timeout``, whichever comes first. The subscription (and its
        flush) goes on after the bound: it is not cancelled, see :meth:`_make`."""
        making = asyncio.ensure_future(self._make(topic))
        done, _ = await asyncio.wait({making}, timeout=self.ready_timeout)
        if not done:
            self.log.warning(
                "Interop federation: the bus subscription for %r took over %ss "
                "(c.InteropHub.federation_bus_ready_timeout); its subscribers are confirmed "
                "before it is in place",
                topic,
                self.ready_timeout,
            )
        elif making.exception() is not None:
            self.log.warning(
                "Interop federation: no bus subscription for %r: %s", topic, making.exception()
            )
        if self.subscriptions.get(topic) is asyncio.current_task():
            self._send({"domain": BUS_DOMAIN, "type": BUS_INTEREST_READY_TYPE, "topic": topic})
        try:
            return await making
        except Exception:  # said above
            return None

    async def _make(self, topic: str) -> Any:
        """The NATS subscription of ``topic``, once the server has it (or the connection
        closed): see ``federation_nats.py`` for why nothing cancels that wait."""

        async def incoming(msg: Any) -> None:
            await self._incoming(topic, msg)  # (one at a time: a large one keeps its place)

        subject = subject_pattern(self.base, topic)
        return await subscribed(self._nats, subject, incoming, self.log, self._reconnects)

    @staticmethod
    async def _unsubscribe(pending: asyncio.Task[Any]) -> None:
        subscription = await pending
        if subscription is not None:
            try:
                await subscription.unsubscribe()
            except Exception:  # the connection is closing: its subscriptions go with it
                return

    async def _incoming(self, topic: str, msg: Any) -> None:
        try:
            message = await self._values.unpack(msg.data)  # (an offer: pulled in chunks)
            publish = messages.bus_publish(
                str(message["topic"]),
                message["data"],
                message.get("routing_key"),
                message.get("target_identity"),
                **{PUBLISHER_IDENTITY_KEY: dict(message["publisher"]), FOR_TOPIC_KEY: topic},
            )
        except ValueTooLarge as error:
            self.log.warning(
                "Interop federation: a message on %s not taken: %s", msg.subject, error
            )
            return
        except (ValueError, KeyError, TypeError, ProtocolError) as error:
            self.log.warning("Interop federation: bad bus message on %s: %s", msg.subject, error)
            return
        except Exception as error:  # nats-py: the publisher's hub stopped serving its value
            self.log.warning("Interop federation: a message on %s lost: %r", msg.subject, error)
            return
        self._send(publish)  # (binary values as attachments, kept for binary subscribers)

    def status(self) -> dict[str, Any]:
        """For the link's status: the topics this hub holds a NATS subscription for."""
        return {"topics": sorted(self.subscriptions)}

    def close(self) -> None:
        for pending in self.subscriptions.values():
            pending.cancel()
        self.subscriptions.clear()
