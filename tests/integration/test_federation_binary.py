"""Stream items and bus messages with binary values across real standalone hubs federated
through a real nats-server whose ``max_payload`` is lowered to 512 KiB (docs/FEDERATION.md,
"Large values"): numpy arrays, DataFrames and bytes reach a Python subscriber of the other
hub as those types, a value larger than a NATS message crosses in chunks in its place among
the small ones, the real ``@interopio/core`` gets the JSON form as it does within one hub,
and an item above a link's budget ends its branch's subscriptions there, saying why, while
the other branches go on."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from test_client_support import wait_for
from test_federation import Nats
from test_federation_bus import Inbox, client, hubs, until_routed
from test_federation_security import view
from test_federation_streams import Feed, js_client, subscriber

#: nats-server's largest message in these tests: a 3 MB value takes several chunks
MAX_PAYLOAD = 512 * 1024


@pytest.fixture
def nats(tmp_path: Path) -> Iterator[Nats]:
    """nats-server (``test_federation.Nats``) with ``max_payload`` at :data:`MAX_PAYLOAD`."""
    config = tmp_path / "nats.conf"
    config.write_text(f"max_payload: {MAX_PAYLOAD}\n")
    server = Nats(tmp_path, "-c", str(config))
    try:
        yield server
    finally:
        server.stop()


def budget(size: int) -> str:
    """The hub option that lets its link hold ``size`` bytes of values at a time."""
    return f"--InteropHub.federation_max_value_bytes={size}"


def values() -> list[Any]:
    """Small JSON items around binary ones, one of them larger than a NATS message."""
    rng = np.random.default_rng(16)
    frame = pd.DataFrame(
        {"px": rng.standard_normal(50), "qty": np.arange(50), "side": ["buy", "sell"] * 25},
        index=pd.RangeIndex(50, name="trade"),
    )
    big = rng.standard_normal((125_000, 3))  # 3 MB of float64
    assert big.nbytes > 5 * MAX_PAYLOAD
    return [
        {"n": 0},
        np.arange(12, dtype=np.int32).reshape(3, 4),
        frame,
        b"\x00\x01\xfe\xff",
        {"n": 1},
        big,
        {"n": 2},
        {"nested": {"array": np.linspace(0, 1, 5)}, "n": 3},
    ]


def assert_same(got: Any, expected: Any) -> None:
    """Equal, and of the same type (an ndarray stays one, a DataFrame stays one)."""
    assert type(got) is type(expected), (type(got), type(expected))
    if isinstance(expected, np.ndarray):
        assert got.dtype == expected.dtype
        np.testing.assert_array_equal(got, expected)
    elif isinstance(expected, pd.DataFrame):
        pd.testing.assert_frame_equal(got, expected)
    elif isinstance(expected, dict):
        assert sorted(got) == sorted(expected)
        for key, value in expected.items():
            assert_same(got[key], value)
    else:
        assert got == expected


def test_binary_items_of_a_python_stream_on_b_reach_a_python_subscriber_on_a_in_order(
    tmp_path: Path, nats: Nats
) -> None:
    with ExitStack() as stack:
        hub_a, hub_b = hubs(stack, tmp_path, nats, "a", "b")
        b = client(stack, hub_b, "pub-b")
        hello = {"hello": np.arange(3, dtype=np.float32), "raw": b"hi"}
        stream = b.streams.create("Arrays", on_added=lambda sub: sub.push(hello))
        a = subscriber(stack, hub_a, "sub-a", "Arrays")
        feed = Feed()
        a.streams.subscribe("Arrays", {}, on_data=feed.data, timeout=30)
        wait_for(lambda: feed.got(), 30, "the private greeting on A")

        pushed = values()
        for value in pushed:  # at once: small ones fold into runs around the large one
            stream.push(value)
        wait_for(lambda: len(feed.got()) == 1 + len(pushed), 60, "every item on A")

        (greeting, private), *items = feed.got()
        assert private is True
        assert_same(greeting, hello)
        assert [p for _, p in items] == [False] * len(pushed)
        for (got, _), expected in zip(items, pushed, strict=True):
            assert_same(got, expected)


def test_a_javascript_subscriber_on_a_gets_the_json_form_as_within_one_hub(
    tmp_path: Path, nats: Nats
) -> None:
    """The real ``@interopio/core`` (test_client_js_peer.js) subscribing on hub A."""
    with ExitStack() as stack:
        hub_a, hub_b = hubs(stack, tmp_path, nats, "a", "b")
        b = client(stack, hub_b, "py-b")
        stream = b.streams.create("Arrays")
        js = js_client(stack, hub_a, "py-b")
        js.call("subscribe", name="Arrays", args={}, key="s1")
        wait_for(lambda: stream.subscriptions(), 30, "the JS subscriber on B")
        stream.push({"arr": np.array([[1, 2], [3, 4]], dtype="int32"), "raw": b"\x00\xff"})
        seen = js.event(lambda e: e.get("event") == "data" and e["key"] == "s1")["data"]
        assert seen == {
            "arr": {"__ji__": "ndarray", "dtype": "<i4", "shape": [2, 2], "data": [[1, 2], [3, 4]]},
            "raw": {"__ji__": "bytes", "base64": "AP8="},
        }


def datas(inbox: Inbox) -> list[Any]:
    """The data of the messages ``inbox`` got."""
    return [data for _, data, _ in inbox.messages()]


def test_bus_messages_with_binary_values_from_a_reach_a_python_subscriber_on_b(
    tmp_path: Path, nats: Nats
) -> None:
    with ExitStack() as stack:
        hub_a, hub_b = hubs(stack, tmp_path, nats, "a", "b")
        pub = client(stack, hub_a, "pub-a")
        sub = client(stack, hub_b, "sub-b")
        inbox = Inbox()
        sub.bus.subscribe("md.>", inbox)
        until_routed(lambda probe: pub.bus.publish("md.probe", probe), inbox)

        published = values()
        for value in published:
            pub.bus.publish("md.values", value)
        wait_for(lambda: len(datas(inbox)) == len(published), 60, "every message on B")
        for got, expected in zip(datas(inbox), published, strict=True):
            assert_same(got, expected)


def test_an_item_above_the_subscribers_hubs_budget_ends_its_branch_there_and_others_go_on(
    tmp_path: Path, nats: Nats
) -> None:
    """Hub A's link holds at most 2 MB of values: a 3 MB item cannot reach it. Its branch's
    subscription on A ends with a reason naming the setting (the subscriber learns of the
    gap instead of silently missing an item); the publisher sees it go; the subscription of
    another branch keeps its items, large ones within the budget included."""
    with ExitStack() as stack:
        (hub_a,) = hubs(stack, tmp_path, nats, "a", options=(budget(2000000),))
        (hub_b,) = hubs(stack, tmp_path, nats, "b")
        b = client(stack, hub_b, "pub-b")
        stream = b.streams.create(
            "Branches", on_subscription_request=lambda r: r.accept_on_branch(r.arguments["on"])
        )
        a = subscriber(stack, hub_a, "sub-a", "Branches")
        feeds = {name: Feed() for name in ("X", "Y")}
        for name, feed in feeds.items():
            a.streams.subscribe(
                "Branches", {"on": name}, on_data=feed.data, on_closed=feed.close, timeout=30
            )

        stream.push({"n": 0}, branch="X")
        stream.push(np.zeros(375_000), branch="X")  # 3 MB, above A's budget
        stream.push({"n": 1}, branch="X")
        within = np.arange(100_000, dtype=np.float64)  # 0.8 MB: chunks, within the budget
        stream.push(within, branch="Y")
        stream.push({"n": 2}, branch="Y")

        wait_for(lambda: feeds["X"].closed, 60, "branch X's subscription to end on A")
        (closed,) = feeds["X"].closed
        assert "federation_max_value_bytes" in closed.reason
        assert "3000" in closed.reason  # the item's size (its frame's bytes) is said
        assert feeds["X"].got() == [({"n": 0}, False)]
        wait_for(lambda: len(stream.subscriptions()) == 1, 30, "B to see X's subscriber go")

        wait_for(lambda: len(feeds["Y"].got()) == 2, 60, "branch Y's items on A")
        (array, _), (after, _) = feeds["Y"].got()
        assert_same(array, within)
        assert after == {"n": 2}
        assert not feeds["Y"].closed
        stream.push({"n": 3}, branch="Y")
        wait_for(lambda: len(feeds["Y"].got()) == 3, 30, "Y's next item")


def test_a_large_item_and_a_large_bus_message_reach_two_hubs_each(
    tmp_path: Path, nats: Nats
) -> None:
    """One offer, pulled by each hub on the branch (or subscribed to the topic): hub B's
    link keeps it until both said they have it (the branch) or nobody pulls any more (the
    bus), and both subscribers get it, in its place."""
    with ExitStack() as stack:
        hub_a, hub_b, hub_c = hubs(stack, tmp_path, nats, "a", "b", "c")
        b = client(stack, hub_b, "pub-b")
        stream = b.streams.create("Arrays")
        feeds = [Feed(), Feed()]
        inboxes = [Inbox(), Inbox()]
        for hub, feed, inbox, name in zip((hub_a, hub_c), feeds, inboxes, "ac", strict=True):
            io = subscriber(stack, hub, f"sub-{name}", "Arrays")
            io.streams.subscribe("Arrays", {}, on_data=feed.data, timeout=30)
            io.bus.subscribe("big.>", inbox)
        wait_for(lambda: len(stream.subscriptions()) == 2, 30, "both subscribers on B")
        until_routed(lambda probe: b.bus.publish("big.probe", probe), *inboxes)

        sent = ({"n": 0}, np.arange(400_000, dtype=np.float64), {"n": 1})  # 3.2 MB between
        for value in sent:
            stream.push(value)
            b.bus.publish("big.values", value)
        for feed, inbox in zip(feeds, inboxes, strict=True):
            wait_for(lambda feed=feed: len(feed.got()) == 3, 60, "the items on both hubs")
            wait_for(lambda inbox=inbox: len(datas(inbox)) == 3, 60, "the bus messages")
            for got, expected in zip([d for d, _ in feed.got()], sent, strict=True):
                assert_same(got, expected)
            for got, expected in zip(datas(inbox), sent, strict=True):
                assert_same(got, expected)


def test_a_large_bus_message_no_other_hub_receives_is_not_held(tmp_path: Path, nats: Nats) -> None:
    """A bus message's offer waits for hubs its link does not know; when NATS says nobody
    received it (the topic has subscribers on its own hub only), hub A's link lets it go at
    once, instead of holding it until nobody pulled it for 30 s (FEDERATION_VALUE_IDLE):
    here a 4 MB budget would refuse every large message for that long."""
    with ExitStack() as stack:
        (hub_a,) = hubs(stack, tmp_path, nats, "a", options=(budget(4000000),))
        (hub_b,) = hubs(stack, tmp_path, nats, "b")
        pub, near, far = (
            client(stack, hub, name)
            for hub, name in ((hub_a, "pub-a"), (hub_a, "near-a"), (hub_b, "far-b"))
        )
        local, remote = Inbox(), Inbox()
        near.bus.subscribe("local.>", local)  # on hub A only
        far.bus.subscribe("remote.>", remote)
        until_routed(lambda probe: pub.bus.publish("remote.probe", probe), remote)

        def held() -> dict[str, int]:
            values: dict[str, int] = view(hub_a, "federation")["values"]
            return values

        big = np.arange(375_000, dtype=np.float64)  # 3 MB
        for n in range(3):
            pub.bus.publish("local.x", big)
            wait_for(lambda n=n: len(datas(local)) == n + 1, 30, "the local subscriber")
            wait_for(lambda: held() == {"held": 0, "offers": 0}, 20, "A's link to let it go")
        pub.bus.publish("remote.x", big)
        wait_for(lambda: datas(remote), 30, "the message on B")
        assert_same(datas(remote)[0], big)
        assert [type(m) for m in datas(local)] == [np.ndarray] * 3


def test_an_item_above_the_publishers_hubs_budget_ends_the_other_hubs_subscriptions_only(
    tmp_path: Path, nats: Nats
) -> None:
    """Hub B's link holds at most 2 MB of values: it cannot offer a 3 MB item of its
    publisher. The subscription of hub A on that branch ends with the reason; the
    subscriber on B itself gets the item and what follows, as without federation."""
    with ExitStack() as stack:
        (hub_a,) = hubs(stack, tmp_path, nats, "a")
        (hub_b,) = hubs(stack, tmp_path, nats, "b", options=(budget(2_000_000),))
        b = client(stack, hub_b, "pub-b")
        stream = b.streams.create("Arrays")
        far, near = Feed(), Feed()
        a = subscriber(stack, hub_a, "sub-a", "Arrays")
        a.streams.subscribe("Arrays", {}, on_data=far.data, on_closed=far.close, timeout=30)
        b.streams.subscribe("Arrays", {}, on_data=near.data, on_closed=near.close, timeout=30)

        big = np.zeros(375_000)  # 3 MB
        for value in ({"n": 0}, big, {"n": 1}):
            stream.push(value)
        wait_for(lambda: far.closed, 60, "A's subscription to end")
        (closed,) = far.closed
        assert "cannot cross hubs" in closed.reason
        assert "federation_max_value_bytes" in closed.reason
        assert far.got() == [({"n": 0}, False)]
        wait_for(lambda: len(near.got()) == 3, 60, "the items on B")
        for (got, _), expected in zip(near.got(), ({"n": 0}, big, {"n": 1}), strict=True):
            assert_same(got, expected)
        assert not near.closed
        wait_for(lambda: len(stream.subscriptions()) == 1, 30, "B to drop A's subscription")


def test_a_private_item_above_the_subscribers_hubs_budget_ends_its_subscription(
    tmp_path: Path, nats: Nats
) -> None:
    """Hub A's link holds at most 2 MB: the publisher greets each subscriber with a 3 MB
    private item. The subscription on A ends with the reason (the offer names it); one on
    B gets its greeting."""
    with ExitStack() as stack:
        (hub_a,) = hubs(stack, tmp_path, nats, "a", options=(budget(2_000_000),))
        (hub_b,) = hubs(stack, tmp_path, nats, "b")
        b = client(stack, hub_b, "pub-b")
        big = np.zeros(375_000)  # 3 MB
        b.streams.create("Greets", on_added=lambda sub: sub.push({"hello": big}))
        far, near = Feed(), Feed()
        a = subscriber(stack, hub_a, "sub-a", "Greets")
        a.streams.subscribe("Greets", {}, on_data=far.data, on_closed=far.close, timeout=30)
        b.streams.subscribe("Greets", {}, on_data=near.data, on_closed=near.close, timeout=30)

        wait_for(lambda: far.closed, 60, "A's subscription to end")
        (closed,) = far.closed
        assert "A private item of this stream cannot reach this hub" in closed.reason
        assert "federation_max_value_bytes" in closed.reason
        assert far.got() == []
        wait_for(lambda: near.got(), 30, "the greeting on B")
        ((greeting, private),) = near.got()
        assert private is True
        assert_same(greeting, {"hello": big})
