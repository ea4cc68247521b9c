"""Smoke test of the browser harness: JupyterLab starts, a notebook gets a kernel, cells run,
widgets render, and the kernel sees the interop hub the server extension exported."""

from __future__ import annotations

from labkit import LabPage, LabServer, write_notebook


def test_lab_runs_a_notebook_with_widgets_and_sees_the_hub(
    lab: LabPage, lab_server: LabServer
) -> None:
    write_notebook(
        lab_server.root_dir / "smoke.ipynb",
        [
            ("markdown", "# Smoke"),
            "print(6 * 7)",
            "import os\nprint(os.environ['JUPYTER_INTEROP_URL'])",
            "import ipywidgets as w\nw.IntSlider(value=3, description='smoke')",
        ],
    )
    lab.open_notebook("smoke.ipynb")
    cells = lab.run_all("smoke.ipynb")

    assert [c["type"] for c in cells] == ["markdown", "code", "code", "code"]
    assert lab.output_text("smoke.ipynb", 1).strip() == "42"
    status = lab_server.api("interop/api/status")
    assert lab.output_text("smoke.ipynb", 2).strip() == status["url"]
    slider = lab.panel_locator("smoke.ipynb").locator(".widget-slider").first
    slider.wait_for(state="visible")
    assert "smoke" in slider.inner_text()
    lab.check_dialog()
    lab.screenshot("browser-smoke.png")
