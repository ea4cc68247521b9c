"""Worker roles that use the project's Python client (``jupyter_interop.connect``).

Handlers are plain ``def`` functions (what a notebook user writes), so they run on the
client's handler thread. Callers use the async API as an asyncio program does (``await
ji.aconnect()``: the client runs on the worker's loop, ``await io.methods.ainvoke``), the async
API as a kernel does (``connect()`` + ``await ainvoke``: each call crosses to the client's I/O
thread and back), or the sync API (``io.methods.invoke`` from a plain thread).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

from .worker import (
    METHOD,
    SMALL_ARGS,
    STREAM,
    Command,
    FanCounter,
    FanCounters,
    Reply,
    SeqWaiter,
    big_context,
    caller_handlers,
    delta_writer_handlers,
    fan_data,
    fan_seen,
    frame_received,
    payload,
    peak_rss_bytes,
    rss_bytes,
    serve,
    small_delta,
)


def connect(p: dict[str, Any], application: str, new: bool = False) -> Any:
    import jupyter_interop as ji

    return ji.connect(
        url=p["url"], token=p["token"], application=application, new=new, **settings(p)
    )


def settings(p: dict[str, Any]) -> dict[str, Any]:
    """Client settings a scenario asks for (``shared_memory=False``: large values over the
    socket, as between machines; ``batch=False``: one message per frame and one ``publish``
    per stream item, as a plain GW3 peer sends them)."""
    return {
        "shared_memory": bool(p.get("shared_memory", True)),
        "batch": bool(p.get("batch", True)),
    }


async def ji_handler(p: dict[str, Any]) -> None:
    io = connect(p, "bench-ji-handler")

    def echo(**kwargs: Any) -> Any:
        return kwargs

    io.methods.register(p.get("method", METHOD), echo)
    await serve({})
    io.close()


async def aconnect(p: dict[str, Any], application: str, new: bool = False) -> Any:
    import jupyter_interop as ji

    return await ji.aconnect(
        url=p["url"], token=p["token"], application=application, new=new, **settings(p)
    )


def on_own_loop(p: dict[str, Any]) -> bool:
    """Does the scenario ask for the client on the worker's own asyncio loop (``aconnect``,
    ``io_loop='auto'`` outside IPython), rather than behind the process's I/O thread?"""
    return p.get("loop", "thread") == "own"


async def ji_caller(p: dict[str, Any]) -> None:
    api = p.get("api", "async")
    application = f"bench-ji-caller-{api}"
    io = await aconnect(p, application) if api == "async" else connect(p, application)
    args = SMALL_ARGS if p.get("payload", "small") == "small" else {"blob": payload("1mib")}
    method = p.get("method", METHOD)
    await io.methods.ainvoke(method, args, wait_timeout=15)  # waits for the handler
    check = "blob" in args

    if api == "sync":

        def once_sync() -> None:
            result = io.methods.invoke(method, args)
            if check:
                assert len(result.returned["blob"]) == len(args["blob"])

        await serve(caller_handlers(once_sync=once_sync))
    else:

        async def once() -> None:
            result = await io.methods.ainvoke(method, args)
            if check:
                assert len(result.returned["blob"]) == len(args["blob"])

        await serve(caller_handlers(once))
    await io.aclose()


async def ji_publisher(p: dict[str, Any]) -> None:
    """Pushes from the worker's loop: with ``loop='own'`` that is the client's loop too (a
    burst wakes the writer once, when ``publish`` returns), else each burst crosses to the
    I/O thread."""
    own = on_own_loop(p)
    io = await aconnect(p, "bench-ji-pub") if own else connect(p, "bench-ji-pub")
    stream = await io.streams.acreate(STREAM)

    async def publish(cmd: Command) -> Reply:
        run, n, size = int(cmd["run"]), int(cmd["n"]), int(cmd["size"])
        t0 = time.monotonic()
        push = stream.push
        for seq in range(n):  # the same item as the other systems' publishers (fan_item)
            push({"d": fan_data(run, seq, size).decode()})
        return {"t_start": t0, "t_end": time.monotonic()}

    await serve({"publish": publish})
    await io.aclose() if own else io.close()


