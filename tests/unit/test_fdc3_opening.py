"""The bookkeeping of FDC3 ``open(app, context)`` without sockets (``fdc3/opening.py``): what a
started app reads from its starting context, that one listener per process takes it, and the
opener's wait for the response method's invocation."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

import jupyter_interop as ji
from jupyter_interop.fdc3.opening import OpenRequest, PendingOpen, claim, starting_context
from jupyter_interop.protocol.wire import FDC3_OPEN_RESPONSE_PREFIX

INSTRUMENT = {"type": "fdc3.instrument", "id": {"ticker": "AAPL"}}
OPENER = {"appId": "opener", "instanceId": "peer-1"}


def test_a_starting_context_round_trips_into_a_request() -> None:
    pending = PendingOpen()
    assert pending.name.startswith(FDC3_OPEN_RESPONSE_PREFIX + ".")
    asked = starting_context(pending.name, OPENER, INSTRUMENT)
    assert asked == {
        "meta": {"responseMethodName": pending.name, "instance": OPENER},
        "context": INSTRUMENT,
    }
    request = OpenRequest.from_starting_context(asked)
    assert request == OpenRequest(pending.name, OPENER, INSTRUMENT)
    assert request.takes("fdc3.instrument") and request.takes(None)
    assert not request.takes("fdc3.contact")
    assert request.target() == {"peer_id": "peer-1"}
    anonymous = OpenRequest.from_starting_context(
        {**asked, "meta": {"responseMethodName": pending.name}}
    )
    assert anonymous is not None and anonymous.opener == {} and anonymous.target() == "best"


@pytest.mark.parametrize(
    "value",
    [
        None,
        [],
        {"gwURL": "ws://x", "gwToken": "t"},  # io.Connect Desktop's own starting context
        {"meta": {"responseMethodName": "Some.Other.Method"}, "context": INSTRUMENT},
        {"meta": {"responseMethodName": 7}, "context": INSTRUMENT},
        {"meta": "x", "context": INSTRUMENT},
        {"meta": {"responseMethodName": FDC3_OPEN_RESPONSE_PREFIX + ".a"}, "context": {"id": 1}},
        {"meta": {"responseMethodName": FDC3_OPEN_RESPONSE_PREFIX + ".a"}, "context": "ctx"},
    ],
)
def test_other_starting_contexts_ask_for_nothing(value: Any) -> None:
    assert OpenRequest.from_starting_context(value) is None


def test_one_listener_per_process_claims_a_request() -> None:
    request = OpenRequest(PendingOpen().name, OPENER, INSTRUMENT)
    assert claim(request) is True
    assert claim(request) is False
    assert claim(OpenRequest(PendingOpen().name, OPENER, INSTRUMENT)) is True


def test_the_first_answer_saying_a_listener_took_it_ends_the_wait() -> None:
    async def scenario() -> None:
        pending = PendingOpen()
        first, second = ji.Instance("peer-a"), ji.Instance("peer-b")
        assert pending.answer(first, {}) is False  # not io.Connect's {listenerInvoked: true}
        assert pending.answer(first, {"listenerInvoked": "yes"}) is False
        assert await pending.wait(0.01) is None  # nobody took it: the caller's AppTimeout
        waiting = asyncio.ensure_future(pending.wait(60))
        assert pending.answer(first, {"listenerInvoked": True}) is True
        assert pending.answer(second, {"listenerInvoked": True}) is True
        assert await waiting is first
        assert pending.listener is first

    asyncio.run(scenario())
