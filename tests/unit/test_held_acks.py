"""Acknowledgements of retained writes wait for the store's commit; the core stays I/O-free.

The hub core runs on a real ContextStore (SQLite in a temp dir). What a transport would do
after each commit, :meth:`release`, is done here by hand: flush the store, then route what
``hub.contexts.release_durable()`` returns.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hubkit import Client, HubKit

from jupyter_interop.hub import store as store_module
from jupyter_interop.hub.store import ContextStore
from jupyter_interop.protocol import Reason


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "contexts.sqlite"


@pytest.fixture
def store(db: Path) -> Iterator[ContextStore]:
    s = ContextStore(db, ack_after_commit=True)
    yield s
    s.close()


@pytest.fixture
def kit(store: ContextStore) -> HubKit:
    return HubKit(store=store)


def release(kit: HubKit) -> None:
    store = kit.hub.store
    assert store is not None and store.flush(timeout=30)
    kit.deliver(kit.hub.contexts.release_durable())


def create(client: Client, name: str, data: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    return client.send({"type": "create-context", "name": name, "data": data or {}})


def context_id(kit: HubKit, name: str) -> str:
    return kit.hub.contexts.by_name[name].context_id


def test_update_ack_waits_for_the_commit_but_members_get_it_at_once(kit: HubKit) -> None:
    writer, reader = kit.client("writer"), kit.client("reader")
    # the announcement goes at once; the reply to the write, context-created, waits
    assert [m["type"] for m in create(writer, "c")] == ["context-added"]
    release(kit)
    assert writer.one("context-created")["context_id"] == context_id(kit, "c")
    reader.send({"type": "subscribe-context", "context_id": context_id(kit, "c")})
    reader.take()

    got = writer.send(
        {
            "type": "update-context",
            "context_id": context_id(kit, "c"),
            "delta": {"updated": {"a": 1}},
        }
    )
    assert got == []
    assert reader.one("context-updated")["delta"] == {"updated": {"a": 1}}
    release(kit)
    ack = writer.one("success")
    assert ack["version"] == 1
    assert kit.hub.contexts.held == {}


def test_what_others_write_reaches_a_writer_after_its_own_ack(kit: HubKit) -> None:
    a, b = kit.client("a"), kit.client("b")
    create(a, "shared")
    release(kit)
    a.take()
    b.send({"type": "subscribe-context", "context_id": context_id(kit, "shared")})
    b.take()
    cid = context_id(kit, "shared")
    a.send({"type": "update-context", "context_id": cid, "delta": {"updated": {"k": "a"}}})
    # b's later update is applied by the hub now; a must see it after its own ack
    b.send({"type": "update-context", "context_id": cid, "delta": {"updated": {"k": "b"}}})
    assert a.inbox == []
    release(kit)
    assert [(m["type"], m.get("version")) for m in a.take()] == [
        ("success", 1),
        ("context-updated", 2),
    ]


def test_immediate_mode_acknowledges_at_once(db: Path) -> None:
    s = ContextStore(db, ack_after_commit=False)
    try:
        kit = HubKit(store=s)
        writer = kit.client("writer")
        assert [m["type"] for m in create(writer, "c")] == ["context-added", "context-created"]
        got = writer.send(
            {"type": "update-context", "context_id": context_id(kit, "c"), "delta": {"updated": {}}}
        )
        assert [m["type"] for m in got] == ["success"]
        assert kit.hub.contexts.held == {}
    finally:
        s.close()


def test_destroy_ack_waits_and_comes_before_the_announcement(kit: HubKit) -> None:
    owner = kit.client("owner")
    create(owner, "gone")
    release(kit)
    owner.take()
    assert owner.send({"type": "destroy-context", "context_id": context_id(kit, "gone")}) == []
    release(kit)
    assert [m["type"] for m in owner.take()] == ["success", "context-destroyed"]


def test_a_peer_that_dies_with_held_replies_leaves_nothing_behind(kit: HubKit) -> None:
    writer = kit.client("writer")
    create(writer, "c")
    assert writer.conn in {item.conn for q in kit.hub.contexts.held.values() for item in q}
    writer.close()
    assert kit.hub.contexts.held == {}
    release(kit)  # nothing to route to the dead peer


def test_a_write_the_store_can_never_make_is_answered_with_an_error(kit: HubKit) -> None:
    writer = kit.client("writer")
    create(writer, "big")
    release(kit)
    writer.take()
    # more than 64 bits: the hub holds it in memory, the store cannot encode it
    writer.send(
        {
            "type": "update-context",
            "context_id": context_id(kit, "big"),
            "delta": {"updated": {"n": 2**70}},
        }
    )
    release(kit)
    error = writer.one("error")
    assert error["reason_uri"] == Reason.CONTEXT_FAILURE
    assert "could not be stored" in error["reason"]
    # the next storable write is acknowledged normally
    writer.send(
        {
            "type": "update-context",
            "context_id": context_id(kit, "big"),
            "delta": {"updated": {"n": 1}},
        }
    )
    release(kit)
    assert writer.one("success")["version"] == 2


def test_durable_seq_waits_for_the_retry_of_a_failed_batch(
    db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(store_module, "_BUSY_TIMEOUT", 0.2)
    s = ContextStore(db, ack_after_commit=True)
    try:
        first = s.put("a", {"v": 1}, 1, None)
        assert s.flush(timeout=30) and s.durable_seq == first
        other = sqlite3.connect(db, isolation_level=None)
        other.execute("BEGIN IMMEDIATE")  # another writer holds the file until it closes
        try:
            locked = s.put("a", {"v": 2}, 2, None)
            s.flush(timeout=30)
            assert s.write_errors >= 1
            assert s.durable_seq < locked  # failed: not durable, retried later
            newer = s.put("b", {"v": 1}, 1, None)
            assert s.durable_seq < locked < newer
        finally:
            other.close()
        assert s.flush(timeout=60)  # waits for the retry too (it was queued again)
        assert s.durable_seq >= newer
        assert s.take_failures() == {}
    finally:
        s.close()


def test_a_failure_answers_only_the_writes_it_covers(kit: HubKit) -> None:
    writer = kit.client("writer")
    create(writer, "mixed")
    release(kit)
    writer.take()
    cid = context_id(kit, "mixed")
    writer.send({"type": "update-context", "context_id": cid, "delta": {"updated": {"n": 1}}})
    store = kit.hub.store
    assert store is not None and store.flush(timeout=30)  # committed, its reply still held
    writer.send({"type": "update-context", "context_id": cid, "delta": {"updated": {"n": 2**70}}})
    release(kit)
    assert [m["type"] for m in writer.take()] == ["success", "error"]
