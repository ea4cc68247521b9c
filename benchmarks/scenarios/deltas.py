"""Scenario 11: a large context (about 10 MB: 10,000 entries of 1 KB) updated in small deltas.

Each update changes three entries and a ``seq`` key (about 300 bytes of JSON); one writer,
one subscriber, each a process of its own. Per system:

- **hub, raw GW3 client**: ``update-context`` with the delta; the subscriber gets the delta
  (the hub alone: it applies the delta to its copy and sends it on);
- **hub, jupyter_interop client**: ``io.contexts.aupdate`` with the changed keys; the
  subscriber's callback gets the whole context (the client's read-only data), as a
  notebook's does;
- **NATS, the delta published**: what a NATS app does for the same job: the writer applies the
  change to its own copy and publishes the delta (then ``flush``); the subscriber applies it to
  its copy (which starts equal to the writer's);
- **NATS JetStream key-value, the whole value put**: the writer puts the whole value in a
  bucket (in memory) per update and the subscriber's watcher decodes it: what the delta
  protocol saves.

Latency: one update at a time, from just before the writer sends it until the subscriber has
it (and the writer's acknowledgement: the hub's reply, ``flush`` for NATS, the put's ack for
the bucket). updates/s: a burst of updates all sent before any is awaited, until the
subscriber has the last.
"""

from __future__ import annotations

import math

import orjson

from ..procs import NatsServer
from ..report import Column, ScenarioResult, Target
from ..runner import Run, System, rotate, rows_against
from ..worker import big_context, small_delta
from .contexts import one_repeat

NAME = "bench.big"
SUBJECT = "bench.big"
BUCKET = "bench_big"

COLUMNS = [
    Column("p50", "update → subscriber p50 (ms)", ".2f"),
    Column("p99", "p99 (ms)", ".2f"),
    Column("ack_p50", "writer's ack p50 (ms)", ".2f"),
    Column("updates_s", "updates/s (burst)"),
    Column("payload", "payload per update (bytes)", ".0f", spread=False),
    Column("bytes_each", "bytes to subscriber per update, one at a time", ".0f"),
    Column("bytes_burst", "bytes to subscriber per update, burst", ".0f"),
]


async def start(r: Run, keys: int) -> list[System]:
    systems = []
    hub = r.hub()
    writer = await r.worker("gw3-delta-writer", url=hub.url, token=hub.token, name=NAME, keys=keys)
    sub = await r.worker(
        "gw3-ctx-subs", url=hub.url, token=hub.token, k=1, context_id=writer.info["ids"][NAME]
    )
    systems.append(
        System("hub · raw GW3 client", "hub", {"writer": writer, "subs": [sub], "hub": hub})
    )
    if r.has_client:
        ji_hub = r.hub()
        where = {"url": ji_hub.url_with_token, "token": ji_hub.token, "name": NAME}
        writer = await r.worker("ji-delta-writer", keys=keys, **where)
        sub = await r.worker("ji-ctx-subs", k=1, **where)
        systems.append(
            System(
                "hub · jupyter_interop client (the callback gets the whole context)",
                "hub-ji",
                {"writer": writer, "subs": [sub], "hub": ji_hub},
            )
        )
    nats = {"url": r.nats.url, "subject": SUBJECT, "keys": keys}
    sub = await r.worker("nats-delta-sub", **nats)
    writer = await r.worker("nats-delta-writer", **nats)
    systems.append(
        System(
            "NATS (nats-py), the same delta published, applied by the subscriber",
            "nats",
            {"writer": writer, "subs": [sub]},
        )
    )
    kv = {"url": NatsServer(r.group, jetstream=True).url, "subject": "value", "keys": keys}
    writer = await r.worker("nats-delta-writer", kv=True, bucket=BUCKET, **kv)
    sub = await r.worker("nats-delta-sub", kv=True, bucket=BUCKET, **kv)
    systems.append(
        System(
            "NATS JetStream key-value (nats-py), the whole value put per update",
            "nats-kv",
            {"writer": writer, "subs": [sub]},
        )
    )
    return systems


async def received(s: System) -> float:
    """Bytes the subscriber received so far (NaN where its role cannot count them)."""
    count = (await s.workers["subs"][0].ask(cmd="received"))["bytes"]
    return math.nan if count is None else float(count)


