"""Streams across real standalone hubs federated through a real nats-server
(docs/FEDERATION.md, "Streams"): subscribers on hub A, a publisher on hub B that accepts on
branches or rejects, items crossing once per hub and branch (counted by nats-server), private
posts, unsubscribing and the publisher or its hub going away; the real ``@interopio/core``
subscribing on A to a Python stream on B."""

from __future__ import annotations

import contextlib
import re
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest
from test_client_js import JsPeer
from test_client_support import free_port, wait_for
from test_federation import Hub, start_hub, stop
from test_federation_bus import SPACE, MonitoredNats, client, hubs
from test_federation_bus import nats as nats  # the fixture

import jupyter_interop as ji


class Feed:
    """``on_data`` and ``on_closed`` of one subscription, thread-safe."""

    def __init__(self) -> None:
        self.items: list[tuple[Any, bool]] = []
        self.closed: list[ji.ClosedInfo] = []
        self._lock = threading.Lock()

    def data(self, item: ji.StreamData) -> None:
        with self._lock:
            self.items.append((item.data, item.private))

    def close(self, info: Any) -> None:
        with self._lock:
            self.closed.append(info)

    def got(self) -> list[tuple[Any, bool]]:
        with self._lock:
            return list(self.items)


def ticks(io: ji.Interop) -> Any:
    """A stream on branches by symbol; it rejects BAD and greets each subscriber privately."""

    def decide(request: Any) -> None:
        symbol = request.arguments.get("symbol", "")
        if symbol == "BAD":
            request.reject("no such symbol")
        else:
            request.accept_on_branch(symbol)

    return io.streams.create(
        "Ticks",
        on_subscription_request=decide,
        on_added=lambda sub: sub.push({"hello": sub.arguments.get("symbol")}),
    )


def subscriber(stack: ExitStack, hub: Hub, application: str, stream: str = "Ticks") -> ji.Interop:
    """A client of ``hub`` once it sees ``stream`` (of the other hub)."""
    io = client(stack, hub, application)
    wait_for(lambda: io.streams.streams(stream), 30, f"{stream} of the other hub on this one")
    return io


def publishers(io: ji.Interop, stream: str = "Ticks") -> list[str]:
    """The applications ``io`` sees offering ``stream`` now."""
    return sorted(s.application or "" for m in io.streams.streams(stream) for s in m.servers)


def greeted(io: ji.Interop, symbol: str) -> Feed:
    """The feed of a subscription of ``io`` to ``Ticks`` on ``symbol``, once the publisher's
    private greeting arrived on it."""
    feed = Feed()
    io.streams.subscribe(
        "Ticks", {"symbol": symbol}, on_data=feed.data, on_closed=feed.close, timeout=30
    )
    wait_for(feed.got, 30, "the publisher's greeting")
    return feed


def js_client(stack: ExitStack, hub: Hub, publisher: str) -> JsPeer:
    """The real ``@interopio/core`` (test_client_js_peer.js) on ``hub``, once it sees the
    streams of ``publisher`` (an application of the other hub)."""
    js = JsPeer(hub)  # type: ignore[arg-type]  # (a hub: url and token)
    stack.callback(js.close)
    wait_for(
        lambda: any(s["application"] == publisher for s in js.call("servers")),
        30,
        f"the streams of {publisher} seen by the JS client",
    )
    return js


def stream_subjects(nats: MonitoredNats) -> dict[str, dict[str, int]]:
    """Per hub connection: its stream subscriptions and the messages each delivered."""
    return {
        name: {s: n for s, n in subjects.items() if f"ji.{SPACE}.stream." in s}
        for name, subjects in nats.subscriptions().items()
        if name.startswith("jupyter-interop")
    }


