"""Scenario 2: io.Connect's own JS client (``@interopio/core`` in Node) through the hub, beside
NATS's JS client (the npm package ``nats``) through nats-server: invoke round trips and stream
throughput, Node against Node.

Every Node process is a worker of ``benchmarks/node/worker.js`` (the packages come from
``tests/compat/node_modules``, set up by ``scripts/setup.sh``), driven like the Python workers.

- **Invoke**: a Node caller sends the small arguments and awaits the echo, one call at a time.
  The handler is a Python process (the raw GW3 handler, the project's client) or a Node one
  (``@interopio/core``'s ``register``); NATS's rows have the same handlers' roles: nats-py's
  responder (Python) and a nats.js responder (Node). Each hub row is divided by the NATS row
  whose handler runs in the same language.
- **Stream**: an ``@interopio/core`` publisher (``createStream`` + ``push``) and subscriber
  (``subscribe`` + ``onData``), 1 → 1, the fan-out's 100-byte JSON item. ``@interopio/core``
  cannot use the project's batching extension, so every item is a frame of its own, and NATS
  sends one message per item too (nats.js ``publish``; the subscriber decodes each). The hub runs
  with the fan-out's slow-consumer limits (``fanout.HUB_ARGS``); loss and order are counted.
"""

from __future__ import annotations

import shutil

from ..procs import REPO, Hub, Worker
from ..report import Column, Row, ScenarioResult, Target
from ..runner import Run, System, rotate, rows_against
from ..stats import summarize_latencies
from ..worker import METHOD
from . import fanout

LATENCY_COLUMNS = [
    Column("p50", "p50 (µs)"),
    Column("p99", "p99 (µs)"),
    Column("mean", "mean (µs)"),
]
STREAM_COLUMNS = [
    Column("per_sub", "msg/s"),
    Column("lost", "lost", ".0f", spread=False),
    Column("out_of_order", "out of order", ".0f", spread=False),
]
JI_METHOD = "bench.echo.ji"
NODE_METHOD = "bench.echo.node"
STREAM = "bench.node.stream"
SUBJECT = "bench.node.fan"
#: hub row kind -> the NATS row with the handler in the same language
INVOKE_PEER = {"hub-gw3": "nats-py", "hub-ji": "nats-py", "hub-node": "nats-node"}
STREAM_PEER = {"hub": "nats"}


async def invoke_systems(r: Run, hub: Hub) -> tuple[list[System], list[Worker]]:
    """The callers (one Node process per row) and the handlers they reach."""
    where = {"url": hub.url, "token": hub.token}
    handlers = [
        await r.worker("gw3-handler", **where),
        await r.node_worker("io-handler", method=NODE_METHOD, **where),
        await r.worker("nats-responder", url=r.nats.url),
        await r.node_worker("nats-responder", url=r.nats.url, subject=NODE_METHOD),
    ]
    rows = [
        ("hub-gw3", "Python raw GW3 handler", "io-caller", {"method": METHOD, **where}),
        ("hub-node", "Node @interopio/core handler", "io-caller", {"method": NODE_METHOD, **where}),
        ("nats-py", "Python nats-py responder", "nats-caller", {"subject": METHOD}),
        ("nats-node", "Node nats.js responder", "nats-caller", {"subject": NODE_METHOD}),
    ]
    if r.has_client:
        ji_where = {"url": hub.url_with_token, "token": hub.token}
        handlers.append(await r.worker("ji-handler", method=JI_METHOD, **ji_where))
        label = "Python jupyter_interop handler"
        rows.insert(1, ("hub-ji", label, "io-caller", {"method": JI_METHOD, **where}))
    systems = []
    for kind, handler, role, params in rows:
        if kind.startswith("nats"):
            params = {"url": r.nats.url, **params}
            name = f"Node nats.js → nats-server → {handler}"
        else:
            name = f"Node @interopio/core → hub → {handler}"
        systems.append(System(name, kind, {"caller": await r.node_worker(role, **params)}))
    return systems, handlers


