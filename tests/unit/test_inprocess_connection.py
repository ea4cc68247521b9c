"""The federation link's connections to its own hub in process (server/inprocess.py): a real
hub core and gateway service, no sockets. They pass the same ``hello`` as a WebSocket peer,
and the same outbox rules apply to them (docs/FEDERATION.md, "Who does what")."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

from jupyter_interop.hub import InteropHub
from jupyter_interop.protocol import messages
from jupyter_interop.protocol.chunks import ReassemblyBudget
from jupyter_interop.protocol.frames import Attachment
from jupyter_interop.server.inprocess import InProcessConnection
from jupyter_interop.server.outbox import OutboxLimits
from jupyter_interop.server.service import GatewayService

TOKEN = "federation-secret"
#: generous bound on any wait (nothing here is timed)
WAIT = 30.0
#: small limits, so that one burst reaches them
LIMITS = OutboxLimits(
    soft_messages=10, soft_bytes=1 << 20, hard_messages=40, hard_bytes=1 << 24, stall_seconds=0
)

Message = dict[str, Any]


class Peer:
    """An in-process connection and what it received, in order."""

    def __init__(self, service: GatewayService, **options: Any) -> None:
        self.got: list[Message] = []
        self.arrived = asyncio.Event()
        self.connection = InProcessConnection(service, self._receive, **options)

    def _receive(self, message: Message) -> None:
        self.got.append(message)
        self.arrived.set()

    async def until(self, found: Callable[[list[Message]], bool]) -> list[Message]:
        async def wait() -> None:
            while not found(self.got):
                self.arrived.clear()
                await self.arrived.wait()

        await asyncio.wait_for(wait(), WAIT)
        return self.got

    def of_type(self, mtype: str) -> list[Message]:
        return [m for m in self.got if m.get("type") == mtype]


def service_with(limits: OutboxLimits | None = None) -> GatewayService:
    return GatewayService(InteropHub(federation_token=TOKEN), limits=limits, announce_delay=0)


async def remote(service: GatewayService, peer_id: str, **options: Any) -> Peer:
    """A connection standing for ``peer_id`` of hub ``hubB``."""
    peer = Peer(service, **options)
    await peer.connection.open(
        {
            "identity": {"application": peer_id},
            "authentication": {"method": "federation", "token": TOKEN},
            "federation": {"peer_id": peer_id, "hub": "hubB"},
        }
    )
    return peer


@pytest.mark.asyncio
async def test_the_observer_hears_a_remote_peer_and_its_methods_in_order() -> None:
    service = service_with()
    observer = Peer(service)
    await observer.connection.open(
        {
            "identity": {},
            "authentication": {"method": "federation", "token": TOKEN},
            "federation": {"observer": True},
        }
    )
    proxy = await remote(service, "pB-1")
    proxy.connection.send(messages.register([{"id": "1", "name": "Price"}]))
    got = await observer.until(lambda got: any(m["type"] == "methods-added" for m in got))
    added = [m for m in got if m.get("new_peer_id") == "pB-1" or m.get("server_id") == "pB-1"]
    assert [m["type"] for m in added] == ["peer-added", "methods-added"]
    assert added[0]["meta"] == {"local": False, "hub": "hubB"}
    assert observer.connection.peer_id is not None
    assert service.hub.peers[observer.connection.peer_id].hidden


@pytest.mark.asyncio
async def test_a_wrong_token_is_refused_and_leaves_nothing_attached() -> None:
    service = service_with()
    peer = Peer(service)
    with pytest.raises(ConnectionError, match="Federation authentication failed"):
        await peer.connection.open(
            {
                "identity": {},
                "authentication": {"method": "federation", "token": "wrong"},
                "federation": {"observer": True},
            }
        )
    await asyncio.wait_for(peer.connection.closed.wait(), WAIT)
    assert service.sockets == {}
    assert service.hub.peers == {}


@pytest.mark.asyncio
async def test_events_over_the_soft_limit_are_dropped_and_counted_the_connection_stays() -> None:
    service = service_with(LIMITS)
    subscriber = await remote(service, "pB-1")
    publisher = await remote(service, "pB-2")
    for peer in (subscriber, publisher):
        peer.connection.send(messages.join("bus"))
    subscriber.connection.send({"domain": "bus", "type": "subscribe", "topic": "t"})
    await subscriber.until(lambda got: any(m["type"] == "subscribed" for m in got))
    # one burst within one loop turn: nothing is handed over before all of it is queued
    for index in range(30):
        publisher.connection.send(messages.bus_publish("t", {"i": index}))
    # a reply after the burst: once it is in, everything kept of the burst was handed over
    subscriber.connection.send({"domain": "bus", "type": "subscribe", "topic": "after"})
    await subscriber.until(lambda got: len([m for m in got if m["type"] == "subscribed"]) == 2)
    events = [m["data"]["i"] for m in subscriber.of_type("event")]
    assert events == list(range(LIMITS.soft_messages))
    assert subscriber.connection.conn.attrs["dropped_events"] == 30 - LIMITS.soft_messages
    assert not subscriber.connection.finished
    assert service.slow_consumers_closed == 0


@pytest.mark.asyncio
async def test_a_connection_over_the_hard_limit_is_closed_and_its_callers_get_an_error() -> None:
    service = service_with(LIMITS)
    server = await remote(service, "pB-1")
    callers = [await remote(service, "pB-2"), await remote(service, "pB-3")]
    server.connection.send(messages.register([{"id": "1", "name": "Slow"}]))
    for caller in callers:
        await caller.until(lambda got: any(m["type"] == "methods-added" for m in got))
    # calls are never dropped: more of them in one turn than the hard limit close the server
    per_caller = LIMITS.hard_messages // 2 + 1
    for caller in callers:
        for index in range(per_caller):
            caller.connection.send(messages.call("pB-1", "1", {}, request_id=f"c{index}"))
    await asyncio.wait_for(server.connection.closed.wait(), WAIT)
    assert server.connection.finished
    assert service.slow_consumers_closed == 1
    assert "pB-1" not in service.hub.peers
    for caller in callers:
        await caller.until(lambda got: len([m for m in got if m["type"] == "error"]) == per_caller)
        # calls pending on the server fail as for any peer that left; a call after it left
        # finds no server
        reasons = {m["reason"] for m in caller.of_type("error")}
        assert "Peer has left while waiting for result" in reasons
        assert reasons <= {
            "Peer has left while waiting for result",
            "Unable to find server with id pB-1",
        }
        # the callers are not harmed: they go on being served
        caller.connection.send(messages.join("bus"))
        await caller.until(lambda got: got[-1]["type"] == "success")
        assert not caller.connection.finished


@pytest.mark.asyncio
async def test_a_call_with_values_above_the_budget_fails_at_once_for_its_caller() -> None:
    service = service_with()
    values = frozenset({"invoke", "result", "error"})
    server = await remote(service, "pB-1", values=values, budget=ReassemblyBudget(1000))
    caller = await remote(service, "pB-2", values=values)
    server.connection.send(messages.register([{"id": "1", "name": "Take"}]))
    await caller.until(lambda got: any(m["type"] == "methods-added" for m in got))
    small = Attachment({"__ji__": "bytes"}, [memoryview(b"x" * 100)])
    big = Attachment({"__ji__": "bytes"}, [memoryview(b"x" * 5000)])
    caller.connection.send(messages.call("pB-1", "1", {"v": small}, request_id="small"))
    caller.connection.send(messages.call("pB-1", "1", {"v": big}, request_id="big"))
    error = (await caller.until(lambda got: any(m["type"] == "error" for m in got)))[-1]
    assert error["request_id"] == "big"
    assert "federation_max_value_bytes" in error["reason"]
    invokes = server.of_type("invoke")
    assert len(invokes) == 1
    taken = invokes[0]["arguments_kv"]["v"]
    assert isinstance(taken, Attachment) and bytes(taken.buffers[0]) == b"x" * 100
