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
from test_federation import Nats
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


def test_a_stalled_nats_server_leaves_local_peers_served_and_the_queue_bounded(
    tmp_path: Path, nats: Nats
) -> None:
    with ExitStack() as stack:
        hub_a, hub_b = hubs(
            stack,
            tmp_path,
            nats,
            "a",
            "b",
            options=(f"--InteropHub.federation_max_queue_bytes={BOUND}",),
            heartbeat=["--InteropHub.federation_heartbeat_timeout=120"],
        )
        pub, near = client(stack, hub_a, "pub-a"), client(stack, hub_a, "near-a")
        far = client(stack, hub_b, "far-b")
        near.methods.register("Local")(lambda: {"by": "a"})
        far.methods.register("Far")(lambda: {"by": "b"})
        stream = ticks(pub)
        watcher = subscriber(stack, hub_b, "watcher-b")
        feed = greeted(watcher, "T")
        here, there = Inbox(), Inbox()
        near.bus.subscribe("here.>", here)
        far.bus.subscribe("slow.>", there)
        until_routed(lambda probe: pub.bus.publish("slow.probe", probe), there)
        wait_for(lambda: pub.methods.servers("Far"), 30, "B's method on A")
        assert pub.methods.invoke("Far", {}, timeout=30).returned == {"by": "b"}

        def queue() -> dict[str, Any]:
            status: dict[str, Any] = view(hub_a, "federation")["queue"]
            return status

        def filled() -> bool:
            for _ in range(20):
                pub.bus.publish("slow.fill", CHUNK)
            return bool(queue()["full"])

        nats.pause()
        stack.callback(nats.resume)  # before it is stopped for good
        wait_for(filled, 120, "hub A's link queue to reach its bound")
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
        pub.bus.publish("slow.after", {"n": 2})
        wait_for(lambda: ("slow.after", {"n": 2}, "pub-a") in there.messages(), 60, "B")
        stream.push({"n": 2}, branch="T")
        wait_for(lambda: ({"n": 2}, False) in feed.got(), 60, "the stream item on B")
        assert ({"n": 1}, False) not in feed.got()
