"""Intents in real kernels: ``%interop intents``, ``%interop intent raise``, ``%%interop
intent`` cells, and the resolver widget clicked through the comm, two notebooks on one hub."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

from kernelkit import Kernel

from jupyter_interop.client.intents import Intents, set_default_resolver

HANDLER_CELL = (
    "%%interop intent {intent} --context-types fdc3.instrument --display-name {display}\n"
    'print("handling", context["id"])\n'
    '{{"type": "ack", "by": "{who}", "ticker": context["id"]["ticker"]}}'
)
# one find() per evaluation: two calls could straddle a handler's departure
PEERS = "[h.peer_id for i in ji.connect().intents.find({intent!r}) for h in i.handlers]"


def handlers_seen(kernel: Kernel, intent: str, count: int) -> None:
    kernel.wait_value(f"len(({PEERS.format(intent=intent)}))", count)


def wait_idle(kernel: Kernel, msg_id: str) -> None:
    """Wait until the cell ``msg_id`` (sent with ``kc.execute``) finished."""
    kernel.wait_iopub(
        lambda msgs: any(
            m["msg_type"] == "status"
            and m["parent_header"].get("msg_id") == msg_id
            and m["content"]["execution_state"] == "idle"
            for m in msgs
        )
    )


def handlers_in_both(nb_a: Kernel, nb_b: Kernel, intent: str) -> str:
    """A cell handler of ``intent`` in each kernel, both seen from A; B's peer id."""
    nb_a.run(HANDLER_CELL.format(intent=intent, display="InA", who="A"))
    nb_b.run(HANDLER_CELL.format(intent=intent, display="InB", who="B"))
    handlers_seen(nb_a, intent, 2)
    return str(nb_b.value("ji.connect().peer_id"))


def test_cell_handler_listing_and_raise_between_two_kernels(
    nb_a: Kernel, nb_b: Kernel, unique: Callable[[str], str]
) -> None:
    intent = unique("ViewChart")
    reg = nb_b.run(HANDLER_CELL.format(intent=intent, display="Chart", who="B"))
    assert f"Handling intent '{intent}' for fdc3.instrument" in reg.text
    handlers_seen(nb_a, intent, 1)

    listing = nb_a.run(f"%interop intents {intent} -o found")
    assert intent in listing.text and "Chart" in listing.text and "fdc3.instrument" in listing.text
    assert "text/html" in (listing.result or {})
    peer_b = nb_b.value("ji.connect().peer_id")
    assert nb_a.value("[h.peer_id for h in found[0].handlers]") == [peer_b]
    assert intent in nb_a.run("%interop intents").text

    ex = nb_a.run(
        f'%interop intent raise {intent} {{"type": "fdc3.instrument", "id": {{"ticker": "AAPL"}}}}'
        " -o r"
    )
    assert nb_a.value("r") == {"type": "ack", "by": "B", "ticker": "AAPL"}
    assert peer_b in ex.text
    # key=value context with a path, targeted by peer id and by application
    raise_to = f"%interop intent raise {intent} type=fdc3.instrument"
    nb_a.run(f"{raise_to} id.ticker=MSFT --target {peer_b} -o r2")
    assert nb_a.value("r2['ticker']") == "MSFT"
    app_b = nb_b.value("ji.connect().instance.application")
    nb_a.run(f"{raise_to} id.ticker=IBM --target {app_b} -o r3")
    assert nb_a.value("r3['ticker']") == "IBM"
    # the handler's print went under the registering cell of notebook B
    nb_b.wait_iopub(
        lambda msgs: any(
            m["msg_type"] == "stream"
            and m["parent_header"].get("msg_id") == reg.msg_id
            and "handling {'ticker': 'AAPL'}" in m["content"]["text"]
            for m in msgs
        )
    )
    # re-running the cell replaces the handler (no "already listens" error)
    nb_b.run(HANDLER_CELL.format(intent=intent, display="Chart", who="B2"))
    nb_a.wait_value(
        f"ji.connect().intents.raise_intent({intent!r}, "
        "{'type': 'fdc3.instrument', 'id': {'ticker': 'X'}}).result['by']",
        "B2",
    )
    # a context type the handler does not take
    message = nb_a.usage_error(f"%interop intent raise {intent} type=fdc3.contact")
    assert "NoAppsFound" in message or "No running handler" in message
    # the cell's handler stops
    assert "Stopped handling" in nb_b.run(f"%interop intent unsubscribe {intent}").text
    handlers_seen(nb_a, intent, 0)
    assert "no %%interop intent cell" in nb_b.usage_error(f"%interop intent unsubscribe {intent}")


