"""The client's send queue, with frames only (no socket, no loop): the order of what the loop
and other threads send, what is dropped while disconnected, one wake-up per burst, when a frame
may be written at once, and how the writer cuts runs of frames."""

from __future__ import annotations

from typing import Any

import orjson

from jupyter_interop.client.sendqueue import SendQueue, is_binary
from jupyter_interop.protocol.chunks import ChunkedFrame


def frame(n: int) -> bytes:
    return orjson.dumps({"domain": "bus", "type": "publish", "n": n})


def numbers(frames: Any) -> list[Any]:
    """What a list of frames (or of (frame, binary) pairs) carries, by ``n``."""
    out: list[Any] = []
    for item in frames:
        raw = item[0] if isinstance(item, tuple) else item
        if is_binary(raw):
            out.append("binary")
            continue
        decoded = orjson.loads(raw)
        out.append([m["n"] for m in decoded] if isinstance(decoded, list) else decoded["n"])
    return out


def test_a_burst_from_other_threads_asks_for_one_wake_up() -> None:
    queue = SendQueue()
    assert queue.post(frame(0)) is True
    assert [queue.post(frame(n)) for n in range(1, 5)] == [False] * 4
    assert queue.drain(ready=True) is True  # the writer is woken and takes them all
    assert queue.post(frame(5)) is False  # still draining: no second wake-up
    assert queue.idle(ready=True) is queue.incoming  # an item posted meanwhile is not left
    queue.incoming.clear()
    assert queue.idle(ready=True) is None
    assert queue.post(frame(6)) is True  # idle again: the next post wakes the loop


def test_what_other_threads_sent_while_disconnected_is_dropped_and_counted() -> None:
    queue = SendQueue()
    for n in range(3):
        queue.post(frame(n))
    assert queue.drain(ready=False) is False
    assert queue.dropped == 3 and not queue.incoming
    assert queue.post(frame(3)) is True  # reset: a later post asks for a wake-up again
    # the handshake's own frame goes out; what other threads sent before it does not
    queue.push(frame(99), ready=False)
    assert queue.dropped == 4 and list(queue.out) == [frame(99)]


def test_a_frame_from_the_loop_goes_after_what_other_threads_sent_before_it() -> None:
    queue = SendQueue()
    queue.post(frame(0))
    queue.post(("s1", b"1"))
    queue.push(frame(2), ready=True)
    assert list(queue.out) == [frame(0), ("s1", b"1"), frame(2)] and not queue.incoming


def test_the_loops_queue_is_written_before_other_threads_and_only_once_ready() -> None:
    queue = SendQueue()
    assert queue.next_queue(ready=True) is None
    queue.post(frame(1))
    assert queue.next_queue(ready=False) is None  # not connected yet: it waits
    assert queue.next_queue(ready=True) is queue.incoming
    queue.out.append(frame(0))
    assert queue.next_queue(ready=False) is queue.out  # the handshake is the loop's


def test_a_frame_is_written_at_once_only_when_it_overtakes_nothing() -> None:
    queue = SendQueue()
    assert queue.quiet()
    queue.post(frame(1))
    assert not queue.quiet()
    queue.incoming.clear()
    queue.out.append(frame(2))
    assert not queue.quiet()
    queue.out.clear()
    queue.writing_chunks = True
    assert not queue.quiet()


def test_the_socket_dropping_counts_everything_queued() -> None:
    queue = SendQueue()
    queue.push(frame(0), ready=True)
    queue.push(frame(1), ready=True)
    queue.post(frame(2))
    queue.lost()
    assert queue.dropped == 3 and not queue.out and not queue.incoming
    assert queue.post(frame(3)) is True  # the writer that would have reset it is gone


def test_a_run_takes_the_loops_frames_then_other_threads_each_its_own_frame() -> None:
    queue = SendQueue()
    for n in range(3):
        queue.push(frame(n), ready=True)
    queue.post(frame(3))
    queue.post(b"JIB1\x00binary")
    run, chunked = queue.take_run(queue.out, batch=None, ready=True)
    assert numbers(run) == [0, 1, 2, 3, "binary"] and chunked is None
    assert [binary for _, binary in run] == [False] * 4 + [True]
    assert queue.next_queue(ready=True) is None


def test_a_run_batches_and_folds_with_the_batch_extension() -> None:
    queue = SendQueue()
    queue.push(frame(0), ready=True)
    queue.push(frame(1), ready=True)
    for n in range(3):
        queue.post(("s1", orjson.dumps(n)))
    run, _ = queue.take_run(queue.out, batch=True, ready=True)
    # a batch never spans the loop's queue and the other threads'
    assert numbers(run[:1]) == [[0, 1]]
    folded = orjson.loads(run[1][0])
    assert folded["type"] == "publish-many" and folded["items"] == [0, 1, 2]


def test_a_run_stops_at_its_byte_cap_and_at_a_chunked_message() -> None:
    queue = SendQueue()
    for n in range(5):
        queue.push(frame(n), ready=True)
    run, _ = queue.take_run(queue.out, batch=None, ready=True, max_bytes=2 * len(frame(0)))
    assert numbers(run) == [0, 1] and len(queue.out) == 3
    large = ChunkedFrame([b"x"], 1, 1)
    queue.out.clear()
    queue.out.extend([frame(0), large, frame(1)])
    run, chunked = queue.take_run(queue.out, batch=None, ready=True)
    assert numbers(run) == [0] and chunked is large and list(queue.out) == [frame(1)]


def test_other_threads_items_wait_while_not_ready_during_a_run() -> None:
    queue = SendQueue()
    queue.push(frame(0), ready=False)  # the handshake
    queue.post(frame(1))
    run, _ = queue.take_run(queue.out, batch=None, ready=False)
    assert numbers(run) == [0] and list(queue.incoming) == [frame(1)]
