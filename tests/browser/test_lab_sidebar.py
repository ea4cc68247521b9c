"""The Interop sidebar of the lab extension, driven in JupyterLab in headless Chromium.

Peers on the other side are real: Python clients connected from this test process to the
session's JupyterLab hub, and a notebook kernel. Every check waits on a real condition in the
page or on the hub's REST views (docs/LAB.md, "The Interop sidebar").
"""

from __future__ import annotations

import json
import os
import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from labkit import LabPage, LabServer, wait_until, write_notebook

import jupyter_interop as ji

SIDEBAR = "#jp-interop-sidebar"
README_IMAGE = Path(__file__).resolve().parents[2] / "notebooks" / "images" / "lab-sidebar.png"
WAIT_MS = 30_000


@pytest.fixture(scope="module")
def peer(lab_server: LabServer) -> Iterator[ji.Interop]:
    """One Python peer that offers what the sidebar works with."""
    client = lab_server.client("SidebarTestPeer")
    try:
        yield client
    finally:
        client.close()


def open_sidebar(lab: LabPage) -> Any:
    """Show the sidebar and wait until it is connected and has read the hub once."""
    lab.page.evaluate("(id) => window.jupyterapp.shell.activateById(id)", SIDEBAR[1:])
    root = lab.page.locator(SIDEBAR)
    root.wait_for(state="visible", timeout=WAIT_MS)
    lab.page.wait_for_function(
        "(sel) => { const n = document.querySelector(sel);"
        " return n && n.dataset.hubState === 'connected' && Number(n.dataset.refreshed) > 0; }",
        arg=SIDEBAR,
        timeout=WAIT_MS,
    )
    return root


def section(lab: LabPage, name: str) -> Any:
    """The section ``name``, expanded."""
    node = lab.page.locator(f"{SIDEBAR} [data-section={name}]")
    node.wait_for(timeout=WAIT_MS)
    if "jp-mod-collapsed" in (node.get_attribute("class") or ""):
        node.locator("[data-action=toggle-section]").click()
    return node


def stream_subscribers(server: LabServer, name: str) -> int | None:
    for stream in server.api("interop/api/streams"):
        if stream["name"] == name:
            return int(stream["subscribers"])
    return None


# ------------------------------------------------------------------------------ peers


def test_a_peer_on_several_channels_shows_a_tag_for_each(
    lab: LabPage, lab_server: LabServer
) -> None:
    client = lab_server.client("MultiChannelPeer")
    try:
        client.channels.mode = "multi"
        client.channels.join("Purple")
        client.channels.join("Yellow")
        open_sidebar(lab)
        row = section(lab, "peers").locator(f"[data-peer='{client.peer_id}']")
        tags = row.locator(".jp-InteropSidebar-channelTag")
        lab.page.wait_for_function(
            """(id) => Array.from(document.querySelectorAll(
                 `[data-peer='${id}'] .jp-InteropSidebar-channelTag`)).map(t => t.dataset.channel)
                 .join() === 'Purple,Yellow'""",
            arg=client.peer_id,
            timeout=WAIT_MS,
        )
        assert tags.all_inner_texts() == ["Purple", "Yellow"]
        client.channels.leave("Purple")
        lab.page.wait_for_function(
            """(id) => Array.from(document.querySelectorAll(
                 `[data-peer='${id}'] .jp-InteropSidebar-channelTag`)).map(t => t.dataset.channel)
                 .join() === 'Yellow'""",
            arg=client.peer_id,
            timeout=WAIT_MS,
        )
    finally:
        client.close()


# ------------------------------------------------------------------------------ methods


