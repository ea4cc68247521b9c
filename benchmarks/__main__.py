"""``python -m benchmarks [--quick] [--only NAME ...] [--out DIR]``.

Starts everything on loopback (standalone hubs, a Jupyter server with the extension where a
scenario needs one, ``nats-server``, ``redis-server``, worker processes), runs each scenario
with warm-up and interleaved repeats, and writes ``RESULTS.md`` and ``RESULTS.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
import traceback
from pathlib import Path

from .report import Results, ScenarioResult
from .runner import Run
from .scenarios import SCENARIOS

HERE = Path(__file__).resolve().parent


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="short run (about a minute)")
    parser.add_argument(
        "--repeats", type=int, default=None, help="interleaved repeats (default 3 quick, 5 full)"
    )
    parser.add_argument(
        "--only", nargs="+", choices=[name for name, _ in SCENARIOS], help="run these only"
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help="where RESULTS.md/.json go (default: benchmarks/, or benchmarks/quick/ with --quick)",
    )
    args = parser.parse_args(argv)
    if args.repeats is None:
        args.repeats = 3 if args.quick else 5
    if args.repeats < 3:
        parser.error("--repeats must be at least 3")
    if args.out is None:
        args.out = HERE / "quick" if args.quick else HERE
    return args


async def run_all(args: argparse.Namespace, results: Results) -> None:
    r = Run(args.quick, args.repeats)
    try:
        for name, module in SCENARIOS:
            if args.only and name not in args.only:
                continue
            print(f"benchmarks: {name} ...", file=sys.stderr, flush=True)
            t0 = time.monotonic()
            load_before = list(os.getloadavg())
            try:
                result, targets = await module.run(r)
            except Exception:
                result = ScenarioResult(name, f"{name} (failed)", error=traceback.format_exc())
                targets = []
                print(result.error, file=sys.stderr, flush=True)
            result.seconds = time.monotonic() - t0
            result.load_before = load_before
            result.load_after = list(os.getloadavg())
            results.scenarios.append(result)
            results.targets.extend(targets)
            print(f"benchmarks: {name} took {result.seconds:.1f} s", file=sys.stderr, flush=True)
    finally:
        r.close()


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parse(argv)
    results = Results(args.quick, args.repeats, argv)
    try:
        asyncio.run(run_all(args, results))
    finally:
        results.finish()
        json_path, md_path = results.write(args.out)
        print(f"benchmarks: wrote {md_path} and {json_path}", file=sys.stderr)
    failed = [s.key for s in results.scenarios if s.error]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
