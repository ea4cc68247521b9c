"""Bus domain: topics, wildcards, routing keys, target identities, unsubscribe, death."""

from __future__ import annotations

import pytest
from hubkit import Client, HubKit

from jupyter_interop.hub.bus import topic_pattern
from jupyter_interop.protocol import Reason


def sub(c: Client, topic: str, routing_key: str | None = None) -> str:
    msg = {"domain": "bus", "type": "subscribe", "topic": topic}
    if routing_key:
        msg["routing_key"] = routing_key
    (reply,) = c.send(msg)
    assert reply["type"] == "subscribed" and reply["domain"] == "bus"
    return reply["subscription_id"]


def pub(c: Client, topic: str, data: object, **extra: object) -> list[dict]:
    return c.send({"domain": "bus", "type": "publish", "topic": topic, "data": data, **extra})


@pytest.mark.parametrize(
    ("pattern", "topic", "matches"),
    [
        ("md.eq.AAPL", "md.eq.AAPL", True),
        ("md.eq.*", "md.eq.AAPL", True),
        ("md.eq.*", "md.eq.AAPL.x", False),
        ("md.*.AAPL", "md.eq.AAPL", True),
        ("md.>", "md.eq.AAPL", True),
        ("md.>", "md", False),
        ("md.e.*", "mdxe.AAPL", False),  # dots are literal
    ],
)
def test_topic_patterns(pattern: str, topic: str, matches: bool) -> None:
    assert bool(topic_pattern(pattern).match(topic)) is matches


def test_publish_reaches_exact_and_wildcard_subscribers_including_self() -> None:
    kit = HubKit()
    a, b = kit.client("a"), kit.client("b")
    exact = sub(b, "md.eq.AAPL")
    star = sub(b, "md.eq.*")
    rest = sub(a, "md.>")
    assert pub(a, "md.eq.AAPL", {"px": 1}) != []  # a gets its own message (subscribed to md.>)
    events = b.take("event")
    assert sorted(e["subscription_id"] for e in events) == sorted([exact, star])
    ev = events[0]
    assert ev["domain"] == "bus" and ev["data"] == {"px": 1}
    assert ev["publisher-identity"]["application"] == "a" and ev["topic"] == "md.eq.AAPL"
    assert pub(b, "other", {"x": 1}) == [] and a.take("event") == []
    del rest


def test_publish_has_no_reply_and_missing_data_delivers_nothing() -> None:
    kit = HubKit()
    a, b = kit.client("a"), kit.client("b")
    sub(b, "t")
    assert pub(a, "t", None) == [] and pub(a, "t", False) == []
    assert a.send({"domain": "bus", "type": "publish", "topic": "t"}) == []
    assert b.inbox == []


def test_an_empty_object_is_delivered() -> None:
    """``{}`` is data (the Glue42 gateway's ``when-let`` drops only nil and false)."""
    kit = HubKit()
    a, b = kit.client("a"), kit.client("b")
    sub(b, "t")
    pub(a, "t", {})
    [event] = b.take("event")
    assert event["data"] == {} and event["topic"] == "t"


def test_routing_keys() -> None:
    kit = HubKit()
    a, b = kit.client("a"), kit.client("b")
    keyed = sub(b, "t", "k1")
    unkeyed = sub(b, "t")
    pub(a, "t", {"v": 1}, routing_key="k1")
    assert sorted(e["subscription_id"] for e in b.take("event")) == sorted([keyed, unkeyed])
    pub(a, "t", {"v": 1}, routing_key="k2")
    assert [e["subscription_id"] for e in b.take("event")] == [unkeyed]
    pub(a, "t", {"v": 1})
    assert len(b.take("event")) == 2


def test_target_identity() -> None:
    kit = HubKit()
    a, b, c = kit.client("a"), kit.client("b"), kit.client("c")
    sub(b, "t")
    sub(c, "t")
    pub(a, "t", {"v": 1}, target_identity={"application": "c"})
    assert b.take("event") == [] and len(c.take("event")) == 1


def test_unsubscribe_and_death_clean_up() -> None:
    kit = HubKit()
    a, b = kit.client("a"), kit.client("b")
    s = sub(b, "t.*")
    assert b.send({"domain": "bus", "type": "unsubscribe", "subscription_id": s})[0]["type"] == (
        "success"
    )
    pub(a, "t.x", {"v": 1})
    assert b.inbox == []
    reply = b.send({"domain": "bus", "type": "unsubscribe", "subscription_id": s})[0]
    assert reply["reason_uri"] == Reason.BUS_INVALID_SUBSCRIPTION
    sub(b, "t.x")
    sub(b, "t.*")
    b.close()
    assert kit.hub.bus.subscriptions == {} and kit.hub.bus.exact == {}
    assert kit.hub.bus.wildcards == {}
    assert pub(a, "t.x", {"v": 1}) == []


def test_bus_subscription_limit() -> None:
    kit = HubKit(max_bus_subscriptions_per_peer=1)
    a = kit.client("a")
    sub(a, "x")
    reply = a.send({"domain": "bus", "type": "subscribe", "topic": "y"})[0]
    assert reply["reason_uri"] == Reason.LIMITS_EXCEEDED
