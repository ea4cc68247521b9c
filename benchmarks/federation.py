"""Invoke and context-update latency and stream fan-out across two federated hubs against
the same work within one hub and NATS alone (docs/FEDERATION.md).

``python -m benchmarks.federation [--calls N] [--updates N] [--items N] [--repeats R]
[--only invoke|contexts|fanout]`` (run it under ``flock /tmp/bench.lock``): a nats-server
with JetStream, two standalone hubs joined to it.

Invoke: one server process on each hub registering ``Echo``, and one caller on hub A that
invokes, round after round, the ``Echo`` of hub A (local) and then the ``Echo`` of hub B
(across). Context update: a writer on hub A updates a context and waits until a follower sees
the new value, one update at a time; a ref-counted context followed on hub A (local, never
federated), a retained one followed on hub A (through the KV bucket and back) and on hub B
(across), and the same through NATS alone (``kv.update`` until a watch on the bucket sees
it). Each prints every round's p50 and p90 and the ratio of the p50s to the local row, with
their spread over the rounds.

Fan-out: one publisher, ten subscribers in two processes of five (the workers of
``benchmarks/scenarios/fanout.py``, 100-byte items): the publisher on hub B and the
subscribers on hub A (across), all on one hub (within), and nats-py alone, batched (runs of
up to 256 items; NATS 256 items per message) and unbatched (one frame or message per item).
Each round runs every system once, in rotation; it prints the msg/s per subscriber of each
with its spread, the items lost, and the ratio across/within per round with its spread.

Large values (``--only values [--value-mb M]``): a server process on each hub returns one
DataFrame of about M MB (three float64 columns, 100 MB by default) from ``Frame``; a caller on
hub A times ``Frame`` of hub A (within) and of hub B (across, in chunks through NATS), one
call of each per round, and prints each round's seconds and ratio with their spread.

Large context values (``--only context-values [--value-mb M]``): a writer on hub A sets a
context to ``{n, df}`` with the same DataFrame (M MB, three float64 columns) and a new ``n``
and waits until a follower has that ``n``: a ref-counted context followed on hub A (within
one hub, never federated) and a retained one followed on hub B (across: the value written
to the space's object store and read back from it by hub B), one set of each per round.
"""

from __future__ import annotations

import argparse
import asyncio
import queue
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

import jupyter_interop as ji

from .procs import Hub, NatsServer, ProcessGroup
from .runner import Run, System
from .scenarios.fanout import HUB_ARGS, NATS_PACKED_SUBJECT, PACK, Shape, rounds

SERVER = """
import sys, time
import jupyter_interop as ji
io = ji.connect(url=sys.argv[1], token=sys.argv[2], application=sys.argv[3])
io.methods.register("Echo")(lambda x: {"x": x})
time.sleep(3600)
"""


FRAME_SERVER = """
import sys, time
import numpy as np, pandas as pd
import jupyter_interop as ji
rows = int(sys.argv[4]) * 1_000_000 // 24
frame = pd.DataFrame({c: np.random.default_rng(1).standard_normal(rows) for c in "xyz"})
io = ji.connect(url=sys.argv[1], token=sys.argv[2], application=sys.argv[3])
io.methods.register("Frame")(lambda: {"frame": frame})
time.sleep(3600)
"""


