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
import struct
import threading
from collections import deque
from collections.abc import Callable
from typing import Any

from websockets.client import ClientProtocol
from websockets.frames import Frame, Opcode
from websockets.http11 import Response
from websockets.protocol import State
from websockets.uri import parse_uri

try:  # websockets' C masking (as websockets itself picks it)
    from websockets.speedups import apply_mask
except ImportError:  # pragma: no cover - built without its C extension
    from websockets.utils import apply_mask

from ..protocol.chunks import CHUNK_MAGIC
from .transport import LockedTransport, TransportClosed

__all__ = ["DirectTransport", "open_direct"]

#: bytes read per readable event (a 1 MiB message arrives in a few reads)
READ_SIZE = 256 * 1024
#: ``send`` waits while more than this many bytes are waiting for the socket...
HIGH_WATER = 1024 * 1024
#: ...until fewer than this are left
LOW_WATER = 256 * 1024


#: bytes masked at a time (a multiple of 4, the mask's length): the window stays in the CPU's
#: cache between websockets' C masking and the copy into the frame
MASK_WINDOW = 256 * 1024


def masked_frame(pieces: list[Any], mask: bytes) -> bytearray:
    """One final, masked binary WebSocket frame (RFC 6455) carrying the bytes of ``pieces``
    in order, each masked straight into the frame (a window at a time)."""
    views = [memoryview(p).cast("B") for p in pieces]
    length = sum(v.nbytes for v in views)
    if length < 126:
        head = struct.pack("!BB", 0x82, 0x80 | length)
    elif length < 65536:
        head = struct.pack("!BBH", 0x82, 0x80 | 126, length)
    else:
        head = struct.pack("!BBQ", 0x82, 0x80 | 127, length)
    head += mask
    frame = bytearray(len(head) + length)
    frame[: len(head)] = head
    out = memoryview(frame)
    position = len(head)
    done = 0
    for view in views:
        for start in range(0, view.nbytes, MASK_WINDOW):
            window = view[start : start + MASK_WINDOW]
            phase = done % 4  # where this window starts in the mask
            end = position + window.nbytes
            out[position:end] = apply_mask(window, mask[phase:] + mask[:phase])
            position = end
            done += window.nbytes
    return frame


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
        self._messages: deque[bytes | bytearray] = deque()
        #: where received messages go at once (see deliver_to); None: queued for recv()
        self._deliver: Callable[[bytes | bytearray], None] | None = None
        self._waiter: asyncio.Future[None] | None = None
        self._partial: list[bytes | bytearray] = []
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
            await self._unsent_down_to(LOW_WATER)
        if self._closed is not None:
            raise self._closed

    async def _unsent_down_to(self, size: int) -> None:
        """Wait until at most ``size`` bytes wait for the socket (or it closed)."""
        drained = self._drained
        if drained is None:
            drained = self._drained = asyncio.Event()
        drained.clear()
        while len(self._unsent) > size and self._closed is None:
            await drained.wait()
            drained.clear()

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

    def write_run_locked(self, frames: list[tuple[bytes, bool]]) -> None:
        """Frame each of ``frames`` and write them with one system call (the lock is held)."""
        if self._closed is not None:
            raise self._closed
        protocol = self.protocol
        for frame, binary in frames:
            if binary:
                protocol.send_binary(frame)
            else:
                protocol.send_text(frame)
        self._flush_locked()

    async def send_pieces(self, pieces: list[Any]) -> None:
        """One binary message of ``pieces``, masked straight into the frame written (what
        ``send`` of the joined pieces writes, without the join and websockets' copies)."""
        frame = masked_frame(pieces, os.urandom(4))  # (while the previous one drains)
        # the previous frame's rest first: then this one is written from itself, not copied
        await self._unsent_down_to(0)
        with self.lock:
            if self._closed is not None:
                raise self._closed
            if self.protocol.state is not State.OPEN:  # closing: as websockets refuses it
                self.write_locked(b"".join(pieces), True)
                return
            self._flush_locked()  # (anything the protocol has goes first)
            self._send_locked(frame)

    def _flush_locked(self) -> None:
        """Write what the protocol has for the socket (the lock is held): the frames it
        holds in one system call."""
        pending: list[bytes] = []
        for data in self.protocol.data_to_send():
            if not data:  # the protocol's end of stream (after a close frame)
                if pending:
                    self._send_locked(_joined(pending))
                    pending = []
                with contextlib.suppress(OSError):
                    if not self._unsent:
                        self.sock.shutdown(socket.SHUT_WR)
                continue
            pending.append(data)
        if pending:
            self._send_locked(_joined(pending))

    def _send_locked(self, data: bytes | bytearray) -> None:
        """Write ``data`` after what waits for the socket (the lock is held); what the socket
        does not take now waits in :attr:`_unsent` (a large ``bytearray`` becomes it)."""
        if self._unsent:
            self._unsent += data
            return
        try:
            sent = self.sock.send(data)
        except (BlockingIOError, InterruptedError):
            sent = 0
        except OSError as error:
            self._fail_locked(TransportClosed(None, _describe(error)))
            raise self._closed_error() from None
        if sent < len(data):
            if isinstance(data, bytearray):  # (deleting a bytearray's head copies nothing)
                del data[:sent]
                self._unsent = data
            else:
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
        if self._drained is not None:  # (each waiter checks its own threshold)
            self._drained.set()

    # ------------------------------------------------------------------ receiving

    async def recv(self) -> bytes | bytearray:
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

    def deliver_to(self, callback: Callable[[bytes | bytearray], None]) -> None:
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
            raw = event.data
            data: bytes | bytearray
            # immutable: received arrays are read-only views; a chunk frame is copied into
            # its message's buffer anyway (protocol/chunks.py), so it is not copied here
            if isinstance(raw, bytes) or (isinstance(raw, bytearray) and raw[:4] == CHUNK_MAGIC):
                data = raw
            else:
                data = bytes(raw)
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


def _joined(pieces: list[bytes]) -> bytes:
    """One buffer for one system call (a single piece as it is: a large frame is not copied)."""
    return pieces[0] if len(pieces) == 1 else b"".join(pieces)


def _describe(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}" if str(error) else type(error).__name__


async def _connect_socket(loop: asyncio.AbstractEventLoop, host: str, port: int) -> socket.socket:
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
