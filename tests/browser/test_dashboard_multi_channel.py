"""A peer in multi-channel mode is on several channels at once: the hub's REST view lists them
all, and the dashboard shows every one of them in the peer's row and the peer under each
channel (docs/LAB.md, "Several channels")."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from labkit import LabServer

import jupyter_interop as ji

#: the peer's row and the members of each channel, read in one evaluation
SNAPSHOT = """(application) => {
  const row = [...document.querySelectorAll("#peers tbody tr")]
    .find((tr) => tr.textContent.includes(application));
  const cell = row ? row.querySelector(".channels") : null;
  const members = {};
  for (const tr of document.querySelectorAll("#channels tbody tr"))
    members[tr.dataset.channel] = tr.querySelector(".members").textContent;
  return {listed: cell ? cell.dataset.channels : null,
          shown: cell ? [...cell.querySelectorAll(".channel")].map((c) => c.textContent) : [],
          select: row ? row.querySelectorAll("select").length : null, members};
}"""


@pytest.fixture
def multi(lab_server: LabServer) -> Iterator[ji.Interop]:
    env = lab_server.interop_env()
    client = ji.connect(
        env["JUPYTER_INTEROP_URL"], env["JUPYTER_INTEROP_TOKEN"], "multi-dash", new=True
    )
    try:
        yield client
    finally:
        client.close()


def _wait(read: Any, ready: Any, timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = read()
        if ready(value):
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"never got there: {value}")
        time.sleep(0.1)


def test_dashboard_shows_every_channel_of_a_multi_channel_peer(
    lab_server: LabServer, chromium: Any, multi: ji.Interop
) -> None:
    multi.channels.mode = "multi"
    multi.channels.join("Red")
    multi.channels.join("Blue")

    def mine() -> list[Any]:
        peers = lab_server.api("interop/api/peers")
        return [p["channels"] for p in peers if p["identity"].get("application") == "multi-dash"]

    assert _wait(mine, lambda found: found == [["Red", "Blue"]]) == [["Red", "Blue"]]

    context = chromium.new_context(viewport={"width": 1200, "height": 900})
    try:
        page = context.new_page()
        page.goto(f"{lab_server.url}/interop/?token={lab_server.token}")
        shot = _wait(
            lambda: page.evaluate(SNAPSHOT, "multi-dash"),
            lambda s: s["listed"] == "Red,Blue" and "multi-dash" in s["members"].get("Blue", ""),
        )
        assert shot["shown"] == ["Red", "Blue"] and shot["select"] == 0
        assert "multi-dash" in shot["members"]["Red"]
        assert "multi-dash" not in shot["members"].get("Green", "")

        multi.channels.leave("Red")  # back on one channel: the move select again
        shot = _wait(
            lambda: page.evaluate(SNAPSHOT, "multi-dash"),
            lambda s: s["listed"] is None and s["select"] == 1,
        )
        assert "multi-dash" not in shot["members"]["Red"]
        assert "multi-dash" in shot["members"]["Blue"]
    finally:
        context.close()
