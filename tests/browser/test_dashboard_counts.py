"""The dashboard's header counts agree with its tables (streams are not methods, channel
contexts are not listed contexts), and the page follows the light or dark preference."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from labkit import ARTIFACTS, LabServer

import jupyter_interop as ji

TABLES = ("peers", "methods", "streams", "contexts", "channels")

#: one evaluation reads the status line and the tables together (one refresh fills both)
SNAPSHOT = """(tables) => {
  const rows = {};
  for (const id of tables) rows[id] = [...document.querySelectorAll(`#${id} tbody tr`)]
    .map((tr) => tr.textContent);
  const counts = {};
  for (const el of document.querySelectorAll("[data-count]"))
    counts[el.dataset.count] = el.textContent;
  return {status: document.getElementById("status").textContent, rows, counts,
          background: getComputedStyle(document.body).backgroundColor};
}"""


@pytest.fixture
def peers(lab_server: LabServer) -> Iterator[tuple[ji.Interop, ji.Interop]]:
    env = lab_server.interop_env()
    url, token = env["JUPYTER_INTEROP_URL"], env["JUPYTER_INTEROP_TOKEN"]
    a = ji.connect(url, token, application="count-a", new=True)
    b = ji.connect(url, token, application="count-b", new=True)
    try:
        yield a, b
    finally:
        a.close()
        b.close()


def _snapshot(page: Any, ready: Any, timeout: float = 30.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        shot: dict[str, Any] = page.evaluate(SNAPSHOT, list(TABLES))
        if ready(shot):
            return shot
        if time.monotonic() > deadline:
            raise AssertionError(f"the dashboard never showed the expected rows: {shot}")
        time.sleep(0.1)


def _number(status: str, plural: str, one: str) -> int:
    for part in status.split(" · "):
        count, _, label = part.partition(" ")
        if label in (plural, one):
            return int(count)
    raise AssertionError(f"no {plural} count in {status!r}")


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_header_counts_are_the_table_rows(
    scheme: str, lab_server: LabServer, chromium: Any, peers: tuple[ji.Interop, ji.Interop]
) -> None:
    a, b = peers
    a.methods.register("Count.One", lambda: 1)
    a.methods.register("Count.Two", lambda: 2)
    b.methods.register("Count.One", lambda: 1)  # a second server of the same method
    a.streams.create("Count.Ticks")
    for name in ("count.ctx1", "count.ctx2"):
        a.contexts.set(name, {"n": 1})
    a.channels.join("Green")
    a.channels.publish({"seen": True})  # a channel context: shown under Channels only

    context = chromium.new_context(color_scheme=scheme, viewport={"width": 1200, "height": 900})
    try:
        page = context.new_page()
        page.goto(f"{lab_server.url}/interop/?token={lab_server.token}")

        def ready(shot: dict[str, Any]) -> bool:
            text = " ".join(" ".join(r) for r in shot["rows"].values())
            return all(
                word in text for word in ("Count.Two", "Count.Ticks", "count.ctx2", "count-b")
            ) and not shot["status"].startswith("connecting")

        shot = _snapshot(page, ready)
        rows, status = shot["rows"], shot["status"]
        for table, one in zip(
            TABLES, ("peer", "method", "stream", "context", "channel"), strict=True
        ):
            assert _number(status, table, one) == len(rows[table]), (table, status, rows)
            assert shot["counts"][table] == f"({len(rows[table])})"
        assert sum("Count.One" in r for r in rows["methods"]) == 2
        assert not any("Count.Ticks" in r for r in rows["methods"])  # a stream, not a method
        assert not any("___channel___" in r for r in rows["contexts"])
        assert any("Green" in r and "seen" in r for r in rows["channels"])
        expected = "rgb(27, 27, 31)" if scheme == "dark" else "rgb(255, 255, 255)"
        assert shot["background"] == expected
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / f"dashboard-{scheme}.png"), full_page=True)
    finally:
        context.close()