def test_subscribers_on_a_to_a_stream_on_b_with_branches_and_the_publishers_decision(
    tmp_path: Path, nats: MonitoredNats
) -> None:
    with ExitStack() as stack:
        hub_a, hub_b = hubs(stack, tmp_path, nats, "a", "b")
        b = client(stack, hub_b, "pub-b")
        stream = ticks(b)
        subscribers = [subscriber(stack, hub_a, f"sub-{n}") for n in range(3)]
        feeds = [Feed() for _ in subscribers]
        subs = [
            io.streams.subscribe(
                "Ticks", {"symbol": symbol}, on_data=feed.data, on_closed=feed.close, timeout=30
            )
            for io, feed, symbol in zip(subscribers, feeds, ("AAPL", "AAPL", "MSFT"), strict=True)
        ]
        assert [s.application for s in subs[0].servers] == ["pub-b"]
        with pytest.raises(ji.SubscriptionError, match="no such symbol"):
            subscribers[0].streams.subscribe("Ticks", {"symbol": "BAD"}, timeout=30)
        # the publisher decided on each subscriber of A, as it does for its own
        assert sorted(stream.branches()) == ["AAPL", "MSFT"]
        assert len(stream.subscriptions()) == 3
        # on_added greets on the publisher's event thread after the acceptance: a push from
        # here before it ran would come first (client/streams.py)
        wait_for(lambda: all(f.got() for f in feeds), 30, "each subscriber's greeting")

        for n in range(10):  # one at a time: each crosses alone, not in a run
            stream.push({"n": n}, branch="AAPL")
            wait_for(lambda n=n: all(len(f.got()) == n + 2 for f in feeds[:2]), 30, "an item")
        stream.push({"msft": 1}, branch="MSFT")
        expected = [({"hello": "AAPL"}, True)] + [({"n": n}, False) for n in range(10)]
        wait_for(lambda: len(feeds[2].got()) == 2, 30, "MSFT's items on A")
        assert feeds[0].got() == expected and feeds[1].got() == expected
        assert feeds[2].got() == [({"hello": "MSFT"}, True), ({"msft": 1}, False)]

        # one NATS subscription per branch on A, each item delivered to A once for its two
        # subscribers (the branch subject ends with the publisher's stream id); B holds none
        held = {name: subjects for name, subjects in stream_subjects(nats).items() if subjects}
        assert len(held) == 1
        (subjects,) = held.values()
        assert sorted(subjects.values()) == [1, 10]

        # the first AAPL subscriber leaves: the publisher sees it go, the other stays
        subs[0].close()
        wait_for(lambda: len(stream.subscriptions()) == 2, 30, "B to see the unsubscription")
        stream.push({"n": 10}, branch="AAPL")
        wait_for(lambda: len(feeds[1].got()) == 12, 30, "the next item for the other one")
        assert len(feeds[0].got()) == 11
        # the last AAPL subscriber leaves: A releases the branch's NATS subscription
        subs[1].close()
        wait_for(lambda: len(stream.subscriptions()) == 1, 30, "B to see the last one go")
        wait_for(
            lambda: sorted(n for v in stream_subjects(nats).values() for n in v.values()) == [1],
            30,
            "the AAPL branch's NATS subscription released on A (MSFT's stays)",
        )
        # the publisher drops the MSFT subscriber: it closes on A
        (msft,) = stream.subscriptions()
        msft.close()
        wait_for(lambda: feeds[2].closed, 30, "the dropped subscription to close on A")
        assert [c.message for c in feeds[2].closed] == ["ServerInitiated"]
        assert [c.message for c in feeds[1].closed] == ["ClientInitiated"]


def test_the_publisher_leaving_and_its_hub_dying_close_the_subscriptions_on_a(
    tmp_path: Path, nats: MonitoredNats
) -> None:
    with ExitStack() as stack:
        hub_a, hub_b = hubs(stack, tmp_path, nats, "a", "b")
        leaving = client(stack, hub_b, "leaving-b")
        ticks(leaving)
        a = subscriber(stack, hub_a, "sub-a")
        first = Feed()
        a.streams.subscribe("Ticks", {"symbol": "X"}, on_closed=first.close, timeout=30)
        leaving.close()
        wait_for(lambda: first.closed, 30, "the subscription to close when its publisher left")

        staying = client(stack, hub_b, "staying-b")
        ticks(staying)
        # the close comes from B for the subscription, the publisher's removal with B's next
        # snapshot: until that reached A, A still lists the publisher that left
        wait_for(lambda: publishers(a) == ["staying-b"], 30, "B's new stream alone on A")
        second = Feed()
        a.streams.subscribe("Ticks", {"symbol": "Y"}, on_closed=second.close, timeout=30)
        hub_b.proc.kill()
        hub_b.proc.wait(10)
        wait_for(lambda: second.closed, 30, "the subscription to close when B died")


