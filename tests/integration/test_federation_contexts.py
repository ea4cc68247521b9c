"""Contexts and channels across two real hubs federated through a real nats-server with
JetStream (docs/FEDERATION.md, "Contexts and channels"): one object in the space's KV bucket,
updated in one order everywhere, surviving the loss of a hub and a restart of NATS."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest
from test_client_js import JsPeer
from test_client_support import wait_for
from test_federation import Hub, Nats, start_hub, stop
from test_federation import nats as nats  # the fixture

import jupyter_interop as ji
from jupyter_interop import fdc3

#: generous: each hub's link must have joined the bucket, through real processes
SYNC = 30.0


class Follower:
    """Every (version, data) a context subscription of one client sees, in order."""

    def __init__(self, io: ji.Interop, name: str) -> None:
        self.seen: list[tuple[int | None, dict[str, Any]]] = []
        self._lock = threading.Lock()
        io.contexts.subscribe(name, self._on_update)

    def _on_update(self, data: dict[str, Any], delta: Any, removed: Any, meta: Any) -> None:
        with self._lock:
            self.seen.append((meta.version, dict(data)))

    def versions(self) -> list[int | None]:
        with self._lock:
            return [version for version, _ in self.seen]

    def last(self) -> dict[str, Any] | None:
        with self._lock:
            return self.seen[-1][1] if self.seen else None


def connect(hub: Hub, application: str, stack: ExitStack) -> ji.Interop:
    io = ji.connect(url=hub.url, token=hub.token, application=application)
    stack.callback(io.close)
    return io


def share(writer: ji.Interop, reader: ji.Interop, name: str, data: dict[str, Any]) -> None:
    """``writer`` sets context ``name``; wait until ``reader``, on another hub, has it."""
    writer.contexts.set(name, data)
    wait_for(lambda: name in reader.contexts.all(), SYNC, f"context {name!r} on the other hub")


def linked(a: ji.Interop, b: ji.Interop) -> None:
    """Both hubs' contexts are in the bucket: a write on each is read on the other."""
    share(a, b, "ready-a", {"from": "a"})
    share(b, a, "ready-b", {"from": "b"})


@pytest.fixture
def hubs(tmp_path: Path, nats: Nats) -> Iterator[tuple[Hub, Hub]]:
    hub_a = start_hub(tmp_path / "a", nats.url)
    try:
        hub_b = start_hub(tmp_path / "b", nats.url)
    except BaseException:
        stop(hub_a.proc)
        raise
    try:
        yield hub_a, hub_b
    finally:
        stop(hub_b.proc)
        stop(hub_a.proc)


def test_a_context_set_on_a_is_read_and_followed_on_b(hubs: tuple[Hub, Hub]) -> None:
    hub_a, hub_b = hubs
    with ExitStack() as stack:
        a = connect(hub_a, "writer-a", stack)
        b = connect(hub_b, "reader-b", stack)
        linked(a, b)
        share(a, b, "prices", {"AAPL": 1.0})
        assert b.contexts.get("prices") == {"AAPL": 1.0}
        follower = Follower(b, "prices")
        wait_for(follower.last, SYNC, "B's snapshot")
        a.contexts.update("prices", {"MSFT": 2.0})
        wait_for(lambda: follower.last() == {"AAPL": 1.0, "MSFT": 2.0}, SYNC, "A's update on B")
        # and back: B writes, A reads it
        b.contexts.update("prices", {"AAPL": 3.0})
        wait_for(
            lambda: a.contexts.get("prices") == {"AAPL": 3.0, "MSFT": 2.0}, SYNC, "B's update on A"
        )
        assert a.contexts.version("prices") == b.contexts.version("prices")
        # destroyed on B: gone on A too, and its follower there is told
        b.contexts.destroy("prices")
        wait_for(lambda: "prices" not in a.contexts.all(), SYNC, "B's destruction on A")
        assert "prices" not in b.contexts.all()


