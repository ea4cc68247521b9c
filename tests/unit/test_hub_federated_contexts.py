"""The hub core's side of federated contexts (docs/FEDERATION.md, "Contexts and channels"):
the link's contexts peer gets every change of a retained context, and the revisions it hands
back are what members see, once and in order; no sockets."""

from __future__ import annotations

from typing import Any

from hubkit import Client, HubKit
from test_hub_federation import FED_TOKEN, federated_hello

from jupyter_interop.protocol import Reason
from jupyter_interop.protocol.limits import MAX_FEDERATED_CONTEXT_NAME_BYTES


def contexts_link(kit: HubKit) -> Client:
    link = federated_hello(kit, {"contexts": True})
    link.peer_id = link.one("welcome")["peer_id"]
    return link


def create(c: Client, name: str, data: dict, lifetime: str = "retained") -> str:
    replies = c.send(
        {
            "domain": "global",
            "type": "create-context",
            "name": name,
            "data": data,
            "lifetime": lifetime,
        }
    )
    # (a federated creation is acknowledged once in the bucket: its id is in context-added)
    made = [r for r in replies if r["type"] == "context-created" or r.get("name") == name]
    return str(made[0]["context_id"])


def subscribe(c: Client, context_id: str) -> dict[str, Any]:
    (reply,) = c.send({"domain": "global", "type": "subscribe-context", "context_id": context_id})
    return reply


def update(c: Client, context_id: str, delta: dict) -> list[dict[str, Any]]:
    return c.send(
        {"domain": "global", "type": "update-context", "context_id": context_id, "delta": delta}
    )


def apply(link: Client, name: str, revision: int, **fields: Any) -> list[dict[str, Any]]:
    message = {"type": "federation-context-apply", "name": name, "revision": revision}
    return link.send({"domain": "global", **message, **fields})


def published(link: Client) -> list[dict[str, Any]]:
    return link.take("federation-context-publish")


def setup() -> tuple[HubKit, Client, Client, Client, str]:
    kit = HubKit(federation_token=FED_TOKEN)
    link = contexts_link(kit)
    writer, member = kit.client("writer"), kit.client("member")
    cid = create(writer, "book", {"px": 1})
    subscribe(member, cid)
    for client in (writer, member, link):
        client.take()
    return kit, link, writer, member, cid


def test_the_link_is_offered_every_retained_context_and_told_of_new_ones() -> None:
    kit = HubKit(federation_token=FED_TOKEN)
    local = kit.client("local")
    create(local, "kept", {"x": 1})
    create(local, "counted", {"y": 1}, lifetime="ref-counted")
    link = contexts_link(kit)
    exported = {m["name"]: m for m in published(link) if m["op"] == "export"}
    assert exported["kept"]["data"] == {"x": 1}
    assert "___channel___Red" in exported  # channels are retained contexts
    assert "counted" not in exported  # other lifetimes stay on their hub
    create(local, "new", {"z": 1})
    create(local, "owned", {"z": 1}, lifetime="ownership")
    assert [(m["op"], m["name"]) for m in published(link)] == [("create", "new")]


def test_an_update_waits_for_its_revision_and_then_reaches_writer_and_members() -> None:
    _, link, writer, member, cid = setup()
    delta = {"updated": {"px": 2}}
    assert update(writer, cid, delta) == []  # no ack yet: the bucket orders it first
    assert member.take() == []
    (sent,) = published(link)
    assert (sent["op"], sent["name"], sent["delta"]) == ("update", "book", delta)
    assert sent["updater_id"] == writer.peer_id
    apply(link, "book", 41, data={"px": 1}, prev=None)  # the creation, numbered by the bucket
    assert writer.one("context-created")["context_id"] == cid  # in the bucket: acknowledged
    for client in (writer, member):  # the state it has: only its version is new
        numbered = client.one("context-updated")
        assert (numbered["delta"], numbered["version"]) == ({}, 41)
    apply(
        link,
        "book",
        42,
        data={"px": 2},
        delta=delta,
        prev=41,
        updater_id=writer.peer_id,
        ticket=sent["ticket"],
    )
    ack = writer.one("success")
    assert ack["version"] == 42 and writer.take() == []  # its own delta once, as the ack
    got = member.one("context-updated")
    assert (got["delta"], got["version"], got["updater_id"]) == (delta, 42, writer.peer_id)
    # the same revision again (a watch that resynchronised) changes nothing
    apply(link, "book", 42, data={"px": 2}, delta=delta, prev=41, ticket=sent["ticket"])
    assert member.take() == [] and writer.take() == []


