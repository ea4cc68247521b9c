"""Scenario 6: many clients. 1000 connections held by a few processes, each with 5 methods
and 5 context subscriptions; hub RSS per client, and invoke p50 at 1000 clients vs at 2.

All clients share one user, so (as in io.Connect) every agm peer sees every other: joining
and registering are announced to all, which makes connecting N clients O(N²) messages.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from ..procs import Worker
from ..report import Column, Row, ScenarioResult, Target
from ..runner import Run, cpu_seconds, rss
from ..stats import ratio, summarize_latencies, summarize_runs

COLUMNS = [
    Column("p50", "invoke p50 (µs)"),
    Column("p99", "invoke p99 (µs)"),
]
CONTEXTS = [f"bench.many.ctx{i}" for i in range(5)]


async def settle(pid: int, quiet: float = 1.0, timeout: float = 300.0) -> None:
    """Wait until a process used less than 5% CPU for ``quiet`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        c0 = cpu_seconds(pid)
        await asyncio.sleep(quiet)
        if cpu_seconds(pid) - c0 < 0.05 * quiet:
            return


async def count_alive(holders: list[Worker]) -> int:
    replies = await asyncio.gather(*(h.ask(cmd="status") for h in holders))
    return sum(int(reply["alive"]) for reply in replies)


async def start_holders(
    r: Run, hub: Any, writer: Worker, total: int, procs: int, tag: str, **params: Any
) -> list[Worker]:
    """``total`` idle clients spread over ``procs`` processes, following the writer's contexts."""
    ids = list(writer.info["ids"].values())
    return list(
        await asyncio.gather(
            *(
                r.worker(
                    "gw3-holders",
                    timeout=900,
                    url=hub.url,
                    token=hub.token,
                    k=total // procs,
                    tag=f"{tag}{i}",
                    context_ids=ids,
                    **params,
                )
                for i in range(procs)
            )
        )
    )


async def rss_without_agm(r: Run, total: int, procs: int) -> float:
    """KiB of hub RSS per client that only says hello and follows 5 contexts (no agm: no
    O(N²) announcements), on a hub of its own: what a connection itself costs."""
    hub = r.hub()
    writer = await r.worker("gw3-ctx-writer", url=hub.url, token=hub.token, names=CONTEXTS)
    holders: list[Worker] = []
    try:
        await settle(hub.pid)
        before = rss(hub.pid)
        holders = await start_holders(r, hub, writer, total, procs, "x", methods=0)
        await settle(hub.pid)
        return (rss(hub.pid) - before) / total / 1024
    finally:
        await r.stop(writer, *holders)
        hub.stop()


async def run(r: Run) -> tuple[ScenarioResult, list[Target]]:
    total = r.size(100, 1000)
    procs = r.size(2, 4)
    n = r.size(400, 2000)
    no_agm_kb = await rss_without_agm(r, total, procs)
    hub = r.hub()
    handler = await r.worker("gw3-handler", url=hub.url, token=hub.token)
    caller = await r.worker("gw3-caller", url=hub.url, token=hub.token)
    writer = await r.worker("gw3-ctx-writer", url=hub.url, token=hub.token, names=CONTEXTS)
    holders: list[Worker] = []
    try:
        await caller.ask(cmd="warmup", n=r.size(100, 500))
        few = []
        for _ in range(r.repeats):
            few.append(summarize_latencies((await caller.ask(cmd="run", n=n))["lat_us"]))
        await settle(hub.pid)
        rss_before = rss(hub.pid)
        cpu0 = cpu_seconds(hub.pid)
        t0 = time.monotonic()
        holders = await start_holders(r, hub, writer, total, procs, "")
        connect_s = time.monotonic() - t0
        await settle(hub.pid)
        connect_cpu = cpu_seconds(hub.pid) - cpu0
        rss_after = rss(hub.pid)
        alive = await count_alive(holders)
        many = []
        for _ in range(r.repeats):
            many.append(summarize_latencies((await caller.ask(cmd="run", n=n))["lat_us"]))
        alive_after = await count_alive(holders)
    finally:
        await r.stop(handler, caller, writer, *holders)
        hub.stop()
    per_client_kb = (rss_after - rss_before) / total / 1024
    few_s, many_s = summarize_runs(few), summarize_runs(many)
    rows = [
        Row("hub · raw GW3 client, 2 clients (+1 context writer)", few_s),
        Row(
            f"hub · raw GW3 client, {total} more idle clients connected",
            many_s,
            {"2 clients p50": ratio(many_s["p50"]["median"], few_s["p50"]["median"])},
        ),
    ]
    result = ScenarioResult(
        "many",
        f"6. Many clients ({total} connections in {procs} processes)",
        f"Each of the {total} clients says hello, joins agm, registers 5 methods and subscribes "
        f"to 5 contexts; all of them keep reading. Invoke latency between two other clients, "
        f"{n} calls per repeat, before (2 clients) and after the {total} connected (the two "
        "phases cannot be interleaved).",
        COLUMNS,
        rows,
    )
    result.notes += [
        f"Hub RSS: {rss_before / 2**20:.1f} MiB before, {rss_after / 2**20:.1f} MiB with the "
        f"{total} clients: **{per_client_kb:.1f} KiB per idle client** (RSS growth / clients, "
        "after the hub went idle).",
        f"For comparison, on a fresh hub, {total} clients that only say hello and subscribe "
        f"to the 5 contexts (no agm, so no O(N²) announcements) cost {no_agm_kb:.1f} KiB "
        "each.",
        f"Connecting all {total} took {connect_s:.1f} s wall and {connect_cpu:.1f} s of hub CPU "
        f"({connect_cpu / total * 1000:.1f} ms per client: every join and register is "
        "announced to every other peer).",
        f"Clients alive after connecting: {alive}/{total}; after the measurement: "
        f"{alive_after}/{total}.",
    ]
    result.extra_tables.append(
        {
            "title": "Hub memory",
            "columns": [
                Column("rss_before", "hub RSS before (MiB)", ".1f"),
                Column("rss_after", "hub RSS after (MiB)", ".1f"),
                Column("per_client", "KiB per idle client", ".1f"),
                Column("no_agm", "KiB per client without agm", ".1f"),
                Column("connect_cpu", "hub CPU to connect all (s)", ".1f"),
            ],
            "rows": [
                Row(
                    "hub",
                    {
                        "rss_before": rss_before / 2**20,
                        "rss_after": rss_after / 2**20,
                        "per_client": per_client_kb,
                        "no_agm": no_agm_kb,
                        "connect_cpu": connect_cpu,
                    },
                )
            ],
        }
    )
    p50_ratio = rows[1].ratios["2 clients p50"]
    quick = f"quick run: {total} clients" if r.quick else ""
    return result, [
        Target(
            "Hub RSS per idle client",
            "\u2264 30 KB",
            f"{per_client_kb * 1.024:.1f} KB",
            per_client_kb * 1.024 <= 30,
            quick,
        ),
        Target(
            f"Invoke p50 at {total} clients vs 2",
            "\u2264 1.5\u00d7",
            f"{p50_ratio:.2f}\u00d7",
            p50_ratio <= 1.5,
            quick,
        ),
    ]
