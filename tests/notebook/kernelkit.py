"""Test kit for the notebook layer: a standalone hub subprocess and real IPython kernels.

Why real kernels: magics, widgets and output routing depend on ipykernel's threads, main loop
and parent headers, which an in-process IPython shell does not have. Kernels are started with
``jupyter_client`` and the hub's URL and token in their environment, like a kernel started by
a Jupyter server with the extension.

Every IOPub message is kept (``Kernel.iopub``), so a test can look for output that arrives
later under an earlier cell (a method handler printing under the cell that registered it).
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jupyter_client.manager import KernelManager, start_new_kernel

__all__ = ["Execution", "Hub", "Kernel", "KernelError", "isolated_env", "start_hub"]

_HUB_LINE = re.compile(r"Interop hub: (ws://\S+)")


class KernelError(AssertionError):
    """A cell raised (``ename``/``evalue`` are the kernel's), or a wait timed out."""

    def __init__(self, message: str, ename: str = "", evalue: str = "") -> None:
        super().__init__(message)
        self.ename = ename
        self.evalue = evalue


def isolated_env(base: Path) -> dict[str, str]:
    """The test process's environment with Jupyter and IPython dirs isolated under ``base``."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("JUPYTER_INTEROP_", "JPY_")) and k != "JUPYTER_PATH"
    }
    for name in ("config", "data", "runtime", "ipython"):
        (base / name).mkdir(parents=True, exist_ok=True)
    env["JUPYTER_CONFIG_DIR"] = str(base / "config")
    env["JUPYTER_DATA_DIR"] = str(base / "data")
    env["JUPYTER_RUNTIME_DIR"] = str(base / "runtime")
    env["IPYTHONDIR"] = str(base / "ipython")
    env["PYTHONUNBUFFERED"] = "1"
    return env


@dataclass
class Hub:
    """A standalone hub (``python -m jupyter_interop hub``) on a free loopback port."""

    url: str
    token: str
    process: subprocess.Popen[str]
    env: dict[str, str]

    def kernel_env(self) -> dict[str, str]:
        return {**self.env, "JUPYTER_INTEROP_URL": self.url, "JUPYTER_INTEROP_TOKEN": self.token}


@contextlib.contextmanager
def start_hub(base: Path, timeout: float = 30.0) -> Iterator[Hub]:
    env = isolated_env(base)
    cmd = [
        sys.executable,
        "-m",
        "jupyter_interop",
        "hub",
        "--port=0",
        "--StandaloneHubApp.persist_contexts=False",
    ]
    log = open(base / "hub.log", "w")  # noqa: SIM115 - closed in finally
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=log, text=True)
    try:
        lines: queue.Queue[str] = queue.Queue()

        def reader() -> None:
            assert proc.stdout is not None
            for line in proc.stdout:
                lines.put(line)

        import threading

        threading.Thread(target=reader, daemon=True).start()
        deadline = time.monotonic() + timeout
        url = None
        while url is None:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or proc.poll() is not None:
                raise RuntimeError(f"hub did not start: {(base / 'hub.log').read_text()[-2000:]}")
            with contextlib.suppress(queue.Empty):
                match = _HUB_LINE.search(lines.get(timeout=min(remaining, 0.5)))
                if match:
                    url = match.group(1)
        plain, _, query = url.partition("?")
        token = query.split("token=", 1)[1] if "token=" in query else ""
        yield Hub(url=plain, token=token, process=proc, env=env)
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
        log.close()


@dataclass
class Execution:
    """What one cell did: its IOPub messages, text, rich results and error."""

    msg_id: str
    messages: list[dict[str, Any]] = field(default_factory=list)
    reply: dict[str, Any] = field(default_factory=dict)

    @property
    def stdout(self) -> str:
        return "".join(
            m["content"]["text"]
            for m in self.messages
            if m["msg_type"] == "stream" and m["content"]["name"] == "stdout"
        )

    @property
    def stderr(self) -> str:
        return "".join(
            m["content"]["text"]
            for m in self.messages
            if m["msg_type"] == "stream" and m["content"]["name"] == "stderr"
        )

    @property
    def data(self) -> list[dict[str, Any]]:
        """The mime bundles of results and displays, in order."""
        return [
            m["content"]["data"]
            for m in self.messages
            if m["msg_type"] in ("execute_result", "display_data")
        ]

    @property
    def result(self) -> dict[str, Any] | None:
        for m in self.messages:
            if m["msg_type"] == "execute_result":
                return dict(m["content"]["data"])
        return None

    @property
    def text(self) -> str:
        """The cell's ``text/plain`` result (empty when there is none)."""
        return (self.result or {}).get("text/plain", "")

    @property
    def error(self) -> dict[str, Any] | None:
        for m in self.messages:
            if m["msg_type"] == "error":
                return dict(m["content"])
        return None


_ANSI = re.compile(r"\x1b\[[0-9;]*m")


class Kernel:
    """A python3 kernel with a blocking client; every IOPub message is recorded."""

    def __init__(self, env: dict[str, str], cwd: Path | None = None) -> None:
        self.km: KernelManager
        self.km, self.kc = start_new_kernel(
            kernel_name="python3", env=env, cwd=str(cwd) if cwd else None, startup_timeout=60
        )
        self.iopub: list[dict[str, Any]] = []

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.kc.stop_channels()
        self.km.shutdown_kernel(now=False)

    # -- IOPub

    def _drain(self, timeout: float) -> dict[str, Any] | None:
        try:
            msg = self.kc.get_iopub_msg(timeout=timeout)
        except queue.Empty:
            return None
        self.iopub.append(msg)
        return dict(msg)

    def messages_for(self, msg_id: str) -> list[dict[str, Any]]:
        return [m for m in self.iopub if m.get("parent_header", {}).get("msg_id") == msg_id]

    def wait_iopub(
        self, predicate: Callable[[list[dict[str, Any]]], bool], timeout: float = 15.0
    ) -> None:
        """Read IOPub until ``predicate(all messages so far)`` holds."""
        deadline = time.monotonic() + timeout
        while not predicate(self.iopub):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise KernelError(f"IOPub condition not met within {timeout}s")
            self._drain(min(remaining, 0.2))

    # -- execution

    def execute(self, code: str, timeout: float = 30.0) -> Execution:
        """Run ``code`` and wait until the kernel is idle again; never raises on cell errors."""
        msg_id = self.kc.execute(code)
        deadline = time.monotonic() + timeout
        idle = False
        while not idle:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise KernelError(f"cell did not finish within {timeout}s:\n{code}")
            msg = self._drain(min(remaining, 0.5))
            if msg is None:
                continue
            if (
                msg["parent_header"].get("msg_id") == msg_id
                and msg["msg_type"] == "status"
                and msg["content"]["execution_state"] == "idle"
            ):
                idle = True
        reply = self.kc.get_shell_msg(timeout=max(1.0, deadline - time.monotonic()))
        while reply["parent_header"].get("msg_id") != msg_id:
            reply = self.kc.get_shell_msg(timeout=max(1.0, deadline - time.monotonic()))
        return Execution(msg_id, self.messages_for(msg_id), dict(reply["content"]))

    def run(self, code: str, timeout: float = 30.0) -> Execution:
        """Run ``code``; a cell error fails the test with the kernel's traceback."""
        ex = self.execute(code, timeout)
        if ex.error:
            trace = _ANSI.sub("", "\n".join(ex.error.get("traceback", [])))
            raise KernelError(
                f"cell raised {ex.error['ename']}: {ex.error['evalue']}\n{code}\n{trace}",
                ex.error["ename"],
                ex.error["evalue"],
            )
        return ex

    def fails(self, code: str, timeout: float = 30.0) -> dict[str, Any]:
        """Run ``code`` that must raise; returns the error content (``ename``, ``evalue``)."""
        ex = self.execute(code, timeout)
        if not ex.error:
            raise KernelError(f"cell did not raise:\n{code}\nstdout: {ex.stdout}")
        return ex.error

    def usage_error(self, code: str, timeout: float = 30.0) -> str:
        """Run ``code`` that must fail with an IPython ``UsageError``; return its message.

        A UsageError prints one line on stderr, with no traceback, and leaves the kernel
        running; anything else (a traceback, success) fails the test.
        """
        ex = self.execute(code, timeout)
        if ex.error is not None:
            raise KernelError(
                f"expected a UsageError, got {ex.error['ename']}: {ex.error['evalue']}"
            )
        if ex.reply.get("status") != "error" or not ex.stderr.startswith("UsageError: "):
            raise KernelError(f"expected a UsageError from:\n{code}\nstderr: {ex.stderr!r}")
        return ex.stderr[len("UsageError: ") :].strip()

    def value(self, expr: str, timeout: float = 30.0) -> Any:
        """Evaluate ``expr`` in the kernel and return it (through JSON)."""
        ex = self.run(f"import json as _j; print(_j.dumps({expr}, default=str))", timeout)
        return json.loads(ex.stdout.strip().splitlines()[-1])

    def wait_value(self, expr: str, expected: Any, timeout: float = 15.0) -> Any:
        """Re-evaluate ``expr`` until it equals ``expected`` (remote updates are async)."""
        deadline = time.monotonic() + timeout
        last: Any = None
        while time.monotonic() < deadline:
            last = self.value(expr)
            if last == expected:
                return last
            time.sleep(0.05)
        raise KernelError(f"{expr} stayed {last!r}, expected {expected!r}")

    def send_comm_update(self, comm_id: str, state: dict[str, Any]) -> None:
        """Send a widget state update as JupyterLab does when the user moves a control."""
        content = {
            "comm_id": comm_id,
            "data": {"method": "update", "state": state, "buffer_paths": []},
        }
        msg = self.kc.session.msg("comm_msg", content)
        self.kc.shell_channel.send(msg)

    def click(self, model_id: str) -> None:
        """Click a Button widget as JupyterLab does (a custom ``click`` event)."""
        content = {
            "comm_id": model_id,
            "data": {"method": "custom", "content": {"event": "click"}},
        }
        self.kc.shell_channel.send(self.kc.session.msg("comm_msg", content))

    def comm_updates(self, model_id: str, since: int = 0) -> list[dict[str, Any]]:
        """State updates the kernel sent for a widget (IOPub ``comm_msg`` ``update``)."""
        return [
            m["content"]["data"]["state"]
            for m in self.iopub[since:]
            if m["msg_type"] == "comm_msg"
            and m["content"].get("comm_id") == model_id
            and m["content"].get("data", {}).get("method") == "update"
        ]
