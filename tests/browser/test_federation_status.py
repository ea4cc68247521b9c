"""Federation status in the browser (docs/FEDERATION.md, "Status"): a real JupyterLab federated
through a real nats-server (a password-protected user of its space) with a standalone hub of
the same space; the sidebar's Federation line and the dashboard show the space and the remote
hub, never the password, in the light and the dark theme. The session's JupyterLab, not
federated, shows the line as off."""

from __future__ import annotations

import json
import sys
import urllib.request
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from labkit import LabError, LabPage, LabServer, link_built_labextension, start_lab
from test_lab_sidebar import SIDEBAR, WAIT_MS, open_sidebar

import jupyter_interop as ji
from jupyter_interop.server.federation_access import nats_config, space_password, space_url

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "integration"))
from test_client_support import wait_for
from test_federation import Hub, Nats, start_hub, stop

SPACE = "lab-fed"
PASSWORD = space_password("browser-test-secret", SPACE)
LINE = f"{SIDEBAR} [data-role=federation]"
#: the bound of the lab hub's link queue (nats-py's buffer and the sockets hold more)
QUEUE_BOUND = 1_000_000


@dataclass
class Federated:
    lab: LabServer
    remote: Hub
    nats_url: str
    nats: Nats


@pytest.fixture(scope="module")
def federated(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Federated]:
    """JupyterLab and a standalone hub with one peer, both in space ``lab-fed``."""
    base = tmp_path_factory.mktemp("federated")
    config = base / "nats.conf"
    config.write_text(nats_config([(SPACE, PASSWORD)]))
    with ExitStack() as stack:
        nats = Nats(base, "-c", str(config))
        stack.callback(nats.stop)
        url = space_url(nats.url, SPACE, PASSWORD)
        server = stack.enter_context(
            start_lab(
                base / "lab",
                config={
                    "InteropHub": {
                        "federation_url": url,
                        "federation_space": SPACE,
                        "federation_max_queue_bytes": QUEUE_BOUND,
                    }
                },
            )
        )
        try:
            link_built_labextension(server)
        except LabError as exc:
            pytest.fail(str(exc), pytrace=False)
        remote = start_hub(base / "remote", url, f"--InteropHub.federation_space={SPACE}")
        stack.callback(stop, remote.proc)
        peer = ji.connect(url=remote.url, token=remote.token, application="remote-pricer")
        stack.callback(peer.close)
        peer.methods.register("Remote.Quote")(lambda: {"px": 1.0})
        yield Federated(server, remote, nats.url, nats)


def remote_hub_id(federated: Federated) -> str:
    http = federated.remote.url.replace("ws://", "http://").split("/interop/")[0]
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    url = f"{http}/interop/api/federation?token={federated.remote.token}"
    with opener.open(url, timeout=10) as response:
        return str(json.loads(response.read())["hub"])


def line_color(page: Any) -> str:
    return str(page.evaluate("(sel) => getComputedStyle(document.querySelector(sel)).color", LINE))


