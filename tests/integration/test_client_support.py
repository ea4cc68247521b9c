"""Support for the client's integration tests: real hubs, real servers, real kernels.

No mocks: a standalone hub is ``python -m jupyter_interop hub`` in a subprocess, the Jupyter
server is ``jupyter server`` with the extension, kernels are started by that server. Every wait
is bounded. (This module holds helpers only; pytest finds no tests in it.)
"""

from __future__ import annotations

import json
import os
import queue
import re
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jupyter_client.blocking.client import BlockingKernelClient

import jupyter_interop as ji

BANNER = re.compile(r"Interop hub: (ws://\S+)")
REPO = Path(__file__).resolve().parents[2]


def wait_for(predicate: Callable[[], Any], timeout: float = 10.0, what: str = "condition") -> Any:
    """Poll ``predicate`` until it returns a truthy value; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.02)


#: ``api(method, path, body=None)``: a server's REST API with its token
ServerApi = Callable[..., Any]


def server_kernel_client(
    api: ServerApi, runtime_dir: Path, kernel_id: str, timeout: float = 120
) -> BlockingKernelClient:
    """A started client of a kernel the Jupyter server launched, once it answers.

    Why the retry: ``wait_for_ready`` declares a kernel dead when its heartbeat has not
    answered within about a second, and a kernel still importing (a loaded machine, coverage
    in subprocesses) has not. The kernel is dead only when the server no longer lists it."""
    client = BlockingKernelClient(connection_file=str(runtime_dir / f"kernel-{kernel_id}.json"))
    client.load_connection_file()
    client.start_channels()
    deadline = time.monotonic() + timeout
    while True:
        try:
            client.wait_for_ready(timeout=max(1.0, deadline - time.monotonic()))
            return client
        except RuntimeError:
            if time.monotonic() > deadline:
                raise
            api("GET", f"/api/kernels/{kernel_id}")  # HTTP 404 when it really died
            time.sleep(0.2)


def jupyter_server_command(port: int, root: Path, *extra: str) -> list[str]:
    """``jupyter server`` on a loopback ``port`` serving ``root``, with the interop extension
    enabled on the command line (the test env's editable install places no config file)."""
    return [
        sys.executable,
        "-m",
        "jupyter_server",
        "--ServerApp.ip=127.0.0.1",
        f"--ServerApp.port={port}",
        "--ServerApp.port_retries=0",
        "--ServerApp.open_browser=False",
        "--allow-root",
        f"--ServerApp.root_dir={root}",
        "--ServerApp.jpserver_extensions={'jupyter_interop': True}",
        *extra,
    ]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def isolated_env(tmp: Path) -> dict[str, str]:
    """An environment whose Jupyter dirs are under ``tmp`` (runtime files, data, config)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JUPYTER_INTEROP_", "JPY_"))}
    for name in ("runtime", "data", "config"):
        (tmp / name).mkdir(parents=True, exist_ok=True)
    env.update(
        JUPYTER_RUNTIME_DIR=str(tmp / "runtime"),
        JUPYTER_DATA_DIR=str(tmp / "data"),
        JUPYTER_CONFIG_DIR=str(tmp / "config"),
        JUPYTER_PLATFORM_DIRS="1",
        PYTHONUNBUFFERED="1",
    )
    for proxy in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY"):
        env.pop(proxy, None)
    env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1,localhost"
    return env


@dataclass
class StandaloneHub:
    """A ``python -m jupyter_interop hub`` process; :meth:`restart` keeps port and token."""

    tmp: Path
    port: int
    token: str = field(default_factory=lambda: secrets.token_urlsafe(12))
    proc: subprocess.Popen[str] | None = None
    output: list[str] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/interop/gateway"

    def start(self, timeout: float = 20.0) -> None:
        env = isolated_env(self.tmp)
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "jupyter_interop",
                "hub",
                f"--port={self.port}",
                f"--token={self.token}",  # one argument: a token may start with "-"
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=env,
            cwd=str(REPO),
        )
        lines: queue.Queue[str] = queue.Queue()
        proc = self.proc

        def pump() -> None:
            assert proc.stdout is not None
            for line in proc.stdout:
                self.output.append(line.rstrip())
                lines.put(line)

        threading.Thread(target=pump, daemon=True).start()
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = lines.get(timeout=max(0.01, deadline - time.monotonic()))
            except queue.Empty:
                self.stop()
                raise AssertionError(f"hub did not start: {self.output[-20:]}") from None
            if BANNER.search(line):
                return

    def stop(self) -> None:
        proc = self.proc
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)

    def kill(self) -> None:
        """Abrupt death (no close frames): what a crash looks like to the clients."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)

    def restart(self) -> None:
        self.stop()
        self.start()

    def view(self, name: str) -> Any:
        url = f"http://127.0.0.1:{self.port}/interop/api/{name}?token={self.token}"
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        with opener.open(url, timeout=5) as response:
            return json.loads(response.read())


@contextmanager
def standalone_hub(tmp: Path) -> Iterator[StandaloneHub]:
    hub = StandaloneHub(tmp, free_port())
    hub.start()
    try:
        yield hub
    finally:
        hub.stop()


class Clients:
    """Opens clients against a hub and closes them all at the end of a test."""

    def __init__(self, hub: StandaloneHub) -> None:
        self.hub = hub
        self.opened: list[ji.Interop] = []

    def __call__(self, application: str, **settings: Any) -> ji.Interop:
        client = ji.connect(self.hub.url, self.hub.token, application, new=True, **settings)
        self.opened.append(client)
        return client

    def close(self) -> None:
        for client in self.opened:
            client.close()


class Recorder:
    """A thread-safe callback that records its calls (for event assertions)."""

    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []
        self.threads: list[str] = []
        self._lock = threading.Lock()

    def __call__(self, *args: Any) -> None:
        with self._lock:
            self.calls.append(args)
            self.threads.append(threading.current_thread().name)

    def wait(self, count: int = 1, timeout: float = 10.0) -> list[tuple[Any, ...]]:
        wait_for(lambda: len(self.calls) >= count, timeout, f"{count} callback call(s)")
        with self._lock:
            return list(self.calls)

    @property
    def firsts(self) -> list[Any]:
        with self._lock:
            return [c[0] for c in self.calls]


def assert_same(got: Any, expected: Any) -> None:
    """``got`` equals ``expected``: a DataFrame, an ndarray (same dtype) or a plain value."""
    import numpy as np
    import pandas as pd

    if isinstance(expected, pd.DataFrame):
        pd.testing.assert_frame_equal(got, expected)
    elif isinstance(expected, np.ndarray):
        assert isinstance(got, np.ndarray) and got.dtype == expected.dtype
        np.testing.assert_array_equal(got, expected)
    else:
        assert got == expected
