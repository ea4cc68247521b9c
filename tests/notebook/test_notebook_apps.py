"""Notebooks that start on demand, under a real Jupyter server with real kernels.

The server's app directory holds a few notebooks declaring intents in ``metadata.interop``: a
raise with no running handler starts one headless (a kernel of the server, its cells run by
nbclient), is answered by it, is reused by the next raise, and the notebook is stopped when
idle; a notebook whose cell raises gives ``ErrorOnLaunch`` with the cell and its traceback, one
that never registers gives ``AppTimeout``; two concurrent raises start one kernel. The REST
views (``interop/api/apps``) list them, hostile metadata included (docs/INTENTS.md).
"""

from __future__ import annotations

import http.cookiejar
import json
import os
import sys
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import nbformat
import pytest
from kernelkit import Kernel
from labkit import LabServer, start_lab, wait_until, write_notebook

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "integration"))
from nodekit import COMPAT, NodeLinePeer

import jupyter_interop as ji

#: seconds a started notebook has to register its handler (short: the AppTimeout test waits it)
START_TIMEOUT = 15.0
#: seconds without an invocation after which a headless notebook is stopped
IDLE_TIMEOUT = 6.0
INSTRUMENT = {"type": "fdc3.instrument", "id": {"ticker": "AAPL"}}


def app_notebook(path: Path, cells: list[str], interop: Any) -> Path:
    write_notebook(path, cells)
    nb = nbformat.read(str(path), as_version=4)
    nb.metadata["interop"] = interop
    nbformat.write(nb, str(path))
    return path


def listener(intent: str, result: str) -> list[str]:
    """Cells that register a handler of ``intent`` answering ``{"type": result, ...}``."""
    return [
        "import os, jupyter_interop as ji\nio = ji.connect()",
        f"def handle(context):\n"
        f"    return {{'type': {result!r}, 'ticker': context['id']['ticker'], "
        f"'kernel': os.getpid()}}\n"
        f"io.intents.add_listener({intent!r}, handle, context_types=['fdc3.instrument'])",
    ]


def declares(intent: str, **more: Any) -> dict[str, Any]:
    return {
        "intents": [{"name": intent, "contextTypes": ["fdc3.instrument"], "displayName": intent}],
        **more,
    }


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabServer]:
    base = tmp_path_factory.mktemp("apps")
    root = base / "notebooks"
    app_notebook(
        root / "apps" / "chart.ipynb", listener("ViewChart", "fdc3.chart"), declares("ViewChart")
    )
    app_notebook(
        root / "apps" / "idle.ipynb", listener("ViewIdle", "fdc3.idle"), declares("ViewIdle")
    )
    app_notebook(
        root / "once.ipynb", listener("ViewOnce", "fdc3.once"), declares("ViewOnce", channel="Red")
    )
    app_notebook(
        root / "broken.ipynb",
        ["x = 1", "def explode():\n    raise ValueError('no chart today')\nexplode()"],
        declares("ViewBroken"),
    )
    app_notebook(root / "slow.ipynb", ["import time\ntime.sleep(600)"], declares("ViewSlow"))
    app_notebook(
        root / "pricer.ipynb",
        [
            "import jupyter_interop as ji\nio = ji.connect()",
            "io.methods.register('pricing.price', lambda symbol: {'symbol': symbol, 'px': 101})",
        ],
        {"methods": ["pricing.price"]},
    )
    app_notebook(root / "xsrf.ipynb", listener("ViewXsrf", "fdc3.x"), declares("ViewXsrf"))
    app_notebook(root / "hostile.ipynb", ["1"], {"intents": [{"name": "../<img src=x>"}]})
    app_notebook(root / "notalist.ipynb", ["1"], {"intents": "ViewChart", "channel": 7})
    app_notebook(root / "plain.ipynb", ["1"], {})
    write_notebook(root / "not-an-app.ipynb", ["1"])
    app_notebook(root / ".hidden" / "secret.ipynb", ["1"], declares("ViewHidden"))
    app_notebook(root / ".ipynb_checkpoints" / "chart-checkpoint.ipynb", ["1"], declares("X"))
    config = {
        "NotebookApps": {
            "start_timeout": START_TIMEOUT,
            "idle_timeout": IDLE_TIMEOUT,
            "idle_check_interval": 0.5,
            "rescan_interval": 0.5,
        }
    }
    with start_lab(base, config=config) as running:
        yield running


