"""One Python peer of the soak (``python -m benchmarks.soak_worker NAME URL TOKEN``).

It connects with the project's client (which reconnects by itself when the hub restarts),
serves ``soak.echo.NAME``, follows every ``soak.bus.>`` event and the soak's contexts, and
answers one JSON command per stdin line with one ``@@soak {...}`` line (see benchmarks/soak.py
for the commands and what the coordinator checks).
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from collections import Counter
from typing import Any

import jupyter_interop as ji

MARK = "@@soak "
CONTEXTS = ("soak.ctx.0", "soak.ctx.1")


def emit(**fields: Any) -> None:
    sys.stdout.write(MARK + json.dumps(fields) + "\n")
    sys.stdout.flush()


class Peer:
    def __init__(self, name: str, url: str, token: str) -> None:
        self.name = name
        self.io = ji.connect(
            url=url, token=token, application=name, new=True, reconnect_max_delay=0.5
        )
        self.lock = threading.Lock()
        #: (publisher, round) -> seq -> times received
        self.events: dict[tuple[str, str], Counter[int]] = {}
        self.views: dict[str, dict[str, Any]] = {}
        self.io.methods.register(f"soak.echo.{name}", lambda **kw: kw)
        self.io.bus.subscribe("soak.bus.>", self._on_event)
        for context in CONTEXTS:
            self.io.contexts.subscribe(context, self._viewer(context))

    def _on_event(self, data: Any, topic: str, source: Any) -> None:
        if isinstance(data, dict) and {"pub", "round", "seq"} <= set(data):
            with self.lock:
                key = (str(data["pub"]), str(data["round"]))
                self.events.setdefault(key, Counter())[int(data["seq"])] += 1

    def _viewer(self, context: str) -> Any:
        def on_change(data: Any, delta: Any, removed: Any, meta: Any) -> None:
            with self.lock:
                self.views[context] = json.loads(json.dumps(data))

        return on_change

    # ------------------------------------------------------------------ commands

    def ready(self, cmd: dict[str, Any]) -> dict[str, Any]:
        """Connected, and every other peer's method is known."""
        deadline = time.monotonic() + float(cmd.get("timeout", 60))
        while not self.io.connected:
            if time.monotonic() > deadline:
                return {"ok": False, "error": "not connected"}
            time.sleep(0.05)
        for peer in cmd.get("peers", []):
            remaining = max(0.1, deadline - time.monotonic())
            try:
                self.io.methods.wait_for_method(f"soak.echo.{peer}", timeout=remaining)
            except Exception as error:  # reported to the coordinator
                return {"ok": False, "error": f"{peer}: {error!r}"}
        return {"ok": True}

    def probe(self, cmd: dict[str, Any]) -> dict[str, Any]:
        """Publish one probe event; wait (``peers``) until the others' probes arrived."""
        tag = str(cmd["round"])
        self.io.bus.publish(f"soak.bus.{self.name}", {"pub": self.name, "round": tag, "seq": 0})
        deadline = time.monotonic() + float(cmd.get("timeout", 30))
        missing = list(cmd.get("peers", []))
        while missing and time.monotonic() < deadline:
            with self.lock:
                missing = [p for p in missing if (p, tag) not in self.events]
            time.sleep(0.02)
        return {"ok": not missing, "missing": missing}

    def load(self, cmd: dict[str, Any]) -> dict[str, Any]:
        """The measured load of one round: bus events, invocations, context updates."""
        tag = str(cmd["round"])
        errors: list[str] = []
        for seq in range(1, int(cmd["publish"]) + 1):
            self.io.bus.publish(
                f"soak.bus.{self.name}", {"pub": self.name, "round": tag, "seq": seq}
            )
        invoked = 0
        for i in range(int(cmd["invoke"])):
            for peer in cmd["targets"]:
                args = {"from": self.name, "round": tag, "i": i}
                try:
                    result = self.io.methods.invoke(f"soak.echo.{peer}", args, timeout=30)
                    if result.returned != args:
                        errors.append(f"echo from {peer}: {result.returned!r} != {args!r}")
                    invoked += 1
                except Exception as error:  # counted and reported
                    errors.append(f"invoke {peer}: {error!r}")
        acked: dict[str, Any] = {}
        for i in range(int(cmd["update"])):
            context = CONTEXTS[i % len(CONTEXTS)]
            value = f"{tag}:{i}"
            try:
                self.io.contexts.update(context, {self.name: value})
                acked[context] = value
            except Exception as error:
                errors.append(f"update {context}: {error!r}")
        return {"invoked": invoked, "acked": acked, "errors": errors}

    def report(self, cmd: dict[str, Any]) -> dict[str, Any]:
        tag = str(cmd["round"])
        with self.lock:
            received = {
                pub: {"total": sum(c.values()), "unique": len(c), "max": max(c, default=0)}
                for (pub, r), c in self.events.items()
                if r == tag
            }
            views = json.loads(json.dumps(self.views))
        return {"received": received, "views": views}


def main() -> None:
    name, url, token = sys.argv[1:4]
    peer = Peer(name, url, token)
    emit(ready=True, pid=os.getpid())
    for line in sys.stdin:
        cmd = json.loads(line)
        op = cmd.get("cmd")
        if op == "quit":
            break
        try:
            reply = getattr(peer, str(op))(cmd)
        except Exception as error:  # the coordinator reports it
            reply = {"ok": False, "error": repr(error)}
        emit(**reply)
    peer.io.close()


if __name__ == "__main__":
    main()
