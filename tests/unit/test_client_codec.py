"""The client's value codec: JSON plus dates, bytes, numpy arrays and DataFrames."""

from __future__ import annotations

import datetime as dt
import json
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import orjson
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jupyter_interop.client.codec import (
    Codec,
    date_string,
    parse_date,
    revive,
    unwrap_value,
    wrap_value,
)
from jupyter_interop.client.errors import SerializationError

UTC = dt.timezone.utc


@contextmanager
def local_zone(name: str) -> Iterator[None]:
    """This process's local time zone is ``name`` (the TZ variable) inside the block."""
    before = os.environ.get("TZ")
    os.environ["TZ"] = name
    time.tzset()
    try:
        yield
    finally:
        if before is None:
            del os.environ["TZ"]
        else:
            os.environ["TZ"] = before
        time.tzset()


def roundtrip(value: Any, binary: bool = False) -> Any:
    frame = Codec(binary).encode({"v": value})
    if frame[:1] != b"{":
        from jupyter_interop.protocol.frames import unpack_frame

        header, buffers = unpack_frame(frame)
        return revive(orjson.loads(header), buffers)["v"]
    message = orjson.loads(frame)
    return revive(message)["v"] if Codec.needs_revive(frame) else message["v"]


def test_dates_use_the_io_connect_encoding() -> None:
    aware = dt.datetime(2024, 1, 2, 3, 4, 5, 678000, tzinfo=UTC)
    assert date_string(aware) == f"#T42_DATE#{int(aware.timestamp() * 1000)}"
    assert parse_date(date_string(aware)) == aware
    other_zone = aware.astimezone(dt.timezone(dt.timedelta(hours=-5)))
    assert parse_date(date_string(other_zone)) == aware
    naive = dt.datetime(2024, 1, 2, 3, 4, 5)  # local time, as datetime.timestamp() says
    assert parse_date(date_string(naive)) == naive.astimezone(UTC)
    with local_zone("UTC"):
        assert date_string(dt.date(1970, 1, 2)) == "#T42_DATE#86400000"
    assert parse_date("#T42_DATE#nope") == "#T42_DATE#nope"
    assert roundtrip(pd.Timestamp("2024-01-02 03:04:05")) == dt.datetime(
        2024, 1, 2, 3, 4, 5, tzinfo=UTC
    )
    assert roundtrip(pd.NaT) is None
    assert roundtrip(np.datetime64("2024-01-02T03:04:05.123")) == dt.datetime(
        2024, 1, 2, 3, 4, 5, 123000, tzinfo=UTC
    )


def test_naive_datetimes_and_dates_are_local_time_on_both_sides() -> None:
    """A naive datetime is the writer's local time and a date its local midnight; the reader
    revives the instant in its own local time, so in the writer's zone it gets the writer's
    wall time back (README, "Values"); elsewhere it gets the same instant in its zone."""
    naive = dt.datetime(2024, 1, 2, 3, 4, 5, 678000)
    with local_zone("America/New_York"):
        wire = json_frame({"at": naive, "day": dt.date(2024, 7, 4)})
        same_zone = revive(json.loads(wire))
        assert same_zone["at"].replace(tzinfo=None) == naive
        assert same_zone["at"].utcoffset() == dt.timedelta(hours=-5)
        assert same_zone["at"] == dt.datetime(2024, 1, 2, 8, 4, 5, 678000, tzinfo=UTC)
        assert same_zone["day"].replace(tzinfo=None) == dt.datetime(2024, 7, 4)
        assert same_zone["day"].utcoffset() == dt.timedelta(hours=-4)  # summer time
    with local_zone("Asia/Tokyo"):
        elsewhere = revive(json.loads(wire))
        assert elsewhere["at"] == same_zone["at"]  # the same instant
        assert elsewhere["at"].replace(tzinfo=None) == dt.datetime(2024, 1, 2, 17, 4, 5, 678000)
    aware = dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=dt.timezone(dt.timedelta(hours=2)))
    with local_zone("Europe/Paris"):
        assert revive(json.loads(json_frame({"at": aware})))["at"] == aware


def json_frame(value: Any) -> bytes:
    """``value`` encoded in its JSON form (no binary frames), as a JS peer would read it."""
    frame = Codec().encode(value)
    assert frame[:1] == b"{"
    return frame


def test_json_form_of_bytes_and_revive_nested() -> None:
    frame = Codec().encode(
        {"data": {"raw": b"\x00\xff", "list": [b"a", {"d": dt.date(2000, 1, 1)}]}}
    )
    assert json.loads(frame)["data"]["raw"] == {"__ji__": "bytes", "base64": "AP8="}
    assert Codec.needs_revive(frame)
    data = revive(orjson.loads(frame))["data"]
    assert data == {"raw": b"\x00\xff", "list": [b"a", {"d": dt.datetime(2000, 1, 1, tzinfo=UTC)}]}
    assert not Codec.needs_revive(b'{"type":"result","result":{"a":"#T42 but not a date"}}')


