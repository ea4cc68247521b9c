"""Shared contexts: create, announce, subscribe, three delta forms, lifetimes, destroy."""

from __future__ import annotations

import pytest
from hubkit import Client, HubKit

from jupyter_interop.protocol import Reason
from jupyter_interop.protocol.deltas import apply_delta


def create(c: Client, name: str, data: dict, lifetime: str = "retained") -> list[dict]:
    return c.send({"domain": "global", "type": "create-context", "name": name, "data": data,
                   "lifetime": lifetime})


def update(c: Client, context_id: str, delta: dict) -> list[dict]:
    return c.send({"domain": "global", "type": "update-context", "context_id": context_id,
                   "delta": delta})


def test_create_announces_to_everyone_then_created() -> None:
    kit = HubKit()
    a, b = kit.client("a"), kit.client("b")
    replies = create(a, "client", {"name": "Acme"})
    assert [r["type"] for r in replies] == ["context-added", "context-created"]
    added, created = replies
    assert added["name"] == "client" and added["creator_id"] == a.peer_id
    assert added["domain"] == "global" and created["context_id"] == added["context_id"]
    assert b.one("context-added")["context_id"] == created["context_id"]
    # a late joiner is told right after welcome
    c = kit.raw()
    replies = c.send({"domain": "global", "type": "hello", "identity": {"application": "c"},
                      "authentication": {"method": "access-token", "token": "test-token"}})
    assert "client" in [r.get("name") for r in replies if r["type"] == "context-added"]


def test_create_existing_name_subscribes_without_applying_data() -> None:
    kit = HubKit()
    a, b = kit.client("a"), kit.client("b")
    cid = create(a, "c", {"x": 1})[-1]["context_id"]
    (reply,) = create(b, "c", {"x": 2})
    assert reply["type"] == "subscribed-context"
    assert reply["context_id"] == cid and reply["data"] == {"x": 1} and reply["name"] == "c"


def test_subscribe_snapshot_then_deltas_to_others_with_updater_and_version() -> None:
    kit = HubKit()
    a, b, c = kit.client("a"), kit.client("b"), kit.client("c")
    cid = create(a, "ctx", {"k": 1})[-1]["context_id"]
    for x in (b, c):
        x.take()
    (snap,) = b.send({"domain": "global", "type": "subscribe-context", "context_id": cid})
    assert snap["type"] == "subscribed-context" and snap["data"] == {"k": 1}
    assert snap["version"] == 0
    replies = update(a, cid, {"commands": [{"type": "set", "path": "k", "value": 2}]})
    assert replies == [{"domain": "global", "type": "success", "request_id": replies[0][
        "request_id"], "peer_id": a.peer_id, "version": 1}]
    upd = b.one("context-updated")
    assert upd["updater_id"] == a.peer_id and upd["context_id"] == cid and upd["version"] == 1
    assert upd["delta"] == {"commands": [{"type": "set", "path": "k", "value": 2}]}
    assert c.inbox == []  # not a member
    # the writer (creator, a member) is not echoed its own update; b's update reaches a
    update(b, cid, {"reset": {"z": 0}})
    assert a.one("context-updated")["delta"] == {"reset": {"z": 0}}
    assert b.inbox == []
    assert kit.hub.contexts.by_id[cid].data == {"z": 0}


@pytest.mark.parametrize(
    ("start", "delta", "expected"),
    [
        ({"a": 1}, {"reset": {"b": 2}}, {"b": 2}),
        ({"a": 1, "b": {"x": 1, "y": 2}}, {"added": {"c": 3}, "updated": {"b": {"y": 5}},
                                           "removed": ["a"]}, {"b": {"x": 1, "y": 5}, "c": 3}),
        ({"a": [1]}, {"updated": {"a": [2]}}, {"a": [2]}),
        ({"a": {"b": 1}}, {"commands": [{"type": "set", "path": "a.c.d", "value": 1},
                                        {"type": "remove", "path": "a.b"}]},
         {"a": {"c": {"d": 1}}}),
        ({"a": 5}, {"commands": [{"type": "set", "path": "a.b", "value": 1}]}, {"a": {"b": 1}}),
        ({"a": 1}, {"commands": [{"type": "remove", "path": ""}]}, {}),
        ({"a": 1}, {"commands": [{"type": "set", "path": "", "value": {"n": 1}}]}, {"n": 1}),
        ({"a": 1}, {"commands": [{"type": "remove", "path": "x.y"}]}, {"a": 1}),
        ({"a": 1}, {"commands": [{"type": "set", "path": "b", "value": None}]},
         {"a": 1, "b": None}),
    ],
)
def test_delta_forms(start: dict, delta: dict, expected: dict) -> None:
    assert apply_delta(start, delta) == expected


def test_invalid_delta_changes_nothing() -> None:
    kit = HubKit()
    a = kit.client("a")
    cid = create(a, "ctx", {"k": 1})[-1]["context_id"]
    for delta in (
        {},
        {"reset": 5},
        {"removed": "k"},
        {"commands": [{"type": "set", "path": "a", "value": 1}, {"type": "explode"}]},
        {"commands": [{"type": "set", "path": "", "value": 3}]},
        {"weird": {}},
    ):
        reply = update(a, cid, delta)[0]
        assert reply["type"] == "error" and reply["reason_uri"] == Reason.CONTEXT_INVALID
    ctx = kit.hub.contexts.by_id[cid]
    assert ctx.data == {"k": 1} and ctx.version == 0


