"""Benchmark worker processes: ``python -m benchmarks.worker ROLE '<json params>'``.

Each worker connects to one system (the hub through raw GW3 or the project's client, NATS or
Redis), prints ``@@bench {"ready": ...}`` and then answers one JSON command per stdin line
with exactly one ``@@bench {...}`` line. Timing happens inside the workers (``perf_counter``;
``time.monotonic`` where several processes must share a clock: on Linux both are
CLOCK_MONOTONIC, which is system-wide), so the pipes to the coordinator are never measured.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import gc
import json
import os
import resource
import sys
import threading
import time
import traceback
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import orjson

from .procs import MARK

Command = dict[str, Any]
Reply = dict[str, Any]
Handlers = dict[str, Callable[[Command], Awaitable[Reply]]]

SMALL_ARGS = {"a": 1, "b": "hello", "c": [1, 2, 3]}
METHOD = "bench.echo"
STREAM = "bench.stream"
FAN_SUBJECT = "bench.fan"
REQ_SUBJECT = "bench.req"


def emit(**fields: Any) -> None:
    sys.stdout.write(MARK + json.dumps(fields) + "\n")
    sys.stdout.flush()


def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def peak_rss_bytes() -> int:
    """Peak RSS (VmHWM) of this process, in bytes."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


async def commands() -> AsyncIterator[Command]:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=16 * 1024 * 1024)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while True:
        line = await reader.readline()
        if not line:
            return
        yield json.loads(line)


async def serve(handlers: Handlers, **ready: Any) -> None:
    """Report ready, then answer commands until ``quit`` or end of stdin."""
    emit(ready=True, pid=os.getpid(), **ready)
    async for command in commands():
        name = command.get("cmd")
        if name == "quit":
            return
        handler = handlers.get(str(name))
        if handler is None:
            emit(error=f"unknown command {name!r}")
            continue
        try:
            emit(**(await handler(command)))
        except Exception as error:
            emit(error=f"{error!r}\n{traceback.format_exc()}")


def payload(kind: str) -> Any:
    if kind == "small":
        return SMALL_ARGS
    if kind == "1mib":
        return os.urandom(1024 * 1024)
    raise ValueError(kind)


# ---------------------------------------------------------------------- shared loops


async def timed_calls(once: Callable[[], Awaitable[Any]], n: int) -> list[float]:
    """Latencies in microseconds of ``n`` sequential calls."""
    out = []
    perf = time.perf_counter_ns
    for _ in range(n):
        t0 = perf()
        await once()
        out.append((perf() - t0) / 1000)
    return out


def timed_calls_sync(once: Callable[[], Any], n: int) -> list[float]:
    out = []
    perf = time.perf_counter_ns
    for _ in range(n):
        t0 = perf()
        once()
        out.append((perf() - t0) / 1000)
    return out


async def timed_windows(
    once: Callable[[], Awaitable[Any]], n: int, window: int
) -> tuple[list[float], float]:
    """``n`` calls, ``window`` in flight at a time (one ``asyncio.gather`` per window): each
    call's latency in microseconds, and the seconds the whole took."""
    out: list[float] = []
    perf = time.perf_counter_ns

    async def timed() -> None:
        t0 = perf()
        await once()
        out.append((perf() - t0) / 1000)

    start = perf()
    for first in range(0, n, window):
        await asyncio.gather(*(timed() for _ in range(min(window, n - first))))
    return out, (perf() - start) / 1e9


def caller_handlers(
    once: Callable[[], Awaitable[Any]] | None = None, once_sync: Callable[[], Any] | None = None
) -> Handlers:
    """``warmup`` / ``run`` for a caller: ``run`` returns the latencies (µs); an async caller
    also answers ``window`` (``window`` calls in flight at a time; the latencies and the
    seconds the ``n`` calls took)."""

    async def run(cmd: Command) -> Reply:
        n = int(cmd["n"])
        gc.collect()
        if once_sync is not None:
            lat = await asyncio.to_thread(timed_calls_sync, once_sync, n)
        else:
            assert once is not None
            lat = await timed_calls(once, n)
        return {"lat_us": lat}

    async def windows(cmd: Command) -> Reply:
        assert once is not None
        gc.collect()
        lat, seconds = await timed_windows(once, int(cmd["n"]), int(cmd["window"]))
        return {"lat_us": lat, "seconds": seconds}

    handlers: Handlers = {"warmup": run, "run": run}
    if once is not None:
        handlers["window"] = windows
    return handlers