def test_invoke_a_python_method_shows_result_and_time(
    lab: LabPage, lab_server: LabServer, peer: ji.Interop
) -> None:
    calls: list[dict[str, Any]] = []
    lock = threading.Lock()

    def quote(symbol: str, qty: int = 1) -> dict[str, Any]:
        with lock:
            calls.append({"symbol": symbol, "qty": qty})
        return {"symbol": symbol, "px": 101.5 * qty}

    peer.methods.register("Sidebar.Quote", quote, description="a price for a symbol")
    open_sidebar(lab)
    methods = section(lab, "methods")
    methods.locator('[data-name="Sidebar.Quote"]').click()
    args = methods.locator("[data-role=invoke-args]")
    error = methods.locator("[data-role=invoke-error]")

    # invalid input is refused in the form, before anything is sent
    args.fill('{"symbol": ')
    methods.locator("[data-action=invoke]").click()
    error.wait_for(state="visible", timeout=WAIT_MS)
    assert "not valid JSON" in error.inner_text()
    args.fill("[1, 2]")
    methods.locator("[data-action=invoke]").click()
    lab.page.wait_for_function(
        "(el) => el.textContent.includes('must be a JSON object')",
        arg=error.element_handle(),
        timeout=WAIT_MS,
    )
    assert args.get_attribute("aria-invalid") == "true"

    args.fill('{"symbol": "AAPL", "qty": 2}')
    methods.locator("[data-action=invoke]").click()
    result = methods.locator(".jp-InteropSidebar-result[data-status=ok]")
    result.wait_for(timeout=WAIT_MS)
    returned = json.loads(result.locator("[data-role=returned]").inner_text())
    assert returned == {"symbol": "AAPL", "px": 203.0}
    summary = result.locator("[data-role=summary]").inner_text()
    elapsed = float(result.get_attribute("data-elapsed-ms") or "nan")
    assert summary.startswith("returned in ") and summary.endswith(" ms"), summary
    assert elapsed >= 0, elapsed
    print(f"sidebar invoke of Sidebar.Quote: {summary}")
    # the two refused forms sent nothing: the handler saw exactly the one valid call
    assert calls == [{"symbol": "AAPL", "qty": 2}]

    # a handler error comes back as the error, with its reason
    def failing() -> None:
        raise ValueError("no price today")

    peer.methods.register("Sidebar.Fails", failing)
    methods.locator('[data-name="Sidebar.Fails"]').click()
    methods.locator("[data-action=invoke]").click()
    failed = methods.locator(".jp-InteropSidebar-result[data-status=error]")
    failed.wait_for(timeout=WAIT_MS)
    assert "no price today" in failed.locator("[data-role=reason]").inner_text()


# ------------------------------------------------------------------------------ contexts

BOUND_NOTEBOOK = "sidebar-bound.ipynb"


def test_context_edited_in_the_sidebar_reaches_a_bound_widget(
    lab: LabPage, lab_server: LabServer
) -> None:
    write_notebook(
        lab_server.root_dir / BOUND_NOTEBOOK,
        [
            ("markdown", "## A number box bound to the shared context `shared`"),
            "import ipywidgets as w\nimport jupyter_interop as ji",
            'box = w.IntText(description="n")\n'
            'ji.bind(box, "value", context="shared", path="n")\nbox',
        ],
    )
    lab.open_notebook(BOUND_NOTEBOOK)
    lab.run_all(BOUND_NOTEBOOK)
    box = lab.panel_locator(BOUND_NOTEBOOK).locator(".widget-text input[type=number]").first
    box.wait_for(state="visible", timeout=WAIT_MS)

    open_sidebar(lab)
    contexts = section(lab, "contexts")
    row = contexts.locator('[data-name="shared"]')
    row.wait_for(timeout=WAIT_MS)
    row.click()
    contexts.locator("[data-role=context-tree]").wait_for(timeout=WAIT_MS)
    contexts.locator("[data-action=edit-context]").click()
    editor = contexts.locator("[data-role=context-editor]")
    editor.wait_for(timeout=WAIT_MS)

    # not an object: refused in place
    editor.fill('"n": 42')
    contexts.locator("[data-action=save-context]").click()
    error = contexts.locator("[data-role=context-error]")
    error.wait_for(state="visible", timeout=WAIT_MS)
    assert "JSON" in error.inner_text()

    editor.fill('{"n": 42}')
    contexts.locator("[data-role=update-mode]").select_option("replace")
    contexts.locator("[data-action=save-context]").click()
    wait_until(lambda: box.input_value() == "42", "the notebook's IntText to show 42")

    # the followed context shows the new value and who wrote it
    tree = contexts.locator("[data-role=context-tree]")
    lab.page.wait_for_function(
        "(el) => el.textContent.includes('n: 42')", arg=tree.element_handle(), timeout=WAIT_MS
    )
    meta = contexts.locator("[data-role=context-meta]").inner_text()
    assert "JupyterLab" in meta, meta

    # and a change made in the notebook comes back to the sidebar live
    lab.kernel_execute(BOUND_NOTEBOOK, "box.value = 7")
    lab.page.wait_for_function(
        "(el) => el.textContent.includes('n: 7')",
        arg=tree.element_handle(),
        timeout=WAIT_MS,
    )


# ------------------------------------------------------------------------------- streams


