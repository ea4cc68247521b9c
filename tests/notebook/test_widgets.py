"""Widgets in real kernels: bind to contexts and channels, the channel selector, the live views
and the Interop Viewer. Frontend actions are sent as JupyterLab sends them (comm messages)."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Callable

import pytest
from kernelkit import Hub, Kernel

SETUP = "import ipywidgets as w, threading\nfrom jupyter_interop.notebook import flush_writes"


@pytest.fixture(scope="module", autouse=True)
def _widgets(nb_a: Kernel, nb_b: Kernel) -> None:
    nb_a.run(SETUP)
    nb_b.run(SETUP)


def hub_version(hub: Hub, context: str) -> int:
    """The version of ``context`` as the hub itself holds it (its REST view): the number of
    writes it accepted, whichever kernel made them."""
    url = hub.url.replace("ws://", "http://", 1).rsplit("/", 1)[0] + "/api/contexts"
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(f"{url}?token={hub.token}", timeout=10) as response:
        views = json.loads(response.read())
    [view] = [v for v in views if v["name"] == context]
    return int(view["version"])


def settled(*kernels: Kernel) -> None:
    """Every write the kernels' bound widgets queued has been accepted by the hub."""
    for kernel in kernels:
        kernel.run("assert flush_writes()")


def test_bind_context_two_way_initial_value_and_frontend_changes(
    nb_a: Kernel, nb_b: Kernel, unique: Callable[[str], str]
) -> None:
    ctx = unique("bind.client")
    nb_b.run(f"%interop context set {ctx} limit=42")
    nb_a.run(f"s = w.IntSlider(max=1000)\nb = ji.bind(s, 'value', context={ctx!r}, path='limit')")
    assert nb_a.value("s.value") == 42  # initial value from the hub, at once
    nb_b.run(f"t = w.IntSlider(max=1000)\nji.bind(t, 'value', context={ctx!r}, path='limit')")
    assert nb_b.value("t.value") == 42

    nb_a.run("s.value = 7")
    nb_b.wait_value("t.value", 7)
    # the user drags the slider in notebook A (a comm update from the frontend)
    nb_a.send_comm_update(nb_a.value("s.model_id"), {"value": 9})
    nb_b.wait_value("t.value", 9)
    assert nb_a.value("s.value") == 9
    settled(nb_a, nb_b)
    assert nb_a.value(f"ji.connect().contexts.get({ctx!r})") == {"limit": 9}


def test_one_frontend_change_is_one_hub_write(
    hub: Hub, nb_a: Kernel, nb_b: Kernel, unique: Callable[[str], str]
) -> None:
    """The kernel that applies a remote value does not write it back (the echo guard).

    The count is taken once both kernels' writes reached the hub: an echo, if there were
    one, is queued when the remote value is applied, so it is in by then."""
    ctx = unique("bind.echo")
    nb_a.run(f"e = w.IntSlider(max=100)\nji.bind(e, 'value', context={ctx!r}, path='v')")
    settled(nb_a)
    nb_b.run(f"f = w.IntSlider(max=100)\nji.bind(f, 'value', context={ctx!r}, path='v')")
    moves = ((nb_a, "e", nb_b, "f"), (nb_b, "f", nb_a, "e"))
    for kernel, widget, other, mirror in moves:
        model = kernel.value(f"{widget}.model_id")
        for value in (10, 20, 30):
            settled(nb_a, nb_b)
            before = hub_version(hub, ctx)
            kernel.send_comm_update(model, {"value": value})
            other.wait_value(f"{mirror}.value", value)
            settled(nb_a, nb_b)
            writes = hub_version(hub, ctx) - before
            assert writes == 1, (
                f"one change of {widget} to {value} made {writes} hub writes (an echo from "
                f"the kernel that applied it?)"
            )


