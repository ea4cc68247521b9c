"""A ``ws://`` transport with no machinery between the socket and the connection.

The framing is websockets' sans-I/O protocol (``websockets.client.ClientProtocol``: handshake,
masking, ping/pong, close, size limit); the socket is a plain non-blocking one, read by a
selector callback of the loop and written directly by whoever sends. That saves what the
general-purpose clients spend per message on a loopback hub: a reader task and its futures,
a writer lock, a drain per frame.

Sending is thread-safe: frames are serialised by one lock and written at once while the
socket accepts them; what it does not accept waits in a buffer that the loop flushes when the
socket becomes writable (``send`` waits for that buffer to shrink, which is the backpressure
large messages need).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import threading
from collections import deque
from collections.abc import Callable
from typing import Any

from websockets.client import ClientProtocol
from websockets.frames import Frame, Opcode
from websockets.http11 import Response
from websockets.protocol import State
from websockets.uri import parse_uri

from .transport import LockedTransport, TransportClosed

__all__ = ["DirectTransport", "open_direct"]

#: bytes read per readable event (a 1 MiB message arrives in a few reads)
READ_SIZE = 256 * 1024
#: ``send`` waits while more than this many bytes are waiting for the socket...
HIGH_WATER = 1024 * 1024
#: ...until fewer than this are left
LOW_WATER = 256 * 1024


class DirectTransport(LockedTransport):
    """One open WebSocket (see the module docstring); made by :func:`open_direct`."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        sock: socket.socket,
        protocol: ClientProtocol,
        ping_interval: float,
    ) -> None:
        self.loop = loop
        #: the thread the loop runs on (made on the loop: see open_direct)
        self._loop_thread = threading.get_ident()
        self.sock = sock
        self.protocol = protocol
        self._fd = sock.fileno()
        #: held while a frame is written: a sender that must decide *and* write atomically
        #: (``Connection.write_now``) holds it and calls :meth:`write_locked`
        self.lock = threading.Lock()
        self._unsent = bytearray()
        self._writer_on = False
        self._drained: asyncio.Event | None = None
        self._messages: deque[bytes] = deque()
        #: where received messages go at once (see deliver_to); None: queued for recv()
        self._deliver: Callable[[bytes], None] | None = None
        self._waiter: asyncio.Future[None] | None = None
        self._partial: list[bytes] = []
        self._closed: TransportClosed | None = None
        self._gone = asyncio.Event()
        self._ping_interval = ping_interval
        self._ping_pending = False
        self._ping_timer: asyncio.TimerHandle | None = None
        loop.add_reader(self._fd, self._readable)
        if ping_interval > 0:
            self._ping_timer = loop.call_later(ping_interval, self._keepalive)

    # ------------------------------------------------------------------ sending

    async def send(self, frame: bytes, binary: bool) -> None:
        self.write(frame, binary)
        await self.drained()

    async def drained(self) -> None:
        """Wait (on the loop) while more than ``HIGH_WATER`` bytes wait for the socket."""
        if len(self._unsent) > HIGH_WATER:
            drained = self._drained
            if drained is None:
                drained = self._drained = asyncio.Event()
            drained.clear()
            while len(self._unsent) > LOW_WATER and self._closed is None:
                await drained.wait()
                drained.clear()
        if self._closed is not None:
            raise self._closed

    def write(self, frame: bytes, binary: bool) -> None:
        """Frame and write ``frame`` now, from any thread (raises TransportClosed)."""
        with self.lock:
            self.write_locked(frame, binary)

    def write_locked(self, frame: bytes, binary: bool) -> None:
        """:meth:`write` for a caller that holds :attr:`lock`."""
        if self._closed is not None:
            raise self._closed
        if binary:
            self.protocol.send_binary(frame)
        else:
            self.protocol.send_text(frame)
        self._flush_locked()

    def _flush_locked(self) -> None:
        """Write what the protocol has for the socket (the lock is held)."""
        for data in self.protocol.data_to_send():
            if not data:  # the protocol's end of stream (after a close frame)
                with contextlib.suppress(OSError):
                    if not self._unsent:
                        self.sock.shutdown(socket.SHUT_WR)
                continue
            if self._unsent:
                self._unsent += data
                continue
            try:
                sent = self.sock.send(data)
            except (BlockingIOError, InterruptedError):
                sent = 0
            except OSError as error:
                self._fail_locked(TransportClosed(None, _describe(error)))
                raise self._closed_error() from None
            if sent < len(data):
                self._unsent += memoryview(data)[sent:]
                self._want_writable()

    def _want_writable(self) -> None:
        if self._writer_on:
            return
        self._writer_on = True
        if threading.get_ident() == self._loop_thread:
            self.loop.add_writer(self._fd, self._writable)
        else:
            with contextlib.suppress(RuntimeError):  # the loop is closed
                self.loop.call_soon_threadsafe(self._add_writer)

    def _add_writer(self) -> None:
        if self._closed is None and self._writer_on:
            self.loop.add_writer(self._fd, self._writable)

    def _writable(self) -> None:
        with self.lock:
            unsent = self._unsent
            try:
                sent = self.sock.send(unsent)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as error:
                self._fail_locked(TransportClosed(None, _describe(error)))
                return
            del unsent[:sent]
            if not unsent:
                self._writer_on = False
                self.loop.remove_writer(self._fd)
        if self._drained is not None and len(self._unsent) <= LOW_WATER:
            self._drained.set()

    # ------------------------------------------------------------------ receiving

    async def recv(self) -> bytes:
        messages = self._messages
        while not messages:
            if self._closed is not None:
                raise self._closed
            waiter = self._waiter = self.loop.create_future()
            try:
                await waiter
            finally:
                self._waiter = None
        return messages.popleft()

    def _readable(self) -> None:
        try:
            data = self.sock.recv(READ_SIZE)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as error:
            self._fail(TransportClosed(None, _describe(error)))
            return
        with self.lock:
            if data:
                self.protocol.receive_data(data)
            else:
                self.protocol.receive_eof()
            events = self.protocol.events_received()
        self.settle(events)

    def settle(self, events: list[Any]) -> None:
        """After the protocol read something: answer it (pongs, the reply to a close),
        deliver the messages, and close once the protocol is no longer open."""
        with self.lock:
            with contextlib.suppress(TransportClosed):
                self._flush_locked()
            state = self.protocol.state
        if events:
            self._take(events)
        if state is not State.OPEN:  # a close frame either way, a protocol failure, EOF
            self._fail(self._closed_by_peer())

    def deliver_to(self, callback: Callable[[bytes], None]) -> None:
        messages = self._messages
        while messages:  # what came before, in order (e.g. with the handshake's response)
            callback(messages.popleft())
        self._deliver = callback

    async def wait_closed(self) -> None:
        await self._gone.wait()
        raise self._closed_error()

    def _take(self, events: list[Any]) -> None:
        deliver = self._deliver
        added = False
        for event in events:
            if not isinstance(event, Frame):
                continue
            opcode = event.opcode
            data = event.data
            if not isinstance(data, bytes):  # immutable: received arrays are read-only views
                data = bytes(data)
            if opcode is Opcode.TEXT or opcode is Opcode.BINARY:
                if not event.fin:
                    self._partial = [data]
                    continue
            elif opcode is Opcode.CONT:
                self._partial.append(data)
                if not event.fin:
                    continue
                data = b"".join(self._partial)
                self._partial = []
            else:
                if opcode is Opcode.PONG:
                    self._ping_pending = False
                continue
            if deliver is not None:
                deliver(data)
            else:
                self._messages.append(data)
                added = True
        if added:
            waiter = self._waiter
            if waiter is not None and not waiter.done():
                waiter.set_result(None)

    # ------------------------------------------------------------------ keepalive, closing

    def _keepalive(self) -> None:
        if self._closed is not None:
            return
        if self._ping_pending:
            self._fail(TransportClosed(1011, "keepalive ping timeout"))
            return
        self._ping_pending = True
        with self.lock:
            if self._closed is None:
                self.protocol.send_ping(os.urandom(4))
                with contextlib.suppress(TransportClosed):
                    self._flush_locked()
        self._ping_timer = self.loop.call_later(self._ping_interval, self._keepalive)

    def _closed_by_peer(self) -> TransportClosed:
        protocol = self.protocol
        close = protocol.close_rcvd or protocol.close_sent  # theirs, else ours (e.g. 1009)
        if close is not None:
            return TransportClosed(close.code, close.reason)
        return TransportClosed(None, "connection closed")

    def _closed_error(self) -> TransportClosed:
        assert self._closed is not None
        return self._closed

    def _fail(self, error: TransportClosed) -> None:
        with self.lock:
            self._fail_locked(error)

    def _fail_locked(self, error: TransportClosed) -> None:
        """Close for good (idempotent): wake the reader and any sender waiting to drain."""
        if self._closed is not None:
            return
        self._closed = error
        if threading.get_ident() == self._loop_thread:
            self._release()
        else:
            with contextlib.suppress(RuntimeError):
                self.loop.call_soon_threadsafe(self._release)

    def _release(self) -> None:
        """On the loop: stop watching the socket, close it, wake who waits."""
        with contextlib.suppress(Exception):
            self.loop.remove_reader(self._fd)
        with contextlib.suppress(Exception):
            self.loop.remove_writer(self._fd)
        if self._ping_timer is not None:
            self._ping_timer.cancel()
        with contextlib.suppress(OSError):
            self.sock.close()
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)
        if self._drained is not None:
            self._drained.set()
        self._gone.set()

    async def close(self) -> None:
        """Send a close frame, give the hub a moment to answer it, then drop the socket."""
        if self._closed is None:
            with self.lock:
                if self.protocol.state is State.OPEN:
                    self.protocol.send_close(1000)
                    with contextlib.suppress(TransportClosed):
                        self._flush_locked()
            with contextlib.suppress(TimeoutError, asyncio.TimeoutError):
                await asyncio.wait_for(self._gone.wait(), 1.0)
        self._fail(TransportClosed(1000, "closed by the client"))


