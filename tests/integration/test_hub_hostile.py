"""A hostile or buggy peer against a real standalone hub: it must not harm the other peers.

Each test drives raw GW3 peers on WebSockets (no client library in between), so what the hub
accepts, refuses and routes is seen exactly as a peer would see it. The rules are written
down in ``docs/RELIABILITY.md``.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import socket
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import orjson
import pytest
import websockets
from test_client_support import Clients, StandaloneHub, standalone_hub, wait_for
from tornado.httpserver import HTTPServer
from tornado.netutil import bind_sockets
from tornado.web import Application

from jupyter_interop.hub import InteropHub
from jupyter_interop.protocol.chunks import (
    CHUNK_HEADER,
    CHUNK_MAGIC,
    DEFAULT_MAX_ATTACHMENT_BYTES,
    chunk_frames,
)
from jupyter_interop.protocol.frames import frame_parts, is_binary_frame, unpack_frame
from jupyter_interop.protocol.limits import MAX_NESTING
from jupyter_interop.server.outbox import OutboxLimits
from jupyter_interop.server.service import GatewayService
from jupyter_interop.server.standalone import StandaloneGatewayHandler

#: deeper than the hub accepts, and deeper than its JSON writer could write
TOO_DEEP = 260


def nested(depth: int) -> Any:
    """A value with ``depth`` levels of objects and arrays (the innermost holds a number)."""
    value: Any = 1
    for level in range(depth):
        value = {"a": value} if level % 2 else [value]
    return value


@dataclass
class Gateway:
    """A gateway served in the test's own loop, for rules seen from inside (its counters)."""

    service: GatewayService
    url: str
    token: str


@asynccontextmanager
async def gateway_in_process(**service_settings: Any) -> AsyncIterator[Gateway]:
    token = "hostile-test-token"
    service = GatewayService(InteropHub(token=token), **service_settings)
    app = Application(
        [(r"/interop/gateway", StandaloneGatewayHandler, {"service": service, "token": token})]
    )
    sockets = bind_sockets(0, "127.0.0.1")
    server = HTTPServer(app)
    server.add_sockets(sockets)
    port = sockets[0].getsockname()[1]
    try:
        yield Gateway(service, f"ws://127.0.0.1:{port}/interop/gateway", token)
    finally:
        server.stop()
        service.close_all()


class RawPeer:
    """A GW3 peer on a raw WebSocket: sends what the test writes, keeps what it receives."""

    def __init__(self, ws: Any) -> None:
        self.ws = ws
        self.inbox: list[dict[str, Any]] = []
        #: the rest of a batch frame, not read yet
        self._unread: list[dict[str, Any]] = []
        self.peer_id = ""
        self._ids = itertools.count(1)

    @classmethod
    async def open(cls, hub: StandaloneHub | Gateway, name: str, **extensions: bool) -> RawPeer:
        # (max_queue=None: keeps reading whatever the test reads, so a close is never stuck
        # behind unread frames)
        ws = await websockets.connect(
            f"{hub.url}?token={hub.token}",
            proxy=None,
            compression=None,
            max_size=None,
            max_queue=None,
        )
        peer = cls(ws)
        hello: dict[str, Any] = {
            "domain": "global",
            "type": "hello",
            "identity": {"application": name},
            "authentication": {"method": "access-token", "token": hub.token},
        }
        if extensions:
            hello["extensions"] = {"jupyter_interop": extensions}
        welcome = await peer.request(hello)
        assert welcome["type"] == "welcome", welcome
        peer.peer_id = welcome["peer_id"]
        return peer

    async def send(self, message: dict[str, Any]) -> str:
        request_id = message.setdefault("request_id", f"q{next(self._ids)}")
        await self.ws.send(json.dumps(message))  # (orjson cannot write 255 levels)
        return str(request_id)

    async def receive(self, timeout: float = 20) -> dict[str, Any]:
        """The next message (a closed socket raises ``ConnectionClosed``)."""
        if self._unread:
            return self._unread.pop(0)
        frame = await asyncio.wait_for(self.ws.recv(), timeout)
        if isinstance(frame, bytes) and is_binary_frame(frame):  # attachments: the header
            frame = bytes(unpack_frame(frame)[0])
        decoded = json.loads(frame)
        if isinstance(decoded, list):  # a batch frame (``batch`` extension)
            self._unread.extend(decoded[1:])
            decoded = decoded[0]
        message: dict[str, Any] = decoded
        return message

    async def until(self, predicate: Any, timeout: float = 20) -> dict[str, Any]:
        """The first message (kept or new) for which ``predicate`` holds."""
        for kept in self.inbox:
            if predicate(kept):
                self.inbox.remove(kept)
                return kept
        while True:
            message = await self.receive(timeout)
            if predicate(message):
                return message
            self.inbox.append(message)

    async def request(self, message: dict[str, Any]) -> dict[str, Any]:
        """Send a request and return its reply (success, error or the domain's own)."""
        request_id = await self.send(message)
        return await self.until(lambda m: m.get("request_id") == request_id)

    async def create_context(
        self, name: str, data: dict[str, Any], lifetime: str = "retained", **extra: Any
    ) -> str:
        """``create-context`` of a new context; its id."""
        created = await self.request(
            {
                "domain": "global",
                "type": "create-context",
                "name": name,
                "data": data,
                "lifetime": lifetime,
                **extra,
            }
        )
        assert created["type"] == "context-created", created
        return str(created["context_id"])

    async def update_context(self, context_id: str, delta: dict[str, Any]) -> dict[str, Any]:
        """``update-context`` and its reply."""
        return await self.request(
            {"domain": "global", "type": "update-context", "context_id": context_id, "delta": delta}
        )

    async def join(self, domain: str) -> None:
        reply = await self.request({"domain": "global", "type": "join", "destination": domain})
        assert reply["type"] == "success", reply

    async def still_open(self) -> bool:
        """The hub answers this peer's ping of the GW3 connection (a WebSocket pong)."""
        pong = await self.ws.ping()
        await asyncio.wait_for(pong, 20)
        return True

    async def close(self) -> None:
        await self.ws.close()


