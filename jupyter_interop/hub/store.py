"""Persistence for retained shared contexts (contexts survive restarts:
docs/ARCHITECTURE.md, docs/RELIABILITY.md "Durability").

The hub core is single-threaded and must never wait for the disk, so ``put``/``delete`` only
record the latest operation per context name in memory; one daemon writer thread commits what
is pending as a single SQLite transaction per batch. Because every ``put`` carries the full
state of a context (not a delta), only the newest pending operation for a name matters: a burst
of updates to one context costs one row write. A batch that fails (file locked by another
process, disk full) is retried with a backoff; newer operations for the same names supersede it.

Every operation gets a sequence number. :attr:`ContextStore.durable_seq` is the highest one up to
which everything is committed (or failed for good, see :meth:`ContextStore.take_failures`), and
``on_commit`` is called on the writer thread each time it may have moved: the hub acknowledges a
retained update only then (group commit: the updates that arrive while one transaction is being
written go together into the next one; see docs/RELIABILITY.md).

The file is never silently emptied: a file that is not a usable store is renamed to
``<path>.corrupt-<timestamp>`` (with its ``-wal``/``-shm`` files, so SQLite tools can still open
it) and the store starts fresh; a single row that cannot be decoded is skipped on load and left
untouched in the file.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import orjson

from ..protocol.codec import encode

__all__ = ["SCHEMA_VERSION", "ContextStore", "StoreFailure", "StoredContext"]

#: Stored in ``PRAGMA user_version``; bump it (and add a migration) when the table changes.
SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS contexts (
    name       TEXT PRIMARY KEY NOT NULL,
    data       TEXT NOT NULL,      -- the context data as a JSON object (orjson)
    version    INTEGER NOT NULL,   -- the hub's version counter for the context
    updated_at REAL NOT NULL,      -- time.time() of the change, not of the disk write
    updater    TEXT                -- peer id of the last updater, if known
)
"""
_COLUMNS = frozenset({"name", "data", "version", "updated_at", "updater"})
_UPSERT = (
    "INSERT OR REPLACE INTO contexts (name, data, version, updated_at, updater)"
    " VALUES (?, ?, ?, ?, ?)"
)
_DELETE = "DELETE FROM contexts WHERE name = ?"
_SELECT = "SELECT name, data, version, updated_at, updater FROM contexts"

#: SQLite errors that mean "someone else holds the file right now", not "the file is bad".
_TRANSIENT = frozenset({"SQLITE_BUSY", "SQLITE_LOCKED"})
_SQLITE_HEADER = b"SQLite format 3\x00"
_BUSY_TIMEOUT = 5.0
_CLOSE_TIMEOUT = 30.0
_MAX_BACKOFF = 30.0  # seconds between retries of a failing write, at most


@dataclass(frozen=True)
class StoredContext:
    """One retained context as it was last written."""

    name: str
    data: dict[str, Any]
    version: int
    updated_at: float
    updater: str | None


@dataclass(frozen=True)
class _Put:
    data: dict[str, Any]
    version: int
    updated_at: float
    updater: str | None


# A pending operation: the new state of a context, or None for "delete it".
_Op = _Put | None


@dataclass(frozen=True)
class StoreFailure:
    """Operations on one name that can never be written: those numbered ``first_seq`` to
    ``last_seq``, and why."""

    first_seq: int
    last_seq: int
    message: str

    def covers(self, seq: int) -> bool:
        return self.first_seq <= seq <= self.last_seq


@dataclass
class _Pending:
    """The newest operation for one name, and the oldest sequence number it stands for (older
    operations it superseded become durable when it does)."""

    op: _Op
    first_seq: int


#: ``PRAGMA synchronous`` values the store accepts (see :class:`ContextStore`)
Synchronous = Literal["NORMAL", "FULL"]


