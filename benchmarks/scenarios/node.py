"""Scenario 2: invoke from io.Connect's own JS client (@interopio/core in Node) to a Python
method and back. No peer: this shows what a JS app pays to reach a notebook.

The Node side is ``benchmarks/node/invoke.js`` with the packages installed for the
compatibility tests (``tests/compat/node_modules``, set up by ``scripts/setup.sh``). The
Python handler is the raw GW3 handler and, once it exists, the project's client.
"""

from __future__ import annotations

import asyncio
import json
import shutil

from ..procs import MARK, REPO
from ..report import Column, Row, ScenarioResult, Target
from ..runner import Run, rotate
from ..stats import summarize_latencies, summarize_runs

SCRIPT = REPO / "benchmarks" / "node" / "invoke.js"
COLUMNS = [
    Column("p50", "p50 (µs)"),
    Column("p99", "p99 (µs)"),
    Column("mean", "mean (µs)"),
]


async def node_invoke(
    url: str, token: str, method: str, warmup: int, n: int, repeats: int
) -> list[list[float]]:
    proc = await asyncio.create_subprocess_exec(
        "node",
        str(SCRIPT),
        url,
        token,
        method,
        str(warmup),
        str(n),
        str(repeats),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        cwd=str(REPO),
    )
    out, err = await asyncio.wait_for(proc.communicate(), 600)
    for line in out.decode(errors="replace").splitlines():
        if line.startswith(MARK):
            data = json.loads(line[len(MARK) :])
            if "error" in data:
                raise RuntimeError(f"node: {data['error']}")
            return list(data["runs"])
    raise RuntimeError(f"node printed no result (rc {proc.returncode}): {err.decode()[-2000:]}")


async def run(r: Run) -> tuple[ScenarioResult, list[Target]]:
    if shutil.which("node") is None or not (REPO / "tests/compat/node_modules").is_dir():
        raise RuntimeError("node or tests/compat/node_modules missing: run scripts/setup.sh")
    n = r.size(300, 2000)
    hub = r.hub()
    handlers = {"raw GW3 handler": await r.worker("gw3-handler", url=hub.url, token=hub.token)}
    if r.has_client:
        handlers["jupyter_interop client handler"] = await r.worker(
            "ji-handler", url=hub.url_with_token, token=hub.token, method="bench.echo.ji"
        )
    runs: dict[str, list[dict[str, float]]] = {name: [] for name in handlers}
    try:
        for rep in range(r.repeats):  # one Node process per repeat and handler, interleaved
            for name in rotate(list(handlers), rep):
                method = "bench.echo.ji" if "jupyter_interop" in name else "bench.echo"
                lat = await node_invoke(hub.url, hub.token, method, r.size(100, 500), n, 1)
                runs[name].append(summarize_latencies(lat[0]))
    finally:
        await r.stop(*handlers.values())
        hub.stop()
    rows = [
        Row(f"Node @interopio/core \u2192 hub \u2192 Python ({name})", summarize_runs(v))
        for name, v in runs.items()
    ]
    result = ScenarioResult(
        "node",
        "2. Invoke from io.Connect's JS client (Node) to a Python method",
        f"{n} sequential `io.interop.invoke` calls per repeat (after warm-up) with "
        "`@interopio/core` in Node; the handler runs in a Python process. No peer.",
        COLUMNS,
        rows,
    )
    return result, []