def test_cookie_authenticated_posts_and_deletes_need_the_xsrf_token(server: LabServer) -> None:
    """A browser session (login cookie) must send Jupyter's XSRF token to start or stop a
    notebook, so that another site's page cannot make the user's browser do it."""
    jar = http.cookiejar.CookieJar()
    browser = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    browser.open(f"{server.url}/lab?token={server.token}", timeout=30).read()  # logs in
    assert browser.open(f"{server.url}/interop/api/apps", timeout=10).status == 200
    xsrf = next(c.value for c in jar if c.name == "_xsrf")
    start = f"{server.url}/interop/api/apps/start"
    stop = f"{server.url}/interop/api/apps/running/some-kernel"
    for url, method, body in ((start, "POST", b'{"path": "xsrf.ipynb"}'), (stop, "DELETE", None)):
        with pytest.raises(urllib.error.HTTPError) as refused:
            browser.open(urllib.request.Request(url, data=body, method=method), timeout=10)
        assert refused.value.code == 403 and b"_xsrf" in refused.value.read()
    # with the token the request reaches the app directory (which knows no such kernel)
    with pytest.raises(urllib.error.HTTPError) as unknown:
        request = urllib.request.Request(stop, method="DELETE", headers={"X-XSRFToken": xsrf})
        browser.open(request, timeout=10)
    assert unknown.value.code == 404
    assert apps_by_path(server)["xsrf.ipynb"]["running"] == []  # the refused POST started nothing


@pytest.fixture
def io(server: LabServer) -> Iterator[Any]:
    client = server.client("raiser")
    wait_until(lambda: client.apps.list(), "the app directory's peer on the hub")
    yield client
    client.close()


def apps_by_path(server: LabServer) -> dict[str, Any]:
    return {a["path"]: a for a in server.api("interop/api/apps")["apps"]}


def test_rest_listing_validates_metadata(server: LabServer) -> None:
    apps = apps_by_path(server)
    assert set(apps) == {
        "apps/chart.ipynb",
        "apps/idle.ipynb",
        "once.ipynb",
        "broken.ipynb",
        "slow.ipynb",
        "xsrf.ipynb",
        "pricer.ipynb",
        "hostile.ipynb",
        "notalist.ipynb",
        "plain.ipynb",
    }
    chart = apps["apps/chart.ipynb"]
    assert chart["name"] == "chart" and chart["error"] is None and chart["running"] == []
    assert chart["intents"] == [
        {"name": "ViewChart", "contextTypes": ["fdc3.instrument"], "displayName": "ViewChart"}
    ]
    assert "is not a name" in apps["hostile.ipynb"]["error"]
    assert apps["hostile.ipynb"]["intents"] == []
    assert "intents must be a list" in apps["notalist.ipynb"]["error"]
    assert "declares no intents" in apps["plain.ipynb"]["error"]

    with pytest.raises(urllib.error.HTTPError) as missing:
        server.api("interop/api/apps/start", "POST", {"path": "nowhere.ipynb"})
    assert missing.value.code == 404
    with pytest.raises(urllib.error.HTTPError) as bad:
        server.api("interop/api/apps/start", "POST", {"paths": 1})
    assert bad.value.code == 400
    with pytest.raises(urllib.error.HTTPError) as gone:
        server.api("interop/api/apps/running/not-a-kernel", "DELETE")
    assert gone.value.code == 404
    with pytest.raises(urllib.error.HTTPError) as anonymous:
        urllib.request.urlopen(f"{server.url}/interop/api/apps", timeout=10)
    assert anonymous.value.code == 403