def assert_refused_as_too_deep(reply: dict[str, Any]) -> None:
    assert reply["type"] == "error", reply
    assert reply["reason_uri"] == "global.errors.too_deep", reply
    assert str(MAX_NESTING) in reply["reason"], reply


# ---------------------------------------------------------------------- defect 1: nesting


@pytest.mark.asyncio
async def test_deep_bus_publish_is_refused_and_subscribers_keep_their_connection(
    hub: StandaloneHub,
) -> None:
    subscriber = await RawPeer.open(hub, "md-subscriber")
    attacker = await RawPeer.open(hub, "deep-publisher")
    try:
        for peer in (subscriber, attacker):
            await peer.join("bus")
        subscribed = await subscriber.request(
            {"domain": "bus", "type": "subscribe", "topic": "md.>"}
        )
        assert subscribed["type"] == "subscribed", subscribed
        reply = await attacker.request(
            {"domain": "bus", "type": "publish", "topic": "md.x", "data": nested(TOO_DEEP)}
        )
        assert_refused_as_too_deep(reply)
        await attacker.send(
            {"domain": "bus", "type": "publish", "topic": "md.x", "data": {"after": True}}
        )
        event = await subscriber.until(lambda m: m.get("type") == "event")
        assert event["data"] == {"after": True}, "the refused publish must not be routed"
        assert await subscriber.still_open()
    finally:
        await subscriber.close()
        await attacker.close()


@pytest.mark.asyncio
async def test_a_read_only_context_refuses_every_write_of_a_raw_peer(hub: StandaloneHub) -> None:
    """The hub, not the client, keeps an owner's read-only context: a plain GW3 peer that asks
    for no extension and skips every client check gets ``not_authorized`` naming the owner for
    each delta form, for destroying it and for making it writable; nothing it sent is stored
    or routed, and it keeps its connection (docs/GATEWAYS.md, "read-only")."""
    owner = await RawPeer.open(hub, "ro-owner", **{"read-only": True})
    writer = await RawPeer.open(hub, "ro-writer")
    try:
        context_id = await owner.create_context(
            "hostile.read-only", {"px": 1}, "ownership", read_only=True
        )
        joined = await writer.request(
            {"domain": "global", "type": "subscribe-context", "context_id": context_id}
        )
        assert joined["type"] == "subscribed-context" and joined["data"] == {"px": 1}
        writes: list[dict[str, Any]] = [
            {"type": "update-context", "delta": {"reset": {"px": 2}}},
            {"type": "update-context", "delta": {"added": {"px": 2}}},
            {"type": "update-context", "delta": {"updated": {"px": 2}}},
            {"type": "update-context", "delta": {"removed": ["px"]}},
            {"type": "update-context", "delta": {"commands": [{"type": "remove", "path": ""}]}},
            {"type": "set-context-read-only", "read_only": False},
            {"type": "destroy-context"},
        ]
        for write in writes:
            reply = await writer.request({"domain": "global", "context_id": context_id, **write})
            assert reply["type"] == "error", (write, reply)
            assert reply["reason_uri"] == "context.errors.not_authorized", reply
            assert f"'ro-owner' (peer {owner.peer_id})" in reply["reason"], reply
        ok = await owner.update_context(context_id, {"updated": {"px": 3}})
        assert ok["type"] == "success", ok
        updated = await writer.until(lambda m: m.get("type") == "context-updated")
        assert updated["delta"] == {"updated": {"px": 3}}, "only the owner's write is routed"
        snapshot = await writer.request(
            {"domain": "global", "type": "subscribe-context", "context_id": context_id}
        )
        assert snapshot["data"] == {"px": 3}, "nothing refused was stored"
        assert await writer.still_open()
    finally:
        await owner.close()
        await writer.close()


