"""Transport glue between tornado WebSockets and the transport-neutral hub core.

Shared by the Jupyter server extension and the standalone hub: both only decide whether an
upgrade is *trusted* (Jupyter's own auth, or the interop token in the URL); everything after
the upgrade is here. Per socket: one :class:`PeerConn` for the core, one :class:`Outbox`
for what the core sends it. Frames are decoded once, handled by the core in arrival order,
and the resulting messages are queued per recipient and written in batches (all that piled
up, then one flush), so a fast peer gets throughput and a slow one only slows itself.

:class:`GatewayService` (one per hub) handles what the sockets decoded and routes what the
core returns; :class:`GatewaySocket` is the tornado handler: its hooks decode frames and hand
them on, and it writes its outbox to tornado's stream. Who a kernel is, is checked in
``server/identity.py``; tornado's private API is used in ``server/wsreader.py`` only.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections.abc import Awaitable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from tornado.iostream import StreamClosedError
from tornado.websocket import WebSocketClosedError, WebSocketHandler

from .._version import __version__
from ..hub.connection import Outgoing, PeerConn
from ..protocol import ProtocolError, Reason, decode
from ..protocol.addressed import Addressed, Announcement, Readership
from ..protocol.frames import (
    CHUNK_HEADER_SIZE,
    CHUNK_SIZE,
    DEFAULT_MAX_ATTACHMENT_BYTES,
    ChunkTooLarge,
    FrameError,
    ReassemblyBudget,
    chunk_views,
)
from ..protocol.framing import ChunkAssembler, decode_batch, is_batch, is_chunk
from ..protocol.malloc import LARGE_FRAME, tune_for_large_frames
from ..protocol.wire import BATCH_EXTENSION, HELLO_TYPE
from .announcements import AnnouncementLog, Rendered, held_delay
from .announcements import frame_header as _text_frame_header
from .attachments import FrameCache, decode_frame, is_binary, wants_binary
from .identity import KernelIdentity, KernelResolver, claimed_kernel_id, without_claimed_identity
from .memory import HeapTrimmer
from .outbox import (
    ANNOUNCEMENT_TYPES,
    REMOVAL_TYPES,
    SLOW_CONSUMER_CLOSE_CODE,
    Outbox,
    OutboxLimits,
)
from .wsreader import buffered_protocol, uncompressed_stream

if TYPE_CHECKING:
    from ..hub.core import InteropHub

__all__ = [
    "AUTH_CLOSE_CODE",
    "GOING_AWAY_CLOSE_CODE",
    "GatewayService",
    "GatewaySocket",
]

#: close code after a refused ``hello`` (or a request before it): policy violation
AUTH_CLOSE_CODE = 1008
#: close code when the hub shuts down
GOING_AWAY_CLOSE_CODE = 1001

Message = dict[str, Any]


#: messages of one batch frame handled before what they produced is written
_BATCH_SLICE = 256


def wants_batch(extensions: Any) -> bool:
    """Did the peer negotiate batch frames (its accepted extensions)?"""
    return bool(extensions) and BATCH_EXTENSION in extensions


#: frames above this are written on their own (not copied into a batch's single write)
_LARGE = 64 * 1024


def _consume(future: Any) -> None:
    """Retrieve a write future's outcome so a closed stream is not logged as unhandled."""
    if not future.cancelled():
        future.exception()


