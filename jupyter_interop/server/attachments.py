"""Binary attachments through the hub: decode binary frames, encode for each kind of peer.

A peer that negotiated ``binary`` in ``hello`` may send binary frames (format in
``jupyter_interop.protocol.frames``). Their placeholders become :class:`Attachment` objects in
the decoded message, and the core carries them by reference like any other value: ``call`` to
``invoke``, ``yield`` to ``result``, ``publish``/``post`` to ``event``, bus events, and context
data, which keeps them for later snapshots. Nothing in the core looks at them.

Encoding is where the kinds of peers differ: :class:`FrameCache` encodes each outgoing message
once per kind of recipient. A message without attachments is encoded exactly once, as before
(orjson only calls the ``default`` hook for values it cannot encode, so the hot path does no
extra work); with attachments, binary peers get the placeholders and the same buffers, other
peers (the io.Connect JS clients) the documented JSON form, converted once per attachment.

Shared memory (``protocol/shm.py``, ``server/shm.py``): a peer on the hub's host that negotiated
``shm`` and proved it sees the hub's directory sends large attachments as references to files;
:func:`decode_frame` hands them to the peer's inbox, which takes the files over. Such peers get
references to the files the hub holds (:data:`SHARED` frames); every other peer gets the same
buffers or JSON form as before, read from the file once.
"""

from __future__ import annotations

from enum import IntEnum
from typing import Any, Protocol

import orjson

from ..protocol import ProtocolError, Reason
from ..protocol.codec import encode
from ..protocol.frames import (
    MAGIC,
    Attachment,
    FrameError,
    Pieces,
    attach,
    encode_binary,
    unpack_frame,
)
from ..protocol.limits import check_frame_nesting
from ..protocol.wire import BINARY_EXTENSION, EVENT_TYPE, SHM_EXTENSION

__all__ = [
    "BINARY_EXTENSION",
    "SHM_EXTENSION",
    "AttachmentForm",
    "FrameCache",
    "decode_frame",
    "fit",
    "is_binary",
    "wants_binary",
]


class AttachmentForm(IntEnum):
    """How attachments are encoded for a peer (true for the peers that take binary frames)."""

    JSON = 0
    BINARY = 1
    SHARED = 2


class Claimer(Protocol):
    """A proven peer's inbox (``server/shm.py``): takes over the files it references."""

    def claim(self, meta: dict[str, Any], ref: Any) -> Attachment: ...


Message = dict[str, Any]


def is_binary(frame: bytes) -> bool:
    """Is this outgoing frame a binary one (else a JSON text frame)?"""
    return frame[:4] == MAGIC


# (module constants: an enum member looked up on its class costs more than the rest of the
# function, which runs once per recipient of every message)
_JSON, _BINARY, _SHARED = AttachmentForm.JSON, AttachmentForm.BINARY, AttachmentForm.SHARED


def wants_binary(extensions: Any) -> AttachmentForm:
    """The form of attachments for a peer, from its accepted extensions (falsy: JSON only)."""
    if not extensions or BINARY_EXTENSION not in extensions:
        return _JSON
    return _SHARED if extensions.get(SHM_EXTENSION) is True else _BINARY


def decode_frame(frame: bytes | bytearray | Pieces, inbox: Claimer | None = None) -> Message:
    """A binary frame as a message whose placeholders are :class:`Attachment` objects.

    The attachments are views of ``frame`` (no copy): a frame that arrived in chunk frames
    is the pieces they carried (``ChunkAssembler`` in ``protocol/chunks.py``), and an
    attachment spanning several of them holds them as :class:`Pieces`, forwarded as they
    are. References to shared-memory files are claimed by the sender's ``inbox`` (refused
    without one).
    """
    try:
        header, buffers = unpack_frame(frame)
        message = orjson.loads(header)
    except (FrameError, orjson.JSONDecodeError) as error:
        raise ProtocolError(Reason.INVALID_MESSAGE, f"Bad binary frame: {error}") from None
    if not isinstance(message, dict):
        raise ProtocolError(Reason.INVALID_MESSAGE, "A binary frame's header must be an object")
    check_frame_nesting(header, message)
    try:
        attached = attach(message, buffers, inbox.claim if inbox is not None else None)
    except FrameError as error:
        raise ProtocolError(Reason.INVALID_MESSAGE, str(error)) from None
    assert isinstance(attached, dict)
    return attached


class _HasAttachment(Exception):
    """Raised by the probe encoder: this message needs one encoding per kind of peer."""


def _probe(obj: Any) -> Any:
    if isinstance(obj, Attachment):
        raise _HasAttachment
    raise TypeError(f"Type is not JSON serializable: {type(obj).__name__}")


#: frames up to this size are copied into an exactly sized ``bytes`` before being queued
_FIT_LIMIT = 64 * 1024


def fit(frame: bytes) -> bytes:
    """``frame`` in an allocation of its own size.

    orjson returns its output in a buffer with about 4 KiB of slack: harmless for a frame
    written at once, but an outbox holding the announcements of a thousand joins to a peer
    that reads slowly would hold 4 KiB for each 300-byte frame (and the allocator keeps that
    high-water mark). The copy costs about 0.1 µs for a small frame, yet on the stream fan-out
    path it was 13% of the hub's busy time: stream and bus events, written within the loop
    tick (or dropped when a peer lags), are not copied.
    """
    if frame.__class__ is not bytes:  # a PiecedFrame: its pieces are the value's own buffers
        return frame
    return bytes(memoryview(frame)) if len(frame) < _FIT_LIMIT else frame


class FrameCache:
    """The frames of the messages of one dispatch, each encoded at most once per kind."""

    __slots__ = ("_frames",)

    def __init__(self) -> None:
        #: id(message) -> [JSON, binary, shared frame] (the same object when no attachments)
        self._frames: dict[int, list[bytes | None]] = {}

    def frame_for(self, message: Message, form: int) -> bytes:
        """The frame of ``message`` for a peer taking attachments in ``form``
        (:class:`AttachmentForm`; a bool means JSON or binary)."""
        entry = self._frames.get(id(message))
        if entry is None:
            try:
                frame = orjson.dumps(message, default=_probe)
                if message.get("type") != EVENT_TYPE:
                    frame = fit(frame)
            except TypeError as error:
                if not isinstance(error.__cause__, _HasAttachment):
                    raise
                entry = self._frames[id(message)] = [None, None, None]
            else:
                entry = self._frames[id(message)] = [frame, frame, frame]
        cached = entry[form]  # (a bool or an AttachmentForm indexes the list as it is)
        if cached is not None:
            return cached
        # attachments as references for peers sharing the hub's memory, as buffers for binary
        # peers, as their JSON form for the others
        shared = form == _SHARED
        encoded = encode(message) if form == _JSON else encode_binary(message, shared=shared)
        frame = entry[form] = fit(encoded)
        return frame
