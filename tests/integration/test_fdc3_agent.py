"""The FDC3 2.2 Desktop Agent (``io.fdc3``, docs/FDC3.md) between real Python clients on a
standalone hub.

Each test follows one case of FINOS's FDC3 conformance framework
(``finos/FDC3-conformance-framework``, ``src/test/common/fdc3.user-channels.ts``,
``fdc3.app-channels.ts`` and ``src/test/v2.0/advanced/fdc3.raiseIntent*.ts``), named in its
docstring, rewritten for two clients of one process: app A and app B of the case are two
clients, each its own peer. Where a case checks that something is *not* delivered, app B then
broadcasts a last context that A does receive: the hub keeps one writer's order, so once A has
it, anything A should not have had would have arrived before.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from test_client_support import Clients, StandaloneHub, standalone_hub, wait_for

import jupyter_interop as ji
from jupyter_interop import fdc3
from jupyter_interop.fdc3 import ChannelErrorName, ResolveErrorName

INSTRUMENT = {"type": "fdc3.instrument", "name": "History-item-1", "id": {"ticker": "AAPL"}}
CONTACT = {"type": "fdc3.contact", "name": "History-item-1", "id": {"email": "a@example.com"}}
LAST = {"type": "test.last", "name": "end"}


@pytest.fixture
def hub(tmp_path: Path) -> Iterator[StandaloneHub]:
    """A hub per test: user channels keep their contexts, and each case starts from empty
    channels as the conformance framework's do."""
    with standalone_hub(tmp_path) as fresh:
        yield fresh


class Received:
    """What a context handler got, in order, with a wait for a count."""

    def __init__(self) -> None:
        self.items: list[dict[str, Any]] = []
        self.metadata: list[dict[str, Any]] = []
        self.lock = threading.Lock()

    def __call__(self, context: dict[str, Any], metadata: dict[str, Any]) -> None:
        with self.lock:
            self.items.append(context)
            self.metadata.append(metadata)

    def wait(self, count: int) -> list[dict[str, Any]]:
        wait_for(lambda: len(self.items) >= count, what=f"{count} contexts")
        return list(self.items)

    def types(self) -> list[str]:
        return [c["type"] for c in self.items]


def two_apps(clients: Clients) -> tuple[Any, Any]:
    a, b = clients("fdc3-app-a"), clients("fdc3-app-b")
    return a.fdc3, b.fdc3


def red_id(agent: Any) -> str:
    (red,) = [c for c in agent.get_user_channels() if c.display_metadata["name"] == "Channel 1"]
    return str(red.id)


# ---------------------------------------------------------------------- user channels


def test_user_channels_are_the_colour_channels_with_meta_fdc3(clients: Clients) -> None:
    """getUserChannels (2.0 basic ``GetUserChannels``): the recommended set, colours kept."""
    a, _ = two_apps(clients)
    channels = a.get_user_channels()
    assert [c.id for c in channels] == [f"fdc3.channel.{n}" for n in (1, 4, 6, 7, 3, 2, 8, 5)]
    assert {c.type for c in channels} == {"user"}
    red = channels[0]
    assert red.display_metadata == {"name": "Channel 1", "glyph": "1", "color": "red"}
    assert red.context_name == "___channel___Red"


def test_basic_usage_listener_then_join_then_broadcast(clients: Clients) -> None:
    """UCBasicUsage1: A adds a listener, joins a user channel; B joins and broadcasts."""
    a, b = two_apps(clients)
    got = Received()
    a.add_context_listener(None, got)
    a.join_user_channel("fdc3.channel.1")
    b.join_user_channel("fdc3.channel.1")
    b.broadcast(INSTRUMENT)
    assert got.wait(1) == [INSTRUMENT]
    assert got.metadata[0]["source"]["appId"] == "fdc3-app-b"


def test_basic_usage_join_then_listener_then_broadcast(clients: Clients) -> None:
    """UCBasicUsage2: A joins, then adds a listener; B broadcasts on the same channel."""
    a, b = two_apps(clients)
    a.join_user_channel("fdc3.channel.2")
    got = Received()
    a.add_context_listener(None, got)
    b.join_user_channel("fdc3.channel.2")
    b.broadcast(INSTRUMENT)
    assert got.wait(1) == [INSTRUMENT]


def test_basic_usage_broadcast_before_join_is_replayed(clients: Clients) -> None:
    """UCBasicUsage3 and UCBasicUsage4: B joins and broadcasts before A joins and listens;
    A hears the current context once it is on the channel with a listener (either order)."""
    a, b = two_apps(clients)
    b.join_user_channel("fdc3.channel.3")
    b.broadcast(INSTRUMENT)
    first = Received()
    a.add_context_listener("fdc3.instrument", first)
    a.join_user_channel("fdc3.channel.3")  # UCBasicUsage3: listener, then join
    assert first.wait(1) == [INSTRUMENT]
    second = Received()
    a.add_context_listener("fdc3.instrument", second)  # UCBasicUsage4: joined, then listener
    assert second.wait(1) == [INSTRUMENT]


