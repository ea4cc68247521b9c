"""Scenario 9: notebook kernels. Invoke round trip with the caller inside a real ipykernel,
the notebook's path; and a value written in one notebook, seen by a callback in another.

The caller's timing loop runs in a cell of an ipykernel started with jupyter_client's
KernelManager (``benchmarks/kernels.py``, ``benchmarks/in_kernel.py``): the project's client
as ``connect()`` opens it in a kernel (on the interop I/O thread), called with ``await
io.methods.ainvoke`` and with the sync ``io.methods.invoke``; and nats-py request/reply, also
awaited in a cell of its own kernel (nats-py has no sync API). Handler and broker are as in
scenario 1: a plain ``def`` handler of the project's client in its own process on a standalone
hub, a nats-py responder in its own process on nats-server.

Notebook to notebook: the async caller's kernel sets a context with the sync
``io.contexts.set`` (which waits for the hub's new version) and the sync caller's kernel
follows it with ``io.contexts.subscribe``; the NATS caller's kernel publishes the same value
and waits for the server (``flush``), and a fourth kernel's subscription callback receives
it. Each value carries its writer's ``time.monotonic()``; the reader's callback takes the
difference. Writers pause ``INTERVAL`` seconds between values, alike on both systems.
"""

from __future__ import annotations

from typing import Any

from ..kernels import Kernel
from ..report import Column, Row, ScenarioResult, Target
from ..runner import Run, System, rotate, rows_against
from ..stats import percentile, summarize_latencies
from ..worker import METHOD

#: pause between two values a notebook writes (both systems)
INTERVAL = 0.002
#: the context (project) and the subject (NATS) the notebooks write
NOTEBOOK_NAME = "bench.notebook"

NOTEBOOK_COLUMNS = [
    Column("p50", "p50 (µs)"),
    Column("p99", "p99 (µs)"),
    Column("mean", "mean (µs)"),
    Column("missed", "missed", ".0f", spread=False),
    Column("out_of_order", "out of order", ".0f", spread=False),
]

COLUMNS = [
    Column("p50", "p50 (µs)"),
    Column("p99", "p99 (µs)"),
    Column("p99_all", "p99 of all calls (µs)", spread=False),
    Column("mean", "mean (µs)"),
    Column("calls_per_s", "calls/s"),
]


async def start(r: Run, owned: list[Any]) -> tuple[list[System], list[System]]:
    """The invoke systems and the notebook-to-notebook systems; what is to be stopped
    afterwards (hub, workers, kernels) goes to ``owned`` as soon as it is started."""
    hub = r.hub()
    owned.append(hub)
    owned.append(
        await r.worker("ji-handler", url=hub.url_with_token, token=hub.token, method=METHOD)
    )
    owned.append(await r.worker("nats-responder", url=r.nats.url))
    ji = {"system": "ji", "url": hub.url_with_token, "token": hub.token, "method": METHOD}
    nats = {"system": "nats", "url": r.nats.url, "name": NOTEBOOK_NAME}
    kernels: dict[str, Kernel] = {}
    for key, open_cmd in (
        ("ji-async", {**ji, "application": "bench-notebook-a", "writer": True}),
        ("ji-sync", {**ji, "application": "bench-notebook-b", "reader": True}),
        ("nats", nats),
        ("nats-reader", {**nats, "reader": True}),
    ):
        if key.startswith("ji") and not r.has_client:
            continue
        kernel = await Kernel.start(r.group)
        owned.append(kernel)
        await kernel.command(cmd="open", timeout=60, **{"name": NOTEBOOK_NAME, **open_cmd})
        kernels[key] = kernel
    systems = []
    for kind, label, sync in (
        ("ji-async", "jupyter_interop client in a kernel, `await io.methods.ainvoke`", False),
        ("ji-sync", "jupyter_interop client in a kernel, sync `io.methods.invoke`", True),
        ("nats", "NATS request/reply (nats-py) in a kernel, `await nc.request`", False),
    ):
        if kind in kernels:
            systems.append(System(label, kind, {"kernel": kernels[kind], "sync": sync}))
    notebooks = []
    if r.has_client:
        notebooks.append(
            System(
                "jupyter_interop: `io.contexts.set` in kernel A → `io.contexts.subscribe` "
                "callback in kernel B",
                "ji",
                {"writer": kernels["ji-async"], "reader": kernels["ji-sync"], "sync": True},
            )
        )
    notebooks.append(
        System(
            "NATS (nats-py): `nc.publish` + `flush` in kernel A → subscription callback in "
            "kernel B",
            "nats",
            {"writer": kernels["nats"], "reader": kernels["nats-reader"], "sync": False},
        )
    )
    return systems, notebooks


async def stop(r: Run, owned: list[Any]) -> None:
    for thing in reversed(owned):
        if isinstance(thing, Kernel):
            await thing.stop()
        elif hasattr(thing, "ask"):
            await r.stop(thing)
        else:
            thing.stop()


async def calls(s: System, n: int) -> list[float]:
    kernel: Kernel = s.workers["kernel"]
    reply = await kernel.command(cmd="run", n=n, sync=s.workers["sync"])
    return list(reply["lat_us"])