def test_the_hubs_own_creation_back_from_the_bucket_gives_only_its_version() -> None:
    """The creation's ticket marks it: its data (equal, but decoded anew, as binary values
    are) is not sent again, and everyone that follows it holds the bucket's revision."""
    kit = HubKit(federation_token=FED_TOKEN)
    link = contexts_link(kit)
    writer, member = kit.client("writer"), kit.client("member")
    cid = create(writer, "book", {"px": 1})
    (sent,) = [m for m in published(link) if m["op"] == "create"]  # (after the exports)
    assert isinstance(sent["ticket"], str)
    subscribe(member, cid)
    member.take()
    assert writer.take("context-created") == []  # not before the bucket has it
    apply(link, "book", 7, data={"px": "decoded anew"}, prev=None, ticket=sent["ticket"])
    assert writer.one("context-created")["context_id"] == cid
    for client in (writer, member):
        numbered = client.one("context-updated")
        assert (numbered["delta"], numbered["version"]) == ({}, 7)
    assert subscribe(member, cid)["data"] == {"px": 1}  # the hub's own, as created
    writer.take()
    apply(link, "book", 7, data={"px": 1}, prev=None, ticket=sent["ticket"])  # again: stale
    assert member.take() == [] and writer.take() == []


def test_a_revision_from_another_hub_is_a_delta_or_a_reset_when_one_was_missed() -> None:
    _, link, writer, member, cid = setup()
    apply(link, "book", 10, data={"px": 1})
    for client in (writer, member):
        assert client.one("context-updated")["version"] == 10
    apply(link, "book", 11, data={"px": 1, "q": 1}, delta={"added": {"q": 1}}, prev=10)
    assert member.one("context-updated")["delta"] == {"added": {"q": 1}}
    assert writer.one("context-updated")["version"] == 11
    # revision 12 never came: 13's delta would not apply to what members hold
    apply(link, "book", 13, data={"px": 5, "q": 2}, delta={"updated": {"q": 2}}, prev=12)
    reset = member.one("context-updated")
    assert reset["delta"] == {"reset": {"px": 5, "q": 2}} and reset["version"] == 13
    (snapshot,) = [subscribe(c, cid) for c in (writer,)]
    assert snapshot["data"] == {"px": 5, "q": 2} and snapshot["version"] == 13


def test_contexts_made_and_destroyed_on_other_hubs_come_and_go() -> None:
    kit = HubKit(federation_token=FED_TOKEN)
    link = contexts_link(kit)
    local = kit.client("local")
    published(link)  # the exports
    apply(link, "remote", 5, data={"from": "B"}, updater_id="pB-1")
    added = local.one("context-added")
    assert added["name"] == "remote"
    reply = subscribe(local, added["context_id"])
    assert reply["data"] == {"from": "B"} and reply["version"] == 5
    apply(link, "remote", 6, deleted=True)
    gone = local.one("context-destroyed")
    assert gone["name"] == "remote" and gone["reason_uri"] == Reason.CONTEXT_DESTROYED
    assert "remote" not in kit.hub.contexts.by_name
    assert published(link) == []  # another hub's destruction is not published back


def test_a_context_destroyed_in_the_space_while_the_hub_was_away_goes() -> None:
    """A context the hub had before its link joined (its store) is destroyed by the bucket's
    deletion; one created since, whose creation is still on its way, is not."""
    kit = HubKit(federation_token=FED_TOKEN)
    local = kit.client("local")
    create(local, "stale", {"old": True})
    link = contexts_link(kit)
    create(local, "fresh", {"new": True})
    local.take()
    apply(link, "stale", 3, deleted=True)
    apply(link, "fresh", 4, deleted=True)  # (an older deletion of the name)
    assert local.one("context-destroyed")["name"] == "stale"
    assert "fresh" in kit.hub.contexts.by_name and "stale" not in kit.hub.contexts.by_name


def test_a_destruction_waits_for_the_bucket_behind_the_update_before_it() -> None:
    _, link, writer, member, cid = setup()
    update(writer, cid, {"updated": {"px": 2}})
    assert writer.send({"domain": "global", "type": "destroy-context", "context_id": cid}) == []
    sent, gone = published(link)
    assert (gone["op"], gone["name"], gone["updater_id"]) == ("destroy", "book", writer.peer_id)
    assert "book" in writer.kit.hub.contexts.by_name  # not yet: the bucket orders it
    apply(link, "book", 8, data={"px": 2}, ticket=sent["ticket"])
    assert writer.one("success")["version"] == 8
    assert member.one("context-updated")["version"] == 8
    apply(link, "book", 9, deleted=True, ticket=gone["ticket"])
    assert writer.one("success")["request_id"] != sent["ticket"]  # the destroy's own ack
    destroyed = member.one("context-destroyed")
    assert destroyed["reason"] == "Context destroyed explicitly"
    assert "book" not in writer.kit.hub.contexts.by_name


def test_a_destruction_the_bucket_cannot_take_leaves_the_context() -> None:
    _, link, writer, member, cid = setup()
    writer.send({"domain": "global", "type": "destroy-context", "context_id": cid})
    (gone,) = published(link)
    link.send(
        {
            "domain": "global",
            "type": "federation-context-refused",
            "ticket": gone["ticket"],
            "reason": "NATS is not reachable",
        }
    )
    assert "NATS is not reachable" in writer.one("error")["reason"]
    assert member.take() == [] and "book" in writer.kit.hub.contexts.by_name


