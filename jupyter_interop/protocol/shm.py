"""Shared-memory attachments: a large value written once into a file on tmpfs, the frame
carrying a reference to it instead of its bytes (peers on the hub's own host only).

Negotiation (``hello.extensions.jupyter_interop.shm``, with ``binary``). The hub answers in its
``welcome`` with an offer, ``{"inbox": <dir>, "held": <dir>, "nonce": <file name>}``: both
directories live in the hub's private directory on tmpfs (0700, files 0600). The client reads
``<inbox>/<nonce>`` and sends its content back, ``{"domain": "global", "type": "shm-proof",
"nonce": ...}``; only after the hub's ``success`` may either side use references. A peer that
cannot see the hub's directory (another host, another container, another user) fails the proof
and keeps sending bytes. Nothing is inferred from the URL.

Reference. A placeholder (see ``frames.py``) with ``"shm": {"name": <file>, "size": <bytes>}``
instead of ``"buffers"``, in a binary frame (``JIB1``, possibly with no buffers). From a client,
the name is a file it wrote in its inbox; the hub takes it over (renames it into ``held`` under
a new name) as it decodes the frame. From the hub, the name is a file in ``held``. Names are 32
URL-safe characters; anything else, a symlink, a file not owned by this user, with several
links, with holes or of another size is refused with a :class:`SharedMemoryError`.

Layouts (the file's content, what the placeholder describes):

``bytes``
    the bytes.
``ndarray``
    the array's data in C order (``dtype`` and ``shape`` as in the buffer form).
``dataframe``, ``"format": "columns"``
    each column's values as a raw array at a 64-byte-aligned offset (``columns``, ``dtypes``
    as numpy ``dtype.str``, ``offsets``, ``rows``), and an ``index`` that is either
    ``{"kind": "range", "start", "stop", "step"}`` or ``{"kind": "array", "dtype", "offset"}``
    (both with ``name``). Only frames of plain numpy columns with unique str/int names take this
    layout: a receiver maps the file copy-on-write and builds the DataFrame on views of the
    mapping, with no copy at all (pages are faulted in when first read; a write copies the
    page, never reaching the shared file).
``dataframe``, ``"format": "arrow"``
    an Arrow IPC stream, as in the buffer form (any other DataFrame).
"""

from __future__ import annotations

import contextlib
import mmap
import os
import re
import secrets
import stat
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from .frames import (
    TAG,
    Attachment,
    Pieces,
    dataframe_json_form,
    dataframe_placeholder,
    joined,
    revive_dataframe,
)
from .wire import SHM_EXTENSION

# the message a client sends to prove it sees the hub's directory
from .wire import SHM_PROOF_TYPE as PROOF_TYPE

__all__ = [
    "ALIGN",
    "DEFAULT_THRESHOLD",
    "PROOF_TYPE",
    "SHM_EXTENSION",
    "SharedAttachment",
    "SharedFiles",
    "SharedMemoryError",
    "check_ref",
    "columns_layout",
    "map_file",
    "new_name",
    "open_dir",
    "revive_columns",
    "revive_shared",
    "share_plan",
    "write_file",
]

#: attachments of at least this many bytes go through shared memory (the client's default)
DEFAULT_THRESHOLD = 1024 * 1024
#: column offsets in the ``columns`` layout are multiples of this (cache line, SIMD loads)
ALIGN = 64

_NAME = re.compile(r"[A-Za-z0-9_-]{32}\Z")
_O_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_O_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_O_DIRECTORY = getattr(os, "O_DIRECTORY", 0)
_COLUMN_KINDS = "biufcmM"


class SharedMemoryError(ValueError):
    """A shared-memory reference that cannot be used (bad, missing or refused file)."""


def new_name() -> str:
    """An unguessable file name (192 random bits)."""
    return secrets.token_urlsafe(24)


def check_ref(ref: Any, max_bytes: int | None = None) -> tuple[str, int]:
    """The name and size of a reference, validated (no paths, a positive bounded size)."""
    if not isinstance(ref, dict):
        raise SharedMemoryError(f"A shared-memory reference must be an object, not {ref!r}")
    name = ref.get("name")
    size = ref.get("size")
    if not isinstance(name, str) or not _NAME.match(name):
        raise SharedMemoryError(f"Bad shared-memory file name {name!r}")
    if not isinstance(size, int) or isinstance(size, bool) or size < 1:
        raise SharedMemoryError(f"Bad shared-memory size {size!r}")
    if max_bytes is not None and size > max_bytes:
        raise SharedMemoryError(
            f"A shared-memory attachment of {size} bytes exceeds the {max_bytes} bytes accepted"
        )
    return name, size


