"""Python client <-> the real ``@interopio/core`` in Node, both directions, through the hub.

The Node side is ``test_client_js_peer.js``, using the packages installed in tests/compat
(``npm ci --prefix tests/compat``). A missing Node or missing packages fail the test with the
install hint (nothing is skipped).
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from nodekit import COMPAT, NodeLinePeer
from test_client_support import Clients, Recorder, StandaloneHub, wait_for

import jupyter_interop as ji

PEER = Path(__file__).with_name("test_client_js_peer.js")
UTC = dt.timezone.utc


class JsPeer(NodeLinePeer):
    """``test_client_js_peer.js`` with ``@interopio/core`` on the hub."""

    def __init__(self, hub: StandaloneHub) -> None:
        env = {**os.environ, "HUB_URL": hub.url, "HUB_TOKEN": hub.token, "COMPAT_DIR": str(COMPAT)}
        super().__init__(PEER, env, "@interopio/core")


@pytest.fixture(scope="module")
def js(hub: StandaloneHub) -> Iterator[JsPeer]:
    peer = JsPeer(hub)
    yield peer
    peer.close()


@pytest.fixture
def py(hub: StandaloneHub) -> Iterator[ji.Interop]:
    clients = Clients(hub)
    yield clients("py-peer")
    clients.close()


def js_date(value: dt.datetime) -> dict[str, str]:
    return {
        "$date": value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    }


def test_python_invokes_javascript(py: ji.Interop, js: JsPeer) -> None:
    when = dt.datetime(2024, 5, 6, 7, 8, 9, 250000, tzinfo=UTC)
    r = py.methods.invoke("Js.Echo", {"symbol": "AAPL", "when": when, "n": [1, 2]}, timeout=5)
    assert r.executed_by.application == "js-peer"
    assert r.returned["args"] == {"symbol": "AAPL", "when": when, "n": [1, 2]}
    assert r.returned["isDate"] is True  # a Python datetime arrives as a JS Date
    assert r.returned["caller"] == "py-peer"
    assert r.returned["stamp"] == dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert py.methods.invoke("Js.Number", {"n": 21}).returned == 42  # {_value: 42} unwrapped
    with pytest.raises(ji.InvocationError, match="js boom"):
        py.methods.invoke("Js.Fail")


def test_javascript_invokes_python(py: ji.Interop, js: JsPeer) -> None:
    py.methods.register("Py.Quote", lambda symbol, qty=1: {"symbol": symbol, "px": 101.5 * qty})
    py.methods.register("Py.Count", lambda items: len(items))
    py.methods.register(
        "Py.Stamp", lambda when: {"was": when.isoformat(), "next": when + dt.timedelta(days=1)}
    )
    py.methods.register("Py.Bytes", lambda: {"raw": b"\x00\xff"})

    def fail(symbol: str) -> None:
        raise KeyError(symbol)

    py.methods.register("Py.Fail", fail)
    r = js.call("invoke", method="Py.Quote", args={"symbol": "MSFT", "qty": 2})
    assert r == {"returned": {"symbol": "MSFT", "px": 203.0}, "executedBy": "py-peer"}
    assert js.call("invoke", method="Py.Count", args={"items": [1, 2, 3]})["returned"] == {
        "_value": 3  # what a JS caller of a non-object result gets, as from a JS server
    }
    when = dt.datetime(2024, 2, 29, 12, 0, tzinfo=UTC)
    stamp = js.call("invoke", method="Py.Stamp", args={"when": js_date(when)})["returned"]
    assert stamp == {"was": when.isoformat(), "next": js_date(when + dt.timedelta(days=1))}
    assert js.call("invoke", method="Py.Bytes")["returned"] == {
        "raw": {"__ji__": "bytes", "base64": "AP8="}  # the documented JSON form
    }
    failed = js.call("invokeFail", method="Py.Fail")  # called without its argument
    assert failed["failed"] is True
    assert failed["message"].startswith("TypeError: ")
    assert "missing 1 required positional argument: 'symbol'" in failed["message"]


def test_streams_both_ways(py: ji.Interop, js: JsPeer) -> None:
    data = Recorder()
    sub = py.streams.subscribe("Js.Ticks", {"symbol": "AAPL"}, on_data=data)
    assert [s.application for s in sub.servers] == ["js-peer"]
    js.call("push", data={"AAPL": 190.1}, branch="AAPL")
    js.call("push", data={"IBM": 1}, branch="IBM")
    js.call("push", data={"all": True})
    js.call("push", data={"end": True}, branch="AAPL")  # the last push: a barrier
    data.wait(3)
    assert [c[0].data for c in data.calls] == [{"AAPL": 190.1}, {"all": True}, {"end": True}]
    with pytest.raises(ji.SubscriptionError, match="no such symbol"):
        py.streams.subscribe("Js.Ticks", {"symbol": "BAD"})

    def on_added(subscription: ji.StreamSubscription) -> None:
        subscription.push({"snapshot": subscription.arguments.get("symbol")})

    stream = py.streams.create(
        "Py.Ticks",
        on_subscription_request=lambda r: r.accept_on_branch(r.arguments.get("symbol", "")),
        on_added=on_added,
    )
    assert js.call("subscribe", name="Py.Ticks", args={"symbol": "EUR"}, key="s1") == {
        "servers": ["py-peer"]
    }
    wait_for(lambda: stream.branches() == ["EUR"], what="JS subscriber accepted")
    stream.push({"EUR": 1.08}, branch="EUR")
    stream.push(7)  # a non-dict push arrives as {_value: 7}
    first = js.event(lambda e: e.get("event") == "data" and e["key"] == "s1")
    assert first["data"] == {"snapshot": "EUR"} and first["private"] is True
    js.event(lambda e: e.get("event") == "data" and e["data"] == {"EUR": 1.08})
    js.event(lambda e: e.get("event") == "data" and e["data"] == {"_value": 7})
    # a burst travels to the hub as publish-many runs ('runs' extension); the JavaScript
    # client, which did not negotiate it, gets every item as a plain event, in order
    assert py._conn.extensions.get("runs") is True
    for n in range(100):
        stream.push({"n": n}, branch="EUR")
    js.event(lambda e: e.get("event") == "data" and e["data"] == {"n": 99})
    with js._lock:
        burst = [
            e["data"]["n"]
            for e in js.events
            if e.get("event") == "data" and isinstance(e.get("data"), dict) and "n" in e["data"]
        ]
    assert burst == list(range(100))
    stream.close()
    assert js.event(lambda e: e.get("event") == "closed" and e["key"] == "s1")["message"] == (
        "ServerInitiated"
    )


def test_contexts_both_ways(py: ji.Interop, js: JsPeer) -> None:
    js.call("contextSubscribe", name="Js.ctx")
    events = Recorder()
    py.contexts.subscribe("Js.ctx", events)
    py.contexts.update("Js.ctx", {"name": "Acme", "tier": 1, "BRK.B": 410.5})
    seen = js.event(lambda e: e.get("event") == "context" and e["data"].get("name") == "Acme")
    assert seen["data"] == {"name": "Acme", "tier": 1, "BRK.B": 410.5}
    assert seen["updaterId"] == py.peer_id
    py.contexts.update("Js.ctx", {"tier": None})
    js.event(
        lambda e: e.get("event") == "context" and e["data"] == {"name": "Acme", "BRK.B": 410.5}
    )
    js.call(
        "contextUpdate",
        name="Js.ctx",
        data={"owner": "js", "at": js_date(dt.datetime(2024, 1, 1, tzinfo=UTC))},
    )
    wait_for(lambda: events.calls and events.calls[-1][0].get("owner") == "js")
    data, _delta, _removed, meta = events.calls[-1]
    assert data == {
        "name": "Acme",
        "BRK.B": 410.5,
        "owner": "js",
        "at": dt.datetime(2024, 1, 1, tzinfo=UTC),
    }
    assert meta.updater is not None and meta.updater.application == "js-peer"
    js.call("contextSetPath", name="Js.ctx", path="address.city", value="Paris")
    wait_for(lambda: py.contexts.get("Js.ctx").get("address") == {"city": "Paris"})
    assert js.call("contextGet", name="Js.ctx")["address"] == {"city": "Paris"}


def test_channels_are_shared_with_javascript(py: ji.Interop, js: JsPeer) -> None:
    js.call("contextSubscribe", name="___channel___Orange")
    follow = Recorder()
    py.channels.join("Orange")
    py.channels.subscribe(follow)
    py.channels.publish({"symbol": "AAPL"})
    seen = js.event(
        lambda e: (
            e.get("event") == "context"
            and e["name"] == "___channel___Orange"
            and e["data"].get("data") == {"symbol": "AAPL"}
        )
    )
    assert seen["data"]["name"] == "Orange" and seen["data"]["meta"]["color"] == "#fa5a28"
    # a JS app publishing on the channel the way io.Connect's channels API does (setPath)
    js.call("contextSetPath", name="___channel___Orange", path="data.symbol", value="MSFT")
    wait_for(lambda: follow.calls and follow.calls[-1][0] == {"symbol": "MSFT"})
    assert follow.calls[-1][1].name == "Orange"


def test_bus_both_ways(py: ji.Interop, js: JsPeer) -> None:
    got = Recorder()
    py.bus.subscribe("js.*", got)
    js.call("busPublish", topic="js.news", data={"headline": "hi"})
    [(data, topic, source)] = got.wait(1)
    assert (data, topic, source.application) == ({"headline": "hi"}, "js.news", "js-peer")
    js.call("busSubscribe", topic="py.>")
    py.bus.publish("py.md.AAPL", {"px": 190.1})
    seen = js.event(lambda e: e.get("event") == "bus")
    # @interopio/core hands its callback the subscription's topic, not the published one
    assert seen == {"event": "bus", "topic": "py.>", "data": {"px": 190.1}, "source": "py-peer"}
    js.call("busPublish", topic="js.empty", data={})  # an empty object is delivered both ways
    assert got.wait(2)[1][:2] == ({}, "js.empty")
    py.bus.publish("py.empty", {})
    assert js.event(lambda e: e.get("event") == "bus" and e["data"] == {})["source"] == "py-peer"


def test_arrays_dataframes_and_bytes_reach_javascript_in_their_json_form(
    py: ji.Interop, js: JsPeer
) -> None:
    """A Python peer with binary frames sends raw buffers; the hub gives the JS peer the
    documented JSON form; what JS sends back in that form becomes numpy/pandas again."""
    import numpy as np
    import pandas as pd

    assert py._conn.extensions.get("binary") is True
    frame = pd.DataFrame(
        {
            "sym": ["AAPL", "MSFT"],
            "px": [190.5, 410.25],
            "t": pd.to_datetime(["2024-01-02", "2024-01-03"]),
        }
    )
    js.call("contextSubscribe", name="Bin.ctx")
    py.contexts.set(
        "Bin.ctx",
        {"frame": frame, "arr": np.array([[1, 2], [3, 4]], dtype="int32"), "raw": b"\x00\xff"},
    )
    seen = js.event(lambda e: e.get("event") == "context" and e["name"] == "Bin.ctx")["data"]
    assert seen["arr"] == {
        "__ji__": "ndarray",
        "dtype": "<i4",
        "shape": [2, 2],
        "data": [[1, 2], [3, 4]],
    }
    assert seen["raw"] == {"__ji__": "bytes", "base64": "AP8="}
    assert seen["frame"] == {
        "__ji__": "dataframe",
        "columns": ["sym", "px", "t"],
        "index": [0, 1],
        "data": [
            ["AAPL", 190.5, {"$date": "2024-01-02T00:00:00.000Z"}],  # a JS Date
            ["MSFT", 410.25, {"$date": "2024-01-03T00:00:00.000Z"}],
        ],
        "dtypes": ["str", "float64", "datetime64[us]"],
    }
    # JS writes the JSON form back (as the JS peer received it): Python revives it
    js.call("contextUpdate", name="Bin.ctx", data={"copy": seen["frame"], "arr2": seen["arr"]})
    wait_for(lambda: "copy" in py.contexts.get("Bin.ctx"), what="the JS update")
    back = py.contexts.get("Bin.ctx")
    pd.testing.assert_frame_equal(back["copy"], frame)
    np.testing.assert_array_equal(back["arr2"], np.array([[1, 2], [3, 4]], dtype="int32"))
    assert back["arr2"].dtype == np.dtype("int32")