def created_on_a(
    hubs: tuple[Hub, Hub], name: str, data: dict[str, Any], stack: ExitStack
) -> list[Follower]:
    """``data`` created as context ``name`` on hub A, with a follower on each hub waiting for
    it: the creator's and each follower's version is the bucket's revision on both hubs from
    the creation on, and each follower sees the creation and the next update (from B) once.
    Returns the followers (A's, B's) for the caller's checks of the values."""
    hub_a, hub_b = hubs
    a = connect(hub_a, "creator-a", stack)
    b = connect(hub_b, "writer-b", stack)
    linked(a, b)
    readers = [connect(hub, f"follower-{i}", stack) for i, hub in enumerate(hubs)]
    followers = [Follower(reader, name) for reader in readers]
    a.contexts.set(name, data)
    wait_for(lambda: all(f.versions() for f in followers), SYNC, "the creation on both hubs")
    revision = followers[1].versions()[0]  # the bucket's, as hub B has it
    assert isinstance(revision, int) and revision > 0
    wait_for(
        lambda: {io.contexts.version(name) for io in (a, *readers)} == {revision},
        SYNC,
        f"version {revision} on hub A too",
    )
    b.contexts.update(name, {"next": 1})
    wait_for(lambda: all((f.last() or {}).get("next") for f in followers), SYNC, "B's update")
    version = readers[1].contexts.version(name)
    assert isinstance(version, int) and version > revision
    assert a.contexts.version(name) == readers[0].contexts.version(name) == version
    for follower in followers:  # the creation and the update, each once
        assert len(follower.seen) == 2 and follower.versions()[-1] == version
    return followers


def test_a_created_context_has_the_buckets_revision_as_version_on_every_hub(
    hubs: tuple[Hub, Hub],
) -> None:
    """The creating hub numbers its own creation with the revision the bucket gave it, as the
    other hubs do, rather than 0 until the next update."""
    with ExitStack() as stack:
        followers = created_on_a(hubs, "created", {"AAPL": 1.0}, stack)
        for follower in followers:
            assert follower.last() == {"AAPL": 1.0, "next": 1}


def test_a_channel_joined_on_a_hears_what_b_publishes(hubs: tuple[Hub, Hub]) -> None:
    hub_a, hub_b = hubs
    with ExitStack() as stack:
        a = connect(hub_a, "on-red-a", stack)
        b = connect(hub_b, "on-red-b", stack)
        linked(a, b)
        heard: list[dict[str, Any]] = []
        a.channels.join("Red")
        a.channels.subscribe(lambda data, channel, meta: heard.append(dict(data)))
        b.channels.join("Red")
        b.channels.publish({"instrument": "AAPL"})
        wait_for(lambda: heard and heard[-1].get("instrument") == "AAPL", SYNC, "B's publish on A")
        a.channels.publish({"instrument": "MSFT"})
        wait_for(lambda: b.channels.get("Red").data.get("instrument") == "MSFT", SYNC, "A's on B")


def test_concurrent_updates_from_both_hubs_apply_in_one_order_everywhere(
    hubs: tuple[Hub, Hub],
) -> None:
    """Three writers on each hub update one context at once, each its own key and all the
    key ``last``: no update is lost (a compare-and-set that lost is re-applied on the newer
    state), and every watcher on either hub sees the same states in the same order."""
    hub_a, hub_b = hubs
    rounds = 30
    with ExitStack() as stack:
        a = connect(hub_a, "py-a", stack)
        b = connect(hub_b, "py-b", stack)
        linked(a, b)
        share(a, b, "book", {"n": 0})
        watchers = [
            Follower(connect(hub, f"watcher-{i}", stack), "book")
            for i, hub in enumerate((hub_a, hub_b, hub_a, hub_b))
        ]
        for watcher in watchers:
            wait_for(watcher.last, SYNC, "each watcher's snapshot")
        writers = {
            f"{side}{k}": connect(hub, f"writer-{side}{k}", stack)
            for side, hub in (("a", hub_a), ("b", hub_b))
            for k in range(3)
        }
        start = threading.Barrier(len(writers))
        acked: list[int] = []

        def write(io: ji.Interop, who: str) -> None:
            start.wait(30)
            for i in range(rounds):
                acked.append(io.contexts.update("book", {"last": f"{who}-{i}", who: i}))

        threads = [threading.Thread(target=write, args=(io, w)) for w, io in writers.items()]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(120)
        total = len(writers) * rounds
        assert len(acked) == total and len(set(acked)) == total  # one version each

        def settled() -> bool:
            return all(w.versions()[-1] == max(acked) for w in watchers)

        wait_for(settled, SYNC, "the last update on every watcher")
        final = watchers[0].last()
        assert final is not None
        assert {who: final[who] for who in writers} == dict.fromkeys(writers, rounds - 1)
        assert final["last"] in {f"{who}-{rounds - 1}" for who in writers}
        # one order: each watcher sees the written versions rising (a subscriber that lags
        # may get two updates composed into one, docs/RELIABILITY.md), and a version is the
        # same state on every hub
        state: dict[int | None, dict[str, Any]] = {}
        for watcher in watchers:
            updates = watcher.seen[1:]  # after the snapshot
            versions = [version for version, _ in updates]
            assert versions == sorted(set(versions)) and set(versions) <= set(acked), versions
            for version, data in updates:
                assert state.setdefault(version, data) == data, version
        assert a.contexts.get("book") == b.contexts.get("book") == final