def test_nats_away_past_the_heartbeat_timeout_closes_subscriptions_the_hubs_do_not_remake(
    tmp_path: Path, nats: MonitoredNats
) -> None:
    """NATS away longer than the heartbeat timeout: each side sees the other hub's peers
    leave, so the subscriber gets ``on_closed`` once and the publisher loses the subscription,
    as when a publisher leaves in io.Connect; NATS back, the hubs make nothing again (the
    subscriber subscribes again, and only that subscription reaches the publisher)."""
    with ExitStack() as stack:
        hub_a, hub_b = hubs(stack, tmp_path, nats, "a", "b")
        b = client(stack, hub_b, "pub-b")
        stream = ticks(b)
        a = subscriber(stack, hub_a, "sub-a")
        first = greeted(a, "X")
        assert len(stream.subscriptions()) == 1
        nats.kill()
        wait_for(lambda: first.closed, 30, "A's subscriber to be told B's peers left")
        wait_for(lambda: not stream.subscriptions(), 30, "B to drop A's subscriber")
        wait_for(lambda: not publishers(a), 30, "B's stream gone from A")
        nats.restart()
        wait_for(lambda: publishers(a) == ["pub-b"], 30, "B's stream on A again")
        second = Feed()
        a.streams.subscribe("Ticks", {"symbol": "Y"}, on_data=second.data, timeout=30)
        assert [s.arguments for s in stream.subscriptions()] == [{"symbol": "Y"}]
        stream.push({"n": 1}, branch="Y")
        wait_for(lambda: ({"n": 1}, False) in second.got(), 30, "an item of the new subscription")
        assert len(first.closed) == 1 and first.got() == [({"hello": "X"}, True)]


def test_nats_away_within_the_heartbeat_timeout_keeps_subscriptions_and_items_cross_again(
    tmp_path: Path, nats: MonitoredNats
) -> None:
    """NATS restarted while the hubs still count each other alive: nothing closes, and the
    links' NATS subscriptions (made again by nats-py on reconnecting) carry items again."""
    patient = [
        "--InteropHub.federation_heartbeat_interval=0.3",
        "--InteropHub.federation_heartbeat_timeout=120",
    ]
    with ExitStack() as stack:
        hub_a, hub_b = hubs(stack, tmp_path, nats, "a", "b", heartbeat=patient)
        b = client(stack, hub_b, "pub-b")
        stream = ticks(b)
        feed = greeted(subscriber(stack, hub_a, "sub-a"), "X")
        nats.kill()
        nats.restart()

        def crossed() -> bool:
            stream.push({"after": True}, branch="X")
            return ({"after": True}, False) in feed.got()

        wait_for(crossed, 60, "an item pushed after NATS came back")
        assert feed.closed == [] and len(stream.subscriptions()) == 1


def test_the_subscribers_hub_dying_ends_its_subscriptions_at_the_publisher(
    tmp_path: Path, nats: MonitoredNats
) -> None:
    with ExitStack() as stack:
        hub_a, hub_b = hubs(stack, tmp_path, nats, "a", "b")
        b = client(stack, hub_b, "pub-b")
        stream = ticks(b)
        a = subscriber(stack, hub_a, "sub-a")
        a.streams.subscribe("Ticks", {"symbol": "X"}, timeout=30)
        assert len(stream.subscriptions()) == 1
        hub_a.proc.kill()
        hub_a.proc.wait(10)
        wait_for(lambda: not stream.subscriptions(), 30, "B to drop the dead hub's subscriber")


