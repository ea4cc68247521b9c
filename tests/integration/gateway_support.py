"""Support for the tests against the real Glue42 gateway (helpers only, no tests here).

``Glue42Gateway`` runs ``tests/compat/gateway/serve.js``: the ``@glue42/gateway-web`` package
from npm behind a WebSocket on a loopback port, with access-token / secret / gateway-token
authentication and, with ``channels="default"``, the ten colour channels created at start as
io.Connect Desktop creates them. ``JsClient`` drives ``gateway_js_peer.js``, a Node process
holding a real ``@interopio/core`` or ``@glue42/core`` client, over JSON lines.
"""

from __future__ import annotations

import itertools
import json
import os
import queue
import re
import secrets
import shutil
import signal
import subprocess
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from test_client_support import REPO, wait_for

COMPAT = REPO / "tests" / "compat"
SERVE = COMPAT / "gateway" / "serve.js"
JS_PEER = Path(__file__).resolve().parent / "gateway_js_peer.js"
GATEWAY_BANNER = re.compile(r"Glue42 gateway: (ws://\S+)")
JS_MARK = "@@peer "
PACKAGES = {"interopio": "@interopio/core", "glue42": "@glue42/core"}


def node_or_fail(package: str) -> str:
    """Path of ``node``, or fail (never skip) with what to install."""
    node = shutil.which("node")
    if node is None:
        pytest.fail("`node` is not on PATH (install Node.js >= 18)", pytrace=False)
    if not (COMPAT / "node_modules" / package / "package.json").is_file():
        pytest.fail(f"{package} is missing: run `npm ci --prefix tests/compat`", pytrace=False)
    return node


@dataclass
class Glue42Gateway:
    """A running real Glue42 gateway; ``user``/``password`` log in with a secret."""

    channels: str = "default"
    #: remove peers silent for this many seconds (0: never), as gateway-web does by default
    inactive_seconds: int = 0
    token: str = field(default_factory=lambda: secrets.token_urlsafe(12))
    user: str = "analyst"
    password: str = field(default_factory=lambda: secrets.token_urlsafe(9))
    url: str = ""
    proc: subprocess.Popen[str] | None = None
    output: list[str] = field(default_factory=list)

    def start(self, timeout: float = 60.0) -> None:
        node = node_or_fail("@glue42/gateway-web")
        self.proc = subprocess.Popen(
            [
                node, str(SERVE), "--port", "0", "--token", self.token, "--user", self.user,
                "--password", self.password, "--channels", self.channels,
                "--inactive-seconds", str(self.inactive_seconds),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            text=True,
            cwd=str(COMPAT),
        )  # fmt: skip
        found: queue.Queue[str] = queue.Queue()
        proc = self.proc

        def pump() -> None:
            assert proc.stdout is not None
            for line in proc.stdout:
                self.output.append(line.rstrip())
                match = GATEWAY_BANNER.search(line)
                if match:
                    found.put(match.group(1))
            found.put("")  # the process ended

        threading.Thread(target=pump, daemon=True).start()
        try:
            url = found.get(timeout=timeout)
        except queue.Empty:
            url = ""
        if not url:
            self.stop()
            raise AssertionError(f"the Glue42 gateway did not start: {self.output[-20:]}")
        self.url = url

    def stop(self) -> None:
        proc = self.proc
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)


@contextmanager
def glue42_gateway(channels: str = "default", inactive_seconds: int = 0) -> Iterator[Glue42Gateway]:
    gateway = Glue42Gateway(channels=channels, inactive_seconds=inactive_seconds)
    gateway.start()
    try:
        yield gateway
    finally:
        gateway.stop()


class JsClient:
    """A Node process holding a real JS client (``flavor``: interopio or glue42) logged in to
    ``url`` with ``auth`` (the JS ``auth`` config); :meth:`call` runs a command,
    :meth:`event` waits for an event."""

    def __init__(self, flavor: str, url: str, auth: dict[str, Any], application: str) -> None:
        node = node_or_fail(PACKAGES[flavor])
        config = {"flavor": flavor, "url": url, "auth": auth, "application": application}
        env = {**os.environ, "COMPAT_DIR": str(COMPAT), "PEER_CONFIG": json.dumps(config)}
        self.proc = subprocess.Popen(
            [node, str(JS_PEER)],
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
        self.ready = self.event(lambda e: e["event"] == "ready", 30)

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            if not line.startswith(JS_MARK):
                continue
            msg = json.loads(line[len(JS_MARK) :])
            if "id" in msg:
                self.replies.setdefault(msg["id"], queue.Queue()).put(msg)
            else:
                with self._lock:
                    self.events.append(msg)

    def _read_err(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.stderr.append(line.rstrip())

    def call(self, cmd: str, timeout: float = 20, **args: Any) -> Any:
        request_id = next(self._ids)
        replies = self.replies.setdefault(request_id, queue.Queue())
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps({"id": request_id, "cmd": cmd, "args": args}) + "\n")
        self.proc.stdin.flush()
        try:
            reply = replies.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"no reply to {cmd}; node stderr: {self.stderr[-10:]}") from None
        if not reply["ok"]:
            raise AssertionError(f"JS {cmd} failed: {reply['error']}")
        return reply["result"]

    def event(self, predicate: Callable[[dict[str, Any]], bool], timeout: float = 20) -> Any:
        def find() -> dict[str, Any] | None:
            with self._lock:
                return next((e for e in self.events if predicate(e)), None)

        try:
            return wait_for(find, timeout, "an event from the JS client")
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