def test_retained_contexts_outlive_a_killed_hub(tmp_path: Path, nats: Nats) -> None:
    hub_a = start_hub(tmp_path / "a", nats.url)
    with ExitStack() as stack:
        stack.callback(stop, hub_a.proc)
        hub_b = start_hub(tmp_path / "b", nats.url)
        stack.callback(stop, hub_b.proc)
        a = connect(hub_a, "stays-a", stack)
        b = ji.connect(url=hub_b.url, token=hub_b.token, application="dies-b")
        linked(a, b)
        b.contexts.set("plan", {"step": 1})
        b.channels.join("Blue")
        b.channels.publish({"ticker": "IBM"})
        wait_for(lambda: a.contexts.get("plan") == {"step": 1}, SYNC, "B's context on A")
        b.close()
        hub_b.proc.kill()
        hub_b.proc.wait(10)
        # a new hub B', with nothing stored of its own, finds the state in the bucket
        hub_b2 = start_hub(tmp_path / "b2", nats.url)
        stack.callback(stop, hub_b2.proc)
        b2 = connect(hub_b2, "new-b", stack)
        wait_for(lambda: "plan" in b2.contexts.all(), SYNC, "the context on B'")
        assert b2.contexts.get("plan") == {"step": 1}
        wait_for(
            lambda: b2.channels.get("Blue").data == {"ticker": "IBM"}, SYNC, "the channel on B'"
        )
        b2.contexts.update("plan", {"step": 2})
        wait_for(lambda: a.contexts.get("plan") == {"step": 2}, SYNC, "B's update on A")


def test_after_nats_restarts_retained_state_is_neither_lost_nor_repeated(
    hubs: tuple[Hub, Hub], nats: Nats
) -> None:
    hub_a, hub_b = hubs
    with ExitStack() as stack:
        a = connect(hub_a, "writer-a", stack)
        b = connect(hub_b, "reader-b", stack)
        linked(a, b)
        share(a, b, "ledger", {"n": 1})
        followers = [Follower(b, "ledger"), Follower(a, "ledger")]
        for follower in followers:
            wait_for(lambda f=follower: f.last() == {"n": 1}, SYNC, "the snapshot")
        a.contexts.update("ledger", {"n": 2})
        wait_for(lambda: followers[0].last() == {"n": 2}, SYNC, "n=2 on B")
        nats.kill()
        # without NATS the federated context cannot change (one order needs the bucket) ...
        with pytest.raises(ji.InteropError, match="federation"):
            a.contexts.update("ledger", {"n": 99})
        with pytest.raises(ji.InteropError, match="federation"):
            a.contexts.destroy("ledger")
        with pytest.raises(ji.InteropError, match="not created"):  # nor can one be made
            a.contexts.set("journal", {"n": 1})
        assert a.contexts.get("ledger") == {"n": 2}
        assert "journal" not in a.contexts.all()
        nats.restart()
        # ... and once it is back, writes flow again from either hub
        wait_for(lambda: try_update(b, "ledger", {"n": 3}), SYNC, "B's write after the restart")
        wait_for(lambda: followers[1].last() == {"n": 3}, SYNC, "B's write on A")
        a.contexts.update("ledger", {"n": 4})
        for follower in followers:
            wait_for(lambda f=follower: f.last() == {"n": 4}, SYNC, "A's write on A and B")
        share(a, b, "journal", {"n": 1})  # the name refused meanwhile is free
        for follower in followers:
            versions = follower.versions()
            assert versions == sorted(set(versions)), versions  # nothing applied twice
            assert [d["n"] for _, d in follower.seen] == [1, 2, 3, 4]


