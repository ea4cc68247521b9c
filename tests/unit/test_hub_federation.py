"""The hub core's side of federation (docs/FEDERATION.md): connections of the federation link
standing for remote peers, and its hidden observer; no sockets."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import orjson
import pytest
from hubkit import TOKEN, Client, HubKit
from traitlets import TraitError

from jupyter_interop.hub import InteropHub
from jupyter_interop.protocol import Reason
from jupyter_interop.protocol.chunks import ReassemblyBudget
from jupyter_interop.protocol.wire import ENV_FEDERATION_SPACE, ENV_FEDERATION_URL
from jupyter_interop.server.federation_bus import FederationBus
from jupyter_interop.server.federation_nats import Reconnects
from jupyter_interop.server.federation_streams import FederationStreams, stream_subject
from jupyter_interop.server.federation_values import ValueTransfers

FED_TOKEN = "federation-secret"
REMOTE_IDENTITY = {"application": "pricer", "machine": "gpu-box", "user": "ann", "peerId": "pB-7"}


def federated_hello(kit: HubKit, stands_for: dict[str, Any], token: str = FED_TOKEN) -> Client:
    client = kit.raw(trusted=True)  # trust of the upgrade is not enough: the token decides
    replies = client.send(
        {
            "domain": "global",
            "type": "hello",
            "identity": REMOTE_IDENTITY,
            "authentication": {"method": "federation", "token": token},
            "federation": stands_for,
        }
    )
    client.inbox.extend(replies)
    return client


def remote_peer(kit: HubKit) -> Client:
    proxy = federated_hello(kit, {"peer_id": "pB-7", "hub": "hubB"})
    proxy.peer_id = proxy.one("welcome")["peer_id"]
    proxy.join("agm")
    proxy.take()
    return proxy


def test_a_remote_peer_keeps_its_id_and_identity_and_is_announced_as_not_local() -> None:
    kit = HubKit(federation_token=FED_TOKEN)
    local = kit.client("local")
    proxy = remote_peer(kit)
    assert proxy.peer_id == "pB-7"
    added = local.one("peer-added")
    assert added["new_peer_id"] == "pB-7"
    assert added["identity"] == REMOTE_IDENTITY  # as its own hub resolved it
    assert added["meta"] == {"local": False, "hub": "hubB"}


def test_a_call_to_a_remote_peer_fails_with_peer_has_left_when_it_leaves() -> None:
    kit = HubKit(federation_token=FED_TOKEN)
    caller = kit.client("caller")
    proxy = remote_peer(kit)
    proxy.send({"domain": "agm", "type": "register", "methods": [{"id": "1", "name": "Add"}]})
    caller.send(
        {"domain": "agm", "type": "call", "server_id": "pB-7", "method_id": "1", "request_id": "c1"}
    )
    invoke = proxy.one("invoke")
    assert invoke["method_id"] == "1"
    proxy.close()
    error = caller.one("error")
    assert error["request_id"] == "c1"
    assert error["reason"] == "Peer has left while waiting for result"
    assert caller.one("peer-removed")["removed_id"] == "pB-7"


def test_federation_hello_needs_the_federation_token() -> None:
    kit = HubKit(federation_token=FED_TOKEN)
    for token in ("wrong", TOKEN):
        client = federated_hello(kit, {"peer_id": "pX-1", "hub": "h"}, token=token)
        error = client.one("error")
        assert error["reason_uri"] == Reason.AUTH_FAILURE
        assert client.conn.close_reason == "authentication failed"
    assert "pX-1" not in kit.hub.peers


def test_without_federation_no_connection_stands_for_a_remote_peer() -> None:
    kit = HubKit()  # federation_token empty: federation off
    client = federated_hello(kit, {"peer_id": "pX-1", "hub": "h"}, token="")
    assert client.one("error")["reason_uri"] == Reason.AUTH_FAILURE


def test_a_remote_peer_cannot_take_an_id_in_use() -> None:
    kit = HubKit(federation_token=FED_TOKEN)
    local = kit.client("local")
    client = federated_hello(kit, {"peer_id": local.peer_id, "hub": "h"})
    assert "in use" in client.one("error")["reason"]


def test_the_observer_reads_announcements_but_is_never_announced() -> None:
    kit = HubKit(federation_token=FED_TOKEN)
    local = kit.client("local")
    local.send({"domain": "agm", "type": "register", "methods": [{"id": "1", "name": "M"}]})
    observer = federated_hello(kit, {"observer": True})
    observer.peer_id = observer.one("welcome")["peer_id"]
    observer.join("agm")
    seen = [m for m in observer.take() if m["domain"] == "agm"]
    assert [m["type"] for m in seen] == ["peer-added", "methods-added"]
    assert seen[0]["new_peer_id"] == local.peer_id
    assert local.take() == []  # nobody learns of the observer
    observer.close()
    assert local.take() == []


def test_a_space_is_one_nats_subject_token() -> None:
    with pytest.raises(TraitError, match="one NATS subject token"):
        InteropHub(federation_space="team.rates")
    assert InteropHub(user="ann.smith@corp").federation_space == "ann_smith_corp"


def test_a_spawner_sets_the_url_and_space_through_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """What JupyterHub's ``c.Spawner.environment`` hands a server (docs/FEDERATION.md)."""
    monkeypatch.setenv(ENV_FEDERATION_URL, "nats://alice:pw@nats:4222")
    monkeypatch.setenv(ENV_FEDERATION_SPACE, "desk-1")
    hub = InteropHub(user="alice")
    assert (hub.federation_url, hub.federation_space) == ("nats://alice:pw@nats:4222", "desk-1")
    assert InteropHub(federation_url="", federation_space="x").federation_url == ""  # config wins
    monkeypatch.setenv(ENV_FEDERATION_SPACE, "desk.1")
    with pytest.raises(TraitError, match="one NATS subject token"):
        InteropHub().federation_space  # noqa: B018 (the default is made when read)
    monkeypatch.delenv(ENV_FEDERATION_SPACE)
    monkeypatch.delenv(ENV_FEDERATION_URL)
    assert (InteropHub(user="bob").federation_space, InteropHub().federation_url) == ("bob", "")