def fan_data(run: int, seq: int, size: int) -> bytes:
    head = b"%d %d " % (run, seq)
    return head + b"x" * max(0, size - len(head))


def fan_item(run: int, seq: int, size: int) -> bytes:
    """One stream item as every system carries it: the JSON object ``{"d": "<run> <seq>
    xxx..."}`` (what the project's client sends for ``stream.push({"d": ...})``)."""
    return orjson.dumps({"d": fan_data(run, seq, size).decode()})


def fan_seen(counter: FanCounter, item: dict[str, Any]) -> None:
    run, seq, _ = item["d"].split(" ", 2)
    counter.seen(int(run), int(seq))


def fan_message(counter: FanCounter, data: bytes) -> None:
    """A NATS or Redis message: one JSON item, or a JSON array of items (packed)."""
    decoded = orjson.loads(data)
    if data[:1] == b"[":
        for item in decoded:
            fan_seen(counter, item)
    else:
        fan_seen(counter, decoded)


class FanCounter:
    """Counts one run's messages on a subscriber: loss, order, first and last arrival."""

    def __init__(self) -> None:
        self.reset(-1, 0)

    def reset(self, run: int, n: int) -> None:
        # subscribers' callbacks may run on another thread (the project's client): the
        # event is set through the loop then
        self.loop = asyncio.get_running_loop()
        self.loop_thread = threading.get_ident()
        self.finished = False
        self.run = run
        self.n = n
        self.count = 0
        self.next_seq = 0
        self.out_of_order = 0
        self.foreign = 0
        self.t_first = 0.0
        self.t_last = 0.0
        self.done = asyncio.Event()

    def seen(self, run: int, seq: int) -> None:
        now = time.monotonic()
        if run != self.run:
            self.foreign += 1
            return
        if self.count == 0:
            self.t_first = now
        self.t_last = now
        self.count += 1
        if seq != self.next_seq:
            self.out_of_order += 1
        self.next_seq = seq + 1
        if self.count >= self.n and not self.finished:
            self.finished = True
            if threading.get_ident() == self.loop_thread:
                self.done.set()
            else:
                self.loop.call_soon_threadsafe(self.done.set)

    async def result(self, timeout: float, idle: float = 3.0) -> Reply:
        deadline = time.monotonic() + timeout
        last_count = -1
        while not self.done.is_set() and time.monotonic() < deadline:
            if self.count == last_count and time.monotonic() - self.t_last > idle:
                break  # nothing more is coming
            last_count = self.count
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self.done.wait(), 0.5)
        return {
            "count": self.count,
            "expected": self.n,
            "out_of_order": self.out_of_order,
            "foreign": self.foreign,
            "t_first": self.t_first,
            "t_last": self.t_last,
        }

    def handlers(self) -> Handlers:
        async def expect(cmd: Command) -> Reply:
            self.reset(int(cmd["run"]), int(cmd["n"]))
            return {"ok": True}

        async def result(cmd: Command) -> Reply:
            return await self.result(float(cmd.get("timeout", 60)))

        return {"expect": expect, "result": result}


class FanCounters:
    """The counters of several subscribers hosted by one worker process (1 → 100 runs them
    ten to a process); ``result`` reports each subscriber on its own."""

    def __init__(self, k: int) -> None:
        self.counters = [FanCounter() for _ in range(k)]

    def handlers(self) -> Handlers:
        async def expect(cmd: Command) -> Reply:
            for counter in self.counters:
                counter.reset(int(cmd["run"]), int(cmd["n"]))
            return {"ok": True}

        async def result(cmd: Command) -> Reply:
            timeout = float(cmd.get("timeout", 60))
            subs = await asyncio.gather(*(c.result(timeout) for c in self.counters))
            return {"subs": list(subs)}

        return {"expect": expect, "result": result}


async def publish_loop(
    send: Callable[[bytes], Awaitable[None]],
    run: int,
    n: int,
    size: int,
    flush: Callable[[], Awaitable[None]] | None = None,
) -> Reply:
    t0 = time.monotonic()
    for seq in range(n):
        await send(fan_data(run, seq, size))
    if flush is not None:
        await flush()
    return {"t_start": t0, "t_end": time.monotonic()}