def try_update(io: ji.Interop, name: str, data: dict[str, Any]) -> bool:
    """One write attempt (NATS may still be coming back): True when it was applied."""
    try:
        io.contexts.update(name, data)
    except ji.InteropError:
        return False
    return True


def test_a_hub_back_from_a_stop_takes_the_spaces_state_over_its_own_store(
    tmp_path: Path, nats: Nats
) -> None:
    """Hub A keeps its retained contexts in its store (``--persist``, acknowledging a write
    once it is on disk); while it is stopped, B changes one and destroys another: back, A
    follows the bucket, not its store."""
    persist = ["--persist", "--StandaloneHubApp.context_ack=durable"]
    hub_a = start_hub(tmp_path / "a", nats.url, *persist)
    with ExitStack() as stack:
        hub_b = start_hub(tmp_path / "b", nats.url)
        stack.callback(stop, hub_b.proc)
        a = ji.connect(url=hub_a.url, token=hub_a.token, application="away-a")
        b = connect(hub_b, "stays-b", stack)
        linked(a, b)
        a.contexts.set("kept", {"v": 1})
        a.contexts.set("dropped", {"v": 1})
        wait_for(lambda: {"kept", "dropped"} <= set(b.contexts.all()), SYNC, "A's contexts on B")
        a.close()
        stop(hub_a.proc)
        b.contexts.update("kept", {"v": 2})
        b.contexts.destroy("dropped")
        b.contexts.set("after", {"v": 1})
        hub_a = start_hub(tmp_path / "a", nats.url, *persist)
        stack.callback(stop, hub_a.proc)
        a = connect(hub_a, "back-a", stack)
        # the bucket's revisions come in order: once "after" is there, so is all before it
        wait_for(lambda: "after" in a.contexts.all(), SYNC, "B's new context on A")
        assert a.contexts.get("kept") == {"v": 2}
        assert "dropped" not in a.contexts.all()
        assert "dropped" not in b.contexts.all()  # and A did not bring it back
        a.contexts.update("kept", {"v": 3})  # acknowledged once in A's store and the bucket
        wait_for(lambda: b.contexts.get("kept") == {"v": 3}, SYNC, "A's write on B")


def test_a_javascript_client_on_a_follows_and_writes_a_context_of_python_on_b(
    hubs: tuple[Hub, Hub],
) -> None:
    """The real ``@interopio/core`` (test_client_js_peer.js) on hub A, Python on hub B."""
    hub_a, hub_b = hubs
    with ExitStack() as stack:
        a = connect(hub_a, "py-a", stack)
        b = connect(hub_b, "py-b", stack)
        linked(a, b)
        share(b, a, "Js.fed", {"symbol": "AAPL"})
        js = JsPeer(hub_a)  # type: ignore[arg-type]  # (a hub: url and token)
        stack.callback(js.close)
        js.call("contextSubscribe", name="Js.fed")
        js.event(lambda e: e.get("event") == "context" and e["data"] == {"symbol": "AAPL"})
        b.contexts.update("Js.fed", {"px": 190.5})
        js.event(
            lambda e: (
                e.get("event") == "context"
                and e["data"] == {"symbol": "AAPL", "px": 190.5}
                and e["updaterId"] == b.instance.peer_id
            )
        )
        js.call("contextUpdate", name="Js.fed", data={"px": 191.0})
        wait_for(
            lambda: b.contexts.get("Js.fed") == {"symbol": "AAPL", "px": 191.0},
            SYNC,
            "the JS client's update on B",
        )


