"""Scenario 10: invokes with 64 in flight, small arguments.

The caller starts 64 calls at once (one ``asyncio.gather``), waits for all of them, and starts
the next 64; throughput is the calls over the whole time, and each call's latency is measured
from its own start. Systems as in scenario 1 (caller, handler and broker are three plain
processes): the hub through the raw GW3 client, through the project's client (async API as an
asyncio program, and through the I/O thread as a kernel uses it), and NATS request/reply with
64 requests in flight. Redis's request/reply in these workers waits for one reply at a time,
so it has no row here.
"""

from __future__ import annotations

from typing import Any

from ..report import Column, Row, ScenarioResult, Target
from ..runner import Run, System, rotate, rows_against
from ..stats import summarize_latencies
from ..worker import METHOD

WINDOW = 64

COLUMNS = [
    Column("calls_per_s", "calls/s"),
    Column("p50", "p50 per call (µs)"),
    Column("p99", "p99 per call (µs)"),
]


async def start(r: Run, owned: list[Any]) -> list[System]:
    hub = r.hub()
    owned.append(hub)
    systems = []
    handler = await r.worker("gw3-handler", url=hub.url, token=hub.token)
    caller = await r.worker("gw3-caller", url=hub.url, token=hub.token)
    owned += [handler, caller]
    systems.append(System("hub · raw GW3 client", "hub", {"caller": caller}))
    if r.has_client:
        ji_method = f"{METHOD}.ji"  # not the raw handler's method (see scenario 1)
        where = {"url": hub.url_with_token, "token": hub.token, "method": ji_method}
        owned.append(await r.worker("ji-handler", **where))
        for api, label in (
            ("async", "async API"),
            ("async-thread", "async API via the I/O thread (as in a kernel)"),
        ):
            ji_caller = await r.worker("ji-caller", api=api, **where)
            owned.append(ji_caller)
            systems.append(
                System(
                    f"hub · jupyter_interop client, {label}", "hub-" + api, {"caller": ji_caller}
                )
            )
    responder = await r.worker("nats-responder", url=r.nats.url)
    nats_caller = await r.worker("nats-caller", url=r.nats.url)
    owned += [responder, nats_caller]
    systems.append(
        System(f"NATS request/reply (nats-py), {WINDOW} in flight", "nats", {"caller": nats_caller})
    )
    return systems


async def stop(r: Run, owned: list[Any]) -> None:
    await r.stop(*(w for w in owned if hasattr(w, "ask")))
    for thing in owned:
        if not hasattr(thing, "ask"):
            thing.stop()


async def measure(r: Run, systems: list[System], n: int) -> None:
    for s in systems:  # warm-up
        await s.workers["caller"].ask(cmd="window", n=WINDOW * 4, window=WINDOW, timeout=300)
    for rep in range(r.repeats):
        for s in rotate(systems, rep):
            reply = await s.workers["caller"].ask(cmd="window", n=n, window=WINDOW, timeout=600)
            stats: dict[str, Any] = summarize_latencies(reply["lat_us"])
            stats["calls_per_s"] = n / reply["seconds"]
            s.runs.append(stats)


def rows(systems: list[System]) -> list[Row]:
    return rows_against(systems, "nats", {"NATS calls/s": "calls_per_s", "NATS p50": "p50"})


async def run(r: Run) -> tuple[ScenarioResult, list[Target]]:
    n = r.size(WINDOW * 20, WINDOW * 300)
    owned: list[Any] = []
    try:
        systems = await start(r, owned)
        await measure(r, systems, n)
    finally:
        await stop(r, owned)
    table = rows(systems)
    result = ScenarioResult(
        "inflight",
        f"10. Invokes with {WINDOW} in flight",
        f"{n} calls per repeat, {WINDOW} at a time: the caller starts {WINDOW} calls with one "
        "`asyncio.gather`, waits for them all, then starts the next "
        f"{WINDOW}. What is compared: the same windows on every system, caller, handler and "
        "broker are three plain processes, the payload is the same JSON "
        "(`{a: 1, b: 'hello', c: [1, 2, 3]}`, returned by the handler). calls/s = calls / "
        "the time all of them took; p50/p99 per call from its own start, within each repeat. "
        "\u00d7 NATS calls/s above 1 is better, \u00d7 NATS p50 below 1 is better.",
        COLUMNS,
        table,
    )
    targets = []
    ji_row = next((row for row in table if row.system.endswith("async API")), None)
    if ji_row is not None:
        value = ji_row.ratios.get("NATS calls/s", float("nan"))
        targets.append(
            Target(
                f"Invokes with {WINDOW} in flight, async API",
                "report (calls/s against NATS)",
                f"{value:.2f}\u00d7",
                None,
            )
        )
    return result, targets
