"""Large and binary context values across real hubs federated through a real nats-server
with JetStream (docs/FEDERATION.md, "Large context values"): a DataFrame, an array and bytes
in a retained context keep their types on the other hub and on a hub that joins later (read
from the space's object store), and outlive their writer's hub and a NATS restart; an update
replaces the object and the old one is deleted, and what a stopped hub left behind is swept;
a value over ``federation_max_context_bytes`` fails for its writer and changes nothing; a
small JSON context stays in the KV bucket as before."""

from __future__ import annotations

import asyncio
import base64
import threading
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pandas as pd
import pytest
from test_client_js import JsPeer
from test_client_support import assert_same, wait_for
from test_federation import Hub, Nats, start_hub, stop
from test_federation import nats as nats  # the fixture
from test_federation_contexts import SYNC, Follower, connect, created_on_a, linked, try_update

import jupyter_interop as ji
from jupyter_interop.server.federation_context_objects import objects_bucket_name, record_header
from jupyter_interop.server.federation_contexts import bucket_name, context_key

SPACE = "values"
#: the bound of the hubs of the bound test: above NATS's 1 MB message, below its 3 MB array
SMALL_BOUND = 2_000_000


def frame_of(megabytes: int, seed: int) -> pd.DataFrame:
    """A DataFrame of about ``megabytes`` MB: float, integer and string columns, named index."""
    rows = megabytes * 2**20 // 24
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "px": rng.standard_normal(rows),
            "qty": np.arange(rows, dtype="int64"),
            "side": np.where(np.arange(rows) % 2 == 0, "buy", "sell"),
        }
    )
    frame.index.name = "row"
    return frame


def start(tmp: Path, nats_url: str, *extra: str) -> Hub:
    return start_hub(tmp, nats_url, f"--InteropHub.federation_space={SPACE}", *extra)


@pytest.fixture
def hubs(tmp_path: Path, nats: Nats) -> Iterator[tuple[Hub, Hub]]:
    with ExitStack() as stack:
        hub_a = start(tmp_path / "a", nats.url)
        stack.callback(stop, hub_a.proc)
        hub_b = start(tmp_path / "b", nats.url)
        stack.callback(stop, hub_b.proc)
        yield hub_a, hub_b


class Space:
    """A hand-written nats-py client reading the space's bucket and object store."""

    def __init__(self, nats_url: str) -> None:
        self.url = nats_url

    def _run(self, work: Any) -> Any:
        async def main() -> Any:
            import nats as nats_py

            client = await nats_py.connect(self.url)
            try:
                return await work(client.jetstream())
            finally:
                await client.close()

        return asyncio.run(main())

    def objects(self) -> list[str]:
        """The names of the objects the store holds (deleted ones not counted)."""

        async def work(js: Any) -> list[str]:
            from nats.js.errors import NotFoundError

            store = await js.object_store(objects_bucket_name(SPACE))
            try:
                return sorted(info.name for info in await store.list(ignore_deletes=True))
            except NotFoundError:
                return []

        names: list[str] = self._run(work)
        return names

    def stored_bytes(self) -> int:
        """Bytes the object store's stream holds (chunks of deleted objects are purged)."""

        async def work(js: Any) -> int:
            info = await js.stream_info(f"OBJ_{objects_bucket_name(SPACE)}")
            return int(info.state.bytes)

        stored: int = self._run(work)
        return stored

    def leave_behind(self, context: str, tag: str, written: str | None = None) -> str:
        """Put an object no revision points to, as a hub killed between writing a revision
        and deleting what it superseded leaves; ``written``: its time (ISO 8601) instead of
        now. Returns its name."""
        name = f"{context_key(context)}/0-{tag}"

        async def work(js: Any) -> None:
            store = await js.object_store(objects_bucket_name(SPACE))
            await store.put(name, b"left behind" * 1000)
            if written is not None:  # its index entry again, with the older time
                info = (await store.get_info(name)).as_dict()
                info["mtime"] = written
                subject = f"$O.{objects_bucket_name(SPACE)}.M."
                subject += base64.urlsafe_b64encode(name.encode()).decode()
                await js.publish(subject, orjson.dumps(info), headers={"Nats-Rollup": "sub"})

        self._run(work)
        return name

    def value(self, name: str) -> bytes:
        """The KV value of context ``name`` as the bucket holds it."""

        async def work(js: Any) -> bytes:
            kv = await js.key_value(bucket_name(SPACE))
            entry = await kv.get(context_key(name))
            return bytes(entry.value)

        value: bytes = self._run(work)
        return value

    def record(self, name: str) -> dict[str, Any]:
        """The JSON fields of the KV record of context ``name``."""
        return record_header(self.value(name))


