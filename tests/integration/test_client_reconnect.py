"""The hub goes away under live clients (restart, crash): everything comes back."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from test_client_support import Clients, Recorder, StandaloneHub, free_port, wait_for

import jupyter_interop as ji


@pytest.fixture
def hub(tmp_path: Path) -> Iterator[StandaloneHub]:
    h = StandaloneHub(tmp_path, free_port())
    h.start()
    yield h
    h.stop()


@pytest.mark.parametrize("how", ["restart", "crash"])
def test_everything_is_restored_after_the_hub_comes_back(hub: StandaloneHub, how: str) -> None:
    clients = Clients(hub)
    try:
        pub = clients("rc-pub", reconnect_max_delay=0.5)
        sub = clients("rc-sub", reconnect_max_delay=0.5)
        connected, lost = Recorder(), Recorder()
        sub.on_connected(connected)
        sub.on_disconnected(lost)

        pub.methods.register("Rc.Echo", lambda **kw: kw)
        stream = pub.streams.create("Rc.Ticks")
        ticks, stream_connected = Recorder(), Recorder()
        subscription = sub.streams.subscribe(
            "Rc.Ticks", on_data=ticks, on_connected=stream_connected
        )
        context = Recorder()
        sub.contexts.subscribe("Rc.shared", context)
        pub.contexts.set("Rc.shared", {"v": 1})
        sub.channels.join("Red")
        multi = clients("rc-multi", reconnect_max_delay=0.5)
        multi.channels.mode = "multi"
        multi.channels.join("Red")
        multi.channels.join("Blue")
        follow = Recorder()
        sub.channels.subscribe(follow)
        bus = Recorder()
        sub.bus.subscribe("rc.>", bus)
        context.wait(1)
        old_peer = sub.peer_id

        if how == "restart":
            hub.stop()
        else:
            hub.kill()
        lost.wait(1)
        assert not sub.connected
        # a call's own timeout bounds its wait for the hub (time is the behaviour here)
        started = time.monotonic()
        with pytest.raises(ji.HubUnreachableError, match=r"unreachable.*waited"):
            sub.methods.invoke("Rc.Echo", {"x": 1}, timeout=0.5)
        waited = time.monotonic() - started
        assert 0.5 <= waited < 10, f"a call with a 0.5 s timeout waited {waited:.2f} s"
        stream.push({"tick": 0})  # dropped while disconnected, never raises

        hub.start()
        # a call made while reconnecting waits for the hub (within its timeout)
        assert sub.methods.invoke("Rc.Echo", {"x": 2}, timeout=15).returned == {"x": 2}
        assert connected.wait(1)[-1] == (True,)
        assert sub.peer_id != old_peer and sub.instance.peer_id == sub.peer_id

        wait_for(lambda: subscription.servers == [pub.instance], what="stream re-subscribed")
        assert (pub.instance, True) in stream_connected.wait(2)
        stream.push({"tick": 1})
        wait_for(lambda: [c[0].data for c in ticks.calls] == [{"tick": 1}], what="tick")

        pub.contexts.update("Rc.shared", {"v": 2})
        wait_for(lambda: context.calls[-1][0] == {"v": 2}, what="context update")
        pub.bus.publish("rc.x", {"n": 1})
        wait_for(lambda: [c[0] for c in bus.calls] == [{"n": 1}], what="bus message")

        assert sub.channels.current == "Red"

        def members() -> dict[str, set[str]]:
            return {c["name"]: {m["peer_id"] for m in c["members"]} for c in hub.view("channels")}

        # a client in multi-channel mode is back on each of its channels
        wait_for(lambda: members()["Blue"] == {multi.peer_id}, what="the multi-mode client on Blue")
        assert members()["Red"] == {sub.peer_id, multi.peer_id}
        assert multi.channels.my_channels() == ["Red", "Blue"]
        pub.channels.publish({"after": "restart"}, name="Red")
        wait_for(lambda: follow.calls and follow.calls[-1][0].get("after") == "restart")
    finally:
        clients.close()


def test_calls_in_flight_fail_fast_and_calls_meanwhile_time_out(hub: StandaloneHub) -> None:
    clients = Clients(hub)
    invoked, finish = threading.Event(), threading.Event()

    def slow() -> str:
        invoked.set()
        finish.wait(60)  # answers only once the test is over: the hub dies first
        return "late"

    try:
        server = clients("if-server")
        caller = clients("if-caller", reconnect_max_delay=0.5, request_timeout=2.0)
        server.methods.register("If.Slow", slow)
        outcome: list[BaseException] = []

        def call() -> None:
            try:
                caller.methods.invoke("If.Slow", timeout=60)
            except BaseException as error:
                outcome.append(error)

        thread = threading.Thread(target=call)
        thread.start()
        assert invoked.wait(10), "the call never reached the server"
        killed = time.monotonic()
        hub.kill()
        thread.join(30)
        # it failed because the socket dropped: its own timeout (60 s) was far away
        assert outcome and isinstance(outcome[0], ji.ConnectionLostError), outcome
        assert "lost while waiting for the reply to invocation of 'If.Slow'" in str(outcome[0])
        failed_after = time.monotonic() - killed
        assert failed_after < 10, f"the call in flight failed {failed_after:.2f} s after"

        # a request made meanwhile waits request_timeout for the hub, then gives up
        started = time.monotonic()
        with pytest.raises(ji.HubUnreachableError, match="is unreachable"):
            caller.contexts.set("If.ctx", {"a": 1})
        waited = time.monotonic() - started
        assert 2.0 <= waited < 12, f"a request with a 2 s request_timeout waited {waited:.2f} s"
    finally:
        finish.set()
        clients.close()
