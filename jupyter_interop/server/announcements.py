"""The announcements of a join storm, kept once and written to each peer in one join.

Every agm peer learns of every other peer's join, registrations and departure, so N peers
joining mean about N² copies (docs/RELIABILITY.md, join storms). The hub core returns each
announcement once (``protocol/addressed.py``); the gateway appends it to one
:class:`AnnouncementLog`, and each reader's outbox keeps only where it is in the log
(``server/outbox.py``). When a peer's queue is written, what it has not read yet is one
:class:`Rendered` run: the frames of all its copies made by one ``bytes.join`` over the
templates' encoded parts with its ``peer_id`` between them (WebSocket frame headers included
for a peer without ``batch``), so the Python work of a storm grows with the number of
announcements and writes, not with announcements times recipients.

A peer that joins and leaves before any of its announcements reached another peer (within
one announce window, typically) is never announced: its ``peer-removed`` drops every
announcement about it from the log instead of being appended (:meth:`AnnouncementLog.append`).
The log knows which peers are still unknown to everyone: an announcement stops being
droppable once a reader's queue takes it (:meth:`AnnouncementLog.runs`), once the gateway
writes the readers (:meth:`AnnouncementLog.seal`), and once a newcomer's first queue (the
peers already there) was made after it.
"""

from __future__ import annotations

import struct
import time
from bisect import bisect_left, bisect_right
from collections.abc import Callable
from itertools import accumulate, repeat
from operator import attrgetter
from typing import Any

from ..protocol.addressed import Template
from ..protocol.limits import HUB_BATCH_MAX_BYTES
from ..protocol.malloc import LARGE_FRAME, tune_for_large_frames
from ..protocol.wire import METHODS_REMOVED_TYPE, PEER_ADDED_TYPE, PEER_REMOVED_TYPE

__all__ = [
    "PEERS_PER_ANNOUNCE_DELAY",
    "AnnouncementLog",
    "Rendered",
    "frame_header",
    "held_delay",
]

#: readers of announcements per ``announce_delay`` their writes are held (``GatewayService``):
#: a hold ends in one write per reader, so in a large hub the hold grows with the readers
#: (up to ``announce_delay_max``) and the writes per second of a storm stay bounded
PEERS_PER_ANNOUNCE_DELAY = 100


def held_delay(readers: int, announce_delay: float, announce_delay_max: float) -> float:
    """How long announcement writes wait with ``readers`` readers: ``announce_delay``, and
    one ``announce_delay`` per ``PEERS_PER_ANNOUNCE_DELAY`` readers above that many, at most
    ``announce_delay_max`` (never below ``announce_delay``)."""
    if readers <= PEERS_PER_ANNOUNCE_DELAY:
        return announce_delay
    scaled = announce_delay * readers / PEERS_PER_ANNOUNCE_DELAY
    return max(announce_delay, min(scaled, announce_delay_max))


#: agm messages written separately from (after) what precedes them (see server/outbox.py)
REMOVAL_TYPES = frozenset({METHODS_REMOVED_TYPE, PEER_REMOVED_TYPE})


def frame_header(length: int, opcode: int = 0x81) -> bytes:
    """RFC 6455 header of one unmasked, unfragmented text frame (server to client); binary
    frames (attachments) pass ``opcode=0x82``."""
    if length < 126:
        return bytes((opcode, length))
    if length < 0x10000:
        return struct.pack("!BBH", opcode, 126, length)
    return struct.pack("!BBQ", opcode, 127, length)