class SeqWaiter:
    """When each of ``k`` subscribers saw each ``seq`` of a context's updates; ``wait``
    answers once all of them saw one. Callbacks may run on another thread (the project's
    client): the event is then set through the loop. ``received`` answers the bytes the
    subscribers received so far (``bytes_in``), where the role can count them."""

    def __init__(self, k: int, bytes_in: Callable[[], int] | None = None) -> None:
        self.bytes_in = bytes_in
        self.loop = asyncio.get_running_loop()
        self.loop_thread = threading.get_ident()
        self.seen: list[dict[int, float]] = [{} for _ in range(k)]
        self.progress = asyncio.Event()

    def saw(self, i: int, seq: int) -> None:
        self.seen[i][seq] = time.monotonic()
        if threading.get_ident() == self.loop_thread:
            self.progress.set()
        else:
            self.loop.call_soon_threadsafe(self.progress.set)

    async def wait(self, cmd: Command) -> Reply:
        seq = int(cmd["seq"])
        seen = self.seen
        deadline = time.monotonic() + float(cmd.get("timeout", 10))
        while not all(seq in s for s in seen):
            if time.monotonic() > deadline:
                return {"missing": sum(1 for s in seen if seq not in s), "t_all": None}
            self.progress.clear()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self.progress.wait(), 1.0)
        times = [s.pop(seq) for s in seen]
        for s in seen:  # what a burst left behind
            for old in [k for k in s if k < seq]:
                del s[old]
        return {"missing": 0, "t_all": max(times), "t_first": min(times)}

    def handlers(self) -> Handlers:
        async def received(cmd: Command) -> Reply:
            return {"bytes": None if self.bytes_in is None else self.bytes_in()}

        return {"wait": self.wait, "received": received}


def big_context(keys: int) -> dict[str, Any]:
    """The large context of the deltas scenario: ``keys`` entries of about 1 KB each."""
    return {f"k{i:05d}": {"seq": -1, "text": "x" * 1000} for i in range(keys)}


def small_delta(seq: int, keys: int) -> dict[str, Any]:
    """One small update of :func:`big_context`: three of its entries, and ``seq``."""
    delta: dict[str, Any] = {
        f"k{(seq * 7919 + j * 104729) % keys:05d}": {"seq": seq, "text": "y" * 64} for j in range(3)
    }
    delta["seq"] = seq
    return delta


def delta_writer_handlers(send: Callable[[int], Awaitable[Any]]) -> Handlers:
    """``update`` (one update, timed until ``send`` returns: the broker's acknowledgement)
    and ``burst`` (``n`` updates from ``seq``, all sent before any is awaited)."""

    async def update(cmd: Command) -> Reply:
        t0 = time.monotonic()
        await send(int(cmd["seq"]))
        return {"t_send": t0, "t_ack": time.monotonic()}

    async def burst(cmd: Command) -> Reply:
        first, n = int(cmd["seq"]), int(cmd["n"])
        t0 = time.monotonic()
        await asyncio.gather(*(send(seq) for seq in range(first, first + n)))
        return {"t_start": t0, "t_end": time.monotonic()}

    return {"update": update, "burst": burst}


# ---------------------------------------------------------------------- raw GW3 roles


async def gw3_handler(p: dict[str, Any]) -> None:
    """Registers the echo method and a stream; publishes on command."""
    from .gw3 import Gw3Client

    client = await Gw3Client.open(p["url"], p["token"], "bench-handler")

    def echo(msg: dict[str, Any]) -> Any:
        args = msg.get("arguments_kv") or {}
        blob = args.get("b64")
        if blob is not None:  # a binary handler: decode, and encode the bytes it returns
            data = base64.b64decode(blob)
            return {"b64": base64.b64encode(data).decode()}
        return args

    await client.register(METHOD, echo)
    await client.register(STREAM, streaming=True)

    def add_interest(msg: dict[str, Any]) -> Awaitable[None]:
        return client.accept(str(msg["subscription_id"]))

    client.on_add_interest = add_interest

    async def publish(cmd: Command) -> Reply:
        run, n, size = int(cmd["run"]), int(cmd["n"]), int(cmd["size"])
        ws = client.ws

        async def send(data: bytes) -> None:
            await ws.send(client.publish_frame({"d": data.decode()}))  # the same JSON item

        return await publish_loop(send, run, n, size)

    await serve({"publish": publish}, peer_id=client.peer_id)


