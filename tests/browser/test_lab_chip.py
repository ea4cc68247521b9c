"""The channel chip of the lab extension, driven in JupyterLab in headless Chromium.

Every notebook gets a real kernel; other peers are Python clients connected from this test
process to the session's JupyterLab hub. Checks wait on real conditions: the chip's data
attributes in the page, and the hub's REST views (docs/LAB.md, "The channel chip").
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from typing import Any

import pytest
from labkit import LabError, LabPage, LabServer, wait_until, write_notebook

from jupyter_interop.client.errors import ArgumentError

CHIP = ".jp-InteropChannelChip"
MENU = ".jp-InteropChannelMenu"
WAIT_S = 60.0
WAIT_MS = int(WAIT_S * 1000)


def open_with_chip(lab: LabPage, server: LabServer, name: str, cells: list[str]) -> str:
    """Write and open notebook ``name`` and wait for its chip; returns the panel id."""
    write_notebook(server.root_dir / f"{name}.ipynb", cells)
    panel_id = lab.open_notebook(f"{name}.ipynb")
    try:
        lab.page.locator(f"[id='{panel_id}'] {CHIP}").wait_for(timeout=WAIT_MS)
    except Exception as exc:
        raise LabError(f"no channel chip on {name}; console: {lab.console[-10:]}") from exc
    return panel_id


def chip(lab: LabPage, panel_id: str) -> Any:
    return lab.page.locator(f"[id='{panel_id}'] {CHIP}")


def chip_attrs(lab: LabPage, panel_id: str) -> dict[str, Any]:
    return dict(
        lab.page.evaluate(
            """([id, sel]) => { const c = document.getElementById(id).querySelector(sel);
                 return {channel: c.dataset.channel, state: c.dataset.state,
                         label: c.textContent, title: c.title}; }""",
            [panel_id, CHIP],
        )
    )


def wait_chip(lab: LabPage, panel_id: str, channel: str, state: str = "ok") -> dict[str, Any]:
    """Wait until the chip shows ``channel`` ('' : none) in ``state``; fail with what it shows."""
    try:
        lab.page.wait_for_function(
            """([id, sel, channel, state]) => {
                 const c = document.getElementById(id)?.querySelector(sel);
                 return !!c && c.dataset.channel === channel && c.dataset.state === state; }""",
            arg=[panel_id, CHIP, channel, state],
            timeout=WAIT_MS,
            polling=50,
        )
    except Exception as exc:
        raise LabError(
            f"chip never showed {channel!r} ({state}); it shows {chip_attrs(lab, panel_id)}\n"
            f"console: {lab.console[-10:]}"
        ) from exc
    return chip_attrs(lab, panel_id)


def kernel_id(lab: LabPage, panel_id: str) -> str:
    return str(
        lab.page.evaluate(
            "(id) => Array.from(window.jupyterapp.shell.widgets('main'))"
            ".find(w => w.id === id).sessionContext.session.kernel.id",
            panel_id,
        )
    )


def kernel_peers(server: LabServer, kernel: str) -> list[dict[str, Any]]:
    return [p for p in server.api("interop/api/peers") if p["identity"].get("kernelId") == kernel]


def open_menu(lab: LabPage, panel_id: str) -> Any:
    chip(lab, panel_id).click()
    menu = lab.page.locator(MENU)
    menu.wait_for(state="visible", timeout=WAIT_MS)
    return menu


def pick(lab: LabPage, panel_id: str, channel: str) -> None:
    menu = open_menu(lab, panel_id)
    menu.locator(f".jp-InteropChannelMenu-item[data-channel={json.dumps(channel)}]").click()


# ------------------------------------------------------------------------------- tests


def test_labextension_list_shows_it_enabled(lab_server: LabServer) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "jupyterlab.labextensions", "list"],
        env={**lab_server.env, "PATH": os.environ.get("PATH", "")},
        capture_output=True,
        text=True,
        timeout=120,
    )
    listing = result.stdout + result.stderr
    print(listing)
    assert result.returncode == 0, listing
    line = next((ln for ln in listing.splitlines() if "jupyter_interop" in ln), None)
    assert line is not None, listing
    assert "enabled" in line and "OK" in line, line


def test_joining_from_the_chip_moves_a_fresh_kernel(lab: LabPage, lab_server: LabServer) -> None:
    panel_id = open_with_chip(lab, lab_server, "chip-join", ["x = 1"])
    kernel = kernel_id(lab, panel_id)
    assert wait_chip(lab, panel_id, "")["label"] == "no channel"
    assert kernel_peers(lab_server, kernel) == []  # the kernel never used interop

    menu = open_menu(lab, panel_id)
    names = menu.locator(".jp-InteropChannelMenu-item[data-channel]")
    assert names.count() >= 10  # io.Connect's ten colours
    assert menu.locator("[data-action=leave]").is_disabled()
    lab.screenshot("lab-chip-menu-light.png")
    menu.locator(".jp-InteropChannelMenu-item[data-channel=Red]").click()

    shown = wait_chip(lab, panel_id, "Red")
    assert shown["label"] == "Red"
    peers = wait_until(
        lambda: [p for p in kernel_peers(lab_server, kernel) if p["channel"] == "Red"],
        "the kernel's peer on Red",
    )
    assert peers[0]["identity"]["application"] == "chip-join"
    assert peers[0]["identity"]["notebookPath"].endswith("chip-join.ipynb")
    # the notebook's tab carries the channel
    tab = lab.page.locator(".lm-TabBar-tab[data-interop-channel=Red]")
    tab.wait_for(timeout=WAIT_MS)
    assert "chip-join" in tab.inner_text()
    lab.screenshot("lab-chip-light.png")


def test_the_kernel_joining_blue_changes_the_chip(lab: LabPage, lab_server: LabServer) -> None:
    panel_id = open_with_chip(
        lab,
        lab_server,
        "chip-kernel",
        ['import jupyter_interop as ji\nji.connect().channels.join("Blue")'],
    )
    wait_chip(lab, panel_id, "")
    lab.run_all("chip-kernel.ipynb")
    assert wait_chip(lab, panel_id, "Blue")["label"] == "Blue"


def test_another_peer_moving_the_notebook_changes_the_chip(
    lab: LabPage, lab_server: LabServer
) -> None:
    panel_id = open_with_chip(
        lab,
        lab_server,
        "chip-moved",
        ['import jupyter_interop as ji\nio = ji.connect()\nio.channels.join("Red")'],
    )
    lab.run_all("chip-moved.ipynb")
    wait_chip(lab, panel_id, "Red")
    kernel = kernel_id(lab, panel_id)
    target = wait_until(
        lambda: [p for p in kernel_peers(lab_server, kernel) if p["channel"] == "Red"],
        "the kernel's peer on Red",
    )[0]
    mover = lab_server.client("ChipMover")
    try:
        started = time.monotonic()
        mover.channels.move(target["peer_id"], "Green")
        wait_chip(lab, panel_id, "Green")
        print(f"chip showed Green {time.monotonic() - started:.3f} s after move()")
    finally:
        mover.close()


def test_kernel_restart_keeps_the_channel(lab: LabPage, lab_server: LabServer) -> None:
    panel_id = open_with_chip(lab, lab_server, "chip-restart", ["y = 2"])
    wait_chip(lab, panel_id, "")
    pick(lab, panel_id, "Purple")
    wait_chip(lab, panel_id, "Purple")
    kernel = kernel_id(lab, panel_id)
    before = {p["peer_id"] for p in kernel_peers(lab_server, kernel)}

    lab.page.evaluate(
        "(id) => { Array.from(window.jupyterapp.shell.widgets('main'))"
        ".find(w => w.id === id).sessionContext.session.kernel.restart(); }",
        panel_id,
    )
    # the chip shows the restore under way, then the channel again
    lab.page.wait_for_function(
        """([id, sel]) => { const c = document.getElementById(id).querySelector(sel);
             return c.dataset.state === 'pending' || c.dataset.state === 'error'; }""",
        arg=[panel_id, CHIP],
        timeout=WAIT_MS,
        polling=20,
    )
    shown = wait_chip(lab, panel_id, "Purple")
    assert shown["label"] == "Purple"
    after = wait_until(
        lambda: [
            p
            for p in kernel_peers(lab_server, kernel_id(lab, panel_id))
            if p["channel"] == "Purple" and p["peer_id"] not in before
        ],
        "the restarted kernel's new peer on Purple",
    )
    assert after[0]["identity"]["application"] == "chip-restart"


def test_a_notebook_on_several_channels_shows_all_of_them(
    lab: LabPage, lab_server: LabServer
) -> None:
    """Multi-channel mode: the chip names every channel the notebook is on, with a swatch for
    each; the menu checks each of them; picking one more adds it; leaving leaves them all."""
    panel_id = open_with_chip(
        lab,
        lab_server,
        "chip-multi",
        [
            "import jupyter_interop as ji\nio = ji.connect()\nio.channels.mode = 'multi'\n"
            "io.channels.join('Red')\nio.channels.join('Blue')"
        ],
    )
    wait_chip(lab, panel_id, "")
    lab.run_all("chip-multi.ipynb")
    shown = wait_chip(lab, panel_id, "Blue")
    assert shown["label"] == "Red, Blue" and "Red, Blue" in shown["title"]
    chip_node = chip(lab, panel_id)
    assert json.loads(chip_node.get_attribute("data-channels") or "") == ["Red", "Blue"]
    others = chip_node.locator(".jp-InteropChannelChip-others .jp-InteropSwatch")
    assert others.count() == 1
    assert others.evaluate("s => getComputedStyle(s).backgroundColor") == "rgb(255, 0, 0)"
    menu = open_menu(lab, panel_id)
    checked = menu.locator(".jp-InteropChannelMenu-item[aria-checked=true]")
    assert sorted(checked.evaluate_all("items => items.map(i => i.dataset.channel)")) == [
        "Blue",
        "Red",
    ]
    menu.locator(".jp-InteropChannelMenu-item[data-channel=Green]").click()
    lab.page.wait_for_function(
        """([id, sel]) => document.getElementById(id)?.querySelector(sel)
             ?.dataset.channels === '["Red","Blue","Green"]'""",
        arg=[panel_id, CHIP],
        timeout=WAIT_MS,
        polling=50,
    )
    assert wait_chip(lab, panel_id, "Green")["label"] == "Red, Blue, Green"
    kernel = kernel_id(lab, panel_id)
    wait_until(
        lambda: [
            p for p in kernel_peers(lab_server, kernel) if p["channels"] == ["Red", "Blue", "Green"]
        ],
        "the hub's peers view lists the three channels",
    )
    lab.screenshot("lab-chip-multi.png")
    open_menu(lab, panel_id).locator("[data-action=leave]").click()
    assert wait_chip(lab, panel_id, "")["label"] == "no channel"
    assert chip_node.get_attribute("data-channels") == "[]"


def test_leave_from_the_menu(lab: LabPage, lab_server: LabServer) -> None:
    panel_id = open_with_chip(lab, lab_server, "chip-leave", ["z = 3"])
    wait_chip(lab, panel_id, "")
    pick(lab, panel_id, "Orange")
    wait_chip(lab, panel_id, "Orange")
    kernel = kernel_id(lab, panel_id)

    menu = open_menu(lab, panel_id)
    # the notebook is listed on its channel
    orange = menu.locator(".jp-InteropChannelMenu-item[data-channel=Orange]")
    assert "chip-leave" in orange.locator(".jp-InteropChannelMenu-members").inner_text()
    menu.locator("[data-action=leave]").click()

    shown = wait_chip(lab, panel_id, "")
    assert shown["label"] == "no channel"
    wait_until(
        lambda: (
            (peers := kernel_peers(lab_server, kernel)) and all(p["channel"] is None for p in peers)
        ),
        "the kernel's peer off every channel",
    )
    lab.page.locator(".lm-TabBar-tab[data-interop-channel]").wait_for(
        state="detached", timeout=WAIT_MS
    )


def test_the_menu_closes_on_escape_and_works_by_keyboard(
    lab: LabPage, lab_server: LabServer
) -> None:
    panel_id = open_with_chip(lab, lab_server, "chip-keys", ["k = 4"])
    wait_chip(lab, panel_id, "")
    open_menu(lab, panel_id)
    lab.page.keyboard.press("Escape")
    lab.page.locator(MENU).wait_for(state="detached", timeout=WAIT_MS)
    chip(lab, panel_id).focus()
    lab.page.keyboard.press("Enter")
    lab.page.locator(MENU).wait_for(state="visible", timeout=WAIT_MS)
    first = lab.page.evaluate("() => document.activeElement.dataset.channel")
    lab.page.keyboard.press("ArrowDown")
    second = lab.page.evaluate("() => document.activeElement.dataset.channel")
    assert first and second and first != second
    lab.page.keyboard.press("Enter")
    assert wait_chip(lab, panel_id, second)["label"] == second


def test_a_hostile_channel_name_and_colour_stay_text(lab: LabPage, lab_server: LabServer) -> None:
    name = '<img src=x onerror="window.__pwned=1">'
    color = "red;}</style><script>window.__pwned=2</script>"
    creator = lab_server.client("HostileChannels")
    try:
        # a colour that is not a plain CSS colour never reaches the hub (protocol/colors.py);
        # how the chip shows one left in an old store: test_dashboard_channel_css.py
        with pytest.raises(ArgumentError, match="CSS colour"):
            creator.channels.add(name, color)
        creator.channels.add(name, "teal")
        panel_id = open_with_chip(lab, lab_server, "chip-hostile", ["h = 5"])
        wait_chip(lab, panel_id, "")
        open_menu(lab, panel_id)
        item = lab.page.wait_for_function(
            """(name) => Array.from(document.querySelectorAll(
                 '.jp-InteropChannelMenu-item[data-channel]'))
                 .find(b => b.dataset.channel === name)""",
            arg=name,
            timeout=WAIT_MS,
        ).as_element()
        assert item.query_selector(".jp-InteropChannelMenu-name").text_content() == name
        assert item.query_selector("img") is None
        swatch = item.query_selector(".jp-InteropSwatch")
        assert swatch.get_attribute("style") == "background-color: teal;"
        assert "jp-mod-noColor" not in (swatch.get_attribute("class") or "")
        # joining it runs the silent statement with the name as a Python string literal
        item.click()
        shown = wait_chip(lab, panel_id, name)
        assert shown["label"] == name
        tab = lab.page.wait_for_function(
            """(name) => Array.from(document.querySelectorAll('.lm-TabBar-tab'))
                 .find(t => t.dataset.interopChannel === name)""",
            arg=name,
            timeout=WAIT_MS,
        ).as_element()
        assert tab is not None
        assert lab.page.evaluate("() => document.querySelectorAll('img[src=x]').length") == 0
        assert lab.page.evaluate("() => window.__pwned === undefined")
        # each tab-mark rule is one selector and one colour property: the hostile name stays
        # inside the quoted attribute value and selects only its own tabs
        rules = lab.page.evaluate(
            """(name) => Array.from(document.getElementById('jp-interop-tab-marks').sheet.cssRules)
                 .map(r => ({selector: r.selectorText, props: r.style.length,
                             color: r.style.getPropertyValue('--jp-interop-channel-color').trim(),
                             others: Array.from(document.querySelectorAll(r.selectorText))
                               .filter(t => t.dataset.interopChannel !== name).length}))""",
            name,
        )
        assert all(r["props"] == 1 and "script" not in r["color"] for r in rules), rules
        hostile = [r for r in rules if "onerror" in r["selector"]]
        assert len(hostile) == 1 and hostile[0]["color"] == "teal", rules
        assert hostile[0]["others"] == 0, rules
        assert any("Red" in r["selector"] for r in rules), rules
        kernel = kernel_id(lab, panel_id)
        wait_until(
            lambda: [p for p in kernel_peers(lab_server, kernel) if p["channel"] == name],
            "the kernel's peer on the hostile channel",
        )
    finally:
        creator.close()


def test_dark_theme_screenshots(lab: LabPage, lab_server: LabServer) -> None:
    panel_id = open_with_chip(lab, lab_server, "chip-dark", ["d = 6"])
    wait_chip(lab, panel_id, "")
    pick(lab, panel_id, "Cyan")
    wait_chip(lab, panel_id, "Cyan")
    lab.command("apputils:change-theme", {"theme": "JupyterLab Dark"})
    lab.page.wait_for_function(
        "() => document.body.dataset.jpThemeLight === 'false'", timeout=WAIT_MS
    )
    lab.screenshot("lab-chip-dark.png")
    open_menu(lab, panel_id)
    lab.screenshot("lab-chip-menu-dark.png")
    # the menu follows the theme: its background is the dark layout colour
    dark_bg = lab.page.evaluate(
        "(sel) => getComputedStyle(document.querySelector(sel)).backgroundColor", MENU
    )
    layout = lab.page.evaluate(
        "() => { const d = document.createElement('div');"
        " d.style.background = 'var(--jp-layout-color0)'; document.body.appendChild(d);"
        " const c = getComputedStyle(d).backgroundColor; d.remove(); return c; }"
    )
    assert dark_bg == layout
    lab.command("apputils:change-theme", {"theme": "JupyterLab Light"})
    lab.page.wait_for_function(
        "() => document.body.dataset.jpThemeLight === 'true'", timeout=WAIT_MS
    )


def test_status_item_and_commands(lab: LabPage, lab_server: LabServer) -> None:
    status = lab.page.locator(".jp-InteropStatus")
    status.wait_for(timeout=WAIT_MS)
    lab.page.wait_for_function(
        "() => /^Interop: \\d+ peers?$/.test("
        "document.querySelector('.jp-InteropStatus').textContent)",
        timeout=WAIT_MS,
    )
    commands = lab.page.evaluate(
        "() => ['interop:join-channel', 'interop:leave-channel', 'interop:open-sidebar',"
        " 'interop:open-dashboard'].map(c => [c, window.jupyterapp.commands.hasCommand(c),"
        " window.jupyterapp.commands.label(c)])"
    )
    assert [c[1] for c in commands] == [True] * 4, commands
    assert [c[2] for c in commands] == [
        "Join channel…",
        "Leave channel",
        "Open Interop sidebar",
        "Open interop dashboard",
    ]
