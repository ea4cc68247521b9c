"""Rough edges of the magics and widgets, in real kernels: what a wrong target and a missing
argument say, a cell that shows it is waiting, StreamView's times and chart, and widgets bound
to a channel that are marked stale when the channel has no value for them."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
from kernelkit import Kernel

SETUP = (
    "import ipywidgets as w\n"
    "from jupyter_interop.notebook import flush_writes\n"
    "from jupyter_interop.notebook._stale import STALE_BORDER\n"
    "io = ji.connect()"
)


@pytest.fixture(scope="module", autouse=True)
def _setup(nb_a: Kernel, nb_b: Kernel) -> None:
    nb_a.run(SETUP)
    nb_b.run(SETUP)


def _peer(kernel: Kernel) -> tuple[str, str]:
    return kernel.value("io.instance.application"), kernel.value("io.peer_id")


def test_invoke_with_a_target_nobody_matches_lists_who_offers_it(
    nb_a: Kernel, nb_b: Kernel, unique: Callable[[str], str]
) -> None:
    name = unique("Edge.Quote")
    nb_b.run(f"%%interop method {name}\nsymbol")
    app, peer = _peer(nb_b)
    nb_a.run(f"io.methods.wait_for_method({name!r}, timeout=20)")
    message = nb_a.usage_error(f"%interop invoke {name} symbol=A --target nobody --wait 0")
    assert f"No instance matching the target {{'application': 'nobody'}} offers {name!r}" in (
        message
    )
    assert f"it is offered by: application {app!r} (peer {peer})" in message
    assert "similar methods" not in message


def test_a_missing_argument_names_the_remote_notebook_and_the_accepts(
    nb_a: Kernel, nb_b: Kernel, unique: Callable[[str], str]
) -> None:
    name = unique("Edge.Total")
    nb_b.run(f"%%interop method {name} --accepts 'String symbol, Int qty'\nsymbol * qty")
    app, peer = _peer(nb_b)
    nb_a.run(f"io.methods.wait_for_method({name!r}, timeout=20)")
    message = nb_a.usage_error(f"%interop invoke {name} symbol=AB")
    assert "NameError: name 'qty' is not defined" in message
    assert (
        f"[raised by {name!r} in application {app!r} (peer {peer}), which accepts "
        "'String symbol, Int qty'; sent: symbol]"
    ) in message
    assert nb_a.value(f"io.methods.invoke({name!r}, {{'symbol': 'AB', 'qty': 2}}).returned") == (
        "ABAB"
    )


def _texts(messages: list[dict[str, Any]], msg_id: str, kind: str) -> list[str]:
    return [
        m["content"]["data"].get("text/plain", "")
        for m in messages
        if m["msg_type"] == kind and m["parent_header"].get("msg_id") == msg_id
    ]


def test_a_cell_waiting_for_a_method_shows_how_long_then_clears_it(
    nb_a: Kernel, nb_b: Kernel, unique: Callable[[str], str]
) -> None:
    name = unique("Edge.Late")
    msg_id = nb_a.kc.execute(f"%interop invoke {name} --wait 60 -o late")
    nb_a.wait_iopub(
        lambda msgs: (
            len(_texts(msgs, msg_id, "update_display_data")) >= 2
            and bool(_texts(msgs, msg_id, "display_data"))
        ),
        timeout=30,
    )
    first = _texts(nb_a.iopub, msg_id, "display_data")[0]
    assert re.fullmatch(
        rf"waiting for {re.escape(name)}… \d+\.\d s \(no server offers it yet; waiting up to "
        r"60 s\)",
        first,
    ), first
    nb_b.run(f"%%interop method {name}\n'arrived'")
    nb_a.wait_iopub(
        lambda msgs: any(
            m["msg_type"] == "status"
            and m["content"]["execution_state"] == "idle"
            and m["parent_header"].get("msg_id") == msg_id
            for m in msgs
        ),
        timeout=60,
    )
    updates = _texts(nb_a.iopub, msg_id, "update_display_data")
    assert updates[-1] == ""  # the waiting line is cleared when the call is done
    seconds = [float(re.search(r"(\d+\.\d) s", u).group(1)) for u in updates[:-1]]  # type: ignore[union-attr]
    assert seconds == sorted(seconds)  # it counts up
    assert nb_a.value("late") == "arrived"


def test_a_fast_invoke_shows_no_waiting_line(
    nb_a: Kernel, nb_b: Kernel, unique: Callable[[str], str]
) -> None:
    name = unique("Edge.Fast")
    nb_b.run(f"%%interop method {name}\n1")
    nb_a.run(f"io.methods.wait_for_method({name!r}, timeout=20)")
    ex = nb_a.run(f"%interop invoke {name}")
    assert not any("waiting for" in d.get("text/plain", "") for d in ex.data)


def test_stream_view_shows_local_times_and_charts_a_field(
    nb_a: Kernel, nb_b: Kernel, unique: Callable[[str], str]
) -> None:
    name = unique("Edge.Prices")
    nb_b.run(f"prices = io.streams.create({name!r})")
    nb_a.run(
        f"v = ji.StreamView({name!r}, chart='px', chart_points=5)\n"
        "assert v.ready.wait(20) and v.error is None, v.error"
    )
    nb_b.run(
        "import time as _t\n"
        "for i in range(8):\n"
        "    prices.push({'sym': 'A', 'px': 100 + i, 'ts': 1700000000123 + i})\n"
        "prices.push({'sym': 'A', 'px': 'n/a', 'ts': 1700000000200})"
    )
    nb_a.wait_value("v.count", 9)
    assert nb_a.value("[float(y) for y in v.chart_line.y]") == [103.0, 104.0, 105.0, 106.0, 107.0]
    assert nb_a.value("len(v.chart_line.x)") == 5
    assert nb_a.value("type(v.chart).__module__.split('.')[0]") == "bqplot"
    body = nb_a.value("v.body.value")
    assert re.search(r"<td class=\"ji-received\">\d\d:\d\d:\d\d\.\d{3}</td>", body), body
    expected = nb_a.value(
        "__import__('datetime').datetime.fromtimestamp(1700000000.123)"
        ".strftime('%Y-%m-%d %H:%M:%S.123')"
    )
    assert f"<td>{expected}</td>" in body  # an epoch-ms field shown as a local time
    assert "1700000000123" not in body
    nb_a.run("v.close()")


def test_stream_view_rejects_a_bad_chart_setting(nb_a: Kernel) -> None:
    error = nb_a.fails("ji.StreamView('Edge.Any', chart='px', chart_points=1)")
    assert (
        error["ename"] == "ValueError"
        and "chart_points must be an integer >= 2" in (error["evalue"])
    )


def test_joining_an_empty_channel_marks_bound_widgets_stale(
    nb_a: Kernel, nb_b: Kernel, unique: Callable[[str], str]
) -> None:
    path = unique("edge_symbol")
    nb_a.run(
        f"t = w.Text()\nb = ji.bind(t, 'value', channel=True, path={path!r})\n"
        "io.channels.join('Purple')"
    )
    nb_b.run(f"io.channels.publish({{{path!r}: 'AAPL'}}, name='Purple')")
    nb_a.wait_value("t.value", "AAPL")
    assert nb_a.value("b.stale") is None
    border = nb_a.value("t.layout.border")

    nb_a.run("io.channels.join('Cyan')")  # nothing at the path there
    nb_a.wait_value("b.stale", "no data on Cyan")
    assert nb_a.value("t.value") == "AAPL"  # kept, but marked
    assert nb_a.value("t.layout.border == STALE_BORDER and 'ji-stale' in t._dom_classes")
    assert nb_a.value("t.tooltip") == "stale: no data on Cyan"

    nb_b.run(f"io.channels.publish({{{path!r}: 'MSFT'}}, name='Cyan')")
    nb_a.wait_value("t.value", "MSFT")
    nb_a.wait_value("b.stale", None)
    assert nb_a.value("t.layout.border") == border
    assert nb_a.value("'ji-stale' in t._dom_classes or t.tooltip is not None") is False

    nb_a.run("io.channels.leave()")
    nb_a.wait_value("b.stale", "not on a channel")

    nb_a.run("io.channels.join('Orange')")
    nb_a.wait_value("b.stale", "no data on Orange")
    nb_a.run("t.value = 'NVDA'\nassert flush_writes()")  # the user's value is published
    assert nb_a.value("b.stale") is None
    assert nb_b.value(f"io.channels.get('Orange').data[{path!r}]") == "NVDA"
    nb_a.run("b.unbind()\nio.channels.leave()")


def test_binding_to_an_empty_channel_starts_marked(
    nb_a: Kernel, unique: Callable[[str], str]
) -> None:
    path = unique("edge_fresh")
    nb_a.run(
        "io.channels.join('Lime')\n"
        f"s = w.IntSlider()\nb2 = ji.bind(s, 'value', channel=True, path={path!r})"
    )
    assert nb_a.value("b2.stale") == "no data on Lime"
    nb_a.run("b2.unbind()\nio.channels.leave()")