# ------------------------------------------------------------------------------ the bus


def link_on_bus(kit: HubKit) -> Client:
    observer = federated_hello(kit, {"observer": True})
    observer.peer_id = observer.one("welcome")["peer_id"]
    observer.join("agm", "bus")
    return observer


def bus_sub(
    client: Client, topic: str, routing_key: str | None = None, link: Client | None = None
) -> str:
    """Subscribe; with a link on the bus, it says ``interest-ready`` if the hub waits for it."""
    msg: dict[str, Any] = {"domain": "bus", "type": "subscribe", "topic": topic}
    if routing_key:
        msg["routing_key"] = routing_key
    replies = client.send(msg)
    if not replies and link is not None:
        assert link.send(ready(topic)) == []
        replies = client.take("subscribed")
    (reply,) = replies
    return str(reply["subscription_id"])


def ready(topic: str) -> dict[str, Any]:
    return {"domain": "bus", "type": "interest-ready", "topic": topic}


def interest(link: Client) -> list[tuple[str, str]]:
    return [(m["type"], m["topic"]) for m in link.take() if m["type"].startswith("interest-")]


def test_the_link_learns_each_subscribed_topic_once_and_when_the_last_subscriber_goes() -> None:
    kit = HubKit(federation_token=FED_TOKEN)
    a, b = kit.client("a"), kit.client("b")
    bus_sub(a, "md.eq")
    link = link_on_bus(kit)
    assert interest(link) == [("interest-added", "md.eq")]  # what was there before it came
    first = bus_sub(a, "md.*", link=link)
    bus_sub(b, "md.*")
    assert interest(link) == [("interest-added", "md.*")]  # once, not per subscriber
    a.send({"domain": "bus", "type": "unsubscribe", "subscription_id": first})
    assert interest(link) == []
    b.close()
    assert interest(link) == [("interest-removed", "md.*")]


