"""The intent resolver widget in JupyterLab, clicked in headless Chromium.

Two notebooks handle one intent, each in its own kernel; the second raises it. Several handlers
fit, so the widget (``ji-intent-resolver``) appears under the raising cell, and the test
chooses as a person would, by clicking in the page: the raise's result shows in the widget
and in the ``-o`` variable (the magic), or as the awaiting cell's result (``araise_intent``),
and Cancel gives ``UserCancelledResolution`` (docs/INTENTS.md, "The resolver widget").
"""

from __future__ import annotations

from typing import Any

from labkit import LabPage, LabServer, wait_until, write_notebook

HANDLER = "intents-handler.ipynb"
RAISER = "intents-raiser.ipynb"
INTENT = "BrowserChart"
WAIT_MS = 60_000


def handler_cell(name: str) -> str:
    return (
        f"%%interop intent {INTENT} --context-types fdc3.instrument --display-name {name}\n"
        f'{{"type": "fdc3.chart", "by": "{name}", "ticker": context["id"]["ticker"]}}'
    )


RAISE = f"%interop intent raise {INTENT} type=fdc3.instrument --timeout 120"
RAISER_CELLS = [
    "%load_ext jupyter_interop\nimport asyncio\nimport jupyter_interop as ji",
    handler_cell("Raiser"),
    "for _ in range(600):\n"
    f"    if sum(len(i.handlers) for i in ji.connect().intents.find({INTENT!r})) == 2:\n"
    "        break\n"
    "    await asyncio.sleep(0.1)",
    f"{RAISE} id.ticker=AAPL -o picked",
    f"done = await ji.connect().intents.araise_intent({INTENT!r}, "
    '{"type": "fdc3.instrument", "id": {"ticker": "MSFT"}}, timeout=120)\n'
    "done.result",
    f"{RAISE} id.ticker=NVDA -o never",
]


def resolver(lab: LabPage, index: int) -> Any:
    """The ``index``-th resolver widget of the raising notebook, once shown."""
    widget = lab.panel_locator(RAISER).locator(".ji-intent-resolver").nth(index)
    widget.wait_for(state="visible", timeout=WAIT_MS)
    return widget


def choose(widget: Any, where: str) -> None:
    """Click the widget's button of the handler in ``where`` (a notebook path)."""
    button = widget.locator(".ji-intent-handler", has_text=where)
    assert button.count() == 1, widget.inner_text()
    button.click()


def test_resolver_widget_chosen_by_a_click(lab: LabPage, lab_server: LabServer) -> None:
    write_notebook(
        lab_server.root_dir / HANDLER,
        ["%load_ext jupyter_interop", handler_cell("Handler")],
    )
    write_notebook(lab_server.root_dir / RAISER, RAISER_CELLS)
    lab.command("application:toggle-left-area")
    lab.open_notebook(HANDLER)
    lab.open_notebook(RAISER, mode="split-right")
    lab.run_all(HANDLER)
    # the raises wait for clicks: run every cell without waiting, then act on what shows
    panel_id = lab.panel_locator(RAISER).get_attribute("id")
    lab.command("notebook:run-all-cells", {"widgetId": panel_id}, wait=False)

    # the magic: two buttons (one per kernel) and Cancel; the handler notebook is chosen
    first = resolver(lab, 0)
    assert first.locator(".ji-intent-handler").count() == 2
    assert first.locator(".ji-intent-cancel").count() == 1
    lab.screenshot("intent-resolver.png")
    choose(first, HANDLER)
    wait_until(lambda: f"handled by {HANDLER}" in first.inner_text(), "the magic's result")
    shown = first.inner_text()
    assert "'by': 'Handler'" in shown and "'ticker': 'AAPL'" in shown
    assert all(b.is_disabled() for b in first.locator("button").all())

    # an awaited araise_intent: the widget answers while the cell awaits; the resolution is
    # the cell's result. This time the raising notebook's own handler is chosen.
    choose(resolver(lab, 1), RAISER)

    # Cancel: UserCancelledResolution shows in the widget, nothing is stored
    third = resolver(lab, 2)
    third.locator(".ji-intent-cancel").click()
    wait_until(lambda: "UserCancelledResolution" in third.inner_text(), "the cancellation")

    cells = lab.wait_cells_done(RAISER, WAIT_MS)
    awaited = lab.output_text(RAISER, 4)
    assert "'by': 'Raiser'" in awaited and "'ticker': 'MSFT'" in awaited, cells[4]["outputs"]
    assert lab.kernel_value(RAISER, "picked['by'], picked['ticker']") == "('Handler', 'AAPL')"
    assert lab.kernel_value(RAISER, "'never' in globals()") == "False"
    assert lab.kernel_value(RAISER, "done.handler.notebook_path") == repr(RAISER)
    lab.check_dialog()
