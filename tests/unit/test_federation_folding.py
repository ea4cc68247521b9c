"""The publishers' side of streams across hubs (server/federation_streams.py) without
sockets: a NATS stand-in records subscriptions and publications, the observer's messages
are a list. Items of a branch that arrive in one turn of the loop cross as one NATS
message, capped in bytes; an item with a sequence goes alone, after those before it; a
branch's items wait for a hub that joins it until that hub is ready. Items with binary
values cross as binary frames (a run as one), a large one as an offer in its place, and one
above the link's budget ends the branch's subscriptions of other hubs, saying why; an offer
for two hubs is kept until both have it, one for hubs it does not know until NATS says
nobody received it."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any

import orjson

from jupyter_interop.protocol.chunks import ReassemblyBudget
from jupyter_interop.protocol.frames import MAGIC, TAG, Attachment
from jupyter_interop.protocol.limits import FEDERATION_FOLD_MAX_BYTES
from jupyter_interop.server.attachments import decode_frame
from jupyter_interop.server.federation_nats import Reconnects
from jupyter_interop.server.federation_streams import FederationStreams, stream_subject
from jupyter_interop.server.federation_values import ValueTransfers


@dataclass
class Msg:
    data: bytes
    reply: str = ""
    subject: str = ""
    headers: dict[str, str] | None = None


class Nats:
    #: a NATS server's largest message (small, so that a few KB is a large value here)
    max_payload = 4096 + 8192

    def __init__(self) -> None:
        self.callbacks: dict[str, Any] = {}

    async def subscribe(self, subject: str, cb: Any) -> None:
        self.callbacks[subject] = cb

    def new_inbox(self) -> str:
        return "_INBOX.B"


async def next_turn() -> None:
    """Once the callbacks scheduled so far have run."""
    done = asyncio.get_running_loop().create_future()
    asyncio.get_running_loop().call_soon(done.set_result, None)
    await done


def decoded(payload: bytes) -> Any:
    """A NATS payload as the receiving hub reads it (binary values as Attachments)."""
    return decode_frame(payload) if payload[:4] == MAGIC else orjson.loads(payload)


def blob(size: int) -> Attachment:
    """Raw bytes as they reach the link from its hub (an attachment of a binary frame)."""
    return Attachment({TAG: "bytes"}, [memoryview(bytes(range(256)) * (size // 256))])


async def serving(
    ready: bool = True, budget: int = 1 << 20
) -> tuple[FederationStreams, list[tuple[str, Any]], str, Nats]:
    """Hub B's side with one subscription of hub A accepted on branch AAPL of peer P (and
    hub A ready for its items, with ``ready``); its link holds ``budget`` bytes of values."""
    nats = Nats()
    published: list[tuple[str, Any]] = []
    observed: list[dict[str, Any]] = []
    values = ValueTransfers(
        nats=nats,
        space="s",
        hub_id="B",
        budget=ReassemblyBudget(budget),
        spawn=asyncio.ensure_future,
    )
    streams = FederationStreams(
        space="s",
        hub_id="B",
        nats=nats,
        observe=observed.append,
        publish=lambda subject, payload: published.append((subject, decoded(payload))),
        values=values,
        spawn=asyncio.ensure_future,
        log=logging.getLogger("test"),
        reconnects=Reconnects(),
    )
    await streams.start()
    request = {"hub": "A", "ref": "s1", "peer_id": "P", "method_id": "1"}
    await nats.callbacks["ji.s.hub.B.subscribe"](Msg(orjson.dumps(request), reply="_INBOX.1"))
    (subscribe,) = observed
    assert subscribe["type"] == "subscribe" and subscribe["server_id"] == "P"
    streams.on_hub_message(
        {
            "domain": "agm",
            "type": "subscribed",
            "request_id": subscribe["request_id"],
            "subscription_id": "sB1",
            "stream_id": "AAPL",
        }
    )
    assert published.pop() == ("_INBOX.1", {"subscription": "sB1", "branch": "AAPL"})
    subject = stream_subject("s", "B", "P", "AAPL")
    assert streams.status() == {"branches": [], "subscriptions": 0, "served": 1, "held": [subject]}
    if ready:
        await nats.callbacks["ji.s.hub.B.ready"](Msg(orjson.dumps({"subscription": "sB1"})))
        assert streams.status()["held"] == []
    return streams, published, subject, nats


def event(data: Any, **extra: Any) -> dict[str, Any]:
    return {"domain": "agm", "type": "event", "subscription_id": "sB1", "data": data, **extra}


def test_items_of_one_turn_cross_as_one_message_and_a_sequenced_item_alone() -> None:
    async def scenario() -> None:
        streams, published, subject, _ = await serving()
        streams.on_hub_message(event(1))
        streams.on_hub_message(event(2))
        streams.on_hub_message(
            {"domain": "agm", "type": "event-many", "subscription_id": "sB1", "items": [3, 4]}
        )
        assert published == []  # until the end of this turn
        await next_turn()
        assert published == [(subject, {"items": [1, 2, 3, 4]})]
        streams.on_hub_message(event(5))
        await next_turn()
        assert published[-1] == (subject, {"data": 5})  # one item: not a run
        streams.on_hub_message(event(6))
        streams.on_hub_message(event(7, sequence=7))
        assert published[-2:] == [
            (subject, {"data": 6}),
            (subject, {"data": 7, "sequence": 7, "snapshot": False}),
        ]

    asyncio.run(scenario())


def test_a_fold_is_capped_in_bytes() -> None:
    async def scenario() -> None:
        streams, published, subject, _ = await serving()
        assert subject.endswith(".AAPL")
        big = "x" * (FEDERATION_FOLD_MAX_BYTES // 3)
        for _ in range(5):
            streams.on_hub_message(event(big))
        await next_turn()
        counts = [len(p["items"]) if "items" in p else 1 for _, p in published]
        assert counts == [2, 2, 1]  # three would pass the cap
        assert all(len(orjson.dumps(p)) <= FEDERATION_FOLD_MAX_BYTES + 64 for _, p in published)

    asyncio.run(scenario())


def test_a_branchs_items_wait_until_the_joining_hub_is_ready() -> None:
    async def scenario() -> None:
        streams, published, subject, nats = await serving(ready=False)
        streams.on_hub_message(event(1))
        await next_turn()
        streams.on_hub_message(event(2, sequence=2))
        assert published == []  # hub A has no NATS subscription for the branch yet
        await nats.callbacks["ji.s.hub.B.ready"](Msg(orjson.dumps({"subscription": "sB1"})))
        assert published == [
            (subject, {"data": 1}),
            (subject, {"data": 2, "sequence": 2, "snapshot": False}),
        ]
        streams.on_hub_message(event(3))
        await next_turn()
        assert published[-1] == (subject, {"data": 3})  # and from then on at once

    asyncio.run(scenario())


def test_a_branch_held_back_for_a_hub_goes_once_nats_reconnected() -> None:
    """The joining hub's ``ready`` may have been lost with the connection: after the link
    reconnected, the branch no longer waits for it."""

    async def scenario() -> None:
        streams, published, subject, nats = await serving(ready=False)
        streams.on_hub_message(event(1))
        await next_turn()
        assert published == []
        streams.reconnected()
        assert published == [(subject, {"data": 1})] and streams.status()["held"] == []
        streams.on_hub_message(event(2))
        await next_turn()
        assert published[-1] == (subject, {"data": 2})  # and from then on at once
        await nats.callbacks["ji.s.hub.B.ready"](Msg(orjson.dumps({"subscription": "sB1"})))
        assert len(published) == 2  # (the ready after all changes nothing)

    asyncio.run(scenario())


def test_items_with_binary_values_cross_as_one_binary_frame_in_their_run() -> None:
    async def scenario() -> None:
        streams, published, subject, _ = await serving()
        streams.on_hub_message(event(1))
        streams.on_hub_message(event({"raw": blob(512)}))
        streams.on_hub_message(event(3))
        await next_turn()
        ((to, run),) = published
        assert to == subject
        first, middle, last = run["items"]
        assert (first, last) == (1, 3)
        assert bytes(middle["raw"].buffers[0]) == bytes(range(256)) * 2

    asyncio.run(scenario())


def test_a_large_item_is_offered_in_its_place_among_the_small_ones() -> None:
    async def scenario() -> None:
        streams, published, subject, _ = await serving()
        streams.on_hub_message(event(1))
        # above this NATS's max_payload, and above a fold: it goes alone
        streams.on_hub_message(event(blob(FEDERATION_FOLD_MAX_BYTES + 1024)))
        streams.on_hub_message(event(3))
        await next_turn()
        assert [to for to, _ in published] == [subject] * 3
        first, offer, last = (payload for _, payload in published)
        assert (first, last) == ({"data": 1}, {"data": 3})
        (value,) = offer.values()
        assert value["hub"] == "B" and value["size"] > FEDERATION_FOLD_MAX_BYTES

    asyncio.run(scenario())


def test_an_item_above_the_budget_ends_the_branchs_subscriptions_of_other_hubs() -> None:
    async def scenario() -> None:
        streams, published, _, _ = await serving(budget=32 * 1024)
        streams.on_hub_message(event(blob(64 * 1024)))
        await next_turn()
        ((to, closing),) = published  # nothing on the branch: hub A is told why
        assert to == "ji.s.hub.A.streams" and closing["ref"] == "s1"
        assert "federation_max_value_bytes" in closing["closed"]["reason"]
        assert streams.status()["served"] == 0
        streams.on_hub_message(event(2))  # the publisher's later items: nobody of A left
        await next_turn()
        assert len(published) == 1

    asyncio.run(scenario())


def test_nothing_pushed_after_an_item_above_the_budget_crosses_in_the_same_turn() -> None:
    """The item after the one that ends hub A's subscription, folded in the same turn,
    stays here: A reads the branch apart from the end, and would give it to its subscriber
    after the gap."""

    async def scenario() -> None:
        streams, published, subject, _ = await serving(budget=32 * 1024)
        streams.on_hub_message(event(1))
        streams.on_hub_message(event(blob(FEDERATION_FOLD_MAX_BYTES + 1024)))  # alone
        streams.on_hub_message(event(3))  # folded once the large one is sent
        await next_turn()
        first, (to, closing) = published
        assert first == (subject, {"data": 1})
        assert to == "ji.s.hub.A.streams" and closing["ref"] == "s1"
        assert "federation_max_value_bytes" in closing["closed"]["reason"]

    asyncio.run(scenario())


def test_an_offer_for_two_hubs_is_kept_until_both_have_it() -> None:
    async def scenario() -> None:
        nats = Nats()
        budget = ReassemblyBudget(1 << 20)
        values = ValueTransfers(
            nats=nats, space="s", hub_id="B", budget=budget, spawn=asyncio.ensure_future
        )
        await values.start()
        serve = nats.callbacks["ji.s.hub.B.value.*"]  # one subscription serves every offer
        offer = orjson.loads(values.pack({"data": blob(64 * 1024)}, receivers=2))["value"]
        assert budget.held == offer["size"] > 64 * 1024
        subject = f"ji.s.hub.B.value.{offer['id']}"
        await serve(Msg(b"done", subject=subject))
        assert budget.held == offer["size"]  # the other hub has yet to pull it
        await serve(Msg(b"done", subject=subject))
        assert budget.held == 0

        # for receivers it does not know: until NATS says nobody received it
        payload, reply = values.pack_for_anyone({"data": blob(64 * 1024)})
        assert "value" in orjson.loads(payload) and reply.startswith("_INBOX.B.")
        assert budget.held > 0
        await nats.callbacks["_INBOX.B.*"](Msg(b"", subject=reply, headers={"Status": "503"}))
        assert budget.held == 0 and values.status() == {"held": 0, "offers": 0}
        values.close()

    asyncio.run(scenario())