@pytest.mark.asyncio
async def test_channel_restrictions_hold_for_a_raw_peer(
    hub: StandaloneHub, clients: Clients
) -> None:
    """Restrictions a notebook puts on another peer are kept by the hub: a plain GW3 peer that
    skips every client check is refused writes to a channel it may not write (each delta form
    and destroying it), hears nothing of a channel it may not read, cannot lift what another
    peer put on it, and keeps its connection (docs/RELIABILITY.md)."""
    ui = clients("restricting-ui")
    raw = await RawPeer.open(hub, "restricted-raw")
    try:
        ids: dict[str, str] = {}
        while len(ids) < 3:
            added = await raw.until(lambda m: m.get("type") == "context-added")
            name = str(added["name"]).removeprefix("___channel___")
            if name in ("Red", "Blue", "Green"):
                ids[name] = str(added["context_id"])
        await asyncio.to_thread(
            ui.channels.restrict, name="Red", read=True, write=False, target=raw.peer_id
        )
        await asyncio.to_thread(
            ui.channels.restrict,
            {"name": "Blue", "read": False, "write": True, "windowId": raw.peer_id},
        )
        for delta in (
            {"reset": {"name": "Red", "meta": {"color": "red"}, "data": {"x": 1}}},
            {"updated": {"data": {"x": 1}}},
            {"commands": [{"type": "set", "path": "data.x", "value": 1}]},
        ):
            reply = await raw.update_context(ids["Red"], delta)
            assert reply["type"] == "error", (delta, reply)
            assert reply["reason_uri"] == "context.errors.not_authorized", reply
            assert "may not change channel 'Red'" in reply["reason"], reply
        destroyed = await raw.request(
            {"domain": "global", "type": "destroy-context", "context_id": ids["Red"]}
        )
        assert destroyed["type"] == "error", destroyed
        lifted = await raw.request(
            {
                "domain": "global",
                "type": "restrict-channel",
                "channel": "Red",
                "read": True,
                "write": True,
            }
        )
        assert lifted["type"] == "error" and "cannot lift" in lifted["reason"], lifted
        assert (await asyncio.to_thread(ui.channels.get, "Red")).data == {}
        for name in ("Blue", "Green"):
            joined = await raw.request(
                {"domain": "global", "type": "subscribe-context", "context_id": ids[name]}
            )
            assert joined["type"] == "subscribed-context", joined
        await asyncio.to_thread(ui.channels.publish, {"symbol": "AAPL"}, "Blue")
        await asyncio.to_thread(ui.channels.publish, {"symbol": "MSFT"}, "Green")
        # the hub routes in order: Blue's update would have come before Green's
        green = await raw.until(lambda m: m.get("type") == "context-updated")
        assert green["context_id"] == ids["Green"], green
        assert not [m for m in raw.inbox if m.get("type") == "context-updated"]
        ok = await raw.update_context(
            ids["Blue"], {"commands": [{"type": "set", "path": "data.side", "value": "buy"}]}
        )
        assert ok["type"] == "success", ok  # it may still write Blue
        await asyncio.to_thread(
            ui.channels.restrict, name="Blue", read=True, write=True, target=raw.peer_id
        )
        whole = await raw.until(lambda m: m.get("type") == "context-updated")
        assert whole["context_id"] == ids["Blue"], whole
        assert whole["delta"]["reset"]["data"] == {"symbol": "AAPL", "side": "buy"}, whole
        restrictions = await asyncio.to_thread(ui.channels.get_restrictions, raw.peer_id)
        by_name = {c["name"]: (c["read"], c["write"]) for c in restrictions["channels"]}
        assert by_name["Red"] == (True, False) and by_name["Blue"] == (True, True)
        assert await raw.still_open()
    finally:
        await raw.close()