async def measure_invoke(r: Run, hub: Hub, n: int) -> list[Row]:
    systems, handlers = await invoke_systems(r, hub)
    try:
        for s in systems:
            await s.workers["caller"].ask(cmd="warmup", n=r.size(100, 500))
        for rep in range(r.repeats):
            for s in rotate(systems, rep):
                reply = await s.workers["caller"].ask(cmd="run", n=n, timeout=600)
                s.runs.append(summarize_latencies(reply["lat_us"]))
    finally:
        await r.stop(*(s.workers["caller"] for s in systems), *handlers)
    return rows_against(systems, INVOKE_PEER, {"NATS p50": "p50", "NATS p99": "p99"})


async def measure_stream(r: Run, n: int) -> list[Row]:
    hub = Hub(r.group, args=fanout.HUB_ARGS)
    where = {"url": hub.url, "token": hub.token, "stream": STREAM}
    nats = {"url": r.nats.url, "subject": SUBJECT}
    systems = [
        System(
            "@interopio/core publisher → hub → @interopio/core subscriber, one frame per item",
            "hub",
            {
                "pub": await r.node_worker("io-publisher", **where),
                "subs": [await r.node_worker("io-sub", **where)],
            },
            hub.pid,
        ),
        System(
            "nats.js publisher → nats-server → nats.js subscriber, one message per item",
            "nats",
            {
                "subs": [await r.node_worker("nats-sub", **nats)],
                "pub": await r.node_worker("nats-pub", **nats),
            },
            r.nats.pid,
        ),
    ]
    try:
        run_id = 0
        for s in systems:  # warm-up
            run_id += 1
            await fanout.one_run(s, run_id, min(n, 500))
        for rep in range(r.repeats):
            for s in rotate(systems, rep):
                run_id += 1
                s.runs.append(await fanout.one_run(s, run_id, n))
    finally:
        await r.stop(*(w for s in systems for w in (s.workers["pub"], *s.workers["subs"])))
        hub.stop()
    return rows_against(systems, STREAM_PEER, {"NATS (nats.js) msg/s": "per_sub"})


async def run(r: Run) -> tuple[ScenarioResult, list[Target]]:
    if shutil.which("node") is None or not (REPO / "tests/compat/node_modules/nats").is_dir():
        raise RuntimeError("node or tests/compat/node_modules missing: run scripts/setup.sh")
    n = r.size(300, 4000)  # a full run's p99 comes from 5 x 4000 = 20,000 calls
    items = r.size(3000, 30000)
    hub = r.hub()
    try:
        invoke_rows = await measure_invoke(r, hub, n)
    finally:
        hub.stop()
    stream_rows = await measure_stream(r, items)
    result = ScenarioResult(
        "node",
        "2. io.Connect's JS client (Node) through the hub, beside NATS's JS client",
        f"**Invoke** (table below): {n} sequential calls per repeat after warm-up, small "
        "arguments `{a: 1, b: 'hello', c: [1, 2, 3]}` echoed by the handler. Every caller is a "
        "Node process: `@interopio/core`'s `io.interop.invoke` through the hub, or nats.js's "
        "`request` through nats-server. The handler is a process of its own, in Python or in "
        "Node; each hub row's ratio divides by the NATS row whose handler runs in the same "
        "language (Python handlers: nats-py's responder; Node handler: a nats.js responder), "
        "so caller, handler language and payload are alike; below 1\u00d7 is better. **Stream "
        f"throughput** (second table): {items} items per repeat, 1 → 1, the fan-out's 100-byte "
        "JSON item; publisher and subscriber are Node processes. `@interopio/core` cannot "
        "use the project's batching extension, so it sends one frame per item, and NATS one "
        "message per item (nats.js `publish`, the subscriber decodes each). msg/s = items "
        "received / (last arrival - publisher start); above 1\u00d7 is better. The hub queues as "
        "much per subscriber as the fan-out's hubs (nats-py's pending limits); 'lost' and "
        "'out of order' are medians over the repeats.",
        LATENCY_COLUMNS,
        invoke_rows,
    )
    result.extra_tables.append(
        {
            "title": "Stream throughput, one message per item, 1 → 1 (Node → Node)",
            "columns": STREAM_COLUMNS,
            "rows": stream_rows,
        }
    )
    return result, []
