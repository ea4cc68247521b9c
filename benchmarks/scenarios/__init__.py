"""The benchmark scenarios, in the order they run (each ``run(r) -> (result, targets)``)."""

from __future__ import annotations

from types import ModuleType

from . import connect, contexts, cpu, deltas, fanout, inflight, invoke, kernel, large, many, node

#: (name for --only, module with ``async def run(r) -> (ScenarioResult, [Target])``)
SCENARIOS: list[tuple[str, ModuleType]] = [
    ("invoke", invoke),
    ("node", node),
    ("fanout", fanout),
    ("context", contexts),
    ("large", large),
    ("many", many),
    ("cpu", cpu),
    ("connect", connect),
    ("kernel", kernel),
    ("inflight", inflight),
    ("deltas", deltas),
]
