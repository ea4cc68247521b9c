"""The record logic of large and binary federated context values, without NATS
(docs/FEDERATION.md, "Large context values"): what stays in the KV bucket, what goes into an
object, and the way back."""

from __future__ import annotations

import orjson
import pytest

from jupyter_interop.protocol.frames import TAG, Attachment, encode_binary, unpack_frame
from jupyter_interop.server.federation_context_objects import (
    ContextTooLarge,
    object_name,
    object_of,
    objects_bucket_name,
    pack_record,
    record_header,
    unpack_record,
)
from jupyter_interop.server.federation_contexts import decode_record, rebase

INLINE = 1000
BOUND = 10_000


def record(data: dict, delta: dict | None = None, **more: object) -> dict:
    return {
        "name": "prices",
        "data": data,
        "delta": delta,
        "prev": 3 if delta else None,
        "updater": "p1",
        "hub": "h1",
        "ticket": "t1",
        **more,
    }


def blob(size: int, fill: bytes = b"\x07") -> Attachment:
    return Attachment({TAG: "bytes"}, [memoryview(fill * size)])


def test_a_small_json_record_is_the_kv_value_itself_as_before() -> None:
    small = record({"px": 1.5}, {"updated": {"px": 1.5}})
    value, body = pack_record(small, name="k/3-x", inline_limit=INLINE, max_bytes=BOUND)
    assert body is None and value == orjson.dumps(small)
    assert decode_record(value, "prices") == small


def test_a_json_record_above_one_nats_message_goes_into_an_object() -> None:
    large = record({"text": "y" * 2000}, {"added": {"text": "y" * 2000}})
    value, body = pack_record(large, name="k/3-x", inline_limit=INLINE, max_bytes=BOUND)
    assert body is not None and len(value) < 300
    small = decode_record(value, "prices")
    assert "data" not in small and "delta" not in small
    assert small["value"] == {"object": "k/3-x", "size": len(body)}
    assert object_of(small) == "k/3-x"
    # what every hub orders by stays in the bucket
    assert {k: small[k] for k in ("prev", "updater", "hub", "ticket")} == {
        "prev": 3,
        "updater": "p1",
        "hub": "h1",
        "ticket": "t1",
    }
    assert unpack_record(small, body) == {**large, "value": small["value"]}


def test_a_small_binary_value_is_a_binary_frame_in_the_bucket() -> None:
    raw = blob(8, b"\x01")
    data = {"raw": raw, "n": 1}
    value, body = pack_record(
        record(data, {"reset": data}), name="k/3-y", inline_limit=INLINE, max_bytes=BOUND
    )
    assert body is None and value[:4] == b"JIB1"  # buffers, not base64
    assert record_header(value)["prev"] == 3 and object_of(record_header(value)) is None
    back = decode_record(value, "prices")
    assert isinstance(back["data"]["raw"], Attachment)
    assert bytes(back["data"]["raw"].buffers[0]) == b"\x01" * 8
    assert back["data"]["n"] == 1 and back["delta"]["reset"]["n"] == 1


def test_a_large_binary_value_goes_into_an_object_as_buffers() -> None:
    data = {"raw": blob(2000, b"\x02"), "n": 1}
    value, body = pack_record(
        record(data, {"reset": data}), name="k/3-y", inline_limit=INLINE, max_bytes=BOUND
    )
    assert body is not None and body[:4] == b"JIB1" and len(value) < 300
    small = decode_record(value, "prices")
    assert record_header(value) == small and object_of(small) == "k/3-y"
    back = unpack_record(small, body)
    assert isinstance(back["data"]["raw"], Attachment)
    assert bytes(back["data"]["raw"].buffers[0]) == b"\x02" * 2000
    assert back["data"]["n"] == 1 and back["delta"]["reset"]["n"] == 1


def test_what_is_no_record_has_no_header_and_is_refused() -> None:
    assert record_header(b"[1]") == {} and record_header(b"not json") == {}
    assert record_header(b"JIB1 truncated") == {}
    with pytest.raises(ValueError):
        decode_record(b"JIB1 truncated", "prices")


