"""The gateway service: one per hub, between the connections and the transport-neutral core.

It handles what each connection decoded (``server/transport.py``: a WebSocket of
``server/gateway.py``, or the federation link's connection in process,
``server/inprocess.py``), in arrival order, batches in slices; it checks a claimed kernel's
identity (``server/identity.py``), routes what the core returns onto each recipient's
:class:`~.outbox.Outbox`, holds announcement writes so that a join storm costs each peer one
write (``server/announcements.py``, docs/RELIABILITY.md), and runs the stall rule on a timer.
The connections only decode and write; nothing here touches tornado.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections.abc import Awaitable
from typing import TYPE_CHECKING, Any

from .._version import __version__
from ..hub.connection import Outgoing
from ..protocol import ProtocolError, Reason
from ..protocol.addressed import Addressed, Announcement, Readership
from ..protocol.chunks import (
    CHUNK_HEADER_SIZE,
    CHUNK_SIZE,
    DEFAULT_MAX_ATTACHMENT_BYTES,
    ReassemblyBudget,
)
from ..protocol.wire import GOING_AWAY_CLOSE, HELLO_TYPE, POLICY_VIOLATION_CLOSE
from .announcements import AnnouncementLog, held_delay
from .attachments import FrameCache, wants_binary
from .identity import KernelIdentity, KernelResolver, claimed_kernel_id, without_claimed_identity
from .memory import HeapTrimmer
from .outbox import ANNOUNCEMENT_TYPES, REMOVAL_TYPES, OutboxLimits

if TYPE_CHECKING:
    from ..hub.core import InteropHub
    from .transport import GatewayConnection

__all__ = ["AUTH_CLOSE_CODE", "GOING_AWAY_CLOSE_CODE", "GatewayService"]

#: close code after a refused ``hello`` (or a request before it): policy violation
AUTH_CLOSE_CODE = POLICY_VIOLATION_CLOSE
#: close code when the hub shuts down
GOING_AWAY_CLOSE_CODE = GOING_AWAY_CLOSE

Message = dict[str, Any]


#: messages of one batch frame handled before what they produced is written
_BATCH_SLICE = 256


class _Routed:
    """What one dispatch queued: the sockets with new output, those of them that got
    something other than an announcement (the request's sender, the callers of a server that
    left), and whether announcements were among it (``adding``: not only removals).

    One is made per dispatch, that is per message handled: a plain class with ``__slots__``
    (no dataclass factories), filled inline by :meth:`GatewayService._queue`."""

    __slots__ = ("adding", "announcing", "replied", "touched")

    def __init__(self) -> None:
        self.touched: dict[str, GatewayConnection] = {}
        self.replied: dict[str, GatewayConnection] = {}
        self.announcing = False
        self.adding = False


class GatewayService:
    """The hub plus the registry of live sockets (``conn.id`` -> socket).

    One per extension or standalone app. It routes what the core returns to the recipients'
    outboxes and isolates them from each other: a recipient that is gone, overflowing or
    raising never affects the sender or any other recipient.
    """

    def __init__(
        self,
        hub: InteropHub,
        *,
        limits: OutboxLimits | None = None,
        max_message_size: int = 64 * 1024 * 1024,
        max_attachment_bytes: int = DEFAULT_MAX_ATTACHMENT_BYTES,
        max_reassembly_bytes: int = DEFAULT_MAX_ATTACHMENT_BYTES,
        resolver: KernelResolver | None = None,
        log: logging.Logger | None = None,
        removal_delay: float = 0.02,
        announce_delay: float = 0.02,
        announce_delay_max: float = 0.25,
    ) -> None:
        self.hub = hub
        #: seconds a socket's write may wait when only announcements are queued for it
        self.announce_delay = announce_delay
        #: the longest such wait however many peers read announcements (see held_delay)
        self.announce_delay_max = announce_delay_max
        #: seconds between a write and a removal held back after it (see ``Outbox.held``)
        self.removal_delay = removal_delay
        self.limits = limits or OutboxLimits()
        self.max_message_size = max_message_size
        #: cap on one message reassembled from chunk frames (binary extension)
        self.max_attachment_bytes = max_attachment_bytes
        #: bytes of chunked messages still arriving, all connections together
        self.reassembly = ReassemblyBudget(max_reassembly_bytes)
        #: binary frames above this are sent as chunk frames (below the peers' frame limit)
        self.chunk_size = min(CHUNK_SIZE, max(1024, max_message_size - CHUNK_HEADER_SIZE))
        #: ids of the chunked messages the hub sends (per hub: unique on every connection)
        self._chunk_ids = itertools.count(1)
        #: returns the heap to the system after bursts (see server/memory.py)
        self.heap = HeapTrimmer()
        self.resolver = resolver
        self.log = log or logging.getLogger("jupyter_interop")
        self.started = time.time()
        self.sockets: dict[str, GatewayConnection] = {}
        #: connections closed because their outbox overflowed
        self.slow_consumers_closed = 0
        #: messages that could not be encoded for their recipient (not sent, nobody closed)
        self.undeliverable = 0
        #: events dropped for connections that have since closed (live ones are in attrs)
        self._dropped_closed = 0
        #: sockets with new output, written at the end of the current loop iteration
        self._dirty: dict[str, GatewayConnection] = {}
        self._write_scheduled = False
        #: sockets whose queue is over its soft limit, judged by the stall timer
        self._backlogged: dict[str, GatewayConnection] = {}
        self._stall_timer: asyncio.TimerHandle | None = None
        #: sockets whose writes wait for the announce timer (see dispatch)
        self._announcing: dict[str, GatewayConnection] = {}
        #: senders of the requests whose writes wait (see _defer)
        self._acks_waiting: set[str] = set()
        self._announce_timer: asyncio.TimerHandle | None = None
        #: every announcement once, in order; each reader's outbox keeps its place in it
        #: (server/announcements.py)
        self.announcements = AnnouncementLog()
        #: sockets whose peers read announcements
        self._readers: dict[str, GatewayConnection] = {}
        #: the log's end when the readers were last all written (what is after it waits)
        self._readers_written = 0

    def next_chunk_id(self) -> int:
        """An id for one chunked message the hub sends (unique on every connection)."""
        return next(self._chunk_ids)

    # ------------------------------------------------------------ registry

    def attach(self, socket: GatewayConnection) -> None:
        self.sockets[socket.conn.id] = socket
        self.hub.open(socket.conn)

    def detach(self, socket: GatewayConnection, reason: str = "Peer has been removed") -> None:
        """Forget a socket and tell the others its peer left (idempotent)."""
        if self.sockets.pop(socket.conn.id, None) is None:
            return
        self._backlogged.pop(socket.conn.id, None)
        self._readers.pop(socket.conn.id, None)
        self._announcing.pop(socket.conn.id, None)
        self._acks_waiting.discard(socket.conn.id)
        self._dropped_closed += int(socket.conn.attrs.get("dropped_events", 0))
        try:
            out = self.hub.close(socket.conn, reason)
        except Exception:
            self.log.exception("Interop: hub failed to close %s", socket.conn)
            return
        self.dispatch(out)

    # ------------------------------------------------------------ handling

    def handle(self, socket: GatewayConnection, message: Message) -> Awaitable[None] | None:
        """One decoded message from ``socket``. The kernel a first ``hello`` claims is checked
        with the server first: then an awaitable, which tornado waits for before it reads the
        socket's next frame (order is kept)."""
        if message.get("type") == HELLO_TYPE and self.hub.peer_for(socket.conn) is None:
            kernel_id = claimed_kernel_id(message)
            message = without_claimed_identity(message)
            if kernel_id is not None and self.resolver is not None:
                return self._resolve_then_handle(socket, kernel_id, message)
        self._handle(socket, message)
        return None

    def _handle(self, socket: GatewayConnection, message: Message) -> None:
        conn = socket.conn
        hub = self.hub
        try:
            out = hub.handle(conn, message)
        except Exception as error:  # the core catches its own errors; this is a last guard
            self.log.exception("Interop: hub failed on a message from %s", conn)
            out = hub.error_reply(
                conn, message, ProtocolError(Reason.UNHANDLED, f"Internal hub error: {error!r}")
            )
        self.dispatch(out)
        if conn.close_reason is not None and not socket.finished:
            socket.close_after_flush(AUTH_CLOSE_CODE, conn.close_reason)

    def handle_batch(self, socket: GatewayConnection, items: list[Any]) -> None:
        """A batch frame (``batch`` extension): each message in order, as if each had come in
        its own frame; what they produce is queued together and written at once (one write
        per recipient and batch)."""
        conn = socket.conn
        hub = self.hub
        out: Outgoing = []
        for index, item in enumerate(items):
            if index and not index % _BATCH_SLICE:
                # a long batch: write what it produced so far before going on, so that the
                # recipients' outboxes never hold more than a slice because of the batch
                self.dispatch(out)
                self.write_now()
                out = []
                if socket.finished:
                    return
            if isinstance(item, ProtocolError):  # refused when decoded (protocol/limits.py)
                out.extend(hub.error_reply(conn, item.request, item))
                continue
            if not isinstance(item, dict):
                error = ProtocolError(
                    Reason.INVALID_MESSAGE,
                    f"A message must be a JSON object, not {type(item).__name__}",
                )
                out.extend(hub.error_reply(conn, None, error))
                continue
            try:
                out.extend(hub.handle(conn, item))
            except Exception as error:  # the core catches its own errors; a last guard
                self.log.exception("Interop: hub failed on a message from %s", conn)
                out.extend(
                    hub.error_reply(
                        conn,
                        item,
                        ProtocolError(Reason.UNHANDLED, f"Internal hub error: {error!r}"),
                    )
                )
            if conn.close_reason is not None:
                break
        self.dispatch(out)
        # Written now, not at the end of the loop iteration: tornado reads the frames already
        # received without returning to the loop, so batches from a fast publisher would pile
        # up in the recipients' outboxes (and their events be dropped) before any write.
        self.write_now()
        if conn.close_reason is not None and not socket.finished:
            socket.close_after_flush(AUTH_CLOSE_CODE, conn.close_reason)

    def refuse(
        self, socket: GatewayConnection, message: Message | None, error: ProtocolError
    ) -> None:
        """Reply with a GW3 ``error`` to what ``socket`` sent that could not even be decoded."""
        try:
            out = self.hub.error_reply(socket.conn, message, error)
        except Exception:
            self.log.exception("Interop: could not build an error reply")
            return
        self.dispatch(out)

    async def _resolve_then_handle(
        self, socket: GatewayConnection, kernel_id: str, message: Message
    ) -> None:
        resolver = self.resolver
        identity: KernelIdentity | None = None
        if resolver is not None:
            try:
                identity = await resolver(kernel_id)
            except Exception:
                self.log.exception("Interop: could not resolve kernel %s", kernel_id)
        if socket.finished:
            return
        conn = socket.conn
        if identity is not None:
            conn.kernel_id = identity.kernel_id
            conn.notebook_path = identity.notebook_path
        else:
            conn.attrs["unverified_kernel_id"] = kernel_id
            self.log.info(
                "Interop: %s claims kernel %s, which this server does not run", conn, kernel_id
            )
        self._handle(socket, message)

    # ------------------------------------------------------------ routing

    def dispatch(self, out: Outgoing) -> None:
        """Queue each message on its recipient's outbox, then start the writes.

        Announcements (``ANNOUNCEMENT_TYPES``: a peer joined, left, registered or
        unregistered methods) are written when the announce timer fires, together with
        everything else the request that caused them produced (its reply too), instead of
        at the end of this loop iteration. In a storm of N joins each peer is then written
        once per ``announce_delay`` (one batch frame for the peers that negotiated ``batch``),
        not once per join. What each peer reads, and its order, is unchanged; and no peer
        gets the reply to its join or registration before the others' announcements of it
        are written (see :meth:`_defer`).

        The core returns each announcement once, for every agm peer (an ``Announcement``),
        and tells when a peer starts or stops reading them (a ``Readership``, see
        protocol/addressed.py): an announcement is appended once to :attr:`announcements`,
        and each reader's copies are made when its queue is written (server/outbox.py), so
        a storm costs work linear in the announcements, not in announcements and readers.
        """
        if not out:
            return
        routed = self._queue(out)
        touched = routed.touched
        if routed.announcing or self._acks_waiting:  # else nothing is held (the usual case)
            touched = self._hold_for_announcements(routed)
        self._schedule_writes(touched)

    def _queue(self, out: Outgoing) -> _Routed:
        """Push each message on its recipient's outbox; close the recipients that overflowed."""
        # Run once per message handled: kept flat (no call per recipient but the outbox's)
        routed = _Routed()
        touched = routed.touched
        replied = routed.replied
        overflowed: list[GatewayConnection] = []
        # a message object shared by several recipients is encoded once (once per kind of
        # recipient when it carries binary attachments, see server/attachments.py)
        frames = FrameCache()
        sockets = self.sockets
        for conn, message in out:
            plain = type(message) is dict  # the bulk: not one of protocol/addressed.py's kinds
            if not plain and isinstance(message, Announcement):
                # for every reader, appended once (see Outbox.read); nobody reads: nothing;
                # a peer that left unseen takes its announcements with it (nothing to write)
                if self._readers and self.announcements.append(message.template):
                    routed.announcing = True
                    routed.adding = routed.adding or message.get("type") not in REMOVAL_TYPES
                continue
            conn_id = conn.id
            socket = sockets.get(conn_id)
            if socket is None or socket.finished:
                continue
            if not plain and isinstance(message, Readership):
                if not self._read(socket, message, routed):
                    overflowed.append(socket)
                continue
            try:
                if not plain and type(message) is Addressed:  # a copy, encoded already
                    frame = message.frame
                else:
                    frame = frames.frame_for(message, wants_binary(conn.attrs.get("extensions")))
                queued = socket.outbox.push(message, frame)
            except Exception:
                # the message cannot be written (a hub bug: what enters is checked, see
                # protocol/limits.py): not the recipient's fault, so it is neither blamed nor
                # closed; it misses this one message, counted and logged
                self.undeliverable += 1
                self.log.exception(
                    "Interop: could not encode a %r message for %s: not sent",
                    message.get("type"),
                    conn,
                )
                continue
            if not queued:
                overflowed.append(socket)
                continue
            touched[conn_id] = socket
            mtype = message.get("type")
            if mtype in ANNOUNCEMENT_TYPES:
                routed.announcing = True
                routed.adding = routed.adding or mtype not in REMOVAL_TYPES
            else:
                replied[conn_id] = socket
        for socket in overflowed:
            routed.touched.pop(socket.conn.id, None)
            socket.abort_slow_consumer()
        return routed

    def _read(self, socket: GatewayConnection, message: Readership, routed: _Routed) -> bool:
        """The socket's peer starts or stops reading announcements: False when its outbox
        overflowed. What a newcomer learns first is written at once, not held with its
        reply: in a large hub it is a long queue, and holding it would write every reader's
        queue at once (see _defer)."""
        conn_id = socket.conn.id
        if message.backlog is None:
            socket.outbox.stop_reading()
            self._readers.pop(conn_id, None)
            return True
        # its backlog holds every peer there but itself: none of them left unseen any more
        self.announcements.seal(keep=message.peer_id)
        if not socket.outbox.read(self.announcements, message.peer_id_json, message.backlog):
            return False
        self._readers[conn_id] = socket
        if message.backlog and not socket.write_if_idle():
            routed.touched[conn_id] = socket
            routed.announcing = routed.adding = True
        return True

    def _hold_for_announcements(self, routed: _Routed) -> dict[str, GatewayConnection]:
        """The sockets to write at the end of this loop iteration; those of a request that
        announced something wait for the announce timer instead (see :meth:`_defer`)."""
        touched = routed.touched
        if routed.announcing and self.announce_delay > 0:
            if not routed.adding:  # removals: nothing to acknowledge, replies (errors) go now
                replied = routed.replied
                held = {k: v for k, v in touched.items() if k not in replied}
                touched = {**replied, **self._defer(held, {})}
            else:
                touched = self._defer(touched, routed.replied)
            if (self.announcements.end - self._readers_written) * 2 >= self.limits.soft_messages:
                # the readers' queues reach half their soft limit: written at once
                touched.update(self._take_announcing())
        elif routed.announcing:  # no delay: written at once
            touched.update(self._take_announcing())
        if self._acks_waiting and not self._acks_waiting.isdisjoint(touched):
            touched.update(self._take_announcing())  # see _defer
        return touched

    def _schedule_writes(self, touched: dict[str, GatewayConnection]) -> None:
        """Watch the sockets left over their soft limit; write the others' output once the
        loop has handled every frame that already arrived."""
        for conn_id, socket in touched.items():
            if socket.outbox.over_soft_limit and conn_id not in self._backlogged:
                self._watch_stall(socket)
        if touched:
            self._dirty.update(touched)
            if not self._write_scheduled:
                # Written once the loop has handled every frame that already arrived: a
                # burst from one peer becomes one write per recipient, not one per message.
                try:
                    loop = asyncio.get_running_loop()
                except RuntimeError:  # no loop (shutdown paths): write now
                    self._write_dirty()
                else:
                    self._write_scheduled = True
                    loop.call_soon(self._write_dirty)

    def _defer(
        self, touched: dict[str, GatewayConnection], replied: dict[str, GatewayConnection]
    ) -> dict[str, GatewayConnection]:
        """Hold the writes of a request that announced something until the announce timer;
        return the sockets to write now instead (none, unless a queue reached half its soft
        limit: events must not be dropped because of waiting announcements).

        ``replied`` (the request's sender) is remembered: if something else must be written
        to it before the timer, everything held is written then, so a peer never has the
        reply to its join or registration while the others' announcements of it still wait.
        """
        limits = self.limits
        now: dict[str, GatewayConnection] = {}
        for conn_id, socket in touched.items():
            outbox = socket.outbox
            if len(outbox) * 2 >= limits.soft_messages or (
                outbox.pending_bytes * 2 >= limits.soft_bytes
            ):
                now[conn_id] = socket
            else:
                self._announcing[conn_id] = socket
        self._acks_waiting.update(replied)
        unwritten = self.announcements.end > self._readers_written
        if (self._announcing or unwritten) and self._announce_timer is None:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:  # no loop (shutdown paths): write now
                now.update(self._take_announcing())
            else:
                delay = held_delay(len(self._readers), self.announce_delay, self.announce_delay_max)
                self._announce_timer = loop.call_later(delay, self._write_held)
        return now

    def holds(self, socket: GatewayConnection) -> bool:
        """Are the socket's writes waiting for the announce timer (see :meth:`_defer`)?"""
        conn_id = socket.conn.id
        return conn_id in self._announcing or (
            self.announcements.end > self._readers_written and conn_id in self._readers
        )

    def _take_announcing(self) -> dict[str, GatewayConnection]:
        """Every held socket and, when announcements wait, every reader; the senders of the
        requests last (their replies go out after the announcements to the others)."""
        held, self._announcing = self._announcing, {}
        log = self.announcements
        if log.end > self._readers_written:
            self._readers_written = log.end
            log.seal()  # written now: what a window holds stops being droppable here
            held = {**self._readers, **held}
        senders = self._acks_waiting
        self._acks_waiting = set()
        ordered = {k: v for k, v in held.items() if k not in senders}
        ordered.update((k, v) for k, v in held.items() if k in senders)
        return ordered

    def _write_held(self) -> None:
        self._announce_timer = None
        self._dirty.update(self._take_announcing())
        self._write_dirty()
        self._check_readers()

    def _check_readers(self) -> None:
        """After the readers were written: judge those that could not take their queue (the
        limits apply to announcements not read yet too), and forget what all have read."""
        log = self.announcements
        low = log.end
        for socket in list(self._readers.values()):
            outbox = socket.outbox
            start = outbox.reading_from
            if start is None or start == log.end:
                continue  # it took its queue
            low = min(low, start)
            if outbox.over_soft_limit:
                if not outbox.check_limits():
                    socket.abort_slow_consumer()
                elif socket.conn.id not in self._backlogged:
                    self._watch_stall(socket)
        log.trim(low)

    # ------------------------------------------------------------ the stall rule

    def stall_check_interval(self) -> float:
        """Seconds between two applications of the stall rule to backlogged sockets (a
        quarter of the stall limit, at most one second)."""
        return min(1.0, self.limits.stall_seconds / 4)

    def _watch_stall(self, socket: GatewayConnection) -> None:
        """Judge this socket on the timer while its queue stays over the soft limit: a peer
        that stopped reading after a burst gets nothing more pushed, so no push judges it."""
        if not self.limits.stall_seconds:
            return
        self._backlogged[socket.conn.id] = socket
        if self._stall_timer is None:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:  # no loop (shutdown paths): nothing to time
                return
            self._stall_timer = loop.call_later(self.stall_check_interval(), self._check_stalls)

    def _check_stalls(self) -> None:
        self._stall_timer = None
        for conn_id, socket in list(self._backlogged.items()):
            outbox = socket.outbox
            if socket.finished or not outbox.over_soft_limit:
                del self._backlogged[conn_id]  # gone, or caught up
            elif not outbox.check_stall():
                del self._backlogged[conn_id]
                socket.abort_slow_consumer()
        if self._backlogged:
            loop = asyncio.get_running_loop()
            self._stall_timer = loop.call_later(self.stall_check_interval(), self._check_stalls)

    def write_now(self) -> None:
        """Write what is queued now instead of at the end of the loop iteration."""
        if self._dirty:
            self._write_dirty()

    def _write_dirty(self) -> None:
        self._write_scheduled = False
        dirty, self._dirty = self._dirty, {}
        for socket in dirty.values():
            try:
                socket.kick()
            except Exception:  # never let one socket stop the writes of the others
                self.log.exception("Interop: writing to %s failed", socket.conn)

    # ------------------------------------------------------------ lifecycle

    def close_all(
        self, code: int = GOING_AWAY_CLOSE_CODE, reason: str = "interop hub shutting down"
    ) -> None:
        """Close every socket (hub shutdown); the peers left behind are notified of nothing."""
        sockets = list(self.sockets.values())
        self.sockets.clear()
        self.heap.cancel()
        self._backlogged.clear()
        if self._stall_timer is not None:
            self._stall_timer.cancel()
            self._stall_timer = None
        self._announcing.clear()
        self._acks_waiting.clear()
        self._readers.clear()
        if self._announce_timer is not None:
            self._announce_timer.cancel()
            self._announce_timer = None
        for socket in sockets:
            socket.finish_connection(code, reason)
            try:
                self.hub.close(socket.conn, reason)
            except Exception:
                self.log.exception("Interop: hub failed to close %s", socket.conn)

    # ------------------------------------------------------------ views

    def status(self) -> dict[str, Any]:
        """Counters for the status view: what a user checks when something seems slow."""
        live_dropped = sum(
            int(s.conn.attrs.get("dropped_events", 0)) for s in self.sockets.values()
        )
        return {
            "version": __version__,
            "started": self.started,
            "uptime": time.time() - self.started,
            "connections": len(self.sockets),
            "peers": len(self.hub.peers),
            "dropped_events": live_dropped + self._dropped_closed,
            "slow_consumers_closed": self.slow_consumers_closed,
            "undeliverable": self.undeliverable,
            "pending_messages": sum(len(s.outbox) for s in self.sockets.values()),
            "pending_bytes": sum(s.outbox.pending_bytes for s in self.sockets.values()),
            "reassembly_bytes": self.reassembly.held,
        }