def test_a_dataframe_in_a_context_crosses_hubs_with_its_types_and_reaches_a_later_hub(
    hubs: tuple[Hub, Hub], nats: Nats, tmp_path: Path
) -> None:
    hub_a, hub_b = hubs
    frame = frame_of(5, seed=1)
    array = np.arange(12, dtype="<i4").reshape(3, 4)
    data = {"df": frame, "arr": array, "raw": b"\x00\xffbinary", "rows": len(frame)}
    with ExitStack() as stack:
        a = connect(hub_a, "frame-writer-a", stack)
        b = connect(hub_b, "frame-reader-b", stack)
        linked(a, b)
        follower = Follower(b, "Desk.frame")
        a.contexts.set("Desk.frame", data)
        wait_for(follower.last, SYNC, "the DataFrame on B")
        got = b.contexts.get("Desk.frame")
        for key, value in data.items():
            assert_same(got[key], value)
        assert isinstance(got["raw"], bytes)
        # the bucket holds a reference, the object store the value
        record = Space(nats.url).record("Desk.frame")
        assert "data" not in record and record["value"]["size"] > 5 * 2**20
        assert Space(nats.url).objects() == [record["value"]["object"]]
        # a JS client on B gets the JSON forms, as from a writer on its own hub
        js = JsPeer(hub_b)  # type: ignore[arg-type]  # (a hub: url and token)
        stack.callback(js.close)
        js.call("contextSubscribe", name="Desk.frame")
        event = js.event(lambda e: e.get("event") == "context" and "raw" in e["data"])
        assert event["data"]["raw"] == {"__ji__": "bytes", "base64": "AP9iaW5hcnk="}
        assert event["data"]["arr"]["data"] == array.tolist()
        assert event["data"]["df"]["__ji__"] == "dataframe"
        assert len(event["data"]["df"]["data"]) == len(frame)
        # a hub that joins later, with nothing of its own, reads it from the object store
        hub_c = start(tmp_path / "c", nats.url)
        stack.callback(stop, hub_c.proc)
        c = connect(hub_c, "late-c", stack)
        wait_for(lambda: "Desk.frame" in c.contexts.all(), SYNC, "the context on C")
        late = c.contexts.get("Desk.frame")
        for key, value in data.items():
            assert_same(late[key], value)
        on_c = Follower(c, "Desk.frame")
        wait_for(on_c.last, SYNC, "the snapshot on C")
        assert on_c.versions() == [a.contexts.version("Desk.frame")]


def test_large_values_cross_again_after_nats_restarts(hubs: tuple[Hub, Hub], nats: Nats) -> None:
    hub_a, hub_b = hubs
    frame = frame_of(2, seed=5)
    with ExitStack() as stack:
        a = connect(hub_a, "restart-a", stack)
        b = connect(hub_b, "restart-b", stack)
        linked(a, b)
        a.contexts.set("Desk.ledger", {"df": frame})
        follower = Follower(b, "Desk.ledger")
        wait_for(follower.last, SYNC, "the frame on B")
        nats.kill()
        with pytest.raises(ji.InteropError, match="federation"):
            a.contexts.update("Desk.ledger", {"arr": np.arange(3)})
        nats.restart()
        wait_for(lambda: try_update(a, "Desk.ledger", {"arr": np.arange(3)}), SYNC, "a write")
        wait_for(lambda: "arr" in (follower.last() or {}), SYNC, "the write on B")
        data = follower.last()
        assert data is not None
        assert_same(data["df"], frame)
        assert_same(data["arr"], np.arange(3))
        versions = follower.versions()
        assert versions == sorted(set(versions)), versions
        assert_same(b.contexts.get("Desk.ledger")["df"], frame)