def test_lifetimes_on_peer_death_and_unsubscribe() -> None:
    kit = HubKit()
    a, b, w = kit.client("a"), kit.client("b"), kit.client("watcher")
    owned = create(a, "owned", {}, "ownership")[-1]["context_id"]
    ref = create(a, "ref", {}, "ref-counted")[-1]["context_id"]
    kept = create(a, "kept", {})[-1]["context_id"]
    b.send({"domain": "global", "type": "subscribe-context", "context_id": ref})
    b.send({"domain": "global", "type": "subscribe-context", "context_id": owned})
    w.take()
    a.close()
    destroyed = w.take("context-destroyed")
    assert [d["context_id"] for d in destroyed] == [owned]
    assert destroyed[0]["reason_uri"] == Reason.CONTEXT_PEER_LEFT
    assert ref in kit.hub.contexts.by_id and kept in kit.hub.contexts.by_id
    b.send({"domain": "global", "type": "unsubscribe-context", "context_id": ref})
    assert [d["context_id"] for d in w.take("context-destroyed")] == [ref]
    assert kept in kit.hub.contexts.by_id


def test_destroy_and_permissions() -> None:
    kit = HubKit()
    a, b = kit.client("a"), kit.client("b")
    owned = create(a, "owned", {}, "ownership")[-1]["context_id"]
    plain = create(a, "plain", {"v": 1})[-1]["context_id"]
    b.take()
    reply = b.send({"domain": "global", "type": "destroy-context", "context_id": owned})[0]
    assert reply["reason_uri"] == Reason.CONTEXT_NOT_AUTHORIZED
    replies = b.send({"domain": "global", "type": "destroy-context", "context_id": plain})
    assert [r["type"] for r in replies] == ["success", "context-destroyed"]
    d = a.one("context-destroyed")
    assert d["reason_uri"] == Reason.CONTEXT_DESTROYED and d["name"] == "plain"
    assert "plain" not in kit.hub.contexts.by_name
    # the name can be created again
    assert create(b, "plain", {"v": 2})[-1]["type"] == "context-created"


def read_only(c: Client, context_id: str, value: bool) -> list[dict]:
    return c.send({"domain": "global", "type": "set-context-read-only",
                   "context_id": context_id, "read_only": value})


def test_an_owner_makes_its_ownership_context_read_only_for_others() -> None:
    kit = HubKit()
    a, b = kit.client("owner-app"), kit.client("b")
    cid = create(a, "owned", {"v": 1}, "ownership")[-1]["context_id"]
    b.send({"domain": "global", "type": "subscribe-context", "context_id": cid})
    b.take()
    assert [r["type"] for r in read_only(a, cid, True)] == ["success"]
    (refused,) = update(b, cid, {"reset": {"v": 2}})
    assert refused["type"] == "error" and refused["reason_uri"] == Reason.CONTEXT_NOT_AUTHORIZED
    assert "'owned' is read-only" in refused["reason"]
    assert f"'owner-app' (peer {a.peer_id})" in refused["reason"]
    assert kit.hub.contexts.by_id[cid].data == {"v": 1} and a.take("context-updated") == []
    # the owner still writes, and only the owner may make it writable again
    assert update(a, cid, {"reset": {"v": 3}})[0]["type"] == "success"
    assert b.one("context-updated")["delta"] == {"reset": {"v": 3}}
    (not_owner,) = read_only(b, cid, False)
    assert not_owner["reason_uri"] == Reason.CONTEXT_NOT_AUTHORIZED
    read_only(a, cid, False)
    assert update(b, cid, {"reset": {"v": 4}})[0]["type"] == "success"


def test_a_context_created_read_only_refuses_other_writers_at_once() -> None:
    kit = HubKit()
    a, b = kit.client("a"), kit.client("b")
    replies = a.send({"domain": "global", "type": "create-context", "name": "locked",
                      "data": {"v": 1}, "lifetime": "ownership", "read_only": True})
    cid = replies[-1]["context_id"]
    (refused,) = update(b, cid, {"commands": [{"type": "set", "path": "v", "value": 2}]})
    assert refused["reason_uri"] == Reason.CONTEXT_NOT_AUTHORIZED
    assert kit.hub.contexts.by_id[cid].data == {"v": 1}


@pytest.mark.parametrize("lifetime", ["retained", "ref-counted"])
def test_only_ownership_contexts_can_be_read_only(lifetime: str) -> None:
    kit = HubKit()
    a = kit.client("a")
    (refused,) = a.send({"domain": "global", "type": "create-context", "name": "x",
                         "data": {}, "lifetime": lifetime, "read_only": True})
    assert refused["reason_uri"] == Reason.CONTEXT_INVALID
    assert "Only an ownership context can be read-only" in refused["reason"]
    cid = create(a, "y", {}, lifetime)[-1]["context_id"]
    assert read_only(a, cid, True)[0]["reason_uri"] == Reason.CONTEXT_INVALID


def test_context_domain_messages_reply_in_their_domain() -> None:
    kit = HubKit()
    a = kit.client("a")
    replies = a.send({"domain": "context", "type": "create-context", "name": "n", "data": {}})
    assert replies[-1]["domain"] == "context" and replies[-1]["type"] == "context-created"


def test_context_limit() -> None:
    kit = HubKit(max_contexts_per_peer=1)
    a = kit.client("a")
    create(a, "one", {})
    assert create(a, "two", {})[0]["reason_uri"] == Reason.LIMITS_EXCEEDED


def test_create_needs_a_name_and_an_object() -> None:
    kit = HubKit()
    a = kit.client("a")
    assert create(a, "", {})[0]["type"] == "error"
    reply = a.send({"domain": "global", "type": "create-context", "name": "x", "data": [1]})[0]
    assert reply["reason_uri"] == Reason.BAD_TYPE
