"""The client's direct ``ws://`` transport (``client/_direct.py``) against a real WebSocket
server (websockets' asyncio server on loopback): handshake, messages both ways, fragments,
thread-safe writes, backpressure, size limit, keepalive, closing."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import InvalidStatus

from jupyter_interop.client._direct import open_direct
from jupyter_interop.client.transport import TransportClosed

Handler = Callable[[ServerConnection], Awaitable[None]]


@asynccontextmanager
async def server(handler: Handler, **options: Any) -> AsyncIterator[str]:
    async with serve(handler, "127.0.0.1", 0, compression=None, **options) as srv:
        port = next(iter(srv.sockets)).getsockname()[1]
        yield f"ws://127.0.0.1:{port}/gateway?token=abc"


async def echo(ws: ServerConnection) -> None:
    async for message in ws:
        await ws.send(message)


def run(coro: Awaitable[Any]) -> Any:
    return asyncio.run(asyncio.wait_for(coro, 30))  # type: ignore[arg-type]


def test_text_and_binary_round_trip_and_the_request_carries_path_and_headers() -> None:
    seen: dict[str, Any] = {}

    async def handler(ws: ServerConnection) -> None:
        seen["path"] = ws.request.path if ws.request else None
        seen["agent"] = ws.request.headers.get("User-Agent") if ws.request else None
        await echo(ws)

    async def main() -> list[Any]:
        async with server(handler) as url:
            t = await open_direct(url, {"User-Agent": "jupyter_interop/test"}, 1 << 20)
            await t.send(b'{"a": 1}', False)
            await t.send(b"\x00\x01binary", True)
            got = [await t.recv(), await t.recv()]
            await t.close()
            return got

    assert run(main()) == [b'{"a": 1}', b"\x00\x01binary"]
    assert seen == {"path": "/gateway?token=abc", "agent": "jupyter_interop/test"}


def test_received_messages_are_immutable_bytes_and_fragments_are_joined() -> None:
    async def handler(ws: ServerConnection) -> None:
        await ws.send([b"part one, ", b"part two"])  # one message in two frames
        await ws.send(b"x" * 300_000)  # larger than one read
        await ws.wait_closed()

    async def main() -> list[Any]:
        async with server(handler) as url:
            t = await open_direct(url, {}, 1 << 20)
            got = [await t.recv(), await t.recv()]
            await t.close()
            return got

    first, second = run(main())
    assert first == b"part one, part two" and type(first) is bytes
    assert second == b"x" * 300_000 and type(second) is bytes


def test_writes_from_many_threads_arrive_whole() -> None:
    received: list[bytes] = []
    all_in = asyncio.Event()

    async def handler(ws: ServerConnection) -> None:
        async for message in ws:
            received.append(message if isinstance(message, bytes) else message.encode())
            if len(received) == 800:
                all_in.set()

    async def main() -> None:
        async with server(handler) as url:
            t = await open_direct(url, {}, 1 << 20)

            def writer(k: int) -> None:
                for i in range(200):
                    t.write(f'{{"thread": {k}, "i": {i}, "pad": "{"y" * 500}"}}'.encode(), False)

            threads = [threading.Thread(target=writer, args=(k,)) for k in range(4)]
            for thread in threads:
                thread.start()
            await asyncio.to_thread(lambda: [thread.join() for thread in threads])
            await all_in.wait()  # bounded by run()'s timeout
            await t.close()

    run(main())
    assert len(received) == 800
    import json

    per_thread: dict[int, list[int]] = {}
    for raw in received:
        item = json.loads(raw)
        per_thread.setdefault(item["thread"], []).append(item["i"])
    assert all(order == list(range(200)) for order in per_thread.values())  # each in order


def test_send_waits_while_the_peer_does_not_read_then_everything_arrives() -> None:
    """40 MiB cannot all leave while the peer reads nothing (the socket buffers hold a few
    MiB), so ``send`` must still be waiting however many times the loop runs; a ``send`` that
    only buffered would have returned 40 times in the task's first step, without yielding."""
    release = asyncio.Event()
    received: list[int] = []
    all_in = asyncio.Event()

    async def handler(ws: ServerConnection) -> None:
        await release.wait()  # reads nothing until released
        async for message in ws:
            received.append(len(message))
            if len(received) == 40:
                all_in.set()

    async def main() -> tuple[bool, int, int]:
        async with server(handler, max_size=None) as url:
            t = await open_direct(url, {}, 1 << 20)
            chunk = b"z" * (1 << 20)
            sent = 0

            async def flood() -> None:
                nonlocal sent
                for _ in range(40):  # 40 MiB: far more than the socket buffers hold
                    await t.send(chunk, True)
                    sent += 1

            task = asyncio.ensure_future(flood())
            for _ in range(1000):  # let the loop flush whatever the socket takes
                await asyncio.sleep(0)
            waiting, sent_while_unread = not task.done(), sent
            release.set()
            await task
            await all_in.wait()  # bounded by run()'s timeout
            await t.close()
            return waiting, sent_while_unread, len(received)

    waiting, sent_while_unread, count = run(main())
    assert waiting, f"send() returned {sent_while_unread} times while the peer read nothing"
    assert sent_while_unread < 40
    assert count == 40


