"""Streams, shared contexts, channels and pub/sub through a real standalone hub."""

from __future__ import annotations

import copy
import datetime as dt
import threading

import pytest
from test_client_support import Clients, Recorder, StandaloneHub, wait_for

import jupyter_interop as ji

UTC = dt.timezone.utc


def datas(recorder: Recorder) -> list[object]:
    return [call[0].data for call in recorder.calls]


def stream_view(hub: StandaloneHub, name: str, server: ji.Interop) -> dict[str, object]:
    """The hub's streams view (REST) of the stream ``name`` offered by ``server``."""
    [item] = [
        s for s in hub.view("streams") if s["name"] == name and s["server_id"] == server.peer_id
    ]
    return dict(item)


# ---------------------------------------------------------------------- streams


def test_stream_branches_accept_reject_and_unicast(clients: Clients, hub: StandaloneHub) -> None:
    pub, sub = clients("st-pub"), clients("st-sub")
    requests: list[ji.SubscriptionRequest] = []
    added, removed = Recorder(), Recorder()

    def on_request(request: ji.SubscriptionRequest) -> None:
        requests.append(request)
        symbol = request.arguments.get("symbol")
        if symbol == "BAD":
            request.reject("unknown symbol BAD")
        elif symbol:
            request.accept_on_branch(symbol)
        # no decision: accepted on the default branch

    def on_added(subscription: ji.StreamSubscription) -> None:
        added(subscription)
        subscription.push({"snapshot": subscription.branch})  # unicast

    stream = pub.streams.create("St.Prices", on_request, on_added, removed)
    data = Recorder()
    aapl = sub.streams.subscribe("St.Prices", {"symbol": "AAPL"}, on_data=data)
    plain = sub.streams.subscribe("St.Prices")
    added.wait(2)
    assert sorted(stream.branches()) == ["", "AAPL"]
    # the hub knows branches by the stream ids the publisher chose: one subscriber on each
    view = stream_view(hub, "St.Prices", pub)
    assert (view["subscribers"], view["pending"]) == (2, 0)
    assert sorted(view["branches"].values()) == [1, 1]
    assert requests[0].instance == sub.instance and requests[0].arguments == {"symbol": "AAPL"}
    stream.push({"AAPL": 190.1}, branch="AAPL")
    stream.push({"MSFT": 410.0}, branch="MSFT")  # nobody there: nothing happens
    stream.push({"all": True})
    data.wait(3)
    assert datas(data) == [{"snapshot": "AAPL"}, {"AAPL": 190.1}, {"all": True}]
    assert [call[0].private for call in data.calls] == [True, False, False]
    assert data.calls[0][0].server == pub.instance
    assert data.calls[0][0].arguments == {"symbol": "AAPL"}
    assert aapl.servers == [pub.instance]

    with pytest.raises(
        ji.SubscriptionError,
        match=r'Publisher said "Subscription rejected by user. unknown symbol BAD"',
    ):
        sub.streams.subscribe("St.Prices", {"symbol": "BAD"})

    branch = stream.branch("AAPL")
    assert branch is not None and [s.instance for s in branch.subscriptions()] == [sub.instance]
    closed = Recorder()
    plain.on_closed(closed)
    plain.close()
    [info] = closed.wait()
    assert info[0].message == "ClientInitiated"
    removed.wait()
    assert removed.calls[0][0].branch == ""
    wait_for(lambda: stream.branches() == ["AAPL"], what="branch gone with its last subscriber")
    wait_for(
        lambda: len(stream_view(hub, "St.Prices", pub)["branches"]) == 1,
        what="the hub's view without the closed subscription",
    )
    view = stream_view(hub, "St.Prices", pub)
    assert (view["subscribers"], list(view["branches"].values())) == (1, [1])


def test_streams_view_counts_pending_then_accepted_subscriptions(
    clients: Clients, hub: StandaloneHub
) -> None:
    pub, sub = clients("view-pub"), clients("view-sub")
    asked, decide = threading.Event(), threading.Event()

    def on_request(request: ji.SubscriptionRequest) -> None:
        asked.set()
        decide.wait(30)  # the publisher has not decided yet: the hub holds it as pending
        request.accept_on_branch(str(request.arguments["symbol"]))

    pub.streams.create("View.Prices", on_request)
    subscribed: list[ji.StreamSubscription] = []
    threads = [
        threading.Thread(
            target=lambda s=symbol: subscribed.append(
                sub.streams.subscribe("View.Prices", {"symbol": s})
            )
        )
        for symbol in ("AAPL", "MSFT", "MSFT")
    ]
    for thread in threads:
        thread.start()
    try:
        assert asked.wait(10), "the publisher was never asked"
        wait_for(
            lambda: stream_view(hub, "View.Prices", pub)["pending"] == 3,
            what="three pending requests in the hub's view",
        )
        view = stream_view(hub, "View.Prices", pub)
        assert (view["subscribers"], view["branches"]) == (0, {})
    finally:
        decide.set()
        for thread in threads:
            thread.join(30)
    assert len(subscribed) == 3
    view = stream_view(hub, "View.Prices", pub)
    assert sorted(view["branches"].values()) == [1, 2]  # AAPL, MSFT (by stream id)
    assert (view["subscribers"], view["pending"]) == (3, 0)