def test_raise_starts_the_notebook_reuses_it_and_it_stops_when_idle(
    server: LabServer, io: Any
) -> None:
    (intent,) = io.intents.find("ViewIdle")
    (app,) = intent.handlers
    assert (app.type, app.notebook_path, app.application) == ("app", "apps/idle.ipynb", "idle")

    first = io.intents.raise_intent("ViewIdle", INSTRUMENT)
    assert first.result["type"] == "fdc3.idle" and first.result["ticker"] == "AAPL"
    assert first.handler.type == "instance"
    assert first.handler.notebook_path == "apps/idle.ipynb"
    second = io.intents.raise_intent("ViewIdle", INSTRUMENT)
    assert second.handler.peer_id == first.handler.peer_id
    assert second.result["kernel"] == first.result["kernel"]

    # the kernel's hello was identified with the notebook, as for any kernel of the server
    peers = {p["peer_id"]: p for p in server.api("interop/api/peers")}
    identity = peers[first.handler.peer_id]["identity"]
    assert identity["notebookPath"] == "apps/idle.ipynb" and identity["application"] == "idle"
    (running,) = apps_by_path(server)["apps/idle.ipynb"]["running"]
    assert running["peer_id"] == first.handler.peer_id
    kinds = {h.type for h in io.intents.find("ViewIdle")[0].handlers}
    assert kinds == {"instance", "app"}

    wait_until(
        lambda: not apps_by_path(server)["apps/idle.ipynb"]["running"],
        "the idle notebook stopped",
        timeout=IDLE_TIMEOUT + 30,
    )
    kernels = {k["id"] for k in server.api("api/kernels")}
    assert running["kernel_id"] not in kernels
    output = server.api(f"interop/api/apps/running/{running['kernel_id']}/output")
    assert output["state"] == "stopped" and len(output["cells"]) == 2


def test_target_application_starts_it_and_rest_stops_it(server: LabServer, io: Any) -> None:
    done = io.intents.raise_intent("ViewChart", INSTRUMENT, {"application": "apps/chart.ipynb"})
    assert done.result["type"] == "fdc3.chart"
    (running,) = apps_by_path(server)["apps/chart.ipynb"]["running"]
    url = f"interop/api/apps/running/{running['kernel_id']}/output"
    # the handler answers once registered, while its cell may still be finishing
    output = wait_until(
        lambda: (out := server.api(url))["state"] == "running" and out, "every cell ran"
    )
    assert [c["index"] for c in output["cells"]] == [0, 1]
    assert "IntentListener" in output["cells"][1]["outputs"][0]["data"]["text/plain"]
    stopped = server.api(f"interop/api/apps/running/{running['kernel_id']}", "DELETE")
    assert stopped["state"] == "stopped"
    assert apps_by_path(server)["apps/chart.ipynb"]["running"] == []


def test_broken_notebook_gives_error_on_launch_with_its_traceback(io: Any) -> None:
    with pytest.raises(ji.ErrorOnLaunch) as info:
        io.intents.raise_intent("ViewBroken", INSTRUMENT)
    error = info.value
    assert error.fdc3_error == "ErrorOnLaunch" and error.intent == "ViewBroken"
    assert error.notebook_path == "broken.ipynb" and error.cell_index == 1
    assert error.cell_source is not None and "explode()" in error.cell_source
    assert error.traceback is not None
    assert "ValueError: no chart today" in error.traceback and "explode" in error.traceback


def test_notebook_that_never_registers_gives_app_timeout(server: LabServer, io: Any) -> None:
    with pytest.raises(ji.AppTimeout) as info:
        io.intents.raise_intent("ViewSlow", INSTRUMENT)
    assert info.value.notebook_path == "slow.ipynb" and "ViewSlow" in str(info.value)
    (running,) = apps_by_path(server)["slow.ipynb"]["running"]
    assert running["state"] == "starting"
    io.apps.stop(running["kernel_id"])
    assert apps_by_path(server)["slow.ipynb"]["running"] == []


