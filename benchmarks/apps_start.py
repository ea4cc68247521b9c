"""Time from a raise to its first result when the handler must be started (docs/INTENTS.md,
"Notebooks that start on demand").

``python -m benchmarks.apps_start [--repeats N]`` runs a Jupyter server with the extension and
one notebook in its app directory that declares ``ViewChart``. Each repeat raises the intent
with no handler running (the server starts the notebook headless: kernel, cells, registration,
delivery), then raises it again (the handler now runs), then stops the notebook and waits
until the server has forgotten it. It prints the cold and warm times of every repeat, their
median and spread, how much of the cold time went to starting the kernel until it answered (the
server's ``kernel_ready``), and the cold/warm ratio.
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Any

import nbformat

import jupyter_interop as ji

from .procs import JupyterServer, ProcessGroup

INSTRUMENT = {"type": "fdc3.instrument", "id": {"ticker": "AAPL"}}
CELLS = [
    "import jupyter_interop as ji\nio = ji.connect()",
    "io.intents.add_listener('ViewChart', lambda context: {'type': 'fdc3.chart', "
    "'ticker': context['id']['ticker']}, context_types=['fdc3.instrument'])",
]


def write_app(root: Any) -> None:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nb.metadata["interop"] = {
        "intents": [{"name": "ViewChart", "contextTypes": ["fdc3.instrument"]}]
    }
    nb.cells = [nbformat.v4.new_code_cell(source) for source in CELLS]
    nbformat.write(nb, str(root / "chart.ipynb"))


def wait_stopped(io: ji.Interop, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while any(app.running for app in io.apps.list()):
        if time.monotonic() > deadline:
            raise RuntimeError("the notebook was not stopped")
        time.sleep(0.1)


def run(repeats: int) -> list[tuple[float, float, float]]:
    group = ProcessGroup()
    try:
        server = JupyterServer(group)
        write_app(group.tmp / "notebooks")
        io = ji.connect(url=server.url, token=server.token, application="bench", new=True)
        try:
            deadline = time.monotonic() + 30
            while not io.apps.list():
                if time.monotonic() > deadline:
                    raise RuntimeError("no app directory on the hub")
                time.sleep(0.1)
            times = []
            for _ in range(repeats + 1):  # the first is a warm-up (imports, caches)
                wall, t0 = time.time(), time.perf_counter()
                first = io.intents.raise_intent("ViewChart", INSTRUMENT, timeout=60)
                cold = time.perf_counter() - t0
                # the server's record: when the kernel answered (its cells started then)
                (app,) = io.apps.list()
                kernel_started = (app.running[0].kernel_ready or wall) - wall
                t0 = time.perf_counter()
                io.intents.raise_intent("ViewChart", INSTRUMENT)
                warm = time.perf_counter() - t0
                times.append((cold, warm, kernel_started))
                kernel_id = first.handler.instance.kernel_id
                assert kernel_id is not None
                io.apps.stop(kernel_id)
                wait_stopped(io)
            return times[1:]
        finally:
            io.close()
    finally:
        group.close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.apps_start", description=__doc__)
    parser.add_argument("--repeats", type=int, default=5, help="measured repeats (default 5)")
    args = parser.parse_args(argv)
    times = run(args.repeats)
    for index, (cold, warm, kernel) in enumerate(times, 1):
        print(
            f"repeat {index}: cold {cold * 1000:.0f} ms (kernel answered after {kernel * 1000:.0f}"
            f" ms), warm {warm * 1000:.1f} ms"
        )
    colds = [c for c, _, _ in times]
    warms = [w for _, w, _ in times]
    kernels = [k for _, _, k in times]
    print(
        "raise -> first result, handler started on demand: "
        f"median {statistics.median(colds):.2f} s "
        f"(min {min(colds):.2f}, max {max(colds):.2f}, n={len(colds)})"
    )
    print(
        f"raise -> result, handler running: median {statistics.median(warms) * 1000:.1f} ms "
        f"(min {min(warms) * 1000:.1f}, max {max(warms) * 1000:.1f})"
    )
    print(
        f"of which starting the kernel until it answers: median "
        f"{statistics.median(kernels):.2f} s; cells, registration and delivery: median "
        f"{statistics.median(c - k for c, _, k in times):.2f} s"
    )
    print(f"cold / warm: {statistics.median(colds) / statistics.median(warms):.0f}x")


if __name__ == "__main__":
    main()