async def gw3_caller(p: dict[str, Any]) -> None:
    from .gw3 import Gw3Client

    client = await Gw3Client.open(p["url"], p["token"], "bench-caller")
    server_id, method_id = await client.find_method(METHOD)
    if p.get("payload", "small") == "1mib":
        blob = payload("1mib")

        async def once() -> None:
            result = await client.call(
                server_id, method_id, {"b64": base64.b64encode(blob).decode()}
            )
            assert len(base64.b64decode(result["b64"])) == len(blob)
    else:

        async def once() -> None:
            await client.call(server_id, method_id, SMALL_ARGS)

    await serve(caller_handlers(once), peer_id=client.peer_id)


async def gw3_sub(p: dict[str, Any]) -> None:
    """``k`` subscriber connections (default 1), each counted on its own."""
    from .gw3 import Gw3Client

    counters = FanCounters(int(p.get("k", 1)))

    def listener(counter: FanCounter) -> Callable[[dict[str, Any]], None]:
        def on_event(msg: dict[str, Any]) -> None:
            fan_seen(counter, msg["data"])

        return on_event

    for i, counter in enumerate(counters.counters):
        client = await Gw3Client.open(p["url"], p["token"], f"bench-sub-{i}")
        client.on_event = listener(counter)
        server_id, method_id = await client.find_method(STREAM)
        await client.subscribe(server_id, method_id)
    await serve(counters.handlers())


async def gw3_ctx_writer(p: dict[str, Any]) -> None:
    """Creates contexts; ``update`` sends one update and returns its send time."""
    from .gw3 import Gw3Client

    client = await Gw3Client.open(p["url"], p["token"], "bench-ctx-writer", join_agm=False)
    ids = {}
    for name in p["names"]:
        ids[name] = await client.create_context(name, {"seq": -1, "payload": "x" * 64})

    async def update(cmd: Command) -> Reply:
        context_id = ids[cmd["name"]]
        t0 = time.monotonic()
        await client.update_context(context_id, {"seq": int(cmd["seq"])})
        return {"t_send": t0, "t_ack": time.monotonic()}

    await serve({"update": update}, ids=ids)


async def gw3_ctx_subs(p: dict[str, Any]) -> None:
    """``k`` connections subscribed to one context; ``wait`` reports when all saw a seq."""
    from .gw3 import Gw3Client

    k = int(p["k"])
    clients: list[Gw3Client] = []
    waiter = SeqWaiter(k, lambda: sum(client.bytes_in for client in clients))

    def listener(i: int) -> Callable[[dict[str, Any]], None]:
        def on_updated(msg: dict[str, Any]) -> None:
            delta = msg.get("delta") or {}
            # the hub composes a lagging subscriber's queued deltas into one: ``seq`` may be
            # in any form (docs/RELIABILITY.md, coalescing)
            value = None
            for form in ("reset", "added", "updated"):
                part = delta.get(form)
                if isinstance(part, dict) and "seq" in part:
                    value = part["seq"]
            for command in delta.get("commands") or ():
                if command.get("path") == "seq":
                    value = command.get("value")
            if value is not None:
                waiter.saw(i, int(value))

        return on_updated

    for i in range(k):
        client = await Gw3Client.open(p["url"], p["token"], f"bench-ctx-sub-{i}", join_agm=False)
        client.on_context_updated = listener(i)
        await client.subscribe_context(p["context_id"])
        clients.append(client)

    await serve(waiter.handlers())


async def gw3_delta_writer(p: dict[str, Any]) -> None:
    """Creates the large context ``name`` (``keys`` entries); updates it in small deltas."""
    from .gw3 import Gw3Client

    client = await Gw3Client.open(p["url"], p["token"], "bench-delta-writer", join_agm=False)
    keys = int(p["keys"])
    context_id = await client.create_context(p["name"], big_context(keys))

    def send(seq: int) -> Awaitable[Any]:
        return client.update_context(context_id, small_delta(seq, keys))

    await serve(delta_writer_handlers(send), ids={p["name"]: context_id})


