"""``io.fdc3`` and an io.Connect app in Node meet on one hub (docs/FDC3.md, "The wire").

The Node side is ``fdc3_js_peer.js``: the real ``@interopio/core``, writing and reading FDC3
contexts as io.Connect's FDC3 layer does, each context checked with the real ``@finos/fdc3``
2.2 types (``npm ci --prefix tests/compat``; a missing Node or package fails with the hint).
User channels and app channels are shown both ways, and private channels both ways with the
Node app playing io.Connect's FDC3 layer (its control method and context fields).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from nodekit import COMPAT, NodeLinePeer
from test_client_support import Clients, StandaloneHub, wait_for

import jupyter_interop as ji
from jupyter_interop import fdc3

PEER = Path(__file__).with_name("fdc3_js_peer.js")


class Fdc3JsPeer(NodeLinePeer):
    """``fdc3_js_peer.js`` on the hub."""

    def __init__(self, hub: StandaloneHub) -> None:
        env = {**os.environ, "HUB_URL": hub.url, "HUB_TOKEN": hub.token, "COMPAT_DIR": str(COMPAT)}
        super().__init__(PEER, env, "@finos/fdc3")

    def fdc3_event(self, name: str, context: dict[str, Any]) -> dict[str, Any]:
        """The report that the peer saw ``context`` as the latest on ``name``."""
        return self.event(lambda e: e.get("name") == name and e.get("context") == context)


@pytest.fixture
def js(hub: StandaloneHub) -> Iterator[Fdc3JsPeer]:
    peer = Fdc3JsPeer(hub)
    yield peer
    peer.close()


@pytest.fixture
def py(clients: Clients) -> ji.Interop:
    return clients("py-fdc3")


class Heard:
    def __init__(self) -> None:
        self.items: list[tuple[dict[str, Any], dict[str, Any]]] = []
        self.lock = threading.Lock()

    def __call__(self, context: dict[str, Any], metadata: dict[str, Any]) -> None:
        with self.lock:
            self.items.append((context, metadata))

    def wait_for(self, context: dict[str, Any]) -> dict[str, Any]:
        found = wait_for(
            lambda: next((m for c, m in self.items if c == context), None),
            what=f"{context['type']} in Python",
        )
        return found


def test_error_enums_are_the_standards(js: Fdc3JsPeer) -> None:
    """Our enums hold exactly what ``@finos/fdc3`` 2.2 exports."""
    theirs = js.call("errors")
    ours = {
        "ChannelError": fdc3.ChannelErrorName,
        "OpenError": fdc3.OpenErrorName,
        "ResolveError": fdc3.ResolveErrorName,
        "ResultError": fdc3.ResultErrorName,
    }
    for name, enum in ours.items():
        assert {member.name: member.value for member in enum} == theirs[name], name


def test_user_channel_both_ways(py: ji.Interop, js: Fdc3JsPeer) -> None:
    """A Python broadcast on fdc3.channel.1 is the Red channel's data for io.Connect, and what
    the io.Connect app writes there reaches a Python listener of its type."""
    js.call("listen", name="___channel___Red")
    agent = py.fdc3
    agent.join_user_channel("fdc3.channel.1")
    heard = Heard()
    agent.add_context_listener("fdc3.contact", heard)

    aapl = fdc3.instrument("AAPL", name="Apple")
    agent.broadcast(aapl)
    seen = js.fdc3_event("___channel___Red", aapl)
    value = seen["value"]
    assert value["name"] == "Red" and value["meta"]["fdc3"]["id"] == "fdc3.channel.1"
    assert value["latest_fdc3_type"] == "fdc3&instrument"
    assert value["data"]["fdc3_fdc3&instrument"] == {"id": {"ticker": "AAPL"}, "name": "Apple"}

    alice = fdc3.contact("alice@example.com", name="Alice")
    js.call("broadcast", name="___channel___Red", context=alice)
    metadata = heard.wait_for(alice)
    assert metadata["source"]["appId"] == "js-fdc3"
    assert agent.get_current_channel().id == "fdc3.channel.1"
    # both types are kept; the listener of a type hears only that type
    assert [c["type"] for c, _ in heard.items] == ["fdc3.contact"]
    assert js.call("get", name="___channel___Red")["latest_fdc3_type"] == "fdc3&contact"


def test_app_channel_both_ways(py: ji.Interop, js: Fdc3JsPeer) -> None:
    """An app channel is the context named by its id, in the same layout, for both."""
    channel = py.fdc3.get_or_create_channel("desk.prices")
    heard = Heard()
    channel.add_context_listener(None, heard)
    js.call("listen", name="desk.prices")

    msft = fdc3.instrument("MSFT")
    js.call("broadcast", name="desk.prices", context=msft)
    assert heard.wait_for(msft)["source"]["appId"] == "js-fdc3"
    assert channel.get_current_context("fdc3.instrument") == msft

    bob = fdc3.contact("bob@example.com")
    channel.broadcast(bob)
    seen = js.fdc3_event("desk.prices", bob)
    assert seen["value"]["data"]["fdc3_fdc3&instrument"] == {"id": {"ticker": "MSFT"}}
    assert channel.get_current_context() == bob


# ---------------------------------------------------------------------- private channels


class Events:
    """A private channel's events on the Python side, in order."""

    def __init__(self, channel: fdc3.PrivateChannel) -> None:
        self.items: list[tuple[Any, ...]] = []
        channel.on_add_context_listener(lambda kind: self.items.append(("add", kind)))
        channel.on_unsubscribe(lambda kind: self.items.append(("unsubscribe", kind)))
        channel.on_disconnect(lambda: self.items.append(("disconnect",)))

    def wait_for(self, event: tuple[Any, ...]) -> None:
        wait_for(lambda: event in self.items, what=f"{event} in Python")


