"""A bounded outgoing queue per connection: drop, coalesce or disconnect, never grow unbounded.

The hub core returns messages for many peers at once; the transport hands each one to the
recipient's ``Outbox`` and writes whatever the outbox releases when that socket can take more.
One slow or stuck consumer must neither slow the others down nor make the hub's memory grow
without bound, and nothing may be lost silently (zmq's high-water mark did exactly that, see
the performance notes). So the policy, by message kind, is:

* agm and bus ``event`` messages (stream data, bus deliveries; ``event-many`` runs of stream
  items, counted per item) are *droppable*: while the queue
  is over its soft limit they are discarded and counted, in ``conn.attrs["dropped_events"]``
  and, for peers that negotiated the ``notices`` extension, in one ``events-dropped`` notice
  sent once the backlog has been written;
* ``context-updated`` messages are *coalesced*: a second update for a context that still has
  one waiting replaces it with one delta composed of both (``compose_deltas``: each key
  once, the later change winning), so the consumer ends at the right state, never a wrong
  one, and a small change to a large context stays small. Only when no delta can say it (a
  ``reset`` is involved) or the composed delta grew larger than the value does the update
  become ``{"reset": <current data>}``;
* everything else (results, errors, subscription and peer lifecycle) is never dropped; if the
  queue still exceeds the hard limit, or its oldest message waited longer than the stall
  limit while over the soft limit, the outbox reports an overflow and the transport closes
  the connection ("slow consumer: ...") so the hub's memory stays bounded. The stall rule is
  applied on every push and, by the transport, on a timer (:meth:`Outbox.check_stall`), so
  a consumer that stopped reading after a burst is closed even if nothing more comes;
* agm ``methods-removed`` and ``peer-removed`` that follow other messages are *held back*:
  :meth:`Outbox.take` stops before them and returns nothing more until the transport calls
  :meth:`Outbox.release` a moment later. @glue42/core looks a server up again in a promise
  continuation of a call's error; if the removal of that server is read in the same chunk as
  the error, the lookup fails and the caller gets a TypeError instead of "Peer has left ..."
  (the Glue42 gateway has the same race). A separate, slightly later write avoids it.

* announcements (``peer-added``, ``methods-added`` and the removals) of a peer that reads them
  (:meth:`Outbox.read`) are not pushed one by one: the outbox keeps where it is in the
  gateway's :class:`~.announcements.AnnouncementLog`, and what it has not read becomes one
  :class:`~.announcements.Rendered` run in the queue when something else is pushed or the
  queue is taken; they count like any other message.

No sockets here: the transport calls :meth:`Outbox.push` and :meth:`Outbox.take`, which keeps
every rule unit-testable.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..hub.connection import PeerConn
from ..protocol import encode
from ..protocol.addressed import Template
from ..protocol.deltas import compose_deltas, copy_data

# batch frames (``batch`` extension): one framing for both sides, closed at the hub's cap
from ..protocol.framing import batch_frames, join_batch
from ..protocol.limits import COMPOSED_DELTA_CHECK_BYTES
from ..protocol.limits import HUB_BATCH_MAX_BYTES as BATCH_MAX_BYTES
from ..protocol.wire import (
    AGM_DOMAIN,
    BUS_DOMAIN,
    CONTEXT_UPDATED_TYPE,
    EVENT_MANY_TYPE,
    EVENT_TYPE,
    EVENTS_DROPPED_TYPE,
    GLOBAL_DOMAIN,
    METHODS_ADDED_TYPE,
    PEER_ADDED_TYPE,
    POLICY_VIOLATION_CLOSE,
)
from .announcements import REMOVAL_TYPES, AnnouncementLog, Rendered

__all__ = [
    "ANNOUNCEMENT_TYPES",
    "BATCH_MAX_BYTES",
    "REMOVAL_TYPES",
    "SLOW_CONSUMER_CLOSE_CODE",
    "Outbox",
    "OutboxLimits",
    "batch_frames",
    "batch_with_runs",
]

Message = dict[str, Any]

#: WebSocket close code used when a consumer cannot keep up (1008: policy violation).
SLOW_CONSUMER_CLOSE_CODE = POLICY_VIOLATION_CLOSE

_DROPPABLE_DOMAINS = frozenset({AGM_DOMAIN, BUS_DOMAIN})
#: agm announcements of other peers joining, leaving, registering and unregistering: their
#: write may wait a moment (see ``GatewayService``), so that a join storm costs each
#: recipient one write (one batch frame) per moment instead of one per join
ANNOUNCEMENT_TYPES = frozenset({PEER_ADDED_TYPE, METHODS_ADDED_TYPE, *REMOVAL_TYPES})


def batch_with_runs(
    frames: list[bytes | Rendered], max_bytes: int = BATCH_MAX_BYTES
) -> list[bytes | Rendered]:
    """:func:`batch_frames` for a queue that holds :class:`Rendered` runs of announcements:
    each joins the batch frames as its messages (comma-separated runs, cut at the cap)."""
    if not any(isinstance(frame, Rendered) for frame in frames):
        return list(batch_frames([f for f in frames if isinstance(f, bytes)], max_bytes))
    out: list[bytes | Rendered] = []
    run: list[bytes] = []
    run_bytes = 0
    plain = True  # the run is one message: written as a plain frame

    for frame in frames:
        if isinstance(frame, Rendered):
            parts = frame.batch_parts(max_bytes)
        elif frame[:1] != b"{":
            if run:
                out.append(run[0] if plain and len(run) == 1 else join_batch(run))
                run = []
                run_bytes = 0
                plain = True
            out.append(frame)
            continue
        else:
            parts = [frame]
        for part in parts:
            if run and run_bytes + len(part) > max_bytes:
                out.append(run[0] if plain and len(run) == 1 else join_batch(run))
                run = []
                run_bytes = 0
                plain = True
            run.append(part)
            run_bytes += len(part) + 1
            plain = plain and not isinstance(frame, Rendered)
    if run:
        out.append(run[0] if plain and len(run) == 1 else join_batch(run))
    return out


@dataclass(frozen=True)
class OutboxLimits:
    """Soft and hard bounds of one connection's outgoing queue.

    Over the soft limit (messages *or* bytes) droppable events are discarded; over the hard
    limit (messages *or* bytes) the connection is closed. A single message is always accepted
    into an empty queue whatever its size, so a large result can still be delivered: the size
    of one frame is bounded by the transport's maximum message size instead.
    """

    soft_messages: int = 1_000
    soft_bytes: int = 8 * 1024 * 1024
    hard_messages: int = 50_000
    hard_bytes: int = 256 * 1024 * 1024
    #: seconds the oldest queued message may wait while the queue is over the soft limit
    #: (0 disables the check): a consumer that stopped reading is closed even when only
    #: droppable events keep arriving.
    stall_seconds: float = 60.0

    def __post_init__(self) -> None:
        if self.soft_messages < 1 or self.soft_bytes < 1:
            raise ValueError("Outbox soft limits must be positive")
        if self.hard_messages < self.soft_messages or self.hard_bytes < self.soft_bytes:
            raise ValueError("Outbox hard limits must not be below the soft limits")
        if self.stall_seconds < 0:
            raise ValueError("Outbox stall_seconds must not be negative")


class _Entry:
    """One queued frame; ``frame`` is None once it was superseded by a coalesced update.

    ``more``: frames queued right after it that follow the same rules (neither a context
    update nor of another removal kind), in order: a storm of N joins queues N announcements
    for each peer, kept as one entry rather than N (``queued_at`` is the first one's).
    """

    __slots__ = ("context_id", "delta", "frame", "measured", "more", "queued_at", "removal", "run")

    def __init__(
        self,
        frame: bytes,
        queued_at: float,
        context_id: str | None,
        removal: bool,
        run: Rendered | None = None,
    ) -> None:
        self.frame: bytes | None = frame
        self.more: list[bytes] | None = None
        self.queued_at = queued_at
        self.context_id = context_id
        self.removal = removal
        #: announcements of one kind for this peer (``frame`` is empty), see Outbox.read
        self.run = run
        #: a context update's delta, its own copy (the hub goes on changing what the
        #: message's values are part of): composed with the next update of the context
        self.delta: dict[str, Any] | None = None
        #: the size of ``frame`` when it was last measured against the context's whole value
        self.measured = 0


class Outbox:
    """The outgoing queue of one connection (see the module docstring for the policy).

    ``snapshot`` returns the current full data of a context (``InteropHub.context_snapshot``);
    it is consulted when two updates of one context meet in the queue. ``clock`` is injectable
    so the stall rule can be tested without sleeping.
    """

    __slots__ = (
        "_bytes",
        "_clock",
        "_count",
        "_entries",
        "_held",
        "_log",
        "_peer_id_json",
        "_pending_contexts",
        "_reading_from",
        "_snapshot",
        "_superseded",
        "_unreported_drops",
        "closed_reason",
        "conn",
        "limits",
    )

    def __init__(
        self,
        conn: PeerConn,
        limits: OutboxLimits | None = None,
        snapshot: Callable[[str], dict[str, Any] | None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.conn = conn
        self.limits = limits or OutboxLimits()
        self._snapshot = snapshot
        self._clock = clock
        #: queued entries; None while the queue is empty (see _clear)
        self._entries: deque[_Entry] | None = None
        self._count = 0
        self._bytes = 0
        self._superseded = 0
        #: context id -> its queued, not yet written context-updated entry
        self._pending_contexts: dict[str, _Entry] = {}
        self._unreported_drops = 0
        self._held = False
        #: the announcements this peer reads (see :meth:`read`), from ``_reading_from`` on
        self._log: AnnouncementLog | None = None
        self._reading_from: int | None = None
        self._peer_id_json = b""
        #: why the outbox overflowed (the transport closes the connection with it), or None
        self.closed_reason: str | None = None
        self.conn.attrs.setdefault("dropped_events", 0)

    # ------------------------------------------------------------------ state

    def __len__(self) -> int:
        start = self._reading_from
        if start is None:
            return self._count
        assert self._log is not None
        return self._count + self._log.end - start

    @property
    def pending_bytes(self) -> int:
        """Bytes of encoded frames waiting to be written."""
        start = self._reading_from
        if start is None:
            return self._bytes
        assert self._log is not None
        return self._bytes + self._log.count_bytes(start, len(self._peer_id_json))

    @property
    def over_soft_limit(self) -> bool:
        limits = self.limits
        # checked for every recipient of every dispatch: the queue's own counts first (the
        # log's share only adds to them), the log's share only when there is one
        if self._count >= limits.soft_messages or self._bytes >= limits.soft_bytes:
            return True
        start, log = self._reading_from, self._log
        if start is None or log is None or start == log.end:
            return False
        return len(self) >= limits.soft_messages or self.pending_bytes >= limits.soft_bytes

    @property
    def reading_from(self) -> int | None:
        """The first announcement of the log this peer has not got in its queue yet (None:
        it does not read announcements)."""
        return self._reading_from

    @property
    def closed(self) -> bool:
        return self.closed_reason is not None

    @property
    def held(self) -> bool:
        """True while removals are held back: :meth:`take` returns nothing until
        :meth:`release`."""
        return self._held

    @property
    def has_output(self) -> bool:
        """True when :meth:`take` would return something (frames or a pending notice)."""
        if self._count:  # the usual case, without computing the log's share (see __len__)
            return True
        return len(self) > 0 or (self._unreported_drops > 0 and self._wants_notices())

    # ------------------------------------------------------------------ announcements

    def read(
        self, log: AnnouncementLog, peer_id_json: bytes, backlog: list[Template] | None = None
    ) -> bool:
        """From now on this peer gets every announcement appended to ``log``, after
        ``backlog`` (queued now). False when the outbox has overflowed (see :meth:`push`)."""
        if self.closed_reason is not None:
            return False
        self._peer_id_json = peer_id_json
        if backlog:
            run = Rendered.of(backlog, peer_id_json, framed=not self._wants_batch())
            self._queue_run(run, False, self._clock())
        self._log = log
        self._reading_from = log.end
        return self.check_limits()

    def stop_reading(self) -> None:
        """No announcement appended from now on is for this peer."""
        self._close_run()
        self._reading_from = None

    def _close_run(self) -> None:
        """Queue what the peer has not read of the log, as entries of one kind each."""
        start = self._reading_from
        log = self._log
        if start is None or log is None or start == log.end:
            return
        self._queue_runs(log, start, self._runs(log, start))

    def _runs(self, log: AnnouncementLog, start: int) -> list[tuple[Rendered, bool]]:
        """This peer's copies of the log from ``start`` on (see AnnouncementLog.runs)."""
        return log.runs(start, log.end, self._peer_id_json, not self._wants_batch())

    def _queue_runs(
        self, log: AnnouncementLog, start: int, runs: list[tuple[Rendered, bool]]
    ) -> None:
        for run, removal in runs:
            self._queue_run(run, removal, log.time_at(start))
            start += len(run)
        self._reading_from = start

    def _queue_run(self, run: Rendered, removal: bool, queued_at: float) -> None:
        entries = self._entries
        if entries is None:
            entries = self._entries = deque()
        entries.append(_Entry(b"", queued_at, None, removal, run))
        self._count += len(run)
        self._bytes += run.nbytes

    def check_limits(self) -> bool:
        """Apply the hard limits and the stall rule to what is queued now, announcements
        not read yet included: False when the outbox overflowed."""
        if self.closed_reason is not None:
            return False
        limits = self.limits
        count, size = len(self), self.pending_bytes
        if count > limits.hard_messages or (size > limits.hard_bytes and count > 1):
            self._overflow(
                f"slow consumer: {count} messages / {size} bytes pending "
                f"(limit {limits.hard_messages} / {limits.hard_bytes})"
            )
            return False
        return self.check_stall()

    # ------------------------------------------------------------------ push

    def push(self, message: Message, frame: bytes | None = None) -> bool:
        """Queue one message (``frame``: its encoding, if the caller already has it).

        Returns False when the outbox has overflowed (now or before): the caller must close
        the connection with :attr:`closed_reason`. Dropped events return True: dropping is
        the policy, not a failure.
        """
        if self.closed_reason is not None:
            return False
        start, log = self._reading_from, self._log
        if start is not None and log is not None and start != log.end:
            self._close_run()  # the announcements before this message, in their place
        limits = self.limits
        over_soft = self._count >= limits.soft_messages or self._bytes >= limits.soft_bytes
        mtype = message.get("type")
        context_id: Any = None
        removal = False
        delta: dict[str, Any] | None = None
        measured = 0
        if mtype == EVENT_TYPE:  # the bulk of the traffic: stream data, bus deliveries
            if over_soft and message.get("domain") in _DROPPABLE_DOMAINS:
                self._drop_event()
                return self.check_stall()
        elif mtype == EVENT_MANY_TYPE:  # a run of stream items: dropped whole, counted per item
            if over_soft:
                self._drop_event(len(message.get("items") or ()))
                return self.check_stall()
        elif mtype == CONTEXT_UPDATED_TYPE:
            context_id = message.get("context_id")
            if isinstance(context_id, str):
                message, frame, delta, measured = self._coalesce(context_id, message, frame)
            else:
                context_id = None
        elif mtype in REMOVAL_TYPES:
            removal = message.get("domain") == AGM_DOMAIN
        if frame is None:
            frame = encode(message)
        entries = self._entries
        if entries is None:
            entries = self._entries = deque()
        last = entries[-1] if entries else None
        if (
            context_id is None
            and last is not None
            and last.context_id is None
            and last.removal is removal
            and last.frame is not None
            and last.run is None
        ):
            if last.more is None:
                last.more = [frame]
            else:
                last.more.append(frame)
        else:
            entry = _Entry(frame, self._clock(), context_id, removal)
            entries.append(entry)
            if context_id is not None:
                entry.delta, entry.measured = delta, measured
                self._pending_contexts[context_id] = entry
        count = self._count = self._count + 1
        size = self._bytes = self._bytes + len(frame)
        if count > limits.hard_messages or (size > limits.hard_bytes and count > 1):
            self._overflow(
                f"slow consumer: {count} messages / {size} bytes pending "
                f"(limit {limits.hard_messages} / {limits.hard_bytes})"
            )
            return False
        if not over_soft and count < limits.soft_messages and size < limits.soft_bytes:
            return True  # under the soft limit: nothing can have stalled
        return self.check_stall()

    def _drop_event(self, count: int = 1) -> None:
        self._unreported_drops += count
        self.conn.attrs["dropped_events"] = self.conn.attrs.get("dropped_events", 0) + count

    def _coalesce(
        self, context_id: str, message: Message, frame: bytes | None
    ) -> tuple[Message, bytes | None, dict[str, Any] | None, int]:
        """Replace a waiting update of the same context with one update composed of both
        (or, when no delta can say it or it outgrew the value, a reset to the current data).

        The new message goes to the end of the queue (where the latest update belongs), so a
        consumer never sees a state before the messages that preceded it. Returns the
        message, its frame if known, the delta to compose the next update with and the
        frame size last measured against the value.
        """
        delta = message.get("delta")
        own = copy_data(delta) if isinstance(delta, dict) else None
        previous = self._pending_contexts.pop(context_id, None)
        if previous is None or previous.frame is None:
            return message, frame, own, 0
        composed = None
        if previous.delta is not None and own is not None:
            composed = compose_deltas(previous.delta, own)
        measured = previous.measured
        if composed is not None:
            message = {**message, "delta": composed}
            frame = encode(message)
            if len(frame) >= max(COMPOSED_DELTA_CHECK_BYTES, 2 * measured):
                measured = len(frame)
                data = self._snapshot(context_id) if self._snapshot is not None else None
                whole = None if data is None else {**message, "delta": {"reset": data}}
                whole_frame = None if whole is None else encode(whole)
                if whole is not None and whole_frame is not None and len(whole_frame) < measured:
                    message, frame, composed = whole, whole_frame, None
        else:
            data = self._snapshot(context_id) if self._snapshot is not None else None
            if data is None:
                # the context is gone: keep both deltas, both are still correct in order
                return message, frame, own, 0
            message, frame = {**message, "delta": {"reset": data}}, None
        self._count -= 1
        self._bytes -= len(previous.frame)
        previous.frame = None
        self._superseded += 1
        if self._superseded > 64 and self._superseded > self._count:
            # a context updated in a tight loop behind a stuck reader: drop the tombstones
            self._entries = deque(e for e in self._entries or () if e.frame is not None)
            self._superseded = 0
        return message, frame, composed, measured

    def check_stall(self) -> bool:
        """Apply the stall rule now: False (and overflowed, see :attr:`closed_reason`) when
        the oldest message waited longer than ``stall_seconds`` while the queue is over its
        soft limit. Every push applies it; the transport also calls it on a timer, so a peer
        that stopped reading is judged even when nothing more is sent to it."""
        if self.closed_reason is not None:
            return False
        stall = self.limits.stall_seconds
        if not stall or not self.over_soft_limit:
            return True
        oldest = self._oldest()
        start, log = self._reading_from, self._log
        if oldest is not None:
            queued_at = oldest.queued_at
        elif start is not None and log is not None and start < log.end:
            queued_at = log.time_at(start)
        else:
            return True
        waited = self._clock() - queued_at
        if waited > stall:
            self._overflow(
                f"slow consumer: no progress for {waited:.0f} s with {len(self)} messages pending"
            )
            return False
        return True

    def _oldest(self) -> _Entry | None:
        entries = self._entries
        while entries and entries[0].frame is None:
            entries.popleft()
            self._superseded -= 1
        return entries[0] if entries else None

    def _overflow(self, reason: str) -> None:
        self.closed_reason = reason
        self._clear()
        self._reading_from = None
        self._log = None

    # ------------------------------------------------------------------ take

    def take(self) -> list[bytes | Rendered]:
        """What is waiting, in order, ready to write (then the drop notice, if any).

        The transport calls this when the socket has flushed what it took last time, so all
        frames that piled up meanwhile are written in one go before the next flush. It stops
        before a removal that follows other messages (see :attr:`held`). For a peer that
        negotiated the ``batch`` extension, consecutive JSON frames come back as batch frames
        (see :func:`batch_frames`); plain GW3 peers always get one message per frame.
        """
        if self.closed_reason is not None or self._held:
            return []
        start, log = self._reading_from, self._log
        if start is not None and log is not None and start != log.end:
            # what the peer has not read of the log, in its place
            runs = self._runs(log, start)
            if self._entries is None and len(runs) == 1 and not self._unreported_drops:
                # the usual write of a storm: nothing else queued, announcements of one kind
                # (taken whole: a removal is held back only after other messages)
                self._reading_from = log.end
                return self._batched([runs[0][0]])
            self._queue_runs(log, start, runs)
        frames: list[bytes | Rendered] = []
        taken = 0
        entries = self._entries
        pending_contexts = self._pending_contexts
        taken_bytes = 0
        other_taken = False  # consecutive removals go together; a removal after others waits
        while entries:
            entry = entries[0]
            frame = entry.frame
            if frame is None:
                entries.popleft()
                self._superseded -= 1
                continue
            if entry.removal and other_taken:
                self._held = True
                break
            other_taken = other_taken or not entry.removal
            entries.popleft()
            run = entry.run
            if run is not None:
                frames.append(run)
                taken += len(run)
                taken_bytes += run.nbytes
                continue
            frames.append(frame)
            taken += 1
            taken_bytes += len(frame)
            if entry.more is not None:
                frames.extend(entry.more)
                taken += len(entry.more)
                taken_bytes += sum(map(len, entry.more))
            if entry.context_id is not None and pending_contexts.get(entry.context_id) is entry:
                del pending_contexts[entry.context_id]
        self._count -= taken
        self._bytes -= taken_bytes
        if not entries:
            self._clear()
            if self._unreported_drops and self._wants_notices():
                frames.append(self._drops_notice())
        return self._batched(frames)

    def _batched(self, frames: list[bytes | Rendered]) -> list[bytes | Rendered]:
        """``frames`` as batch frames for a peer that negotiated ``batch``."""
        if frames and (len(frames) > 1 or type(frames[0]) is Rendered) and self._wants_batch():
            return batch_with_runs(frames)  # (one plain frame stays as it is)
        return frames

    def _drops_notice(self) -> bytes:
        """``events-dropped``: the events dropped since the last notice, and in all (the
        ``notices`` extension); written once the queue is empty, after what was kept."""
        count, self._unreported_drops = self._unreported_drops, 0
        return encode(
            {
                "domain": GLOBAL_DOMAIN,
                "type": EVENTS_DROPPED_TYPE,
                "count": count,
                "total": self.conn.attrs.get("dropped_events", 0),
            }
        )

    def release(self) -> None:
        """The transport waited after the write before a held removal: let it go."""
        self._held = False

    def close(self, reason: str = "closed") -> None:
        """Discard everything; later pushes are refused (the connection is going away)."""
        if self.closed_reason is None:
            self.closed_reason = reason
        self._clear()
        self._reading_from = None
        self._log = None

    def _clear(self) -> None:
        # An empty queue holds no deque: a deque costs 0.6 KiB even empty and keeps up to 16
        # freed blocks (0.5 KiB each) after a burst, for every idle connection.
        self._entries = None
        self._pending_contexts.clear()
        self._count = 0
        self._bytes = 0
        self._superseded = 0

    def _wants_batch(self) -> bool:
        extensions = self.conn.attrs.get("extensions") or {}
        return "batch" in extensions

    def _wants_notices(self) -> bool:
        extensions = self.conn.attrs.get("extensions") or {}
        return "notices" in extensions
