"""Who a connection is, as far as the server can tell: kernel identity, not claims.

A kernel's ``hello`` may claim a kernel id; the gateway asks the server which notebook that
kernel serves (``KernelResolver``) and hands the hub what it verified, never what was claimed
(docs/ARCHITECTURE.md, "Identity belongs to the hub").
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from ..protocol.wire import EXTENSIONS_KEY, GLOBAL_DOMAIN, HELLO_TYPE

__all__ = [
    "SERVER_ASSIGNED_IDENTITY",
    "KernelIdentity",
    "KernelResolver",
    "claimed_kernel_id",
    "without_claimed_identity",
]

Message = dict[str, Any]


@dataclass(frozen=True)
class KernelIdentity:
    """What the server knows about a kernel a connection says it runs in."""

    kernel_id: str
    notebook_path: str | None = None


#: ``async resolver(kernel_id) -> KernelIdentity | None`` (None: not a kernel of this server)
KernelResolver = Callable[[str], Awaitable["KernelIdentity | None"]]


def claimed_kernel_id(message: Message) -> str | None:
    """The kernel id a ``hello`` claims (``extensions.jupyter_interop.kernel_id`` first)."""
    if message.get("type") != HELLO_TYPE or message.get("domain", GLOBAL_DOMAIN) != GLOBAL_DOMAIN:
        return None
    claimed: Any = None
    extensions = message.get("extensions")
    if isinstance(extensions, dict):
        ours = extensions.get(EXTENSIONS_KEY)
        if isinstance(ours, dict):
            claimed = ours.get("kernel_id")
    if not claimed:
        identity = message.get("identity")
        if isinstance(identity, dict):
            claimed = identity.get("kernelId")
    return claimed if isinstance(claimed, str) and claimed else None


#: identity fields only the hub may set (from the server's records, never from the client)
SERVER_ASSIGNED_IDENTITY = ("kernelId", "notebookPath")


def without_claimed_identity(message: Message) -> Message:
    """The ``hello`` with client-claimed kernel id / notebook path removed from its identity.

    Identity is established by the hub (docs/ARCHITECTURE.md,
    "Identity belongs to the hub"): the verified values are put on the
    PeerConn by the transport and the core adds them to the resolved identity.
    """
    identity = message.get("identity")
    if isinstance(identity, dict) and any(k in identity for k in SERVER_ASSIGNED_IDENTITY):
        identity = {k: v for k, v in identity.items() if k not in SERVER_ASSIGNED_IDENTITY}
        return {**message, "identity": identity}
    return message
