"""Scenario 3: stream fan-out of 100-byte items, 1 → 1, 1 → 10 and 1 → 100 subscribers.

Every system carries the same item, the JSON object ``{"d": "<run> <seq> xxx..."}`` (100
bytes of text), and compares like with like:

- **batched**: the project's client folds the items that pile up into one ``publish-many``
  of at most ``CLIENT_BATCH_MAX_MESSAGES`` (256) items per frame, and the hub writes them
  to each subscriber as batch frames; NATS gets the same packing, 256 items per message (a
  JSON array the subscriber decodes item by item);
- **unbatched**: one message per item on both sides (the project's client with
  ``batch=False``, the raw GW3 client, NATS with one message per item; Redis's publisher
  pipelines 100 PUBLISH commands, each a message of its own).

The project's client runs behind its I/O thread (``connect()``, as in a kernel) and on the
worker's own asyncio loop (``aconnect()``, pushes and ``async def`` callbacks on that loop, as
nats-py runs), a batched and an unbatched row each (:data:`JI_PLACES`).

Each subscriber checks that it got every item of the run, in order, and every table reports
what was lost. The hubs of this scenario run with slow-consumer limits like NATS's defaults
(:data:`HUB_ARGS`): by default a hub drops the stream events queued for one subscriber above
``outbox_soft_messages`` (1000, docs/RELIABILITY.md), where a nats-py subscription holds 512k
messages / 64 MiB before it drops anything. 1 → 1 and 1 → 10 run one
subscriber per process (the quick run: 1 → 10 in two processes of five); 1 → 100 (full run
only) runs ten subscriber connections in each of ten processes, for every system alike.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

try:
    from jupyter_interop.protocol.limits import CLIENT_BATCH_MAX_MESSAGES
except ImportError:  # a package from before protocol/limits.py (benchmarks/compare.py)
    from jupyter_interop.client.connection import (  # type: ignore[attr-defined,no-redef]
        BATCH_MAX_MESSAGES as CLIENT_BATCH_MAX_MESSAGES,
    )

from ..procs import Hub
from ..report import Column, Row, ScenarioResult, Target
from ..runner import Run, System, cpu_seconds, rotate
from ..stats import ratio, summarize_runs

SIZE = 100
#: items per NATS message in the batched row: the most the project's client folds into one
#: ``publish-many`` frame
PACK = CLIENT_BATCH_MAX_MESSAGES
NATS_PACKED_SUBJECT = "bench.fan.packed"
#: messages and bytes one subscriber may have waiting before NATS drops: nats-py's default
#: pending limits of a subscription
NATS_PENDING_MESSAGES = 512 * 1024
NATS_PENDING_BYTES = 64 * 1024 * 1024
#: the fan-out hubs queue as much per subscriber before dropping stream events (and are not
#: stricter before disconnecting one), so that both systems give a slow subscriber the same room
HUB_ARGS = (
    f"--StandaloneHubApp.outbox_soft_messages={NATS_PENDING_MESSAGES}",
    f"--StandaloneHubApp.outbox_soft_bytes={NATS_PENDING_BYTES}",
    f"--StandaloneHubApp.outbox_hard_messages={NATS_PENDING_MESSAGES}",
)

COLUMNS = [
    Column("per_sub", "msg/s per subscriber"),
    Column("total", "msg/s total"),
    Column("lost", "lost", ".0f", spread=False),
    Column("out_of_order", "out of order", ".0f", spread=False),
]

#: system kind -> the NATS kind it is compared with (same batching)
NATS_PEER = {
    "hub": "nats",
    "hub-ji": "nats-packed",
    "hub-ji-plain": "nats",
    "hub-ji-loop": "nats-packed",
    "hub-ji-loop-plain": "nats",
}
#: hub kinds that send one message per item, compared with Redis as well
UNBATCHED_HUB = ("hub", "hub-ji-plain", "hub-ji-loop-plain")
#: where the project's publisher and subscribers run their client (``loop`` of ji_roles.py):
#: behind the process's I/O thread (``connect()``, as in a kernel), or on the worker's own
#: asyncio loop (``aconnect()``, as an asyncio program uses it, like nats-py)
JI_PLACES = (
    ("", "thread", "client behind its I/O thread (connect(); plain callbacks on its event thread)"),
    (
        "-loop",
        "own",
        "client on the worker's own asyncio loop (aconnect(); pushes from that loop and "
        "async def callbacks awaited on it: no thread hand-off)",
    ),
)


@dataclass
class Shape:
    """One fan-out: how many subscribers, how many of them per worker process, items per
    repeat."""

    label: str
    subs: int
    per_process: int
    n: int

    @property
    def processes(self) -> int:
        return self.subs // self.per_process


async def start(r: Run, shape: Shape) -> list[System]:
    procs, k = shape.processes, shape.per_process
    systems = []
    hub = Hub(r.group, args=HUB_ARGS)
    pub = await r.worker("gw3-handler", url=hub.url, token=hub.token)
    sub_workers = await r.workers("gw3-sub", [{"url": hub.url, "token": hub.token, "k": k}] * procs)
    systems.append(
        System(
            "hub · raw GW3 client, one frame per item",
            "hub",
            {"pub": pub, "subs": sub_workers, "hub": hub},
            hub.pid,
        )
    )
    if r.has_client:
        for suffix, loop, place in JI_PLACES:
            for kind, batch, label in (
                ("hub-ji", True, f"batched (up to {PACK} items per frame)"),
                ("hub-ji-plain", False, "unbatched (batch=False: one frame per item)"),
            ):
                ji_hub = Hub(r.group, args=HUB_ARGS)
                where = {
                    "url": ji_hub.url_with_token,
                    "token": ji_hub.token,
                    "batch": batch,
                    "loop": loop,
                }
                ji_pub = await r.worker("ji-publisher", **where)
                ji_subs = await r.workers("ji-sub", [{**where, "k": k}] * procs)
                systems.append(
                    System(
                        f"hub · jupyter_interop {place}, {label}",
                        kind.replace("hub-ji", f"hub-ji{suffix}"),
                        {"pub": ji_pub, "subs": ji_subs, "hub": ji_hub},
                        ji_hub.pid,
                    )
                )
    for kind, pack, subject, label in (
        ("nats-packed", PACK, NATS_PACKED_SUBJECT, f"{PACK} items per message"),
        ("nats", 1, "bench.fan", "one message per item"),
    ):
        where = {"url": r.nats.url, "subject": subject}
        nats_subs = await r.workers("nats-sub", [{**where, "k": k}] * procs)
        nats_pub = await r.worker("nats-pub", pack=pack, **where)
        systems.append(
            System(
                f"NATS (nats-py), {label}",
                kind,
                {"pub": nats_pub, "subs": nats_subs},
                r.nats.pid,
            )
        )
    redis_subs = await r.workers("redis-sub", [{"url": r.redis.url, "k": k}] * procs)
    redis_pub = await r.worker("redis-pub", url=r.redis.url)
    systems.append(
        System(
            "Redis pub/sub (redis-py), one message per item",
            "redis",
            {"pub": redis_pub, "subs": redis_subs},
            r.redis.pid,
        )
    )
    return systems


async def one_run(s: System, run_id: int, n: int) -> dict[str, Any]:
    workers = s.workers["subs"]
    await asyncio.gather(*(w.ask(cmd="expect", run=run_id, n=n) for w in workers))
    cpu0 = cpu_seconds(s.broker_pid)
    pub = await s.workers["pub"].ask(cmd="publish", run=run_id, n=n, size=SIZE, timeout=600)
    replies = await asyncio.gather(*(w.ask(cmd="result", timeout=600) for w in workers))
    cpu1 = cpu_seconds(s.broker_pid)
    results = [sub for reply in replies for sub in reply["subs"]]
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
        "lost": float(n * len(results) - delivered),
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


async def rounds(r: Run, systems: list[System], n: int, run_id: int = 0) -> int:
    """A warm-up run of each system, then ``r.repeats`` rounds of ``n`` items, each
    starting with another system; the last run id."""
    for s in systems:  # warm-up
        run_id += 1
        await one_run(s, run_id, min(n, 500))
    for rep in range(r.repeats):
        for s in rotate(systems, rep):
            run_id += 1
            s.runs.append(await one_run(s, run_id, n))
    return run_id


async def measure(r: Run, shape: Shape) -> list[System]:
    systems = await start(r, shape)
    try:
        await rounds(r, systems, shape.n)
    finally:
        await stop(r, systems)
    return systems


def rows(systems: list[System]) -> list[Row]:
    summaries = {s.kind: summarize_runs(s.runs) for s in systems}
    out = []
    for s in systems:
        summary = summaries[s.kind]
        row = Row(s.name, summary)
        peers = [(NATS_PEER.get(s.kind), "NATS, same batching")]
        if s.kind in UNBATCHED_HUB:
            peers.append(("redis", "Redis"))
        for peer, label in peers:
            if peer in summaries:
                row.ratios[label] = ratio(
                    summary["per_sub"]["median"], summaries[peer]["per_sub"]["median"]
                )
        out.append(row)
    return out


def fanout_target(name: str, goal: float, row: Row | None) -> Target:
    value = row.ratios.get("NATS, same batching", float("nan")) if row else float("nan")
    return Target(
        name,
        f"\u2265 {goal:.1f}\u00d7 NATS msg/s, same batching",
        f"{value:.2f}\u00d7",
        value >= goal if row else None,
        "" if row else "no jupyter_interop client",
    )


async def run(r: Run) -> tuple[ScenarioResult, list[Target]]:
    shapes = [
        Shape("1 → 1", 1, 1, r.size(3000, 30000)),
        # quick: five subscribers per process, to start fewer processes
        Shape("1 → 10", 10, r.size(5, 1), r.size(1000, 8000)),
    ]
    if not r.quick:
        shapes.append(Shape("1 → 100", 100, 10, 1000))
    measured = [(shape, await measure(r, shape)) for shape in shapes]
    tables = [(shape, rows(systems)) for shape, systems in measured]
    for shape, systems in measured:
        for s in systems:
            r.cpu_rows.append(
                Row(
                    f"{s.name}: per delivered stream event, {shape.label}",
                    {"cpu": summarize_runs(s.runs)["broker_cpu_us_per_delivery"]},
                )
            )
    sizes = "; ".join(f"{shape.label}: {shape.n} items per repeat" for shape in shapes)
    shared = [
        f"{shape.label}: {shape.per_process} subscriber connections per process"
        for shape in shapes
        if shape.per_process > 1
    ]
    hosting = "one subscriber per process" + (f", except {'; '.join(shared)}" if shared else "")
    result = ScenarioResult(
        "fanout",
        "3. Stream fan-out, 100-byte items",
        f"**1 → 1 subscriber** (table below), then {', '.join(s.label for s in shapes[1:])}. "
        f"{sizes}, to each subscriber. What is compared: every system carries the same JSON "
        f"item; 'batched' rows pack up to {PACK} items per frame or message on both sides "
        "(the project's client folds what piled up into one `publish-many`, at most "
        f"{PACK} items; NATS gets exactly {PACK} items per message), 'unbatched' rows send one "
        "message per item on both sides; publishers and subscribers run in plain processes "
        f"({hosting}; alike for every system). The ratio "
        "divides by the NATS row with the same batching. msg/s per subscriber = items "
        "received / (last arrival - publisher start), averaged over subscribers; total = all "
        "deliveries / (last arrival anywhere - publisher start). 'lost' and 'out of order': "
        "median over the repeats; the target looks at the worst repeat (0 is the "
        "requirement). Slow-consumer limits alike: the hubs run with "
        f"`outbox_soft_messages={NATS_PENDING_MESSAGES}` and `outbox_soft_bytes=64 MiB` "
        "(drop a subscriber's stream events above that), nats-py's default pending limits "
        "of a subscription (512k messages / 64 MiB); a hub's default is 1000 messages "
        "(docs/RELIABILITY.md). Any loss either system has is counted in 'lost'.",
        COLUMNS,
        tables[0][1],
    )
    for shape, table in tables[1:]:
        result.extra_tables.append(
            {"title": f"{shape.label} subscribers", "columns": COLUMNS, "rows": table}
        )
    rows1 = tables[0][1]
    by_kind = {s.kind: row for s, row in zip(measured[0][1], rows1, strict=True)}
    lost = sum(
        (row.metrics["lost"]["max"] or 0) + (row.metrics["out_of_order"]["max"] or 0)
        for _, table in tables
        for row in table
        if row.system.startswith("hub")
    )
    targets = [
        fanout_target("Stream fan-out 1 → 1, batched", 1.0, by_kind.get("hub-ji")),
        fanout_target("Stream fan-out 1 → 1, unbatched", 0.6, by_kind.get("hub-ji-plain")),
        Target(
            "Stream fan-out: no loss, in order",
            "0 lost, 0 reordered (hub rows)",
            f"{lost:.0f} lost or reordered (worst repeat)",
            lost == 0,
        ),
    ]
    return result, targets
