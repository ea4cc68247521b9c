"""Tornado handlers of the server extension: the GW3 gateway and the read-only JSON views.

Authentication follows jupyter_server's kernel channel handler (see the Jupyter notes): an
upgrade that Jupyter's own auth accepts (token, or login cookie with a matching Origin) and
that the authorizer allows on the ``interop`` resource is *trusted* and passes ``hello``
whatever it carries. Any other upgrade is allowed but *untrusted*: its ``hello`` must present
the interop token, and the hub refuses everything before that. A login cookie with a foreign
Origin is refused with 403 before the upgrade, so a web page the user happens to visit cannot
ride on the browser's Jupyter session.
"""

from __future__ import annotations

from typing import Any

from jupyter_server.auth.decorator import allow_unauthenticated, authorized
from jupyter_server.base.handlers import APIHandler, JupyterHandler
from jupyter_server.base.websocket import WebSocketMixin
from jupyter_server.utils import ensure_async
from tornado import web

from ..protocol import encode
from .gateway import GatewaySocket
from .service import GatewayService
from .views import VIEW_NAMES, render_view

__all__ = ["AUTH_RESOURCE", "InteropGatewayHandler", "InteropViewHandler"]

#: resource name for jupyter_server authorizers
AUTH_RESOURCE = "interop"


class InteropGatewayHandler(WebSocketMixin, GatewaySocket, JupyterHandler):
    """``{base_url}interop/gateway``: the GW3 WebSocket inside the Jupyter server."""

    auth_resource = AUTH_RESOURCE

    def set_default_headers(self) -> None:
        """No CSP and friends on a WebSocket upgrade (as the kernel channel handler does)."""

    def check_origin(self, origin: str | None = None) -> bool:
        """Jupyter's Origin check, for upgrades that Jupyter's auth accepted.

        An upgrade that carries no valid Jupyter credentials is not checked: nothing ambient
        authenticates it, so it is untrusted and only the interop token in ``hello`` lets it
        in, whatever page it comes from (io.Connect web apps on other origins need that).
        """
        if self.current_user is None:
            return True
        return bool(super().check_origin(origin))

    @allow_unauthenticated  # unauthenticated upgrades are allowed but untrusted (see above)
    async def get(self, *args: Any, **kwargs: Any) -> None:
        user = self.current_user
        if user is not None:
            allowed = await ensure_async(
                self.authorizer.is_authorized(self, user, "execute", AUTH_RESOURCE)
            )
            if not allowed:
                raise web.HTTPError(403, "Not authorized to use the interop hub")
            self.trusted = True
        await super().get(*args, **kwargs)


class InteropViewHandler(APIHandler):
    """``{base_url}interop/api/<view>``: JSON snapshots of the hub for viewers and tests."""

    auth_resource = AUTH_RESOURCE

    def initialize(
        self, service: GatewayService, extra_status: dict[str, Any] | None = None
    ) -> None:
        self.service = service
        self.extra_status = extra_status if extra_status is not None else {}

    @web.authenticated
    @authorized
    async def get(self, view: str) -> None:
        if view not in VIEW_NAMES:
            raise web.HTTPError(404, f"No interop view {view!r}")
        self.set_header("Content-Type", "application/json")
        self.set_header("Cache-Control", "no-store")
        await self.finish(encode(render_view(self.service, view, self.extra_status)))
