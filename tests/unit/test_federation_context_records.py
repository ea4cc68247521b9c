"""The pure parts of federated contexts (docs/FEDERATION.md, "Contexts and channels"): the
bucket key of any context name, and an update re-applied after losing a compare-and-set."""

from __future__ import annotations

import asyncio
import re

import orjson
import pytest

from jupyter_interop.server.federation_contexts import (
    ContextGone,
    KeyedQueue,
    bucket_name,
    context_key,
    context_name,
    decode_record,
    rebase,
    tombstone,
)

#: what NATS accepts in a key
NATS_KEY = re.compile(r"^[-/_=.a-zA-Z0-9]+$")

NAMES = [
    "prices",
    "___channel___Red",
    "a.b.c",
    "with space/and slash",
    "*>",
    "ünïcödé ✓ 価格",
    "x" * 300,
    "=",
    ".",
]


@pytest.mark.parametrize("name", NAMES)
def test_every_name_has_a_valid_key_that_gives_the_name_back(name: str) -> None:
    key = context_key(name)
    assert NATS_KEY.match(key), key
    assert not key.startswith(".") and not key.endswith(".")
    assert context_name(key) == name


def test_different_names_never_share_a_key() -> None:
    assert len({context_key(name) for name in NAMES}) == len(NAMES)


def test_a_key_that_is_not_a_name_is_refused() -> None:
    with pytest.raises(ValueError, match="not a context key"):
        context_name("//8")  # bytes that are not UTF-8
    with pytest.raises(ValueError):
        context_key("")


def test_the_bucket_is_named_after_the_space() -> None:
    assert bucket_name("desk-1") == "ji-desk-1-contexts"


def record(data: dict, name: str = "book") -> dict:
    return {"name": name, "data": data, "delta": None, "prev": None, "updater": None, "hub": "h"}


def test_an_update_that_lost_the_race_is_reapplied_on_the_winner() -> None:
    """Hubs A and B both read revision 5; A writes revision 6 first; B's compare-and-set
    on 5 fails, B re-reads 6 and re-applies its delta on it: both changes are kept, and the
    same-key change of the later writer wins."""
    base = record({"px": 1, "qty": 10})
    delta_a = {"commands": [{"type": "set", "path": "px", "value": 2}]}
    delta_b = {"updated": {"qty": 20, "px": 3}}
    won = rebase(base, 5, delta_a, updater="pA-1", hub="A", ticket="tA-1")
    assert won["data"] == {"px": 2, "qty": 10} and won["prev"] == 5
    again = rebase(won, 6, delta_b, updater="pB-1", hub="B", ticket="tB-1")
    assert again["data"] == {"px": 3, "qty": 20}
    assert again["prev"] == 6 and again["delta"] == delta_b
    assert (again["updater"], again["hub"], again["ticket"]) == ("pB-1", "B", "tB-1")
    assert base["data"] == {"px": 1, "qty": 10}  # what was read is left as it was
    assert won["data"] == {"px": 2, "qty": 10}


def test_an_update_of_a_destroyed_context_is_refused() -> None:
    gone = tombstone("book", updater="pB-1", hub="B", ticket="tB-2")
    for current in (None, gone):
        with pytest.raises(ContextGone, match="destroyed"):
            rebase(current, 7, {"added": {"x": 1}}, updater=None, hub="A", ticket=None)


def test_a_reapplied_update_that_breaks_the_channel_rule_is_refused() -> None:
    channel = record({"name": "Red", "meta": {"color": "red"}, "data": {}}, "___channel___Red")
    with pytest.raises(ValueError, match="Channel context"):
        rebase(channel, 3, {"updated": {"meta": 5}}, updater=None, hub="A", ticket=None)


def test_a_record_is_checked_when_read() -> None:
    good = record({"x": 1})
    assert decode_record(orjson.dumps(good), "book") == good
    with pytest.raises(ValueError):
        decode_record(orjson.dumps(good), "other")
    with pytest.raises(ValueError):
        decode_record(orjson.dumps({**good, "data": [1]}), "book")
    with pytest.raises(ValueError):
        decode_record(b"not json", "book")
    gone = tombstone("book", updater=None, hub="A", ticket="tA-1")
    assert decode_record(orjson.dumps(gone), "book") == gone  # a tombstone has no data


def test_one_keys_items_run_one_at_a_time_in_order_even_when_one_comes_as_another_ends() -> None:
    """The link writes one context's publications in the order its hub sent them (a
    creation before its updates, an update before the destruction after it). Item 3 comes
    in the loop turn where item 1 ends, before item 2 started: it still waits for item 2."""

    async def scenario() -> list[tuple[str, int]]:
        log: list[tuple[str, int]] = []
        started = {n: asyncio.Event() for n in (1, 2, 3, 4)}
        gates = {n: asyncio.Event() for n in (1, 2, 3, 4)}
        done = asyncio.Event()

        async def handle(key: str, item: dict) -> None:
            n = item["n"]
            log.append(("start", n))
            started[n].set()
            await gates[n].wait()
            log.append(("end", n))
            if len(log) == 8:
                done.set()
            if n == 1:
                asyncio.get_running_loop().call_soon(queue.put, "k", {"n": 3})

        queue = KeyedQueue(handle)
        queue.put("k", {"n": 1})
        queue.put("k", {"n": 2})
        queue.put("other", {"n": 4})  # another key runs alongside
        await started[1].wait()
        await started[4].wait()
        gates[1].set()
        await started[2].wait()
        gates[3].set()  # item 3 may finish at once if it starts: it must not start yet
        gates[2].set()
        await started[3].wait()
        gates[4].set()
        await asyncio.wait_for(done.wait(), 30)
        return log

    log = asyncio.run(scenario())
    k = [entry for entry in log if entry[1] != 4]
    assert k == [("start", 1), ("end", 1), ("start", 2), ("end", 2), ("start", 3), ("end", 3)]
