"""The pure parts of ``benchmarks/compare.py``: the ref list, the run plan, and the tables
built from the suite's RESULTS.json data (no git, no processes)."""

from __future__ import annotations

from typing import Any

import pytest

from benchmarks.compare import (
    Ref,
    RunRecord,
    build_markdown,
    check_refs,
    collect,
    parse_run_dir,
    plan_runs,
    plan_units,
)

A = Ref("11ed82d", "11ed82d" + "0" * 33)
MAIN = Ref("main", "6a0b1e4" + "1" * 33)


def summary(*runs: float) -> dict[str, Any]:
    """A metric as ``stats.summarize_runs`` writes it."""
    ordered = sorted(runs)
    return {
        "median": ordered[len(ordered) // 2],
        "min": ordered[0],
        "max": ordered[-1],
        "runs": list(runs),
    }


def invoke_result(p50: tuple[float, ...], nats_ratio: float) -> dict[str, Any]:
    """A RESULTS.json with one scenario, a hub row with a ratio to NATS, and the NATS row."""
    columns = [{"key": "p50", "label": "p50 (µs)", "fmt": ".0f", "spread": True}]
    return {
        "scenarios": [
            {
                "key": "invoke",
                "title": "1. Invoke",
                "columns": columns,
                "rows": [
                    {
                        "system": "hub",
                        "metrics": {"p50": summary(*p50)},
                        "ratios": {"NATS p50": nats_ratio},
                    },
                    {"system": "NATS", "metrics": {"p50": summary(200, 210, 220)}, "ratios": {}},
                ],
                "extra_tables": [],
                "error": None,
            }
        ]
    }


def failed(key: str, error: str) -> dict[str, Any]:
    return {"scenarios": [{"key": key, "title": key, "columns": [], "rows": [], "error": error}]}


def test_refs_keep_their_order_and_refuse_repeats_and_nothing() -> None:
    assert check_refs(["11ed82d", "ef70039", "main"]) == ["11ed82d", "ef70039", "main"]
    with pytest.raises(ValueError, match="twice"):
        check_refs(["main", "ef70039", "main"])
    with pytest.raises(ValueError, match="at least one"):
        check_refs([])
    with pytest.raises(ValueError, match="not a git ref"):
        check_refs(["--rounds"])


def test_ref_label_shows_the_commit_only_when_the_name_hides_it() -> None:
    assert A.label == "11ed82d"
    assert MAIN.label == "main (6a0b1e4)"


def test_units_follow_the_suite_order_and_cpu_runs_with_the_rows_it_reads() -> None:
    units = plan_units(None)
    assert units[0] == ["invoke", "fanout", "cpu"]
    assert ["fanout"] not in units and ["cpu"] not in units
    assert ["node"] in units and ["deltas"] in units
    assert plan_units(["fanout", "invoke"]) == [["invoke"], ["fanout"]]
    assert plan_units(["cpu"]) == [["invoke", "fanout", "cpu"]]


def test_runs_go_ref_after_ref_then_round_after_round() -> None:
    plan = plan_runs(["a", "b", "c"], [["invoke"], ["node"]], 2)
    assert [(k, u[0], r) for k, u, r in plan] == [
        (1, "invoke", "a"),
        (1, "invoke", "b"),
        (1, "invoke", "c"),
        (1, "node", "a"),
        (1, "node", "b"),
        (1, "node", "c"),
        (2, "invoke", "a"),
        (2, "invoke", "b"),
        (2, "invoke", "c"),
        (2, "node", "a"),
        (2, "node", "b"),
        (2, "node", "c"),
    ]
    with pytest.raises(ValueError):
        plan_runs(["a"], [["invoke"]], 0)


def test_a_cell_pools_every_repeat_of_every_round_and_ratios_are_per_run() -> None:
    results = [
        ("11ed82d", "current", invoke_result((300, 310, 320), 1.5)),
        ("main", "current", invoke_result((250, 260, 270), 1.2)),
        ("11ed82d", "current", invoke_result((330, 290, 305), 1.4)),
        ("main", "current", invoke_result((240, 255, 265), 1.3)),
    ]
    text = "\n".join(build_table_text(results))
    assert "| p50 (µs) | 308 [290\u2013330] | 258 [240\u2013270] | 0.84 |" in text
    assert "| \u00d7 NATS p50 | 1.45 [1.40\u20131.50] | 1.25 [1.20\u20131.30] | 0.86 |" in text
    assert "**NATS**" in text


def test_a_failed_scenario_is_na_with_its_reason_and_the_own_harness_fills_in() -> None:
    error = "Traceback (most recent call last):\n  ...\nImportError: cannot import name 'Pieces'"
    results = [
        ("11ed82d", "current", failed("invoke", error)),
        ("11ed82d", "own", invoke_result((300, 310, 320), 1.5)),
        ("main", "current", invoke_result((250, 260, 270), 1.2)),
    ]
    text = "\n".join(build_table_text(results))
    assert "- 11ed82d: n/a (current harness: ImportError: cannot import name 'Pieces')" in text
    assert "310 [300\u2013320] (own harness)" in text
    only_error = [
        ("11ed82d", "current", failed("invoke", error)),
        ("main", "current", invoke_result((250,), 1.2)),
    ]
    text = "\n".join(build_table_text(only_error))
    assert "| p50 (µs) | n/a | 250 | - |" in text


def test_an_own_harness_run_does_not_replace_a_scenario_the_current_one_measured() -> None:
    results = [
        ("11ed82d", "current", invoke_result((300,), 1.5)),
        ("11ed82d", "own", invoke_result((999,), 9.0)),
        ("main", "current", invoke_result((250,), 1.2)),
    ]
    text = "\n".join(build_table_text(results))
    assert "999" not in text and "| p50 (µs) | 300 | 250 | 0.83 |" in text


def test_the_page_names_command_refs_load_and_every_run() -> None:
    meta = {
        "command": "python -m benchmarks.compare 11ed82d main --only invoke",
        "started": "2026-12-07 07:00:00 UTC",
        "seconds": 12.5,
        "load_start": [1.0, 1.5, 2.0],
        "load_end": [2.5, 2.0, 1.75],
    }
    runs = [
        RunRecord("11ed82d", 1, ["invoke"], "current", "x", [1.0, 1, 1], [1.25, 1, 1], 3.0, 6.0, 0),
    ]
    text = build_markdown(
        collect([("11ed82d", "current", invoke_result((300,), 1.5))]), [A, MAIN], meta, runs
    )
    assert "`python -m benchmarks.compare 11ed82d main --only invoke`" in text
    assert f"`main` = {MAIN.commit}" in text
    assert "at start 1.00/1.50/2.00, at end 2.50/2.00/1.75" in text
    assert "| 1 | invoke | 11ed82d | current | 6.0 | 3.0 | 1.00 → 1.25 |" in text
    assert "## invoke" in text and "### 1. Invoke" in text


def build_table_text(results: list[tuple[str, str, dict[str, Any]]]) -> list[str]:
    from benchmarks.compare import build_table

    lines: list[str] = []
    for table in collect(results):
        lines += build_table(table, [A, MAIN])
    return lines


def test_a_table_first_seen_in_a_later_run_stays_with_its_scenario() -> None:
    late = invoke_result((250,), 1.2)
    late["scenarios"][0]["extra_tables"] = [
        {"title": "Sync API", **{k: late["scenarios"][0][k] for k in ("columns", "rows")}}
    ]
    other = invoke_result((5,), 1.0)
    other["scenarios"][0].update(key="context", title="4. Context")
    results = [
        ("11ed82d", "current", invoke_result((300,), 1.5)),
        ("11ed82d", "current", other),
        ("main", "current", late),
    ]
    assert [(t.scenario, t.title) for t in collect(results)] == [
        ("invoke", "1. Invoke"),
        ("invoke", "Sync API"),
        ("context", "4. Context"),
    ]


def test_run_directories_name_their_round_ref_and_harness() -> None:
    refs = [A, MAIN]
    assert parse_run_dir("r2-invoke+fanout+cpu-6a0b1e4-current", refs) == (2, "main", "current")
    assert parse_run_dir("r1-kernel-11ed82d-own", refs) == (1, "11ed82d", "own")
    assert parse_run_dir("r1-kernel-abcdef0-own", refs) is None
    assert parse_run_dir("r1-kernel-11ed82d-other", refs) is None
    assert parse_run_dir("quick", refs) is None
