"""The Apps section of the Interop sidebar: the server's app directory in JupyterLab.

Real parts: notebooks that declare an intent in their metadata under the server's root, the
server's app directory and its REST API, a headless kernel started and stopped from buttons in
the page (headless Chromium), and the hub, where the started notebook's handler appears and
goes (docs/LAB.md, "The Interop sidebar").
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import nbformat
from labkit import ARTIFACTS, LabPage, LabServer, wait_until, write_notebook
from test_lab_sidebar import SIDEBAR, WAIT_MS, open_sidebar, section

APP = "apps/sidebar-chart.ipynb"
BROKEN = "apps/sidebar-broken.ipynb"
INTENT = "SidebarChart"
METHOD = f"Tick42.FDC3.Intents.{INTENT}"
#: a headless start runs every cell in a new kernel: generous on a loaded machine
START_MS = 120_000
#: the picture of docs/LAB.md, written only when asked (a tracked file)
DOC_IMAGE = Path(__file__).resolve().parents[2] / "notebooks" / "images" / "lab-sidebar-apps.png"


def declare(path: Path, interop: Any) -> None:
    """Give the notebook at ``path`` the metadata ``interop`` (what the app directory reads)."""
    nb = nbformat.read(str(path), as_version=4)
    nb.metadata["interop"] = interop
    nbformat.write(nb, str(path))


def running_kernels(server: LabServer, path: str) -> list[str]:
    apps = server.api("interop/api/apps")["apps"]
    return [r["kernel_id"] for a in apps if a["path"] == path for r in a["running"]]


def offered(server: LabServer) -> bool:
    return any(m["name"] == METHOD for m in server.api("interop/api/methods"))


def test_apps_section_lists_starts_and_stops_a_notebook(
    lab: LabPage, lab_server: LabServer
) -> None:
    root = lab_server.root_dir
    write_notebook(
        root / APP,
        [
            ("markdown", "# A chart that starts on demand"),
            "%load_ext jupyter_interop",
            f"%%interop intent {INTENT} --context-types fdc3.instrument --display-name Chart\n"
            '{"type": "fdc3.chart", "ticker": context["id"]["ticker"]}',
        ],
    )
    declare(
        root / APP,
        {
            "intents": [
                {"name": INTENT, "contextTypes": ["fdc3.instrument"], "displayName": "Chart"}
            ]
        },
    )
    write_notebook(root / BROKEN, ["1"])
    declare(root / BROKEN, {"intents": "ViewChart"})  # not a list: refused, with the reason
    try:
        check_start_and_stop(lab, lab_server)
    finally:  # the session's other tests see a directory without them
        (root / APP).unlink()
        (root / BROKEN).unlink()


def check_start_and_stop(lab: LabPage, lab_server: LabServer) -> None:
    """The sidebar lists both notebooks, starts the declared one headless and stops it."""
    open_sidebar(lab)
    apps = section(lab, "apps")
    row = apps.locator(f'[data-name="{APP}"]')
    row.wait_for(timeout=WAIT_MS)
    intent = row.locator(f'[data-intent="{INTENT}"]')
    assert "Chart" in intent.inner_text() and "fdc3.instrument" in intent.inner_text()
    assert "not running" in row.inner_text()
    broken = apps.locator(f'[data-name="{BROKEN}"]')
    broken.wait_for(timeout=WAIT_MS)
    assert "metadata.interop.intents must be a list" in broken.inner_text()
    assert broken.locator("[data-action=start-app]").is_disabled()

    # Start: a headless kernel runs the notebook; its handler reaches the hub
    row.locator("[data-action=start-app]").click()
    kernel = row.locator(".jp-InteropSidebar-appKernel[data-state=running]")
    kernel.wait_for(timeout=START_MS)
    kernel_id = kernel.get_attribute("data-kernel")
    assert kernel_id and running_kernels(lab_server, APP) == [kernel_id]
    wait_until(lambda: offered(lab_server), f"{METHOD} on the hub")
    assert "1 running" in row.inner_text()
    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / "lab-sidebar-apps.png"
    section(lab, "peers").locator("[data-action=toggle-section]").click()  # room for Apps
    lab.page.locator(SIDEBAR).screenshot(path=str(shot))
    if os.environ.get("JUPYTER_INTEROP_README_IMAGES"):
        DOC_IMAGE.write_bytes(shot.read_bytes())

    # Stop: the kernel goes, from the page, the REST view and the hub
    kernel.locator("[data-action=stop-app]").click()
    row.locator(".jp-InteropSidebar-appKernel").wait_for(state="detached", timeout=WAIT_MS)
    wait_until(lambda: not running_kernels(lab_server, APP), "the kernel to leave the listing")
    wait_until(lambda: not offered(lab_server), f"{METHOD} to leave the hub")
    assert "not running" in row.inner_text()
    lab.check_dialog()
