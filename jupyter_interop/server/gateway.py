"""The tornado side of the gateway: one :class:`GatewaySocket` per WebSocket.

Shared by the Jupyter server extension and the standalone hub: both only decide whether an
upgrade is *trusted* (Jupyter's own auth, or the interop token in the URL); everything after
the upgrade is the socket's and the service's. Per socket: one :class:`PeerConn` for the core,
one :class:`Outbox` for what the core sends it. The socket's hooks decode frames (text, batch,
binary, chunks) and hand the messages to the hub's one ``GatewayService``
(``server/service.py``), which handles them in arrival order and queues what the core returns
per recipient; the socket writes its outbox to tornado's stream in batches (all that piled up,
then one flush; the framing is ``server/framewriter.py``'s), so a fast peer gets throughput
and a slow one only slows itself. tornado's private API is used in ``server/wsreader.py``
only."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable
from typing import TYPE_CHECKING, Any

from tornado.iostream import StreamClosedError
from tornado.websocket import WebSocketClosedError, WebSocketHandler

from ..hub.connection import PeerConn
from ..protocol import ProtocolError, Reason, decode
from ..protocol.chunks import ChunkTooLarge, ReceivedPieces
from ..protocol.frames import FrameError
from ..protocol.framing import ChunkAssembler, decode_batch, is_batch, is_chunk
from ..protocol.malloc import LARGE_FRAME, tune_for_large_frames
from ..protocol.wire import BATCH_EXTENSION
from .announcements import Rendered
from .attachments import decode_frame, wants_binary
from .framewriter import write_frames, write_messages
from .outbox import (
    SLOW_CONSUMER_CLOSE_CODE,
    Outbox,
)
from .wsreader import buffered_protocol, uncompressed_stream

if TYPE_CHECKING:
    from .service import GatewayService

__all__ = ["GatewaySocket", "wants_batch"]


def wants_batch(extensions: Any) -> bool:
    """Did the peer negotiate batch frames (its accepted extensions)?"""
    return bool(extensions) and BATCH_EXTENSION in extensions


class GatewaySocket(WebSocketHandler):
    """One GW3 connection. Subclasses decide :attr:`trusted` in ``get`` before the upgrade.

    ``initialize(service=...)`` is given by the route. Nothing in here may raise into tornado:
    an exception in ``on_message`` would abort this socket, and the core already turns bad
    requests into GW3 errors.
    """

    # The socket's own state lives in slots: tornado's handler already sets about 27
    # attributes, and on CPython an instance dict with 30 or more stops sharing its keys with
    # the other instances' (about 1.3 KiB more per idle connection, see BufferedProtocol).
    __slots__ = (
        "_chunks",
        "_close_when_flushed",
        "_flush_id",
        "_flushing",
        "_kick_refused",
        "_release_timer",
        "conn",
        "finished",
        "outbox",
        "service",
    )

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

    def on_message(self, message: str | bytes | bytearray) -> Awaitable[None] | None:
        if self.finished or self._close_when_flushed is not None:
            return None  # refused connection: nothing more is processed from it
        conn = self.conn
        try:
            if isinstance(message, str):  # (a large binary frame is a bytearray)
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

    def _feed_chunk(self, frame: bytes | bytearray) -> ReceivedPieces | None:
        """One chunk frame of a large message: the whole frame once its last chunk is in, as
        the pieces that arrived (forwarded as they are, never joined: protocol/chunks.py)."""
        chunks = self._chunks
        if chunks is None:
            service = self.service
            chunks = self._chunks = ChunkAssembler(
                service.max_attachment_bytes, service.reassembly, join=False
            )
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
        self._flush_id += 1
        if done is None:  # the kernel took it all at once: flushed already
            self._flushing = False
            if self._close_when_flushed is not None or outbox.has_output:
                # (no loop: a shutdown path, nothing more is written)
                with contextlib.suppress(RuntimeError):
                    asyncio.get_running_loop().call_soon(self._after_flush)
            return
        self._flushing = True
        flush_id = self._flush_id
        done.add_done_callback(lambda future: self._flushed(future, flush_id))

    def _write_frames(self, frames: list[bytes | Rendered]) -> Any:
        """Write the frames (server/framewriter.py); returns the future of the last write, or
        None when they were all taken by the kernel at once."""
        connection = self.ws_connection
        if connection is None or connection.is_closing():
            raise WebSocketClosedError()
        service = self.service
        stream = uncompressed_stream(connection)
        if stream is None:  # not the protocol we know: let tornado frame each message
            return write_messages(
                self.write_message, frames, service.chunk_size, service.next_chunk_id
            )
        last, written = write_frames(stream, frames, service.chunk_size, service.next_chunk_id)
        service.heap.note(written)
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
        self._after_flush()

    def _after_flush(self) -> None:
        """What was written has left: write what is queued now, or close if asked to."""
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