def open_dir(path: str) -> int:
    """A descriptor of a directory (not through a symlink), to open names relative to it."""
    return os.open(path, os.O_RDONLY | _O_DIRECTORY | _O_NOFOLLOW | _O_CLOEXEC)


def checked_open(dir_fd: int, name: str, size: int) -> int:
    """Open ``name`` in the directory for reading, after checking it is a complete regular
    file of ``size`` bytes with one link, owned by this user (never through a symlink)."""
    try:
        fd = os.open(name, os.O_RDONLY | _O_NOFOLLOW | _O_CLOEXEC, dir_fd=dir_fd)
    except FileNotFoundError:
        raise SharedMemoryError(
            f"Shared-memory file {name} is gone (released by the hub, or never written)"
        ) from None
    except OSError as error:  # ELOOP: a symlink
        raise SharedMemoryError(f"Cannot open shared-memory file {name}: {error}") from None
    try:
        st = os.fstat(fd)
        problem = None
        if not stat.S_ISREG(st.st_mode):
            problem = "not a regular file"
        elif st.st_uid != os.geteuid():
            problem = "owned by another user"
        elif st.st_nlink != 1:
            problem = f"{st.st_nlink} links"
        elif st.st_size != size:
            problem = f"{st.st_size} bytes, the reference says {size}"
        elif st.st_blocks * 512 < size:
            problem = "not completely written (holes)"
        if problem is not None:
            raise SharedMemoryError(f"Shared-memory file {name} refused: {problem}")
    except BaseException:
        os.close(fd)
        raise
    return fd


def map_file(dir_fd: int, name: str, size: int, *, private: bool) -> mmap.mmap:
    """Map a checked file: copy-on-write (``private``: writes stay in this process) or
    read-only shared."""
    fd = checked_open(dir_fd, name, size)
    try:
        access = mmap.ACCESS_COPY if private else mmap.ACCESS_READ
        return mmap.mmap(fd, size, access=access)
    finally:
        os.close(fd)


def write_file(dir_fd: int, name: str, parts: Iterable[tuple[int, Any]], size: int) -> None:
    """Create ``name`` (0600, exclusively) and write each ``(offset, buffer)`` into it; the file
    is ``size`` bytes (zero padding between parts). Removed again if anything fails."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | _O_NOFOLLOW | _O_CLOEXEC
    fd = os.open(name, flags, 0o600, dir_fd=dir_fd)
    try:
        end = 0
        for offset, buffer in parts:
            view = memoryview(buffer).cast("B")
            done = 0
            while done < view.nbytes:
                done += os.pwrite(fd, view[done:], offset + done)
            end = max(end, offset + view.nbytes)
        if end < size:
            os.pwrite(fd, b"\0" * (size - end), end)  # so that the file has no hole
    except BaseException:
        os.close(fd)
        os.unlink(name, dir_fd=dir_fd)
        raise
    os.close(fd)


# ---------------------------------------------------------------------- layouts (sender)


def _aligned(offset: int) -> int:
    return offset + (-offset % ALIGN)


def _plain_dtype(dtype: Any) -> bool:
    import numpy as np

    return (
        isinstance(dtype, np.dtype)
        and dtype.kind in _COLUMN_KINDS
        and dtype.fields is None
        and not dtype.hasobject
    )


def _json_label(label: Any) -> bool:
    return (
        label is None
        or isinstance(label, str)
        or (isinstance(label, int) and not isinstance(label, bool))
    )


def columns_layout(frame: Any) -> tuple[dict[str, Any], Iterator[tuple[int, Any]], int] | None:
    """The ``columns`` layout of a DataFrame: placeholder fields, the ``(offset, bytes)``
    parts and the file size; None when a column, the index or a label does not fit it.

    The parts are produced one column at a time as they are written: a column that must be
    made contiguous (a consolidated 2-D block) is copied alone, never the whole frame.
    """
    import numpy as np
    import pandas as pd

    columns = frame.columns
    if isinstance(columns, pd.MultiIndex) or not columns.is_unique:
        return None
    names = [c.item() if isinstance(c, np.generic) else c for c in columns]
    if not all(_json_label(n) and n is not None for n in names):
        return None
    dtypes = list(frame.dtypes)
    if not all(_plain_dtype(d) for d in dtypes):
        return None
    index = frame.index
    if not _json_label(index.name):
        return None
    rows = len(frame)
    offset = 0
    index_form: dict[str, Any]
    if isinstance(index, pd.RangeIndex):
        index_form = {"kind": "range", "start": index.start, "stop": index.stop}
        index_form["step"] = index.step
    elif not isinstance(index, pd.MultiIndex) and _plain_dtype(index.dtype):
        index_form = {"kind": "array", "dtype": index.dtype.str, "offset": 0}
        offset = _aligned(rows * index.dtype.itemsize)
    else:
        return None
    index_form["name"] = index.name
    offsets = []
    for dtype in dtypes:
        offsets.append(offset)
        offset = _aligned(offset + rows * dtype.itemsize)

    def parts() -> Iterator[tuple[int, Any]]:
        if index_form["kind"] == "array":
            yield 0, _raw(index.to_numpy())
        for position, start in enumerate(offsets):
            yield start, _raw(frame.iloc[:, position].to_numpy())

    fields = {
        TAG: "dataframe",
        "format": "columns",
        "rows": rows,
        "columns": names,
        "dtypes": [d.str for d in dtypes],
        "offsets": offsets,
        "index": index_form,
    }
    if columns.name is not None and _json_label(columns.name):
        fields["columns_name"] = columns.name
    return fields, parts(), max(offset, 1)


def _laid_out(buffer: Any) -> tuple[list[tuple[int, Any]], int]:
    """A buffer (or :class:`~.frames.Pieces`) as ``(offset, bytes)`` parts, and its size."""
    parts = []
    offset = 0
    for piece in buffer if isinstance(buffer, Pieces) else [buffer]:
        view = memoryview(piece).cast("B")
        parts.append((offset, view))
        offset += view.nbytes
    return parts, offset


def _raw(values: Any) -> Any:
    """An array's bytes, contiguous (datetimes have no buffer format of their own)."""
    import numpy as np

    return np.ascontiguousarray(values).reshape(-1).view(np.uint8)


