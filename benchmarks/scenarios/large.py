"""Scenario 5: large payloads.

(a) 1 MiB of random bytes, round trip caller → broker → handler → back. The raw GW3 client
has only JSON, so it carries the bytes as base64 (encoded and decoded on both ends, what any
plain GW3 peer must do); NATS and Redis carry raw bytes. The project's client (once it
exists) uses its binary attachments.

(b) A ~100 MB DataFrame shared from one process to another: through a hub context with the
project's client, against the ``%store`` way (pickle to a file in one process, unpickle in
the other). Both processes import pandas before the measurement, like a kernel that uses it.
"""

from __future__ import annotations

from typing import Any

from ..frames import ROW_BYTES, rows_for
from ..report import Column, Row, ScenarioResult, Target
from ..runner import Run, System, rotate
from ..stats import ratio, summarize_runs
from . import invoke

MIB = 1024 * 1024

RT_COLUMNS = [
    Column("p50", "p50 (ms)", ".2f"),
    Column("p99", "p99 (ms)", ".2f"),
]
DF_COLUMNS = [
    Column("seconds", "A → B (s)", ".2f"),
    Column("a_peak_mb", "A peak RSS (MB)"),
    Column("a_extra_x", "A peak over baseline (\u00d7 payload)", ".2f"),
    Column("b_peak_mb", "B peak RSS (MB)"),
    Column("b_extra_x", "B peak over baseline (\u00d7 payload)", ".2f"),
]


async def roundtrip(r: Run) -> list[Row]:
    systems = await invoke.start_systems(r, payload="1mib")
    try:
        await invoke.measure(r, systems, r.size(15, 60), warmup=r.size(3, 10))
    finally:
        await invoke.stop_systems(r, systems)
    rows = []
    for s in systems:
        runs = [{"p50": x["p50"] / 1000, "p99": x["p99"] / 1000} for x in s.runs]
        rows.append(
            Row(s.name + (" (base64 in JSON)" if s.kind == "hub" else ""), summarize_runs(runs))
        )
    nats = next(row for row in rows if row.system.startswith("NATS"))
    for row in rows:
        if row.system.startswith("hub"):
            row.ratios["NATS p50"] = ratio(
                row.metrics["p50"]["median"], nats.metrics["p50"]["median"]
            )
    return rows


def _mb(x: float) -> float:
    return x / 1e6


async def dataframe(r: Run, nbytes: int, notes: list[str]) -> list[Row]:
    rows_n = rows_for(nbytes)
    payload = rows_n * ROW_BYTES
    path = str(r.group.tmp / "frame.pickle")
    systems = [System("pickle to a file and back (%store)", "pickle")]
    nats_url = r.nats.url
    systems.append(
        System(
            "NATS (nats-py), the same Arrow bytes in 8 MiB messages",
            "nats",
            {},
            r.nats.pid,
        )
    )
    hub = None
    if r.has_client:
        hub = r.hub()
        systems.append(System("hub context, jupyter_interop client", "hub-ji", {}, hub.pid))
        systems.append(
            System(
                "hub context, jupyter_interop client, over the socket (shared_memory=False)",
                "hub-wire",
                {},
                hub.pid,
            )
        )

    async def once(s: System) -> dict[str, float]:
        # fresh processes each time, so that each peak RSS belongs to this transfer only
        if s.kind == "pickle":
            a = await r.worker("pickle", path=path)
            b = await r.worker("pickle", path=path)
        elif s.kind == "nats":
            subject = f"bench.df.nats.{len(s.runs)}"
            a = await r.worker("nats-df", url=nats_url, name=subject)
            b = await r.worker("nats-df", url=nats_url, name=subject)
        else:
            assert hub is not None
            # a fresh context each time: no old snapshot
            name = f"bench.df.{s.kind}.{len(s.runs)}"
            common = {
                "url": hub.url_with_token,
                "token": hub.token,
                "name": name,
                "shared_memory": s.kind != "hub-wire",
            }
            a = await r.worker("ji-df", side="writer", **common)
            b = await r.worker("ji-df", side="reader", **common)
        try:
            if s.kind != "pickle":
                await b.ask(cmd="expect", rows=rows_n, timeout=60)
            wa = await a.ask(cmd="write", rows=rows_n, timeout=600)
            wb = await b.ask(cmd="read", timeout=600)
        finally:
            await r.stop(a, b)
        if wb.get("rows") != rows_n:
            raise RuntimeError(f"{s.name}: B got {wb.get('rows')} rows, expected {rows_n}")
        return {
            "seconds": wb["t_end"] - wa["t_start"],
            "a_peak_mb": _mb(wa["peak_rss"]),
            "a_extra_x": (wa["peak_rss"] - wa["base_rss"]) / payload,
            "b_peak_mb": _mb(wb["peak_rss"]),
            "b_extra_x": (wb["peak_rss"] - wb["base_rss"]) / payload,
        }

    errors: dict[str, str] = {}
    try:
        for rep in range(r.repeats):
            for s in rotate(systems, rep):
                if s.name in errors:
                    continue
                try:
                    s.runs.append(await once(s))
                except Exception as error:  # keep the other system's numbers
                    errors[s.name] = str(error).strip().splitlines()[0][:300]
    finally:
        if hub is not None:
            hub.stop()
    notes.extend(f"{name}: failed: {text}" for name, text in errors.items())
    rows = [Row(s.name, summarize_runs(s.runs)) for s in systems if s.runs]
    pickle = next((row for row in rows if row.system == systems[0].name), None)
    nats = next((row for row in rows if row.system == systems[1].name), None)
    for row in rows:
        seconds = row.metrics["seconds"]["median"]
        if pickle is not None and row is not pickle:
            row.ratios["pickle"] = ratio(seconds, pickle.metrics["seconds"]["median"])
        if nats is not None and row.system.startswith("hub"):
            row.ratios["NATS"] = ratio(seconds, nats.metrics["seconds"]["median"])
    return rows


