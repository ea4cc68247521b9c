"""What the gateway service needs of a connection (``server/service.py``).

Two kinds of connection satisfy it: a WebSocket (``server/gateway.py:GatewaySocket``) and the
federation link's connection in the same process (``server/inprocess.py``). The service
queues what the core returns on the connection's outbox and asks it to write; how the
frames leave (a socket's stream, a hand-over in memory) is the connection's own business.
"""

from __future__ import annotations

from typing import Protocol

from ..hub.connection import PeerConn
from .outbox import Outbox

__all__ = ["GatewayConnection"]


class GatewayConnection(Protocol):
    """One connection of a hub: its peer for the core, its outbox, and how it writes."""

    conn: PeerConn
    outbox: Outbox
    #: closed, or closing: nothing more is written to it nor taken from it
    finished: bool

    def kick(self) -> None:
        """Write what the outbox holds, unless the connection is still busy with the last
        write (then it writes again when that one is done)."""

    def write_if_idle(self) -> bool:
        """Write what is queued now if the connection is not busy (True), else nothing."""

    def close_after_flush(self, code: int, reason: str) -> None:
        """Close once what is queued (an error reply, typically) has been written."""

    def abort_slow_consumer(self) -> None:
        """The outbox overflowed: close at once and release the peer for the others."""

    def finish_connection(self, code: int, reason: str) -> None:
        """Close with ``code``/``reason`` and refuse anything further."""
