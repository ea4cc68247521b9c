"""``python -m benchmarks.soak --minutes N``: mixed load with peers dying and hub restarts.

A standalone hub runs with ``--persist``. Python peers (``benchmarks/soak_worker.py``, the
project's client, which reconnects by itself) and ``@interopio/core`` peers
(``benchmarks/node/soak.js``) each serve a method, follow every bus event under ``soak.bus.>``
and two retained contexts. The run repeats rounds until the time is up:

1. **chaos**, every ``--chaos-seconds``: kill -9 a Python or a Node peer and start a new one
   in its place; every ``--hub-seconds``, instead, restart the hub, alternately after
   kill -9 and after SIGTERM. Node peers are started again after a hub restart (the Python
   ones reconnect by themselves).
2. **ready**: every peer knows every other peer's method, and has received a probe event
   from every other peer (so every bus subscription is in place).
3. **load**, all peers at once: each publishes ``--events`` numbered bus events, invokes two
   other peers' methods ``--calls`` times each, and updates the contexts ``--updates``
   times, each update awaited.
4. **check**: every peer must receive every other peer's events of the round exactly once,
   and, once settled, hold for each context exactly the data the hub has.

Across a hub restart, each context must come back exactly as it was acknowledged before.
The report: hub RSS drift per hour (least squares within each hub lifetime), lost and
duplicated events, context divergence, acknowledged updates lost, and error counts. Exit
status 0 when lost, duplicated, divergence, acknowledged-lost and errors are all 0.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .gw3 import Gw3Client
from .procs import REPO, free_port

MARK = "@@soak "
CONTEXTS = ("soak.ctx.0", "soak.ctx.1")
NODE_SCRIPT = REPO / "benchmarks" / "node" / "soak.js"
SETTLE = 20.0  # seconds a check waits for a condition before it counts a failure


class WorkerError(RuntimeError):
    pass


class Worker:
    """One peer process; commands on stdin, ``@@soak`` replies on stdout."""

    def __init__(self, kind: str, name: str, proc: asyncio.subprocess.Process) -> None:
        self.kind = kind
        self.name = name
        self.proc = proc

    @classmethod
    async def start(cls, kind: str, name: str, url: str, token: str, env: dict[str, str]) -> Worker:
        if kind == "python":
            argv = [sys.executable, "-m", "benchmarks.soak_worker", name, url, token]
        else:
            argv = ["node", str(NODE_SCRIPT), name, url, token]
        proc = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL,
            env=env,
            cwd=str(REPO),
        )
        worker = cls(kind, name, proc)
        await worker.reply(60)
        return worker

    async def reply(self, timeout: float) -> dict[str, Any]:
        assert self.proc.stdout is not None
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise WorkerError(f"{self.name}: no reply within {timeout} s")
            line = await asyncio.wait_for(self.proc.stdout.readline(), remaining)
            if not line:
                raise WorkerError(f"{self.name}: exited ({self.proc.returncode})")
            text = line.decode(errors="replace")
            if text.startswith(MARK):
                reply: dict[str, Any] = json.loads(text[len(MARK) :])
                return reply

    async def ask(self, timeout: float = 120, **cmd: Any) -> dict[str, Any]:
        assert self.proc.stdin is not None
        self.proc.stdin.write((json.dumps(cmd) + "\n").encode())
        await self.proc.stdin.drain()
        return await self.reply(timeout)

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            self.proc.kill()

    async def stop(self) -> None:
        if self.proc.returncode is None:
            with contextlib.suppress(Exception):
                assert self.proc.stdin is not None
                self.proc.stdin.write(b'{"cmd": "quit"}\n')
                await self.proc.stdin.drain()
            try:
                await asyncio.wait_for(self.proc.wait(), 10)
            except asyncio.TimeoutError:
                self.kill()
                await self.proc.wait()


class HubProcess:
    """``python -m jupyter_interop hub --persist`` on a fixed port (kept across restarts)."""

    def __init__(self, tmp: Path, env: dict[str, str]) -> None:
        self.port = free_port()
        self.token = secrets.token_urlsafe(16)
        self.store = tmp / "contexts.sqlite"
        self.env = env
        self.log = open(tmp / "hub.log", "ab")  # noqa: SIM115 - closed in close()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/interop/gateway"

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "jupyter_interop",
                "hub",
                f"--port={self.port}",
                f"--token={self.token}",
                "--persist",
                f"--StandaloneHubApp.context_store_path={self.store}",
                "--StandaloneHubApp.write_runtime_file=False",
                "--log-level=WARN",
            ],
            stdout=subprocess.PIPE,
            stderr=self.log,
            env=self.env,
            cwd=str(REPO),
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline().decode()
        if not line.startswith("Interop hub: "):
            raise RuntimeError(f"hub did not start: {line!r}")

    def stop(self, sig: int) -> None:
        proc = self.proc
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(sig)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)

    def rss(self) -> int:
        assert self.proc is not None
        with open(f"/proc/{self.proc.pid}/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")

    def status(self) -> dict[str, Any]:
        url = f"http://127.0.0.1:{self.port}/interop/api/status?token={self.token}"
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        with opener.open(url, timeout=10) as response:
            status: dict[str, Any] = json.loads(response.read())
            return status

    def close(self) -> None:
        self.stop(signal.SIGTERM)
        self.log.close()


@dataclass
class Totals:
    rounds: int = 0
    events_expected: int = 0
    events_lost: int = 0
    events_duplicated: int = 0
    invocations: int = 0
    context_checks: int = 0
    context_divergence: int = 0
    acked_updates_lost: int = 0
    errors: int = 0
    error_samples: list[str] = field(default_factory=list)
    chaos: dict[str, int] = field(default_factory=dict)
    hub_dropped_events: int = 0
    #: (hub lifetime, seconds since start, RSS bytes)
    rss: list[tuple[int, float, int]] = field(default_factory=list)

    def error(self, message: str) -> None:
        self.errors += 1
        if len(self.error_samples) < 20:
            self.error_samples.append(message)


class Soak:
    def __init__(self, opts: argparse.Namespace) -> None:
        self.opts = opts
        self.rng = random.Random(opts.seed)
        self.tmp = Path(tempfile.mkdtemp(prefix="ji-soak-"))
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("JUPYTER_INTEROP_")}
        self.env.update(
            JUPYTER_RUNTIME_DIR=str(self.tmp / "runtime"),
            JUPYTER_DATA_DIR=str(self.tmp / "data"),
            JUPYTER_CONFIG_DIR=str(self.tmp / "config"),
            PYTHONUNBUFFERED="1",
            NO_PROXY="127.0.0.1,localhost",
        )
        self.env["PYTHONPATH"] = os.pathsep.join(
            p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p
        )
        self.hub = HubProcess(self.tmp, self.env)
        self.workers: dict[str, Worker] = {}
        self.totals = Totals()
        self.epoch = 0
        self.started = time.monotonic()
        self.last_chaos = self.last_hub_restart = self.started
        self.hub_restarts = 0
        self.generation = 0

    # ------------------------------------------------------------------ peers

    def names(self) -> list[str]:
        return sorted(self.workers)

    async def spawn(self, kind: str, slot: int) -> None:
        self.generation += 1
        name = f"{kind[:2]}{slot}-g{self.generation}"
        self.workers[name] = await Worker.start(kind, name, self.hub.url, self.hub.token, self.env)

    async def replace(self, kind: str) -> None:
        """Kill -9 one peer of ``kind`` and start a new one in its place."""
        victims = [n for n, w in self.workers.items() if w.kind == kind]
        name = self.rng.choice(victims)
        slot = int(name[2 : name.index("-")])
        worker = self.workers.pop(name)
        worker.kill()
        await worker.proc.wait()
        await self.spawn(kind, slot)

    # ------------------------------------------------------------------ contexts

    async def hub_contexts(self) -> dict[str, Any]:
        """The hub's data of each soak context, read by a fresh raw GW3 peer."""
        client = await Gw3Client.open(self.hub.url, self.hub.token, "soak-reference", False)
        try:
            found: dict[str, Any] = {}
            for name in CONTEXTS:
                reply = await client.request(
                    {"domain": "global", "type": "create-context", "name": name, "data": {}}
                )
                found[name] = reply.get("data") if reply["type"] == "subscribed-context" else None
            return found
        finally:
            await client.close()

    # ------------------------------------------------------------------ chaos

    async def chaos(self) -> None:
        now = time.monotonic()
        if now - self.last_chaos < self.opts.chaos_seconds:
            return
        self.last_chaos = now
        if now - self.last_hub_restart >= self.opts.hub_seconds:
            self.last_hub_restart = now
            self.hub_restarts += 1
            action = "kill-hub" if self.hub_restarts % 2 else "restart-hub"
        else:
            action = self.rng.choice(
                ["kill-python", "kill-node"] if self.opts.node else ["kill-python"]
            )
        self.totals.chaos[action] = self.totals.chaos.get(action, 0) + 1
        if action == "kill-python":
            await self.replace("python")
        elif action == "kill-node":
            await self.replace("node")
        else:
            before = await self.hub_contexts()
            self.sample_status()
            self.hub.stop(signal.SIGTERM if action == "restart-hub" else signal.SIGKILL)
            nodes = [n for n, w in self.workers.items() if w.kind == "node"]
            for name in nodes:  # a Node peer is started again on the new hub
                worker = self.workers.pop(name)
                worker.kill()
                await worker.proc.wait()
            self.hub.start()
            self.epoch += 1
            after = await self.hub_contexts()
            for name, data in before.items():
                if data is not None and after.get(name) != data:
                    self.totals.acked_updates_lost += 1
                    self.totals.error(f"{name} after {action}: {after.get(name)!r} != {data!r}")
            for i in range(len(nodes)):
                await self.spawn("node", i)

    def sample_status(self) -> None:
        with contextlib.suppress(OSError, ValueError):
            self.totals.hub_dropped_events += int(self.hub.status().get("dropped_events", 0))

    # ------------------------------------------------------------------ rounds

    async def everyone(self, timeout: float = 120, **cmd: Any) -> dict[str, dict[str, Any]]:
        names = self.names()
        replies = await asyncio.gather(
            *(self.workers[n].ask(timeout=timeout, **cmd) for n in names), return_exceptions=True
        )
        out: dict[str, dict[str, Any]] = {}
        for name, reply in zip(names, replies, strict=True):
            if isinstance(reply, BaseException):
                self.totals.error(f"{name} {cmd.get('cmd')}: {reply!r}")
                out[name] = {"ok": False}
            else:
                out[name] = reply
        return out

    async def round(self, r: int) -> None:
        if r:
            await self.chaos()
        names = self.names()
        for name, reply in (await self.everyone(cmd="ready", peers=names)).items():
            if not reply.get("ok"):
                self.totals.error(f"{name} not ready: {reply}")
        probes = await self.everyone(cmd="probe", round=f"p{r}", peers=names)
        for name, reply in probes.items():
            if not reply.get("ok"):
                self.totals.error(f"{name} probe: {reply}")
        targets = {n: self.rng.sample([m for m in names if m != n], 2) for n in names}
        loads = await asyncio.gather(
            *(
                self.workers[n].ask(
                    cmd="load",
                    round=r,
                    publish=self.opts.events,
                    invoke=self.opts.calls,
                    targets=targets[n],
                    update=self.opts.updates,
                )
                for n in names
            ),
            return_exceptions=True,
        )
        for name, load in zip(names, loads, strict=True):
            if isinstance(load, BaseException):
                self.totals.error(f"{name} load: {load!r}")
                continue
            self.totals.invocations += int(load.get("invoked", 0))
            for message in load.get("errors", []):
                self.totals.error(f"{name}: {message}")
        await self.check_events(r, names)
        await self.check_contexts(names)
        self.totals.rounds += 1
        self.totals.rss.append((self.epoch, time.monotonic() - self.started, self.hub.rss()))

    async def check_events(self, r: int, names: list[str]) -> None:
        expected = self.opts.events
        deadline = time.monotonic() + SETTLE
        while True:
            reports = await self.everyone(cmd="report", round=r)
            lost = duplicated = 0
            for name in names:
                received = reports[name].get("received", {})
                for pub in names:
                    got = received.get(pub, {"total": 0, "unique": 0})
                    lost += expected - int(got["unique"])
                    duplicated += int(got["total"]) - int(got["unique"])
            if (lost == 0 and duplicated == 0) or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.2)
        self.totals.events_expected += expected * len(names) * len(names)
        self.totals.events_lost += lost
        self.totals.events_duplicated += duplicated

    async def check_contexts(self, names: list[str]) -> None:
        deadline = time.monotonic() + SETTLE
        while True:
            truth = await self.hub_contexts()
            reports = await self.everyone(cmd="report", round="-")
            diverged = [
                (name, ctx)
                for name in names
                for ctx in CONTEXTS
                if reports[name].get("views", {}).get(ctx) != truth[ctx]
            ]
            if not diverged or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.2)
        self.totals.context_checks += len(names) * len(CONTEXTS)
        self.totals.context_divergence += len(diverged)
        for name, ctx in diverged[:3]:
            self.totals.error(f"{name} diverged on {ctx}")

    async def run_until_signal(self) -> Totals:
        """:meth:`run`, ended through its cleanup (peers and hub stopped) by SIGTERM/SIGINT."""
        task = asyncio.ensure_future(self.run())
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, task.cancel)
        return await task

    async def run(self) -> Totals:
        self.hub.start()
        try:
            for i in range(self.opts.python):
                await self.spawn("python", i)
            for i in range(self.opts.node):
                await self.spawn("node", i)
            end = self.started + self.opts.minutes * 60
            r = 0
            while time.monotonic() < end:
                await self.round(r)
                r += 1
                if self.opts.progress:
                    print(json.dumps(self.summary()), file=sys.stderr, flush=True)
            self.sample_status()
        finally:
            for worker in list(self.workers.values()):
                await worker.stop()
            self.hub.close()
            shutil.rmtree(self.tmp, ignore_errors=True)
        return self.totals

    # ------------------------------------------------------------------ report

    def summary(self) -> dict[str, Any]:
        t = self.totals
        drift = rss_drift_per_hour(t.rss)
        return {
            "minutes": round((time.monotonic() - self.started) / 60, 2),
            "rounds": t.rounds,
            "peers": {"python": self.opts.python, "node": self.opts.node},
            "chaos": t.chaos,
            "events_expected": t.events_expected,
            "events_lost": t.events_lost,
            "events_duplicated": t.events_duplicated,
            "invocations": t.invocations,
            "context_checks": t.context_checks,
            "context_divergence": t.context_divergence,
            "acked_updates_lost": t.acked_updates_lost,
            "errors": t.errors,
            "error_samples": t.error_samples,
            "hub_dropped_events": t.hub_dropped_events,
            "rss_mb_first_last": [
                round(t.rss[0][2] / 2**20, 1) if t.rss else None,
                round(t.rss[-1][2] / 2**20, 1) if t.rss else None,
            ],
            "rss_drift_mb_per_hour": None if drift is None else round(drift / 2**20, 2),
        }


