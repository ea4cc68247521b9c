"""Typed values on the wire: the documented JSON forms of bytes, numpy arrays and DataFrames.

GW3 is JSON. Values JSON lacks travel as tagged objects, ``{"__ji__": <kind>, ...}``, which a
JavaScript peer can read as they are and a Python peer turns back into the original type:

``bytes``
    ``{"__ji__": "bytes", "base64": "<standard base64>"}``
numpy array
    ``{"__ji__": "ndarray", "dtype": "<f8", "shape": [2, 3], "data": [[...], [...]]}`` where
    ``dtype`` is numpy's ``dtype.str`` and ``data`` is ``ndarray.tolist()`` (datetime64 values
    are io.Connect date strings, NaT is null; a complex number is ``[real, imag]``).
pandas DataFrame
    ``{"__ji__": "dataframe", "columns": [...], "index": [...], "data": [[row], ...],
    "dtypes": ["int64", ...]}``: pandas' "split" orientation, plus the dtypes so that a Python
    receiver restores them (``index_name`` is added when the index has a name).
dates
    ``"#T42_DATE#<milliseconds since the epoch>"``, as io.Connect's JS clients write them.

numpy and pandas are optional: nothing here imports them until such a value is met.

Binary frames (negotiated in ``hello`` as ``extensions.jupyter_interop.binary``) carry the same
values as raw buffers next to the JSON, with no base64 and no pickle::

    offset 0   b"JIB1"                       magic (a JSON frame starts with "{")
           4   uint32 LE  header length H
           8   uint32 LE  buffer count N
          12   N x uint64 LE  buffer lengths
               H bytes    the GW3 message as JSON (UTF-8)
               N buffers, each starting at an offset that is a multiple of 8 (zero padding)

In the JSON header a value carried as a buffer is a placeholder with a ``buffers`` list of
indexes instead of its inline data: ``{"__ji__": "bytes", "buffers": [0]}``,
``{"__ji__": "ndarray", "dtype": "<f8", "shape": [1000, 3], "buffers": [1]}`` (C order), or
``{"__ji__": "dataframe", "format": "arrow", "buffers": [2]}`` (an Apache Arrow IPC stream
written with pandas metadata, so the index and dtypes come back).

Binary frames longer than 8 MiB travel as chunk frames: ``protocol/chunks.py``.

Shared memory. Between the hub and a peer on its host that negotiated ``shm``, a placeholder may
carry ``"shm": {"name": ..., "size": ...}`` instead of ``buffers``: the value is in a file of
the hub's tmpfs directory (layouts, names and rules in ``protocol/shm.py``). Such a frame is a
binary frame even when it has no buffers.
"""

from __future__ import annotations

import base64
import bisect
import datetime as _dt
import struct
import sys
from collections.abc import Callable, Iterator
from typing import Any

import orjson

__all__ = [
    "ALIGNMENT",
    "DATE_PREFIX",
    "MAGIC",
    "PIECED_MIN",
    "TAG",
    "Attachment",
    "FrameError",
    "PiecedFrame",
    "Pieces",
    "attach",
    "dataframe_json_form",
    "dataframe_placeholder",
    "date_string",
    "encode_binary",
    "frame_parts",
    "is_binary_frame",
    "joined",
    "json_default",
    "ndarray_json_form",
    "ndarray_placeholder",
    "pack_frame",
    "peek_header",
    "revive_dataframe",
    "revive_ndarray",
    "unpack_frame",
]

MAGIC = b"JIB1"
ALIGNMENT = 8
_PREAMBLE = struct.Struct("<4sII")


class FrameError(ValueError):
    """A binary frame that does not follow the format above."""


def is_binary_frame(frame: bytes | bytearray | memoryview) -> bool:
    return bytes(frame[:4]) == MAGIC


class Pieces(list[Any]):
    """One buffer of a binary frame given as the consecutive pieces it is made of (an Arrow
    stream whose bodies are a DataFrame's own columns): :func:`frame_parts` lays the pieces
    one after the other, so the value is never copied into one buffer on the way out."""

    @property
    def nbytes(self) -> int:
        return sum(memoryview(p).nbytes for p in self)