def _describe(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}" if str(error) else type(error).__name__


async def _connect_socket(
    loop: asyncio.AbstractEventLoop, host: str, port: int
) -> socket.socket:
    """A non-blocking TCP socket connected to the first address of ``host`` that answers."""
    infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    last: OSError | None = None
    for family, kind, proto, _, address in infos:
        sock = socket.socket(family, kind, proto)
        sock.setblocking(False)
        try:
            await loop.sock_connect(sock, address)
        except OSError as error:
            sock.close()
            last = error
            continue
        return sock
    raise last or OSError(f"cannot resolve {host}")


async def open_direct(
    url: str,
    headers: dict[str, str],
    max_size: int,
    ping_interval: float = 20.0,
) -> DirectTransport:
    """Connect to ``url`` (``ws://`` only), complete the handshake, return the transport.

    Raises OSError (refused, unreachable) or websockets' ``InvalidHandshake`` (the server
    answered something other than 101, e.g. 403 for a refused token).
    """
    loop = asyncio.get_running_loop()
    uri = parse_uri(url)
    if uri.secure:
        raise ValueError("the direct transport speaks ws:// only")
    sock = await _connect_socket(loop, uri.host, uri.port)
    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        protocol = ClientProtocol(uri, max_size=max_size)
        request = protocol.connect()
        for name, value in headers.items():
            if name in request.headers:
                del request.headers[name]
            request.headers[name] = value
        protocol.send_request(request)
        await loop.sock_sendall(sock, b"".join(protocol.data_to_send()))
        early: list[Any] = []
        while True:
            data = await loop.sock_recv(sock, READ_SIZE)
            if data:
                protocol.receive_data(data)
            else:
                protocol.receive_eof()
            events = protocol.events_received()
            if protocol.handshake_exc is not None:
                raise protocol.handshake_exc
            response = [e for e in events if isinstance(e, Response)]
            early.extend(e for e in events if not isinstance(e, Response))
            if response or protocol.state is State.OPEN:
                break
            if not data:
                raise ConnectionResetError("the hub closed the connection during the handshake")
    except BaseException:
        sock.close()
        raise
    transport = DirectTransport(loop, sock, protocol, ping_interval)
    transport.settle(early)  # frames that came with the handshake's response
    return transport