def test_stream_preview_shows_events_and_unsubscribes_on_close(
    lab: LabPage, lab_server: LabServer, peer: ji.Interop
) -> None:
    stream = peer.streams.create("Sidebar.Ticks", description="ticks for the preview")
    open_sidebar(lab)
    streams = section(lab, "streams")
    streams.locator('[data-name="Sidebar.Ticks"]').click()
    streams.locator("[data-action=preview]").click()
    status = streams.locator("[data-role=preview-status][data-state=live]")
    status.wait_for(timeout=WAIT_MS)
    wait_until(lambda: stream_subscribers(lab_server, "Sidebar.Ticks") == 1, "one subscriber")

    events = streams.locator("[data-role=events] li")
    for tick in range(3):
        stream.push({"tick": tick, "px": 100 + tick})
        wait_until(lambda n=tick: events.count() >= n + 1, f"event {tick} in the preview")
    texts = events.all_inner_texts()
    assert '{"tick":2,"px":102}' in texts[-1], texts
    # each line starts with its arrival time, hh:mm:ss.mmm
    assert texts[0][:2].isdigit() and texts[0][2] == ":" and texts[0][8] == ".", texts[0]

    streams.locator("[data-action=close-preview]").click()
    wait_until(lambda: stream_subscribers(lab_server, "Sidebar.Ticks") == 0, "no subscriber left")
    streams.locator("[data-role=preview-status][data-state=closed]").wait_for(timeout=WAIT_MS)
    # the list's count follows (it is read again after the preview closed)
    streams.locator('[data-name="Sidebar.Ticks"][data-subscribers="0"]').wait_for(timeout=WAIT_MS)

    # hiding the sidebar ends a running preview too
    streams.locator("[data-action=preview]").click()
    status.wait_for(timeout=WAIT_MS)
    wait_until(lambda: stream_subscribers(lab_server, "Sidebar.Ticks") == 1, "a new subscriber")
    lab.command("application:toggle-left-area")
    wait_until(lambda: stream_subscribers(lab_server, "Sidebar.Ticks") == 0, "unsubscribed on hide")


# --------------------------------------------------------------------------- screenshots

SCREENSHOT_NOTEBOOK = "sidebar-tour.ipynb"


def test_screenshots_light_and_dark(lab: LabPage, lab_server: LabServer, peer: ji.Interop) -> None:
    peer.methods.register(
        "Pricing.Quote",
        lambda symbol, qty=1: {"symbol": symbol, "px": 101.5 * qty},
        description="price a quantity of a symbol",
        accepts="string symbol, int? qty",
    )
    peer.streams.create("Prices", description="live prices")
    peer.contexts.set("client", {"name": "Acme", "tier": "gold", "address": {"city": "Paris"}})
    peer.channels.join("Blue")
    peer.channels.publish({"symbol": "AAPL"})
    write_notebook(
        lab_server.root_dir / SCREENSHOT_NOTEBOOK,
        [
            ("markdown", "## The Interop sidebar next to a notebook"),
            "import jupyter_interop as ji\nio = ji.connect()\nio.channels.join('Red')",
        ],
    )
    lab.open_notebook(SCREENSHOT_NOTEBOOK)
    lab.run_all(SCREENSHOT_NOTEBOOK)

    open_sidebar(lab)
    section(lab, "peers").locator('[data-name="sidebar-tour"]').wait_for(timeout=WAIT_MS)
    methods = section(lab, "methods")
    methods.locator('[data-name="Pricing.Quote"]').click()
    methods.locator("[data-role=invoke-args]").fill('{"symbol": "AAPL", "qty": 10}')
    methods.locator("[data-action=invoke]").click()
    methods.locator(".jp-InteropSidebar-result[data-status=ok]").wait_for(timeout=WAIT_MS)
    contexts = section(lab, "contexts")
    contexts.locator('[data-name="client"]').click()
    contexts.locator("[data-role=context-tree]").wait_for(timeout=WAIT_MS)
    section(lab, "channels").locator('[data-name="Blue"] [data-role=data]').wait_for(
        timeout=WAIT_MS
    )
    # room for the picture: the streams section folded, the left area dragged wider
    section(lab, "streams").locator("[data-action=toggle-section]").click()
    handle = lab.page.locator("#jp-main-split-panel > .lm-SplitPanel-handle").first
    box = handle.bounding_box()
    assert box is not None
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    lab.page.mouse.move(x, y)
    lab.page.mouse.down()
    lab.page.mouse.move(x + 180, y, steps=5)
    lab.page.mouse.up()
    lab.page.wait_for_function(
        "(sel) => document.querySelector(sel).getBoundingClientRect().width > 380",
        arg=SIDEBAR,
        timeout=WAIT_MS,
    )
    light = lab.screenshot("lab-sidebar-light.png")

    lab.command("apputils:change-theme", {"theme": "JupyterLab Dark"})
    lab.page.wait_for_function(
        "() => document.body.dataset.jpThemeLight === 'false'", timeout=WAIT_MS
    )
    # the sidebar's background is the theme's layout colour, now dark
    lab.page.wait_for_function(
        """(sel) => {
          const c = getComputedStyle(document.querySelector(sel)).backgroundColor;
          const m = c.match(/\\d+/g);
          return m && Number(m[0]) + Number(m[1]) + Number(m[2]) < 200;
        }""",
        arg=SIDEBAR,
        timeout=WAIT_MS,
    )
    lab.screenshot("lab-sidebar-dark.png")
    lab.command("apputils:change-theme", {"theme": "JupyterLab Light"})
    lab.page.wait_for_function(
        "() => document.body.dataset.jpThemeLight === 'true'", timeout=WAIT_MS
    )
    if os.environ.get("JUPYTER_INTEROP_README_IMAGES"):  # a tracked file: only when asked
        shutil.copy(light, README_IMAGE)
    peer.channels.leave()