def test_concurrent_raises_start_the_notebook_once(server: LabServer, io: Any) -> None:
    other = server.client("raiser-2")
    try:
        results: list[Any] = []
        errors: list[BaseException] = []
        barrier = threading.Barrier(2)

        def raise_from(client: Any) -> None:
            barrier.wait()
            try:
                results.append(client.intents.raise_intent("ViewOnce", INSTRUMENT))
            except BaseException as error:
                errors.append(error)

        threads = [threading.Thread(target=raise_from, args=(c,)) for c in (io, other)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(120)
        assert errors == [] and len(results) == 2
        assert results[0].handler.peer_id == results[1].handler.peer_id
        assert len(apps_by_path(server)["once.ipynb"]["running"]) == 1
        # it declares the channel it starts on
        peers = {p["peer_id"]: p for p in server.api("interop/api/peers")}
        assert peers[results[0].handler.peer_id]["channel"] == "Red"
    finally:
        other.close()


def test_interop_apps_magic_lists_and_stops(server: LabServer, io: Any) -> None:
    done = io.intents.raise_intent("ViewChart", INSTRUMENT, "startNew")
    kernel_id = done.handler.instance.kernel_id
    kernel = Kernel(server.interop_env(), server.root_dir)
    try:
        kernel.run("%load_ext jupyter_interop")
        listing = kernel.run("%interop apps -o apps").text
        assert "apps/chart.ipynb" in listing and f"{kernel_id} (" in listing
        assert "is not a name" in listing
        assert kernel.value("sorted(a.path for a in apps)")[0] == "apps/chart.ipynb"
        stopped = kernel.run(f"%interop apps stop {kernel_id}").text
        assert f"Stopped apps/chart.ipynb (kernel {kernel_id})" in stopped
        assert "apps [stop KERNEL_ID]" in kernel.usage_error("%interop apps halt now")
        # a method no one offers yet, started from the notebook that declares it
        kernel.run("%interop invoke pricing.price symbol=AAPL --start -o quote")
        assert kernel.value("quote") == {"symbol": "AAPL", "px": 101}
        (pricer,) = apps_by_path(server)["pricer.ipynb"]["running"]
        kernel.run(f"%interop apps stop {pricer['kernel_id']}")
        assert "declares 'nothing.here'" in kernel.usage_error(
            "%interop invoke nothing.here --start"
        )
        assert "No notebook app runs" in kernel.usage_error(f"%interop apps stop {kernel_id}")
    finally:
        kernel.close()
    assert apps_by_path(server)["apps/chart.ipynb"]["running"] == []


@pytest.mark.parametrize("flavor", ["interopio", "glue42"])
def test_a_javascript_app_starts_a_notebook_through_gw3(server: LabServer, flavor: str) -> None:
    """``tests/compat/intents_peer.js`` with the real @interopio/core or @glue42/core asks the
    app directory's peer to start a notebook (``JupyterInterop.Apps.Start``), then raises the
    intent to the handler it registered; a broken notebook's failure reaches it as
    ``ErrorOnLaunch`` with the traceback."""
    env = server.interop_env()
    config = {
        "flavor": flavor,
        "url": env["JUPYTER_INTEROP_URL"],
        "token": env["JUPYTER_INTEROP_TOKEN"],
        "application": f"js-starter-{flavor}",
    }
    package = "@glue42/core" if flavor == "glue42" else "@interopio/core"
    peer_env = {**os.environ, "PEER_CONFIG": json.dumps(config), "COMPAT_DIR": str(COMPAT)}
    peer = NodeLinePeer(COMPAT / "intents_peer.js", peer_env, package)
    try:
        reply = peer.call("raiseStarting", timeout=120, intent="ViewChart", context=INSTRUMENT)
        assert reply["returned"]["type"] == "fdc3.chart"
        assert reply["returned"]["ticker"] == "AAPL" and reply["executedBy"] == "chart"
        assert reply["started"]["path"] == "apps/chart.ipynb"
        failed = peer.call("raiseStarting", timeout=120, intent="ViewBroken", context=INSTRUMENT)
        assert failed["fdc3Error"] == "ErrorOnLaunch"
        assert "ValueError: no chart today" in failed["context"]["traceback"]
    finally:
        peer.close()
    for running in apps_by_path(server)["apps/chart.ipynb"]["running"]:
        server.api(f"interop/api/apps/running/{running['kernel_id']}", "DELETE")
