"""The read-only JSON views served under ``interop/api/`` by the extension and the standalone hub.

One function renders them so both transports show the same thing; the views themselves come
from the hub core (``hub.views``) plus the transport's counters for ``status``.
"""

from __future__ import annotations

from typing import Any

from .federation import FederationState
from .service import GatewayService

__all__ = ["VIEW_NAMES", "VIEW_PATTERN", "render_view"]

VIEW_NAMES = ("peers", "methods", "streams", "contexts", "channels", "status", "federation")
#: URL pattern (relative to the base URL) of the views
VIEW_PATTERN = rf"interop/api/({'|'.join(VIEW_NAMES)})"


def render_view(
    service: GatewayService,
    view: str,
    extra_status: dict[str, Any],
    federation: FederationState | None = None,
) -> Any:
    """The JSON-able payload of one view (``view`` must be in :data:`VIEW_NAMES`)."""
    views = service.hub.views
    if view == "federation":
        return federation.status() if federation is not None else {"enabled": False}
    if view == "status":
        return {**views.status(), **service.status(), **extra_status}
    if view == "peers":
        return views.peers()
    if view == "methods":
        return views.methods()
    if view == "streams":
        return views.streams()
    if view == "contexts":
        return views.contexts()
    if view == "channels":
        return views.channels()
    raise KeyError(view)
