"""The ``batch`` extension through a real standalone hub: a batch-capable peer and a plain
GW3 peer both get every event, in order; plain peers never see a batch frame."""

from __future__ import annotations

import asyncio
import json
import threading
from typing import Any

import orjson
import pytest
import websockets
from test_client_support import Clients, StandaloneHub, wait_for

import jupyter_interop as ji


class RawPeer:
    """A minimal GW3 peer on a raw WebSocket that records every frame it receives."""

    def __init__(self, ws: Any) -> None:
        self.ws = ws
        self.frames: list[bytes] = []

    @classmethod
    async def open(cls, hub: StandaloneHub, batch: bool) -> RawPeer:
        ws = await websockets.connect(f"{hub.url}?token={hub.token}", proxy=None, compression=None)
        peer = cls(ws)
        hello: dict[str, Any] = {
            "domain": "global",
            "type": "hello",
            "request_id": "h",
            "identity": {"application": "raw-batch" if batch else "raw-plain"},
            "authentication": {"method": "access-token", "token": hub.token},
        }
        if batch:
            hello["extensions"] = {"jupyter_interop": {"batch": True}}
        await peer.send(hello)
        welcome = await peer.until("welcome")
        accepted = (welcome.get("extensions") or {}).get("jupyter_interop") or {}
        assert bool(accepted.get("batch")) is batch
        await peer.send({"type": "join", "destination": "bus", "request_id": "j"})
        await peer.until("success")
        return peer

    async def send(self, message: Any) -> None:
        await self.ws.send(json.dumps(message))

    async def messages(self, timeout: float = 10) -> list[dict[str, Any]]:
        """The messages of the next frame (a batch frame holds several)."""
        frame = await asyncio.wait_for(self.ws.recv(decode=False), timeout)
        self.frames.append(frame)
        decoded = orjson.loads(frame)
        return decoded if isinstance(decoded, list) else [decoded]

    async def until(self, mtype: str) -> dict[str, Any]:
        while True:
            for message in await self.messages():
                if message.get("type") == mtype:
                    return message

    async def subscribe(self, topic: str) -> None:
        await self.send({"domain": "bus", "type": "subscribe", "topic": topic, "request_id": "s"})
        await self.until("subscribed")

    async def events(self, count: int) -> list[Any]:
        got: list[Any] = []
        while len(got) < count:
            for message in await self.messages():
                if message.get("type") == "event":
                    got.append(message["data"])
        return got


@pytest.mark.asyncio
async def test_hub_unframes_a_batch_and_frames_only_for_batch_peers(
    hub: StandaloneHub,
) -> None:
    batched = await RawPeer.open(hub, batch=True)
    plain = await RawPeer.open(hub, batch=False)
    try:
        for peer in (batched, plain):
            await peer.subscribe("batch.topic")
        publishes = [
            {"domain": "bus", "type": "publish", "topic": "batch.topic", "data": {"n": n}}
            for n in range(200)
        ]
        # one frame: 200 publishes, with a bad item in the middle that is refused on its own
        await batched.ws.send(
            json.dumps([*publishes[:100], 42, *publishes[100:]]).encode(), text=True
        )
        assert await plain.events(200) == [{"n": n} for n in range(200)]
        assert await batched.events(200) == [{"n": n} for n in range(200)]
        assert all(frame[:1] == b"{" for frame in plain.frames)  # never a batch
        assert any(frame[:1] == b"[" for frame in batched.frames)  # framed together
        # a plain peer's array frame is not a batch: refused as a whole
        await plain.ws.send(json.dumps(publishes[:2]), text=True)
        error = await plain.until("error")
        assert "JSON object" in error["reason"]
    finally:
        await batched.ws.close()
        await plain.ws.close()