class ContextStore:
    """Retained contexts in a SQLite file, written behind the hub's back by one thread.

    Durability: the file uses WAL journal mode with ``synchronous=NORMAL``. Each batch is one
    transaction, so after any crash a context holds either its old or its new state, never a
    mix, and the database cannot be corrupted. With WAL, ``NORMAL`` skips the fsync per commit
    (the WAL is synced at checkpoints): a killed process loses nothing that was committed, and
    only a power loss or OS crash can roll back the last few batches, to an older but consistent
    state. That is the right price for state that the hub keeps in memory anyway and rewrites
    in full on every update; an fsync per batch would cost more than the write itself.
    ``synchronous="FULL"`` syncs the WAL on every commit, so that a commit also survives a
    power loss, at the price of one fsync per batch.

    ``batch_delay`` is how long the writer waits after the first pending operation before it
    takes a batch, so that a context updated many times a second is written a few times a
    second at most. ``flush`` and ``close`` do not wait for it. With ``ack_after_commit`` the
    hub holds its acknowledgements until :attr:`durable_seq` covers them; there the delay is
    0 by default (pure group commit).

    ``close`` is registered with ``atexit`` (the writer is a daemon thread, so without it the
    last batch would be lost at interpreter exit); that keeps the store alive until it is
    closed.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        log: logging.Logger | None = None,
        *,
        batch_delay: float | None = None,
        ack_after_commit: bool = False,
        synchronous: Synchronous = "NORMAL",
    ) -> None:
        if synchronous not in ("NORMAL", "FULL"):
            raise ValueError(f"synchronous must be 'NORMAL' or 'FULL', not {synchronous!r}")
        if batch_delay is not None and batch_delay < 0:
            raise ValueError(f"batch_delay must be >= 0, not {batch_delay!r}")
        self.path = Path(path)
        self.log = log or logging.getLogger(__name__)
        #: the hub acknowledges retained updates only once committed (it reads this flag)
        self.ack_after_commit = ack_after_commit
        if batch_delay is None:
            batch_delay = 0.0 if ack_after_commit else 0.05
        self.batch_delay = batch_delay
        self.synchronous = synchronous
        #: called on the writer thread after each batch, when :attr:`durable_seq` may have moved
        self.on_commit: Callable[[], None] | None = None
        #: Operations that could not be written (encoding or database errors), and the last one.
        self.write_errors = 0
        self.last_error: str | None = None
        #: Transactions committed; a burst of puts to one name should add about one.
        self.commits = 0

        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)  # the writer waits here for work
        self._done = threading.Condition(self._lock)  # flush() waits here for the writer
        self._pending: dict[str, _Pending] = {}
        self._inflight_seq: int | None = None  # oldest sequence number in the batch being written
        #: names whose operations failed for good, not yet taken (see take_failures)
        self._failures: dict[str, StoreFailure] = {}
        self._batch_seq = 0  # the last sequence number of the batch being written
        self._batch_firsts: dict[str, int] = {}  # its oldest sequence number per name
        self._queued = 0  # operations accepted so far (the last sequence number given)
        self._written = 0  # operations handled (written or failed) so far
        self._flushers = 0
        self._backoff = 0.0  # seconds before the writer retries a failed batch; 0 when healthy
        self._closed = False
        self._writer: threading.Thread | None = None

        self._db_lock = threading.Lock()  # the connection is shared by load() and the writer
        self._conn: sqlite3.Connection | None = None
        self._warned: set[str] = set()  # names whose encoding failure was already logged
        self._last_logged: str | None = None
        atexit.register(self.close)

    # -- API used by the hub core ------------------------------------------------------------

    def load(self) -> dict[str, StoredContext]:
        """Read every stored context; called once at hub start, so it may block on the disk.

        A row that cannot be decoded is logged and skipped, and stays in the file. If the file
        cannot be opened at all the error is logged and the hub starts without stored contexts.
        """
        self.flush()
        try:
            with self._db_lock:
                rows = self._connection().execute(_SELECT).fetchall()
        except (sqlite3.Error, OSError) as exc:
            self._error(0, f"cannot read context store {self.path}: {exc}")
            return {}
        contexts: dict[str, StoredContext] = {}
        for row in rows:
            try:
                context = _decode_row(row)
            except (ValueError, TypeError) as exc:
                self.log.warning(
                    "Context store %s: skipping context %r: %s (the row is kept in the file)",
                    self.path,
                    row[0],
                    exc,
                )
                continue
            contexts[context.name] = context
        self.log.info("Loaded %d retained context(s) from %s", len(contexts), self.path)
        return contexts

    def put(self, name: str, data: dict[str, Any], version: int, updater: str | None) -> int:
        """Queue the new full state of a context; returns its sequence number at once.

        ``data`` is encoded later, on the writer thread, so a state that a newer put replaces
        is never encoded at all. A caller that mutates ``data`` in place after the call may have
        the newer data written under the older ``version`` for one batch; the put that goes with
        the mutation rewrites the pair. Replace the dict instead if that window matters.
        """
        if not (
            isinstance(name, str)
            and isinstance(data, dict)
            and isinstance(version, int)
            and (updater is None or isinstance(updater, str))
        ):
            raise TypeError("put(name: str, data: dict, version: int, updater: str | None)")
        return self._enqueue(name, _Put(data, version, time.time(), updater))

    def delete(self, name: str) -> int:
        """Queue the removal of a context; returns its sequence number at once."""
        if not isinstance(name, str):
            raise TypeError("delete(name: str)")
        return self._enqueue(name, None)

    @property
    def durable_seq(self) -> int:
        """Every operation up to this sequence number is committed or failed for good.

        A batch that failed for a transient reason (file locked, disk full) holds it back
        until its retry commits; an operation superseded by a newer one for the same name is
        durable when the newer one is.
        """
        with self._lock:
            return self._durable_locked()

    def take_failures(self) -> dict[str, StoreFailure]:
        """Names whose operations can never be written, since the last call. Such operations
        count as handled in :attr:`durable_seq` but are not on disk."""
        with self._lock:
            failures, self._failures = self._failures, {}
        return failures

    def flush(self, timeout: float | None = None) -> bool:
        """Block until everything queued before the call is written (or has failed).

        Returns False if ``timeout`` expired first.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._lock:
            target = self._queued
            writer = self._writer
        if writer is None or not writer.is_alive():
            self._write_pending()  # no thread (never needed, closed, or interpreter shutdown)
        with self._lock:
            self._flushers += 1
            self._wake.notify()
            try:
                while self._written < target and writer is not None and writer.is_alive():
                    remaining = None if deadline is None else deadline - time.monotonic()
                    if remaining is not None and remaining <= 0:
                        break
                    self._done.wait(remaining)
                return self._written >= target
            finally:
                self._flushers -= 1

    def close(self, timeout: float | None = _CLOSE_TIMEOUT) -> None:
        """Write what is pending, stop the writer and close the file; safe to call again.

        If the writer is still busy after ``timeout`` (a hung disk), it is left to finish on
        its own rather than having the connection closed under it.
        """
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._wake.notify_all()
            writer = self._writer
        atexit.unregister(self.close)
        if writer is not None:
            writer.join(timeout)
            if writer.is_alive():
                self.log.warning(
                    "Context store %s: writer still busy after %ss; not waiting", self.path, timeout
                )
                return
        self._write_pending()
        with self._db_lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    # -- queueing ------------------------------------------------------------------------------

    def _enqueue(self, name: str, op: _Op) -> int:
        with self._lock:
            self._queued += 1
            seq = self._queued
            closed = self._closed
            if not closed:
                was_idle = not self._pending
                self._keep_pending(name, op, seq)
                if self._writer is None:
                    self._start_writer()
                elif was_idle:
                    self._wake.notify()
            else:
                self._written = max(self._written, seq)  # never written: handled, and failed
                self._failures[name] = StoreFailure(seq, seq, f"store {self.path} is closed")
        if closed:
            self._error(1, f"context store {self.path} is closed; dropping writes")
        return seq

    def _keep_pending(self, name: str, op: _Op, seq: int) -> None:
        """Make ``op`` the pending operation for ``name`` (lock held), keeping the oldest
        sequence number it stands for."""
        earlier = self._pending.get(name)
        self._pending[name] = _Pending(op, earlier.first_seq if earlier else seq)

    def _durable_locked(self) -> int:
        oldest = [p.first_seq for p in self._pending.values()]
        if self._inflight_seq is not None:
            oldest.append(self._inflight_seq)
        return min(oldest) - 1 if oldest else self._queued

    def _start_writer(self) -> None:
        """Start the writer thread (lock held); if threads can no longer be started (interpreter
        shutdown), flush() and close() write on the caller's thread instead."""
        thread = threading.Thread(target=self._run, name="interop-context-store", daemon=True)
        try:
            thread.start()
        except RuntimeError:  # "can't create new thread at interpreter shutdown"
            return
        self._writer = thread

    def _run(self) -> None:
        while True:
            with self._lock:
                while not self._pending and not self._closed:
                    self._wake.wait()
                if not self._pending:
                    return  # closed and drained
                deadline = time.monotonic() + (self._backoff or self.batch_delay)
                while not self._closed and not self._flushers:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        break
                    self._wake.wait(remaining)
            self._write_pending()

    def _write_pending(self) -> None:
        """Take everything pending as one batch and write it.

        Batches are taken and written under the db lock, so they reach the file in the order
        they were taken, even when close() or flush() write on their own thread. Operations of
        a batch that failed go back to the queue unless a newer one for the same name is there
        already (or the store is closing), and the writer retries them with a backoff.
        """
        with self._db_lock:
            with self._lock:
                pending, self._pending = self._pending, {}
                seq = self._batch_seq = self._queued
                self._batch_firsts = {name: p.first_seq for name, p in pending.items()}
                if pending:
                    self._inflight_seq = min(self._batch_firsts.values())
            batch = {name: p.op for name, p in pending.items()}
            failed: dict[str, _Op] = {}
            if batch:
                try:
                    failed = self._write(batch)
                except Exception as exc:  # a bug here must not stop persistence for good
                    self.log.exception("Context store %s: writer error", self.path)
                    self._error(len(batch), f"writer error: {exc!r}", logged=True)
                    self._fail_for_good(batch, f"writer error: {exc!r}")
        with self._lock:
            if failed and not self._closed:
                for name in failed:
                    newer = self._pending.get(name)
                    first = pending[name].first_seq
                    if newer is None:
                        self._queued += 1  # a later flush() waits for the retry
                        self._pending[name] = _Pending(failed[name], first)
                    else:  # still not durable before the newer operation is
                        newer.first_seq = min(newer.first_seq, first)
                self._backoff = min(max(2 * self._backoff, 1.0), _MAX_BACKOFF)
            elif failed:  # closing: these will never be written
                for name in failed:
                    self._failures[name] = StoreFailure(
                        pending[name].first_seq, seq, f"store {self.path} closed before a retry"
                    )
            elif batch:
                self._backoff = 0.0
            self._inflight_seq = None
            self._written = max(self._written, seq)
            self._done.notify_all()
            notify = self.on_commit if batch else None
        if notify is not None:
            try:
                notify()
            except Exception:  # the listener's bug must not stop persistence
                self.log.exception("Context store %s: on_commit failed", self.path)

    def _fail_for_good(self, batch: dict[str, _Op], message: str) -> None:
        """Remember names whose operations will never be written (for take_failures)."""
        with self._lock:
            for name in batch:
                self._failed_locked(name, message)

    def _failed_locked(self, name: str, message: str) -> None:
        """Record that the batch's operations on ``name`` can never be written (lock held)."""
        first = self._batch_firsts.get(name, self._batch_seq)
        self._failures[name] = StoreFailure(first, self._batch_seq, message)

    # -- writing -------------------------------------------------------------------------------

    def _write(self, batch: dict[str, _Op]) -> dict[str, _Op]:
        """Commit one batch in one transaction; return the operations to retry.

        An operation that cannot be encoded is counted, logged and dropped: retrying it would
        fail the same way. A database error fails (and returns) the whole batch. Called with
        the db lock held.
        """
        rows: list[tuple[str, str, int, float, str | None]] = []
        deletes: list[tuple[str]] = []
        for name, op in batch.items():
            try:
                if op is None:
                    name.encode()
                    deletes.append((name,))
                else:
                    rows.append(_encode_row(name, op))
            except (TypeError, ValueError, OverflowError) as exc:
                # orjson.JSONEncodeError is a TypeError; surrogates in a name are a ValueError.
                self._encoding_error(name, exc)
                continue
            self._warned.discard(name)
        if not rows and not deletes:
            return {}
        try:
            conn = self._connection()
            conn.execute("BEGIN IMMEDIATE")
            try:
                conn.executemany(_UPSERT, rows)
                conn.executemany(_DELETE, deletes)
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.rollback()
                raise
        except (sqlite3.Error, OSError) as exc:
            n = len(rows) + len(deletes)
            self._error(n, f"writing {n} context(s) to {self.path} failed: {exc}")
            attempted = {row[0] for row in rows} | {name for (name,) in deletes}
            return {name: op for name, op in batch.items() if name in attempted}
        self.commits += 1
        return {}

    def _encoding_error(self, name: str, exc: Exception) -> None:
        message = f"context {name!r} cannot be stored in {self.path}: {exc}"
        # Logged once per name (until it is written again): a context updated in a loop with an
        # unencodable value would otherwise flood the log. Every failure is counted.
        first = name not in self._warned
        self._warned.add(name)
        if first:
            self.log.warning("%s; keeping its previous stored state", message)
        self._error(1, message, logged=True)
        with self._lock:
            self._failed_locked(name, message)

    def _error(self, count: int, message: str, *, logged: bool = False) -> None:
        """Count and remember a failure; log it unless it repeats the previous one."""
        self.write_errors += count
        self.last_error = message
        if logged:
            return
        if message != self._last_logged:
            self.log.error("%s", message)
        else:
            self.log.debug("%s", message)
        self._last_logged = message

    # -- opening -------------------------------------------------------------------------------

    def _connection(self) -> sqlite3.Connection:
        """The open connection, opening (and if need be setting aside) the file; db lock held."""
        if self._conn is None:
            self._conn = self._open()
        return self._conn

    def _open(self) -> sqlite3.Connection:
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        if self.path.exists():
            problem = _header_problem(self.path)  # before SQLite touches the file or its WAL
            if problem is None:
                conn = self._connect()
                try:
                    problem = _schema_problem(conn)
                except BaseException:
                    conn.close()
                    raise
                if problem is None:
                    return self._prepare(conn)
                conn.close()
            aside = self._set_aside()
            self.log.warning(
                "Context store %s is unusable (%s); moved it to %s and starting empty",
                self.path,
                problem,
                aside,
            )
        # The contexts may be private: create the file 0600 before SQLite does (0644).
        with contextlib.suppress(FileExistsError):
            os.close(os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        return self._prepare(self._connect())

    def _connect(self) -> sqlite3.Connection:
        # isolation_level=None: we issue BEGIN/COMMIT ourselves, one transaction per batch.
        # check_same_thread=False: load() and the writer share it, serialized by _db_lock.
        return sqlite3.connect(
            self.path, timeout=_BUSY_TIMEOUT, isolation_level=None, check_same_thread=False
        )

    def _prepare(self, conn: sqlite3.Connection) -> sqlite3.Connection:
        """Switch to WAL and create the schema if the file is new."""
        try:
            mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            if str(mode).lower() != "wal":  # e.g. a file system without shared memory
                self.log.warning(
                    "Context store %s: WAL not available (journal_mode=%s)", self.path, mode
                )
            conn.execute(f"PRAGMA synchronous={self.synchronous}")
            conn.execute("BEGIN IMMEDIATE")
            conn.execute(_SCHEMA)
            conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            conn.execute("COMMIT")
        except BaseException:
            conn.close()
            raise
        return conn

    def _set_aside(self) -> Path:
        """Rename the file (and its WAL/SHM, so they stay paired) to ``<path>.corrupt-<ts>``."""
        stamp = time.strftime("%Y%m%dT%H%M%S")
        aside = self.path.with_name(f"{self.path.name}.corrupt-{stamp}")
        n = 1
        while aside.exists():
            aside = self.path.with_name(f"{self.path.name}.corrupt-{stamp}-{n}")
            n += 1
        os.replace(self.path, aside)
        for suffix in ("-wal", "-shm", "-journal"):
            side = self.path.with_name(self.path.name + suffix)
            if side.exists():
                os.replace(side, aside.with_name(aside.name + suffix))
        return aside


def _header_problem(path: Path) -> str | None:
    """Why the file cannot be a SQLite database at all (unreadable, other format), or None."""
    try:
        with open(path, "rb") as f:
            header = f.read(len(_SQLITE_HEADER))
    except OSError as exc:
        return f"cannot read it: {exc}"
    if header and header != _SQLITE_HEADER:
        return f"not a SQLite database (starts with {header!r})"
    return None  # a SQLite file, or empty (SQLite treats that as a new database)


def _schema_problem(conn: sqlite3.Connection) -> str | None:
    """Why an existing SQLite file is not a sound store of a schema we know, or None."""
    try:
        problems = [row[0] for row in conn.execute("PRAGMA integrity_check")]
        if problems != ["ok"]:
            return "integrity_check: " + "; ".join(map(str, problems[:5]))
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        tables = sorted(
            row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        )
        if version == 0:
            # No tables: an empty database, a new store. Tables: another program's database.
            return f"no schema version but tables {tables}" if tables else None
        if version != SCHEMA_VERSION:
            return f"schema version {version}, expected {SCHEMA_VERSION}"
        columns = {row[1] for row in conn.execute("PRAGMA table_info(contexts)")}
        if not columns >= _COLUMNS:
            return f"table 'contexts' lacks {sorted(_COLUMNS - columns)}"
        return None
    except sqlite3.DatabaseError as exc:  # "database disk image is malformed", ...
        if getattr(exc, "sqlite_errorname", None) in _TRANSIENT:
            raise  # locked by another process: not a reason to move its file away
        return str(exc)


def _encode_row(name: str, op: _Put) -> tuple[str, str, int, float, str | None]:
    """The row for a put; raises TypeError/ValueError/OverflowError for what SQLite can't hold."""
    name.encode()  # lone surrogates cannot be stored as TEXT
    if op.updater is not None:
        op.updater.encode()
    if not -(2**63) <= op.version < 2**63:
        raise OverflowError(f"version {op.version} does not fit in 64 bits")
    # binary attachments (arrays, DataFrames) are kept in their documented JSON form
    return (name, encode(op.data).decode(), op.version, op.updated_at, op.updater)


def _decode_row(row: tuple[Any, ...]) -> StoredContext:
    """Validate and decode one stored row; raises ValueError/TypeError if it is bad."""
    name, raw, version, updated_at, updater = row
    data = orjson.loads(raw)  # orjson.JSONDecodeError is a ValueError
    if not isinstance(data, dict):
        raise ValueError(f"data is a JSON {type(data).__name__}, not an object")
    if not isinstance(name, str) or not isinstance(version, int):
        raise TypeError(f"bad name or version: {name!r}, {version!r}")
    if not isinstance(updated_at, (int, float)):
        raise TypeError(f"bad updated_at: {updated_at!r}")
    if updater is not None and not isinstance(updater, str):
        raise TypeError(f"bad updater: {updater!r}")
    return StoredContext(name, data, version, float(updated_at), updater)