def test_a_javascript_subscriber_on_a_to_a_python_stream_on_b(
    tmp_path: Path, nats: MonitoredNats
) -> None:
    """The real ``@interopio/core`` (test_client_js_peer.js) subscribing on hub A."""
    with ExitStack() as stack:
        hub_a, hub_b = hubs(stack, tmp_path, nats, "a", "b")
        b = client(stack, hub_b, "py-b")
        stream = ticks(b)
        js = js_client(stack, hub_a, "py-b")
        assert js.call("subscribe", name="Ticks", args={"symbol": "EUR"}, key="s1") == {
            "servers": ["py-b"]
        }
        first = js.event(lambda e: e.get("event") == "data" and e["key"] == "s1")
        assert first["data"] == {"hello": "EUR"} and first["private"] is True
        for n in range(100):  # a burst: publish-many runs across hubs
            stream.push({"n": n}, branch="EUR")
        js.event(lambda e: e.get("event") == "data" and e["data"] == {"n": 99})
        burst = [
            e["data"]["n"]
            for e in js.events
            if e.get("event") == "data" and isinstance(e.get("data"), dict) and "n" in e["data"]
        ]
        assert burst == list(range(100))
        stream.close()
        js.event(lambda e: e.get("event") == "closed" and e["key"] == "s1")


def test_a_python_subscriber_on_a_to_a_javascript_stream_on_b(
    tmp_path: Path, nats: MonitoredNats
) -> None:
    """``Js.Ticks`` of the real ``@interopio/core`` on hub B decides as it does locally."""
    with ExitStack() as stack:
        hub_a, hub_b = hubs(stack, tmp_path, nats, "a", "b")
        js = JsPeer(hub_b)  # type: ignore[arg-type]  # (a hub: url and token)
        stack.callback(js.close)
        a = subscriber(stack, hub_a, "py-a", "Js.Ticks")
        feed = Feed()
        sub = a.streams.subscribe(
            "Js.Ticks", {"symbol": "AAPL"}, on_data=feed.data, on_closed=feed.close, timeout=30
        )
        assert [s.application for s in sub.servers] == ["js-peer"]
        with pytest.raises(ji.SubscriptionError, match="no such symbol"):
            a.streams.subscribe("Js.Ticks", {"symbol": "BAD"}, timeout=30)
        js.call("push", data={"AAPL": 190.1}, branch="AAPL")
        js.call("push", data={"IBM": 1}, branch="IBM")  # a branch nobody on A is on
        js.call("push", data={"end": True}, branch="AAPL")
        wait_for(lambda: len(feed.got()) == 2, 30, "the AAPL items on A")
        assert feed.got() == [({"AAPL": 190.1}, False), ({"end": True}, False)]
        js.close()  # the publisher leaves: the subscription closes on A
        wait_for(lambda: feed.closed, 30, "the subscription to close when the JS peer left")


def test_what_the_publisher_pushes_on_a_new_branch_right_after_accepting_arrives(
    tmp_path: Path, nats: MonitoredNats
) -> None:
    """The first subscriber of a branch on A: items pushed on it at once after the
    acceptance (before A's NATS subscription for it could be in place) still arrive."""
    with ExitStack() as stack:
        hub_a, hub_b = hubs(stack, tmp_path, nats, "a", "b")
        b = client(stack, hub_b, "pub-b")
        streams: list[Any] = []

        def greet(sub: Any) -> None:
            for n in range(3):
                streams[0].push({"first": n}, branch=sub.branch)

        streams.append(
            b.streams.create(
                "Eager",
                on_subscription_request=lambda r: r.accept_on_branch(r.arguments["symbol"]),
                on_added=greet,
            )
        )
        a = subscriber(stack, hub_a, "sub-a", "Eager")
        for symbol in ("X", "Y", "Z"):
            feed = Feed()
            a.streams.subscribe("Eager", {"symbol": symbol}, on_data=feed.data, timeout=30)
            wait_for(lambda feed=feed: len(feed.got()) == 3, 30, f"the pushes on {symbol}")
            assert feed.got() == [({"first": n}, False) for n in range(3)]


