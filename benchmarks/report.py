"""RESULTS.json and RESULTS.md: every scenario's table, the targets, machine, versions, load."""

from __future__ import annotations

import contextlib
import importlib.metadata
import json
import math
import os
import platform
import re
import shutil
import subprocess
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .procs import REPO

__all__ = ["Column", "Results", "Row", "ScenarioResult", "Target", "machine_info"]


@dataclass
class Column:
    key: str
    label: str
    #: format of the median: a Python format spec, applied to a float
    fmt: str = ".0f"
    #: show "[min-max]" over the runs after the median
    spread: bool = True


@dataclass
class Row:
    system: str
    #: metric -> {"median", "min", "max", "runs"} (see stats.summarize_runs) or a plain value
    metrics: dict[str, Any] = field(default_factory=dict)
    #: label -> ratio to a peer (e.g. {"NATS": 1.4})
    ratios: dict[str, float] = field(default_factory=dict)


@dataclass
class ScenarioResult:
    key: str
    title: str
    description: str = ""
    columns: list[Column] = field(default_factory=list)
    rows: list[Row] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    #: several tables in one scenario: name -> (columns, rows)
    extra_tables: list[dict[str, Any]] = field(default_factory=list)
    error: str | None = None
    seconds: float = 0.0
    load_before: list[float] = field(default_factory=list)
    load_after: list[float] = field(default_factory=list)


@dataclass
class Target:
    name: str
    goal: str
    value: str
    met: bool | None
    note: str = ""


def _version(dist: str) -> str:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "-"


def _command_version(argv: list[str], pattern: str) -> str:
    if shutil.which(argv[0]) is None:
        return "-"
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=10)
    except Exception:
        return "-"
    match = re.search(pattern, out.stdout + out.stderr)
    return match.group(1) if match else (out.stdout + out.stderr).strip()[:40]


def _npm_version(package: str) -> str:
    path = REPO / "tests" / "compat" / "node_modules" / package / "package.json"
    with contextlib.suppress(Exception):
        return str(json.loads(path.read_text())["version"])
    return "-"


