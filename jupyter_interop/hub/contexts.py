"""Shared contexts: create, subscribe, update with three delta forms, lifetimes, persistence.

Lifetimes are io.Connect's (``protocol/wire.py:CONTEXT_LIFETIMES``). The creator of an
``ownership`` context is its owner: only it may destroy it, and it may make it read-only for
every other peer (``read_only`` in ``create-context``, ``set-context-read-only``; the
``read-only`` extension, docs/GATEWAYS.md): the hub then refuses their updates with
``context.errors.not_authorized`` naming the owner, whatever client they use.

Outgoing messages may reference a context's data: the transport encodes them before the next
``handle`` call (the hub's contract), so no copy is made on the hot path.

Durable acknowledgements: when the store says ``ack_after_commit``, the reply to a write of a
retained context (``context-created``, the ``success`` of an update or a destroy) is held here
with the store's sequence number of that write, and released by :meth:`ContextDomain.
release_durable` once the store committed it; the I/O layer calls that after each commit, so
this module never waits for the disk. Members receive the update at once. Context messages to
a peer that has a reply held queue behind it, so that a writer still sees its own ack before
the updates that others made after it (the Python client applies its own delta on the ack).

Federation (docs/FEDERATION.md, "Contexts and channels"): while the federation link's contexts
peer is attached, a retained context is one object across the hubs of a space, kept in a KV
bucket. Its updates and its destruction are not applied here when a peer sends them: they go
to the link (a ``federation-context-publish`` with a ticket) and come back, in the bucket's
revision order, as ``federation-context-apply``; only then do members see them and the writer
get its ack, so every hub applies every change once and in one order. A creation is applied
here at once and published with a ticket; its creator's ``context-created`` waits for the
bucket (a creation the link cannot write fails for it, and the context goes), and the
revision that brings it back numbers it. The other lifetimes stay local to their hub.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from ..protocol import ProtocolError, Reason, messages
from ..protocol.channels import CHANNEL_PREFIX, channel_context_problem
from ..protocol.deltas import apply_delta, copy_data
from ..protocol.limits import MAX_FEDERATED_CONTEXT_NAME_BYTES, path_too_deep, too_deep_error
from ..protocol.wire import (
    CONTEXT_ADDED_TYPE,
    CONTEXT_CREATED_TYPE,
    CONTEXT_DESTROYED_TYPE,
    CONTEXT_LIFETIMES,
    CONTEXT_UPDATED_TYPE,
    CREATE_CONTEXT_TYPE,
    DESTROY_CONTEXT_TYPE,
    FEDERATION_CONTEXT_APPLY_TYPE,
    FEDERATION_CONTEXT_PUBLISH_TYPE,
    FEDERATION_CONTEXT_REFUSED_TYPE,
    GLOBAL_DOMAIN,
    READ_ONLY_EXTENSION,
    SET_CONTEXT_READ_ONLY_TYPE,
    SUBSCRIBE_CONTEXT_TYPE,
    SUBSCRIBED_CONTEXT_TYPE,
    UNSUBSCRIBE_CONTEXT_TYPE,
    UPDATE_CONTEXT_TYPE,
)
from ._fields import field as msg_field
from ._fields import ident, optional
from ._services import Handler, HubServices
from .connection import Outgoing, PeerConn
from .peers import Message, Peer
from .store import StoreFailure

LIFETIMES = CONTEXT_LIFETIMES
DESTROYED_EXPLICITLY = "Context destroyed explicitly"
DESTROYED_PEER_LEFT = "Context destroyed because its owner/last peer left"
DESTROYED_REMOTELY = "Context destroyed on another hub of the federation"
DESTROYED_NOT_FEDERATED = "Context not created: the federation could not take it"


@dataclass(eq=False)
class Context:
    """One shared context and who follows it."""

    context_id: str
    name: str
    data: dict[str, Any]
    lifetime: str = "retained"
    creator_id: str | None = None
    members: set[Peer] = field(default_factory=set)
    version: int = 0
    updated_at: float = field(default_factory=time.time)
    updater_id: str | None = None
    #: only the creator may update it (an ``ownership`` context its owner made read-only)
    read_only: bool = False
    #: the federation bucket's revision this state is (None: not seen in the bucket yet);
    #: once seen, ``version`` is the revision too
    revision: int | None = None
    #: offered to the bucket when the link joined (it existed before): a deletion in the
    #: bucket destroys it even before any revision of it was seen (a context destroyed in the
    #: space while this hub was away)
    offered: bool = False
    #: the ticket of this hub's creation of it on its way to the bucket (None: none): the
    #: revision that carries it back holds this hub's own data, which is not sent again
    creation: str | None = None


@dataclass(slots=True)
class _Held:
    """A context message to one peer, waiting for the store to commit sequence number ``seq``
    (0: it only waits for the held messages queued before it)."""

    seq: int
    conn: PeerConn
    message: Message
    #: the context whose write this reply acknowledges (None for a message that only queues)
    name: str | None = None


def _validate_delta(delta: Any) -> None:
    if not isinstance(delta, dict) or not delta:
        raise ProtocolError(Reason.CONTEXT_INVALID, "'delta' must be a non-empty object")
    for kind, value in delta.items():
        if kind == "reset" or kind in ("added", "updated"):
            if not isinstance(value, dict):
                raise ProtocolError(Reason.CONTEXT_INVALID, f"delta.{kind} must be an object")
        elif kind == "removed":
            if not isinstance(value, list) or not all(isinstance(k, str) for k in value):
                raise ProtocolError(
                    Reason.CONTEXT_INVALID, "delta.removed must be an array of keys"
                )
        elif kind == "commands":
            if not isinstance(value, list):
                raise ProtocolError(Reason.CONTEXT_INVALID, "delta.commands must be an array")
            for command in value:
                if not isinstance(command, dict) or command.get("type") not in ("set", "remove"):
                    raise ProtocolError(
                        Reason.CONTEXT_INVALID,
                        "each command must be {type: 'set'|'remove', path, value?}",
                    )
                path = command.get("path", "")
                if not isinstance(path, str):
                    raise ProtocolError(Reason.CONTEXT_INVALID, "a command path must be a string")
                segments = path.count(".") + 1
                if command["type"] == "set" and path_too_deep(segments, command.get("value")):
                    raise too_deep_error()
                if (
                    command["type"] == "set"
                    and not command.get("path")
                    and not isinstance(command.get("value"), dict)
                ):
                    raise ProtocolError(
                        Reason.CONTEXT_INVALID, "setting the whole context needs an object value"
                    )
        else:
            raise ProtocolError(Reason.CONTEXT_INVALID, f"Unknown delta form {kind!r}")


def _federable(ctx: Context) -> bool:
    """Whether ``ctx`` is one object across federated hubs: retained, with a name short
    enough for a NATS subject (``protocol/limits.py``); any other stays on its hub."""
    return (
        ctx.lifetime == "retained"
        and len(ctx.name.encode(errors="surrogatepass")) <= MAX_FEDERATED_CONTEXT_NAME_BYTES
    )


def _check_channel(name: str, data: Any, before: dict[str, Any] | None = None) -> None:
    """Refuse a channel context (``___channel___<Name>``) that breaks the channel rule of
    ``protocol/channels.py``: its colour reaches every view's styles."""
    problem = channel_context_problem(name, data, before)
    if problem is not None:
        raise ProtocolError(Reason.CHANNEL_INVALID, f"Channel context {name!r}: {problem}")


