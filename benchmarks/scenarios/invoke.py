"""Scenario 1: invoke round trip Python → broker → Python handler → back, small arguments.

Systems: the hub through a minimal raw GW3 client (the hub's own cost), the hub through the
project's client (async and sync API) once it exists, NATS request/reply (nats-py) and Redis
pub/sub request/reply (redis-py). Caller and handler are separate processes for every system.
"""

from __future__ import annotations

from typing import Any

from ..procs import JupyterServer
from ..report import Column, Row, ScenarioResult, Target
from ..runner import Run, System, cpu_seconds, rotate
from ..stats import ratio, summarize_latencies, summarize_runs
from ..worker import METHOD

COLUMNS = [
    Column("p50", "p50 (µs)"),
    Column("p99", "p99 (µs)"),
    Column("mean", "mean (µs)"),
    Column("calls_per_s", "calls/s"),
]

#: the project's client as a caller: (worker ``api``, row label). "async": an asyncio program
#: (``await aconnect()`` puts the client on its loop); "async-thread": ``connect()`` then
#: ``await ainvoke`` (what a kernel does: each call crosses to the I/O thread and back)
API_ROWS = [
    ("async", "async API"),
    ("async-thread", "async API via the I/O thread (as in a kernel)"),
    ("sync", "sync API"),
]

#: messages through the broker per round trip: request in, request out, reply in, reply out
ROUTED_PER_CALL = 2


async def start_systems(r: Run, payload: str = "small") -> list[System]:
    hub = r.hub()
    systems: list[System] = []
    handler = await r.worker("gw3-handler", url=hub.url, token=hub.token)
    caller = await r.worker("gw3-caller", url=hub.url, token=hub.token, payload=payload)
    systems.append(
        System("hub · raw GW3 client", "hub", {"handler": handler, "caller": caller}, hub.pid)
    )
    if r.has_client:
        # a method name of its own: with the raw GW3 handler offering METHOD on the same hub,
        # target "best" would route the client's calls to that handler instead
        ji_method = f"{METHOD}.ji"
        ji_handler = await r.worker(
            "ji-handler", url=hub.url_with_token, token=hub.token, method=ji_method
        )
        apis = API_ROWS if payload == "small" else API_ROWS[:1]
        for api, label in apis:
            ji_caller = await r.worker(
                "ji-caller",
                url=hub.url_with_token,
                token=hub.token,
                payload=payload,
                api=api,
                method=ji_method,
            )
            systems.append(
                System(
                    f"hub · jupyter_interop client, {label}",
                    "hub-" + api,
                    {"caller": ji_caller, "handler": ji_handler if api == "async" else None},
                    hub.pid,
                )
            )
        if payload != "small":  # large values also over the socket, as between machines
            wire_method = f"{METHOD}.ji.wire"
            wire = {"url": hub.url_with_token, "token": hub.token, "shared_memory": False}
            wire_handler = await r.worker("ji-handler", method=wire_method, **wire)
            wire_caller = await r.worker(
                "ji-caller", payload=payload, api="async", method=wire_method, **wire
            )
            systems.append(
                System(
                    "hub · jupyter_interop client, async API, over the socket "
                    "(shared_memory=False)",
                    "hub-wire",
                    {"caller": wire_caller, "handler": wire_handler},
                    hub.pid,
                )
            )
    systems[0].workers["hub"] = hub
    if payload == "small":
        # the same hub hosted by the Jupyter server extension (docs/ARCHITECTURE.md, "Where the
        # hub runs")
        server = JupyterServer(r.group)
        j_handler = await r.worker("gw3-handler", url=server.url, token=server.token)
        j_caller = await r.worker("gw3-caller", url=server.url, token=server.token)
        systems.append(
            System(
                "hub in Jupyter server · raw GW3 client",
                "hub-jupyter",
                {"handler": j_handler, "caller": j_caller, "hub": server},
                server.pid,
            )
        )
    nats_responder = await r.worker("nats-responder", url=r.nats.url)
    nats_caller = await r.worker("nats-caller", url=r.nats.url, payload=payload)
    systems.append(
        System(
            "NATS request/reply (nats-py)",
            "nats",
            {"handler": nats_responder, "caller": nats_caller},
            r.nats.pid,
        )
    )
    redis_responder = await r.worker("redis-responder", url=r.redis.url)
    redis_caller = await r.worker("redis-caller", url=r.redis.url, payload=payload)
    systems.append(
        System(
            "Redis pub/sub request/reply (redis-py)",
            "redis",
            {"handler": redis_responder, "caller": redis_caller},
            r.redis.pid,
        )
    )
    return systems


