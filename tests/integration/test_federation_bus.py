"""The bus across two (or three) real standalone hubs federated through a real nats-server
(docs/FEDERATION.md, "The bus"): wildcards, routing keys and targets as within one hub, one
NATS subscription per hub and topic whatever the number of subscribers, no echo back to the
publisher's hub, and the real ``@interopio/core`` bus on one hub with Python on the other."""

from __future__ import annotations

import json
import threading
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest
from test_client_js import JsPeer
from test_client_support import free_port, wait_for
from test_federation import HEARTBEAT, Hub, Nats, start_hub, stop

import jupyter_interop as ji

SPACE = "bus-test"


class MonitoredNats(Nats):
    """A nats-server with its monitoring port (``/connz`` lists each hub's subscriptions)."""

    def __init__(self, tmp: Path) -> None:
        self.monitor = free_port()
        super().__init__(tmp, "-m", str(self.monitor))

    def subscriptions(self) -> dict[str, dict[str, int]]:
        """Connection name -> {subject: messages delivered} for every client connection."""
        url = f"http://127.0.0.1:{self.monitor}/connz?subs=detail"
        with urllib.request.urlopen(url, timeout=10) as reply:
            connz = json.load(reply)
        return {
            conn.get("name", ""): {
                sub["subject"]: sub.get("msgs", 0)
                for sub in conn.get("subscriptions_list_detail") or ()
            }
            for conn in connz["connections"]
        }


@pytest.fixture
def nats(tmp_path: Path) -> Iterator[MonitoredNats]:
    server = MonitoredNats(tmp_path)
    try:
        yield server
    finally:
        server.stop()


def hubs(
    stack: ExitStack,
    tmp_path: Path,
    nats: Nats,
    *names: str,
    options: tuple[str, ...] = (),
    heartbeat: list[str] = HEARTBEAT,
) -> list[Hub]:
    """Hubs of :data:`SPACE`, one per name, with more hub ``options``."""
    started = []
    for name in names:
        space = f"--InteropHub.federation_space={SPACE}"
        hub = start_hub(tmp_path / name, nats.url, space, *options, heartbeat=heartbeat)
        stack.callback(stop, hub.proc)
        started.append(hub)
    return started


def client(stack: ExitStack, hub: Hub, application: str) -> ji.Interop:
    io = ji.connect(url=hub.url, token=hub.token, application=application)
    stack.callback(io.close)
    return io


class Inbox:
    """A bus callback keeping (topic, data, publisher application), probes apart."""

    def __init__(self) -> None:
        self.got: list[tuple[str, Any, str | None]] = []
        self.probes = 0
        self.last_probe = False
        self._lock = threading.Lock()

    def __call__(self, data: Any, topic: str, source: ji.Instance) -> None:
        with self._lock:
            if isinstance(data, dict) and data.get("probe"):
                self.probes += 1
                self.last_probe = self.last_probe or data["probe"] == "last"
            else:
                self.got.append((topic, data, source.application))

    def forget_probes(self) -> None:
        """Count probes afresh (routes are to be proved again)."""
        with self._lock:
            self.probes, self.last_probe = 0, False

    def messages(self) -> list[tuple[str, Any, str | None]]:
        with self._lock:
            return list(self.got)


def until_routed(publish: Callable[[Any], None], *inboxes: Inbox) -> None:
    """Publish probes until each inbox got one (the subscriptions across hubs are in place),
    then one more, and wait for it: the probes before it have all arrived too (NATS keeps
    the order of one connection's messages)."""

    def routed() -> bool:
        publish({"probe": True})
        return all(inbox.probes for inbox in inboxes)

    wait_for(routed, 30, "the bus subscriptions across hubs")
    publish({"probe": "last"})
    wait_for(lambda: all(inbox.last_probe for inbox in inboxes), 30, "the last probe")