def test_a_javascript_creator_sees_its_context_numbered_without_a_second_callback(
    hubs: tuple[Hub, Hub],
) -> None:
    """``@interopio/core`` creates a context on hub A: hub A numbers it with the bucket's
    revision through an empty delta, which calls none of its callbacks; B's update does."""
    hub_a, hub_b = hubs
    with ExitStack() as stack:
        a = connect(hub_a, "py-a", stack)
        b = connect(hub_b, "py-b", stack)
        linked(a, b)
        js = JsPeer(hub_a)  # type: ignore[arg-type]  # (a hub: url and token)
        stack.callback(js.close)
        js.call("contextSubscribe", name="Js.made")  # creates it, empty, following it
        js.call("contextUpdate", name="Js.made", data={"symbol": "AAPL"})
        follower = Follower(b, "Js.made")
        wait_for(follower.last, SYNC, "the JS client's creation on B")
        b.contexts.update("Js.made", {"px": 190.5})
        js.event(lambda e: e.get("event") == "context" and e["data"].get("px") == 190.5)
        seen = [e["data"] for e in js.events if e.get("event") == "context"]
        assert seen == [{"symbol": "AAPL"}, {"symbol": "AAPL", "px": 190.5}]
        assert a.contexts.get("Js.made") == {"symbol": "AAPL", "px": 190.5}


def test_a_json_value_larger_than_a_nats_message_crosses_hubs(hubs: tuple[Hub, Hub]) -> None:
    """NATS takes 1 MiB per message: a larger value goes through the space's object store
    (docs/FEDERATION.md, "Large context values"; more in test_federation_context_values.py)."""
    hub_a, hub_b = hubs
    blob = "x" * (2 * 2**20)
    with ExitStack() as stack:
        a = connect(hub_a, "big-writer-a", stack)
        b = connect(hub_b, "reader-b", stack)
        linked(a, b)
        share(a, b, "report", {"n": 1})
        follower = Follower(b, "report")
        wait_for(lambda: follower.last() == {"n": 1}, SYNC, "the snapshot on B")
        a.contexts.update("report", {"blob": blob})
        wait_for(lambda: follower.last() == {"n": 1, "blob": blob}, SYNC, "the blob on B")
        b.contexts.update("report", {"n": 2})  # over the large value, from the other hub
        wait_for(lambda: a.contexts.get("report") == {"n": 2, "blob": blob}, SYNC, "B's on A")
        assert [data.get("n") for _, data in follower.seen] == [1, 1, 2]


def test_a_context_name_too_long_for_nats_stays_local_and_harms_nobody(
    hubs: tuple[Hub, Hub],
) -> None:
    """A key past NATS's line limit would make the server close the link's connection."""
    hub_a, hub_b = hubs
    with ExitStack() as stack:
        a = connect(hub_a, "long-names-a", stack)
        b = connect(hub_b, "reader-b", stack)
        linked(a, b)
        long_name = "n" * 5000
        a.contexts.set(long_name, {"v": 1})
        a.contexts.update(long_name, {"v": 2})
        assert a.contexts.get(long_name) == {"v": 2}
        share(a, b, "after-long", {"v": 1})  # the link still works ...
        a.contexts.update("after-long", {"v": 2})
        wait_for(lambda: b.contexts.get("after-long") == {"v": 2}, SYNC, "the update on B")
        assert long_name not in b.contexts.all()  # ... and the long name stayed on A


def test_an_fdc3_broadcast_on_a_user_channel_reaches_a_listener_on_the_other_hub(
    hubs: tuple[Hub, Hub],
) -> None:
    """FDC3 user channels are the colour channels' contexts, so they cross hubs too."""
    hub_a, hub_b = hubs
    with ExitStack() as stack:
        a = connect(hub_a, "fdc3-a", stack)
        b = connect(hub_b, "fdc3-b", stack)
        linked(a, b)
        heard: list[dict[str, Any]] = []
        b.fdc3.join_user_channel("fdc3.channel.1")
        b.fdc3.add_context_listener("fdc3.instrument", lambda ctx, meta: heard.append(ctx))
        a.fdc3.join_user_channel("fdc3.channel.1")
        a.fdc3.broadcast(fdc3.instrument("AAPL"))
        wait_for(lambda: heard, SYNC, "A's broadcast on B")
        assert heard[-1]["type"] == "fdc3.instrument" and heard[-1]["id"]["ticker"] == "AAPL"
