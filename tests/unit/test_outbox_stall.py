"""The stall rule applied without a push (what the transport's timer does), and the
events-dropped notice after a consumer caught up."""

from __future__ import annotations

from typing import Any

from jupyter_interop.hub.connection import PeerConn
from jupyter_interop.server.outbox import Outbox, OutboxLimits


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def event(n: int) -> dict[str, Any]:
    return {"domain": "bus", "type": "event", "subscription_id": "s", "data": {"n": n}}


def backlogged(clock: Clock, notices: bool = False) -> Outbox:
    conn = PeerConn()
    if notices:
        conn.attrs["extensions"] = {"notices": True}
    outbox = Outbox(conn, OutboxLimits(soft_messages=5, stall_seconds=10), clock=clock)
    for n in range(20):  # 5 queued, 15 dropped
        assert outbox.push(event(n))
    return outbox


def test_the_stall_rule_closes_a_backlog_that_nothing_more_is_pushed_to() -> None:
    clock = Clock()
    outbox = backlogged(clock)
    assert outbox.check_stall()
    clock.now += 9
    assert outbox.check_stall() and outbox.closed_reason is None
    clock.now += 2
    assert not outbox.check_stall()
    assert outbox.closed_reason is not None and "no progress for 11 s" in outbox.closed_reason
    assert not outbox.check_stall(), "an overflowed outbox stays overflowed"


def test_a_queue_under_its_soft_limit_is_never_judged_stalled() -> None:
    clock = Clock()
    outbox = Outbox(PeerConn(), OutboxLimits(soft_messages=5, stall_seconds=10), clock=clock)
    outbox.push(event(0))
    clock.now += 3600
    assert outbox.check_stall() and outbox.closed_reason is None


def test_a_consumer_that_reads_again_gets_the_rest_then_the_notice() -> None:
    clock = Clock()
    outbox = backlogged(clock, notices=True)
    clock.now += 5
    assert outbox.check_stall()
    frames = outbox.take()
    assert len(frames) == 6
    assert b'"events-dropped"' in frames[-1] and b'"count":15' in frames[-1]
    assert outbox.check_stall() and not outbox.has_output
