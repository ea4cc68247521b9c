"""Invoke round trip of the Python client through the real Glue42 gateway and through our hub,
in one run.

    python -m benchmarks.gateways [--calls 2000] [--repeats 5] [--warmup 200]

Both gateways run on loopback at the same time: our hub (``python -m jupyter_interop hub``)
and ``@glue42/gateway-web`` from npm behind ``tests/compat/gateway/serve.js`` (needs
``npm ci --prefix tests/compat``). For each gateway a handler process registers a method with
the project's client; this process calls it with the sync API, small arguments, one call at a
time. Repeats alternate between the gateways; each row gives the median over the repeats of
the per-repeat p50 and p99 (µs), and the ratio glue42 / hub of those medians. On the real
gateway the client speaks plain GW3 (no extension is accepted there); on our hub it uses the
extensions it negotiates. Nothing here is asserted: it prints a table.
"""

from __future__ import annotations

import argparse
import re
import secrets
import shutil
import subprocess
import sys
import time
from contextlib import ExitStack
from typing import Any

from .procs import REPO, Hub, ProcessGroup, _stop_popen
from .stats import percentile, ratio, summarize_runs

SERVE = REPO / "tests" / "compat" / "gateway" / "serve.js"
METHOD = "Bench.Gateway.Echo"
HANDLER = f"""
import sys, jupyter_interop as ji
io = ji.connect(sys.argv[1], sys.argv[2], "bench-handler")
io.methods.register({METHOD!r}, lambda **kw: kw)
print("ready", flush=True)
sys.stdin.read()
io.close()
"""


def start_glue42(group: ProcessGroup, token: str) -> tuple[subprocess.Popen[str], str]:
    node = shutil.which("node")
    if node is None:
        raise SystemExit(
            "node is not on PATH: install Node.js and run npm ci --prefix tests/compat"
        )
    proc = group.track(
        subprocess.Popen(
            [node, str(SERVE), "--port", "0", "--token", token],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            cwd=SERVE.parent,
        )
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    match = re.search(r"Glue42 gateway: (ws://\S+)", line)
    if match is None:
        raise SystemExit(f"the Glue42 gateway did not start: {line!r}")
    return proc, match.group(1)


def start_handler(group: ProcessGroup, url: str, token: str) -> subprocess.Popen[str]:
    proc = group.track(
        subprocess.Popen(
            [sys.executable, "-c", HANDLER, url, token],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=group.env,
        )
    )
    assert proc.stdout is not None
    if proc.stdout.readline().strip() != "ready":
        raise SystemExit(f"the handler on {url} did not start")
    return proc


def measure(io: Any, calls: int) -> dict[str, float]:
    samples: list[float] = []
    clock = time.perf_counter
    invoke = io.methods.invoke
    args = {"symbol": "AAPL", "qty": 1}
    for _ in range(calls):
        t0 = clock()
        invoke(METHOD, args)
        samples.append((clock() - t0) * 1e6)
    return {"p50": percentile(samples, 50), "p99": percentile(samples, 99)}


def _cell(stat: dict[str, Any]) -> str:
    return f"{stat['median']:.0f} [{stat['min']:.0f}-{stat['max']:.0f}]"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=2000, help="calls per repeat")
    parser.add_argument("--repeats", type=int, default=5, help="repeats per gateway")
    parser.add_argument("--warmup", type=int, default=200, help="calls before measuring")
    options = parser.parse_args(argv)

    import jupyter_interop as ji

    group = ProcessGroup()
    with ExitStack() as stack:
        stack.callback(group.close)
        hub = Hub(group, token=secrets.token_urlsafe(12))
        token = secrets.token_urlsafe(12)
        glue42, glue42_url = start_glue42(group, token)
        targets = {"hub": (hub.url, hub.token), "glue42": (glue42_url, token)}
        clients = {}
        for name, (url, secret) in targets.items():
            handler = start_handler(group, url, secret)
            stack.callback(_stop_popen, handler, 3.0)
            io = ji.connect(url, secret, f"bench-caller-{name}", new=True)
            stack.callback(io.close)
            io.methods.invoke(METHOD, {}, wait_timeout=10)  # the handler is visible
            measure(io, options.warmup)
            clients[name] = io
        runs: dict[str, list[dict[str, float]]] = {name: [] for name in clients}
        for repeat in range(options.repeats):
            order = list(clients) if repeat % 2 == 0 else list(reversed(clients))
            for name in order:
                runs[name].append(measure(clients[name], options.calls))
        summary = {name: summarize_runs(r) for name, r in runs.items()}
        modes = {
            name: ", ".join(clients[name].status()["extensions"]) or "none (plain GW3)"
            for name in clients
        }
        _stop_popen(glue42, 3.0)

    print(
        f"invoke round trip, Python client (sync API), caller and handler in separate "
        f"processes; {options.repeats} repeats x {options.calls} calls, median of per-repeat "
        f"percentiles [min-max]\n"
    )
    print("| gateway | extensions in use | p50 (µs) | p99 (µs) |")
    print("|---|---|---|---|")
    for name, label in (("hub", "jupyter_interop hub"), ("glue42", "Glue42 gateway (gateway-web)")):
        cells = [_cell(summary[name][k]) for k in ("p50", "p99")]
        print(f"| {label} | {modes[name]} | {cells[0]} | {cells[1]} |")
    p50 = ratio(summary["glue42"]["p50"]["median"], summary["hub"]["p50"]["median"])
    p99 = ratio(summary["glue42"]["p99"]["median"], summary["hub"]["p99"]["median"])
    print(f"\nratio glue42 / hub: p50 {p50:.2f}x, p99 {p99:.2f}x")


if __name__ == "__main__":
    main()
