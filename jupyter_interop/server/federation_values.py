"""Values across hubs: the messages of calls, stream items and bus messages as NATS
payloads, large ones in chunks the receiver pulls (docs/FEDERATION.md, "Large values").

The link's connections to its hub negotiate binary frames, so a numpy array or a DataFrame
reaches the link as buffers (``protocol/frames.py``), never as its JSON form. A message that
fits one NATS message (the server's ``max_payload``, 1 MB by default) crosses in it, as JSON
or as one binary frame. A larger one is *offered*: the sender keeps it and answers pulls on
``ji.<space>.hub.<hub>.value.<id>``, one chunk frame (``protocol/chunks.py``) per request;
the receiver asks for at most :data:`~..protocol.limits.FEDERATION_VALUE_WINDOW` chunks at a
time and reassembles them in order. So the NATS server never holds more than a window of one
value, and a slow receiver slows the sender down instead of piling chunks up anywhere.

Both sides count what they hold against one budget per link (``federation_max_value_bytes``):
a value above it is refused with a clear error before a byte moves, and values in flight
together may not exceed it. An offer may have several receivers (a stream item goes to every
hub on its branch, a bus message to every hub subscribed to its topic): it is released once
each of them said ``done``, or when nobody pulled it for ``FEDERATION_VALUE_IDLE``; one for
receivers it does not know (a bus message) goes at once when NATS says nobody received it.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections import deque
from collections.abc import Callable
from typing import Any

import orjson

from ..protocol.chunks import (
    CHUNK_HEADER_SIZE,
    ChunkAssembler,
    ChunkTooLarge,
    ReassemblyBudget,
    chunk_count,
    chunk_views,
)
from ..protocol.frames import MAGIC, FrameError, PiecedFrame, encode_binary
from ..protocol.limits import FEDERATION_VALUE_IDLE, FEDERATION_VALUE_WINDOW, NATS_MESSAGE_ROOM
from .attachments import decode_frame

__all__ = ["NO_RESPONDERS", "ValueTooLarge", "ValueTransfers", "value_subject"]

Message = dict[str, Any]

#: the status NATS sends to a message's reply subject when no subscriber received it
NO_RESPONDERS = "503"


class ValueTooLarge(Exception):
    """A value above the link's budget (or that would take it over): nothing was sent."""


def value_subject(space: str, hub: str, transfer: str) -> str:
    """The subject on which ``hub`` serves the chunks of one value it offered."""
    return f"ji.{space}.hub.{hub}.value.{transfer}"


class _Offer:
    """A value this link keeps until its receivers have pulled it (or fell silent);
    ``receivers`` None: unknown (a bus message), kept until nobody pulls it any more."""

    def __init__(
        self, parts: list[Any], total: int, chunk_size: int, receivers: int | None
    ) -> None:
        self.total = total
        #: each chunk's header and views of the value (nothing copied until it is sent)
        self.chunks = list(chunk_views(parts, total, 1, chunk_size))
        self.receivers = receivers
        self.pulled = asyncio.Event()


