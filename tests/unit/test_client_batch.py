"""The client's side of the ``batch`` extension, without a hub: framing what goes out,
dispatching what comes in, one wake-up per burst of pushes, events grouped per callback."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections import deque
from typing import Any

import orjson
from clientkit import FakeClient, fake_session, make_connection
from websockets.client import ClientProtocol
from websockets.frames import Opcode
from websockets.protocol import State
from websockets.server import ServerProtocol
from websockets.uri import parse_uri

from jupyter_interop.client._direct import DirectTransport
from jupyter_interop.client.connection import Connection
from jupyter_interop.client.dispatch import Dispatcher
from jupyter_interop.client.transport import LockedTransport, TransportClosed
from jupyter_interop.protocol.chunks import ChunkedFrame
from jupyter_interop.protocol.framing import fold_items as _fold_items
from jupyter_interop.protocol.framing import take_batch as _take_batch
from jupyter_interop.protocol.limits import CLIENT_BATCH_MAX_BYTES as BATCH_MAX_BYTES
from jupyter_interop.protocol.limits import CLIENT_BATCH_MAX_MESSAGES as BATCH_MAX_MESSAGES


def frame(n: int) -> bytes:
    return orjson.dumps({"domain": "bus", "type": "event", "n": n})


def test_take_batch_joins_json_frames_in_order_and_stops_at_binary() -> None:
    out = deque([frame(1), frame(2), b"JIB1\x00bin", frame(3)])
    batch = _take_batch(frame(0), out)
    assert [m["n"] for m in orjson.loads(batch)] == [0, 1, 2]
    assert list(out) == [b"JIB1\x00bin", frame(3)]
    assert _take_batch(frame(9), deque()) == frame(9)  # alone: a plain frame


def test_take_batch_respects_the_size_cap() -> None:
    big = orjson.dumps({"pad": "x" * (BATCH_MAX_BYTES // 2 - 100)})
    out = deque([big, big, frame(1)])
    batch = _take_batch(big, out)
    assert len(orjson.loads(batch)) == 2  # a third would exceed the cap
    assert len(out) == 2


def test_incoming_batch_is_dispatched_in_order_and_resolves_replies() -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        conn = make_connection(loop)
        seen: list[int] = []
        conn.on("bus", "event", lambda m: seen.append(m["n"]))
        future: asyncio.Future[Any] = loop.create_future()
        conn._pending["7"] = (future, "a request", None)
        conn._dispatch(
            b"["
            + frame(1)
            + b","
            + orjson.dumps({"domain": "global", "type": "success", "request_id": "7"})
            + b","
            + frame(2)
            + b',"not a message",'
            + frame(3)
            + b"]"
        )
        assert seen == [1, 2, 3]
        assert future.done() and future.result()["type"] == "success"
        # text frames from tornado arrive as str
        conn._dispatch("[" + frame(4).decode() + "]")
        assert seen == [1, 2, 3, 4]

    asyncio.run(main())


def test_pushes_from_another_thread_wake_the_loop_once_per_burst() -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        conn = make_connection(loop)
        conn.ready.set()
        io = conn.client._io  # type: ignore[attr-defined]

        def burst() -> None:
            for n in range(500):
                conn.send_threadsafe({"domain": "bus", "type": "publish", "n": n})

        thread = threading.Thread(target=burst)
        thread.start()
        thread.join()
        await asyncio.sleep(0.05)
        assert io.scheduled == 1
        assert conn._wake.is_set()  # the writer takes them from the queue itself
        assert [orjson.loads(f)["n"] for f in conn.queue.incoming] == list(range(500))
        # a later send from the loop keeps the order of what other threads sent before it
        conn.send_threadsafe({"domain": "bus", "type": "publish", "n": 500})
        conn.send({"domain": "bus", "type": "publish", "n": 501})
        assert [orjson.loads(f)["n"] for f in conn.queue.out] == list(range(502))
        assert not conn.queue.incoming

    asyncio.run(main())


class RecordingTransport:
    """Records what the writer sends; ``gate`` holds the first send until it is set."""

    def __init__(self) -> None:
        self.sent: list[tuple[bytes, bool]] = []
        self.gate = asyncio.Event()

    async def send(self, frame: bytes, binary: bool) -> None:
        await self.gate.wait()
        self.sent.append((frame, binary))

    def messages(self) -> list[Any]:
        out: list[Any] = []
        for frame, binary in self.sent:
            if binary:
                out.append("binary")
                continue
            decoded = orjson.loads(frame)
            out.append([m["n"] for m in decoded] if isinstance(decoded, list) else decoded["n"])
        return out


def test_writer_sends_loop_frames_then_other_threads_frames_in_batches() -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        conn = make_connection(loop)
        conn.ready.set()
        transport = RecordingTransport()
        writer = loop.create_task(conn._write(transport))  # type: ignore[arg-type]
        conn.send({"domain": "bus", "type": "publish", "n": 0})
        await asyncio.sleep(0)  # the writer holds frame 0 at the gate
        for n in range(1, 4):
            conn.send({"domain": "bus", "type": "publish", "n": n})

        def burst() -> None:
            for n in range(4, 8):
                conn.send_threadsafe({"domain": "bus", "type": "publish", "n": n})

        thread = threading.Thread(target=burst)
        thread.start()
        thread.join()
        conn.queue.incoming.append(b"JIB1\x00binary")  # a binary frame ends a batch
        conn.send_threadsafe({"domain": "bus", "type": "publish", "n": 8})
        transport.gate.set()
        deadline = time.monotonic() + 5
        while len(transport.sent) < 5 and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        # the loop's own frames first, then the other threads' (a batch does not span both)
        assert transport.messages() == [0, [1, 2, 3], [4, 5, 6, 7], "binary", 8]
        # without the batch extension (plain GW3), one message per frame
        conn.extensions = {}
        transport.sent.clear()
        for n in range(3):
            conn.send_threadsafe({"domain": "bus", "type": "publish", "n": n})
        deadline = time.monotonic() + 5
        while len(transport.sent) < 3 and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        assert transport.messages() == [0, 1, 2]
        writer.cancel()

    asyncio.run(main())


def test_sends_while_disconnected_are_dropped_and_counted() -> None:
    async def main() -> None:
        conn = make_connection(asyncio.get_running_loop())
        for n in range(3):
            conn.send_threadsafe({"domain": "bus", "type": "publish", "n": n})
        await asyncio.sleep(0.01)
        assert conn.dropped_sends == 3 and not conn.queue.out
        # the handshake's own frames go out before the connection is ready; what other
        # threads sent meanwhile is dropped then too, not sent ahead of them
        conn.send_threadsafe({"domain": "bus", "type": "publish", "n": 3})
        conn._enqueue(frame(99))
        assert conn.dropped_sends == 4 and list(conn.queue.out) == [frame(99)]
        assert not conn.queue.incoming

    asyncio.run(main())


def test_frames_queued_when_the_socket_drops_are_counted_as_dropped() -> None:
    async def main() -> None:
        conn = make_connection(asyncio.get_running_loop())
        conn.ready.set()
        for n in range(2):
            conn.send({"domain": "bus", "type": "publish", "n": n})  # queued on the loop
        conn.send_threadsafe({"domain": "bus", "type": "publish", "n": 2})  # from a thread
        assert len(conn.queue.out) == 2 and len(conn.queue.incoming) == 1
        conn._lost(None)
        assert conn.dropped_sends == 3 and not conn.queue.out and not conn.queue.incoming
        assert conn.client.disconnected == 1  # type: ignore[attr-defined]

    asyncio.run(main())


def test_event_lane_groups_a_burst_per_callback_and_keeps_the_global_order() -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        dispatcher = Dispatcher(loop, 2, 10, "test")
        calls: list[tuple[str, int]] = []
        gate = threading.Event()
        threads: set[str] = set()

        def slow(n: int) -> None:
            gate.wait(5)
            calls.append(("slow", n))

        def a(n: int) -> None:
            threads.add(threading.current_thread().name)
            calls.append(("a", n))

        def b(n: int) -> None:
            calls.append(("b", n))
            if n == 99:
                raise ValueError("a failing callback does not stop the lane")

        dispatcher.post_event(slow, (0,))
        for n in range(100):
            dispatcher.post_event(a, (n,), None, False)
        dispatcher.post_event(b, (99,))
        dispatcher.post_event(a, (100,))
        # while the lane was busy, the 100 calls of ``a`` were grouped into one job
        grouped = [len(e[3]) for e in dispatcher._events._entries if e[0] is a]
        assert grouped == [100, 1]
        gate.set()
        deadline = time.monotonic() + 5
        while len(calls) < 103 and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        assert calls == [("slow", 0), *(("a", n) for n in range(100)), ("b", 99), ("a", 100)]
        assert threads == {"test-events"}
        dispatcher.shutdown()

    asyncio.run(main())


def test_event_lane_runs_what_was_posted_before_shutdown() -> None:
    async def main() -> None:
        dispatcher = Dispatcher(asyncio.get_running_loop(), 1, 10, "test-close")
        gate = threading.Event()
        calls: list[int] = []

        def slow(n: int) -> None:
            gate.wait(5)
            calls.append(n)

        for n in range(3):
            dispatcher.post_event(slow, (n,), None, False)
        dispatcher.shutdown()
        dispatcher.post_event(slow, (99,), None, False)  # refused: shut down
        gate.set()
        deadline = time.monotonic() + 5
        while len(calls) < 3 and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.05)
        assert calls == [0, 1, 2]

    asyncio.run(main())


def bus_event(sub_id: str, n: Any, app: str = "pub", topic: str = "t.x") -> dict[str, Any]:
    return {
        "domain": "bus",
        "type": "event",
        "subscription_id": sub_id,
        "topic": topic,
        "publisher-identity": {"application": app},
        "data": n if isinstance(n, dict) else {"_value": n},
    }


def test_bus_events_of_a_batch_reach_each_subscription_in_order() -> None:
    from jupyter_interop.client.bus import Bus, BusSubscription

    async def main() -> None:
        client = FakeClient(asyncio.get_running_loop(), "test-bus")
        bus = Bus(fake_session(client))
        got: dict[str, list[Any]] = {"a": [], "b": [], "async": []}
        threads: set[str] = set()

        sources: list[Any] = []

        def on_a(data: Any, topic: str, source: Any) -> None:
            threads.add(threading.current_thread().name)
            got["a"].append((data, topic, source.application))
            sources.append(source)

        async def on_async(data: Any, topic: str, source: Any) -> None:
            got["async"].append(data)

        def sub(sub_id: str, callback: Any, **kw: Any) -> BusSubscription:
            found = BusSubscription("t.*", None, kw.pop("source", None), callback, None, bus)
            found.subscription_id = sub_id
            for name, value in kw.items():
                setattr(found, name, value)
            bus._by_id[sub_id] = found
            return found

        sub("a", on_a)
        sub("b", lambda d, t, s: got["b"].append(d), source={"application": "pub"})
        sub("gone", lambda d, t, s: got["b"].append("never"), active=False)
        sub("async", on_async, is_async=True)
        client._conn._dispatch(
            orjson.dumps(
                [
                    bus_event("a", 0),
                    bus_event("a", {"k": 1}, topic="t.y"),
                    bus_event("b", 0),
                    bus_event("b", "filtered out", app="other"),
                    bus_event("gone", 0),
                    bus_event("async", 0),
                    bus_event("a", 2),
                    bus_event("a", 3, app="second"),
                    bus_event("a", 4),
                    bus_event("async", 1),
                ]
            )
        )
        deadline = time.monotonic() + 5
        while (len(got["a"]) < 5 or len(got["async"]) < 2) and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        assert got["a"] == [
            (0, "t.x", "pub"),
            ({"k": 1}, "t.y", "pub"),
            (2, "t.x", "pub"),
            (3, "t.x", "second"),
            (4, "t.x", "pub"),
        ]
        # consecutive deliveries from one publisher share its Instance
        assert sources[0] is sources[1] and sources[2] is not sources[3]
        assert got["b"] == [0]
        assert got["async"] == [0, 1]
        assert threads == {"test-bus-events"}
        client._dispatcher.shutdown()

    asyncio.run(main())


class LockedFake(LockedTransport):
    """A transport that records what is written (and can refuse, as a closed socket does)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.written: list[bytes] = []
        #: frames per write_run_locked call
        self.runs: list[int] = []
        self.closed = False

    async def send(self, frame: bytes, binary: bool) -> None:
        with self.lock:
            self.write_locked(frame, binary)

    def write_locked(self, frame: bytes, binary: bool) -> None:
        assert self.lock.locked()
        if self.closed:
            raise TransportClosed(1006, "gone")
        self.written.append(frame)

    def write_run_locked(self, frames: list[tuple[bytes, bool]]) -> None:
        self.runs.append(len(frames))
        super().write_run_locked(frames)

    async def send_pieces(self, pieces: list[Any]) -> None:
        await self.send(b"".join(pieces), True)

    async def drained(self) -> None:
        return None

    def deliver_to(self, callback: Any) -> None:
        raise AssertionError("not read in these tests")

    async def wait_closed(self) -> None:
        raise TransportClosed(1000, "closed")