def test_a_subscription_new_to_the_hub_is_confirmed_once_the_link_is_ready_for_it() -> None:
    """Until the link's NATS subscription is in place, a message of another hub could not
    reach the subscriber: its confirmation waits for the link's ``interest-ready``; later
    subscribers on that topic, while it waits, wait with it."""
    kit = HubKit(federation_token=FED_TOKEN)
    a, b, c = kit.client("a"), kit.client("b"), kit.client("c")
    link = link_on_bus(kit)
    assert a.send({"domain": "bus", "type": "subscribe", "topic": "md.*"}) == []
    assert b.send({"domain": "bus", "type": "subscribe", "topic": "md.*"}) == []
    assert interest(link) == [("interest-added", "md.*")]
    assert link.send(ready("other")) == []  # no subscription waits for that one
    assert a.take("subscribed") == [] and b.take("subscribed") == []
    (refused,) = c.send(ready("md.*"))  # a peer that is not the link may not say so
    assert refused["type"] == "error" and refused["reason_uri"] == Reason.BUS_INVALID_SUBSCRIPTION
    assert a.take("subscribed") == [] and b.take("subscribed") == []
    link.send(ready("md.*"))
    assert len(a.take("subscribed")) == 1 and len(b.take("subscribed")) == 1
    # a topic the hub holds already is confirmed at once, and so is any without a link
    bus_sub(c, "md.*")
    link.close()
    bus_sub(c, "fresh")


def test_a_link_that_leaves_releases_the_confirmations_it_held() -> None:
    kit = HubKit(federation_token=FED_TOKEN)
    a = kit.client("a")
    link = link_on_bus(kit)
    assert a.send({"domain": "bus", "type": "subscribe", "topic": "md.eq"}) == []
    link.close()
    assert len(a.take("subscribed")) == 1


class StalledNats:
    """The link's NATS connection to a server that stops answering for :attr:`stall` seconds
    (a stopped nats-server) until :attr:`answers` is set, no time passing meanwhile.

    As nats-py does: a flush writes its PING ahead of the commands still queued, so the
    server is sure to hold a subscription (:attr:`held`) only after the second PONG; a flush
    whose timeout is shorter than the stall, or that is cancelled, gives up (counted in
    :attr:`abandoned`: nats-py breaks when the PONG comes after that). :meth:`reconnect`
    drops the PONGs waited for, which never come (a flush then waits until :meth:`close`),
    and makes the subscriptions again on a server that answers."""

    def __init__(self, stall: float = 60.0, answer: dict[str, Any] | None = None) -> None:
        self.stall = stall
        self.answers = asyncio.Event()
        self.subjects: list[str] = []
        #: set once a flush waits for the server
        self.flushing = asyncio.Event()
        #: written to the server; the subscriptions the server is known to have
        self.written: list[str] = []
        self.held: set[str] = set()
        self._queued: list[str] = []
        #: flushes answered, and given up on
        self.flushed = 0
        self.abandoned = 0
        #: the answer of a request (a publisher's hub accepting a subscription)
        self.answer = answer or {}
        self.connection = 0
        self.closed = asyncio.Event()
        #: subject -> the callback of its subscription
        self.callbacks: dict[str, Any] = {}

    async def subscribe(self, subject: str, cb: Any) -> str:
        self.subjects.append(subject)
        self.callbacks[subject] = cb
        self._queued.append(subject)
        return subject

    async def flush(self, timeout: float = 10.0) -> None:
        ahead = list(self.written)  # the PING goes first, then what was queued
        self.written += self._queued
        self._queued.clear()
        connection = self.connection
        self.flushing.set()
        if not self.answers.is_set() and timeout < self.stall:
            self.abandoned += 1
            raise TimeoutError("nats: flush timeout")
        try:
            await self.answers.wait()
            if connection != self.connection:  # its PONG was dropped
                await self.closed.wait()
                raise ConnectionError("nats: connection closed")
        except asyncio.CancelledError:
            self.abandoned += 1
            raise
        self.flushed += 1
        self.held.update(ahead)

    def reconnect(self) -> None:
        self.connection += 1
        self.written = list(self.subjects)
        self._queued.clear()
        self.held = set()
        self.answers.set()

    def close(self) -> None:
        self.closed.set()

    async def request(self, subject: str, payload: bytes, timeout: float) -> Any:
        return type("Msg", (), {"data": orjson.dumps(self.answer)})()


