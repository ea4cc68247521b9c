"""The standalone hub as users run it: a real ``python -m jupyter_interop hub`` subprocess.

Covers the command line contract (one printed line, runtime file, clean stop on signals), the
authentication paths, malformed input, and per-peer isolation under a slow consumer.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import stat
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import pytest_asyncio
import websockets
from websockets.asyncio.client import ClientConnection

LINE_PREFIX = "Interop hub: "


@dataclass
class Hub:
    proc: subprocess.Popen[str]
    url: str  # without the token
    token: str
    runtime_dir: Path

    @property
    def http(self) -> str:
        parts = urlsplit(self.url)
        return f"http://{parts.netloc}"

    def get(self, view: str, token: str | None = None) -> tuple[int, Any]:
        """GET /interop/api/<view>; returns (status, decoded body)."""
        url = f"{self.http}/interop/api/{view}"
        if token is not None:
            url += f"?token={token}"
        try:
            with urllib.request.urlopen(url, timeout=10) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read() or b"null")


def start_hub(tmp_path: Path, *args: str, env: dict[str, str] | None = None) -> Hub:
    runtime_dir = tmp_path / "runtime"
    environ = {k: v for k, v in os.environ.items() if not k.startswith("JUPYTER_INTEROP_")}
    environ.update(
        JUPYTER_RUNTIME_DIR=str(runtime_dir),
        JUPYTER_DATA_DIR=str(tmp_path / "data"),
        JUPYTER_CONFIG_DIR=str(tmp_path / "config"),
        **(env or {}),
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "jupyter_interop", "hub", "--port", "0", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=environ,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line.startswith(LINE_PREFIX):
        proc.kill()
        _, err = proc.communicate(timeout=10)
        raise AssertionError(f"unexpected first line {line!r}; stderr: {err}")
    full = line[len(LINE_PREFIX) :].strip()
    url, _, token = full.partition("?token=")
    return Hub(proc=proc, url=url, token=token, runtime_dir=runtime_dir)


def stop_hub(hub: Hub, sig: int = signal.SIGTERM) -> tuple[int, str, str]:
    if hub.proc.poll() is None:
        hub.proc.send_signal(sig)
    out, err = hub.proc.communicate(timeout=20)
    return hub.proc.returncode, out, err


def stop_cleanly(hub: Hub) -> None:
    """Stop the hub and check that nothing went wrong inside it meanwhile."""
    code, _, err = stop_hub(hub)
    assert code == 0, err
    for sign in ("Traceback", "never retrieved", "Uncaught exception"):
        assert sign not in err, err


@pytest.fixture
def hub(tmp_path: Path) -> Iterator[Hub]:
    h = start_hub(tmp_path)
    yield h
    stop_cleanly(h)


@pytest.fixture
def small_hub(tmp_path: Path) -> Iterator[Hub]:
    """A hub with small frame and queue limits, to reach them quickly."""
    h = start_hub(
        tmp_path,
        "--StandaloneHubApp.max_message_size=65536",
        "--StandaloneHubApp.outbox_soft_messages=50",
        "--StandaloneHubApp.outbox_hard_messages=500",
        "--StandaloneHubApp.outbox_stall_seconds=1.5",
        "--StandaloneHubApp.outbox_soft_bytes=1000000",
        "--StandaloneHubApp.outbox_hard_bytes=4000000",
    )
    yield h
    stop_cleanly(h)


@pytest.fixture
def lagging_hub(tmp_path: Path) -> Iterator[Hub]:
    """Small soft limits, but a generous stall limit: a backlog, never a disconnect."""
    h = start_hub(
        tmp_path,
        "--StandaloneHubApp.outbox_soft_messages=50",
        "--StandaloneHubApp.outbox_stall_seconds=60",
    )
    yield h
    stop_cleanly(h)


async def connect(url: str, **kwargs: Any) -> ClientConnection:
    return await websockets.connect(url, proxy=None, compression=None, **kwargs)


async def recv(ws: ClientConnection, timeout: float = 10) -> dict[str, Any]:
    return json.loads(await asyncio.wait_for(ws.recv(), timeout))


async def recv_until(ws: ClientConnection, mtype: str, timeout: float = 10) -> dict[str, Any]:
    """Read until a message of ``mtype`` (announcements such as context-added come first)."""
    deadline = time.monotonic() + timeout
    while True:
        message = await recv(ws, max(0.1, deadline - time.monotonic()))
        if message.get("type") == mtype:
            return message


async def closed(ws: ClientConnection, timeout: float = 10) -> tuple[int | None, str | None]:
    """Read until the hub closes the socket; returns its close code and reason."""
    deadline = time.monotonic() + timeout
    try:
        while True:
            await asyncio.wait_for(ws.recv(), max(0.1, deadline - time.monotonic()))
    except websockets.ConnectionClosed as error:
        return (error.rcvd.code, error.rcvd.reason) if error.rcvd else (None, None)


def hello(token: str | None = None, application: str = "test", **extra: Any) -> str:
    message: dict[str, Any] = {
        "domain": "global",
        "type": "hello",
        "request_id": "h1",
        "identity": {"application": application},
        **extra,
    }
    if token is not None:
        message["authentication"] = {"method": "access-token", "token": token}
    return json.dumps(message)


async def peer(
    hub: Hub, application: str, *, join_bus: bool = True, notices: bool = False, **kw: Any
) -> Any:
    ws = await connect(hub.url, **kw)
    extra = {"extensions": {"jupyter_interop": {"notices": True}}} if notices else {}
    await ws.send(hello(hub.token, application, **extra))
    welcome = await recv_until(ws, "welcome")
    if join_bus:
        await ws.send(json.dumps({"type": "join", "destination": "bus", "request_id": "j"}))
        await recv_until(ws, "success")
    return ws, welcome["peer_id"]


async def subscribe(ws: ClientConnection, topic: str) -> str:
    await ws.send(
        json.dumps({"domain": "bus", "type": "subscribe", "topic": topic, "request_id": "s"})
    )
    return str((await recv_until(ws, "subscribed"))["subscription_id"])


def publish(topic: str, data: Any) -> str:
    return json.dumps({"domain": "bus", "type": "publish", "topic": topic, "data": data})


@pytest_asyncio.fixture
async def pair(hub: Hub) -> AsyncIterator[tuple[ClientConnection, ClientConnection]]:
    a, _ = await peer(hub, "a")
    b, _ = await peer(hub, "b")
    yield a, b
    await a.close()
    await b.close()


async def assert_bus_works(sender: ClientConnection, receiver: ClientConnection) -> None:
    """One bus round: the receiver subscribes, the sender publishes, the receiver gets it."""
    topic = f"t{time.monotonic_ns()}"
    await subscribe(receiver, topic)
    await sender.send(publish(topic, {"ok": True}))
    event = await recv_until(receiver, "event")
    assert event["data"] == {"ok": True}


# ---------------------------------------------------------------- command line contract


def test_prints_one_line_writes_runtime_file_and_stops_on_sigterm(tmp_path: Path) -> None:
    h = start_hub(tmp_path, "--token", "tok-123")
    assert h.token == "tok-123"
    assert h.url.startswith("ws://127.0.0.1:") and h.url.endswith("/interop/gateway")
    files = list(h.runtime_dir.glob("jupyter_interop-*.json"))
    assert [f.name for f in files] == [f"jupyter_interop-{h.proc.pid}.json"]
    assert stat.S_IMODE(files[0].stat().st_mode) == 0o600
    info = json.loads(files[0].read_text())
    assert info["url"] == h.url
    assert info["token"] == "tok-123"
    assert info["pid"] == h.proc.pid
    assert info["kind"] == "standalone"
    code, out, err = stop_hub(h, signal.SIGTERM)
    assert code == 0, err
    assert out == ""  # nothing after the one line
    assert not files[0].exists()


def test_sigint_exits_zero(tmp_path: Path) -> None:
    h = start_hub(tmp_path)
    code, _, err = stop_hub(h, signal.SIGINT)
    assert code == 0, err
    assert list(h.runtime_dir.glob("jupyter_interop-*.json")) == []


def test_token_from_environment(tmp_path: Path) -> None:
    h = start_hub(tmp_path, env={"JUPYTER_INTEROP_TOKEN": "from-env"})
    try:
        assert h.token == "from-env"
    finally:
        stop_hub(h)


def test_generated_tokens_differ(tmp_path: Path) -> None:
    first, second = start_hub(tmp_path / "1"), start_hub(tmp_path / "2")
    try:
        assert len(first.token) >= 32 and first.token != second.token
        assert first.url != second.url  # port 0 picked two free ports
    finally:
        stop_hub(first)
        stop_hub(second)


def test_traitlets_config_reaches_the_hub(tmp_path: Path) -> None:
    h = start_hub(tmp_path, '--InteropHub.user="alice"')
    try:

        async def scenario() -> dict[str, Any]:
            ws = await connect(h.url)
            await ws.send(hello(h.token))
            welcome = await recv_until(ws, "welcome")
            await ws.close()
            return welcome

        welcome = asyncio.run(scenario())
        assert welcome["resolved_identity"]["user"] == "alice"
    finally:
        stop_hub(h)


def test_jupyter_interop_command_dispatches(tmp_path: Path) -> None:
    """``jupyter interop hub`` reaches the same app (jupyter's subcommand dispatch)."""
    result = subprocess.run(
        ["jupyter", "interop", "hub", "--help"], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert "--port" in result.stdout and "StandaloneHubApp" in result.stdout
    bare = subprocess.run(
        [sys.executable, "-m", "jupyter_interop"], capture_output=True, text=True, timeout=60
    )
    assert bare.returncode == 2 and "hub" in bare.stderr


# ---------------------------------------------------------------- authentication


@pytest.mark.asyncio
async def test_hello_without_token_is_refused_then_closed(hub: Hub) -> None:
    ws = await connect(hub.url)
    await ws.send(hello(None))
    error = await recv(ws)
    assert error["type"] == "error"
    assert error["request_id"] == "h1"
    assert error["reason_uri"] == "global.errors.authentication.failure"
    assert await closed(ws) == (1008, "authentication failed")


@pytest.mark.asyncio
async def test_hello_with_wrong_token_is_refused(hub: Hub) -> None:
    ws = await connect(hub.url)
    await ws.send(hello("wrong"))
    assert (await recv(ws))["reason_uri"] == "global.errors.authentication.failure"
    code, _ = await closed(ws)
    assert code == 1008


@pytest.mark.asyncio
async def test_secret_authentication_is_accepted(hub: Hub) -> None:
    ws = await connect(hub.url)
    auth = {"method": "secret", "login": "me", "secret": hub.token}
    await ws.send(hello(None, authentication=auth))
    assert (await recv(ws))["type"] == "welcome"
    await ws.close()


@pytest.mark.asyncio
async def test_request_before_hello_is_refused_then_closed(hub: Hub) -> None:
    ws = await connect(hub.url)
    await ws.send(json.dumps({"type": "join", "destination": "agm", "request_id": "r"}))
    error = await recv(ws)
    assert error["reason_uri"] == "global.errors.not_authenticated"
    code, _ = await closed(ws)
    assert code == 1008


@pytest.mark.asyncio
async def test_token_in_url_is_a_trusted_upgrade(hub: Hub) -> None:
    ws = await connect(f"{hub.url}?token={hub.token}")
    await ws.send(hello(None))  # no authentication in hello
    assert (await recv(ws))["type"] == "welcome"
    await ws.close()
    ws = await connect(hub.url, additional_headers={"Authorization": f"token {hub.token}"})
    await ws.send(hello(None))
    assert (await recv(ws))["type"] == "welcome"
    await ws.close()


@pytest.mark.asyncio
async def test_wrong_token_in_url_is_refused_at_upgrade(hub: Hub) -> None:
    with pytest.raises(websockets.InvalidStatus) as info:
        await connect(f"{hub.url}?token=nope")
    assert info.value.response.status_code == 403


def test_rest_views_require_the_token(hub: Hub) -> None:
    refused = (403, {"status": 403, "message": "Forbidden"})
    for view in ("status", "peers", "methods", "streams", "contexts", "channels"):
        assert hub.get(view) == refused
        assert hub.get(view, "wrong") == refused
        status, body = hub.get(view, hub.token)
        assert status == 200, view
        assert isinstance(body, dict if view == "status" else list)
    status, body = hub.get("status", hub.token)
    assert body["kind"] == "standalone" and body["url"] == hub.url
    assert hub.get("nonsense", hub.token) == (
        404,
        {"status": 404, "message": "No interop view 'nonsense'"},
    )


@pytest.mark.asyncio
async def test_peers_view_lists_connected_peers(hub: Hub) -> None:
    ws, peer_id = await peer(hub, "viewer-test")
    _, peers = await asyncio.to_thread(hub.get, "peers", hub.token)
    assert [p["peer_id"] for p in peers] == [peer_id]
    assert peers[0]["identity"]["application"] == "viewer-test"
    await ws.close()


# ---------------------------------------------------------------- malformed input


@pytest.mark.asyncio
async def test_invalid_json_gets_an_error_and_others_are_unaffected(
    pair: tuple[ClientConnection, ClientConnection],
) -> None:
    a, b = pair
    await a.send("{not json")
    error = await recv(a)
    assert error["type"] == "error"
    assert error["reason_uri"] == "global.errors.invalid_message"
    await a.send("[1, 2]")  # JSON, but not an object
    assert (await recv(a))["reason_uri"] == "global.errors.invalid_message"
    await assert_bus_works(a, b)  # the sender itself still works...
    await assert_bus_works(b, a)  # ...and so does everybody else


@pytest.mark.asyncio
async def test_binary_frame_gets_an_error_not_a_crash(
    pair: tuple[ClientConnection, ClientConnection],
) -> None:
    a, b = pair
    await a.send(b"\x00\x01binary")
    error = await recv(a)
    assert error["type"] == "error" and "Binary" in error["reason"]
    await assert_bus_works(b, a)


@pytest.mark.asyncio
async def test_oversize_frame_closes_1009_and_others_are_unaffected(small_hub: Hub) -> None:
    a, _ = await peer(small_hub, "a")
    b, _ = await peer(small_hub, "b")
    c, _ = await peer(small_hub, "c")
    await a.send(publish("big", "x" * 70_000))
    code, _ = await closed(a)
    assert code == 1009
    await assert_bus_works(b, c)
    await b.close()
    await c.close()


# ---------------------------------------------------------------- slow consumers


def _tiny_buffer_socket(url: str) -> socket.socket:
    """A connected socket with a small receive buffer, so a client that stops reading
    backs up into the hub quickly."""
    parts = urlsplit(url)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect((parts.hostname or "127.0.0.1", parts.port or 80))
    sock.setblocking(False)
    return sock


@pytest.mark.asyncio
async def test_slow_consumer_loses_events_not_others_and_is_closed(small_hub: Hub) -> None:
    hub = small_hub
    fast, _ = await peer(hub, "fast")
    publisher, _ = await peer(hub, "publisher")
    slow, slow_id = await peer(hub, "slow", sock=_tiny_buffer_socket(hub.url), max_queue=1)
    await subscribe(fast, "flood")
    await subscribe(slow, "flood")  # ...and from now on, the slow peer never reads

    payload = "p" * 8192
    sent = 0
    started = time.monotonic()
    batch_times = []
    closed_slow = False
    while time.monotonic() - started < 60:
        t0 = time.monotonic()
        for _ in range(100):
            await publisher.send(publish("flood", {"n": sent, "pad": payload}))
            sent += 1
        # the fast peer gets every single event, in order, batch after batch
        for expected in range(sent - 100, sent):
            event = await recv_until(fast, "event")
            assert event["data"]["n"] == expected
        batch_times.append(time.monotonic() - t0)
        _, status = await asyncio.to_thread(hub.get, "status", hub.token)
        if status["slow_consumers_closed"] >= 1:
            closed_slow = True
            break
    assert closed_slow, "the stuck consumer was never disconnected"
    assert status["dropped_events"] > 0, status
    # the slow peer is gone for the others too
    _, peers = await asyncio.to_thread(hub.get, "peers", hub.token)
    assert slow_id not in [p["peer_id"] for p in peers]
    # and a stuck peer did not slow the fast one down: no batch took long
    assert max(batch_times) < 5, batch_times
    await fast.close()
    await publisher.close()
    slow.transport.abort()


@pytest.mark.asyncio
async def test_one_overflowing_batch_closes_and_counts_once(tmp_path: Path) -> None:
    """A hello's reply (welcome + one context-added per channel) exceeds this tiny hard limit
    within a single batch: the connection is closed once, and counted once."""
    h = start_hub(
        tmp_path,
        "--StandaloneHubApp.outbox_soft_messages=2",
        "--StandaloneHubApp.outbox_hard_messages=3",
    )
    try:
        ws = await connect(h.url)
        await ws.send(hello(h.token))
        code, reason = await closed(ws)
        assert code == 1008 and reason is not None and reason.startswith("slow consumer")
        _, status = await asyncio.to_thread(h.get, "status", h.token)
        assert status["slow_consumers_closed"] == 1
        assert status["connections"] == 0 and status["peers"] == 0
    finally:
        stop_cleanly(h)


@pytest.mark.asyncio
async def test_every_event_is_delivered_or_counted_in_a_notice(lagging_hub: Hub) -> None:
    hub = lagging_hub
    publisher, _ = await peer(hub, "publisher")
    lagging, _ = await peer(
        hub, "lagging", notices=True, sock=_tiny_buffer_socket(hub.url), max_queue=1
    )
    await subscribe(lagging, "flood")
    total = 1000
    for n in range(total):  # the lagging peer reads nothing meanwhile
        await publisher.send(publish("flood", {"n": n, "pad": "p" * 8192}))
    await publisher.send(json.dumps({"type": "create-token", "request_id": "sync"}))
    await recv_until(publisher, "token")  # the hub has routed every publish
    received: list[int] = []
    notices: list[dict[str, Any]] = []
    while len(received) + sum(n["count"] for n in notices) < total:
        message = await recv(lagging)
        if message["type"] == "event":
            received.append(message["data"]["n"])
        else:
            assert message["type"] == "events-dropped", message
            notices.append(message)
    assert notices, "nothing was dropped: the test did not create a backlog"
    assert received == sorted(received)  # what arrives is in order
    assert notices[-1]["total"] == total - len(received)
    _, peers = await asyncio.to_thread(hub.get, "peers", hub.token)
    (entry,) = [p for p in peers if p["identity"]["application"] == "lagging"]
    assert entry["dropped_events"] == total - len(received)
    await publisher.close()
    await lagging.close()


@pytest.mark.asyncio
async def test_consumer_that_never_reads_replies_hits_the_hard_limit(small_hub: Hub) -> None:
    hub = small_hub
    other, _ = await peer(hub, "other")
    helper, _ = await peer(hub, "helper")
    greedy, greedy_id = await peer(hub, "greedy", sock=_tiny_buffer_socket(hub.url), max_queue=1)
    await helper.send(
        json.dumps(
            {
                "type": "create-context",
                "request_id": "c",
                "name": "big",
                "data": {"blob": "x" * 60_000},
                "lifetime": "retained",
            }
        )
    )
    context_id = (await recv_until(helper, "context-created"))["context_id"]
    # each subscribe-context is answered with the full 60 kB snapshot; replies are never
    # dropped, so they pile up until the hard byte limit closes the connection
    request = json.dumps({"type": "subscribe-context", "request_id": "s", "context_id": context_id})
    for _ in range(600):
        try:
            await asyncio.wait_for(greedy.send(request), 5)
        except (websockets.ConnectionClosed, TimeoutError):
            break
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        _, status = await asyncio.to_thread(hub.get, "status", hub.token)
        if status["slow_consumers_closed"]:
            break
        await asyncio.sleep(0.2)
    assert status["slow_consumers_closed"] == 1
    assert status["pending_bytes"] < 4_000_000  # the hub let go of the backlog
    _, peers = await asyncio.to_thread(hub.get, "peers", hub.token)
    assert greedy_id not in [p["peer_id"] for p in peers]
    await assert_bus_works(other, helper)
    await other.close()
    await helper.close()
    greedy.transport.abort()
