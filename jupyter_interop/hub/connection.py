"""What the hub core knows about one transport connection.

The transport (tornado handler, or a test) creates one ``PeerConn`` per socket and passes it
to ``InteropHub.open/handle/close``. The hub never touches sockets: it returns the messages to
send as ``(connection, message)`` pairs, and the transport writes them.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

_ids = itertools.count(1)


def _next_id() -> str:
    return f"c{next(_ids)}"


@dataclass(eq=False, slots=True)
class PeerConn:
    """One transport connection as seen by the hub (a :class:`~.peers.Peer` once its ``hello``
    passed); the client's own ``client/connection.py:Connection`` is the other end.

    ``trusted`` is set by the transport when Jupyter's own auth accepted the WebSocket upgrade;
    such a connection passes ``hello`` whatever authentication it carries. ``notebook_path`` and
    ``kernel_id`` are filled by the transport from the server's session manager before ``hello``
    is handled, so that identity is established by the hub and not claimed by the client.
    """

    id: str = field(default_factory=_next_id)
    trusted: bool = False
    remote_ip: str = "127.0.0.1"
    user: str | None = None
    kernel_id: str | None = None
    notebook_path: str | None = None
    attrs: dict[str, Any] = field(default_factory=dict)
    #: set by the hub when the transport must close this connection after sending what the
    #: hub returned (a failed or missing ``hello``): nothing else is processed from it.
    close_reason: str | None = None

    def __hash__(self) -> int:
        return hash(self.id)

    def __repr__(self) -> str:
        return f"<PeerConn {self.id}>"


Outgoing = list[tuple[PeerConn, dict[str, Any]]]
