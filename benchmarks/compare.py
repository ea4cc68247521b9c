"""``python -m benchmarks.compare REF [REF ...] [--only NAME ...] [--repeats R] [--rounds K]
[--quick] [--lock PATH] [--out DIR]``: the suite's scenarios against several git refs, side by
side in one run.

Each ref gets a detached git worktree in a temporary directory (removed at the end). The
harness that runs is this checkout's ``benchmarks/``, copied next to a link to the ref's
``jupyter_interop`` package, so every ref is measured by the same rows; a scenario that
fails against a ref's package is run again with that ref's own harness, and if that fails
too its cells say "n/a" with the reason. Runs go round after round, ref after ref
(A, B, C, A, B, C ...), one scenario at a time, so the machine's load falls on every ref
alike; the benchmark lock is held around each single run only. ``COMPARE.md`` holds one
table per scenario row: each ref's median over all its repeats with [min-max], and the
ratio to NATS of the same run (median [min-max] over the rounds).
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import json
import math
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .procs import REPO
from .scenarios import SCENARIOS

__all__ = [
    "Ref",
    "build_markdown",
    "check_refs",
    "collect",
    "main",
    "parse_run_dir",
    "plan_runs",
    "plan_units",
]

DEFAULT_LOCK = Path("/tmp/bench.lock")
#: scenarios whose rows another scenario of the same invocation fills (``cpu`` reads the
#: broker CPU that ``invoke`` and ``fanout`` measured), so they run in one invocation
BUNDLES: dict[str, tuple[str, ...]] = {"cpu": ("invoke", "fanout", "cpu")}
#: what the copied harness leaves out (results of earlier runs, caches)
HARNESS_IGNORE = shutil.ignore_patterns("__pycache__", "quick", "compare", "RESULTS.*")


@dataclass(frozen=True)
class Ref:
    """A git ref as given on the command line and the commit it names."""

    name: str
    commit: str

    @property
    def short(self) -> str:
        return self.commit[:7]

    @property
    def label(self) -> str:
        """Column heading: the name, with the commit when the name is not a prefix of it."""
        return self.name if self.commit.startswith(self.name) else f"{self.name} ({self.short})"


@dataclass
class RunRecord:
    """One invocation of the suite: which ref, round and scenarios, and what it left."""

    ref: str
    round: int
    scenarios: list[str]
    harness: str  # "current" or "own"
    results: str  # RESULTS.json path
    load_start: list[float] = field(default_factory=list)
    load_end: list[float] = field(default_factory=list)
    lock_wait_s: float | None = 0.0  # None: not known (tables rebuilt from earlier runs)
    seconds: float = 0.0
    returncode: int | None = None


def check_refs(names: Sequence[str]) -> list[str]:
    """The refs in the order given; an empty list or a ref named twice is an error."""
    if not names:
        raise ValueError("give at least one git ref")
    seen: set[str] = set()
    for name in names:
        if not name or name.startswith("-"):
            raise ValueError(f"not a git ref: {name!r}")
        if name in seen:
            raise ValueError(f"ref {name!r} is given twice")
        seen.add(name)
    return list(names)


def plan_units(only: Sequence[str] | None) -> list[list[str]]:
    """The scenarios to run, in the suite's order, as the groups each invocation runs: one
    scenario per invocation, except a scenario of :data:`BUNDLES` with the ones it needs."""
    names = [name for name, _ in SCENARIOS if not only or name in only]
    bundles = [list(BUNDLES[key]) for key in names if key in BUNDLES]
    units: list[list[str]] = []
    for name in names:
        unit = next((b for b in bundles if name in b), [name])
        if unit not in units:
            units.append(unit)
    return units


def plan_runs(
    refs: Sequence[str], units: Sequence[Sequence[str]], rounds: int
) -> list[tuple[int, list[str], str]]:
    """(round, scenarios, ref) in the order they run: each round runs every unit for every
    ref in turn (A, B, C, then the next unit), so neighbouring runs of different refs share
    the machine's load."""
    if rounds < 1:
        raise ValueError("--rounds must be at least 1")
    return [(k, list(unit), ref) for k in range(1, rounds + 1) for unit in units for ref in refs]


