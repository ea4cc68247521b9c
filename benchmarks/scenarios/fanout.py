"""Scenario 3: stream fan-out of 100-byte messages, 1 → 1 and 1 → 10 subscribers.

Every subscriber is its own process; each checks that it got every message of the run, in
order. Publishers send as fast as their client lets them (the hub publisher writes one GW3
``publish`` frame per message without waiting, nats-py buffers, the Redis publisher pipelines
100 PUBLISH commands at a time); subscribers receive one message per delivery.
"""

from __future__ import annotations

import asyncio
from typing import Any

from ..report import Column, Row, ScenarioResult, Target
from ..runner import Run, System, cpu_seconds, rotate
from ..stats import ratio, summarize_runs

SIZE = 100

COLUMNS = [
    Column("per_sub", "msg/s per subscriber"),
    Column("total", "msg/s total"),
    Column("lost", "lost", ".0f", spread=False),
    Column("out_of_order", "out of order", ".0f", spread=False),
]


async def start(r: Run, subs: int) -> list[System]:
    systems = []
    hub = r.hub()
    pub = await r.worker("gw3-handler", url=hub.url, token=hub.token)
    sub_workers = await r.workers("gw3-sub", [{"url": hub.url, "token": hub.token}] * subs)
    systems.append(
        System(
            "hub · raw GW3 client", "hub", {"pub": pub, "subs": sub_workers, "hub": hub}, hub.pid
        )
    )
    if r.has_client:
        ji_hub = r.hub()
        ji_pub = await r.worker("ji-publisher", url=ji_hub.url_with_token, token=ji_hub.token)
        ji_subs = await r.workers(
            "ji-sub", [{"url": ji_hub.url_with_token, "token": ji_hub.token}] * subs
        )
        systems.append(
            System(
                "hub · jupyter_interop client",
                "hub-ji",
                {"pub": ji_pub, "subs": ji_subs, "hub": ji_hub},
                ji_hub.pid,
            )
        )
    nats_subs = await r.workers("nats-sub", [{"url": r.nats.url}] * subs)
    nats_pub = await r.worker("nats-pub", url=r.nats.url)
    systems.append(
        System("NATS (nats-py)", "nats", {"pub": nats_pub, "subs": nats_subs}, r.nats.pid)
    )
    redis_subs = await r.workers("redis-sub", [{"url": r.redis.url}] * subs)
    redis_pub = await r.worker("redis-pub", url=r.redis.url)
    systems.append(
        System(
            "Redis pub/sub (redis-py)", "redis", {"pub": redis_pub, "subs": redis_subs}, r.redis.pid
        )
    )
    return systems


async def one_run(s: System, run_id: int, n: int) -> dict[str, Any]:
    subs = s.workers["subs"]
    await asyncio.gather(*(w.ask(cmd="expect", run=run_id, n=n) for w in subs))
    cpu0 = cpu_seconds(s.broker_pid)
    pub = await s.workers["pub"].ask(cmd="publish", run=run_id, n=n, size=SIZE, timeout=600)
    results = await asyncio.gather(*(w.ask(cmd="result", timeout=600) for w in subs))
    cpu1 = cpu_seconds(s.broker_pid)
    t0 = pub["t_start"]
    counts = [res["count"] for res in results]
    per_sub = [
        res["count"] / (res["t_last"] - t0) if res["count"] and res["t_last"] > t0 else 0.0
        for res in results
    ]
    t_end = max(res["t_last"] for res in results)
    delivered = sum(counts)
    return {
        "per_sub": sum(per_sub) / len(per_sub),
        "total": delivered / (t_end - t0) if t_end > t0 else 0.0,
        "lost": float(n * len(subs) - delivered),
        "out_of_order": float(sum(res["out_of_order"] for res in results)),
        "publish_s": pub["t_end"] - t0,
        "broker_cpu_us_per_delivery": (cpu1 - cpu0) * 1e6 / max(1, delivered),
    }


async def stop(r: Run, systems: list[System]) -> None:
    for s in systems:
        await r.stop(s.workers["pub"], *s.workers["subs"])
        hub = s.workers.get("hub")
        if hub is not None:
            hub.stop()


async def measure(r: Run, subs: int, n: int) -> list[System]:
    systems = await start(r, subs)
    try:
        run_id = 0
        for s in systems:  # warm-up
            run_id += 1
            await one_run(s, run_id, min(n, 500))
        for rep in range(r.repeats):
            for s in rotate(systems, rep):
                run_id += 1
                s.runs.append(await one_run(s, run_id, n))
    finally:
        await stop(r, systems)
    return systems


def rows(systems: list[System]) -> list[Row]:
    summaries = {s.kind: summarize_runs(s.runs) for s in systems}
    out = []
    for s in systems:
        summary = summaries[s.kind]
        row = Row(s.name, summary)
        for peer, label in (("nats", "NATS"), ("redis", "Redis")):
            if s.kind.startswith("hub") and peer in summaries:
                row.ratios[label] = ratio(
                    summary["per_sub"]["median"], summaries[peer]["per_sub"]["median"]
                )
        out.append(row)
    return out


async def run(r: Run) -> tuple[ScenarioResult, list[Target]]:
    n1 = r.size(3000, 30000)
    n10 = r.size(1000, 8000)
    one = await measure(r, 1, n1)
    ten = await measure(r, 10, n10)
    rows1, rows10 = rows(one), rows(ten)
    for label, systems in (("1 → 1", one), ("1 → 10", ten)):
        for s in systems:
            r.cpu_rows.append(
                Row(
                    f"{s.name}: per delivered stream event, {label}",
                    {"cpu": summarize_runs(s.runs)["broker_cpu_us_per_delivery"]},
                )
            )
    result = ScenarioResult(
        "fanout",
        "3. Stream fan-out, 100-byte messages",
        f"1 → 1: {n1} messages per repeat; 1 → 10: {n10} messages per repeat to each of 10 "
        "subscriber processes. msg/s per subscriber = messages received / (last arrival - "
        "publisher start), averaged over subscribers; total = all deliveries / (last arrival "
        "anywhere - publisher start). 'lost' and 'out of order': median over the repeats; "
        "the target looks at the worst repeat (0 is the requirement).",
        COLUMNS,
        rows1,
    )
    result.columns = COLUMNS
    result.extra_tables.append({"title": "1 → 10 subscribers", "columns": COLUMNS, "rows": rows10})
    result.description = "**1 → 1 subscriber** (table below), then 1 → 10.\n\n" + (
        result.description
    )
    hub_row = next(
        (row for row in rows1 if row.system.endswith("client") and "jupyter_interop" in row.system),
        rows1[0],
    )
    fan = hub_row.ratios.get("NATS", float("nan"))
    lost = sum(
        (row.metrics["lost"]["max"] or 0) + (row.metrics["out_of_order"]["max"] or 0)
        for row in rows1 + rows10
        if row.system.startswith("hub")
    )
    via = "" if "jupyter_interop" in hub_row.system else "raw GW3 client, unbatched"
    targets = [
        Target(
            "Stream fan-out 1 → 1",
            "\u2265 1.0\u00d7 NATS msg/s",
            f"{fan:.2f}\u00d7",
            fan >= 1.0,
            via,
        ),
        Target(
            "Stream fan-out: no loss, in order",
            "0 lost, 0 reordered (hub rows)",
            f"{lost:.0f} lost or reordered (worst repeat)",
            lost == 0,
        ),
    ]
    return result, targets