def test_a_large_context_outlives_its_writers_hub(tmp_path: Path, nats: Nats) -> None:
    """The value lives in NATS, not with its writer: hub A killed, a new hub reads it, and
    the hub left updates it."""
    frame = frame_of(3, seed=4)
    with ExitStack() as stack:
        hub_a = start(tmp_path / "a", nats.url)
        stack.callback(stop, hub_a.proc)
        hub_b = start(tmp_path / "b", nats.url)
        stack.callback(stop, hub_b.proc)
        a = ji.connect(url=hub_a.url, token=hub_a.token, application="dies-a")
        b = connect(hub_b, "stays-b", stack)
        linked(a, b)
        a.contexts.set("Desk.kept", {"df": frame})
        wait_for(lambda: "Desk.kept" in b.contexts.all(), SYNC, "A's frame on B")
        a.close()
        hub_a.proc.kill()
        hub_a.proc.wait(10)
        hub_c = start(tmp_path / "c", nats.url)
        stack.callback(stop, hub_c.proc)
        c = connect(hub_c, "new-c", stack)
        wait_for(lambda: "Desk.kept" in c.contexts.all(), SYNC, "the frame on C")
        assert_same(c.contexts.get("Desk.kept")["df"], frame)
        b.contexts.set_path("Desk.kept", "arr", np.arange(7))
        wait_for(lambda: "arr" in c.contexts.get("Desk.kept"), SYNC, "B's update on C")
        assert_same(c.contexts.get("Desk.kept")["arr"], np.arange(7))
        assert_same(c.contexts.get("Desk.kept")["df"], frame)


def test_each_update_replaces_the_object_and_the_old_one_is_deleted(
    hubs: tuple[Hub, Hub], nats: Nats
) -> None:
    hub_a, hub_b = hubs
    space = Space(nats.url)
    with ExitStack() as stack:
        a = connect(hub_a, "replacer-a", stack)
        b = connect(hub_b, "replacer-b", stack)
        linked(a, b)
        first, second = frame_of(3, seed=2), frame_of(3, seed=3)
        follower = Follower(b, "Desk.book")
        a.contexts.set("Desk.book", {"df": first})
        wait_for(follower.last, SYNC, "the first frame on B")
        names = [space.record("Desk.book")["value"]["object"]]
        a.contexts.set("Desk.book", {"df": second})
        # and from the other hub: B writes over A's object, and deletes it
        b.contexts.set_path("Desk.book", "extra", np.arange(5))
        wait_for(lambda: "extra" in a.contexts.get("Desk.book"), SYNC, "B's update on A")
        names.append(space.record("Desk.book")["value"]["object"])
        assert names[0] != names[1]
        wait_for(lambda: space.objects() == names[1:], SYNC, "one object left: the newest")
        # the stream holds about one value, not three
        assert space.stored_bytes() < 2 * 3 * 2**20
        got = a.contexts.get("Desk.book")
        assert_same(got["df"], second)
        assert_same(got["extra"], np.arange(5))
        assert_same(b.contexts.get("Desk.book")["df"], second)
        # destroyed: the tombstone is small and the last object goes too
        a.contexts.destroy("Desk.book")
        wait_for(lambda: "Desk.book" not in b.contexts.all(), SYNC, "the destruction on B")
        wait_for(lambda: space.objects() == [], SYNC, "no object left")


