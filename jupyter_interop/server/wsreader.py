"""A leaner WebSocket frame reader for the gateway, after tornado's handshake.

tornado's ``WebSocketProtocol13`` reads each frame with three to four awaited
``IOStream.read_bytes`` calls (header, length, mask, payload). Each is a future, a trip through
the stream's buffer and, because the buffer is left non-empty between them, the socket is
removed from and added back to the selector once per frame (two ``epoll_ctl`` calls). In the
hub that was about a quarter of the CPU spent per routed message. Its read loop also keeps the
whole chain of coroutines of the upgrade suspended for the life of the connection
(``RequestHandler._execute`` down to ``_receive_frame_loop``: seven frames, a task and its
context), which an idle connection pays for in memory.

:class:`BufferedProtocol` keeps everything else of tornado's protocol (handshake, writes,
close handshake and codes, pings and pongs, ``max_message_size``) and replaces the read loop
with callbacks: one partial read takes whatever arrived, every complete frame in it is parsed
in a plain loop, and the next read is started from the read's callback, so the upgrade's
coroutines finish once the connection is open. A frame larger than one read is read straight
into a buffer of its size (no growing concatenation).

The rules are tornado's own, in the same order: reserved bits, fragmented or oversized
control frames and continuation frames without a start abort the connection; a message over
``max_message_size`` is closed with 1009 before its payload is read; frames are handled one by
one, and a handler's awaitable (``on_message`` returning one) completes before the next frame
is handled. A frame larger than one read is unmasked where it was read and handed on as that
``bytearray`` (a binary message; text is decoded to ``str`` by tornado). Each read completes
in its own loop callback, so a fast sender cannot keep the loop from the other connections.

Keepalive pings are sent by one timer for all the connections of a loop that share an
interval and timeout (:class:`KeepAlive`), not by a task per connection: every ``interval``
each connection gets a ping, and one that has not answered the previous ping within
``timeout`` is closed ("ping timed out"), as tornado does.

tornado's private API: this is the one module of the package that uses it (the gateway asks
it through :func:`uncompressed_stream`). It was checked against tornado 6.5 and 6.6
(:data:`TORNADO_VERSIONS`, the range ``setup.cfg`` declares): :class:`BufferedProtocol`
overrides or calls the private methods of ``WebSocketProtocol13`` listed in
:data:`TORNADO_PRIVATE_METHODS` and uses its private attributes listed in
:data:`TORNADO_PRIVATE_ATTRIBUTES` (``_received_pong``, the keepalive's pong flag, appeared in
6.5; before, a shared timer would take every connection for unanswered). A unit test
(``tests/unit/test_tornado_private.py``) fails when the installed tornado is outside that range
or lacks one of them, so an upgrade is checked here first.
"""

from __future__ import annotations

import asyncio
import functools
import struct
import sys
from asyncio import Future
from typing import Any, cast

from tornado.iostream import IOStream, StreamClosedError
from tornado.websocket import WebSocketHandler, WebSocketProtocol, WebSocketProtocol13

try:  # websockets' C unmasking takes any buffer (tornado's only bytes); as websockets does
    from websockets.speedups import apply_mask
except ImportError:  # pragma: no cover - built without its C extension
    from websockets.utils import apply_mask

__all__ = [
    "READ_SIZE",
    "TORNADO_PRIVATE_ATTRIBUTES",
    "TORNADO_PRIVATE_METHODS",
    "TORNADO_VERSIONS",
    "BufferedProtocol",
    "KeepAlive",
    "buffered_protocol",
    "send_now",
    "uncompressed_stream",
]

#: the tornado versions this module was checked against: from the first, up to (not
#: including) the second; ``setup.cfg`` declares the same range
TORNADO_VERSIONS = ((6, 5), (6, 7))
#: ``WebSocketProtocol13``'s private methods overridden (``_receive_frame_loop``) or called
TORNADO_PRIVATE_METHODS = ("_receive_frame_loop", "_handle_message", "_abort")
#: ``WebSocketProtocol13``'s private attributes read or written (set by its ``__init__``)
TORNADO_PRIVATE_ATTRIBUTES = (
    "_wire_bytes_in",
    "_decompressor",
    "_frame_compressed",
    "_compressor",
    "_received_pong",
)

#: bytes asked for per read (what the socket has, up to this)
READ_SIZE = 64 * 1024

_unpack_16 = struct.Struct("!H").unpack_from
_unpack_64 = struct.Struct("!Q").unpack_from
_FIN = 0x80
_RSV1 = 0x40