async def gw3_holders(p: dict[str, Any]) -> None:
    """Many idle clients: each registers ``methods`` methods and follows the contexts."""
    from .gw3 import Gw3Client

    k = int(p["k"])
    methods = int(p.get("methods", 5))
    clients: list[Gw3Client] = []
    sem = asyncio.Semaphore(int(p.get("parallel", 10)))

    async def one(i: int) -> Gw3Client:
        async with sem:
            client = await Gw3Client.open(
                p["url"], p["token"], f"bench-many-{p['tag']}-{i}", join_agm=methods > 0
            )
            if methods:
                await client.request(
                    {
                        "domain": "agm",
                        "type": "register",
                        "methods": [
                            {
                                "id": str(m),
                                "name": f"bench.many.{p['tag']}.{i}.{m}",
                                "flags": {"metadata": {}, "streaming": False},
                                "object_types": [],
                            }
                            for m in range(methods)
                        ],
                    }
                )
            for context_id in p["context_ids"]:
                await client.subscribe_context(context_id)
            return client

    t0 = time.monotonic()
    clients = list(await asyncio.gather(*(one(i) for i in range(k))))
    elapsed = time.monotonic() - t0

    async def status(cmd: Command) -> Reply:
        alive = sum(1 for c in clients if not c.closed.done())
        return {"alive": alive, "rss": rss_bytes()}

    async def close(cmd: Command) -> Reply:
        await asyncio.gather(*(c.close() for c in clients), return_exceptions=True)
        return {"ok": True}

    await serve({"status": status, "close": close}, connected=len(clients), seconds=elapsed)


# ---------------------------------------------------------------------- NATS roles


async def nats_connect(url: str) -> Any:
    import nats

    return await nats.connect(
        url,
        allow_reconnect=False,
        pending_size=64 * 1024 * 1024,
        max_reconnect_attempts=0,
    )


async def nats_responder(p: dict[str, Any]) -> None:
    nc = await nats_connect(p["url"])

    async def on_request(msg: Any) -> None:
        data = msg.data
        if data[:1] == b"{":  # a JSON handler: decode the arguments, encode the result
            data = orjson.dumps(orjson.loads(data))
        await msg.respond(data)

    await nc.subscribe(METHOD, cb=on_request)
    await nc.flush()
    await serve({})


async def nats_caller(p: dict[str, Any]) -> None:
    nc = await nats_connect(p["url"])
    kind = p.get("payload", "small")
    body = orjson.dumps(SMALL_ARGS) if kind == "small" else payload(kind)

    async def once() -> None:
        reply = await nc.request(METHOD, body, timeout=10)
        if kind == "small":
            orjson.loads(reply.data)
        else:
            assert len(reply.data) == len(body)

    await serve(caller_handlers(once))


async def nats_pub(p: dict[str, Any]) -> None:
    """Publishes JSON items on ``subject``: one message per item, or ``pack`` items per
    message (a JSON array, as the project's client folds a run of items into one frame)."""
    nc = await nats_connect(p["url"])
    subject = p.get("subject", FAN_SUBJECT)
    pack = int(p.get("pack", 1))

    async def publish(cmd: Command) -> Reply:
        run, n, size = int(cmd["run"]), int(cmd["n"]), int(cmd["size"])
        t0 = time.monotonic()
        if pack <= 1:
            for seq in range(n):
                await nc.publish(subject, fan_item(run, seq, size))
        else:
            for start in range(0, n, pack):
                items = [fan_item(run, seq, size) for seq in range(start, min(n, start + pack))]
                await nc.publish(subject, b"[" + b",".join(items) + b"]")
        await nc.flush()
        return {"t_start": t0, "t_end": time.monotonic()}

    await serve({"publish": publish})


async def nats_sub(p: dict[str, Any]) -> None:
    """``k`` subscriber connections (default 1) on ``subject``, each counted on its own."""
    counters = FanCounters(int(p.get("k", 1)))

    def listener(counter: FanCounter) -> Callable[[Any], Awaitable[None]]:
        async def on_msg(msg: Any) -> None:
            fan_message(counter, msg.data)

        return on_msg

    for counter in counters.counters:
        nc = await nats_connect(p["url"])
        await nc.subscribe(
            p.get("subject", FAN_SUBJECT),
            cb=listener(counter),
            pending_msgs_limit=10_000_000,
            pending_bytes_limit=1 << 30,
        )
        await nc.flush()
    await serve(counters.handlers())


