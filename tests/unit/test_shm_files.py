"""Shared-memory attachments: references, layouts, the hub's directory and its lifetime rules.

Everything here runs on real files (a temporary directory stands for /dev/shm: the rules do not
depend on tmpfs); the two-process paths are in tests/integration/test_shm_transfer.py.
"""

from __future__ import annotations

import errno
import gc
import os
import stat
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pandas as pd
import pytest

from jupyter_interop.client.codec import Codec, revive
from jupyter_interop.protocol import ProtocolError
from jupyter_interop.protocol import shm as shm_module
from jupyter_interop.protocol.codec import encode
from jupyter_interop.protocol.frames import (
    Attachment,
    dataframe_json_form,
    dataframe_placeholder,
    pack_frame,
    to_json_bytes,
    unpack_frame,
)
from jupyter_interop.protocol.shm import (
    SharedAttachment,
    SharedFiles,
    SharedMemoryError,
    check_ref,
    columns_layout,
    estimated_size,
    map_file,
    new_name,
    open_dir,
    revive_columns,
    revive_shared,
    share_plan,
    write_file,
)
from jupyter_interop.server.attachments import (
    AttachmentForm,
    FrameCache,
    decode_frame,
    wants_binary,
)
from jupyter_interop.server.shm import SharedMemoryArea

MIB = 1024 * 1024


def numeric_frame(rows: int = 1000) -> pd.DataFrame:
    rng = np.random.default_rng(1)
    frame = pd.DataFrame(index=pd.RangeIndex(5, 5 + 2 * rows, 2, name="row"))
    frame["f"] = rng.random(rows)
    frame["i"] = np.arange(rows, dtype="int32")
    frame["b"] = np.arange(rows) % 3 == 0
    frame["t"] = pd.date_range("2024-01-01", periods=rows, freq="s").to_numpy()
    frame["u"] = rng.integers(0, 100, rows).astype("uint16")
    frame.columns.name = "cols"
    return frame


@pytest.fixture
def area(tmp_path: Path) -> Any:
    opened = SharedMemoryArea(str(tmp_path), grace=0)
    assert opened.open()
    yield opened
    opened.close()


def proven(area: SharedMemoryArea, peer_id: str = "p1", threshold: int = 1) -> SharedFiles:
    """A client's view after a successful proof (what the client codec does)."""
    files = SharedFiles(area.offer(peer_id), threshold)
    area.prove(peer_id, files.proof())
    return files


def proven_codec(area: SharedMemoryArea) -> tuple[SharedFiles, Codec]:
    """A binary client codec that uses the area (as after ``enable_shared_memory``)."""
    files = proven(area)
    codec = Codec(binary=True)
    codec.shared = files
    return files, codec


# ---------------------------------------------------------------------- references and files


def test_references_are_validated() -> None:
    name = new_name()
    assert len(name) == 32 and check_ref({"name": name, "size": 10}) == (name, 10)
    for bad in ("../" + name[3:], "a/" + name[2:], name[:-1], name + "/", 5, None):
        with pytest.raises(SharedMemoryError, match="file name"):
            check_ref({"name": bad, "size": 10})
    for size in (0, -1, True, "10", 1.5):
        with pytest.raises(SharedMemoryError, match="size"):
            check_ref({"name": name, "size": size})
    with pytest.raises(SharedMemoryError, match="exceeds the 9 bytes"):
        check_ref({"name": name, "size": 10}, max_bytes=9)
    with pytest.raises(SharedMemoryError, match="must be an object"):
        check_ref([name, 10])