def control(js: Fdc3JsPeer, action: str, **payload: Any) -> dict[str, Any]:
    """The invocation of ``T42.FDC3.Client.Control`` the io.Connect app received."""
    wanted = {"action": action, "payload": payload}
    found: dict[str, Any] = js.event(lambda e: e.get("event") == "control" and e["args"] == wanted)
    return found


def test_private_channel_created_in_python_used_by_io_connect(
    py: ji.Interop, js: Fdc3JsPeer
) -> None:
    """A Python intent handler returns a private channel; the io.Connect app that raised the
    intent gets it in io.Connect's form, becomes its ``clientId`` and signals its listeners
    through ``T42.FDC3.Client.Control``: Python's on_add_context_listener, on_unsubscribe
    and on_disconnect fire. Python's own listener reaches the app the same way."""
    js.call("serveControl")
    made: list[fdc3.PrivateChannel] = []
    events: list[Events] = []

    def start_stream(context: dict[str, Any]) -> fdc3.PrivateChannel:
        channel = py.fdc3.create_private_channel()
        events.append(Events(channel))
        made.append(channel)
        return channel

    py.fdc3.add_intent_listener("StartStream", start_stream)
    result = js.call("raiseForChannel", intent="StartStream", context=fdc3.instrument("AAPL"))
    (channel,) = made
    assert result == {"id": channel.id, "type": "private", "isChannel": True}
    assert channel.id.startswith("___privateFDC3Channel___")
    me, them = py.fdc3.instance_id, js.call("me")
    value = js.call("get", name=channel.id)
    assert (value["creatorId"], value["clientId"]) == (me, them)

    seen = events[0]
    js.call("listen", name=channel.id)
    sent = js.call("privateAddListener", id=channel.id, contextType="fdc3.instrument")
    assert sent == {"channelId": channel.id, "clientId": me, "contextType": "fdc3.instrument"}
    seen.wait_for(("add", "fdc3.instrument"))
    msft = fdc3.instrument("MSFT")
    channel.broadcast(msft)
    js.fdc3_event(channel.id, msft)
    js.call("privateAddListener", id=channel.id, contextType=None)
    seen.wait_for(("add", None))
    js.call("privateUnsubscribe", id=channel.id, contextType="fdc3.instrument")
    seen.wait_for(("unsubscribe", "fdc3.instrument"))

    channel.add_context_listener("fdc3.contact", Heard())
    control(
        js, "onAddContextListener", channelId=channel.id, clientId=them, contextType="fdc3.contact"
    )
    kept = js.call("get", name=channel.id)["contextListenerTypes"]
    assert kept == ["fdc3.instrument", None, "fdc3.contact"]

    js.call("privateDisconnect", id=channel.id)
    seen.wait_for(("disconnect",))
    assert seen.items == [
        ("add", "fdc3.instrument"),
        ("add", None),
        ("unsubscribe", "fdc3.instrument"),
        ("unsubscribe", None),  # the app's listeners still there when it disconnected
        ("disconnect",),
    ]


