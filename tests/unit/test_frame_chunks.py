"""Chunk frames of the binary extension: cutting, reassembly, caps, cut-off messages."""

from __future__ import annotations

import base64
import os
import tracemalloc
from typing import Any

import numpy as np
import orjson
import pandas as pd
import pytest

from jupyter_interop.protocol.chunks import (
    CHUNK_HEADER,
    CHUNK_HEADER_SIZE,
    CHUNK_MAGIC,
    DEFAULT_MAX_ATTACHMENT_BYTES,
    ChunkAssembler,
    ChunkedFrame,
    ChunkTooLarge,
    ReassemblyBudget,
    chunk_frames,
    chunk_views,
    is_chunk,
)
from jupyter_interop.protocol.frames import (
    FrameError,
    Pieces,
    frame_parts,
    joined,
    pack_frame,
    unpack_frame,
)
from jupyter_interop.server.attachments import decode_frame


def parts_of(header: dict, buffers: list[bytes]) -> tuple[list, int]:
    return frame_parts(orjson.dumps(header), buffers)


def as_bytes(whole: Any) -> bytes:
    """A reassembled frame's bytes: the pieces that arrived, or the one buffer."""
    return b"".join(whole) if isinstance(whole, Pieces) else bytes(memoryview(whole))


@pytest.mark.parametrize("join", [True, False], ids=["joined", "pieces"])
@pytest.mark.parametrize("chunk_size", [1, 7, 64, 1000, 10_000])
def test_chunks_reassemble_to_the_packed_frame(chunk_size: int, join: bool) -> None:
    buffers = [os.urandom(1001), b"", os.urandom(3000), os.urandom(5)]
    header = {"type": "x", "request_id": "1"}
    parts, total = parts_of(header, buffers)
    whole = pack_frame(orjson.dumps(header), buffers)
    assert total == len(whole)
    chunks = list(chunk_frames(parts, total, 42, chunk_size))
    assert all(is_chunk(c) for c in chunks)
    assert all(len(c) <= CHUNK_HEADER_SIZE + chunk_size for c in chunks)
    assembler = ChunkAssembler(join=join)
    results = [assembler.feed(c) for c in chunks]
    assert results[:-1] == [None] * (len(chunks) - 1)
    assert as_bytes(results[-1]) == whole
    assert len(assembler) == 0 and assembler.pending_bytes == 0
    _, got = unpack_frame(results[-1])
    assert [bytes(joined(b)) for b in got] == buffers


def test_chunk_views_copy_nothing() -> None:
    payload = bytearray(b"a" * 100)
    views = list(chunk_views([payload], 100, 1, 30))
    assert [sum(p.nbytes for p in pieces) for _, pieces in views] == [30, 30, 30, 10]
    payload[0] = ord("b")  # the pieces are views of the frame itself
    assert bytes(views[0][1][0][:1]) == b"b"


def test_chunked_frame_is_a_binary_bytes_object() -> None:
    parts, total = parts_of({"type": "x"}, [os.urandom(5000)])
    frame = ChunkedFrame(parts, total, 3)
    assert isinstance(frame, bytes) and frame[:1] != b"{"
    # iterating gives the chunk frames (default chunk size: one chunk here)
    assert as_bytes(ChunkAssembler().feed(next(iter(frame)))) == b"".join(bytes(p) for p in parts)


def test_the_pieces_are_the_received_chunks_not_copies() -> None:
    """``join=False`` (the hub): the frame is views of the chunk frames as they arrived,
    and a buffer spanning several chunks is given as those views, in order."""
    blob = os.urandom(10_000)
    parts, total = parts_of({"m": 1}, [blob])
    chunks = [bytearray(c) for c in chunk_frames(parts, total, 3, 4096)]
    assembler = ChunkAssembler(join=False)
    whole = None
    for chunk in chunks:
        whole = assembler.feed(chunk)
    assert isinstance(whole, Pieces) and len(whole) == len(chunks)
    assert whole.nbytes == total
    _, [buffer] = unpack_frame(whole)
    assert isinstance(buffer, Pieces) and joined(buffer) == blob
    chunks[1][CHUNK_HEADER_SIZE] ^= 0xFF  # a byte of the second chunk, seen through the piece
    assert bytes(whole[1][:1]) == bytes(chunks[1][CHUNK_HEADER_SIZE : CHUNK_HEADER_SIZE + 1])
    assert all(piece.readonly for piece in whole), "the hub forwards; it never writes"