def test_filtered_usage_multiple_types(clients: Clients) -> None:
    """UCFilteredUsage1, 2 and 5: listeners of one type hear only that type, a listener of
    every type (None and ``"*"``) hears all, in the order broadcast."""
    a, b = two_apps(clients)
    instruments, contacts, everything, star = Received(), Received(), Received(), Received()
    a.add_context_listener("fdc3.instrument", instruments)
    a.join_user_channel("fdc3.channel.4")
    a.add_context_listener("fdc3.contact", contacts)
    a.add_context_listener(None, everything)
    a.add_context_listener("*", star)
    b.join_user_channel("fdc3.channel.4")
    b.broadcast(INSTRUMENT)
    b.broadcast(CONTACT)
    b.broadcast(LAST)
    assert everything.wait(3) == [INSTRUMENT, CONTACT, LAST]
    assert star.wait(3) == [INSTRUMENT, CONTACT, LAST]
    assert instruments.items == [INSTRUMENT]
    assert contacts.items == [CONTACT]


def test_filtered_usage_replays_the_listened_type(clients: Clients) -> None:
    """UCFilteredUsage3 and 4: B broadcasts two types before A listens for one and joins;
    A hears the current context of its type, not the last one broadcast."""
    a, b = two_apps(clients)
    b.join_user_channel("fdc3.channel.5")
    b.broadcast(INSTRUMENT)
    b.broadcast(CONTACT)
    got = Received()
    a.add_context_listener("fdc3.instrument", got)
    a.join_user_channel("fdc3.channel.5")
    assert got.wait(1) == [INSTRUMENT]


def test_filtered_usage_different_channels_change_and_leave(clients: Clients) -> None:
    """UCFilteredUsage6, UCFilteredUsageChange and UCFilteredUsageLeave: nothing arrives from
    a channel A is not on (another one, the one it left for another, or after leaving)."""
    a, b = two_apps(clients)
    got = Received()
    a.add_context_listener(None, got)
    a.join_user_channel("fdc3.channel.6")
    a.join_user_channel("fdc3.channel.7")  # changed: channel 6 is no longer heard
    b.join_user_channel("fdc3.channel.6")
    b.broadcast(INSTRUMENT)
    b.join_user_channel("fdc3.channel.7")
    b.broadcast(LAST)
    assert got.wait(1) == [LAST]
    assert a.get_current_channel().id == "fdc3.channel.7"
    a.leave_current_channel()
    assert a.get_current_channel() is None
    b.broadcast(CONTACT)
    a.join_user_channel("fdc3.channel.8")
    b.join_user_channel("fdc3.channel.8")
    b.broadcast(LAST)
    # joining channel 8 replays nothing (empty); the contact sent while A was off never came
    assert got.wait(2) == [LAST, LAST]


def test_filtered_usage_unsubscribe_and_no_join(clients: Clients) -> None:
    """UCFilteredUsageUnsubscribe and UCFilteredUsageNoJoin: an unsubscribed listener hears
    nothing; a broadcast from an app on no channel goes nowhere."""
    a, b = two_apps(clients)
    gone, kept = Received(), Received()
    listener = a.add_context_listener("fdc3.instrument", gone)
    a.add_context_listener(None, kept)
    listener.unsubscribe()
    a.join_user_channel("fdc3.channel.1")
    b.broadcast(CONTACT)  # B is on no channel: a no-op
    b.join_user_channel("fdc3.channel.1")
    b.broadcast(INSTRUMENT)
    assert kept.wait(1)[-1] == INSTRUMENT
    assert CONTACT not in kept.items
    assert gone.items == []


def test_filtered_usage_join_and_current_channel(clients: Clients) -> None:
    """UCFilteredUsageJoin: getCurrentChannel gives the channel joined; an unknown id is
    ``NoChannelFound``; the colour channel is joined too (io.Connect apps see the join)."""
    a, _ = two_apps(clients)
    assert a.get_current_channel() is None
    a.join_user_channel("fdc3.channel.2")
    assert a.get_current_channel().id == "fdc3.channel.2"
    assert a.io.channels.current == "Orange"
    with pytest.raises(fdc3.Fdc3ChannelError) as missing:
        a.join_user_channel("fdc3.channel.99")
    assert missing.value.fdc3_error == ChannelErrorName.NoChannelFound == "NoChannelFound"


