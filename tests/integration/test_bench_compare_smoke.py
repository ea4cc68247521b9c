"""``python -m benchmarks.compare`` end to end on one scenario of the quick run: it checks out
the ref in a temporary worktree, runs it round after round, writes the tables, and leaves no
worktree behind. No timing is asserted."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.timeout(300)
def test_compare_runs_a_ref_in_rounds_and_removes_its_worktree(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("JUPYTER_INTEROP_")}
    env["PYTHONPATH"] = str(REPO)
    out = tmp_path / "out"
    args = ["HEAD", "--only", "context", "--quick", "--rounds", "2"]
    args += ["--lock", str(tmp_path / "lock"), "--out", str(out)]
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks.compare", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert proc.returncode == 0, proc.stderr[-5000:]

    head = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout.strip()
    data = json.loads((out / "compare.json").read_text())
    assert data["meta"]["refs"] == {"HEAD": head}
    assert [(r["round"], r["scenarios"], r["harness"]) for r in data["runs"]] == [
        (1, ["context"], "current"),
        (2, ["context"], "current"),
    ]
    assert all(r["returncode"] == 0 for r in data["runs"])
    for run in data["runs"]:
        results = json.loads(Path(run["results"]).read_text())
        assert [(s["key"], s["error"]) for s in results["scenarios"]] == [("context", None)]
    page = (out / "COMPARE.md").read_text()
    assert f"`HEAD` = {head}" in page
    assert "## context" in page and f"HEAD ({head[:7]})" in page
    assert ": n/a (" not in page and "| n/a" not in page
    assert not Path(data["meta"]["workdir"]).exists()
    worktrees = subprocess.run(
        ["git", "worktree", "list"], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout
    assert data["meta"]["workdir"] not in worktrees
