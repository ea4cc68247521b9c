"""The per-connection outgoing queue: drop, coalesce and overflow rules, without sockets."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from jupyter_interop.hub.connection import PeerConn
from jupyter_interop.protocol.limits import COMPOSED_DELTA_CHECK_BYTES
from jupyter_interop.server.outbox import Outbox, OutboxLimits


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def bus_event(n: int) -> dict[str, Any]:
    return {"domain": "bus", "type": "event", "subscription_id": "s1", "data": {"n": n}}


def agm_event(n: int) -> dict[str, Any]:
    return {"domain": "agm", "type": "event", "subscription_id": "s2", "data": {"n": n}}


def result(n: int) -> dict[str, Any]:
    return {"domain": "agm", "type": "result", "request_id": str(n), "result": {"n": n}}


def updated(context_id: str, delta: dict[str, Any], updater: str = "p1") -> dict[str, Any]:
    return {
        "domain": "global",
        "type": "context-updated",
        "context_id": context_id,
        "updater_id": updater,
        "delta": delta,
    }


def decoded(frames: list[bytes]) -> list[dict[str, Any]]:
    return [orjson.loads(f) for f in frames]


def small(**kw: Any) -> OutboxLimits:
    base: dict[str, Any] = {
        "soft_messages": 3,
        "soft_bytes": 1_000_000,
        "hard_messages": 6,
        "hard_bytes": 2_000_000,
        "stall_seconds": 0,
    }
    base.update(kw)
    return OutboxLimits(**base)


def test_fifo_and_take_empties() -> None:
    box = Outbox(PeerConn(), small())
    for n in range(3):
        assert box.push(result(n))
    assert len(box) == 3
    assert box.pending_bytes == sum(len(orjson.dumps(result(n))) for n in range(3))
    assert [m["request_id"] for m in decoded(box.take())] == ["0", "1", "2"]
    assert len(box) == 0 and box.pending_bytes == 0
    assert box.take() == []


def test_given_frame_is_used_as_is() -> None:
    box = Outbox(PeerConn(), small())
    box.push(result(1), b'{"pre":"encoded"}')
    assert box.take() == [b'{"pre":"encoded"}']


def test_events_dropped_over_soft_limit_and_counted() -> None:
    conn = PeerConn()
    box = Outbox(conn, small())
    for n in range(3):
        box.push(bus_event(n))
    assert box.over_soft_limit
    for n in range(3, 8):
        assert box.push(bus_event(n))  # dropping is policy, not failure
        assert box.push(agm_event(n))
    assert len(box) == 3
    assert conn.attrs["dropped_events"] == 10
    # without the notices extension there is no notice, only the counter
    assert [m["data"]["n"] for m in decoded(box.take())] == [0, 1, 2]
    assert conn.attrs["dropped_events"] == 10


def test_results_are_never_dropped() -> None:
    conn = PeerConn()
    box = Outbox(conn, small())
    for n in range(6):
        assert box.push(result(n))
    assert len(box) == 6
    assert conn.attrs["dropped_events"] == 0


def test_drop_notice_after_the_backlog_when_negotiated() -> None:
    conn = PeerConn()
    conn.attrs["extensions"] = {"notices": True}
    box = Outbox(conn, small())
    for n in range(5):
        box.push(bus_event(n))
    first = decoded(box.take())
    assert [m.get("data", {}).get("n") for m in first[:3]] == [0, 1, 2]
    assert first[-1] == {"domain": "global", "type": "events-dropped", "count": 2, "total": 2}
    # a later backlog reports its own count and the running total
    for n in range(4):
        box.push(bus_event(n))
    second = decoded(box.take())
    assert second[-1] == {"domain": "global", "type": "events-dropped", "count": 1, "total": 3}
    # nothing dropped since: no notice
    box.push(bus_event(9))
    assert decoded(box.take()) == [bus_event(9)]


def test_has_output_includes_a_pending_notice() -> None:
    conn = PeerConn()
    conn.attrs["extensions"] = {"notices": True}
    box = Outbox(conn, small(soft_messages=1, hard_messages=2))
    box.push(bus_event(0))
    box.push(bus_event(1))  # dropped
    box.take()  # frames and notice
    assert not box.has_output


def test_context_updates_coalesce_into_one_composed_delta_at_the_end() -> None:
    state = {"a": 0, "b": 2}
    box = Outbox(PeerConn(), small(), snapshot=lambda cid: state if cid == "c1" else None)
    box.push(updated("c1", {"updated": {"a": 0}}))
    box.push(result(1))
    box.push(updated("c1", {"added": {"b": 2}}, updater="p2"))
    box.push(updated("c2", {"updated": {"x": 1}}))
    assert len(box) == 3
    out = decoded(box.take())
    assert [m["type"] for m in out] == ["result", "context-updated", "context-updated"]
    assert out[1]["context_id"] == "c1"
    assert out[1]["delta"] == {"added": {"a": 0, "b": 2}}  # each key once, not the value
    assert out[1]["updater_id"] == "p2"
    assert out[2]["delta"] == {"updated": {"x": 1}}  # alone: untouched


def test_an_update_that_resets_coalesces_into_a_reset_to_the_current_data() -> None:
    state = {"a": 1, "b": 2}
    box = Outbox(PeerConn(), small(), snapshot=lambda cid: state)
    box.push(updated("c1", {"added": {"a": 1}}))
    box.push(updated("c1", {"reset": {"b": 2}}))
    box.push(updated("c1", {"added": {"a": 1}}))
    assert [m["delta"] for m in decoded(box.take())] == [{"reset": {"a": 1, "b": 2}}]


def test_a_composed_delta_larger_than_the_value_becomes_the_value() -> None:
    state = {"kept": 1}
    box = Outbox(PeerConn(), small(soft_bytes=10**8, hard_bytes=10**9), snapshot=lambda c: state)
    big = "x" * COMPOSED_DELTA_CHECK_BYTES
    box.push(updated("c1", {"added": {"big": big}}))
    box.push(updated("c1", {"removed": ["big"], "added": {"other": big}}))
    box.push(updated("c1", {"removed": ["other"], "added": {"kept": 1}}))
    # the two first compose into 64 KiB; with the third it is small again, but the
    # value (measured at 64 KiB) was smaller: a reset was queued, and a reset composes
    # into a reset
    assert [m["delta"] for m in decoded(box.take())] == [{"reset": {"kept": 1}}]
    # the composed delta is larger than 64 KiB but not than the value: sent as a delta
    state = {"kept": 1, "big": big, "small": 1, "more": big}
    box.push(updated("c1", {"added": {"big": big}}))
    box.push(updated("c1", {"added": {"small": 1}}))
    assert [m["delta"] for m in decoded(box.take())] == [{"added": {"big": big, "small": 1}}]


def test_coalescing_composes_a_copy_of_what_the_hub_goes_on_changing() -> None:
    box = Outbox(PeerConn(), small(), snapshot=lambda cid: {})
    first = {"added": {"a": {"x": 1}}}
    box.push(updated("c1", first))
    first["added"]["a"]["x"] = 99  # the hub's data shares the delta's values
    box.push(updated("c1", {"commands": [{"type": "set", "path": "a.y", "value": 2}]}))
    assert [m["delta"] for m in decoded(box.take())] == [
        {"commands": [{"type": "set", "path": "a", "value": {"x": 1, "y": 2}}]}
    ]


def test_coalescing_keeps_both_deltas_when_the_context_is_gone_and_one_resets() -> None:
    box = Outbox(PeerConn(), small(), snapshot=lambda cid: None)
    box.push(updated("c1", {"updated": {"a": {"x": 1}}}))
    box.push(updated("c1", {"updated": {"a": {"y": 2}}}))  # composes without the data
    box.push(updated("c1", {"reset": {"a": 2}}))
    assert [m["delta"] for m in decoded(box.take())] == [
        {"updated": {"a": {"x": 1, "y": 2}}},
        {"reset": {"a": 2}},
    ]


def test_coalescing_applies_only_to_updates_still_queued() -> None:
    state = {"a": 2}
    box = Outbox(PeerConn(), small(), snapshot=lambda cid: state)
    box.push(updated("c1", {"updated": {"a": 1}}))
    box.take()
    box.push(updated("c1", {"updated": {"a": 2}}))
    assert decoded(box.take())[0]["delta"] == {"updated": {"a": 2}}


def test_tight_loop_of_updates_stays_small() -> None:
    counter = {"n": 0}
    box = Outbox(PeerConn(), small(), snapshot=lambda cid: {"n": counter["n"]})
    for n in range(10_000):
        counter["n"] = n
        assert box.push(updated("c1", {"updated": {"n": n}}))
    assert len(box) == 1
    assert len(box._entries) < 200  # superseded entries are compacted
    assert decoded(box.take()) == [{**updated("c1", {"added": {"n": 9999}})}]


def test_hard_message_limit_overflows_and_frees_memory() -> None:
    box = Outbox(PeerConn(), small())
    for n in range(6):
        assert box.push(result(n))
    assert not box.push(result(6))
    assert box.closed
    assert box.closed_reason is not None and box.closed_reason.startswith("slow consumer:")
    assert len(box) == 0 and box.pending_bytes == 0
    assert not box.push(result(7))
    assert box.take() == []


def test_hard_byte_limit_but_one_large_message_always_fits() -> None:
    box = Outbox(PeerConn(), small(soft_bytes=100, hard_bytes=1000))
    big = {"domain": "agm", "type": "result", "result": {"blob": "x" * 5000}}
    assert box.push(big)  # alone in the queue: accepted whatever its size
    assert not box.push(result(1))
    assert box.closed_reason is not None and "bytes" in box.closed_reason


def test_soft_byte_limit_drops_events() -> None:
    conn = PeerConn()
    box = Outbox(conn, small(soft_messages=1000, hard_messages=1000, soft_bytes=200))
    box.push({"domain": "bus", "type": "event", "data": "y" * 300})
    box.push(bus_event(1))
    assert len(box) == 1 and conn.attrs["dropped_events"] == 1


def test_stall_limit_closes_a_consumer_that_stopped_reading() -> None:
    clock = Clock()
    box = Outbox(PeerConn(), small(hard_messages=100, stall_seconds=10), clock=clock)
    for n in range(3):
        box.push(bus_event(n))
    clock.now += 5
    assert box.push(bus_event(3))  # dropped, but not stalled yet
    clock.now += 6
    assert not box.push(bus_event(4))
    assert box.closed_reason is not None and "no progress" in box.closed_reason


def test_stall_clock_is_the_oldest_pending_message() -> None:
    clock = Clock()
    box = Outbox(PeerConn(), small(hard_messages=100, stall_seconds=10), clock=clock)
    box.push(result(0))
    box.take()
    clock.now += 3600  # idle for an hour: not a stall
    for n in range(5):
        assert box.push(result(n))
    assert not box.closed


def test_close_discards_and_refuses() -> None:
    box = Outbox(PeerConn(), small())
    box.push(result(1))
    box.close("socket closed")
    assert box.closed_reason == "socket closed"
    assert not box.push(result(2))
    assert box.take() == []


def removal(mtype: str, server: str = "p9") -> dict[str, Any]:
    if mtype == "peer-removed":
        return {"domain": "agm", "type": mtype, "removed_id": server}
    return {"domain": "agm", "type": mtype, "server_id": server, "methods": ["0"]}


def test_removals_after_other_messages_are_held_until_released() -> None:
    box = Outbox(PeerConn(), small(soft_messages=5, hard_messages=10))
    box.push(result(1))  # e.g. the error of a call the dead server never answered
    box.push(removal("methods-removed"))
    box.push(removal("peer-removed"))
    box.push(bus_event(1))
    assert [m["type"] for m in decoded(box.take())] == ["result"]
    assert box.held and box.has_output and len(box) == 3
    assert box.take() == []  # nothing until the transport releases
    box.push(result(2))
    assert box.take() == []
    box.release()
    assert [m["type"] for m in decoded(box.take())] == [
        "methods-removed",
        "peer-removed",  # consecutive removals go together
        "event",
        "result",
    ]
    assert not box.held and not box.has_output


def test_removals_first_in_the_queue_are_not_held() -> None:
    box = Outbox(PeerConn(), small())
    box.push(removal("peer-removed"))
    box.push(result(1))
    assert len(box.take()) == 2
    assert not box.held


def test_a_second_removal_after_others_is_held_again() -> None:
    box = Outbox(PeerConn(), small(hard_messages=10))
    box.push(result(1))
    box.push(removal("peer-removed", "p1"))
    box.push(result(2))
    box.push(removal("peer-removed", "p2"))
    assert len(box.take()) == 1
    box.release()
    assert [m.get("removed_id") for m in decoded(box.take())] == ["p1", None]
    assert box.held
    box.release()
    assert [m.get("removed_id") for m in decoded(box.take())] == ["p2"]


def test_bus_messages_named_like_removals_are_not_held() -> None:
    box = Outbox(PeerConn(), small())
    box.push(result(1))
    box.push({"domain": "bus", "type": "peer-removed"})
    assert len(box.take()) == 2


def test_coalescing_still_works_behind_a_held_removal() -> None:
    state = {"v": 1}
    box = Outbox(PeerConn(), small(hard_messages=10), snapshot=lambda cid: state)
    box.push(result(1))
    box.push(removal("peer-removed"))
    box.push(updated("c1", {"updated": {"v": 0}}))
    box.take()
    state = {"v": 2}
    box.push(updated("c1", {"updated": {"v": 2}}))
    box.release()
    out = decoded(box.take())
    assert [m["type"] for m in out] == ["peer-removed", "context-updated"]
    assert out[1]["delta"] == {"added": {"v": 2}}


@pytest.mark.parametrize(
    "kwargs",
    [
        {"soft_messages": 0},
        {"soft_messages": 10, "hard_messages": 5},
        {"soft_bytes": 10, "hard_bytes": 5},
        {"stall_seconds": -1},
    ],
)
def test_limits_are_validated(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        OutboxLimits(**kwargs)


# ---------------------------------------------------------------------- batch extension


def batch_conn() -> PeerConn:
    conn = PeerConn()
    conn.attrs["extensions"] = {"batch": True}
    return conn


def test_batch_frames_joins_runs_of_json_and_keeps_binary_apart() -> None:
    from jupyter_interop.server.outbox import batch_frames

    a, b, c, d = (orjson.dumps({"n": i}) for i in range(4))
    binary = b"JIB1\x00binary"
    assert batch_frames([a]) == [a]
    assert batch_frames([a, b]) == [b"[" + a + b"," + b + b"]"]
    assert batch_frames([a, b, binary, c, d]) == [
        b"[" + a + b"," + b + b"]",
        binary,
        b"[" + c + b"," + d + b"]",
    ]
    assert batch_frames([a, binary, c]) == [a, binary, c]  # a run of one stays plain
    # a size cap closes a batch and starts the next; nothing is lost, order is kept
    capped = batch_frames([a, b, c, d], max_bytes=2 * len(a) + 1)
    flat = [m for f in capped for m in (orjson.loads(f) if f[:1] == b"[" else [orjson.loads(f)])]
    assert flat == [{"n": i} for i in range(4)]
    assert len(capped) == 2


def test_take_frames_a_batch_only_for_peers_that_negotiated_it() -> None:
    plain = Outbox(PeerConn())
    batched = Outbox(batch_conn())
    for outbox in (plain, batched):
        for n in range(5):
            outbox.push(result(n))
    frames = plain.take()
    assert [orjson.loads(f)["request_id"] for f in frames] == ["0", "1", "2", "3", "4"]
    (frame,) = batched.take()
    assert [m["request_id"] for m in orjson.loads(frame)] == ["0", "1", "2", "3", "4"]
    assert len(batched) == 0 and batched.pending_bytes == 0


def test_batch_keeps_held_removals_in_a_later_write() -> None:
    outbox = Outbox(batch_conn())
    outbox.push(result(1))
    outbox.push(result(2))
    outbox.push({"domain": "agm", "type": "peer-removed", "peer_id": "x"})
    (frame,) = outbox.take()
    assert [m["type"] for m in orjson.loads(frame)] == ["result", "result"]
    assert outbox.take() == []  # held
    outbox.release()
    (removal,) = outbox.take()
    assert orjson.loads(removal)["type"] == "peer-removed"


def _outbox_heap(outbox: Outbox, burst: int) -> int:
    """Bytes still allocated by outbox.py after ``burst`` results were queued and written."""
    import tracemalloc

    frames = [orjson.dumps(result(n)) for n in range(burst)]
    tracemalloc.start()
    try:
        for n, frame in enumerate(frames):
            outbox.push(result(n), frame)
        assert len(outbox.take()) == burst
        snapshot = tracemalloc.take_snapshot().filter_traces(
            [tracemalloc.Filter(True, "*jupyter_interop/server/outbox.py")]
        )
    finally:
        tracemalloc.stop()
    return sum(stat.size for stat in snapshot.statistics("filename"))


def test_an_emptied_queue_does_not_keep_the_memory_of_a_burst() -> None:
    # an emptied queue keeps at most a fresh deque (under 1 KiB) and the interpreter's free
    # lists of small objects, not the 8 KiB of blocks a deque caches after a burst
    after_burst = _outbox_heap(Outbox(PeerConn()), 1000)
    assert after_burst < 4096, after_burst
    outbox = Outbox(PeerConn())
    _outbox_heap(outbox, 1000)
    outbox.push(result(1))
    assert [orjson.loads(f)["request_id"] for f in outbox.take()] == ["1"]


def test_a_run_of_announcements_is_one_entry_and_keeps_its_order_and_counts() -> None:
    outbox = Outbox(PeerConn())
    for n in range(50):
        outbox.push({"domain": "agm", "type": "peer-added", "n": n})
    outbox.push({"domain": "agm", "type": "peer-removed", "n": 50})
    outbox.push({"domain": "agm", "type": "methods-removed", "n": 51})
    outbox.push({"domain": "agm", "type": "methods-added", "n": 52})
    assert len(outbox) == 53
    first = [orjson.loads(f)["n"] for f in outbox.take()]
    assert first == list(range(50)) and outbox.held  # removals after others wait
    outbox.release()
    assert [orjson.loads(f)["n"] for f in outbox.take()] == [50, 51, 52]
    assert len(outbox) == 0 and outbox.pending_bytes == 0