@pytest.mark.parametrize("join", [True, False], ids=["joined", "pieces"])
def test_a_decoded_reassembled_frame_keeps_its_attachments(join: bool) -> None:
    blob = os.urandom(50_000)
    parts, total = parts_of(
        {"domain": "bus", "type": "publish", "data": {"b": {"__ji__": "bytes", "buffers": [0]}}},
        [blob],
    )
    assembler = ChunkAssembler(join=join)
    whole = None
    for chunk in chunk_frames(parts, total, 9, 4096):
        found = assembler.feed(chunk)
        whole = found if found is not None else whole
    assert whole is not None
    message = decode_frame(whole)
    assert bytes(joined(message["data"]["b"].buffers[0])) == blob
    assert message["data"]["b"].nbytes == len(blob)


def test_interleaved_messages_are_kept_apart() -> None:
    a_parts, a_total = parts_of({"m": "a"}, [os.urandom(300)])
    b_parts, b_total = parts_of({"m": "b"}, [os.urandom(500)])
    a = list(chunk_frames(a_parts, a_total, 1, 100))
    b = list(chunk_frames(b_parts, b_total, 2, 100))
    assembler = ChunkAssembler()
    done = []
    for i in range(max(len(a), len(b))):
        for chunks in (a, b):
            if i < len(chunks):
                whole = assembler.feed(chunks[i])
                if whole is not None:
                    done.append(orjson.loads(unpack_frame(whole)[0])["m"])
    assert sorted(done) == ["a", "b"]


def test_the_assembled_size_cap_refuses_before_allocating() -> None:
    parts, total = parts_of({"request_id": "7", "type": "update"}, [os.urandom(10_000)])
    chunks = list(chunk_frames(parts, total, 5, 1000))
    assembler = ChunkAssembler(max_bytes=total - 1)
    with pytest.raises(ChunkTooLarge) as caught:
        assembler.feed(chunks[0])
    # the first chunk held the header: the refusal can answer the request
    assert caught.value.header == {"request_id": "7", "type": "update"}
    assert assembler.pending_bytes == 0
    # the rest of the refused message is skipped, then the connection is usable again
    assert [assembler.feed(c) for c in chunks[1:]] == [None] * (len(chunks) - 1)
    assert len(assembler) == 0
    small_parts, small_total = parts_of({"ok": 1}, [b"x" * 10])
    [small] = chunk_frames(small_parts, small_total, 6, 1000)
    assert assembler.feed(small) is not None