# ---- running ----------------------------------------------------------------------------


def _git(*args: str, cwd: Path = REPO) -> str:
    out = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise RuntimeError(f"git {' '.join(args)}: {out.stderr.strip()}")
    return out.stdout.strip()


def resolve(names: Sequence[str]) -> list[Ref]:
    refs = [Ref(n, _git("rev-parse", "--verify", "--quiet", f"{n}^{{commit}}")) for n in names]
    commits = [r.commit for r in refs]
    if len(set(commits)) != len(commits):
        raise ValueError("two refs name the same commit: " + ", ".join(commits))
    return refs


@dataclass
class Checkout:
    """A ref's worktree (``tree``, its own harness) and the directory that runs the current
    harness against its package (``harness``: a copy of ``benchmarks/`` and a link to the
    ref's ``jupyter_interop``)."""

    ref: Ref
    tree: Path
    harness: Path


def _link_node_modules(root: Path) -> None:
    """The Node clients come from this checkout (only the ``node`` scenario needs them)."""
    source = REPO / "tests" / "compat" / "node_modules"
    if source.is_dir():
        target = root / "tests" / "compat" / "node_modules"
        target.parent.mkdir(parents=True, exist_ok=True)
        if not target.exists():
            target.symlink_to(source.resolve())


def _copy_untracked_schemas(tree: Path) -> None:
    """The FDC3 JSON schemas are not tracked; a ref that has the FDC3 package gets ours."""
    source = REPO / "jupyter_interop" / "fdc3" / "schemas"
    target = tree / "jupyter_interop" / "fdc3"
    if source.is_dir() and target.is_dir() and not (target / "schemas").exists():
        shutil.copytree(source, target / "schemas")


@contextlib.contextmanager
def checkouts(refs: Sequence[Ref], tmp: Path) -> Iterator[dict[str, Checkout]]:
    """Detached worktrees of ``refs`` under the new directory ``tmp``, removed afterwards."""
    made: list[Path] = []
    try:
        out: dict[str, Checkout] = {}
        for i, ref in enumerate(refs):
            tree = tmp / f"{i}-{ref.short}" / "tree"
            _git("worktree", "add", "--detach", "--quiet", str(tree), ref.commit)
            made.append(tree)
            _link_node_modules(tree)
            _copy_untracked_schemas(tree)
            harness = tmp / f"{i}-{ref.short}" / "harness"
            shutil.copytree(REPO / "benchmarks", harness / "benchmarks", ignore=HARNESS_IGNORE)
            (harness / "jupyter_interop").symlink_to(tree / "jupyter_interop")
            _link_node_modules(harness)
            out[ref.name] = Checkout(ref, tree, harness)
        yield out
    finally:
        for tree in made:
            with contextlib.suppress(RuntimeError):
                _git("worktree", "remove", "--force", str(tree))
        with contextlib.suppress(RuntimeError):
            _git("worktree", "prune")
        shutil.rmtree(tmp, ignore_errors=True)


