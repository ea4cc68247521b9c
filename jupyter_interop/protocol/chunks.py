"""Chunk frames: binary messages larger than one WebSocket frame should carry.

A binary frame longer than :data:`CHUNK_SIZE` (8 MiB, well below the hub's 64 MiB
WebSocket frame limit) travels as a sequence of chunk frames, each a WebSocket binary message::

    offset 0   b"JIC1"                       magic
           4   uint32 LE  message id         the sender's counter; chunks of one message share it
           8   uint32 LE  flags              bit 0: last chunk
          12   uint64 LE  total length T     of the whole binary frame
          20   uint64 LE  offset             of this chunk's bytes in the whole frame
          28   the bytes

A sender writes a message's chunks in order (offsets 0, n, 2n, ...); the receiver keeps them
and handles the reassembled frame as if it had arrived whole (:class:`ChunkAssembler`): the
hub as the pieces that arrived (it forwards them as they are), a client copied into one
buffer. What a message holds grows with the bytes that arrive, never from T: T is only
checked against the receiver's cap on one message when the first chunk arrives, and the bytes
held for all messages still arriving count against one budget per process
(:class:`ReassemblyBudget`, the hub's ``max_reassembly_bytes``).
"""

from __future__ import annotations

import mmap
import struct
from collections.abc import Iterator
from typing import Any

from .frames import FrameError, Pieces, peek_header

__all__ = [
    "CHUNK_HEADER",
    "CHUNK_HEADER_SIZE",
    "CHUNK_MAGIC",
    "CHUNK_SIZE",
    "DEFAULT_MAX_ATTACHMENT_BYTES",
    "ChunkAssembler",
    "ChunkTooLarge",
    "ChunkedFrame",
    "ReassemblyBudget",
    "ReceivedPieces",
    "chunk_count",
    "chunk_frames",
    "chunk_views",
    "is_chunk",
]

CHUNK_MAGIC = b"JIC1"
#: binary frames longer than this travel as chunk frames of at most this many bytes of payload
CHUNK_SIZE = 8 * 1024 * 1024
#: default cap on one reassembled message (the hub's is ``max_attachment_bytes``)
DEFAULT_MAX_ATTACHMENT_BYTES = 2 * 1024 * 1024 * 1024
#: the header of a chunk frame (magic, message id, flags, total length, offset)
CHUNK_HEADER = struct.Struct("<4sIIQQ")
_CHUNK = CHUNK_HEADER
CHUNK_HEADER_SIZE = _CHUNK.size
_LAST = 1


def is_chunk(frame: bytes | bytearray | memoryview) -> bool:
    return bytes(frame[:4]) == CHUNK_MAGIC