@pytest.mark.parametrize("source", ["context", "named channel", "current channel"])
def test_a_fast_drag_never_moves_the_widget_backwards(
    nb_a: Kernel, nb_b: Kernel, unique: Callable[[str], str], source: str
) -> None:
    """A binding does not apply its own writes when the hub confirms them: each confirmation
    arrives after the widget moved on, and would pull it back to a stale value.

    The drag is a loop in one cell that waits for each write to be accepted: every
    confirmation is then late (the main loop, busy with the cell, applies remote values
    after it). A value another kernel writes afterwards, on the same subscription, is the
    barrier: once it is applied, anything the hub sent before it was applied too."""
    ctx = unique("bind.drag")
    if source == "context":
        target = f"context={ctx!r}"
    elif source == "named channel":
        target = "channel='Orange'"
    else:
        target = "channel=True"
        nb_b.run("%interop channel join Lime")
    drag, mark = unique("drag"), unique("mark")
    try:
        nb_b.run(
            "d = w.IntSlider(max=100)\nmoves = []\n"
            "d.observe(lambda c: moves.append(c['new']), 'value')\n"
            f"db = ji.bind(d, 'value', {target}, path={drag!r})\n"
            f"m = w.IntText()\nmb = ji.bind(m, 'value', {target}, path={mark!r})\n"
            "assert flush_writes()"
        )
        nb_b.run("for i in range(1, 21):\n    d.value = i\n    assert flush_writes()")
        if source == "context":
            nb_a.run(f"ji.connect().contexts.set_path({ctx!r}, {mark!r}, 1)")
        else:
            channel = "Orange" if source == "named channel" else "Lime"
            nb_a.run(f"ji.connect().channels.publish({{{mark!r}: 1}}, name={channel!r})")
        nb_b.wait_value("m.value", 1)
        moves = nb_b.value("moves")
        assert moves == list(range(1, 21)), f"the widget moved back to a stale value: {moves}"
        assert nb_b.value("d.value") == 20
    finally:
        nb_b.run("for b in (globals().get('db'), globals().get('mb')):\n    b and b.unbind()")
        if source == "current channel":
            nb_b.run("%interop channel leave")


def test_bind_seeds_a_missing_path_and_follows_siblings_in_the_same_kernel(
    nb_a: Kernel, nb_b: Kernel, unique: Callable[[str], str]
) -> None:
    ctx = unique("bind.seed")
    nb_a.run(
        f"u = w.IntText(value=5)\nji.bind(u, 'value', context={ctx!r}, path='a.b')\n"
        f"u2 = w.IntText()\nji.bind(u2, 'value', context={ctx!r}, path='a.b')\n"
        "assert flush_writes()"
    )
    assert nb_b.value(f"ji.connect().contexts.get({ctx!r})") == {"a": {"b": 5}}
    assert nb_a.value("u2.value") == 5
    nb_a.run("u.value = 6")
    assert nb_a.value("u2.value") == 6


def test_remote_updates_are_batched_with_hold_sync_on_the_main_thread(
    nb_a: Kernel, nb_b: Kernel, unique: Callable[[str], str]
) -> None:
    ctx = unique("bind.batch")
    nb_a.run(
        "r = w.IntSlider(value=1, max=100)\nthreads = []\n"
        "r.observe(lambda c: threads.append(threading.current_thread().name), 'value')\n"
        f"ji.bind(r, 'value', context={ctx!r}, path='v')\n"
        f"ji.bind(r, 'max', context={ctx!r}, path='m')\nassert flush_writes()"
    )
    model = nb_a.value("r.model_id")
    threads_before = len(nb_a.value("threads"))
    mark = len(nb_a.iopub)
    nb_b.run(f'%interop context update {ctx} {{"v": 150, "m": 200}}')
    nb_a.wait_value("(r.value, r.max)", [150, 200])
    updates = nb_a.comm_updates(model, mark)
    assert len(updates) == 1, updates
    assert updates[0]["value"] == 150 and updates[0]["max"] == 200
    assert set(nb_a.value("threads")[threads_before:]) == {"MainThread"}