def test_a_hub_that_joins_deletes_old_objects_a_stopped_hub_left_behind(
    hubs: tuple[Hub, Hub], nats: Nats, tmp_path: Path
) -> None:
    hub_a, hub_b = hubs
    space = Space(nats.url)
    with ExitStack() as stack:
        a = connect(hub_a, "sweep-a", stack)
        b = connect(hub_b, "sweep-b", stack)
        linked(a, b)
        a.contexts.set("Desk.kept", {"raw": b"k" * 2_000_000})
        wait_for(lambda: "Desk.kept" in b.contexts.all(), SYNC, "the context on B")
        current = space.record("Desk.kept")["value"]["object"]
        old = space.leave_behind("Desk.kept", "old", written="2020-01-01T00:00:00+00:00")
        gone = space.leave_behind("Desk.gone", "old", written="2020-01-01T00:00:00+00:00")
        young = space.leave_behind("Desk.kept", "young")  # as if a write were under way
        assert space.objects() == sorted([current, old, gone, young])
        hub_c = start(tmp_path / "c", nats.url)
        stack.callback(stop, hub_c.proc)
        wait_for(lambda: space.objects() == sorted([current, young]), SYNC, "the old ones deleted")
        c = connect(hub_c, "sweep-c", stack)
        assert c.contexts.get("Desk.kept") == {"raw": b"k" * 2_000_000}


