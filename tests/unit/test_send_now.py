"""``send_now`` (server/wsreader.py): straight to the socket only when tornado holds nothing.

The gateway writes every reader once per announce window; a write the kernel takes whole goes
to the socket without tornado's write machinery, and order must survive the switch between
the two paths.
"""

from __future__ import annotations

import asyncio
import socket

from tornado.iostream import IOStream

from jupyter_interop.server.wsreader import send_now


def read_all(sock: socket.socket, size: int) -> bytes:
    got = b""
    while len(got) < size:
        got += sock.recv(size - len(got))
    return got


def test_an_idle_stream_is_written_at_once_and_a_busy_one_is_left_to_tornado() -> None:
    async def scenario() -> None:
        ours, theirs = socket.socketpair()
        stream = IOStream(ours)
        try:
            assert send_now(stream, b"first") == 5
            assert read_all(theirs, 5) == b"first"
            # the peer stops reading: tornado ends up holding bytes the kernel did not take
            big = b"x" * (8 * 1024 * 1024)
            written = stream.write(big)
            assert stream.writing()
            assert send_now(stream, b"later") == 0  # would overtake what tornado holds
            after = stream.write(b"later")
            theirs.setblocking(True)
            reader = asyncio.get_running_loop().run_in_executor(
                None, read_all, theirs, len(big) + 5
            )
            await asyncio.wait_for(asyncio.gather(written, after), 30)
            assert await asyncio.wait_for(reader, 30) == big + b"later"
            stream.close()
            assert send_now(stream, b"gone") == 0
        finally:
            theirs.close()

    asyncio.run(scenario())
