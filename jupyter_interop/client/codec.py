"""Python values on the GW3 wire: JSON plus dates, bytes, numpy arrays and pandas DataFrames.

Encoding goes through orjson with a ``default`` hook, so plain JSON costs nothing extra. The
hook handles what JSON lacks (the forms are documented in ``jupyter_interop.protocol.frames``):

* ``datetime``/``date``: io.Connect's ``"#T42_DATE#<epoch-ms>"`` string, which the JS clients
  revive as ``Date`` (a naive datetime is the writer's local time and a ``date`` its local
  midnight, as a JS ``Date`` built from fields; precision is one millisecond). Such strings
  are revived as timezone-aware ``datetime`` objects in the reader's local time, the same rule
  on both sides: a reader in the writer's time zone gets the writer's wall time back, with its
  offset (``value.replace(tzinfo=None)`` is what a naive writer wrote).
* ``bytes``, numpy arrays, pandas DataFrames: when the hub accepted binary frames (the
  ``binary`` extension of ``hello``), raw buffers next to the JSON (Arrow IPC for DataFrames
  when pyarrow is installed), with no base64 and no pickle: nothing a peer receives can execute
  code. Otherwise, and for JS peers, a tagged JSON object ``{"__ji__": kind, ...}``.
* numpy scalars become Python scalars; anything else is a :class:`SerializationError` that
  names the type.

* With the ``shm`` extension (the hub is on this host and the client proved it sees the hub's
  directory, see ``jupyter_interop.protocol.shm``), values of at least ``threshold`` bytes are
  written once into a file in the hub's shared-memory directory and the frame carries a
  reference; references from the hub are mapped copy-on-write as soon as the frame arrives.

Decoding revives only when the raw frame contains a marker, so ordinary messages are not walked.
Arrays revived from binary frames are read-only views of the received frame (``.copy()`` one
to modify it); they are shared by every callback that receives the same message. A DataFrame
from a frame that arrived in chunks (a large one) is built on writable views of the frame
this process reassembled, for the columns Arrow shares (numeric, without nulls): no copy.
Arrays and DataFrames revived from shared memory are writable views of a private mapping of
the file (a write copies the page in this process; nothing reaches the shared file).
"""

from __future__ import annotations

import datetime as _dt
import itertools
import logging
import sys
from collections.abc import Awaitable, Callable
from typing import Any

import orjson

from ..protocol.chunks import CHUNK_SIZE, ChunkedFrame
from ..protocol.frames import (
    DATE_PREFIX,
    TAG,
    dataframe_placeholder,
    date_string,
    frame_parts,
    json_default,
    ndarray_placeholder,
    revive_dataframe,
    revive_ndarray,
    unpack_frame,
)
from ..protocol.limits import MAX_NESTING, frame_too_deep, too_deep_error
from ..protocol.malloc import LARGE_FRAME, tune_for_large_frames
from ..protocol.shm import (
    DEFAULT_THRESHOLD,
    PROOF_TYPE,
    SharedFiles,
    SharedMemoryError,
    estimated_size,
    revive_shared,
)
from ..protocol.wire import GLOBAL_DOMAIN
from .errors import SerializationError

log = logging.getLogger("jupyter_interop")

__all__ = ["Codec", "date_string", "parse_date", "revive", "unwrap_value", "wrap_value"]

_UTC = _dt.timezone.utc
_EPOCH = _dt.datetime(1970, 1, 1, tzinfo=_UTC)
_DATE_MARK = DATE_PREFIX.encode()
_TAG_MARK = f'"{TAG}"'.encode()
_OPTIONS = orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_NON_STR_KEYS


def plain_json(value: Any) -> bytes | None:
    """``value`` as JSON when it is plain JSON (no dates, bytes, arrays or frames, which need
    the codec's hook), else None."""
    try:
        return orjson.dumps(value, option=_OPTIONS)
    except TypeError:
        return None


def parse_date(text: str) -> _dt.datetime | str:
    """The datetime of a ``#T42_DATE#`` string, aware, in this process's local time (UTC for
    an instant the platform cannot convert), or the string itself if it is not one."""
    digits = text[len(DATE_PREFIX) :]
    try:
        millis = int(digits)
    except ValueError:
        return text
    instant = _EPOCH + _dt.timedelta(milliseconds=millis)
    try:
        return instant.astimezone()
    except (OverflowError, OSError, ValueError):
        return instant


def wrap_value(value: Any) -> dict[str, Any]:
    """A result/stream item as GW3 needs it (an object): non-dicts travel as ``{"_value": x}``,
    as the io.Connect JS client does, so JS callers see what they expect."""
    if isinstance(value, dict):
        return value
    return {"_value": value}


def unwrap_value(value: Any) -> Any:
    """The inverse of :func:`wrap_value` for Python receivers (exactly ``{"_value": x}``)."""
    if isinstance(value, dict) and len(value) == 1 and "_value" in value:
        return value["_value"]
    return value