class PiecedFrame(bytes):
    """A binary frame kept as the pieces :func:`frame_parts` gives (the attachments' own
    buffers, or the pieces a chunked message arrived in), never joined: a writer writes
    :attr:`parts` one after the other, or cuts them into chunk frames.

    Its bytes are the frame's head (preamble, buffer table, JSON header), so code that looks
    at the first bytes of a frame (binary or JSON, its header) sees what the joined frame
    starts with; ``len()`` is the whole frame's length, which queues count.
    """

    parts: list[Any]
    total: int

    def __new__(cls, parts: list[Any], total: int) -> PiecedFrame:
        self = super().__new__(cls, parts[0])
        self.parts = parts
        self.total = total
        return self

    def __len__(self) -> int:
        return self.total


#: binary frames at least this long are encoded as a :class:`PiecedFrame` (smaller ones are
#: joined: one copy of a few kilobytes costs less than writing the pieces one by one)
PIECED_MIN = 64 * 1024


def _views(buffer: Any) -> list[memoryview]:
    if isinstance(buffer, Pieces):
        return [memoryview(p).cast("B") for p in buffer]
    return [memoryview(buffer).cast("B")]


def joined(buffer: Any) -> Any:
    """``buffer`` as one contiguous buffer (:class:`Pieces` are joined; others returned)."""
    return b"".join(_views(buffer)) if isinstance(buffer, Pieces) else buffer


def frame_parts(header: bytes, buffers: list[Any]) -> tuple[list[Any], int]:
    """The pieces of one binary frame in order (the buffers as views, not copied) and its
    total length: join them for one frame, or cut them into chunks."""
    views = [_views(b) for b in buffers]
    count = len(views)
    head = _PREAMBLE.pack(MAGIC, len(header), count)
    head += struct.pack(f"<{count}Q", *(sum(v.nbytes for v in vs) for vs in views)) + header
    parts: list[Any] = [head]
    offset = len(head)
    for pieces in views:
        pad = -offset % ALIGNMENT
        if pad:
            parts.append(b"\0" * pad)
            offset += pad
        for view in pieces:
            parts.append(view)
            offset += view.nbytes
    return parts, offset


def pack_frame(header: bytes, buffers: list[Any]) -> bytes:
    """One binary frame from a JSON header and its buffers (one copy of each buffer)."""
    return b"".join(frame_parts(header, buffers)[0])


def unpack_frame(frame: Any) -> tuple[Any, list[Any]]:
    """The JSON header and the buffers of a binary frame, as views (no copy). A frame given
    as :class:`Pieces` (a chunked message as it arrived) gives each buffer as one view when it
    lies within one piece, else as the :class:`Pieces` it spans; only the header is joined."""
    if isinstance(frame, PiecedFrame):  # (its own bytes are only the head)
        frame = Pieces(frame.parts)
    if isinstance(frame, Pieces):
        return _unpack_pieces(frame)
    view = memoryview(frame)
    if view.nbytes < _PREAMBLE.size:
        raise FrameError("Binary frame too short")
    magic, header_length, count = _PREAMBLE.unpack_from(view, 0)
    if magic != MAGIC:
        raise FrameError("Not a jupyter_interop binary frame (bad magic)")
    offset = _PREAMBLE.size + 8 * count
    if offset > view.nbytes:
        raise FrameError("Binary frame truncated in its buffer table")
    lengths = struct.unpack_from(f"<{count}Q", view, _PREAMBLE.size)
    header = view[offset : offset + header_length]
    offset += header_length
    buffers = []
    for length in lengths:
        offset += -offset % ALIGNMENT
        buffers.append(view[offset : offset + length])
        offset += length
    if offset > view.nbytes or header.nbytes != header_length:
        raise FrameError("Binary frame truncated")
    return header, buffers


