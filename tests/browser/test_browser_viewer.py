"""The Interop Viewer in JupyterLab: pick a method, type arguments, click Invoke, read the
result; preview a live stream. Everything through the real widgets' DOM."""

from __future__ import annotations

from labkit import LabPage, LabServer, write_notebook

V = "viewer.ipynb"

NOTEBOOK = [
    ("markdown", "## The Interop Viewer"),
    "%load_ext jupyter_interop\nimport threading\nimport jupyter_interop as ji\nio = ji.connect()",
    "%%interop method Viewer.Square --description 'x squared'\nx * x",
    "ticks = io.streams.create('Viewer.Ticks')\nstop = threading.Event()\n"
    "def run():\n    n = 0\n    while not stop.wait(0.1):\n"
    "        n += 1\n        ticks.push({'n': n, 'price': 100 + n})\n"
    "threading.Thread(target=run, daemon=True).start()",
    "ji.InteropViewer()",
]


def test_viewer_invokes_and_previews_a_stream(lab: LabPage, lab_server: LabServer) -> None:
    write_notebook(lab_server.root_dir / V, NOTEBOOK)
    lab.open_notebook(V)
    lab.run_all(V)
    viewer = lab.panel_locator(V).locator(".ji-interop-viewer").first
    viewer.wait_for()
    assert "this notebook" in viewer.locator("table.ji-table").first.inner_text()

    viewer.get_by_role("tab", name="Methods").click()
    viewer.locator(".widget-select select").first.select_option("Viewer.Square")
    viewer.get_by_text("x squared").first.wait_for()
    arguments = viewer.locator(".widget-textarea textarea").first
    arguments.fill('{"x": 12}')
    arguments.blur()
    viewer.get_by_role("button", name="Invoke").click()
    viewer.get_by_text("144").first.wait_for()

    viewer.get_by_role("tab", name="Streams").click()
    viewer.locator(".widget-select select").nth(1).select_option("Viewer.Ticks")
    viewer.get_by_role("button", name="Preview").click()
    preview = viewer.locator(".ji-stream-view").first
    preview.get_by_text("item(s)").wait_for()
    preview.locator("table.ji-table td").first.wait_for()
    assert "price" in preview.locator("table.ji-table").inner_text()
    lab.check_dialog()
    lab.screenshot("interop-viewer.png")
    lab.kernel_execute(V, "stop.set()")