def test_files_are_private_complete_and_mapped_copy_on_write(tmp_path: Path) -> None:
    fd = open_dir(str(tmp_path))
    name = new_name()
    write_file(fd, name, [(0, b"abc"), (64, b"xyz")], 100)
    st = os.stat(tmp_path / name)
    assert stat.S_IMODE(st.st_mode) == 0o600 and st.st_size == 100
    mapping = map_file(fd, name, 100, private=True)
    assert bytes(mapping[:3]) == b"abc" and bytes(mapping[64:67]) == b"xyz"
    assert bytes(mapping[3:64]) == b"\0" * 61 and bytes(mapping[67:]) == b"\0" * 33
    mapping[0:3] = b"ABC"  # a private mapping: the file keeps its bytes
    assert (tmp_path / name).read_bytes()[:3] == b"abc"
    with pytest.raises(FileExistsError):
        write_file(fd, name, [(0, b"again")], 5)  # never over an existing file
    with pytest.raises(SharedMemoryError, match="100 bytes, the reference says 99"):
        map_file(fd, name, 99, private=True)
    with pytest.raises(SharedMemoryError, match="is gone"):
        map_file(fd, new_name(), 100, private=True)
    link = new_name()
    os.symlink(tmp_path / name, tmp_path / link)
    with pytest.raises(SharedMemoryError, match="Cannot open"):
        map_file(fd, link, 100, private=True)  # symlinks are never followed
    hard = new_name()
    os.link(tmp_path / name, tmp_path / hard)
    with pytest.raises(SharedMemoryError, match="2 links"):
        map_file(fd, hard, 100, private=True)
    sparse = new_name()
    with open(tmp_path / sparse, "wb") as f:
        f.truncate(1 << 20)
    with pytest.raises(SharedMemoryError, match="holes"):
        map_file(fd, sparse, 1 << 20, private=True)
    os.mkdir(tmp_path / (directory := new_name()))
    with pytest.raises(SharedMemoryError, match="regular file"):
        map_file(fd, directory, 4096, private=True)
    os.close(fd)


# ---------------------------------------------------------------------- layouts


def write_plan(tmp_path: Path, value: Any) -> tuple[dict[str, Any], Any]:
    plan = share_plan(value)
    assert plan is not None
    fields, parts, size = plan
    fd = open_dir(str(tmp_path))
    name = new_name()
    write_file(fd, name, parts, size)
    mapping = map_file(fd, name, size, private=True)
    os.close(fd)
    return fields, mapping


def test_numeric_frames_come_back_as_writable_views_of_the_mapping(tmp_path: Path) -> None:
    frame = numeric_frame()
    frame[7] = frame["u"]  # labels may be ints too
    fields, mapping = write_plan(tmp_path, frame)
    assert fields["format"] == "columns" and fields["index"]["kind"] == "range"
    assert all(offset % 64 == 0 for offset in fields["offsets"])
    got = revive_shared(orjson.loads(orjson.dumps(fields)), mapping)
    pd.testing.assert_frame_equal(got, frame)
    address = np.frombuffer(mapping, np.uint8).ctypes.data
    column = got["f"].to_numpy()
    assert address <= column.ctypes.data < address + len(mapping)  # no copy
    got.iloc[0, 0] = -1.0  # an ordinary DataFrame: writable
    got["i"] += 1
    assert got.iloc[0, 0] == -1.0 and got["i"].iloc[0] == 1
    assert frame.iloc[0, 0] != -1.0


def test_consolidated_frames_are_written_column_by_column(tmp_path: Path) -> None:
    frame = pd.DataFrame(np.arange(3000.0).reshape(1000, 3), columns=["a", "b", "c"])
    assert len(frame._mgr.blocks) == 1  # one 2-D block: its columns are strided
    fields, mapping = write_plan(tmp_path, frame)
    assert fields["format"] == "columns"
    pd.testing.assert_frame_equal(revive_shared(fields, mapping), frame)


def test_frames_with_an_array_index(tmp_path: Path) -> None:
    frame = numeric_frame(10).set_index("f")
    fields, mapping = write_plan(tmp_path, frame)
    assert fields["format"] == "columns" and fields["index"]["kind"] == "array"
    pd.testing.assert_frame_equal(revive_shared(fields, mapping), frame)


def test_other_frames_take_the_arrow_layout(tmp_path: Path) -> None:
    objects = pd.DataFrame({"s": ["a", "b"], "x": [1.0, 2.0]})
    pairs = pd.DataFrame([[1, 2]], columns=pd.MultiIndex.from_tuples([("a", 1), ("a", 2)]))
    twice = pd.DataFrame([[1, 2]], columns=["a", "a"])
    for frame in (objects, pairs, twice):
        assert columns_layout(frame) is None
    fields, mapping = write_plan(tmp_path, objects)
    assert fields["format"] == "arrow"
    pd.testing.assert_frame_equal(revive_shared(fields, mapping), objects)


def test_sizes_decide_without_converting() -> None:
    frame = numeric_frame(1000)
    assert estimated_size(frame) == frame.memory_usage(index=True).sum()
    assert estimated_size(frame["f"]) == frame["f"].nbytes == 8000
    assert estimated_size(np.zeros(10)) == 80 and estimated_size(b"abc") == 3
    assert estimated_size("text") == 0 and estimated_size({"a": 1}) == 0