async def run(r: Run) -> tuple[ScenarioResult, list[Target]]:
    nbytes = r.size(10 * MIB, 100 * MIB)
    rt_rows = await roundtrip(r)
    notes: list[str] = []
    df_rows = await dataframe(r, nbytes, notes)
    result = ScenarioResult(
        "large",
        "5. Large payloads",
        "**(a) 1 MiB binary round trip** (table below), then **(b) a "
        f"{nbytes / MIB:.0f} MiB DataFrame** (8 numeric columns, {rows_for(nbytes)} rows) "
        "from process A to process B. A's time starts after it built the DataFrame; B's ends "
        "when it holds its own DataFrame and has read every value (a sum per column). A and B "
        "are fresh processes for each transfer; 'peak over baseline' is the process's peak RSS "
        "(VmHWM) minus its RSS before the DataFrame existed (pandas already imported), divided "
        "by the payload size. The pickle file lives on local disk (page cache). On one host the "
        "project's client passes values of 1 MiB or more through the hub's shared memory (the "
        "`shm` extension); the 'over the socket' rows turn that off on both ends, as between "
        "machines. The NATS row carries the same Arrow IPC bytes (the project's own encoder "
        "and decoder) A → B through nats-server, cut into 8 MiB messages as a NATS "
        "application must (nats-server runs with max_payload 8 MiB; its ceiling, 64 MB, is "
        "below the value) plus an empty message that ends it; B appends them into one buffer.",
        RT_COLUMNS,
        rt_rows,
    )
    result.notes += notes
    result.extra_tables.append(
        {
            "title": f"(b) {nbytes / MIB:.0f} MiB DataFrame, A → B",
            "columns": DF_COLUMNS,
            "rows": df_rows,
        }
    )
    targets: list[Target] = []
    hub_rt = next((row for row in rt_rows if "async API" in row.system), rt_rows[0])
    p50 = float(hub_rt.metrics["p50"]["median"])
    via = "" if "async API" in hub_rt.system else "raw GW3 client, base64 in JSON"
    wire_rt = next((row for row in rt_rows if "over the socket" in row.system), None)
    if wire_rt is not None:
        via = f"shared memory; over the socket {wire_rt.metrics['p50']['median']:.2f} ms"
    targets.append(Target("1 MiB round trip p50", "\u2264 3 ms", f"{p50:.2f} ms", p50 <= 3.0, via))
    hub_df = next((row for row in df_rows if row.system.startswith("hub")), None)
    size_note = "" if not r.quick else f"quick run: {nbytes / MIB:.0f} MiB"
    wire_df = next((row for row in df_rows if "over the socket" in row.system), None)
    if wire_df is not None:
        w: dict[str, Any] = wire_df.metrics
        wire_peak = max(float(w["a_extra_x"]["median"]), float(w["b_extra_x"]["median"]))
        wire_note = (
            f"shared memory; over the socket {float(w['seconds']['median']):.2f} s "
            f"({wire_df.ratios.get('pickle', float('nan')):.2f}\u00d7 pickle), "
            f"peak {wire_peak:.2f}\u00d7"
        )
        size_note = f"{size_note}; {wire_note}" if size_note else wire_note
        wire_x = float(wire_df.ratios.get("pickle", float("nan")))
        targets.append(
            Target(
                "100 MB DataFrame over the socket",
                "\u2264 1.5\u00d7 pickle, peak RSS \u2264 2.5\u00d7 payload",
                f"{wire_x:.2f}\u00d7 pickle, peak {wire_peak:.2f}\u00d7 "
                f"({wire_df.ratios.get('NATS', float('nan')):.2f}\u00d7 NATS)",
                wire_x <= 1.5 and wire_peak <= 2.5,
                "worse of A and B, over baseline" + ("; quick run" if r.quick else ""),
            )
        )
    if hub_df is None:
        targets.append(
            Target(
                "100 MB DataFrame A → B",
                "\u2264 1.5 s, faster than pickle",
                "not measured",
                None,
                "the hub transfer failed (see scenario 5) or no client",
            )
        )
        targets.append(
            Target(
                "DataFrame peak RSS per process",
                "\u2264 3\u00d7 payload",
                "not measured",
                None,
                "the hub transfer failed (see scenario 5) or no client",
            )
        )
    else:
        m: dict[str, Any] = hub_df.metrics
        seconds = float(m["seconds"]["median"])
        vs = hub_df.ratios.get("pickle", float("nan"))
        targets.append(
            Target(
                "100 MB DataFrame A → B",
                "\u2264 1.5 s and faster than pickle",
                f"{seconds:.2f} s ({vs:.2f}\u00d7 pickle)",
                seconds <= 1.5 and vs < 1.0,
                size_note,
            )
        )
        worst = max(float(m["a_extra_x"]["median"]), float(m["b_extra_x"]["median"]))
        targets.append(
            Target(
                "DataFrame peak RSS per process",
                "\u2264 3\u00d7 payload",
                f"{worst:.2f}\u00d7 (worse of A and B, over baseline)",
                worst <= 3.0,
                size_note,
            )
        )
    return result, targets