def estimated_size(value: Any) -> int:
    """Bytes a value would take as an attachment (cheap: no conversion)."""
    if isinstance(value, (bytes, bytearray, memoryview)):
        return memoryview(value).nbytes
    nbytes = getattr(value, "nbytes", None)
    if isinstance(nbytes, int):
        return nbytes
    usage = getattr(value, "memory_usage", None)
    if usage is not None:
        try:
            total = usage(index=True, deep=False)  # a Series of sizes, or a Series' own int
            return int(getattr(total, "sum", lambda: total)())
        except Exception:  # not a pandas object after all
            return 0
    return 0


def share_plan(value: Any) -> tuple[dict[str, Any], Iterable[tuple[int, Any]], int] | None:
    """How a value goes into a shared file: placeholder fields, the ``(offset, bytes)`` parts
    to write and the file size; None if it travels as buffers."""
    if isinstance(value, (bytes, bytearray, memoryview)):
        view = memoryview(value).cast("B")
        return {TAG: "bytes"}, [(0, view)], view.nbytes
    module = type(value).__module__.split(".", 1)[0]
    if module == "numpy":
        import numpy as np

        if not isinstance(value, np.ndarray):
            return None
        if value.dtype.kind not in "biufcmMSU" or value.dtype.fields is not None:
            return None
        fields = {TAG: "ndarray", "dtype": value.dtype.str, "shape": list(value.shape)}
        return fields, [(0, _raw(value))], value.nbytes
    if module == "pandas":
        import pandas as pd

        frame = value.to_frame() if isinstance(value, pd.Series) else value
        if not isinstance(frame, pd.DataFrame):
            return None
        layout = columns_layout(frame)
        if layout is not None:
            return layout
        buffers: list[Any] = []
        placeholder = dataframe_placeholder(frame, buffers)
        if placeholder is None:
            return None
        placeholder.pop("buffers")
        return placeholder, *_laid_out(buffers[0])
    return None


# ---------------------------------------------------------------------- layouts (receiver)