def _unpack_pieces(pieces: Pieces) -> tuple[bytes, list[Any]]:
    """:func:`unpack_frame` of a frame given as consecutive pieces."""
    views = [memoryview(p).cast("B") for p in pieces if memoryview(p).nbytes]
    if len(views) == 1:
        return unpack_frame(views[0])
    starts = [0]
    for view in views:
        starts.append(starts[-1] + view.nbytes)
    size = starts[-1]

    def span(offset: int, length: int) -> list[memoryview]:
        """The views of bytes ``offset`` to ``offset + length`` of the frame."""
        if offset + length > size:
            raise FrameError("Binary frame truncated")
        out: list[memoryview] = []
        index = bisect.bisect_right(starts, offset) - 1
        while length > 0:
            within = offset - starts[index]
            take = min(length, views[index].nbytes - within)
            out.append(views[index][within : within + take])
            offset += take
            length -= take
            index += 1
        return out

    def read(offset: int, length: int) -> bytes:
        return b"".join(span(offset, length))

    if size < _PREAMBLE.size:
        raise FrameError("Binary frame too short")
    magic, header_length, count = _PREAMBLE.unpack(read(0, _PREAMBLE.size))
    if magic != MAGIC:
        raise FrameError("Not a jupyter_interop binary frame (bad magic)")
    offset = _PREAMBLE.size + 8 * count
    if offset > size:
        raise FrameError("Binary frame truncated in its buffer table")
    lengths = struct.unpack(f"<{count}Q", read(_PREAMBLE.size, 8 * count))
    header = read(offset, header_length)
    offset += header_length
    buffers: list[Any] = []
    for length in lengths:
        offset += -offset % ALIGNMENT
        parts = span(offset, length)
        buffers.append(Pieces(parts) if len(parts) > 1 else (parts or [memoryview(b"")])[0])
        offset += length
    return header, buffers


def ndarray_placeholder(array: Any, buffers: list[Any]) -> dict[str, Any] | None:
    """Carry a numpy array as a raw buffer (None for object or structured dtypes)."""
    import numpy as np

    array = np.asarray(array)
    if array.dtype.kind not in "biufcmMSU" or array.dtype.fields is not None:
        return None
    raw = np.ascontiguousarray(array).reshape(-1).view(np.uint8)
    buffers.append(raw.data)
    return {
        TAG: "ndarray",
        "dtype": array.dtype.str,
        "shape": list(array.shape),
        "buffers": [len(buffers) - 1],
    }


def dataframe_placeholder(frame: Any, buffers: list[Any]) -> dict[str, Any] | None:
    """Carry a DataFrame as an Arrow IPC stream (None without pyarrow or if Arrow refuses
    its columns, e.g. mixed Python objects: then the JSON form is used)."""
    try:
        import pyarrow as pa
    except ImportError:
        return None
    try:
        stream, rows = _arrow_stream(pa, frame)
    except (pa.ArrowException, TypeError, ValueError):
        return None
    buffers.append(stream if isinstance(stream, Pieces) else memoryview(stream))
    return {
        TAG: "dataframe",
        "format": "arrow",
        "rows": rows,
        "buffers": [len(buffers) - 1],
    }


#: rows of a large DataFrame are converted to Arrow about this many bytes at a time
_ARROW_BATCH_BYTES = 16 * 1024 * 1024
#: numpy kinds whose contiguous columns Arrow takes without a copy (bool is bit-packed)
_SHARED_KINDS = frozenset("iufmM")


