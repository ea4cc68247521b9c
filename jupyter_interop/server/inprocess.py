"""A connection of the federation link to its own hub, in the same process (no socket).

The link (``server/federation.py``) holds several connections to its hub: a proxy per peer of
another hub, the observer, the contexts peer. They are peers like any other for the hub: the
same ``hello`` with the federation token (``hub/core.py:_federated_hello``), the same core,
the same :class:`~.outbox.Outbox` (order, coalescing, limits). Only the hand-over differs
from a WebSocket (``server/gateway.py``): what the link sends is given to the gateway service
as the message it is, never rendered as JSON and parsed again, and what the hub writes
leaves the outbox as frames that are decoded and handed to the link when the service writes
(once per loop turn, for everything queued meanwhile), without a loop turn of its own.

Back-pressure: a hand-over is one write. While it is under way the connection is busy, as a
socket is while the kernel has not taken its last write, so what the hub queues meanwhile
waits in the outbox under its limits (events over the soft limit dropped and counted, the
connection closed as a slow consumer over the hard limit or the stall limit). The connection
itself holds at most one hand-over: what one write took from the outbox.

With ``values`` (message types) the connection takes binary values as attachments
(``server/attachments.py``): those messages keep them, to cross hubs as buffers
(``federation_values.py``); any other message gets them in their JSON form.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import orjson

from ..hub.connection import PeerConn
from ..protocol import Reason, messages
from ..protocol.chunks import ReassemblyBudget
from ..protocol.codec import encode
from ..protocol.limits import MAX_NESTING, too_deep_error, value_depth
from ..protocol.wire import (
    AGM_DOMAIN,
    BINARY_EXTENSION,
    EXTENSIONS_KEY,
    INVOKE_TYPE,
    RUNS_EXTENSION,
    WELCOME_TYPE,
)
from .announcements import Rendered
from .attachments import decode_frame
from .outbox import Outbox

if TYPE_CHECKING:
    from .service import GatewayService

__all__ = ["InProcessConnection"]

Message = dict[str, Any]


class InProcessConnection:
    """One peer of the link on its own hub; ``on_message`` gets what the hub sends after the
    ``welcome``. Satisfies ``server/transport.py:GatewayConnection`` for the gateway service."""

    def __init__(
        self,
        service: GatewayService,
        on_message: Callable[[Message], None],
        values: frozenset[str] = frozenset(),
        budget: ReassemblyBudget | None = None,
    ) -> None:
        self.service = service
        self.on_message = on_message
        self.values = values
        #: the largest call message taken with its values (the link's budget)
        self.max_value_bytes = budget.limit if budget is not None else service.max_attachment_bytes
        self.peer_id: str | None = None
        self.conn = PeerConn()
        self.outbox = Outbox(self.conn, service.limits, snapshot=service.hub.context_snapshot)
        self.finished = False
        self.closed = asyncio.Event()
        self._ids = itertools.count(1)
        self._attached = False
        #: what the last write took from the outbox, handed over on the next loop turn
        self._written: list[bytes | Rendered] = []
        self._handover: asyncio.Handle | None = None
        #: a hand-over is under way (what the link does with a message may reach the hub)
        self._handing = False
        #: a kick found the connection busy: the hand-over writes again after it
        self._kick_refused = False
        self._close_when_flushed: tuple[int, str] | None = None
        #: while opening: the answer to ``hello``, then what comes before ``open`` returns
        self._welcome: asyncio.Future[Message] | None = None
        self._early: list[Message] | None = None

    # ------------------------------------------------------------------ the link's side

    async def open(self, hello: Message, *, agm: bool = True) -> None:
        """Attach to the service and pass ``hello``, then join agm (unless ``agm`` is false:
        a connection that needs no announcements); raises ConnectionError when the hub
        refuses it."""
        # runs: a run of stream items crosses hubs as one message (federation_streams.py)
        ours = {RUNS_EXTENSION: True, **({BINARY_EXTENSION: True} if self.values else {})}
        welcome = self._welcome = asyncio.get_running_loop().create_future()
        self._attached = True
        self.service.attach(self)
        self.send(messages.hello(extensions={EXTENSIONS_KEY: ours}, **hello))
        answer = await welcome
        if answer.get("type") != WELCOME_TYPE:
            self.close()
            raise ConnectionError(f"the hub refused the federation link: {answer!r}")
        self.peer_id = answer["peer_id"]
        if agm:
            self.send(messages.join(AGM_DOMAIN))
        early, self._early = self._early or [], None
        for message in early:
            self.on_message(message)

    def send(self, message: Message) -> None:
        """Hand ``message`` to the hub (binary values as attachments, by reference)."""
        if self.finished or not self._attached:
            return
        message.setdefault("request_id", f"f{next(self._ids)}")
        if self.peer_id is not None:
            message.setdefault("peer_id", self.peer_id)
        if value_depth(message, MAX_NESTING + 1) > MAX_NESTING:
            self.service.refuse(self, message, too_deep_error(message))
            return
        self.service.handle(self, message)  # (no kernel is claimed: nothing to wait for)

    async def send_value(self, message: Message) -> None:
        """Send a message that may hold binary values (attachments)."""
        self.send(message)

    def close(self) -> None:
        """Leave the hub (idempotent)."""
        attached = self._attached and not self.finished
        self._finish("closed by the federation link")
        if attached:
            self.service.detach(self)

    # ------------------------------------------------------------------ the service's side

    def kick(self) -> None:
        """Take what the outbox holds and hand it over now, unless a hand-over is under way
        (then it takes the rest when it is done)."""
        self._take(at_once=True)

    def write_if_idle(self) -> bool:
        """Take what the outbox holds for a hand-over on the next loop turn: the service
        calls this while it routes a message, which a hand-over now would interleave with."""
        if self.finished or self._busy():
            return False
        self._take(at_once=False)
        return True

    def _busy(self) -> bool:
        return self._handing or self._handover is not None

    def _take(self, *, at_once: bool) -> None:
        if self.finished:
            return
        if self._busy():
            self._kick_refused = True
            return
        self._kick_refused = False
        outbox = self.outbox
        frames = outbox.take()
        if not frames and not outbox.held:
            if self._close_when_flushed is not None and not outbox.has_output:
                self.finish_connection(*self._close_when_flushed)
                self.service.detach(self)
            return
        # a removal held back after other messages (Outbox.held) goes in the next hand-over
        self._written = frames
        if at_once:
            self._hand_over()
        else:
            self._handover = asyncio.get_running_loop().call_soon(self._hand_over)

    def close_after_flush(self, code: int, reason: str) -> None:
        if self._close_when_flushed is None:
            self._close_when_flushed = (code, reason)
        if not self._busy():
            self.kick()

    def abort_slow_consumer(self) -> None:
        if self.finished:
            return
        reason = self.outbox.closed_reason or "slow consumer"
        self.service.slow_consumers_closed += 1
        self.service.log.warning("Interop federation: closing %s: %s", self.conn, reason)
        self.finish_connection(0, reason)
        self.service.detach(self, "Peer was too slow to consume its messages")

    def finish_connection(self, code: int, reason: str) -> None:
        self._finish(reason)

    # ------------------------------------------------------------------ hand-over

    def _hand_over(self) -> None:
        self._handover = None
        frames, self._written = self._written, []
        self._handing = True
        try:
            for frame in frames:
                for message in self._decode(frame):
                    if self.finished:
                        return
                    try:
                        self._receive(message)
                    except Exception:  # the link's bug: the messages after it still go
                        self.service.log.exception(
                            "Interop federation: a %r message of the hub failed in the link",
                            message.get("type"),
                        )
        finally:
            self._handing = False
        outbox = self.outbox
        outbox.release()  # a held removal goes now, in a hand-over of its own
        if self._close_when_flushed is not None or (
            outbox.has_output and (self._kick_refused or not self.service.holds(self))
        ):
            self.kick()

    def _decode(self, frame: bytes | Rendered) -> Iterator[Message]:
        if type(frame) is Rendered:
            for each in frame.frames():
                yield orjson.loads(each)
            return
        assert isinstance(frame, bytes)
        if frame[:1] == b"{":
            yield orjson.loads(frame)
            return
        message = decode_frame(frame)
        mtype = message.get("type")
        if mtype not in self.values:
            yield orjson.loads(encode(message))  # binary values in their JSON form
        elif mtype == INVOKE_TYPE and len(frame) > self.max_value_bytes:
            self._refuse(message, len(frame))
        else:
            yield message

    def _refuse(self, invoke: Message, size: int) -> None:
        """A call whose values are above the link's budget fails at once for its caller."""
        reason = (
            f"Not sent to another hub: a message of {size} bytes is above the "
            f"{self.max_value_bytes} bytes the federation link holds at a time "
            "(c.InteropHub.federation_max_value_bytes)"
        )
        error = messages.invocation_error(
            invoke.get("invocation_id"), Reason.INVOCATION_FAILURE, reason
        )
        self.send(error)

    def _receive(self, message: Message) -> None:
        welcome = self._welcome
        if welcome is not None:  # the answer to hello
            self._welcome = None
            self._early = []
            if not welcome.done():
                welcome.set_result(message)
        elif self._early is not None:  # before open returned
            self._early.append(message)
        else:
            self.on_message(message)

    def _finish(self, reason: str) -> None:
        if self.finished:
            return
        self.finished = True
        self.outbox.close(reason)
        if self._handover is not None:
            self._handover.cancel()
            self._handover = None
        self._written = []
        if self._welcome is not None and not self._welcome.done():
            self._welcome.set_exception(
                ConnectionError(f"the hub closed the link's connection: {reason}")
            )
        self.closed.set()
