"""Scenario 7: broker CPU time per routed message.

Measured during scenarios 1 and 3 (so it needs them in the same run): the broker process's
user + system CPU time over the timed part of each repeat, divided by the messages it routed.
An invoke round trip is two routed messages (call → invoke, yield → result); a stream event
counts once per subscriber it was delivered to.
"""

from __future__ import annotations

from ..report import Column, ScenarioResult, Target
from ..runner import Run


async def run(r: Run) -> tuple[ScenarioResult, list[Target]]:
    result = ScenarioResult(
        "cpu",
        "7. Broker CPU time per routed message",
        "CPU time (user + system, all threads) of the broker process during the timed part "
        "of scenarios 1 and 3, divided by the messages it routed. For the hub this is the "
        "whole Python process (tornado, the GW3 core, encoding); NATS and Redis are C/Go "
        "servers, shown for scale.",
        [Column("cpu", "broker CPU per message (µs)", ".1f")],
        list(r.cpu_rows),
    )
    if not r.cpu_rows:
        result.notes.append("Scenarios 1 and 3 did not run: nothing to show.")
    targets = []
    for row in r.cpu_rows:
        if row.system.startswith("hub") and "invoke" in row.system:
            value = row.metrics["cpu"]["median"]
            targets.append(
                Target("Hub CPU per routed message (invoke)", "report", f"{value:.1f} µs", None)
            )
            break
    return result, targets