def _arrow_stream(pa: Any, frame: Any) -> tuple[Any, int]:
    """The Arrow IPC stream of ``frame``: :class:`Pieces` referring to its columns, or one
    buffer allocated at its exact size.

    A frame whose columns Arrow can share as they are (contiguous numeric and datetime
    columns) is one record batch written as pieces: the stream's metadata, and the columns
    themselves as its bodies, so that nothing is copied before the frame is written and a
    receiver can view the columns where they arrive (:func:`revive_dataframe`). Any other
    large frame is converted a slice of rows at a time (record batches of about 16 MiB), so
    that a DataFrame whose columns Arrow cannot share (a consolidated 2-D block) is never
    copied whole a second time; the stream is measured first (a mock pass) so that the
    buffer is not grown by doubling, which held up to twice the payload on the way.
    """
    rows = len(frame)
    if _shares_columns(frame):
        table = _shared_table(pa, frame)
        sink = _PiecesSink()
        with pa.ipc.new_stream(pa.PythonFile(sink, mode="w"), table.schema) as writer:
            writer.write_table(table)
        return sink.finish(), table.num_rows
    width = int(frame.memory_usage(index=False, deep=False).sum()) // max(1, rows)
    step = max(1, _ARROW_BATCH_BYTES // max(1, width))
    if rows > step:
        try:
            first = pa.Table.from_pandas(frame.iloc[:step], preserve_index=True)
            schema = first.schema

            def slices() -> Iterator[Any]:
                yield first
                for start in range(step, rows, step):
                    part = frame.iloc[start : start + step]
                    yield pa.Table.from_pandas(part, preserve_index=True, schema=schema)

            return _write_ipc(pa, schema, slices), rows
        except (pa.ArrowException, TypeError, ValueError):
            pass  # e.g. slices whose inferred types differ: convert it whole
    table = pa.Table.from_pandas(frame, preserve_index=True)
    return _write_ipc(pa, table.schema, lambda: iter([table])), table.num_rows


def _shares_columns(frame: Any) -> bool:
    """Can Arrow take every column of ``frame`` as it is (contiguous, numeric or datetime
    without a time zone), and its index too (a RangeIndex, kept as metadata)?"""
    import numpy as np
    import pandas as pd

    if not isinstance(frame.index, pd.RangeIndex) or isinstance(frame.columns, pd.MultiIndex):
        return False
    for position, dtype in enumerate(frame.dtypes):
        if not isinstance(dtype, np.dtype) or dtype.kind not in _SHARED_KINDS:
            return False
        if not np.asarray(frame.iloc[:, position]).flags.c_contiguous:
            return False
    return True


def _shared_table(pa: Any, frame: Any) -> Any:
    """The Arrow table of a frame :func:`_shares_columns` accepted, on its own columns.

    The schema (with pandas' metadata: names, dtypes, the RangeIndex) comes from the dtypes
    alone; each column is handed to Arrow as the array it is, so a float column is not
    scanned for NaN to make a validity bitmap (``from_pandas`` does): NaN stays a float
    value, which pandas reads back the same.
    """
    import numpy as np

    schema = pa.Schema.from_pandas(frame, preserve_index=None)
    if len(schema) != frame.shape[1]:
        return pa.Table.from_pandas(frame, preserve_index=None)
    arrays = [
        pa.array(np.asarray(frame.iloc[:, position]), type=field.type)
        for position, field in enumerate(schema)
    ]
    return pa.Table.from_arrays(arrays, schema=schema)


class _PiecesSink:
    """What Arrow's IPC writer writes, kept as pieces: the column bodies it hands over as
    Arrow buffers (the DataFrame's own memory), the small metadata writes joined."""

    closed = False
    #: writes up to this size are metadata and padding, joined into one piece
    SMALL = 64 * 1024

    def __init__(self) -> None:
        self.pieces = Pieces()
        self._small = bytearray()

    def write(self, data: Any) -> int:
        size = memoryview(data).nbytes
        if size <= self.SMALL:
            self._small += data
        else:
            self._flush()
            self.pieces.append(data)
        return size

    def _flush(self) -> None:
        if self._small:
            self.pieces.append(bytes(self._small))
            self._small = bytearray()

    def flush(self) -> None:
        pass

    def close(self) -> None:
        self.closed = True

    def finish(self) -> Pieces:
        self._flush()
        return self.pieces


def _write_ipc(pa: Any, schema: Any, tables: Callable[[], Iterator[Any]]) -> Any:
    mock = pa.MockOutputStream()
    with pa.ipc.new_stream(mock, schema) as writer:
        for table in tables():
            writer.write_table(table)
    buffer = pa.allocate_buffer(mock.size())
    with pa.ipc.new_stream(pa.FixedSizeBufferWriter(buffer), schema) as writer:
        for table in tables():
            writer.write_table(table)
    return buffer


#: the key that marks a tagged value
TAG = "__ji__"
#: io.Connect's date encoding
DATE_PREFIX = "#T42_DATE#"


def _dates_as_strings(array: Any) -> Any:
    """datetime64 values as date strings (NaT as None), keeping the shape as nested lists."""
    import numpy as np

    millis = array.astype("datetime64[ms]")
    nat = np.isnat(millis)
    as_int = millis.astype("int64")
    out = np.empty(array.shape, dtype=object)
    flat_out = out.reshape(-1)
    for i, (value, missing) in enumerate(zip(as_int.reshape(-1), nat.reshape(-1), strict=True)):
        flat_out[i] = None if missing else f"{DATE_PREFIX}{int(value)}"
    return out.tolist()


def ndarray_json_form(array: Any) -> dict[str, Any]:
    """The JSON form of a numpy array (for peers without binary frames)."""
    import numpy as np

    array = np.asarray(array)
    kind = array.dtype.kind
    if kind == "M":
        data = _dates_as_strings(array)
    elif kind == "c":
        data = np.stack([array.real, array.imag], axis=-1).tolist()
    else:
        data = array.tolist()
    return {TAG: "ndarray", "dtype": array.dtype.str, "shape": list(array.shape), "data": data}


def revive_ndarray(value: dict[str, Any], buffers: list[memoryview] | None = None) -> Any:
    """A numpy array from its JSON form or from a binary placeholder (best effort on dtype)."""
    import numpy as np

    dtype = np.dtype(value.get("dtype") or "float64")
    shape = tuple(value.get("shape") or ())
    refs = value.get("buffers")
    if isinstance(refs, list) and refs and buffers is not None:
        raw = buffers[refs[0]]
        array = np.frombuffer(raw, dtype=dtype).reshape(shape)
        # a view into the received frame: read-only, which protects the shared frame
        return array
    data = value.get("data")
    if dtype.kind == "M":
        flat = np.array(_date_millis(data), dtype="float64").reshape(-1)
        dates = np.full(flat.shape, np.datetime64("NaT"), dtype="datetime64[ms]")
        present = ~np.isnan(flat)
        dates[present] = flat[present].astype("int64").astype("datetime64[ms]")
        return dates.astype(dtype).reshape(shape)
    if dtype.kind == "c":
        pairs = np.array(data, dtype="float64")
        return (pairs[..., 0] + 1j * pairs[..., 1]).astype(dtype).reshape(shape)
    try:
        return np.array(data, dtype=dtype).reshape(shape)
    except (TypeError, ValueError):
        return np.array(data, dtype=object).reshape(shape)


def _date_millis(value: Any) -> Any:
    """Nested date strings (or revived datetimes) as epoch milliseconds, None as NaN."""
    import datetime as dt

    if isinstance(value, list):
        return [_date_millis(v) for v in value]
    if isinstance(value, str) and value.startswith(DATE_PREFIX):
        return float(value[len(DATE_PREFIX) :])
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=dt.timezone.utc)
        return value.timestamp() * 1000
    return float("nan")