async def nats_delta_writer(p: dict[str, Any]) -> None:
    """What a NATS app does with a large shared value: it keeps its own copy, applies each
    small change to it and publishes the change (``subject``), or (``kv``) puts the whole
    value into a JetStream key-value bucket."""
    nc = await nats_connect(p["url"])
    keys = int(p["keys"])
    state = big_context(keys)
    subject = p["subject"]
    if p.get("kv"):
        kv = await nats_kv(nc, p)

        async def send(seq: int) -> None:
            state.update(small_delta(seq, keys))
            await kv.put(subject, orjson.dumps(state))
    else:

        async def send(seq: int) -> None:
            delta = small_delta(seq, keys)
            state.update(delta)
            await nc.publish(subject, orjson.dumps(delta))
            await nc.flush()  # the closest NATS has to an acknowledgement

    await send(-1)
    await serve(delta_writer_handlers(send))


async def nats_delta_sub(p: dict[str, Any]) -> None:
    """The other side: holds the same value and applies each change (a published delta) to
    it, or (``kv``) decodes each whole value the key-value bucket's watcher delivers."""
    nc = await nats_connect(p["url"])
    payload_bytes = [0]
    waiter = SeqWaiter(1, lambda: payload_bytes[0])
    state = {"value": big_context(int(p["keys"]))}
    if p.get("kv"):
        kv = await nats_kv(nc, p)
        watcher = await kv.watch(p["subject"])

        async def watch() -> None:
            async for entry in watcher:
                if entry is not None and entry.value:
                    payload_bytes[0] += len(entry.value)
                    state["value"] = orjson.loads(entry.value)
                    waiter.saw(0, int(state["value"]["seq"]))

        task = asyncio.ensure_future(watch())
    else:

        async def on_msg(msg: Any) -> None:
            payload_bytes[0] += len(msg.data)
            delta = orjson.loads(msg.data)
            state["value"].update(delta)
            waiter.saw(0, int(delta["seq"]))

        await nc.subscribe(p["subject"], cb=on_msg)
        await nc.flush()
    await serve(waiter.handlers())
    if p.get("kv"):
        task.cancel()


async def nats_kv(nc: Any, p: dict[str, Any]) -> Any:
    """The in-memory JetStream key-value bucket of the deltas scenario (one value kept)."""
    from nats.js.api import KeyValueConfig, StorageType

    js = nc.jetstream(timeout=60)
    config = KeyValueConfig(bucket=p["bucket"], history=1, storage=StorageType.MEMORY)
    return await js.create_key_value(config=config)


# ---------------------------------------------------------------------- Redis roles


async def redis_connect(url: str) -> Any:
    import redis.asyncio as redis

    return redis.Redis.from_url(url)


async def redis_responder(p: dict[str, Any]) -> None:
    r = await redis_connect(p["url"])
    pubsub = r.pubsub()
    await pubsub.subscribe(REQ_SUBJECT)
    await pubsub.get_message(timeout=5)  # the subscribe confirmation

    async def loop() -> None:
        while True:
            msg = await pubsub.get_message(ignore_subscribe_messages=True, timeout=None)
            if msg is None:
                continue
            reply_to, _, data = msg["data"].partition(b"\n")
            if data[:1] == b"{":
                data = orjson.dumps(orjson.loads(data))
            await r.publish(reply_to, data)

    task = asyncio.ensure_future(loop())
    await serve({})
    task.cancel()


async def redis_caller(p: dict[str, Any]) -> None:
    r = await redis_connect(p["url"])
    pubsub = r.pubsub()
    reply_to = f"bench.reply.{os.getpid()}".encode()
    await pubsub.subscribe(reply_to)
    await pubsub.get_message(timeout=5)
    kind = p.get("payload", "small")
    body = orjson.dumps(SMALL_ARGS) if kind == "small" else payload(kind)
    request = reply_to + b"\n" + body

    async def once() -> None:
        await r.publish(REQ_SUBJECT, request)
        while True:
            msg = await pubsub.get_message(ignore_subscribe_messages=True, timeout=10)
            if msg is not None:
                break
        if kind == "small":
            orjson.loads(msg["data"])
        else:
            assert len(msg["data"]) == len(body)

    await serve(caller_handlers(once))


