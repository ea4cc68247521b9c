"""ContextStore: retained contexts survive a restart (docs/RELIABILITY.md, "Durability").

Real SQLite files only.
"""

from __future__ import annotations

import logging
import sqlite3
import stat
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from jupyter_interop.hub import store as store_module
from jupyter_interop.hub.store import SCHEMA_VERSION, ContextStore, StoredContext

__all__: list[str] = []

STORE_LOGGER = "jupyter_interop.hub.store"


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "data" / "contexts.db"


@pytest.fixture
def store(db: Path) -> Iterator[ContextStore]:
    s = ContextStore(db)
    yield s
    s.close()


def reopen(path: Path) -> dict[str, StoredContext]:
    """What a restarted hub would see."""
    s = ContextStore(path)
    try:
        return s.load()
    finally:
        s.close()


def raw_rows(path: Path) -> dict[str, tuple[Any, ...]]:
    conn = sqlite3.connect(path)
    try:
        rows = conn.execute("SELECT name, data, version, updated_at, updater FROM contexts")
        return {row[0]: row for row in rows}
    finally:
        conn.close()


def aside_files(path: Path) -> list[Path]:
    """The set-aside databases (not their -wal/-shm companions)."""
    found = path.parent.glob(path.name + ".corrupt-*")
    return sorted(p for p in found if not p.name.endswith(("-wal", "-shm")))


def test_round_trip_across_restart(store: ContextStore, db: Path) -> None:
    assert store.load() == {}
    store.put("ctx", {"a": 1, "nested": {"b": [1, 2.5, None, "x"]}}, 3, "peer-1")
    store.put("___channel___Red", {"name": "Red", "meta": {}, "data": {}}, 1, None)
    store.close()

    loaded = reopen(db)
    assert set(loaded) == {"ctx", "___channel___Red"}
    ctx = loaded["ctx"]
    assert (ctx.name, ctx.data, ctx.version, ctx.updater) == (
        "ctx",
        {"a": 1, "nested": {"b": [1, 2.5, None, "x"]}},
        3,
        "peer-1",
    )
    assert isinstance(ctx.updated_at, float) and ctx.updated_at > 0
    assert loaded["___channel___Red"].updater is None


def test_file_layout(store: ContextStore, db: Path) -> None:
    store.put("x", {}, 1, None)
    store.flush()
    assert stat.S_IMODE(db.parent.stat().st_mode) == 0o700
    assert stat.S_IMODE(db.stat().st_mode) == 0o600
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION


def test_delete(store: ContextStore, db: Path) -> None:
    store.put("keep", {"v": 1}, 1, None)
    store.put("gone", {"v": 2}, 1, None)
    store.flush()
    store.delete("gone")
    store.delete("never-existed")
    store.close()
    assert set(reopen(db)) == {"keep"}


def test_last_operation_wins_within_a_batch(store: ContextStore, db: Path) -> None:
    store.put("a", {"v": 1}, 1, None)
    store.delete("a")
    store.put("b", {"v": 1}, 1, None)
    store.delete("b")
    store.put("b", {"v": 2}, 2, "p")
    store.close()
    loaded = reopen(db)
    assert set(loaded) == {"b"}
    assert loaded["b"].data == {"v": 2}


def test_burst_to_one_name_costs_about_one_commit(store: ContextStore, db: Path) -> None:
    started = time.monotonic()
    for i in range(10_000):
        store.put("hot", {"i": i}, i, "peer")
    elapsed = time.monotonic() - started
    assert store.flush(timeout=10)
    # One commit per batch window at most, plus the flush: about one on any machine that does
    # 10 000 puts in under batch_delay (~10 ms here), never 10 000.
    assert store.commits <= 2 + elapsed / store.batch_delay, (store.commits, elapsed)
    store.close()
    assert reopen(db)["hot"].data == {"i": 9_999}


def test_one_batch_is_one_transaction(db: Path) -> None:
    # a batch delay no machine reaches: the 200 puts are one batch however slowly they are made
    store = ContextStore(db, batch_delay=3600)
    try:
        for i in range(200):
            store.put(f"ctx{i}", {"i": i}, 1, None)
        store.flush()
        assert store.commits == 1
        assert len(reopen(db)) == 200
    finally:
        store.close()


def test_not_a_database_is_set_aside(db: Path, caplog: pytest.LogCaptureFixture) -> None:
    db.parent.mkdir(parents=True)
    junk = b"this is not a SQLite file\n" * 100
    db.write_bytes(junk)
    db.with_name(db.name + "-wal").write_bytes(b"stale wal")
    caplog.set_level(logging.WARNING, STORE_LOGGER)

    assert reopen(db) == {}

    [aside] = aside_files(db)
    assert aside.read_bytes() == junk  # never silently emptied
    assert Path(str(aside) + "-wal").read_bytes() == b"stale wal"  # kept paired with its db
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert any(str(db) in r.getMessage() and str(aside) in r.getMessage() for r in warnings)
    # and the store starts fresh at the same path
    s = ContextStore(db)
    s.put("new", {"ok": True}, 1, None)
    s.close()
    assert reopen(db)["new"].data == {"ok": True}


