"""Binary attachments through the hub core: carried by reference, encoded per kind of peer."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from typing import Any

import numpy as np
import orjson
import pandas as pd
import pytest
from hubkit import TOKEN, HubKit

from jupyter_interop.hub import PeerConn
from jupyter_interop.protocol import ProtocolError
from jupyter_interop.protocol.codec import encode
from jupyter_interop.protocol.frames import (
    Attachment,
    FrameError,
    attach,
    dataframe_placeholder,
    ndarray_placeholder,
    pack_frame,
    unpack_frame,
)
from jupyter_interop.server.attachments import FrameCache, decode_frame


def binary_frame(message: dict[str, Any], values: dict[str, Any]) -> bytes:
    """A client's binary frame: ``values`` (name -> array/DataFrame/bytes) become placeholders
    at ``message["data"][name]``."""
    buffers: list[Any] = []
    data: dict[str, Any] = {}
    for name, value in values.items():
        if isinstance(value, bytes):
            buffers.append(value)
            data[name] = {"__ji__": "bytes", "buffers": [len(buffers) - 1]}
        elif isinstance(value, pd.DataFrame):
            data[name] = dataframe_placeholder(value, buffers)
        else:
            data[name] = ndarray_placeholder(value, buffers)
    return pack_frame(orjson.dumps({**message, "data": data}), buffers)


def test_frame_format_round_trip_and_errors() -> None:
    frame = pack_frame(b'{"a":1}', [b"xyz", memoryview(np.arange(3, dtype="<i8")).cast("B"), b""])
    assert frame[:4] == b"JIB1"
    header, buffers = unpack_frame(frame)
    assert bytes(header) == b'{"a":1}'
    assert bytes(buffers[0]) == b"xyz" and buffers[2].nbytes == 0
    assert np.frombuffer(buffers[1], "<i8").tolist() == [0, 1, 2]
    assert all(buffers[i].obj is buffers[0].obj for i in range(3))  # views, no copies
    for bad in (b"JIB", b"NOPE" + frame[4:], frame[:-3]):
        with pytest.raises(FrameError):
            unpack_frame(bad)
    with pytest.raises(FrameError, match="missing buffers"):
        attach({"v": {"__ji__": "bytes", "buffers": [5]}}, [])
    with pytest.raises(ProtocolError, match="Bad binary frame"):
        decode_frame(b"JIB1" + b"\xff" * 20)


def test_decoded_placeholders_become_attachments() -> None:
    array = np.arange(4.0)
    frame = binary_frame({"type": "publish"}, {"arr": array, "raw": b"\x01\x02"})
    message = decode_frame(frame)
    arr, raw = message["data"]["arr"], message["data"]["raw"]
    assert isinstance(arr, Attachment) and arr.kind == "ndarray" and arr.nbytes == 32
    assert arr.meta == {"__ji__": "ndarray", "dtype": "<f8", "shape": [4]}
    assert isinstance(raw, Attachment) and bytes(raw.buffers[0]) == b"\x01\x02"


def hello(kit: HubKit, app: str, binary: bool) -> Any:
    client = kit.raw()
    extensions = {"jupyter_interop": {"binary": True}} if binary else {}
    welcome = client.send(
        {
            "domain": "global",
            "type": "hello",
            "identity": {"application": app},
            "authentication": {"method": "access-token", "token": TOKEN},
            "extensions": extensions,
        }
    )[0]
    accepted = (welcome.get("extensions") or {}).get("jupyter_interop") or {}
    assert accepted.get("binary", False) is binary
    client.peer_id = welcome["peer_id"]
    client.conn.attrs["extensions"] = accepted  # what the gateway records after hello
    client.join("agm", "bus")
    client.take()
    return client


def raw_out(
    kit: HubKit, conn: PeerConn, message: dict[str, Any]
) -> list[tuple[PeerConn, dict]]:
    return kit.hub.handle(conn, message)


def test_hub_carries_attachments_by_reference_everywhere() -> None:
    kit = HubKit()
    server = hello(kit, "server", binary=True)
    caller = hello(kit, "caller", binary=True)
    js = hello(kit, "js", binary=False)
    server.send(
        {
            "domain": "agm",
            "type": "register",
            "methods": [
                {"id": "1", "name": "M", "flags": {"streaming": False}},
                {"id": "2", "name": "S", "flags": {"streaming": True}},
            ],
        }
    )
    array = Attachment(
        {"__ji__": "ndarray", "dtype": "<i8", "shape": [2]}, [memoryview(np.array([7, 8]).data)]
    )
    # call -> invoke
    out = raw_out(
        kit,
        caller.conn,
        {
            "domain": "agm",
            "type": "call",
            "request_id": "c1",
            "server_id": server.peer_id,
            "method_id": "1",
            "arguments_kv": {"arr": array},
        },
    )
    [(conn, invoke)] = out
    assert conn is server.conn and invoke["arguments_kv"]["arr"] is array
    # yield -> result
    out = raw_out(
        kit,
        server.conn,
        {
            "domain": "agm",
            "type": "yield",
            "invocation_id": invoke["invocation_id"],
            "result": {"back": array},
        },
    )
    [(conn, result)] = out
    assert conn is caller.conn and result["result"]["back"] is array
    # publish / post -> event, to a binary and a JSON subscriber
    subs = {}
    for who in (caller, js):
        [(_, interest)] = raw_out(
            kit,
            who.conn,
            {
                "domain": "agm",
                "type": "subscribe",
                "request_id": "s",
                "server_id": server.peer_id,
                "method_id": "2",
            },
        )
        raw_out(
            kit,
            server.conn,
            {
                "domain": "agm",
                "type": "accepted",
                "subscription_id": interest["subscription_id"],
                "stream_id": "b",
            },
        )
        subs[who.peer_id] = interest["subscription_id"]
    events = raw_out(
        kit,
        server.conn,
        {"domain": "agm", "type": "publish", "stream_id": "b", "data": {"arr": array}},
    )
    assert len(events) == 2 and all(m["data"]["arr"] is array for _, m in events)
    cache = FrameCache()
    frames = {conn: cache.frame_for(m, conn is caller.conn) for conn, m in events}
    assert frames[caller.conn][:4] == b"JIB1"  # binary peer: placeholder + buffer
    header, buffers = unpack_frame(frames[caller.conn])
    assert json.loads(bytes(header))["data"]["arr"] == {
        "__ji__": "ndarray",
        "dtype": "<i8",
        "shape": [2],
        "buffers": [0],
    }
    assert np.frombuffer(buffers[0], "<i8").tolist() == [7, 8]
    assert json.loads(frames[js.conn])["data"]["arr"] == {  # JS peer: the JSON form
        "__ji__": "ndarray",
        "dtype": "<i8",
        "shape": [2],
        "data": [7, 8],
    }
    [(conn, post)] = raw_out(
        kit,
        server.conn,
        {
            "domain": "agm",
            "type": "post",
            "subscription_id": subs[js.peer_id],
            "data": {"arr": array},
        },
    )
    assert conn is js.conn and post["data"]["arr"] is array
    # bus
    for who in (caller, js):
        who.send({"domain": "bus", "type": "subscribe", "topic": "t.>"})
    out = raw_out(
        kit,
        server.conn,
        {"domain": "bus", "type": "publish", "topic": "t.x", "data": {"arr": array}},
    )
    assert len(out) == 2 and all(m["data"]["arr"] is array for _, m in out)


def test_contexts_retain_attachments_for_snapshots() -> None:
    kit = HubKit()
    writer = hello(kit, "writer", binary=True)
    reader = hello(kit, "reader", binary=True)
    js = hello(kit, "js", binary=False)
    frame = pd.DataFrame({"x": [1, 2], "y": ["a", "b"]})
    message = decode_frame(
        binary_frame(
            {"domain": "global", "type": "create-context", "request_id": "1", "name": "big"},
            {"df": frame},
        )
    )
    created = writer.send(message)
    context_id = next(m for m in created if m["type"] == "context-created")["context_id"]
    out = raw_out(
        kit,
        reader.conn,
        {
            "domain": "global",
            "type": "subscribe-context",
            "request_id": "2",
            "context_id": context_id,
        },
    )
    [(_, snapshot)] = out
    attachment = snapshot["data"]["df"]
    assert isinstance(attachment, Attachment) and attachment.meta["format"] == "arrow"
    binary = FrameCache().frame_for(snapshot, True)
    _, buffers = unpack_frame(binary)
    import pyarrow as pa

    table = pa.ipc.open_stream(pa.py_buffer(buffers[0])).read_all()
    pd.testing.assert_frame_equal(table.to_pandas(), frame)
    [(_, js_snapshot)] = raw_out(
        kit,
        js.conn,
        {
            "domain": "global",
            "type": "subscribe-context",
            "request_id": "3",
            "context_id": context_id,
        },
    )
    form = json.loads(FrameCache().frame_for(js_snapshot, False))["data"]["df"]
    assert form == {
        "__ji__": "dataframe",
        "columns": ["x", "y"],
        "index": [0, 1],
        "data": [[1, "a"], [2, "b"]],
        "dtypes": ["int64", "str"],
    }
    # the coalescing path (and anything else using protocol.encode) gets the JSON form too
    assert json.loads(encode(js_snapshot))["data"]["df"] == form


def test_json_forms_of_bytes_and_conversion_failures() -> None:
    raw = Attachment({"__ji__": "bytes"}, [memoryview(b"\x00\xff")])
    assert json.loads(encode({"v": raw}))["v"] == {
        "__ji__": "bytes",
        "base64": base64.b64encode(b"\x00\xff").decode(),
    }
    broken = Attachment({"__ji__": "ndarray", "dtype": "<f8", "shape": [3]}, [memoryview(b"12")])
    form = json.loads(encode({"v": broken}))["v"]
    assert form["__ji__"] == "ndarray" and "cannot convert" in form["error"]
    assert raw.json_fragment() is raw.json_fragment()  # converted once


def test_plain_messages_are_encoded_once_for_every_kind() -> None:
    cache = FrameCache()
    message = {"type": "event", "data": {"x": 1}}
    assert cache.frame_for(message, True) is cache.frame_for(message, False)


def test_ndarray_json_form_on_a_hub_without_numpy() -> None:
    """The hub converts common dtypes with memoryview alone (numpy is an optional extra)."""
    code = (
        "import sys, json\n"
        "from jupyter_interop.protocol.frames import Attachment\n"
        "from jupyter_interop.protocol.codec import encode\n"
        "raw = memoryview(bytes.fromhex('000000000000f03f0000000000000040000000000000084000000000'"
        "'00001040'))\n"
        "a = Attachment({'__ji__': 'ndarray', 'dtype': '<f8', 'shape': [2, 2]}, [raw])\n"
        "print(json.dumps([json.loads(encode({'v': a}))['v'], 'numpy' in sys.modules]))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    form, numpy_loaded = json.loads(out.stdout)
    assert form == {
        "__ji__": "ndarray",
        "dtype": "<f8",
        "shape": [2, 2],
        "data": [[1.0, 2.0], [3.0, 4.0]],
    }
    assert numpy_loaded is False
