"""Python values on the GW3 wire: JSON plus dates, bytes, numpy arrays and pandas DataFrames.

Encoding goes through orjson with a ``default`` hook, so plain JSON costs nothing extra. The
hook handles what JSON lacks:

* ``datetime``/``date``: io.Connect's ``"#T42_DATE#<epoch-ms>"`` string, which the JS clients
  revive as ``Date`` (a naive datetime is local time; a ``date`` is midnight UTC; precision is
  one millisecond). Such strings are revived as timezone-aware UTC ``datetime`` objects.
* ``bytes``, numpy arrays, pandas DataFrames: a tagged object ``{"__ji__": kind, ...}`` (see
  ``jupyter_interop.protocol.frames`` for the documented JSON forms), or, when the peer and the
  hub negotiated binary frames, a reference to a raw buffer carried next to the JSON (no base64,
  no pickle: nothing a peer receives can execute code).
* numpy scalars become Python scalars; anything else is a :class:`SerializationError` that
  names the type and where it was found.

Decoding revives only when the raw frame contains a marker, so ordinary messages are not walked.
"""

from __future__ import annotations

import base64
import datetime as _dt
import sys
from collections.abc import Callable
from typing import Any

import orjson

from ..protocol.frames import (
    DATE_PREFIX,
    TAG,
    dataframe_json_form,
    ndarray_json_form,
    revive_dataframe,
    revive_ndarray,
)
from .errors import SerializationError

__all__ = ["Codec", "date_string", "parse_date", "revive", "unwrap_value", "wrap_value"]

_UTC = _dt.timezone.utc
_EPOCH = _dt.datetime(1970, 1, 1, tzinfo=_UTC)
_DATE_MARK = DATE_PREFIX.encode()
_TAG_MARK = f'"{TAG}"'.encode()
_OPTIONS = orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_NON_STR_KEYS


def date_string(value: _dt.date) -> str:
    """io.Connect's wire form of a date: ``#T42_DATE#<milliseconds since the epoch>``."""
    if isinstance(value, _dt.datetime):
        if value.tzinfo is None:
            millis = round(value.timestamp() * 1000)  # naive: local time, as Python does
        else:
            millis = (value - _EPOCH) // _dt.timedelta(milliseconds=1)
    else:
        millis = (_dt.datetime(value.year, value.month, value.day, tzinfo=_UTC) - _EPOCH) // (
            _dt.timedelta(milliseconds=1)
        )
    return f"{DATE_PREFIX}{millis}"


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

    def __init__(self, binary: bool = False) -> None:
        self.binary = binary

    # ------------------------------------------------------------------ encode

    def encode(self, message: dict[str, Any]) -> bytes:
        """One frame: JSON text, or a binary frame when attachments are carried as buffers."""
        buffers: list[Any] = []
        default = self._default_binary(buffers) if self.binary else self._default_json
        try:
            header = orjson.dumps(message, default=default, option=_OPTIONS)
        except TypeError as error:  # orjson.JSONEncodeError is a TypeError
            raise _serialization_error(error) from None
        if buffers:
            from ..protocol.frames import pack_frame

            return pack_frame(header, buffers)
        return header

    def prepare(self, value: Any) -> Any:
        """Validate a payload now (SerializationError before anything is sent) and, when it
        has no binary attachments, pre-encode it once for every message that carries it."""
        buffers: list[Any] = []
        default = self._default_binary(buffers) if self.binary else self._default_json
        try:
            encoded = orjson.dumps(value, default=default, option=_OPTIONS)
        except TypeError as error:
            raise _serialization_error(error) from None
        return value if buffers else orjson.Fragment(encoded)

    def encode_value(self, value: Any) -> orjson.Fragment:
        """Pre-encode a payload once (a stream push to several branches); JSON only."""
        try:
            return orjson.Fragment(orjson.dumps(value, default=self._default_json, option=_OPTIONS))
        except TypeError as error:
            raise _serialization_error(error) from None

    def _default_json(self, obj: Any) -> Any:
        converted = _common(obj)
        if converted is not _NOT_HANDLED:
            return converted
        if isinstance(obj, (bytes, bytearray, memoryview)):
            return {TAG: "bytes", "base64": base64.b64encode(bytes(obj)).decode("ascii")}
        module = _module(obj)
        if module == "numpy":
            return ndarray_json_form(obj)
        if module == "pandas":
            return _pandas_json(obj)
        raise _unsupported(obj)

    def _default_binary(self, buffers: list[Any]) -> Callable[[Any], Any]:
        from ..protocol.frames import ndarray_placeholder

        def default(obj: Any) -> Any:
            converted = _common(obj)
            if converted is not _NOT_HANDLED:
                return converted
            if isinstance(obj, (bytes, bytearray, memoryview)):
                buffers.append(obj)
                return {TAG: "bytes", "buffers": [len(buffers) - 1]}
            module = _module(obj)
            if module == "numpy":
                placeholder = ndarray_placeholder(obj, buffers)
                return placeholder if placeholder is not None else ndarray_json_form(obj)
            if module == "pandas":
                return _pandas_binary(obj, buffers)
            raise _unsupported(obj)

        return default

    # ------------------------------------------------------------------ decode

    @staticmethod
    def needs_revive(frame: bytes | str) -> bool:
        """True when a decoded frame may hold dates or tagged values (a cheap byte search)."""
        raw = frame.encode() if isinstance(frame, str) else frame
        return _DATE_MARK in raw or _TAG_MARK in raw


