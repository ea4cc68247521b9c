"""Arrays, DataFrames and bytes between Python peers as binary frames, through a real hub.

Peers that negotiated ``binary`` exchange raw buffers (Arrow IPC for DataFrames); a peer that
did not (``binary=False``, like a JS client) gets the documented JSON form, converted by the
hub, and the Python client revives it into the same types.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import numpy as np
import orjson
import pandas as pd
import pytest
from test_client_support import Clients, Recorder, StandaloneHub, assert_same, wait_for


def sample_frame(rows: int) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "i": np.arange(rows, dtype="int64"),
            "f": np.linspace(0.0, 1.0, rows),
            "sym": [f"S{i % 97}" for i in range(rows)],
            "t": pd.date_range("2024-01-01", periods=rows, freq="s"),
            "ok": np.arange(rows) % 2 == 0,
        },
        index=pd.RangeIndex(rows, name="row"),
    )


VALUES = {
    "f8-2d": np.arange(12.0).reshape(3, 4),
    "i4": np.array([1, -2, 3], dtype="int32"),
    "u1": np.frombuffer(b"\x00\x01\xff", dtype="uint8"),
    "bool": np.array([True, False]),
    "c16": np.array([1 + 2j, -1j]),
    "dt": np.array(["2024-01-01T00:00:00.123", "NaT"], dtype="datetime64[ms]"),
    "bytes": b"\x00\x01binary\xff",
    "frame": sample_frame(50),
}


@pytest.mark.parametrize("receiver_binary", [True, False], ids=["binary", "json-receiver"])
@pytest.mark.parametrize("sender_binary", [True, False], ids=["binary", "json-sender"])
def test_values_through_invoke_both_kinds_of_peer(
    clients: Clients, sender_binary: bool, receiver_binary: bool
) -> None:
    server = clients("bin-server", binary=sender_binary)
    caller = clients("bin-caller", binary=receiver_binary)
    assert bool(server._conn.extensions.get("binary")) is sender_binary
    received: dict[str, Any] = {}

    @server.methods.register("Bin.Echo")
    def echo(name: str, value: Any) -> Any:
        received[name] = value
        return {"name": name, "value": value}

    for name, value in VALUES.items():
        result = caller.methods.invoke("Bin.Echo", {"name": name, "value": value}).returned
        assert result["name"] == name
        assert_same(received[name], value)  # arguments, caller -> server
        assert_same(result["value"], value)  # result, server -> caller


def test_received_arrays_are_read_only_views(clients: Clients) -> None:
    server, caller = clients("ro-server"), clients("ro-caller")
    server.methods.register("Ro.Make", lambda: np.arange(5.0))
    array = caller.methods.invoke("Ro.Make").returned
    assert not array.flags.writeable
    copy = array.copy()
    copy[0] = 42
    assert copy[0] == 42


def test_streams_bus_and_contexts_carry_binary_values(clients: Clients) -> None:
    pub, sub, json_sub = clients("bs-pub"), clients("bs-sub"), clients("bs-json", binary=False)
    frame = sample_frame(1000)
    stream = pub.streams.create("Bs.Frames", on_added=lambda s: s.push({"snapshot": frame.head(3)}))
    data, json_data = Recorder(), Recorder()
    sub.streams.subscribe("Bs.Frames", on_data=data)
    json_sub.streams.subscribe("Bs.Frames", on_data=json_data)
    wait_for(lambda: len(stream.subscriptions()) == 2, what="two subscribers")
    stream.push({"frame": frame, "arr": np.ones(3)})
    for recorder in (data, json_data):
        # on_added runs on the event thread: its snapshot and this push may arrive either way
        items = {"snapshot" if "snapshot" in c[0].data else "live": c[0] for c in recorder.wait(2)}
        assert_same(items["snapshot"].data["snapshot"], frame.head(3))
        assert items["snapshot"].private and not items["live"].private
        assert_same(items["live"].data["frame"], frame)
        assert_same(items["live"].data["arr"], np.ones(3))

    bus, json_bus = Recorder(), Recorder()
    sub.bus.subscribe("bin.*", bus)
    json_sub.bus.subscribe("bin.*", json_bus)
    pub.bus.publish("bin.blob", {"blob": b"\x00" * 1000, "arr": np.arange(3)})
    for recorder in (bus, json_bus):
        [(message, _topic, _source)] = recorder.wait(1)
        assert message["blob"] == b"\x00" * 1000
        assert_same(message["arr"], np.arange(3))

    events = Recorder()
    sub.contexts.subscribe("Bs.ctx", events)
    pub.contexts.set("Bs.ctx", {"frame": frame, "meta": {"rows": 1000}})
    events.wait(1)  # the parked subscription took its snapshot
    pub.contexts.set_path("Bs.ctx", "extra.arr", np.arange(4))
    calls = events.wait(2)
    assert_same(calls[0][0]["frame"], frame)
    assert_same(calls[1][0]["extra"]["arr"], np.arange(4))
    # a later subscriber's snapshot comes from what the hub retained
    late = clients("bs-late")
    snapshot = late.contexts.get("Bs.ctx")
    assert_same(snapshot["frame"], frame)
    assert_same(snapshot["extra"]["arr"], np.arange(4))
    assert_same(json_sub.contexts.get("Bs.ctx")["frame"], frame)


def test_large_dataframe_through_a_context(clients: Clients) -> None:
    writer, reader = clients("big-writer"), clients("big-reader")
    frame = sample_frame(1_000_000)
    events = Recorder()
    reader.contexts.subscribe("Big.frame", events)
    started = time.perf_counter()
    writer.contexts.set("Big.frame", {"df": frame})
    [(data, _, _, meta)] = events.wait(1, timeout=60)
    elapsed = time.perf_counter() - started
    pd.testing.assert_frame_equal(data["df"], frame)
    assert meta.updater == writer.instance
    assert elapsed < 20, f"1M rows took {elapsed:.1f} s"


def test_dataframe_above_the_frame_limit_travels_in_chunks(clients: Clients) -> None:
    """A DataFrame larger than the hub's 64 MiB frame limit is chunked both ways."""
    writer, reader, late = clients("huge-writer"), clients("huge-reader"), clients("huge-late")
    rows = 1_200_000  # 8 float/int columns: about 77 MB of Arrow data
    rng = np.random.default_rng(7)
    frame = pd.DataFrame(
        {f"c{i}": rng.random(rows) if i % 2 else np.arange(rows, dtype="int64") for i in range(8)}
    )
    assert frame.memory_usage(index=False).sum() > 64 * 1024 * 1024
    events = Recorder()
    reader.contexts.subscribe("Huge.frame", events)
    writer.contexts.set("Huge.frame", {"df": frame, "rows": rows})
    [(data, _, _, meta)] = events.wait(1, timeout=120)
    assert data["rows"] == rows
    pd.testing.assert_frame_equal(data["df"], frame)
    assert meta.updater == writer.instance
    # a snapshot of the retained context for a later reader is chunked by the hub too
    pd.testing.assert_frame_equal(late.contexts.get("Huge.frame")["df"], frame)
    # the connections are still usable for small messages
    writer.contexts.set("Huge.frame", {"rows": 0})
    assert late.contexts.get("Huge.frame") == {"rows": 0}