def test_stream_events_reach_batch_and_plain_subscribers_in_order(clients: Clients) -> None:
    publisher = clients("batch-pub")
    batch_sub = clients("batch-sub")
    plain_sub = clients("plain-sub", batch=False)
    assert publisher._conn.extensions.get("batch") is True
    assert plain_sub._conn.extensions.get("batch") is None
    stream = publisher.streams.create("batch.stream")
    received: dict[str, list[int]] = {"batch": [], "plain": []}
    lock = threading.Lock()

    def recorder(key: str) -> Any:
        def on_data(item: ji.StreamData) -> None:
            with lock:
                received[key].append(item.data["n"])

        return on_data

    batch_sub.streams.subscribe("batch.stream", on_data=recorder("batch"))
    plain_sub.streams.subscribe("batch.stream", on_data=recorder("plain"))
    wait_for(lambda: len(stream.subscriptions()) == 2, what="two subscribers")
    total, burst = 5000, 250

    def both_have(count: int) -> bool:
        with lock:
            return len(received["batch"]) >= count and len(received["plain"]) >= count

    for start in range(0, total, burst):
        for n in range(start, start + burst):
            stream.push({"n": n})
        # bursts, each waited for, not one flood: the three clients share this process (and
        # its GIL), and a subscriber that falls behind by over 1000 events has events dropped
        # by design, however loaded the machine
        wait_for(lambda end=start + burst: both_have(end), timeout=30, what="a burst at both")
    assert received["batch"] == list(range(total))
    assert received["plain"] == list(range(total))


def test_bus_burst_from_a_batch_client_reaches_a_raw_plain_peer(
    hub: StandaloneHub, clients: Clients
) -> None:
    sender = clients("batch-bus")

    async def main() -> None:
        plain = await RawPeer.open(hub, batch=False)
        try:
            await plain.subscribe("batch.bus")
            for n in range(1000):
                sender.bus.publish("batch.bus", {"n": n})
            assert await plain.events(1000) == [{"n": n} for n in range(1000)]
            assert all(frame[:1] == b"{" for frame in plain.frames)
        finally:
            await plain.ws.close()

    asyncio.run(main())


class RecordingGateway:
    """A GW3 gateway stand-in on a real WebSocket server that accepts ``batch`` in its
    ``welcome``, answers joins, and records every frame a client writes to it."""

    def __init__(self) -> None:
        self.frames: list[str | bytes] = []
        self.published = 0
        self.url = ""
        self._ready = threading.Event()
        self._loop = asyncio.new_event_loop()
        self._stop: asyncio.Future[None] | None = None
        self._thread = threading.Thread(target=self._loop.run_until_complete, args=(self._serve(),))

    def __enter__(self) -> RecordingGateway:
        self._thread.start()
        assert self._ready.wait(10), "the recording gateway did not start"
        return self

    def __exit__(self, *exc: Any) -> None:
        stop = self._stop
        assert stop is not None
        self._loop.call_soon_threadsafe(stop.set_result, None)
        self._thread.join(10)

    async def _serve(self) -> None:
        self._stop = self._loop.create_future()
        async with websockets.serve(self._peer, "127.0.0.1", 0, compression=None) as server:
            port = next(iter(server.sockets)).getsockname()[1]
            self.url = f"ws://127.0.0.1:{port}/gateway"
            self._ready.set()
            await self._stop

    async def _peer(self, ws: Any) -> None:
        async for frame in ws:
            self.frames.append(frame)
            decoded = orjson.loads(frame)
            for message in decoded if isinstance(decoded, list) else [decoded]:
                reply = self._reply(message)
                if reply is not None:
                    await ws.send(orjson.dumps(reply).decode())

    def _reply(self, message: dict[str, Any]) -> dict[str, Any] | None:
        mtype, request_id = message.get("type"), message.get("request_id")
        if mtype == "hello":
            identity = {**message["identity"], "user": "u", "machine": "m", "instance": "i1"}
            return {
                "domain": "global",
                "type": "welcome",
                "request_id": request_id,
                "peer_id": "p1",
                "resolved_identity": identity,
                "extensions": {"jupyter_interop": {"batch": True}},
            }
        if mtype == "publish":
            self.published += 1
            return None
        if request_id is not None:
            return {
                "domain": message.get("domain", "global"),
                "type": "success",
                "request_id": request_id,
            }
        return None


def test_the_client_writes_batch_frames_from_its_first_connection() -> None:
    """A gateway that accepted ``batch`` in the first ``welcome`` gets messages sent together
    as batch frames (the writer starts before the welcome arrives, so it must not decide
    on batching before then)."""
    total = 3000
    with RecordingGateway() as gateway:
        io = ji.connect(gateway.url, token="t", application="batch-writer", new=True)
        try:
            assert io.status()["state"] == "connected"
            for n in range(total):
                io.bus.publish("batch.first", {"n": n})
            wait_for(lambda: gateway.published == total, what="every publish at the gateway")
        finally:
            io.close()
        batches = [f for f in gateway.frames if f[:1] in ("[", b"[")]
    assert batches, f"{total} publishes arrived in {len(gateway.frames)} frames, none a batch"