@pytest.mark.asyncio
async def test_deep_context_update_is_refused_and_nothing_is_stored(hub: StandaloneHub) -> None:
    member = await RawPeer.open(hub, "ctx-member")
    attacker = await RawPeer.open(hub, "deep-writer")
    try:
        context_id = await member.create_context("hostile.deep", {"fine": 1})
        joined = await attacker.request(
            {"domain": "global", "type": "subscribe-context", "context_id": context_id}
        )
        assert joined["type"] == "subscribed-context", joined
        for delta in (
            {"updated": {"deep": nested(TOO_DEEP)}},
            {"commands": [{"type": "set", "path": "x", "value": nested(TOO_DEEP)}]},
            # a path builds maps as deep as its segments: the same limit applies to it
            {"commands": [{"type": "set", "path": ".".join(["p"] * TOO_DEEP), "value": 1}]},
        ):
            reply = await attacker.update_context(context_id, delta)
            assert_refused_as_too_deep(reply)
        ok = await attacker.update_context(context_id, {"updated": {"fine": 2}})
        assert ok["type"] == "success", ok
        updated = await member.until(lambda m: m.get("type") == "context-updated")
        assert updated["delta"] == {"updated": {"fine": 2}}, "nothing refused was routed"
        late = await RawPeer.open(hub, "late-subscriber")
        try:
            snapshot = await late.request(
                {"domain": "global", "type": "subscribe-context", "context_id": context_id}
            )
            assert snapshot["type"] == "subscribed-context", snapshot
            assert snapshot["data"] == {"fine": 2}, "nothing refused was stored"
            assert await late.still_open()
        finally:
            await late.close()
        assert await member.still_open()
    finally:
        await member.close()
        await attacker.close()


@pytest.mark.asyncio
async def test_deep_call_is_refused_and_the_server_keeps_its_connection(
    hub: StandaloneHub,
) -> None:
    server = await RawPeer.open(hub, "server")
    caller = await RawPeer.open(hub, "deep-caller")
    try:
        for peer in (server, caller):
            await peer.join("agm")
        registered = await server.request(
            {"domain": "agm", "type": "register", "methods": [{"id": "1", "name": "hostile.echo"}]}
        )
        assert registered["type"] == "success", registered
        call = {"domain": "agm", "type": "call", "server_id": server.peer_id, "method_id": "1"}
        reply = await caller.request({**call, "arguments_kv": {"x": nested(TOO_DEEP)}})
        assert_refused_as_too_deep(reply)
        # a batch item nested one level deeper than allowed is refused on its own too
        reply = await caller.request({**call, "arguments_kv": nested(MAX_NESTING)})
        assert_refused_as_too_deep(reply)
        request_id = await caller.send({**call, "arguments_kv": {"x": nested(MAX_NESTING - 4)}})
        invoke = await server.until(lambda m: m.get("type") == "invoke")
        assert invoke["arguments_kv"] == {"x": nested(MAX_NESTING - 4)}, "the limit is inclusive"
        await server.send(
            {
                "domain": "agm",
                "type": "yield",
                "invocation_id": invoke["invocation_id"],
                "result": {},
            }
        )
        result = await caller.until(lambda m: m.get("request_id") == request_id)
        assert result["type"] == "result", result
    finally:
        await server.close()
        await caller.close()


@pytest.mark.asyncio
async def test_a_message_that_cannot_be_encoded_is_not_blamed_on_its_recipient() -> None:
    async with gateway_in_process() as gateway:
        receiver = await RawPeer.open(gateway, "receiver")
        try:
            service = gateway.service
            conn = next(s.conn for s in service.sockets.values())
            unwritable = {"domain": "bus", "type": "event", "peer_id": "x", "data": object()}
            service.dispatch([(conn, unwritable)])
            service.dispatch([(conn, {"domain": "global", "type": "marker", "n": 1})])
            marker = await receiver.until(lambda m: m.get("type") == "marker")
            assert marker["n"] == 1
            assert await receiver.still_open()
            assert service.undeliverable == 1
            assert service.slow_consumers_closed == 0
            assert service.status()["undeliverable"] == 1
        finally:
            await receiver.close()