def test_transform_and_unbind(nb_a: Kernel, nb_b: Kernel, unique: Callable[[str], str]) -> None:
    ctx = unique("bind.pct")
    nb_a.run(
        "pct = (lambda v: v / 100, lambda r: round(r * 100))\n"
        "p = w.IntSlider(value=25)\n"
        f"pb = ji.bind(p, 'value', context={ctx!r}, path='ratio', transform=pct)\n"
        "assert flush_writes()"
    )
    assert nb_b.value(f"ji.connect().contexts.get({ctx!r})") == {"ratio": 0.25}
    nb_b.run(f"%interop context update {ctx} ratio=0.5")
    nb_a.wait_value("p.value", 50)
    # a second widget on the same path stays bound: it shows when a remote value arrived
    nb_a.run(
        f"q = w.IntSlider()\nji.bind(q, 'value', context={ctx!r}, path='ratio', transform=pct)"
    )
    assert nb_a.value("q.value") == 50
    nb_a.run("pb.unbind()\np.value = 70\nassert flush_writes()")
    assert nb_b.value(f"ji.connect().contexts.get({ctx!r})") == {"ratio": 0.5}
    assert nb_a.value("q.value") == 50  # no longer a sibling either
    nb_b.run(f"%interop context update {ctx} ratio=0.9")
    nb_a.wait_value("q.value", 90)  # applied to the bound widget, in the same update
    assert nb_a.value("p.value") == 70
    assert "unbound" in nb_a.value("repr(pb)")


def test_bind_channel_follows_the_current_channel(nb_a: Kernel, nb_b: Kernel) -> None:
    nb_b.run("%interop publish --channel Green symbol=MSFT")
    nb_a.run("%interop channel join Red")
    nb_b.run("%interop channel join Red\n%interop publish symbol=AAPL")
    nb_a.run("sym = w.Text()\nji.bind(sym, 'value', channel=True, path='symbol')")
    assert nb_a.value("sym.value") == "AAPL"
    nb_b.run("%interop publish symbol=NVDA")
    nb_a.wait_value("sym.value", "NVDA")
    nb_a.run("%interop channel join Green")
    nb_a.wait_value("sym.value", "MSFT")  # the new channel's data, applied on join
    nb_a.run("sym.value = 'IBM'\nassert flush_writes()")
    assert nb_b.value("ji.connect().channels.get('Green').data['symbol']") == "IBM"
    assert nb_b.value("ji.connect().channels.get('Red').data['symbol']") == "NVDA"
    # a binding to one named channel, whatever the current one
    nb_a.run("qty = w.IntText()\nji.bind(qty, 'value', channel='Blue', path='order.qty')")
    nb_b.run("%interop publish --channel Blue order.qty=12")
    nb_a.wait_value("qty.value", 12)
    nb_a.run("%interop channel leave")
    nb_b.run("%interop channel leave")


def test_bind_current_channel_in_multi_channel_mode(nb_a: Kernel, nb_b: Kernel) -> None:
    """In multi-channel mode ``channel=True`` names no one channel: refused, the error naming
    ``channel='Red'``; a binding made before the switch follows the last channel joined."""
    nb_a.run("io = ji.connect()\n%interop channel join Red")
    nb_a.run("cur = w.Text()\nji.bind(cur, 'value', channel=True, path='symbol')")
    nb_a.run("seen = []\ncur.observe(lambda change: seen.append(change['new']), 'value')")
    nb_a.run("io.channels.mode = 'multi'\nio.channels.join('Blue')")
    error = nb_a.fails("ji.bind(w.Text(), 'value', channel=True, path='symbol')")
    assert error["ename"] == "ValueError"
    assert "multi-channel mode (on Red, Blue)" in error["evalue"]
    assert "channel='Red'" in error["evalue"]
    nb_b.run("%interop publish --channel Red symbol=OLD")
    nb_b.run("%interop publish --channel Blue symbol=NEW")
    nb_a.wait_value("cur.value", "NEW")
    assert "OLD" not in nb_a.value("seen")  # Red is not the last channel joined
    nb_a.run("io.channels.leave()\nio.channels.mode = 'single'")


