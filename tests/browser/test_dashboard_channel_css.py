"""Channel colours cannot carry CSS into the views (issue 11, defect 3).

The hub refuses bad channel metadata now, so a bad value can only come from a store written
before that: these tests write one into the SQLite store before the server starts (as an old
hub would have left it), then check that the dashboard sends a Content-Security-Policy, shows
the channels without an overlay and without a request to the beacon address, and that a
``ChannelSelector`` in a real kernel still renders (it raised ``TraitError`` before).
"""

from __future__ import annotations

import json
import re
import sqlite3
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from labkit import LabError, LabPage, LabServer, link_built_labextension, start_lab

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "notebook"))
from kernelkit import Kernel

BEACON_HOST = "127.0.0.1:9"
#: channel name -> the colour an old store holds for it
BAD_COLOURS = {
    "Evil": "red;}</style><div style=position:fixed;inset:0>",
    "Overlay": "red;position:fixed;top:0;left:0;width:100vw;height:100vh;z-index:99999",
    "Beacon": f"url(http://{BEACON_HOST}/beacon)",
    "BeaconImage": f"red;background-image:url(http://{BEACON_HOST}/beacon-image)",
    "NotText": 42,
}
GOOD = {"name": "Good", "meta": {"color": "#123456"}, "data": {}}

_SCHEMA = """
CREATE TABLE IF NOT EXISTS contexts (
    name TEXT PRIMARY KEY NOT NULL, data TEXT NOT NULL, version INTEGER NOT NULL,
    updated_at REAL NOT NULL, updater TEXT)
"""


def _write_old_store(path: Path) -> None:
    """The table of ``hub/store.py`` (schema version 1), filled directly with bad channels."""
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = [
        (f"___channel___{name}", {"name": name, "meta": {"color": color}, "data": {"x": 1}})
        for name, color in BAD_COLOURS.items()
    ]
    rows.append(("___channel___Good", GOOD))
    rows.append(("___channel___NoMeta", {"name": "NoMeta", "meta": None, "data": None}))
    with sqlite3.connect(path) as db:
        db.execute(_SCHEMA)
        db.execute("PRAGMA user_version = 1")
        db.executemany(
            "INSERT INTO contexts VALUES (?, ?, 1, ?, NULL)",
            [(name, json.dumps(value), time.time()) for name, value in rows],
        )
    db.close()


@pytest.fixture(scope="module")
def old_store_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabServer]:
    base = tmp_path_factory.mktemp("old-store")
    _write_old_store(base / "data" / "contexts.sqlite")
    with start_lab(base) as server:
        try:
            link_built_labextension(server)
        except LabError as exc:
            pytest.fail(str(exc), pytrace=False)
        yield server


def _rendered(page: Any) -> None:
    """Wait until the page has painted what it rendered (two animation frames)."""
    page.evaluate(
        "() => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(() => r(1))))"
    )


def test_dashboard_sends_a_csp_and_shows_bad_colours_harmlessly(
    old_store_server: LabServer, chromium: Any
) -> None:
    server = old_store_server
    names = [c["name"] for c in server.api("interop/api/channels")]
    assert set(BAD_COLOURS) | {"Good", "NoMeta"} <= set(names), names

    context = chromium.new_context(viewport={"width": 1200, "height": 900})
    page = context.new_page()
    requests: list[str] = []
    page.on("request", lambda request: requests.append(request.url))
    violations: list[str] = []
    page.on("console", lambda msg: violations.append(msg.text) if "Content Security" in
            msg.text else None)
    response = page.goto(f"{server.url}/interop/?token={server.token}")
    assert response is not None and response.ok

    # the channels table lists every stored channel, bad ones included, and the status line
    # reports the hub (the refresh finished without an exception)
    for name in [*BAD_COLOURS, "Good", "NoMeta"]:
        page.locator(f"#channels tr[data-channel='{name}']").wait_for()
    page.locator("#status", has_text="channel").wait_for()
    _rendered(page)

    swatches = page.evaluate(
        """() => Array.from(document.querySelectorAll('#channels tr')).slice(1).map(tr => {
             const s = tr.querySelector('.swatch'); const cs = getComputedStyle(s);
             return {name: tr.dataset.channel, style: s.getAttribute('style'),
                     bg: cs.backgroundColor, image: cs.backgroundImage, position: cs.position,
                     width: s.getBoundingClientRect().width};
           })"""
    )
    by_name = {s["name"]: s for s in swatches}
    assert by_name["Good"]["bg"] == "rgb(18, 52, 86)"
    for name in [*BAD_COLOURS, "NoMeta"]:
        swatch = by_name[name]
        assert swatch["position"] == "static" and swatch["image"] == "none", swatch
        assert swatch["width"] < 50, swatch
    # nothing covers the page: the heading is what is found at its own place
    top = page.evaluate(
        """() => { const h = document.querySelector('h1').getBoundingClientRect();
                   const e = document.elementFromPoint(h.left + 5, h.top + h.height / 2);
                   return e && e.tagName; }"""
    )
    assert top == "H1", top
    assert page.locator("div[style]").count() == 0
    assert not [u for u in requests if BEACON_HOST in u], requests
    assert all(u.startswith(server.url) for u in requests), requests
    assert not violations, violations

    csp = response.headers.get("content-security-policy", "")
    directives = {d.split()[0]: d.split()[1:] for d in csp.split(";") if d.strip()}
    assert directives["default-src"] == ["'none'"], csp
    assert directives["base-uri"] == ["'none'"] and directives["form-action"] == ["'none'"]
    assert directives["frame-ancestors"] == ["'self'"]
    assert "'unsafe-inline'" not in csp and "http:" not in csp and "*" not in csp
    [nonce] = re.findall(r"'nonce-([A-Za-z0-9_\-+/=]+)'", " ".join(directives["style-src"]))
    assert directives["script-src"] == ["'self'", f"'nonce-{nonce}'"], csp
    assert set(directives["img-src"]) == {"'self'", "data:"}
    # the page's own blocks carry this response's nonce; another load gets another one
    assert page.evaluate("() => document.querySelector('script').nonce") == nonce
    again = context.request.get(f"{server.url}/interop/")
    assert nonce not in again.headers["content-security-policy"]
    context.close()