def test_data_before_on_data_is_queued_and_handler_exception_rejects(clients: Clients) -> None:
    pub, sub = clients("q-pub"), clients("q-sub")

    def picky(request: ji.SubscriptionRequest) -> None:
        if request.arguments.get("fail"):
            raise PermissionError("not for you")

    stream = pub.streams.create("Q.Stream", on_subscription_request=picky)
    subscription = sub.streams.subscribe("Q.Stream")
    probe = Recorder()  # a second subscription, with a callback from the start
    sub.streams.subscribe("Q.Stream", on_data=probe)
    wait_for(lambda: len(stream.subscriptions()) == 2, what="both accepted")
    for i in range(5):
        stream.push({"i": i})
    stream.push({"end": True})
    # the probe has the last push: everything pushed before it reached the subscriber
    wait_for(lambda: probe.calls and probe.calls[-1][0].data == {"end": True}, what="end")
    data = Recorder()
    subscription.on_data(data)
    data.wait(6)
    assert datas(data) == [*({"i": i} for i in range(5)), {"end": True}]
    failed = Recorder()
    with pytest.raises(ji.SubscriptionError, match="PermissionError: not for you"):
        sub.streams.subscribe("Q.Stream", {"fail": True}, on_failed=failed)
    [(error,)] = failed.wait()
    assert isinstance(error, ji.SubscriptionError)


def test_on_closed_when_publisher_closes_or_dies_and_on_failed(clients: Clients) -> None:
    pub, sub = clients("cl-pub"), clients("cl-sub")
    stream = pub.streams.create("Cl.Stream")
    closed = Recorder()
    sub.streams.subscribe("Cl.Stream", on_closed=closed)
    stream.close()
    [(info,)] = closed.wait()
    assert info.message == "ServerInitiated" and info.stream == "Cl.Stream"
    assert pub.methods.methods("Cl.Stream") == []

    pub2 = clients("cl-pub2")
    pub2.streams.create("Cl.Dies")
    closed2 = Recorder()
    sub.streams.subscribe("Cl.Dies", on_closed=closed2)
    pub2.close()
    [(info2,)] = closed2.wait()
    assert info2.message == "ServerInitiated" and info2.reason == "Peer has been removed"

    failed = Recorder()
    with pytest.raises(ji.SubscriptionError, match="No available servers"):
        sub.streams.subscribe("Cl.Nobody", wait_timeout=0.2, on_failed=failed)
    assert "No available servers" in str(failed.wait()[0][0])


def test_subscribe_all_publishers_and_unsubscribe_on_publisher_side(clients: Clients) -> None:
    p1, p2, sub = clients("all-p1"), clients("all-p2"), clients("all-sub")
    s1 = p1.streams.create("All.Stream")
    s2 = p2.streams.create("All.Stream")
    wait_for(lambda: len(sub.methods.servers("All.Stream")) == 2, what="both publishers")
    data = Recorder()
    connected = Recorder()
    subscription = sub.streams.subscribe(
        "All.Stream", target="all", on_data=data, on_connected=connected
    )
    wait_for(lambda: len(subscription.servers) == 2, what="two publishers")
    assert {c[0] for c in connected.wait(2)} == {p1.instance, p2.instance}
    assert all(c[1] is False for c in connected.calls)
    s1.push({"from": 1})
    s2.push({"from": 2})
    data.wait(2)
    assert sorted(d["from"] for d in datas(data)) == [1, 2]
    # the publisher drops one subscription: the subscription lives on with the other
    [one] = s1.subscriptions()
    one.close()
    wait_for(lambda: subscription.servers == [p2.instance], what="one publisher left")
    assert not subscription.closed