async def measure(r: Run, systems: list[System], n: int, warmup: int) -> dict[str, list[float]]:
    """Interleaved repeats; every call's latency per system, for the p99 over all calls."""
    every: dict[str, list[float]] = {s.kind: [] for s in systems}
    for s in systems:
        await calls(s, warmup)
    for rep in range(r.repeats):
        for s in rotate(systems, rep):
            lat = await calls(s, n)
            every[s.kind].extend(lat)
            stats: dict[str, Any] = summarize_latencies(lat)
            stats["calls_per_s"] = len(lat) / (sum(lat) / 1e6)
            s.runs.append(stats)
    return every


async def one_notebook_run(s: System, run_id: int, n: int) -> dict[str, Any]:
    writer: Kernel = s.workers["writer"]
    reader: Kernel = s.workers["reader"]
    await writer.command(
        cmd="write",
        sync=s.workers["sync"],
        run=run_id,
        n=n,
        interval=INTERVAL,
        name=NOTEBOOK_NAME,
    )
    reply = await reader.command(cmd="collect", run=run_id, n=n)
    stats: dict[str, Any] = summarize_latencies(reply["lat_us"])
    stats["missed"] = float(reply["missed"])
    stats["out_of_order"] = float(reply["out_of_order"])
    return stats


async def measure_notebooks(r: Run, systems: list[System], n: int) -> None:
    run_id = 0
    for s in systems:  # warm-up
        run_id += 1
        await one_notebook_run(s, run_id, min(n, 50))
    for rep in range(r.repeats):
        for s in rotate(systems, rep):
            run_id += 1
            s.runs.append(await one_notebook_run(s, run_id, n))


def notebook_rows(systems: list[System]) -> list[Row]:
    return rows_against(systems, "nats", {"NATS p50": "p50", "NATS p99": "p99"})


def rows(systems: list[System], every: dict[str, list[float]]) -> list[Row]:
    p99_all = {kind: {"p99_all": percentile(lat, 99)} for kind, lat in every.items()}
    return rows_against(
        systems,
        "nats",
        {"NATS p50": "p50", "NATS p99": "p99", "NATS p99 of all calls": "p99_all"},
        p99_all,
    )


async def run(r: Run) -> tuple[ScenarioResult, list[Target]]:
    n = r.size(300, 4000)
    n_notebook = r.size(200, 1000)
    owned: list[Any] = []
    try:
        systems, notebooks = await start(r, owned)
        every = await measure(r, systems, n, warmup=r.size(100, 500))
        await measure_notebooks(r, notebooks, n_notebook)
    finally:
        await stop(r, owned)
    table = rows(systems, every)
    result = ScenarioResult(
        "kernel",
        "9. Notebook kernels: invoke round trip, and notebook A → notebook B",
        f"{n} sequential calls per repeat after warm-up ({n * r.repeats} in all per system); "
        "arguments `{a: 1, b: 'hello', c: [1, 2, 3]}`, the handler returns them. What is "
        "compared: the caller's loop runs in a cell of a real ipykernel for every system "
        "(one kernel per row, started by jupyter_client's KernelManager), handler and broker "
        "are separate plain processes (the project's client's `def` handler and the hub; a "
        "nats-py responder and nats-server), the payload is the same JSON. The sync row "
        "blocks the kernel's main thread per call, as a cell calling `io.methods.invoke` "
        "does; nats-py has no sync API, so both project rows divide by the same awaited NATS "
        "row. p50/p99 per repeat (median [min-max] over the repeats); 'p99 of all calls' "
        "pools every repeat's calls.",
        COLUMNS,
        table,
    )
    nb_rows = notebook_rows(notebooks)
    result.description += (
        f"\n\n**Notebook A → notebook B** (second table): {n_notebook} values per repeat, "
        f"{INTERVAL * 1000:.0f} ms apart; latency from the writer's clock just before the "
        "write to the reader's callback (both kernels on one machine, one monotonic clock). "
        "What is compared: two real kernels per system and the same JSON value (run, seq, "
        "send time, 64 characters); each writer waits for its broker every time (`set` for "
        "the hub's new version, `flush` for nats-server's answer). 'missed': values a "
        "context folded into a later one (a context reader sees the latest value, not every "
        "value), median over the repeats."
    )
    result.extra_tables.append(
        {"title": "Notebook A → notebook B", "columns": NOTEBOOK_COLUMNS, "rows": nb_rows}
    )
    targets = []
    async_row = next((row for row in table if "ainvoke" in row.system), None)
    if async_row is not None:
        p50 = async_row.ratios.get("NATS p50", float("nan"))
        p99 = async_row.ratios.get("NATS p99", float("nan"))
        targets += [
            Target(
                "Invoke p50 in a kernel, `await ainvoke`",
                "\u2264 1.2\u00d7 NATS p50 in a kernel",
                f"{p50:.2f}\u00d7",
                p50 <= 1.2,
            ),
            Target(
                "Invoke p99 in a kernel, `await ainvoke`",
                "\u2264 2\u00d7 NATS p99 in a kernel",
                f"{p99:.2f}\u00d7",
                p99 <= 2.0,
            ),
        ]
    nb_row = next((row for row in nb_rows if row.system.startswith("jupyter_interop")), None)
    if nb_row is not None:
        value = nb_row.ratios.get("NATS p50", float("nan"))
        targets.append(
            Target(
                "Notebook A set → notebook B callback, p50",
                "report (against NATS publish → callback, in kernels)",
                f"{value:.2f}\u00d7",
                None,
            )
        )
    return result, targets