def test_damaged_pages_are_set_aside(db: Path, caplog: pytest.LogCaptureFixture) -> None:
    s = ContextStore(db)
    for i in range(300):
        s.put(f"ctx{i}", {"payload": "x" * 200}, 1, None)
    s.close()
    original = bytearray(db.read_bytes())
    page = 4096
    assert len(original) > 3 * page
    damaged = original[:]
    damaged[2 * page : 2 * page + 512] = b"\xff" * 512  # a b-tree page of the table
    db.write_bytes(damaged)
    caplog.set_level(logging.WARNING, STORE_LOGGER)

    assert reopen(db) == {}

    [aside] = aside_files(db)
    assert aside.read_bytes() == damaged
    assert any(str(db) in r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING)


@pytest.mark.parametrize(
    ("user_version", "ddl"),
    [
        (0, "CREATE TABLE something_else (x)"),  # another program's database
        (SCHEMA_VERSION + 1, "CREATE TABLE contexts (name TEXT PRIMARY KEY)"),  # newer schema
        (SCHEMA_VERSION, "CREATE TABLE contexts (name TEXT PRIMARY KEY)"),  # columns missing
    ],
)
def test_unknown_schema_is_set_aside(
    db: Path, caplog: pytest.LogCaptureFixture, user_version: int, ddl: str
) -> None:
    db.parent.mkdir(parents=True)
    with sqlite3.connect(db) as conn:
        conn.execute(ddl)
        conn.execute(f"PRAGMA user_version = {user_version}")
    conn.close()
    caplog.set_level(logging.WARNING, STORE_LOGGER)

    assert reopen(db) == {}

    [aside] = aside_files(db)
    with sqlite3.connect(aside) as conn:  # the set-aside file is intact
        assert conn.execute("PRAGMA user_version").fetchone()[0] == user_version
    conn.close()
    assert any(str(db) in r.getMessage() for r in caplog.records if r.levelno == logging.WARNING)


def test_empty_file_is_a_new_store(db: Path) -> None:
    db.parent.mkdir(parents=True)
    db.touch()
    assert reopen(db) == {}
    assert aside_files(db) == []


def test_bad_rows_are_skipped_and_kept(
    store: ContextStore, db: Path, caplog: pytest.LogCaptureFixture
) -> None:
    for name in ("good", "bad-json", "not-an-object", "bad-version"):
        store.put(name, {"n": name}, 1, None)
    store.close()
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE contexts SET data = '{\"unterminated' WHERE name = 'bad-json'")
        conn.execute("UPDATE contexts SET data = '[1, 2]' WHERE name = 'not-an-object'")
        conn.execute("UPDATE contexts SET version = 'seven' WHERE name = 'bad-version'")
    conn.close()
    before = raw_rows(db)
    caplog.set_level(logging.WARNING, STORE_LOGGER)

    s = ContextStore(db)
    loaded = s.load()
    s.put("other", {}, 1, None)  # the store keeps working and writing
    s.close()

    assert set(loaded) == {"good"}
    for name in ("bad-json", "not-an-object", "bad-version"):
        assert any(
            repr(name) in r.getMessage() and str(db) in r.getMessage() for r in caplog.records
        )
        assert raw_rows(db)[name] == before[name]  # the row is left untouched
    assert aside_files(db) == []


def test_unencodable_value_is_counted_logged_once_and_keeps_old_state(
    store: ContextStore, db: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, STORE_LOGGER)
    store.put("ctx", {"v": "old"}, 1, None)
    store.flush()
    for i in range(3):
        store.put("ctx", {"v": object()}, 2 + i, None)
        store.put("sibling", {"i": i}, 1 + i, None)  # same batch, still written
        store.flush()
    assert store.write_errors == 3
    assert store.last_error is not None and "'ctx'" in store.last_error
    assert len([r for r in caplog.records if "'ctx'" in r.getMessage()]) == 1

    store.put("ctx", {"v": "\ud800"}, 9, None)  # lone surrogate: orjson refuses it too
    store.put("\udcff-name", {}, 1, None)  # a name SQLite cannot hold as TEXT
    store.put("huge", {}, 2**64, None)  # a version SQLite cannot hold
    store.put("big-int", {"n": 2**65}, 1, None)
    store.flush()
    assert store.write_errors == 7

    store.put("after", {"ok": 1}, 1, None)  # the writer survived
    store.close()
    loaded = reopen(db)
    assert loaded["ctx"].data == {"v": "old"} and loaded["ctx"].version == 1
    assert loaded["sibling"].data == {"i": 2}
    assert "after" in loaded and "huge" not in loaded