# -------------------------------------------------------------------------------- scale

LOAD_PEERS = 50
CONTEXTS_PER_PEER = 4
HOSTILE = '<img src=x onerror="window.__sidebarPwned=1">'


def test_two_hundred_contexts_and_fifty_peers(lab: LabPage, lab_server: LabServer) -> None:
    clients = [lab_server.client(f"load-peer-{i:02d}") for i in range(LOAD_PEERS)]
    names = [f"load-{i:02d}-{j}" for i in range(LOAD_PEERS) for j in range(CONTEXTS_PER_PEER)]
    try:
        for i, client in enumerate(clients):
            for j in range(CONTEXTS_PER_PEER):
                client.contexts.set(f"load-{i:02d}-{j}", {"i": i, "j": j})
        # a hostile name and value must show as text, never as markup
        clients[0].contexts.set(HOSTILE, {"html": HOSTILE})

        started = time.monotonic()
        open_sidebar(lab)
        contexts = section(lab, "contexts")
        rows = contexts.locator('[data-role=context-list] [data-name^="load-"]')
        lab.page.wait_for_function(
            "([sel, n]) => document.querySelectorAll(sel).length >= n",
            arg=[f'{SIDEBAR} [data-section=contexts] [data-name^="load-"]', len(names)],
            timeout=WAIT_MS,
        )
        seen = time.monotonic() - started
        listed = set(rows.evaluate_all("(rows) => rows.map(r => r.dataset.name)"))
        assert set(names) <= listed
        render_ms = contexts.locator("[data-role=context-list]").get_attribute("data-render-ms")
        print(
            f"sidebar: {len(names)} contexts and {LOAD_PEERS} peers listed {seen:.2f} s after "
            f"opening; one list pass took {render_ms} ms"
        )
        peers = section(lab, "peers")
        lab.page.wait_for_function(
            "(sel) => document.querySelectorAll(sel).length >= 50",
            arg=f'{SIDEBAR} [data-section=peers] [data-name^="load-peer-"]',
            timeout=WAIT_MS,
        )
        assert peers.locator('[data-name^="load-peer-"]').count() == LOAD_PEERS

        contexts.locator("[data-role=filter]").fill("load-07")
        lab.page.wait_for_function(
            "(sel) => document.querySelector(sel).dataset.shown === '4'",
            arg=f"{SIDEBAR} [data-section=contexts] [data-role=context-list]",
            timeout=WAIT_MS,
        )
        visible = contexts.locator("[data-role=context-list] [data-name]:not([hidden])")
        assert sorted(visible.evaluate_all("(rows) => rows.map(r => r.dataset.name)")) == [
            f"load-07-{j}" for j in range(CONTEXTS_PER_PEER)
        ]

        contexts.locator("[data-role=filter]").fill("onerror")
        hostile = contexts.locator("[data-role=context-list] [data-name]:not([hidden])")
        wait_until(lambda: hostile.count() == 1, "only the hostile context to be shown")
        assert hostile.first.get_attribute("data-name") == HOSTILE
        hostile.first.click()
        contexts.locator("[data-role=context-tree]").wait_for(timeout=WAIT_MS)
        # shown as a JSON string (quoted and escaped), as text
        assert json.dumps(HOSTILE) in contexts.locator("[data-role=context-tree]").inner_text()
        assert lab.page.locator(f"{SIDEBAR} img").count() == 0
        assert lab.page.evaluate("() => window.__sidebarPwned === undefined")
    finally:
        for name in [*names, HOSTILE]:
            try:
                clients[0].contexts.destroy(name)
            except ji.InteropError as error:
                print(f"could not destroy {name!r}: {error}")
        for client in clients:
            client.close()