def percentiles(samples: list[float]) -> tuple[float, float]:
    """(p50, p90) in microseconds."""
    ordered = sorted(samples)
    return ordered[len(ordered) // 2] * 1e6, ordered[int(len(ordered) * 0.9)] * 1e6


def timed_calls(io: ji.Interop, application: str, calls: int) -> list[float]:
    target = {"application": application}
    for _ in range(min(50, calls)):  # warm-up
        io.methods.invoke("Echo", {"x": 1}, target=target)
    samples = []
    for _ in range(calls):
        start = time.perf_counter()
        io.methods.invoke("Echo", {"x": 1}, target=target)
        samples.append(time.perf_counter() - start)
    return samples


def federated(group: ProcessGroup, server: str, *more: str) -> tuple[NatsServer, Hub, Hub]:
    """A nats-server with JetStream, two hubs joined to it, and on each hub one process
    running ``server`` (``local-a`` on hub A, ``remote-b`` on hub B) with ``more`` arguments."""
    nats = NatsServer(group, jetstream=True)
    federation = [f"--federation={nats.url}"]
    hub_a = Hub(group, args=federation)
    hub_b = Hub(group, args=federation)
    for hub, name in ((hub_a, "local-a"), (hub_b, "remote-b")):
        command = [sys.executable, "-c", server, hub.url, hub.token, name, *more]
        group.track(subprocess.Popen(command, env=group.env))
    return nats, hub_a, hub_b


def caller_on(hub: Hub, method: str, timeout: float) -> ji.Interop:
    """A client on ``hub`` once it sees ``method`` on both hubs' servers."""
    io = ji.connect(url=hub.url, token=hub.token, application="caller")
    deadline = time.monotonic() + timeout
    while len([s for m in io.methods.methods() if m.name == method for s in m.servers]) < 2:
        if time.monotonic() > deadline:
            raise SystemExit(f"the two {method} servers did not show up on hub A")
        time.sleep(0.05)
    return io


def latency(args: argparse.Namespace) -> None:
    """The invoke and context-update parts."""
    group = ProcessGroup()
    try:
        nats, hub_a, hub_b = federated(group, SERVER)
        if args.only != "invoke":
            contexts(hub_a, hub_b, nats.url, args.updates, args.repeats)
        if args.only == "contexts":
            return
        io = caller_on(hub_a, "Echo", 30)
        ratios = []
        for round_ in range(args.repeats):
            local = percentiles(timed_calls(io, "local-a", args.calls))
            across = percentiles(timed_calls(io, "remote-b", args.calls))
            ratios.append(across[0] / local[0])
            print(
                f"round {round_}: within one hub p50 {local[0]:.0f} us p90 {local[1]:.0f} us; "
                f"across hubs p50 {across[0]:.0f} us p90 {across[1]:.0f} us; "
                f"p50 ratio {ratios[-1]:.2f}",
                flush=True,
            )
        print(f"p50 across/within over {args.repeats} rounds: {spread(ratios, 2)}")
        io.close()
    finally:
        group.close()


def within_and_across(timed: Callable[[str], float], what: str, repeats: int) -> None:
    """Time ``timed("within")`` and ``timed("across")`` once each per round, after one of
    each to warm up; print each round, then the spread of each and of their ratio."""
    timed("within"), timed("across")
    got: dict[str, list[float]] = {"within": [], "across": [], "ratio": []}
    for round_ in range(repeats):
        within, across = timed("within"), timed("across")
        for key, value in (("within", within), ("across", across), ("ratio", across / within)):
            got[key].append(value)
        print(
            f"round {round_}: {what} within one hub {within:.2f} s, across hubs {across:.2f} s,"
            f" ratio {across / within:.2f}",
            flush=True,
        )
    for key, values in got.items():
        print(f"{what}, {key} over {repeats} rounds: {spread(values, 2)}")


def values(args: argparse.Namespace) -> None:
    """The large-value part: one DataFrame result within one hub and across hubs."""
    group = ProcessGroup()
    try:
        _, hub_a, _ = federated(group, FRAME_SERVER, str(args.value_mb))
        io = caller_on(hub_a, "Frame", 120)

        def timed(kind: str) -> float:
            application = "local-a" if kind == "within" else "remote-b"
            start = time.perf_counter()
            frame = io.methods.invoke("Frame", target={"application": application}, timeout=600)
            elapsed = time.perf_counter() - start
            assert len(frame.returned["frame"]) == args.value_mb * 1_000_000 // 24
            return elapsed

        within_and_across(timed, f"{args.value_mb} MB DataFrame result", args.repeats)
        io.close()
    finally:
        group.close()


def context_values(args: argparse.Namespace) -> None:
    """The large context part: a DataFrame set in a context, within one hub and across."""
    import numpy as np
    import pandas as pd

    group = ProcessGroup()
    try:
        _, hub_a, hub_b = federated(group, SERVER)
        rows = args.value_mb * 1_000_000 // 24
        frame = pd.DataFrame({c: np.random.default_rng(1).standard_normal(rows) for c in "xyz"})
        writer = ji.connect(url=hub_a.url, token=hub_a.token, application="writer")
        near = ji.connect(url=hub_a.url, token=hub_a.token, application="follower-a")
        far = ji.connect(url=hub_b.url, token=hub_b.token, application="follower-b")
        writer.contexts.create("bench-frame-local", {"n": -1}, lifetime="ref-counted")
        writer.contexts.set("bench-frame", {"n": -1})
        followers = {
            "within": ("bench-frame-local", Follower(near, "bench-frame-local")),
            "across": ("bench-frame", Follower(far, "bench-frame")),
        }
        followers["across"][1].wait(-1)
        count = iter(range(1_000_000))

        def timed(kind: str) -> float:
            name, follower = followers[kind]
            n = next(count)
            start = time.perf_counter()
            writer.contexts.set(name, {"n": n, "df": frame})
            follower.wait(n)
            return time.perf_counter() - start

        what = f"{args.value_mb} MB DataFrame set in a context, at a follower"
        within_and_across(timed, what, args.repeats)
        for io in (far, near, writer):
            io.close()
    finally:
        group.close()


class Follower:
    """The values of ``n`` a context subscription sees, in a queue."""

    def __init__(self, io: ji.Interop, name: str) -> None:
        self.seen: queue.Queue[Any] = queue.Queue()
        io.contexts.subscribe(name, lambda data: self.seen.put(data.get("n")))

    def wait(self, n: int) -> None:
        while self.seen.get(timeout=60) != n:
            pass


def timed_updates(writer: ji.Interop, name: str, follower: Follower, updates: int) -> list[float]:
    """Seconds from each update to its value at the follower, one update at a time."""
    samples = []
    for i in range(updates + min(50, updates)):  # the first ones warm up
        start = time.perf_counter()
        writer.contexts.update(name, {"n": i})
        follower.wait(i)
        samples.append(time.perf_counter() - start)
    return samples[-updates:]


async def nats_alone(url: str, updates: int) -> list[float]:
    """The same through NATS alone: ``kv.update`` until a watch on the bucket sees it."""
    import nats

    nc = await nats.connect(url)
    try:
        kv = await nc.jetstream().create_key_value(bucket="bench-alone", history=16)
        watcher = await kv.watch("n")
        await kv.put("n", b"-1")
        while (entry := await watcher.updates(timeout=30)) is None or entry.value != b"-1":
            pass
        samples = []
        for i in range(updates + min(50, updates)):
            value = str(i).encode()
            start = time.perf_counter()
            await kv.put("n", value)
            while (entry := await watcher.updates(timeout=30)) is None or entry.value != value:
                pass
            samples.append(time.perf_counter() - start)
        await watcher.stop()
        return samples[-updates:]
    finally:
        await nc.close()


def contexts(hub_a: Hub, hub_b: Hub, nats_url: str, updates: int, repeats: int) -> None:
    """Context-update rows: within hub A, federated on hub A, across to hub B, NATS alone."""
    writer = ji.connect(url=hub_a.url, token=hub_a.token, application="writer")
    near = ji.connect(url=hub_a.url, token=hub_a.token, application="follower-a")
    far = ji.connect(url=hub_b.url, token=hub_b.token, application="follower-b")
    try:
        writer.contexts.create("bench-local", {"n": -1}, lifetime="ref-counted")
        writer.contexts.set("bench-fed", {"n": -1})
        deadline = time.monotonic() + 30
        while "bench-fed" not in far.contexts.all():
            if time.monotonic() > deadline:
                raise SystemExit("the federated context did not reach hub B")
            time.sleep(0.05)
        rows = {
            "within one hub": (writer, "bench-local", Follower(near, "bench-local")),
            "federated, follower on A": (writer, "bench-fed", Follower(near, "bench-fed")),
            "federated, follower on B": (writer, "bench-fed", Follower(far, "bench-fed")),
        }
        ratios: dict[str, list[float]] = {row: [] for row in [*rows, "NATS KV alone"]}
        for round_ in range(repeats):
            p50s = {}
            for row, (io, name, follower) in rows.items():
                p50s[row] = percentiles(timed_updates(io, name, follower, updates))
            p50s["NATS KV alone"] = percentiles(asyncio.run(nats_alone(nats_url, updates)))
            local = p50s["within one hub"][0]
            for row, (p50, p90) in p50s.items():
                ratios[row].append(p50 / local)
                print(
                    f"round {round_}: context update, {row}: p50 {p50:.0f} us p90 {p90:.0f} us;"
                    f" p50 ratio to within one hub {p50 / local:.2f}",
                    flush=True,
                )
        for row, values in ratios.items():
            print(
                f"context update, {row}: p50 ratio to within one hub over {repeats} rounds: "
                f"{spread(values, 2)}"
            )
    finally:
        for io in (far, near, writer):
            io.close()


#: the fan-out shape: ten subscribers in two worker processes of five
FANOUT = Shape("1 → 10", 10, 5, 8000)


async def fanout_systems(r: Run, shape: Shape, batch: bool) -> list[System]:
    """Across (publisher on B, subscribers on A), within one hub, and NATS alone."""
    federation = [f"--federation={r.nats.url}", *HUB_ARGS]
    hub_a, hub_b = Hub(r.group, args=federation), Hub(r.group, args=federation)
    within = Hub(r.group, args=HUB_ARGS)
    systems = []
    for kind, pub_hub, sub_hub in (("across", hub_b, hub_a), ("within", within, within)):
        where = {"token": pub_hub.token, "batch": batch, "loop": "thread"}
        pub = await r.worker("ji-publisher", url=pub_hub.url_with_token, **where)
        subs = await r.workers(
            "ji-sub",
            [{"url": sub_hub.url_with_token, **where, "k": shape.per_process}] * shape.processes,
        )
        systems.append(System(kind, kind, {"pub": pub, "subs": subs}, sub_hub.pid))
    pack, subject = (PACK, NATS_PACKED_SUBJECT) if batch else (1, "bench.fan")
    where = {"url": r.nats.url, "subject": subject}
    nats_subs = await r.workers("nats-sub", [{**where, "k": shape.per_process}] * shape.processes)
    nats_pub = await r.worker("nats-pub", pack=pack, **where)
    systems.append(System("NATS", "nats", {"pub": nats_pub, "subs": nats_subs}, r.nats.pid))
    return systems


def per_round(a: System, b: System) -> list[float]:
    """``a``'s msg/s per subscriber over ``b``'s, round by round."""
    return [x["per_sub"] / y["per_sub"] for x, y in zip(a.runs, b.runs, strict=True)]


def spread(values: list[float], digits: int = 0) -> str:
    """Median and range over rounds, the one form every part of this benchmark prints."""
    med, low, high = statistics.median(values), min(values), max(values)
    return f"median {med:.{digits}f} (min {low:.{digits}f}, max {high:.{digits}f})"


async def fanout(args: argparse.Namespace) -> None:
    r = Run(quick=False, repeats=args.repeats)
    shape = Shape(FANOUT.label, FANOUT.subs, FANOUT.per_process, args.items)
    try:
        run_id = 0
        for batch in (True, False):
            label = f"batched (runs of up to {PACK} items)" if batch else "unbatched"
            systems = await fanout_systems(r, shape, batch)
            run_id = await rounds(r, systems, shape.n, run_id)
            print(f"fan-out {shape.label}, {shape.n} items per round, {label}:", flush=True)
            for s in systems:
                per_sub = [run["per_sub"] for run in s.runs]
                lost = sum(run["lost"] for run in s.runs)
                print(f"  {s.name}: msg/s per subscriber {spread(per_sub)}; lost {lost:.0f}")
            across, within, nats = systems
            ratios = per_round(across, within)
            to_nats = per_round(across, nats)
            print(
                f"  across/within per round: {', '.join(f'{x:.2f}' for x in ratios)}; "
                f"{spread(ratios, 2)}; across/NATS median {statistics.median(to_nats):.2f}",
                flush=True,
            )
            for s in systems:
                await r.stop(s.workers["pub"], *s.workers["subs"])
    finally:
        r.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=1000, help="timed calls per round and kind")
    parser.add_argument("--updates", type=int, default=300, help="timed updates per round")
    parser.add_argument("--items", type=int, default=FANOUT.n, help="fan-out items per round")
    parser.add_argument("--repeats", type=int, default=5, help="rounds")
    parser.add_argument("--value-mb", type=int, default=100, help="DataFrame size, values part")
    parser.add_argument(
        "--only",
        choices=("invoke", "contexts", "fanout", "values", "context-values"),
        help="one part only",
    )
    args = parser.parse_args()
    if args.only == "values":
        values(args)
        return
    if args.only == "context-values":
        context_values(args)
        return
    if args.only != "fanout":
        latency(args)
    if args.only in (None, "fanout"):
        asyncio.run(fanout(args))


if __name__ == "__main__":
    main()