def hold_exclusive_lock(path: Path) -> sqlite3.Connection:
    """Another process's connection that keeps every other connection out of the file."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA locking_mode = EXCLUSIVE")
    conn.execute("BEGIN EXCLUSIVE")
    conn.execute("COMMIT")  # the exclusive lock stays until the connection closes
    return conn


def test_failed_writes_are_counted_and_retried(
    db: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(store_module, "_BUSY_TIMEOUT", 0.2)
    s = ContextStore(db)
    s.put("a", {"v": 1}, 1, None)
    s.put("b", {"v": 1}, 1, None)
    s.close()
    caplog.set_level(logging.WARNING, STORE_LOGGER)
    other = hold_exclusive_lock(db)
    try:
        s = ContextStore(db)
        assert s.load() == {}  # locked is not corrupt: the file stays where it is
        s.put("a", {"v": 2}, 2, None)
        s.delete("b")
        s.flush()
        assert s.write_errors >= 2
        s.put("a", {"v": 3}, 3, "p")  # supersedes the failed {"v": 2}
        s.flush()
        assert s.write_errors >= 4
        assert s.last_error is not None and "locked" in s.last_error
        assert aside_files(db) == []
        errors = [r for r in caplog.records if r.levelno == logging.ERROR]
        assert errors and all(str(db) in r.getMessage() for r in errors)
        assert len(errors) <= 2  # the load error and the first write error; repeats go to debug
    finally:
        other.close()
    assert s.flush(timeout=10)  # no new operations: the failed ones were kept and retried
    loaded = reopen(db)
    s.close()
    assert set(loaded) == {"a"}
    assert (loaded["a"].data, loaded["a"].version) == ({"v": 3}, 3)


def test_put_checks_argument_types(store: ContextStore) -> None:
    with pytest.raises(TypeError):
        store.put("x", [1, 2], 1, None)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        store.put("x", {}, "1", None)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        store.delete(3)  # type: ignore[arg-type]


def test_flush_and_close_are_idempotent(db: Path) -> None:
    s = ContextStore(db)
    assert s.flush() is True  # nothing queued, no writer thread yet
    s.put("a", {"v": 1}, 1, None)
    assert s.flush(timeout=10) is True
    assert s.flush() is True
    s.close()
    s.close()
    assert s.flush() is True
    s.put("late", {}, 1, None)  # after close: dropped and counted, never raises
    assert s.write_errors == 1 and s.last_error is not None
    assert set(reopen(db)) == {"a"}


def test_close_without_load_or_writes(db: Path) -> None:
    ContextStore(db).close()
    assert not db.exists()


def test_concurrent_puts_from_two_threads(store: ContextStore, db: Path) -> None:
    n = 2_000
    start = threading.Barrier(2)

    def worker(tag: str) -> None:
        start.wait()
        for i in range(n):
            store.put(f"{tag}-{i % 50}", {"i": i}, i, tag)
            store.put("shared", {"tag": tag, "i": i}, i, tag)
            if i % 500 == 0:
                store.delete(f"{tag}-gone")

    threads = [threading.Thread(target=worker, args=(tag,)) for tag in ("A", "B")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    store.close()

    loaded = reopen(db)
    for tag in ("A", "B"):
        for k in range(50):
            last = max(i for i in range(n) if i % 50 == k)
            assert loaded[f"{tag}-{k}"].data == {"i": last}
    # the last put overall was some thread's last put
    assert loaded["shared"].data in ({"tag": "A", "i": n - 1}, {"tag": "B", "i": n - 1})
    assert store.write_errors == 0


def test_atexit_writes_what_is_pending(db: Path) -> None:
    script = textwrap.dedent(
        f"""
        from jupyter_interop.hub.store import ContextStore
        s = ContextStore({str(db)!r}, batch_delay=60)  # only close() at exit can write it
        s.put("from-exit", {{"ok": True}}, 5, "script")
        """
    )
    subprocess.run([sys.executable, "-c", script], check=True, timeout=60)
    assert reopen(db)["from-exit"].version == 5


# -- property: any sequence of put/delete, then flush + reload == the model --------------------

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=10),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=5), children, max_size=4)
    ),
    max_leaves=12,
)
names = st.sampled_from(["a", "b", "c.d", "___channel___Red", "名前", ""]) | st.text(max_size=6)
puts = st.tuples(
    st.just("put"),
    names,
    st.dictionaries(st.text(max_size=5), json_values, max_size=4),
    st.integers(min_value=0, max_value=2**63 - 1),
    st.none() | st.text(max_size=8),
)
deletes = st.tuples(st.just("delete"), names)
flushes = st.just(("flush",))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(puts | deletes | flushes, max_size=40))
def test_any_sequence_of_operations_round_trips(ops: list[tuple[Any, ...]]) -> None:
    model: dict[str, tuple[dict[str, Any], int, str | None]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "contexts.db"
        s = ContextStore(path)
        try:
            for op in ops:
                if op[0] == "put":
                    _, name, data, version, updater = op
                    s.put(name, data, version, updater)
                    model[name] = (data, version, updater)
                elif op[0] == "delete":
                    s.delete(op[1])
                    model.pop(op[1], None)
                else:
                    assert s.flush(timeout=10)
            assert s.flush(timeout=10)
            assert s.write_errors == 0, s.last_error
            loaded = reopen(path)
        finally:
            s.close()
        assert {k: (v.data, v.version, v.updater) for k, v in loaded.items()} == model
        assert all(k == v.name for k, v in loaded.items())