def test_cell_handler_declares_its_result_type_and_the_listing_shows_it(
    nb_a: Kernel, nb_b: Kernel, unique: Callable[[str], str]
) -> None:
    """``%%interop intent INTENT --result-type TYPE`` declares FDC3's ``resultType``: the other
    kernel's ``%interop intents`` shows it in its own column, ``io.fdc3`` finds filter by it,
    and a type that is not one is refused before a re-run cell's handler is dropped."""
    intent = unique("ViewChartOf")
    cell = (
        f"%%interop intent {intent} --context-types fdc3.instrument --result-type {{result}}\n"
        '{{"type": "fdc3.chart", "instruments": [context]}}'
    )
    reg = nb_b.run(cell.format(result="fdc3.chart"))
    assert "returning fdc3.chart" in reg.text
    handlers_seen(nb_a, intent, 1)
    listing = nb_a.run(f"%interop intents {intent}")
    assert "result type" in listing.text and "fdc3.chart" in listing.text
    assert nb_a.value(
        f"[h.result_type for i in ji.connect().intents.find({intent!r}) for h in i.handlers]"
    ) == ["fdc3.chart"]
    instrument = "{'type': 'fdc3.instrument', 'id': {'ticker': 'AAPL'}}"

    def found(kind: str) -> str:
        return f"ji.connect().fdc3.find_intent({intent!r}, {instrument}, {kind!r})['apps']"

    assert [a["resultType"] for a in nb_a.value(found("fdc3.chart"))] == ["fdc3.chart"]
    assert nb_a.fails(found("channel"))["ename"] == "NoAppsFound"
    error = nb_b.usage_error(cell.format(result="'not a type'"))
    assert "--result-type" in error and "not a result type" in error
    handlers_seen(nb_a, intent, 1)  # the first cell's handler still answers
    nb_b.run(f"%interop intent unsubscribe {intent}")


def test_usage_errors(nb_a: Kernel, unique: Callable[[str], str]) -> None:
    assert "%interop intent raise INTENT" in nb_a.usage_error("%interop intent Foo")
    assert "one intent name" in nb_a.usage_error("%%interop intent A B\n1")
    assert "cell body is empty" in nb_a.usage_error("%%interop intent Foo\n")
    assert "CONTEXT must be a JSON object" in nb_a.usage_error("%interop intent raise Foo [1]")
    assert "No running handler" in nb_a.usage_error(f"%interop intent raise {unique('None')}")
    assert "--timeout" in nb_a.usage_error("%interop intent raise Foo --timeout 0")
    assert "%%interop intent NAME" in nb_a.usage_error("%%interop peers\n1")
    help_text = nb_a.run("%interop intent --help").stdout
    assert "%%interop intent ViewChart" in help_text and "widget" in help_text
    assert "intents " in nb_a.run("%interop --help").stdout


