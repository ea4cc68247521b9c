"""Scenario 4: one context update → 50 subscribers; time until all of them have it.

The writer and the 50 subscriber connections (5 processes of 10) use the raw GW3 client. One
update at a time: the next is sent once every subscriber reported the previous one, so this
measures latency, not throughput.
"""

from __future__ import annotations

import asyncio

from ..report import Column, Row, ScenarioResult, Target
from ..runner import Run, System, rotate
from ..stats import summarize_latencies, summarize_runs

SUBSCRIBERS = 50
PER_PROCESS = 10

COLUMNS = [
    Column("p50", "all have it, p50 (ms)", ".2f"),
    Column("p99", "all have it, p99 (ms)", ".2f"),
    Column("first_p50", "first has it, p50 (ms)", ".2f"),
    Column("ack_p50", "writer's ack, p50 (ms)", ".2f"),
]


async def start(r: Run, writer_role: str, subs_role: str, name: str, kind: str) -> System:
    hub = r.hub()
    url = hub.url_with_token if kind == "hub-ji" else hub.url
    writer = await r.worker(writer_role, url=url, token=hub.token, names=["bench.ctx"])
    context_id = writer.info["ids"]["bench.ctx"]
    subs = await r.workers(
        subs_role,
        [
            {
                "url": url,
                "token": hub.token,
                "k": PER_PROCESS,
                "context_id": context_id,
                "name": "bench.ctx",
            }
        ]
        * (SUBSCRIBERS // PER_PROCESS),
    )
    return System(name, kind, {"writer": writer, "subs": subs, "hub": hub}, hub.pid)


async def one_repeat(s: System, n: int, seq0: int) -> dict[str, float]:
    all_ms, first_ms, ack_ms = [], [], []
    for seq in range(seq0, seq0 + n):
        sent = await s.workers["writer"].ask(cmd="update", name="bench.ctx", seq=seq)
        got = await asyncio.gather(
            *(w.ask(cmd="wait", seq=seq, timeout=10) for w in s.workers["subs"])
        )
        if any(g["missing"] for g in got):
            raise RuntimeError(f"update {seq} did not reach every subscriber: {got}")
        all_ms.append((max(g["t_all"] for g in got) - sent["t_send"]) * 1000)
        first_ms.append((min(g["t_first"] for g in got) - sent["t_send"]) * 1000)
        ack_ms.append((sent["t_ack"] - sent["t_send"]) * 1000)
    out = summarize_latencies(all_ms)
    out["first_p50"] = summarize_latencies(first_ms)["p50"]
    out["ack_p50"] = summarize_latencies(ack_ms)["p50"]
    return out


async def run(r: Run) -> tuple[ScenarioResult, list[Target]]:
    n = r.size(40, 300)
    systems = [await start(r, "gw3-ctx-writer", "gw3-ctx-subs", "hub · raw GW3 client", "hub")]
    if r.has_client:
        systems.append(
            await start(r, "ji-ctx-writer", "ji-ctx-subs", "hub · jupyter_interop client", "hub-ji")
        )
    try:
        seq = 0
        for s in systems:
            await one_repeat(s, 10, seq)  # warm-up
            seq += 10
        for rep in range(r.repeats):
            for s in rotate(systems, rep):
                s.runs.append(await one_repeat(s, n, seq))
                seq += n
    finally:
        for s in systems:
            await r.stop(s.workers["writer"], *s.workers["subs"])
            s.workers["hub"].stop()
    rows = [Row(s.name, summarize_runs(s.runs)) for s in systems]
    result = ScenarioResult(
        "context",
        "4. Context update to 50 subscribers",
        f"{n} updates per repeat, one at a time; {SUBSCRIBERS} subscriber connections in "
        f"{SUBSCRIBERS // PER_PROCESS} processes. Time from just before the writer sends the "
        "update until the last (and the first) subscriber decoded it.",
        COLUMNS,
        rows,
    )
    best = rows[-1]
    p50 = float(best.metrics["p50"]["median"])
    via = "" if "jupyter_interop" in best.system else "raw GW3 client (no Python client yet)"
    return result, [
        Target(
            "Context update → 50 subscribers, p50", "\u2264 5 ms", f"{p50:.2f} ms", p50 <= 5.0, via
        )
    ]
