"""What the client's services need of ``Interop``, without a hub: an I/O host that runs
callbacks on the test's loop, a connection, a dispatcher (for unit tests of the client)."""

from __future__ import annotations

import asyncio
from typing import Any

from jupyter_interop.client.api import Interop
from jupyter_interop.client.connection import Connection, ConnectionSettings
from jupyter_interop.client.discovery import HubAddress
from jupyter_interop.client.dispatch import Dispatcher
from jupyter_interop.client.session import ClientSession


class FakeIO:
    """The loop host: ``call_soon`` from any thread lands on the test's loop (counted)."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.scheduled = 0
        self.stopped = False

    def call_soon(self, fn: Any, *args: Any) -> None:
        self.scheduled += 1
        self.loop.call_soon_threadsafe(fn, *args)


class FakeClient:
    """A connection (not connected), a dispatcher and a loop host, as on ``Interop``."""

    def __init__(self, loop: asyncio.AbstractEventLoop, name: str = "test") -> None:
        self._io = FakeIO(loop)
        self._conn = Connection(
            HubAddress("ws://x", "t", "test"),
            None,
            {},
            {},
            ConnectionSettings(
                connect_timeout=5.0,
                max_message_size=64 * 1024 * 1024,
                websocket_library="auto",
                ping_interval=0.0,
                reconnect_delay=0.5,
                reconnect_max_delay=5.0,
                shared_memory_threshold=1024 * 1024,
                tune_allocator=False,
            ),
            call_soon=self._io.call_soon,
            on_disconnected=self._fire_disconnected,
        )
        self._conn.client = self  # type: ignore[attr-defined]  # what tests look up through it
        self._dispatcher = Dispatcher(loop, 1, 10, name)
        self.disconnected = 0

    def _fire_disconnected(self) -> None:
        self.disconnected += 1


def fake_session(client: FakeClient) -> ClientSession:
    """What the client's services share, on the fake client's parts (default settings)."""
    return ClientSession(Interop(), client._io, client._conn, client._dispatcher)  # type: ignore[arg-type]


def make_connection(loop: asyncio.AbstractEventLoop) -> Connection:
    """A connection whose hub accepted the ``batch`` extension."""
    conn = FakeClient(loop)._conn
    conn.extensions = {"batch": True}
    return conn