@contextlib.contextmanager
def held(lock: Path | None) -> Iterator[float]:
    """``flock`` on ``lock`` for one run (yields the seconds spent waiting for it)."""
    if lock is None:
        yield 0.0
        return
    t0 = time.monotonic()
    with open(lock, "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield time.monotonic() - t0
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _suite(
    root: Path, scenarios: Sequence[str], args: argparse.Namespace, out: Path, log: Path
) -> int:
    """``python -m benchmarks`` in ``root`` with only ``root`` on PYTHONPATH: its harness
    and its ``jupyter_interop``, nothing of this checkout."""
    env = dict(os.environ)
    env["PYTHONPATH"] = str(root)
    cmd = [sys.executable, "-m", "benchmarks", "--only", *scenarios]
    cmd += ["--repeats", str(args.repeats), "--out", str(out)]
    if args.quick:
        cmd.append("--quick")
    with open(log, "ab") as f:
        f.write(("$ " + " ".join(cmd) + f"  (cwd {root})\n").encode())
        f.flush()
        return subprocess.run(cmd, cwd=root, env=env, stdout=f, stderr=f, check=False).returncode


def _failed(path: Path) -> list[str]:
    """Scenarios that report an error (or have no result) in a RESULTS.json."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return ["*"]
    return [s["key"] for s in data.get("scenarios", []) if s.get("error")]


def _own_names(tree: Path) -> set[str]:
    """Scenario names the ref's own harness knows (its ``--only`` choices)."""
    text = (tree / "benchmarks" / "scenarios" / "__init__.py").read_text()
    return {name for name, _ in SCENARIOS if f'("{name}",' in text}


def run_one(
    checkout: Checkout, k: int, unit: list[str], args: argparse.Namespace, runs_dir: Path
) -> list[RunRecord]:
    """One run of ``unit`` against one ref under the lock, and, for the scenarios that
    failed against the ref's package, one run of the ref's own harness."""
    records = []
    for harness in ("current", "own"):
        if harness == "own":
            failed = _failed(Path(records[0].results))
            names = [n for n in unit if (n in failed or "*" in failed)]
            names = [n for n in names if n in _own_names(checkout.tree)]
            if not names:
                break
        else:
            names = unit
        root = checkout.harness if harness == "current" else checkout.tree
        out = runs_dir / f"r{k}-{'+'.join(unit)}-{checkout.ref.short}-{harness}"
        out.mkdir(parents=True, exist_ok=True)
        rec = RunRecord(checkout.ref.name, k, names, harness, str(out / "RESULTS.json"))
        with held(args.lock) as waited:
            rec.lock_wait_s = round(waited, 1)
            rec.load_start = list(os.getloadavg())
            t0 = time.monotonic()
            rec.returncode = _suite(root, names, args, out, out / "log.txt")
            rec.seconds = round(time.monotonic() - t0, 1)
            rec.load_end = list(os.getloadavg())
        print(
            f"compare: round {k} {'+'.join(names)} @ {checkout.ref.label} ({harness} harness): "
            f"{rec.seconds} s, load {rec.load_start[0]:.2f} -> {rec.load_end[0]:.2f}",
            file=sys.stderr,
            flush=True,
        )
        records.append(rec)
    return records


# ---- tables -------------------------------------------------------------------------------


@dataclass
class Cell:
    """One ref's figures for one row and column: every repeat's value pooled over rounds,
    and, for ratios, each run's ratio."""

    values: list[float] = field(default_factory=list)
    harness: set[str] = field(default_factory=set)


def _finite(values: Sequence[Any]) -> list[float]:
    out = []
    for v in values:
        if isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v):
            out.append(float(v))
    return out


def _metric_values(metric: Any) -> list[float]:
    """A metric's values: every repeat's (a summary's ``runs``) or the single figure."""
    if isinstance(metric, dict):
        runs = metric.get("runs")
        return _finite(runs if runs else [metric.get("median")])
    return _finite([metric])


@dataclass
class Table:
    """One table of one scenario: its columns (key -> label, format) and, per row (system)
    and line (column key, or "x label" for a ratio), each ref's cell."""

    scenario: str
    title: str
    columns: dict[str, tuple[str, str]] = field(default_factory=dict)
    rows: dict[str, dict[str, dict[str, Cell]]] = field(default_factory=dict)
    errors: dict[str, list[str]] = field(default_factory=dict)


def _tables_of(scenario: dict[str, Any]) -> Iterator[tuple[str, list[Any], list[Any]]]:
    yield scenario.get("title", scenario["key"]), scenario["columns"], scenario["rows"]
    for extra in scenario.get("extra_tables") or []:
        yield extra["title"], extra["columns"], extra["rows"]


