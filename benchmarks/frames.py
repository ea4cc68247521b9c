"""The DataFrame the large-payload scenario shares: numeric columns, a given size."""

from __future__ import annotations

from typing import Any

#: bytes per row of :func:`make_frame` (8 columns of 8 bytes)
ROW_BYTES = 64


def rows_for(nbytes: int) -> int:
    return max(1, nbytes // ROW_BYTES)


def read_all(df: Any) -> float:
    """Touch every value of ``df`` (a sum per column): what a receiver holding its own data
    can do at once, page faults of a mapped value included."""
    return float(sum(float(df[column].sum()) for column in df.columns))


def make_frame(rows: int) -> Any:
    """A DataFrame of ``rows`` rows: 6 float64 and 2 int64 columns (64 bytes a row)."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(42)
    # column by column, so that building it needs no second copy (no block consolidation)
    df = pd.DataFrame(index=pd.RangeIndex(rows))
    for i in range(6):
        df[f"f{i}"] = rng.random(rows)
    df["i0"] = np.arange(rows, dtype=np.int64)
    df["i1"] = rng.integers(0, 1 << 40, rows, dtype=np.int64)
    return df
