"""Node processes driven from a test: one JSON command a line on stdin, and on stdout, behind a
mark, replies (carrying the command's id) and events (without one). The scripts that speak it
are ``test_client_js_peer.js`` (a peer on our hub) and ``gateway_js_peer.js`` (a JS client of
either gateway). (This module holds helpers only; pytest finds no tests in it.)
"""

from __future__ import annotations

import itertools
import json
import queue
import shutil
import subprocess
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from test_client_support import REPO, wait_for

__all__ = ["COMPAT", "MARK", "NodeLinePeer", "node_or_fail"]

COMPAT = REPO / "tests" / "compat"
#: what starts every protocol line on the script's stdout (anything else is its own logging)
MARK = "@@peer "


def node_or_fail(package: str) -> str:
    """Path of ``node``, or fail (never skip) with what to install."""
    node = shutil.which("node")
    if node is None:
        pytest.fail("`node` is not on PATH (install Node.js >= 18)", pytrace=False)
    if not (COMPAT / "node_modules" / package / "package.json").is_file():
        pytest.fail(f"{package} is missing: run `npm ci --prefix tests/compat`", pytrace=False)
    return node


class NodeLinePeer:
    """The Node process; :meth:`call` sends a command, :meth:`event` waits for an event."""

    #: default waits, seconds
    call_timeout = 15.0
    event_timeout = 10.0

    def __init__(
        self, script: Path, env: dict[str, str], package: str, ready_timeout: float = 20
    ) -> None:
        self.proc = subprocess.Popen(
            [node_or_fail(package), str(script)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        self.replies: dict[int, queue.Queue[dict[str, Any]]] = {}
        self.events: list[dict[str, Any]] = []
        self.stderr: list[str] = []
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        threading.Thread(target=self._read, daemon=True).start()
        threading.Thread(target=self._read_err, daemon=True).start()
        self.ready = self.event(lambda e: e["event"] == "ready", ready_timeout)

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            if not line.startswith(MARK):
                continue
            msg = json.loads(line[len(MARK) :])
            if "id" in msg:
                self.replies.setdefault(msg["id"], queue.Queue()).put(msg)
            else:
                with self._lock:
                    self.events.append(msg)

    def _read_err(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.stderr.append(line.rstrip())

    def call(self, cmd: str, timeout: float | None = None, **args: Any) -> Any:
        request_id = next(self._ids)
        replies = self.replies.setdefault(request_id, queue.Queue())
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps({"id": request_id, "cmd": cmd, "args": args}) + "\n")
        self.proc.stdin.flush()
        try:
            reply = replies.get(timeout=timeout or self.call_timeout)
        except queue.Empty:
            raise AssertionError(f"no reply to {cmd}; node stderr: {self.stderr[-10:]}") from None
        if not reply["ok"]:
            raise AssertionError(f"JS {cmd} failed: {reply['error']}")
        return reply["result"]

    def event(
        self, predicate: Callable[[dict[str, Any]], bool], timeout: float | None = None
    ) -> Any:
        def find() -> dict[str, Any] | None:
            with self._lock:
                return next((e for e in self.events if predicate(e)), None)

        try:
            return wait_for(find, timeout or self.event_timeout, "an event from the JS peer")
        except AssertionError:
            raise AssertionError(
                f"no matching JS event; events: {self.events[-10:]}; stderr: {self.stderr[-10:]}"
            ) from None

    def close(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
