"""Processes the benchmarks start on loopback: the hub, a Jupyter server, nats-server,
redis-server and the benchmark's own worker processes.

Everything started here is tracked by a :class:`ProcessGroup` and stopped (by pid, SIGTERM
then SIGKILL) when the run ends, whatever happened. Ports are picked free on 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = [
    "NODE_WORKER",
    "PYTHON_WORKER",
    "Hub",
    "JupyterServer",
    "NatsServer",
    "ProcessGroup",
    "RedisServer",
    "Worker",
    "free_port",
]

REPO = Path(__file__).resolve().parent.parent
#: marker of the JSON lines a worker writes on stdout (library noise is ignored)
MARK = "@@bench "
#: the worker programs, run as ``PROGRAM ROLE '<json params>'``: Python's roles
#: (``worker.py``, ``ji_roles.py``) and Node's (``node/worker.js``: @interopio/core, nats.js)
PYTHON_WORKER = (sys.executable, "-m", "benchmarks.worker")
NODE_WORKER = ("node", str(REPO / "benchmarks" / "node" / "worker.js"))


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _stop_popen(proc: subprocess.Popen[Any] | asyncio.subprocess.Process, grace: float) -> None:
    """SIGTERM, wait up to ``grace`` seconds, then SIGKILL (this process only, by pid)."""
    if proc.returncode is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(proc.pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        try:
            pid, _ = os.waitpid(proc.pid, os.WNOHANG)
        except ChildProcessError:
            return
        if pid:
            return
        time.sleep(0.02)
    with contextlib.suppress(ProcessLookupError):
        os.kill(proc.pid, signal.SIGKILL)
    with contextlib.suppress(ChildProcessError):
        os.waitpid(proc.pid, 0)


class ProcessGroup:
    """Owns every process of a run and a scratch directory; ``close()`` stops them all."""

    def __init__(self) -> None:
        self.tmp = Path(tempfile.mkdtemp(prefix="ji-bench-"))
        self._procs: list[Any] = []
        self.env = dict(os.environ)
        # runtime files and Jupyter state go to the scratch dir, not the user's
        self.env["JUPYTER_RUNTIME_DIR"] = str(self.tmp / "runtime")
        self.env["JUPYTER_DATA_DIR"] = str(self.tmp / "data")
        self.env["JUPYTER_CONFIG_DIR"] = str(self.tmp / "config")
        self.env["IPYTHONDIR"] = str(self.tmp / "ipython")
        self.env["PYTHONUNBUFFERED"] = "1"
        self.env["PYTHONPATH"] = os.pathsep.join(
            p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p
        )
        for name in ("JUPYTER_INTEROP_URL", "JUPYTER_INTEROP_TOKEN"):
            self.env.pop(name, None)

    def track(self, proc: Any) -> Any:
        self._procs.append(proc)
        return proc

    def close(self) -> None:
        for proc in reversed(self._procs):
            with contextlib.suppress(Exception):
                _stop_popen(proc, 3.0)
        self._procs.clear()
        shutil.rmtree(self.tmp, ignore_errors=True)


def _wait_port(port: int, timeout: float = 15.0, proc: Any = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"the process for port {port} exited with {proc.returncode}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port} after {timeout} s")


class Hub:
    """``python -m jupyter_interop hub`` on a free loopback port."""

    def __init__(
        self, group: ProcessGroup, token: str = "bench-token", args: Sequence[str] = ()
    ) -> None:
        """``args``: more command-line options for the hub (``--persist`` ...)."""
        self.token = token
        log = open(group.tmp / "hub.log", "wb")  # noqa: SIM115 - closed with the process
        self.proc = group.track(
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "jupyter_interop",
                    "hub",
                    "--port=0",
                    f"--token={token}",
                    "--log-level=WARN",
                    "--StandaloneHubApp.write_runtime_file=False",
                    *args,
                ],
                stdout=subprocess.PIPE,
                stderr=log,
                env=group.env,
                cwd=group.tmp,
            )
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline().decode().strip()
        if not line.startswith("Interop hub: "):
            raise RuntimeError(f"hub did not start: {line!r} (see {group.tmp / 'hub.log'})")
        self.url_with_token = line.split(": ", 1)[1]
        self.url = self.url_with_token.split("?", 1)[0]
        self.pid = self.proc.pid

    def stop(self) -> None:
        _stop_popen(self.proc, 5.0)


class JupyterServer:
    """``jupyter server`` with the jupyter_interop extension, on a free loopback port.

    The hub's URL and token come from the runtime file the extension writes.
    """

    def __init__(self, group: ProcessGroup) -> None:
        port = free_port()
        self.jupyter_token = "bench-jupyter"
        log = open(group.tmp / "jupyter.log", "wb")  # noqa: SIM115 - closed with the process
        root = group.tmp / "notebooks"
        root.mkdir(exist_ok=True)
        self.proc = group.track(
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "jupyter_server",
                    "--no-browser",
                    "--ServerApp.ip=127.0.0.1",
                    f"--ServerApp.port={port}",
                    "--ServerApp.port_retries=0",
                    f"--IdentityProvider.token={self.jupyter_token}",
                    f"--ServerApp.root_dir={root}",
                    "--ServerApp.jpserver_extensions={'jupyter_interop': True}",
                    "--ServerApp.log_level=WARN",
                    "--ServerApp.allow_root=True",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=group.env,
                cwd=group.tmp,
            )
        )
        self.pid = self.proc.pid
        _wait_port(port, 60.0, self.proc)
        runtime = Path(group.env["JUPYTER_RUNTIME_DIR"]) / f"jupyter_interop-{self.pid}.json"
        deadline = time.monotonic() + 30
        while not runtime.exists():
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise RuntimeError(f"no interop runtime file from the Jupyter server: {runtime}")
            time.sleep(0.05)
        info = json.loads(runtime.read_text())
        self.url = info["url"]
        self.token = info["token"]
        self.url_with_token = f"{self.url}?token={self.token}"

    def stop(self) -> None:
        _stop_popen(self.proc, 10.0)


class NatsServer:
    """Debian's ``nats-server`` on a free loopback port (max payload raised for 1 MiB).

    ``jetstream=True``: with JetStream (its files in the run's scratch dir) and a max payload
    of 32 MiB, for whole large values in a key-value bucket."""

    def __init__(self, group: ProcessGroup, jetstream: bool = False) -> None:
        exe = shutil.which("nats-server")
        if exe is None:
            raise RuntimeError("nats-server not found: run scripts/setup.sh (apt nats-server)")
        self.port = free_port()
        name = f"nats-{self.port}"
        conf = group.tmp / f"{name}.conf"
        max_payload = (32 if jetstream else 8) * 2**20
        text = f"listen: 127.0.0.1:{self.port}\nmax_payload: {max_payload}\n"
        if jetstream:
            text += f'jetstream {{\n  store_dir: "{group.tmp / name}"\n}}\n'
        conf.write_text(text)
        self.proc = group.track(
            subprocess.Popen(
                [exe, "-c", str(conf)],
                stdout=subprocess.DEVNULL,
                stderr=open(group.tmp / f"{name}.log", "wb"),  # noqa: SIM115
            )
        )
        self.pid = self.proc.pid
        self.url = f"nats://127.0.0.1:{self.port}"
        _wait_port(self.port)


class RedisServer:
    """Debian's ``redis-server`` on a free loopback port, no persistence."""

    def __init__(self, group: ProcessGroup) -> None:
        exe = shutil.which("redis-server")
        if exe is None:
            raise RuntimeError("redis-server not found: run scripts/setup.sh (apt redis-server)")
        self.port = free_port()
        self.proc = group.track(
            subprocess.Popen(
                [
                    exe,
                    "--port",
                    str(self.port),
                    "--bind",
                    "127.0.0.1",
                    "--save",
                    "",
                    "--appendonly",
                    "no",
                    "--dir",
                    str(group.tmp),
                    "--client-output-buffer-limit",
                    "pubsub 0 0 0",
                ],
                stdout=open(group.tmp / "redis.log", "wb"),  # noqa: SIM115
                stderr=subprocess.STDOUT,
            )
        )
        self.pid = self.proc.pid
        self.url = f"redis://127.0.0.1:{self.port}/0"
        _wait_port(self.port)


class Worker:
    """A benchmark worker process (``python -m benchmarks.worker ROLE``) driven by JSON lines.

    The worker writes ``@@bench {...}`` lines on stdout; the coordinator writes one JSON
    command per line on its stdin. Each command gets exactly one reply line.
    """

    def __init__(self, proc: asyncio.subprocess.Process, role: str) -> None:
        self.proc = proc
        self.role = role
        self.pid = proc.pid
        self._lines: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._reader = asyncio.ensure_future(self._read())
        self.info: dict[str, Any] = {}

    @classmethod
    async def start(
        cls,
        group: ProcessGroup,
        role: str,
        timeout: float = 60.0,
        program: Sequence[str] = PYTHON_WORKER,
        **params: Any,
    ) -> Worker:
        """``program ROLE '<json params>'``: a Python worker, or ``NODE_WORKER``."""
        proc = await asyncio.create_subprocess_exec(
            *program,
            role,
            json.dumps(params),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=open(group.tmp / f"worker-{role}.log", "ab"),  # noqa: SIM115
            env=group.env,
            cwd=str(REPO),
            limit=64 * 1024 * 1024,
        )
        group.track(proc)
        worker = cls(proc, role)
        worker.info = await worker.next(timeout)
        if worker.info.get("error"):
            raise RuntimeError(f"worker {role} failed to start: {worker.info['error']}")
        return worker

    async def _read(self) -> None:
        assert self.proc.stdout is not None
        while True:
            raw = await self.proc.stdout.readline()
            if not raw:
                await self._lines.put({"error": f"worker {self.role} exited"})
                return
            line = raw.decode(errors="replace")
            i = line.find(MARK)
            if i >= 0:
                await self._lines.put(json.loads(line[i + len(MARK) :]))

    async def next(self, timeout: float = 120.0) -> dict[str, Any]:
        try:
            return await asyncio.wait_for(self._lines.get(), timeout)
        except asyncio.TimeoutError:
            raise RuntimeError(f"worker {self.role} did not answer in {timeout} s") from None

    async def send(self, **command: Any) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write((json.dumps(command) + "\n").encode())
        await self.proc.stdin.drain()

    async def ask(self, timeout: float = 120.0, **command: Any) -> dict[str, Any]:
        await self.send(**command)
        reply = await self.next(timeout)
        if reply.get("error"):
            raise RuntimeError(f"worker {self.role}: {reply['error']}")
        return reply

    async def stop(self) -> None:
        if self.proc.returncode is None:
            with contextlib.suppress(Exception):
                await self.send(cmd="quit")
            try:
                await asyncio.wait_for(self.proc.wait(), 5)
            except asyncio.TimeoutError:
                _stop_popen(self.proc, 2.0)
        self._reader.cancel()