def test_own_broadcast_is_not_delivered_back(clients: Clients) -> None:
    """FDC3: broadcasts SHOULD NOT be delivered back to the sender (docs/FDC3.md)."""
    a, b = two_apps(clients)
    mine, theirs = Received(), Received()
    a.add_context_listener(None, mine)
    b.add_context_listener(None, theirs)
    a.join_user_channel("fdc3.channel.3")
    b.join_user_channel("fdc3.channel.3")
    a.broadcast(CONTACT)
    b.broadcast(LAST)
    assert mine.wait(1)[-1] == LAST
    assert CONTACT not in mine.items
    assert theirs.wait(1)[-1] == CONTACT


def test_malformed_context_is_refused(clients: Clients) -> None:
    a, _ = two_apps(clients)
    with pytest.raises(ji.MalformedContext, match="string 'type'"):
        a.broadcast({"name": "no type"})


#: an ``fdc3.instrument`` whose ``id`` is a string, not the object its schema requires
BAD_INSTRUMENT = {"type": "fdc3.instrument", "id": "AAPL"}


def test_standard_contexts_are_validated_before_anything_is_sent(clients: Clients) -> None:
    """A ``fdc3.*`` context that breaks FINOS's schema is ``MalformedContext`` (FDC3's
    ``ChannelError.MalformedContext``) on a user channel, an app channel and a raised intent,
    and reaches no listener nor handler; a custom type needs only a string ``type``."""
    a, b = two_apps(clients)
    a.join_user_channel(red_id(a))
    b.join_user_channel(red_id(b))
    on_user, on_app, raised = Received(), Received(), Received()
    b.add_context_listener(None, on_user)
    b.get_or_create_channel("test-validated").add_context_listener(None, on_app)
    b.add_intent_listener("ViewChart", lambda ctx: raised(ctx, {}))
    wait_for(lambda: a.io.intents.find("ViewChart"), what="the ViewChart handler")
    a_channel = a.get_or_create_channel("test-validated")
    for send in (a.broadcast, a_channel.broadcast, lambda c: a.raise_intent("ViewChart", c)):
        with pytest.raises(ji.MalformedContext) as refused:
            send(BAD_INSTRUMENT)
        assert refused.value.fdc3_error == ChannelErrorName.MalformedContext
        assert refused.value.path == "/id"
    with pytest.raises(ji.MalformedContext, match="not a standard FDC3"):
        a.broadcast({"type": "fdc3.noSuchType"})
    with pytest.raises(ji.MalformedContext):
        a.raise_intent_for_context(BAD_INSTRUMENT)
    custom = {"type": "myorg.basket", "name": 7, "id": "free-form"}
    a.broadcast(custom)
    a_channel.broadcast(custom)
    a.raise_intent("ViewChart", INSTRUMENT)
    assert on_user.wait(1) == [custom]
    assert on_app.wait(1) == [custom]
    assert raised.wait(1) == [INSTRUMENT]


# ---------------------------------------------------------------------- app channels


def test_app_channel_basic_usage(clients: Clients) -> None:
    """ACBasicUsage1 and ACBasicUsage2: a listener hears what B broadcasts on the same app
    channel; a context broadcast before is the channel's current context."""
    a, b = two_apps(clients)
    a_channel = a.get_or_create_channel("test-ac-basic")
    got = Received()
    a_channel.add_context_listener(None, got)
    b_channel = b.get_or_create_channel("test-ac-basic")
    assert (b_channel.id, b_channel.type) == ("test-ac-basic", "app")
    b_channel.broadcast(INSTRUMENT)
    assert got.wait(1) == [INSTRUMENT]
    assert a_channel.get_current_context() == INSTRUMENT


def test_app_channel_filtered_context(clients: Clients) -> None:
    """ACFilteredContext1, 2 and 3: a typed listener hears only its type, and nothing from
    another app channel."""
    a, b = two_apps(clients)
    first = a.get_or_create_channel("test-ac-filtered-1")
    a.get_or_create_channel("test-ac-filtered-2")
    instruments, everything = Received(), Received()
    first.add_context_listener("fdc3.instrument", instruments)
    first.add_context_listener(None, everything)
    b.get_or_create_channel("test-ac-filtered-2").broadcast(INSTRUMENT)
    b_first = b.get_or_create_channel("test-ac-filtered-1")
    b_first.broadcast(CONTACT)
    b_first.broadcast(INSTRUMENT)
    b_first.broadcast(LAST)
    assert everything.wait(3) == [CONTACT, INSTRUMENT, LAST]
    assert instruments.items == [INSTRUMENT]


def test_app_channel_unsubscribe(clients: Clients) -> None:
    """ACUnsubscribe: an unsubscribed app channel listener hears nothing more."""
    a, b = two_apps(clients)
    channel = a.get_or_create_channel("test-ac-unsubscribe")
    gone, kept = Received(), Received()
    channel.add_context_listener(None, gone).unsubscribe()
    channel.add_context_listener(None, kept)
    b.get_or_create_channel("test-ac-unsubscribe").broadcast(INSTRUMENT)
    assert kept.wait(1) == [INSTRUMENT]
    assert gone.items == []


