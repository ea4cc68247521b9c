"""The app directory without a server: metadata validation, the bounded scan and its cache,
and how the client turns directory notebooks into ``"app"`` handlers (docs/INTENTS.md)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import orjson
import pytest

import jupyter_interop as ji
from jupyter_interop.client.apps import App, app_error
from jupyter_interop.client.intents import app_handlers, startable_handlers
from jupyter_interop.server.appdir import (
    MAX_APP_NAMES,
    AppDirectory,
    app_from_notebook,
)

CHART = {"name": "ViewChart", "contextTypes": ["fdc3.instrument"], "displayName": "Chart"}


def notebook(interop: Any = None, *, declared: bool = True) -> bytes:
    metadata: dict[str, Any] = {"kernelspec": {"name": "python3"}}
    if declared:
        metadata["interop"] = interop
    return orjson.dumps({"cells": [], "metadata": metadata, "nbformat": 4, "nbformat_minor": 5})


def write(path: Path, content: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    return path


def test_a_valid_declaration_is_listed_with_the_agreed_shape() -> None:
    interop = {"intents": [CHART], "methods": ["pricing.price"], "channel": "Red"}
    entry = app_from_notebook("folder/chart.ipynb", notebook(interop))
    assert entry is not None and entry.error is None
    assert entry.as_json() == {
        "path": "folder/chart.ipynb",
        "name": "chart",
        "title": "chart",
        "intents": [CHART],
        "methods": ["pricing.price"],
        "channel": "Red",
        "error": None,
    }
    assert entry.handles("ViewChart", "fdc3.instrument") and entry.handles("ViewChart")
    assert not entry.handles("ViewChart", "fdc3.contact") and not entry.handles("Other")


def test_notebooks_that_declare_nothing_are_not_apps() -> None:
    assert app_from_notebook("a.ipynb", notebook(declared=False)) is None
    assert app_from_notebook("a.ipynb", b"{not json") is None
    assert app_from_notebook("a.ipynb", b"[1, 2]") is None


@pytest.mark.parametrize(
    ("interop", "message"),
    [
        ("ViewChart", "metadata.interop must be an object, not 'ViewChart'"),
        ({"intents": "ViewChart"}, "intents must be a list"),
        ({"intents": [7]}, "intents[0] must be an object, not 7"),
        ({"intents": [{"name": ""}]}, "intents[0].name must be a non-empty string"),
        ({"intents": [{"name": "../../etc/passwd"}]}, "is not a name"),
        ({"intents": [{"name": "<script>alert(1)</script>"}]}, "is not a name"),
        ({"intents": [{"name": "x" * 300}]}, "..."),
        ({"intents": [{"name": "A", "contextTypes": "fdc3.x"}]}, "contextTypes must be a list"),
        ({"intents": [{"name": "A", "contextTypes": [None]}]}, "contextTypes[0] must be"),
        ({"intents": [{"name": "A", "displayName": "a\x00b"}]}, "displayName must be a string"),
        ({"intents": [{"name": "A"}], "channel": {"x": 1}}, "channel must be a string"),
        ({"intents": [{"name": "A"}], "methods": ["ok", "not ok"]}, "methods[1]"),
        ({"intents": [{"name": "A"}] * (MAX_APP_NAMES + 1)}, f"at most {MAX_APP_NAMES}"),
        ({}, "declares no intents and no methods"),
        ({"intents": [{"name": "A", "resultType": "channel<"}]}, "resultType: 'channel<' is"),
        ({"intents": [{"name": "A", "resultType": ["fdc3.chart"]}]}, "resultType: a result"),
    ],
)
def test_hostile_metadata_gives_an_error_per_notebook(interop: Any, message: str) -> None:
    entry = app_from_notebook("bad.ipynb", notebook(interop))
    assert entry is not None and entry.error is not None and message in entry.error
    assert entry.intents == () and not entry.handles("A")
    assert len(entry.error) < 400  # a hostile value is shortened, not echoed whole


def test_scan_skips_hidden_folders_checkpoints_symlinks_and_deep_folders(tmp_path: Path) -> None:
    good = notebook({"intents": [CHART]})
    write(tmp_path / "top.ipynb", good)
    write(tmp_path / "a" / "b" / "deep.ipynb", good)
    write(tmp_path / "a" / "b" / "c" / "too-deep.ipynb", good)
    write(tmp_path / ".hidden" / "h.ipynb", good)
    write(tmp_path / ".ipynb_checkpoints" / "top-checkpoint.ipynb", good)
    write(tmp_path / "plain.ipynb", notebook(declared=False))
    write(tmp_path / "notes.txt", good)
    outside = write(tmp_path.parent / f"{tmp_path.name}-outside" / "o.ipynb", good)
    os.symlink(outside.parent, tmp_path / "linked")
    directory = AppDirectory(str(tmp_path), max_depth=2)
    assert sorted(e.path for e in directory.scan()) == ["a/b/deep.ipynb", "top.ipynb"]
    assert not directory.truncated


def test_scan_stops_at_the_file_cap(tmp_path: Path) -> None:
    for index in range(5):
        write(tmp_path / f"n{index}.ipynb", notebook({"intents": [CHART]}))
    directory = AppDirectory(str(tmp_path), max_files=3)
    assert len(directory.scan()) == 3 and directory.truncated


def test_rescan_reads_only_changed_notebooks(tmp_path: Path) -> None:
    path = write(tmp_path / "chart.ipynb", notebook({"intents": [CHART]}))
    write(tmp_path / "big.ipynb", notebook({"intents": [CHART]}) + b" " * 2048)
    directory = AppDirectory(str(tmp_path), max_notebook_bytes=1024)
    (first,) = directory.scan()  # the big one is not read
    (again,) = directory.scan()
    assert again is first  # same size and mtime: the cached entry
    write(path, notebook({"intents": [{"name": "ViewNews"}]}))
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))
    (changed,) = directory.scan()
    assert [i.name for i in changed.intents] == ["ViewNews"]
    path.unlink()
    assert directory.scan() == []


def test_apps_become_app_handlers_and_targets_select_them() -> None:
    apps = [
        App.from_json(
            {
                "path": "f/chart.ipynb",
                "name": "chart",
                "title": "Chart",
                "intents": [CHART, {"name": "ViewNews", "contextTypes": []}],
            }
        ),
        App.from_json({"path": "x.ipynb", "name": "x", "intents": [CHART], "error": "bad"}),
    ]
    handlers = app_handlers(apps, "fdc3.instrument")
    assert [(h.intent, h.type, h.notebook_path, h.application, h.peer_id) for h in handlers] == [
        ("ViewChart", "app", "f/chart.ipynb", "chart", ""),
        ("ViewNews", "app", "f/chart.ipynb", "chart", ""),
    ]
    assert [h.intent for h in app_handlers(apps, "fdc3.contact")] == ["ViewNews"]
    chart = startable_handlers("ViewChart", handlers, None)
    assert len(chart) == 1
    assert startable_handlers("ViewChart", handlers, "startNew") == chart
    assert startable_handlers("ViewChart", handlers, {"application": "chart"}) == chart
    assert startable_handlers("ViewChart", handlers, {"application": "f/chart.ipynb"}) == chart
    assert startable_handlers("ViewChart", handlers, {"application": "other"}) == []
    assert startable_handlers("ViewChart", handlers, {"instance": "p1"}) == []
    assert startable_handlers("ViewChart", handlers, "p1") == []


def test_a_failed_start_becomes_the_fdc3_error() -> None:
    context = {
        "fdc3_error": "ErrorOnLaunch",
        "message": "b.ipynb: cell 1 raised ValueError: no",
        "notebook_path": "b.ipynb",
        "cell_index": 1,
        "cell_source": "explode()",
        "traceback": "ValueError: no",
    }
    error = app_error(ji.InvocationError("failed", None, context), "ViewChart")
    assert isinstance(error, ji.ErrorOnLaunch) and error.intent == "ViewChart"
    assert (error.cell_index, error.cell_source, error.traceback) == (
        1,
        "explode()",
        "ValueError: no",
    )
    timeout = app_error(ji.InvocationError("t", None, {"fdc3_error": "AppTimeout"}), "X")
    assert isinstance(timeout, ji.AppTimeout) and isinstance(timeout, TimeoutError)
    assert app_error(ji.InvocationError("other", None, {"type": "ValueError"}), "X") is None


def test_declared_result_types_are_listed_and_filter_app_handlers() -> None:
    """A directory notebook's ``resultType`` is listed, reaches its ``"app"`` handler, and
    filters as FDC3 says: ``"channel"`` takes any channel result, other types only
    themselves, and a handler declaring none passes no filter."""
    declared = [
        {**CHART, "resultType": "fdc3.chart"},
        {"name": "Stream", "resultType": "channel<fdc3.instrument>"},
        {"name": "Quiet"},
    ]
    entry = app_from_notebook("f/chart.ipynb", notebook({"intents": declared}))
    assert entry is not None and entry.error is None
    listed = entry.as_json()["intents"]
    assert [i.get("resultType") for i in listed] == ["fdc3.chart", "channel<fdc3.instrument>", None]
    apps = [App.from_json({"path": "f/chart.ipynb", "name": "chart", "intents": listed})]
    assert [h.result_type for h in app_handlers(apps, None)] == [
        "fdc3.chart",
        "channel<fdc3.instrument>",
        None,
    ]

    def intents(result_type: str) -> list[str]:
        return [h.intent for h in app_handlers(apps, "fdc3.instrument", result_type)]

    assert intents("fdc3.chart") == ["ViewChart"]
    assert intents("channel") == ["Stream"]
    assert intents("channel<fdc3.instrument>") == ["Stream"]
    assert intents("channel<fdc3.contact>") == []
    assert intents("fdc3.nothing") == []
