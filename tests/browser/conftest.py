"""Fixtures of the browser suite: one JupyterLab server and one Chromium for the session.

Missing Chromium or Playwright is a failure, not a skip: the test script treats skips as
failures anyway, and a silently skipped browser suite would hide a broken setup.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from labkit import (
    ARTIFACTS,
    LabError,
    LabPage,
    LabServer,
    launch_chromium,
    link_built_labextension,
    start_lab,
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.browser)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: Any) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"rep_{report.when}", report)


@pytest.fixture(scope="session")
def lab_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabServer]:
    """The session's JupyterLab, serving the lab extension built in this checkout (the shell
    is part of what users get, so every browser test runs with it)."""
    with start_lab(tmp_path_factory.mktemp("lab")) as server:
        try:
            link_built_labextension(server)
        except LabError as exc:
            pytest.fail(str(exc), pytrace=False)
        yield server


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    """Chromium through Playwright's sync API, per module: while it runs, Playwright's loop is
    the thread's running loop, which must not leak into the other suites' asyncio tests."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as exc:  # pragma: no cover - a broken setup
        pytest.fail(f"playwright is not installed ({exc}); run scripts/setup.sh", pytrace=False)
    with sync_playwright() as p:
        browser = launch_chromium(p)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def lab(request: pytest.FixtureRequest, lab_server: LabServer, chromium: Any) -> Iterator[LabPage]:
    """A fresh browser context with JupyterLab loaded; a screenshot is kept if the test fails."""
    context = chromium.new_context(viewport={"width": 1600, "height": 1000})
    page = context.new_page()
    lab_page = LabPage(page, lab_server)
    workspace = re.sub(r"[^A-Za-z0-9]+", "-", request.node.name).strip("-").lower()
    lab_page.goto_lab(workspace)
    try:
        yield lab_page
    finally:
        report = getattr(request.node, "rep_call", None)
        if report is not None and report.failed:
            ARTIFACTS.mkdir(exist_ok=True)
            try:
                page.screenshot(path=str(ARTIFACTS / f"browser-failed-{workspace}.png"))
            except Exception as exc:  # the page may have crashed
                print(f"no failure screenshot: {exc}")
        context.close()
