"""Round trips through the standalone hub, caller and server in separate processes.

``python -m pytest tests/integration/test_client_perf.py -s`` prints the medians. Nothing
here asserts a time (speed is measured by ``benchmarks/``, side by side with NATS): the tests
check that every round trip of the timed loop returned exactly what was sent.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from collections.abc import Iterator

import numpy as np
import pytest
from test_client_support import REPO, StandaloneHub, assert_same

import jupyter_interop as ji


@pytest.fixture(scope="module")
def caller(hub: StandaloneHub) -> Iterator[ji.Interop]:
    script = (
        "import time, jupyter_interop as ji\n"
        f"io = ji.connect({hub.url!r}, {hub.token!r}, 'perf-server', new=True)\n"
        "io.methods.register('Perf.Echo', lambda **kw: kw)\n"
        "print('ready', flush=True)\n"
        "time.sleep(600)\n"
    )
    server = subprocess.Popen(
        [sys.executable, "-c", script], stdout=subprocess.PIPE, text=True, cwd=str(REPO)
    )
    try:
        assert server.stdout is not None and server.stdout.readline().strip() == "ready"
        io = ji.connect(hub.url, hub.token, "perf-caller", new=True)
        yield io
        io.close()
    finally:
        server.kill()
        server.wait(5)


def timed(io: ji.Interop, arguments: dict, count: int) -> list[float]:
    """Sorted round-trip times of ``count`` echo calls, each checked against what was sent."""
    for _ in range(max(10, count // 10)):  # warm up
        io.methods.invoke("Perf.Echo", arguments)
    samples = []
    for _ in range(count):
        started = time.perf_counter()
        result = io.methods.invoke("Perf.Echo", arguments)
        samples.append(time.perf_counter() - started)
        assert set(result.returned) == set(arguments)
        for key, value in arguments.items():
            assert_same(result.returned[key], value)
    return sorted(samples)


def test_sync_invoke_round_trip(caller: ji.Interop) -> None:
    samples = timed(caller, {"symbol": "AAPL", "qty": 1}, 200)
    median = statistics.median(samples)
    print(
        f"\nsync invoke round trip, 200 calls: median {median * 1e6:.0f} us, "
        f"p90 {samples[179] * 1e6:.0f} us"
    )


def test_one_mib_array_round_trip(caller: ji.Interop) -> None:
    array = np.random.default_rng(0).random(131072)  # 1 MiB of float64, both ways
    samples = timed(caller, {"a": array}, 50)
    median = statistics.median(samples)
    print(f"\n1 MiB ndarray invoke round trip, 50 calls: median {median * 1e3:.2f} ms")
