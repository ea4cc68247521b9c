"""What every scenario gets: the process group, the peers' servers, sizes for quick/full."""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import psutil

from .procs import NODE_WORKER, Hub, NatsServer, ProcessGroup, RedisServer, Worker
from .report import Row
from .stats import ratio, summarize_runs

T = TypeVar("T")

__all__ = ["Run", "System", "client_available", "cpu_seconds", "rotate"]


def client_available() -> bool:
    """True once the project's Python client (``jupyter_interop.connect``) exists."""
    try:
        if importlib.util.find_spec("jupyter_interop.client") is None:
            return False
        import jupyter_interop

        return hasattr(jupyter_interop, "connect")
    except Exception:
        return False


def cpu_seconds(pid: int | None) -> float:
    """User + system CPU seconds of one process (all its threads), or NaN."""
    if pid is None:
        return float("nan")
    try:
        t = psutil.Process(pid).cpu_times()
        return float(t.user + t.system)
    except psutil.Error:
        return float("nan")


def rss(pid: int) -> int:
    return int(psutil.Process(pid).memory_info().rss)


def rotate(items: Sequence[T], k: int) -> list[T]:
    """``items`` rotated by ``k``: repeats start with a different system each time."""
    if not items:
        return []
    k %= len(items)
    return [*items[k:], *items[:k]]


@dataclass
class System:
    """One system under test in a scenario: its name, its workers, the broker's pid."""

    name: str
    kind: str  # "hub", "nats", "redis", "pickle", ...
    workers: dict[str, Any] = field(default_factory=dict)
    broker_pid: int | None = None
    runs: list[dict[str, float]] = field(default_factory=list)


def rows_against(
    systems: Sequence[System],
    peer: str | Mapping[str, str],
    metrics: dict[str, str],
    extra: dict[str, dict[str, float]] | None = None,
) -> list[Row]:
    """One row per system (median and spread of its runs, plus ``extra[kind]``), each but the
    peer's with the ratios ``metrics`` names (label -> metric key) to the peer's medians in
    the same run. ``peer``: the peer system's kind, or system kind -> its peer's kind (kinds
    not in it get no ratios)."""
    summaries = {
        s.kind: {**summarize_runs(s.runs), **(extra or {}).get(s.kind, {})} for s in systems
    }
    out = []
    for s in systems:
        summary = summaries[s.kind]
        row = Row(s.name, summary)
        other = peer if isinstance(peer, str) else peer.get(s.kind)
        if other is not None and s.kind != other and other in summaries:
            for label, key in metrics.items():
                row.ratios[label] = ratio(_median(summary[key]), _median(summaries[other][key]))
        out.append(row)
    return out


def _median(metric: Any) -> float:
    """A metric's median: a summary's (``{"median": ...}``) or a single figure."""
    return metric["median"] if isinstance(metric, dict) else metric


class Run:
    """Shared state of one benchmark run."""

    def __init__(self, quick: bool, repeats: int) -> None:
        self.quick = quick
        self.repeats = repeats
        self.group = ProcessGroup()
        self._nats: NatsServer | None = None
        self._redis: RedisServer | None = None
        self.has_client = client_available()
        #: rows for scenario 7 (broker CPU per routed message), filled by scenarios 1 and 3
        self.cpu_rows: list[Any] = []

    def size(self, quick: T, full: T) -> T:
        return quick if self.quick else full

    @property
    def nats(self) -> NatsServer:
        if self._nats is None:
            self._nats = NatsServer(self.group)
        return self._nats

    @property
    def redis(self) -> RedisServer:
        if self._redis is None:
            self._redis = RedisServer(self.group)
        return self._redis

    def hub(self) -> Hub:
        """A fresh standalone hub (each scenario starts from an empty one)."""
        return Hub(self.group)

    async def worker(self, role: str, **params: Any) -> Worker:
        return await Worker.start(self.group, role, **params)

    async def node_worker(self, role: str, **params: Any) -> Worker:
        """A Node worker (``benchmarks/node/worker.js``: @interopio/core or nats.js)."""
        return await Worker.start(self.group, role, program=NODE_WORKER, **params)

    async def workers(self, role: str, params: Iterable[dict[str, Any]]) -> list[Worker]:
        return list(await asyncio.gather(*(self.worker(role, **p) for p in params)))

    async def stop(self, *workers: Worker | None) -> None:
        await asyncio.gather(*(w.stop() for w in workers if w is not None))

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.group.close()