def dataframe_json_form(frame: Any) -> dict[str, Any]:
    """The JSON form of a DataFrame (pandas' split orientation plus dtypes)."""
    columns = []
    for column in frame.columns:
        columns.append(list(column) if isinstance(column, tuple) else column)
    index = frame.index
    form: dict[str, Any] = {
        TAG: "dataframe",
        "columns": columns,
        "index": index.tolist(),
        "data": frame.to_numpy(dtype=object).tolist(),
        "dtypes": [str(d) for d in frame.dtypes],
    }
    if index.name is not None:
        form["index_name"] = index.name
    return form


def revive_dataframe(
    value: dict[str, Any],
    buffers: list[memoryview] | None,
    revive: Callable[[Any, list[memoryview] | None], Any],
) -> Any:
    """A DataFrame from its JSON form, or from an Arrow IPC buffer (binary frames)."""
    import pandas as pd

    refs = value.get("buffers")
    if value.get("format") == "arrow" and isinstance(refs, list) and refs and buffers is not None:
        return _arrow_frame(joined(buffers[refs[0]]))
    data = revive(value.get("data") or [], None)
    index = revive(value.get("index"), None)
    frame = pd.DataFrame(data, columns=value.get("columns"), index=index)
    if value.get("index_name") is not None:
        frame.index.name = value["index_name"]
    dtypes = value.get("dtypes")
    if isinstance(dtypes, list) and len(dtypes) == len(frame.columns):
        for position, dtype in enumerate(dtypes):
            frame.isetitem(position, _as_dtype(frame.iloc[:, position], dtype))
    return frame


def _arrow_frame(buffer: Any) -> Any:
    """The DataFrame of an Arrow IPC stream in ``buffer``.

    When the buffer is writable (a frame reassembled from chunks, a copy-on-write mapping),
    the columns Arrow can share become writable views of it: no copy at all, and the
    DataFrame behaves as one built from its own arrays. Otherwise (an immutable frame)
    pandas gets its own copy, as a view of it would be read-only.
    """
    import pyarrow as pa

    with pa.ipc.open_stream(pa.py_buffer(buffer)) as reader:
        table = reader.read_all()
    if memoryview(buffer).readonly:
        return table.to_pandas()
    return _writable_views(table.to_pandas(split_blocks=True), buffer)