def test_wrap_and_unwrap() -> None:
    assert wrap_value({"a": 1}) == {"a": 1}
    assert wrap_value(3) == {"_value": 3} and wrap_value(None) == {"_value": None}
    assert unwrap_value({"_value": [1]}) == [1]
    assert unwrap_value({"_value": 1, "other": 2}) == {"_value": 1, "other": 2}


@pytest.mark.parametrize("binary", [False, True])
@pytest.mark.parametrize(
    "array",
    [
        np.arange(12, dtype="float64").reshape(3, 4),
        np.array([1, -2, 3], dtype="int16"),
        np.array([True, False]),
        np.array([1 + 2j], dtype="complex128"),
        np.array(["2024-01-02", "NaT"], dtype="datetime64[ms]"),
        np.array(["ab", "c"]),
        np.arange(6, dtype="uint8").reshape(2, 3).T,  # not C-contiguous
        np.array(2.5, dtype="float32"),  # 0-d
    ],
)
def test_ndarray_round_trip(array: np.ndarray, binary: bool) -> None:
    got = roundtrip(array, binary)
    assert isinstance(got, np.ndarray)
    assert got.dtype == array.dtype and got.shape == array.shape
    np.testing.assert_array_equal(got, array)


def test_ndarray_json_form_is_readable_without_numpy() -> None:
    form = json.loads(Codec().encode({"v": np.array([[1.5, 2.0]])}))["v"]
    assert form == {"__ji__": "ndarray", "dtype": "<f8", "shape": [1, 2], "data": [[1.5, 2.0]]}


@pytest.mark.parametrize("binary", [False, True])
def test_dataframe_round_trip(binary: bool) -> None:
    frame = pd.DataFrame(
        {
            "i": np.arange(5, dtype="int64"),
            "f": np.linspace(0, 1, 5),
            "s": list("abcde"),
            "b": [True, False, True, False, True],
            "t": pd.date_range("2024-01-01", periods=5, freq="h"),
        },
        index=pd.Index([10, 20, 30, 40, 50], name="row"),
    )
    got = roundtrip(frame, binary)
    pd.testing.assert_frame_equal(got, frame, check_index_type=False, check_dtype=False)
    assert list(got.dtypes.astype(str))[:2] == ["int64", "float64"]
    assert got.index.name == "row"


def test_dataframe_json_form() -> None:
    form = json.loads(Codec().encode({"v": pd.DataFrame({"a": [1, 2], "b": ["x", "y"]})}))["v"]
    assert form["__ji__"] == "dataframe"
    assert form["columns"] == ["a", "b"] and form["index"] == [0, 1]
    assert form["data"] == [[1, "x"], [2, "y"]] and form["dtypes"][0] == "int64"


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ({1, 2}, "builtins.set"),
        (object(), "builtins.object"),
        (2**70, "64-bit"),
        (dt.time(12), "datetime.time"),
    ],
)
def test_values_that_cannot_be_sent(value: Any, message: str) -> None:
    with pytest.raises(SerializationError, match=message):
        Codec().encode({"v": {"nested": [value]}})
    with pytest.raises(SerializationError, match=message):
        Codec().prepare({"nested": value})


def test_prepare_pre_encodes_plain_values_once() -> None:
    codec = Codec()
    prepared = codec.prepare({"a": [1, 2]})
    assert isinstance(prepared, orjson.Fragment)
    assert orjson.loads(codec.encode({"x": prepared})) == {"x": {"a": [1, 2]}}
    raw = Codec(binary=True).prepare({"b": b"\x00"})  # attachments are encoded with the message
    assert raw == {"b": b"\x00"}


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)


@settings(max_examples=200, deadline=None)
@given(json_values)
def test_plain_json_values_round_trip_unchanged(value: Any) -> None:
    assert roundtrip(value) == value


@settings(max_examples=100, deadline=None)
@given(
    st.datetimes(
        min_value=dt.datetime(1900, 1, 1), max_value=dt.datetime(2200, 1, 1), timezones=st.just(UTC)
    )
)
def test_aware_datetimes_round_trip_to_the_millisecond(value: dt.datetime) -> None:
    got = roundtrip(value)
    assert got == value.replace(microsecond=value.microsecond // 1000 * 1000)


def test_allocator_tuning_can_be_left_alone() -> None:
    """``tune_allocator=False`` keeps the process's allocator as it was (checked in a fresh
    interpreter: the tuning is once per process)."""
    import subprocess
    import sys

    script = (
        "from jupyter_interop.client.codec import Codec\n"
        "from jupyter_interop.protocol import malloc\n"
        "big = {'type': 'call', 'arguments_kv': {'blob': bytes(1 << 20)}}\n"
        "Codec(binary=True, tune_allocator=False).encode(big)\n"
        "print(malloc._tuned)\n"
        "Codec(binary=True).encode(big)\n"
        "print(malloc._tuned or not malloc.HAS_MALLOC_TRIM)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True
    ).stdout.split()
    assert out == ["False", "True"]
