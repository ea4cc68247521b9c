"""Waiting for the NATS server to have what a federation link wrote (docs/FEDERATION.md,
"Failures"): the bus and streams across hubs hold a subscriber's confirmation until the
server has the link's NATS subscription, so that nothing published after it is lost.

Two details of nats-py (2.16) decide how: a flush writes its PING ahead of the commands still
queued, so only the second PONG is sure to come after a SUB just made; and a flush that gives
up (its timeout, or its caller's) leaves its PONG's future cancelled, so the PONG that comes
after all makes nats-py's reading of the connection fail, and nothing crosses any more. So
a running link waits with :data:`~..protocol.limits.FEDERATION_FLUSH_TIMEOUT`, longer than
nats-py takes to find a silent server stale, and never cancels a flush: a caller that bounds
its wait (``federation_bus.py``) stops waiting for the task, not the task. Only the link's
start waits a short time, as a link that fails to start closes its connection.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from ..protocol.limits import FEDERATION_FLUSH_TIMEOUT

__all__ = ["Reconnects", "server_caught_up", "subscribed"]


class Reconnects:
    """The link's NATS reconnections, for a wait that starts over on the new connection:
    nats-py drops the PONGs it waits for when it reconnects without answering them, so a
    flush under way then would wait out its whole timeout (nats-py makes the subscriptions
    again on the new connection, before it says it is back)."""

    def __init__(self) -> None:
        self._next = asyncio.Event()

    def happened(self) -> None:
        """The link's connection is back (nats-py's ``reconnected_cb``)."""
        self._next.set()
        self._next = asyncio.Event()

    def next(self) -> asyncio.Event:
        """Set at the next reconnection."""
        return self._next


async def server_caught_up(
    nats: Any, timeout: float = FEDERATION_FLUSH_TIMEOUT, reconnects: Reconnects | None = None
) -> None:
    """Return once the NATS server has read everything ``nats`` wrote or queued before:
    subscriptions, and the server's answer to them (a denial) has arrived; with
    ``reconnects``, once the server it reconnected to has. Raises what nats-py's flush
    raises (the connection closed, or no PONG within ``timeout``)."""
    while True:
        reconnected = reconnects.next() if reconnects is not None else asyncio.Event()
        flushes = asyncio.ensure_future(_flushes(nats, timeout))
        flushes.add_done_callback(_retrieve)  # (never cancelled: it may run out unawaited)
        back = asyncio.ensure_future(reconnected.wait())
        try:
            await asyncio.wait({flushes, back}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            back.cancel()
        if flushes.done():
            return flushes.result()


async def _flushes(nats: Any, timeout: float) -> None:
    for _ in range(2):  # the first PING may overtake the commands still queued
        await nats.flush(timeout=timeout)


def _retrieve(task: asyncio.Future[None]) -> None:
    if not task.cancelled():
        task.exception()  # (what it raised is the awaiting caller's, if any)


async def subscribed(
    nats: Any,
    subject: str,
    cb: Callable[[Any], Awaitable[None]],
    log: logging.Logger,
    reconnects: Reconnects | None = None,
) -> Any:
    """nats-py's subscription to ``subject``, returned once the server has it (after a
    reconnection, the new server); when the connection closes first, returned anyway with a
    log line (the subscription goes with the connection). Raises what nats-py's
    ``subscribe`` raises (a closed connection)."""
    subscription = await nats.subscribe(subject, cb=cb)
    try:
        await server_caught_up(nats, reconnects=reconnects)
    except Exception as error:  # the connection closed: the subscription goes with it
        log.warning("Interop federation: the NATS subscription to %s: %s", subject, error)
    return subscription