def test_a_series_travels_as_a_one_column_frame(tmp_path: Path) -> None:
    series = numeric_frame(100)["f"]
    fields, mapping = write_plan(tmp_path, series)
    pd.testing.assert_frame_equal(revive_shared(fields, mapping), series.to_frame())


def test_arrays_and_bytes(tmp_path: Path) -> None:
    array = np.arange(24, dtype=">i4").reshape(2, 3, 4)[:, ::2]  # not contiguous, big-endian
    fields, mapping = write_plan(tmp_path, array)
    got = revive_shared(fields, mapping)
    np.testing.assert_array_equal(got, array)
    assert got.dtype == array.dtype and got.flags.writeable
    got[0, 0, 0] = 99
    fields, mapping = write_plan(tmp_path, b"\x00payload")
    assert revive_shared(fields, mapping) == b"\x00payload"
    assert share_plan(np.array([object()])) is None and share_plan({"a": 1}) is None


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"offsets": [1, 64 * 1000, 0, 0, 0]}, "offset 1"),
        ({"offsets": [0, 64 * 10**6, 0, 0, 0]}, "out of the file"),
        ({"dtypes": ["O", "<i4", "|b1", "<M8[ns]", "<u2"]}, "cannot be mapped"),
        ({"columns": ["f", "f", "b", "t", "u"]}, "disagree"),
        ({"columns": ["f"]}, "disagree"),
        ({"rows": 1001}, "index length"),
        ({"index": {"kind": "pickle"}}, "index kind"),
        ({"dtypes": "nonsense"}, "Bad columns layout"),
    ],
)
def test_bad_column_layouts_are_refused(tmp_path: Path, change: dict[str, Any], match: str) -> None:
    fields, mapping = write_plan(tmp_path, numeric_frame())
    with pytest.raises(SharedMemoryError, match=match):
        revive_columns({**fields, **change}, mapping)


# ---------------------------------------------------------------------- the hub's directory


def test_directory_is_private_and_removed_on_close(tmp_path: Path) -> None:
    area = SharedMemoryArea(str(tmp_path))
    assert area.open() and area.path is not None
    path = Path(area.path)
    assert path.name.startswith(f"jupyter-interop-{os.geteuid()}-")
    for sub in (path, path / "held", path / "peers"):
        assert stat.S_IMODE(os.stat(sub).st_mode) == 0o700
    offer = area.offer("p1")
    assert offer is not None and Path(offer["inbox"]).parent == path / "peers"
    assert stat.S_IMODE(os.stat(offer["inbox"]).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(Path(offer["inbox"]) / offer["nonce"]).st_mode) == 0o600
    area.close()
    assert not path.exists() and area.offer("p2") is None
    area.close()  # idempotent


def test_unusable_root_means_no_offer(tmp_path: Path) -> None:
    area = SharedMemoryArea(str(tmp_path / "missing"))
    assert not area.open() and area.offer("p1") is None


def test_stale_directories_of_dead_hubs_are_removed(tmp_path: Path) -> None:
    alive = SharedMemoryArea(str(tmp_path))
    assert alive.open() and alive.path is not None
    dead = SharedMemoryArea(str(tmp_path))
    assert dead.open() and dead.path is not None
    dead_path = dead.path
    os.close(dead._lock_fd)  # type: ignore[arg-type]  # what the death of its process does
    dead._lock_fd = None
    creating = tmp_path / f"jupyter-interop-{os.geteuid()}-0000000000000000"
    creating.mkdir()  # no lock file yet, just created: a hub starting right now
    other = tmp_path / "jupyter-interop-somebody-else"
    other.mkdir()
    fresh = SharedMemoryArea(str(tmp_path))
    assert fresh.open()
    assert not Path(dead_path).exists()
    assert Path(alive.path).exists() and creating.exists() and other.exists()
    for opened in (alive, fresh):
        opened.close()


def test_proof(area: SharedMemoryArea) -> None:
    offer = area.offer("p1")
    files = SharedFiles(offer)
    with pytest.raises(SharedMemoryError, match="Wrong nonce"):
        area.prove("p1", "guess")
    with pytest.raises(SharedMemoryError, match="Wrong nonce"):
        area.prove("p1", None)
    with pytest.raises(SharedMemoryError, match="No shared-memory offer"):
        area.prove("p2", files.proof())
    assert area.inbox("p1") is None
    inbox = area.prove("p1", files.proof())
    assert inbox.proven and area.inbox("p1") is inbox
    assert not (Path(offer["inbox"]) / offer["nonce"]).exists()  # read once, then gone
    for bad in ({}, {"inbox": "x", "held": "y", "nonce": "../../etc/passwd"}, "offer"):
        with pytest.raises(SharedMemoryError, match="Bad"):
            SharedFiles(bad)


