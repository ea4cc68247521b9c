"""What the gateway accepted in ``welcome``, and what the client does instead where it did not.

The client asks for its extensions in ``hello`` (``extensions.jupyter_interop``); our hub
answers with the ones it accepts, a plain GW3 gateway (Glue42's, io.Connect Desktop's) with
none. Each extension the gateway did not accept has a documented fallback to plain GW3
(docs/GATEWAYS.md); :func:`connection_status` lists them for ``io.status()`` and
``%interop status``.
"""

from __future__ import annotations

from typing import Any

from ..protocol.wire import (
    BATCH_EXTENSION,
    BINARY_EXTENSION,
    CHANNELS_EXTENSION,
    NOTICES_EXTENSION,
    READ_ONLY_EXTENSION,
    RUNS_EXTENSION,
    SHM_EXTENSION,
    VERSIONS_EXTENSION,
)

__all__ = ["FALLBACKS", "connection_status", "gateway_kind"]

#: extension -> what the client does when the gateway did not accept it
FALLBACKS: dict[str, str] = {
    BINARY_EXTENSION: (
        "numpy arrays and DataFrames travel in their JSON form "
        "(jupyter_interop/protocol/frames.py) and arrive as such"
    ),
    SHM_EXTENSION: "large values travel through the socket, not through shared memory",
    BATCH_EXTENSION: "one WebSocket frame per message",
    RUNS_EXTENSION: "one publish message per stream item",
    CHANNELS_EXTENSION: (
        "the gateway does not track channel membership: channels.members() lists this "
        "client only and channels.move() is not offered"
    ),
    NOTICES_EXTENSION: "events the gateway drops for a slow reader are not reported",
    VERSIONS_EXTENSION: "context versions are not known (meta.version is None)",
    READ_ONLY_EXTENSION: (
        "contexts cannot be made read-only: contexts.create(read_only=True) and "
        "contexts.set_read_only() raise ContextError"
    ),
    "kernel_id": (
        "the gateway does not resolve the notebook of a kernel: application is the name "
        "this client claims"
    ),
}


def gateway_kind(welcome: dict[str, Any]) -> str:
    """``"jupyter_interop hub"`` when the ``welcome`` is our hub's, else ``"GW3 gateway"``."""
    options = welcome.get("options")
    info = options.get("info") if isinstance(options, dict) else None
    if isinstance(info, dict) and info.get("hub") == "jupyter_interop":
        return "jupyter_interop hub"
    return "GW3 gateway"


def _kernel_resolved(requested: dict[str, Any], welcome: dict[str, Any]) -> bool:
    """Only our hub maps a kernel to its notebook (a plain gateway may echo ``kernelId`` in
    the resolved identity, as it echoes any claimed field, without knowing what it is)."""
    return bool(requested.get("kernel_id")) and gateway_kind(welcome) == "jupyter_interop hub"


def connection_status(
    requested: dict[str, Any], accepted: dict[str, Any], welcome: dict[str, Any]
) -> dict[str, Any]:
    """The gateway kind, the extensions in use, and the fallback of each one requested but
    not accepted (extension -> what happens instead)."""
    active = sorted(k for k, v in accepted.items() if v)
    if _kernel_resolved(requested, welcome):
        active = sorted({*active, "kernel_id"})
    fallbacks = {
        name: FALLBACKS.get(name, "not used")
        for name, wanted in requested.items()
        if wanted and name not in active
    }
    return {"gateway": gateway_kind(welcome), "extensions": active, "fallbacks": fallbacks}