def test_python_to_python_across_hubs_with_wildcards_routing_keys_and_targets(
    tmp_path: Path, nats: MonitoredNats
) -> None:
    with ExitStack() as stack:
        hub_a, hub_b = hubs(stack, tmp_path, nats, "a", "b")
        pub = client(stack, hub_a, "pub-a")
        near = client(stack, hub_a, "near-a")
        star, rest, exact, keyed = (
            client(stack, hub_b, name) for name in ("star-b", "rest-b", "exact-b", "keyed-b")
        )
        inboxes = {name: Inbox() for name in ("near", "star", "rest", "exact", "keyed")}
        near.bus.subscribe("md.*", inboxes["near"])
        star.bus.subscribe("md.*", inboxes["star"])
        rest.bus.subscribe("md.>", inboxes["rest"])
        exact.bus.subscribe("md.eq", inboxes["exact"])
        keyed.bus.subscribe("md.*", inboxes["keyed"], routing_key="k1")
        until_routed(lambda probe: pub.bus.publish("md.eq", probe), *inboxes.values())

        pub.bus.publish("md.eq", {"n": 1}, routing_key="k1")
        pub.bus.publish("md.eq", {"n": 2}, routing_key="k2")
        pub.bus.publish("md.fx.eur", {"n": 3})
        pub.bus.publish("md.eq", {"n": 4}, target={"application": "keyed-b"})
        pub.bus.publish("other", {"n": 5})
        pub.bus.publish("md.end", {"n": 6})  # the last: everything before it has arrived

        def received(name: str) -> list[int]:
            return [data["n"] for _, data, _ in inboxes[name].messages()]

        wait_for(lambda: 6 in received("rest") and 6 in received("near"), 30, "the last one")
        wait_for(lambda: 6 in received("star") and 6 in received("keyed"), 30, "the last one")
        assert received("star") == [1, 2, 6]
        assert received("rest") == [1, 2, 3, 6]
        assert received("keyed") == [1, 4, 6]  # k2 is not its key; the target is itself
        assert received("exact") == [1, 2]
        topic, data, publisher = inboxes["star"].messages()[0]
        assert (topic, data, publisher) == ("md.eq", {"n": 1}, "pub-a")  # in its publisher's name

        # and back from B to A (after any echo of A's messages would have come back to A)
        back = Inbox()
        near.bus.subscribe("back.>", back)
        until_routed(lambda probe: star.bus.publish("back.x", probe), back)
        star.bus.publish("back.y.z", {"n": 7})
        wait_for(lambda: back.messages(), 30, "B's message on A")
        assert back.messages() == [("back.y.z", {"n": 7}, "star-b")]
        assert received("near") == [1, 2, 6]  # on the publisher's hub: once, not echoed back


def test_a_message_crosses_once_per_hub_and_the_last_subscriber_releases_it(
    tmp_path: Path, nats: MonitoredNats
) -> None:
    """Three subscribers on B and three on C, one publisher on A: each publication reaches
    NATS once and each of B and C once (one NATS subscription each), counted by nats-server."""
    with ExitStack() as stack:
        hub_a, hub_b, hub_c = hubs(stack, tmp_path, nats, "a", "b", "c")
        pub = client(stack, hub_a, "pub-a")
        subscribers = [
            (client(stack, hub, f"sub-{n}"), Inbox()) for hub in (hub_b, hub_c) for n in range(3)
        ]
        subs = [io.bus.subscribe("fx.*", inbox) for io, inbox in subscribers]
        inboxes = [inbox for _, inbox in subscribers]
        until_routed(lambda probe: pub.bus.publish("fx.probe", probe), *inboxes)

        def counts() -> dict[str, dict[str, int]]:
            return {
                name: {s: n for s, n in subjects.items() if ".bus." in s}
                for name, subjects in nats.subscriptions().items()
                if name.startswith("jupyter-interop")
            }

        before = counts()
        for n in range(20):
            pub.bus.publish(f"fx.{n}", {"n": n})
        wait_for(lambda: all(len(inbox.messages()) == 20 for inbox in inboxes), 30, "20 each")
        after = counts()
        subject = f"ji.{SPACE}.bus.fx.*"
        # A holds no bus subscription, B and C one each, for their three subscribers
        held = sorted(tuple(subjects) for subjects in after.values())
        assert held == [(), (subject,), (subject,)]
        crossed = sorted(
            after[name][subject] - before[name][subject] for name in after if after[name]
        )
        assert crossed == [20, 20]  # once per hub, not once per subscriber
        for inbox in inboxes:
            assert [data["n"] for _, data, _ in inbox.messages()] == list(range(20))

        for sub in subs:
            sub.unsubscribe()
        wait_for(lambda: not any(counts().values()), 30, "the NATS subscriptions released")


def test_a_javascript_bus_client_on_a_and_python_on_b(tmp_path: Path, nats: MonitoredNats) -> None:
    """The real ``@interopio/core`` bus (test_client_js_peer.js) on hub A."""
    with ExitStack() as stack:
        hub_a, hub_b = hubs(stack, tmp_path, nats, "a", "b")
        py = client(stack, hub_b, "py-b")
        js = JsPeer(hub_a)  # type: ignore[arg-type]  # (a hub: url and token)
        stack.callback(js.close)
        inbox = Inbox()
        py.bus.subscribe("js.*", inbox)
        until_routed(lambda probe: js.call("busPublish", topic="js.probe", data=probe), inbox)
        js.call("busPublish", topic="js.news", data={"headline": "hi"})
        wait_for(inbox.messages, 30, "the JS message on B")
        assert inbox.messages() == [("js.news", {"headline": "hi"}, "js-peer")]

        js.call("busSubscribe", topic="py.>")
        subject = f"ji.{SPACE}.bus.py.>"
        wait_for(
            lambda: any(subject in subs for subs in nats.subscriptions().values()),
            30,
            "hub A's NATS subscription for the JS subscriber",
        )
        py.bus.publish("py.md.AAPL", {"px": 190.1})
        event = js.event(lambda e: e.get("event") == "bus")
        assert event == {"event": "bus", "topic": "py.>", "data": {"px": 190.1}, "source": "py-b"}