class AnnouncementLog:
    """The announcements of one gateway, in the hub's order, from position :attr:`base` on.

    Positions only grow; the gateway drops what every reader has passed (:meth:`trim`).
    Each position also records whether it is a removal (``methods-removed``,
    ``peer-removed``: written apart from what precedes them) and when it was appended (the
    stall rule judges a queue by its oldest message). The encoded parts are kept in lists
    of their own, so that a reader's run is list slices (copied in C).
    """

    __slots__ = (
        "_changes",
        "_clock",
        "_framed",
        "_removals",
        "_sizes",
        "_subjects",
        "_unsent",
        "base",
        "end",
        "heads",
        "tails",
        "times",
    )

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        #: position of the first entry kept
        self.base = 0
        #: the position after the last announcement (an attribute, not computed: every
        #: push and every soft-limit check of a reader's outbox compares it)
        self.end = 0
        #: each announcement's encoding before the recipient's ``peer_id``, and after it
        self.heads: list[bytes] = []
        self.tails: list[bytes] = []
        #: the heads behind their WebSocket frame header, by the length of the peer id
        #: (filled up to the end when a reader of that length is written)
        self._framed: dict[int, list[bytes]] = {}
        #: bytes of the entries before each kept one (without the readers' peer ids)
        self._sizes: list[int] = [0]
        self.times: list[float] = []
        #: positions where removal and other kinds alternate (the first one: a removal)
        self._changes: list[int] = []
        #: each entry's peer (``Template.subject``) and whether it is a removal
        self._subjects: list[str | None] = []
        self._removals: list[bool] = []
        #: peers whose ``peer-added`` is here and that no other peer knows of yet: its position
        self._unsent: dict[str, int] = {}

    def append(self, template: Template) -> bool:
        """Append one announcement. False when nobody needs it: the ``peer-removed`` of a
        peer whose ``peer-added`` no other peer got yet drops every announcement about that
        peer from the log instead (it joined and left unseen)."""
        mtype = template.fields["type"]
        subject = template.subject
        if subject is not None and mtype == PEER_REMOVED_TYPE:
            position = self._unsent.pop(subject, None)
            if position is not None and position >= self.base:
                self._forget(subject, position)
                return False
        self._push(
            template.head,
            template.tail,
            template.size,
            mtype in REMOVAL_TYPES,
            subject,
            self._clock(),
        )
        if subject is not None and mtype == PEER_ADDED_TYPE:
            self._unsent[subject] = self.end - 1
        return True

    def _push(
        self, head: bytes, tail: bytes, size: int, removal: bool, subject: str | None, at: float
    ) -> None:
        position = self.end
        changes = self._changes
        if removal != (len(changes) % 2 == 1):  # the kind changes here
            changes.append(position)
        self.heads.append(head)
        self.tails.append(tail)
        self._sizes.append(self._sizes[-1] + size)
        self.times.append(at)
        self._subjects.append(subject)
        self._removals.append(removal)
        self.end = position + 1

    def seal(self, start: int = 0, keep: str | None = None) -> None:
        """The peers announced from ``start`` on are known to some peer now (a reader took
        its copies, or the readers are being written; with ``keep``: a newcomer learnt of
        every peer but itself): their announcements can no longer be dropped."""
        unsent = self._unsent
        if unsent:
            self._unsent = {k: p for k, p in unsent.items() if p < start or k == keep}

    def _forget(self, subject: str, position: int) -> None:
        """Drop every announcement about ``subject`` from ``position`` (its ``peer-added``)
        on. No reader has read that far (see :meth:`seal`): what comes before stays."""
        low = position - self.base
        heads, tails, sizes, times = self.heads, self.tails, self._sizes, self.times
        subjects, removals = self._subjects, self._removals
        base = self.base
        kept = [i for i in range(low, len(heads)) if subjects[i] != subject]
        entries = [
            (heads[i], tails[i], sizes[i + 1] - sizes[i], removals[i], subjects[i], times[i])
            for i in kept
        ]
        lists: list[list[Any]] = [heads, tails, times, subjects, removals]
        for items in (*lists, *self._framed.values()):
            del items[low:]
        del sizes[low + 1 :]
        del self._changes[bisect_left(self._changes, position) :]
        self.end = position
        for entry in entries:
            self._push(*entry)
        # the other peers announced after it move down with their entries
        moved = {base + i: position + n for n, i in enumerate(kept)}
        unsent = self._unsent
        for other, at in unsent.items():
            if at > position:
                unsent[other] = moved[at]

    def count_bytes(self, start: int, id_length: int) -> int:
        """Bytes of a reader's copies from ``start`` to the end (its ``peer_id`` included)."""
        base = self.base
        return self._sizes[-1] - self._sizes[start - base] + (self.end - start) * id_length

    def time_at(self, position: int) -> float:
        return self.times[position - self.base]

    def runs(
        self, start: int, end: int, peer_id_json: bytes, framed: bool
    ) -> list[tuple[Rendered, bool]]:
        """A reader's copies from ``start`` to ``end`` in runs of one kind: (run, removal).
        ``framed``: the reader takes each message in its own WebSocket frame. The peers
        announced there are known to that reader from now on (see :meth:`seal`)."""
        self.seal(start)
        changes = self._changes
        index = bisect_right(changes, start)
        removal = index % 2 == 1
        base = self.base
        id_length = len(peer_id_json)
        sizes = self._sizes
        all_framed = self._framed_heads(id_length) if framed else None
        out: list[tuple[Rendered, bool]] = []
        position = start
        while position < end:
            stop = changes[index] if index < len(changes) else end
            stop = min(stop, end)
            low, high = position - base, stop - base
            nbytes = sizes[high] - sizes[low] + (high - low) * id_length
            heads = all_framed[low:high] if all_framed is not None else self.heads[low:high]
            run = Rendered(heads, self.tails[low:high], peer_id_json, nbytes, framed)
            out.append((run, removal))
            position = stop
            index += 1
            removal = not removal
        return out

    def _framed_heads(self, id_length: int) -> list[bytes]:
        framed = self._framed.get(id_length)
        if framed is None:
            framed = self._framed[id_length] = []
        done = len(framed)
        if done < len(self.heads):
            heads, sizes = self.heads, self._sizes
            framed.extend(
                [
                    frame_header(sizes[i + 1] - sizes[i] + id_length) + heads[i]
                    for i in range(done, len(heads))
                ]
            )
        return framed

    def trim(self, low: int) -> None:
        """Forget the entries before ``low`` (no reader needs them any more)."""
        drop = min(low, self.end) - self.base
        if drop <= 0:
            return
        del self.heads[:drop]
        del self.tails[:drop]
        del self._sizes[:drop]
        del self.times[:drop]
        del self._subjects[:drop]
        del self._removals[:drop]
        for framed in self._framed.values():
            del framed[:drop]
        self.base += drop
        # keep the alternation: an even number of change points dropped keeps parity
        changes = self._changes
        passed = bisect_right(changes, self.base)
        if passed:
            keep_parity = passed - passed % 2
            del changes[:keep_parity]


