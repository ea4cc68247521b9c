"""``{base_url}interop/``: the hub dashboard, a page behind Jupyter's auth.

It shows peers, channels (with colours and who is on each), methods, streams and contexts from
the read-only JSON views, and moves a notebook to another channel the way any peer can: the
page is itself a GW3 peer (trusted through the Jupyter login cookie on the upgrade) and sends
``move-to-channel``; the notebook's client obeys and reports its new channel.
"""

from __future__ import annotations

import json
from functools import cache
from importlib.resources import files

from jupyter_server.auth.decorator import authorized
from jupyter_server.base.handlers import JupyterHandler
from tornado import web

from .handlers import AUTH_RESOURCE

__all__ = ["DASHBOARD_PATH", "InteropDashboardHandler"]

DASHBOARD_PATH = r"interop/?"


@cache
def _page() -> str:
    return files(__package__).joinpath("static/dashboard.html").read_text(encoding="utf-8")


class InteropDashboardHandler(JupyterHandler):
    auth_resource = AUTH_RESOURCE

    @web.authenticated
    @authorized
    async def get(self) -> None:
        self.set_header("Content-Type", "text/html; charset=utf-8")
        self.set_header("Cache-Control", "no-store")
        await self.finish(_page().replace('"__BASE_URL__"', json.dumps(self.base_url)))
