"""What a federation link tracks, without I/O (server/federation_state.py): the local peers it
announces, and which remote peers appear, change or leave as snapshots arrive."""

from __future__ import annotations

import pytest

from jupyter_interop.server.federation_state import LocalPeers, RemoteHubs


def added(peer_id: str, local: bool = True) -> dict:
    return {
        "type": "peer-added",
        "new_peer_id": peer_id,
        "identity": {"application": peer_id},
        "meta": {"local": local},
    }


def test_local_peers_follow_announcements_and_leave_out_remote_peers() -> None:
    local = LocalPeers()
    assert local.read(added("p1"))
    assert not local.read(added("r1", local=False))
    assert local.read(
        {"type": "methods-added", "server_id": "p1", "methods": [{"id": 1, "name": "A"}]}
    )
    assert not local.read({"type": "methods-added", "server_id": "r1", "methods": [{"id": 1}]})
    assert local.snapshot() == {
        "p1": {"identity": {"application": "p1"}, "methods": [{"id": 1, "name": "A"}]}
    }
    assert local.read({"type": "methods-removed", "server_id": "p1", "methods": [1]})
    assert local.snapshot()["p1"]["methods"] == []
    assert local.read({"type": "peer-removed", "removed_id": "p1"})
    assert not local.read({"type": "peer-removed", "removed_id": "p1"})
    assert local.snapshot() == {}


def snapshot(*methods: dict) -> dict:
    return {"p1": {"identity": {"application": "a"}, "methods": list(methods)}}


def test_remote_snapshots_give_added_changed_and_removed_peers() -> None:
    hubs = RemoteHubs("me", timeout=5.0)
    first = hubs.observe("B", snapshot({"id": "1", "name": "A"}), now=0.0)
    assert [p.peer_id for p in first.added] == ["p1"] and first.added[0].hub == "B"
    assert first.methods_added[0][1] == [{"id": "1", "name": "A"}]
    same = hubs.observe("B", snapshot({"id": "1", "name": "A"}), now=1.0)
    assert not (same.added or same.removed or same.methods_added or same.methods_removed)
    changed = hubs.observe("B", snapshot({"id": "1", "name": "A2"}, {"id": "2", "name": "C"}), 2.0)
    assert changed.methods_removed[0][1] == ["1"]  # a changed definition goes, then comes back
    assert [d["name"] for d in changed.methods_added[0][1]] == ["A2", "C"]
    gone = hubs.observe("B", {}, now=3.0)
    assert [p.peer_id for p in gone.removed] == ["p1"]


def test_a_silent_hub_is_found_and_its_peers_leave() -> None:
    hubs = RemoteHubs("me", timeout=5.0)
    hubs.observe("B", snapshot(), now=0.0)
    hubs.observe("C", {}, now=4.0)
    assert hubs.silent(now=5.0) == []
    assert hubs.silent(now=5.5) == ["B"]
    assert [p.peer_id for p in hubs.leave("B").removed] == ["p1"]
    assert hubs.leave("B").removed == []


def test_own_snapshots_are_ignored_and_bad_ones_refused() -> None:
    hubs = RemoteHubs("me", timeout=5.0)
    assert hubs.observe("me", snapshot(), now=0.0).added == []
    with pytest.raises(ValueError, match="must be an object"):
        hubs.observe("B", ["p1"], now=0.0)


def test_the_summary_counts_each_hubs_peers_and_says_when_it_was_last_heard() -> None:
    hubs = RemoteHubs("own", timeout=5.0)
    hubs.observe("h2", {"p1": {}, "p2": {}}, now=10.0)
    hubs.observe("h1", {}, now=11.5)
    assert hubs.summary(now=12.0) == [
        {"hub": "h1", "peers": 0, "last_heard": 0.5},
        {"hub": "h2", "peers": 2, "last_heard": 2.0},
    ]
    hubs.leave("h2")
    assert [h["hub"] for h in hubs.summary(now=12.0)] == ["h1"]