def revive_columns(meta: dict[str, Any], buffer: Any) -> Any:
    """A DataFrame on views of ``buffer`` (the ``columns`` layout), checked against its size."""
    import numpy as np
    import pandas as pd

    size = memoryview(buffer).nbytes
    try:
        rows = int(meta["rows"])
        names = list(meta["columns"])
        dtypes = [np.dtype(d) for d in meta["dtypes"]]
        offsets = [int(o) for o in meta["offsets"]]
        index_form = dict(meta["index"])
    except (KeyError, TypeError, ValueError) as error:
        raise SharedMemoryError(f"Bad columns layout: {error!r}") from None
    if not (len(names) == len(dtypes) == len(offsets)) or len(set(map(repr, names))) != len(names):
        raise SharedMemoryError("Bad columns layout: columns, dtypes and offsets disagree")
    if rows < 0:
        raise SharedMemoryError(f"Bad columns layout: {rows} rows")

    def view(dtype: Any, offset: int) -> Any:
        if not _plain_dtype(dtype):
            raise SharedMemoryError(f"Bad columns layout: dtype {dtype} cannot be mapped")
        if offset < 0 or offset % ALIGN or offset + rows * dtype.itemsize > size:
            raise SharedMemoryError(f"Bad columns layout: offset {offset} out of the file")
        return np.frombuffer(buffer, dtype=dtype, count=rows, offset=offset)

    kind = index_form.get("kind")
    if kind == "range":
        try:
            index = pd.RangeIndex(
                int(index_form["start"]), int(index_form["stop"]), int(index_form["step"])
            )
        except (KeyError, TypeError, ValueError) as error:
            raise SharedMemoryError(f"Bad columns layout: range index {error!r}") from None
        if len(index) != rows:
            raise SharedMemoryError("Bad columns layout: the index length is not the row count")
    elif kind == "array":
        try:
            index_dtype = np.dtype(index_form["dtype"])
            index_offset = int(index_form["offset"])
        except (KeyError, TypeError, ValueError) as error:
            raise SharedMemoryError(f"Bad columns layout: index {error!r}") from None
        index = pd.Index(view(index_dtype, index_offset), copy=False)
    else:
        raise SharedMemoryError(f"Bad columns layout: index kind {kind!r}")
    index.name = index_form.get("name")
    columns = zip(names, dtypes, offsets, strict=True)
    data = {name: view(dtype, offset) for name, dtype, offset in columns}
    frame = pd.DataFrame(data, index=index, columns=names or None, copy=False)
    if meta.get("columns_name") is not None:
        frame.columns.name = meta["columns_name"]
    return frame


def revive_shared(meta: dict[str, Any], buffer: Any) -> Any:
    """The value of a placeholder whose data is ``buffer`` (a mapped shared file).

    bytes are copied once (a ``bytes`` object); arrays and ``columns`` DataFrames are views of
    the buffer (writable when it is a copy-on-write mapping); Arrow DataFrames are converted.
    """
    kind = meta.get(TAG)
    if kind == "bytes":
        return bytes(buffer)
    if kind == "ndarray":
        import numpy as np

        try:
            dtype = np.dtype(meta.get("dtype"))
            shape = tuple(int(n) for n in meta.get("shape") or ())
            return np.frombuffer(buffer, dtype=dtype).reshape(shape)
        except (TypeError, ValueError) as error:
            raise SharedMemoryError(f"Bad array reference: {error}") from None
    if kind == "dataframe":
        if meta.get("format") == "columns":
            return revive_columns(meta, buffer)
        return revive_dataframe({**meta, "buffers": [0]}, [memoryview(buffer)], _keep)
    raise SharedMemoryError(f"Unknown shared attachment kind {kind!r}")


def _keep(value: Any, buffers: Any) -> Any:
    return value


# ---------------------------------------------------------------------- the hub's attachment


class SharedAttachment(Attachment):
    """An attachment whose data is a file the hub holds in its shared-memory directory.

    Peers that proved they see the directory get the reference; any other peer gets the usual
    forms, from the file mapped read-only on first need (a ``columns`` DataFrame is converted to
    the Arrow form once for binary peers, to the JSON form once for the others). The hub's
    finalizer removes the file once this object is gone (see ``server/shm.py``).
    """

    __slots__ = ("__weakref__", "_lock", "_map", "_opener", "_wire", "name", "size")

    def __init__(
        self, meta: dict[str, Any], name: str, size: int, opener: Callable[[], Any]
    ) -> None:
        super().__init__(meta, [])
        self.name = name
        self.size = size
        self._opener = opener
        self._map: Any = None
        self._wire: tuple[dict[str, Any], list[memoryview]] | None = None
        self._lock = threading.Lock()

    @property
    def nbytes(self) -> int:
        return self.size

    def __repr__(self) -> str:
        return f"<SharedAttachment {self.kind} {self.size} bytes in {self.name}>"

    def shared_placeholder(self) -> dict[str, Any]:
        return {**self.meta, "shm": {"name": self.name, "size": self.size}}

    def mapping(self) -> Any:
        """The file, mapped read-only once (any thread: the store encodes in its own)."""
        with self._lock:
            if self._map is None:
                self._map = self._opener()
            return self._map

    def wire(self) -> tuple[dict[str, Any], list[memoryview]]:
        with self._lock:
            wire = self._wire
        if wire is not None:
            return wire
        buffer = memoryview(self.mapping())
        if self.meta.get("format") == "columns":
            buffers: list[Any] = []
            placeholder = dataframe_placeholder(revive_columns(self.meta, buffer), buffers)
            if placeholder is None:
                raise SharedMemoryError("This DataFrame cannot be converted to Arrow")
            placeholder.pop("buffers")
            wire = (placeholder, [memoryview(joined(b)).cast("B") for b in buffers])
        else:
            wire = (self.meta, [buffer])
        with self._lock:
            self._wire = wire
        return wire

    def json_form(self) -> Any:
        if self.meta.get("format") == "columns":
            try:
                return dataframe_json_form(revive_columns(self.meta, memoryview(self.mapping())))
            except ImportError as error:
                return {**self.meta, "error": f"cannot convert on the hub: {error}"}
            except Exception as error:
                return {**self.meta, "error": f"cannot convert: {type(error).__name__}: {error}"}
        return super().json_form()