def values_over(nats: StalledNats) -> ValueTransfers:
    return ValueTransfers(
        nats=nats, space="s", hub_id="A", budget=ReassemblyBudget(1), spawn=asyncio.ensure_future
    )


@pytest.mark.asyncio
async def test_a_held_confirmation_goes_after_the_links_bound_when_nats_does_not_answer(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The hub holds a first subscription's confirmation for the link; a link whose NATS
    subscription is not confirmed in time says ``interest-ready`` anyway and logs why, and
    its NATS subscription stays made for when the server answers."""
    kit = HubKit(federation_token=FED_TOKEN)
    a = kit.client("a")
    link = link_on_bus(kit)
    nats = StalledNats()
    said = asyncio.Event()  # the link said something to the hub

    def send(message: dict[str, Any]) -> None:
        link.inbox.extend(link.send(message))
        said.set()

    bus = FederationBus(
        space="s",
        nats=nats,
        send=send,
        publish=lambda subject, payload, reply: None,
        values=values_over(nats),
        spawn=asyncio.ensure_future,
        log=logging.getLogger("test.federation_bus"),
        ready_timeout=0.05,
        reconnects=Reconnects(),
    )
    assert a.send({"domain": "bus", "type": "subscribe", "topic": "md.*"}) == []
    for message in link.take():
        bus.on_hub_message(message)
    assert a.take("subscribed") == []  # held while the link makes its subscription
    with caplog.at_level(logging.WARNING, logger="test.federation_bus"):
        await asyncio.wait_for(said.wait(), 30)
    assert len(a.take("subscribed")) == 1
    assert nats.subjects == ["ji.s.bus.md.*"]
    (record,) = caplog.records
    assert "'md.*'" in record.getMessage()
    assert "c.InteropHub.federation_bus_ready_timeout" in record.getMessage()
    # the server answers after all: the flush the bound did not cancel completes
    nats.answers.set()
    await asyncio.wait_for(asyncio.gather(*bus.subscriptions.values()), 30)
    assert (nats.flushed, nats.abandoned) == (2, 0)
    assert nats.held == {"ji.s.bus.md.*"}
    # a server that answers (and a bound no loop could miss): confirmed without a warning
    bus.ready_timeout = 30.0
    caplog.clear()
    said.clear()
    assert a.send({"domain": "bus", "type": "subscribe", "topic": "fx.*"}) == []
    for message in link.take():
        bus.on_hub_message(message)
    with caplog.at_level(logging.WARNING, logger="test.federation_bus"):
        await asyncio.wait_for(said.wait(), 30)
    assert len(a.take("subscribed")) == 1 and caplog.records == []
    bus.close()


def stream_subscription(
    nats: StalledNats, reconnects: Reconnects
) -> tuple[
    FederationStreams, list[dict[str, Any]], list[tuple[str, bool]], list[asyncio.Future[Any]]
]:
    """Hub A's side of streams over ``nats``, with a subscriber of A subscribing to a stream
    of hub B, which accepts on branch AAPL: the streams, what the subscriber is told, what
    goes to B (with whether the server held the branch then) and the tasks it spawned."""
    branch = stream_subject("s", "B", "pB-7", "AAPL")
    told: list[dict[str, Any]] = []
    sent: list[tuple[str, bool]] = []
    tasks: list[asyncio.Future[Any]] = []
    streams = FederationStreams(
        space="s",
        hub_id="A",
        nats=nats,
        observe=lambda message: None,
        publish=lambda subject, payload: sent.append((subject, branch in nats.held)),
        values=values_over(nats),
        spawn=lambda coroutine: tasks.append(asyncio.ensure_future(coroutine)),
        log=logging.getLogger("test.federation_streams"),
        reconnects=reconnects,
    )
    asks = {"subscription_id": "s1", "method_id": 1, "arguments": {"symbol": "AAPL"}}
    streams.add_interest("pB-7", "B", told.append, asks)
    return streams, told, sent, tasks


ACCEPTED = {"domain": "agm", "type": "accepted", "subscription_id": "s1", "stream_id": "AAPL"}


@pytest.mark.asyncio
async def test_a_stream_subscriber_of_another_hub_is_accepted_once_nats_holds_its_branch() -> None:
    """Across hubs, the subscriber is accepted, and the publisher's hub told ``ready``, only
    once the NATS server holds the branch's subscription; a stall of the server longer than
    nats-py's own flush timeout at that moment makes the link give up no flush."""
    nats = StalledNats(answer={"subscription": "xs1", "branch": "AAPL"})
    streams, told, sent, tasks = stream_subscription(nats, Reconnects())
    await asyncio.wait_for(nats.flushing.wait(), 30)
    assert nats.subjects == ["ji.s.stream.B.pB-7.AAPL"] and told == [] and sent == []
    nats.answers.set()
    await asyncio.wait_for(asyncio.gather(*tasks), 30)
    assert nats.abandoned == 0
    assert sent == [("ji.s.hub.B.ready", True)]
    assert told == [ACCEPTED]
    streams.close()


@pytest.mark.asyncio
async def test_a_branch_joined_while_nats_reconnects_is_ready_once_the_new_server_holds_it() -> (
    None
):
    """NATS reconnects while the link waits for the server to hold a new branch: nats-py
    drops the PONGs that wait meant to get, so the link waits again on the new connection
    (where nats-py made the subscription again) instead of until its flush timeout."""
    nats = StalledNats(answer={"subscription": "xs1", "branch": "AAPL"})
    reconnects = Reconnects()
    streams, told, sent, tasks = stream_subscription(nats, reconnects)
    await asyncio.wait_for(nats.flushing.wait(), 30)
    nats.reconnect()
    reconnects.happened()
    await asyncio.wait_for(asyncio.gather(*tasks), 30)
    assert sent == [("ji.s.hub.B.ready", True)] and told == [ACCEPTED]
    assert nats.abandoned == 0  # the first wait's flush is left to run out, not cancelled
    nats.close()
    streams.close()


@pytest.mark.asyncio
async def test_a_private_item_too_large_before_the_acceptance_ends_the_subscription_after_it() -> (
    None
):
    """Hub B accepted and offers a private item above this link's budget while the link
    waits for NATS to hold the branch: the subscriber is accepted, then told why it ended
    (the hub drops only accepted subscriptions), and B is told to let it go."""
    nats = StalledNats(answer={"subscription": "xs1", "branch": "AAPL"})
    streams, told, sent, tasks = stream_subscription(nats, Reconnects())
    await streams.start()
    await asyncio.wait_for(nats.flushing.wait(), 30)
    offer = {"value": {"hub": "B", "id": "v1", "size": 3_000_000, "chunk": 65_536}, "ref": "s1"}
    message = type("Msg", (), {"data": orjson.dumps(offer)})()
    await nats.callbacks["ji.s.hub.A.streams"](message)
    assert told == []  # not accepted here yet
    nats.answers.set()
    await asyncio.wait_for(asyncio.gather(*tasks), 30)
    accepted, dropped = told
    assert accepted == ACCEPTED
    assert dropped["type"] == "drop-subscription" and dropped["subscription_id"] == "s1"
    assert "federation_max_value_bytes" in dropped["reason"]
    assert ("ji.s.hub.B.unsubscribe", True) in sent
    assert streams.status() == {"branches": [], "subscriptions": 0, "served": 0, "held": []}
    nats.close()
    streams.close()


def test_a_local_publication_reaches_the_link_once_with_its_routing_key_and_target() -> None:
    kit = HubKit(federation_token=FED_TOKEN)
    a = kit.client("a")
    bus_sub(a, "md.*")
    bus_sub(a, "md.>")
    link = link_on_bus(kit)
    link.take()
    target = {"application": "somebody-else"}
    a.send(
        {
            "domain": "bus",
            "type": "publish",
            "topic": "md.x",
            "data": {"px": 1},
            "routing_key": "k",
            "target_identity": target,
        }
    )
    event = link.one("event")  # one, though two local subscriptions match
    assert event["topic"] == "md.x" and event["data"] == {"px": 1}
    assert event["routing_key"] == "k" and event["target_identity"] == target
    assert event["publisher-identity"]["application"] == "a"
    assert a.take("event") == []  # the target is somebody else


def test_a_message_of_another_hub_reaches_its_one_topic_in_its_publishers_name() -> None:
    kit = HubKit(federation_token=FED_TOKEN)
    a, b = kit.client("a"), kit.client("b")
    star, keyed = bus_sub(a, "md.*"), bus_sub(b, "md.*", routing_key="k2")
    bus_sub(b, "md.>")
    link = link_on_bus(kit)
    link.take()

    def from_afar(topic: str, for_topic: str, **extra: Any) -> None:
        link.send(
            {
                "domain": "bus",
                "type": "publish",
                "topic": topic,
                "data": {"n": 1},
                "publisher_identity": REMOTE_IDENTITY,
                "for_topic": for_topic,
                **extra,
            }
        )

    from_afar("md.x", "md.*", routing_key="k1")
    (event,) = a.take("event")
    assert event["subscription_id"] == star
    assert event["publisher-identity"] == REMOTE_IDENTITY
    assert b.take("event") == []  # its md.* wants k2; its md.> gets it through its own topic
    from_afar("md.x", "md.*")
    assert [e["subscription_id"] for e in b.take("event")] == [keyed]
    assert [e["subscription_id"] for e in a.take("event")] == [star]
    from_afar("md.x.y", "md.*")  # md.* does not match: nobody
    assert a.take("event") == [] and b.take("event") == []
    assert link.take("event") == []  # never echoed back to the link


# ------------------------------------------------------------------------------ streams


def stream_publisher(kit: HubKit) -> Client:
    pub = kit.client("pub", extensions={"runs": True})
    method = {"id": "1", "name": "Ticks", "flags": {"streaming": True}}
    pub.send({"domain": "agm", "type": "register", "methods": [method]})
    pub.take()
    return pub


def subscribe_on(pub: Client, subscriber: Client, branch: str, request_id: str) -> dict:
    subscriber.send(
        {
            "domain": "agm",
            "type": "subscribe",
            "request_id": request_id,
            "server_id": pub.peer_id,
            "method_id": "1",
        }
    )
    add = pub.one("add-interest")
    pub.send(
        {
            "domain": "agm",
            "type": "accepted",
            "subscription_id": add["subscription_id"],
            "stream_id": branch,
        }
    )
    return subscriber.one("subscribed")


def test_the_link_learns_its_branch_and_gets_each_item_once_per_branch() -> None:
    kit = HubKit(federation_token=FED_TOKEN)
    pub = stream_publisher(kit)
    local = kit.client("local")
    link = federated_hello(kit, {"observer": True})
    link.peer_id = link.one("welcome")["peer_id"]
    link.join("agm")
    link.take()
    first = subscribe_on(pub, link, "AAPL", "r1")
    second = subscribe_on(pub, link, "AAPL", "r2")  # for a subscriber of another hub
    other = subscribe_on(pub, link, "MSFT", "r3")
    assert (first["stream_id"], second["stream_id"], other["stream_id"]) == ("AAPL",) * 2 + (
        "MSFT",
    )
    mine = subscribe_on(pub, local, "AAPL", "r4")
    assert "stream_id" not in mine  # a local subscriber is told nothing new
    pub.send({"domain": "agm", "type": "publish", "stream_id": "AAPL", "data": {"px": 1}})
    (event,) = link.take("event")  # once for its two subscriptions on the branch
    assert event["data"] == {"px": 1}
    assert [e["subscription_id"] for e in local.take("event")] == [mine["subscription_id"]]
    items = [{"px": 2}, {"px": 3}]
    pub.send({"domain": "agm", "type": "publish-many", "stream_id": "AAPL", "items": items})
    assert [e["data"] for e in link.take("event")] == items  # once each (no runs asked)
    assert len(local.take("event")) == 2