def test_binary_frames_need_the_extension(hub: StandaloneHub) -> None:
    """A peer that did not negotiate binary frames cannot send one (the hub says why)."""
    from websockets.asyncio.client import connect

    from jupyter_interop.protocol.frames import pack_frame

    async def main() -> dict[str, Any]:
        async with connect(hub.url, proxy=None) as ws:
            hello = {
                "domain": "global",
                "type": "hello",
                "request_id": "1",
                "identity": {"application": "raw"},
                "authentication": {"method": "access-token", "token": hub.token},
            }
            await ws.send(json.dumps(hello))
            while json.loads(await ws.recv())["type"] != "welcome":
                pass
            await ws.send(pack_frame(orjson.dumps({"type": "ping"}), [b"x"]))
            while True:
                reply = json.loads(await ws.recv())
                if reply["type"] == "error":
                    return dict(reply)

    error = asyncio.run(asyncio.wait_for(main(), 10))
    assert "Binary frames need the 'binary' extension" in error["reason"]


async def _binary_peer(hub: StandaloneHub) -> Any:
    from websockets.asyncio.client import connect

    ws = await connect(hub.url, proxy=None, max_size=None)
    hello = {
        "domain": "global",
        "type": "hello",
        "request_id": "1",
        "identity": {"application": "raw-binary"},
        "authentication": {"method": "access-token", "token": hub.token},
        "extensions": {"jupyter_interop": {"binary": True}},
    }
    await ws.send(json.dumps(hello))
    while True:
        reply = json.loads(await ws.recv())
        if reply["type"] == "welcome":
            assert reply["extensions"]["jupyter_interop"]["binary"]
            return ws


