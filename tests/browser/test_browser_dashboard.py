"""The hub dashboard in Chromium: it lists a notebook on its channel, and picking another
channel there moves the notebook (its client obeys and the hub records the new channel)."""

from __future__ import annotations

import time

from labkit import ARTIFACTS, LabPage, LabServer, write_notebook


def _channel_of(server: LabServer, application: str) -> str | None:
    for channel in server.api("interop/api/channels"):
        if any(m["application"] == application for m in channel["members"]):
            return str(channel["name"])
    return None


def _wait(predicate, what: str, timeout: float = 30.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def test_dashboard_shows_and_moves_a_notebook(lab: LabPage, lab_server: LabServer) -> None:
    write_notebook(
        lab_server.root_dir / "dash-nb.ipynb",
        [
            "import jupyter_interop as ji\nio = ji.connect()\nio.channels.join('Red')",
            "@io.methods.register('Dash.Ping')\ndef ping():\n    return 'pong'",
        ],
    )
    lab.open_notebook("dash-nb.ipynb")
    lab.run_all("dash-nb.ipynb")
    _wait(lambda: _channel_of(lab_server, "dash-nb") == "Red", "the notebook on Red")

    page = lab.page.context.new_page()
    page.goto(f"{lab_server.url}/interop/")
    row = page.locator("#peers tr", has_text="dash-nb")
    select = row.locator("select")
    select.wait_for(state="visible")
    _wait(lambda: select.input_value() == "Red", "the dashboard showing Red")
    page.locator("#channels tr[data-channel='Red'] .members", has_text="dash-nb").wait_for()
    page.locator("#methods td", has_text="Dash.Ping").wait_for()

    select.select_option("Blue")
    _wait(lambda: _channel_of(lab_server, "dash-nb") == "Blue", "the notebook moved to Blue")
    page.locator("#channels tr[data-channel='Blue'] .members", has_text="dash-nb").wait_for()
    assert not page.locator("#status.bad").count()
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "dashboard.png"), full_page=True)
    page.close()