def test_resolver_widget_chooses_between_two_kernels(
    nb_a: Kernel, nb_b: Kernel, unique: Callable[[str], str]
) -> None:
    intent = unique("Resolve")
    peer_b = handlers_in_both(nb_a, nb_b, intent)
    nb_a.run("from jupyter_interop.notebook._intents import pending_resolvers")

    # a blocking raise in a cell cannot be answered by a widget: refused at once, with advice
    error = nb_a.fails(
        f"ji.connect().intents.raise_intent({intent!r}, "
        "{'type': 'fdc3.instrument', 'id': {'ticker': 'A'}})"
    )
    assert error["ename"] == "ResolverUnavailable" and "araise_intent" in error["evalue"]

    ex = nb_a.run(f"%interop intent raise {intent} type=fdc3.instrument id.ticker=WDG -o picked")
    views = [d for d in ex.data if "application/vnd.jupyter.widget-view+json" in d]
    assert views, ex.data
    assert nb_a.value("len(pending_resolvers())") == 1
    assert nb_a.value("pending_resolvers()[0]._dom_classes") == ["ji-intent-resolver"]
    labels = nb_a.value("[b.description for b in pending_resolvers()[0].handler_buttons]")
    assert len(labels) == 2 and sum(peer_b in label for label in labels) == 1
    index = next(i for i, label in enumerate(labels) if peer_b in label)
    nb_a.run(f"wdg = pending_resolvers()[0]; button = wdg.handler_buttons[{index}]")
    nb_a.click(nb_a.value("button.model_id"))
    nb_a.wait_value("globals().get('picked')", {"type": "ack", "by": "B", "ticker": "WDG"})
    assert nb_a.value("len(pending_resolvers())") == 0
    assert "handled by" in nb_a.value("wdg.status.value")
    assert nb_a.value("[b.disabled for b in wdg.handler_buttons]") == [True, True]

    # Cancel: UserCancelledResolution shows in the widget, nothing is stored
    nb_a.run(f"%interop intent raise {intent} type=fdc3.instrument id.ticker=NO -o never")
    nb_a.run("wdg2 = pending_resolvers()[0]")
    nb_a.click(nb_a.value("wdg2.cancel_button.model_id"))
    nb_a.wait_value("'UserCancelledResolution' in wdg2.status.value", True)
    assert nb_a.value("'never' in globals()") is False

    # no choice within the raise's timeout: ResolverTimeout, the buttons disabled
    nb_a.run(f"%interop intent raise {intent} type=fdc3.instrument id.ticker=L --timeout 0.5")
    nb_a.run("wdg3 = _  # the widget the magic returned")
    nb_a.wait_value("'ResolverTimeout' in wdg3.status.value", True)
    assert nb_a.value("(wdg3.cancel_button.disabled, len(pending_resolvers()))") == [True, 0]

    # a target chooses: no widget
    nb_a.run(
        f"%interop intent raise {intent} type=fdc3.instrument id.ticker=T --target {peer_b} -o t"
    )
    assert nb_a.value("(t['by'], len(pending_resolvers()))") == ["B", 0]


def test_awaited_raise_is_answered_by_the_widget_while_the_cell_awaits(
    nb_a: Kernel, nb_b: Kernel, unique: Callable[[str], str]
) -> None:
    intent = unique("Awaited")
    peer_b = handlers_in_both(nb_a, nb_b, intent)
    since = len(nb_a.iopub)
    msg_id = nb_a.kc.execute(
        f"done = await ji.connect().intents.araise_intent({intent!r}, "
        "{'type': 'fdc3.instrument', 'id': {'ticker': 'AW'}})"
    )

    def button_of_b(msgs: list[dict[str, Any]]) -> str | None:
        for m in msgs[since:]:
            state = m["content"].get("data", {}).get("state", {})
            if (
                m["msg_type"] == "comm_open"
                and "ji-intent-handler" in state.get("_dom_classes", [])
                and peer_b in state.get("description", "")
            ):
                return str(m["content"]["comm_id"])
        return None

    nb_a.wait_iopub(lambda msgs: button_of_b(msgs) is not None)
    # the widget went under the awaiting cell
    nb_a.wait_iopub(
        lambda msgs: any(
            m["msg_type"] == "display_data" and m["parent_header"].get("msg_id") == msg_id
            for m in msgs
        )
    )
    model_id = button_of_b(nb_a.iopub)
    assert model_id is not None
    nb_a.click(model_id)
    wait_idle(nb_a, msg_id)
    assert nb_a.value("(done.result['by'], done.handler.peer_id)") == ["B", peer_b]