async def redis_pub(p: dict[str, Any]) -> None:
    r = await redis_connect(p["url"])

    async def publish(cmd: Command) -> Reply:
        run, n, size = int(cmd["run"]), int(cmd["n"]), int(cmd["size"])
        batch = int(cmd.get("batch", 100))
        t0 = time.monotonic()
        for start in range(0, n, batch):
            pipe = r.pipeline(transaction=False)
            for seq in range(start, min(n, start + batch)):
                pipe.publish(FAN_SUBJECT, fan_item(run, seq, size))
            await pipe.execute()
        return {"t_start": t0, "t_end": time.monotonic()}

    await serve({"publish": publish})


async def redis_sub(p: dict[str, Any]) -> None:
    """``k`` subscriber connections (default 1), each counted on its own."""
    counters = FanCounters(int(p.get("k", 1)))

    async def loop(pubsub: Any, counter: FanCounter) -> None:
        while True:
            msg = await pubsub.get_message(ignore_subscribe_messages=True, timeout=None)
            if msg is None:
                continue
            fan_message(counter, msg["data"])

    tasks = []
    for counter in counters.counters:
        pubsub = (await redis_connect(p["url"])).pubsub()
        await pubsub.subscribe(FAN_SUBJECT)
        await pubsub.get_message(timeout=5)
        tasks.append(asyncio.ensure_future(loop(pubsub, counter)))
    await serve(counters.handlers())
    for task in tasks:
        task.cancel()


# ---------------------------------------------------------------------- NATS DataFrame peer

#: the NATS DataFrame row publishes the Arrow stream in messages of this size, the
#: ``max_payload`` its nats-server is started with (``procs.NatsServer``; nats-server's own
#: ceiling is 64 MB, below 100 MB, so any NATS application cuts a value this large)
NATS_DF_MESSAGE = 8 * 1024 * 1024


def arrow_messages(stream: Any, size: int) -> Any:
    """The Arrow stream (a buffer, or pieces of it) as ``bytes`` messages of ``size`` bytes
    (the last shorter): each message is built once, from the stream's own pieces."""
    from jupyter_interop.protocol import frames

    # packages from before ``frames.Pieces`` give the stream as one buffer (benchmarks/compare.py)
    pieces_type = getattr(frames, "Pieces", ())
    whole = [stream] if not isinstance(stream, pieces_type) else stream
    pieces = [memoryview(p).cast("B") for p in whole]
    out: list[Any] = []
    held = 0
    for piece in pieces:
        while piece.nbytes:
            take = min(size - held, piece.nbytes)
            out.append(piece[:take])
            held += take
            piece = piece[take:]
            if held == size:
                yield b"".join(out)
                out, held = [], 0
    if out:
        yield b"".join(out)


async def frame_received(
    got: asyncio.Event, received: dict[str, Any], base_rss: int, cmd: Command
) -> Reply:
    """B's reply to ``read`` in the DataFrame rows: once ``got`` is set, when its DataFrame
    (``received["df"]``) was whole and read (``received["t_end"]``), and its memory."""
    await asyncio.wait_for(got.wait(), float(cmd.get("timeout", 300)))
    return {
        "t_start": received["t_end"],
        "t_end": received["t_end"],
        "base_rss": base_rss,
        "peak_rss": peak_rss_bytes(),
        "rows": len(received["df"]),
    }


