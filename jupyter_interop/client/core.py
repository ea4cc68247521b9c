"""The client's side of GW3 without I/O: frames in, replies resolved and handlers called.

In the style of the hub core (hub/core.py): no socket, no task, no lock. :meth:`ClientProtocol.
receive` takes a frame as read from the socket (text, binary, a chunk or a batch, deframed by
protocol/framing.py) and routes each message: a reply resolves the pending request with its
``request_id``, an event goes to the handlers registered with :meth:`~ClientProtocol.on`, a run
of consecutive events to a run handler (:meth:`~ClientProtocol.on_many`), and a message that
breaks a protocol limit is refused. :meth:`~ClientProtocol.request` and :meth:`~ClientProtocol.
frame` return the frame to send; client/connection.py writes it, keeps the socket alive and
reconnects. Unit-tested with frames only (tests/unit/test_client_core.py).
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable
from typing import Any

from ..protocol.codec import decode
from ..protocol.errors import ProtocolError
from ..protocol.framing import CHUNK_MAGIC, ChunkAssembler, decode_batch
from ..protocol.malloc import tune_for_large_frames
from ..protocol.wire import (
    BINARY_EXTENSION,
    CONTEXT_CREATED_TYPE,
    ERROR_TYPE,
    EXTENSIONS_KEY,
    GLOBAL_DOMAIN,
    HELLO_TYPE,
    RESULT_TYPE,
    SUBSCRIBED_CONTEXT_TYPE,
    SUBSCRIBED_TYPE,
    SUCCESS_TYPE,
    TOKEN_TYPE,
    WELCOME_TYPE,
)
from .codec import Codec, revive
from .errors import RemoteError
from .instance import Instance

__all__ = ["REPLY_TYPES", "ClientProtocol", "Deadlines", "remote_error"]

log = logging.getLogger("jupyter_interop.client")

Message = dict[str, Any]
Handler = Callable[[Message], None]
RunHandler = Callable[[list[Message]], None]

#: reply types that resolve a pending request (matched by ``request_id``)
REPLY_TYPES = frozenset(
    {
        SUCCESS_TYPE,
        ERROR_TYPE,
        RESULT_TYPE,
        SUBSCRIBED_TYPE,
        CONTEXT_CREATED_TYPE,
        SUBSCRIBED_CONTEXT_TYPE,
        WELCOME_TYPE,
        TOKEN_TYPE,
    }
)


#: request_id -> (its future, what it is for in error messages, its on_reply hook); the
#: future is anything with ``done``, ``set_result`` and ``set_exception`` (an asyncio future)
PendingTable = dict[str, tuple[Any, str, Callable[[Message], None] | None]]


class ClientProtocol:
    """Pending requests, routing of what the hub sends, and the identity ``welcome`` gave."""

    def __init__(self) -> None:
        self.codec = Codec(binary=False)
        self.peer_id: str | None = None
        self.instance: Instance | None = None
        self.welcome: Message = {}
        #: the extensions the hub accepted (``welcome``)
        self.extensions: Message = {}
        self.hub_id: str | None = None
        self.pending: PendingTable = {}
        self._ids = itertools.count(1)
        self._handlers: dict[tuple[str, str], list[Handler]] = {}
        #: (domain, type) -> handler of runs of consecutive such messages (see on_many)
        self._many: dict[tuple[str, str], RunHandler] = {}
        #: large binary messages from the hub arriving as chunk frames
        self._chunks = ChunkAssembler()

    # ------------------------------------------------------------------ routing table

    def on(self, domain: str, mtype: str, handler: Handler) -> None:
        """Call ``handler(message)`` for every event of this domain and type."""
        self._handlers.setdefault((domain, mtype), []).append(handler)

    def on_many(self, domain: str, mtype: str, handler: RunHandler) -> None:
        """Call ``handler(messages)`` with each run of consecutive events of this domain and
        type: a batch frame of stream events is one call, not one per event."""
        key = (domain, mtype)
        if mtype in REPLY_TYPES or key in self._handlers or key in self._many:
            raise ValueError(f"{domain}/{mtype} cannot take a run handler")
        self._many[key] = handler

    # ------------------------------------------------------------------ sending

    def request(
        self,
        message: Message,
        future: Any,
        what: str,
        on_reply: Callable[[Message], None] | None = None,
    ) -> tuple[str, Any]:
        """Stamp ``message`` as a request, encode it and await its reply in ``future``:
        (its request_id, the frame to send). A SerializationError leaves nothing behind.
        ``on_reply(reply)`` runs when a successful reply is read, before any later message."""
        request_id = str(next(self._ids))
        message["request_id"] = request_id
        if message.get("type") != HELLO_TYPE:
            message["peer_id"] = self.peer_id
        frame = self.codec.encode(message)
        self.pending[request_id] = (future, what, on_reply)
        return request_id, frame

    def forget(self, request_id: str) -> None:
        """The request was answered, timed out or abandoned."""
        self.pending.pop(request_id, None)

    def frame(self, message: Message) -> Any:
        """The frame of a fire-and-forget message (stamped with an id and our peer id)."""
        if "request_id" not in message:
            message["request_id"] = str(next(self._ids))
        message["peer_id"] = self.peer_id
        return self.codec.encode(message)

    def fail_pending(self, error: Callable[[str], BaseException]) -> None:
        """Fail every request still waiting, with ``error(what)``; forget them all."""
        pending, self.pending = self.pending, {}
        # a copy: a thread sending a request may still add to the old table (connection.py)
        for future, what, _ in list(pending.values()):
            if not future.done():
                future.set_exception(error(what))

    def lost(self) -> None:
        """The socket dropped: a message cut off in chunks is never completed."""
        self._chunks.clear()

    # ------------------------------------------------------------------ welcome

    def welcomed(self, welcome: Message, tune_allocator: bool) -> None:
        """The identity, extensions and codec a ``welcome`` gives this connection."""
        self.welcome = welcome
        self.peer_id = str(welcome.get("peer_id"))
        identity = welcome.get("resolved_identity") or {}
        self.instance = Instance.from_identity(identity, self.peer_id)
        accepted = (welcome.get("extensions") or {}).get(EXTENSIONS_KEY) or {}
        self.extensions = accepted if isinstance(accepted, dict) else {}
        self.codec = Codec(
            binary=bool(self.extensions.get(BINARY_EXTENSION)), tune_allocator=tune_allocator
        )
        info = (welcome.get("options") or {}).get("info") or {}
        self.hub_id = info.get("hub_id") if isinstance(info, dict) else None

    # ------------------------------------------------------------------ receiving

    def receive(self, frame: bytes | bytearray | str) -> None:
        """One frame from the hub, its messages handled in order (failures are logged)."""
        try:
            self._receive(frame)
        except Exception:
            log.exception("Interop: could not handle a message from the hub")

    def _receive(self, frame: Any) -> None:
        if not isinstance(frame, str) and frame[:4] == CHUNK_MAGIC:
            if self.codec.tune_allocator:
                # the transport's frame-sized buffers reused from the heap for the chunks
                # that follow, not mapped afresh (once: see protocol/malloc.py)
                tune_for_large_frames()
            # one writable buffer (protocol/chunks.py): numpy and Arrow view it, no copy
            whole = self._chunks.feed(frame)
            if whole is None:
                return  # more chunks to come
            frame = whole
        first = frame[:1]
        try:
            if first in (b"[", "["):  # a batch frame: its messages in order
                items = decode_batch(frame)
                if Codec.needs_revive(frame):
                    items = revive(items)
                self._receive_batch(items)
                return
            if not isinstance(frame, str) and first != b"{":
                message = self.codec.decode_binary(frame)
                if not isinstance(message, dict):
                    return
            else:
                message = decode(frame)
                if Codec.needs_revive(frame):
                    message = revive(message)
        except ProtocolError as error:  # not JSON, or nested too deep (protocol/limits.py)
            self.refuse(error)
            return
        self._route(message)

    def refuse(self, error: ProtocolError) -> None:
        """A message from the hub that breaks a protocol limit is not handled: the request it
        answers fails with the reason, anything else is logged."""
        message = error.request if isinstance(error.request, dict) else {}
        request_id = message.get("request_id")
        entry = self.pending.get(str(request_id)) if request_id is not None else None
        if entry is not None and not entry[0].done():
            entry[0].set_exception(RemoteError(error.reason, error.reason_uri))
            return
        log.warning("Interop: ignored a %r message from the hub: %s", message.get("type"), error)

    def _receive_batch(self, items: list[Any]) -> None:
        """The messages of a batch frame in order; runs of consecutive messages that have a
        run handler (:meth:`on_many`) go to it in one call each."""
        many = self._many
        run: list[Message] = []
        run_type: Any = None
        run_domain: Any = None
        for item in items:
            if not isinstance(item, dict):
                if isinstance(item, ProtocolError):  # nested too deep: refused
                    self.refuse(item)
                continue
            mtype = item.get("type")
            domain = item.get("domain", GLOBAL_DOMAIN)
            if run and mtype == run_type and domain == run_domain:
                run.append(item)
                continue
            if run:
                self._run((run_domain, run_type), run)
                run = []
            if (domain, mtype) in many:
                run_type, run_domain = mtype, domain
                run = [item]
                continue
            try:
                self._route(item)
            except Exception:
                log.exception("Interop: could not handle a message from the hub")
        if run:
            self._run((run_domain, run_type), run)

    def _run(self, key: Any, run: list[Message]) -> None:
        try:
            self._many[key](run)
        except Exception:
            log.exception("Interop: handling %s failed", key[1])

    def _route(self, message: Message) -> None:
        mtype = message.get("type")
        request_id = message.get("request_id")
        if request_id is not None and mtype in REPLY_TYPES:
            entry = self.pending.get(str(request_id))
            if entry is not None:
                future, _, on_reply = entry
                if not future.done():
                    if mtype == ERROR_TYPE:
                        future.set_exception(remote_error(message))
                    else:
                        if on_reply is not None:
                            on_reply(message)
                        future.set_result(message)
                return
        key = (message.get("domain", GLOBAL_DOMAIN), mtype)
        many = self._many.get(key)  # type: ignore[arg-type]
        if many is not None:
            self._run(key, [message])
            return
        handlers = self._handlers.get(key)  # type: ignore[arg-type]
        if handlers:
            for handler in handlers:
                try:
                    handler(message)
                except Exception:
                    log.exception("Interop: handling %s failed", mtype)
        elif mtype == ERROR_TYPE:
            log.info(
                "Interop: the hub refused a message: %s (%s)",
                message.get("reason"),
                message.get("reason_uri"),
            )


class Deadlines:
    """When the requests sent from other threads time out (``Connection.request_threadsafe``):
    request_id -> (deadline, what, timeout), and the earliest deadline, for the one timer the
    connection keeps on its loop. No lock here: the connection holds one around each call."""

    __slots__ = ("_entries", "earliest")

    def __init__(self) -> None:
        self._entries: dict[str, tuple[float, str, float]] = {}
        #: the earliest deadline noted (None: none is)
        self.earliest: float | None = None

    def add(self, request_id: str, deadline: float, what: str, timeout: float) -> bool:
        """Note a request's deadline; True when it is the earliest now (re-arm the timer)."""
        self._entries[request_id] = (deadline, what, timeout)
        if self.earliest is None or deadline < self.earliest:
            self.earliest = deadline
            return True
        return False

    def discard(self, request_id: str) -> None:
        """The request is answered or abandoned (its deadline may stay the earliest: the
        timer then finds nothing due and is set for the next one)."""
        self._entries.pop(request_id, None)

    def take_due(self, now: float) -> list[tuple[str, str, float]]:
        """Forget and return ``(request_id, what, timeout)`` of each request whose deadline
        is ``now`` or earlier."""
        entries = self._entries
        due = [(rid, entry) for rid, entry in entries.items() if entry[0] <= now]
        for rid, _ in due:
            del entries[rid]
        self.earliest = min((entry[0] for entry in entries.values()), default=None)
        return [(rid, what, timeout) for rid, (_, what, timeout) in due]


def remote_error(message: Message) -> RemoteError:
    """The error a GW3 ``error`` reply raises in the caller."""
    return RemoteError(
        str(message.get("reason") or "error"),
        message.get("reason_uri"),
        message.get("context"),
    )