def test_app_channel_context_history(clients: Clients) -> None:
    """ACContextHistoryTyped, ACContextHistoryMultiple, ACContextHistoryLast: the current
    context is kept per type; without a type it is the last one broadcast."""
    a, b = two_apps(clients)
    channel = a.get_or_create_channel("test-ac-history")
    other = b.get_or_create_channel("test-ac-history")
    assert channel.get_current_context() is None
    other.broadcast(INSTRUMENT)
    other.broadcast(CONTACT)
    assert channel.get_current_context("fdc3.instrument")["name"] == "History-item-1"
    assert channel.get_current_context("fdc3.contact")["name"] == "History-item-1"
    other.broadcast({**INSTRUMENT, "name": "History-item-2"})
    other.broadcast({**CONTACT, "name": "History-item-2"})
    assert channel.get_current_context("fdc3.instrument")["name"] == "History-item-2"
    assert channel.get_current_context("fdc3.contact")["name"] == "History-item-2"
    assert channel.get_current_context()["type"] == "fdc3.contact"  # ACContextHistoryLast
    assert channel.get_current_context("fdc3.position") is None


def test_app_channels_are_not_user_channels_nor_discoverable(clients: Clients) -> None:
    """App channels are not listed; user channel ids are refused (``AccessDenied``)."""
    a, _ = two_apps(clients)
    a.get_or_create_channel("test-ac-hidden")
    assert "test-ac-hidden" not in [c.id for c in a.get_user_channels()]
    with pytest.raises(fdc3.Fdc3ChannelError) as denied:
        a.get_or_create_channel("fdc3.channel.1")
    assert denied.value.fdc3_error == ChannelErrorName.AccessDenied


# ---------------------------------------------------------------------- private channels


def test_private_channels_are_not_app_channels(clients: Clients) -> None:
    """2.0-PrivateChannelsAreNotAppChannels: two private channels have different ids, and
    getOrCreateChannel(private id) is ``AccessDenied``."""
    a, b = two_apps(clients)
    first, second = a.create_private_channel(), a.create_private_channel()
    assert first.type == "private" and first.id != second.id
    with pytest.raises(fdc3.Fdc3ChannelError) as denied:
        b.get_or_create_channel(first.id)
    assert denied.value.fdc3_error == ChannelErrorName.AccessDenied


def test_private_channel_lifecycle_events(clients: Clients) -> None:
    """2.0-PrivateChannelsLifecycleEvents and 2.0-RaiseIntentPrivateChannelResult: an intent
    handler returns a private channel; the raiser listens on it (the handler's
    on_add_context_listener fires), unsubscribes (on_unsubscribe), listens again and
    disconnects (on_unsubscribe, on_disconnect); the handler's broadcasts reach the raiser."""
    a, b = two_apps(clients)
    events: list[Any] = []
    made: list[Any] = []

    fdc3_events: list[dict[str, Any]] = []

    def start_stream(context: dict[str, Any]) -> Any:
        channel = b.create_private_channel()
        channel.on_add_context_listener(lambda kind: events.append(("add", kind)))
        channel.on_unsubscribe(lambda kind: events.append(("unsubscribe", kind)))
        channel.on_disconnect(lambda: events.append(("disconnect",)))
        channel.add_event_listener(None, fdc3_events.append)  # FDC3 2.2's form of the three
        made.append(channel)
        return channel

    b.add_intent_listener("StartStream", start_stream)
    wait_for(lambda: a.io.intents.find("StartStream"), what="the StartStream handler")
    resolution = a.raise_intent("StartStream", INSTRUMENT)
    assert resolution.source.app_id == "fdc3-app-b"
    channel = resolution.get_result()
    assert isinstance(channel, fdc3.PrivateChannel)
    assert channel.id == made[0].id
    got = Received()
    listener = channel.add_context_listener("fdc3.instrument", got)
    wait_for(lambda: ("add", "fdc3.instrument") in events, what="on_add_context_listener")
    made[0].broadcast(INSTRUMENT)
    assert got.wait(1) == [INSTRUMENT]
    listener.unsubscribe()
    wait_for(lambda: ("unsubscribe", "fdc3.instrument") in events, what="on_unsubscribe")
    channel.add_context_listener(None, got)
    wait_for(lambda: ("add", None) in events, what="on_add_context_listener (all types)")
    channel.disconnect()
    wait_for(lambda: ("disconnect",) in events, what="on_disconnect")
    assert events == [
        ("add", "fdc3.instrument"),
        ("unsubscribe", "fdc3.instrument"),
        ("add", None),
        ("unsubscribe", None),
        ("disconnect",),
    ]
    for side in (channel, made[0]):  # either party: disconnected, so refused
        with pytest.raises(fdc3.Fdc3ChannelError) as denied:
            side.broadcast(INSTRUMENT)
        assert denied.value.fdc3_error == ChannelErrorName.AccessDenied
    wait_for(lambda: len(fdc3_events) == 5, what="the five events in FDC3 2.2's form")
    assert fdc3_events == [
        {"type": "addContextListener", "details": {"contextType": "fdc3.instrument"}},
        {"type": "unsubscribe", "details": {"contextType": "fdc3.instrument"}},
        {"type": "addContextListener", "details": {"contextType": None}},
        {"type": "unsubscribe", "details": {"contextType": None}},
        {"type": "disconnect", "details": None},
    ]