@pytest.mark.parametrize(
    ("call", "message"),
    [
        ("ji.bind(w.IntSlider(), 'value', path='x')", "exactly one of"),
        ("ji.bind(w.IntSlider(), 'value', context='c', channel=True, path='x')", "exactly one of"),
        ("ji.bind(w.IntSlider(), 'value', context='', path='x')", "non-empty name"),
        ("ji.bind(w.IntSlider(), 'value', context='c', path='a..b')", "dot-path"),
        ("ji.bind(w.IntSlider(), 'nope', context='c', path='x')", "has no trait 'nope'"),
        ("ji.bind(w.IntSlider(), 'value', context='c', path='x', transform=(1,))", "pair"),
    ],
)
def test_bind_argument_errors(nb_a: Kernel, call: str, message: str) -> None:
    error = nb_a.fails(call)
    assert error["ename"] == "ValueError" and message in error["evalue"]


def test_channel_selector_joins_on_click_and_follows_changes_made_elsewhere(
    nb_a: Kernel, nb_b: Kernel
) -> None:
    nb_a.run(
        "sel = ji.ChannelSelector()\nbuttons = {b.description: b for b in sel.children[1].children}"
    )
    assert nb_a.value("sorted(buttons)")[:3] == ["Blue", "Cyan", "DarkYellow"]
    assert nb_a.value("buttons['Red'].style.button_color") == "red"
    nb_a.click(nb_a.value("buttons['Red'].model_id"))
    nb_a.wait_value("(sel.value, ji.connect().channels.current)", ["Red", "Red"])
    assert nb_a.value("buttons['Red'].icon") == "check"
    assert "Red" in nb_a.value("sel.label.value")
    # the hub knows: notebook B sees A on Red
    peer_a = nb_a.value("ji.connect().peer_id")
    nb_b.wait_value(f"{peer_a!r} in ji.connect().channels.members().get('Red', [])", True)
    # a change made elsewhere: a magic in the same notebook, then another peer moving A
    nb_a.run("%interop channel join Blue")
    nb_a.wait_value("sel.value", "Blue")
    nb_b.run(f"ji.connect().channels.move({peer_a!r}, 'Green')")
    nb_a.wait_value(
        "(sel.value, buttons['Green'].icon, buttons['Blue'].icon)", ["Green", "check", ""]
    )
    nb_a.click(nb_a.value("sel.leave_button.model_id"))
    nb_a.wait_value("(sel.value, ji.connect().channels.current)", [None, None])
    nb_a.run("sel.close()")


def test_channel_selector_in_multi_channel_mode(nb_a: Kernel) -> None:
    nb_a.run(
        "io = ji.connect()\nio.channels.mode = 'multi'\nsel = ji.ChannelSelector()\n"
        "buttons = {b.description: b for b in sel.children[1].children}"
    )
    nb_a.click(nb_a.value("buttons['Red'].model_id"))
    nb_a.wait_value("sel.channels", ["Red"])
    nb_a.click(nb_a.value("buttons['Lime'].model_id"))
    nb_a.wait_value(
        "(sel.channels, sel.value, io.channels.my_channels())",
        [["Red", "Lime"], "Lime", ["Red", "Lime"]],
    )
    assert nb_a.value("[buttons[n].icon for n in ('Red', 'Lime', 'Blue')]") == [
        "check",
        "check",
        "",
    ]
    label = nb_a.value("sel.label.value")
    assert "Channels:" in label and "<b>Red</b>" in label and "<b>Lime</b>" in label
    nb_a.click(nb_a.value("buttons['Red'].model_id"))  # a joined channel: leaves it
    nb_a.wait_value("(sel.channels, io.channels.my_channels())", [["Lime"], ["Lime"]])
    nb_a.run("io.channels.join('Cyan')")  # a change made elsewhere shows too
    nb_a.wait_value("sel.channels", ["Lime", "Cyan"])
    nb_a.click(nb_a.value("sel.leave_button.model_id"))
    nb_a.wait_value("(sel.channels, sel.value, io.channels.my_channels())", [[], None, []])
    nb_a.run("sel.close()\nio.channels.mode = 'single'")


