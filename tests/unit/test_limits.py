"""The nesting limit (protocol/limits.py): measured exactly on frames, enforced where data
enters the hub and the client, and never letting the hub store what it could not send."""

from __future__ import annotations

import json
from typing import Any

import orjson
import pytest
from hubkit import HubKit
from hypothesis import given, settings
from hypothesis import strategies as st

from jupyter_interop.client.codec import Codec
from jupyter_interop.client.errors import SerializationError
from jupyter_interop.protocol import ProtocolError, Reason, decode
from jupyter_interop.protocol.frames import pack_frame
from jupyter_interop.protocol.framing import decode_batch
from jupyter_interop.protocol.limits import (
    MAX_NESTING,
    frame_too_deep,
    path_too_deep,
    value_depth,
)


def nested(depth: int, key: str = "a") -> Any:
    value: Any = "x"
    for level in range(depth):
        value = {key: value} if level % 2 else [value, "]]", 3]
    return value


def text(value: Any) -> str:
    return json.dumps(value)  # (orjson cannot write 255 levels)


def test_the_limit_stays_well_below_what_orjson_can_write() -> None:
    orjson.dumps(nested(MAX_NESTING + 100))  # the hub's writer has room above the limit
    with pytest.raises(TypeError):
        orjson.dumps(nested(255))


@pytest.mark.parametrize("depth", [0, 1, 2, 5, MAX_NESTING - 1, MAX_NESTING])
def test_frames_up_to_the_limit_pass(depth: int) -> None:
    frame = text(nested(depth))
    assert not frame_too_deep(frame)
    assert not frame_too_deep(frame.encode())
    assert not frame_too_deep(memoryview(frame.encode()))


@pytest.mark.parametrize("depth", [MAX_NESTING + 1, 200, 300])
def test_frames_over_the_limit_are_found(depth: int) -> None:
    frame = text(nested(depth))
    assert frame_too_deep(frame)
    assert frame_too_deep(frame.encode())
    assert frame_too_deep("[" * 1024 + "]" * 1024)  # as deep as orjson reads


def test_brackets_in_strings_and_escapes_do_not_count() -> None:
    tricky = ['\\"[[[', "\\\\", '"{{{', "\\u005c", "]]]]" * 200, "[" * 300]
    frame = orjson.dumps({"k": tricky, "n": nested(3), 'q"[': 1})
    assert not frame_too_deep(frame, 4)  # the object, then the three levels of "n"
    assert frame_too_deep(frame, 3)


@pytest.mark.parametrize(
    "strings",
    [
        ["", "", ""],  # empty strings: adjacent quotes
        ["a", "", "[[[[", "b"],  # a string with brackets after plain ones
        ["]]]]", "a", ""],  # one before them
        ["{", "}", "[", "]"],  # only strings with brackets
        ["x" * 100] * 300,  # a run of stream items: no bracket in any string
    ],
)
def test_strings_with_and_without_brackets_side_by_side(strings: list[str]) -> None:
    value = {"items": [{"d": s, "": [s]} for s in strings], "n": nested(3)}
    frame = orjson.dumps(value)
    depth = value_depth(value, 10_000)
    assert not frame_too_deep(frame, depth)
    assert frame_too_deep(frame, depth - 1)


@settings(max_examples=200, deadline=None)
@given(
    st.recursive(
        st.none() | st.integers(-1000, 1000) | st.text(alphabet='[]{}"\\ab'),
        lambda children: st.lists(children, max_size=3)
        | st.dictionaries(st.text(alphabet='[]{}"\\a', max_size=3), children, max_size=3),
        max_leaves=40,
    ),
    st.integers(min_value=0, max_value=12),
)
def test_frame_measure_agrees_with_the_decoded_value(value: Any, limit: int) -> None:
    frame = orjson.dumps(value)
    assert frame_too_deep(frame, limit) == (value_depth(value, 10_000) > limit)