@dataclass(slots=True)
class _Routed:
    """What one dispatch queued: the sockets with new output, those of them that got
    something other than an announcement (the request's sender, the callers of a server that
    left), and whether announcements were among it (``adding``: not only removals)."""

    touched: dict[str, GatewaySocket] = field(default_factory=dict)
    replied: dict[str, GatewaySocket] = field(default_factory=dict)
    announcing: bool = False
    adding: bool = False

    def add(self, socket: GatewaySocket, mtype: Any) -> None:
        conn_id = socket.conn.id
        self.touched[conn_id] = socket
        if mtype in ANNOUNCEMENT_TYPES:
            self.announcing = True
            self.adding = self.adding or mtype not in REMOVAL_TYPES
        else:
            self.replied[conn_id] = socket


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
        self.sockets: dict[str, GatewaySocket] = {}
        #: connections closed because their outbox overflowed
        self.slow_consumers_closed = 0
        #: messages that could not be encoded for their recipient (not sent, nobody closed)
        self.undeliverable = 0
        #: events dropped for connections that have since closed (live ones are in attrs)
        self._dropped_closed = 0
        #: sockets with new output, written at the end of the current loop iteration
        self._dirty: dict[str, GatewaySocket] = {}
        self._write_scheduled = False
        #: sockets whose queue is over its soft limit, judged by the stall timer
        self._backlogged: dict[str, GatewaySocket] = {}
        self._stall_timer: asyncio.TimerHandle | None = None
        #: sockets whose writes wait for the announce timer (see dispatch)
        self._announcing: dict[str, GatewaySocket] = {}
        #: senders of the requests whose writes wait (see _defer)
        self._acks_waiting: set[str] = set()
        self._announce_timer: asyncio.TimerHandle | None = None
        #: every announcement once, in order; each reader's outbox keeps its place in it
        #: (server/announcements.py)
        self.announcements = AnnouncementLog()
        #: sockets whose peers read announcements
        self._readers: dict[str, GatewaySocket] = {}
        #: the log's end when the readers were last all written (what is after it waits)
        self._readers_written = 0

    def next_chunk_id(self) -> int:
        """An id for one chunked message the hub sends (unique on every connection)."""
        return next(self._chunk_ids)

    # ------------------------------------------------------------ registry

    def attach(self, socket: GatewaySocket) -> None:
        self.sockets[socket.conn.id] = socket
        self.hub.open(socket.conn)

    def detach(self, socket: GatewaySocket, reason: str = "Peer has been removed") -> None:
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

    def handle(self, socket: GatewaySocket, message: Message) -> Awaitable[None] | None:
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

    def _handle(self, socket: GatewaySocket, message: Message) -> None:
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

    def handle_batch(self, socket: GatewaySocket, items: list[Any]) -> None:
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

    def refuse(self, socket: GatewaySocket, message: Message | None, error: ProtocolError) -> None:
        """Reply with a GW3 ``error`` to what ``socket`` sent that could not even be decoded."""
        try:
            out = self.hub.error_reply(socket.conn, message, error)
        except Exception:
            self.log.exception("Interop: could not build an error reply")
            return
        self.dispatch(out)

    async def _resolve_then_handle(
        self, socket: GatewaySocket, kernel_id: str, message: Message
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
        touched = self._hold_for_announcements(routed)
        self._schedule_writes(touched)

    def _queue(self, out: Outgoing) -> _Routed:
        """Push each message on its recipient's outbox; close the recipients that overflowed."""
        routed = _Routed()
        overflowed: list[GatewaySocket] = []
        # a message object shared by several recipients is encoded once (once per kind of
        # recipient when it carries binary attachments, see server/attachments.py)
        frames = FrameCache()
        log = self.announcements
        for conn, message in out:
            if isinstance(message, Announcement):
                # for every reader, appended once (see Outbox.read); nobody reads: nothing
                if self._readers:
                    log.append(message.template)
                    routed.announcing = True
                    routed.adding = routed.adding or message.get("type") not in REMOVAL_TYPES
                continue
            socket = self.sockets.get(conn.id)
            if socket is None or socket.finished:
                continue
            if isinstance(message, Readership):
                if not self._read(socket, message, routed):
                    overflowed.append(socket)
                continue
            queued = self._push(socket, message, frames)
            if queued is None:
                continue
            if not queued:
                overflowed.append(socket)
                continue
            routed.add(socket, message.get("type"))
        for socket in overflowed:
            routed.touched.pop(socket.conn.id, None)
            socket.abort_slow_consumer()
        return routed

    def _read(self, socket: GatewaySocket, message: Readership, routed: _Routed) -> bool:
        """The socket's peer starts or stops reading announcements: False when its outbox
        overflowed. What a newcomer learns first is written at once, not held with its
        reply: in a large hub it is a long queue, and holding it would write every reader's
        queue at once (see _defer)."""
        conn_id = socket.conn.id
        if message.backlog is None:
            socket.outbox.stop_reading()
            self._readers.pop(conn_id, None)
            return True
        if not socket.outbox.read(self.announcements, message.peer_id_json, message.backlog):
            return False
        self._readers[conn_id] = socket
        if message.backlog and not socket.write_if_idle():
            routed.touched[conn_id] = socket
            routed.announcing = routed.adding = True
        return True

    def _push(self, socket: GatewaySocket, message: Message, frames: FrameCache) -> bool | None:
        """Encode ``message`` for ``socket`` and queue it: False when the outbox overflowed,
        None when it cannot be encoded (counted and logged, nobody closed)."""
        conn = socket.conn
        try:
            if type(message) is Addressed:  # an announcement's copy, encoded already
                frame = message.frame
            else:
                frame = frames.frame_for(message, wants_binary(conn.attrs.get("extensions")))
            return socket.outbox.push(message, frame)
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
            return None

    def _hold_for_announcements(self, routed: _Routed) -> dict[str, GatewaySocket]:
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

    def _schedule_writes(self, touched: dict[str, GatewaySocket]) -> None:
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
        self, touched: dict[str, GatewaySocket], replied: dict[str, GatewaySocket]
    ) -> dict[str, GatewaySocket]:
        """Hold the writes of a request that announced something until the announce timer;
        return the sockets to write now instead (none, unless a queue reached half its soft
        limit: events must not be dropped because of waiting announcements).

        ``replied`` (the request's sender) is remembered: if something else must be written
        to it before the timer, everything held is written then, so a peer never has the
        reply to its join or registration while the others' announcements of it still wait.
        """
        limits = self.limits
        now: dict[str, GatewaySocket] = {}
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

    def holds(self, socket: GatewaySocket) -> bool:
        """Are the socket's writes waiting for the announce timer (see :meth:`_defer`)?"""
        conn_id = socket.conn.id
        return conn_id in self._announcing or (
            self.announcements.end > self._readers_written and conn_id in self._readers
        )

    def _take_announcing(self) -> dict[str, GatewaySocket]:
        """Every held socket and, when announcements wait, every reader; the senders of the
        requests last (their replies go out after the announcements to the others)."""
        held, self._announcing = self._announcing, {}
        log = self.announcements
        if log.end > self._readers_written:
            self._readers_written = log.end
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

    def _watch_stall(self, socket: GatewaySocket) -> None:
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