# ---------------------------------------------------------------------- defect 2: chunks


def rss_bytes(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def chunk(message_id: int, total: int, offset: int, payload: bytes, last: bool = False) -> bytes:
    return CHUNK_HEADER.pack(CHUNK_MAGIC, message_id, int(last), total, offset) + payload


def binary_message(message: dict[str, Any], buffer: bytes) -> bytes:
    parts, _ = frame_parts(orjson.dumps(message), [buffer])
    return b"".join(bytes(p) for p in parts)


@pytest.mark.asyncio
async def test_an_announced_size_allocates_nothing(hub: StandaloneHub) -> None:
    assert hub.proc is not None
    peers = [await RawPeer.open(hub, f"announcer{i}", binary=True) for i in range(3)]
    try:
        before = rss_bytes(hub.proc.pid)
        for number, peer in enumerate(peers):
            # 28 bytes: the first chunk of a message announced just under the 2 GiB cap
            await peer.ws.send(chunk(1, DEFAULT_MAX_ATTACHMENT_BYTES - 1, 0, b""))
            # handled in order: once this is answered, the chunk above was handled
            await peer.join("bus")
            grown = rss_bytes(hub.proc.pid) - before
            assert grown < 64 * 2**20, f"{grown / 2**20:.0f} MiB after {number + 1} announcements"
    finally:
        for peer in peers:
            await peer.close()


#: settings of the hub the limit tests run against (a config file, as a user would set them)
TIGHT = {
    "max_reassembly_bytes": 8 * 2**20,
    "outbox_soft_messages": 50,
    "outbox_hard_messages": 100_000,
    "outbox_soft_bytes": 1_000_000,
    "outbox_hard_bytes": 200_000_000,
    "outbox_stall_seconds": 1.5,
}


@pytest.fixture(scope="module")
def tight_hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StandaloneHub]:
    tmp = tmp_path_factory.mktemp("tight")
    (tmp / "config").mkdir()
    config = {"StandaloneHubApp": TIGHT}
    (tmp / "config" / "jupyter_interop_hub_config.json").write_text(json.dumps(config))
    with standalone_hub(tmp) as hub:
        assert hub.view("status")["reassembly_bytes"] == 0
        yield hub


@pytest.mark.asyncio
async def test_one_budget_for_all_reassembly_refuses_the_peer_that_exceeds_it(
    tight_hub: StandaloneHub,
) -> None:
    mib = 2**20
    receiver = await RawPeer.open(tight_hub, "budget-receiver", binary=True)
    first = await RawPeer.open(tight_hub, "first-sender", binary=True)
    second = await RawPeer.open(tight_hub, "second-sender", binary=True)
    try:
        for peer in (receiver, first, second):
            await peer.join("bus")
        subscribed = await receiver.request(
            {"domain": "bus", "type": "subscribe", "topic": "budget"}
        )
        assert subscribed["type"] == "subscribed", subscribed

        def publish(request_id: str, size: int) -> list[bytes]:
            placeholder = {"__ji__": "bytes", "buffers": [0]}
            message = {
                "domain": "bus",
                "type": "publish",
                "request_id": request_id,
                "topic": "budget",
                "data": {"from": request_id, "blob": placeholder},
            }
            parts, total = frame_parts(orjson.dumps(message), [b"z" * size])
            return list(chunk_frames(parts, total, 1, mib))

        first_chunks = publish("first", 6 * mib)  # 7 chunks, the last one short
        for frame in first_chunks[:5]:
            await first.ws.send(frame)
        await first.join("bus")  # answered: the five chunks above are held
        second_chunks = publish("second", 4 * mib)
        for frame in second_chunks[:4]:  # 5 + 4 MiB: over the 8 MiB budget at the 4th
            await second.ws.send(frame)
        refused = await second.until(lambda m: m.get("request_id") == "second")
        assert refused["type"] == "error", refused
        assert refused["reason_uri"] == "global.errors.limits_exceeded", refused
        assert f"at most {8 * mib} bytes in all" in refused["reason"], refused
        for frame in second_chunks[4:]:  # the rest of the refused message is skipped
            await second.ws.send(frame)
        for frame in first_chunks[5:]:  # the other sender was not affected
            await first.ws.send(frame)
        event = await receiver.until(lambda m: m.get("type") == "event")
        assert event["data"]["from"] == "first"
        # the refused sender may try again once the budget has room
        for frame in second_chunks:
            await second.ws.send(frame)
        event = await receiver.until(lambda m: m.get("type") == "event")
        assert event["data"]["from"] == "second"
        assert tight_hub.view("status")["reassembly_bytes"] == 0
        assert await first.still_open() and await second.still_open()
    finally:
        for peer in (receiver, first, second):
            await peer.close()


