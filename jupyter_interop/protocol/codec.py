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
from .limits import check_frame_nesting

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


def load_json(frame: str | bytes | bytearray, kind: type, what: str) -> Any:
    """The JSON value of ``frame``, of type ``kind``, or a ProtocolError saying ``what``."""
    try:
        value = orjson.loads(frame)
    except orjson.JSONDecodeError as e:
        raise ProtocolError(Reason.INVALID_MESSAGE, f"Frame is not valid JSON: {e}") from None
    if not isinstance(value, kind):
        raise ProtocolError(Reason.INVALID_MESSAGE, f"{what}, not {type(value).__name__}")
    return value


def decode(frame: str | bytes | bytearray) -> Message:
    """Decode one text frame into a message dict, or raise a ProtocolError (one nested
    deeper than ``limits.MAX_NESTING`` is refused with the decoded message in the error)."""
    message: Message = load_json(frame, dict, "A message must be a JSON object")
    check_frame_nesting(frame, message)
    return message
