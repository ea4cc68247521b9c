"""Stream events in runs, without a hub: a batch frame's events reach the streams service as
runs (one call per run), are split per subscription, become StreamData items, and reach each
``on_data`` callback in order with one hand-off to the event lane."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import orjson
import pytest
from clientkit import FakeClient, fake_session

from jupyter_interop.client import stream_subscriber as streams_module
from jupyter_interop.client.dispatch import Dispatcher
from jupyter_interop.client.instance import Instance
from jupyter_interop.client.method_invoker import Invoker
from jupyter_interop.client.stream_subscriber import Subscriber
from jupyter_interop.client.streams import StreamData, Subscription


def event(sub_id: str, n: Any, oob: bool = False) -> dict[str, Any]:
    return {
        "domain": "agm",
        "type": "event",
        "peer_id": "p1",
        "subscription_id": sub_id,
        "oob": oob,
        "sequence": None,
        "snapshot": False,
        "data": n if isinstance(n, dict) else {"_value": n},
    }


def batch(*messages: Any) -> bytes:
    return orjson.dumps(list(messages))


async def settle(done: Any, timeout: float = 5) -> None:
    deadline = time.monotonic() + timeout
    while not done() and time.monotonic() < deadline:
        await asyncio.sleep(0.005)


def test_batch_frames_reach_run_handlers_in_runs_and_in_order() -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        conn = FakeClient(loop, "test-streams")._conn
        calls: list[Any] = []
        conn.on_many("agm", "event", lambda run: calls.append([m["n"] for m in run]))
        conn.on("bus", "event", lambda m: calls.append(("bus", m["n"])))
        future: asyncio.Future[Any] = loop.create_future()
        conn._pending["7"] = (future, "a request", None)
        ev = [{"domain": "agm", "type": "event", "n": n} for n in range(5)]
        conn._dispatch(
            batch(
                ev[0],
                ev[1],
                {"domain": "bus", "type": "event", "n": 9},
                ev[2],
                {"domain": "global", "type": "success", "request_id": "7"},
                "not a message",
                ev[3],
            )
        )
        assert calls == [[0, 1], ("bus", 9), [2], [3]]
        assert future.done()
        conn._dispatch(orjson.dumps(ev[4]))  # a plain frame: a run of one
        assert calls[-1] == [4]

    asyncio.run(main())


def test_a_failing_run_handler_does_not_stop_the_frame() -> None:
    async def main() -> None:
        conn = FakeClient(asyncio.get_running_loop(), "test-streams")._conn
        seen: list[int] = []

        def broken(run: list[dict[str, Any]]) -> None:
            raise ValueError("broken handler")

        conn.on_many("agm", "event", broken)
        conn.on("bus", "event", lambda m: seen.append(m["n"]))
        conn._dispatch(
            batch({"domain": "agm", "type": "event"}, {"domain": "bus", "type": "event", "n": 1})
        )
        assert seen == [1]

    asyncio.run(main())


def test_run_handlers_are_refused_for_replies_and_taken_keys() -> None:
    async def main() -> None:
        conn = FakeClient(asyncio.get_running_loop(), "test-streams")._conn
        conn.on("bus", "event", lambda m: None)
        conn.on_many("agm", "event", lambda run: None)
        with pytest.raises(ValueError):
            conn.on_many("global", "success", lambda run: None)  # a reply type
        with pytest.raises(ValueError):
            conn.on_many("bus", "event", lambda run: None)  # has a per-message handler
        with pytest.raises(ValueError):
            conn.on_many("agm", "event", lambda run: None)  # has a run handler

    asyncio.run(main())


def services(client: FakeClient) -> Subscriber:
    session = fake_session(client)
    return Subscriber(session, Invoker(session))


def subscription(streams: Subscriber, sub_id: str, server: Instance) -> Subscription:
    sub = Subscription(streams, "S", {"k": 1}, "best", 1.0, 1.0, None)
    sub._servers[sub_id] = server
    streams._subscribed[sub_id] = sub
    return sub


def test_events_of_a_batch_reach_each_subscription_in_order() -> None:
    async def main() -> None:
        client = FakeClient(asyncio.get_running_loop(), "test-streams")
        streams = services(client)
        server_a, server_b = Instance(peer_id="pa"), Instance(peer_id="pb")
        a, b = subscription(streams, "s-a", server_a), subscription(streams, "s-b", server_b)
        got_a: list[StreamData] = []
        got_a2: list[Any] = []
        got_b: list[Any] = []
        threads: set[str] = set()

        def on_a(item: StreamData) -> None:
            threads.add(threading.current_thread().name)
            got_a.append(item)
            if item.data == 1:
                raise ValueError("one failing item does not stop the run")

        for sub, callback in ((a, on_a), (a, lambda i: got_a2.append(i.data)), (b, None)):
            if callback is not None:
                sub._on_data.append(callback)
                sub._on_data_kinds.append((callback, False))
        b._on_data.append(lambda i: got_b.append(i.data))
        b._on_data_kinds.append((b._on_data[0], False))

        client._conn._dispatch(
            batch(
                event("s-a", 0),
                event("s-a", 1, oob=True),
                event("s-b", {"x": 1}),
                event("s-unknown", 99),
                event("s-a", 2),
            )
        )
        client._conn._dispatch(batch(event("s-a", 3), event("s-b", 4)))
        await settle(lambda: len(got_a) == 4 and len(got_a2) == 4 and len(got_b) == 2)
        assert [i.data for i in got_a] == [0, 1, 2, 3]
        assert got_a2 == [0, 1, 2, 3]
        assert got_b == [{"x": 1}, 4]
        assert [i.private for i in got_a] == [False, True, False, False]
        assert all(i.server is server_a and i.arguments == {"k": 1} for i in got_a)
        assert threads == {"test-streams-events"}  # the ordered lane, not the loop
        item = got_a[0]
        assert item == StreamData(0, server_a, {"k": 1}, False)
        with pytest.raises(AttributeError):
            item.data = 5  # type: ignore[misc]
        client._dispatcher.shutdown()

    asyncio.run(main())


def test_async_on_data_runs_on_the_loop_in_one_task_in_order() -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        client = FakeClient(loop, "test-streams")
        streams = services(client)
        sub = subscription(streams, "s", Instance(peer_id="p"))
        got: list[Any] = []
        threads: set[threading.Thread] = set()

        async def on_data(item: StreamData) -> None:
            threads.add(threading.current_thread())
            if item.data == 2:
                raise ValueError("this item fails; the next ones still arrive")
            await asyncio.sleep(0.01 if item.data == 0 else 0)  # later items wait their turn
            got.append(item.data)

        sub._on_data.append(on_data)
        sub._on_data_kinds.append((on_data, True))
        tasks_before = len(asyncio.all_tasks())
        client._conn._dispatch(batch(*(event("s", n) for n in range(5))))
        assert len(asyncio.all_tasks()) == tasks_before + 1  # the whole run: one task
        await asyncio.sleep(0)  # the task awaits the callback of item 0
        client._conn._dispatch(batch(event("s", 5), event("s", 6)))
        assert len(asyncio.all_tasks()) == tasks_before + 1  # joined the task at work
        await settle(lambda: len(got) == 6)
        assert got == [0, 1, 3, 4, 5, 6]
        assert threads == {threading.current_thread()}
        client._conn._dispatch(batch(event("s", 7)))  # that task has ended: a new one
        await settle(lambda: len(got) == 7)
        assert got[-1] == 7
        assert not client._dispatcher._async_runs
        client._dispatcher.shutdown()

    asyncio.run(main())


def test_events_before_a_handler_are_queued_up_to_the_cap(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(streams_module, "_MAX_QUEUED", 3)

    async def main() -> None:
        client = FakeClient(asyncio.get_running_loop(), "test-streams")
        streams = services(client)
        sub = subscription(streams, "s", Instance(peer_id="p"))
        client._conn._dispatch(batch(event("s", 0), event("s", 1)))
        client._conn._dispatch(batch(event("s", 2), event("s", 3), event("s", 4)))
        assert [i.data for i in sub._queue] == [0, 1, 2]
        assert sub.dropped == 2
        got: list[Any] = []
        sub.on_data(lambda i: got.append(i.data))
        await settle(lambda: len(got) == 3)
        client._conn._dispatch(batch(event("s", 5)))
        await settle(lambda: len(got) == 4)
        assert got == [0, 1, 2, 5]
        client._dispatcher.shutdown()

    asyncio.run(main())


def test_lane_takes_runs_of_items_and_groups_them_per_callback() -> None:
    async def main() -> None:
        dispatcher = Dispatcher(asyncio.get_running_loop(), 1, 10, "test-items")
        gate = threading.Event()
        calls: list[Any] = []

        def slow(n: int) -> None:
            gate.wait(5)
            calls.append(("slow", n))

        def a(n: int) -> None:
            calls.append(("a", n))

        dispatcher.post_event(slow, (0,), None, False)
        dispatcher.post_items(a, [1, 2], None, False)
        dispatcher.post_items(a, [3], None, False)
        dispatcher.post_event(a, (4,), None, False)  # args tuples: a job of its own
        dispatcher.post_items(a, [5], None, False)
        lane = dispatcher._events
        assert [(e[0], e[2], list(e[3])) for e in lane._entries if e[0] is a] == [
            (a, False, [1, 2, 3]),
            (a, True, [(4,)]),
            (a, False, [5]),
        ]
        gate.set()
        await settle(lambda: len(calls) == 6)
        assert calls == [("slow", 0), *(("a", n) for n in range(1, 6))]
        dispatcher.shutdown()
        dispatcher.post_items(a, [6], None, False)  # refused: shut down
        lane.post_items(a, [7], None)  # also at the lane itself
        await asyncio.sleep(0.05)
        assert len(calls) == 6

    asyncio.run(main())


def test_an_event_many_reaches_the_subscription_as_one_run_in_order() -> None:
    async def main() -> None:
        client = FakeClient(asyncio.get_running_loop(), "test-streams")
        streams = services(client)
        sub = subscription(streams, "s-m", Instance(peer_id="pm"))
        runs: list[list[Any]] = []
        sub._on_data.append(lambda item: None)
        sub._on_data_kinds.append((lambda item: None, False))
        client._dispatcher.post_items = (  # type: ignore[method-assign]
            lambda callback, items, output, is_async: runs.append([i.data for i in items])
        )
        many = {
            "domain": "agm",
            "type": "event-many",
            "peer_id": "me",
            "subscription_id": "s-m",
            "items": [{"_value": n} for n in range(5)],
        }
        client._conn._dispatch(batch(event("s-m", "first"), many, event("s-m", "last")))
        assert runs == [["first"], [0, 1, 2, 3, 4], ["last"]]
        client._conn._dispatch(orjson.dumps({**many, "subscription_id": "unknown"}))
        client._conn._dispatch(orjson.dumps({**many, "items": "not a list"}))
        assert len(runs) == 3  # ignored: nobody subscribed, or not items

    asyncio.run(main())
