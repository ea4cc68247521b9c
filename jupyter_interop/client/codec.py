"""Python values on the GW3 wire: JSON plus dates, bytes, numpy arrays and pandas DataFrames.

Encoding goes through orjson with a ``default`` hook, so plain JSON costs nothing extra. The
hook handles what JSON lacks (the forms are documented in ``jupyter_interop.protocol.frames``):

* ``datetime``/``date``: io.Connect's ``"#T42_DATE#<epoch-ms>"`` string, which the JS clients
  revive as ``Date`` (a naive datetime is local time; a ``date`` is midnight UTC; precision is
  one millisecond). Such strings are revived as timezone-aware UTC ``datetime`` objects.
* ``bytes``, numpy arrays, pandas DataFrames: when the hub accepted binary frames (the
  ``binary`` extension of ``hello``), raw buffers next to the JSON (Arrow IPC for DataFrames
  when pyarrow is installed), with no base64 and no pickle: nothing a peer receives can execute
  code. Otherwise, and for JS peers, a tagged JSON object ``{"__ji__": kind, ...}``.
* numpy scalars become Python scalars; anything else is a :class:`SerializationError` that
  names the type.

Decoding revives only when the raw frame contains a marker, so ordinary messages are not walked.
Arrays revived from binary frames are read-only views of the received frame (``.copy()`` one
to modify it); they are shared by every callback that receives the same message.
"""

from __future__ import annotations

import datetime as _dt
import itertools
import sys
from collections.abc import Callable
from typing import Any

import orjson

from ..protocol.frames import (
    CHUNK_SIZE,
    DATE_PREFIX,
    TAG,
    ChunkedFrame,
    dataframe_placeholder,
    date_string,
    frame_parts,
    json_default,
    ndarray_placeholder,
    revive_dataframe,
    revive_ndarray,
)
from ..protocol.malloc import LARGE_FRAME, tune_for_large_frames
from .errors import SerializationError

__all__ = ["Codec", "date_string", "parse_date", "revive", "unwrap_value", "wrap_value"]

_UTC = _dt.timezone.utc
_EPOCH = _dt.datetime(1970, 1, 1, tzinfo=_UTC)
_DATE_MARK = DATE_PREFIX.encode()
_TAG_MARK = f'"{TAG}"'.encode()
_OPTIONS = orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_NON_STR_KEYS


def parse_date(text: str) -> _dt.datetime | str:
    """The datetime of a ``#T42_DATE#`` string (UTC), or the string itself if it is not one."""
    digits = text[len(DATE_PREFIX) :]
    try:
        millis = int(digits)
    except ValueError:
        return text
    return _EPOCH + _dt.timedelta(milliseconds=millis)


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
    """Encodes messages for one connection (binary attachments only if negotiated)."""

    def __init__(self, binary: bool = False, tune_allocator: bool = True) -> None:
        self.binary = binary
        self.tune_allocator = tune_allocator
        self._chunk_ids = itertools.count(1)

    # ------------------------------------------------------------------ encode

    def encode(self, message: dict[str, Any]) -> bytes:
        """One frame: JSON text, or a binary frame when attachments are carried as buffers
        (a :class:`ChunkedFrame` of the buffers themselves when it must travel in chunks)."""
        buffers: list[Any] = []
        default = self._default_binary(buffers) if self.binary else json_default
        try:
            header = orjson.dumps(message, default=default, option=_OPTIONS)
        except TypeError as error:  # orjson.JSONEncodeError is a TypeError
            raise _serialization_error(error) from None
        if buffers:
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
        default = self._default_binary(buffers) if self.binary else json_default
        try:
            encoded = orjson.dumps(value, default=default, option=_OPTIONS)
        except TypeError as error:
            raise _serialization_error(error) from None
        return value if buffers else orjson.Fragment(encoded)

    @staticmethod
    def _default_binary(buffers: list[Any]) -> Callable[[Any], Any]:
        # (no import statement in here: this runs for every message sent)
        def default(obj: Any) -> Any:
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

    @staticmethod
    def needs_revive(frame: bytes | bytearray | str) -> bool:
        """True when a decoded frame may hold dates or tagged values (a cheap byte search)."""
        raw = frame.encode() if isinstance(frame, str) else frame
        return _DATE_MARK in raw or _TAG_MARK in raw


def _serialization_error(error: TypeError) -> SerializationError:
    cause = error.__cause__
    if isinstance(cause, SerializationError):
        return cause
    if cause is not None:
        return SerializationError(
            str(cause) if isinstance(cause, TypeError) else f"Cannot send this value: {cause}"
        )
    return SerializationError(f"Cannot send this value: {error}")


# ---------------------------------------------------------------------- revive


def revive(value: Any, buffers: list[memoryview] | None = None) -> Any:
    """Turn date strings and tagged objects back into Python values (in place where possible).

    ``buffers`` are the binary frame's buffers that placeholders refer to.
    """
    if isinstance(value, dict):
        tag = value.get(TAG)
        if isinstance(tag, str):
            return _revive_tagged(tag, value, buffers)
        for key, item in value.items():
            if isinstance(item, (dict, list)) or (
                isinstance(item, str) and item.startswith(DATE_PREFIX)
            ):
                value[key] = revive(item, buffers)
        return value
    if isinstance(value, list):
        for i, item in enumerate(value):
            if isinstance(item, (dict, list)) or (
                isinstance(item, str) and item.startswith(DATE_PREFIX)
            ):
                value[i] = revive(item, buffers)
        return value
    if isinstance(value, str) and value.startswith(DATE_PREFIX):
        return parse_date(value)
    return value


def _revive_tagged(tag: str, value: dict[str, Any], buffers: list[memoryview] | None) -> Any:
    if "error" in value:
        return value  # the hub could not convert it for us: keep the explanation
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
