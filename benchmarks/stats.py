"""Summaries of repeated measurements: percentiles per run, medians across runs."""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from typing import Any

__all__ = ["percentile", "ratio", "summarize_latencies", "summarize_runs"]


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0-100) with linear interpolation; NaN for no values."""
    if not values:
        return math.nan
    data = sorted(values)
    if len(data) == 1:
        return float(data[0])
    pos = (len(data) - 1) * q / 100.0
    lo = math.floor(pos)
    hi = min(lo + 1, len(data) - 1)
    return float(data[lo] + (data[hi] - data[lo]) * (pos - lo))


def summarize_latencies(samples: Sequence[float]) -> dict[str, float]:
    """p50 / p90 / p99 / mean / max of one run's latency samples."""
    return {
        "n": len(samples),
        "p50": percentile(samples, 50),
        "p90": percentile(samples, 90),
        "p99": percentile(samples, 99),
        "mean": statistics.fmean(samples) if samples else math.nan,
        "max": max(samples) if samples else math.nan,
    }


def summarize_runs(runs: Sequence[dict[str, float]]) -> dict[str, Any]:
    """For each metric: the median across runs, its min and max, and every run's value."""
    keys: list[str] = []
    for run in runs:
        for key in run:
            if key not in keys:
                keys.append(key)
    out: dict[str, Any] = {}
    for key in keys:
        values = [float(r[key]) for r in runs if key in r and r[key] is not None]
        values = [v for v in values if not math.isnan(v)]
        out[key] = {
            "median": statistics.median(values) if values else math.nan,
            "min": min(values) if values else math.nan,
            "max": max(values) if values else math.nan,
            "runs": values,
        }
    return out


def ratio(a: float | None, b: float | None) -> float:
    if a is None or b is None or b == 0 or math.isnan(a) or math.isnan(b):
        return math.nan
    return a / b
