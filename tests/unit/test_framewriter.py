"""server/framewriter.py on a real tornado stream over a socket pair: what arrives at the
other end is, frame by frame and in order, the WebSocket frames of what was written (small
frames joined, large ones whole, a large binary one as chunk frames that reassemble to it)."""

from __future__ import annotations

import asyncio
import itertools
import os
import socket
import struct
from typing import Any

import orjson
import pytest
from tornado.iostream import IOStream

from jupyter_interop.protocol.chunks import ChunkAssembler, is_chunk
from jupyter_interop.protocol.frames import PiecedFrame, frame_parts, pack_frame
from jupyter_interop.server.framewriter import LARGE, write_frames

TEXT, BINARY = 0x81, 0x82


def parse(data: bytes) -> list[tuple[int, bytes]]:
    """(first byte, payload) of each unmasked WebSocket frame in ``data``."""
    frames = []
    at = 0
    while at < len(data):
        first, length = data[at], data[at + 1] & 0x7F
        at += 2
        if length == 126:
            (length,) = struct.unpack_from(">H", data, at)
            at += 2
        elif length == 127:
            (length,) = struct.unpack_from(">Q", data, at)
            at += 8
        frames.append((first, data[at : at + length]))
        at += length
    assert at == len(data)
    return frames


def written(frames: list[Any], chunk_size: int = 1 << 30) -> tuple[bool, int, bytes]:
    """Write ``frames`` with write_frames on a tornado stream; (whether the kernel took
    everything at once, the bytes counted, what the other end of the socket read)."""

    async def run() -> tuple[bool, int, bytes]:
        ours, theirs = socket.socketpair()
        theirs.setblocking(False)
        loop = asyncio.get_running_loop()
        stream = IOStream(ours)
        ids = itertools.count(1)
        received = bytearray()

        async def read() -> None:
            while chunk := await loop.sock_recv(theirs, 1 << 20):
                received.extend(chunk)

        reader = asyncio.ensure_future(read())
        last, count = write_frames(stream, frames, chunk_size, lambda: next(ids))
        if last is not None:
            await asyncio.wait_for(last, 30)
        stream.close()
        await asyncio.wait_for(reader, 30)
        theirs.close()
        return last is None, count, bytes(received)

    return asyncio.run(run())


def binary_frame(size: int) -> bytes:
    return pack_frame(orjson.dumps({"type": "x"}), [os.urandom(size)])


def test_small_frames_leave_in_one_write_taken_at_once_and_in_order() -> None:
    frames = [b'{"a":1}', binary_frame(100), b'{"b":' + b"2" * 300 + b"}"]
    at_once, count, data = written(frames)
    assert at_once and count == sum(map(len, frames))
    assert parse(data) == [(TEXT, frames[0]), (BINARY, frames[1]), (TEXT, frames[2])]


def test_a_large_frame_between_small_ones_keeps_its_place() -> None:
    large = b'{"big":"' + b"x" * (LARGE * 3) + b'"}'
    frames = [b'{"a":1}', large, b'{"b":2}']
    _, count, data = written(frames)
    assert count == sum(map(len, frames))
    assert parse(data) == [(TEXT, frames[0]), (TEXT, large), (TEXT, frames[2])]


@pytest.mark.parametrize("pieced", [False, True], ids=["joined", "pieced"])
def test_a_large_binary_frame_goes_as_chunks_that_reassemble_to_it(pieced: bool) -> None:
    buffers = [os.urandom(LARGE * 2), os.urandom(5000)]
    header = orjson.dumps({"type": "x", "request_id": "1"})
    parts, total = frame_parts(header, buffers)
    whole = pack_frame(header, buffers)
    frame = PiecedFrame(parts, total) if pieced else whole
    _, count, data = written([b'{"a":1}', frame, b'{"b":2}'], chunk_size=40_000)
    assert count == 2 * 7 + total
    got = parse(data)
    assert got[0] == (TEXT, b'{"a":1}') and got[-1] == (TEXT, b'{"b":2}')
    chunks = got[1:-1]
    assert len(chunks) == -(-total // 40_000) and all(op == BINARY for op, _ in chunks)
    assembler = ChunkAssembler()
    results = [assembler.feed(payload) for _, payload in chunks]
    assert all(is_chunk(payload) for _, payload in chunks)
    assert results[:-1] == [None] * (len(chunks) - 1)
    assert bytes(memoryview(results[-1])) == whole
