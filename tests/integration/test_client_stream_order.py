"""Stream pushes and deliveries through a real hub with the batch extension: pushes from
several threads and from the I/O loop keep each sender's order, branches get only their own
items, and every ``on_data`` callback of a subscription sees every item, in order, on the
ordered event lane."""

from __future__ import annotations

import threading
import time
from typing import Any

from test_client_support import Clients, wait_for

import jupyter_interop as ji


def test_pushes_from_threads_and_the_loop_each_arrive_in_order(clients: Clients) -> None:
    publisher = clients("order-pub")
    subscriber = clients("order-sub")
    stream = publisher.streams.create("order.stream")
    seen: dict[str, list[int]] = {}
    second: list[tuple[str, int]] = []
    lanes: set[str] = set()

    def on_data(item: ji.StreamData) -> None:
        lanes.add(threading.current_thread().name)
        seen.setdefault(item.data["who"], []).append(item.data["n"])

    def also(item: ji.StreamData) -> None:
        second.append((item.data["who"], item.data["n"]))

    sub = subscriber.streams.subscribe("order.stream", on_data=on_data)
    sub.on_data(also)
    wait_for(lambda: len(stream.subscriptions()) == 1, what="the subscriber")
    per_sender = 600

    def pusher(who: str) -> None:
        for n in range(per_sender):
            stream.push({"who": who, "n": n})
            if n % 200 == 199:
                time.sleep(0.02)  # bursts: the hub drops events past 1000 queued, by design

    async def from_the_loop() -> None:
        for n in range(per_sender):
            await stream.apush({"who": "loop", "n": n})

    threads = [threading.Thread(target=pusher, args=(f"t{i}",)) for i in range(3)]
    for thread in threads:
        thread.start()
    publisher._io.submit(from_the_loop()).result(10)
    for thread in threads:
        thread.join()
    senders = ["t0", "t1", "t2", "loop"]
    wait_for(
        lambda: (
            sum(len(v) for v in seen.values()) >= per_sender * len(senders)
            and len(second) >= per_sender * len(senders)
        ),
        timeout=30,
        what="every item at both callbacks",
    )
    for who in senders:
        assert seen[who] == list(range(per_sender)), who
        assert [n for w, n in second if w == who] == list(range(per_sender)), who
    assert lanes == {subscriber._dispatcher._events.name}
    assert publisher._conn.dropped_sends == 0
    assert publisher._conn.extensions.get("runs") and subscriber._conn.extensions.get("runs")


def test_branches_get_their_own_items_in_order(clients: Clients) -> None:
    publisher = clients("branch-pub")
    stream = publisher.streams.create(
        "branch.stream",
        on_subscription_request=lambda request: request.accept_on_branch(
            request.arguments["branch"]
        ),
    )
    got: dict[str, list[Any]] = {"a": [], "b": []}

    def recorder(key: str) -> Any:
        return lambda item: got[key].append(item.data["n"])

    for key in ("a", "b"):
        clients(f"branch-sub-{key}").streams.subscribe(
            "branch.stream", {"branch": key}, on_data=recorder(key)
        )
    wait_for(lambda: sorted(stream.branches()) == ["a", "b"], what="both branches")
    for n in range(300):
        stream.push({"n": n}, branch="a" if n % 3 else ["a", "b"])
    stream.push({"n": "to b"}, branch="b")
    stream.push({"n": "nobody"}, branch="c")  # no such branch: nothing is sent
    stream.push({"n": "all"})
    wait_for(lambda: len(got["a"]) == 301 and len(got["b"]) == 102, what="every item")
    assert got["a"] == [*range(300), "all"]
    assert got["b"] == [*range(0, 300, 3), "to b", "all"]
