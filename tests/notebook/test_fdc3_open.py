"""FDC3 ``open(app, context)`` under a real Jupyter server: the directory notebook is started
headless in a new kernel, and the context reaches its first context listener that takes it
(docs/FDC3.md, "open with a context"); a notebook that adds none in time is ``AppTimeout``,
one whose cell fails first ``ErrorOnLaunch``.

The started notebook's listener writes what it got into a shared context, which the test
reads; the opener is a client of the server's hub like any app.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import nbformat
import pytest
from labkit import LabServer, start_lab, wait_until, write_notebook

import jupyter_interop as ji
from jupyter_interop import fdc3
from jupyter_interop.protocol.wire import FDC3_OPEN_RESPONSE_PREFIX

INSTRUMENT = {"type": "fdc3.instrument", "name": "Apple", "id": {"ticker": "AAPL"}}
#: the shortest window FDC3 allows a started app to add its listeners
OPEN_TIMEOUT = 15.0

LISTENS = [
    "import jupyter_interop as ji\nio = ji.connect()",
    "io.fdc3.add_context_listener('fdc3.contact', "
    "lambda ctx, meta: io.contexts.set('test-open-contact', ctx))",
    "def got(ctx, meta):\n"
    "    io.contexts.set('test-open-got', {'context': ctx, 'metadata': meta, "
    "'peer': io.peer_id})\n"
    "io.fdc3.add_context_listener('fdc3.instrument', got)",
    "io.fdc3.add_context_listener(None, lambda ctx, meta: io.contexts.set('test-open-2nd', ctx))",
]
BROKEN = [
    "import jupyter_interop as ji\nio = ji.connect()",
    "raise ValueError('no listener today')",
]
DEAF = [
    "import jupyter_interop as ji\nio = ji.connect()",
    "io.fdc3.add_context_listener('fdc3.contact', lambda ctx, meta: None)",
]


def app_notebook(path: Path, cells: list[str], **interop: Any) -> None:
    write_notebook(path, cells)
    nb = nbformat.read(str(path), as_version=4)
    nb.metadata["interop"] = {"methods": [f"test.{path.stem}"], **interop}
    nbformat.write(nb, str(path))


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabServer]:
    base = tmp_path_factory.mktemp("fdc3open")
    declared = [
        {"name": "ViewOpened", "contextTypes": ["fdc3.instrument"], "resultType": "fdc3.chart"},
        {"name": "StreamOpened", "resultType": "channel<fdc3.instrument>"},
    ]
    app_notebook(base / "notebooks" / "listens.ipynb", LISTENS, intents=declared)
    app_notebook(base / "notebooks" / "deaf.ipynb", DEAF)
    app_notebook(base / "notebooks" / "broken.ipynb", BROKEN)
    with start_lab(base, config={"NotebookApps": {"rescan_interval": 0.5}}) as running:
        yield running


@pytest.fixture
def io(server: LabServer) -> Iterator[Any]:
    client = server.client("opener")
    client.fdc3_open_timeout = OPEN_TIMEOUT
    wait_until(lambda: client.apps.list(), "the app directory's peer on the hub")
    yield client
    for app in client.apps.list():
        for running in app.running:
            if running.state in ("starting", "running"):
                client.apps.stop(running.kernel_id)
    client.close()


def open_methods(io: Any) -> list[str]:
    return [m.name for m in io.methods.methods() if m.name.startswith(FDC3_OPEN_RESPONSE_PREFIX)]


def test_open_hands_the_context_to_the_first_listener_that_takes_it(io: Any) -> None:
    """FDC3 2.2 ``open(app, context)``: a new kernel runs the notebook; its ``fdc3.contact``
    listener does not get the instrument, its ``fdc3.instrument`` listener does (with the
    opener as ``source``), and a later untyped listener does not get it again; ``open``
    returns the instance whose listener took it."""
    opened = io.fdc3.open("listens.ipynb", INSTRUMENT)
    assert opened.app_id == "listens.ipynb" and opened.instance_id
    got = wait_until(lambda: io.contexts.get("test-open-got"), "the started listener's context")
    assert got["context"] == INSTRUMENT
    assert got["metadata"] == {"source": io.fdc3.get_info()["appMetadata"]}
    assert got["peer"] == opened.instance_id
    (app,) = [a for a in io.apps.list() if a.path == "listens.ipynb"]
    (running,) = app.running
    assert running.peer_id in (None, opened.instance_id)
    # every cell ran: the untyped listener was added after the instrument's had taken it
    wait_until(lambda: io.apps.list() and running_state(io, "listens.ipynb") == "running", "cells")
    names = io.contexts.all()
    assert "test-open-contact" not in names and "test-open-2nd" not in names
    assert open_methods(io) == []  # the response method is gone once open returned


def running_state(io: Any, path: str) -> str | None:
    for app in io.apps.list():
        if app.path == path:
            return next((r.state for r in app.running), None)
    return None


def test_open_without_a_listener_in_time_is_app_timeout(io: Any) -> None:
    """FDC3 2.2 ``OpenError.AppTimeout``: the started notebook listens for contacts only, so
    no listener takes the instrument within the window; the opener stops serving its
    response method."""
    with pytest.raises(fdc3.Fdc3OpenError) as failed:
        io.fdc3.open({"appId": "deaf.ipynb"}, INSTRUMENT)
    assert failed.value.fdc3_error == fdc3.OpenErrorName.AppTimeout
    assert "deaf.ipynb" in str(failed.value) and "fdc3.instrument" in str(failed.value)
    assert open_methods(io) == []


def test_open_of_a_notebook_whose_cell_fails_is_error_on_launch(io: Any) -> None:
    """FDC3 2.2 ``OpenError.ErrorOnLaunch``: the started notebook's cell raises before any
    listener took the context, so the server stopped it; the opener hears it from the app
    directory's watch of that kernel (not from a look once the window is over): the error
    names the cell, its source and traceback, and where its cells can be read."""
    with pytest.raises(fdc3.Fdc3OpenError) as failed:
        io.fdc3.open("broken.ipynb", INSTRUMENT)
    error = failed.value
    assert error.fdc3_error == fdc3.OpenErrorName.ErrorOnLaunch
    assert "broken.ipynb" in str(error) and "/output" in str(error)
    assert error.notebook_path == "broken.ipynb" and error.cell_index == 1
    assert error.cell_source == BROKEN[1]
    assert "ValueError: no listener today" in (error.traceback or "")
    assert "ValueError: no listener today" in str(error)
    assert open_methods(io) == []


def test_watch_ends_with_the_started_notebooks_failure_or_stop(io: Any) -> None:
    """``io.apps.watch(kernel_id, timeout)``: the failure of a notebook the server started
    (``ErrorOnLaunch`` with its cell and traceback) as soon as it happens, the entry once it
    was stopped, and the entry as it runs when the wait is over first."""
    broken = io.apps.start("broken.ipynb", new=True)
    with pytest.raises(ji.ErrorOnLaunch) as failed:
        io.apps.watch(broken.kernel_id, 600)
    assert failed.value.cell_index == 1 and "no listener today" in failed.value.traceback
    deaf = io.apps.start("deaf.ipynb", new=True)
    assert io.apps.watch(deaf.kernel_id, 0).state in ("starting", "running")
    io.apps.stop(deaf.kernel_id)
    assert io.apps.watch(deaf.kernel_id, 600).state == "stopped"
    with pytest.raises(ji.TargetAppUnavailable):
        io.apps.watch("no-such-kernel", 1)


def test_a_directory_notebooks_result_types_filter_fdc3_finds(io: Any) -> None:
    """``resultType`` in a directory notebook's ``metadata.interop`` intents is listed and
    filters ``find_intent``/``find_intents_by_context`` as FDC3 says, before the notebook
    runs (its handlers are of type ``"app"``)."""
    (app,) = [a for a in io.apps.list() if a.path == "listens.ipynb"]
    assert [(i.name, i.result_type) for i in app.intents] == [
        ("ViewOpened", "fdc3.chart"),
        ("StreamOpened", "channel<fdc3.instrument>"),
    ]
    chart = io.fdc3.find_intent("ViewOpened", INSTRUMENT, "fdc3.chart")
    assert chart["apps"] == [{"appId": "listens", "resultType": "fdc3.chart"}]
    with pytest.raises(ji.NoAppsFound):
        io.fdc3.find_intent("ViewOpened", INSTRUMENT, "channel")
    channels = io.fdc3.find_intents_by_context(INSTRUMENT, "channel")
    assert [i["intent"]["name"] for i in channels] == ["StreamOpened"]