class GatewaySocket(WebSocketHandler):
    """One GW3 connection. Subclasses decide :attr:`trusted` in ``get`` before the upgrade.

    ``initialize(service=...)`` is given by the route. Nothing in here may raise into tornado:
    an exception in ``on_message`` would abort this socket, and the core already turns bad
    requests into GW3 errors.
    """

    service: GatewayService
    conn: PeerConn
    outbox: Outbox
    #: set by the subclass's ``get`` when the upgrade itself was authenticated
    trusted: bool = False

    def initialize(self, service: GatewayService) -> None:
        self.service = service
        self.finished = False
        self._flushing = False
        self._flush_id = 0
        self._release_timer: asyncio.TimerHandle | None = None
        self._close_when_flushed: tuple[int, str] | None = None
        #: a kick found the socket busy: the flush callback must write what is queued
        self._kick_refused = False
        #: chunked messages being received (binary extension), created on the first chunk
        self._chunks: ChunkAssembler | None = None

    def get_compression_options(self) -> dict[str, Any] | None:
        """No permessage-deflate: GW3 frames are small JSON, where deflate costs more CPU per
        hop than it saves on loopback, and uncompressed frames can be batched per write."""
        return None

    def get_websocket_protocol(self) -> Any:
        """tornado's protocol with a leaner frame reader (see server/wsreader.py)."""
        return buffered_protocol(self)

    @property
    def max_message_size(self) -> int:
        """Frames above this close the socket with 1009 (tornado enforces it)."""
        return self.service.max_message_size

    # ------------------------------------------------------------ tornado hooks

    def open(self, *args: Any, **kwargs: Any) -> None:
        super().open(*args, **kwargs)
        self.conn = PeerConn(trusted=self.trusted, remote_ip=self.request.remote_ip or "")
        self.outbox = Outbox(
            self.conn, self.service.limits, snapshot=self.service.hub.context_snapshot
        )
        self.set_nodelay(True)
        self.service.attach(self)
        self.service.log.debug(
            "Interop: %s opened from %s (trusted=%s)", self.conn, self.conn.remote_ip, self.trusted
        )

    def on_message(self, message: str | bytes) -> Awaitable[None] | None:
        if self.finished or self._close_when_flushed is not None:
            return None  # refused connection: nothing more is processed from it
        conn = self.conn
        try:
            if not isinstance(message, bytes):
                if is_batch(message) and wants_batch(conn.attrs.get("extensions")):
                    self.service.handle_batch(self, decode_batch(message))
                    return None
                decoded = decode(message)
            elif wants_binary(conn.attrs.get("extensions")):
                if len(message) >= LARGE_FRAME:
                    tune_for_large_frames()  # once: see protocol/malloc.py
                if is_chunk(message):
                    whole = self._feed_chunk(message)
                    if whole is None:
                        return None  # more chunks to come (or a refused message's rest)
                    decoded = decode_frame(whole, conn.attrs.get("shm"))
                else:
                    # attachments: see server/attachments.py (shared memory: server/shm.py)
                    decoded = decode_frame(message, conn.attrs.get("shm"))
            else:
                raise ProtocolError(
                    Reason.INVALID_MESSAGE,
                    "Binary frames need the 'binary' extension negotiated in hello: send GW3 "
                    "JSON text frames",
                )
        except ProtocolError as error:
            self.service.refuse(self, error.request, error)
            return None
        # an awaitable (a claimed kernel being checked): tornado waits for it, order is kept
        return self.service.handle(self, decoded)

    def _feed_chunk(self, frame: bytes) -> bytearray | None:
        """One chunk frame of a large message: the whole frame once its last chunk is in."""
        chunks = self._chunks
        if chunks is None:
            service = self.service
            chunks = self._chunks = ChunkAssembler(service.max_attachment_bytes, service.reassembly)
        try:
            return chunks.feed(frame)
        except ChunkTooLarge as error:
            refusal = ProtocolError(Reason.LIMITS_EXCEEDED, str(error))
            self.service.refuse(self, error.header, refusal)
        except FrameError as error:
            bad = ProtocolError(Reason.INVALID_MESSAGE, f"Bad chunk: {error}")
            self.service.refuse(self, None, bad)
        return None

    def on_close(self) -> None:
        self.finished = True
        self._drop_chunks()
        self._cancel_release()
        if hasattr(self, "outbox"):
            self.outbox.close("socket closed")
            self.service.detach(self)

    # ------------------------------------------------------------ writing

    def write_if_idle(self) -> bool:
        """Write what is queued now if the socket has no unsent bytes (True), else nothing."""
        if self.finished or (self._flushing and self._socket_busy()):
            return False
        self.kick()
        return True

    def kick(self) -> None:
        """Write everything queued, unless the socket still has unsent bytes.

        "Busy" is tornado's own write buffer being non-empty, i.e. the kernel did not take the
        previous batch: only then do messages wait in the outbox (and count against its
        limits). A consumer that keeps up never accumulates anything there, however bursty
        the traffic of the other peers is. A batch is framed here and handed to the stream in
        one write (one system call for many small frames); the gateway never negotiates
        compression, so these frames are exactly what ``write_message`` would produce.
        """
        if self.finished:
            return
        if self._flushing and self._socket_busy():
            self._kick_refused = True
            return  # the pending flush callback kicks again
        self._kick_refused = False
        outbox = self.outbox
        frames = outbox.take()
        if outbox.held and self._release_timer is None:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:  # no loop (shutdown paths): nothing to wait for
                outbox.release()
            else:
                self._release_timer = loop.call_later(self.service.removal_delay, self._release)
        if not frames:
            if (
                self._close_when_flushed is not None
                and not outbox.has_output
                and not self._socket_busy()
            ):
                self.finish_connection(*self._close_when_flushed)
                self.service.detach(self)
            return
        try:
            done = self._write_frames(frames)
        except (WebSocketClosedError, StreamClosedError):
            self._lost()
            return
        except Exception:
            self.service.log.exception("Interop: write failed on %s", self.conn)
            self._lost()
            return
        self._flushing = True
        self._flush_id += 1
        flush_id = self._flush_id
        done.add_done_callback(lambda future: self._flushed(future, flush_id))

    def _write_frames(self, frames: list[bytes | Rendered]) -> Any:
        """Write text frames; returns the future of the last write."""
        connection = self.ws_connection
        if connection is None or connection.is_closing():
            raise WebSocketClosedError()
        stream = uncompressed_stream(connection)
        if stream is None:
            last = None  # not the protocol we know: let tornado frame each message
            plain: list[bytes] = []
            for item in frames:
                if isinstance(item, Rendered):
                    plain.extend(item.frames())
                else:
                    plain.append(item)
            for frame in plain:
                binary = is_binary(frame)
                chunk_size = self.service.chunk_size
                if binary and len(frame) > chunk_size:
                    chunks = [
                        b"".join([head, *pieces])
                        for head, pieces in chunk_views(
                            [frame], len(frame), self.service.next_chunk_id(), chunk_size
                        )
                    ]
                else:
                    chunks = [frame]
                for chunk in chunks:
                    if last is not None:
                        last.add_done_callback(_consume)
                    last = self.write_message(chunk, binary=binary)
            return last
        parts: list[Any] = []
        last = None
        written = 0
        for item in frames:
            if isinstance(item, Rendered):  # announcements, framed already (one join)
                wire = item.wire()
                written += len(wire)
                parts.append(wire)
                continue
            frame = item
            size = len(frame)
            written += size
            if size > _LARGE:
                # a large frame is written from the encoded frame itself (no copy into the
                # batch; every recipient writes the same object), a binary one cut into chunk
                # frames when it would exceed what a peer accepts in one frame
                if parts:
                    stream.write(b"".join(parts)).add_done_callback(_consume)
                    parts = []
                last = self._write_large(stream, frame)
                continue
            parts.append(_text_frame_header(size, 0x82 if is_binary(frame) else 0x81))
            parts.append(frame)
        if parts:
            if last is not None:
                last.add_done_callback(_consume)
            last = stream.write(parts[0] + parts[1] if len(parts) == 2 else b"".join(parts))
        self.service.heap.note(written)
        return last

    def _write_large(self, stream: Any, frame: bytes) -> Any:
        """Write one large frame: whole, or (binary) as chunk frames; the last write's future."""
        size = len(frame)
        chunk_size = self.service.chunk_size
        binary = is_binary(frame)
        if size <= chunk_size or not binary:
            opcode = 0x82 if binary else 0x81
            stream.write(_text_frame_header(size, opcode)).add_done_callback(_consume)
            return stream.write(frame)
        last = None
        for head, pieces in chunk_views([frame], size, self.service.next_chunk_id(), chunk_size):
            length = len(head) + sum(p.nbytes for p in pieces)
            if last is not None:
                last.add_done_callback(_consume)
            stream.write(_text_frame_header(length, 0x82) + head).add_done_callback(_consume)
            for piece in pieces[:-1]:
                stream.write(piece).add_done_callback(_consume)
            last = stream.write(pieces[-1])
        return last

    def _release(self) -> None:
        self._release_timer = None
        self.outbox.release()
        self.kick()

    def _socket_busy(self) -> bool:
        connection = self.ws_connection
        stream = getattr(connection, "stream", None)
        return bool(stream is not None and stream.writing())

    def _flushed(self, future: Any, flush_id: int) -> None:
        if future.cancelled() or future.exception() is not None:
            self._lost()
            return
        if flush_id == self._flush_id:
            self._flushing = False
        if self._close_when_flushed is not None or (
            # what waits for the announce timer is written by it (a storm of joins: one write
            # per timer, not one per write completed), unless a write was refused meanwhile
            self.outbox.has_output and (self._kick_refused or not self.service.holds(self))
        ):
            self.kick()

    def _drop_chunks(self) -> None:
        """A message cut off by the close is dropped with it (its bytes leave the budget)."""
        if self._chunks is not None:
            self._chunks.clear()
            self._chunks = None

    def _lost(self) -> None:
        """The peer went away under us: release it now, tornado calls on_close later."""
        self.finished = True
        self._drop_chunks()
        self.outbox.close("socket lost")
        self._cancel_release()
        self.service.detach(self)

    # ------------------------------------------------------------ closing

    def _cancel_release(self) -> None:
        if self._release_timer is not None:
            self._release_timer.cancel()
            self._release_timer = None

    def close_after_flush(self, code: int, reason: str) -> None:
        """Close once what is queued (an error reply, typically) has been written."""
        if self._close_when_flushed is None:
            self._close_when_flushed = (code, reason[:120])
        if not self._flushing:
            self.kick()

    def abort_slow_consumer(self) -> None:
        """The outbox overflowed: close at once and release the peer for the others."""
        if self.finished:
            return  # several messages of one batch can find the same outbox overflowed
        reason = self.outbox.closed_reason or "slow consumer"
        self.service.slow_consumers_closed += 1
        self.service.log.warning("Interop: closing %s: %s", self.conn, reason)
        self.finish_connection(SLOW_CONSUMER_CLOSE_CODE, reason)
        self.service.detach(self, "Peer was too slow to consume its messages")

    def finish_connection(self, code: int, reason: str) -> None:
        """Close the socket with ``code``/``reason`` and refuse anything further."""
        self.finished = True
        self.outbox.close(reason)
        self._cancel_release()
        try:
            self.close(code, reason[:120])  # a close reason must fit in 123 bytes
        except Exception:
            self.service.log.debug("Interop: close failed on %s", self.conn, exc_info=True)
