"""End to end in JupyterLab: two notebooks side by side in headless Chromium.

Notebook A has a slider bound to the shared context ``tour`` and a channel selector, and offers
a method from a cell; notebook B has a number box bound to the same path and calls A's method.
A real mouse drag on A's slider must change B's box; a click on the Red channel must move A on
the hub; a move made elsewhere (B's kernel asking the hub) must show in A's selector; the
method's print must appear under A's cell. The screenshot is the README's notebook tour.
"""

from __future__ import annotations

from typing import Any

from labkit import LabError, LabPage, LabServer, output_text, wait_until, write_notebook

A = "tour-a.ipynb"
B = "tour-b.ipynb"

NOTEBOOK_A = [
    ("markdown", "## Notebook A: a slider on the shared context `tour`"),
    "%load_ext jupyter_interop\nimport ipywidgets as w\nimport jupyter_interop as ji",
    'limit = w.IntSlider(value=10, min=0, max=100, description="limit")\n'
    'ji.bind(limit, "value", context="tour", path="limit")\nlimit',
    "ji.ChannelSelector()",
    "%%interop method Tour.Echo\nprint(f'Tour.Echo called with {text!r}')\ntext.upper()",
]
NOTEBOOK_B = [
    ("markdown", "## Notebook B: the same value, bound"),
    "%load_ext jupyter_interop\nimport ipywidgets as w\nimport jupyter_interop as ji",
    'mirror = w.IntText(description="mirror")\n'
    'ji.bind(mirror, "value", context="tour", path="limit")\nmirror',
    "%interop invoke Tour.Echo text=hello --wait 30",
]


def _peer_of(server: LabServer, path: str) -> dict[str, Any]:
    for peer in server.api("interop/api/peers"):
        if peer["identity"].get("notebookPath") == path:
            return dict(peer)
    raise LabError(f"no peer for {path}: {server.api('interop/api/peers')}")


def test_two_notebooks_slider_binding_channels_and_output_routing(
    lab: LabPage, lab_server: LabServer
) -> None:
    write_notebook(lab_server.root_dir / A, NOTEBOOK_A)
    write_notebook(lab_server.root_dir / B, NOTEBOOK_B)
    lab.command("application:toggle-left-area")  # room for two notebooks side by side
    lab.open_notebook(A)
    lab.open_notebook(B, mode="split-right")
    lab.run_all(A)
    lab.run_all(B)

    a = lab.panel_locator(A)
    b = lab.panel_locator(B)
    box = b.locator(".widget-text input[type=number]").first
    readout = a.locator(".widget-slider .widget-readout").first
    box.wait_for(state="visible")
    # the initial value came from the hub: A seeded the context, B took it
    wait_until(lambda: box.input_value() == "10", "B's box to show 10")

    # a real drag of A's slider handle
    handle = a.locator(".widget-slider .noUi-handle").first
    handle.scroll_into_view_if_needed()
    bounds = handle.bounding_box()
    assert bounds is not None
    x, y = bounds["x"] + bounds["width"] / 2, bounds["y"] + bounds["height"] / 2
    lab.page.mouse.move(x, y)
    lab.page.mouse.down()
    for step in range(1, 11):
        lab.page.mouse.move(x + 6 * step, y)
    lab.page.mouse.up()
    dragged = wait_until(
        lambda: int(readout.inner_text() or 0) > 10 and readout.inner_text(), "A's slider to move"
    )
    wait_until(lambda: box.input_value() == dragged, f"B's box to follow A's slider to {dragged}")
    assert lab_server.api("interop/api/contexts") is not None

    # typing in B moves A's slider (two-way)
    box.fill("42")
    box.press("Enter")
    wait_until(lambda: readout.inner_text() == "42", "A's slider to follow B's box")

    # the method's print shows under A's registering cell, not under B's invoking cell
    echo_cell = len(NOTEBOOK_A) - 1
    wait_until(
        lambda: "Tour.Echo called with 'hello'" in lab.output_text(A, echo_cell),
        "the handler's output under A's method cell",
    )
    assert "HELLO" in lab.output_text(B, len(NOTEBOOK_B) - 1)
    assert "Tour.Echo called" not in lab.output_text(B, len(NOTEBOOK_B) - 1)

    # pick Red in A's channel selector: the hub sees A on Red
    a.locator("button.ji-channel-Red").click()
    a.locator(".ji-channel-current[data-channel='Red']").wait_for()
    wait_until(lambda: _peer_of(lab_server, A)["channel"] == "Red", "the hub to see A on Red")
    red = next(c for c in lab_server.api("interop/api/channels") if c["name"] == "Red")
    assert red is not None

    # a move made elsewhere (B's kernel asks the hub) shows in A's selector
    peer_a = _peer_of(lab_server, A)["peer_id"]
    lab.kernel_execute(B, f"ji.connect().channels.move({peer_a!r}, 'Blue')")
    a.locator(".ji-channel-current[data-channel='Blue']").wait_for()
    wait_until(lambda: _peer_of(lab_server, A)["channel"] == "Blue", "the hub to see A on Blue")
    assert "check" in (a.locator("button.ji-channel-Blue i").first.get_attribute("class") or "")

    lab.check_dialog()
    shot = lab.screenshot("notebook-tour.png")
    assert shot.stat().st_size > 10_000
    cells_a = lab.cells(A)
    assert "Registered method 'Tour.Echo'" in output_text(cells_a[echo_cell]["outputs"])