# ---------------------------------------------------------------------- intents, apps, info


def test_raise_intent_results_and_errors(clients: Clients) -> None:
    """2.0-RaiseIntentContextResult0secs, 2.0-RaiseIntentVoidResult0secs,
    2.0-RaiseIntentChannelResult and the NoAppsFound cases: a context, nothing, or an app
    channel; find_intent and find_intents_by_context list the handler."""
    a, b = two_apps(clients)
    b.add_intent_listener("ViewChart", lambda ctx: {"type": "fdc3.chart", "seen": ctx["id"]})
    b.add_intent_listener("Log", lambda ctx: None)
    b.add_intent_listener("Channel", lambda ctx: b.get_or_create_channel("test-result-ch"))
    wait_for(lambda: len(a.io.intents.find()) >= 3, what="three intents")
    found = a.find_intent("ViewChart")
    assert found["intent"]["name"] == "ViewChart"
    assert [app["appId"] for app in found["apps"]] == ["fdc3-app-b"]
    by_context = a.find_intents_by_context(INSTRUMENT)
    assert {i["intent"]["name"] for i in by_context} == {"ViewChart", "Log", "Channel"}
    result = a.raise_intent("ViewChart", INSTRUMENT, {"appId": "fdc3-app-b"}).get_result()
    assert result == {"type": "fdc3.chart", "seen": {"ticker": "AAPL"}}
    assert a.raise_intent("Log", INSTRUMENT).get_result() is None
    channel = a.raise_intent("Channel", INSTRUMENT).get_result()
    assert (channel.id, channel.type) == ("test-result-ch", "app")
    with pytest.raises(ji.NoAppsFound) as missing:
        a.raise_intent("NoSuchIntent", INSTRUMENT)
    assert missing.value.fdc3_error == ResolveErrorName.NoAppsFound
    with pytest.raises(ji.NoAppsFound):
        a.find_intent("NoSuchIntent")
    with pytest.raises(ji.ResolverUnavailable):  # three intents take an instrument
        a.raise_intent_for_context(INSTRUMENT)


def test_raise_intent_for_context_and_find_instances(clients: Clients) -> None:
    """2.0 RaiseIntentForContext (one intent takes the type) and findInstances."""
    a, b = two_apps(clients)
    b.add_intent_listener("ViewContact", lambda ctx: {"type": "fdc3.nothing"})
    wait_for(lambda: a.io.intents.find("ViewContact"), what="the ViewContact handler")
    resolution = a.raise_intent_for_context(CONTACT)
    assert resolution.intent == "ViewContact"
    assert resolution.get_result() == {"type": "fdc3.nothing"}
    (instance,) = a.find_instances({"appId": "fdc3-app-b"})
    assert instance.instance_id == b.io.peer_id
    assert a.find_instances("no-such-app") == []


def test_result_types_filter_finds_and_raises(clients: Clients) -> None:
    """2.0 FindIntentAppDByResultSingle/Multiple, FindIntentAppDByResultChannel1/2 and
    FindIntentByContextAndResultType, with listeners declaring result types: ``"channel"``
    takes any channel result, a type only itself, a listener declaring none no filter; the
    raises reach only a handler declaring the type, so no resolver is needed."""
    a, b = two_apps(clients)
    c = clients("fdc3-app-c").fdc3
    b.add_intent_listener("ViewChart", lambda ctx: {"type": "fdc3.chart"}, result_type="fdc3.chart")
    c.add_intent_listener(
        "ViewChart",
        lambda ctx: c.get_or_create_channel("test-rt-stream"),
        result_type="channel<fdc3.instrument>",
    )
    c.add_intent_listener("Log", lambda ctx: None)
    wait_for(lambda: len(a.io.intents.find()) >= 2, what="two intents")
    wait_for(lambda: len(a.io.intents.find("ViewChart")[0].handlers) == 2, what="two handlers")

    def apps(result_type: str | None) -> list[tuple[str, str | None]]:
        found = a.find_intent("ViewChart", INSTRUMENT, result_type)
        return [(app["appId"], app.get("resultType")) for app in found["apps"]]

    assert apps(None) == [("fdc3-app-b", "fdc3.chart"), ("fdc3-app-c", "channel<fdc3.instrument>")]
    assert apps("fdc3.chart") == [("fdc3-app-b", "fdc3.chart")]
    assert apps("channel") == [("fdc3-app-c", "channel<fdc3.instrument>")]
    assert apps("channel<fdc3.instrument>") == [("fdc3-app-c", "channel<fdc3.instrument>")]
    with pytest.raises(ji.NoAppsFound):
        a.find_intent("ViewChart", INSTRUMENT, "fdc3.nothing")
    by_context = a.find_intents_by_context(INSTRUMENT, "channel")
    assert [(i["intent"]["name"], len(i["apps"])) for i in by_context] == [("ViewChart", 1)]
    assert {i["intent"]["name"] for i in a.find_intents_by_context(INSTRUMENT)} == {
        "ViewChart",
        "Log",
    }
    with pytest.raises(ji.ArgumentError, match="not a result type"):
        a.find_intent("ViewChart", INSTRUMENT, "channel<")
    with pytest.raises(ji.ResolverUnavailable):  # two handlers, the "error" policy
        a.raise_intent("ViewChart", INSTRUMENT)
    chart = a.raise_intent("ViewChart", INSTRUMENT, result_type="fdc3.chart")
    assert (chart.source.app_id, chart.get_result()) == ("fdc3-app-b", {"type": "fdc3.chart"})
    stream = a.raise_intent_for_context(INSTRUMENT, result_type="channel")
    assert (stream.intent, stream.source.app_id) == ("ViewChart", "fdc3-app-c")
    assert stream.get_result().id == "test-rt-stream"


