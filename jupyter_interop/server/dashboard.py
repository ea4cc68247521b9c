"""``{base_url}interop/``: the hub dashboard, a page behind Jupyter's auth.

It shows peers, channels (with colours and who is on each), methods, streams and contexts from
the read-only JSON views, and moves a notebook to another channel the way any peer can: the
page is itself a GW3 peer (trusted through the Jupyter login cookie on the upgrade) and sends
``move-to-channel``; the notebook's client obeys and reports its new channel.

Everything the page shows comes from peers, so the page is sent with a strict
Content-Security-Policy: nothing from other origins, no inline style or script but the page's
own blocks (which carry a nonce made for each response), and the gateway socket on this origin
only. Channel colours are applied by the page's script through the CSSOM after a check
(docs/RELIABILITY.md, "Channel metadata").
"""

from __future__ import annotations

import json
import secrets
from functools import cache, cached_property
from importlib.resources import files

from jupyter_server.auth.decorator import authorized
from jupyter_server.base.handlers import JupyterHandler
from tornado import web

from .handlers import AUTH_RESOURCE

__all__ = ["DASHBOARD_PATH", "InteropDashboardHandler", "dashboard_policy"]

DASHBOARD_PATH = r"interop/?"
_NONCE_MARK = "__CSP_NONCE__"


@cache
def _page() -> str:
    return files(__package__).joinpath("static/dashboard.html").read_text(encoding="utf-8")


def dashboard_policy(nonce: str, socket_origin: str) -> str:
    """The dashboard's Content-Security-Policy: ``nonce`` admits the page's own <style> and
    <script>; ``socket_origin`` (``ws://host:port`` of this server) its gateway socket."""
    return "; ".join(
        [
            "default-src 'none'",
            f"script-src 'self' 'nonce-{nonce}'",
            f"style-src 'self' 'nonce-{nonce}'",
            f"connect-src 'self' {socket_origin}",
            "img-src 'self' data:",
            "base-uri 'none'",
            "form-action 'none'",
            "frame-ancestors 'self'",
        ]
    )


class InteropDashboardHandler(JupyterHandler):
    auth_resource = AUTH_RESOURCE

    @cached_property
    def _nonce(self) -> str:
        """A fresh nonce per response (a handler serves one request)."""
        return secrets.token_urlsafe(18)

    @property
    def content_security_policy(self) -> str:
        """Replaces Jupyter's default header (it only limits framing) for this page."""
        scheme = "wss" if self.request.protocol == "https" else "ws"
        return dashboard_policy(self._nonce, f"{scheme}://{self.request.host}")

    @web.authenticated
    @authorized
    async def get(self) -> None:
        self.set_header("Content-Type", "text/html; charset=utf-8")
        self.set_header("Cache-Control", "no-store")
        page = _page().replace('"__BASE_URL__"', json.dumps(self.base_url))
        await self.finish(page.replace(_NONCE_MARK, self._nonce))
