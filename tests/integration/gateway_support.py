"""Support for the tests against the real Glue42 gateway (helpers only, no tests here).

``Glue42Gateway`` runs ``tests/compat/gateway/serve.js``: the ``@glue42/gateway-web`` package
from npm behind a WebSocket on a loopback port, with access-token / secret / gateway-token
authentication and, with ``channels="default"``, the ten colour channels created at start as
io.Connect Desktop creates them. ``JsClient`` drives ``gateway_js_peer.js``, a Node process
holding a real ``@interopio/core`` or ``@glue42/core`` client, over JSON lines.
"""

from __future__ import annotations

import json
import os
import queue
import re
import secrets
import signal
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nodekit import COMPAT, NodeLinePeer, node_or_fail

SERVE = COMPAT / "gateway" / "serve.js"
JS_PEER = Path(__file__).resolve().parent / "gateway_js_peer.js"
GATEWAY_BANNER = re.compile(r"Glue42 gateway: (ws://\S+)")
PACKAGES = {"interopio": "@interopio/core", "glue42": "@glue42/core"}


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


class JsClient(NodeLinePeer):
    """A Node process holding a real JS client (``flavor``: interopio or glue42) logged in to
    ``url`` with ``auth`` (the JS ``auth`` config)."""

    call_timeout = 20.0
    event_timeout = 20.0

    def __init__(self, flavor: str, url: str, auth: dict[str, Any], application: str) -> None:
        config = {"flavor": flavor, "url": url, "auth": auth, "application": application}
        env = {**os.environ, "COMPAT_DIR": str(COMPAT), "PEER_CONFIG": json.dumps(config)}
        super().__init__(JS_PEER, env, PACKAGES[flavor], ready_timeout=30)
