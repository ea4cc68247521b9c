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
from .apps import AppFailure, NotebookApps
from .federation import FederationState
from .gateway import GatewaySocket
from .service import GatewayService
from .views import VIEW_NAMES, render_view

__all__ = [
    "APPS_HANDLERS",
    "AUTH_RESOURCE",
    "InteropAppOutputHandler",
    "InteropAppRunningHandler",
    "InteropAppStartHandler",
    "InteropAppsHandler",
    "InteropGatewayHandler",
    "InteropViewHandler",
]

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
        self,
        service: GatewayService,
        extra_status: dict[str, Any] | None = None,
        federation: FederationState | None = None,
    ) -> None:
        self.service = service
        self.extra_status = extra_status if extra_status is not None else {}
        self.federation = federation

    @web.authenticated
    @authorized
    async def get(self, view: str) -> None:
        if view not in VIEW_NAMES:
            raise web.HTTPError(404, f"No interop view {view!r}")
        self.set_header("Content-Type", "application/json")
        self.set_header("Cache-Control", "no-store")
        await self.finish(
            encode(render_view(self.service, view, self.extra_status, self.federation))
        )


# ---------------------------------------------------------------------- the app directory
# docs/INTENTS.md, "Notebooks that start on demand"; the work is in server/apps.py.

#: a kernel id in a URL (jupyter_server's are UUIDs)
_KERNEL_ID = r"([A-Za-z0-9][A-Za-z0-9_-]{0,127})"
#: HTTP status of a start that failed, by FDC3 error (anything else: 500)
_FAILURE_STATUS = {"NoAppsFound": 404, "TargetAppUnavailable": 404, "AppTimeout": 504}


class _AppsHandler(APIHandler):
    auth_resource = AUTH_RESOURCE

    def initialize(self, apps: NotebookApps) -> None:
        self.apps = apps

    async def reply(self, payload: Any, status: int = 200) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "application/json")
        self.set_header("Cache-Control", "no-store")
        await self.finish(encode(payload))


class InteropAppsHandler(_AppsHandler):
    """``GET {base_url}interop/api/apps``: the notebooks of the directory, with their
    headless kernels."""

    @web.authenticated
    @authorized
    async def get(self) -> None:
        await self.reply(await self.apps.listing())


class InteropAppStartHandler(_AppsHandler):
    """``POST {base_url}interop/api/apps/start`` ``{"path": ...}``: start a notebook
    headless; the reply is its running entry (its cells still run: see ``output``)."""

    @web.authenticated
    @authorized
    async def post(self) -> None:
        try:
            body = self.get_json_body()
        except web.HTTPError:
            raise
        path = body.get("path") if isinstance(body, dict) else None
        if not isinstance(path, str) or not path:
            raise web.HTTPError(400, 'The body must be {"path": "<notebook path>"}')
        try:
            running = await self.apps.start(path=path, wait=False)
        except AppFailure as failure:
            status = _FAILURE_STATUS.get(failure.fdc3_error, 500)
            await self.reply({**failure.as_json(), "path": path}, status)
            return
        await self.reply(running.as_json())


class InteropAppRunningHandler(_AppsHandler):
    """``DELETE {base_url}interop/api/apps/running/<kernel_id>``: stop a headless notebook."""

    @web.authenticated
    @authorized
    async def delete(self, kernel_id: str) -> None:
        stopped = await self.apps.stop(kernel_id)
        if stopped is None:
            raise web.HTTPError(404, f"No notebook app runs in kernel {kernel_id}")
        await self.reply(stopped.as_json())


class InteropAppOutputHandler(_AppsHandler):
    """``GET {base_url}interop/api/apps/running/<kernel_id>/output``: the cells a headless
    notebook ran, their outputs and the traceback of a failed start."""

    @web.authenticated
    @authorized
    async def get(self, kernel_id: str) -> None:
        running = self.apps.find(kernel_id)
        if running is None:
            raise web.HTTPError(404, f"No notebook app ran in kernel {kernel_id}")
        await self.reply(running.output())


#: URL patterns (relative to the base URL) and handlers of the app directory
APPS_HANDLERS: list[tuple[str, type[_AppsHandler]]] = [
    (r"interop/api/apps", InteropAppsHandler),
    (r"interop/api/apps/start", InteropAppStartHandler),
    (rf"interop/api/apps/running/{_KERNEL_ID}", InteropAppRunningHandler),
    (rf"interop/api/apps/running/{_KERNEL_ID}/output", InteropAppOutputHandler),
]