def test_the_bus_across_hubs_comes_back_after_nats_restarts(
    tmp_path: Path, nats: MonitoredNats
) -> None:
    """NATS away: each hub's bus keeps serving its own peers; NATS back: the links'
    subscriptions are made again and messages cross again."""
    with ExitStack() as stack:
        hub_a, hub_b = hubs(stack, tmp_path, nats, "a", "b")
        pub = client(stack, hub_a, "pub-a")
        near, far = Inbox(), Inbox()
        client(stack, hub_a, "near-a").bus.subscribe("news.*", near)
        client(stack, hub_b, "far-b").bus.subscribe("news.*", far)
        until_routed(lambda probe: pub.bus.publish("news.probe", probe), near, far)
        nats.kill()
        pub.bus.publish("news.local", {"n": 1})
        wait_for(near.messages, 30, "the message on its own hub without NATS")
        assert near.messages() == [("news.local", {"n": 1}, "pub-a")]
        later = Inbox()  # a topic new to B while NATS is away: confirmed, and crossing later
        client(stack, hub_b, "later-b").bus.subscribe("later.*", later)
        nats.restart()
        far.forget_probes()
        until_routed(lambda probe: pub.bus.publish("news.probe", probe), far)
        until_routed(lambda probe: pub.bus.publish("later.probe", probe), later)
        # B's link did not wait out its bound for the NATS that was away (its flush returned)
        assert "took over" not in (tmp_path / "b" / "hub.log").read_text()
        pub.bus.publish("news.back", {"n": 2})
        wait_for(lambda: ("news.back", {"n": 2}, "pub-a") in far.messages(), 30, "A's on B")
        # what A published while NATS was away waited in its link's NATS buffer: it reaches B
        # when B's subscription is back first, never twice
        assert far.messages()[-1] == ("news.back", {"n": 2}, "pub-a")
        assert far.messages()[:-1] in ([], [("news.local", {"n": 1}, "pub-a")])


def test_a_first_subscription_is_confirmed_once_it_receives_from_other_hubs(
    tmp_path: Path, nats: MonitoredNats
) -> None:
    """A hub confirms a subscription on a topic new to it once its link's NATS subscription
    is in place: a message published on B as soon as ``subscribe`` returns on A arrives."""
    with ExitStack() as stack:
        hub_a, hub_b = hubs(stack, tmp_path, nats, "a", "b")
        sub = client(stack, hub_a, "sub-a")
        pub = client(stack, hub_b, "pub-b")
        inbox = Inbox()
        rounds = 20
        for n in range(rounds):
            sub.bus.subscribe(f"fresh.{n}", inbox)
            pub.bus.publish(f"fresh.{n}", {"n": n})
        # B's messages reach A in B's order: once a probe after them arrived, they all have
        sub.bus.subscribe("fresh.end", inbox)
        until_routed(lambda probe: pub.bus.publish("fresh.end", probe), inbox)
        assert [data["n"] for _, data, _ in inbox.messages()] == list(range(rounds))


def test_a_subscription_nats_does_not_confirm_in_time_is_confirmed_after_the_bound(
    tmp_path: Path, nats: MonitoredNats
) -> None:
    """nats-server stopped (SIGSTOP: connections open, nothing answered): a subscription on a
    topic new to B is confirmed once B's link gives up waiting after
    ``federation_bus_ready_timeout``, B's log says why, and A's messages on the topic reach
    it once the server runs again."""
    with ExitStack() as stack:
        hub_a, hub_b = hubs(
            stack,
            tmp_path,
            nats,
            "a",
            "b",
            options=("--InteropHub.federation_bus_ready_timeout=1",),
            heartbeat=["--InteropHub.federation_heartbeat_timeout=120"],
        )
        pub = client(stack, hub_a, "pub-a")
        held = Inbox()
        sub = client(stack, hub_b, "held-b")
        nats.pause()
        stack.callback(nats.resume)  # before it is stopped for good
        sub.bus.subscribe("held.*", held)  # returns once confirmed
        log = tmp_path / "b" / "hub.log"
        line = "the bus subscription for 'held.*' took over 1.0s"
        assert line in log.read_text(), log.read_text()[-3000:]
        assert "c.InteropHub.federation_bus_ready_timeout" in log.read_text()
        nats.resume()
        until_routed(lambda probe: pub.bus.publish("held.probe", probe), held)
        pub.bus.publish("held.news", {"n": 1})
        wait_for(lambda: held.messages(), 30, "A's message on B")
        assert held.messages() == [("held.news", {"n": 1}, "pub-a")]
