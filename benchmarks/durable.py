"""``python -m benchmarks.durable``: what acknowledging retained updates only once durable costs.

For each hub configuration (a fresh standalone hub each, on loopback):

- **ack latency**: one writer sends one ``update-context`` at a time and waits for its
  ``success``; p50/p99 of send → ack. A subscriber of the same context records send → its
  ``context-updated`` (delivery must not wait for the disk).
- **throughput**: ``--writers`` connections, each on its own retained context, keep
  ``--window`` updates in flight for ``--seconds``; acknowledged updates per second.

Default configurations: no persistence (``memory``), ``--persist`` with
``context_ack=immediate`` (the behaviour before durable acks), ``--persist`` with
``context_ack=durable`` (the default), and the same with ``context_store_fsync=True``.
``--config NAME=ARGS`` replaces them (ARGS: the hub's command-line options, space separated).
Prints a Markdown table; ``--json FILE`` keeps it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shlex
import sys
import time
from pathlib import Path
from typing import Any

from .gw3 import Gw3Client
from .procs import Hub, ProcessGroup
from .stats import summarize_latencies

DEFAULT_CONFIGS = {
    "memory": "",
    "persist, ack immediate": "--persist --StandaloneHubApp.context_ack=immediate",
    "persist, ack durable": "--persist --StandaloneHubApp.context_ack=durable",
    "persist, ack durable, fsync": (
        "--persist --StandaloneHubApp.context_ack=durable"
        " --StandaloneHubApp.context_store_fsync=True"
    ),
}


async def ack_latency(url: str, token: str, updates: int) -> dict[str, float]:
    """Sequential updates: send → ack, and send → a subscriber has it (ms)."""
    writer = await Gw3Client.open(url, token, "durable-writer", join_agm=False)
    reader = await Gw3Client.open(url, token, "durable-reader", join_agm=False)
    context_id = await writer.create_context("bench.durable.latency", {"seq": 0})
    await reader.subscribe_context(context_id)
    seen: dict[int, float] = {}
    arrived = asyncio.Event()

    def on_updated(msg: dict[str, Any]) -> None:
        seq = msg["delta"]["updated"]["seq"]
        seen[seq] = time.perf_counter()
        arrived.set()

    reader.on_context_updated = on_updated
    acks, deliveries = [], []
    try:
        for seq in range(1, updates + 1):
            arrived.clear()
            t0 = time.perf_counter()
            await writer.update_context(context_id, {"seq": seq})
            acks.append((time.perf_counter() - t0) * 1000)
            while seq not in seen:
                await asyncio.wait_for(arrived.wait(), 10)
                arrived.clear()
            deliveries.append((seen[seq] - t0) * 1000)
    finally:
        await writer.close()
        await reader.close()
    ack = summarize_latencies(acks)
    delivered = summarize_latencies(deliveries)
    return {
        "ack_p50": ack["p50"],
        "ack_p99": ack["p99"],
        "delivery_p50": delivered["p50"],
        "delivery_p99": delivered["p99"],
    }


async def throughput(url: str, token: str, writers: int, window: int, seconds: float) -> float:
    """Acknowledged updates per second with ``writers`` * ``window`` updates in flight."""
    clients = [
        await Gw3Client.open(url, token, f"durable-load-{i}", join_agm=False)
        for i in range(writers)
    ]
    ids = [
        await c.create_context(f"bench.durable.load{i}", {"n": 0}) for i, c in enumerate(clients)
    ]
    done = 0
    stop_at = time.perf_counter() + seconds

    async def lane(client: Gw3Client, context_id: str, lane_no: int) -> None:
        nonlocal done
        n = 0
        while time.perf_counter() < stop_at:
            n += 1
            await client.update_context(context_id, {"n": n, f"lane{lane_no}": n})
            done += 1

    t0 = time.perf_counter()
    try:
        await asyncio.gather(
            *(
                lane(client, context_id, k)
                for client, context_id in zip(clients, ids, strict=True)
                for k in range(window)
            )
        )
    finally:
        for client in clients:
            await client.close()
    return done / (time.perf_counter() - t0)


async def measure(name: str, args: list[str], opts: argparse.Namespace) -> dict[str, Any]:
    group = ProcessGroup()
    try:
        store = group.tmp / f"store-{abs(hash(name))}.sqlite"
        hub = Hub(group, args=[*args, f"--StandaloneHubApp.context_store_path={store}"])
        row: dict[str, Any] = {"config": name, "args": " ".join(args)}
        row.update(await ack_latency(hub.url, hub.token, opts.updates))
        row["updates_per_s"] = await throughput(
            hub.url, hub.token, opts.writers, opts.window, opts.seconds
        )
        return row
    finally:
        group.close()


def table(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| configuration | ack p50 (ms) | ack p99 (ms) | subscriber has it p50 (ms) "
        "| subscriber p99 (ms) | updates/s |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['config']} | {r['ack_p50']:.3f} | {r['ack_p99']:.3f} | "
            f"{r['delivery_p50']:.3f} | {r['delivery_p99']:.3f} | {r['updates_per_s']:.0f} |"
        )
    return "\n".join(lines)


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.durable", description=__doc__)
    parser.add_argument("--updates", type=int, default=2000, help="sequential updates timed")
    parser.add_argument("--writers", type=int, default=8, help="connections in the load")
    parser.add_argument("--window", type=int, default=16, help="updates in flight per writer")
    parser.add_argument("--seconds", type=float, default=5.0, help="length of the load")
    parser.add_argument(
        "--config",
        action="append",
        default=[],
        metavar="NAME=ARGS",
        help="a hub configuration (repeatable); replaces the defaults",
    )
    parser.add_argument("--json", type=Path, default=None, help="also write the rows here")
    opts = parser.parse_args(argv)
    for value in opts.config:
        if "=" not in value:
            parser.error(f"--config wants NAME=ARGS, not {value!r}")
    return opts


async def main(argv: list[str]) -> int:
    opts = parse(argv)
    configs = dict(value.split("=", 1) for value in opts.config) if opts.config else DEFAULT_CONFIGS
    rows = []
    for name, args in configs.items():
        print(f"durable: {name} ...", file=sys.stderr, flush=True)
        rows.append(await measure(name, shlex.split(args), opts))
    print(table(rows))
    if opts.json is not None:
        opts.json.write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main(sys.argv[1:])))