def test_create_same_stream_again_returns_it(clients: Clients) -> None:
    pub = clients("re-pub")
    first = pub.streams.create("Re.Stream")
    second = pub.streams.create("Re.Stream", on_added=lambda s: None)
    assert first is second
    with pytest.raises(ji.RegistrationError, match="as a stream"):
        pub.methods.register("Re.Stream", lambda: 1)


def test_streams_are_listed_apart_from_methods(clients: Clients) -> None:
    """``io.streams.streams()`` (or ``io.streams.list()``) lists what ``io.methods.methods()``
    leaves out, with publishers."""
    pub, watcher = clients("list-pub"), clients("list-watcher")
    pub.streams.create("List.Ticks")
    pub.methods.register("List.Price", lambda: 1)
    wait_for(lambda: watcher.streams.streams("List.Ticks"), what="the stream announced")
    [stream] = watcher.streams.streams("List.Ticks")
    assert stream.supports_streaming and stream.servers == (pub.instance,)
    wait_for(lambda: watcher.methods.methods("List.Price"), what="the method announced")
    assert watcher.methods.methods("List.Ticks") == []
    assert watcher.streams.streams("List.Price") == []
    listed = [s.name for s in watcher.streams.list()]
    assert "List.Ticks" in listed and "List.Price" not in listed
    assert watcher.streams.list("List.Ticks") == [stream]


# ---------------------------------------------------------------------- contexts


def test_context_snapshot_then_deltas_with_versions_and_updater(clients: Clients) -> None:
    writer, reader = clients("ctx-writer"), clients("ctx-reader")
    events = Recorder()
    reader.contexts.subscribe("Ctx.client", events)  # before anyone created it: parked
    when = dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)
    writer.contexts.update("Ctx.client", {"name": "Acme", "tier": 1, "since": when})
    events.wait(1)  # the parked subscription took its snapshot
    writer.contexts.update("Ctx.client", {"name": "Acme Corp", "tier": None})
    version = writer.contexts.set_path("Ctx.client", "address.city", "Paris")
    writer.contexts.set_paths("Ctx.client", {"address.zip": "75001", "flags.vip": True})
    calls = events.wait(4)
    data, delta, removed, meta = calls[0]
    assert data == {"name": "Acme", "tier": 1, "since": when} and delta == data
    assert removed == [] and meta.snapshot and meta.version == 0
    data, delta, removed, meta = calls[1]
    assert data == {"name": "Acme Corp", "since": when}
    assert delta == {"name": "Acme Corp"} and removed == ["tier"]
    assert meta.version == 1 and not meta.snapshot and not meta.own
    assert meta.updater_id == writer.peer_id and meta.updater == writer.instance
    assert calls[2][1] == {"address": {"city": "Paris"}} and calls[2][3].version == version == 2
    assert calls[3][0]["address"] == {"city": "Paris", "zip": "75001"}
    assert calls[3][0]["flags"] == {"vip": True} and calls[3][3].version == 3
    expected = {
        "name": "Acme Corp",
        "since": when,
        "address": {"city": "Paris", "zip": "75001"},
        "flags": {"vip": True},
    }
    assert reader.contexts.get("Ctx.client") == expected
    assert writer.contexts.get("Ctx.client") == expected
    assert "Ctx.client" in reader.contexts.all()
    assert reader.contexts.version("Ctx.client") == 3
    writer.contexts.set_path("Ctx.client", "address", None)
    wait_for(lambda: "address" not in reader.contexts.get("Ctx.client"), what="path removed")


def test_context_set_replaces_dotted_keys_stay_keys_and_own_writes(clients: Clients) -> None:
    io, other = clients("ctx-own"), clients("ctx-other")
    mine, quiet = Recorder(), Recorder()
    io.contexts.subscribe("Ctx.own", mine)
    io.contexts.subscribe("Ctx.own", quiet, include_own=False)
    io.contexts.set("Ctx.own", {"a": 1, "b": 2})
    io.contexts.update("Ctx.own", {"BRK.B": 410.5})
    io.contexts.set("Ctx.own", {"c": 3})
    assert io.contexts.get("Ctx.own") == {"c": 3}
    calls = mine.wait(3)
    assert calls[0][0] == {"a": 1, "b": 2} and calls[0][3].own
    assert calls[1][0] == {"a": 1, "b": 2, "BRK.B": 410.5}  # one key, not a nested path
    assert calls[2][0] == {"c": 3} and sorted(calls[2][2]) == ["BRK.B", "a", "b"]
    other.contexts.update("Ctx.own", {"d": 4})
    wait_for(lambda: len(quiet.calls) >= 1 and quiet.calls[-1][0] == {"c": 3, "d": 4})
    assert not any(call[3].own for call in quiet.calls)
    assert other.contexts.get("Ctx.own") == {"c": 3, "d": 4}


