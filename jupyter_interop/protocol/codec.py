"""JSON text codec for GW3 frames.

orjson is used because per-hop encode/decode dominates hub cost (see the performance notes);
every frame is decoded once on arrival and encoded once per recipient.
"""

from __future__ import annotations

from typing import Any

import orjson

from .addressed import Addressed
from .errors import ProtocolError, Reason
from .frames import Attachment
from .limits import MAX_NESTING, check_frame_nesting, frame_too_deep, too_deep_error

Message = dict[str, Any]


def encode(message: Message) -> bytes:
    """Encode a message as UTF-8 JSON bytes.

    A binary attachment in it (see ``frames.Attachment``) becomes its documented JSON form:
    what a peer without binary frames must get. orjson calls the hook only for such values,
    so plain messages cost nothing extra. An :class:`~.addressed.Addressed` message (one
    recipient's copy of an announcement) is encoded already.
    """
    if type(message) is Addressed:
        return message.frame
    return orjson.dumps(message, default=_attachment_json)


def _attachment_json(obj: Any) -> Any:
    if isinstance(obj, Attachment):
        return obj.json_fragment()
    raise TypeError(f"Type is not JSON serializable: {type(obj).__name__}")


def _load(frame: str | bytes, kind: type, what: str) -> Any:
    try:
        value = orjson.loads(frame)
    except orjson.JSONDecodeError as e:
        raise ProtocolError(Reason.INVALID_MESSAGE, f"Frame is not valid JSON: {e}") from None
    if not isinstance(value, kind):
        raise ProtocolError(Reason.INVALID_MESSAGE, f"{what}, not {type(value).__name__}")
    return value


def decode(frame: str | bytes) -> Message:
    """Decode one text frame into a message dict, or raise a ProtocolError (one nested
    deeper than ``limits.MAX_NESTING`` is refused with the decoded message in the error)."""
    message: Message = _load(frame, dict, "A message must be a JSON object")
    check_frame_nesting(frame, message)
    return message


def is_batch(frame: str | bytes) -> bool:
    """Is this text frame a batch (the ``batch`` extension: a JSON array of GW3 messages)?

    Only the first character is looked at: GW3 messages are objects, and our encoders never
    put whitespace before them.
    """
    return frame[:1] in (b"[", "[")


def decode_batch(frame: str | bytes) -> list[Any]:
    """Decode a batch frame into its items, in order (each is checked by the caller: an item
    that is not an object is refused on its own, the others are still handled). An item
    nested deeper than ``limits.MAX_NESTING`` is replaced by its refusal, a ProtocolError."""
    items: list[Any] = _load(frame, list, "A batch must be a JSON array")
    if frame_too_deep(frame, MAX_NESTING + 1):  # the array is one level more
        items = [_refused_if_too_deep(item) for item in items]
    return items


def _refused_if_too_deep(item: Any) -> Any:
    try:
        encoded = orjson.dumps(item)
    except orjson.JSONEncodeError:  # deeper than orjson writes: deeper than the limit
        return too_deep_error(item)
    return too_deep_error(item) if frame_too_deep(encoded) else item


def join_batch(frames: list[bytes]) -> bytes:
    """One batch frame holding the given JSON object frames, in order."""
    return b"[" + b",".join(frames) + b"]"