def test_the_cap_counts_what_is_already_pending() -> None:
    parts, total = parts_of({}, [os.urandom(1000)])
    assembler = ChunkAssembler(max_bytes=total + total // 2)
    assembler.feed(next(chunk_frames(parts, total, 1, 100)))
    with pytest.raises(ChunkTooLarge):
        assembler.feed(next(chunk_frames(parts, total, 2, 100)))


def test_a_peer_dying_mid_message_leaves_nothing_behind() -> None:
    parts, total = parts_of({}, [os.urandom(5000)])
    chunks = list(chunk_frames(parts, total, 1, 1000))
    assembler = ChunkAssembler()
    for chunk in chunks[:3]:
        assert assembler.feed(chunk) is None
    assert len(assembler) == 1 and assembler.pending_bytes == 3000  # what arrived
    assert assembler.announced_bytes == total and assembler.budget.held == 3000
    assembler.clear()  # what the transport does when the connection closes
    assert len(assembler) == 0 and assembler.pending_bytes == 0
    assert assembler.budget.held == 0
    # a chunk of the cut-off message cannot be mistaken for a new one
    with pytest.raises(FrameError, match="did not start"):
        assembler.feed(chunks[3])


def test_malformed_chunks_are_refused() -> None:
    parts, total = parts_of({}, [os.urandom(500)])
    chunks = list(chunk_frames(parts, total, 1, 100))
    assembler = ChunkAssembler()
    with pytest.raises(FrameError):
        assembler.feed(b"JIC1")
    with pytest.raises(FrameError):
        assembler.feed(b"XXXX" + chunks[0][4:])
    assembler.feed(chunks[0])
    with pytest.raises(FrameError, match="out of order"):
        assembler.feed(chunks[2])
    assert len(assembler) == 0  # the broken message is dropped


@pytest.mark.parametrize(
    "make",
    [
        lambda n: pd.DataFrame(np.arange(n * 3.0).reshape(n, 3), columns=list("abc")),
        lambda n: pd.DataFrame({"s": [f"x{i}" for i in range(n)], "i": np.arange(n)}),
        lambda n: pd.DataFrame({"c": pd.Categorical(["a", "b"] * (n // 2))}),
        lambda n: pd.DataFrame({"o": [None] * 10 + ["late"] * (n - 10)}),
    ],
    ids=["2d-block", "strings", "categorical", "types-differ-by-slice"],
)
def test_dataframes_are_converted_a_slice_at_a_time(
    monkeypatch: pytest.MonkeyPatch, make: Any
) -> None:
    from jupyter_interop.protocol import frames

    monkeypatch.setattr(frames, "_ARROW_BATCH_BYTES", 64)  # a few rows per record batch
    frame = make(1000)
    buffers: list[Any] = []
    placeholder = frames.dataframe_placeholder(frame, buffers)
    assert placeholder is not None and placeholder["rows"] == 1000
    revived = frames.revive_dataframe(placeholder, buffers, lambda v, b: v)
    pd.testing.assert_frame_equal(revived, frame)


def _resident_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def test_memory_follows_the_bytes_that_arrive_not_the_announced_size() -> None:
    """28 bytes announcing 2 GiB hold nothing; each chunk adds its own bytes. The hub keeps
    the chunk frames themselves (nothing more is allocated for them)."""
    assembler = ChunkAssembler(join=False)
    announced = DEFAULT_MAX_ATTACHMENT_BYTES - 1
    start = CHUNK_HEADER.pack(CHUNK_MAGIC, 1, 0, announced, 0)
    more = start + b"x" * 50_000  # (a second message of the same id would be out of order)
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        assert assembler.feed(start) is None
        assert tracemalloc.get_traced_memory()[0] - before < 4096
        assert assembler.pending_bytes == 0 and assembler.budget.held == 0
        assembler.feed(more)
        assert tracemalloc.get_traced_memory()[0] - before < 4096  # a view of ``more``
        assert assembler.pending_bytes == 50_000 and assembler.budget.held == 50_000
    finally:
        tracemalloc.stop()


def test_a_joined_message_is_resident_as_its_bytes_arrive() -> None:
    """A client's one buffer of the announced length is a mapping whose pages are only
    touched as chunks are copied in: 2 GiB announced, 8 MiB arrived, about 8 MiB resident."""
    assembler = ChunkAssembler(join=True)
    announced = DEFAULT_MAX_ATTACHMENT_BYTES - 1
    arrived = 8 * 1024 * 1024
    chunk = CHUNK_HEADER.pack(CHUNK_MAGIC, 1, 0, announced, 0) + b"x" * arrived
    before = _resident_bytes()
    assert assembler.feed(chunk) is None
    grown = _resident_bytes() - before
    assert arrived <= grown < 3 * arrived, "the announced size is not resident"
    assert assembler.budget.held == arrived
    assembler.clear()
    assert assembler.budget.held == 0


def test_one_budget_for_every_connection_refuses_the_message_that_exceeds_it() -> None:
    budget = ReassemblyBudget(10_000)
    first, second = ChunkAssembler(budget=budget), ChunkAssembler(budget=budget)
    parts, total = parts_of({"request_id": "big", "type": "publish"}, [os.urandom(8000)])
    a_chunks = list(chunk_frames(parts, total, 1, 1000))
    b_chunks = list(chunk_frames(parts, total, 1, 1000))
    for chunk in a_chunks[:4]:
        assert first.feed(chunk) is None
    assert budget.held == 4000
    for chunk in b_chunks[:6]:
        assert second.feed(chunk) is None
    assert budget.held == 10_000
    with pytest.raises(ChunkTooLarge, match="at most 10000 bytes in all") as caught:
        second.feed(b_chunks[6])
    # the refusal can answer the request (its header came with the first chunk)
    assert caught.value.header == {"request_id": "big", "type": "publish"}
    assert budget.held == 4000, "the refused message gave back what it held"
    assert [second.feed(c) for c in b_chunks[7:]] == [None] * (len(b_chunks) - 7)
    assert len(second) == 0
    # the first connection is not affected and completes; then the budget is free again
    for chunk in a_chunks[4:-1]:
        assert first.feed(chunk) is None
    whole = first.feed(a_chunks[-1])
    assert whole is not None and len(as_bytes(whole)) == total
    assert budget.held == 0
    for chunk in b_chunks[:-1]:
        assert second.feed(chunk) is None
    assert second.feed(b_chunks[-1]) is not None and budget.held == 0


def numeric_frame(rows: int, index: Any = None) -> pd.DataFrame:
    """Columns Arrow shares as they are: floats (NaN included), ints, datetimes."""
    rng = np.random.default_rng(7)
    floats = rng.random(rows)
    floats[::97] = np.nan
    frame = pd.DataFrame(index=pd.RangeIndex(rows) if index is None else index)
    frame["f"] = floats
    frame["i"] = np.arange(rows, dtype=np.int64)
    frame["u"] = np.arange(rows, dtype=np.uint8)
    frame["t"] = pd.date_range("2024-01-01", periods=rows, freq="s").to_numpy()
    frame.loc[frame.index[1], "t"] = pd.NaT
    return frame


@pytest.mark.parametrize(
    "index",
    [None, pd.RangeIndex(5, 5 + 2 * 20_000, 2, name="r")],
    ids=["range", "range-with-start-step-name"],
)
def test_shared_columns_travel_as_pieces_and_arrive_as_writable_views(index: Any) -> None:
    """A frame of contiguous numeric columns is sent from its own columns (no copy on the
    way out) and, reassembled from chunks, revived as writable views of the received frame
    (no copy on the way in)."""
    from jupyter_interop.protocol.frames import Pieces, dataframe_placeholder, revive_dataframe

    frame = numeric_frame(20_000, index)  # columns above the joined small writes
    buffers: list[Any] = []
    placeholder = dataframe_placeholder(frame, buffers)
    assert placeholder is not None and isinstance(buffers[0], Pieces)
    column = np.asarray(frame["f"])
    addresses = {np.frombuffer(p, np.uint8).ctypes.data for p in buffers[0]}
    assert column.ctypes.data in addresses, "the column itself is a piece of the stream"

    parts, total = parts_of({"data": placeholder}, buffers)
    assembler = ChunkAssembler()
    chunks = list(chunk_frames(parts, total, 1, 64 * 1024))
    assert [assembler.feed(c) for c in chunks[:-1]] == [None] * (len(chunks) - 1)
    whole = assembler.feed(chunks[-1])
    assert whole is not None
    header, received = unpack_frame(whole)
    revived = revive_dataframe(orjson.loads(header)["data"], received, lambda v, b: v)
    pd.testing.assert_frame_equal(revived, frame, check_index_type=True)

    start = np.frombuffer(whole, np.uint8).ctypes.data
    for name in ["f", "i", "u"]:  # (NaT is a null in Arrow: "t" is filled in a copy)
        address = np.asarray(revived[name]).ctypes.data
        assert start <= address < start + len(whole), f"{name} is a view of the frame"
    revived.iloc[0, 0] = 42.0  # writable, as a DataFrame built from its own arrays
    revived.loc[revived.index[2], "i"] = -1
    assert revived.iloc[0, 0] == 42.0 and revived["i"].iloc[2] == -1


def test_an_immutable_frame_gives_a_dataframe_of_its_own() -> None:
    """A frame that arrived whole is ``bytes``: views of it would be read-only, so pandas
    gets its own copy, writable."""
    from jupyter_interop.protocol.frames import dataframe_placeholder, joined, revive_dataframe

    frame = numeric_frame(100)
    buffers: list[Any] = []
    placeholder = dataframe_placeholder(frame, buffers)
    assert placeholder is not None
    revived = revive_dataframe(placeholder, [memoryview(bytes(joined(buffers[0])))], lambda v, b: v)
    pd.testing.assert_frame_equal(revived, frame)
    revived.iloc[0, 1] = -5
    assert revived.iloc[0, 1] == -5


def test_the_hub_forwards_a_chunked_value_as_the_pieces_it_arrived_in() -> None:
    """Decoded from the chunks it arrived in and encoded for a binary peer, a value is never
    copied: the frame written is the received chunks' own bytes; a JSON peer still gets
    its documented form."""
    from jupyter_interop.protocol.frames import PiecedFrame
    from jupyter_interop.server.attachments import AttachmentForm, FrameCache

    blob = os.urandom(300_000)
    message = {"domain": "bus", "type": "publish", "data": {"__ji__": "bytes", "buffers": [0]}}
    parts, total = parts_of(message, [blob])
    chunks = list(chunk_frames(parts, total, 1, 64 * 1024))
    assembler = ChunkAssembler(join=False)
    for chunk in chunks:
        whole = assembler.feed(chunk)
    decoded = decode_frame(whole)
    frames = FrameCache()
    out = frames.frame_for(decoded, AttachmentForm.BINARY)
    assert isinstance(out, PiecedFrame) and out[:4] == b"JIB1"
    received = [
        (np.frombuffer(c, np.uint8).ctypes.data, len(c)) for c in chunks
    ]  # where the chunk frames are

    def inside_a_chunk(part: Any) -> bool:
        address = np.frombuffer(part, np.uint8).ctypes.data
        return any(start <= address < start + size for start, size in received)

    large = [p for p in out.parts if memoryview(p).nbytes >= 1000]
    assert sum(memoryview(p).nbytes for p in large) == len(blob)
    assert all(inside_a_chunk(p) for p in large), "the value is written from the chunks"
    _, [buffer] = unpack_frame(out)
    assert joined(buffer) == blob and len(out) == total
    as_json = orjson.loads(frames.frame_for(decoded, AttachmentForm.JSON))
    assert base64.b64decode(as_json["data"]["base64"]) == blob


@pytest.mark.parametrize(
    "sizes", [[0], [5], [125], [126], [65_535], [65_536], [7, 0, 300_001, 65_000]]
)
def test_a_chunk_masked_straight_into_its_frame_is_what_websockets_writes(
    monkeypatch: pytest.MonkeyPatch, sizes: list[int]
) -> None:
    """The client's writer masks a chunk's pieces into the frame it writes: byte for byte the
    frame websockets makes of the joined pieces with the same mask (lengths of each header
    form, pieces that do not end on the mask's period)."""
    import websockets.frames as ws_frames
    from websockets.frames import Frame, Opcode

    from jupyter_interop.client._direct import masked_frame

    pieces = [os.urandom(n) for n in sizes]
    mask = b"\x9a\x01\xfe\x37"
    monkeypatch.setattr(ws_frames.secrets, "token_bytes", lambda n: mask)
    expected = Frame(Opcode.BINARY, b"".join(pieces)).serialize(mask=True)
    assert bytes(masked_frame(pieces, mask)) == expected