# ---------------------------------------------------------------------- defect 5: stalls


def tiny_buffer_socket(url: str) -> socket.socket:
    """A connected socket with a small receive buffer: a peer that stops reading backs up
    into the hub quickly."""
    parts = urlsplit(url)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect((parts.hostname or "127.0.0.1", parts.port or 80))
    sock.setblocking(False)
    return sock


async def open_stuck_peer(hub: StandaloneHub | Gateway, name: str, topic: str) -> RawPeer:
    """A peer that subscribes to ``topic`` and then reads only when the test says so (its
    library stops reading the socket once one message waits)."""
    ws = await websockets.connect(
        f"{hub.url}?token={hub.token}",
        sock=tiny_buffer_socket(hub.url),
        proxy=None,
        compression=None,
        max_size=None,
        max_queue=1,
    )
    peer = RawPeer(ws)
    welcome = await peer.request(
        {
            "domain": "global",
            "type": "hello",
            "identity": {"application": name},
            "authentication": {"method": "access-token", "token": hub.token},
            "extensions": {"jupyter_interop": {"notices": True}},
        }
    )
    peer.peer_id = welcome["peer_id"]
    await peer.join("bus")
    subscribed = await peer.request({"domain": "bus", "type": "subscribe", "topic": topic})
    assert subscribed["type"] == "subscribed", subscribed
    return peer


async def burst(publisher: RawPeer, topic: str, count: int, size: int = 8192) -> None:
    """Publish ``count`` events, then make sure the hub handled them all (a round trip)."""
    pad = "p" * size
    for n in range(count):
        await publisher.send(
            {"domain": "bus", "type": "publish", "topic": topic, "data": {"n": n, "pad": pad}}
        )
    await publisher.join("bus")


@pytest.mark.asyncio
async def test_a_peer_that_stopped_reading_is_closed_after_the_burst_ended(
    tight_hub: StandaloneHub,
) -> None:
    stuck = await open_stuck_peer(tight_hub, "stuck", "stall.burst")
    publisher = await RawPeer.open(tight_hub, "burst-publisher")
    try:
        await publisher.join("bus")
        closed_before = tight_hub.view("status")["slow_consumers_closed"]
        await burst(publisher, "stall.burst", 1000)
        # nothing more is published: the stall rule alone must close the stuck peer

        def stuck_peer_closed() -> bool:
            status = tight_hub.view("status")
            peers = [p["peer_id"] for p in tight_hub.view("peers")]
            return status["slow_consumers_closed"] > closed_before and stuck.peer_id not in peers

        await asyncio.to_thread(wait_for, stuck_peer_closed, 30, "the stall rule to close it")
        assert await publisher.still_open()
    finally:
        stuck.ws.transport.abort()
        await publisher.close()


@pytest.mark.asyncio
async def test_the_events_dropped_notice_arrives_once_the_peer_reads_again() -> None:
    limits = OutboxLimits(soft_messages=50, soft_bytes=1_000_000, stall_seconds=120)
    async with gateway_in_process(limits=limits) as gateway:
        lagging = await open_stuck_peer(gateway, "lagging", "notice.burst")
        publisher = await RawPeer.open(gateway, "notice-publisher")
        try:
            await publisher.join("bus")
            await burst(publisher, "notice.burst", 1000)
            dropped = sum(
                int(s.conn.attrs.get("dropped_events", 0)) for s in gateway.service.sockets.values()
            )
            assert dropped > 0, "the burst must overflow the lagging peer's soft limit"
            # the peer reads again: every event not dropped, then the notice counting the rest
            received = 0
            while True:
                message = await lagging.receive()
                if message.get("type") == "event":
                    received += 1
                    continue
                assert message["type"] == "events-dropped", message
                assert received + message["count"] == 1000, (received, message)
                break
        finally:
            await lagging.close()
            await publisher.close()


# ---------------------------------------------------------------------- defect 6: join storms