#: bytes unmasked at a time in place (a multiple of 4, the mask's length): the window stays in
#: the CPU's cache between websockets' unmasking and the copy back
_UNMASK_WINDOW = 256 * 1024


def _unmask_in_place(buffer: bytearray, mask: bytes) -> None:
    """Unmask a large frame's payload where it was read (websockets' ``apply_mask`` returns
    a new buffer: a second frame-sized allocation, its pages faulted in for each frame)."""
    view = memoryview(buffer)
    for start in range(0, len(buffer), _UNMASK_WINDOW):
        window = view[start : start + _UNMASK_WINDOW]
        window[:] = apply_mask(window, mask)


class BufferedProtocol(WebSocketProtocol13):
    """tornado's RFC 6455 server protocol with a callback-driven reader that parses frames
    from whole reads (see the module docstring).

    Its own state lives in slots: tornado's protocol already sets 29 attributes, and on
    CPython an instance dict with 30 or more stops sharing its keys with the other
    instances' (about 1.3 KiB more per idle connection, measured with the ``many``
    benchmark)."""

    __slots__ = ("_fragments", "_fragments_opcode", "_keepalive", "_reader_done", "_unparsed")

    #: bytes of an incomplete frame, kept until the next read completes it
    _unparsed: bytes
    #: a fragmented message being received, and its opcode
    _fragments: bytearray | None
    _fragments_opcode: int
    #: the reader has stopped and told the handler (once)
    _reader_done: bool
    #: the shared keepalive timer this connection is pinged by, if any
    _keepalive: KeepAlive | None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._unparsed = b""
        self._fragments = None
        self._fragments_opcode = 0
        self._reader_done = False
        self._keepalive = None
        super().__init__(*args, **kwargs)

    async def _receive_frame_loop(self) -> None:
        """Start reading; the reads go on in callbacks after this returns."""
        self._read()

    def start_pinging(self) -> None:
        """Join the loop's shared keepalive timer (instead of a task per connection)."""
        if self._keepalive is None and self.ping_interval > 0:
            self._keepalive = KeepAlive.join(self, self.ping_interval, self.ping_timeout)

    def close(self, code: int | None = None, reason: str | None = None) -> None:
        super().close(code, reason)
        keepalive = self._keepalive
        if keepalive is not None:
            self._keepalive = None
            keepalive.leave(self)

    def keepalive_ping(self) -> None:
        """A ping from the shared keepalive timer: :attr:`answered_ping` is False until its
        pong arrives (tornado's reader sets the flag)."""
        self._received_pong = False
        try:
            self.write_ping(b"")
        except Exception:  # closed meanwhile: it leaves through close()
            self._received_pong = True

    @property
    def answered_ping(self) -> bool:
        """Did the pong of the last :meth:`keepalive_ping` arrive?"""
        return self._received_pong

    # ------------------------------------------------------------ reading

    def _read(self) -> None:
        try:
            # (tornado's reads return asyncio futures, typed as awaitables)
            future = cast("Future[bytes]", self.stream.read_bytes(READ_SIZE, partial=True))
        except StreamClosedError:
            self._stop(abort=True)
            return
        future.add_done_callback(self._on_read)

    def _on_read(self, future: Future[bytes]) -> None:
        try:
            data = future.result()
        except StreamClosedError:
            self._stop(abort=True)
            return
        except (Exception, asyncio.CancelledError):  # a bug in tornado: never leave it unread
            self._failed()
            return
        self._wire_bytes_in += len(data)
        unparsed = self._unparsed
        if unparsed:
            self._unparsed = b""
            data = unparsed + data
        self._parse(data, 0)

    def _resume(self, buf: bytes, pos: int, _handled: Any = None) -> None:
        """A handler's awaitable completed: go on with the frames after its message."""
        if self.client_terminated:
            self._stop()
        else:
            self._parse(buf, pos)

    def _parse(self, buf: bytes, pos: int) -> None:
        try:
            self._parse_frames(buf, pos)
        except Exception:  # a bug here must close this connection, not stall it
            self._failed()

    def _parse_frames(self, buf: bytes, pos: int) -> None:
        """Handle every complete frame of ``buf`` from ``pos``, then read on (or wait for a
        handler's awaitable, or for the rest of a large frame)."""
        max_size = self.params.max_message_size
        end = len(buf)
        while end - pos >= 2:
            b0 = buf[pos]
            b1 = buf[pos + 1]
            opcode = b0 & 0x0F
            reserved = b0 & 0x70
            if self._decompressor is not None and opcode != 0:
                self._frame_compressed = bool(reserved & _RSV1)
                reserved &= ~_RSV1
            if reserved:
                self._stop(abort=True)  # an extension the peer did not negotiate
                return
            length = b1 & 0x7F
            control = opcode & 0x8
            if control and length >= 126:
                self._stop(abort=True)
                return
            head = 2
            if length == 126:
                head = 4
                if end - pos < head:
                    break
                length = _unpack_16(buf, pos + 2)[0]
            elif length == 127:
                head = 10
                if end - pos < head:
                    break
                length = _unpack_64(buf, pos + 2)[0]
            fragments = self._fragments
            if length + (len(fragments) if fragments is not None else 0) > max_size:
                self.close(1009, "message too big")
                self._stop(abort=True)
                return
            mask = None
            if b1 & 0x80:
                if end - pos < head + 4:
                    break
                mask = buf[pos + head : pos + head + 4]
                head += 4
            start = pos + head
            stop = start + length
            if stop > end:
                if length > READ_SIZE:
                    self._read_large(buf[start:end], length, mask, b0)
                    return
                break  # the rest of this frame comes with the next read
            payload = buf[start:stop]
            if mask is not None:
                payload = apply_mask(payload, mask)
            pos = stop
            if not self._handle_frame(b0, payload, buf, pos):
                return
        self._unparsed = buf[pos:] if pos < end else b""
        self._read()

    def _read_large(self, have: bytes, length: int, mask: bytes | None, b0: int) -> None:
        """Read the rest of a frame larger than one read into a buffer of its size."""
        whole = bytearray(length)
        view = memoryview(whole)
        view[: len(have)] = have
        try:
            # (tornado reads into any writable buffer, a memoryview slice included)
            future = cast("Future[int]", self.stream.read_into(cast(bytearray, view[len(have) :])))
        except StreamClosedError:
            self._stop(abort=True)
            return
        future.add_done_callback(functools.partial(self._on_large, whole, len(have), mask, b0))

    def _on_large(
        self, whole: bytearray, had: int, mask: bytes | None, b0: int, future: Future[int]
    ) -> None:
        try:
            future.result()
        except StreamClosedError:
            self._stop(abort=True)
            return
        except (Exception, asyncio.CancelledError):
            self._failed()
            return
        self._wire_bytes_in += len(whole) - had
        if mask is not None:
            _unmask_in_place(whole, mask)
        # (a bytearray: the gateway tells text from binary by ``str``, and keeps this buffer
        # as a chunk's piece rather than copying it)
        if self._handle_frame(b0, cast(bytes, whole), b"", 0):
            self._parse(b"", 0)

    def _handle_frame(self, b0: int, payload: bytes, buf: bytes, pos: int) -> bool:
        """One frame: handle the message it completes. True to go on parsing ``buf`` at
        ``pos``; False when reading stopped or waits for the handler's awaitable."""
        message = self._message(b0, payload)
        if message is None:
            if self.client_terminated:
                self._stop()
                return False
            return True  # a fragment of a longer message
        handled = self._handle_message(*message)
        if handled is not None:
            handled.add_done_callback(functools.partial(self._resume, buf, pos))
            return False
        if self.client_terminated:  # a close frame, or an aborted connection
            self._stop()
            return False
        return True

    def _message(self, b0: int, payload: bytes) -> tuple[int, bytes] | None:
        """Fragmentation rules (tornado's): the (opcode, data) to handle once this frame is
        final, else None (aborting the connection on a violation)."""
        opcode = b0 & 0x0F
        final = b0 & _FIN
        if opcode & 0x8:
            if not final:
                self._abort()  # control frames must not be fragmented
                return None
        elif opcode == 0:  # continuation
            fragments = self._fragments
            if fragments is None:
                self._abort()  # nothing to continue
                return None
            fragments.extend(payload)
            if not final:
                return None
            opcode = self._fragments_opcode
            payload = bytes(fragments)
            self._fragments = None
        else:  # start of a data message
            if self._fragments is not None:
                self._abort()  # a new message before the previous one ended
                return None
            if not final:
                self._fragments_opcode = opcode
                self._fragments = bytearray(payload)
                return None
        return opcode, payload

    # ------------------------------------------------------------ the end

    def _failed(self) -> None:
        self.handler.log_exception(*sys.exc_info())
        self._stop(abort=True)

    def _stop(self, abort: bool = False) -> None:
        """Reading is over: tell the handler once (what tornado's loop does when it ends)."""
        if abort:
            self._abort()
        self._unparsed = b""
        self._fragments = None
        if not self._reader_done:
            self._reader_done = True
            self.handler.on_ws_connection_close(self.close_code, self.close_reason)


