"""The link's calls to other hubs and their replies (``server/federation_calls.py``), against
a real nats-server, with a hand-written nats-py client in the owning hub's place."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import orjson
import pytest
import pytest_asyncio
from nats import connect as nats_connect
from test_federation import Nats
from test_federation import nats as nats  # the fixture

from jupyter_interop.protocol.chunks import ReassemblyBudget
from jupyter_interop.server.federation_calls import CallReplies
from jupyter_interop.server.federation_values import ValueTransfers

SUBJECT = "ji.s.hub.b.invoke"
TIMEOUT = 30.0


class Link:
    """A link's ``CallReplies`` on its own NATS connection, and the answers it got."""

    def __init__(self, connection: Any) -> None:
        self.connection = connection
        self.tasks: set[asyncio.Task[None]] = set()
        budget = ReassemblyBudget(10_000_000)
        self.values = ValueTransfers(
            nats=connection, space="s", hub_id="a", budget=budget, spawn=self.spawn
        )
        self.replies = CallReplies(connection, self.values, self.spawn, TIMEOUT)
        self.waiting: set[str] = set()
        self.answers: asyncio.Queue[tuple[str, dict[str, Any]]] = asyncio.Queue()

    def spawn(self, coroutine: Any) -> None:
        task = asyncio.ensure_future(coroutine)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    def answer(self, name: str) -> Callable[[dict[str, Any]], Any]:
        async def answer(reply: dict[str, Any]) -> None:
            await self.answers.put((name, reply))

        return answer

    async def call(self, name: str, request: dict[str, Any]) -> None:
        await self.replies.call("b", SUBJECT, request, self.answer(name), self.waiting)

    async def next(self) -> tuple[str, dict[str, Any]]:
        return await asyncio.wait_for(self.answers.get(), TIMEOUT)


@pytest_asyncio.fixture
async def link(nats: Nats) -> AsyncIterator[Link]:
    connection = await nats_connect(nats.url)
    link = Link(connection)
    await link.values.start()
    await link.replies.start()
    try:
        yield link
    finally:
        for task in link.tasks:
            task.cancel()
        link.values.close()
        await connection.close()


async def owner(nats: Nats) -> tuple[Any, asyncio.Queue[Any]]:
    """The owning hub's side: a connection whose calls wait in a queue until answered."""
    connection = await nats_connect(nats.url)
    received: asyncio.Queue[Any] = asyncio.Queue()
    await connection.subscribe(SUBJECT, cb=received.put)
    await connection.flush()
    return connection, received


@pytest.mark.asyncio
async def test_each_reply_reaches_its_own_call(nats: Nats, link: Link) -> None:
    """Replies answered in the reverse order of the calls reach the call they answer."""
    connection, received = await owner(nats)
    try:
        for n in range(3):
            await link.call(f"call-{n}", {"n": n})
        calls = [await asyncio.wait_for(received.get(), TIMEOUT) for _ in range(3)]
        assert len(link.waiting) == 3
        for msg in reversed(calls):
            n = orjson.loads(msg.data)["n"]
            await msg.respond(orjson.dumps({"result": {"n": n}}))
        answers = dict([await link.next() for _ in range(3)])
        assert answers == {f"call-{n}": {"result": {"n": n}} for n in range(3)}
        assert link.waiting == set()
    finally:
        await connection.close()


@pytest.mark.asyncio
async def test_a_large_reply_is_pulled_in_chunks(nats: Nats, link: Link) -> None:
    """A reply above one NATS message is offered by the owning hub and pulled by the link."""
    connection, received = await owner(nats)
    owner_values = ValueTransfers(
        nats=connection,
        space="s",
        hub_id="b",
        budget=ReassemblyBudget(10_000_000),
        spawn=link.spawn,
    )
    await owner_values.start()
    try:
        await link.call("big", {"n": 0})
        msg = await asyncio.wait_for(received.get(), TIMEOUT)
        big = "0123456789" * 300_000  # 3 MB: several NATS messages
        await msg.respond(owner_values.pack({"result": {"big": big}}))
        name, reply = await link.next()
        assert name == "big"
        assert reply == {"result": {"big": big}}
    finally:
        owner_values.close()
        await connection.close()


@pytest.mark.asyncio
async def test_a_call_nobody_serves_fails_at_once(link: Link) -> None:
    await link.call("lost", {"n": 0})
    name, reply = await link.next()
    assert name == "lost"
    assert "The call to hub b failed: nobody serves its calls" in reply["error"]["reason"]
    assert link.waiting == set()


@pytest.mark.asyncio
async def test_a_call_without_reply_fails_at_its_deadline(nats: Nats, link: Link) -> None:
    """The owning hub took the call and never answers: the sweep fails it once it is due,
    not before."""
    connection, received = await owner(nats)
    try:
        await link.call("silent", {"n": 0})
        await asyncio.wait_for(received.get(), TIMEOUT)
        await link.replies.expire(time.monotonic())
        assert link.waiting != set() and link.answers.empty()
        await link.replies.expire(time.monotonic() + TIMEOUT + 1)
        name, reply = await link.next()
        assert name == "silent"
        assert reply["error"]["reason"] == "The call to hub b failed: no reply in 30 s"
        assert link.waiting == set()
    finally:
        await connection.close()


@pytest.mark.asyncio
async def test_a_reply_after_its_caller_left_is_dropped(nats: Nats, link: Link) -> None:
    """The caller's calls are forgotten when it leaves: a late reply goes nowhere, and the
    calls after it are answered as usual."""
    connection, received = await owner(nats)
    try:
        await link.call("left", {"n": 0})
        late = await asyncio.wait_for(received.get(), TIMEOUT)
        link.replies.forget(link.waiting)
        link.waiting.clear()
        await link.call("next", {"n": 1})
        following = await asyncio.wait_for(received.get(), TIMEOUT)
        await late.respond(orjson.dumps({"result": 0}))  # (NATS keeps one sender's order)
        await following.respond(orjson.dumps({"result": 1}))
        assert await link.next() == ("next", {"result": 1})
        assert link.answers.empty()
    finally:
        await connection.close()