async def reply_to(ws: Any, request_id: str) -> dict[str, Any]:
    while True:  # announcements of other peers' contexts may come first
        message = json.loads(await ws.recv())
        if message.get("request_id") == request_id:
            return dict(message)


def test_the_hub_refuses_a_chunked_message_above_its_cap(hub: StandaloneHub) -> None:
    """The first chunk announces the size: over max_attachment_bytes, a GW3 error at once."""
    from jupyter_interop.protocol.chunks import (
        CHUNK_HEADER,
        CHUNK_MAGIC,
        DEFAULT_MAX_ATTACHMENT_BYTES,
    )
    from jupyter_interop.protocol.frames import frame_parts

    async def main() -> tuple[dict[str, Any], dict[str, Any]]:
        ws = await _binary_peer(hub)
        try:
            header = {"domain": "global", "type": "join", "destination": "bus", "request_id": "9"}
            parts, _ = frame_parts(orjson.dumps(header), [b"x" * 100])
            first = b"".join(bytes(p) for p in parts)
            announced = DEFAULT_MAX_ATTACHMENT_BYTES + 1
            await ws.send(CHUNK_HEADER.pack(CHUNK_MAGIC, 1, 0, announced, 0) + first)
            refused = await reply_to(ws, "9")
            # the connection stays usable
            await ws.send(json.dumps({**header, "request_id": "10"}))
            return refused, await reply_to(ws, "10")
        finally:
            await ws.close()

    refused, ok = asyncio.run(asyncio.wait_for(main(), 20))
    assert refused["type"] == "error" and refused["request_id"] == "9"
    assert refused["reason_uri"] == "global.errors.limits_exceeded"
    assert "exceeds" in refused["reason"]
    assert ok["type"] == "success" and ok["request_id"] == "10"


def test_a_peer_dying_mid_message_is_forgotten(hub: StandaloneHub, clients: Clients) -> None:
    """Half a chunked message then a dropped socket: nothing is delivered, the hub goes on."""
    from jupyter_interop.protocol.chunks import chunk_frames
    from jupyter_interop.protocol.frames import frame_parts

    events = Recorder()
    reader = clients("cut-reader")
    reader.contexts.subscribe("Cut.ctx", events)
    blob = np.arange(3_000_000, dtype="float64")  # 24 MB: several chunks

    async def main() -> None:
        ws = await _binary_peer(hub)
        message = {
            "domain": "context",
            "type": "create",
            "request_id": "5",
            "name": "Cut.ctx",
            "data": {
                "a": {"__ji__": "ndarray", "dtype": "<f8", "shape": [len(blob)], "buffers": [0]}
            },
            "lifetime": "retained",
        }
        parts, total = frame_parts(orjson.dumps(message), [blob])
        chunks = chunk_frames(parts, total, 1)
        await ws.send(next(chunks))
        await ws.send(next(chunks))
        ws.transport.abort()  # gone without a close frame

    asyncio.run(asyncio.wait_for(main(), 20))
    wait_for(lambda: hub.view("status")["connections"] == len(clients.opened), what="the drop")
    assert reader.contexts.get("Cut.ctx") in ({}, None)
    writer = clients("cut-writer")
    writer.contexts.set("Cut.ctx", {"a": blob})
    [(data, *_)] = events.wait(1, timeout=60)
    np.testing.assert_array_equal(data["a"], blob)