def test_claim_moves_the_file_to_the_hub(area: SharedMemoryArea) -> None:
    files = proven(area)
    inbox = area.inbox("p1")
    assert inbox is not None
    placeholder = files.write(b"x" * 1000)
    assert placeholder is not None and placeholder["__ji__"] == "bytes"
    ref = placeholder["shm"]
    attachment = inbox.claim({"__ji__": "bytes"}, ref)
    assert isinstance(attachment, SharedAttachment) and attachment.nbytes == 1000
    assert not (Path(files.inbox) / ref["name"]).exists()
    assert area.held_names() == [attachment.name] and attachment.name != ref["name"]
    meta, buffers = attachment.wire()
    assert meta == {"__ji__": "bytes"} and bytes(buffers[0]) == b"x" * 1000
    assert files.map(attachment.shared_placeholder()["shm"])[:3] == b"xxx"
    with pytest.raises(SharedMemoryError, match="is gone"):
        inbox.claim({"__ji__": "bytes"}, ref)  # claimed once only


def test_claims_are_refused_with_a_reason(area: SharedMemoryArea, tmp_path: Path) -> None:
    offer = area.offer("p1")
    inbox = area._inboxes["p1"]
    files = SharedFiles(offer, threshold=1)
    nonce = files.proof()  # read, so that its content can be sent below
    placeholder = files.write(b"y" * 100)
    assert placeholder is not None
    with pytest.raises(SharedMemoryError, match="not negotiated"):
        inbox.claim({}, placeholder["shm"])  # no proof yet
    area.prove("p1", nonce)
    ref = placeholder["shm"]
    with pytest.raises(SharedMemoryError, match="100 bytes, the reference says 101"):
        inbox.claim({}, {**ref, "size": 101})
    with pytest.raises(SharedMemoryError, match="file name"):
        inbox.claim({}, {**ref, "name": "../held/" + ref["name"][8:]})
    outside = tmp_path / "secret"
    outside.write_bytes(b"z" * 100)
    link = new_name()
    os.symlink(outside, Path(offer["inbox"]) / link)
    with pytest.raises(SharedMemoryError, match="Cannot open"):
        inbox.claim({}, {"name": link, "size": 100})
    # the inbox itself swapped for a symlink to another directory: refused too
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / ref["name"]).write_bytes(b"y" * 100)
    moved = Path(offer["inbox"]).with_name("moved")
    Path(offer["inbox"]).rename(moved)
    os.symlink(elsewhere, offer["inbox"])
    with pytest.raises(SharedMemoryError, match="inbox is gone"):
        inbox.claim({}, ref)
    small = SharedMemoryArea(str(tmp_path), max_bytes=50)
    assert small.open()
    small_files = proven(small)
    big = small_files.write(b"w" * 60)
    assert big is not None
    with pytest.raises(SharedMemoryError, match="exceeds the 50 bytes"):
        small._inboxes["p1"].claim({}, big["shm"])
    small.close()


def test_held_files_go_when_the_value_does_after_the_grace_period(tmp_path: Path) -> None:
    area = SharedMemoryArea(str(tmp_path), grace=1000)
    assert area.open()
    files = proven(area)
    inbox = area.inbox("p1")
    assert inbox is not None
    placeholder = files.write(b"v" * 10)
    assert placeholder is not None
    attachment: Any = inbox.claim({"__ji__": "bytes"}, placeholder["shm"])
    name = attachment.name
    mapped = files.map(attachment.shared_placeholder()["shm"])
    del attachment
    gc.collect()
    assert area.held_names() == [name]  # released, but a receiver may not have mapped it yet
    assert area.sweep() == 0
    assert area.sweep(now=10**12) == 1 and area.held_names() == []
    assert bytes(mapped[:1]) == b"v"  # a receiver that mapped it keeps its pages
    area.close()