class StallAfter:
    """A TCP relay between one hub and nats-server that, once the hub writes ``marker`` (a
    SUB) on its first connection, holds all the server sends that hub there for ``stall``
    seconds (or until :meth:`cut` drops that connection), then passes it on: a NATS server
    that stalls for that hub right when it waits for the server to have the subscription.
    The hub's later connections pass as they are; :meth:`close` ends them all."""

    def __init__(self, upstream: int, marker: bytes, stall: float) -> None:
        self.port = free_port()
        self.marker = marker
        self.stall = stall
        #: monotonic time until which the server's bytes are held, once the marker passed
        self.until: float | None = None
        self._cut = threading.Event()
        self._listener = socket.create_server(("127.0.0.1", self.port))
        self._upstream = upstream
        self._pairs: list[tuple[socket.socket, socket.socket]] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                hub, _ = self._listener.accept()
            except OSError:  # closed
                return
            server = socket.create_connection(("127.0.0.1", self._upstream))
            stalls = not self._pairs
            self._pairs.append((hub, server))
            threading.Thread(target=self._up, args=(hub, server, stalls), daemon=True).start()
            threading.Thread(target=self._down, args=(server, hub, stalls), daemon=True).start()

    def _up(self, hub: socket.socket, server: socket.socket, stalls: bool) -> None:
        seen = b""
        while data := _recv(hub):
            seen = seen[-len(self.marker) :] + data
            if stalls and self.until is None and self.marker in seen:  # (before the PING)
                self.until = time.monotonic() + self.stall
            if not _send(server, data):
                return

    def _down(self, server: socket.socket, hub: socket.socket, stalls: bool) -> None:
        while data := _recv(server):
            if stalls and self.until is not None:
                self._cut.wait(max(0.0, self.until - time.monotonic()))  # the stall itself
            if not _send(hub, data):
                return

    def cut(self) -> None:
        """Drop the first connection, as a network failure would (the hub reconnects)."""
        self._cut.set()
        _drop(*self._pairs[0])

    def close(self) -> None:
        self._cut.set()
        _drop(self._listener, *(sock for pair in self._pairs for sock in pair))


class LoseAfter(StallAfter):
    """A relay whose first connection drops as the hub writes what matches ``marker`` (a
    regular expression), which never reaches the server: a NATS connection lost with the
    hub's last message unread."""

    def _up(self, hub: socket.socket, server: socket.socket, stalls: bool) -> None:
        seen = b""
        while data := _recv(hub):
            seen = seen[-200:] + data
            if stalls and self.until is None and re.search(self.marker, seen):
                self.until = time.monotonic()
                _drop(hub, server)
                return
            if not _send(server, data):
                return


def _recv(sock: socket.socket) -> bytes:
    try:
        return sock.recv(65536)
    except OSError:  # closed
        return b""


def _send(sock: socket.socket, data: bytes) -> bool:
    try:
        sock.sendall(data)
    except OSError:  # closed
        return False
    return True


def _drop(*sockets: socket.socket) -> None:
    for sock in sockets:
        with contextlib.suppress(OSError):  # (a listener, or closed already)
            sock.shutdown(socket.SHUT_RDWR)
        sock.close()


def stalled_hubs(
    stack: ExitStack, tmp_path: Path, nats: MonitoredNats, stall: float
) -> tuple[StallAfter, Hub, Hub]:
    """Hub A, whose NATS connection goes through a :class:`StallAfter` that stalls once A's
    link subscribes to a stream branch, and hub B; both count each other alive for 2 min."""
    relay = StallAfter(nats.port, f"SUB ji.{SPACE}.stream.".encode(), stall)
    return relay, *relayed_hubs(stack, tmp_path, nats, relay)


def relayed_hubs(
    stack: ExitStack, tmp_path: Path, nats: MonitoredNats, relay: StallAfter
) -> tuple[Hub, Hub]:
    """Hub A, whose NATS connection goes through ``relay``, and hub B; both count each other
    alive for 2 min."""
    patient = [
        "--InteropHub.federation_heartbeat_interval=0.3",
        "--InteropHub.federation_heartbeat_timeout=120",
    ]
    stack.callback(relay.close)
    space = f"--InteropHub.federation_space={SPACE}"
    hub_a = start_hub(tmp_path / "a", f"nats://127.0.0.1:{relay.port}", space, heartbeat=patient)
    stack.callback(stop, hub_a.proc)
    hub_b = start_hub(tmp_path / "b", nats.url, space, heartbeat=patient)
    stack.callback(stop, hub_b.proc)
    return hub_a, hub_b