def test_decode_refuses_with_the_message_so_the_error_answers_it() -> None:
    message = {"domain": "bus", "type": "publish", "request_id": "r7", "data": nested(200)}
    with pytest.raises(ProtocolError) as caught:
        decode(text(message))
    assert caught.value.reason_uri == Reason.TOO_DEEP
    assert caught.value.request is not None
    assert caught.value.request["request_id"] == "r7"
    assert str(MAX_NESTING) in caught.value.reason


def test_a_batch_refuses_only_its_deep_items() -> None:
    fine = {"type": "publish", "request_id": "a", "data": nested(MAX_NESTING - 2)}
    deep = {"type": "publish", "request_id": "b", "data": nested(MAX_NESTING)}
    deeper = {"type": "publish", "request_id": "c", "data": nested(300)}
    items = decode_batch(text([fine, deep, deeper, fine]))
    assert items[0] == fine and items[3] == fine
    for refused, request_id in ((items[1], "b"), (items[2], "c")):
        assert isinstance(refused, ProtocolError)
        assert refused.reason_uri == Reason.TOO_DEEP
        assert refused.request is not None and refused.request["request_id"] == request_id


def test_the_binary_header_is_held_to_the_same_limit() -> None:
    from jupyter_interop.server.attachments import decode_frame

    header = text({"type": "publish", "request_id": "h", "data": nested(200)}).encode()
    with pytest.raises(ProtocolError) as caught:
        decode_frame(pack_frame(header, [b"abc"]))
    assert caught.value.reason_uri == Reason.TOO_DEEP
    assert caught.value.request is not None and caught.value.request["request_id"] == "h"


def test_a_context_path_cannot_build_data_deeper_than_a_message_may_carry() -> None:
    assert not path_too_deep(3, nested(MAX_NESTING - 4))
    room = MAX_NESTING - 2 - 9  # a path of 10 parts: 9 maps above the value
    assert not path_too_deep(10, nested(room))
    assert path_too_deep(10, nested(room + 1))
    assert path_too_deep(MAX_NESTING, 1)
    kit = HubKit()
    writer = kit.client("writer", "agm")
    reader = kit.client("reader", "agm")
    created = writer.send(
        {"type": "create-context", "name": "deep.paths", "data": {}, "lifetime": "retained"}
    )
    context_id = next(m for m in created if m["type"] == "context-created")["context_id"]
    reader.send({"type": "subscribe-context", "context_id": context_id})
    reader.take()
    path = ".".join(["p"] * 10)
    for value, accepted in ((nested(room), True), (nested(room + 1), False)):
        replies = writer.send(
            {
                "type": "update-context",
                "context_id": context_id,
                "delta": {"commands": [{"type": "set", "path": path, "value": value}]},
            }
        )
        assert replies[0]["type"] == ("success" if accepted else "error"), replies[0]
    assert len(reader.take("context-updated")) == 1
    snapshot = reader.send({"type": "subscribe-context", "context_id": context_id})[0]
    frame = orjson.dumps(snapshot)
    assert not frame_too_deep(frame)
    assert frame_too_deep(frame, MAX_NESTING - 1), "the accepted value sits right at the limit"


def test_the_client_refuses_to_send_what_the_hub_would_refuse() -> None:
    codec = Codec()
    codec.encode({"type": "publish", "data": nested(MAX_NESTING - 1)})
    for depth in (MAX_NESTING, 300):
        with pytest.raises(SerializationError, match=f"deeper than {MAX_NESTING} levels"):
            codec.encode({"type": "publish", "data": nested(depth)})
    binary = Codec(binary=True)
    with pytest.raises(SerializationError, match="deeper than"):
        binary.encode({"type": "publish", "data": [b"raw", nested(MAX_NESTING)]})


def test_the_client_decoder_refuses_deep_binary_headers() -> None:
    header = text({"type": "result", "request_id": "z", "result": nested(200)}).encode()
    with pytest.raises(ProtocolError) as caught:
        Codec(binary=True).decode_binary(pack_frame(header, [b"abc"]))
    assert caught.value.reason_uri == Reason.TOO_DEEP