def test_a_reset_carries_its_buffers_once() -> None:
    """The delta that set the whole value holds the same attachments as the data."""
    big = blob(5000)
    data = {"big": big}
    value, body = pack_record(
        record(data, {"reset": data}), name="k/1-z", inline_limit=INLINE, max_bytes=BOUND
    )
    assert body is not None and 5000 < len(body) < 2 * 5000
    _header, buffers = unpack_frame(body)
    assert len(buffers) == 1
    back = unpack_record(decode_record(value, "prices"), body)
    assert bytes(back["delta"]["reset"]["big"].buffers[0]) == b"\x07" * 5000


def test_encode_binary_writes_an_attachment_met_twice_once() -> None:
    shared = blob(100)
    frame = encode_binary({"a": shared, "b": [shared], "c": blob(10)})
    header, buffers = unpack_frame(frame)
    assert len(buffers) == 2
    placeholders = orjson.loads(bytes(header))
    assert placeholders["a"]["buffers"] == placeholders["b"][0]["buffers"] == [0]
    assert placeholders["c"]["buffers"] == [1]


def test_a_value_over_the_bound_is_refused_naming_the_setting() -> None:
    with pytest.raises(ContextTooLarge, match=r"c\.InteropHub\.federation_max_context_bytes"):
        pack_record(
            record({"big": blob(BOUND)}), name="k/0-a", inline_limit=INLINE, max_bytes=BOUND
        )


def test_a_rebase_over_a_referenced_record_drops_its_old_reference() -> None:
    """The re-applied update is written as a new record: it gets its own object."""
    current = {**record({"n": 1, "big": blob(2000)}), "value": {"object": "k/2-old", "size": 9}}
    new = rebase(current, 5, {"updated": {"n": 2}}, updater="p2", hub="h2", ticket="t2")
    _value, body = pack_record(new, name="k/5-new", inline_limit=INLINE, max_bytes=BOUND)
    assert body is not None
    small = decode_record(_value, "prices")
    assert object_of(small) == "k/5-new" and small["prev"] == 5


def test_object_names_name_the_context_and_revision_and_never_repeat() -> None:
    names = {object_name("cHJpY2Vz", 7) for _ in range(50)}
    assert len(names) == 50
    assert all(n.startswith("cHJpY2Vz/7-") for n in names)
    assert objects_bucket_name("alice") == "ji-alice-context-values"
    assert object_of(None) is None and object_of(record({})) is None


@pytest.mark.parametrize(
    "broken",
    [
        {"name": "prices", "value": "k/1"},
        {"name": "prices", "value": {"object": "k/1"}},
        {"name": "prices", "value": {"object": 3, "size": 1}},
    ],
)
def test_a_broken_reference_is_refused(broken: dict) -> None:
    with pytest.raises(ValueError, match="reference"):
        decode_record(orjson.dumps(broken), "prices")


def test_a_broken_object_is_refused() -> None:
    small = {"name": "prices", "value": {"object": "k/1", "size": 2}}
    with pytest.raises(ValueError, match="no data object"):
        unpack_record(small, b"[]")


def test_an_old_object_no_revision_points_to_is_left_behind_and_nothing_else() -> None:
    from datetime import datetime, timezone

    from jupyter_interop.protocol.limits import FEDERATION_CONTEXT_SWEEP_AGE
    from jupyter_interop.server.federation_context_objects import left_behind, sweep_age

    now = datetime(2026, 1, 1, 12, 0, tzinfo=timezone.utc)
    old, young = "2026-01-01T10:00:00+00:00", "2026-01-01T11:59:00Z"
    age = 600.0
    assert left_behind("k/1-a", old, "k/2-b", now, age)  # superseded, never deleted
    assert left_behind("k/1-a", old, None, now, age)  # its context is gone (or inline now)
    assert not left_behind("k/2-b", old, "k/2-b", now, age)  # the current value
    assert not left_behind("k/3-c", young, "k/2-b", now, age)  # maybe about to be pointed to
    assert not left_behind("k/1-a", "", None, now, age)  # no readable time: kept
    assert not left_behind("k/1-a", "2026-01-01T10:00:00", None, now, age)  # no zone: kept
    # never shorter than the longest write of a value within the bound may take
    assert sweep_age(1) == FEDERATION_CONTEXT_SWEEP_AGE
    assert sweep_age(64 * 2**30) > 2 * 64 * 2**30 / (4 * 2**20)
