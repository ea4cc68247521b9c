"""``jupyter interop hub``: the same hub and gateway without a Jupyter server.

For scripts, tests and benchmarks (docs/ARCHITECTURE.md, "Where the hub runs"): a small tornado
app serves the gateway at ``/interop/gateway`` and the JSON views at ``/interop/api/...``. There
are no cookies here, so trust comes from the token only: an upgrade whose URL carries
``?token=`` (or whose ``Authorization: token ...`` header carries it) is trusted, any other must
authenticate in its ``hello``. When ready it prints exactly one line,
``Interop hub: ws://HOST:PORT/interop/gateway?token=T``, on stdout (logs go to stderr), writes
its runtime file, and stops cleanly (exit 0) on SIGINT, SIGTERM or SIGHUP. The runtime file is
removed on every exit path (see exitguard).
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import os
import signal
import sys
from typing import Any
from urllib.parse import quote

from jupyter_core.application import JupyterApp
from jupyter_core.paths import jupyter_data_dir
from tornado import httputil, web
from tornado.httpserver import HTTPServer
from tornado.httputil import HTTPServerRequest
from tornado.netutil import bind_sockets
from traitlets import Bool, Int, Unicode, default

from .._version import __version__
from ..hub.core import InteropHub
from ..protocol import encode
from .durable import DurableAcks
from .exitguard import RuntimeFileGuard
from .federation import FederationState, join_federation
from .gateway import GatewaySocket
from .runtime import (
    ENV_TOKEN,
    GATEWAY_PATH,
    EnvironmentExport,
    RuntimeFile,
    host_for_url,
)
from .service import GOING_AWAY_CLOSE_CODE, GatewayService
from .settings import GatewaySettings, new_token
from .views import VIEW_NAMES, render_view

__all__ = ["StandaloneHubApp", "request_token"]


def request_token(request: HTTPServerRequest) -> str | None:
    """The token a request offers: ``?token=`` or ``Authorization: token|Bearer <t>``."""
    values = request.query_arguments.get("token")
    if values:
        return values[-1].decode("utf-8", "replace")
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() in ("token", "bearer") and value.strip():
        return value.strip()
    return None


def _token_matches(offered: str, expected: str) -> bool:
    return bool(expected) and hmac.compare_digest(offered.encode(), expected.encode())


class StandaloneGatewayHandler(GatewaySocket):
    """The gateway socket of the standalone hub."""

    __slots__ = ("hub_token",)  # (see GatewaySocket.__slots__)

    def initialize(self, service: GatewayService, token: str) -> None:  # type: ignore[override]
        super().initialize(service)
        self.hub_token = token

    def check_origin(self, origin: str) -> bool:
        """Any origin: no ambient credential (cookie) exists here, trust needs the token."""
        return True

    async def get(self, *args: Any, **kwargs: Any) -> None:
        offered = request_token(self.request)
        if offered is not None:
            if not _token_matches(offered, self.hub_token):
                raise web.HTTPError(403, "Wrong interop token")
            self.trusted = True
        await super().get(*args, **kwargs)


class StandaloneViewHandler(web.RequestHandler):
    """``/interop/api/<view>``: the JSON views, for holders of the token only."""

    def initialize(
        self,
        service: GatewayService,
        token: str,
        extra_status: dict[str, Any],
        federation: FederationState,
    ) -> None:
        self.service = service
        self.hub_token = token
        self.extra_status = extra_status
        self.federation = federation

    def prepare(self) -> None:
        offered = request_token(self.request)
        if offered is None or not _token_matches(offered, self.hub_token):
            raise web.HTTPError(403, "The interop token is required")

    def get(self, view: str) -> None:
        if view not in VIEW_NAMES:
            raise web.HTTPError(404, reason=f"No interop view {view!r}")
        self.set_header("Content-Type", "application/json")
        self.set_header("Cache-Control", "no-store")
        self.finish(encode(render_view(self.service, view, self.extra_status, self.federation)))

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        self.set_header("Content-Type", "application/json")
        self.finish(encode({"status": status_code, "message": _reason(status_code, kwargs)}))


class StandaloneHubApp(GatewaySettings, JupyterApp):
    """Run an interop hub (GW3 gateway) on its own, without a Jupyter server."""

    name = "jupyter-interop-hub"
    version = __version__
    description = __doc__
    classes = [InteropHub]

    aliases = {
        "ip": "StandaloneHubApp.ip",
        "port": "StandaloneHubApp.port",
        "token": "StandaloneHubApp.token",
        "federation": "InteropHub.federation_url",
        "federation-creds": "InteropHub.federation_credentials",
        "federation-nkey-seed": "InteropHub.federation_nkey_seed",
        "federation-space": "InteropHub.federation_space",
        "log-level": "Application.log_level",
        "config": "JupyterApp.config_file",
    }
    flags = {
        "persist": (
            {"StandaloneHubApp": {"persist_contexts": True}},
            "Keep retained contexts in a SQLite file across restarts.",
        ),
        "debug": ({"Application": {"log_level": 10}}, "Log debug messages."),
        "generate-config": (
            {"JupyterApp": {"generate_config": True}},
            "Write a default config file.",
        ),
    }

    ip = Unicode("127.0.0.1", help="Address to listen on (loopback by default).").tag(config=True)
    port = Int(0, help="Port to listen on; 0 picks a free one (see the printed URL).").tag(
        config=True
    )
    ping_interval = Int(
        30, help="Seconds between WebSocket pings; a peer that stops answering is dropped."
    ).tag(config=True)
    write_runtime_file = Bool(
        True, help="Write jupyter_interop-<pid>.json (mode 0600) to the Jupyter runtime dir."
    ).tag(config=True)

    @default("token")
    def _default_token(self) -> str:
        return os.environ.get(ENV_TOKEN) or new_token()

    @default("persist_contexts")
    def _default_persist_contexts(self) -> bool:
        return False  # scripts and tests want a fresh hub; --persist keeps contexts

    @default("context_store_path")
    def _default_context_store_path(self) -> str:
        return os.path.join(jupyter_data_dir(), "interop", "standalone-contexts.sqlite")

    # ------------------------------------------------------------------ run

    def start(self) -> None:
        if self.generate_config:
            self.write_default_config()
            return
        asyncio.run(self.serve())

    async def serve(self, ready: asyncio.Event | None = None) -> None:
        """Serve until SIGINT/SIGTERM/SIGHUP (or until :meth:`request_stop`).

        Every step of the start registers its undoing on one exit stack, so that whatever
        fails (a port in use, a closed stdout, a failing store), everything started so far is
        stopped and the runtime file, which holds the token, is removed first.
        """
        self._stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        async with contextlib.AsyncExitStack() as cleanup:
            for signum in _STOP_SIGNALS:
                with contextlib.suppress(NotImplementedError, RuntimeError):
                    loop.add_signal_handler(signum, self.request_stop)
                    cleanup.callback(_remove_signal_handler, loop, signum)
            service = self._start_service(cleanup, loop)
            extra_status: dict[str, Any] = {"kind": "standalone"}
            federation = FederationState(service.hub)
            url = self._listen(cleanup, service, self._web_app(service, extra_status, federation))
            extra_status["url"] = url
            try:
                link = await join_federation(federation, service, self.log)
            except (OSError, ValueError) as error:  # refused, unreachable, unusable files
                # said in one line, without a traceback: the message names what to fix
                self.log.critical("%s", error)
                self.exit(1)
            if link is not None:
                cleanup.push_async_callback(link.close)
            self._publish(cleanup, url)
            if ready is not None:
                ready.set()
            await self._stop.wait()
            self.log.info("Interop hub stopping")

    def _start_service(
        self, cleanup: contextlib.AsyncExitStack, loop: asyncio.AbstractEventLoop
    ) -> GatewayService:
        """The context store, the hub and its gateway service, each undone on ``cleanup``."""
        store = self.open_context_store()
        if store is not None:
            cleanup.callback(store.close)
        hub = InteropHub(
            parent=self, token=self.token, store=store, shared_memory=self.open_shared_memory()
        )
        if hub.shared_memory is not None:
            cleanup.callback(hub.shared_memory.close)
        cleanup.callback(hub.shutdown)
        service = self.gateway_service(hub, self.log)
        if store is not None:
            acks = DurableAcks(store, hub, service, loop.call_soon_threadsafe)
            acks.attach()
            cleanup.callback(acks.detach)
        return service

    def _web_app(
        self,
        service: GatewayService,
        extra_status: dict[str, Any],
        federation: FederationState,
    ) -> web.Application:
        """The gateway's WebSocket route and the token-protected views."""
        return web.Application(
            [
                (
                    rf"/{GATEWAY_PATH}",
                    StandaloneGatewayHandler,
                    {"service": service, "token": self.token},
                ),
                (
                    r"/interop/api/([^/]*)",  # unknown views: 403 without token, else 404
                    StandaloneViewHandler,
                    {
                        "service": service,
                        "token": self.token,
                        "extra_status": extra_status,
                        "federation": federation,
                    },
                ),
            ],
            websocket_ping_interval=self.ping_interval or None,
            websocket_ping_timeout=self.ping_interval or None,
        )

    def _listen(
        self, cleanup: contextlib.AsyncExitStack, service: GatewayService, app: web.Application
    ) -> str:
        """Serve ``app`` on the configured address (its sockets closed on ``cleanup``, after
        the service's); the gateway's URL."""
        # tornado's read buffer must hold the largest frame we accept
        server = HTTPServer(app, max_buffer_size=max(self.max_message_size + 65536, 104857600))
        cleanup.push_async_callback(_close_connections, server)
        cleanup.callback(service.close_all, GOING_AWAY_CLOSE_CODE, "interop hub shutting down")
        cleanup.callback(server.stop)
        sockets = bind_sockets(self.port, address=self.ip)
        server.add_sockets(sockets)
        port = sockets[0].getsockname()[1]
        return f"ws://{host_for_url(self.ip)}:{port}/{GATEWAY_PATH}"

    def _publish(self, cleanup: contextlib.AsyncExitStack, url: str) -> None:
        """Tell the world where the hub is: this process's environment, the runtime file and
        stdout (each undone on ``cleanup``, the runtime file first)."""
        env = EnvironmentExport()
        cleanup.callback(env.restore)
        env.set(url, self.token)
        if self.write_runtime_file:
            runtime = RuntimeFile("standalone")
            # registered last, so undone first: nobody may find a hub that is going away
            cleanup.callback(RuntimeFileGuard(runtime).arm().remove)
            runtime.write(url, self.token)
        sys.stdout.write(f"Interop hub: {url}?token={quote(self.token, safe='')}\n")
        sys.stdout.flush()
        self.log.info("Interop hub listening on %s", url)

    def request_stop(self) -> None:
        """Ask :meth:`serve` to shut down (what SIGINT and SIGTERM do)."""
        stop = getattr(self, "_stop", None)
        if stop is not None:
            stop.set()


#: signals that stop the hub cleanly (SIGHUP: the terminal that started it went away)
_STOP_SIGNALS = tuple(
    getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name)
)


def _remove_signal_handler(loop: asyncio.AbstractEventLoop, signum: int) -> None:
    with contextlib.suppress(NotImplementedError, RuntimeError):
        loop.remove_signal_handler(signum)


async def _close_connections(server: HTTPServer) -> None:
    with contextlib.suppress(asyncio.TimeoutError):
        await asyncio.wait_for(server.close_all_connections(), 5)


def _reason(status_code: int, error_kwargs: dict[str, Any]) -> str:
    """The reason tornado put on the status line of an error (``send_error``'s rule: the
    ``HTTPError``'s own reason, else the status code's name), read from public values."""
    exc_info = error_kwargs.get("exc_info")
    error = exc_info[1] if exc_info else None
    reason = error.reason if isinstance(error, web.HTTPError) else None
    return reason or error_kwargs.get("reason") or httputil.responses.get(status_code, "Unknown")