def _writable_views(frame: Any, buffer: Any) -> Any:
    """``frame`` with each column that is a read-only view of ``buffer`` (what Arrow makes
    of a column it shares) replaced by a writable view of the same bytes."""
    import numpy as np
    import pandas as pd

    whole = np.frombuffer(buffer, dtype=np.uint8)
    start = whole.ctypes.data
    end = start + whole.nbytes
    columns: dict[int, Any] = {}
    shared = False
    for position in range(frame.shape[1]):
        column = frame.iloc[:, position]
        # (only a view Arrow made can lie inside the buffer)
        values = np.asarray(column) if isinstance(column.dtype, np.dtype) else None
        if (
            values is not None
            and values.flags.c_contiguous
            and start <= values.ctypes.data
            and values.ctypes.data + values.nbytes <= end
        ):
            address = values.ctypes.data
            offset = address - start
            columns[position] = np.frombuffer(buffer, values.dtype, len(values), offset)
            shared = True
        else:
            columns[position] = column
    if not shared:
        return frame
    out = pd.DataFrame(columns, index=frame.index, copy=False)
    out.columns = frame.columns
    return out


def _as_dtype(column: Any, dtype: Any) -> Any:
    import pandas as pd

    if not isinstance(dtype, str) or str(column.dtype) == dtype:
        return column
    try:
        if dtype.startswith("datetime64"):
            converted = pd.to_datetime(column, utc=True)
            if "," not in dtype:  # naive in the sender: UTC wall time
                converted = converted.dt.tz_localize(None)
            return converted.astype(dtype)
        return column.astype(dtype)
    except (TypeError, ValueError):
        return column


# ---------------------------------------------------------------------- pure JSON forms

_UTC = _dt.timezone.utc
_EPOCH = _dt.datetime(1970, 1, 1, tzinfo=_UTC)
_JSON_OPTIONS = orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_NON_STR_KEYS


def date_string(value: _dt.date) -> str:
    """io.Connect's wire form of a date: ``#T42_DATE#<milliseconds since the epoch>``.

    A naive datetime is the writer's local time (as ``datetime.timestamp`` and a JS ``Date``
    built from its fields have it) and a ``date`` is local midnight; a Python receiver revives
    the instant in its own local time (``client/codec.py:parse_date``), so a reader in the
    writer's time zone sees the writer's wall time (README, "Values"). A naive pandas
    ``Timestamp`` is UTC, as pandas has it.
    """
    if isinstance(value, _dt.datetime):
        if value.tzinfo is None:
            millis = round(value.timestamp() * 1000)
        else:
            millis = (value - _EPOCH) // _dt.timedelta(milliseconds=1)
    else:
        start = _dt.datetime(value.year, value.month, value.day)
        millis = round(start.timestamp() * 1000)
    return f"{DATE_PREFIX}{millis}"


def _module(obj: Any) -> str:
    return type(obj).__module__.split(".", 1)[0]


def json_default(obj: Any) -> Any:
    """orjson ``default`` hook producing the documented JSON forms (dates included when
    orjson is given ``OPT_PASSTHROUGH_DATETIME``); a ``TypeError`` names what cannot be sent."""
    module = _module(obj)
    if module == "pandas":
        import pandas as pd

        if obj is pd.NaT:
            return None
    if isinstance(obj, _dt.date):  # datetime is a date; pandas.Timestamp is a datetime
        return date_string(obj)
    if isinstance(obj, (bytes, bytearray, memoryview)):
        return {TAG: "bytes", "base64": base64.b64encode(obj).decode("ascii")}
    if isinstance(obj, Attachment):
        return obj.json_fragment()
    if module == "numpy":
        import numpy as np

        if isinstance(obj, np.datetime64):
            if np.isnat(obj):
                return None
            return f"{DATE_PREFIX}{int(obj.astype('datetime64[ms]').astype('int64'))}"
        if isinstance(obj, np.generic):
            return obj.item()
        if isinstance(obj, np.ndarray):
            return ndarray_json_form(obj)
    if module == "pandas":
        import pandas as pd

        if isinstance(obj, pd.DataFrame):
            return dataframe_json_form(obj)
        if isinstance(obj, pd.Series):
            return dataframe_json_form(obj.to_frame())
        if isinstance(obj, pd.Index):
            return obj.tolist()
    raise TypeError(
        f"Cannot send a value of type {type(obj).__module__}.{type(obj).__qualname__}: "
        "use JSON values (dict, list, str, int, float, bool, None), datetime/date, bytes, "
        "numpy arrays or pandas DataFrames"
    )