def locked_connection() -> tuple[Connection, LockedFake]:
    """A ready connection (on the running loop) over a :class:`LockedFake`."""
    conn = make_connection(asyncio.get_running_loop())
    transport = LockedFake()
    conn._transport = transport
    conn.ready.set()
    return conn, transport


def test_a_reply_is_written_at_once_only_when_nothing_queued_could_be_overtaken() -> None:
    async def main() -> None:
        conn, transport = locked_connection()
        generation = conn.generation
        reply = orjson.dumps({"domain": "agm", "type": "yield", "invocation_id": "1"})

        def from_thread(frame: bytes, gen: int) -> bool:
            result: list[bool] = []
            thread = threading.Thread(target=lambda: result.append(conn.write_now(frame, gen)))
            thread.start()
            thread.join()
            return result[0]

        assert from_thread(reply, generation) and transport.written == [reply]
        # a push the handler thread made before returning is still queued: no overtaking
        conn.send_threadsafe({"domain": "agm", "type": "publish", "n": 1})
        assert not from_thread(reply, generation)
        conn.queue.incoming.clear()
        conn.send({"domain": "agm", "type": "publish", "n": 2})  # queued on the loop
        assert not from_thread(reply, generation)
        conn.queue.out.clear()
        conn.queue.writing_chunks = True  # a large message is going out chunk by chunk
        assert not from_thread(reply, generation)
        conn.queue.writing_chunks = False
        assert not from_thread(reply, generation + 1)  # asked on an earlier connection
        assert not conn.write_now(ChunkedFrame([b"x"], 1, 1), generation)
        assert transport.written == [reply]
        transport.closed = True
        assert from_thread(reply, generation)  # nobody waits for it: dealt with
        conn._transport = None
        assert not from_thread(reply, generation)

    asyncio.run(main())


