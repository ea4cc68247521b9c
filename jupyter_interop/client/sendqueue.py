"""What the client writes next, and in which order, decided without I/O.

The connection (client/connection.py) sends from two places: the I/O loop (requests, answers,
pings) and other threads (stream pushes, bus publishes). :class:`SendQueue` holds both queues
and keeps the ordering rules: what the loop queued goes before what other threads sent after it,
what other threads sent while disconnected is dropped and counted, a burst from other threads
wakes the loop once, and a frame written at once (:meth:`~SendQueue.quiet`) never overtakes one
still queued. It also cuts what the writer takes into runs of frames (batches, folded stream
items and chunks are protocol/framing.py's). The connection keeps the tasks, the lock, the
socket writes and reconnection (docs/ARCHITECTURE.md, "Client"). Unit-tested with frames only
(tests/unit/test_client_sendqueue.py).

Thread safety: other threads only append to ``incoming`` and set ``drain_scheduled``
(:meth:`SendQueue.post`); everything else runs on the loop, or, for the direct transport, under
its lock.
"""

from __future__ import annotations

from collections import deque
from typing import Any

from ..protocol.chunks import ChunkedFrame
from ..protocol.framing import take_frame
from ..protocol.limits import CLIENT_WRITE_RUN_BYTES

__all__ = ["SendQueue", "is_binary"]

#: how the text frames the writer sends start: a message, or a batch of them
_TEXT_STARTS = frozenset({b"{", b"["})


def is_binary(frame: bytes) -> bool:
    """Is ``frame`` written as a binary WebSocket frame (not a JSON message or batch)?"""
    return frame[:1] not in _TEXT_STARTS


class SendQueue:
    """The frames a connection has yet to write, in the order they were sent."""

    def __init__(self) -> None:
        #: frames sent on the loop
        self.out: deque[Any] = deque()
        #: frames sent from other threads, and stream items as (stream id, encoded data), not
        #: yet moved to ``out`` (protocol/framing.py folds runs of items)
        self.incoming: deque[Any] = deque()
        #: a wake-up of the loop is on its way (set by :meth:`post`, reset when the writer
        #: finds nothing left): a burst from other threads wakes the loop once
        self.drain_scheduled = False
        #: a large message is being written chunk by chunk
        self.writing_chunks = False
        #: messages that never reached the hub (sent while disconnected, or queued when the
        #: socket dropped)
        self.dropped = 0

    def post(self, item: Any) -> bool:
        """Queue ``item`` from any thread. True: the loop must be woken to drain it (the first
        item since the writer went idle)."""
        self.incoming.append(item)
        if self.drain_scheduled:
            return False
        self.drain_scheduled = True
        return True

    def drain(self, ready: bool) -> bool:
        """On the loop, after :meth:`post`: True when the writer should be woken; while not
        ``ready``, what other threads sent is dropped and counted instead."""
        if ready:
            return True
        # reset first: an item posted after this line schedules another drain
        self.drain_scheduled = False
        self.drop_incoming()
        return False

    def drop_incoming(self) -> None:
        """Drop (and count) what other threads sent and is not written."""
        incoming = self.incoming
        while incoming:
            incoming.popleft()
            self.dropped += 1

    def push(self, frame: Any, ready: bool) -> None:
        """Queue ``frame`` on the loop, after what other threads sent before it (dropped when
        not ``ready``: the handshake's own frames are not preceded by earlier sends)."""
        incoming = self.incoming
        if incoming:  # keep the order of what other threads sent before
            if not ready:
                self.drop_incoming()
            else:
                out = self.out
                while incoming:
                    out.append(incoming.popleft())
        self.out.append(frame)

    def lost(self) -> None:
        """The socket dropped: what is queued is counted as dropped, and the writer that would
        have reset ``drain_scheduled`` is gone."""
        self.dropped += len(self.out)
        self.out.clear()
        self.drain_scheduled = False
        self.drop_incoming()

    def next_queue(self, ready: bool) -> deque[Any] | None:
        """The queue to take the next frame from now: ``out`` (the loop's) before
        ``incoming`` (other threads', once ``ready``); None when nothing is to be written."""
        if self.out:
            return self.out
        if self.incoming and ready:
            return self.incoming
        return None

    def idle(self, ready: bool) -> deque[Any] | None:
        """The writer found nothing: the next :meth:`post` wakes the loop again. Looks once
        more after the reset, so that an item posted meanwhile is not left waiting."""
        self.drain_scheduled = False
        return self.next_queue(ready)

    def quiet(self) -> bool:
        """Nothing is queued or being written: a frame written now overtakes nothing."""
        return not (self.out or self.incoming or self.writing_chunks)

    def take_run(
        self, queue: deque[Any], batch: Any, ready: bool, max_bytes: int = CLIENT_WRITE_RUN_BYTES
    ) -> tuple[list[tuple[bytes, bool]], ChunkedFrame | None]:
        """The frames to write in one go, starting from ``queue``: each (frame, binary), and
        what piled up behind it, up to ``max_bytes``; a chunked message ends the run and is
        returned on its own, to be written chunk by chunk."""
        run: list[tuple[bytes, bool]] = []
        size = 0
        while True:
            frame = take_frame(queue, batch)
            if isinstance(frame, ChunkedFrame):
                return run, frame
            run.append((frame, is_binary(frame)))
            size += len(frame)
            next_queue = self.next_queue(ready)
            if next_queue is None or size >= max_bytes:
                return run, None
            queue = next_queue