def test_a_message_above_max_size_closes_with_1009() -> None:
    async def handler(ws: ServerConnection) -> None:
        await ws.send(b"a" * 2000)
        await ws.wait_closed()

    async def main() -> TransportClosed:
        async with server(handler) as url:
            t = await open_direct(url, {}, 1000)
            with pytest.raises(TransportClosed) as caught:
                await t.recv()
            return caught.value

    closed = run(main())
    assert closed.code == 1009 or "1009" in str(closed) or "too big" in str(closed).lower()


def test_a_refused_upgrade_raises_invalid_status() -> None:
    async def main() -> None:
        def refuse(connection: ServerConnection, request: Any) -> Any:
            return connection.respond(403, "Forbidden\n")

        async with server(echo, process_request=refuse) as url:
            with pytest.raises(InvalidStatus, match="403"):
                await open_direct(url, {}, 1 << 20)

    run(main())


def test_refused_connection_raises_oserror() -> None:
    async def main() -> None:
        async with server(echo) as url:
            dead = url
        with pytest.raises(OSError):
            await open_direct(dead, {}, 1 << 20)

    run(main())


def test_the_server_closing_ends_recv_with_its_code_and_reason() -> None:
    async def handler(ws: ServerConnection) -> None:
        await ws.send(b'{"last": true}')
        await ws.close(1008, "slow consumer")

    async def main() -> tuple[bytes, TransportClosed]:
        async with server(handler) as url:
            t = await open_direct(url, {}, 1 << 20)
            last = await t.recv()  # what came before the close is still delivered
            with pytest.raises(TransportClosed) as caught:
                await t.recv()
            with pytest.raises(TransportClosed):
                t.write(b"{}", False)
            return last, caught.value

    last, closed = run(main())
    assert last == b'{"last": true}'
    assert (closed.code, closed.reason) == (1008, "slow consumer")


def test_a_peer_that_never_answers_pings_is_dropped() -> None:
    async def handler(ws: ServerConnection) -> None:
        ws.transport.pause_reading()  # a hub that went silent: no pong will come back
        await ws.wait_closed()  # until the server closes it on the way out

    async def main() -> TransportClosed:
        async with server(handler, close_timeout=0.5) as url:
            t = await open_direct(url, {}, 1 << 20, ping_interval=0.2)
            with pytest.raises(TransportClosed) as caught:
                await t.recv()
            return caught.value

    closed = run(main())
    assert closed.code == 1011 and "keepalive" in closed.reason


def test_delivery_to_a_callback_keeps_the_order_and_wait_closed_raises_the_close() -> None:
    queued = asyncio.Event()

    async def handler(ws: ServerConnection) -> None:
        for n in range(3):
            await ws.send(f'{{"n": {n}}}'.encode())
        pong = await ws.ping()
        await pong  # the client read the ping, hence the three messages sent before it
        queued.set()
        await ws.recv()  # the client's go-ahead
        for n in range(3, 6):
            await ws.send(f'{{"n": {n}}}'.encode())
        await ws.close(1001, "going away")

    async def main() -> tuple[list[bytes], TransportClosed]:
        async with server(handler) as url:
            t = await open_direct(url, {}, 1 << 20)
            await queued.wait()  # the first three wait in the client's queue
            got: list[bytes] = []
            t.deliver_to(got.append)
            assert len(got) == 3  # handed over at once, in order
            await t.send(b"{}", False)
            with pytest.raises(TransportClosed) as caught:
                await t.wait_closed()
            return got, caught.value

    got, closed = run(main())
    assert got == [f'{{"n": {n}}}'.encode() for n in range(6)]
    assert (closed.code, closed.reason) == (1001, "going away")