def rss_drift_per_hour(samples: list[tuple[int, float, int]]) -> float | None:
    """Bytes per hour: the least-squares slope of RSS over time within each hub lifetime
    (its first sample, taken while it warms up, left out), weighted by the lifetime's span."""
    slopes: list[tuple[float, float]] = []
    for epoch in sorted({e for e, _, _ in samples}):
        points = [(t, rss) for e, t, rss in samples if e == epoch][1:]
        if len(points) < 3:
            continue
        n = len(points)
        mean_t = sum(t for t, _ in points) / n
        mean_r = sum(r for _, r in points) / n
        var = sum((t - mean_t) ** 2 for t, _ in points)
        if var == 0:
            continue
        slope = sum((t - mean_t) * (r - mean_r) for t, r in points) / var
        slopes.append((slope * 3600, points[-1][0] - points[0][0]))
    span = sum(w for _, w in slopes)
    if not slopes or span == 0:
        return None
    return sum(s * w for s, w in slopes) / span


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.soak", description=__doc__)
    parser.add_argument("--minutes", type=float, required=True, help="how long to run")
    parser.add_argument("--python", type=int, default=4, help="Python peers")
    parser.add_argument("--node", type=int, default=2, help="@interopio/core peers")
    parser.add_argument("--events", type=int, default=50, help="bus events per peer and round")
    parser.add_argument("--calls", type=int, default=5, help="calls per peer, target and round")
    parser.add_argument("--updates", type=int, default=10, help="context updates per round")
    parser.add_argument(
        "--chaos-seconds", type=float, default=10.0, help="seconds between peer kills"
    )
    parser.add_argument(
        "--hub-seconds", type=float, default=45.0, help="seconds between hub restarts"
    )
    parser.add_argument("--seed", type=int, default=None, help="random seed (default: random)")
    parser.add_argument("--json", type=Path, default=None, help="also write the summary here")
    parser.add_argument("--progress", action="store_true", help="summary after every round")
    opts = parser.parse_args(argv)
    if opts.minutes <= 0:
        parser.error("--minutes must be positive")
    if opts.python + opts.node < 3:
        parser.error("the soak needs at least 3 peers (each calls two others)")
    if opts.python < 1:
        parser.error("the soak needs at least one Python peer")
    if opts.seed is None:
        opts.seed = random.randrange(2**32)
    return opts


def main(argv: list[str]) -> int:
    opts = parse(argv)
    if opts.node and shutil.which("node") is None:
        print("benchmarks.soak: `node` is not on PATH (or pass --node 0)", file=sys.stderr)
        return 2
    soak = Soak(opts)
    interrupted = False
    try:
        asyncio.run(soak.run_until_signal())
    except (KeyboardInterrupt, asyncio.CancelledError):
        interrupted = True
        print("benchmarks.soak: interrupted; peers and hub stopped", file=sys.stderr)
    summary = {"seed": opts.seed, **soak.summary()}
    text = json.dumps(summary, indent=1)
    print(text)
    if opts.json is not None:
        opts.json.write_text(text)
    bad = ("events_lost", "events_duplicated", "context_divergence", "acked_updates_lost")
    if interrupted:
        return 130
    return 0 if all(summary[k] == 0 for k in bad) and summary["errors"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
