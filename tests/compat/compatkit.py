"""Helpers of the JS client compat suite: Node checks, a standalone hub process, scenario runs.

The hub is started as ``python -m jupyter_interop hub --port 0 --token T``; it prints one line
``Interop hub: ws://HOST:PORT/interop/gateway?token=T`` when it is ready and stops on SIGTERM.
To run the scenarios against another gateway (for example to check a scenario itself against a
reference implementation), set ``INTEROP_COMPAT_HUB`` to a command prefix; ``--port 0 --token T``
is appended and the same banner line is expected (the channels scenario also needs the hub's
default colour channels).
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shlex
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest

COMPAT_DIR = Path(__file__).resolve().parent
REPO_ROOT = COMPAT_DIR.parent.parent
PACKAGES = ("@interopio/core", "@glue42/core")
BANNER = re.compile(r"(?:Interop hub|Glue42 gateway): (ws://\S+)")
INSTALL_HINT = "run `npm ci --prefix tests/compat` (needs Node.js >= 18 and npm)"


def node_executable() -> str:
    """Path of `node`, or fail (not skip) the test with the install hint."""
    node = shutil.which("node")
    if node is None:
        pytest.fail(f"`node` is not on PATH: install Node.js, then {INSTALL_HINT}", pytrace=False)
    missing = [
        p for p in PACKAGES if not (COMPAT_DIR / "node_modules" / p / "package.json").is_file()
    ]
    if missing:
        pytest.fail(
            f"tests/compat/node_modules lacks {', '.join(missing)}: {INSTALL_HINT}", pytrace=False
        )
    return node


@dataclass
class Hub:
    """A running hub process and what it printed."""

    proc: subprocess.Popen[str]
    url: str
    token: str
    output: list[str] = field(default_factory=list)

    def tail(self, n: int = 40) -> str:
        return "\n".join(self.output[-n:])

    def mark(self) -> int:
        return len(self.output)

    def since(self, mark: int, n: int = 40) -> str:
        """What the hub printed after ``mark`` (at most the last ``n`` lines)."""
        return "\n".join(self.output[mark:][-n:])

    def alive(self) -> bool:
        return self.proc.poll() is None


def _hub_command(token: str) -> list[str]:
    prefix = os.environ.get("INTEROP_COMPAT_HUB")
    base = shlex.split(prefix) if prefix else [sys.executable, "-m", "jupyter_interop", "hub"]
    return [*base, "--port", "0", "--token", token]


def _pump(stream, sink: list[str], banner: list[str], ready: threading.Event) -> None:
    for line in stream:
        line = line.rstrip("\n")
        sink.append(line)
        if not ready.is_set():
            m = BANNER.search(line)
            if m:
                banner.append(m.group(1))
                ready.set()
    ready.set()  # EOF: the process ended (or closed its output) without a banner


@contextmanager
def running_hub() -> Iterator[Hub]:
    """Start the hub, wait for its banner, stop it (SIGTERM) on exit."""
    token = secrets.token_urlsafe(12)
    cmd = _hub_command(token)
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        cmd,
        cwd=REPO_ROOT,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    output: list[str] = []
    banner: list[str] = []
    ready = threading.Event()
    threading.Thread(target=_pump, args=(proc.stdout, output, banner, ready), daemon=True).start()
    ready.wait(30)
    if not banner:
        proc.kill()
        proc.wait(5)
        pytest.fail(
            f"hub did not print its 'Interop hub: ws://...' line within 30 s "
            f"(exit code {proc.poll()}); command: {shlex.join(cmd)}\n" + "\n".join(output),
            pytrace=False,
        )
    url = banner[0].split("?", 1)[0]  # the JS clients authenticate in hello, not in the URL
    h = Hub(proc=proc, url=url, token=token, output=output)
    try:
        yield h
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)


def run_scenario(hub: Hub, scenario: str, a: str, b: str, timeout: float = 30.0) -> dict:
    """Run tests/compat/scenarios/<scenario>.js and return its parsed ``@@result`` object."""
    node = node_executable()
    assert hub.alive(), f"hub exited before {scenario} ran (code {hub.proc.poll()}):\n{hub.tail()}"
    script = COMPAT_DIR / "scenarios" / f"{scenario}.js"
    cmd = [
        node, str(script),
        "--url", hub.url,
        "--token", hub.token,
        "--a", a,
        "--b", b,
        "--deadline-ms", str(int((timeout - 4) * 1000)),
    ]  # fmt: skip
    t0 = time.monotonic()
    try:
        done = subprocess.run(
            cmd,
            cwd=COMPAT_DIR,
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired as e:
        out = e.stdout.decode() if isinstance(e.stdout, bytes) else (e.stdout or "")
        pytest.fail(
            f"{scenario} ({a}/{b}) did not finish within {timeout} s\n{out[-3000:]}", pytrace=False
        )
    results = [
        ln[len("@@result ") :] for ln in done.stdout.splitlines() if ln.startswith("@@result ")
    ]
    if not results:
        pytest.fail(
            f"{scenario} ({a}/{b}) printed no result (exit {done.returncode}, "
            f"{time.monotonic() - t0:.1f} s)\nstdout:\n{done.stdout[-3000:]}\n"
            f"stderr:\n{done.stderr[-3000:]}",
            pytrace=False,
        )
    result = json.loads(results[-1])
    result["_stderr"] = done.stderr[-3000:]
    return result
