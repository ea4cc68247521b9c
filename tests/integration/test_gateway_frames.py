"""The gateway's frame reader (server/wsreader.py) against crafted client frames on a raw socket.

A tiny tornado app uses the same protocol as the gateway and records what its handler sees, so
each RFC 6455 rule can be checked byte by byte: frames split anywhere or packed together,
masked payloads larger than one read, fragmentation with interleaved pings, the size limit
(1009), reserved bits, close codes, and awaitables returned by ``on_message``.
"""

from __future__ import annotations

import asyncio
import base64
import gc
import os
import socket
import struct
import types
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
from tornado.httpserver import HTTPServer
from tornado.netutil import bind_sockets
from tornado.web import Application
from tornado.websocket import WebSocketHandler

from jupyter_interop.server.wsreader import (
    READ_SIZE,
    BufferedProtocol,
    KeepAlive,
    buffered_protocol,
)

MAX_SIZE = 4 * READ_SIZE


class Recorder(WebSocketHandler):
    """Records messages, pings and the close; ``slow:`` messages take a moment to handle."""

    def initialize(self, seen: dict[str, Any]) -> None:
        self.seen = seen

    def get_websocket_protocol(self) -> Any:
        return buffered_protocol(self)

    @property
    def max_message_size(self) -> int:
        return MAX_SIZE

    def open(self) -> None:
        self.seen["protocol"] = type(self.ws_connection)
        self.seen["handler"] = self

    async def _slow(self, message: str) -> None:
        await asyncio.sleep(0.05)
        self.seen["messages"].append(message)

    def on_message(self, message: str | bytes) -> Any:
        if isinstance(message, str) and message.startswith("slow:"):
            return self._slow(message)
        self.seen["messages"].append(message)
        return None

    def on_ping(self, data: bytes) -> None:
        self.seen["pings"].append(data)

    def on_close(self) -> None:
        self.seen["closed"].set_result((self.close_code, self.close_reason))