async def stop_systems(r: Run, systems: list[System]) -> None:
    workers = [w for s in systems for k, w in s.workers.items() if k != "hub" and w is not None]
    await r.stop(*workers)
    for s in systems:
        hub = s.workers.get("hub")
        if hub is not None:
            hub.stop()


async def measure(r: Run, systems: list[System], n: int, warmup: int) -> None:
    for s in systems:
        await s.workers["caller"].ask(cmd="warmup", n=warmup, timeout=300)
    for rep in range(r.repeats):
        for s in rotate(systems, rep):
            cpu0 = cpu_seconds(s.broker_pid)
            reply = await s.workers["caller"].ask(cmd="run", n=n, timeout=600)
            cpu1 = cpu_seconds(s.broker_pid)
            lat = reply["lat_us"]
            stats: dict[str, Any] = summarize_latencies(lat)
            stats["calls_per_s"] = len(lat) / (sum(lat) / 1e6)
            stats["broker_cpu_us_per_msg"] = (cpu1 - cpu0) * 1e6 / (n * ROUTED_PER_CALL)
            s.runs.append(stats)


def rows_with_ratios(systems: list[System]) -> list[Row]:
    summaries = {s.kind: summarize_runs(s.runs) for s in systems}
    rows = []
    for s in systems:
        summary = summaries[s.kind]
        row = Row(s.name, summary)
        if s.kind.startswith("hub"):
            for peer, label in (("nats", "NATS p50"), ("redis", "Redis p50")):
                if peer in summaries:
                    row.ratios[label] = ratio(
                        summary["p50"]["median"], summaries[peer]["p50"]["median"]
                    )
            if "nats" in summaries:
                row.ratios["NATS p99"] = ratio(
                    summary["p99"]["median"], summaries["nats"]["p99"]["median"]
                )
        rows.append(row)
    return rows


def median_of(rows: list[Row], system_prefix: str, metric: str) -> float | None:
    for row in rows:
        if row.system.startswith(system_prefix):
            value = row.metrics.get(metric)
            if isinstance(value, dict):
                return float(value["median"])
    return None


async def run(r: Run) -> tuple[ScenarioResult, list[Target]]:
    n = r.size(400, 4000)  # a full run's p99 comes from 5 x 4000 = 20,000 calls
    systems = await start_systems(r)
    try:
        await measure(r, systems, n, warmup=r.size(100, 500))
    finally:
        await stop_systems(r, systems)
    rows = rows_with_ratios(systems)
    r.cpu_rows.extend(
        Row(
            f"{s.name}: per routed message of an invoke",
            {"cpu": summarize_runs(s.runs)["broker_cpu_us_per_msg"]},
        )
        for s in systems
    )
    result = ScenarioResult(
        "invoke",
        "1. Invoke round trip, small arguments",
        f"{n} sequential calls per repeat after warm-up; arguments "
        "`{a: 1, b: 'hello', c: [1, 2, 3]}`, the handler returns them. Caller, handler and "
        "broker are three processes.",
        COLUMNS,
        rows,
    )
    if not r.has_client:
        result.notes.append(
            "The project's Python client does not exist yet: the hub is measured through the "
            "benchmark's minimal raw GW3 client (benchmarks/gw3.py); the async/sync API rows "
            "appear once `jupyter_interop.connect` lands."
        )
    targets = []
    hub_row = next((row for row in rows if "async API" in row.system), rows[0])
    p50 = hub_row.ratios.get("NATS p50", float("nan"))
    p99 = hub_row.ratios.get("NATS p99", float("nan"))
    via = "" if "async API" in hub_row.system else "raw GW3 client (no Python client yet)"
    targets.append(
        Target(
            "Invoke p50, async API",
            "≤ 1.5\u00d7 NATS request/reply p50",
            f"{p50:.2f}\u00d7",
            p50 <= 1.5,
            via,
        )
    )
    targets.append(
        Target(
            "Invoke p99, async API",
            "≤ 2\u00d7 NATS request/reply p99",
            f"{p99:.2f}\u00d7",
            p99 <= 2.0,
            via,
        )
    )
    return result, targets
