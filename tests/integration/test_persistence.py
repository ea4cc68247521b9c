"""Retained contexts survive a hub restart: written through GW3, read back by a new subscriber."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from test_standalone import Hub, connect, hello, recv_until, start_hub, stop_cleanly


async def _peer(hub: Hub) -> Any:
    ws = await connect(hub.url)
    await ws.send(hello(hub.token, "persist-test"))
    await recv_until(ws, "welcome")
    return ws


def _context_ids(hub: Hub) -> dict[str, str]:
    status, contexts = hub.get("contexts", token=hub.token)
    assert status == 200
    return {c["name"]: c["context_id"] for c in contexts}


@pytest.mark.asyncio
async def test_retained_context_survives_restart_and_others_do_not(tmp_path: Path) -> None:
    store = tmp_path / "store" / "contexts.sqlite"
    args = ("--persist", f"--StandaloneHubApp.context_store_path={store}")
    hub = start_hub(tmp_path, *args)
    ws = await _peer(hub)
    for name, lifetime in (("results", "retained"), ("scratch", "ref-counted")):
        await ws.send(
            json.dumps(
                {
                    "type": "create-context",
                    "request_id": name,
                    "name": name,
                    "lifetime": lifetime,
                    "data": {"rows": [1, 2, 3]},
                }
            )
        )
        await recv_until(ws, "context-created")
    command = {"type": "set", "path": "meta.author", "value": "ana"}
    await ws.send(
        json.dumps(
            {
                "type": "update-context",
                "request_id": "u",
                "context_id": _context_ids(hub)["results"],
                "delta": {"commands": [command]},
            }
        )
    )
    await recv_until(ws, "success")
    await ws.close()
    stop_cleanly(hub)

    again = start_hub(tmp_path, *args)
    try:
        ids = _context_ids(again)
        assert "scratch" not in ids  # only retained contexts are persisted
        ws = await _peer(again)
        await ws.send(
            json.dumps(
                {"type": "subscribe-context", "request_id": "s", "context_id": ids["results"]}
            )
        )
        snapshot = await recv_until(ws, "subscribed-context")
        assert snapshot["name"] == "results"
        assert snapshot["data"] == {"rows": [1, 2, 3], "meta": {"author": "ana"}}
        assert snapshot["version"] == 1
        await ws.close()
    finally:
        stop_cleanly(again)


@pytest.mark.asyncio
async def test_hub_without_persist_starts_empty(tmp_path: Path) -> None:
    hub = start_hub(tmp_path)
    try:
        ws = await _peer(hub)
        await ws.send(
            json.dumps({"type": "create-context", "request_id": "c", "name": "x", "data": {}})
        )
        await recv_until(ws, "context-created")
        await ws.close()
    finally:
        stop_cleanly(hub)
    again = start_hub(tmp_path)
    try:
        assert "x" not in _context_ids(again)
    finally:
        stop_cleanly(again)
