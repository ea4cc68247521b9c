"""The calls this hub's proxies send to other hubs, and their replies (docs/FEDERATION.md,
"Methods across hubs").

A call is one NATS publish to the owning hub's ``invoke`` subject, with a reply subject of
this link's own (``<inbox>.<n>``). Every reply comes through one callback subscription on
``<inbox>.*`` and is handed to its call's ``answer`` there and then. This is nats-py's
``request`` without what that costs per call (a future, ``wait_for`` and its timer, a loop
turn to wake the caller): the calls' deadlines are one table in the order they were sent,
swept at every heartbeat.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from .federation_values import NO_RESPONDERS, ValueTooLarge, ValueTransfers

__all__ = ["CallReplies"]

Message = dict[str, Any]
#: what a call's reply is handed to: ``{"result": ...}`` or ``{"error": {...}}``
Answer = Callable[[Message], Awaitable[None]]


class CallReplies:
    """Sends calls to other hubs and routes each reply to its call's ``answer``."""

    def __init__(
        self,
        nats: Any,
        values: ValueTransfers,
        spawn: Callable[[Any], None],
        timeout: float,
    ) -> None:
        self.nats = nats
        self.values = values
        self.spawn = spawn
        self.timeout = timeout
        #: calls waiting for their reply, in the order they were sent: token -> (hub,
        #: deadline, answer, the caller's set of waiting tokens)
        self._waiting: dict[str, tuple[str, float, Answer, set[str]]] = {}
        self._tokens = itertools.count(1)
        self._inbox = ""

    async def start(self) -> None:
        self._inbox = self.nats.new_inbox()
        await self.nats.subscribe(f"{self._inbox}.*", cb=self._on_reply)

    async def call(
        self, hub: str, subject: str, request: Message, answer: Answer, waiting: set[str]
    ) -> None:
        """Send ``request`` to ``hub`` on ``subject``; ``answer`` gets its reply (or why
        there is none) once. ``waiting`` holds the call's token until then (the caller's
        calls, for :meth:`forget`)."""
        try:
            payload = self.values.pack(request)
        except ValueTooLarge as error:
            await answer({"error": {"reason": str(error)}})
            return
        token = str(next(self._tokens))
        self._waiting[token] = (hub, time.monotonic() + self.timeout, answer, waiting)
        waiting.add(token)
        try:
            await self.nats.publish(subject, payload, reply=f"{self._inbox}.{token}")
        except Exception as error:  # nats-py: closed, buffer full, too large
            if self._take(token) is not None:
                await answer(_failed(hub, repr(error)))

    def forget(self, tokens: Iterable[str]) -> None:
        """Their caller left: their replies, if any come, are dropped."""
        for token in tokens:
            self._waiting.pop(token, None)

    async def expire(self, now: float) -> None:
        """Fail the calls that waited longer than the timeout (the oldest come first)."""
        while self._waiting:
            token = next(iter(self._waiting))
            hub, deadline = self._waiting[token][:2]
            if deadline > now:
                return
            call = self._take(token)
            if call is not None:
                await call[1](_failed(hub, f"no reply in {self.timeout:g} s"))

    def close(self) -> None:
        self._waiting.clear()

    def _take(self, token: str) -> tuple[str, Answer] | None:
        """The hub and answer of a call still waiting, which no longer waits."""
        call = self._waiting.pop(token, None)
        if call is None:
            return None
        hub, _, answer, waiting = call
        waiting.discard(token)
        return hub, answer

    async def _on_reply(self, msg: Any) -> None:
        call = self._take(msg.subject.rsplit(".", 1)[-1])
        if call is None:
            return
        hub, answer = call
        if not msg.data and (msg.headers or {}).get("Status") == NO_RESPONDERS:
            await answer(_failed(hub, "nobody serves its calls (no responders)"))
            return
        try:
            reply = self.values.read(msg.data)
        except Exception as error:
            await answer(_failed(hub, repr(error)))
            return
        if reply is not None:
            await answer(reply)
        else:  # a large value, offered: pulled in chunks, beside the other replies
            self.spawn(self._pull(hub, msg.data, answer))

    async def _pull(self, hub: str, payload: bytes, answer: Answer) -> None:
        try:
            reply = await self.values.unpack(payload)
        except ValueTooLarge as error:
            reply = {"error": {"reason": str(error)}}
        except Exception as error:
            reply = _failed(hub, repr(error))
        await answer(reply)


def _failed(hub: str, why: str) -> Message:
    return {"error": {"reason": f"The call to hub {hub} failed: {why}"}}
