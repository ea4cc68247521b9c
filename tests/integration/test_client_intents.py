"""Intents on a standalone hub: between two real Python clients (listen, find, raise, errors),
and with the real ``@interopio/core`` and ``@glue42/core`` in Node, both directions.

The JS side is ``tests/compat/intents_peer.js``. The core packages have no intents API (it is
part of io.Connect Desktop/Browser and Glue42 Desktop/Web), so that app registers and invokes
``Tick42.FDC3.Intents.<intent>`` methods with ``flags.intent`` directly, as those APIs do on the
wire. A missing Node or missing packages fail the test with the install hint.
"""

from __future__ import annotations

import asyncio
import json
import os
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from nodekit import COMPAT, NodeLinePeer
from test_client_support import Clients, StandaloneHub, wait_for

import jupyter_interop as ji
from jupyter_interop.client import twins

INSTRUMENT = {"type": "fdc3.instrument", "id": {"ticker": "AAPL"}}


def wait_handlers(io: ji.Interop, intent: str, count: int) -> None:
    """Discovery is eventually consistent: wait until ``io`` sees ``count`` handlers."""

    def seen() -> int:
        return sum(len(i.handlers) for i in io.intents.find(intent))

    wait_for(lambda: seen() == count, what=f"{count} handlers of {intent}")


def test_listen_find_raise_and_unsubscribe(clients: Clients) -> None:
    chart, raiser = clients("chart-app"), clients("raiser-app")
    received: list[Any] = []

    def view_chart(context: dict[str, Any]) -> dict[str, Any]:
        received.append(context)
        return {"type": "fdc3.chart", "shown": context["id"]["ticker"]}

    listener = chart.intents.add_listener(
        "ViewChart",
        view_chart,
        context_types=["fdc3.instrument"],
        display_name="Chart",
        icon="chart.png",
        description="Shows a chart",
    )
    wait_handlers(raiser, "ViewChart", 1)
    (intent,) = raiser.intents.find("ViewChart")
    (handler,) = intent.handlers
    assert (intent.name, intent.display_name) == ("ViewChart", "Chart")
    assert (handler.application, handler.peer_id) == ("chart-app", chart.peer_id)
    assert (handler.context_types, handler.icon, handler.description) == (
        ("fdc3.instrument",),
        "chart.png",
        "Shows a chart",
    )
    assert "ViewChart" in [i.name for i in raiser.intents.all()]
    assert raiser.intents.find("ViewChart", "fdc3.contact") == []
    # the wire form is the io.Connect one: a method with flags.intent
    (method,) = raiser.methods.methods("Tick42.FDC3.Intents.ViewChart")
    assert method.flags["intent"] == {
        "contextTypes": ["fdc3.instrument"],
        "displayName": "Chart",
        "icon": "chart.png",
        "description": "Shows a chart",
    }

    resolution = raiser.intents.raise_intent("ViewChart", INSTRUMENT)
    assert resolution.intent == "ViewChart"
    assert resolution.handler.peer_id == chart.peer_id
    assert resolution.result == {"type": "fdc3.chart", "shown": "AAPL"}
    assert received == [INSTRUMENT]

    with pytest.raises(ji.NoAppsFound):
        raiser.intents.raise_intent("ViewChart", {"type": "fdc3.contact"})
    with pytest.raises(ji.TargetAppUnavailable):
        raiser.intents.raise_intent("ViewChart", INSTRUMENT, {"application": "other"})
    with pytest.raises(ji.NoAppsFound, match="can be started"):
        raiser.intents.raise_intent("ViewChart", INSTRUMENT, "startNew")
    with pytest.raises(ji.MalformedContext):
        raiser.intents.raise_intent("ViewChart", {"id": {}})

    with pytest.raises(ji.ArgumentError, match="already listens"):
        chart.intents.add_listener("ViewChart", view_chart)
    listener.unsubscribe()
    wait_handlers(raiser, "ViewChart", 0)
    with pytest.raises(ji.NoAppsFound):
        raiser.intents.raise_intent("ViewChart", INSTRUMENT)
    chart.intents.add_listener("ViewChart", view_chart).unsubscribe()  # free again