class Peer:
    """A raw client socket: handshake, then masked frames written as the test wants."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def open(cls, port: int) -> Peer:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        key = base64.b64encode(os.urandom(16)).decode()
        writer.write(
            (
                f"GET /ws HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
                f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                "Sec-WebSocket-Version: 13\r\n\r\n"
            ).encode()
        )
        head = await reader.readuntil(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 101"), head
        return cls(reader, writer)

    async def send(self, data: bytes, pieces: int = 1) -> None:
        """Write ``data`` in ``pieces`` separate writes (a frame split anywhere)."""
        step = max(1, -(-len(data) // pieces))
        for at in range(0, len(data), step):
            self.writer.write(data[at : at + step])
            await self.writer.drain()
            if pieces > 1:
                await asyncio.sleep(0.002)

    async def read_frame(self) -> tuple[int, bytes]:
        """One (unmasked) server frame: (opcode, payload)."""
        b0, b1 = await self.reader.readexactly(2)
        length = b1 & 0x7F
        if length == 126:
            (length,) = struct.unpack("!H", await self.reader.readexactly(2))
        elif length == 127:
            (length,) = struct.unpack("!Q", await self.reader.readexactly(8))
        return b0 & 0x0F, await self.reader.readexactly(length)

    async def closed(self) -> bool:
        """True once the server has closed the TCP connection."""
        try:
            while await asyncio.wait_for(self.reader.read(65536), 5):
                pass
        except (ConnectionError, asyncio.TimeoutError):
            return False
        return True

    def close(self) -> None:
        self.writer.close()


def frame(payload: bytes, opcode: int = 0x1, fin: bool = True, rsv: int = 0) -> bytes:
    """A masked client frame."""
    head = bytes([(0x80 if fin else 0) | rsv | opcode])
    n = len(payload)
    if n < 126:
        head += bytes([0x80 | n])
    elif n < 0x10000:
        head += struct.pack("!BH", 0x80 | 126, n)
    else:
        head += struct.pack("!BQ", 0x80 | 127, n)
    mask = os.urandom(4)
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return head + mask + masked


@pytest_asyncio.fixture
async def server() -> AsyncIterator[tuple[int, dict[str, Any]]]:
    async for started in serve():
        yield started


@pytest_asyncio.fixture
async def pinging() -> AsyncIterator[tuple[int, dict[str, Any]]]:
    """A server that pings every 0.2 s and wants the pong within 0.1 s."""
    async for started in serve(websocket_ping_interval=0.2, websocket_ping_timeout=0.1):
        yield started


async def serve(**settings: Any) -> AsyncIterator[tuple[int, dict[str, Any]]]:
    loop = asyncio.get_running_loop()
    seen: dict[str, Any] = {"messages": [], "pings": [], "closed": loop.create_future()}
    app = Application([("/ws", Recorder, {"seen": seen})], **settings)
    http = HTTPServer(app)
    sockets = bind_sockets(0, "127.0.0.1", family=socket.AF_INET)
    http.add_sockets(sockets)
    try:
        yield sockets[0].getsockname()[1], seen
    finally:
        http.stop()
        await http.close_all_connections()


async def wait_for_messages(seen: dict[str, Any], count: int) -> list[Any]:
    for _ in range(500):
        if len(seen["messages"]) >= count:
            break
        await asyncio.sleep(0.01)
    return list(seen["messages"])


@pytest.mark.asyncio
async def test_the_gateway_uses_the_buffered_reader(server: tuple[int, dict[str, Any]]) -> None:
    port, seen = server
    peer = await Peer.open(port)
    await peer.send(frame(b"hi"))
    assert await wait_for_messages(seen, 1) == ["hi"]
    assert seen["protocol"] is BufferedProtocol
    peer.close()


@pytest.mark.asyncio
async def test_an_open_connection_keeps_no_coroutine_of_its_upgrade(
    server: tuple[int, dict[str, Any]],
) -> None:
    # tornado's own reader keeps RequestHandler._execute ... _receive_frame_loop suspended
    # for the life of the connection (memory per idle connection)
    port, seen = server
    peer = await Peer.open(port)
    await peer.send(frame(b"one"))
    assert await wait_for_messages(seen, 1) == ["one"]
    ours = (seen["handler"], seen["handler"].ws_connection)
    suspended = [
        obj.cr_code.co_name
        for obj in gc.get_objects()
        if type(obj) is types.CoroutineType  # (no attribute lookup: dead weak proxies raise)
        and obj.cr_frame is not None
        and any(obj.cr_frame.f_locals.get("self") is x for x in ours)
    ]
    assert suspended == [], suspended
    await peer.send(frame(b"two"))  # and it still reads
    assert await wait_for_messages(seen, 2) == ["one", "two"]
    peer.close()


@pytest.mark.asyncio
async def test_frames_packed_together_or_split_anywhere_arrive_whole_and_in_order(
    server: tuple[int, dict[str, Any]],
) -> None:
    port, seen = server
    peer = await Peer.open(port)
    texts = [f"message {i} " * (i * 7) for i in range(40)]  # 0 bytes up to 16-bit lengths
    packed = b"".join(frame(t.encode()) for t in texts)
    await peer.send(packed)  # all in one write
    await peer.send(packed, pieces=97)  # headers, masks and payloads cut at odd places
    assert await wait_for_messages(seen, 80) == texts + texts
    peer.close()


@pytest.mark.asyncio
async def test_a_large_masked_frame_split_across_reads(server: tuple[int, dict[str, Any]]) -> None:
    port, seen = server
    peer = await Peer.open(port)
    big = os.urandom(3 * READ_SIZE + 5)
    # a small frame first, so the large one starts in the middle of a read
    await peer.send(frame(b"before") + frame(big, opcode=0x2) + frame(b"after"), pieces=7)
    assert await wait_for_messages(seen, 3) == ["before", big, "after"]
    peer.close()


@pytest.mark.asyncio
async def test_fragments_are_joined_and_pings_between_them_answered(
    server: tuple[int, dict[str, Any]],
) -> None:
    port, seen = server
    peer = await Peer.open(port)
    await peer.send(
        frame(b"hel", fin=False)
        + frame(b"p1", opcode=0x9)
        + frame(b"lo ", opcode=0x0, fin=False)
        + frame(b"world", opcode=0x0)
    )
    assert await wait_for_messages(seen, 1) == ["hello world"]
    assert await peer.read_frame() == (0xA, b"p1")  # the pong
    assert seen["pings"] == [b"p1"]
    peer.close()


@pytest.mark.asyncio
async def test_an_awaitable_from_on_message_is_awaited_before_the_next_frame(
    server: tuple[int, dict[str, Any]],
) -> None:
    port, seen = server
    peer = await Peer.open(port)
    await peer.send(frame(b"slow:1") + frame(b"2") + frame(b"slow:3") + frame(b"4"))
    assert await wait_for_messages(seen, 4) == ["slow:1", "2", "slow:3", "4"]
    peer.close()


@pytest.mark.asyncio
async def test_a_message_over_the_limit_is_closed_with_1009_before_its_payload(
    server: tuple[int, dict[str, Any]],
) -> None:
    port, seen = server
    peer = await Peer.open(port)
    # only the header of a too large frame: the server must not wait for the payload
    header = struct.pack("!BBQ", 0x82, 0x80 | 127, MAX_SIZE + 1)
    await peer.send(header + os.urandom(4))
    opcode, payload = await peer.read_frame()
    assert opcode == 0x8 and struct.unpack("!H", payload[:2])[0] == 1009
    assert await peer.closed()
    await asyncio.wait_for(seen["closed"], 5)


@pytest.mark.asyncio
async def test_fragments_adding_up_over_the_limit_are_closed_with_1009(
    server: tuple[int, dict[str, Any]],
) -> None:
    port, seen = server
    peer = await Peer.open(port)
    part = b"y" * (MAX_SIZE // 2 + 1)
    await peer.send(frame(part, opcode=0x2, fin=False) + frame(part, opcode=0x0))
    opcode, payload = await peer.read_frame()
    assert opcode == 0x8 and struct.unpack("!H", payload[:2])[0] == 1009
    assert seen["messages"] == []
    peer.close()


@pytest.mark.parametrize(
    "bad",
    [
        frame(b"x", rsv=0x40),  # compression bit without negotiation
        frame(b"x" * 126, opcode=0x9),  # control frame over 125 bytes
        frame(b"x", opcode=0x9, fin=False),  # fragmented control frame
        frame(b"x", opcode=0x0),  # continuation of nothing
        frame(b"a", fin=False) + frame(b"b"),  # new message inside a fragmented one
    ],
)
@pytest.mark.asyncio
async def test_protocol_violations_abort_the_connection(
    server: tuple[int, dict[str, Any]], bad: bytes
) -> None:
    port, seen = server
    peer = await Peer.open(port)
    await peer.send(bad)
    assert await peer.closed()
    await asyncio.wait_for(seen["closed"], 5)
    assert seen["messages"] == []


@pytest.mark.asyncio
async def test_a_close_frame_is_answered_and_its_code_reported(
    server: tuple[int, dict[str, Any]],
) -> None:
    port, seen = server
    peer = await Peer.open(port)
    await peer.send(frame(b"last") + frame(struct.pack("!H", 4001) + b"bye", opcode=0x8))
    opcode, payload = await peer.read_frame()
    assert opcode == 0x8 and struct.unpack("!H", payload[:2])[0] == 4001
    assert await asyncio.wait_for(seen["closed"], 5) == (4001, "bye")
    assert seen["messages"] == ["last"]
    peer.close()


@pytest.mark.asyncio
async def test_a_peer_answering_pings_stays_and_one_that_does_not_is_closed(
    pinging: tuple[int, dict[str, Any]],
) -> None:
    port, seen = pinging
    answering = await Peer.open(port)
    silent = await Peer.open(port)
    for _ in range(4):  # four pings, each answered within the timeout
        assert await asyncio.wait_for(answering.read_frame(), 5) == (0x9, b"")
        await answering.send(frame(b"", opcode=0xA))
    # the silent peer got one ping, then the close for not answering it
    assert await asyncio.wait_for(silent.read_frame(), 5) == (0x9, b"")
    opcode, payload = await asyncio.wait_for(silent.read_frame(), 5)
    assert opcode == 0x8 and payload[2:] == b"ping timed out"
    await answering.send(frame(b"still here"))
    assert await wait_for_messages(seen, 1) == ["still here"]
    answering.close()
    silent.close()


@pytest.mark.asyncio
async def test_the_shared_ping_timer_goes_with_the_last_connection(
    pinging: tuple[int, dict[str, Any]],
) -> None:
    port, seen = pinging
    loop = asyncio.get_running_loop()
    peers = [await Peer.open(port) for _ in range(3)]
    await peers[0].send(frame(b"up"))
    assert await wait_for_messages(seen, 1) == ["up"]
    (keepalive,) = [k for k in KeepAlive._timers.values() if k.loop is loop]
    assert len(keepalive.members) == 3  # one timer for the three connections
    for peer in peers:
        await peer.send(frame(struct.pack("!H", 1000), opcode=0x8))
        await peer.read_frame()  # the close echoed
        peer.close()
    for _ in range(200):
        if not keepalive.members:
            break
        await asyncio.sleep(0.01)
    assert not keepalive.members
    assert all(k.loop is not loop for k in KeepAlive._timers.values())
