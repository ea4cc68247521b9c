"""Calls across two real standalone hubs federated through a real nats-server, beyond small
JSON values (docs/FEDERATION.md, "Large values", "Who calls", "Intents"): a 30 MB numpy array
and a DataFrame cross in chunks and arrive equal; a value above a link's budget fails its call
with a clear error and both hubs go on serving; the callee sees the real caller of the other
hub; an intent listener of one hub is found and raised from the other, by Python and by the
real ``@interopio/core`` in Node (``tests/compat/intents_peer.js``)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from test_client_intents import INSTRUMENT, IntentsPeer, wait_handlers
from test_client_support import wait_for
from test_federation import Hub, servers_of, start_hub, stop, who_calls
from test_federation import nats as nats  # the fixtures
from test_federation import nats_url as nats_url
from test_federation import two_hubs as two_hubs

import jupyter_interop as ji

#: hub A's budget for values in flight (bytes) in the budget test: above 1 MB (NATS's
#: max_payload, so values in chunks fit) and below the 30 MB arrays
SMALL_BUDGET = 8_000_000


def clients(stack: ExitStack, a_hub: Hub, b_hub: Hub) -> tuple[ji.Interop, ji.Interop]:
    b = ji.connect(url=b_hub.url, token=b_hub.token, application="values-b")
    stack.callback(b.close)
    a = ji.connect(url=a_hub.url, token=a_hub.token, application="values-a")
    stack.callback(a.close)
    return a, b


@pytest.fixture
def budget_hubs(tmp_path: Path, nats_url: str) -> Iterator[tuple[Hub, Hub]]:
    """Hub A holds at most :data:`SMALL_BUDGET` bytes of values, hub B the default."""
    with ExitStack() as stack:
        hub_a = start_hub(
            tmp_path / "a", nats_url, f"--InteropHub.federation_max_value_bytes={SMALL_BUDGET}"
        )
        stack.callback(stop, hub_a.proc)
        hub_b = start_hub(tmp_path / "b", nats_url)
        stack.callback(stop, hub_b.proc)
        yield hub_a, hub_b


def test_a_large_array_and_a_dataframe_cross_hubs_both_ways_and_arrive_equal(
    two_hubs: tuple[Hub, Hub],
) -> None:
    rng = np.random.default_rng(7)
    array = rng.standard_normal((1_250_000, 3))  # 30 MB of float64
    frame = pd.DataFrame(
        {
            "px": rng.standard_normal(800_000),
            "qty": rng.integers(0, 1_000_000, 800_000),
            "side": np.where(rng.random(800_000) < 0.5, "buy", "sell"),
        },
        index=pd.RangeIndex(800_000, name="trade"),
    )
    with ExitStack() as stack:
        a, b = clients(stack, *two_hubs)
        seen: dict[str, Any] = {}

        def echo(array: Any, frame: Any) -> dict[str, Any]:
            seen.update(array=array, frame=frame)
            return {"array": array * 2, "frame": frame.iloc[::-1], "rows": len(frame)}

        b.methods.register("Echo")(echo)
        wait_for(lambda: servers_of(a, "Echo"), what="hub B's Echo on hub A")

        result = a.methods.invoke("Echo", {"array": array, "frame": frame}, timeout=300)

        np.testing.assert_array_equal(seen["array"], array)
        pd.testing.assert_frame_equal(seen["frame"], frame)
        returned = result.returned
        assert returned["rows"] == 800_000
        np.testing.assert_array_equal(returned["array"], array * 2)
        pd.testing.assert_frame_equal(returned["frame"], frame.iloc[::-1])


def test_a_value_above_the_budget_fails_its_call_clearly_and_the_hubs_go_on(
    budget_hubs: tuple[Hub, Hub],
) -> None:
    big = np.arange(4_000_000, dtype=np.float64)  # 32 MB, above hub A's 8 MB budget
    fits = np.arange(400_000, dtype=np.float64)  # 3.2 MB: chunks, within the budget
    with ExitStack() as stack:
        a, b = clients(stack, *budget_hubs)
        b.methods.register("Length")(lambda values: {"n": len(values)})
        b.methods.register("Make")(lambda n: {"values": np.arange(n, dtype=np.float64)})
        wait_for(lambda: servers_of(a, "Length") and servers_of(a, "Make"), what="B's methods")

        # an argument above A's budget: A's link refuses to send it
        with pytest.raises(ji.InvocationError, match="federation_max_value_bytes"):
            a.methods.invoke("Length", {"values": big}, timeout=120)
        # a result above A's budget: A's link refuses to take it
        with pytest.raises(ji.InvocationError, match="federation_max_value_bytes"):
            a.methods.invoke("Make", {"n": len(big)}, timeout=120)

        # both hubs still serve, large values within the budget included, both ways
        assert a.methods.invoke("Length", {"values": fits}, timeout=120).returned == {"n": 400_000}
        made = a.methods.invoke("Make", {"n": 400_000}, timeout=120).returned["values"]
        np.testing.assert_array_equal(made, fits)
        a.methods.register("LengthA")(lambda values: {"n": len(values)})
        wait_for(lambda: servers_of(b, "LengthA"), what="A's method on B")
        assert b.methods.invoke("LengthA", {"values": fits}, timeout=120).returned == {"n": 400_000}


def test_the_callee_sees_the_real_caller_of_the_other_hub(two_hubs: tuple[Hub, Hub]) -> None:
    with ExitStack() as stack:
        a, b = clients(stack, *two_hubs)
        callers = who_calls(b)
        a.methods.register("OnA")(lambda: {})
        wait_for(lambda: servers_of(a, "WhoCalls"), what="B's method on A")
        # A's peer as B knows it (a remote peer, with its hub)
        (a_on_b,) = wait_for(lambda: servers_of(b, "OnA"), what="A's peer on B")

        a.methods.invoke("WhoCalls", {}, timeout=60)

        (caller,) = callers
        assert caller.peer_id == a.instance.peer_id
        assert caller.application == "values-a"
        assert (caller.instance, caller.user) == (a.instance.instance, a.instance.user)
        assert caller.is_local is False
        assert caller.hub == a_on_b.hub and caller.hub is not None


def test_an_intent_listener_of_hub_b_is_found_and_raised_from_hub_a(
    two_hubs: tuple[Hub, Hub],
) -> None:
    with ExitStack() as stack:
        a, b = clients(stack, *two_hubs)
        received: list[dict[str, Any]] = []

        def view_chart(context: dict[str, Any]) -> dict[str, Any]:
            received.append(context)
            return {"type": "fdc3.chart", "shown": context["id"]["ticker"]}

        b.intents.add_listener(
            "ViewChart",
            view_chart,
            context_types=["fdc3.instrument"],
            display_name="Chart",
            result_type="fdc3.chart",
        )
        wait_handlers(a, "ViewChart", 1)
        (intent,) = a.intents.find("ViewChart")
        (handler,) = intent.handlers
        assert (intent.name, intent.display_name) == ("ViewChart", "Chart")
        assert (handler.application, handler.peer_id) == ("values-b", b.instance.peer_id)
        assert handler.context_types == ("fdc3.instrument",)
        assert handler.result_type == "fdc3.chart"
        assert a.intents.find("ViewChart", "fdc3.contact") == []

        resolution = a.intents.raise_intent("ViewChart", INSTRUMENT)
        assert resolution.handler.peer_id == b.instance.peer_id
        assert resolution.result == {"type": "fdc3.chart", "shown": "AAPL"}
        assert received == [INSTRUMENT]


def test_interopio_core_raises_across_hubs_and_its_listener_sees_the_real_caller(
    two_hubs: tuple[Hub, Hub],
) -> None:
    hub_a, hub_b = two_hubs
    with ExitStack() as stack:
        _, b = clients(stack, hub_a, hub_b)
        js = IntentsPeer(hub_a, "interopio")  # type: ignore[arg-type] (url and token suffice)
        stack.callback(js.close)
        b.intents.add_listener(
            "PyChart",
            lambda context: {"type": "fdc3.chart", "seen": context["id"]["ticker"]},
            context_types=["fdc3.instrument"],
            display_name="Py chart",
        )
        # JS on hub A sees the listener of hub B with its intent metadata, and raises it
        flags = js.call("methodFlags", intent="PyChart")
        assert flags == [
            {"intent": {"contextTypes": ["fdc3.instrument"], "displayName": "Py chart"}}
        ]
        reply = js.call("raise", intent="PyChart", context=INSTRUMENT, peerId=b.instance.peer_id)
        assert reply == {
            "returned": {"type": "fdc3.chart", "seen": "AAPL"},
            "executedBy": "values-b",
        }

        # the other way: a JS listener on hub A, raised from Python on hub B, sees its caller
        js.call("listen", intent="JsChart", contextTypes=["fdc3.instrument"], displayName="JS")
        wait_handlers(b, "JsChart", 1)
        resolution = b.intents.raise_intent("JsChart", INSTRUMENT)
        assert resolution.result == {"type": "fdc3.chart", "ticker": "AAPL", "by": js.application}
        seen = js.event(lambda e: e["event"] == "intent" and e["intent"] == "JsChart")
        assert (seen["context"], seen["caller"]) == (INSTRUMENT, "values-b")
