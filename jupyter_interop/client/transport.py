"""The WebSocket under a client, picked by what is installed and the URL's scheme.

With ``websockets`` installed: for ``ws://`` the direct transport (``_direct.py``:
websockets' sans-I/O framing on a plain socket, the fastest on a near hub), for ``wss://``
websockets' asyncio client; without it, tornado's client, which every Jupyter environment
has.

All are used the same way by the connection: ``send(frame, binary)``, ``recv()`` (raises
:class:`TransportClosed`), ``close()``. JSON frames go out as text frames without a UTF-8
round trip; binary frames carry attachments.
"""

from __future__ import annotations

import abc
import asyncio
import threading
from collections.abc import Callable
from typing import Any, Protocol

__all__ = ["LockedTransport", "Transport", "TransportClosed", "open_transport"]


class TransportClosed(Exception):
    """The socket closed; ``code``/``reason`` are the close frame's, when there was one."""

    def __init__(self, code: int | None = None, reason: str = "") -> None:
        super().__init__(f"connection closed (code {code}{': ' + reason if reason else ''})")
        self.code = code
        self.reason = reason


class Transport(Protocol):
    async def send(self, frame: bytes, binary: bool) -> None: ...

    async def recv(self) -> bytes | bytearray | str: ...

    async def close(self) -> None: ...


class LockedTransport(abc.ABC):
    """A transport whose writes can be decided and made atomically from any thread: hold
    ``lock``, look at what is queued, ``write_locked`` (the direct transport)."""

    lock: threading.Lock

    @abc.abstractmethod
    async def send(self, frame: bytes, binary: bool) -> None: ...

    @abc.abstractmethod
    def write_locked(self, frame: bytes, binary: bool) -> None: ...

    def write_run_locked(self, frames: list[tuple[bytes, bool]]) -> None:
        """Write ``frames`` (each ``(frame, binary)``, each its own WebSocket frame) in order,
        as :meth:`write_locked` would one by one; a transport that can hands them to the
        socket in one system call."""
        for frame, binary in frames:
            self.write_locked(frame, binary)

    @abc.abstractmethod
    async def send_pieces(self, pieces: list[Any]) -> None:
        """Send one binary message made of ``pieces`` (a chunk frame's header and views of
        the value), without joining them first."""

    @abc.abstractmethod
    async def drained(self) -> None: ...

    @abc.abstractmethod
    def deliver_to(self, callback: Callable[[bytes | bytearray], None]) -> None:
        """From now on, hand each received message to ``callback`` as soon as it is read
        (on the loop), instead of queueing it for :meth:`recv`."""

    @abc.abstractmethod
    async def wait_closed(self) -> None:
        """Return once the connection is closed, by raising its :class:`TransportClosed`."""


class _WebsocketsTransport:
    def __init__(self, ws: Any) -> None:
        self.ws = ws
        from websockets.exceptions import ConnectionClosed

        self._closed_error = ConnectionClosed

    async def send(self, frame: bytes, binary: bool) -> None:
        try:
            await self.ws.send(frame, text=not binary)
        except self._closed_error as error:
            raise _closed(error) from None

    async def recv(self) -> bytes | str:
        try:
            frame: bytes | str = await self.ws.recv(decode=False)
        except self._closed_error as error:
            raise _closed(error) from None
        return frame

    async def close(self) -> None:
        try:
            await asyncio.wait_for(self.ws.close(), 1.0)
        except Exception:
            transport = getattr(self.ws, "transport", None)
            if transport is not None:
                transport.abort()


def _closed(error: Any) -> TransportClosed:
    received = getattr(error, "rcvd", None)
    if received is not None:
        return TransportClosed(received.code, received.reason)
    return TransportClosed(None, str(error))


class _TornadoTransport:
    def __init__(self, ws: Any) -> None:
        self.ws = ws

    async def send(self, frame: bytes, binary: bool) -> None:
        from tornado.websocket import WebSocketClosedError

        try:
            await self.ws.write_message(frame, binary=binary)
        except WebSocketClosedError:
            raise TransportClosed(self.ws.close_code, self.ws.close_reason or "") from None

    async def recv(self) -> bytes | str:
        frame = await self.ws.read_message()
        if frame is None:
            raise TransportClosed(self.ws.close_code, self.ws.close_reason or "")
        result: bytes | str = frame
        return result

    async def close(self) -> None:
        self.ws.close()


async def open_transport(
    url: str, headers: dict[str, str], timeout: float, max_size: int, library: str = "auto"
) -> Transport:
    """Open a WebSocket to ``url`` (no proxy, no compression: the hub is near)."""
    if library in ("auto", "direct") and url.startswith("ws://"):
        try:
            from ._direct import open_direct
        except ImportError:
            if library == "direct":
                raise
        else:
            return await asyncio.wait_for(open_direct(url, headers, max_size), timeout)
    ws_client: Any = None
    if library != "tornado":
        try:
            from websockets.asyncio import client as ws_client
        except ImportError:
            if library == "websockets":
                raise
    if ws_client is not None:
        ws = await asyncio.wait_for(
            ws_client.connect(
                url,
                additional_headers=headers,
                compression=None,
                proxy=None,
                open_timeout=timeout,
                max_size=max_size,
                ping_interval=20,
                ping_timeout=20,
                close_timeout=1,
                user_agent_header="jupyter_interop",
            ),
            timeout,
        )
        return _WebsocketsTransport(ws)
    from tornado.httpclient import HTTPRequest
    from tornado.websocket import websocket_connect

    request = HTTPRequest(url, headers=headers, connect_timeout=timeout, request_timeout=timeout)
    tws = await asyncio.wait_for(
        websocket_connect(request, max_message_size=max_size, ping_interval=20), timeout
    )
    return _TornadoTransport(tws)