def _why(error: str) -> str:
    """The last line of a traceback, short enough for a table cell."""
    lines = [ln.strip() for ln in error.strip().splitlines() if ln.strip()]
    text = lines[-1] if lines else "failed"
    return text.replace("|", "/")[:160]


def collect(results: Sequence[tuple[str, str, dict[str, Any]]]) -> list[Table]:
    """Tables from ``(ref, harness, RESULTS.json data)`` of every run, in the order
    scenarios and rows first appear. A ref's cell pools the repeats of all its runs; a
    ratio cell holds each run's ratio. A scenario the current harness failed against a
    ref is taken from the ref's own harness when that run has it."""
    ok_current = {
        (ref, s["key"])
        for ref, harness, data in results
        if harness == "current"
        for s in data.get("scenarios", [])
        if not s.get("error")
    }
    tables: dict[tuple[str, str], Table] = {}
    for ref, harness, data in results:
        for s in data.get("scenarios", []):
            if harness == "own" and (ref, s["key"]) in ok_current:
                continue
            if s.get("error"):
                key = (s["key"], s["key"])
                table = tables.setdefault(key, Table(s["key"], s.get("title", s["key"])))
                table.errors.setdefault(ref, []).append(f"{harness} harness: {_why(s['error'])}")
                continue
            for title, columns, rows in _tables_of(s):
                table = tables.setdefault((s["key"], title), Table(s["key"], title))
                for c in columns:
                    table.columns.setdefault(c["key"], (c["label"], c.get("fmt", ".0f")))
                for row in rows:
                    lines = table.rows.setdefault(row["system"], {})
                    for c in columns:
                        cell = lines.setdefault(c["key"], {}).setdefault(ref, Cell())
                        cell.values += _metric_values(row["metrics"].get(c["key"]))
                        cell.harness.add(harness)
                    for label, value in (row.get("ratios") or {}).items():
                        cell = lines.setdefault(f"\u00d7 {label}", {}).setdefault(ref, Cell())
                        cell.values += _finite([value])
                        cell.harness.add(harness)
    order = list(dict.fromkeys(scenario for scenario, _ in tables))
    return _drop_error_only(sorted(tables.values(), key=lambda t: order.index(t.scenario)))


def _drop_error_only(tables: list[Table]) -> list[Table]:
    """An error placeholder table is kept only when no table of its scenario has rows;
    otherwise its errors go to the scenario's tables."""
    with_rows = {t.scenario for t in tables if t.rows}
    out = []
    for t in tables:
        if t.rows or t.scenario not in with_rows:
            out.append(t)
            continue
        for other in tables:
            if other.scenario == t.scenario and other.rows:
                for ref, why in t.errors.items():
                    other.errors.setdefault(ref, []).extend(why)
    return out


def _num(value: float, fmt: str) -> str:
    return format(value, fmt) if math.isfinite(value) else "-"


def format_cell(cell: Cell | None, fmt: str) -> str:
    """``median [min-max]`` of a cell, or "-" when it holds no figure."""
    if cell is None or not cell.values:
        return "-"
    text = _num(statistics.median(cell.values), fmt)
    if len(cell.values) > 1:
        text += f" [{_num(min(cell.values), fmt)}\u2013{_num(max(cell.values), fmt)}]"
    if cell.harness == {"own"}:
        text += " (own harness)"
    return text


def _change(cell: Cell | None, base: Cell | None) -> str:
    if cell is None or base is None or not cell.values or not base.values:
        return "-"
    b = statistics.median(base.values)
    return _num(statistics.median(cell.values) / b, ".2f") if b else "-"


