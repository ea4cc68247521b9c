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


def caller(peer_id: str = "pB-7", hub: str = "B", seq: int = 4, **more: object) -> dict:
    return {
        "peer_id": peer_id,
        "hub": hub,
        "identity": {"application": "fresh"},
        "seq": seq,
        **more,
    }


def test_a_caller_met_in_a_request_is_the_peer_a_later_snapshot_lists() -> None:
    hubs = RemoteHubs("me", timeout=5.0)
    met, changes = hubs.meet(caller(), now=0.0)
    assert changes.added == [met] and (met.hub, met.identity) == ("B", {"application": "fresh"})
    again, changes = hubs.meet(caller(), now=0.1)
    assert again is met and changes.added == []
    # a snapshot made before the request (seq 3) does not list it yet: it stays
    early = hubs.observe("B", {}, now=0.2, seq=3)
    assert early.removed == [] and [h["peers"] for h in hubs.summary(0.2)] == [1]
    # the snapshot that lists it brings its methods, and no second peer
    listed = {"pB-7": {"identity": {"application": "fresh"}, "methods": [{"id": "1"}]}}
    later = hubs.observe("B", listed, now=0.3, seq=4)
    assert later.added == [] and later.methods_added == [(met, [{"id": "1"}])]
    # once listed, a snapshot that omits it means it left
    assert hubs.observe("B", {}, now=0.4, seq=5).removed == [met]


def test_a_met_caller_that_left_before_any_listing_goes_with_the_next_snapshot() -> None:
    hubs = RemoteHubs("me", timeout=5.0)
    met, _ = hubs.meet(caller(seq=4), now=0.0)
    assert hubs.observe("B", {}, now=0.1, seq=4).removed == [met]


def test_a_request_naming_no_peer_of_another_hub_is_refused() -> None:
    hubs = RemoteHubs("me", timeout=5.0)
    with pytest.raises(ValueError, match="not a peer of another hub"):
        hubs.meet(caller("pme-3", hub="me"), now=0.0)  # one of this hub's own ids
    with pytest.raises(ValueError, match="not a peer of another hub"):
        hubs.meet(caller("pme-3", hub="B"), now=0.0)  # an id that is not its hub's
    with pytest.raises(ValueError, match="no identity"):
        hubs.meet(caller(identity=None), now=0.0)
    with pytest.raises(ValueError, match="needs its peer_id"):
        hubs.meet(caller(peer_id=7), now=0.0)
    with pytest.raises(ValueError, match="names no caller"):
        hubs.meet("pB-7", now=0.0)
    assert hubs.summary(0.0) == []  # nothing was added for any of them