def test_concurrent_large_updates_from_both_hubs_converge(hubs: tuple[Hub, Hub]) -> None:
    """Writers on both hubs each set their own array at once: every update is kept (a
    compare-and-set that lost is re-applied on the newer value, read from its object)."""
    hub_a, hub_b = hubs
    rounds = 4
    with ExitStack() as stack:
        a = connect(hub_a, "big-a", stack)
        b = connect(hub_b, "big-b", stack)
        linked(a, b)
        a.contexts.set("Desk.race", {"base": np.zeros(200_000)})  # 1.6 MB: an object
        followers = [Follower(a, "Desk.race"), Follower(b, "Desk.race")]
        for follower in followers:
            wait_for(follower.last, SYNC, "the snapshot on each hub")
        start_line = threading.Barrier(2)

        def write(io: ji.Interop, who: str) -> None:
            start_line.wait(30)
            for i in range(rounds):
                io.contexts.set_path("Desk.race", who, np.full(100_000, i, dtype="<i8"))

        threads = [threading.Thread(target=write, args=(io, w)) for w, io in (("a", a), ("b", b))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(120)

        def settled(follower: Follower) -> bool:
            data = follower.last() or {}
            return all(w in data and int(data[w][0]) == rounds - 1 for w in ("a", "b"))

        wait_for(lambda: all(map(settled, followers)), SYNC, "both writers' last arrays on both")
        # one order: the same last version on both hubs, versions rising on each
        assert followers[0].versions()[-1] == followers[1].versions()[-1]
        for follower in followers:
            versions = follower.versions()
            assert versions == sorted(set(versions)), versions
        for io in (a, b):
            data = io.contexts.get("Desk.race")
            assert_same(data["base"], np.zeros(200_000))
            for who in ("a", "b"):
                assert_same(data[who], np.full(100_000, rounds - 1, dtype="<i8"))


def test_a_value_over_the_bound_fails_for_its_writer_or_creator_and_changes_nothing(
    tmp_path: Path, nats: Nats
) -> None:
    bound = f"--InteropHub.federation_max_context_bytes={SMALL_BOUND}"
    with ExitStack() as stack:
        hub_a = start(tmp_path / "a", nats.url, bound)
        stack.callback(stop, hub_a.proc)
        hub_b = start(tmp_path / "b", nats.url, bound)
        stack.callback(stop, hub_b.proc)
        a = connect(hub_a, "bounded-a", stack)
        b = connect(hub_b, "bounded-b", stack)
        linked(a, b)
        a.contexts.set("Desk.small", {"arr": np.arange(10)})
        follower = Follower(b, "Desk.small")
        wait_for(follower.last, SYNC, "the context on B")
        version = a.contexts.version("Desk.small")
        with pytest.raises(ji.InteropError, match="federation_max_context_bytes"):
            a.contexts.set_path("Desk.small", "big", np.zeros(3 * 2**20 // 8 + 1))
        with pytest.raises(ji.InteropError, match="federation_max_context_bytes"):
            a.contexts.update("Desk.small", {"blob": "x" * (3 * 2**20)})  # JSON too
        with pytest.raises(ji.InteropError, match="federation_max_context_bytes"):
            a.contexts.set_path("Desk.small", "huge", np.zeros(10 * 2**20 // 8))
        for io in (a, b):
            assert set(io.contexts.get("Desk.small")) == {"arr"}
            assert io.contexts.version("Desk.small") == version
        # the writer and both hubs go on
        a.contexts.set_path("Desk.small", "n", 1)
        wait_for(lambda: (follower.last() or {}).get("n") == 1, SYNC, "the next update on B")
        assert [sorted(data) for _, data in follower.seen] == [["arr"], ["arr", "n"]]
        # a creation over the bound fails for its creator the same way and leaves nothing
        with pytest.raises(ji.InteropError, match="federation_max_context_bytes"):
            a.contexts.set("Desk.big", {"arr": np.zeros(3 * 2**20 // 8 + 1)})
        assert "Desk.big" not in a.contexts.all()
        a.contexts.set("Desk.big", {"n": 1})  # the name is free, and a small one crosses
        wait_for(lambda: b.contexts.get("Desk.big") == {"n": 1}, SYNC, "the small creation")


def test_small_contexts_stay_in_the_bucket_json_as_before_binary_as_a_frame(
    hubs: tuple[Hub, Hub], nats: Nats
) -> None:
    hub_a, hub_b = hubs
    space = Space(nats.url)
    with ExitStack() as stack:
        a = connect(hub_a, "json-a", stack)
        b = connect(hub_b, "json-b", stack)
        linked(a, b)
        a.contexts.set("Desk.json", {"px": 1.5})
        a.contexts.update("Desk.json", {"qty": 3})
        wait_for(lambda: b.contexts.get("Desk.json") == {"px": 1.5, "qty": 3}, SYNC, "on B")
        record = orjson.loads(space.value("Desk.json"))
        assert record["data"] == {"px": 1.5, "qty": 3} and "value" not in record
        # a small binary value: one binary frame in the bucket, no object
        a.contexts.set("Desk.tiny", {"raw": b"\x00\x01", "arr": np.arange(4)})
        follower = Follower(b, "Desk.tiny")
        wait_for(follower.last, SYNC, "the tiny one on B")
        a.contexts.set_path("Desk.tiny", "arr", np.arange(5, dtype="<f4"))
        wait_for(lambda: len((follower.last() or {}).get("arr", [])) == 5, SYNC, "its update")
        got = b.contexts.get("Desk.tiny")
        assert got["raw"] == b"\x00\x01" and isinstance(got["raw"], bytes)
        assert_same(got["arr"], np.arange(5, dtype="<f4"))
        assert space.value("Desk.tiny")[:4] == b"JIB1"
        assert "value" not in space.record("Desk.tiny")
        assert space.objects() == []


@pytest.mark.parametrize("size", [1000, 3_000_000], ids=["in-the-bucket", "in-the-store"])
def test_a_created_binary_context_has_one_version_everywhere_and_comes_once(
    hubs: tuple[Hub, Hub], size: int
) -> None:
    """A binary creation comes back from the bucket with values equal to the hub's but not
    the same objects: its hub numbers it with the bucket's revision and does not send it to
    its followers again (docs/FEDERATION.md, "Contexts and channels")."""
    array = np.arange(size // 8, dtype="int64")
    with ExitStack() as stack:
        followers = created_on_a(hubs, "created-binary", {"array": array, "raw": b"r"}, stack)
        for follower in followers:
            last = follower.last()
            assert last is not None and last["raw"] == b"r" and last["next"] == 1
            assert_same(last["array"], array)
