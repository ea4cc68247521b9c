"""How GW3 messages are put into WebSocket frames and taken out again, on both sides.

One module for the three shapes a frame can have beyond "one JSON message": a *batch* (the
``batch`` extension: a JSON array of messages, closed at a byte cap and, on the client, a
message cap), a *run* (the ``runs`` extension: consecutive items of one stream folded into one
``publish-many`` message) and a *chunk* (a large binary message cut into chunk frames, see
``frames.py``). The client's connection (client/connection.py, client/core.py) and the hub's
transport (server/outbox.py, server/gateway.py) both frame and deframe through here; each side
keeps its own caps, from ``limits.py``. No I/O: queues in, frames or messages out.
"""

from __future__ import annotations

from collections import deque
from typing import Any

import orjson

from .chunks import CHUNK_MAGIC, ChunkAssembler, is_chunk
from .codec import load_json
from .limits import (
    CLIENT_BATCH_MAX_BYTES,
    CLIENT_BATCH_MAX_MESSAGES,
    HUB_BATCH_MAX_BYTES,
    MAX_NESTING,
    frame_too_deep,
    too_deep_error,
)

__all__ = [
    "CHUNK_MAGIC",
    "ChunkAssembler",
    "batch_frames",
    "decode_batch",
    "fold_items",
    "is_batch",
    "is_chunk",
    "join_batch",
    "take_batch",
    "take_frame",
]

# ------------------------------------------------------------------ batches: framing


def join_batch(frames: list[bytes]) -> bytes:
    """One batch frame holding the given JSON object frames, in order."""
    return b"[" + b",".join(frames) + b"]"


def take_batch(
    first: bytes,
    queue: deque[Any],
    max_bytes: int = CLIENT_BATCH_MAX_BYTES,
    max_messages: int = CLIENT_BATCH_MAX_MESSAGES,
) -> bytes:
    """``first`` (a JSON frame) and the JSON frames that follow it in ``queue``, taken from
    it, as one batch frame, up to ``max_bytes`` (counting the commas) and ``max_messages``;
    a binary frame ends the batch, a run of stream items (``(stream_id, data)`` tuples, see
    :func:`fold_items`) joins it as one message. Order is kept; a batch of one is ``first``
    itself. (``queue`` may be appended to by other threads meanwhile.)"""
    frames = [first]
    append = frames.append
    popleft = queue.popleft
    size = len(first)
    room = max_messages - 1
    while queue and room:
        frame = queue[0]
        if frame.__class__ is tuple:  # a run of stream items: folded in place, in order
            frame = fold_items(popleft(), queue, max_bytes, max_messages)
            queue.appendleft(frame)
        # JSON frames are bytes starting with "{" (123); anything else ends the batch
        if frame.__class__ is not bytes or frame[0] != 123:
            break
        size += len(frame) + 1
        if size > max_bytes:
            break
        append(popleft())
        room -= 1
    return first if len(frames) == 1 else join_batch(frames)


def take_frame(
    queue: deque[Any],
    batch: Any,
    max_bytes: int = CLIENT_BATCH_MAX_BYTES,
    max_messages: int = CLIENT_BATCH_MAX_MESSAGES,
) -> bytes:
    """The next frame to write from ``queue`` (taken from it): a run of stream items folded
    into one message (:func:`fold_items`), consecutive JSON frames joined into one batch
    frame when ``batch`` (:func:`take_batch`), anything else (binary or chunked) as it is."""
    frame = queue.popleft()
    if frame.__class__ is tuple:
        frame = fold_items(frame, queue, max_bytes, max_messages)
    if batch and queue and frame[:1] == b"{":
        return take_batch(frame, queue, max_bytes, max_messages)
    return frame


def batch_frames(
    frames: list[bytes], max_bytes: int = HUB_BATCH_MAX_BYTES, max_messages: int = 0
) -> list[bytes]:
    """Runs of consecutive JSON frames as batch frames (:func:`take_batch`; ``max_messages``
    0: no message cap, the hub's rule), for a peer that negotiated the ``batch`` extension.
    Order is kept; a binary frame is never put in a batch and ends the run before it; a run
    of one stays a plain frame."""
    if len(frames) < 2:
        return frames
    queue = deque(frames)
    popleft = queue.popleft
    cap = max_messages or len(frames)
    out: list[bytes] = []
    append = out.append
    while queue:
        frame = popleft()
        append(take_batch(frame, queue, max_bytes, cap) if frame[:1] == b"{" else frame)
    return out


# ------------------------------------------------------------------ runs of stream items


def fold_items(
    first: tuple[str, bytes],
    queue: deque[Any],
    max_bytes: int = CLIENT_BATCH_MAX_BYTES,
    max_messages: int = CLIENT_BATCH_MAX_MESSAGES,
) -> bytes:
    """``first`` (a stream id and one item's encoded JSON data) and the items of the same
    stream that follow it in ``queue``, taken from it, as one message: ``publish`` for a lone
    item, else ``publish-many`` (the ``runs`` extension), up to the caps."""
    stream_id, data = first
    datas = [data]
    size = len(data)
    while queue and len(datas) < max_messages:
        item = queue[0]
        if item.__class__ is not tuple or item[0] != stream_id:
            break
        size += len(item[1]) + 1
        if size > max_bytes:
            break
        datas.append(queue.popleft()[1])
    head = b'{"domain":"agm","stream_id":' + orjson.dumps(stream_id)
    if len(datas) == 1:
        return head + b',"type":"publish","data":' + data + b"}"
    return head + b',"type":"publish-many","items":[' + b",".join(datas) + b"]}"


# ------------------------------------------------------------------ batches: deframing


def is_batch(frame: str | bytes | bytearray) -> bool:
    """Is this text frame a batch (the ``batch`` extension: a JSON array of GW3 messages)?

    Only the first character is looked at: GW3 messages are objects, and our encoders never
    put whitespace before them.
    """
    return frame[:1] in (b"[", "[")


def decode_batch(frame: str | bytes | bytearray) -> list[Any]:
    """Decode a batch frame into its items, in order (each is checked by the caller: an item
    that is not an object is refused on its own, the others are still handled). An item
    nested deeper than ``limits.MAX_NESTING`` is replaced by its refusal, a ProtocolError."""
    items: list[Any] = load_json(frame, list, "A batch must be a JSON array")
    if frame_too_deep(frame, MAX_NESTING + 1):  # the array is one level more
        items = [_refused_if_too_deep(item) for item in items]
    return items


def _refused_if_too_deep(item: Any) -> Any:
    try:
        encoded = orjson.dumps(item)
    except orjson.JSONEncodeError:  # deeper than orjson writes: deeper than the limit
        return too_deep_error(item)
    return too_deep_error(item) if frame_too_deep(encoded) else item