def test_several_handlers_targets_resolvers_and_failures(clients: Clients) -> None:
    a, b, raiser = clients("handler-a"), clients("handler-b"), clients("raiser-b")
    a.intents.add_listener("Greet", lambda context: f"a greets {context.get('name')}")

    async def greet_b(context: dict[str, Any]) -> None:
        await asyncio.sleep(0)  # an async handler that returns nothing

    b.intents.add_listener("Greet", greet_b)
    a.intents.add_listener("Fail", lambda context: 1 / 0)
    wait_handlers(raiser, "Greet", 2)
    wait_handlers(raiser, "Fail", 1)

    with pytest.raises(ji.ResolverUnavailable):
        raiser.intents.raise_intent("Greet", {"type": "person", "name": "x"})
    by_app = raiser.intents.raise_intent(
        "Greet", {"type": "p", "name": "x"}, {"application": "handler-a"}
    )
    assert (by_app.handler.application, by_app.result) == ("handler-a", "a greets x")
    by_peer = raiser.intents.raise_intent("Greet", None, b.peer_id)
    assert (by_peer.handler.application, by_peer.result) == ("handler-b", None)
    with pytest.raises(ji.TargetInstanceUnavailable):
        raiser.intents.raise_intent("Greet", None, {"instance": "nobody"})

    picked = raiser.intents.raise_intent(
        "Greet", None, resolver=lambda intent, handlers, context: handlers[-1]
    )
    assert picked.handler.peer_id == raiser.intents.find("Greet")[0].handlers[-1].peer_id
    with pytest.raises(ji.UserCancelledResolution):
        raiser.intents.raise_intent("Greet", None, resolver=lambda *_: None)
    raiser.intents.resolver = "first"
    assert raiser.intents.raise_intent("Greet").handler.application in ("handler-a", "handler-b")

    with pytest.raises(ji.IntentHandlerRejected) as info:
        raiser.intents.raise_intent("Fail", {"type": "x"})
    assert info.value.fdc3_error == "IntentHandlerRejected"
    assert isinstance(info.value.cause, ji.InvocationError)
    assert info.value.cause.remote_type == "ZeroDivisionError"


def test_each_handler_carries_its_own_servers_intent_flags(clients: Clients) -> None:
    """Two handlers of one intent share a method identity but not their ``flags.intent``: each
    is listed, filtered and offered to a resolver with its own display name and types."""
    chart, card, raiser = clients("chart-app"), clients("card-app"), clients("raiser-app")
    chart.intents.add_listener(
        "Show", lambda c: "chart", context_types=["fdc3.instrument"], display_name="Chart A"
    )
    card.intents.add_listener(
        "Show", lambda c: "card", context_types=["fdc3.contact"], display_name="Card B"
    )
    wait_handlers(raiser, "Show", 2)
    (intent,) = raiser.intents.find("Show")
    seen = {(h.application, h.display_name, h.context_types) for h in intent.handlers}
    assert seen == {
        ("chart-app", "Chart A", ("fdc3.instrument",)),
        ("card-app", "Card B", ("fdc3.contact",)),
    }
    (contact,) = raiser.intents.find("Show", context_type="fdc3.contact")
    assert [h.application for h in contact.handlers] == ["card-app"]
    answer = raiser.intents.raise_intent("Show", {"type": "fdc3.contact", "name": "Jo"})
    assert (answer.handler.application, answer.result) == ("card-app", "card")


def test_a_handler_that_leaves_or_does_not_answer_is_a_failed_delivery(clients: Clients) -> None:
    handler, other, raiser = clients("leaving-handler"), clients("staying"), clients("raiser-c")
    listener = handler.intents.add_listener("Leave", lambda context: "never")
    other.intents.add_listener("Leave", lambda context: "stayed")
    wait_handlers(raiser, "Leave", 2)

    async def leave_then_pick(intent: str, handlers: list[ji.IntentHandler], context: Any) -> Any:
        # the chosen handler goes away before the invocation: it finds nobody there
        await listener.aunsubscribe()
        while len((await raiser.intents.afind("Leave"))[0].handlers) > 1:
            await asyncio.sleep(0.02)
        return next(h for h in handlers if h.peer_id == handler.peer_id)

    with pytest.raises(ji.IntentDeliveryFailed) as info:
        raiser.intents.raise_intent("Leave", None, resolver=leave_then_pick)
    assert isinstance(info.value.__cause__, ji.MethodNotFoundError)
    assert raiser.intents.raise_intent("Leave").result == "stayed"

    release = threading.Event()
    handler.intents.add_listener("Stuck", lambda context: release.wait(30))
    wait_handlers(raiser, "Stuck", 1)
    try:
        with pytest.raises(ji.IntentDeliveryFailed) as info:
            raiser.intents.raise_intent("Stuck", None, timeout=0.2)  # it answers only on release
        assert isinstance(info.value.__cause__, ji.InvocationTimeoutError)
    finally:
        release.set()


def test_async_twins(clients: Clients) -> None:
    handler, raiser = clients("async-handler"), clients("async-raiser")

    async def scenario() -> None:
        await handler.intents.aadd_listener("Echo", lambda context: context)
        for _ in range(200):  # discovery is eventually consistent
            if await raiser.intents.afind("Echo"):
                break
            await asyncio.sleep(0.05)
        assert [i.name for i in await raiser.intents.aall() if i.name == "Echo"] == ["Echo"]
        resolution = await raiser.intents.araise_intent("Echo", {"type": "t", "v": 1})
        assert resolution.result == {"type": "t", "v": 1}

    asyncio.run(scenario())