def test_a_callback_changing_its_data_leaves_the_client_and_other_callbacks_as_they_were(
    clients: Clients,
) -> None:
    """Callbacks share the client's read-only data (docs/ARCHITECTURE.md, contexts): a
    change, nested too, raises; a deep copy is the callback's own to change."""
    writer, reader = clients("ctx-ro-writer"), clients("ctx-ro-reader")
    refused: list[int] = []
    copies: list[dict] = []

    def meddler(data: dict, delta: dict, removed: list, meta: object) -> None:
        changes = (
            lambda: data.__setitem__("x", 1),
            lambda: data.pop("n"),
            lambda: data["a"].__setitem__("b", None),
            lambda: data["a"]["b"].append(9),
            lambda: data["a"]["b"][1].update(c=0),
            lambda: delta.clear(),
        )
        count = 0
        for change in changes:
            try:
                change()
            except TypeError:
                count += 1
        own = copy.deepcopy(data)
        own["a"]["b"].append("mine")
        copies.append(own)
        refused.append(count)

    after = Recorder()
    reader.contexts.subscribe("Ctx.ro", meddler)
    reader.contexts.subscribe("Ctx.ro", after)
    writer.contexts.set("Ctx.ro", {"a": {"b": [1, {"c": 2}]}, "n": 0})
    after.wait(1)
    writer.contexts.update("Ctx.ro", {"n": 1})
    writer.contexts.set_path("Ctx.ro", "a.d", 3)
    mine = {"k": [1]}
    reader.contexts.update("Ctx.ro", {"m": mine})  # our own write
    mine["k"].append(2)  # the caller's dict stays the caller's
    calls = after.wait(4)
    first = {"a": {"b": [1, {"c": 2}]}, "n": 0}
    assert calls[0][0] == first and calls[0][1] == first
    assert calls[1][0] == {**first, "n": 1}
    assert calls[2][0] == {"a": {"b": [1, {"c": 2}], "d": 3}, "n": 1}
    last = {"a": {"b": [1, {"c": 2}], "d": 3}, "n": 1, "m": {"k": [1]}}
    assert calls[3][0] == last
    wait_for(lambda: len(refused) == 4, what="the meddling callback's calls")
    assert refused == [6, 6, 6, 6]
    assert [c["a"]["b"][-1] for c in copies] == ["mine"] * 4
    assert reader.contexts.get("Ctx.ro") == last
    assert writer.contexts.get("Ctx.ro") == last
    got = reader.contexts.get("Ctx.ro")  # get's copy is plain and the caller's
    got["a"]["b"].append(4)
    assert reader.contexts.get("Ctx.ro") == last


def test_context_callbacks_with_fewer_parameters_unsubscribe_and_destroy(clients: Clients) -> None:
    a, b = clients("ctx-a"), clients("ctx-b")
    only_data: list[dict] = []
    subscription = b.contexts.subscribe("Ctx.short", only_data.append)
    marks = Recorder()  # another context b follows: its updates come after a's earlier writes
    a.contexts.set("Ctx.short.mark", {"n": 0})
    b.contexts.subscribe("Ctx.short.mark", marks)
    a.contexts.set("Ctx.short", {"x": 1})
    wait_for(lambda: only_data == [{"x": 1}])
    subscription.unsubscribe()
    a.contexts.set("Ctx.short", {"x": 2})
    a.contexts.set("Ctx.short.mark", {"n": 1})
    wait_for(lambda: marks.calls and marks.calls[-1][0] == {"n": 1}, what="the mark")
    assert only_data == [{"x": 1}]
    assert b.contexts.get("Ctx.short") == {"x": 2}  # a one-off read
    a.contexts.destroy("Ctx.short")
    wait_for(lambda: "Ctx.short" not in b.contexts.all(), what="destroyed everywhere")
    assert b.contexts.get("Ctx.short") == {}
    with pytest.raises(ji.ContextError, match=r"No context named 'Ctx.short'"):
        b.contexts.destroy("Ctx.short")


