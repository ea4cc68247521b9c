"""The federation link's queue of NATS publications, bounded in bytes (docs/FEDERATION.md,
"A slow NATS server").

nats-py holds a bounded buffer, then blocks every publish while the NATS server is connected
but takes nothing (stalled, or slower than this hub's peers publish). The link's publications
wait here meanwhile, in order, up to ``c.InteropHub.federation_max_queue_bytes``: past it the
queue is *full* until it has drained to half its bound, and meanwhile every bus message and
stream message is dropped and counted, and calls across hubs fail at once for their caller
(``FederationLink.request``) instead of waiting behind a server that does not read. The link
logs one line when an episode starts and one when it ends, not one per message.

No I/O here: the link drains the queue into NATS and says what happens.
"""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Callable
from typing import Any, NamedTuple

from ..protocol.wire import BUS_DOMAIN

__all__ = ["BUS", "STREAMS", "LinkQueue", "Publication"]

#: the kinds of publication the queue counts apart (the bus, the streams across hubs)
BUS = BUS_DOMAIN
STREAMS = "streams"


class Publication(NamedTuple):
    subject: str
    payload: bytes
    reply: str
    kind: str

    @property
    def size(self) -> int:
        """What it weighs against the bound: its subject, payload and reply subject."""
        return len(self.subject) + len(self.payload) + len(self.reply)


class LinkQueue:
    """Publications waiting for NATS, at most ``max_bytes`` of them.

    ``on_full()`` is called when a publication is first refused, ``on_drained(dropped)``
    when the queue has drained to half its bound again, with what was dropped meanwhile by
    kind."""

    def __init__(
        self,
        max_bytes: int,
        on_full: Callable[[], None],
        on_drained: Callable[[dict[str, int]], None],
    ) -> None:
        if max_bytes <= 0:
            raise ValueError(f"federation_max_queue_bytes must be positive, not {max_bytes}")
        self.max_bytes = max_bytes
        self.bytes = 0
        #: publications refused at the bound since the link started, by kind
        self.dropped: Counter[str] = Counter()
        #: refused at the bound, and not drained to half of it since
        self.full = False
        self._episode: Counter[str] = Counter()
        self._waiting: deque[Publication] = deque()
        self._on_full = on_full
        self._on_drained = on_drained

    def __len__(self) -> int:
        return len(self._waiting)

    def put(self, publication: Publication) -> bool:
        """Queue ``publication``; False when it would take the queue past its bound, or the
        queue is full (it is dropped and counted: nothing slips in between dropped ones).
        One alone larger than the bound goes (nats-py refuses it if it is larger than a NATS
        message): a full queue that holds nothing would never drain."""
        size = publication.size
        if (self.full or self.bytes + size > self.max_bytes) and self._waiting:
            self.dropped[publication.kind] += 1
            self._episode[publication.kind] += 1
            if not self.full:
                self.full = True
                self._on_full()
            return False
        self._waiting.append(publication)
        self.bytes += size
        return True

    def take(self) -> Publication | None:
        """The next publication to send, None when none waits."""
        if not self._waiting:
            return None
        publication = self._waiting.popleft()
        self.bytes -= publication.size
        if self.full and self.bytes <= self.max_bytes // 2:
            self.full = False
            dropped, self._episode = dict(self._episode), Counter()
            self._on_drained(dropped)
        return publication

    def status(self) -> dict[str, Any]:
        """For the link's status: what waits, the bound, whether it is full, what was dropped."""
        return {
            "bytes": self.bytes,
            "messages": len(self._waiting),
            "max_bytes": self.max_bytes,
            "full": self.full,
            "dropped": {kind: self.dropped[kind] for kind in (BUS, STREAMS)},
        }