def test_the_writer_takes_and_writes_each_frame_under_the_transport_lock() -> None:
    async def main() -> None:
        conn, transport = locked_connection()
        writer = asyncio.get_running_loop().create_task(conn._write(transport))
        for n in range(3):
            conn.send({"domain": "bus", "type": "publish", "n": n})
        await asyncio.sleep(0.05)
        assert [m["n"] for m in orjson.loads(transport.written[0])] == [0, 1, 2]  # one batch
        writer.cancel()

    asyncio.run(main())


def test_without_batch_frames_what_piled_up_is_written_as_one_run_of_frames() -> None:
    async def main() -> None:
        conn, transport = locked_connection()
        conn.extensions = {}  # a plain GW3 connection: one message per frame
        for n in range(3):
            conn.send({"domain": "bus", "type": "publish", "n": n})
        conn.send_threadsafe({"domain": "bus", "type": "publish", "n": 3})
        writer = asyncio.get_running_loop().create_task(conn._write(transport))
        for _ in range(100):
            if len(transport.written) == 4:
                break
            await asyncio.sleep(0.01)
        # four frames, each its own message, in the order sent, handed over together
        assert [orjson.loads(f)["n"] for f in transport.written] == [0, 1, 2, 3]
        assert transport.runs == [4]
        writer.cancel()

    asyncio.run(main())