def build_table(table: Table, refs: Sequence[Ref]) -> list[str]:
    """Markdown lines for one scenario table: a sub-table per row (system) with one line per
    column and ratio, one column per ref, and each later ref's median over the first's."""
    out = [f"### {table.title}", ""]
    for ref in refs:
        for why in dict.fromkeys(table.errors.get(ref.name, [])):
            out.append(f"- {ref.label}: n/a ({why})")
    if table.errors:
        out.append("")
    first = refs[0]
    head = ["", *(r.label for r in refs), *(f"{r.label} \u00f7 {first.label}" for r in refs[1:])]
    for system, lines in table.rows.items():
        out += [f"**{system}**", "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        for key, cells in lines.items():
            label, fmt = table.columns.get(key, (key, ".2f"))
            if not any(c.values for c in cells.values()):
                continue
            row = [label]
            for ref in refs:
                cell = cells.get(ref.name)
                if cell is None and ref.name in table.errors:
                    row.append("n/a")
                else:
                    row.append(format_cell(cell, fmt))
            row += [_change(cells.get(r.name), cells.get(first.name)) for r in refs[1:]]
            out.append("| " + " | ".join(row) + " |")
        out.append("")
    return out


def _load(values: Sequence[float]) -> str:
    return "/".join(f"{x:.2f}" for x in values) if values else "?"


def build_markdown(
    tables: Sequence[Table], refs: Sequence[Ref], meta: dict[str, Any], runs: Sequence[RunRecord]
) -> str:
    """COMPARE.md: the command, refs, load, each run's load, then every scenario's tables."""
    out = [
        "# Before and after",
        "",
        f"`{meta['command']}`, started {meta['started']}, took {meta.get('seconds', '?')} s.",
        "",
        "Refs: " + ", ".join(f"`{r.name}` = {r.commit}" for r in refs) + ".",
        "",
        f"Load average (1/5/15 min) at start {_load(meta['load_start'])}, "
        f"at end {_load(meta.get('load_end', []))}.",
        "",
        "Each cell is the median over every repeat of every round for that ref, with "
        "[min\u2013max]; a \u00d7 line is the ratio each run computed to the peer's median "
        "in that same run (so each ref's ratio is like for like), median [min\u2013max] over "
        "the rounds. The last columns divide a ref's median by the first ref's. "
        '"(own harness)" marks figures from the ref\'s own `benchmarks/` where the current '
        'one could not run against its package; "n/a" gives the reason.',
        "",
    ]
    scenario = None
    for table in tables:
        if table.scenario != scenario:
            scenario = table.scenario
            out += [f"## {scenario}", ""]
        out += build_table(table, refs)
    out += ["## Runs", "", "| round | scenarios | ref | harness | s | lock wait s | load |"]
    out.append("|---|---|---|---|---|---|---|")
    names = {r.name: r.label for r in refs}
    for rec in runs:
        wait = "?" if rec.lock_wait_s is None else rec.lock_wait_s
        out.append(
            f"| {rec.round} | {' '.join(rec.scenarios)} | {names.get(rec.ref, rec.ref)} | "
            f"{rec.harness} | {rec.seconds} | {wait} | "
            f"{_load(rec.load_start[:1])} \u2192 {_load(rec.load_end[:1])} |"
        )
    out.append("")
    return "\n".join(out)


# ---- command line -------------------------------------------------------------------------


def parse(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.compare", description=__doc__)
    parser.add_argument("refs", nargs="+", metavar="REF", help="git refs, the first the base")
    parser.add_argument(
        "--only", nargs="+", choices=[name for name, _ in SCENARIOS], help="run these only"
    )
    parser.add_argument("--repeats", type=int, default=3, help="repeats per run (at least 3)")
    parser.add_argument("--rounds", type=int, default=2, help="runs per ref and scenario")
    parser.add_argument("--quick", action="store_true", help="the suite's short sizes")
    parser.add_argument(
        "--tables-only",
        action="store_true",
        help="run nothing: rebuild COMPARE.md from the runs already in --out",
    )
    parser.add_argument(
        "--lock",
        type=Path,
        default=DEFAULT_LOCK if DEFAULT_LOCK.exists() else None,
        help="flock held around each single run (default /tmp/bench.lock when it exists)",
    )
    parser.add_argument(
        "--out", type=Path, default=REPO / "benchmarks" / "compare", help="where runs go"
    )
    args = parser.parse_args(argv)
    try:
        args.refs = check_refs(args.refs)
        if args.rounds < 1:
            raise ValueError("--rounds must be at least 1")
    except ValueError as exc:
        parser.error(str(exc))
    if args.repeats < 3:
        parser.error("--repeats must be at least 3")
    return args


def write_outputs(
    out: Path, refs: Sequence[Ref], meta: dict[str, Any], records: Sequence[RunRecord]
) -> Path:
    """COMPARE.md and compare.json from the runs so far (rewritten after every run, so an
    interrupted comparison still leaves its tables)."""
    results = []
    for rec in records:
        with contextlib.suppress(OSError, ValueError):
            results.append((rec.ref, rec.harness, json.loads(Path(rec.results).read_text())))
    out.mkdir(parents=True, exist_ok=True)
    (out / "COMPARE.md").write_text(build_markdown(collect(results), refs, meta, records))
    runs = [rec.__dict__ for rec in records]
    (out / "compare.json").write_text(json.dumps({"meta": meta, "runs": runs}, indent=1))
    return out / "COMPARE.md"


def parse_run_dir(name: str, refs: Sequence[Ref]) -> tuple[int, str, str] | None:
    """(round, ref name, harness) from a run directory's name, ``r{k}-{unit}-{short}-{harness}``
    (None when it is not one, or names none of ``refs``)."""
    head, _, harness = name.rpartition("-")
    head, _, short = head.rpartition("-")
    if not name.startswith("r") or harness not in ("current", "own"):
        return None
    round_text = head[1:].split("-", 1)[0]
    ref = next((r for r in refs if r.short == short), None)
    if ref is None or not round_text.isdigit():
        return None
    return int(round_text), ref.name, harness


def records_from(runs_dir: Path, refs: Sequence[Ref]) -> list[RunRecord]:
    """The runs an earlier comparison left in ``runs_dir``, in the order they ran (by the
    time their RESULTS.json was written); their load and duration come from the suite's own
    RESULTS.json, the lock wait is not known."""
    records = []
    paths = sorted(runs_dir.glob("*/RESULTS.json"), key=lambda p: p.stat().st_mtime)
    for path in paths:
        parsed = parse_run_dir(path.parent.name, refs)
        if parsed is None:
            continue
        k, ref, harness = parsed
        with contextlib.suppress(OSError, ValueError):
            data = json.loads(path.read_text())
            m = data.get("meta", {})
            keys = [s["key"] for s in data.get("scenarios", [])]
            rec = RunRecord(ref, k, keys, harness, str(path), m.get("load_start", []))
            rec.load_end, rec.seconds, rec.lock_wait_s = m.get("load_end", []), m["seconds"], None
            records.append(rec)
    return records


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse(argv)
    refs = resolve(args.refs)
    meta: dict[str, Any] = {
        "command": " ".join(["python -m benchmarks.compare", *argv]),
        "started": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "load_start": list(os.getloadavg()),
        "refs": {r.name: r.commit for r in refs},
    }
    runs_dir = args.out / "runs"
    if args.tables_only:
        records = records_from(runs_dir, refs)
        meta["load_start"] = records[0].load_start if records else []
        meta["load_end"] = records[-1].load_end if records else []
        meta["started"] = "(tables rebuilt from earlier runs; first run's load below)"
        print(f"compare: wrote {write_outputs(args.out, refs, meta, records)}", file=sys.stderr)
        return 0
    t0 = time.monotonic()
    records = []
    meta["workdir"] = tempfile.mkdtemp(prefix="ji-compare-")
    with checkouts(refs, Path(meta["workdir"])) as trees:
        for k, unit, ref in plan_runs(args.refs, plan_units(args.only), args.rounds):
            records += run_one(trees[ref], k, unit, args, runs_dir)
            write_outputs(args.out, refs, meta, records)
    meta["load_end"] = list(os.getloadavg())
    meta["seconds"] = round(time.monotonic() - t0, 1)
    print(f"compare: wrote {write_outputs(args.out, refs, meta, records)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