def test_files_waiting_out_their_grace_period_are_bounded(tmp_path: Path) -> None:
    area = SharedMemoryArea(str(tmp_path), grace=1000, grace_bytes=25)
    assert area.open()
    files = proven(area)
    inbox = area.inbox("p1")
    assert inbox is not None
    names = []
    for _ in range(3):
        placeholder = files.write(b"g" * 10)
        assert placeholder is not None
        attachment: Any = inbox.claim({"__ji__": "bytes"}, placeholder["shm"])
        names.append(attachment.name)
        del attachment
        gc.collect()
    # 30 bytes released within the grace period: the oldest went early, the others wait
    assert area.held_names() == sorted(names[1:]) and area.pending_bytes == 20
    area.close()


def test_a_peer_that_leaves_takes_its_unannounced_files(area: SharedMemoryArea) -> None:
    files = proven(area)
    placeholder = files.write(b"u" * 10)
    assert placeholder is not None
    inbox = Path(files.inbox)
    assert (inbox / placeholder["shm"]["name"]).exists()
    area.forget("p1")
    assert not inbox.exists() and area.inbox("p1") is None


# ---------------------------------------------------------------------- through the hub's codec


def client_frame(codec: Codec, value: Any) -> bytes:
    frame = codec.encode({"type": "update-context", "data": {"v": value}})
    assert frame[:4] == b"JIB1"
    return frame


def test_the_hub_encodes_each_kind_of_peer(area: SharedMemoryArea) -> None:
    _files, codec = proven_codec(area)
    frame = numeric_frame(2000)
    message = decode_frame(client_frame(codec, frame), area.inbox("p1"))
    attachment = message["data"]["v"]
    assert isinstance(attachment, SharedAttachment) and attachment.meta["format"] == "columns"
    assert len(area.held_names()) == 1

    # a peer with shared memory: a reference, no bytes
    cache = FrameCache()
    shared = cache.frame_for(message, AttachmentForm.SHARED)
    header, buffers = unpack_frame(shared)
    assert buffers == [] and orjson.loads(header)["data"]["v"]["shm"]["size"] == attachment.size
    got = codec.decode_binary(shared)["data"]["v"]
    pd.testing.assert_frame_equal(got, frame)

    # a binary peer: what a binary sender would have sent (Arrow IPC)
    binary = cache.frame_for(message, AttachmentForm.BINARY)
    header, buffers = unpack_frame(binary)
    placeholder = orjson.loads(header)["data"]["v"]
    assert placeholder["format"] == "arrow" and "shm" not in placeholder
    wire: list[Any] = []
    before = {"v": dataframe_placeholder(frame, wire)}  # what a binary sender sends
    meta = {k: v for k, v in before["v"].items() if k != "buffers"}
    expected_binary = revive(before, [memoryview(b) for b in wire])["v"]
    got_binary = Codec(binary=True).decode_binary(binary)["data"]["v"]
    pd.testing.assert_frame_equal(got_binary, expected_binary)

    # a JSON peer (the io.Connect JS clients): exactly what it gets without shared memory
    today = {"type": "update-context", "data": {"v": Attachment(meta, wire)}}
    expected = FrameCache().frame_for(today, AttachmentForm.JSON)
    assert orjson.loads(expected)["data"]["v"] == orjson.loads(
        to_json_bytes(dataframe_json_form(frame))
    )
    assert cache.frame_for(message, AttachmentForm.JSON) == expected
    assert cache.frame_for(message, False) == expected  # the old bool form still works
    # and the store keeps the real bytes, in the same JSON form
    assert encode(message) == expected


def test_arrays_and_bytes_for_each_kind_of_peer(area: SharedMemoryArea) -> None:
    _files, codec = proven_codec(area)
    values = {"a": np.arange(1000.0).reshape(10, 100), "b": bytes(range(256)) * 4}
    message = decode_frame(
        codec.encode({"type": "x", "data": values}),
        area.inbox("p1"),
    )
    plain_buffers: list[Any] = []
    plain = {"type": "x", "data": {"a": values["a"], "b": values["b"]}}
    cache = FrameCache()
    json_frame = orjson.loads(cache.frame_for(message, AttachmentForm.JSON))
    assert json_frame == orjson.loads(encode(_as_wire(plain, plain_buffers)))
    for form in (AttachmentForm.SHARED, AttachmentForm.BINARY):
        got = codec.decode_binary(cache.frame_for(message, form))["data"]
        np.testing.assert_array_equal(got["a"], values["a"])
        assert got["b"] == values["b"]
    shared_got = codec.decode_binary(cache.frame_for(message, AttachmentForm.SHARED))["data"]
    assert shared_got["a"].flags.writeable  # a private mapping