def test_a_handler_result_finished_on_its_thread_never_wakes_the_loop() -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        dispatcher = Dispatcher(loop, 2, 10, "test")
        done: list[Any] = []
        finished: list[Any] = []

        def finish(result: Any) -> bool:
            finished.append((result, threading.current_thread().name))
            if result == "boom":
                raise RuntimeError("a failing finish falls back to the loop")
            return result == "mine"

        for value in ("mine", "theirs", "boom"):
            dispatcher.run_handler_then(
                lambda v=value: v, (), None, lambda r, e: done.append(r), finish
            )
        for _ in range(200):
            if len(done) == 2 and dispatcher._queued == 0:
                break
            await asyncio.sleep(0.01)
        assert sorted(done) == ["boom", "theirs"]  # "mine" was finished on its thread
        assert all(name.startswith("test-handler") for _, name in finished)
        assert dispatcher._queued == 0 and not dispatcher.busy
        dispatcher.shutdown()

    asyncio.run(main())


def test_a_run_of_stream_items_becomes_one_publish_many_in_order() -> None:
    out: deque[Any] = deque([("s1", b"2"), ("s1", b'{"x":3}'), ("s2", b"4"), frame(5)])
    folded = _fold_items(("s1", b"1"), out)
    assert orjson.loads(folded) == {
        "domain": "agm",
        "type": "publish-many",
        "stream_id": "s1",
        "items": [1, 2, {"x": 3}],
    }
    assert list(out) == [("s2", b"4"), frame(5)]
    alone = _fold_items(out.popleft(), out)  # a lone item: a plain GW3 publish
    assert orjson.loads(alone) == {"domain": "agm", "type": "publish", "stream_id": "s2", "data": 4}
    long = deque(("s", b"0") for _ in range(BATCH_MAX_MESSAGES + 10))
    assert len(orjson.loads(_fold_items(long.popleft(), long))["items"]) == BATCH_MAX_MESSAGES
    assert len(long) == 10