async def nats_df(p: dict[str, Any]) -> None:
    """A DataFrame as the same Arrow IPC bytes the project's client sends (its own encoder
    and decoder), published in :data:`NATS_DF_MESSAGE` messages and an empty one that ends
    the value; B appends them into one buffer and revives the DataFrame from it."""
    import pandas  # noqa: F401 - imported before the baseline, as in a kernel that uses it

    from jupyter_interop.protocol.frames import dataframe_placeholder, revive_dataframe

    from .frames import make_frame, read_all

    nc = await nats_connect(p["url"])
    subject = p.get("name", "bench.df")
    base = {"rss": rss_bytes()}
    received: dict[str, Any] = {"buffer": bytearray()}
    got = asyncio.Event()

    async def write(cmd: Command) -> Reply:
        base["rss"] = rss_bytes()
        df = make_frame(int(cmd["rows"]))
        t0 = time.monotonic()
        buffers: list[Any] = []
        if dataframe_placeholder(df, buffers) is None:
            raise RuntimeError("the DataFrame cannot be converted to Arrow")
        for message in arrow_messages(buffers[0], NATS_DF_MESSAGE):
            await nc.publish(subject, message)
        await nc.publish(subject, b"")
        await nc.flush()
        t1 = time.monotonic()
        return {"t_start": t0, "t_end": t1, "base_rss": base["rss"], "peak_rss": peak_rss_bytes()}

    async def on_message(msg: Any) -> None:
        if msg.data:
            received["buffer"] += msg.data
            return
        buffer = received.pop("buffer")
        placeholder = {"format": "arrow", "buffers": [0]}
        df = revive_dataframe(placeholder, [memoryview(buffer)], lambda v, b: v)
        read_all(df)
        received["t_end"] = time.monotonic()
        received["df"] = df
        got.set()

    async def expect(cmd: Command) -> Reply:
        base["rss"] = rss_bytes()
        # room for the whole value in the subscription's queue (nats-py's default is 64 MB)
        await nc.subscribe(subject, cb=on_message, pending_bytes_limit=1 << 30)
        await nc.flush()
        return {"ok": True}

    async def read(cmd: Command) -> Reply:
        return await frame_received(got, received, base["rss"], cmd)

    await serve({"write": write, "expect": expect, "read": read})
    await nc.close()


# ---------------------------------------------------------------------- pickle peer


async def pickle_roundtrip(p: dict[str, Any]) -> None:
    """The ``%store`` way: one process pickles a DataFrame to a file, another reads it."""
    import pickle

    from .frames import make_frame, read_all

    path = p["path"]

    async def write(cmd: Command) -> Reply:
        base = rss_bytes()
        df = make_frame(int(cmd["rows"]))
        t0 = time.monotonic()
        with open(path, "wb") as f:
            pickle.dump(df, f, protocol=pickle.HIGHEST_PROTOCOL)
        t1 = time.monotonic()
        return {"t_start": t0, "t_end": t1, "base_rss": base, "peak_rss": peak_rss_bytes()}

    async def read(cmd: Command) -> Reply:
        base = rss_bytes()
        t0 = time.monotonic()
        with open(path, "rb") as f:
            df = pickle.load(f)
        read_all(df)
        t1 = time.monotonic()
        return {
            "t_start": t0,
            "t_end": t1,
            "base_rss": base,
            "peak_rss": peak_rss_bytes(),
            "rows": len(df),
            "nbytes": int(df.memory_usage(index=True, deep=True).sum()),
        }

    # pandas is imported before ready, like in a kernel that uses it
    import pandas  # noqa: F401

    await serve({"write": write, "read": read})


ROLES: dict[str, Callable[[dict[str, Any]], Awaitable[None]]] = {
    "gw3-handler": gw3_handler,
    "gw3-caller": gw3_caller,
    "gw3-sub": gw3_sub,
    "gw3-ctx-writer": gw3_ctx_writer,
    "gw3-ctx-subs": gw3_ctx_subs,
    "gw3-holders": gw3_holders,
    "gw3-delta-writer": gw3_delta_writer,
    "nats-delta-writer": nats_delta_writer,
    "nats-delta-sub": nats_delta_sub,
    "nats-responder": nats_responder,
    "nats-caller": nats_caller,
    "nats-pub": nats_pub,
    "nats-sub": nats_sub,
    "redis-responder": redis_responder,
    "redis-caller": redis_caller,
    "redis-pub": redis_pub,
    "redis-sub": redis_sub,
    "nats-df": nats_df,
    "pickle": pickle_roundtrip,
}


def main() -> None:
    role = sys.argv[1]
    params = json.loads(sys.argv[2]) if len(sys.argv) > 2 else {}
    from . import ji_roles  # the project's client is imported only by its roles

    ROLES.update(ji_roles.ROLES)
    try:
        asyncio.run(ROLES[role](params))
    except Exception as error:
        emit(error=f"{error!r}\n{traceback.format_exc()}")
        raise


if __name__ == "__main__":
    main()
