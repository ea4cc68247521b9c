"""WebSocket framing of what a peer's outbox gives, written to tornado's stream in few writes.

:class:`~.gateway.GatewaySocket` decides *when* to write (its outbox's frames, then one flush);
this module decides *how*. Small frames (and announcements, framed already) are joined into
one write; a large frame is written from itself, never copied into a batch, a binary one cut
into chunk frames (``protocol/chunks.py``) when it exceeds what a peer accepts in one frame;
a :class:`~..protocol.frames.PiecedFrame` is written piece by piece. The gateway never
negotiates compression, so these frames are what tornado's ``write_message`` would produce;
on a protocol object this module does not know, each message goes through ``write_message``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..protocol.chunks import chunk_views
from ..protocol.frames import PiecedFrame
from .announcements import Rendered
from .announcements import frame_header as _frame_header
from .attachments import is_binary
from .wsreader import send_now

__all__ = ["write_frames", "write_messages"]

#: frames above this are written on their own (not copied into a batch's single write)
LARGE = 64 * 1024


def write_frames(
    stream: Any,
    frames: list[bytes | Rendered],
    chunk_size: int,
    next_chunk_id: Callable[[], int],
) -> tuple[Any, int]:
    """Frame ``frames`` onto tornado's ``stream``: the future of the last write (None when
    the kernel took everything at once, see :func:`~.wsreader.send_now`) and the bytes
    written."""
    parts: list[Any] = []
    last = None
    written = 0
    for item in frames:
        if isinstance(item, Rendered):  # announcements, framed already (one join)
            wire = item.wire()
            written += len(wire)
            parts.append(wire)
            continue
        frame = item
        size = len(frame)
        written += size
        if size > LARGE:
            # a large frame is written from the encoded frame itself (no copy into the
            # batch; every recipient writes the same object), a binary one cut into chunk
            # frames when it would exceed what a peer accepts in one frame
            if parts:
                stream.write(b"".join(parts)).add_done_callback(_consume)
                parts = []
            last = _write_large(stream, frame, chunk_size, next_chunk_id)
            continue
        parts.append(_frame_header(size, 0x82 if is_binary(frame) else 0x81))
        parts.extend(_pieces(frame))
    if parts:
        data = parts[0] + parts[1] if len(parts) == 2 else b"".join(parts)
        sent = 0
        if last is None:
            sent = send_now(stream, data)
            if sent == len(data):
                return None, written
        else:
            last.add_done_callback(_consume)
        last = stream.write(memoryview(data)[sent:] if sent else data)
    return last, written


def write_messages(
    write_message: Callable[..., Any],
    frames: list[bytes | Rendered],
    chunk_size: int,
    next_chunk_id: Callable[[], int],
) -> Any:
    """Hand each message of ``frames`` to tornado's ``write_message`` (a binary one larger
    than ``chunk_size`` as its chunk frames); the future of the last write."""
    last = None
    plain: list[bytes] = []
    for item in frames:
        if isinstance(item, Rendered):
            plain.extend(item.frames())
        else:
            plain.append(item)
    for frame in plain:
        binary = is_binary(frame)
        pieces = _pieces(frame)
        if binary and len(frame) > chunk_size:
            chunks = [
                b"".join([head, *views])
                for head, views in chunk_views(pieces, len(frame), next_chunk_id(), chunk_size)
            ]
        else:
            chunks = [frame if len(pieces) == 1 else b"".join(pieces)]
        for chunk in chunks:
            if last is not None:
                last.add_done_callback(_consume)
            last = write_message(chunk, binary=binary)
    return last


def _write_large(
    stream: Any, frame: bytes, chunk_size: int, next_chunk_id: Callable[[], int]
) -> Any:
    """Write one large frame: whole, or (binary) as chunk frames; the last write's future.
    A :class:`PiecedFrame` is written piece by piece (tornado keeps a reference to each
    large piece until it is sent: the value is never copied on its way out)."""
    size = len(frame)
    binary = is_binary(frame)
    pieces = _pieces(frame)
    if size <= chunk_size or not binary:
        opcode = 0x82 if binary else 0x81
        return _write_pieces(stream, _frame_header(size, opcode), pieces)
    last = None
    for head, views in chunk_views(pieces, size, next_chunk_id(), chunk_size):
        length = len(head) + sum(p.nbytes for p in views)
        if last is not None:
            last.add_done_callback(_consume)
        last = _write_pieces(stream, _frame_header(length, 0x82) + head, views)
    return last


def _consume(future: Any) -> None:
    """Retrieve a write future's outcome so a closed stream is not logged as unhandled."""
    if not future.cancelled():
        future.exception()


def _pieces(frame: bytes) -> list[Any]:
    """What ``frame`` is made of, in order: a :class:`PiecedFrame`'s parts, else itself."""
    return frame.parts if isinstance(frame, PiecedFrame) else [frame]


def _write_pieces(stream: Any, head: bytes, pieces: list[Any]) -> Any:
    """Write ``head`` then each non-empty piece; the future of the last write."""
    last = stream.write(head)
    for piece in pieces:
        if len(piece):
            last.add_done_callback(_consume)
            last = stream.write(piece)
    return last