def _module(obj: Any) -> str:
    return type(obj).__module__.split(".", 1)[0]


class Codec:
    """Encodes messages for one connection (binary attachments only if negotiated; shared
    memory once :meth:`enable_shared_memory` succeeded)."""

    def __init__(self, binary: bool = False, tune_allocator: bool = True) -> None:
        self.binary = binary
        self.tune_allocator = tune_allocator
        #: the hub's shared-memory directory, when this client proved it sees it
        self.shared: SharedFiles | None = None
        self._chunk_ids = itertools.count(1)

    # ------------------------------------------------------------------ shared memory

    async def enable_shared_memory(
        self,
        offer: Any,
        request: Callable[[dict[str, Any]], Awaitable[Any]],
        threshold: int = DEFAULT_THRESHOLD,
    ) -> bool:
        """Prove to the hub that this process sees its shared-memory directory (the hub's
        ``welcome`` offer) and use it from then on. False, and bytes as before, when the
        directory is not visible from here or the hub refuses the proof."""
        if not self.binary or not isinstance(offer, dict):
            return False
        try:
            files = SharedFiles(offer, threshold)
            nonce = files.proof()
        except (OSError, SharedMemoryError) as error:
            log.info("Interop: the hub's shared memory is not reachable: %s", error)
            return False
        try:
            await request({"domain": GLOBAL_DOMAIN, "type": PROOF_TYPE, "nonce": nonce})
        except Exception as error:  # a RemoteError: the hub did not accept the proof
            log.info("Interop: the hub refused the shared-memory proof: %s", error)
            files.close()
            return False
        self.shared = files
        return True

    # ------------------------------------------------------------------ encode

    def encode(self, message: dict[str, Any]) -> bytes:
        """One frame: JSON text, or a binary frame when attachments are carried as buffers
        or shared-memory references (a :class:`ChunkedFrame` of the buffers themselves when it
        must travel in chunks)."""
        try:  # plain JSON (most messages): no hook to build; orjson calls one only for
            plain = orjson.dumps(message, option=_OPTIONS)  # values it cannot encode itself
        except TypeError:
            pass  # dates, bytes, arrays, frames, or a value that cannot be sent at all
        else:
            _check_nesting(plain)
            return plain
        buffers: list[Any] = []
        files = self.shared
        shared: list[dict[str, Any]] | None = [] if files is not None else None
        default = self._default_binary(buffers, files, shared) if self.binary else json_default
        try:
            header = orjson.dumps(message, default=default, option=_OPTIONS)
        except TypeError as error:  # orjson.JSONEncodeError is a TypeError
            if files is not None and shared:
                for placeholder in shared:  # written for nothing: not sent
                    files.discard(placeholder)
            raise _serialization_error(error) from None
        try:
            _check_nesting(header)
        except SerializationError:
            if files is not None and shared:
                for placeholder in shared:
                    files.discard(placeholder)
            raise
        if buffers or shared:
            parts, total = frame_parts(header, buffers)
            if total >= LARGE_FRAME and self.tune_allocator:
                tune_for_large_frames()  # once: see protocol/malloc.py
            if total > CHUNK_SIZE:
                return ChunkedFrame(parts, total, next(self._chunk_ids))
            return b"".join(parts)
        return header

    def prepare(self, value: Any) -> Any:
        """Validate a payload now (SerializationError before anything is sent) and, when it
        has no binary attachments, pre-encode it once for every message that carries it."""
        buffers: list[Any] = []
        default = self._default_binary(buffers, self.shared) if self.binary else json_default
        try:
            encoded = orjson.dumps(value, default=default, option=_OPTIONS)
        except TypeError as error:
            raise _serialization_error(error) from None
        return value if buffers else orjson.Fragment(encoded)

    @staticmethod
    def _default_binary(
        buffers: list[Any],
        files: SharedFiles | None = None,
        shared: list[dict[str, Any]] | None = None,
    ) -> Callable[[Any], Any]:
        """The orjson hook of binary frames: large values into shared files (``files``; the
        placeholders written are appended to ``shared``; None: a dry run that writes nothing
        and marks the value in ``buffers``), the others as buffers."""

        # (no import statement in here: this runs for every message sent)
        def default(obj: Any) -> Any:
            if files is not None and estimated_size(obj) >= files.threshold:
                if shared is None:
                    buffers.append(b"")  # validated when sent; not pre-encoded
                    return None
                placeholder = files.write(obj)
                if placeholder is not None:
                    shared.append(placeholder)
                    return placeholder
            if isinstance(obj, (bytes, bytearray, memoryview)):
                buffers.append(obj)
                return {TAG: "bytes", "buffers": [len(buffers) - 1]}
            module = _module(obj)
            if module == "numpy":
                import numpy as np

                if isinstance(obj, np.ndarray):
                    placeholder = ndarray_placeholder(obj, buffers)
                    if placeholder is not None:
                        return placeholder
            elif module == "pandas":
                import pandas as pd

                frame = obj.to_frame() if isinstance(obj, pd.Series) else obj
                if isinstance(frame, pd.DataFrame):
                    placeholder = dataframe_placeholder(frame, buffers)
                    if placeholder is not None:
                        return placeholder
            return json_default(obj)

        return default

    # ------------------------------------------------------------------ decode

    def decode_binary(self, frame: bytes | bytearray | memoryview) -> Any:
        """The message of a binary frame, its values revived (shared files mapped now)."""
        header, buffers = unpack_frame(frame)
        message = orjson.loads(header)
        if frame_too_deep(header):
            raise too_deep_error(message)
        return revive(message, buffers, self.shared)

    @staticmethod
    def needs_revive(frame: bytes | bytearray | str) -> bool:
        """True when a decoded frame may hold dates or tagged values (a cheap byte search)."""
        raw = frame.encode() if isinstance(frame, str) else frame
        return _DATE_MARK in raw or _TAG_MARK in raw


