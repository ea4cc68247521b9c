"""The ``runs`` extension in the hub core: a ``publish-many`` is routed once; subscribers that
negotiated ``runs`` get one ``event-many``, others (io.Connect's clients) one plain ``event``
per item, as if the items had been published one by one; a slow consumer's dropped run
counts per item."""

from __future__ import annotations

from typing import Any

from hubkit import Client, HubKit

from jupyter_interop.hub.connection import PeerConn
from jupyter_interop.protocol import Reason
from jupyter_interop.server.outbox import Outbox, OutboxLimits

RUNS = {"batch": True, "runs": True}


def accepted_subscription(kit: HubKit, pub: Client, sub: Client, branch: str) -> str:
    sub.send({"domain": "agm", "type": "subscribe", "request_id": "r", "server_id": pub.peer_id,
              "method_id": "1", "arguments_kv": {}})
    add = pub.one("add-interest")
    pub.send({"domain": "agm", "type": "accepted", "subscription_id": add["subscription_id"],
              "stream_id": branch})
    sub.take()
    return str(add["subscription_id"])


def publisher(kit: HubKit) -> Client:
    pub = kit.client("pub", extensions=RUNS)
    pub.send({"domain": "agm", "type": "register", "methods": [
        {"id": "1", "name": "Ticks", "flags": {"metadata": {}, "streaming": True}}]})
    pub.take()
    return pub


def many(stream_id: str, items: Any) -> dict[str, Any]:
    return {"domain": "agm", "type": "publish-many", "stream_id": stream_id, "items": items}


def test_a_run_reaches_runs_subscribers_whole_and_others_item_by_item() -> None:
    kit = HubKit()
    pub = publisher(kit)
    fast, plain, other = (kit.client("fast", extensions=RUNS), kit.client("plain"),
                          kit.client("other", extensions=RUNS))
    sub_fast = accepted_subscription(kit, pub, fast, "AAPL")
    sub_plain = accepted_subscription(kit, pub, plain, "AAPL")
    accepted_subscription(kit, pub, other, "MSFT")
    items = [{"_value": 1}, {"_value": 2}, {"_value": {"px": 3}}]
    assert pub.send(many("AAPL", items)) == []  # no reply, as for publish
    assert fast.inbox == [{"domain": "agm", "type": "event-many", "peer_id": fast.peer_id,
                           "subscription_id": sub_fast, "items": items}]
    assert plain.take() == [
        {"domain": "agm", "type": "event", "peer_id": plain.peer_id,
         "subscription_id": sub_plain, "oob": False, "sequence": None, "snapshot": False,
         "data": item}
        for item in items
    ]
    assert other.inbox == []  # another branch
    pub.send(many("nobody", items))  # a branch nobody listens to: nothing, as for publish
    pub.send(many("AAPL", []))
    assert fast.inbox == [fast.inbox[0]] and plain.inbox == []


def test_publish_many_needs_the_extension_and_a_list() -> None:
    kit = HubKit()
    pub = publisher(kit)
    bad = pub.send(many("AAPL", "not a list"))
    assert bad[0]["type"] == "error" and bad[0]["reason_uri"] == Reason.INVALID_MESSAGE
    plain = kit.client("plain-pub")
    refused = plain.send(many("AAPL", [1]))
    assert refused[0]["type"] == "error" and "runs" in refused[0]["reason"]


def welcome_extensions(kit: HubKit, extensions: dict[str, Any] | None) -> Any:
    [welcome] = [r for r in kit.hello("x", extensions)[1] if r["type"] == "welcome"]
    return welcome.get("extensions")


def test_the_hub_accepts_runs_only_when_asked() -> None:
    kit = HubKit()
    assert welcome_extensions(kit, RUNS) == {"jupyter_interop": RUNS}
    assert welcome_extensions(kit, None) is None


def test_a_slow_consumer_drops_a_run_whole_and_counts_its_items() -> None:
    conn = PeerConn()
    box = Outbox(conn, OutboxLimits(soft_messages=1, soft_bytes=1_000_000, hard_messages=5,
                                    hard_bytes=2_000_000, stall_seconds=0))
    run = {"domain": "agm", "type": "event-many", "subscription_id": "s", "items": [1, 2, 3]}
    assert box.push(run)  # under the soft limit: queued
    assert box.push(run)  # over it: dropped, three events
    assert len(box) == 1 and conn.attrs["dropped_events"] == 3