async def one_run(s: System, n: int, m: int, seq0: int) -> dict[str, float]:
    """``n`` updates one at a time (latency), then a burst of ``m`` (updates/s: sent back to
    back until the subscriber has the last); the bytes the subscriber received per update in
    each."""
    before = await received(s)
    out = await one_repeat(s, n, seq0)
    between = await received(s)
    sent = await s.workers["writer"].ask(cmd="burst", seq=seq0 + n, n=m, timeout=300)
    got = await s.workers["subs"][0].ask(cmd="wait", seq=seq0 + n + m - 1, timeout=120)
    if got["missing"]:
        raise RuntimeError(f"{s.name}: the burst's last update never arrived")
    out["updates_s"] = m / (got["t_all"] - sent["t_start"])
    out["bytes_each"] = (between - before) / n
    out["bytes_burst"] = (await received(s) - between) / m
    return out


async def run(r: Run) -> tuple[ScenarioResult, list[Target]]:
    keys = 10_000
    #: (latency updates, burst updates) per repeat: the whole-value rows move 10 MB each
    sizes = {"small": (r.size(40, 300), r.size(100, 1000)), "whole": (r.size(8, 40), 5)}
    value_bytes = len(orjson.dumps(big_context(keys)))
    delta_bytes = len(orjson.dumps(small_delta(0, keys)))
    systems = await start(r, keys)
    try:
        seq = 0
        for s in systems:  # warm-up
            await one_repeat(s, 3, seq)
            seq += 3
        for rep in range(r.repeats):
            for s in rotate(systems, rep):
                n, m = sizes["whole" if s.kind == "nats-kv" else "small"]
                s.runs.append(await one_run(s, n, m, seq))
                seq += n + m
    finally:
        for s in systems:
            await r.stop(s.workers["writer"], *s.workers["subs"])
            hub = s.workers.get("hub")
            if hub is not None:
                hub.stop()
    payload = {s.kind: {"payload": float(delta_bytes)} for s in systems}
    payload["nats-kv"] = {"payload": float(value_bytes)}
    rows = rows_against(
        systems,
        {"hub": "nats", "hub-ji": "nats"},
        {"NATS p50": "p50", "NATS updates/s": "updates_s"},
        payload,
    )
    (n, m), (kv_n, kv_m) = sizes["small"], sizes["whole"]
    result = ScenarioResult(
        "deltas",
        "11. A 10 MB context updated in small deltas",
        f"One context of {keys} entries of about 1 KB ({value_bytes / 2**20:.1f} MiB as "
        f"JSON); each update changes 3 entries and a `seq` key ({delta_bytes} bytes of JSON). "
        "One writer and one subscriber, each a plain process. What is compared: the hub "
        "through the raw GW3 client (the subscriber gets the delta) and through "
        "`jupyter_interop` (`io.contexts.aupdate`; the subscriber's callback gets the whole "
        "context, as in a notebook); NATS doing what a NATS app does for the same job: "
        "publishing the same delta, which the subscriber applies to its own copy, and, to "
        "show what sending deltas saves, a JetStream key-value bucket (in memory) given the "
        "whole value per update, which the subscriber's watcher decodes. Latency: "
        f"{n} updates per repeat ({kv_n} for the key-value row), one at a time, from just "
        "before the writer sends until the subscriber has it; the writer's ack is the hub's "
        "reply, `flush` for NATS, the put's acknowledgement for the bucket. updates/s: "
        f"{m} updates ({kv_m} for the key-value row) sent before any is awaited, until the "
        "subscriber has the last. Payload: the JSON of one update, without the protocol's "
        "envelope. Bytes to subscriber: what its connection received per update, counted "
        "by the subscriber (the raw GW3 client: whole GW3 frames; NATS: message payloads; "
        "`jupyter_interop` does not count them); in a burst the hub composes the queued "
        "updates of one context for a lagging subscriber into one delta (server/outbox.py). "
        "Ratios divide by the NATS row that publishes the delta (p50: below "
        "1\u00d7 is better; updates/s: above).",
        COLUMNS,
        rows,
    )
    return result, []