def machine_info() -> dict[str, Any]:
    cpu = "-"
    with contextlib.suppress(Exception):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem = 0
    with contextlib.suppress(Exception):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                mem = int(line.split()[1]) * 1024
    git = "-"
    with contextlib.suppress(Exception):
        git = subprocess.run(
            ["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
    return {
        "machine": {
            "platform": platform.platform(),
            "cpu": cpu,
            "cores": os.cpu_count(),
            "memory_gib": round(mem / 2**30, 1),
            "python": platform.python_version(),
            "git_commit": git,
        },
        "versions": {
            "jupyter_interop": _version("jupyter_interop"),
            "tornado": _version("tornado"),
            "jupyter_server": _version("jupyter_server"),
            "websockets": _version("websockets"),
            "orjson": _version("orjson"),
            "nats-py": _version("nats-py"),
            "redis-py": _version("redis"),
            "numpy": _version("numpy"),
            "pandas": _version("pandas"),
            "pyarrow": _version("pyarrow"),
            "nats-server": _command_version(["nats-server", "--version"], r"v([\d.]+)"),
            "redis-server": _command_version(["redis-server", "--version"], r"v=([\d.]+)"),
            "node": _command_version(["node", "--version"], r"v([\d.]+)"),
            "@interopio/core": _npm_version("@interopio/core"),
            "nats.js": _npm_version("nats"),
        },
    }


def _fmt(value: Any, spec: str) -> str:
    if value is None:
        return "-"
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "yes" if value else "no"
    try:
        f = float(value)
    except (TypeError, ValueError):
        return str(value)
    if math.isnan(f):
        return "-"
    return format(f, spec)


def _cell(metric: Any, column: Column) -> str:
    if isinstance(metric, dict) and "median" in metric:
        text = _fmt(metric["median"], column.fmt)
        runs = metric.get("runs") or []
        if column.spread and len(runs) > 1:
            text += f" [{_fmt(metric['min'], column.fmt)}\u2013{_fmt(metric['max'], column.fmt)}]"
        return text
    return _fmt(metric, column.fmt)


def _table(columns: list[Column], rows: list[Row]) -> list[str]:
    ratio_labels: list[str] = []
    for row in rows:
        for label in row.ratios:
            if label not in ratio_labels:
                ratio_labels.append(label)
    head = ["system", *(c.label for c in columns), *(f"\u00d7 {label}" for label in ratio_labels)]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in rows:
        cells = [row.system, *(_cell(row.metrics.get(c.key), c) for c in columns)]
        cells += [_fmt(row.ratios.get(label), ".2f") for label in ratio_labels]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


class Results:
    def __init__(self, quick: bool, repeats: int, argv: list[str]) -> None:
        self.meta: dict[str, Any] = {
            "mode": "quick" if quick else "full",
            "repeats": repeats,
            "command": " ".join(["python -m benchmarks", *argv]),
            "started": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
            "load_start": list(os.getloadavg()),
            **machine_info(),
        }
        self.scenarios: list[ScenarioResult] = []
        self.targets: list[Target] = []
        self._t0 = time.monotonic()

    def finish(self) -> None:
        self.meta["load_end"] = list(os.getloadavg())
        self.meta["seconds"] = round(time.monotonic() - self._t0, 1)

    def to_json(self) -> dict[str, Any]:
        def clean(obj: Any) -> Any:
            if isinstance(obj, float) and (math.isnan(obj) or math.isinf(obj)):
                return None
            if isinstance(obj, dict):
                return {k: clean(v) for k, v in obj.items()}
            if isinstance(obj, list | tuple):
                return [clean(v) for v in obj]
            return obj

        return clean(
            {
                "meta": self.meta,
                "targets": [asdict(t) for t in self.targets],
                "scenarios": [asdict(s) for s in self.scenarios],
            }
        )

    def to_markdown(self) -> str:
        m = self.meta
        machine = m["machine"]
        out = [
            "# Benchmark results",
            "",
            f"`{m['command']}` — {m['mode']} run, {m['repeats']} interleaved repeats, "
            f"started {m['started']}, took {m.get('seconds', '?')} s.",
            "",
            f"Machine: {machine['cpu']}, {machine['cores']} cores, {machine['memory_gib']} GiB, "
            f"{machine['platform']}, Python {machine['python']}, commit {machine['git_commit']}.",
            "Load average (1/5/15 min) at start "
            + "/".join(f"{x:.2f}" for x in m["load_start"])
            + ", at end "
            + "/".join(f"{x:.2f}" for x in m.get("load_end", []))
            + ".",
            "",
            "Versions: " + ", ".join(f"{k} {v}" for k, v in m["versions"].items()) + ".",
            "",
            "Cells are the median over the repeats, with [min\u2013max] over the repeats; p50/p99 "
            "are computed within each repeat. Ratios are medians divided by the peer's "
            "median in the same run. Everything runs on 127.0.0.1; the machine is shared "
            "and noisy, so trust the ratios more than the absolute numbers.",
            "",
            "## Targets",
            "",
            "| target | goal | measured | met |",
            "|---|---|---|---|",
        ]
        for t in self.targets:
            met = "n/a" if t.met is None else ("**yes**" if t.met else "no")
            note = f" ({t.note})" if t.note else ""
            out.append(f"| {t.name} | {t.goal} | {t.value}{note} | {met} |")
        for s in self.scenarios:
            out += ["", f"## {s.title}", ""]
            if s.description:
                out += [s.description, ""]
            if s.error:
                out += ["**Scenario failed:**", "", "```", s.error.strip()[-3000:], "```", ""]
            if s.rows:
                out += _table(s.columns, s.rows)
            for extra in s.extra_tables:
                out += ["", f"**{extra['title']}**", ""]
                out += _table(extra["columns"], extra["rows"])
            if s.notes:
                out.append("")
                out += [f"- {n}" for n in s.notes]
            out += [
                "",
                f"<sub>{s.seconds:.1f} s; load "
                + "/".join(f"{x:.2f}" for x in s.load_before)
                + " → "
                + "/".join(f"{x:.2f}" for x in s.load_after)
                + "</sub>",
            ]
        out.append("")
        return "\n".join(out)

    def write(self, directory: Path) -> tuple[Path, Path]:
        directory.mkdir(parents=True, exist_ok=True)
        json_path = directory / "RESULTS.json"
        md_path = directory / "RESULTS.md"
        json_path.write_text(json.dumps(self.to_json(), indent=1) + "\n")
        md_path.write_text(self.to_markdown())
        return json_path, md_path