def to_json_bytes(value: Any) -> bytes:
    """``value`` in its pure JSON form, encoded (dates as io.Connect date strings)."""
    return orjson.dumps(value, default=json_default, option=_JSON_OPTIONS)


# ---------------------------------------------------------------------- attachments (hub side)


class Attachment:
    """A value that arrived as raw buffers in a binary frame, kept opaque by the hub.

    It sits in the decoded message where its placeholder was, so the hub core forwards it by
    reference wherever the value goes (invoke arguments, results, stream and bus events,
    context data and snapshots). When the message is encoded, a peer that negotiated binary
    frames gets the placeholder and the same buffers; any other peer gets the documented JSON
    form, computed once per attachment and only if such a peer needs it.
    """

    __slots__ = ("_json", "buffers", "meta")

    def __init__(self, meta: dict[str, Any], buffers: list[memoryview]) -> None:
        self.meta = meta
        self.buffers = buffers
        self._json: orjson.Fragment | None = None

    @property
    def kind(self) -> str:
        return str(self.meta.get(TAG))

    @property
    def nbytes(self) -> int:
        return sum(b.nbytes for b in self.buffers)

    def __repr__(self) -> str:
        return f"<Attachment {self.kind} {self.nbytes} bytes>"

    def json_fragment(self) -> orjson.Fragment:
        """The documented JSON form, encoded once (a JS peer may get it many times)."""
        if self._json is None:
            self._json = orjson.Fragment(to_json_bytes(self.json_form()))
        return self._json

    def json_form(self) -> Any:
        """What a peer without the ``binary`` extension sees of this attachment (decoded;
        :meth:`json_fragment` caches it encoded)."""
        kind = self.kind
        try:
            meta, buffers = self.wire()
            if kind == "bytes":
                raw = joined(buffers[0])  # (a value that arrived in chunks is pieces)
                return {TAG: "bytes", "base64": base64.b64encode(raw).decode("ascii")}
            if kind == "ndarray":
                return _ndarray_form_from_buffer(meta, memoryview(joined(buffers[0])))
            if kind == "dataframe":
                refs = {**meta, "buffers": list(range(len(buffers)))}
                return dataframe_json_form(revive_dataframe(refs, buffers, _keep))
        except ImportError as error:
            return {**self.meta, "error": f"cannot convert on the hub: {error}"}
        except Exception as error:  # a malformed attachment must not break the fan-out
            return {**self.meta, "error": f"cannot convert: {type(error).__name__}: {error}"}
        return {**self.meta, "error": f"unknown attachment kind {kind!r}"}

    def wire(self) -> tuple[dict[str, Any], list[memoryview]]:
        """The placeholder fields and buffers of the buffer form (what binary peers get)."""
        return self.meta, self.buffers

    def shared_placeholder(self) -> dict[str, Any] | None:
        """The shared-memory reference placeholder, for attachments held in a shared file
        (see ``protocol/shm.py``); None for attachments that came as buffers."""
        return None

    def meta_with_refs(self, first: int = 0) -> dict[str, Any]:
        """The placeholder, with buffer indexes starting at ``first``."""
        meta, buffers = self.wire()
        return {**meta, "buffers": list(range(first, first + len(buffers)))}


def _keep(value: Any, buffers: Any) -> Any:
    return value


#: numpy dtype.str -> struct format, for converting arrays on a hub without numpy
_STRUCT_FORMATS = {
    "|b1": "?",
    "|i1": "b",
    "|u1": "B",
    "<i2": "h",
    "<u2": "H",
    "<i4": "i",
    "<u4": "I",
    "<i8": "q",
    "<u8": "Q",
    "<f4": "f",
    "<f8": "d",
}


def _ndarray_form_from_buffer(meta: dict[str, Any], buffer: memoryview) -> dict[str, Any]:
    shape = [int(n) for n in meta.get("shape") or []]
    dtype = str(meta.get("dtype"))
    if "numpy" in sys.modules or dtype not in _STRUCT_FORMATS or sys.byteorder != "little":
        import numpy as np

        array = np.frombuffer(buffer, dtype=np.dtype(dtype)).reshape(shape)
        return ndarray_json_form(array)
    fmt: Any = _STRUCT_FORMATS[dtype]  # a struct format memoryview.cast understands
    data = buffer.cast(fmt, shape).tolist() if shape else buffer.cast(fmt)[0]
    return {TAG: "ndarray", "dtype": dtype, "shape": shape, "data": data}