def _as_wire(message: dict[str, Any], buffers: list[Any]) -> dict[str, Any]:
    """The same values as attachments that came as buffers (the path without shared memory)."""
    data = {}
    for key, value in message["data"].items():
        if isinstance(value, bytes):
            data[key] = Attachment({"__ji__": "bytes"}, [memoryview(value)])
        else:
            raw = np.ascontiguousarray(value)
            meta = {"__ji__": "ndarray", "dtype": raw.dtype.str, "shape": list(raw.shape)}
            data[key] = Attachment(meta, [memoryview(raw.reshape(-1).view(np.uint8))])
    return {**message, "data": data}


def test_references_need_a_proven_sender(area: SharedMemoryArea) -> None:
    _files, codec = proven_codec(area)
    frame = client_frame(codec, b"q" * 10)
    with pytest.raises(ProtocolError, match="not negotiated the 'shm' extension"):
        decode_frame(frame)
    header, _ = unpack_frame(frame)
    bad = orjson.loads(header)
    bad["data"]["v"]["shm"]["name"] = "../../../../etc/passwd"
    with pytest.raises(ProtocolError, match="Bad shared-memory file name"):
        decode_frame(pack_frame(orjson.dumps(bad), []), area.inbox("p1"))


def test_wants_binary_forms() -> None:
    assert wants_binary({}) == AttachmentForm.JSON and not wants_binary(None)
    assert wants_binary({"binary": True}) == AttachmentForm.BINARY
    assert wants_binary({"binary": True, "shm": True}) == AttachmentForm.SHARED
    assert wants_binary({"shm": True}) == AttachmentForm.JSON


# ---------------------------------------------------------------------- the client's codec


def test_client_codec_threshold_and_dry_runs(area: SharedMemoryArea) -> None:
    files = proven(area, threshold=MIB)
    codec = Codec(binary=True)
    codec.shared = files
    inbox = Path(files.inbox)
    small = codec.encode({"v": b"s" * 100})
    assert unpack_frame(small)[1][0].nbytes == 100 and list(inbox.iterdir()) == []
    assert codec.prepare({"v": b"b" * MIB}) == {"v": b"b" * MIB}  # not pre-encoded...
    assert list(inbox.iterdir()) == []  # ...and nothing written by the validation
    big = codec.encode({"v": np.zeros(MIB // 8)})
    header, buffers = unpack_frame(big)
    assert buffers == [] and len(list(inbox.iterdir())) == 1
    assert orjson.loads(header)["v"]["shm"]["size"] == MIB
    with pytest.raises(Exception, match="Cannot send"):
        codec.encode({"v": b"b" * MIB, "w": object()})
    assert len(list(inbox.iterdir())) == 1  # the file written for the failed message is removed


def test_client_codec_explains_unusable_references(area: SharedMemoryArea) -> None:
    files = proven(area)
    ref = {"__ji__": "bytes", "shm": {"name": new_name(), "size": 5}}
    got = revive({"v": dict(ref)}, None, files)["v"]
    assert "is gone" in got["error"]
    got = revive({"v": dict(ref)}, None, None)["v"]
    assert "shared memory is not enabled" in got["error"]


def test_client_falls_back_to_buffers_when_tmpfs_is_full(
    area: SharedMemoryArea, monkeypatch: pytest.MonkeyPatch
) -> None:
    files, codec = proven_codec(area)

    def full(*args: Any) -> int:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(shm_module.os, "pwrite", full)
    frame = codec.encode({"v": b"f" * 100})
    assert unpack_frame(frame)[1][0].nbytes == 100  # the bytes went on the wire
    assert list(Path(files.inbox).iterdir()) == []  # and the partial file was removed


def test_client_does_not_try_when_tmpfs_has_no_room(
    area: SharedMemoryArea, monkeypatch: pytest.MonkeyPatch
) -> None:
    files, codec = proven_codec(area)
    real = os.fstatvfs(files._inbox_fd)  # type: ignore[arg-type]
    tiny = os.statvfs_result((*real[:4], 0, *real[5:]))  # f_bavail: no block left
    monkeypatch.setattr(shm_module.os, "fstatvfs", lambda fd: tiny)
    frame = codec.encode({"v": b"f" * 100})
    assert unpack_frame(frame)[1][0].nbytes == 100
    assert list(Path(files.inbox).iterdir()) == []