async def raw_frames(peer: RawPeer, until_request: str) -> list[list[dict[str, Any]]]:
    """The frames a peer reads (each as its messages) up to the reply to ``until_request``."""
    frames: list[list[dict[str, Any]]] = []
    while True:
        frame = await asyncio.wait_for(peer.ws.recv(), 30)
        decoded = json.loads(frame)
        messages = decoded if isinstance(decoded, list) else [decoded]
        frames.append(messages)
        if any(m.get("request_id") == until_request for m in messages):
            return frames


@pytest.mark.asyncio
@pytest.mark.parametrize("batch", [True, False], ids=["batch-peer", "plain-peer"])
async def test_a_join_storm_reaches_each_peer_in_one_write_and_in_order(batch: bool) -> None:
    storm = 40
    # the announce timer never fires here: only the peers' own requests make writes happen
    async with gateway_in_process(announce_delay=600) as gateway:
        extensions = {"batch": True} if batch else {}
        observer = await RawPeer.open(gateway, "observer", **extensions)
        await observer.join("agm")
        joined: list[RawPeer] = []
        try:
            for n in range(storm):  # each joins and registers without waiting for replies
                peer = await RawPeer.open(gateway, f"storm{n}")
                joined.append(peer)
                await peer.send({"domain": "global", "type": "join", "destination": "agm"})
                await peer.send(
                    {"domain": "agm", "type": "register", "methods": [{"id": "1", "name": f"m{n}"}]}
                )
            # the observer asks something: what was queued for it is written first, at once
            request_id = await observer.send({"domain": "global", "type": "create-token"})
            frames = await raw_frames(observer, request_id)
            messages = [m for frame in frames for m in frame]
            assert messages[-1]["type"] == "token"
            announced = messages[:-1]
            ids = [peer.peer_id for peer in joined]
            assert [m["new_peer_id"] for m in announced if m["type"] == "peer-added"] == ids
            assert [m["server_id"] for m in announced if m["type"] == "methods-added"] == ids
            for peer_id in ids:  # a server's methods never before the server itself
                kinds = [
                    m["type"]
                    for m in announced
                    if peer_id in (m.get("new_peer_id"), m.get("server_id"))
                ]
                assert kinds == ["peer-added", "methods-added"], kinds
            if batch:
                assert len(frames) == 1, "one batch frame for the whole storm and the reply"
            else:
                assert all(len(frame) == 1 for frame in frames), "plain peers: one per frame"
            # a joiner's replies were held with the storm; asking something writes them, in
            # order, and the others' announcements of it were written before
            last = joined[-1]
            request_id = await last.send({"domain": "global", "type": "create-token"})
            got = [m for frame in await raw_frames(last, request_id) for m in frame]
            kinds = [m["type"] for m in got]
            assert kinds.count("success") == 2 and kinds[-1] == "token", kinds
            assert kinds.index("methods-added") < len(kinds) - 2, "its own methods-added first"
        finally:
            for peer in (observer, *joined):
                await peer.close()


def about(message: dict[str, Any]) -> tuple[str, str]:
    """An announcement as (its type, the peer it is about)."""
    subject = message.get("new_peer_id") or message.get("server_id") or message.get("removed_id")
    return message["type"], str(subject)


async def join_and_register(peer: RawPeer) -> None:
    """Join agm and register a method without waiting (the replies wait for the window)."""
    await peer.send({"domain": "global", "type": "join", "destination": "agm"})
    methods = [{"id": "1", "name": f"brief.{peer.peer_id}"}]
    await peer.send({"domain": "agm", "type": "register", "methods": methods})


async def leave(gateway: Gateway, peer: RawPeer) -> None:
    """Close ``peer`` and wait until the hub has let it go."""
    await peer.close()
    hub = gateway.service.hub
    await asyncio.to_thread(wait_for, lambda: peer.peer_id not in hub.peers, 30, "it left")