def test_a_refused_creation_fails_for_its_creator_and_the_context_goes() -> None:
    """As an update the bucket cannot take: the creator gets the link's reason, and the
    context does not stay on its hub alone while the space has none."""
    kit = HubKit(federation_token=FED_TOKEN)
    link = contexts_link(kit)
    creator, other = kit.client("creator"), kit.client("other")
    cid = create(creator, "big", {"blob": "x"})
    (sent,) = [m for m in published(link) if m["op"] == "create"]
    assert other.one("context-added")["context_id"] == cid
    too_large = "a context holds at most 10 bytes (c.InteropHub.federation_max_context_bytes)"
    link.send(
        {
            "domain": "global",
            "type": "federation-context-refused",
            "ticket": sent["ticket"],
            "reason": too_large,
        }
    )
    error = creator.one("error")
    assert error["reason_uri"] == Reason.CONTEXT_FAILURE and too_large in error["reason"]
    assert "'big' was not created" in error["reason"] and creator.take("context-created") == []
    assert other.one("context-destroyed")["reason"].startswith("Context not created")
    assert "big" not in kit.hub.contexts.by_name and cid not in kit.hub.contexts.by_id
    create(creator, "big", {"blob": "y"})  # the name is free again
    assert [m["op"] for m in published(link)] == ["create"]


def test_a_creation_that_lost_to_another_hubs_is_acknowledged_with_the_winners_state() -> None:
    """Two hubs created one name at once and the other wrote first: the link writes nothing
    for this one, and the creator's ack comes with the first revision the bucket brings."""
    kit = HubKit(federation_token=FED_TOKEN)
    link = contexts_link(kit)
    creator = kit.client("creator")
    cid = create(creator, "race", {"from": "A"})
    assert creator.take("context-created") == []
    apply(link, "race", 3, data={"from": "B"}, prev=None, updater_id="pB-1")
    assert creator.one("context-created")["context_id"] == cid
    reset = creator.one("context-updated")
    assert (reset["delta"], reset["version"]) == ({"reset": {"from": "B"}}, 3)


def test_a_creation_waiting_for_the_bucket_is_acknowledged_when_the_link_leaves() -> None:
    kit = HubKit(federation_token=FED_TOKEN)
    link = contexts_link(kit)
    creator = kit.client("creator")
    cid = create(creator, "kept", {"n": 1})
    assert creator.take("context-created") == []
    link.close()
    assert creator.one("context-created")["context_id"] == cid  # local again: it is here


def test_a_refused_update_fails_for_its_writer_only() -> None:
    _, link, writer, member, cid = setup()
    update(writer, cid, {"updated": {"px": 9}})
    (sent,) = published(link)
    link.send(
        {
            "domain": "global",
            "type": "federation-context-refused",
            "ticket": sent["ticket"],
            "reason": "NATS is not reachable",
        }
    )
    error = writer.one("error")
    assert error["reason_uri"] == Reason.CONTEXT_FAILURE
    assert "federation" in error["reason"] and "NATS is not reachable" in error["reason"]
    assert member.take() == []


def test_when_the_link_leaves_waiting_updates_fail_and_contexts_are_local_again() -> None:
    _, link, writer, member, cid = setup()
    update(writer, cid, {"updated": {"px": 9}})
    link.close()
    assert "the link closed" in writer.one("error")["reason"]
    assert update(writer, cid, {"updated": {"px": 3}})[0]["type"] == "success"
    assert member.one("context-updated")["delta"] == {"updated": {"px": 3}}


def test_only_the_link_may_apply_revisions() -> None:
    kit, _, writer, _, _ = setup()
    (error,) = apply(writer, "book", 99, data={"forged": True})
    assert error["reason_uri"] == Reason.CONTEXT_NOT_AUTHORIZED
    assert kit.hub.contexts.by_name["book"].data == {"px": 1}


def test_a_name_too_long_for_a_nats_subject_stays_on_its_hub() -> None:
    _, link, writer, member, _ = setup()
    name = "n" * (MAX_FEDERATED_CONTEXT_NAME_BYTES + 1)
    cid = create(writer, name, {"n": 1})
    subscribe(member, cid)
    member.take()
    assert update(writer, cid, {"updated": {"n": 2}})[0]["type"] == "success"
    assert member.one("context-updated")["version"] == 1
    assert published(link) == []
    create(writer, "é" * (MAX_FEDERATED_CONTEXT_NAME_BYTES // 2), {})  # bytes, not characters
    assert [m["op"] for m in published(link)] == ["create"]


def test_other_lifetimes_are_updated_locally_even_with_a_link() -> None:
    _, link, writer, member, _ = setup()
    cid = create(writer, "temp", {"n": 1}, lifetime="ref-counted")
    subscribe(member, cid)
    member.take()
    assert update(writer, cid, {"updated": {"n": 2}})[0]["type"] == "success"
    assert member.one("context-updated")["version"] == 1
    assert published(link) == []
