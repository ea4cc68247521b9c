"""Peers' id sets: shared while empty (memory per idle peer), real sets once used."""

from __future__ import annotations

import pytest
from hubkit import HubKit

from jupyter_interop.hub.peers import NO_IDS, RegisteredMethod, with_id

ID_SETS = ("serving_calls", "calling", "subscriptions", "publishing", "bus_subscriptions")


def test_with_id_starts_a_set_of_its_own_and_leaves_the_shared_one_empty() -> None:
    first = with_id(NO_IDS, "a")
    assert first == {"a"} and first is not NO_IDS and len(NO_IDS) == 0
    assert with_id(first, "b") is first and first == {"a", "b"}
    NO_IDS.discard("a")  # nothing to do, nothing raised
    NO_IDS.clear()
    assert len(NO_IDS) == 0
    with pytest.raises(AttributeError):
        NO_IDS.add("a")  # the first id must go through with_id


def test_idle_peers_share_the_empty_id_sets() -> None:
    kit = HubKit()
    a, b = kit.client("a"), kit.client("b")
    peers = [kit.hub.peers[a.peer_id], kit.hub.peers[b.peer_id]]
    for name in ID_SETS:
        assert all(getattr(p, name) is NO_IDS for p in peers), name


def test_ids_are_tracked_and_released_through_a_call_a_stream_and_a_bus_subscription() -> None:
    kit = HubKit()
    server, caller = kit.client("server"), kit.client("caller")
    server.send(
        {
            "domain": "agm",
            "type": "register",
            "request_id": "r",
            "methods": [
                {"id": "1", "name": "M"},
                {"id": "2", "name": "S", "flags": {"streaming": True}},
            ],
        }
    )
    caller.send(
        {
            "domain": "agm",
            "type": "call",
            "request_id": "c",
            "server_id": server.peer_id,
            "method_id": "1",
            "arguments_kv": {},
        }
    )
    caller.send(
        {
            "domain": "agm",
            "type": "subscribe",
            "request_id": "s",
            "server_id": server.peer_id,
            "method_id": "2",
            "arguments_kv": {},
        }
    )
    caller.send({"domain": "bus", "type": "subscribe", "request_id": "b", "topic": "t"})
    s_peer, c_peer = kit.hub.peers[server.peer_id], kit.hub.peers[caller.peer_id]
    assert len(s_peer.serving_calls) == 1 and len(c_peer.calling) == 1
    assert len(c_peer.subscriptions) == 1 and len(s_peer.publishing) == 1
    assert len(c_peer.bus_subscriptions) == 1
    (invoke,) = server.take("invoke")
    server.send(
        {"domain": "agm", "type": "yield", "invocation_id": invoke["invocation_id"], "result": {}}
    )
    assert s_peer.serving_calls == set() and c_peer.calling == set()
    caller.close()  # the subscriber leaves: its stream and bus subscriptions go with it
    assert s_peer.publishing == set()
    assert kit.hub.bus.subscriptions == {} and kit.hub.agm.subscriptions == {}
    assert len(NO_IDS) == 0


def test_method_definitions_are_kept_encoded_and_announced_exactly_as_registered() -> None:
    kit = HubKit()
    server = kit.client("server")
    definitions = [
        {
            "id": "1",
            "name": "Prices.Get",
            "display_name": "Prix \u00e0 jour \u2713",
            "input_signature": "String symbol, Int? depth",
            "flags": {"metadata": {"nested": [1, 2.5, None, True]}, "streaming": False},
            "object_types": ["Instrument"],
        },
        {"id": "2", "name": "Ticks", "flags": {"streaming": True}},
    ]
    server.send({"domain": "agm", "type": "register", "request_id": "r", "methods": definitions})
    registered = kit.hub.peers[server.peer_id].methods
    assert all(isinstance(m, RegisteredMethod) for m in registered.values())
    assert [registered[d["id"]].definition for d in definitions] == definitions
    assert [registered[d["id"]].streaming for d in definitions] == [False, True]
    late = kit.client("late", "bus")
    late.join("agm")  # a peer joining later gets the stored definitions
    (added,) = [m for m in late.take("methods-added") if m["server_id"] == server.peer_id]
    assert added["methods"] == definitions
    views = kit.hub.views
    (method,) = [m for m in views.methods() if m["server_id"] == server.peer_id]
    assert method["display_name"] == "Prix \u00e0 jour \u2713"
    assert method["flags"] == {"nested": [1, 2.5, None, True]}
    (reply,) = late.send(
        {
            "domain": "agm",
            "type": "subscribe",
            "request_id": "s",
            "server_id": server.peer_id,
            "method_id": "1",
        }
    )
    assert reply["type"] == "error" and "'Prices.Get' is not a stream" in reply["reason"]
