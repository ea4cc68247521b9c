"""The jupyter_server extension that hosts the interop hub.

See docs/ARCHITECTURE.md, "Where the hub runs" and "Discovery".

Lifecycle (see the Jupyter notes): at load (``initialize_settings``) the event loop is not
running and the port is not final, so the hub, the gateway and a best-guess URL are set up
there, early enough for kernels started first to inherit ``JUPYTER_INTEROP_URL`` and
``JUPYTER_INTEROP_TOKEN``. ``_start_jupyter_server_extension`` runs once the server listens
and fixes the URL from ``serverapp.connection_url``. ``stop_extension`` runs before kernels
are stopped, may run twice and may run without the start hook (pytest-jupyter does that).
"""

from __future__ import annotations

import os
from typing import Any

from jupyter_core.paths import jupyter_data_dir
from jupyter_server.extension.application import ExtensionApp
from jupyter_server.utils import url_path_join
from tornado import web
from tornado.httputil import url_concat
from traitlets import default

from ..hub.core import InteropHub
from .apps import NotebookApps
from .apps_peer import AppsPeer
from .dashboard import DASHBOARD_PATH, InteropDashboardHandler
from .durable import DurableAcks
from .exitguard import RuntimeFileGuard
from .federation import FederationLink, FederationState, join_federation
from .federation_access import public_url
from .handlers import APPS_HANDLERS, InteropGatewayHandler, InteropViewHandler
from .identity import KernelIdentity
from .runtime import GATEWAY_PATH, EnvironmentExport, RuntimeFile, http_to_ws
from .service import GOING_AWAY_CLOSE_CODE
from .settings import GatewaySettings
from .views import VIEW_PATTERN

__all__ = ["InteropExtension"]