class KeepAlive:
    """Pings every connection of one loop that has the same interval and timeout, from one
    timer (see the module docstring); a connection leaves when it closes."""

    _timers: dict[tuple[asyncio.AbstractEventLoop, float, float], KeepAlive] = {}

    def __init__(self, loop: asyncio.AbstractEventLoop, interval: float, timeout: float) -> None:
        self.loop = loop
        self.interval = interval
        self.timeout = timeout
        #: members, in joining order (a dict as an ordered set)
        self.members: dict[BufferedProtocol, None] = {}
        #: pinged at the last tick and not yet checked for their pong
        self._pinged: list[BufferedProtocol] = []
        self._timer: asyncio.TimerHandle | None = None
        self._check: asyncio.TimerHandle | None = None

    @classmethod
    def join(cls, protocol: BufferedProtocol, interval: float, timeout: float) -> KeepAlive:
        loop = asyncio.get_running_loop()
        key = (loop, interval, timeout)
        keepalive = cls._timers.get(key)
        if keepalive is None:
            keepalive = cls._timers[key] = cls(loop, interval, timeout)
        keepalive.add(protocol)
        return keepalive

    def add(self, protocol: BufferedProtocol) -> None:
        """A member from now on; the timer starts with the first one."""
        self.members[protocol] = None
        if self._timer is None:
            self._timer = self.loop.call_later(self.interval, self._tick)

    def leave(self, protocol: BufferedProtocol) -> None:
        self.members.pop(protocol, None)
        if not self.members:
            for timer in (self._timer, self._check):
                if timer is not None:
                    timer.cancel()
            self._timer = self._check = None
            self._pinged = []
            key = (self.loop, self.interval, self.timeout)
            if self._timers.get(key) is self:
                del self._timers[key]

    def _tick(self) -> None:
        self._timer = self.loop.call_later(self.interval, self._tick)
        if self._pinged:  # a timeout as long as the interval: checked now, before the pings
            self._expire()
        pinged = self._pinged = list(self.members)
        for protocol in pinged:
            protocol.keepalive_ping()
        if 0 < self.timeout < self.interval:
            self._check = self.loop.call_later(self.timeout, self._expire)
        elif not self.timeout:
            self._pinged = []

    def _expire(self) -> None:
        """Close the connections that did not answer the last ping."""
        self._check = None
        pinged, self._pinged = self._pinged, []
        for protocol in pinged:
            if not protocol.answered_ping and protocol in self.members:
                protocol.close(reason="ping timed out")