class ValueTransfers:
    """Turns call messages into NATS payloads and back for one link."""

    def __init__(
        self,
        *,
        nats: Any,
        space: str,
        hub_id: str,
        budget: ReassemblyBudget,
        spawn: Callable[[Any], None],
    ) -> None:
        self.nats = nats
        self.space = space
        self.hub_id = hub_id
        #: bytes of values this link holds for others or gathers for its hub
        self.budget = budget
        self.spawn = spawn
        self._offers: dict[str, _Offer] = {}
        self._subscriptions: list[Any] = []
        #: the reply subjects of offers to unknown receivers start with this
        self._unheard = ""

    async def start(self) -> None:
        """Serve the chunks of this link's offers: one NATS subscription for all of them,
        so that offering a value is synchronous and keeps its place among the messages
        around it."""

        async def serve(msg: Any) -> None:
            await self._serve(msg.subject.rsplit(".", 1)[-1], msg)

        async def unheard(msg: Any) -> None:
            if (msg.headers or {}).get("Status") == NO_RESPONDERS:
                self._release(msg.subject.rsplit(".", 1)[-1])

        subject = value_subject(self.space, self.hub_id, "*")
        self._subscriptions.append(await self.nats.subscribe(subject, cb=serve))
        self._unheard = self.nats.new_inbox()
        self._subscriptions.append(await self.nats.subscribe(f"{self._unheard}.*", cb=unheard))

    @property
    def max_payload(self) -> int:
        return int(self.nats.max_payload) - NATS_MESSAGE_ROOM

    # ------------------------------------------------------------------- sending

    def pack(self, message: Message, receivers: int = 1, beside: Message | None = None) -> bytes:
        """The NATS payload for ``message``: itself (JSON or one binary frame) when it fits
        one NATS message, else an offer ``{"value": {hub, id, size, chunk}, **beside}``
        whose chunks this link serves until its ``receivers`` pulled them (``beside``: what
        the receiver needs to know even when it cannot take the value). Raises
        :class:`ValueTooLarge`."""
        return self._pack(message, receivers, beside)[0]

    def pack_for_anyone(self, message: Message) -> tuple[bytes, str]:
        """:meth:`pack` for receivers this link does not know (a bus message), and the reply
        subject to publish it with ("" unless offered): when nobody receives it, NATS says so
        there (no responders) and the offer goes at once, else when nobody pulls any more."""
        payload, transfer = self._pack(message, None)
        return payload, f"{self._unheard}.{transfer}" if transfer else ""

    def _pack(
        self, message: Message, receivers: int | None, beside: Message | None = None
    ) -> tuple[bytes, str]:
        frame = encode_binary(message)
        total = len(frame)
        if total <= self.max_payload:
            return (b"".join(frame.parts) if isinstance(frame, PiecedFrame) else frame), ""
        if total > self.budget.limit or not self.budget.take(total):
            raise ValueTooLarge(self._too_large(total))
        parts = frame.parts if isinstance(frame, PiecedFrame) else [frame]
        chunk_size = self.max_payload - CHUNK_HEADER_SIZE
        transfer = secrets.token_hex(8)
        self._offers[transfer] = _Offer(parts, total, chunk_size, receivers)
        self.spawn(self._expire(transfer))
        value = {"hub": self.hub_id, "id": transfer, "size": total, "chunk": chunk_size}
        return orjson.dumps({"value": value, **(beside or {})}), transfer

    async def _serve(self, transfer: str, msg: Any) -> None:
        offer = self._offers.get(transfer)
        if offer is None:
            return
        offer.pulled.set()
        if msg.data == b"done" or not msg.reply:
            if offer.receivers is not None:
                offer.receivers -= 1
                if offer.receivers <= 0:
                    self._release(transfer)
            return
        try:
            head, views = offer.chunks[int(msg.data)]
        except (ValueError, IndexError):
            await msg.respond(b"")
            return
        await msg.respond(b"".join([head, *views]))

    async def _expire(self, transfer: str) -> None:
        """Release an offer whose receiver stopped pulling (it died, or gave up)."""
        while True:
            offer = self._offers.get(transfer)
            if offer is None:
                return
            offer.pulled.clear()
            try:
                await asyncio.wait_for(offer.pulled.wait(), FEDERATION_VALUE_IDLE)
            except asyncio.TimeoutError:
                self._release(transfer)
                return

    def _release(self, transfer: str) -> None:
        offer = self._offers.pop(transfer, None)
        if offer is None:
            return
        self.budget.give_back(offer.total)
        offer.chunks.clear()

    # ----------------------------------------------------------------- receiving

    async def unpack(self, payload: bytes) -> Message:
        """The message a NATS payload of :meth:`pack` carries, pulling an offered value
        (raises :class:`ValueTooLarge`, or ValueError for a payload that is no message)."""
        message = self.read(payload)
        if message is not None:
            return message
        return await self._pull(orjson.loads(payload)["value"])

    def read(self, payload: bytes) -> Message | None:
        """The message a NATS payload of :meth:`pack` carries, or None when its value is
        offered (:meth:`unpack` pulls it); ValueError for a payload that is no message."""
        if payload[:4] == MAGIC:
            return decode_frame(payload)
        message = orjson.loads(payload)
        if not isinstance(message, dict):
            raise ValueError("not a message")
        value = message.get("value")  # (no other message has a "value" object)
        return None if isinstance(value, dict) else message

    async def _pull(self, value: Message) -> Message:
        size, chunk, hub = int(value["size"]), int(value["chunk"]), str(value["hub"])
        subject = value_subject(self.space, hub, str(value["id"]))
        try:
            if size > self.budget.limit:
                raise ValueTooLarge(self._too_large(size))
            whole = await self._gather(subject, size, chunk)
        finally:
            with contextlib.suppress(Exception):
                await self.nats.publish(subject, b"done")
        if whole[:1] == b"{":  # a large message without binary values
            loaded = orjson.loads(bytes(whole))
            if not isinstance(loaded, dict):
                raise ValueError("not a message")
            return loaded
        return decode_frame(whole)

    async def _gather(self, subject: str, size: int, chunk: int) -> Any:
        """The chunks of one value, asked for a window at a time and joined in order into
        one buffer (an anonymous mapping, ``protocol/chunks.py``)."""
        assembler = ChunkAssembler(max_bytes=self.budget.limit, budget=self.budget)
        count = chunk_count(size, chunk)
        asked: deque[asyncio.Future[Any]] = deque()
        following = 0
        try:
            for _ in range(count):
                while following < count and len(asked) < FEDERATION_VALUE_WINDOW:
                    request = self.nats.request(
                        subject, str(following).encode(), timeout=FEDERATION_VALUE_IDLE
                    )
                    asked.append(asyncio.ensure_future(request))
                    following += 1
                reply = await asked.popleft()
                try:
                    whole = assembler.feed(reply.data)
                except ChunkTooLarge as error:
                    raise ValueTooLarge(self._too_large(size, str(error))) from None
                except FrameError as error:
                    raise ValueError(f"a value from another hub arrived broken: {error}") from None
                if whole is not None:
                    return whole
            raise ValueError("a value from another hub ended early")
        finally:
            for pending in asked:
                pending.cancel()
            assembler.clear()

    def _too_large(self, size: int, why: str = "") -> str:
        return (
            f"A value of {size} bytes cannot cross hubs: the federation link holds at most "
            f"{self.budget.limit} bytes of values at a time "
            f"(c.InteropHub.federation_max_value_bytes){f': {why}' if why else ''}"
        )

    def status(self) -> dict[str, int]:
        """For the link's status: bytes of values held (offered and gathered), and the
        offers waiting to be pulled."""
        return {"held": self.budget.held, "offers": len(self._offers)}

    def close(self) -> None:
        for transfer in list(self._offers):
            self._release(transfer)
        for subscription in self._subscriptions:
            self.spawn(_unsubscribe(subscription))
        self._subscriptions.clear()


async def _unsubscribe(subscription: Any) -> None:
    with contextlib.suppress(Exception):
        await subscription.unsubscribe()