def test_fdc3_raise_for_context_offers_every_intent_in_the_widget(
    nb_a: Kernel, nb_b: Kernel, unique: Callable[[str], str]
) -> None:
    """``io.fdc3.araise_intent_for_context`` when two intents of another kernel take the
    context: the widget under the awaiting cell offers each intent with its app, and the one
    clicked is raised."""
    chart, news = unique("ChartFor"), unique("NewsFor")
    kind = unique("test.kind")
    for intent, display in ((chart, "Chart"), (news, "News")):
        nb_b.run(
            f"%%interop intent {intent} --context-types {kind} --display-name {display}\n"
            f'{{"type": "ack", "by": "{display}"}}'
        )
    nb_a.wait_value(f"len(ji.connect().intents.find(context_type={kind!r}))", 2)
    since = len(nb_a.iopub)
    msg_id = nb_a.kc.execute(
        f"done = await ji.connect().fdc3.araise_intent_for_context({{'type': {kind!r}}})"
    )

    def buttons(msgs: list[dict[str, Any]]) -> dict[str, str]:
        found = {}
        for m in msgs[since:]:
            state = m["content"].get("data", {}).get("state", {})
            if m["msg_type"] == "comm_open" and "ji-intent-handler" in state.get(
                "_dom_classes", []
            ):
                found[state["description"]] = str(m["content"]["comm_id"])
        return found

    nb_a.wait_iopub(lambda msgs: len(buttons(msgs)) == 2)
    labels = buttons(nb_a.iopub)
    peer_b = str(nb_b.value("ji.connect().peer_id"))
    assert all(peer_b in label for label in labels)
    (news_button,) = [m for label, m in labels.items() if f"News ({news})" in label]
    assert any(f"Chart ({chart})" in label for label in labels)
    nb_a.click(news_button)
    wait_idle(nb_a, msg_id)
    assert nb_a.value("(done.intent, done.get_result(), done.source.instance_id)") == [
        news,
        {"type": "ack", "by": "News"},
        peer_b,
    ]
    for intent in (chart, news):
        nb_b.run(f"%interop intent unsubscribe {intent}")


def test_the_widget_is_the_default_resolver_in_a_kernel_only(nb_a: Kernel) -> None:
    assert nb_a.value("ji.connect().intents.resolver.__name__") == "notebook_resolver"
    # this test process has no notebook layer loaded: "error", until a client or the default
    # says otherwise
    intents = Intents(cast(Any, None), cast(Any, None), cast(Any, None))
    assert intents.resolver == "error"

    def pick_last(intent: str, handlers: list[Any], context: Any) -> Any:
        return handlers[-1]

    try:
        set_default_resolver(pick_last)
        assert intents.resolver is pick_last
        intents.resolver = "first"
        assert intents.resolver == "first"
    finally:
        set_default_resolver("error")


def test_the_widget_labels_handlers_and_is_disabled_if_shown_after_the_raise_gave_up() -> None:
    from jupyter_interop.client import Instance
    from jupyter_interop.client.intents import IntentHandler
    from jupyter_interop.notebook._intents import (
        PendingChoice,
        pending_resolvers,
        resolver_widget,
    )

    handlers = [
        IntentHandler("X", Instance(peer_id="p1", application="Charts"), display_name="Chart"),
        IntentHandler("X", Instance(peer_id="p2", application="Grid")),
    ]
    chosen: list[Any] = []
    live = resolver_widget(PendingChoice("X", handlers, None, chosen.append))
    labels = [b.description for b in live.handler_buttons]
    assert "Chart (X)" in labels[0] and "Charts (p1)" in labels[0] and "Grid (p2)" in labels[1]
    live.handler_buttons[1].click()
    assert chosen == [handlers[1]] and live not in pending_resolvers()
    assert all(b.disabled for b in [*live.handler_buttons, live.cancel_button])

    late = PendingChoice("X", handlers, None, chosen.append)
    late.closed()  # timed out before the kernel could show the widget
    shown = resolver_widget(late)
    assert shown not in pending_resolvers() and shown.cancel_button.disabled
    assert "no choice" in shown.status.value