def test_results_are_checked_against_the_declared_result_type(
    clients: Clients, caplog: pytest.LogCaptureFixture
) -> None:
    """FDC3 2.2 ``getResult``: a listener that returns other than the result type it declared
    (a context of another type, a context for a channel, a channel for a context type, a
    value that is no context) makes the raiser's ``get_result()`` fail with
    ``ResultError.NoResultReturned`` naming both, and is logged at the listener; what it
    declared, or void, is the result."""
    caplog.set_level(logging.WARNING, logger="jupyter_interop.client")
    a, b = two_apps(clients)
    listeners = {
        "WrongType": ("fdc3.chart", lambda ctx: {"type": "fdc3.contact"}),
        "NoChannel": ("channel", lambda ctx: {"type": "fdc3.chart"}),
        "NoContext": ("fdc3.chart", lambda ctx: b.get_or_create_channel("test-rt-wrong")),
        "Right": ("channel<fdc3.instrument>", lambda ctx: b.get_or_create_channel("test-rt-ok")),
        "Void": ("fdc3.chart", lambda ctx: None),
    }
    for intent, (declared, handler) in listeners.items():
        b.add_intent_listener(intent, handler, result_type=declared)
    b.io.intents.add_listener("NotAContext", lambda ctx: 42, result_type="fdc3.chart")
    wait_for(lambda: len(a.io.intents.find()) >= 6, what="six intents")

    def fails(intent: str) -> str:
        resolution = a.raise_intent(intent, INSTRUMENT)  # delivered: only the result fails
        assert resolution.source.instance_id == b.io.peer_id
        with pytest.raises(fdc3.NoResultReturned) as failed:
            resolution.get_result()
        name = failed.value.fdc3_error
        assert name == fdc3.ResultErrorName.NoResultReturned == "NoResultReturned"
        return str(failed.value)

    assert "'fdc3.chart'" in fails("WrongType") and "'fdc3.contact'" in fails("WrongType")
    assert "'channel'" in fails("NoChannel") and "not a channel" in fails("NoChannel")
    assert "returned a channel" in fails("NoContext")
    assert "42" in fails("NotAContext")
    assert a.raise_intent("Right", INSTRUMENT).get_result().id == "test-rt-ok"
    assert a.raise_intent("Void", INSTRUMENT).get_result() is None
    logged = [r.getMessage() for r in caplog.records if "another type" in r.getMessage()]
    for intent in ("WrongType", "NoChannel", "NoContext", "NotAContext"):
        assert any(repr(intent) in line for line in logged), (intent, logged)
    assert not any("'Right'" in line or "'Void'" in line for line in logged)