def test_context_lifetimes_from_python(clients: Clients) -> None:
    owner, follower, watcher = clients("life-owner"), clients("life-follower"), clients("life-w")
    assert owner.contexts.create("Life.owned", {"v": 1}, lifetime="ownership") is True
    assert owner.contexts.create("Life.ref", {"v": 1}, lifetime="ref-counted") is True
    assert owner.contexts.create("Life.kept", lifetime="retained") is True
    # creating an existing name follows it; its data and lifetime are not applied
    assert follower.contexts.create("Life.ref", {"v": 2}, lifetime="retained") is False
    assert follower.contexts.get("Life.ref") == {"v": 1}
    with pytest.raises(ji.ArgumentError, match="Unknown lifetime 'forever'"):
        owner.contexts.create("Life.bad", lifetime="forever")
    wait_for(lambda: {"Life.owned", "Life.ref", "Life.kept"} <= set(watcher.contexts.all()))
    owner.close()  # its ownership context goes; the ref-counted one has a follower left
    wait_for(lambda: "Life.owned" not in watcher.contexts.all(), what="the owned one destroyed")
    assert {"Life.ref", "Life.kept"} <= set(watcher.contexts.all())
    follower.close()  # the ref-counted context's last follower
    wait_for(lambda: "Life.ref" not in watcher.contexts.all(), what="the ref-counted one gone")
    assert "Life.kept" in watcher.contexts.all()


def test_an_owner_makes_its_context_read_only_for_others(clients: Clients) -> None:
    owner, other = clients("ro-owner"), clients("ro-other")
    got = Recorder()
    assert owner.contexts.create("RO.quote", {"px": 1}, lifetime="ownership", read_only=True)
    other.contexts.subscribe("RO.quote", got)
    with pytest.raises(ji.ContextError, match=r"'RO.quote' is read-only: only its owner") as e:
        other.contexts.update("RO.quote", {"px": 2})
    assert e.value.reason_uri == "context.errors.not_authorized"
    assert "'ro-owner'" in str(e.value)
    with pytest.raises(ji.ContextError, match="Only the owner 'ro-owner'"):
        other.contexts.set_read_only("RO.quote", False)
    owner.contexts.update("RO.quote", {"px": 3})
    wait_for(lambda: got.firsts[-1:] == [{"px": 3}], what="the owner's write")
    assert owner.contexts.get("RO.quote") == {"px": 3}
    owner.contexts.set_read_only("RO.quote", False)
    other.contexts.update("RO.quote", {"px": 4})
    wait_for(lambda: owner.contexts.get("RO.quote") == {"px": 4}, what="the other's write")
    owner.contexts.set_read_only("RO.quote")
    with pytest.raises(ji.ContextError, match="read-only"):
        other.contexts.set("RO.quote", {})
    with pytest.raises(ji.ArgumentError, match="Only an ownership context can be read-only"):
        owner.contexts.create("RO.kept", lifetime="retained", read_only=True)
    assert "read-only" in owner.status()["extensions"]


