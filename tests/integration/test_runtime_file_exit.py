"""The runtime file (it holds the interop token) is gone on every exit path (issue 11, defect 7).

Real processes only: a ``jupyter server`` with the extension, and ``python -m jupyter_interop
hub``. The extension writes its runtime file while the server loads it, before the server
binds its port; a server whose port is taken then exits from its start-up without stopping its
extensions. Signals whose default action kills the process (SIGHUP, which Jupyter does not
handle) must not leave the file behind either.
"""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from test_client_support import REPO, free_port, isolated_env, jupyter_server_command, wait_for


def _runtime_files(tmp: Path) -> list[str]:
    return sorted(p.name for p in (tmp / "runtime").glob("jupyter_interop-*.json"))


def _server_args(port: int, root: Path) -> list[str]:
    return jupyter_server_command(port, root, "--InteropExtension.persist_contexts=False")


@contextmanager
def _port_taken() -> Iterator[int]:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        yield int(busy.getsockname()[1])


def _default_sighup() -> None:
    """The server starts with SIGHUP's default action, as from a terminal: a test run under
    ``nohup`` would otherwise pass its SIG_IGN on, which the guard rightly leaves alone."""
    signal.signal(signal.SIGHUP, signal.SIG_DFL)


def _started_server(tmp: Path) -> subprocess.Popen[str]:
    """A server with the extension, once its runtime file exists."""
    root = tmp / "root"
    root.mkdir(exist_ok=True)
    proc = subprocess.Popen(
        _server_args(free_port(), root),
        env=isolated_env(tmp),
        cwd=str(root),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=_default_sighup,
    )
    path = tmp / "runtime" / f"jupyter_interop-{proc.pid}.json"

    def ready() -> bool:
        if proc.poll() is not None:
            raise AssertionError(proc.communicate()[1][-3000:])
        return path.exists() and bool(json.loads(path.read_text()).get("url"))

    wait_for(ready, 90, "the server's runtime file")
    return proc


def test_server_whose_port_is_taken_exits_without_leaving_its_runtime_file(
    tmp_path: Path,
) -> None:
    root = tmp_path / "root"
    root.mkdir()
    with _port_taken() as port:
        done = subprocess.run(
            _server_args(port, root),
            env=isolated_env(tmp_path),
            cwd=str(root),
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert done.returncode != 0, done.stderr[-2000:]
    assert "is already in use" in done.stderr or "not available" in done.stderr, done.stderr
    # the extension did write it: it loaded and published before the failed bind
    assert "Interop hub at" in done.stderr, done.stderr[-2000:]
    assert _runtime_files(tmp_path) == []


def test_server_killed_by_sighup_removes_its_runtime_file(tmp_path: Path) -> None:
    proc = _started_server(tmp_path)
    assert _runtime_files(tmp_path) == [f"jupyter_interop-{proc.pid}.json"]
    proc.send_signal(signal.SIGHUP)
    code = proc.wait(60)
    assert code == -signal.SIGHUP  # the signal's default action still ends the server
    assert _runtime_files(tmp_path) == []


def test_server_stopped_by_sigterm_removes_its_runtime_file(tmp_path: Path) -> None:
    proc = _started_server(tmp_path)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert _runtime_files(tmp_path) == [], err[-2000:]


def _start_hub(tmp: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "jupyter_interop", "hub", *args],
        env=isolated_env(tmp),
        cwd=str(REPO),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_standalone_hub_stops_cleanly_on_sighup(tmp_path: Path) -> None:
    proc = _start_hub(tmp_path, "--port=0")
    assert proc.stdout is not None
    assert proc.stdout.readline().startswith("Interop hub: ")
    assert _runtime_files(tmp_path) == [f"jupyter_interop-{proc.pid}.json"]
    proc.send_signal(signal.SIGHUP)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert "Interop hub stopping" in err
    assert _runtime_files(tmp_path) == []


def test_standalone_hub_failing_after_its_runtime_file_removes_it(tmp_path: Path) -> None:
    """The printed line comes after the runtime file: with stdout closed, writing it fails."""
    proc = _start_hub(tmp_path, "--port=0")
    assert proc.stdout is not None
    proc.stdout.close()  # the reader went away: the hub's print raises BrokenPipeError
    err = proc.stderr.read() if proc.stderr is not None else ""
    assert proc.wait(60) != 0
    assert "BrokenPipeError" in err, err[-2000:]
    assert _runtime_files(tmp_path) == []


def test_standalone_hub_whose_port_is_taken_says_so_and_leaves_nothing(tmp_path: Path) -> None:
    with _port_taken() as port:
        proc = _start_hub(tmp_path, f"--port={port}")
        _, err = proc.communicate(timeout=60)
    assert proc.returncode != 0
    assert "Address already in use" in err, err[-2000:]
    assert _runtime_files(tmp_path) == []