def test_raise_intent_for_context_resolves_among_intents(clients: Clients) -> None:
    """2.0 RaiseIntentForContext with several intents taking the context: the client's
    resolver chooses among every (intent, app) pair as it does among one intent's handlers:
    ``"error"`` refuses, ``"first"`` and a function pick, a function returning None cancels;
    ``app`` narrows the choice."""
    a, b = two_apps(clients)
    c = clients("fdc3-app-c").fdc3
    b.add_intent_listener("ViewChart", lambda ctx: {"type": "fdc3.chart", "by": "b"})
    c.add_intent_listener("ViewChart", lambda ctx: {"type": "fdc3.chart", "by": "c"})
    c.add_intent_listener("ViewNews", lambda ctx: {"type": "test.news", "by": "c"})
    wait_for(
        lambda: (
            sum(len(i.handlers) for i in a.io.intents.find(context_type="fdc3.instrument")) == 3
        ),
        what="three handlers",
    )
    with pytest.raises(ji.ResolverUnavailable, match=r"ViewChart, ViewNews|ViewNews, ViewChart"):
        a.raise_intent_for_context(INSTRUMENT)
    offered: list[list[tuple[str, str | None]]] = []

    def pick_news(intent: str, handlers: list[Any], context: Any) -> Any:
        offered.append([(h.intent, h.application) for h in handlers])
        return next(h for h in handlers if h.intent == "ViewNews")

    a.io.intents.resolver = pick_news
    news = a.raise_intent_for_context(INSTRUMENT)
    assert (news.intent, news.source.app_id) == ("ViewNews", "fdc3-app-c")
    assert news.get_result() == {"type": "test.news", "by": "c"}
    assert sorted(offered[0]) == [
        ("ViewChart", "fdc3-app-b"),
        ("ViewChart", "fdc3-app-c"),
        ("ViewNews", "fdc3-app-c"),
    ]
    a.io.intents.resolver = lambda intent, handlers, context: None
    with pytest.raises(ji.UserCancelledResolution):
        a.raise_intent_for_context(INSTRUMENT)
    a.io.intents.resolver = "first"
    first = a.raise_intent_for_context(INSTRUMENT, {"appId": "fdc3-app-b"})
    assert (first.intent, first.get_result()) == ("ViewChart", {"type": "fdc3.chart", "by": "b"})
    a.io.intents.resolver = pick_news
    only_c = a.raise_intent_for_context(INSTRUMENT, "fdc3-app-c")
    assert offered[-1] == [("ViewChart", "fdc3-app-c"), ("ViewNews", "fdc3-app-c")]
    assert only_c.get_result() == {"type": "test.news", "by": "c"}


def test_get_info(clients: Clients) -> None:
    """getInfo (2.0 basic ``GetInfo``): the FDC3 version and this app's identity."""
    a, _ = two_apps(clients)
    info = a.get_info()
    assert info["fdc3Version"] == "2.2"
    assert info["provider"] == "jupyter_interop"
    assert info["appMetadata"] == {"appId": "fdc3-app-a", "instanceId": a.io.peer_id}


def test_open_without_an_app_directory(clients: Clients) -> None:
    """open on a standalone hub (no server, so no notebook to start): ``AppNotFound``."""
    a, _ = two_apps(clients)
    with pytest.raises(fdc3.Fdc3OpenError) as failed:
        a.open("some-notebook.ipynb")
    assert failed.value.fdc3_error == fdc3.OpenErrorName.AppNotFound
    # with a context: the same, and the response method served meanwhile is gone again
    with pytest.raises(fdc3.Fdc3OpenError) as failed:
        a.open("some-notebook.ipynb", INSTRUMENT)
    assert failed.value.fdc3_error == fdc3.OpenErrorName.AppNotFound
    assert not [m for m in a.io.methods.methods() if m.name.startswith("T42.FDC3.Open.")]
    with pytest.raises(ji.MalformedContext):
        a.open("some-notebook.ipynb", BAD_INSTRUMENT)


def test_async_twins(clients: Clients) -> None:
    """Every method has an awaited twin (``a`` + name) on the same agent, awaited here from
    a program's own loop."""
    a, b = two_apps(clients)
    asyncio.run(awaited_twins(a, b))


async def awaited_twins(a: Any, b: Any) -> None:
    await a.ajoin_user_channel("fdc3.channel.1")
    await b.ajoin_user_channel("fdc3.channel.1")
    got = Received()
    await a.aadd_context_listener("fdc3.instrument", got)
    await b.abroadcast({**INSTRUMENT, "name": "async"})
    wait_for(lambda: any(c.get("name") == "async" for c in got.items), what="async broadcast")
    assert (await a.aget_current_channel()).id == "fdc3.channel.1"
    channel = await a.aget_or_create_channel("test-async")
    await channel.abroadcast(CONTACT)
    assert await channel.aget_current_context() == CONTACT
    assert (await a.aget_info())["fdc3Version"] == "2.2"


def test_user_channel_changed_events(clients: Clients) -> None:
    """addEventListener("userChannelChanged"): joins and leaves by any API, with the FDC3 id
    (None off a user channel: left, or on a colour channel without ``meta.fdc3``)."""
    a, _ = two_apps(clients)
    events: list[Any] = []
    listener = a.add_event_listener("userChannelChanged", events.append)
    a.join_user_channel("fdc3.channel.4")
    a.io.channels.join("Blue")  # through io.Connect's API: fdc3.channel.6
    a.io.channels.join("Lime")
    a.leave_current_channel()
    wait_for(lambda: len(events) == 4, what="four channel events")
    assert [e["details"]["currentChannelId"] for e in events] == [
        "fdc3.channel.4",
        "fdc3.channel.6",
        None,
        None,
    ]
    assert {e["type"] for e in events} == {"userChannelChanged"}
    listener.unsubscribe()
    with pytest.raises(ji.ArgumentError, match="one event type"):
        a.add_event_listener("contextCleared", events.append)