def test_channel_selector_renders_in_a_real_kernel(old_store_server: LabServer) -> None:
    kernel = Kernel(old_store_server.interop_env())
    try:
        kernel.run("import jupyter_interop as ji")
        kernel.run("s = ji.ChannelSelector()")
        colours = kernel.value(
            "{b.description: b.style.button_color for b in s._buttons.values()}"
        )
        assert colours["Good"] == "#123456"
        for name in [*BAD_COLOURS, "NoMeta"]:
            assert colours[name] is None, colours
        kernel.run("s.join('Evil')")
        kernel.wait_value("s.value", "Evil")
        label = kernel.value("s.label.value")
        assert "position" not in label and "url(" not in label, label
        table = kernel.value("ji.connect().channels.list() and "
                             "__import__('jupyter_interop.notebook._views', fromlist=['x'])"
                             ".channels_table(ji.connect())._repr_html_()")
        assert BEACON_HOST not in table and "position:fixed" not in table, table
        assert 'style="background:#123456"' in table
    finally:
        kernel.close()


def test_lab_chip_menu_shows_bad_colours_as_no_colour(
    old_store_server: LabServer, chromium: Any
) -> None:
    """The lab extension's channel menu and tab marks, with the old store's channels."""
    from test_lab_chip import open_menu, open_with_chip, wait_chip

    context = chromium.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    requests: list[str] = []
    page.on("request", lambda request: requests.append(request.url))
    lab = LabPage(page, old_store_server)
    lab.goto_lab("old-store-chip")
    panel_id = open_with_chip(lab, old_store_server, "old-store-chip", ["o = 1"])
    open_menu(lab, panel_id)
    for name in [*BAD_COLOURS, "Good", "NoMeta"]:
        page.locator(f".jp-InteropChannelMenu-item[data-channel='{name}']").wait_for()
    _rendered(page)
    swatches = page.evaluate(
        """() => Object.fromEntries(Array.from(document.querySelectorAll(
             '.jp-InteropChannelMenu-item[data-channel]')).map(b => {
               const s = b.querySelector('.jp-InteropSwatch'); const cs = getComputedStyle(s);
               return [b.dataset.channel, {style: s.getAttribute('style'),
                       noColor: s.classList.contains('jp-mod-noColor'),
                       position: cs.position, image: cs.backgroundImage}]; }))"""
    )
    assert swatches["Good"]["style"] == "background-color: rgb(18, 52, 86);", swatches["Good"]
    for name in [*BAD_COLOURS, "NoMeta"]:
        swatch = swatches[name]
        assert swatch["style"] is None and swatch["noColor"], (name, swatch)
        assert swatch["position"] != "fixed" and swatch["image"] == "none", (name, swatch)
    # joining a channel marks the notebook's tab through the generated stylesheet
    page.locator(".jp-InteropChannelMenu-item[data-channel='Good']").click()
    wait_chip(lab, panel_id, "Good")
    marks = page.evaluate(
        "() => Array.from(document.getElementById('jp-interop-tab-marks').sheet.cssRules)"
        ".map(r => r.selectorText)"
    )
    assert any('"Good"' in m for m in marks), marks
    assert not [m for m in marks if any(f'"{n}"' in m for n in BAD_COLOURS)], marks
    assert not [u for u in requests if BEACON_HOST in u], requests
    context.close()