def _check_nesting(frame: bytes) -> None:
    """The hub refuses a message nested deeper than its limit: refuse it before sending."""
    if frame_too_deep(frame):
        raise SerializationError(_TOO_DEEP)


_TOO_DEEP = (
    f"Cannot send this value: it nests objects and arrays deeper than {MAX_NESTING} levels "
    "(counting the message around it), which the hub refuses"
)


def _serialization_error(error: TypeError) -> SerializationError:
    if str(error) == "Recursion limit reached":  # orjson's own limit (deeper than the hub's)
        return SerializationError(_TOO_DEEP)
    cause = error.__cause__
    if isinstance(cause, SerializationError):
        return cause
    if cause is not None:
        return SerializationError(
            str(cause) if isinstance(cause, TypeError) else f"Cannot send this value: {cause}"
        )
    return SerializationError(f"Cannot send this value: {error}")


# ---------------------------------------------------------------------- revive


def revive(
    value: Any, buffers: list[memoryview] | None = None, shared: SharedFiles | None = None
) -> Any:
    """Turn date strings and tagged objects back into Python values (in place where possible).

    ``buffers`` are the binary frame's buffers that placeholders refer to; ``shared`` the hub's
    shared-memory directory that references name files in (None: references are not followed).
    """
    if isinstance(value, dict):
        tag = value.get(TAG)
        if isinstance(tag, str):
            return _revive_tagged(tag, value, buffers, shared)
        for key, item in value.items():
            if isinstance(item, (dict, list)) or (
                isinstance(item, str) and item.startswith(DATE_PREFIX)
            ):
                value[key] = revive(item, buffers, shared)
        return value
    if isinstance(value, list):
        for i, item in enumerate(value):
            if isinstance(item, (dict, list)) or (
                isinstance(item, str) and item.startswith(DATE_PREFIX)
            ):
                value[i] = revive(item, buffers, shared)
        return value
    if isinstance(value, str) and value.startswith(DATE_PREFIX):
        return parse_date(value)
    return value


def _revive_shared(value: dict[str, Any], shared: SharedFiles | None) -> Any:
    """The value a shared-memory reference names, or the placeholder with an ``error``."""
    if shared is None:
        return {**value, "error": "a shared-memory reference, but shared memory is not enabled"}
    meta = {k: v for k, v in value.items() if k != "shm"}
    try:
        mapping = shared.map(value["shm"])
        return revive_shared(meta, mapping)
    except ImportError as error:
        return {**value, "error": f"cannot convert: {error}"}
    except (OSError, ValueError) as error:  # SharedMemoryError is a ValueError
        log.warning("Interop: a shared-memory attachment could not be read: %s", error)
        return {**value, "error": str(error)}


def _revive_tagged(
    tag: str,
    value: dict[str, Any],
    buffers: list[memoryview] | None,
    shared: SharedFiles | None = None,
) -> Any:
    if "error" in value:
        return value  # the hub could not convert it for us: keep the explanation
    if "shm" in value and "buffers" not in value:
        return _revive_shared(value, shared)
    refs = value.get("buffers")
    if tag == "bytes":
        if isinstance(refs, list) and buffers is not None and refs:
            return bytes(buffers[refs[0]])
        encoded = value.get("base64")
        if isinstance(encoded, str):
            import base64

            return base64.b64decode(encoded)
        return value
    if tag == "ndarray":
        if "numpy" not in sys.modules:
            try:
                import numpy  # noqa: F401
            except ImportError:
                return value
        return revive_ndarray(value, buffers)
    if tag == "dataframe":
        try:
            import pandas  # noqa: F401
        except ImportError:
            return value
        return revive_dataframe(value, buffers, revive)
    return value