@pytest.mark.asyncio
@pytest.mark.parametrize("batch", [True, False], ids=["batch-peer", "plain-peer"])
async def test_a_peer_that_joins_and_leaves_within_one_window_is_never_announced(
    batch: bool,
) -> None:
    # the announce timer never fires here: the whole test is one window
    async with gateway_in_process(announce_delay=600) as gateway:
        observer = await RawPeer.open(gateway, "observer", **({"batch": True} if batch else {}))
        await observer.join("agm")
        brief = await RawPeer.open(gateway, "brief")
        stays = await RawPeer.open(gateway, "stays")
        try:
            await join_and_register(brief)
            await leave(gateway, brief)
            await join_and_register(stays)
            request_id = await observer.send({"domain": "global", "type": "create-token"})
            messages = [m for frame in await raw_frames(observer, request_id) for m in frame]
            assert messages[-1]["type"] == "token"
            assert [about(m) for m in messages[:-1]] == [
                ("peer-added", stays.peer_id),
                ("methods-added", stays.peer_id),
            ]
        finally:
            for peer in (observer, brief, stays):
                await peer.close()


@pytest.mark.asyncio
@pytest.mark.parametrize("known", ["written", "backlog"])
async def test_a_peer_some_peer_knows_of_is_announced_leaving(known: str) -> None:
    async with gateway_in_process(announce_delay=600) as gateway:
        observer = await RawPeer.open(gateway, "observer")
        await observer.join("agm")
        brief = await RawPeer.open(gateway, "brief")
        newcomer = await RawPeer.open(gateway, "newcomer")
        try:
            await join_and_register(brief)
            if known == "written":  # the observer asks something: brief's announcements go
                request_id = await observer.send({"domain": "global", "type": "create-token"})
                got = [about(m) for f in await raw_frames(observer, request_id) for m in f]
                assert ("peer-added", brief.peer_id) in got, got
                witness = observer
            else:  # the newcomer's first queue holds brief, written at once
                await newcomer.send({"domain": "global", "type": "join", "destination": "agm"})
                first = await newcomer.until(lambda m: m.get("type") == "methods-added")
                assert about(first) == ("methods-added", brief.peer_id)
                witness = newcomer
            await leave(gateway, brief)
            request_id = await witness.send({"domain": "global", "type": "create-token"})
            got = [about(m) for f in await raw_frames(witness, request_id) for m in f]
            assert got[-3:-1] == [
                ("methods-removed", brief.peer_id),
                ("peer-removed", brief.peer_id),
            ], got
        finally:
            for peer in (observer, brief, newcomer):
                await peer.close()


@pytest.mark.asyncio
async def test_announcements_arrive_on_their_own_after_the_delay() -> None:
    async with gateway_in_process() as gateway:  # the default delay
        observer = await RawPeer.open(gateway, "observer")
        newcomer = await RawPeer.open(gateway, "newcomer")
        try:
            await observer.join("agm")
            await newcomer.join("agm")
            added = await observer.until(lambda m: m.get("type") == "peer-added")
            assert added["new_peer_id"] == newcomer.peer_id
            await newcomer.close()
            removed = await observer.until(lambda m: m.get("type") == "peer-removed")
            assert removed["removed_id"] == newcomer.peer_id
        finally:
            await observer.close()


@pytest.mark.asyncio
async def test_a_completed_write_leaves_held_announcements_to_the_timer() -> None:
    # the announce timer never fires here: what is held goes out with the observer's next reply
    async with gateway_in_process(announce_delay=600) as gateway:
        observer = await RawPeer.open(gateway, "observer", batch=True)
        joiner = await RawPeer.open(gateway, "joiner", batch=True)
        try:
            await observer.join("agm")
            await observer.join("bus")
            await joiner.join("bus")
            subscribe = {"domain": "bus", "type": "subscribe", "topic": "t"}
            subscribed = await observer.request(subscribe)
            assert subscribed["type"] != "error", subscribed
            # one batch frame: the event is written to the observer when the first slice of
            # the batch is done, the join's announcement to it is queued right after
            items: list[dict[str, Any]] = [
                {"domain": "bus", "type": "publish", "topic": "t", "data": {"n": 1}}
            ]
            items += [{"domain": "global", "type": "ping"}] * 255
            items.append({"domain": "global", "type": "join", "destination": "agm"})
            await joiner.ws.send(json.dumps(items))
            event = await observer.until(lambda m: m.get("type") == "event")
            assert event["data"] == {"n": 1}
            # the write of the event completing must not write the held peer-added: it comes
            # with the reply to the observer's next request, in one batch frame
            request_id = await observer.send({"domain": "global", "type": "create-token"})
            frames = await raw_frames(observer, request_id)
            kinds = [[m["type"] for m in frame] for frame in frames]
            assert kinds == [["peer-added", "token"]], kinds
        finally:
            await observer.close()
            await joiner.close()
