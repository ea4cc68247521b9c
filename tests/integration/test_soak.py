"""The soak in its CI size: two minutes of mixed Python and @interopio/core load with peers
killed and the hub restarted (kill -9 and SIGTERM) under --persist (benchmarks/soak.py).

Nothing may be lost, duplicated or diverge, no acknowledged context update may be missing
after a restart, and nothing may fail; the run must really have gone through every kind of
chaos. The full-length run is ``python -m benchmarks.soak --minutes N`` (docs/RELIABILITY.md).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

from test_client_support import REPO

COMPAT_MODULES = REPO / "tests" / "compat" / "node_modules" / "@interopio" / "core"


def test_two_minute_soak_loses_nothing(tmp_path: Path) -> None:
    assert shutil.which("node"), "node is not on PATH: run scripts/setup.sh"
    assert COMPAT_MODULES.is_dir(), "run `npm ci --prefix tests/compat` (scripts/setup.sh does)"
    out = tmp_path / "soak.json"
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.soak", "--minutes", "2", "--json", str(out)],
        cwd=str(REPO),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert out.exists(), done.stderr[-4000:]
    summary = json.loads(out.read_text())
    report = json.dumps(summary, indent=1)
    assert summary["errors"] == 0, report
    assert summary["events_lost"] == 0 and summary["events_duplicated"] == 0, report
    assert summary["context_divergence"] == 0, report
    assert summary["acked_updates_lost"] == 0, report
    assert done.returncode == 0, report + done.stderr[-2000:]
    # it really went through load and chaos
    assert summary["rounds"] >= 5 and summary["events_expected"] > 0, report
    assert summary["invocations"] > 0 and summary["context_checks"] > 0, report
    chaos = summary["chaos"]
    assert chaos.get("kill-hub", 0) >= 1 and chaos.get("restart-hub", 0) >= 1, report
    assert chaos.get("kill-python", 0) + chaos.get("kill-node", 0) >= 3, report