_NOT_HANDLED = object()


def _common(obj: Any) -> Any:
    module = _module(obj)
    if module == "pandas":
        import pandas as pd

        if obj is pd.NaT:
            return None
    if isinstance(obj, _dt.date):  # datetime is a date; pandas.Timestamp is a datetime
        return date_string(obj)
    if module == "numpy":
        import numpy as np

        if isinstance(obj, np.generic):
            if isinstance(obj, np.datetime64):
                return _numpy_datetime(obj)
            return obj.item()
    return _NOT_HANDLED


def _numpy_datetime(value: Any) -> Any:
    import numpy as np

    if np.isnat(value):
        return None
    millis = int(value.astype("datetime64[ms]").astype("int64"))
    return f"{DATE_PREFIX}{millis}"


def _pandas_json(obj: Any) -> Any:
    import pandas as pd

    if isinstance(obj, pd.DataFrame):
        return dataframe_json_form(obj)
    if isinstance(obj, pd.Series):
        return dataframe_json_form(obj.to_frame())
    if isinstance(obj, pd.Index):
        return obj.tolist()
    raise _unsupported(obj)


def _pandas_binary(obj: Any, buffers: list[Any]) -> Any:
    import pandas as pd

    from ..protocol.frames import dataframe_placeholder

    if isinstance(obj, pd.Series):
        obj = obj.to_frame()
    if isinstance(obj, pd.DataFrame):
        placeholder = dataframe_placeholder(obj, buffers)
        return placeholder if placeholder is not None else dataframe_json_form(obj)
    return _pandas_json(obj)


def _unsupported(obj: Any) -> SerializationError:
    return SerializationError(
        f"Cannot send a value of type {type(obj).__module__}.{type(obj).__qualname__}: "
        "use JSON values (dict, list, str, int, float, bool, None), datetime/date, bytes, "
        "numpy arrays or pandas DataFrames"
    )


def _serialization_error(error: TypeError) -> SerializationError:
    cause = error.__cause__
    if isinstance(cause, SerializationError):
        return cause
    if cause is not None:
        return SerializationError(f"Cannot send this value: {cause}")
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
    refs = value.get("buffers")
    if tag == "bytes":
        if isinstance(refs, list) and buffers is not None and refs:
            return bytes(buffers[refs[0]])
        encoded = value.get("base64")
        if isinstance(encoded, str):
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