async def ji_sub(p: dict[str, Any]) -> None:
    """``k`` clients (default 1) subscribed to the stream, each counted on its own.

    ``loop='own'``: the clients live on the worker's loop and the callback is ``async def``,
    which the client awaits on that loop, item after item, instead of on its event-lane
    thread (client/dispatch.py)."""
    counters = FanCounters(int(p.get("k", 1)))
    own = on_own_loop(p)

    def listener(counter: FanCounter) -> Callable[[Any], Any]:
        def on_data(item: Any) -> None:
            fan_seen(counter, item.data)

        async def on_data_on_loop(item: Any) -> None:
            fan_seen(counter, item.data)

        return on_data_on_loop if own else on_data

    clients = []
    for i, counter in enumerate(counters.counters):
        name = f"bench-ji-sub-{i}"
        io = await aconnect(p, name, new=True) if own else connect(p, name, new=True)
        await io.streams.asubscribe(STREAM, on_data=listener(counter), wait_timeout=15)
        clients.append(io)
    await serve(counters.handlers())
    for io in clients:
        await io.aclose() if own else io.close()


async def ji_ctx_writer(p: dict[str, Any]) -> None:
    io = connect(p, "bench-ji-ctx-writer")
    for name in p["names"]:
        await io.contexts.aset(name, {"seq": -1, "payload": "x" * 64})

    async def update(cmd: Command) -> Reply:
        t0 = time.monotonic()
        await io.contexts.aupdate(cmd["name"], {"seq": int(cmd["seq"])})
        return {"t_send": t0, "t_ack": time.monotonic()}

    await serve({"update": update}, ids={name: name for name in p["names"]})
    io.close()


async def ji_ctx_subs(p: dict[str, Any]) -> None:
    """``k`` clients subscribed to the context ``name``; ``wait`` reports when all saw a seq."""
    k = int(p["k"])
    waiter = SeqWaiter(k)

    def listener(i: int) -> Callable[[dict[str, Any]], None]:
        def on_change(data: dict[str, Any]) -> None:
            value = data.get("seq")
            if isinstance(value, int) and value >= 0:
                waiter.saw(i, value)

        return on_change

    clients = []
    for i in range(k):
        io = connect(p, f"bench-ji-ctx-sub-{i}")
        await io.contexts.asubscribe(p["name"], listener(i))
        clients.append(io)

    await serve(waiter.handlers())
    for io in clients:
        io.close()


async def ji_delta_writer(p: dict[str, Any]) -> None:
    """Sets the large context ``name`` (``keys`` entries); updates it in small deltas."""
    io = connect(p, "bench-ji-delta-writer")
    keys = int(p["keys"])
    await io.contexts.aset(p["name"], big_context(keys))

    def send(seq: int) -> Awaitable[Any]:
        return io.contexts.aupdate(p["name"], small_delta(seq, keys))

    await serve(delta_writer_handlers(send), ids={p["name"]: p["name"]})
    io.close()


async def ji_df(p: dict[str, Any]) -> None:
    """A DataFrame through a context: the writer sets it, the reader's callback receives it."""
    import pandas  # noqa: F401 - imported before the baseline, as in a kernel that uses it

    from .frames import make_frame, read_all

    io = connect(p, f"bench-ji-df-{p['side']}")
    name = p.get("name", "bench.df")
    received: dict[str, Any] = {}
    got = asyncio.Event()
    loop = asyncio.get_running_loop()
    base = {"rss": rss_bytes()}

    async def write(cmd: Command) -> Reply:
        base["rss"] = rss_bytes()
        df = make_frame(int(cmd["rows"]))
        t0 = time.monotonic()
        await io.contexts.aset(name, {"df": df})
        t1 = time.monotonic()
        return {"t_start": t0, "t_end": t1, "base_rss": base["rss"], "peak_rss": peak_rss_bytes()}

    def on_change(data: dict[str, Any]) -> None:
        df = data.get("df")
        if df is not None and len(df) == received.get("rows_expected"):
            read_all(df)
            received["t_end"] = time.monotonic()
            received["df"] = df
            loop.call_soon_threadsafe(got.set)

    async def expect(cmd: Command) -> Reply:
        base["rss"] = rss_bytes()
        received["rows_expected"] = int(cmd["rows"])
        await io.contexts.asubscribe(name, on_change)
        return {"ok": True}

    async def read(cmd: Command) -> Reply:
        return await frame_received(got, received, base["rss"], cmd)

    await serve({"write": write, "expect": expect, "read": read})
    io.close()


ROLES: dict[str, Callable[[dict[str, Any]], Awaitable[None]]] = {
    "ji-handler": ji_handler,
    "ji-caller": ji_caller,
    "ji-publisher": ji_publisher,
    "ji-sub": ji_sub,
    "ji-ctx-writer": ji_ctx_writer,
    "ji-ctx-subs": ji_ctx_subs,
    "ji-delta-writer": ji_delta_writer,
    "ji-df": ji_df,
}