def buffered_protocol(handler: WebSocketHandler) -> WebSocketProtocol | None:
    """The protocol tornado would use for ``handler``'s upgrade, as a :class:`BufferedProtocol`
    (None when tornado refuses the upgrade's WebSocket version)."""
    protocol = WebSocketHandler.get_websocket_protocol(handler)
    if type(protocol) is not WebSocketProtocol13:
        return protocol
    return BufferedProtocol(handler, False, protocol.params)


def uncompressed_stream(connection: WebSocketProtocol | None) -> IOStream | None:
    """The stream under ``connection`` when frames written to it directly are exactly what
    tornado would write (an open RFC 6455 connection without compression); else None."""
    stream: IOStream | None = getattr(connection, "stream", None)
    if stream is None or getattr(connection, "_compressor", None) is not None:
        return None
    return stream


def send_now(stream: IOStream, data: bytes) -> int:
    """Hand ``data`` to the kernel at once when tornado has nothing of its own left to send:
    the bytes it took (0 when the stream is busy or closed, or the socket takes nothing now).

    The rest goes through ``stream.write`` as usual. A write the kernel takes whole then
    costs one ``send`` and no future, buffer or loop callback: in a join storm every reader is
    written once per announce window, and tornado's write machinery was most of that cost.
    Order is kept: bytes go straight to the socket only when tornado holds none. An error
    (a reset peer) is left for ``stream.write`` to meet and report as tornado does. A TLS
    stream (a Jupyter server with a certificate) always goes through tornado, which drives
    the TLS session's own state."""
    if type(stream) is not IOStream or stream.writing() or stream.closed():
        return 0
    try:
        return stream.socket.send(data)
    except OSError:  # BlockingIOError (a full socket buffer) or a reset peer: tornado's turn
        return 0
