"""Two real standalone hubs federated through a real nats-server (docs/FEDERATION.md): peers of
hub B appear on hub A as remote peers, a Python client on A invokes their methods with each
target kind, and when hub B is killed its peers leave A and a call pending on B fails at once."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import urllib.request
from collections.abc import Iterator
from concurrent.futures import Future
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pytest
from nats import connect as nats_connect
from test_client_js import JsPeer
from test_client_support import (
    BANNER,
    free_port,
    isolated_env,
    jupyter_server_command,
    wait_for,
)

import jupyter_interop as ji
from jupyter_interop.client.method_server import current_invocation
from jupyter_interop.server.federation import subjects
from jupyter_interop.server.federation_access import inbox_prefix, space_permissions

#: how long B may stay silent before A counts it dead (short, so the test is quick)
HEARTBEAT = [
    "--InteropHub.federation_heartbeat_interval=0.3",
    "--InteropHub.federation_heartbeat_timeout=1.5",
]


class Nats:
    """A nats-server of its own on a free loopback port, with JetStream storing under
    ``tmp`` (the contexts' KV bucket); :meth:`restart` keeps the port and the store."""

    def __init__(self, tmp: Path, *options: str) -> None:
        exe = shutil.which("nats-server")
        assert exe, "nats-server is missing: run scripts/setup.sh (apt-get install nats-server)"
        self.exe = exe
        self.store = tmp / "jetstream"
        self.port = free_port()
        self.url = f"nats://127.0.0.1:{self.port}"
        self.log = open(tmp / "nats.log", "wb")  # noqa: SIM115 (closed by stop)
        #: more nats-server options (a monitoring port: test_federation_bus.py)
        self.options = options
        self.proc = self._start()

    def _start(self) -> subprocess.Popen[bytes]:
        proc = subprocess.Popen(
            [
                *(self.exe, "-a", "127.0.0.1", "-p", str(self.port)),
                *("-js", "-sd", str(self.store), *self.options),
            ],
            stderr=self.log,
        )
        wait_for(lambda: _listening(self.port), what="nats-server to listen")
        return proc

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait(10)

    def restart(self) -> None:
        self.proc = self._start()

    def pause(self) -> None:
        """Stop the server (SIGSTOP: its connections stay open, nothing is read or answered)
        and wait until every thread of it has stopped: when ``kill`` returns, threads the
        kernel has not stopped yet may still answer for a while (tens of ms under load)."""
        self.proc.send_signal(signal.SIGSTOP)
        wait_for(self._paused, what="every thread of nats-server to stop")

    def _paused(self) -> bool:
        states = []
        for stat in Path(f"/proc/{self.proc.pid}/task").glob("*/stat"):
            try:  # (the state follows the command name in parentheses)
                states.append(stat.read_text().rsplit(")", 1)[1].split()[0])
            except FileNotFoundError:  # a thread that ended meanwhile
                continue
        return bool(states) and all(state == "T" for state in states)

    def resume(self) -> None:
        """Let a paused server run again."""
        self.proc.send_signal(signal.SIGCONT)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)
        self.log.close()


@pytest.fixture
def nats(tmp_path: Path) -> Iterator[Nats]:
    server = Nats(tmp_path)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def nats_url(nats: Nats) -> str:
    return nats.url


def _listening(port: int) -> bool:
    import socket

    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


@dataclass
class Hub:
    proc: subprocess.Popen[str]
    url: str
    token: str


def hub_env(root: Path) -> dict[str, str]:
    """Jupyter dirs under ``root``, and this tree first on the path (the hub imports it)."""
    env = isolated_env(root)
    env["PYTHONPATH"] = os.pathsep.join(
        filter(None, [str(Path(ji.__file__).parents[1]), env.get("PYTHONPATH")])
    )
    return env


