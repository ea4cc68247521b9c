"""The client's protocol core without I/O (client/core.py), driven with frames only: no
socket, no loop; plain ``concurrent.futures`` futures stand for what requests wait on."""

from __future__ import annotations

from concurrent.futures import Future
from typing import Any

import orjson
import pytest

from jupyter_interop.client.core import ClientProtocol, Deadlines
from jupyter_interop.client.errors import RemoteError
from jupyter_interop.protocol.chunks import CHUNK_SIZE, ChunkedFrame
from jupyter_interop.protocol.errors import Reason
from jupyter_interop.protocol.limits import MAX_NESTING

WELCOME = {
    "domain": "global",
    "type": "welcome",
    "peer_id": "p1",
    "resolved_identity": {"application": "test", "machine": "m"},
    "extensions": {"jupyter_interop": {"binary": True, "batch": True}},
    "options": {"info": {"hub_id": "h1"}},
}


def welcomed() -> ClientProtocol:
    core = ClientProtocol()
    core.welcomed(WELCOME, tune_allocator=False)
    return core


def nested(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = [value]
    return value


def test_welcome_gives_the_identity_extensions_and_codec() -> None:
    core = welcomed()
    assert core.peer_id == "p1" and core.hub_id == "h1"
    assert core.instance is not None and core.instance.peer_id == "p1"
    assert core.extensions == {"binary": True, "batch": True}
    assert core.codec.binary


def test_a_request_is_stamped_and_resolved_by_its_reply() -> None:
    core = welcomed()
    future: Future[Any] = Future()
    replies: list[Any] = []
    request_id, frame = core.request(
        {"domain": "agm", "type": "call"}, future, "a call", replies.append
    )
    sent = orjson.loads(frame)
    assert sent == {"domain": "agm", "type": "call", "request_id": request_id, "peer_id": "p1"}
    core.receive(orjson.dumps({"type": "result", "request_id": request_id, "n": 1}))
    assert future.result()["n"] == 1 and replies == [future.result()]
    core.forget(request_id)
    assert not core.pending


def test_hello_carries_no_peer_id_and_an_error_reply_raises() -> None:
    core = ClientProtocol()
    future: Future[Any] = Future()
    request_id, frame = core.request({"domain": "global", "type": "hello"}, future, "hello")
    assert "peer_id" not in orjson.loads(frame)
    core.receive(
        orjson.dumps(
            {"type": "error", "request_id": request_id, "reason": "no", "reason_uri": "x.y"}
        )
    )
    error = future.exception()
    assert isinstance(error, RemoteError) and error.reason == "no" and error.reason_uri == "x.y"


def test_events_go_to_their_handlers_and_fire_and_forget_frames_are_stamped() -> None:
    core = welcomed()
    seen: list[Any] = []
    core.on("bus", "event", lambda m: seen.append(m["n"]))
    core.on("bus", "event", lambda m: seen.append(-m["n"]))
    core.receive(orjson.dumps({"domain": "bus", "type": "event", "n": 3}))
    core.receive(orjson.dumps({"domain": "agm", "type": "event", "n": 4}))  # no handler
    assert seen == [3, -3]
    message = orjson.loads(core.frame({"domain": "bus", "type": "publish"}))
    assert message["peer_id"] == "p1" and message["request_id"]


def test_a_batch_keeps_the_order_runs_and_replies_before_later_events() -> None:
    core = welcomed()
    calls: list[Any] = []
    core.on_many("agm", "event", lambda run: calls.append([m["n"] for m in run]))
    future: Future[Any] = Future()
    request_id, _ = core.request(
        {"domain": "agm", "type": "subscribe"},
        future,
        "a subscription",
        lambda r: calls.append("reply"),
    )
    events = [{"domain": "agm", "type": "event", "n": n} for n in range(4)]
    core.receive(
        orjson.dumps(
            [
                events[0],
                events[1],
                {"type": "subscribed", "request_id": request_id},
                events[2],
                "not a message",
                events[3],
            ]
        )
    )
    assert calls == [[0, 1], "reply", [2, 3]]  # what is not a message is skipped
    assert future.done()
    with pytest.raises(ValueError):
        core.on_many("global", "success", lambda run: None)  # a reply type takes no run


def test_a_reply_nested_too_deep_fails_its_request_and_the_rest_is_handled() -> None:
    core = welcomed()
    first: Future[Any] = Future()
    second: Future[Any] = Future()
    id1, _ = core.request({"domain": "agm", "type": "call"}, first, "one")
    id2, _ = core.request({"domain": "agm", "type": "call"}, second, "two")
    deep = {"type": "result", "request_id": id1, "value": nested(MAX_NESTING + 5)}
    core.receive(orjson.dumps([deep, {"type": "result", "request_id": id2}]))
    error = first.exception()
    assert isinstance(error, RemoteError) and error.reason_uri == Reason.TOO_DEEP
    assert second.result()["request_id"] == id2
    alone: Future[Any] = Future()
    id3, _ = core.request({"domain": "agm", "type": "call"}, alone, "three")
    core.receive(orjson.dumps({"type": "result", "request_id": id3, "v": nested(MAX_NESTING)}))
    assert isinstance(alone.exception(), RemoteError)
    core.receive(b"not json")  # logged, nothing else
    core.receive("[1, 2")


def test_a_large_binary_message_arrives_in_chunks() -> None:
    core = welcomed()
    seen: list[Any] = []
    core.on("agm", "event", lambda m: seen.append(m["data"]))
    payload = b"x" * (CHUNK_SIZE + 100)
    frame = core.codec.encode({"domain": "agm", "type": "event", "data": payload})
    assert isinstance(frame, ChunkedFrame)
    chunks = [bytes(chunk) for chunk in frame]
    for chunk in chunks[:-1]:
        core.receive(chunk)
        assert not seen
    core.receive(chunks[-1])
    assert len(seen) == 1 and bytes(seen[0]) == payload
    core.receive(chunks[0])
    core.lost()  # a message cut off by a drop is never completed
    core.receive(chunks[-1])
    assert len(seen) == 1


def test_fail_pending_fails_and_forgets_every_request() -> None:
    core = welcomed()
    futures: list[Future[Any]] = [Future(), Future()]
    for n, future in enumerate(futures):
        core.request({"domain": "agm", "type": "call"}, future, f"call {n}")
    core.fail_pending(lambda what: ConnectionError(what))
    assert [str(f.exception()) for f in futures] == ["call 0", "call 1"]
    assert not core.pending


def test_deadlines_tell_when_to_rearm_and_give_back_only_what_is_due() -> None:
    deadlines = Deadlines()
    assert deadlines.earliest is None and deadlines.take_due(100.0) == []
    assert deadlines.add("r1", 10.0, "call one", 5.0) is True  # the first: arm the timer
    assert deadlines.add("r2", 20.0, "call two", 15.0) is False  # later: the timer stands
    assert deadlines.add("r3", 5.0, "call three", 1.0) is True  # earlier: re-arm
    assert deadlines.earliest == 5.0
    deadlines.discard("r3")  # answered: its deadline finds nothing when the timer fires
    assert deadlines.take_due(5.0) == [] and deadlines.earliest == 10.0
    assert deadlines.take_due(12.0) == [("r1", "call one", 5.0)]
    assert deadlines.earliest == 20.0
    assert deadlines.take_due(30.0) == [("r2", "call two", 15.0)]
    assert deadlines.earliest is None