class Rendered:
    """One reader's copies of a run of announcements, made when its queue is written: the
    encoded parts around the ``peer_id`` (``heads`` behind their frame headers when
    ``framed``), joined with the reader's ``peer_id`` between them."""

    __slots__ = ("framed", "heads", "nbytes", "peer_id_json", "tails")

    def __init__(
        self,
        heads: list[bytes],
        tails: list[bytes],
        peer_id_json: bytes,
        nbytes: int,
        framed: bool = False,
    ) -> None:
        self.heads = heads
        self.tails = tails
        self.peer_id_json = peer_id_json
        #: bytes of the messages (without frame headers)
        self.nbytes = nbytes
        self.framed = framed

    @classmethod
    def of(cls, templates: list[Template], peer_id_json: bytes, framed: bool) -> Rendered:
        """The copies of ``templates`` for one reader (a newcomer's backlog)."""
        id_length = len(peer_id_json)
        # (a newcomer's backlog is every peer and its methods: these loops run in C)
        if framed:
            heads = list(map(_framed_head, templates, repeat(id_length)))
        else:
            heads = list(map(_head_of, templates))
        nbytes = sum(map(_size_of, templates)) + len(templates) * id_length
        return cls(heads, list(map(_tail_of, templates)), peer_id_json, nbytes, framed)

    def __len__(self) -> int:
        return len(self.tails)

    def joined(self, heads: list[bytes], between: bytes | None) -> bytes:
        """head, peer_id, tail for each message (``between`` after each but the last)."""
        count = len(heads)
        if self.nbytes >= LARGE_FRAME:
            tune_for_large_frames()  # large joins reuse heap blocks (protocol/malloc.py)
        pid = self.peer_id_json
        if between is None:
            parts = [pid] * (3 * count)
            parts[0::3] = heads
            parts[2::3] = self.tails
            return b"".join(parts)
        parts = [between] * (4 * count)
        parts[0::4] = heads
        parts[1::4] = [pid] * count
        parts[2::4] = self.tails
        return b"".join(parts[:-1])

    def frames(self) -> list[bytes]:
        """One frame per message (without frame headers)."""
        pid = self.peer_id_json
        return list(map(b"".join, zip(self._plain_heads(), repeat(pid), self.tails)))

    def _plain_heads(self) -> list[bytes]:
        if not self.framed:
            return self.heads
        # a frame header is 2, 4 or 10 bytes, as the frame's length says
        pid_length = len(self.peer_id_json)
        out = []
        for head, tail in zip(self.heads, self.tails, strict=True):
            size = len(head) + pid_length + len(tail)
            skip = 2 if size - 2 < 126 else 4 if size - 4 < 0x10000 else 10
            out.append(head[skip:])
        return out

    def wire(self) -> bytes:
        """Every message as its own WebSocket text frame, headers included: one write."""
        if not self.framed:
            pid_length = len(self.peer_id_json)
            self.heads = [
                frame_header(len(h) + pid_length + len(t)) + h
                for h, t in zip(self.heads, self.tails, strict=True)
            ]
            self.framed = True
        return self.joined(self.heads, None)

    def batch_parts(self, max_bytes: int = HUB_BATCH_MAX_BYTES) -> list[bytes]:
        """The messages as comma-separated runs for batch frames (``batch`` extension), none
        above ``max_bytes`` unless one message is."""
        heads = self._plain_heads()
        count = len(heads)
        if self.nbytes + count <= max_bytes:  # the usual case: one run
            return [self.joined(heads, b",")]
        extra = len(self.peer_id_json) + 1
        tails = self.tails
        sizes = list(accumulate(len(h) + len(t) + extra for h, t in zip(heads, tails, strict=True)))
        parts: list[bytes] = []
        start = done = 0
        while start < count:
            stop = max(bisect_right(sizes, done + max_bytes, lo=start + 1), start + 1)
            part = Rendered(heads[start:stop], tails[start:stop], self.peer_id_json, 0)
            parts.append(part.joined(part.heads, b","))
            done = sizes[stop - 1]
            start = stop
        return parts


_head_of = attrgetter("head")
_tail_of = attrgetter("tail")
_size_of = attrgetter("size")


def _framed_head(template: Template, id_length: int) -> bytes:
    """The template's head behind its frame header for a peer id of ``id_length`` bytes."""
    head = template.framed.get(id_length)
    if head is None:
        head = frame_header(template.size + id_length) + template.head
        template.framed[id_length] = head
    return head