def test_a_batch_folds_item_runs_in_place_between_other_frames() -> None:
    out: deque[Any] = deque([("s1", b"1"), ("s1", b"2"), ("s2", b"3"), frame(4)])
    messages = orjson.loads(_take_batch(frame(0), out))
    assert [m.get("type") for m in messages] == ["event", "publish-many", "publish", "event"]
    assert messages[1]["items"] == [1, 2] and messages[2]["data"] == 3
    assert not out


def test_items_pushed_from_threads_leave_as_publish_many_frames() -> None:
    async def main() -> None:
        conn, transport = locked_connection()
        writer = asyncio.get_running_loop().create_task(conn._write(transport))

        def push(stream: str) -> None:
            for n in range(300):
                conn.send_item_threadsafe(stream, orjson.dumps({"n": n}))

        thread = threading.Thread(target=push, args=("s1",))
        thread.start()
        thread.join()
        deadline = time.monotonic() + 5
        got: list[int] = []
        while len(got) < 300 and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
            got = []
            for raw in transport.written:
                decoded = orjson.loads(raw)
                for message in decoded if isinstance(decoded, list) else [decoded]:
                    items = message.get("items") or [message["data"]]
                    got.extend(item["n"] for item in items)
        assert got == list(range(300))  # every item, in order
        assert len(transport.written) < 10  # in a few frames, not 300
        writer.cancel()

    asyncio.run(main())


class CountingSocket(socket.socket):
    """A real socket that counts its ``send`` system calls."""

    sends = 0

    def send(self, data: Any, flags: int = 0) -> int:
        self.sends += 1
        return super().send(data, flags)


def test_the_direct_transport_writes_a_run_of_frames_with_one_system_call() -> None:
    async def main() -> None:
        ours, theirs = socket.socketpair()
        sock = CountingSocket(fileno=ours.detach())
        sock.setblocking(False)
        protocol = ClientProtocol(parse_uri("ws://hub.invalid/"), state=State.OPEN)
        transport = DirectTransport(asyncio.get_running_loop(), sock, protocol, 0)
        frames = [orjson.dumps({"n": n}) for n in range(5)]
        with transport.lock:
            transport.write_run_locked([(f, False) for f in frames] + [(b"\x00bin", True)])
        assert sock.sends == 1
        # the peer reads six frames, each its own message, in order
        server = ServerProtocol(state=State.OPEN)
        theirs.settimeout(5)
        got: list[Any] = []
        while len(got) < 6:
            server.receive_data(theirs.recv(65536))
            got.extend((e.opcode, e.data) for e in server.events_received())
        assert got == [(Opcode.TEXT, f) for f in frames] + [(Opcode.BINARY, b"\x00bin")]
        await transport.close()
        theirs.close()

    asyncio.run(main())
