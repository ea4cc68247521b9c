"""Figures of what a hostile peer can do to a standalone hub: ``python -m benchmarks.hostile``.

Prints, for a fresh hub each:

* ``chunks``: hub RSS growth after three binary peers each send one 28-byte chunk header
  announcing a message just under the 2 GiB cap (memory must follow the bytes that arrive);
* ``stall``: seconds from the end of a burst to the hub closing a subscriber that stopped
  reading (``outbox_stall_seconds`` = 1.5 here; the stall rule must not wait for more data);
* ``deep``: what a peer gets for a bus publish nested 260 levels deep, and whether the
  subscriber is still connected afterwards.

Nothing is asserted: the regression tests are in ``tests/integration/test_hub_hostile.py``.
Each figure waits on the hub's own answers (replies, its status view), with timeouts.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import time
import urllib.request
from typing import Any
from urllib.parse import urlsplit

import orjson
import psutil
from websockets.asyncio.client import ClientConnection, connect

from .procs import Hub, ProcessGroup

MIB = 2**20
CHUNK_CAP = 2 * 1024 * MIB


async def peer(hub: Hub, name: str, sock: socket.socket | None = None, **ext: bool) -> Any:
    kwargs: dict[str, Any] = {"max_queue": 1} if sock is not None else {}
    ws = await connect(
        f"{hub.url}?token={hub.token}",
        sock=sock,
        max_size=None,
        compression=None,
        ping_interval=None,
        **kwargs,
    )
    hello: dict[str, Any] = {
        "domain": "global",
        "type": "hello",
        "request_id": "h",
        "identity": {"application": name},
        "authentication": {"method": "access-token", "token": hub.token},
    }
    if ext:
        hello["extensions"] = {"jupyter_interop": ext}
    await ws.send(json.dumps(hello))
    await reply(ws, "h")
    return ws


async def reply(ws: ClientConnection, request_id: str, timeout: float = 60) -> dict[str, Any]:
    while True:
        frame = await asyncio.wait_for(ws.recv(), timeout)
        if isinstance(frame, bytes) and frame[:4] == b"JIB1":
            continue
        message = json.loads(frame)
        for item in message if isinstance(message, list) else [message]:
            if item.get("request_id") == request_id:
                return dict(item)


async def request(ws: ClientConnection, message: dict[str, Any], rid: str) -> dict[str, Any]:
    await ws.send(json.dumps({**message, "request_id": rid}))
    return await reply(ws, rid)


def view(hub: Hub, name: str) -> Any:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    http = hub.url.replace("ws://", "http://").split("/interop/")[0]
    with opener.open(f"{http}/interop/api/{name}?token={hub.token}", timeout=10) as response:
        return json.loads(response.read())


async def chunks(group: ProcessGroup) -> str:
    hub = Hub(group)
    try:
        peers = [await peer(hub, f"announcer{i}", binary=True) for i in range(3)]
        rss0 = psutil.Process(hub.pid).memory_info().rss
        for n, ws in enumerate(peers):
            header = b"JIC1" + (1).to_bytes(4, "little") + (0).to_bytes(4, "little")
            header += (CHUNK_CAP - 1).to_bytes(8, "little") + (0).to_bytes(8, "little")
            await ws.send(header)
            join = {"domain": "global", "type": "join", "destination": "bus"}
            await request(ws, join, f"j{n}")
        grown = psutil.Process(hub.pid).memory_info().rss - rss0
        for ws in peers:
            await ws.close()
        return f"chunks: hub RSS grew {grown / MIB:.1f} MiB after 3 announcements of 2 GiB"
    finally:
        hub.stop()


def tiny_socket(url: str) -> socket.socket:
    parts = urlsplit(url)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect((parts.hostname or "127.0.0.1", parts.port or 80))
    sock.setblocking(False)
    return sock


async def stall(group: ProcessGroup) -> str:
    hub = Hub(
        group,
        args=[
            "--StandaloneHubApp.outbox_soft_messages=50",
            "--StandaloneHubApp.outbox_soft_bytes=1000000",
            "--StandaloneHubApp.outbox_stall_seconds=1.5",
        ],
    )
    try:
        stuck = await peer(hub, "stuck", sock=tiny_socket(hub.url))
        await request(stuck, {"domain": "global", "type": "join", "destination": "bus"}, "j")
        await request(stuck, {"domain": "bus", "type": "subscribe", "topic": "t"}, "s")
        publisher = await peer(hub, "publisher")
        await request(publisher, {"domain": "global", "type": "join", "destination": "bus"}, "j")
        pad = "p" * 8192
        for n in range(1000):
            await publisher.send(
                orjson.dumps(
                    {"domain": "bus", "type": "publish", "topic": "t", "data": {"n": n, "pad": pad}}
                ).decode()
            )
        await request(publisher, {"domain": "global", "type": "join", "destination": "bus"}, "e")
        ended = time.monotonic()
        while time.monotonic() - ended < 90:
            status = await asyncio.to_thread(view, hub, "status")
            if status["slow_consumers_closed"]:
                waited = time.monotonic() - ended
                return f"stall: stuck subscriber closed {waited:.1f} s after the burst ended"
            await asyncio.sleep(0.1)
        return "stall: stuck subscriber still connected 90 s after the burst ended"
    finally:
        hub.stop()


async def deep(group: ProcessGroup) -> str:
    hub = Hub(group)
    try:
        subscriber = await peer(hub, "subscriber")
        attacker = await peer(hub, "attacker")
        for ws in (subscriber, attacker):
            await request(ws, {"domain": "global", "type": "join", "destination": "bus"}, "j")
        await request(subscriber, {"domain": "bus", "type": "subscribe", "topic": "md.>"}, "s")
        value: Any = 1
        for level in range(260):
            value = {"a": value} if level % 2 else [value]
        publish = {"domain": "bus", "type": "publish", "topic": "md.x", "data": value}
        try:
            got = await asyncio.wait_for(request(attacker, publish, "deep"), 10)
            answer = f"{got['type']} {got.get('reason_uri', '')}"
        except asyncio.TimeoutError:
            answer = "no reply in 10 s"
        try:
            pong = await subscriber.ping()
            await asyncio.wait_for(pong, 10)
            alive = "still connected"
        except Exception as error:
            alive = f"disconnected ({error})"
        return f"deep: publisher got {answer}; subscriber {alive}"
    finally:
        hub.stop()


async def main_async(which: list[str]) -> None:
    group = ProcessGroup()
    try:
        for name in which:
            print(await {"chunks": chunks, "stall": stall, "deep": deep}[name](group), flush=True)
    finally:
        group.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("figures", nargs="*", default=["chunks", "stall", "deep"])
    asyncio.run(main_async(parser.parse_args().figures))


if __name__ == "__main__":
    main()
