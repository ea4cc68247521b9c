"""A NATS server that stalls (SIGSTOP: connections open, nothing read) harms no one
(docs/FEDERATION.md, "A slow NATS server"): the hub whose peers keep publishing to other hubs
serves its own peers, its link's queue stays within its bound (bus and stream messages past
it dropped and counted, one log line for the episode), a call across hubs fails at once with
a clear reason, and everything crosses again once the server runs again."""

from __future__ import annotations

from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest
from test_client_support import wait_for
from test_federation import HEARTBEAT, Hub, Nats
from test_federation_bus import Inbox, client, hubs, until_routed
from test_federation_security import view
from test_federation_streams import greeted, subscriber, ticks

import jupyter_interop as ji

#: the bound of hub A's queue in this test (nats-py's own buffer and the sockets' hold more)
BOUND = 1_000_000
#: a bus message of about 64 kB
CHUNK = "x" * 64_000


@pytest.fixture
def nats(tmp_path: Path) -> Any:
    server = Nats(tmp_path)
    try:
        yield server
    finally:
        server.stop()


def bounded(stack: ExitStack, tmp_path: Path, nats: Nats, heartbeat: list[str]) -> list[Hub]:
    """Hubs A and B, A's link queue bounded by :data:`BOUND`."""
    options = (f"--InteropHub.federation_max_queue_bytes={BOUND}",)
    return hubs(stack, tmp_path, nats, "a", "b", options=options, heartbeat=heartbeat)


def fill(io: ji.Interop, hub: Hub) -> None:
    """Publish on the bus from ``io`` until the link queue of ``hub`` is full (NATS paused)."""

    def filled() -> bool:
        for _ in range(20):
            io.bus.publish("slow.fill", CHUNK)
        return bool(view(hub, "federation")["queue"]["full"])

    wait_for(filled, 120, "the link queue to reach its bound")


def test_a_stalled_nats_server_leaves_local_peers_served_and_the_queue_bounded(
    tmp_path: Path, nats: Nats
) -> None:
    with ExitStack() as stack:
        hub_a, hub_b = bounded(
            stack, tmp_path, nats, ["--InteropHub.federation_heartbeat_timeout=120"]
        )
        pub, near = client(stack, hub_a, "pub-a"), client(stack, hub_a, "near-a")
        far = client(stack, hub_b, "far-b")
        near.methods.register("Local")(lambda: {"by": "a"})
        far.methods.register("Far")(lambda: {"by": "b"})
        far.streams.create("Far.Ticks")
        stream = ticks(pub)
        watcher = subscriber(stack, hub_b, "watcher-b")
        feed = greeted(watcher, "T")
        here, there = Inbox(), Inbox()
        near.bus.subscribe("here.>", here)
        far.bus.subscribe("slow.>", there)
        until_routed(lambda probe: pub.bus.publish("slow.probe", probe), there)
        wait_for(lambda: pub.methods.servers("Far"), 30, "B's method on A")
        wait_for(lambda: pub.streams.streams("Far.Ticks"), 30, "B's stream on A")
        assert pub.methods.invoke("Far", {}, timeout=30).returned == {"by": "b"}

        def queue() -> dict[str, Any]:
            status: dict[str, Any] = view(hub_a, "federation")["queue"]
            return status

        nats.pause()
        stack.callback(nats.resume)  # before it is stopped for good
        fill(pub, hub_a)
        stream.push({"n": 1}, branch="T")  # past the bound: dropped, counted
        wait_for(lambda: queue()["dropped"]["streams"], 30, "the stream item counted")

        # hub A serves its own peers meanwhile
        assert pub.methods.invoke("Local", {}, timeout=30).returned == {"by": "a"}
        pub.bus.publish("here.now", {"n": 1})
        wait_for(here.messages, 30, "the local bus message")
        assert here.messages() == [("here.now", {"n": 1}, "pub-a")]
        # a call across fails at once, saying why (it would wait its whole timeout else)
        with pytest.raises(ji.InvocationError, match="federation_max_queue_bytes") as failed:
            pub.methods.invoke("Far", {}, timeout=600)
        assert "was not sent: NATS takes this hub's messages slower" in str(failed.value)
        # and so does a subscription to a stream of the other hub
        with pytest.raises(ji.SubscriptionError, match=r"subscription to hub .* was not sent"):
            pub.streams.subscribe("Far.Ticks", {}, timeout=600)
        status = queue()
        assert status["full"] and 0 < status["bytes"] <= BOUND == status["max_bytes"]
        assert status["dropped"]["bus"] > 0
        log = tmp_path / "a" / "hub.log"
        assert log.read_text().count("takes this hub's messages slower than they come") == 1

        nats.resume()
        wait_for(lambda: queue()["bytes"] == 0, 120, "hub A's link queue to drain")
        dropped = queue()["dropped"]
        said = (
            "NATS takes this hub's messages again; dropped meanwhile: "
            f"{dropped['bus']} bus and {dropped['streams']} stream messages"
        )
        wait_for(lambda: said in log.read_text(), 30, "the end of the episode in A's log")
        assert pub.methods.invoke("Far", {}, timeout=60).returned == {"by": "b"}
        pub.streams.subscribe("Far.Ticks", {}, timeout=60).close()
        pub.bus.publish("slow.after", {"n": 2})
        wait_for(lambda: ("slow.after", {"n": 2}, "pub-a") in there.messages(), 60, "B")
        stream.push({"n": 2}, branch="T")
        wait_for(lambda: ({"n": 2}, False) in feed.got(), 60, "the stream item on B")
        assert ({"n": 1}, False) not in feed.got()


def test_a_hub_whose_nats_publishes_block_still_sees_the_other_hubs_fall_silent(
    tmp_path: Path, nats: Nats
) -> None:
    """NATS paused and hub A's queue full, so nats-py blocks A's publishes: A's heartbeat goes
    on all the same, and B's peers leave A after the heartbeat timeout, as A's leave B (a call
    pending on them would fail then, "Failures"); NATS running again, they come back."""
    with ExitStack() as stack:
        hub_a, hub_b = bounded(stack, tmp_path, nats, HEARTBEAT)
        pub, far = client(stack, hub_a, "pub-a"), client(stack, hub_b, "far-b")
        far.methods.register("Far")(lambda: {"by": "b"})
        wait_for(lambda: pub.methods.servers("Far"), 30, "B's method on A")
        nats.pause()
        stack.callback(nats.resume)  # before it is stopped for good
        fill(pub, hub_a)
        wait_for(lambda: not view(hub_a, "federation")["remote_hubs"], 30, "B silent on A")
        wait_for(lambda: not pub.methods.servers("Far"), 30, "B's peers to leave A")
        assert view(hub_a, "federation")["queue"]["full"]  # (A's publishes still blocked)
        nats.resume()
        wait_for(lambda: pub.methods.servers("Far"), 60, "B's method back on A")
        assert pub.methods.invoke("Far", {}, timeout=60).returned == {"by": "b"}