def test_a_nats_stall_longer_than_nats_pys_flush_timeout_as_a_branch_is_joined_is_waited_out(
    tmp_path: Path, nats: MonitoredNats
) -> None:
    """The server stalls for hub A (13 s, more than nats-py's 10 s flush timeout) right when
    A's link made the NATS subscription of a branch new to it: the subscriber is accepted
    once the server answers, and items cross after it (a link that gave up on its flush
    would be left unable to read NATS at all)."""
    with ExitStack() as stack:
        relay, hub_a, hub_b = stalled_hubs(stack, tmp_path, nats, 13.0)
        stream = ticks(client(stack, hub_b, "pub-b"))
        a = subscriber(stack, hub_a, "sub-a")
        feed = greeted(a, "X")  # (subscribed with a 30 s timeout)
        assert relay.until is not None  # the stall did happen
        stream.push({"n": 1}, branch="X")
        wait_for(lambda: len(feed.got()) == 2, 30, "an item pushed after the stall")
        assert feed.got() == [({"hello": "X"}, True), ({"n": 1}, False)]
        assert "InvalidStateError" not in (tmp_path / "a" / "hub.log").read_text()


def test_a_branch_joined_as_the_hubs_nats_connection_drops_is_ready_on_the_next_one(
    tmp_path: Path, nats: MonitoredNats
) -> None:
    """The server stalls for hub A as A's link makes a new branch's NATS subscription, then
    A's connection drops: nats-py reconnects, makes the subscription again and drops the
    PONGs the link waited for; the link waits again on the new connection, so the
    subscriber is accepted within its 30 s instead of after the link's flush timeout."""
    with ExitStack() as stack:
        relay, hub_a, hub_b = stalled_hubs(stack, tmp_path, nats, 600.0)
        stream = ticks(client(stack, hub_b, "pub-b"))
        a = subscriber(stack, hub_a, "sub-a")
        feed = Feed()
        with ThreadPoolExecutor(1) as pool:
            joining = pool.submit(
                a.streams.subscribe, "Ticks", {"symbol": "X"}, on_data=feed.data, timeout=30
            )
            wait_for(lambda: relay.until is not None, 30, "the stall as A subscribes")
            relay.cut()
            joining.result(60)  # accepted (the greeting may have been lost with the connection)
        stream.push({"n": 1}, branch="X")
        wait_for(lambda: ({"n": 1}, False) in feed.got(), 30, "an item pushed after it")


def test_a_ready_lost_with_the_subscribers_hubs_connection_is_said_again_on_the_next_one(
    tmp_path: Path, nats: MonitoredNats
) -> None:
    """Hub A's connection drops as A's link says ``ready`` for a branch new to it, before the
    server read it: B would hold the branch's items back for A for good, but A says
    ``ready`` again once reconnected (nats-py made the branch's subscription there first)."""
    with ExitStack() as stack:
        ready = rb"PUB ji\.[^ \r\n]+\.hub\.[^ \r\n]+\.ready "  # (to B, the one other hub)
        relay = LoseAfter(nats.port, ready, 0.0)
        hub_a, hub_b = relayed_hubs(stack, tmp_path, nats, relay)
        stream = ticks(client(stack, hub_b, "pub-b"))
        a = subscriber(stack, hub_a, "sub-a")
        feed = Feed()
        a.streams.subscribe("Ticks", {"symbol": "X"}, on_data=feed.data, timeout=30)
        wait_for(lambda: relay.until is not None, 30, "A's ready lost with its connection")

        def crossed() -> bool:
            stream.push({"after": True}, branch="X")
            return ({"after": True}, False) in feed.got()

        wait_for(crossed, 30, "an item pushed after A reconnected")