def test_the_sidebar_shows_the_space_and_the_remote_hub_in_both_themes(
    federated: Federated, chromium: Any
) -> None:
    context = chromium.new_context(viewport={"width": 1400, "height": 900})
    try:
        lab = LabPage(context.new_page(), federated.lab)
        lab.goto_lab("federation-status")
        open_sidebar(lab)
        line = lab.page.locator(f"{LINE}[data-state=connected][data-hubs='1']")
        line.wait_for(timeout=WAIT_MS)
        lab.page.wait_for_function(
            "(sel) => document.querySelector(sel).textContent.includes('(1 peer)')",
            arg=LINE,
            timeout=WAIT_MS,
        )
        assert line.text_content() == (f"Federation: space {SPACE} · connected to 1 hub (1 peer)")
        title = line.get_attribute("title") or ""
        assert title.startswith(f"space {SPACE} at {federated.nats_url}\n")
        assert f"hub {remote_hub_id(federated)}: 1 peer, heard " in title
        assert PASSWORD not in lab.page.content() and PASSWORD not in title
        light = line_color(lab.page)
        lab.screenshot("lab-sidebar-federation-light.png")

        lab.command("apputils:change-theme", {"theme": "JupyterLab Dark"})
        lab.page.wait_for_function(
            "() => document.body.dataset.jpThemeLight === 'false'", timeout=WAIT_MS
        )
        # the line's colour is the theme's (--jp-ui-font-color2), so it changes with it
        lab.page.wait_for_function(
            "([sel, light]) => getComputedStyle(document.querySelector(sel)).color !== light"
            " && !document.getElementById('jupyterlab-splash')",
            arg=[LINE, light],
            timeout=WAIT_MS,
        )
        lab.screenshot("lab-sidebar-federation-dark.png")
        lab.command("apputils:change-theme", {"theme": "JupyterLab Light"})
        lab.page.wait_for_function(
            "() => document.body.dataset.jpThemeLight === 'true'", timeout=WAIT_MS
        )
    finally:
        context.close()


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_the_dashboard_lists_the_remote_hub_without_secrets(
    scheme: str, federated: Federated, chromium: Any
) -> None:
    context = chromium.new_context(color_scheme=scheme, viewport={"width": 1200, "height": 900})
    try:
        page = context.new_page()
        page.goto(f"{federated.lab.url}/interop/?token={federated.lab.token}")
        hub = remote_hub_id(federated)
        row = page.locator(f"#remote-hubs tr[data-hub='{hub}']")
        row.wait_for(timeout=WAIT_MS)
        page.wait_for_function(
            "(hub) => document.querySelector(`#remote-hubs tr[data-hub='${hub}'] td:nth-child(2)`)"
            ".textContent === '1'",
            arg=hub,
            timeout=WAIT_MS,
        )
        line = page.locator("#federation[data-state=connected]")
        text = line.text_content() or ""
        assert text.startswith(f"space {SPACE} at {federated.nats_url} · this hub ")
        assert text.endswith("connected to 1 other hub")
        assert row.locator("td").nth(2).text_content().endswith(" s ago")  # type: ignore[union-attr]
        assert PASSWORD not in page.content()
        background = page.evaluate("() => getComputedStyle(document.body).backgroundColor")
        assert (background == "rgb(255, 255, 255)") == (scheme == "light"), background
    finally:
        context.close()


def test_the_dashboard_says_when_the_link_queue_is_full_and_what_was_dropped(
    federated: Federated, chromium: Any
) -> None:
    """NATS paused (SIGSTOP) while a peer of the lab's hub publishes on the bus: the dashboard
    says the queue is full and what was dropped, then, NATS running again, what was dropped
    while it was slow (docs/FEDERATION.md, "A slow NATS server")."""
    publisher = federated.lab.client("filler")
    context = chromium.new_context(viewport={"width": 1200, "height": 900})
    try:

        def full() -> bool:
            for _ in range(20):
                publisher.bus.publish("fill.x", "x" * 64_000)
            return bool(federated.lab.api("interop/api/federation")["queue"]["full"])

        page = context.new_page()
        page.goto(f"{federated.lab.url}/interop/?token={federated.lab.token}")
        federated.nats.pause()
        try:
            wait_for(full, 120, "the lab hub's link queue to be full")
            line = page.locator("#federation-queue[data-state=full]")
            line.wait_for(timeout=WAIT_MS)
            text = line.text_content() or ""
            assert "NATS takes this hub's messages slower than they come: " in text
            assert f"of {QUEUE_BOUND} bytes queued; calls across hubs fail until they drain" in text
            assert " · dropped so far: " in text
            assert line.get_attribute("class") == "bad"
        finally:
            federated.nats.resume()
        drained = page.locator("#federation-queue[data-state=drained]")
        drained.wait_for(timeout=WAIT_MS)
        dropped = federated.lab.api("interop/api/federation")["queue"]["dropped"]
        assert dropped["bus"] > 0
        assert drained.text_content() == (
            f"dropped while NATS was slow: {dropped['bus']} bus and "
            f"{dropped['streams']} stream messages"
        )
    finally:
        context.close()
        publisher.close()


def test_a_server_without_federation_says_off(lab: LabPage) -> None:
    open_sidebar(lab)
    line = lab.page.locator(f"{LINE}[data-state=off]")
    line.wait_for(timeout=WAIT_MS)
    assert line.text_content() == "Federation: off"
    assert lab.server.api("interop/api/federation") == {"enabled": False}
