"""Invoke latency across two federated hubs against the same call within one hub
(docs/FEDERATION.md).

``python -m benchmarks.federation [--calls N] [--repeats R]`` (run it under
``flock /tmp/bench.lock``): a nats-server, two standalone hubs joined to it, one server
process on each hub registering ``Echo``, and one caller on hub A that invokes, round after
round, the ``Echo`` of hub A (local) and then the ``Echo`` of hub B (across). It prints each
round's p50 and p90 and the ratio of the p50s, with their spread over the rounds.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

import jupyter_interop as ji

from .procs import Hub, NatsServer, ProcessGroup

SERVER = """
import sys, time
import jupyter_interop as ji
io = ji.connect(url=sys.argv[1], token=sys.argv[2], application=sys.argv[3])
io.methods.register("Echo")(lambda x: {"x": x})
time.sleep(3600)
"""


def percentiles(samples: list[float]) -> tuple[float, float]:
    """(p50, p90) in microseconds."""
    ordered = sorted(samples)
    return ordered[len(ordered) // 2] * 1e6, ordered[int(len(ordered) * 0.9)] * 1e6


def timed_calls(io: ji.Interop, application: str, calls: int) -> list[float]:
    target = {"application": application}
    for _ in range(min(50, calls)):  # warm-up
        io.methods.invoke("Echo", {"x": 1}, target=target)
    samples = []
    for _ in range(calls):
        start = time.perf_counter()
        io.methods.invoke("Echo", {"x": 1}, target=target)
        samples.append(time.perf_counter() - start)
    return samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=1000, help="timed calls per round and kind")
    parser.add_argument("--repeats", type=int, default=5, help="rounds")
    args = parser.parse_args()
    group = ProcessGroup()
    try:
        nats = NatsServer(group)
        federation = [f"--federation={nats.url}"]
        hub_a = Hub(group, args=federation)
        hub_b = Hub(group, args=federation)
        for hub, name in ((hub_a, "local-a"), (hub_b, "remote-b")):
            group.track(
                subprocess.Popen(
                    [sys.executable, "-c", SERVER, hub.url, hub.token, name], env=group.env
                )
            )
        io = ji.connect(url=hub_a.url, token=hub_a.token, application="caller")
        deadline = time.monotonic() + 30
        while len([s for m in io.methods.methods() if m.name == "Echo" for s in m.servers]) < 2:
            if time.monotonic() > deadline:
                raise SystemExit("the two Echo servers did not show up on hub A")
            time.sleep(0.05)
        ratios = []
        for round_ in range(args.repeats):
            local = percentiles(timed_calls(io, "local-a", args.calls))
            across = percentiles(timed_calls(io, "remote-b", args.calls))
            ratios.append(across[0] / local[0])
            print(
                f"round {round_}: within one hub p50 {local[0]:.0f} us p90 {local[1]:.0f} us; "
                f"across hubs p50 {across[0]:.0f} us p90 {across[1]:.0f} us; "
                f"p50 ratio {ratios[-1]:.2f}",
                flush=True,
            )
        print(
            f"p50 across/within over {args.repeats} rounds: median {statistics.median(ratios):.2f}"
            f", min {min(ratios):.2f}, max {max(ratios):.2f}"
        )
        io.close()
    finally:
        group.close()


if __name__ == "__main__":
    main()