def start_hub(root: Path, nats_url: str, *extra: str, heartbeat: list[str] = HEARTBEAT) -> Hub:
    """``jupyter-interop hub --federation nats://...`` (the standalone hub, federated)."""
    env = hub_env(root)
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "jupyter_interop",
            "hub",
            "--port=0",
            f"--federation={nats_url}",
            "--StandaloneHubApp.write_runtime_file=False",
            *heartbeat,
            *extra,
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=open(root / "hub.log", "wb"),  # noqa: SIM115
        text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    match = BANNER.search(line)
    assert match, f"hub did not start: {line!r}; see {root / 'hub.log'}"
    url, token = match.group(1).split("?token=")
    return Hub(proc, url, token)


def stop(proc: subprocess.Popen[str]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        proc.wait(20)


#: the login token of the Jupyter servers :func:`start_server` starts (for their REST views)
SERVER_TOKEN = "jupyter-server-token-for-tests"


@dataclass
class Server:
    """A real Jupyter server with the interop extension, and its runtime file."""

    proc: subprocess.Popen[str]
    runtime: Path

    @property
    def info(self) -> dict[str, Any]:
        return dict(json.loads(self.runtime.read_text()))

    def view(self, name: str) -> Any:
        """GET ``interop/api/<name>`` with the server's login token."""
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        url = f"{self.info['server_url'].rstrip('/')}/interop/api/{name}?token={SERVER_TOKEN}"
        with opener.open(url, timeout=10) as response:
            return json.loads(response.read())


def start_server(tmp: Path, *args: str, env: dict[str, str] | None = None) -> Server:
    """A Jupyter server under ``tmp`` with ``args`` and ``env`` (more environment variables),
    once it serves its views (its runtime file is written before it listens)."""
    root = tmp / "server"
    root.mkdir(parents=True)
    proc = subprocess.Popen(
        jupyter_server_command(
            free_port(),
            root,
            f"--IdentityProvider.token={SERVER_TOKEN}",
            "--InteropExtension.persist_contexts=False",
            *HEARTBEAT,
            *args,
        ),
        env={**isolated_env(tmp / "server-dirs"), **(env or {})},
        cwd=str(root),
        stdout=subprocess.DEVNULL,
        stderr=open(tmp / "server.log", "wb"),  # noqa: SIM115 (the child holds it)
        text=True,
    )
    server = Server(proc, tmp / "server-dirs" / "runtime" / f"jupyter_interop-{proc.pid}.json")

    def ready() -> bool:
        assert proc.poll() is None, (tmp / "server.log").read_text()[-3000:]
        if not server.runtime.exists():
            return False
        try:
            return bool(server.view("status"))
        except OSError:
            return False

    try:
        wait_for(ready, 90, "the server's interop views")
    except BaseException:
        stop(proc)
        raise
    return server


@pytest.fixture
def two_hubs(tmp_path: Path, nats_url: str) -> Iterator[tuple[Hub, Hub]]:
    hub_a = start_hub(tmp_path / "a", nats_url)
    try:
        hub_b = start_hub(tmp_path / "b", nats_url)
    except BaseException:
        stop(hub_a.proc)
        raise
    try:
        yield hub_a, hub_b
    finally:
        stop(hub_b.proc)
        stop(hub_a.proc)


def servers_of(io: ji.Interop, name: str) -> list[ji.Instance]:
    return [s for m in io.methods.methods() if m.name == name for s in m.servers]


def who_calls(io: ji.Interop) -> list[ji.Instance]:
    """Register ``WhoCalls`` on ``io``: the list it returns gets the caller of each call, as
    the method's server sees it."""
    callers: list[ji.Instance] = []

    def record() -> dict[str, Any]:
        invocation = current_invocation()
        assert invocation is not None
        callers.append(invocation.caller)
        return {}

    io.methods.register("WhoCalls")(record)
    return callers


def test_methods_of_hub_b_are_invoked_from_hub_a_with_every_target_kind(
    two_hubs: tuple[Hub, Hub],
) -> None:
    hub_a, hub_b = two_hubs
    with ExitStack() as stack:
        b = ji.connect(url=hub_b.url, token=hub_b.token, application="pricer-b")
        stack.callback(b.close)
        a = ji.connect(url=hub_a.url, token=hub_a.token, application="pricer-a")
        stack.callback(a.close)
        b.methods.register("Quote")(lambda symbol: {"px": 101.5, "by": "b", "symbol": symbol})
        a.methods.register("Quote")(lambda symbol: {"px": 99.0, "by": "a", "symbol": symbol})

        remote = wait_for(
            lambda: [s for s in servers_of(a, "Quote") if not s.is_local],
            what="hub B's Quote on hub A",
        )
        assert [s.application for s in remote] == ["pricer-b"]
        assert remote[0].peer_id == b.instance.peer_id  # the id it has on its own hub
        assert remote[0].hub and remote[0].hub != "" and remote[0].machine == b.instance.machine

        by_filter = a.methods.invoke("Quote", {"symbol": "X"}, target={"application": "pricer-b"})
        assert by_filter.returned == {"px": 101.5, "by": "b", "symbol": "X"}
        assert by_filter.executed_by.peer_id == b.instance.peer_id

        by_instance = a.methods.invoke("Quote", {"symbol": "Y"}, target=remote[0])
        assert by_instance.returned["by"] == "b"

        skip_mine = a.methods.invoke("Quote", {"symbol": "Z"}, target="skipMine")
        assert skip_mine.returned["by"] == "b"

        everyone = a.methods.invoke("Quote", {"symbol": "W"}, target="all")
        assert sorted(r.returned["by"] for r in everyone.all_return_values) == ["a", "b"]

        best = a.methods.invoke("Quote", {"symbol": "V"}, target="best")
        assert best.returned["by"] in ("a", "b")

        # and the other way round: B sees A's peer as remote
        back = wait_for(
            lambda: [s for s in servers_of(b, "Quote") if not s.is_local], what="A's Quote on B"
        )
        assert back[0].application == "pricer-a"
        assert b.methods.invoke("Quote", {"symbol": "U"}, target="skipMine").returned["by"] == "a"


def test_an_error_of_a_remote_method_reaches_the_caller(two_hubs: tuple[Hub, Hub]) -> None:
    hub_a, hub_b = two_hubs
    with ExitStack() as stack:
        b = ji.connect(url=hub_b.url, token=hub_b.token, application="failing-b")
        stack.callback(b.close)
        a = ji.connect(url=hub_a.url, token=hub_a.token, application="caller-a")
        stack.callback(a.close)

        def fails() -> None:
            raise ValueError("no quote today")

        b.methods.register("Fails")(fails)
        wait_for(lambda: servers_of(a, "Fails"), what="hub B's Fails on hub A")
        with pytest.raises(ji.InvocationError, match="no quote today"):
            a.methods.invoke("Fails", {}, timeout=30)


def test_killing_hub_b_removes_its_peers_from_a_and_fails_pending_calls(
    two_hubs: tuple[Hub, Hub],
) -> None:
    hub_a, hub_b = two_hubs
    release = threading.Event()
    started = threading.Event()
    with ExitStack() as stack:
        stack.callback(release.set)
        b = ji.connect(url=hub_b.url, token=hub_b.token, application="slow-b")
        stack.callback(b.close)
        a = ji.connect(url=hub_a.url, token=hub_a.token, application="caller-a")
        stack.callback(a.close)

        def slow() -> dict:
            started.set()
            release.wait(120)
            return {}

        b.methods.register("Slow")(slow)
        b.methods.register("Other")(lambda: {})
        wait_for(lambda: servers_of(a, "Slow") and servers_of(a, "Other"), what="B's methods")

        pending: Future[object] = Future()

        def call() -> None:
            try:
                pending.set_result(a.methods.invoke("Slow", {}, timeout=120))
            except BaseException as error:
                pending.set_exception(error)

        threading.Thread(target=call, daemon=True).start()
        assert started.wait(30), "the call did not reach B's method"
        hub_b.proc.kill()
        hub_b.proc.wait(10)

        # failed by the hub (its own reason), long before the call's 120 s timeout
        with pytest.raises(ji.InvocationError, match="Peer has left"):
            pending.result(timeout=60)
        wait_for(lambda: not servers_of(a, "Other"), what="B's peers to leave A")
        assert not [m for m in a.methods.methods() if m.name in ("Slow", "Other")]


def test_a_jupyter_server_federated_by_config_invokes_a_standalone_hub(
    tmp_path: Path, nats_url: str
) -> None:
    """``c.InteropHub.federation_url`` in a real Jupyter server (the extension): calls both
    ways, and a context shared with the standalone hub."""
    with ExitStack() as stack:
        server = start_server(
            tmp_path,
            f"--InteropHub.federation_url={nats_url}",
            "--InteropHub.federation_space=test-space",
        )
        stack.callback(stop, server.proc)
        info = server.info
        hub_b = start_hub(tmp_path / "b", nats_url, "--InteropHub.federation_space=test-space")
        stack.callback(stop, hub_b.proc)
        b = ji.connect(url=hub_b.url, token=hub_b.token, application="standalone-b")
        stack.callback(b.close)
        b.methods.register("Echo")(lambda text: {"echo": text})
        a = ji.connect(url=info["url"], token=info["token"], application="in-server-a")
        stack.callback(a.close)
        wait_for(lambda: servers_of(a, "Echo"), 30, "hub B's Echo on the Jupyter server's hub")
        assert a.methods.invoke("Echo", {"text": "hi"}, timeout=30).returned == {"echo": "hi"}
        # and B, in the same space, reaches the server's client
        a.methods.register("Ping")(lambda: {"pong": True})
        wait_for(lambda: servers_of(b, "Ping"), 30, "the server's Ping on hub B")
        pong = b.methods.invoke("Ping", {}, timeout=30)
        assert pong.returned == {"pong": True}
        assert pong.executed_by.application == "in-server-a" and not pong.executed_by.is_local
        # a retained context is one object across the server's hub and B (the KV bucket)
        a.contexts.set("desk", {"owner": "a"})
        wait_for(lambda: b.contexts.get("desk") == {"owner": "a"}, 30, "the context on hub B")
        b.contexts.update("desk", {"seen": True})
        wait_for(lambda: a.contexts.get("desk") == {"owner": "a", "seen": True}, 30, "B's update")


def test_a_javascript_client_on_a_and_a_python_client_on_b_invoke_each_other(
    two_hubs: tuple[Hub, Hub],
) -> None:
    """The real ``@interopio/core`` (test_client_js_peer.js) on hub A, Python on hub B."""
    hub_a, hub_b = two_hubs
    with ExitStack() as stack:
        b = ji.connect(url=hub_b.url, token=hub_b.token, application="py-b")
        stack.callback(b.close)
        b.methods.register("Py.Quote")(lambda symbol: {"symbol": symbol, "px": 42.5})
        js = JsPeer(hub_a)  # type: ignore[arg-type]  # (a hub: url and token)
        stack.callback(js.close)
        r = js.call("invoke", method="Py.Quote", args={"symbol": "AAPL"})
        assert r == {"returned": {"symbol": "AAPL", "px": 42.5}, "executedBy": "py-b"}
        failed = js.call("invokeFail", method="Py.Missing")
        assert failed["failed"] is True

        wait_for(lambda: servers_of(b, "Js.Echo"), what="the JS peer's Js.Echo on hub B")
        echo = b.methods.invoke("Js.Echo", {"symbol": "MSFT"}, timeout=30)
        assert echo.returned["args"] == {"symbol": "MSFT"}
        assert echo.executed_by.application == "js-peer" and not echo.executed_by.is_local


def test_a_hub_stopped_cleanly_says_goodbye_and_its_peers_leave_at_once(
    tmp_path: Path, nats_url: str
) -> None:
    """With a heartbeat timeout of two minutes, only B's goodbye can remove its peers."""
    patient = [HEARTBEAT[0], "--InteropHub.federation_heartbeat_timeout=120"]
    hub_a = start_hub(tmp_path / "a", nats_url, heartbeat=patient)
    with ExitStack() as stack:
        stack.callback(stop, hub_a.proc)
        hub_b = start_hub(tmp_path / "b", nats_url, heartbeat=patient)
        stack.callback(stop, hub_b.proc)
        b = ji.connect(url=hub_b.url, token=hub_b.token, application="leaving-b")
        b.methods.register("Leaving")(lambda: {})
        a = ji.connect(url=hub_a.url, token=hub_a.token, application="staying-a")
        stack.callback(a.close)
        wait_for(lambda: servers_of(a, "Leaving"), what="B's method on A")
        b.close()
        stop(hub_b.proc)  # SIGTERM: a clean stop
        wait_for(lambda: not servers_of(a, "Leaving"), 30, "B's peers to leave A")


def test_hubs_of_another_space_are_not_seen(tmp_path: Path, nats_url: str) -> None:
    hub_a = start_hub(tmp_path / "a", nats_url, "--InteropHub.federation_space=desk-1")
    with ExitStack() as stack:
        stack.callback(stop, hub_a.proc)
        hub_b = start_hub(tmp_path / "b", nats_url, "--InteropHub.federation_space=desk-1")
        stack.callback(stop, hub_b.proc)
        hub_c = start_hub(tmp_path / "c", nats_url, "--InteropHub.federation_space=desk-2")
        stack.callback(stop, hub_c.proc)
        for hub, name in ((hub_b, "same-space"), (hub_c, "other-space")):
            io = ji.connect(url=hub.url, token=hub.token, application=name)
            stack.callback(io.close)
            io.methods.register("Where")(lambda name=name: {"from": name})
        a = ji.connect(url=hub_a.url, token=hub_a.token, application="looking-a")
        stack.callback(a.close)
        # hub D, in C's space, sees C's peer: C's announcements are flowing by then, and B's
        # have reached A; each space sees its own peers only
        hub_d = start_hub(tmp_path / "d", nats_url, "--InteropHub.federation_space=desk-2")
        stack.callback(stop, hub_d.proc)
        d = ji.connect(url=hub_d.url, token=hub_d.token, application="looking-d")
        stack.callback(d.close)
        wait_for(lambda: servers_of(d, "Where"), what="C's method on D")
        wait_for(lambda: servers_of(a, "Where"), what="the same space's method on A")
        assert [s.application for s in servers_of(d, "Where")] == ["other-space"]
        assert [s.application for s in servers_of(a, "Where")] == ["same-space"]


def test_after_nats_restarts_the_hubs_find_each_other_again(
    two_hubs: tuple[Hub, Hub], nats: Nats
) -> None:
    """NATS down for longer than the heartbeat timeout: B's peers leave A and each hub keeps
    serving its own; NATS back: the links reconnect and B's peers come back, callable."""
    hub_a, hub_b = two_hubs
    with ExitStack() as stack:
        b = ji.connect(url=hub_b.url, token=hub_b.token, application="far-b")
        stack.callback(b.close)
        b.methods.register("Far")(lambda: {"from": "b"})
        a = ji.connect(url=hub_a.url, token=hub_a.token, application="near-a")
        stack.callback(a.close)
        a.methods.register("Near")(lambda: {"from": "a"})
        wait_for(lambda: servers_of(a, "Far"), what="B's method on A")
        nats.kill()
        wait_for(lambda: not servers_of(a, "Far"), 30, "B's peers to leave A without NATS")
        assert a.methods.invoke("Near", {}, timeout=30).returned == {"from": "a"}  # still served
        nats.restart()
        wait_for(lambda: servers_of(a, "Far"), 30, "B's method back on A")
        assert a.methods.invoke("Far", {}, timeout=30).returned == {"from": "b"}


def test_a_standalone_hub_whose_nats_is_unreachable_stops_with_a_clear_error(
    tmp_path: Path,
) -> None:
    env = hub_env(tmp_path)
    nobody = f"nats://127.0.0.1:{free_port()}"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "jupyter_interop",
            "hub",
            "--port=0",
            f"--federation={nobody}",
            "--StandaloneHubApp.write_runtime_file=False",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode != 0
    assert f"no NATS server accepts this hub at {nobody}" in done.stderr
    assert "Interop hub:" not in done.stdout  # never announced as listening


#: the space of :func:`unheard_hub_a`, and the passwords of its two NATS users
SPACE = "s"
PASSWORDS = {"caller": "caller-password", "served": "served-password"}


def write_space_config(path: Path, *, muted: bool) -> None:
    """The nats-server configuration of :func:`unheard_hub_a`: user ``caller`` may not
    publish peer snapshots while ``muted``."""
    caller = space_permissions(SPACE)
    if muted:
        caller["publish"] = {**caller["publish"], "deny": [f"ji.{SPACE}.hub.*.peers"]}
    permissions = {"caller": caller, "served": space_permissions(SPACE)}
    users = [
        {"user": name, "password": PASSWORDS[name], "permissions": permissions[name]}
        for name in PASSWORDS
    ]
    path.write_text(json.dumps({"authorization": {"users": users}}))


def unmute(nats: Nats) -> None:
    """Let hub A of :func:`unheard_hub_a` announce its peers from now on (nats-server reloads
    its configuration on SIGHUP, its clients stay connected)."""
    write_space_config(Path(nats.store).parent / "nats.conf", muted=False)
    nats.proc.send_signal(signal.SIGHUP)


@pytest.fixture
def unheard_hub_a(tmp_path: Path) -> Iterator[tuple[Hub, Hub, Nats]]:
    """Hubs A and B of one space, on a nats-server that lets A's user publish anything of the
    space but its peers' snapshots: B hears of A's peers only through A's calls, so every
    caller of A is one B has no proxy for yet (the window of a caller that joined less than
    an announcement ago, made permanent); :func:`unmute` lets A announce."""
    config = tmp_path / "nats.conf"
    write_space_config(config, muted=True)
    server = Nats(tmp_path, "-c", str(config))
    with ExitStack() as stack:
        stack.callback(server.stop)
        space = f"--InteropHub.federation_space={SPACE}"
        hubs = []
        for name in ("caller", "served"):
            url = f"nats://{name}:{PASSWORDS[name]}@127.0.0.1:{server.port}"
            hub = start_hub(tmp_path / name, url, space)
            stack.callback(stop, hub.proc)
            hubs.append(hub)
        yield hubs[0], hubs[1], server


def hub_of(peer_id: str) -> str:
    """The hub id a peer id carries (``hub/core.py:new_id``)."""
    return peer_id[1:].rsplit("-", 1)[0]


def fresh_caller_and_server(
    stack: ExitStack, hub_a: Hub, hub_b: Hub
) -> tuple[ji.Interop, ji.Interop, list[ji.Instance]]:
    """``served-b`` on B with ``WhoCalls`` (its callers, as the server sees them), then
    ``fresh-a`` on A, a caller B has not heard of."""
    b = ji.connect(url=hub_b.url, token=hub_b.token, application="served-b")
    stack.callback(b.close)
    callers = who_calls(b)
    a = ji.connect(url=hub_a.url, token=hub_a.token, application="fresh-a")
    stack.callback(a.close)
    return a, b, callers


def test_a_caller_no_snapshot_announced_yet_is_seen_as_itself_by_the_server(
    unheard_hub_a: tuple[Hub, Hub, Nats],
) -> None:
    hub_a, hub_b, _ = unheard_hub_a
    with ExitStack() as stack:
        a, b, callers = fresh_caller_and_server(stack, hub_a, hub_b)
        wait_for(lambda: servers_of(a, "WhoCalls"), what="B's method on A")
        assert not [
            i for i in b.methods.servers() if i.peer_id == a.instance.peer_id
        ]  # B never heard

        a.methods.invoke("WhoCalls", {}, timeout=60)
        a.methods.invoke("WhoCalls", {}, timeout=60)  # the same proxy, opened once

        assert [c.peer_id for c in callers] == [a.instance.peer_id] * 2
        caller = callers[0]
        assert (caller.application, caller.instance) == ("fresh-a", a.instance.instance)
        assert caller.is_local is False and caller.hub == hub_of(a.instance.peer_id)


def test_the_snapshot_after_a_call_finds_the_callers_proxy_there_and_adds_its_methods(
    unheard_hub_a: tuple[Hub, Hub, Nats],
) -> None:
    """The proxy opened from a call is the one A's snapshots stand for: when they reach B,
    the caller is neither added again nor removed, and its methods come through it."""
    hub_a, hub_b, nats = unheard_hub_a
    with ExitStack() as stack:
        a, b, callers = fresh_caller_and_server(stack, hub_a, hub_b)
        a.methods.register("OnA")(lambda: {"by": "a"})
        wait_for(lambda: servers_of(a, "WhoCalls"), what="B's method on A")
        seen: list[tuple[str, str | None]] = []
        b.methods.on_server_added(lambda i: seen.append(("added", i.peer_id)))
        b.methods.on_server_removed(lambda i, why: seen.append(("removed", i.peer_id)))
        a.methods.invoke("WhoCalls", {}, timeout=60)
        wait_for(lambda: ("added", a.instance.peer_id) in seen, 30, "A's caller on B")
        assert not servers_of(b, "OnA")

        unmute(nats)
        (on_a,) = wait_for(lambda: servers_of(b, "OnA"), 30, "A's method on B, announced")
        assert on_a.peer_id == a.instance.peer_id
        assert b.methods.invoke("OnA", {}, timeout=60).returned == {"by": "a"}
        a.methods.invoke("WhoCalls", {}, timeout=60)
        assert [c.peer_id for c in callers] == [a.instance.peer_id] * 2
        assert [e for e in seen if e[1] == a.instance.peer_id] == [("added", a.instance.peer_id)]
        served_log = Path(nats.store).parent / "served" / "hub.log"
        assert "no proxy for peer" not in served_log.read_text()


async def call_with(nats_url: str, hub: str, request: dict[str, Any]) -> dict[str, Any]:
    """One hand-written call request to ``hub``'s invoke subject: its reply."""
    nc = await nats_connect(nats_url, inbox_prefix=inbox_prefix(SPACE), connect_timeout=5)
    try:
        reply = await nc.request(subjects(SPACE, hub)["invoke"], orjson.dumps(request), timeout=30)
        answer: dict[str, Any] = orjson.loads(reply.data)
        return answer
    finally:
        await nc.close()


def test_a_call_request_naming_no_peer_of_another_hub_is_refused(
    unheard_hub_a: tuple[Hub, Hub, Nats],
) -> None:
    """Whoever calls must be a peer of the hub it claims, another hub than the owner, with
    an identity; otherwise the owning hub stands for nobody and says why."""
    hub_a, hub_b, server = unheard_hub_a
    with ExitStack() as stack:
        b = ji.connect(url=hub_b.url, token=hub_b.token, application="served-b")
        stack.callback(b.close)
        b.methods.register("Echo")(lambda x: {"x": x})
        a = ji.connect(url=hub_a.url, token=hub_a.token, application="fresh-a")
        stack.callback(a.close)
        wait_for(lambda: servers_of(a, "Echo"), what="B's method on A")
        (echo,) = a.methods.methods("Echo")
        b_hub, a_hub = hub_of(b.instance.peer_id), hub_of(a.instance.peer_id)
        identity = {"application": "liar"}
        url = f"nats://served:{PASSWORDS['served']}@127.0.0.1:{server.port}"
        lies = {
            "one of B's own peers": (
                {"peer_id": b.instance.peer_id, "hub": b_hub, "identity": identity, "seq": 1},
                "is not a peer of another hub",
            ),
            "an id that is not its hub's": (
                {"peer_id": f"p{b_hub}-999", "hub": a_hub, "identity": identity, "seq": 1},
                "is not a peer of another hub",
            ),
            "no identity": (
                {"peer_id": f"p{a_hub}-999", "hub": a_hub, "seq": 1},
                "gives no identity",
            ),
            "a bare peer id": (a.instance.peer_id, "names no caller"),
        }
        for what, (caller, refusal) in lies.items():
            request = {
                "peer_id": b.instance.peer_id,
                "method_id": echo.definitions[0].id,
                "caller": caller,
                "arguments_kv": {"x": 1},
            }
            reply = asyncio.run(call_with(url, b_hub, request))
            assert "Bad call" in reply["error"]["reason"], what
            assert refusal in reply["error"]["reason"], what
        # nobody was made for them, and B goes on serving
        assert [i.application for i in b.methods.servers() if not i.is_local] == []
        assert a.methods.invoke("Echo", {"x": 2}, timeout=60).returned == {"x": 2}