def test_a_blocking_raise_says_it_waits_before_its_resolver_runs(
    clients: Clients, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A notebook's resolver refuses a widget nobody could click when the main thread waits in
    a blocking call (twins.main_thread_waiting); the blocking twin must say so before its
    coroutine can reach the resolver, however far the I/O loop runs ahead of the caller."""
    first, second, raiser = clients("waits-a"), clients("waits-b"), clients("waits-raiser")
    for client in (first, second):
        client.intents.add_listener("Waits", lambda context: "ok")
    wait_handlers(raiser, "Waits", 2)
    seen: list[str | None] = []

    async def resolver(intent: str, handlers: list[Any], context: Any) -> Any:
        seen.append(twins.main_thread_waiting())
        return handlers[0]

    schedule = asyncio.run_coroutine_threadsafe

    def loop_runs_ahead(coro: Any, loop: asyncio.AbstractEventLoop) -> Any:
        future = schedule(coro, loop)
        wait_for(lambda: seen or future.done(), what="the raise to reach its resolver")
        return future

    monkeypatch.setattr(twins.asyncio, "run_coroutine_threadsafe", loop_runs_ahead)
    resolution = raiser.intents.raise_intent("Waits", resolver=resolver)
    assert (resolution.result, seen) == ("ok", ["raise_intent"])


# ---------------------------------------------------------------------- with the JS clients

FLAVORS = {"interopio": "@interopio/core", "glue42": "@glue42/core"}


class IntentsPeer(NodeLinePeer):
    """``tests/compat/intents_peer.js``: a JS app of one flavour on the hub."""

    def __init__(self, hub: StandaloneHub, flavor: str) -> None:
        self.application = f"js-intents-{flavor}"
        config = {"flavor": flavor, "url": hub.url, "token": hub.token}
        config["application"] = self.application
        env = {**os.environ, "PEER_CONFIG": json.dumps(config), "COMPAT_DIR": str(COMPAT)}
        super().__init__(COMPAT / "intents_peer.js", env, FLAVORS[flavor])


@pytest.fixture(scope="module")
def js_apps(hub: StandaloneHub) -> Iterator[dict[str, IntentsPeer]]:
    peers: dict[str, IntentsPeer] = {}
    try:
        for flavor in FLAVORS:
            peers[flavor] = IntentsPeer(hub, flavor)
        yield peers
    finally:
        for peer in peers.values():
            peer.close()


def test_python_finds_and_raises_javascript_handlers(
    clients: Clients, js_apps: dict[str, IntentsPeer]
) -> None:
    io = clients("py-intents-raiser")
    spec = {"contextTypes": ["fdc3.instrument"], "displayName": "Chart", "icon": "c.png"}
    for peer in js_apps.values():
        peer.call("listen", intent="ShowChart", **spec)
    wait_handlers(io, "ShowChart", len(js_apps))
    (intent,) = io.intents.find("ShowChart", "fdc3.instrument")
    assert intent.display_name == "Chart"
    assert sorted(h.application or "" for h in intent.handlers) == sorted(
        p.application for p in js_apps.values()
    )
    for handler in intent.handlers:
        assert (handler.context_types, handler.icon) == (("fdc3.instrument",), "c.png")
    assert io.intents.find("ShowChart", "fdc3.contact") == []

    for peer in js_apps.values():
        target = {"application": peer.application}
        resolution = io.intents.raise_intent("ShowChart", INSTRUMENT, target)
        assert resolution.handler.peer_id == peer.ready["peerId"]
        assert resolution.result == {"type": "fdc3.chart", "ticker": "AAPL", "by": peer.application}
        seen = peer.event(lambda e: e["event"] == "intent" and e["intent"] == "ShowChart")
        assert (seen["context"], seen["caller"]) == (INSTRUMENT, "py-intents-raiser")
    with pytest.raises(ji.ResolverUnavailable):
        io.intents.raise_intent("ShowChart", INSTRUMENT)
    with pytest.raises(ji.NoAppsFound):
        io.intents.raise_intent("ShowChart", {"type": "fdc3.contact"})


@pytest.mark.parametrize("flavor", list(FLAVORS))
def test_javascript_raises_to_a_python_listener(
    clients: Clients, js_apps: dict[str, IntentsPeer], flavor: str
) -> None:
    io = clients(f"py-intents-{flavor}")
    received: list[Any] = []

    def on_intent(context: dict[str, Any]) -> dict[str, Any]:
        received.append(context)
        return {"type": "fdc3.nothing", "seen": context["id"]["ticker"]}

    listener = io.intents.add_listener(
        f"PyIntent{flavor}", on_intent, context_types=["fdc3.instrument"], display_name="Py"
    )
    peer = js_apps[flavor]
    # the JS client sees the definition io.Connect's intents API reads
    flags = peer.call("methodFlags", intent=f"PyIntent{flavor}")
    assert flags == [{"intent": {"contextTypes": ["fdc3.instrument"], "displayName": "Py"}}]
    reply = peer.call("raise", intent=f"PyIntent{flavor}", context=INSTRUMENT, peerId=io.peer_id)
    assert reply == {
        "returned": {"type": "fdc3.nothing", "seen": "AAPL"},
        "executedBy": f"py-intents-{flavor}",
    }
    assert received == [INSTRUMENT]
    listener.unsubscribe()