def test_context_view_and_stream_view_are_live(
    nb_a: Kernel, nb_b: Kernel, unique: Callable[[str], str]
) -> None:
    ctx = unique("view.ctx")
    nb_a.run(f"cv = ji.ContextView({ctx!r})")
    nb_b.run(f"%interop context set {ctx} price=101.5 symbol=AAPL")
    nb_a.wait_value("cv.data", {"price": 101.5, "symbol": "AAPL"})
    app_b = nb_b.value("ji.connect().instance.application")
    header = nb_a.value("cv.header.value")
    assert "version" in header and app_b in header
    assert "101.5" in nb_a.value("cv.body.value")
    nb_a.run("cv.close()")

    stream = unique("view.ticks")
    nb_a.run(f"vs = ji.connect().streams.create({stream!r})")
    nb_b.run(f"sv = ji.StreamView({stream!r}, max_items=2)\nassert sv.ready.wait(10)")
    assert nb_b.value("sv.error") is None
    nb_a.wait_value("len(vs.subscriptions())", 1)
    nb_a.run("for i in range(3): vs.push({'seq': i})")
    nb_b.wait_value("(sv.count, sv.items)", [3, [{"seq": 1}, {"seq": 2}]])
    assert "3 item(s)" in nb_b.value("sv.body.value")
    nb_b.run("sv.close()")
    nb_a.wait_value("len(vs.subscriptions())", 0)
    nb_a.run("vs.close()")
    nb_b.run("bad = ji.StreamView('No.Such.Stream.View')\nassert bad.ready.wait(30)")
    assert "No.Such.Stream.View" in nb_b.value("str(bad.error)")


def test_interop_viewer_lists_invokes_and_previews(
    nb_a: Kernel, nb_b: Kernel, unique: Callable[[str], str]
) -> None:
    method = unique("Viewer.Double")
    stream = unique("Viewer.Ticks")
    nb_b.run("v = ji.InteropViewer()")
    nb_a.run(f"%%interop method {method}\nx * 2")
    nb_a.run(f"vt = ji.connect().streams.create({stream!r})")
    nb_b.wait_value(f"{method!r} in v.method_list.options", True)
    nb_b.wait_value(f"{stream!r} in v.stream_list.options", True)
    assert nb_a.value("ji.connect().peer_id") in nb_b.value("v.peers.value")
    nb_b.run(f"v.method_list.value = {method!r}\nv.arguments.value = '{{\"x\": 21}}'")
    assert method in nb_b.value("v.method_info.value")
    nb_b.click(nb_b.value("v.invoke_button.model_id"))
    nb_b.wait_value("'42' in v.result.value", True)
    nb_b.run("v.arguments.value = 'not json'")
    nb_b.click(nb_b.value("v.invoke_button.model_id"))
    nb_b.wait_value("'arguments:' in v.result.value", True)

    nb_b.run(f"v.stream_list.value = {stream!r}")
    nb_b.click(nb_b.value("v.subscribe_button.model_id"))
    nb_b.wait_value("len(v.preview_box.children)", 1)
    nb_b.run("assert v.preview_box.children[0].ready.wait(10)")
    nb_a.wait_value("len(vt.subscriptions())", 1)
    nb_a.run("vt.push({'tick': 1})")
    nb_b.wait_value("v.preview_box.children[0].items", [{"tick": 1}])
    nb_b.click(nb_b.value("v.subscribe_button.model_id"))
    nb_b.wait_value("len(v.preview_box.children)", 0)
    nb_a.run(f"%interop unregister {method}")
    nb_b.wait_value(f"{method!r} in v.method_list.options", False)
    nb_b.run("v.close()")
    nb_a.run("vt.close()")


def test_output_routing_is_feature_detected(nb_a: Kernel) -> None:
    assert nb_a.value("ji.notebook.routes_output()") is True
