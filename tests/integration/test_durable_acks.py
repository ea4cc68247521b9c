"""An acknowledged retained update survives ``kill -9`` (issue 11, defect 4).

A real ``python -m jupyter_interop hub --persist`` process; a raw GW3 client sends a burst of
``create-context`` plus updates without waiting, waits for the last ``success``, and the hub is
killed with SIGKILL at once. After a restart every acknowledged update must be in the context.
With ``--StandaloneHubApp.context_ack=immediate`` (the old behaviour) the same burst may be lost,
which is what the setting documents. The server extension keeps the same promise.
"""

from __future__ import annotations

import json
import signal
import socket
import subprocess
from pathlib import Path
from typing import Any

import pytest
from test_client_support import free_port, isolated_env, jupyter_server_command, wait_for
from test_standalone import Hub, connect, hello, recv, recv_until, start_hub, stop_cleanly

BURST = 30


async def _peer(hub: Hub, name: str) -> Any:
    ws = await connect(hub.url)
    await ws.send(hello(hub.token, name))
    await recv_until(ws, "welcome")
    return ws


def _kill(hub: Hub) -> None:
    hub.proc.send_signal(signal.SIGKILL)
    hub.proc.communicate(timeout=20)


async def _read_back(hub: Hub, name: str) -> dict[str, Any]:
    status, contexts = hub.get("contexts", token=hub.token)
    assert status == 200
    ids = {c["name"]: c["context_id"] for c in contexts}
    assert name in ids, f"context {name!r} lost: the hub restarted with {sorted(ids)}"
    ws = await _peer(hub, "reader")
    await ws.send(
        json.dumps({"type": "subscribe-context", "request_id": "s", "context_id": ids[name]})
    )
    snapshot: dict[str, Any] = await recv_until(ws, "subscribed-context")
    await ws.close()
    return snapshot


def _store_args(tmp_path: Path) -> tuple[str, ...]:
    store = tmp_path / "store" / "contexts.sqlite"
    return ("--persist", f"--StandaloneHubApp.context_store_path={store}")


@pytest.mark.asyncio
async def test_burst_acknowledged_then_killed_is_all_there_after_restart(tmp_path: Path) -> None:
    args = _store_args(tmp_path)
    hub = start_hub(tmp_path, *args)
    ws = await _peer(hub, "writer")
    await ws.send(
        json.dumps({"type": "create-context", "request_id": "c", "name": "burst", "data": {"n": 0}})
    )
    created = await recv_until(ws, "context-created")
    context_id = created["context_id"]
    # every update sent before any answer: the hub sees one burst
    for i in range(1, BURST + 1):
        update = {"updated": {"n": i, f"k{i}": i}}
        await ws.send(
            json.dumps(
                {
                    "type": "update-context",
                    "request_id": f"u{i}",
                    "context_id": context_id,
                    "delta": update,
                }
            )
        )
    acked: set[str] = set()
    while len(acked) < BURST:
        reply = await recv(ws)
        assert reply["type"] != "error", reply
        if reply["type"] == "success":
            acked.add(reply["request_id"])
    _kill(hub)  # right after the last success: no clean shutdown, no final flush

    again = start_hub(tmp_path, *args)
    try:
        snapshot = await _read_back(again, "burst")
        assert snapshot["data"]["n"] == BURST
        assert all(snapshot["data"][f"k{i}"] == i for i in range(1, BURST + 1))
        assert snapshot["version"] == BURST
    finally:
        stop_cleanly(again)


@pytest.mark.asyncio
async def test_steady_updates_killed_after_an_ack_keep_that_ack(tmp_path: Path) -> None:
    """One update at a time, each waiting for its ack: the last acknowledged one is on disk."""
    args = _store_args(tmp_path)
    hub = start_hub(tmp_path, *args)
    ws = await _peer(hub, "writer")
    await ws.send(
        json.dumps(
            {"type": "create-context", "request_id": "c", "name": "steady", "data": {"n": 0}}
        )
    )
    context_id = (await recv_until(ws, "context-created"))["context_id"]
    last_version = 0
    for i in range(1, 51):
        await ws.send(
            json.dumps(
                {
                    "type": "update-context",
                    "request_id": f"u{i}",
                    "context_id": context_id,
                    "delta": {"updated": {"n": i}},
                }
            )
        )
        reply = await recv_until(ws, "success")
        last_version = reply.get("version", i)
    _kill(hub)

    again = start_hub(tmp_path, *args)
    try:
        snapshot = await _read_back(again, "steady")
        assert snapshot["data"] == {"n": 50}
        assert snapshot["version"] == last_version == 50
    finally:
        stop_cleanly(again)


def _server(tmp: Path, port: int) -> subprocess.Popen[str]:
    """A Jupyter server with the extension and its default persistence, once its hub is up."""
    root = tmp / "root"
    root.mkdir(exist_ok=True)
    proc = subprocess.Popen(
        jupyter_server_command(port, root),
        env=isolated_env(tmp),
        cwd=str(root),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    path = tmp / "runtime" / f"jupyter_interop-{proc.pid}.json"

    def listening() -> bool:
        assert proc.poll() is None, "the server exited"
        if not path.exists():
            return False
        with socket.socket() as probe:
            return probe.connect_ex(("127.0.0.1", port)) == 0

    wait_for(listening, 90, "the server's hub")
    return proc


@pytest.mark.asyncio
async def test_server_extension_acknowledged_burst_survives_kill(tmp_path: Path) -> None:
    port = free_port()
    proc = _server(tmp_path, port)
    info = json.loads((tmp_path / "runtime" / f"jupyter_interop-{proc.pid}.json").read_text())
    ws = await connect(info["url"])
    await ws.send(hello(info["token"], "writer"))
    await recv_until(ws, "welcome")
    await ws.send(
        json.dumps({"type": "create-context", "request_id": "c", "name": "ext", "data": {}})
    )
    context_id = (await recv_until(ws, "context-created"))["context_id"]
    for i in range(1, BURST + 1):
        update = {"updated": {"n": i}}
        message = {"type": "update-context", "request_id": f"u{i}", "context_id": context_id}
        await ws.send(json.dumps({**message, "delta": update}))
    acked = 0
    while acked < BURST:
        reply = await recv(ws)
        assert reply["type"] != "error", reply
        acked += reply["type"] == "success"
    proc.kill()
    proc.wait(30)

    again = _server(tmp_path, port)
    try:
        info = json.loads((tmp_path / "runtime" / f"jupyter_interop-{again.pid}.json").read_text())
        ws = await connect(info["url"])
        await ws.send(hello(info["token"], "reader"))
        await recv_until(ws, "welcome")
        await ws.send(
            json.dumps({"type": "create-context", "request_id": "r", "name": "ext", "data": {}})
        )
        reply = await recv(ws)
        while reply.get("request_id") != "r":
            reply = await recv(ws)
        # creating a name that exists subscribes to it; a new context means it was lost
        assert reply["type"] == "subscribed-context", f"context lost in the crash: {reply}"
        assert reply["data"] == {"n": BURST} and reply["version"] == BURST
        await ws.close()
    finally:
        again.terminate()
        again.wait(60)