def test_private_channel_created_by_io_connect_used_from_python(
    py: ji.Interop, js: Fdc3JsPeer
) -> None:
    """An io.Connect app's intent handler creates a private channel and returns it in
    io.Connect's form; the Python raiser gets a ``PrivateChannel``, writes itself as its
    ``clientId``, and each of its listener changes and its disconnect reach the app as an
    invocation of the app's ``T42.FDC3.Client.Control``; the app's listener reaches Python."""
    js.call("serveControl")
    js.call("serveStreamIntent", intent="JsStream")
    wait_for(lambda: py.intents.find("JsStream"), what="the JsStream handler")
    channel = py.fdc3.raise_intent("JsStream", fdc3.instrument("AAPL")).get_result()
    created = js.event(lambda e: e.get("event") == "created")
    assert isinstance(channel, fdc3.PrivateChannel) and channel.id == created["channelId"]
    me, them = py.fdc3.instance_id, js.call("me")
    value = js.call("get", name=channel.id)
    assert (value["creatorId"], value["clientId"]) == (them, me)
    seen = Events(channel)

    heard = Heard()
    listener = channel.add_context_listener("fdc3.instrument", heard)
    control(
        js,
        "onAddContextListener",
        channelId=channel.id,
        clientId=them,
        contextType="fdc3.instrument",
    )
    msft = fdc3.instrument("MSFT")
    js.call("broadcast", name=channel.id, context=msft)
    heard.wait_for(msft)
    channel.add_context_listener("fdc3.contact", Heard())
    control(
        js, "onAddContextListener", channelId=channel.id, clientId=them, contextType="fdc3.contact"
    )
    listener.unsubscribe()
    control(js, "onUnsubscribe", channelId=channel.id, clientId=them, contextType="fdc3.instrument")
    channel.add_context_listener(None, Heard())
    control(js, "onAddContextListener", channelId=channel.id, clientId=them)  # every type
    kept = js.call("get", name=channel.id)["contextListenerTypes"]
    assert kept == ["fdc3.instrument", "fdc3.contact", None]

    js.call("privateAddListener", id=channel.id, contextType="fdc3.order")
    seen.wait_for(("add", "fdc3.order"))

    channel.disconnect()
    control(
        js, "onDisconnect", channelId=channel.id, clientId=them, replayContextTypes=["fdc3.contact"]
    )
    assert js.call("get", name=channel.id)["disconnected"] is True
    assert seen.items == [("add", "fdc3.order")]


def test_private_channel_io_connect_party_that_leaves_disconnects(
    py: ji.Interop, js: Fdc3JsPeer
) -> None:
    """The io.Connect app that took a Python private channel listens, then its process ends
    without disconnect(): Python hears on_unsubscribe for its listener and on_disconnect, as
    io.Connect's onInstanceStopped does, and writes ``disconnected`` as io.Connect's
    surviving party does."""
    js.call("serveControl")
    made: list[fdc3.PrivateChannel] = []

    def start_stream(context: dict[str, Any]) -> fdc3.PrivateChannel:
        made.append(py.fdc3.create_private_channel())
        events.append(Events(made[0]))
        return made[0]

    events: list[Events] = []
    py.fdc3.add_intent_listener("StartStream", start_stream)
    js.call("raiseForChannel", intent="StartStream", context=fdc3.instrument("AAPL"))
    js.call("privateAddListener", id=made[0].id, contextType="fdc3.instrument")
    seen = events[0]
    seen.wait_for(("add", "fdc3.instrument"))
    js.close()
    seen.wait_for(("disconnect",))
    assert seen.items == [
        ("add", "fdc3.instrument"),
        ("unsubscribe", "fdc3.instrument"),
        ("disconnect",),
    ]
    wait_for(
        lambda: py.contexts.get(made[0].context_name).get("disconnected") is True,
        what="disconnected written by the surviving party",
    )


def test_an_io_connect_handlers_result_is_checked_against_its_result_type(
    py: ji.Interop, js: Fdc3JsPeer
) -> None:
    """An io.Connect app's handler declares ``flags.intent.resultType``: the Python raiser
    checks the result against it (FDC3 2.2 ``getResult``): a context of another type is
    ``NoResultReturned``, one of the declared type is the result."""
    chart = {"type": "fdc3.chart", "instruments": []}
    contact = {"type": "fdc3.contact", "id": {"email": "a@example.com"}}
    js.call("serveTypedIntent", intent="JsWrong", resultType="fdc3.chart", result=contact)
    js.call("serveTypedIntent", intent="JsRight", resultType="fdc3.chart", result=chart)
    wait_for(lambda: len(py.intents.find()) >= 2, what="the two JS handlers")
    wrong = py.fdc3.raise_intent("JsWrong", fdc3.instrument("AAPL"))
    with pytest.raises(fdc3.NoResultReturned, match=r"'fdc3\.contact'"):
        wrong.get_result()
    assert py.fdc3.raise_intent("JsRight", fdc3.instrument("AAPL")).get_result() == chart