# ---------------------------------------------------------------------- the client's side


class SharedFiles:
    """A client's view of the hub's shared-memory directory, from the hub's offer.

    :meth:`proof` reads the nonce file (an ``OSError`` means the hub's directory is not
    visible from here). After the hub accepted the proof, :meth:`write` creates files in the
    inbox and :meth:`map` maps the files the hub refers to, copy-on-write.
    """

    def __init__(self, offer: Any, threshold: int = DEFAULT_THRESHOLD) -> None:
        if not isinstance(offer, dict):
            raise SharedMemoryError(f"Bad shared-memory offer {offer!r}")
        inbox, held, nonce = offer.get("inbox"), offer.get("held"), offer.get("nonce")
        if not all(isinstance(x, str) and x for x in (inbox, held, nonce)):
            raise SharedMemoryError(f"Bad shared-memory offer {offer!r}")
        assert isinstance(inbox, str) and isinstance(held, str) and isinstance(nonce, str)
        if not _NAME.match(nonce):
            raise SharedMemoryError(f"Bad nonce file name {nonce!r}")
        self.inbox = inbox
        self.held = held
        self.nonce = nonce
        self.threshold = threshold
        self._inbox_fd: int | None = None
        self._held_fd: int | None = None

    def proof(self) -> str:
        """The nonce file's content (raises OSError or SharedMemoryError if not readable)."""
        inbox_fd = open_dir(self.inbox)
        try:
            held_fd = open_dir(self.held)
        except BaseException:
            os.close(inbox_fd)
            raise
        self.close()
        self._inbox_fd, self._held_fd = inbox_fd, held_fd
        fd = os.open(self.nonce, os.O_RDONLY | _O_NOFOLLOW | _O_CLOEXEC, dir_fd=inbox_fd)
        try:
            text = os.read(fd, 256).decode("ascii", "replace").strip()
        finally:
            os.close(fd)
        if not text:
            raise SharedMemoryError("The hub's nonce file is empty")
        return text

    def close(self) -> None:
        for fd in (self._inbox_fd, self._held_fd):
            if fd is not None:
                os.close(fd)
        self._inbox_fd = self._held_fd = None

    def __del__(self) -> None:
        with contextlib.suppress(Exception):
            self.close()

    def write(self, value: Any) -> dict[str, Any] | None:
        """Put ``value`` in a new inbox file: its reference placeholder, or None when it travels
        as buffers instead (below the threshold, a type without a shared layout, or the file
        could not be written, e.g. tmpfs full)."""
        if self._inbox_fd is None or estimated_size(value) < self.threshold:
            return None
        plan = share_plan(value)
        if plan is None:
            return None
        fields, parts, size = plan
        name = new_name()
        try:
            space = os.fstatvfs(self._inbox_fd)
            if space.f_bavail * space.f_frsize < size:
                return None  # tmpfs too small for it (e.g. a container's 64 MB /dev/shm)
            write_file(self._inbox_fd, name, parts, size)
        except OSError:
            return None
        return {**fields, "shm": {"name": name, "size": size}}

    def discard(self, placeholder: dict[str, Any]) -> None:
        """Remove the file of a reference that will not be sent after all."""
        if self._inbox_fd is None:
            return
        with contextlib.suppress(OSError, KeyError, TypeError):
            os.unlink(str(placeholder["shm"]["name"]), dir_fd=self._inbox_fd)

    def map(self, ref: Any) -> mmap.mmap:
        """A copy-on-write mapping of a file the hub refers to."""
        if self._held_fd is None:
            raise SharedMemoryError("Shared memory is not enabled on this connection")
        name, size = check_ref(ref)
        return map_file(self._held_fd, name, size, private=True)
