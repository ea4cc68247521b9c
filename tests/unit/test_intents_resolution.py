"""Intent resolution without sockets: handlers from methods, context types, targets, resolvers."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

import jupyter_interop as ji
from jupyter_interop.client.intents import (
    INTENT_METHOD_PREFIX,
    IntentHandler,
    choose_handler,
    context_type_of,
    fitting_handlers,
    intents_from_methods,
    targeted_handlers,
)
from jupyter_interop.client.registry import Method
from jupyter_interop.protocol.intents import result_problem


def peer(peer_id: str, application: str, instance: str | None = None) -> ji.Instance:
    return ji.Instance(peer_id=peer_id, application=application, instance=instance)


def method(name: str, servers: list[ji.Instance], flags: dict[str, Any] | None = None) -> Method:
    return Method(
        name=name,
        display_name=None,
        description=None,
        accepts=None,
        returns=None,
        version=None,
        object_types=(),
        flags=dict(flags or {}),
        supports_streaming=False,
        servers=tuple(servers),
    )


CHART, GRID, ANY = peer("p1", "chart", "i1"), peer("p2", "grid", "i2"), peer("p3", "any")
METHODS = [
    method(
        INTENT_METHOD_PREFIX + "ViewChart",
        [CHART],
        {"intent": {"contextTypes": ["fdc3.instrument"], "displayName": "Chart", "icon": "c.png"}},
    ),
    method(
        INTENT_METHOD_PREFIX + "ViewChart",
        [GRID],
        {"intent": {"contextTypes": ["fdc3.instrument", "fdc3.portfolio"]}},
    ),
    method(INTENT_METHOD_PREFIX + "ViewChart", [ANY]),  # no flags.intent: takes every type
    method(INTENT_METHOD_PREFIX + "Email", [GRID], {"intent": {"contextTypes": ["fdc3.contact"]}}),
    method("Tick42.FDC3.Other", [CHART]),
    method("plain", [CHART]),
]


def view_chart() -> list[IntentHandler]:
    (found,) = [i for i in intents_from_methods(METHODS) if i.name == "ViewChart"]
    return list(found.handlers)


def test_intents_come_from_prefixed_methods_with_their_flags() -> None:
    found = {i.name: i for i in intents_from_methods(METHODS)}
    assert sorted(found) == ["Email", "ViewChart"]
    chart = found["ViewChart"]
    assert chart.display_name == "Chart"
    assert [h.application for h in chart.handlers] == ["chart", "grid", "any"]
    first = chart.handlers[0]
    assert (first.context_types, first.display_name, first.icon) == (
        ("fdc3.instrument",),
        "Chart",
        "c.png",
    )
    assert (first.peer_id, first.type) == ("p1", "instance")
    assert chart.context_types == ("fdc3.instrument", "fdc3.portfolio")
    assert found["Email"].display_name == "Email"  # no displayName: the intent's name


def test_context_type_filters_handlers() -> None:
    handlers = view_chart()

    def apps(kind: str | None) -> list[str | None]:
        return [h.application for h in fitting_handlers("ViewChart", handlers, kind)]

    assert apps("fdc3.instrument") == ["chart", "grid", "any"]
    assert apps("fdc3.portfolio") == ["grid", "any"]
    assert apps("fdc3.contact") == ["any"]
    assert apps(None) == ["chart", "grid", "any"]
    assert fitting_handlers("Email", handlers, None) == []


def test_result_types_from_flags_filter_handlers() -> None:
    """``flags.intent.resultType`` becomes the handler's ``result_type`` (a malformed one is
    no declaration); ``"channel"`` matches any channel result, other types only
    themselves, and a handler that declares none matches no filter."""
    server = peer("p9", "rt")
    flags = {
        "chart": {"intent": {"resultType": "fdc3.chart"}},
        "stream": {"intent": {"resultType": "channel<fdc3.instrument>"}},
        "anychannel": {"intent": {"resultType": "channel"}},
        "bad": {"intent": {"resultType": "channel<x"}},
        "none": {"intent": {}},
    }
    handlers = [
        next(
            iter(intents_from_methods([method(INTENT_METHOD_PREFIX + name, [server], spec)]))
        ).handlers[0]
        for name, spec in flags.items()
    ]
    assert [h.result_type for h in handlers] == [
        "fdc3.chart",
        "channel<fdc3.instrument>",
        "channel",
        None,
        None,
    ]

    def fit(result_type: str | None) -> list[str]:
        return [
            h.intent
            for h in handlers
            if fitting_handlers(h.intent, [h], "fdc3.instrument", result_type)
        ]

    assert fit(None) == list(flags)
    assert fit("fdc3.chart") == ["chart"]
    assert fit("channel") == ["stream", "anychannel"]
    assert fit("channel<fdc3.instrument>") == ["stream"]
    assert fit("fdc3.nothing") == []


def test_malformed_contexts() -> None:
    assert context_type_of("X", None) is None
    assert context_type_of("X", {"type": "fdc3.instrument", "id": {}}) == "fdc3.instrument"
    for bad in ([1], "fdc3.instrument", {"id": {}}, {"type": 3}, {"type": ""}):
        with pytest.raises(ji.MalformedContext) as info:
            context_type_of("X", bad)
        assert info.value.fdc3_error == "MalformedContext" and info.value.intent == "X"
        assert isinstance(info.value, ji.InteropError) and isinstance(info.value, ValueError)


def test_targets_select_among_running_handlers() -> None:
    handlers = view_chart()

    def apps(target: Any) -> list[str | None]:
        return [h.application for h in targeted_handlers("ViewChart", handlers, target)]

    assert apps(None) == apps("reuse") == ["chart", "grid", "any"]
    assert apps({"application": "grid"}) == ["grid"]
    assert apps({"instance": "i1"}) == ["chart"]  # the instance id
    assert apps({"instance": "p3"}) == ["any"]  # or the peer id
    assert apps("p2") == ["grid"]
    assert apps(GRID) == ["grid"]
    assert apps({"application": "chart", "instance": "p1"}) == ["chart"]


@pytest.mark.parametrize(
    ("target", "error", "fdc3"),
    [
        ({"application": "nope"}, ji.TargetAppUnavailable, "TargetAppUnavailable"),
        ({"instance": "nope"}, ji.TargetInstanceUnavailable, "TargetInstanceUnavailable"),
        ({"application": "chart", "instance": "p2"}, ji.TargetInstanceUnavailable, None),
        ("startNew", ji.NoAppsFound, "NoAppsFound"),
    ],
)
def test_target_errors(target: Any, error: type[ji.IntentError], fdc3: str | None) -> None:
    with pytest.raises(error) as info:
        targeted_handlers("ViewChart", view_chart(), target)
    assert fdc3 is None or info.value.fdc3_error == fdc3
    if target == "startNew":
        assert "can be started" in str(info.value)


def test_no_fitting_handler_and_bad_targets() -> None:
    with pytest.raises(ji.NoAppsFound, match="No running handler"):
        targeted_handlers("Nothing", [], None)
    for bad in (3, {"app": "chart"}, ["p1"]):
        with pytest.raises(ji.ArgumentError):
            targeted_handlers("ViewChart", view_chart(), bad)


def choose(handlers: list[IntentHandler], resolver: Any, timeout: float | None = None) -> Any:
    return asyncio.run(choose_handler("ViewChart", handlers, {"type": "t"}, resolver, timeout))


def test_one_handler_needs_no_resolver() -> None:
    only = view_chart()[:1]
    assert choose(only, "error") is only[0]


def test_policies() -> None:
    handlers = view_chart()
    with pytest.raises(ji.ResolverUnavailable) as info:
        choose(handlers, "error")
    assert "3 handlers" in str(info.value) and "chart (p1)" in str(info.value)
    assert info.value.fdc3_error == "ResolverUnavailable"
    assert choose(handlers, "first") is handlers[0]
    with pytest.raises(ji.ArgumentError):
        choose(handlers, "last")


def test_resolver_functions_sync_async_cancel_timeout() -> None:
    handlers = view_chart()
    seen: list[Any] = []

    def pick_grid(intent: str, offered: list[IntentHandler], context: Any) -> IntentHandler:
        seen.append((intent, [h.application for h in offered], context))
        return offered[1]

    assert choose(handlers, pick_grid) is handlers[1]
    assert seen == [("ViewChart", ["chart", "grid", "any"], {"type": "t"})]

    async def pick_last(intent: str, offered: list[IntentHandler], context: Any) -> IntentHandler:
        return offered[-1]

    assert choose(handlers, pick_last) is handlers[2]
    with pytest.raises(ji.UserCancelledResolution):
        choose(handlers, lambda *_: None)

    async def never(*_: Any) -> None:
        await asyncio.Event().wait()

    with pytest.raises(ji.ResolverTimeout) as info:
        choose(handlers, never, timeout=0)
    assert isinstance(info.value, TimeoutError)
    other = IntentHandler("ViewChart", peer("p9", "stranger"))
    with pytest.raises(ji.ArgumentError, match="not one of the handlers"):
        choose(handlers, lambda *_: other)


def test_every_intent_error_names_its_fdc3_value() -> None:
    names = [
        "NoAppsFound",
        "ResolverUnavailable",
        "UserCancelledResolution",
        "ResolverTimeout",
        "TargetAppUnavailable",
        "TargetInstanceUnavailable",
        "IntentDeliveryFailed",
        "MalformedContext",
        "IntentHandlerRejected",
    ]
    for name in names:
        cls = getattr(ji, name)
        assert issubclass(cls, ji.IntentError) and issubclass(cls, ji.InteropError)
        assert cls.fdc3_error == name


@pytest.mark.parametrize(
    ("declared", "result", "problem"),
    [
        (None, {"type": "anything"}, None),
        ("fdc3.chart", None, None),
        ("fdc3.chart", {"type": "fdc3.chart", "x": 1}, None),
        ("fdc3.chart", {"type": "fdc3.contact"}, "a context of type 'fdc3.contact'"),
        ("fdc3.chart", {"id": "c", "type": "app", "isChannel": True}, "returned a channel"),
        ("fdc3.chart", {"fdc3_channel": {"id": "c", "type": "app"}}, "returned a channel"),
        ("fdc3.chart", 42, "int '42', not a context"),
        ("channel", {"id": "c", "type": "app", "isChannel": True}, None),
        ("channel<fdc3.instrument>", {"fdc3_channel": {"id": "c"}}, None),
        ("channel", {"type": "fdc3.chart"}, "returned a context, not a channel"),
    ],
)
def test_results_are_checked_against_the_declared_result_type(
    declared: str | None, result: Any, problem: str | None
) -> None:
    """FDC3 2.2: a listener's result is of its declared result type; void always fits."""
    found = result_problem(declared, result)
    if problem is None:
        assert found is None
    else:
        assert found is not None and problem in found and repr(declared) in found
