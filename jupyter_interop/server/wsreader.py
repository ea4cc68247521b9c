"""A leaner WebSocket frame reader for the gateway, after tornado's handshake.

tornado's ``WebSocketProtocol13`` reads each frame with three to four awaited
``IOStream.read_bytes`` calls (header, length, mask, payload). Each is a future, a trip through
the stream's buffer and, because the buffer is left non-empty between them, the socket is
removed from and added back to the selector once per frame (two ``epoll_ctl`` calls). In the
hub that was about a quarter of the CPU spent per routed message. :class:`BufferedProtocol`
keeps everything else of tornado's protocol (handshake, writes, close handshake and codes,
pings and pongs, ``max_message_size``) and only replaces the read loop: one partial read takes
whatever arrived, and every complete frame in it is parsed in a plain loop. A frame larger
than one read is read straight into a buffer of its size (no growing concatenation).

The rules are tornado's own, in the same order: reserved bits, fragmented or oversized
control frames and continuation frames without a start abort the connection; a message over
``max_message_size`` is closed with 1009 before its payload is read; frames are handled one by
one, and a handler's awaitable (``on_message`` returning one) is awaited before the next frame.
"""

from __future__ import annotations

import asyncio
import struct
from typing import cast

from tornado.iostream import StreamClosedError
from tornado.websocket import WebSocketHandler, WebSocketProtocol, WebSocketProtocol13

try:  # websockets' C unmasking takes any buffer (tornado's only bytes); as websockets does
    from websockets.speedups import apply_mask
except ImportError:  # pragma: no cover - built without its C extension
    from websockets.utils import apply_mask

__all__ = ["READ_SIZE", "BufferedProtocol", "buffered_protocol"]

#: bytes asked for per read (what the socket has, up to this)
READ_SIZE = 64 * 1024
#: the loop yields to the others after handling this much (tornado's _YIELD_THRESHOLD)
_YIELD_BYTES = 256 * 1024
#: cost of one frame in that budget, whatever its size (tornado's _FRAME_YIELD_COST)
_FRAME_COST = 1024

_unpack_16 = struct.Struct("!H").unpack_from
_unpack_64 = struct.Struct("!Q").unpack_from


class BufferedProtocol(WebSocketProtocol13):
    """tornado's RFC 6455 server protocol with a read loop that parses frames from whole
    reads (see the module docstring)."""

    async def _receive_frame_loop(self) -> None:
        try:
            await self._read_frames()
        except StreamClosedError:
            self._abort()
        finally:
            self.handler.on_ws_connection_close(self.close_code, self.close_reason)

    async def _read_frames(self) -> None:
        stream = self.stream
        max_size = self.params.max_message_size
        buf: bytes = b""
        work = 0
        while not self.client_terminated:
            data = await stream.read_bytes(READ_SIZE, partial=True)
            self._wire_bytes_in += len(data)
            buf = buf + data if buf else data
            pos = 0
            end = len(buf)
            while end - pos >= 2:
                b0 = buf[pos]
                b1 = buf[pos + 1]
                opcode = b0 & 0x0F
                reserved = b0 & 0x70
                if self._decompressor is not None and opcode != 0:
                    self._frame_compressed = bool(reserved & self.RSV1)
                    reserved &= ~self.RSV1
                if reserved:
                    self._abort()  # an extension the peer did not negotiate
                    return
                length = b1 & 0x7F
                control = opcode & 0x8
                if control and length >= 126:
                    self._abort()
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
                total = length + (len(fragments) if fragments is not None else 0)
                if total > max_size:
                    self.close(1009, "message too big")
                    self._abort()
                    return
                mask = None
                if b1 & 0x80:
                    if end - pos < head + 4:
                        break
                    mask = buf[pos + head : pos + head + 4]
                    head += 4
                start = pos + head
                stop = start + length
                if stop <= end:
                    payload: bytes = buf[start:stop]
                    if mask is not None:
                        payload = apply_mask(payload, mask)
                    pos = stop
                elif length > READ_SIZE:
                    # a large frame: the rest is read into a buffer of its size
                    whole = bytearray(length)
                    view = memoryview(whole)
                    have = end - start
                    view[:have] = buf[start:end]
                    # (tornado reads into any writable buffer, a memoryview slice included)
                    await stream.read_into(cast(bytearray, view[have:]))
                    self._wire_bytes_in += length - have
                    del view
                    payload = apply_mask(whole, mask) if mask is not None else bytes(whole)
                    buf = b""
                    pos = end = 0
                else:
                    break  # the rest of this frame is in the next read
                if not self._frame(b0, opcode, control, payload):
                    return
                if b0 & self.FIN:
                    handled = self._handle_message(self._message_opcode, self._message)
                    self._message = b""
                    if handled is not None:
                        await handled
                    if self.client_terminated:
                        return
                work += _FRAME_COST + head + length
                if work >= _YIELD_BYTES:
                    work = 0
                    await asyncio.sleep(0)  # let the other connections in
            buf = buf[pos:] if pos < end else b""

    #: the message to handle once a final frame was read, and its opcode
    _message: bytes = b""
    _message_opcode: int = 0
    #: a fragmented message being received, and its opcode
    _fragments: bytearray | None = None
    _fragments_opcode: int = 0

    def _frame(self, b0: int, opcode: int, control: int, payload: bytes) -> bool:
        """Fragmentation rules (tornado's): the message to handle when this frame is final
        goes into ``_message``/``_message_opcode``; False when the connection was aborted."""
        final = b0 & self.FIN
        if control:
            if not final:
                self._abort()  # control frames must not be fragmented
                return False
        elif opcode == 0:  # continuation
            fragments = self._fragments
            if fragments is None:
                self._abort()  # nothing to continue
                return False
            fragments.extend(payload)
            if not final:
                return True
            opcode = self._fragments_opcode
            payload = bytes(fragments)
            self._fragments = None
        else:  # start of a data message
            if self._fragments is not None:
                self._abort()  # a new message before the previous one ended
                return False
            if not final:
                self._fragments_opcode = opcode
                self._fragments = bytearray(payload)
                return True
        self._message_opcode = opcode
        self._message = payload
        return True


def buffered_protocol(handler: WebSocketHandler) -> WebSocketProtocol | None:
    """The protocol tornado would use for ``handler``'s upgrade, as a :class:`BufferedProtocol`
    (None when tornado refuses the upgrade's WebSocket version)."""
    protocol = WebSocketHandler.get_websocket_protocol(handler)
    if type(protocol) is not WebSocketProtocol13:
        return protocol
    return BufferedProtocol(handler, False, protocol.params)
