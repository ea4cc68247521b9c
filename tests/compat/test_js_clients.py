"""The real io.Connect / Glue42 JavaScript clients against a standalone jupyter_interop hub.

Each test runs one Node scenario (tests/compat/scenarios/*.js) with client A (the coordinating
process) of one flavour and client B (separate Node processes, killed where the scenario needs
it) of the same or the other flavour, and asserts on the checks the scenario reports.

Run: ``npm ci --prefix tests/compat && python -m pytest tests/compat -m node``
"""

from __future__ import annotations

import json

import pytest
from compatkit import node_executable

pytestmark = pytest.mark.node

# (flavour of client A, flavour of client B)
PAIRS = {
    "interopio": ("interopio", "interopio"),
    "glue42": ("glue42", "glue42"),
    "interopio+glue42": ("interopio", "glue42"),
    "glue42+interopio": ("glue42", "interopio"),
}

SCENARIOS = [
    # connect uses only client A (two logins in one process), so no mixed pairs
    ("connect", ["interopio", "glue42"]),
    ("methods", list(PAIRS)),
    ("discovery", list(PAIRS)),
    ("streams", list(PAIRS)),
    ("contexts", list(PAIRS)),
    ("bus", list(PAIRS)),
    ("peer_death", list(PAIRS)),
    ("channels", list(PAIRS)),
]

CASES = [pytest.param(s, p, id=f"{s}-{p}") for s, pairs in SCENARIOS for p in pairs]


def _describe(check: dict) -> str:
    parts = [f"  FAIL {check['name']}"]
    for key in ("expected", "actual", "detail", "error", "note"):
        if key in check:
            text = json.dumps(check[key], default=str)
            parts.append(f"       {key}: {text[:800]}")
    return "\n".join(parts)


@pytest.mark.parametrize(("scenario", "pair"), CASES)
def test_js_client_scenario(hub, run_js, scenario: str, pair: str) -> None:
    node_executable()  # fails (not skips) with the `npm ci --prefix tests/compat` hint
    a, b = PAIRS[pair]
    mark = hub.mark()
    result = run_js(scenario, a, b)
    failed = [c for c in result["checks"] if not c["ok"]]
    problems: list[str] = []
    if not result.get("complete"):
        problems.append(f"scenario stopped early: {result.get('error')}")
    problems.extend(_describe(c) for c in failed)
    if problems:
        lines = [
            f"{scenario} with A={a}, B={b}: {len(failed)} of {len(result['checks'])} checks failed",
            *problems,
        ]
        if result.get("warnings"):
            lines.append("warnings: " + "; ".join(result["warnings"])[:1500])
        for role, tail in result.get("peers_stderr", {}).items():
            if tail:
                lines.append(f"peer {role} stderr: " + " | ".join(tail)[-1000:])
        if result.get("_stderr"):
            lines.append("main stderr: " + result["_stderr"][-1500:])
        lines.append("hub output during the scenario:\n" + (hub.since(mark, 25) or "(nothing)"))
        pytest.fail("\n".join(lines), pytrace=False)
    assert result["checks"], f"{scenario} reported no checks"
    assert hub.alive(), f"hub died during {scenario}:\n{hub.tail()}"