def chunk_count(total: int, chunk_size: int = CHUNK_SIZE) -> int:
    return max(1, -(-total // chunk_size))


def chunk_views(
    parts: list[Any], total: int, message_id: int, chunk_size: int = CHUNK_SIZE
) -> Iterator[tuple[bytes, list[memoryview]]]:
    """Cut a frame given as pieces (:func:`frame_parts`, or ``[frame]``) into chunks: for each,
    its chunk header and the views of the frame's bytes it carries (nothing is copied, so a
    transport can write the header and the views one after the other)."""
    if chunk_size < 1:
        raise ValueError("chunk_size must be positive")
    message_id &= 0xFFFFFFFF
    views = [memoryview(p).cast("B") for p in parts]
    index = 0
    within = 0
    offset = 0
    while True:
        size = min(chunk_size, total - offset)
        pieces: list[memoryview] = []
        need = size
        while need:
            view = views[index]
            take = min(need, view.nbytes - within)
            if take:
                pieces.append(view[within : within + take])
            within += take
            need -= take
            if within == view.nbytes:
                index += 1
                within = 0
        last = offset + size >= total
        yield _CHUNK.pack(CHUNK_MAGIC, message_id, _LAST if last else 0, total, offset), pieces
        offset += size
        if last:
            return


def chunk_frames(
    parts: list[Any], total: int, message_id: int, chunk_size: int = CHUNK_SIZE
) -> Iterator[bytes]:
    """The chunk frames of a frame, each as one ``bytes`` (one chunk in memory at a time)."""
    for head, pieces in chunk_views(parts, total, message_id, chunk_size):
        yield b"".join([head, *pieces])


class ChunkedFrame(bytes):
    """A binary frame too long for one WebSocket frame, kept as its pieces (the attachments'
    own buffers, not copied): iterating gives its chunk frames one at a time, so the sender
    holds one chunk more than the value it sends, never a second copy of the whole.

    It is a ``bytes`` object whose content is the chunk magic, so code that queues frames and
    tells binary from JSON by their first byte handles it unchanged; a writer sends
    ``iter(frame)`` instead of the frame.
    """

    parts: list[Any]
    total: int
    message_id: int

    def __new__(cls, parts: list[Any], total: int, message_id: int) -> ChunkedFrame:
        self = super().__new__(cls, CHUNK_MAGIC)
        self.parts = parts
        self.total = total
        self.message_id = message_id
        return self

    def __iter__(self) -> Iterator[bytes]:  # type: ignore[override]
        return chunk_frames(self.parts, self.total, self.message_id)

    def views(self) -> Iterator[tuple[bytes, list[memoryview]]]:
        """Its chunks as :func:`chunk_views` gives them (each chunk's header and views of the
        value), for a writer that frames the pieces itself."""
        return chunk_views(self.parts, self.total, self.message_id)


class ChunkTooLarge(FrameError):
    """A chunked message announced more bytes than the receiver accepts.

    ``header`` is the message's JSON header when the first chunk holds all of it (so the
    refusal can answer the request), else None.
    """

    def __init__(self, text: str, header: dict[str, Any] | None) -> None:
        super().__init__(text)
        self.header = header


class ReassemblyBudget:
    """Bytes held for chunked messages still arriving, across every connection that shares
    it (the hub has one for all its peers): a chunk that would go over ``limit`` is refused,
    with its message, and what that message held is given back at once."""

    __slots__ = ("held", "limit")

    def __init__(self, limit: int) -> None:
        if limit < 1:
            raise ValueError("A reassembly budget must be positive")
        self.limit = limit
        #: bytes received and not yet handed over as whole frames
        self.held = 0

    def take(self, count: int) -> bool:
        """Reserve ``count`` more bytes; False (nothing reserved) when over the limit."""
        if self.held + count > self.limit:
            return False
        self.held += count
        return True

    def give_back(self, count: int) -> None:
        self.held -= count


class ChunkAssembler:
    """Reassembles the chunk frames received on one connection into whole binary frames.

    :meth:`feed` takes each chunk frame and returns the whole frame with its last chunk, else
    None. How the whole frame is held depends on who reads it (``join``):

    - ``join=False`` (the hub, which forwards values without looking at them): the chunks'
      payloads as they arrived, :class:`ReceivedPieces` (views of the received chunk
      frames), never copied (``unpack_frame`` reads it, the pieces are written on as they are);
    - ``join=True`` (a client, which hands a value to numpy or Arrow as one buffer): one
      writable buffer of the announced length, an anonymous mapping whose pages are only
      touched as the bytes are copied in, so it is neither grown by copying nor zero-filled.

    Either way what a message holds grows with the bytes that arrived, charged to ``budget``
    (shared by all the connections of a hub; a budget of its own, ``max_bytes``, when none is
    given) until the whole frame is handed over. :class:`ChunkTooLarge` refuses a message on
    its first chunk when it announces more than ``max_bytes`` (with what the connection has
    announced already), or on any chunk that would take the budget over its limit; the
    message's later chunks are skipped. A malformed chunk raises :class:`FrameError` and drops
    that message. Partial messages live only here: :meth:`clear` (the connection closed)
    forgets them all.
    """

    __slots__ = ("_partial", "budget", "join", "max_bytes")

    def __init__(
        self,
        max_bytes: int = DEFAULT_MAX_ATTACHMENT_BYTES,
        budget: ReassemblyBudget | None = None,
        join: bool = True,
    ) -> None:
        self.max_bytes = max_bytes
        self.budget = budget if budget is not None else ReassemblyBudget(max_bytes)
        self.join = join
        #: message id -> [holder (None: refused, skipping), bytes received, total]
        self._partial: dict[int, list[Any]] = {}

    @property
    def pending_bytes(self) -> int:
        """Bytes held for messages still missing chunks (what arrived of them)."""
        return sum(e[1] for e in self._partial.values() if e[0] is not None)

    @property
    def announced_bytes(self) -> int:
        """Bytes the messages still missing chunks announced (counted against ``max_bytes``)."""
        return sum(e[2] for e in self._partial.values() if e[0] is not None)

    def __len__(self) -> int:
        return len(self._partial)

    def clear(self) -> None:
        self.budget.give_back(self.pending_bytes)
        self._partial.clear()

    def feed(self, frame: bytes | bytearray | memoryview) -> Any:
        view = memoryview(frame).cast("B")
        if view.nbytes < _CHUNK.size:
            raise FrameError("Chunk frame too short")
        magic, message_id, flags, total, offset = _CHUNK.unpack_from(view, 0)
        if magic != CHUNK_MAGIC:
            raise FrameError("Not a jupyter_interop chunk frame (bad magic)")
        payload = view[_CHUNK.size :].toreadonly()
        size = payload.nbytes
        last = bool(flags & _LAST)
        entry = self._partial.get(message_id)
        if entry is None:
            if offset != 0:
                raise FrameError(f"Chunk at offset {offset} of a message that did not start")
            if total > self.max_bytes - self.announced_bytes:
                self._skip_rest(message_id, size, total, last)
                raise ChunkTooLarge(
                    f"A message of {total} bytes exceeds the {self.max_bytes} bytes accepted "
                    "for one message with attachments",
                    peek_header(payload),
                )
            entry = [_Joined(total) if self.join else ReceivedPieces(), 0, total]
            self._partial[message_id] = entry
        holder, received, expected = entry
        if offset != received or total != expected or received + size > total:
            del self._partial[message_id]
            if holder is not None:
                self.budget.give_back(received)
            raise FrameError(
                f"Chunk out of order (offset {offset}, expected {received} of {expected})"
            )
        if holder is not None and not self.budget.take(size):
            header = holder.peek_header() if received else peek_header(payload)
            self.budget.give_back(received)
            del self._partial[message_id]
            self._skip_rest(message_id, received + size, total, last)
            raise ChunkTooLarge(
                f"Refused at {received + size} of its {total} bytes: chunked messages still "
                f"arriving may hold at most {self.budget.limit} bytes in all, and "
                f"{self.budget.held} are held (send it again once others completed)",
                header,
            )
        if holder is not None:
            holder.append(payload)
        entry[1] = received = received + size
        if not last:
            return None
        del self._partial[message_id]
        if holder is not None:
            self.budget.give_back(received)
        if received != total:
            raise FrameError(f"Last chunk at {received} of {total} bytes")
        return holder.whole() if holder is not None else None

    def _skip_rest(self, message_id: int, received: int, total: int, last: bool) -> None:
        """Remember a refused message so that its later chunks are skipped silently."""
        if not last:
            self._partial[message_id] = [None, received, total]


class ReceivedPieces(Pieces):
    """The payloads of a chunked message as they arrived (``ChunkAssembler(join=False)``)."""

    def peek_header(self) -> dict[str, Any] | None:
        return peek_header(self[0]) if self else None

    def whole(self) -> ReceivedPieces:
        return self


#: a private mapping where there is one: a shared anonymous mapping (``mmap``'s default) is
#: backed by shared memory, whose pages fault in slower (a 100 MiB message took half as long
#: again to copy in)
_PRIVATE: dict[str, int] = {"flags": mmap.MAP_PRIVATE} if hasattr(mmap, "MAP_PRIVATE") else {}


class _Joined:
    """One writable buffer of a chunked message's announced length, filled as chunks arrive
    (``ChunkAssembler(join=True)``): an anonymous mapping, so untouched pages cost nothing."""

    __slots__ = ("buffer", "filled")

    def __init__(self, total: int) -> None:
        try:
            self.buffer: Any = mmap.mmap(-1, total, **_PRIVATE) if total else bytearray()
        except (OSError, ValueError) as error:
            raise FrameError(f"Cannot hold a message of {total} bytes: {error}") from None
        self.filled = 0

    def append(self, payload: memoryview) -> None:
        end = self.filled + payload.nbytes
        self.buffer[self.filled : end] = payload
        self.filled = end

    def peek_header(self) -> dict[str, Any] | None:
        with memoryview(self.buffer) as view:
            return peek_header(view[: self.filled])

    def whole(self) -> Any:
        return self.buffer
