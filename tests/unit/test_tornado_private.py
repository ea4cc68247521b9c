"""The tornado private API server/wsreader.py relies on, checked on the installed tornado.

server/wsreader.py is the one module that uses tornado's private methods and attributes; it
declares the tornado versions it was checked against (setup.cfg declares the same range) and
each private name it uses. A tornado upgrade outside that range, or one that renamed a name,
fails here first rather than in a hub that silently stops reading or pinging.
"""

from __future__ import annotations

import asyncio
import configparser
import pathlib
from typing import Any

import tornado
from tornado.httpserver import HTTPServer
from tornado.netutil import bind_sockets
from tornado.web import Application
from tornado.websocket import WebSocketHandler, WebSocketProtocol13, websocket_connect

from jupyter_interop.server import wsreader
from jupyter_interop.server.wsreader import (
    TORNADO_PRIVATE_ATTRIBUTES,
    TORNADO_PRIVATE_METHODS,
    TORNADO_VERSIONS,
    BufferedProtocol,
    buffered_protocol,
    uncompressed_stream,
)

SETUP_CFG = pathlib.Path(__file__).resolve().parents[2] / "setup.cfg"


def test_the_installed_tornado_is_in_the_checked_range() -> None:
    low, high = TORNADO_VERSIONS
    assert low <= tornado.version_info[:2] < high, (
        f"tornado {tornado.version} is outside the range server/wsreader.py was checked "
        f"against ({low} to {high}, not included): check its private API, then widen it"
    )


def test_setup_cfg_declares_the_checked_range() -> None:
    config = configparser.ConfigParser()
    config.read(SETUP_CFG)
    requires = config["options"]["install_requires"].split()
    (tornado_requirement,) = [r for r in requires if r.startswith("tornado")]
    low, high = TORNADO_VERSIONS
    assert tornado_requirement == (f"tornado>={low[0]}.{low[1]},<{high[0]}.{high[1]}"), (
        "setup.cfg and server/wsreader.py:TORNADO_VERSIONS must name the same range"
    )


def test_the_private_methods_are_tornados() -> None:
    for name in TORNADO_PRIVATE_METHODS:
        assert callable(getattr(WebSocketProtocol13, name, None)), name


def test_wsreader_is_the_only_server_module_naming_tornados_private_api() -> None:
    server = pathlib.Path(wsreader.__file__).resolve().parent  # only server/ imports tornado
    names = TORNADO_PRIVATE_METHODS + TORNADO_PRIVATE_ATTRIBUTES
    for path in sorted(server.rglob("*.py")):
        if path.name == "wsreader.py":
            continue
        text = path.read_text()
        assert not [n for n in names if f'{n}"' in text or f".{n}" in text], path


class Inspector(WebSocketHandler):
    """Records the protocol of a real upgrade, with the gateway's reader."""

    def initialize(self, seen: dict[str, Any]) -> None:
        self.seen = seen

    def get_websocket_protocol(self) -> Any:
        return buffered_protocol(self)

    def open(self) -> None:
        connection = self.ws_connection
        self.seen["protocol"] = connection
        self.seen["attributes"] = {n: hasattr(connection, n) for n in TORNADO_PRIVATE_ATTRIBUTES}
        self.seen["stream"] = uncompressed_stream(connection)

    def on_message(self, message: str | bytes) -> None:
        self.write_message(message)


async def _upgrade() -> dict[str, Any]:
    seen: dict[str, Any] = {}
    sockets = bind_sockets(0, "127.0.0.1")
    port = sockets[0].getsockname()[1]
    server = HTTPServer(Application([(r"/ws", Inspector, {"seen": seen})]))
    server.add_sockets(sockets)
    try:
        client = await websocket_connect(f"ws://127.0.0.1:{port}/ws")
        await client.write_message("hello")
        seen["echo"] = await asyncio.wait_for(client.read_message(), 10)
        client.close()
    finally:
        server.stop()
        await server.close_all_connections()
    return seen


def test_a_real_connection_has_every_private_attribute() -> None:
    seen = asyncio.run(_upgrade())
    assert isinstance(seen["protocol"], BufferedProtocol)
    assert seen["echo"] == "hello"
    missing = [name for name, present in seen["attributes"].items() if not present]
    assert not missing, f"tornado {tornado.version} lacks {missing}: see server/wsreader.py"
    assert seen["stream"] is not None  # no compression negotiated: frames are written raw
