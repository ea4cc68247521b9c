"""``io_loop``: where the client runs. ``await aconnect()`` in an asyncio program puts the
client on that program's loop (no thread hand-off per awaited call); ``connect()``, IPython and
``io_loop='thread'`` use the process's I/O thread. Real hub, real sockets."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import pytest
from test_client_support import StandaloneHub, standalone_hub

import jupyter_interop as ji
from jupyter_interop.client.iothread import CallerLoop, IOThread


def test_aconnect_runs_the_client_on_the_calling_loop(hub: StandaloneHub) -> None:
    async def main() -> tuple[object, ...]:
        loop = asyncio.get_running_loop()
        server = await ji.aconnect(hub.url, hub.token, "caller-loop-server", new=True)
        caller = await ji.aconnect(hub.url, hub.token, "caller-loop-caller", new=True)
        try:
            assert isinstance(server._io, CallerLoop) and server._io.loop is loop
            threads: dict[str, str] = {}

            def add(a: int, b: int) -> int:  # a plain def: still on a handler thread
                threads["sync"] = threading.current_thread().name
                return a + b

            async def mul(a: int, b: int) -> int:  # async def: on the client's loop
                threads["async"] = threading.current_thread().name
                assert asyncio.get_running_loop() is loop
                return a * b

            await server.methods.aregister("Caller.Add", add)
            await server.methods.aregister("Caller.Mul", mul)
            added = await caller.methods.ainvoke("Caller.Add", {"a": 2, "b": 3})
            multiplied = await caller.methods.ainvoke("Caller.Mul", {"a": 2, "b": 3})

            got: list[object] = []
            seen = asyncio.Event()

            def on_update(data: dict[str, object]) -> None:
                got.append(data)
                loop.call_soon_threadsafe(seen.set)

            sub = await caller.contexts.asubscribe("caller-loop-ctx", on_update)
            await server.contexts.aset("caller-loop-ctx", {"x": 1})
            await asyncio.wait_for(seen.wait(), 5)
            await sub.aunsubscribe()
            return added.returned, multiplied.returned, threads, got[-1]
        finally:
            await caller.aclose()
            await server.aclose()

    added, multiplied, threads, last = asyncio.run(main())
    assert (added, multiplied) == (5, 6)
    assert isinstance(threads, dict)
    assert threads["sync"].startswith("interop-handler")
    assert threads["async"] == threading.main_thread().name
    assert last == {"x": 1}


def test_async_stream_callbacks_on_the_callers_loop_see_every_item_in_order(
    hub: StandaloneHub,
) -> None:
    """Pushes from the program's loop and an ``async def`` ``on_data`` awaited on it, item
    after item (client/dispatch.py), through the hub, batched and not."""

    async def main(batch: bool) -> tuple[list[int], set[str]]:
        loop = asyncio.get_running_loop()
        settings = {"batch": batch}
        pub = await ji.aconnect(hub.url, hub.token, "loop-stream-pub", new=True, **settings)
        sub = await ji.aconnect(hub.url, hub.token, "loop-stream-sub", new=True, **settings)
        got: list[int] = []
        threads: set[str] = set()
        total = 2000
        done = asyncio.Event()
        try:
            stream = await pub.streams.acreate(f"loop.stream.{batch}")

            async def on_data(item: ji.StreamData) -> None:
                threads.add(threading.current_thread().name)
                assert asyncio.get_running_loop() is loop
                if item.data["n"] % 100 == 0:
                    await asyncio.sleep(0)  # items of later frames wait their turn
                got.append(item.data["n"])
                if len(got) == total:
                    done.set()

            await sub.streams.asubscribe(f"loop.stream.{batch}", on_data=on_data, wait_timeout=10)
            for n in range(total):
                await stream.apush({"n": n})
                if n % 500 == 499:
                    await asyncio.sleep(0.01)  # bursts below the hub's outbox limit
            await asyncio.wait_for(done.wait(), 20)
            return got, threads
        finally:
            await sub.aclose()
            await pub.aclose()

    for batch in (True, False):
        got, threads = asyncio.run(main(batch))
        assert got == list(range(2000)), batch
        assert threads == {threading.main_thread().name}


def test_blocking_twins_refuse_the_clients_own_loop_and_work_from_other_threads(
    hub: StandaloneHub,
) -> None:
    async def main() -> object:
        io = await ji.aconnect(hub.url, hub.token, "caller-loop-twins", new=True)
        try:
            await io.methods.aregister("Caller.Echo", lambda x: x)
            with pytest.raises(ji.InteropError, match="would block the event loop"):
                io.methods.invoke("Caller.Echo", {"x": 1})  # would wait on its own loop
            # from another thread the blocking twin hands the call to the client's loop
            result = await asyncio.to_thread(io.methods.invoke, "Caller.Echo", {"x": 7})
            return result.returned
        finally:
            await io.aclose()

    assert asyncio.run(main()) == 7


def test_a_client_whose_loop_ended_says_it_is_closed(hub: StandaloneHub) -> None:
    async def main() -> ji.Interop:
        io = await ji.aconnect(hub.url, hub.token, "caller-loop-ended", new=True)
        await io.contexts.aset("caller-loop-ended", {"x": 1})
        return io  # not closed: asyncio.run closes the loop under it

    io = asyncio.run(main())
    with pytest.raises(ji.ClientClosedError, match="closed"):
        io.contexts.get("caller-loop-ended")
    # a new client (here through the I/O thread) still sees the hub's state
    with ji.connect(hub.url, hub.token, "caller-loop-after", new=True) as other:
        assert other.contexts.get("caller-loop-ended") == {"x": 1}


def test_io_loop_thread_and_connect_use_the_io_thread(hub: StandaloneHub) -> None:
    async def main() -> bool:
        io = await ji.aconnect(hub.url, hub.token, "caller-loop-thread", new=True, io_loop="thread")
        try:
            await io.contexts.aset("caller-loop-thread", {"x": 2})  # hops to the I/O thread
            return isinstance(io._io, IOThread)
        finally:
            await io.aclose()

    assert asyncio.run(main())
    with ji.connect(hub.url, hub.token, "caller-loop-sync", new=True) as io:
        assert isinstance(io._io, IOThread)
    with pytest.raises(ji.ArgumentError, match="aconnect"):
        ji.connect(hub.url, hub.token, "caller-loop-bad", new=True, io_loop="caller")


def test_the_client_on_the_callers_loop_reconnects(tmp_path: Path) -> None:
    with standalone_hub(tmp_path) as hub:

        async def main() -> object:
            io = await ji.aconnect(hub.url, hub.token, "caller-loop-reconnect", new=True)
            try:
                await io.methods.aregister("Caller.Again", lambda: "again")
                await asyncio.to_thread(hub.restart)  # the loop keeps running meanwhile
                for _ in range(200):
                    if io.connected:
                        break
                    await asyncio.sleep(0.05)
                assert io.connected
                result = await io.methods.ainvoke("Caller.Again")  # re-registered
                return result.returned
            finally:
                await io.aclose()

        assert asyncio.run(main()) == "again"
