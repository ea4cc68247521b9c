"""Two (and three) real notebook kernels attached to a real Jupyter server with the extension.

The server is ``jupyter server`` in a subprocess with its Jupyter dirs under a temporary
directory; kernels are started through the sessions API (so the hub can map each kernel to its
notebook path) and driven with jupyter_client, exactly as a notebook frontend would.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import textwrap
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from jupyter_client.blocking.client import BlockingKernelClient
from test_client_support import (
    free_port,
    isolated_env,
    jupyter_server_command,
    server_kernel_client,
    wait_for,
)

import jupyter_interop as ji


@dataclass
class Server:
    proc: subprocess.Popen[bytes]
    port: int
    token: str
    tmp: Path
    root: Path

    def api(self, method: str, path: str, body: Any = None) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.port}{path}",
            data=data,
            method=method,
            headers={"Authorization": f"token {self.token}", "Content-Type": "application/json"},
        )
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        with opener.open(request, timeout=30) as response:
            raw = response.read()
        return json.loads(raw) if raw else None

    def runtime_file(self) -> dict[str, Any]:
        path = self.tmp / "runtime" / f"jupyter_interop-{self.proc.pid}.json"
        return dict(json.loads(path.read_text()))


@dataclass
class Kernel:
    kernel_id: str
    path: str
    client: BlockingKernelClient

    def run(self, code: str, timeout: float = 60) -> str:
        """Execute a cell; return its stdout; fail with the traceback on an error."""
        out: list[str] = []
        errors: list[str] = []

        def hook(msg: dict[str, Any]) -> None:
            kind = msg["msg_type"]
            if kind == "stream":
                out.append(msg["content"]["text"])
            elif kind == "error":
                errors.append("\n".join(msg["content"]["traceback"]))

        reply = self.client.execute_interactive(
            textwrap.dedent(code), timeout=timeout, output_hook=hook
        )
        if reply["content"]["status"] != "ok" or errors:
            raise AssertionError(f"cell failed in {self.path}:\n" + "\n".join(errors))
        self.last_msg_id = reply["parent_header"]["msg_id"]
        return "".join(out)

    def json(self, code: str, timeout: float = 60) -> Any:
        """Execute a cell whose last printed line is JSON; return it decoded."""
        lines = self.run(code, timeout).strip().splitlines()
        return json.loads(lines[-1])


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    tmp = tmp_path_factory.mktemp("jupyter")
    env = isolated_env(tmp)
    root = tmp / "notebooks"
    (root / "work").mkdir(parents=True)
    (tmp / "config" / "jupyter_server_config.json").write_text(
        json.dumps({"ServerApp": {"jpserver_extensions": {"jupyter_interop": True}}})
    )
    port, token = free_port(), secrets.token_hex(16)
    log = open(tmp / "server.log", "wb")  # noqa: SIM115 - closed at teardown
    proc = subprocess.Popen(
        jupyter_server_command(
            port,
            root,
            f"--IdentityProvider.token={token}",
            "--InteropExtension.persist_contexts=False",
        ),
        env=env,
        cwd=str(root),
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    server = Server(proc, port, token, tmp, root)
    try:

        def up() -> bool:
            if proc.poll() is not None:
                raise AssertionError((tmp / "server.log").read_text())
            try:
                server.api("GET", "/api/status")
                return (tmp / "runtime" / f"jupyter_interop-{proc.pid}.json").exists()
            except OSError:
                return False

        wait_for(up, 60, "the Jupyter server and its interop hub")
        yield server
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
        log.close()


def start_kernel(server: Server, name: str, connect: bool = True) -> Kernel:
    path = f"work/{name}.ipynb"
    (server.root / path).write_text(
        json.dumps({"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5})
    )
    session = server.api(
        "POST",
        "/api/sessions",
        {"path": path, "name": f"{name}.ipynb", "type": "notebook", "kernel": {"name": "python3"}},
    )
    kernel_id = session["kernel"]["id"]
    client = server_kernel_client(server.api, server.tmp / "runtime", kernel_id)
    kernel = Kernel(kernel_id, path, client)
    if connect:
        kernel.run("import json, threading, time\nimport jupyter_interop as ji\nio = ji.connect()")
    return kernel


@pytest.fixture(scope="module")
def alpha(server: Server) -> Iterator[Kernel]:
    kernel = start_kernel(server, "alpha")
    yield kernel
    kernel.client.stop_channels()


@pytest.fixture(scope="module")
def beta(server: Server) -> Iterator[Kernel]:
    kernel = start_kernel(server, "beta")
    yield kernel
    kernel.client.stop_channels()


def test_discovery_from_the_environment_and_identity_from_the_session(
    server: Server, alpha: Kernel
) -> None:
    info = alpha.json(
        """
        import os
        print(json.dumps({
            "env_url": os.environ["JUPYTER_INTEROP_URL"], "url": io.url,
            "app": io.instance.application, "path": io.instance.notebook_path,
            "kernel": io.instance.kernel_id, "connected": io.connected,
        }))
        """
    )
    assert info["url"] == info["env_url"] == server.runtime_file()["url"]
    assert info["app"] == "alpha"
    assert info["path"] == alpha.path
    assert info["kernel"] == alpha.kernel_id
    assert info["connected"] is True
    peers = server.api("GET", "/interop/api/peers")
    paths = {p["identity"].get("notebookPath") for p in peers}
    assert alpha.path in paths


def test_every_service_end_to_end_between_two_kernels(alpha: Kernel, beta: Kernel) -> None:
    alpha.run(
        """
        @io.methods.register("Pricing.Quote")
        def quote(symbol: str, qty: int = 1):
            return {"symbol": symbol, "px": 101.5 * qty}

        def on_request(request):
            request.accept_on_branch(request.arguments["symbol"])

        prices = io.streams.create("Prices", on_subscription_request=on_request)
        io.channels.join("Red")
        """
    )
    result = beta.json(
        """
        r = io.methods.invoke("Pricing.Quote", {"symbol": "AAPL", "qty": 2}, timeout=10)
        got = {"stream": [], "context": [], "channel": [], "bus": []}
        sub = io.streams.subscribe("Prices", {"symbol": "AAPL"},
                                   on_data=lambda d: got["stream"].append(d.data))
        def on_context(data, delta, removed, meta):
            updater = meta.updater and meta.updater.notebook_path
            got["context"].append([data, meta.version, updater])
        io.contexts.subscribe("client", on_context)
        io.channels.join("Red")
        io.channels.subscribe(
            lambda data, channel, meta: got["channel"].append([channel.name, data]))
        io.bus.subscribe("md.eq.*", lambda data, topic, source:
            got["bus"].append([topic, data, source.notebook_path]))
        print(json.dumps({"returned": r.returned, "by": r.executed_by.notebook_path,
                          "app": r.executed_by.application}))
        """
    )
    assert result == {
        "returned": {"symbol": "AAPL", "px": 203.0},
        "by": alpha.path,
        "app": "alpha",
    }
    alpha.run(
        """
        wait = time.monotonic() + 10
        while not prices.subscriptions() and time.monotonic() < wait:
            time.sleep(0.02)
        prices.push({"AAPL": 190.1}, branch="AAPL")
        prices.push({"MSFT": 1.0}, branch="MSFT")
        io.contexts.update("client", {"name": "Acme", "tier": "gold"})
        io.contexts.set_path("client", "address.city", "Paris")
        io.channels.publish({"symbol": "AAPL"})
        io.bus.publish("md.eq.AAPL", {"px": 190.1})
        """
    )
    got = beta.json(
        """
        wait = time.monotonic() + 10
        while time.monotonic() < wait and not (got["stream"] and len(got["context"]) >= 2
                and any(c[1] == {"symbol": "AAPL"} for c in got["channel"]) and got["bus"]):
            time.sleep(0.02)
        print(json.dumps(got))
        """
    )
    assert got["stream"] == [{"AAPL": 190.1}]
    assert got["context"][-1] == [
        {"name": "Acme", "tier": "gold", "address": {"city": "Paris"}},
        1,
        alpha.path,
    ]
    assert got["channel"][-1] == ["Red", {"symbol": "AAPL"}]
    assert got["bus"] == [["md.eq.AAPL", {"px": 190.1}, alpha.path]]


def test_top_level_await_twins_in_a_cell(alpha: Kernel, beta: Kernel) -> None:
    alpha.run('io.methods.register("Twin.Add", lambda a, b: a + b)')
    value = beta.json(
        """
        r = await io.methods.ainvoke("Twin.Add", {"a": 2, "b": 3})
        await io.contexts.aset("twin", {"v": r.returned})
        print(json.dumps([r.returned, await io.contexts.aget("twin")]))
        """
    )
    assert value == [5, {"v": 5}]


def test_a_busy_cell_does_not_stop_a_notebook_from_answering(alpha: Kernel, beta: Kernel) -> None:
    alpha.run(
        """
        @io.methods.register("Busy.Ping")
        def ping():
            print("ping served")  # goes to this cell, not to the busy one
            return threading.current_thread().name
        """
    )
    registration = alpha.last_msg_id
    busy = alpha.client.execute("import time; time.sleep(6)")  # a long cell, not awaited
    time.sleep(0.5)
    answer = beta.json(
        """
        t = time.monotonic()
        r = io.methods.invoke("Busy.Ping", timeout=5)
        print(json.dumps([r.returned, time.monotonic() - t]))
        """
    )
    assert answer[0].startswith("interop-handler") and answer[1] < 2.0
    routed = None
    deadline = time.monotonic() + 15
    idle = False
    while time.monotonic() < deadline and not (routed and idle):
        msg = alpha.client.get_iopub_msg(timeout=10)
        parent = msg["parent_header"].get("msg_id")
        if msg["msg_type"] == "stream" and "ping served" in msg["content"]["text"]:
            routed = parent
        if parent == busy and msg["msg_type"] == "status":
            idle = msg["content"]["execution_state"] == "idle"
    assert routed == registration  # the handler's print went to the registering cell
    assert idle


def test_killed_kernel_peer_removed_and_pending_invoke_fails_fast(
    server: Server, beta: Kernel
) -> None:
    gamma = start_kernel(server, "gamma")
    try:
        pid = gamma.json(
            """
            import os
            io.methods.register("Gamma.Slow", lambda: time.sleep(60))
            print(json.dumps(os.getpid()))
            """
        )
        beta.run(
            """
            events = {}
            def removed(instance, reason):
                if instance.application == "gamma":
                    events["removed"] = [time.time(), reason]
            io.methods.on_server_removed(removed)
            def call():
                try:
                    io.methods.invoke("Gamma.Slow", timeout=60)
                except ji.InteropError as e:
                    events["failed"] = [time.time(), type(e).__name__, str(e)]
            threading.Thread(target=call, daemon=True).start()
            time.sleep(0.5)
            """
        )
        killed = time.time()
        os.kill(pid, signal.SIGKILL)
        events = beta.json(
            """
            wait = time.monotonic() + 10
            while len(events) < 2 and time.monotonic() < wait:
                time.sleep(0.01)
            print(json.dumps(events))
            """
        )
        assert events["failed"][1] == "InvocationError"
        assert events["failed"][2] == "Peer has left while waiting for result"
        assert events["failed"][0] - killed < 1.0
        assert events["removed"][1] == "Peer has been removed"
        assert events["removed"][0] - killed < 1.0
    finally:
        gamma.client.stop_channels()


def test_a_million_row_dataframe_shared_through_a_context(alpha: Kernel, beta: Kernel) -> None:
    """Binary frames (Arrow IPC) between kernels: the frame arrives equal, dtypes and index."""
    make = """
        import numpy as np, pandas as pd
        rows = 1_000_000
        big = pd.DataFrame(
            {
                "i": np.arange(rows, dtype="int64"),
                "px": np.linspace(100.0, 200.0, rows),
                "sym": [f"S{i % 500}" for i in range(rows)],
                "t": pd.date_range("2024-01-01", periods=rows, freq="s"),
            },
            index=pd.RangeIndex(rows, name="row"),
        )
    """
    beta.run(
        make.rstrip()
        + """
        received = []
        io.contexts.subscribe("analysis", lambda data, delta, removed, meta:
                              received.append((data, meta)))
        """
    )
    alpha.run(make.rstrip() + '\n        io.contexts.set("analysis", {"df": big})\n')
    result = beta.json(
        """
        wait = time.monotonic() + 60
        while not received and time.monotonic() < wait:
            time.sleep(0.01)
        data, meta = received[-1]
        pd.testing.assert_frame_equal(data["df"], big)
        print(json.dumps({"rows": len(data["df"]), "updater": meta.updater.notebook_path,
                          "binary": io._conn.extensions.get("binary", False)}))
        """,
        timeout=120,
    )
    assert result == {"rows": 1_000_000, "updater": alpha.path, "binary": True}


def test_a_script_finds_the_server_hub_through_the_runtime_file(
    server: Server, alpha: Kernel
) -> None:
    alpha.run('io.methods.register("Script.Hello", lambda name: f"hello {name}")')
    env = isolated_env(server.tmp)
    script = (
        "import json, jupyter_interop as ji\n"
        "io = ji.connect(application='script')\n"
        "r = io.methods.invoke('Script.Hello', {'name': 'script'})\n"
        "print(json.dumps([r.returned, r.executed_by.notebook_path, io.url]))\n"
        "io.close()\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout.strip().splitlines()[-1]) == [
        "hello script",
        alpha.path,
        server.runtime_file()["url"],
    ]


def test_client_in_the_test_process_sees_the_notebooks(server: Server, alpha: Kernel) -> None:
    runtime = server.runtime_file()
    io = ji.connect(runtime["url"], runtime["token"], "observer", new=True)
    try:
        wait_for(lambda: any(s.notebook_path == alpha.path for s in io.methods.servers()))
        alpha.run('io.channels.join("Cyan")')
        wait_for(lambda: io.channels.members().get("Cyan") is not None, what="membership")
        io.channels.move(
            next(s for s in io.methods.servers() if s.notebook_path == alpha.path), "Lime"
        )
        assert (
            alpha.json(
                """
            wait = time.monotonic() + 5
            while io.channels.current != "Lime" and time.monotonic() < wait:
                time.sleep(0.02)
            print(json.dumps(io.channels.current))
            """
            )
            == "Lime"
        )
    finally:
        io.close()


def test_the_lab_shell_joins_a_kernel_that_never_used_interop(server: Server) -> None:
    """The statement the channel chip runs in a kernel (``docs/LAB.md``): it connects the
    notebook's one client, joins, and reports the channel; an unknown channel raises."""
    kernel = start_kernel(server, "gamma", connect=False)
    try:

        def gamma() -> dict[str, Any] | None:
            peers = server.api("GET", "/interop/api/peers")
            return next(
                (p for p in peers if p["identity"].get("kernelId") == kernel.kernel_id), None
            )

        assert gamma() is None
        shell = "import json\nimport jupyter_interop.notebook.shell as _ji_shell\n"
        assert kernel.json(shell + "print(json.dumps(_ji_shell.join_channel('Red')))") == "Red"
        peer = wait_for(lambda: (p := gamma()) and p["channel"] == "Red" and p, 10, "gamma on Red")
        assert peer["identity"]["application"] == "gamma"
        # the same peer as the magics and widgets use: joining again moves it, no second peer
        kernel.run("%load_ext jupyter_interop\n%interop channel join Blue")
        wait_for(lambda: (p := gamma()) and p["channel"] == "Blue", 10, "gamma on Blue")
        peers = server.api("GET", "/interop/api/peers")
        assert sum(p["identity"].get("kernelId") == kernel.kernel_id for p in peers) == 1
        with pytest.raises(AssertionError, match="Unknown channel 'Mauve'"):
            kernel.run(shell + "_ji_shell.join_channel('Mauve')")
        assert kernel.json(shell + "print(json.dumps(_ji_shell.join_channel(None)))") is None
        wait_for(lambda: (p := gamma()) and p["channel"] is None, 10, "gamma off channels")
    finally:
        kernel.client.stop_channels()