class ContextDomain:
    """Contexts by id and by name; membership per peer; lifetimes; persistence of retained ones."""

    def __init__(self, hub: HubServices) -> None:
        self.hub = hub
        self.by_id: dict[str, Context] = {}
        self.by_name: dict[str, Context] = {}
        #: peers with context messages waiting for the store, in the order they must go out
        self.held: dict[Peer, deque[_Held]] = {}
        #: writes the store could never make, by context name
        self._store_failures: dict[str, StoreFailure] = {}
        #: the federation link's contexts peer; while set, retained contexts are federated
        self.link: Peer | None = None
        #: updates sent to the link and not yet back: ticket -> (writer, its request)
        self._tickets: dict[str, tuple[Peer, Message]] = {}
        #: creations sent to the link whose creator waits for ``context-created`` until the
        #: context is in the bucket: ticket -> (creator, None once it left; its request; the
        #: context)
        self._creations: dict[str, tuple[Peer | None, Message, Context]] = {}
        #: message type -> handler, for the hub's table (``hub/core.py``), on ``global`` and
        #: ``context``: one per type of ``protocol/wire.py:CONTEXT_MESSAGE_TYPES``
        self.handlers: dict[str, Handler] = {
            CREATE_CONTEXT_TYPE: self._create,
            SUBSCRIBE_CONTEXT_TYPE: self._subscribe,
            UPDATE_CONTEXT_TYPE: self._update,
            UNSUBSCRIBE_CONTEXT_TYPE: self._unsubscribe,
            DESTROY_CONTEXT_TYPE: self._destroy,
            SET_CONTEXT_READ_ONLY_TYPE: self._set_read_only,
        }
        #: what only the federation link's contexts peer sends (on ``global``)
        self.link_handlers: dict[str, Handler] = {
            FEDERATION_CONTEXT_APPLY_TYPE: self._apply_remote,
            FEDERATION_CONTEXT_REFUSED_TYPE: self._refused_remote,
        }

    # -------------------------------------------------------------- lifecycle

    def load(self, stored: dict[str, Any]) -> None:
        """Restore retained contexts from the store at hub start."""
        for name, item in stored.items():
            ctx = Context(
                context_id=self.hub.new_id("x"),
                name=name,
                data=item.data,
                version=item.version,
                updated_at=item.updated_at,
                updater_id=item.updater,
            )
            self._add(ctx)

    def create_retained(self, name: str, data: dict[str, Any]) -> Context:
        """Create a retained context owned by the hub itself (channels)."""
        ctx = Context(context_id=self.hub.new_id("x"), name=name, data=data)
        self._add(ctx)
        self._persist(ctx)
        return ctx

    def _add(self, ctx: Context) -> None:
        self.by_id[ctx.context_id] = ctx
        self.by_name[ctx.name] = ctx

    def _persist(self, ctx: Context) -> int:
        """Queue the context's state for the store; the sequence number its acknowledgement
        waits for, or 0 when acknowledgements do not wait (no store, not retained)."""
        store = self.hub.store
        if store is None or ctx.lifetime != "retained":
            return 0
        return self._waits_for(store, store.put(ctx.name, ctx.data, ctx.version, ctx.updater_id))

    def _unpersist(self, ctx: Context) -> int:
        """Queue the removal of a retained context; like :meth:`_persist`."""
        store = self.hub.store
        if store is None or ctx.lifetime != "retained":
            return 0
        return self._waits_for(store, store.delete(ctx.name))

    @staticmethod
    def _waits_for(store: Any, seq: int) -> int:
        return int(seq) if store.ack_after_commit else 0

    # ------------------------------------------------------ durable acknowledgements

    def _send(self, out: Outgoing, peer: Peer, message: Message) -> None:
        """A context message to ``peer``: now, or behind the replies held for it."""
        queue = self.held.get(peer)
        if queue is None:
            out.append((peer.conn, message))
        else:
            queue.append(_Held(0, peer.conn, message))

    def _acknowledge(self, out: Outgoing, peer: Peer, reply: Message, seq: int, name: str) -> None:
        """The reply to a write: now when ``seq`` is 0, else once the store committed it."""
        if not seq:
            self._send(out, peer, reply)
            return
        queue = self.held.get(peer)
        if queue is None:
            queue = self.held[peer] = deque()
        queue.append(_Held(seq, peer.conn, reply, name))

    def _success(self, peer: Peer, request: Message, **extra: Any) -> Message:
        """The ``success`` reply to ``request`` (built here, not through a list: every
        update's ack is one)."""
        reply = messages.success(
            request.get("domain", GLOBAL_DOMAIN), request.get("request_id"), peer.peer_id
        )
        if extra:
            reply.update(extra)
        return reply

    def release_durable(self) -> Outgoing:
        """The held messages whose writes the store has committed (or failed for good), in
        order; called by the I/O layer after each commit (see ``ContextStore.on_commit``)."""
        out: Outgoing = []
        store = self.hub.store
        if store is None or not self.held:
            if store is not None:
                self._store_failures.clear()
                store.take_failures()
            return out
        durable = store.durable_seq
        self._store_failures.update(store.take_failures())
        for peer in list(self.held):
            queue = self.held[peer]
            while queue and queue[0].seq <= durable:
                item = queue.popleft()
                out.append((item.conn, self._failed_or(item)))
            if not queue:
                del self.held[peer]
        self._store_failures = {
            name: failure
            for name, failure in self._store_failures.items()
            if failure.last_seq > durable
        }
        return out

    def _failed_or(self, item: _Held) -> Message:
        """The held reply, or an error if the store could never write what it acknowledges."""
        failure = self._store_failures.get(item.name) if item.name is not None else None
        if failure is None or not failure.covers(item.seq):
            return item.message
        reply = item.message
        return messages.error(
            reply.get("domain", GLOBAL_DOMAIN),
            reply.get("request_id"),
            reply.get("peer_id"),
            Reason.CONTEXT_FAILURE,
            f"Context {item.name!r} was changed in memory and sent to its subscribers, "
            f"but could not be stored: {failure.message}",
        )

    def _context_added(self, peer: Peer, ctx: Context) -> Message:
        message: Message = {
            "domain": peer.context_domain,
            "type": CONTEXT_ADDED_TYPE,
            "peer_id": peer.peer_id,
            "creator_id": ctx.creator_id,
            "context_id": ctx.context_id,
            "name": ctx.name,
        }
        if peer.extensions.get(READ_ONLY_EXTENSION):  # how long it lives, who may change it
            message["lifetime"] = ctx.lifetime
            message["read_only"] = ctx.read_only
        return message

    @staticmethod
    def _updated(member: Peer, ctx: Context, delta: dict[str, Any]) -> Message:
        """The ``context-updated`` that tells ``member`` of ``ctx``'s change by ``delta``
        (its updater and version are the context's, already changed)."""
        return {
            "domain": member.context_domain,
            "type": CONTEXT_UPDATED_TYPE,
            "peer_id": member.peer_id,
            "updater_id": ctx.updater_id,
            "context_id": ctx.context_id,
            "delta": delta,
            "version": ctx.version,
        }

    def announce_all(self, peer: Peer, out: Outgoing) -> None:
        """Existing contexts are announced right after ``welcome`` (JS clients need it)."""
        for ctx in self.by_id.values():
            self._send(out, peer, self._context_added(peer, ctx))

    def detach(self, peer: Peer, out: Outgoing) -> None:
        self.held.pop(peer, None)  # its replies have nobody to go to
        if peer is self.link:
            self._detach_link(out)
        for ticket in [t for t, (writer, _) in self._tickets.items() if writer is peer]:
            del self._tickets[ticket]
        for ticket, (creator, request, made) in list(self._creations.items()):
            if creator is peer:  # (the context may still be refused: it then goes)
                self._creations[ticket] = (None, request, made)
        for context_id in list(peer.contexts):
            ctx = self.by_id.get(context_id)
            if ctx is None:
                continue
            ctx.members.discard(peer)
            if (ctx.lifetime == "ownership" and ctx.creator_id == peer.peer_id) or (
                ctx.lifetime == "ref-counted" and not ctx.members
            ):
                self._destroy_context(ctx, Reason.CONTEXT_PEER_LEFT, DESTROYED_PEER_LEFT, out)
        peer.contexts.clear()

    # ------------------------------------------------------------- federation

    def attach_link(self, peer: Peer, out: Outgoing) -> None:
        """``peer`` is the federation link's contexts peer (``hub/core.py``): retained
        contexts are federated from now on, and each is offered to the bucket (``export``
        writes only a name the bucket never had; the bucket's state wins otherwise)."""
        if self.link is not None and self.link is not peer:
            self._detach_link(out)
        self.link = peer
        for ctx in self.by_id.values():
            if _federable(ctx):
                ctx.offered = True
                self._publish(out, "export", ctx, data=ctx.data)

    def _detach_link(self, out: Outgoing) -> None:
        """The link is gone: contexts are local again; updates waiting for it fail."""
        self.link = None
        for ctx in self.by_id.values():  # (changed locally from now on: its data is not the
            ctx.creation = None  # creation's any more when a revision brings that back)
        creations, self._creations = self._creations, {}
        for creator, request, made in creations.values():  # it is here, local again
            if creator is not None:
                self._send(out, creator, self._created(creator, request, made))
        tickets, self._tickets = self._tickets, {}
        for writer, request in tickets.values():
            self._send(out, writer, self._link_failure(writer, request, "the link closed"))

    def _link_failure(
        self, writer: Peer, request: Message, why: str, what: str = "The update was not applied"
    ) -> Message:
        return messages.error(
            request.get("domain", GLOBAL_DOMAIN),
            request.get("request_id"),
            writer.peer_id,
            Reason.CONTEXT_FAILURE,
            f"{what}: the federation could not take it ({why})",
        )

    def _federated(self, ctx: Context) -> bool:
        return self.link is not None and _federable(ctx)

    def _publish(self, out: Outgoing, op: str, ctx: Context, **fields: Any) -> None:
        """Tell the link about a change of a federated context (nothing when there is none)."""
        link = self.link
        if link is None or not _federable(ctx):
            return
        message: Message = {
            "domain": GLOBAL_DOMAIN,
            "type": FEDERATION_CONTEXT_PUBLISH_TYPE,
            "peer_id": link.peer_id,
            "op": op,
            "name": ctx.name,
            **fields,
        }
        out.append((link.conn, message))

    def _propose(
        self, peer: Peer, msg: Message, ctx: Context, delta: dict[str, Any], out: Outgoing
    ) -> None:
        """An update of a federated context goes to the bucket first; the writer's ack and
        the members' updates follow when it comes back (:meth:`_apply_remote`)."""
        if ctx.name.startswith(CHANNEL_PREFIX):
            if self.hub.channel_registry.restrictions:
                self._check_write(peer, ctx, "change")
            # checked here for a clear error; the link checks again on the state it writes
            _check_channel(ctx.name, apply_delta(copy_data(ctx.data), delta), ctx.data)
        ticket = self.hub.new_id("t")
        self._tickets[ticket] = (peer, msg)
        self._publish(out, "update", ctx, delta=delta, updater_id=peer.peer_id, ticket=ticket)

    def _from_link(self, peer: Peer) -> None:
        if peer is not self.link:
            raise ProtocolError(
                Reason.CONTEXT_NOT_AUTHORIZED, "Only the federation link may send this"
            )

    def _apply_remote(self, peer: Peer, msg: Message, out: Outgoing) -> None:
        """One revision of the federation bucket (``federation-context-apply``), in revision
        order: applied once (a revision not newer than the one held is dropped)."""
        self._from_link(peer)
        name = msg_field(msg, "name", str)
        revision = msg_field(msg, "revision", int)
        ticket = msg.get("ticket")
        waiting = self._tickets.pop(ticket, None) if isinstance(ticket, str) else None
        ctx = self.by_name.get(name)
        stale = ctx is not None and ctx.revision is not None and revision <= ctx.revision
        # a local context of another lifetime may hold the name on this hub: it stays local
        if ctx is not None and (stale or ctx.lifetime != "retained"):
            if waiting is not None:  # written to the bucket all the same
                self._send(out, waiting[0], self._success(*waiting, version=revision))
            return
        if msg.get("deleted") is True:
            ack = (waiting[0], self._success(*waiting)) if waiting is not None else None
            # (one made here since, not yet in the bucket, stays: its creation is on the way)
            if ctx is not None and (ctx.revision is not None or ctx.offered):
                reason = DESTROYED_EXPLICITLY if ack is not None else DESTROYED_REMOTELY
                self._destroy_context(ctx, Reason.CONTEXT_DESTROYED, reason, out, ack)
            elif ack is not None:
                self._send(out, *ack)
            return
        data = msg_field(msg, "data", dict)
        updater = msg.get("updater_id") if isinstance(msg.get("updater_id"), str) else None
        if ctx is None:
            self._add_remote(name, data, revision, updater, out)
            if waiting is not None:  # its context was destroyed here meanwhile
                self._send(out, waiting[0], self._success(*waiting, version=revision))
            return
        delta = msg.get("delta")
        # the stored delta is for members that hold the revision before it; others get all
        incremental = ctx.revision is not None and msg.get("prev") == ctx.revision
        sent: dict[str, Any] = delta if incremental and isinstance(delta, dict) else {}
        incremental = bool(sent)
        first = ctx.revision is None
        # this hub's own creation (its data, binary values and all) or the same data: only
        # the version is new
        own = first and ticket is not None and ticket == ctx.creation
        unchanged = own or (first and data == ctx.data)
        # its first revision in the bucket, this hub's creation or one that won over it
        creation = self._creations.pop(ctx.creation, None) if ctx.creation else None
        ctx.creation = None
        ctx.revision = ctx.version = revision
        if not own:
            ctx.data = data
        ctx.updated_at = time.time()
        ctx.updater_id = updater
        seq = self._persist(ctx)
        creator = creation[0] if creation is not None else None
        if creation is not None and creator is not None:
            reply = self._created(creator, creation[1], ctx)
            self._acknowledge(out, creator, reply, seq, ctx.name)
        writer = None
        if waiting is not None:
            writer, request = waiting
            reply = self._success(writer, request, version=revision)
            self._acknowledge(out, writer, reply, seq, ctx.name)
        # this hub's own state, now numbered by the bucket: members get that version, with
        # an empty delta (nothing changed), so that it is the same version on every hub
        sent = {} if unchanged else sent or {"reset": data}
        members = ctx.members
        channel = self._channel_of(ctx)
        if channel is not None:
            members = self.hub.channel_registry.readers(members, channel)
        for member in members:
            if member is writer and (incremental or unchanged):
                continue
            self._send(out, member, self._updated(member, ctx, sent))

    def _add_remote(
        self, name: str, data: dict[str, Any], revision: int, updater: str | None, out: Outgoing
    ) -> None:
        """A context this hub did not know, first seen in the federation bucket: stored and
        announced to every peer (``context-added``), as a local creation is."""
        ctx = Context(
            context_id=self.hub.new_id("x"),
            name=name,
            data=data,
            version=revision,
            updater_id=updater,
            revision=revision,
        )
        self._add(ctx)
        self._persist(ctx)
        for other in self.hub.peers.values():
            self._send(out, other, self._context_added(other, ctx))

    def _refused_remote(self, peer: Peer, msg: Message, out: Outgoing) -> None:
        """The link could not write update or creation ``ticket``
        (``federation-context-refused``): its writer gets the error; a context whose creation
        it was goes, on this hub too, rather than stay here while the space has none."""
        self._from_link(peer)
        ticket = msg_field(msg, "ticket", str)
        why = str(msg.get("reason") or "refused")
        creation = self._creations.pop(ticket, None)
        if creation is not None:
            creator, request, ctx = creation
            if creator is not None:
                creator.contexts_created -= 1
                what = f"Context {ctx.name!r} was not created"
                self._send(out, creator, self._link_failure(creator, request, why, what))
            if self.by_id.get(ctx.context_id) is ctx:
                self._destroy_context(ctx, Reason.CONTEXT_DESTROYED, DESTROYED_NOT_FEDERATED, out)
            return
        waiting = self._tickets.pop(ticket, None)
        if waiting is not None:
            writer, request = waiting
            self._send(out, writer, self._link_failure(writer, request, why))

    # --------------------------------------------------------------- handlers

    def _lookup(self, msg: Message) -> Context:
        context_id = ident(msg, "context_id")
        ctx = self.by_id.get(context_id)
        if ctx is None:
            raise ProtocolError(Reason.CONTEXT_INVALID, f"No context with id {context_id}")
        return ctx

    def _channel_of(self, ctx: Context) -> str | None:
        """The channel ``ctx`` holds, or None for a context that is not a channel."""
        return ctx.name[len(CHANNEL_PREFIX) :] if ctx.name.startswith(CHANNEL_PREFIX) else None

    def _readable(self, peer: Peer, ctx: Context) -> dict[str, Any]:
        """The data of ``ctx`` as ``peer`` may see it: a channel it is restricted from
        reading shows its name and meta with empty ``data`` (hub/channels.py)."""
        channel = self._channel_of(ctx)
        if channel is None or self.hub.channel_registry.may_read(peer, channel):
            return ctx.data
        return {**ctx.data, "data": {}}

    def _check_write(self, peer: Peer, ctx: Context, action: str) -> None:
        channel = self._channel_of(ctx)
        registry = self.hub.channel_registry
        if channel is not None and not registry.may_write(peer, channel):
            raise registry.write_refusal(peer, channel, action)

    def resend(self, peer: Peer, name: str, out: Outgoing) -> None:
        """``peer`` may read the context ``name`` again: if it follows it, it gets the whole
        current data (a ``reset`` update), since it missed the updates in between."""
        ctx = self.by_name.get(name)
        if ctx is None or peer not in ctx.members:
            return
        self._send(out, peer, self._updated(peer, ctx, {"reset": ctx.data}))

    def _subscribed(self, peer: Peer, msg: Message, ctx: Context) -> Message:
        return {
            "domain": msg.get("domain", GLOBAL_DOMAIN),
            "type": SUBSCRIBED_CONTEXT_TYPE,
            "request_id": msg.get("request_id"),
            "peer_id": peer.peer_id,
            "context_id": ctx.context_id,
            "name": ctx.name,
            "data": self._readable(peer, ctx),
            "version": ctx.version,
            "updater_id": ctx.updater_id,
            "updated_at": ctx.updated_at,
        }

    def _join(self, peer: Peer, ctx: Context) -> None:
        ctx.members.add(peer)
        peer.contexts.add(ctx.context_id)

    def _create(self, peer: Peer, msg: Message, out: Outgoing) -> None:
        name = msg_field(msg, "name", str)
        if not name:
            raise ProtocolError(Reason.CONTEXT_INVALID, "A context needs a non-empty name")
        existing = self.by_name.get(name)
        if existing is not None:
            # as the Glue42 gateway does: creating an existing name subscribes to it
            self._join(peer, existing)
            self._send(out, peer, self._subscribed(peer, msg, existing))
            return
        lifetime = optional(msg, "lifetime", str, "retained")
        if lifetime not in LIFETIMES:
            raise ProtocolError(
                Reason.CONTEXT_BAD_LIFETIME,
                f"Unknown lifetime {lifetime!r}; use one of {', '.join(LIFETIMES)}",
            )
        read_only = optional(msg, "read_only", bool, False)
        if read_only and lifetime != "ownership":
            raise ProtocolError(
                Reason.CONTEXT_INVALID,
                f"Only an ownership context can be read-only (context {name!r} is {lifetime})",
            )
        data = optional(msg, "data", dict, None)
        if data is None:
            data = {}
        if name.startswith(CHANNEL_PREFIX):
            _check_channel(name, data)
        if peer.contexts_created >= self.hub.max_contexts_per_peer:
            raise ProtocolError(
                Reason.LIMITS_EXCEEDED,
                f"A peer may create at most {self.hub.max_contexts_per_peer} contexts",
            )
        peer.contexts_created += 1
        ctx = Context(
            context_id=self.hub.new_id("x"),
            name=name,
            data=data,
            lifetime=lifetime,
            creator_id=peer.peer_id,
            updater_id=peer.peer_id,
            read_only=read_only,
        )
        self._add(ctx)
        self._join(peer, ctx)
        seq = self._persist(ctx)
        federated = self._federated(ctx)
        if federated:  # the creator's ack waits for the bucket, as an update's does
            ctx.creation = self.hub.new_id("t")
            self._creations[ctx.creation] = (peer, msg, ctx)
            self._publish(out, "create", ctx, data=ctx.data, ticket=ctx.creation)
        for other in self.hub.peers.values():
            self._send(out, other, self._context_added(other, ctx))
        if not federated:
            self._acknowledge(out, peer, self._created(peer, msg, ctx), seq, ctx.name)

    @staticmethod
    def _created(peer: Peer, msg: Message, ctx: Context) -> Message:
        """The ``context-created`` reply to ``peer``'s ``create-context`` ``msg``."""
        return {
            "domain": msg.get("domain", GLOBAL_DOMAIN),
            "type": CONTEXT_CREATED_TYPE,
            "request_id": msg.get("request_id"),
            "peer_id": peer.peer_id,
            "context_id": ctx.context_id,
        }

    def _subscribe(self, peer: Peer, msg: Message, out: Outgoing) -> None:
        ctx = self._lookup(msg)
        self._join(peer, ctx)
        self._send(out, peer, self._subscribed(peer, msg, ctx))

    def _owner_name(self, ctx: Context) -> str:
        """The owner of ``ctx`` as an error message names it: application and peer id."""
        owner = self.hub.peers.get(ctx.creator_id) if ctx.creator_id is not None else None
        application = owner.identity.get("application") if owner is not None else None
        peer = f"peer {ctx.creator_id}"
        return f"{application!r} ({peer})" if application else peer

    def _update(self, peer: Peer, msg: Message, out: Outgoing) -> None:
        ctx = self._lookup(msg)
        if ctx.read_only and peer.peer_id != ctx.creator_id:
            raise ProtocolError(
                Reason.CONTEXT_NOT_AUTHORIZED,
                f"Context {ctx.name!r} is read-only: only its owner {self._owner_name(ctx)} "
                "may change it",
            )
        delta = msg.get("delta")
        _validate_delta(delta)
        assert isinstance(delta, dict)
        if self._federated(ctx):
            self._propose(peer, msg, ctx, delta, out)
            return
        members = ctx.members
        if ctx.name.startswith(CHANNEL_PREFIX):
            if self.hub.channel_registry.restrictions:  # (nobody restricted: no call)
                self._check_write(peer, ctx, "change")
            # applied to a copy first: a refused update leaves nothing behind
            candidate = apply_delta(copy_data(ctx.data), delta)
            _check_channel(ctx.name, candidate, ctx.data)
            ctx.data = candidate
            members = self.hub.channel_registry.readers(members, ctx.name[len(CHANNEL_PREFIX) :])
        else:
            ctx.data = apply_delta(ctx.data, delta)
        ctx.version += 1
        ctx.updated_at = time.time()
        ctx.updater_id = peer.peer_id
        seq = self._persist(ctx)
        # the writer's ack first: it must not wait for the fan-out to every member
        self._acknowledge(out, peer, self._success(peer, msg, version=ctx.version), seq, ctx.name)
        for member in members:
            if member is peer:
                continue
            self._send(out, member, self._updated(member, ctx, delta))

    def _set_read_only(self, peer: Peer, msg: Message, out: Outgoing) -> None:
        """The owner of an ``ownership`` context makes it read-only for others, or writable."""
        ctx = self._lookup(msg)
        read_only = msg_field(msg, "read_only", bool)
        if ctx.lifetime != "ownership":
            raise ProtocolError(
                Reason.CONTEXT_INVALID,
                f"Only an ownership context can be read-only (context {ctx.name!r} is "
                f"{ctx.lifetime})",
            )
        if ctx.creator_id != peer.peer_id:
            raise ProtocolError(
                Reason.CONTEXT_NOT_AUTHORIZED,
                f"Only the owner {self._owner_name(ctx)} of context {ctx.name!r} may make it "
                "read-only or writable",
            )
        ctx.read_only = read_only
        self._send(out, peer, self._success(peer, msg))
        for other in self.hub.peers.values():  # announced again to those that read the flag
            if other.extensions.get(READ_ONLY_EXTENSION):
                self._send(out, other, self._context_added(other, ctx))

    def _unsubscribe(self, peer: Peer, msg: Message, out: Outgoing) -> None:
        ctx = self._lookup(msg)
        ctx.members.discard(peer)
        peer.contexts.discard(ctx.context_id)
        self._send(out, peer, self._success(peer, msg))
        if ctx.lifetime == "ref-counted" and not ctx.members:
            self._destroy_context(ctx, Reason.CONTEXT_PEER_LEFT, DESTROYED_PEER_LEFT, out)

    def _destroy(self, peer: Peer, msg: Message, out: Outgoing) -> None:
        ctx = self._lookup(msg)
        if ctx.lifetime == "ownership" and ctx.creator_id != peer.peer_id:
            raise ProtocolError(
                Reason.CONTEXT_NOT_AUTHORIZED,
                f"Only the owner {self._owner_name(ctx)} may destroy the ownership context "
                f"{ctx.name!r}",
            )
        self._check_write(peer, ctx, "remove")
        if self._federated(ctx):  # through the bucket first, as an update
            ticket = self.hub.new_id("t")
            self._tickets[ticket] = (peer, msg)
            self._publish(out, "destroy", ctx, updater_id=peer.peer_id, ticket=ticket)
            return
        ack = (peer, self._success(peer, msg))
        self._destroy_context(ctx, Reason.CONTEXT_DESTROYED, DESTROYED_EXPLICITLY, out, ack)

    def _destroy_context(
        self,
        ctx: Context,
        uri: str,
        reason: str,
        out: Outgoing,
        ack: tuple[Peer, Message] | None = None,
    ) -> None:
        """Forget ``ctx`` and tell every peer; ``ack``, the reply to the peer that destroyed
        it, goes first (once the removal is durable, if acknowledgements wait for that)."""
        self.by_id.pop(ctx.context_id, None)
        if self.by_name.get(ctx.name) is ctx:
            del self.by_name[ctx.name]
        for member in ctx.members:
            member.contexts.discard(ctx.context_id)
        ctx.members.clear()
        seq = self._unpersist(ctx)
        if ack is not None:
            self._acknowledge(out, ack[0], ack[1], seq, ctx.name)
        for other in self.hub.peers.values():
            self._send(
                out,
                other,
                {
                    "domain": other.context_domain,
                    "type": CONTEXT_DESTROYED_TYPE,
                    "peer_id": other.peer_id,
                    "context_id": ctx.context_id,
                    "name": ctx.name,
                    "reason_uri": uri,
                    "reason": reason,
                },
            )