def test_get_app_metadata(clients: Clients) -> None:
    """getAppMetadata: a running app (and one of its instances); an unknown app is
    ``TargetAppUnavailable``."""
    a, b = two_apps(clients)
    # discovery is eventually consistent: B's announcement may still be on its way to A
    wait_for(lambda: a.find_instances("fdc3-app-b"), what="fdc3-app-b's instance")
    assert a.get_app_metadata("fdc3-app-b") == {"appId": "fdc3-app-b", "instanceId": b.io.peer_id}
    mine = a.get_app_metadata({"appId": "fdc3-app-a", "instanceId": a.io.peer_id})
    assert mine["instanceId"] == a.io.peer_id
    with pytest.raises(ji.TargetAppUnavailable) as missing:
        a.get_app_metadata("no-such-app")
    assert missing.value.fdc3_error == ResolveErrorName.TargetAppUnavailable


def test_private_channel_party_that_leaves_the_hub_disconnects(clients: Clients) -> None:
    """FDC3: a private channel's disconnect also happens when the other party's instance
    stops. The raiser listens, then its client closes without ``disconnect()``: the handler
    hears ``on_unsubscribe`` and ``on_disconnect``."""
    a, b = two_apps(clients)
    events: list[Any] = []

    def start_stream(context: dict[str, Any]) -> Any:
        channel = b.create_private_channel()
        channel.on_unsubscribe(lambda kind: events.append(("unsubscribe", kind)))
        channel.on_disconnect(lambda: events.append(("disconnect",)))
        return channel

    b.add_intent_listener("StartStream", start_stream)
    wait_for(lambda: a.io.intents.find("StartStream"), what="the StartStream handler")
    channel = a.raise_intent("StartStream", INSTRUMENT).get_result()
    channel.add_context_listener("fdc3.instrument", Received())
    channel.add_context_listener(None, Received())
    a.io.close()
    wait_for(lambda: ("disconnect",) in events, what="on_disconnect after the raiser left")
    assert sorted(events[:-1], key=str) == [
        ("unsubscribe", "fdc3.instrument"),
        ("unsubscribe", None),
    ]
    assert events[-1] == ("disconnect",)


def test_multi_channel_mode_has_one_current_user_channel(clients: Clients) -> None:
    """io.Connect's multi-channel mode puts an app on several colour channels; FDC3 has one
    current user channel: the user channel joined last. Broadcasts go there only, context
    listeners follow it, and leave_current_channel leaves it alone, so the user channel
    joined before it becomes the current one (docs/FDC3.md, "Multi-channel mode")."""
    a, b = two_apps(clients)
    a.io.channels.mode = "multi"
    events: list[Any] = []
    a.add_event_listener("userChannelChanged", events.append)
    a.join_user_channel("fdc3.channel.1")  # Red
    a.join_user_channel("fdc3.channel.6")  # Blue
    a.io.channels.join("Lime")  # a colour channel without meta.fdc3: not a user channel
    assert a.io.channels.my_channels() == ["Red", "Blue", "Lime"]
    assert a.get_current_channel().id == "fdc3.channel.6"
    got = Received()
    a.add_context_listener(None, got)

    a.broadcast(INSTRUMENT)
    assert b.io.channels.get("Blue").data["fdc3_fdc3&instrument"]["name"] == "History-item-1"
    assert "fdc3_fdc3&instrument" not in b.io.channels.get("Red").data
    assert "fdc3_fdc3&instrument" not in b.io.channels.get("Lime").data

    b.join_user_channel("fdc3.channel.1")
    b.broadcast(CONTACT)  # on Red: not a's current user channel
    b.join_user_channel("fdc3.channel.6")
    b.broadcast(LAST)
    assert got.wait(1) == [LAST]

    a.leave_current_channel()
    assert a.io.channels.my_channels() == ["Red", "Lime"]
    assert a.get_current_channel().id == "fdc3.channel.1"
    assert got.wait(2)[1] == CONTACT  # Red's current context, as on a join
    wait_for(lambda: len(events) == 4, what="four channel events")
    assert [e["details"]["currentChannelId"] for e in events] == [
        "fdc3.channel.1",
        "fdc3.channel.6",
        "fdc3.channel.6",  # Lime joined: the current user channel stays Blue
        "fdc3.channel.1",
    ]
    a.leave_current_channel()
    assert a.io.channels.my_channels() == ["Lime"] and a.get_current_channel() is None
    a.broadcast(CONTACT)  # on no user channel: nothing is written, Lime included
    assert not any(key.startswith("fdc3_") for key in b.io.channels.get("Lime").data)