class InteropExtension(GatewaySettings, ExtensionApp):
    """io.Connect (GW3) interop hub inside the Jupyter server."""

    name = "jupyter_interop"
    description = "io.Connect (Glue42) interop hub for notebooks, scripts and io.Connect apps"
    load_other_extensions = True
    classes = [InteropHub, NotebookApps]

    @default("context_store_path")
    def _default_context_store_path(self) -> str:
        return os.path.join(jupyter_data_dir(), "interop", "contexts.sqlite")

    # ------------------------------------------------------------------ load

    def initialize_settings(self) -> None:
        """Create the hub and the gateway; export a best-guess URL for early kernels."""
        self._env = EnvironmentExport()
        self._runtime = RuntimeFile("server")
        # the server may still exit from its start-up (a port in use) without stopping us
        self._runtime_guard = RuntimeFileGuard(self._runtime).arm()
        self._stopped = False
        self.store = self.open_context_store()
        self.hub = InteropHub(
            parent=self,
            token=self.token,
            store=self.store,
            shared_memory=self.open_shared_memory(),
        )
        self.service = self.gateway_service(self.hub, self.log, resolver=self._resolve_kernel)
        self._acks: DurableAcks | None = None
        if self.store is not None:
            assert self.serverapp is not None  # its io_loop exists before extensions load
            self._acks = DurableAcks(
                self.store, self.hub, self.service, self.serverapp.io_loop.add_callback
            )
            self._acks.attach()
        self.status_extra: dict[str, Any] = {"kind": "server"}
        assert self.serverapp is not None
        self.apps = NotebookApps(
            parent=self,
            root_dir=self.serverapp.root_dir,
            kernel_manager=self.serverapp.kernel_manager,
            hub_views=self.hub.views,
        )
        self._apps_peer: AppsPeer | None = None
        self._federation: FederationLink | None = None
        self.federation_state = FederationState(self.hub)
        self._publish(self._gateway_url())

    def initialize_handlers(self) -> None:
        self.handlers.extend(
            [
                (GATEWAY_PATH, InteropGatewayHandler, {"service": self.service}),
                (
                    VIEW_PATTERN,
                    InteropViewHandler,
                    {
                        "service": self.service,
                        "extra_status": self.status_extra,
                        "federation": self.federation_state,
                    },
                ),
                (DASHBOARD_PATH, InteropDashboardHandler),
                *((pattern, handler, {"apps": self.apps}) for pattern, handler in APPS_HANDLERS),
            ]
        )

    # ------------------------------------------------------------------ start

    async def _start_jupyter_server_extension(self, serverapp: Any) -> None:
        """The server listens now: its connection URL (and port) are final."""
        if not getattr(self, "_stopped", True):
            self._publish(self._gateway_url())
            self.log.info("Interop dashboard: %s", self._dashboard_url())
            # the app directory's methods, served by a peer of this hub (server/apps_peer.py)
            self._apps_peer = AppsPeer(self.apps, self._gateway_url(), self.token, self.log)
            self._apps_peer.start()
            await self._join_federation()

    async def _join_federation(self) -> None:
        """Join the federation when ``c.InteropHub.federation_url`` is set (docs/FEDERATION.md).
        A federation that cannot be reached leaves this hub serving its own peers."""
        try:
            self._federation = await join_federation(self.federation_state, self.service, self.log)
        except Exception as error:
            self.log.error(
                "Interop federation at %s refused or unreachable, serving local peers only: %s",
                public_url(self.hub.federation_url),
                error,
            )

    def _dashboard_url(self) -> str:
        """The dashboard's http URL, with the server's token when it has one (to open as is)."""
        assert self.serverapp is not None
        url = url_path_join(self.serverapp.connection_url, "interop/")
        token = self.serverapp.identity_provider.token
        return url_concat(url, {"token": token}) if token else url

    def _gateway_url(self) -> str:
        assert self.serverapp is not None
        base = self.serverapp.connection_url  # includes base_url; port final only after start
        return http_to_ws(url_path_join(base, GATEWAY_PATH))

    def _publish(self, url: str) -> None:
        assert self.serverapp is not None
        self.status_extra["url"] = url
        self._env.set(url, self.token)
        self._runtime.write(
            url,
            self.token,
            server_url=self.serverapp.connection_url,
            root_dir=os.path.abspath(self.serverapp.root_dir),
        )
        self.log.info("Interop hub at %s (runtime file %s)", url, self._runtime.path)

    async def _resolve_kernel(self, kernel_id: str) -> KernelIdentity | None:
        """Map a claimed kernel id to the notebook it runs, through the server's own records."""
        assert self.serverapp is not None
        if kernel_id not in self.serverapp.kernel_manager:
            return None
        path = self.apps.notebook_of(kernel_id)  # a notebook started headless
        if path is not None:
            return KernelIdentity(kernel_id=kernel_id, notebook_path=path)
        try:
            session = await self.serverapp.session_manager.get_session(kernel_id=kernel_id)
        except web.HTTPError:
            pass  # a kernel without a session (started through the kernels API)
        else:
            path = session.get("path") or None
        return KernelIdentity(kernel_id=kernel_id, notebook_path=path)

    # ------------------------------------------------------------------ stop

    async def stop_extension(self) -> None:
        """Close every socket (1001), flush and close the store, remove the runtime file and
        restore the environment. Idempotent; safe when only load ran, or not even that."""
        if getattr(self, "_stopped", True):
            return
        self._stopped = True
        if self._federation is not None:
            await self._federation.close()  # first: the other hubs drop this hub's peers now
        if self._apps_peer is not None:
            await self._apps_peer.close()
        await self.apps.close()
        try:
            self._runtime_guard.remove()  # first: nobody may find a hub that is going away
            self.service.close_all(GOING_AWAY_CLOSE_CODE, "Jupyter server shutting down")
            if self._acks is not None:
                self._acks.detach()
            self.hub.shutdown()
        finally:
            try:
                if self.store is not None:
                    self.store.close()
            finally:
                if self.hub.shared_memory is not None:
                    self.hub.shared_memory.close()
                self._runtime_guard.remove()
                self._env.restore()