#: takes over a shared-memory reference: (placeholder fields, reference) -> Attachment
Claim = Callable[[dict[str, Any], Any], Attachment]


def attach(value: Any, buffers: list[memoryview], claim: Claim | None = None) -> Any:
    """Replace the placeholders of a decoded binary frame by :class:`Attachment` objects.

    A placeholder with ``shm`` instead of ``buffers`` (see ``protocol/shm.py``) is given to
    ``claim``; without one (the sender did not prove it shares the hub's memory) it is refused.
    """
    if isinstance(value, dict):
        if TAG in value:
            refs = value.get("buffers")
            if isinstance(refs, list):
                try:
                    chosen = [buffers[i] for i in refs]
                except (IndexError, TypeError):
                    raise FrameError(f"A placeholder refers to missing buffers {refs!r}") from None
                meta = {k: v for k, v in value.items() if k != "buffers"}
                return Attachment(meta, chosen)
            if "shm" in value:
                if claim is None:
                    raise FrameError(
                        "A shared-memory reference from a peer that has not negotiated the "
                        "'shm' extension (and proved it sees the hub's directory)"
                    )
                meta = {k: v for k, v in value.items() if k != "shm"}
                try:
                    return claim(meta, value["shm"])
                except ValueError as error:  # SharedMemoryError: a clear reason
                    raise FrameError(str(error)) from None
        for key, item in value.items():
            if isinstance(item, (dict, list)):
                value[key] = attach(item, buffers, claim)
        return value
    if isinstance(value, list):
        for i, item in enumerate(value):
            if isinstance(item, (dict, list)):
                value[i] = attach(item, buffers, claim)
    return value


def encode_binary(message: Any, shared: bool = False) -> bytes:
    """Encode a message for a peer that negotiated binary frames: attachments travel as
    buffers (a plain JSON frame when there are none; a :class:`PiecedFrame` of the buffers
    themselves from :data:`PIECED_MIN` bytes); with ``shared`` (the peer sees the hub's
    shared-memory directory), attachments held in a shared file travel as references, in a
    binary frame even when it has no buffers. An attachment met twice (a context's data and
    the delta that set it) travels once: both placeholders name the same buffers."""
    buffers: list[Any] = []
    referenced = False
    placed: dict[int, dict[str, Any]] = {}

    def default(obj: Any) -> Any:
        nonlocal referenced
        if isinstance(obj, Attachment):
            again = placed.get(id(obj))
            if again is not None:
                return again
            if shared:
                placeholder = obj.shared_placeholder()
                if placeholder is not None:
                    referenced = True
                    return placeholder
            try:
                meta, parts = obj.wire()
            except (OSError, ValueError, ImportError) as error:  # e.g. the file is gone
                return {**obj.meta, "error": f"cannot read: {type(error).__name__}: {error}"}
            placeholder = {**meta, "buffers": list(range(len(buffers), len(buffers) + len(parts)))}
            buffers.extend(parts)
            placed[id(obj)] = placeholder
            return placeholder
        raise TypeError(f"Type is not JSON serializable: {type(obj).__name__}")

    header = orjson.dumps(message, default=default)
    if not (buffers or referenced):
        return header
    parts, total = frame_parts(header, buffers)
    # a large value is not copied into the frame: its pieces are written as they are
    return PiecedFrame(parts, total) if total >= PIECED_MIN else b"".join(parts)


def peek_header(frame: bytes | bytearray | memoryview) -> dict[str, Any] | None:
    """The JSON header of a binary frame from its first bytes, if they hold all of it."""
    view = memoryview(frame)
    try:
        magic, header_length, count = _PREAMBLE.unpack_from(view, 0)
        if magic != MAGIC:
            return None
        start = _PREAMBLE.size + 8 * count
        if start + header_length > view.nbytes:
            return None
        header = orjson.loads(view[start : start + header_length])
    except (struct.error, orjson.JSONDecodeError):
        return None
    return header if isinstance(header, dict) else None
