"""The federation link's bounded queue of NATS publications (server/federation_queue.py):
what it holds, what it drops and counts at its bound, and when an episode starts and ends,
without sockets."""

from __future__ import annotations

import pytest

from jupyter_interop.server.federation_queue import BUS, STREAMS, LinkQueue, Publication


class Episodes:
    """Records the queue's calls: "full", then the drops of each episode as it ends."""

    def __init__(self) -> None:
        self.said: list[object] = []

    def full(self) -> None:
        self.said.append("full")

    def drained(self, dropped: dict[str, int]) -> None:
        self.said.append(dropped)


def publication(size: int, kind: str = BUS) -> Publication:
    """A publication weighing ``size`` bytes (its subject is 4 of them)."""
    return Publication("ji.x", b"x" * (size - 4), "", kind)


def queue(max_bytes: int) -> tuple[LinkQueue, Episodes]:
    episodes = Episodes()
    return LinkQueue(max_bytes, episodes.full, episodes.drained), episodes


def test_publications_go_in_order_and_weigh_subject_payload_and_reply() -> None:
    q, episodes = queue(1000)
    first, second = Publication("ji.a", b"12", "inbox", BUS), Publication("ji.b", b"3", "", STREAMS)
    assert q.put(first) and q.put(second)
    assert (q.bytes, len(q)) == (4 + 2 + 5 + 4 + 1, 2)
    assert q.take() == first
    assert q.take() == second
    assert q.take() is None
    assert q.bytes == 0
    assert episodes.said == []


def test_past_the_bound_publications_are_dropped_and_counted_with_one_episode() -> None:
    q, episodes = queue(100)
    assert all(q.put(publication(25)) for _ in range(4))  # exactly at the bound
    assert not q.put(publication(1))
    assert not q.put(publication(30, STREAMS))
    assert not q.put(publication(30))
    assert q.bytes == 100 and q.full
    assert episodes.said == ["full"]  # once, not per message
    assert q.status() == {
        "bytes": 100,
        "messages": 4,
        "max_bytes": 100,
        "full": True,
        "dropped": {BUS: 2, STREAMS: 1},
    }


def test_a_full_queue_takes_again_once_drained_to_half_its_bound() -> None:
    q, episodes = queue(100)
    for _ in range(4):
        q.put(publication(25))
    q.put(publication(10))  # dropped: the episode starts
    q.take()  # 75 bytes wait: still full, though room is back
    assert q.full
    assert not q.put(publication(1, STREAMS))  # dropped all the same, until half the bound
    q.take()  # 50: half the bound, the episode ends with its drops
    assert not q.full
    assert episodes.said == ["full", {BUS: 1, STREAMS: 1}]
    assert q.put(publication(20))
    assert q.put(publication(20))
    assert not q.put(publication(20))  # 90 + 20: a new episode
    assert episodes.said == ["full", {BUS: 1, STREAMS: 1}, "full"]
    while q.take() is not None:
        pass
    assert episodes.said == ["full", {BUS: 1, STREAMS: 1}, "full", {BUS: 1}]
    assert q.status()["dropped"] == {BUS: 2, STREAMS: 1}  # since the start


def test_one_publication_larger_than_the_bound_goes_when_nothing_waits() -> None:
    """Else a queue full of nothing would never drain, and refuse everything for ever."""
    q, episodes = queue(100)
    assert q.put(publication(150))
    assert not q.put(publication(10))
    assert q.take() is not None
    assert not q.full
    assert episodes.said == ["full", {BUS: 1}]


def test_a_bound_that_is_not_positive_is_refused() -> None:
    with pytest.raises(ValueError, match="federation_max_queue_bytes must be positive"):
        queue(0)
