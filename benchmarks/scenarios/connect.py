"""Scenario 8: hub CPU to connect, then disconnect, N clients (join storms).

All clients share one user, so every agm peer must learn of every other one: N joins and N
registrations mean N² announcements in all. The hub coalesces the writes of announcements per
recipient (``announce_delay``, see ``GatewayService.dispatch`` in ``server/service.py``): this
scenario measures what a storm costs the hub, in CPU seconds of its process, for N clients
that each say hello, join agm and register 5 methods (raw GW3 clients in 4 processes, 10
connecting at a time per process), then for all of them leaving.
"""

from __future__ import annotations

import time

from ..procs import Worker
from ..report import Column, Row, ScenarioResult, Target
from ..runner import Run, cpu_seconds
from ..stats import summarize_runs
from .many import count_alive, settle

COLUMNS = [
    Column("connect_cpu", "hub CPU to connect all (s)", ".2f"),
    Column("connect_wall", "wall time to connect all (s)", ".1f"),
    Column("leave_cpu", "hub CPU when all leave (s)", ".2f"),
    Column("per_client_ms", "hub CPU per client connecting (ms)", ".2f"),
]


async def one_storm(r: Run, total: int, procs: int) -> dict[str, float]:
    """A fresh hub; ``total`` clients connect, the hub settles, then they all leave."""
    hub = r.hub()
    holders: list[Worker] = []
    try:
        await settle(hub.pid)
        cpu0 = cpu_seconds(hub.pid)
        t0 = time.monotonic()
        holders = list(
            await r.workers(
                "gw3-holders",
                [
                    {
                        "timeout": 900,
                        "url": hub.url,
                        "token": hub.token,
                        "k": total // procs,
                        "tag": f"s{i}",
                        "context_ids": [],
                    }
                    for i in range(procs)
                ],
            )
        )
        connect_wall = time.monotonic() - t0
        await settle(hub.pid)
        connect_cpu = cpu_seconds(hub.pid) - cpu0
        alive = await count_alive(holders)
        if alive != total:
            raise RuntimeError(f"only {alive} of {total} clients stayed connected")
        cpu1 = cpu_seconds(hub.pid)
        await r.stop(*holders)
        holders = []
        await settle(hub.pid)
        leave_cpu = cpu_seconds(hub.pid) - cpu1
    finally:
        await r.stop(*holders)
        hub.stop()
    return {
        "connect_cpu": connect_cpu,
        "connect_wall": connect_wall,
        "leave_cpu": leave_cpu,
        "per_client_ms": connect_cpu / total * 1000,
    }


async def run(r: Run) -> tuple[ScenarioResult, list[Target]]:
    total = r.size(100, 1000)  # (quick: keeps the smoke test of --quick short)
    procs = 4
    runs = [await one_storm(r, total, procs) for _ in range(r.repeats)]
    summary = summarize_runs(runs)
    result = ScenarioResult(
        "connect",
        f"8. Join storm ({total} clients connecting, then leaving)",
        f"{total} raw GW3 clients in {procs} processes each say hello, join agm and register "
        "5 methods (one user, so every join and registration concerns every other peer); "
        "then all of them close. Hub CPU seconds from its process's CPU times, measured "
        "once the hub went idle after each phase; a fresh hub per repeat.",
        COLUMNS,
        [Row(f"hub · {total} clients", summary)],
    )
    connect_cpu = summary["connect_cpu"]["median"]
    quick = f"quick run: {total} clients" if r.quick else ""
    return result, [
        Target(
            f"Hub CPU to connect {total} clients",
            "\u2264 2 s" if not r.quick else "\u2264 0.5 s",
            f"{connect_cpu:.1f} s",
            connect_cpu <= (0.5 if r.quick else 2.0),
            quick,
        )
    ]