def test_context_values_bytes_dates_and_concurrent_writers(clients: Clients) -> None:
    a, b = clients("ctx-val-a"), clients("ctx-val-b")
    value = {
        "raw": b"\x00\x01\x02",
        "day": dt.date(2024, 2, 29),
        "naive": dt.datetime(2024, 2, 29, 12, 30),
        "nested": [{"when": dt.datetime(2000, 1, 1, tzinfo=UTC)}],
    }
    a.contexts.set("Ctx.values", value)
    got = b.contexts.get("Ctx.values")
    assert got["raw"] == b"\x00\x01\x02"
    assert got["day"] == dt.datetime(2024, 2, 29).astimezone()  # local midnight, as a datetime
    # naive means local time, on both sides: the reader sees the writer's wall time
    assert got["naive"].replace(tzinfo=None) == value["naive"]
    assert got["nested"] == [{"when": dt.datetime(2000, 1, 1, tzinfo=UTC)}]

    events = Recorder()
    a.contexts.subscribe("Ctx.counter", events)
    threads = [
        threading.Thread(
            target=lambda io=io, k=k: [
                io.contexts.update("Ctx.counter", {f"{k}{i}": i}) for i in range(20)
            ]
        )
        for io, k in ((a, "a"), (b, "b"))
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    wait_for(lambda: len(a.contexts.get("Ctx.counter")) == 40, what="40 keys")
    assert a.contexts.get("Ctx.counter") == b.contexts.get("Ctx.counter")
    versions = [call[3].version for call in events.calls]
    assert versions == sorted(versions) and versions[-1] == 39  # hub order, no gaps at the end


# ---------------------------------------------------------------------- channels


def test_channels_list_join_publish_subscribe_follow(clients: Clients, hub: StandaloneHub) -> None:
    a, b = clients("ch-a"), clients("ch-b")
    channels = a.channels.list()
    assert [c.name for c in channels] == [
        "Red",
        "Green",
        "Blue",
        "Pink",
        "Yellow",
        "DarkYellow",
        "Orange",
        "Purple",
        "Lime",
        "Cyan",
    ]
    assert channels[0].color == "red" and channels[2].meta["color"] == "#66ABFF"
    assert a.channels.all()[:2] == ["Red", "Green"]
    changed = Recorder()
    b.channels.on_changed(changed)
    follow = Recorder()
    b.channels.subscribe(follow)
    assert b.channels.current is None
    b.channels.join("Red")
    a.channels.join("Red")
    a.channels.publish({"symbol": "AAPL", "qty": 1})
    a.channels.publish({"qty": None, "side": "buy"})  # replaces top-level keys, None removes
    wait_for(lambda: follow.calls and follow.calls[-1][0] == {"symbol": "AAPL", "side": "buy"})
    _data, channel, meta = follow.calls[-1]
    assert channel.name == "Red" and channel.color == "red" and meta.updater == a.instance
    assert a.channels.get("Red").data == {"symbol": "AAPL", "side": "buy"}
    # following: joining another channel delivers its data, Red's changes no longer arrive
    a.channels.publish({"symbol": "MSFT"}, name="Blue")
    b.channels.join("Blue")
    wait_for(lambda: follow.calls[-1][1].name == "Blue" and follow.calls[-1][0]["symbol"] == "MSFT")
    count = len(follow.calls)
    # a fixed channel, whatever the current one; it also shows when Red's update reached b
    red = Recorder()
    b.channels.subscribe_for("Red", red)
    red.wait(1)  # its snapshot
    a.channels.publish({"symbol": "IBM"})  # a is still on Red
    wait_for(lambda: red.calls[-1][0]["symbol"] == "IBM", what="Red's update at b")
    assert len(follow.calls) == count
    assert changed.wait(2) == [("Red",), ("Blue",)]
    b.channels.leave()
    assert b.channels.current is None and changed.wait(3)[-1] == (None,)


def test_hub_knows_the_channel_and_can_move_a_peer(clients: Clients, hub: StandaloneHub) -> None:
    notebook, ui = clients("ch-notebook"), clients("ch-ui")
    changed = Recorder()
    notebook.channels.on_changed(changed)
    notebook.channels.join("Green")

    def members() -> dict[str, list[str]]:
        return {
            c["name"]: [m["peer_id"] for m in c["members"]]
            for c in hub.view("channels")
            if c["members"]
        }

    wait_for(lambda: members().get("Green") == [notebook.peer_id], what="hub sees Green")
    wait_for(lambda: ui.channels.members().get("Green") == [notebook.peer_id])
    ui.channels.move(notebook.instance, "Purple")
    wait_for(lambda: notebook.channels.current == "Purple", what="moved")
    assert changed.wait(2)[-1] == ("Purple",)
    wait_for(lambda: members().get("Purple") == [notebook.peer_id], what="hub sees Purple")
    ui.channels.move(notebook.peer_id, None)
    wait_for(lambda: notebook.channels.current is None, what="moved off")
    with pytest.raises(ji.ChannelError):
        ui.channels.move(notebook.instance, "Mauve")


def test_channel_paths_clear_and_remove_as_io_connect(clients: Clients) -> None:
    a, b = clients("ch-paths-a"), clients("ch-paths-b")
    seen = Recorder()
    b.channels.subscribe_for("Orange", seen)
    seen.wait(1)
    a.channels.join("Orange")
    a.channels.set_path("instrument.ticker", "AAPL")
    a.channels.set_paths([{"path": "instrument.isin", "value": "US0378331005"}, ("qty", 5)])
    a.channels.set_paths({"qty": None}, name="Orange")  # None removes the path
    want = {"instrument": {"ticker": "AAPL", "isin": "US0378331005"}}
    wait_for(lambda: seen.calls[-1][0] == want, what="paths at b")
    assert a.channels.get("Orange").meta["color"] == "#fa5a28"
    a.channels.clear_data()
    wait_for(lambda: seen.calls[-1][0] == {}, what="cleared at b")
    assert b.channels.get("Orange").color == "#fa5a28"  # name and meta stay
    with pytest.raises(ji.ArgumentError):
        a.channels.set_paths([{"path": "x"}])
    with pytest.raises(ji.ArgumentError):
        a.channels.set_path(3, "x")  # type: ignore[arg-type]
    a.channels.leave()
    with pytest.raises(ji.ChannelError):
        a.channels.set_path("x", 1)
    a.channels.add("Desk", "teal")
    wait_for(lambda: "Desk" in b.channels.all(), what="Desk at b")
    b.channels.join("Desk")
    b.channels.remove("Desk")
    assert b.channels.current is None
    wait_for(lambda: "Desk" not in a.channels.all(), what="Desk removed at a")
    with pytest.raises(ji.ChannelError):
        a.channels.remove("Desk")


def test_channel_restrictions_from_python(clients: Clients) -> None:
    ui, nb = clients("ch-restrict-ui"), clients("ch-restrict-nb")
    ui.channels.restrict(name="Purple", read=True, write=False, target=nb.instance)
    with pytest.raises(ji.ContextError) as refused:
        nb.channels.publish({"symbol": "AAPL"}, name="Purple")
    assert "may not change channel 'Purple'" in str(refused.value)
    assert refused.value.reason_uri == "context.errors.not_authorized"
    with pytest.raises(ji.ChannelError, match="cannot lift"):
        nb.channels.restrict(name="Purple", read=True, write=True)
    with pytest.raises(ji.ChannelError, match="cannot lift"):
        nb.channels.restrict_all(read=True, write=True)  # would lift Purple's too
    ui.channels.restrict(name="Purple", read=True, write=True, target=nb.peer_id)
    nb.channels.publish({"symbol": "AAPL"}, name="Purple")
    # a notebook restricted from reading a channel joins it but hears none of its data
    nb.channels.restrict_all({"read": False, "write": True})
    heard = Recorder()
    nb.channels.subscribe(heard)
    ui.channels.publish({"symbol": "MSFT"}, name="Lime")
    nb.channels.join("Lime")
    assert heard.wait(1)[0][0] == {}
    assert nb.channels.get_restrictions()["channels"][0] == {
        "name": "Red",
        "read": False,
        "write": True,
    }
    nb.channels.restrict_all(read=True, write=True)
    wait_for(lambda: heard.calls[-1][0] == {"symbol": "MSFT"}, what="Lime's data once readable")
    with pytest.raises(ji.ArgumentError):
        nb.channels.restrict(name="Lime", read="yes", write=True)
    with pytest.raises(ji.ArgumentError):
        nb.channels.restrict(read=True, write=True)
    with pytest.raises(ji.ChannelError):
        nb.channels.restrict(name="Mauve", read=True, write=True)


def test_multi_channel_mode(clients: Clients, hub: StandaloneHub) -> None:
    nb, ui = clients("ch-multi-nb"), clients("ch-multi-ui")
    assert nb.channels.mode == "single"
    with pytest.raises(ji.ArgumentError):
        nb.channels.mode = "many"
    nb.channels.mode = "multi"
    lists, currents = Recorder(), Recorder()
    nb.channels.on_channels_changed(lists)
    nb.channels.on_changed(currents)
    heard = Recorder()
    nb.channels.subscribe(heard)
    ui.channels.publish({"symbol": "AAPL"}, name="Cyan")
    nb.channels.join("Cyan")
    nb.channels.join("Pink")
    nb.channels.join("Cyan")  # already on it: nothing changes
    assert nb.channels.my_channels() == ["Cyan", "Pink"] and nb.channels.current == "Pink"
    assert nb.channels.my() == "Pink"  # io.Connect's names: my, getMy, getMyChannels
    assert nb.channels.get_my() == nb.channels.get("Pink")
    assert [c.name for c in nb.channels.get_my_channels()] == ["Cyan", "Pink"]
    assert nb.channels.get_my_channels()[0].data == {"symbol": "AAPL"}
    assert lists.wait(2) == [(["Cyan"],), (["Cyan", "Pink"],)]
    assert currents.wait(2)[-1] == ("Pink",)

    def members() -> dict[str, list[str]]:
        return {c["name"]: [m["peer_id"] for m in c["members"]] for c in hub.view("channels")}

    wait_for(lambda: members()["Cyan"] == members()["Pink"] == [nb.peer_id], what="hub view")
    wait_for(lambda: ui.channels.members().get("Pink") == [nb.peer_id], what="ui's members")
    assert ui.channels.members().get("Cyan") == [nb.peer_id]
    # updates of every channel joined reach subscribe; publish without a name goes to each
    ui.channels.publish({"symbol": "MSFT"}, name="Pink")
    wait_for(lambda: ("Pink", {"symbol": "MSFT"}) in [(c[1].name, c[0]) for c in heard.calls])
    assert ("Cyan", {"symbol": "AAPL"}) in [(c[1].name, c[0]) for c in heard.calls]
    nb.channels.publish({"side": "buy"})
    assert ui.channels.get("Cyan").data == {"symbol": "AAPL", "side": "buy"}
    assert ui.channels.get("Pink").data == {"symbol": "MSFT", "side": "buy"}
    with pytest.raises(ji.ChannelError, match="leave all but one"):
        nb.channels.mode = "single"
    nb.channels.leave("Cyan")
    assert nb.channels.my_channels() == ["Pink"]
    wait_for(lambda: members()["Cyan"] == [] and members()["Pink"] == [nb.peer_id])
    count = len(heard.calls)
    ui.channels.publish({"symbol": "IBM"}, name="Cyan")
    ui.channels.publish({"symbol": "IBM"}, name="Pink")
    wait_for(lambda: heard.calls[-1][0]["symbol"] == "IBM", what="Pink's update")
    assert [c[1].name for c in heard.calls[count:]] == ["Pink"]  # Cyan's did not come
    nb.channels.leave()
    assert nb.channels.my_channels() == [] and lists.wait(4)[-1] == ([],)
    assert nb.channels.my() is None and nb.channels.get_my() is None
    assert nb.channels.get_my_channels() == []
    nb.channels.mode = "single"
    nb.channels.join("Cyan")
    nb.channels.join("Pink")
    assert nb.channels.my_channels() == ["Pink"]


# ---------------------------------------------------------------------- bus


def test_bus_delivers_an_empty_dict(clients: Clients) -> None:
    pub, sub = clients("bus-empty-pub"), clients("bus-empty-sub")
    got = Recorder()
    sub.bus.subscribe("empty", got)
    pub.bus.publish("empty", {})
    pub.bus.publish("empty", "end")
    wait_for(lambda: "end" in got.firsts, what="the barrier message")
    assert got.firsts == [{}, "end"]


def test_bus_wildcards_routing_keys_and_targets(clients: Clients) -> None:
    pub, sub, other = clients("bus-pub"), clients("bus-sub"), clients("bus-other")
    star, rest, keyed, from_pub = Recorder(), Recorder(), Recorder(), Recorder()
    every_news = Recorder()
    sub.bus.subscribe("md.eq.*", star)
    sub.bus.subscribe("md.>", rest)
    sub.bus.subscribe("orders", keyed, routing_key="desk-1")
    subscription = sub.bus.subscribe("news", from_pub, target={"application": "bus-pub"})
    sub.bus.subscribe("news", every_news)
    pub.bus.publish("md.eq.AAPL", {"px": 190.1})
    pub.bus.publish("md.fx.EURUSD", 1.08)
    pub.bus.publish("md.eq.AAPL.trade", {"px": 1})
    pub.bus.publish("orders", {"id": 1}, routing_key="desk-1")
    pub.bus.publish("orders", {"id": 2}, routing_key="desk-2")
    pub.bus.publish("orders", {"id": 3})
    other.bus.publish("news", {"from": "other"})
    pub.bus.publish("news", {"from": "pub"})
    pub.bus.publish("md.eq.IBM", {"px": 1}, target={"application": "bus-other"})
    # barriers: each sender's last message, on a path every subscription above would match
    pub.bus.publish("md.eq.END", "end")
    pub.bus.publish("orders", "end", routing_key="desk-1")
    pub.bus.publish("news", "end")
    other.bus.publish("news", "other's end")
    for recorder, ends in ((star, 1), (rest, 1), (keyed, 1), (from_pub, 1), (every_news, 2)):
        wait_for(
            lambda r=recorder, n=ends: r.firsts.count("end") + r.firsts.count("other's end") >= n,
            what="the barrier messages",
        )
    assert [(c[0], c[1]) for c in star.calls] == [
        ({"px": 190.1}, "md.eq.AAPL"),
        ("end", "md.eq.END"),
    ]
    assert star.calls[0][2] == pub.instance
    assert [c[1] for c in rest.calls] == [
        "md.eq.AAPL",
        "md.fx.EURUSD",
        "md.eq.AAPL.trade",
        "md.eq.END",
    ]
    assert rest.calls[1][0] == 1.08
    assert keyed.firsts == [{"id": 1}, {"id": 3}, "end"]
    assert from_pub.firsts == [{"from": "pub"}, "end"]
    subscription.unsubscribe()
    pub.bus.publish("news", {"from": "pub", "again": True})
    pub.bus.publish("md.eq.END", "end again")
    wait_for(lambda: star.firsts[-1] == "end again", what="the barrier after unsubscribing")
    assert from_pub.firsts == [{"from": "pub"}, "end"]
