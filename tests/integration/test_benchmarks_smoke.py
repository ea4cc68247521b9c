"""The benchmark runs end to end (``python -m benchmarks --quick``) and writes its results.

No timing is asserted: only that every scenario ran, without error, and is in RESULTS.json
and RESULTS.md.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.timeout(600)
def test_quick_benchmark_writes_every_scenario(tmp_path: Path) -> None:
    sys.path.insert(0, str(REPO))
    try:
        from benchmarks.scenarios import SCENARIOS
    finally:
        sys.path.remove(str(REPO))
    env = {k: v for k, v in os.environ.items() if not k.startswith("JUPYTER_INTEROP_")}
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--quick", "--out", str(tmp_path)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=540,
    )
    assert proc.returncode == 0, f"benchmark failed:\n{proc.stderr[-5000:]}"

    results = json.loads((tmp_path / "RESULTS.json").read_text())
    markdown = (tmp_path / "RESULTS.md").read_text()
    assert results["meta"]["mode"] == "quick"
    assert results["meta"]["repeats"] >= 3
    assert results["meta"]["versions"]["nats-server"] != "-"
    assert results["meta"]["versions"]["redis-server"] != "-"
    by_key = {s["key"]: s for s in results["scenarios"]}
    for name, _module in SCENARIOS:
        assert name in by_key, f"scenario {name} missing from RESULTS.json"
        scenario = by_key[name]
        assert scenario["error"] is None, f"scenario {name} failed:\n{scenario['error']}"
        assert scenario["rows"], f"scenario {name} has no rows"
        assert scenario["title"] in markdown
        for row in scenario["rows"]:
            assert row["system"] in markdown
    assert results["targets"], "no targets were evaluated"
    assert "## Targets" in markdown
