"""Shared contexts: create, subscribe, update with three delta forms, lifetimes, persistence.

Outgoing messages may reference a context's data: the transport encodes them before the next
``handle`` call (the hub's contract), so no copy is made on the hot path.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..protocol import ProtocolError, Reason
from ..protocol.deltas import apply_delta
from ._fields import field as msg_field
from ._fields import ident, optional
from .connection import Outgoing
from .peers import Message, Peer

if TYPE_CHECKING:
    from .core import InteropHub

CONTEXT_MESSAGE_TYPES = (
    "create-context",
    "subscribe-context",
    "update-context",
    "unsubscribe-context",
    "destroy-context",
)
LIFETIMES = ("retained", "ref-counted", "ownership")
DESTROYED_EXPLICITLY = "Context destroyed explicitly"
DESTROYED_PEER_LEFT = "Context destroyed because its owner/last peer left"


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
                if not isinstance(command.get("path", ""), str):
                    raise ProtocolError(Reason.CONTEXT_INVALID, "a command path must be a string")
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


class ContextDomain:
    """Contexts by id and by name; membership per peer; lifetimes; persistence of retained ones."""

    def __init__(self, hub: InteropHub) -> None:
        self.hub = hub
        self.by_id: dict[str, Context] = {}
        self.by_name: dict[str, Context] = {}
        self._dispatch = {
            "create-context": self._create,
            "subscribe-context": self._subscribe,
            "update-context": self._update,
            "unsubscribe-context": self._unsubscribe,
            "destroy-context": self._destroy,
        }

    def handle(self, peer: Peer, msg: Message, out: Outgoing) -> None:
        self._dispatch[msg["type"]](peer, msg, out)

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

    def _persist(self, ctx: Context) -> None:
        if self.hub.store is not None and ctx.lifetime == "retained":
            self.hub.store.put(ctx.name, ctx.data, ctx.version, ctx.updater_id)

    def _context_added(self, peer: Peer, ctx: Context) -> Message:
        return {
            "domain": peer.context_domain,
            "type": "context-added",
            "peer_id": peer.peer_id,
            "creator_id": ctx.creator_id,
            "context_id": ctx.context_id,
            "name": ctx.name,
        }

    def announce_all(self, peer: Peer, out: Outgoing) -> None:
        """Existing contexts are announced right after ``welcome`` (JS clients need it)."""
        for ctx in self.by_id.values():
            out.append((peer.conn, self._context_added(peer, ctx)))

    def detach(self, peer: Peer, out: Outgoing) -> None:
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

    # --------------------------------------------------------------- handlers

    def _lookup(self, msg: Message) -> Context:
        context_id = ident(msg, "context_id")
        ctx = self.by_id.get(context_id)
        if ctx is None:
            raise ProtocolError(Reason.CONTEXT_INVALID, f"No context with id {context_id}")
        return ctx

    def _subscribed(self, peer: Peer, msg: Message, ctx: Context) -> Message:
        return {
            "domain": msg.get("domain", "global"),
            "type": "subscribed-context",
            "request_id": msg.get("request_id"),
            "peer_id": peer.peer_id,
            "context_id": ctx.context_id,
            "name": ctx.name,
            "data": ctx.data,
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
            out.append((peer.conn, self._subscribed(peer, msg, existing)))
            return
        lifetime = optional(msg, "lifetime", str, "retained")
        if lifetime not in LIFETIMES:
            raise ProtocolError(
                Reason.CONTEXT_BAD_LIFETIME,
                f"Unknown lifetime {lifetime!r}; use one of {', '.join(LIFETIMES)}",
            )
        data = optional(msg, "data", dict, None)
        if data is None:
            data = {}
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
        )
        self._add(ctx)
        self._join(peer, ctx)
        self._persist(ctx)
        for other in self.hub.peers.values():
            out.append((other.conn, self._context_added(other, ctx)))
        out.append(
            (
                peer.conn,
                {
                    "domain": msg.get("domain", "global"),
                    "type": "context-created",
                    "request_id": msg.get("request_id"),
                    "peer_id": peer.peer_id,
                    "context_id": ctx.context_id,
                },
            )
        )

    def _subscribe(self, peer: Peer, msg: Message, out: Outgoing) -> None:
        ctx = self._lookup(msg)
        self._join(peer, ctx)
        out.append((peer.conn, self._subscribed(peer, msg, ctx)))

    def _update(self, peer: Peer, msg: Message, out: Outgoing) -> None:
        ctx = self._lookup(msg)
        delta = msg.get("delta")
        _validate_delta(delta)
        assert isinstance(delta, dict)
        ctx.data = apply_delta(ctx.data, delta)
        ctx.version += 1
        ctx.updated_at = time.time()
        ctx.updater_id = peer.peer_id
        self._persist(ctx)
        # the writer's ack first: it must not wait for the fan-out to every member
        self.hub.success(out, peer, msg, version=ctx.version)
        for member in ctx.members:
            if member is peer:
                continue
            out.append(
                (
                    member.conn,
                    {
                        "domain": member.context_domain,
                        "type": "context-updated",
                        "peer_id": member.peer_id,
                        "updater_id": peer.peer_id,
                        "context_id": ctx.context_id,
                        "delta": delta,
                        "version": ctx.version,
                    },
                )
            )

    def _unsubscribe(self, peer: Peer, msg: Message, out: Outgoing) -> None:
        ctx = self._lookup(msg)
        ctx.members.discard(peer)
        peer.contexts.discard(ctx.context_id)
        self.hub.success(out, peer, msg)
        if ctx.lifetime == "ref-counted" and not ctx.members:
            self._destroy_context(ctx, Reason.CONTEXT_PEER_LEFT, DESTROYED_PEER_LEFT, out)

    def _destroy(self, peer: Peer, msg: Message, out: Outgoing) -> None:
        ctx = self._lookup(msg)
        if ctx.lifetime == "ownership" and ctx.creator_id != peer.peer_id:
            raise ProtocolError(
                Reason.CONTEXT_NOT_AUTHORIZED,
                f"Only the owner may destroy the ownership context {ctx.name!r}",
            )
        self.hub.success(out, peer, msg)
        self._destroy_context(ctx, Reason.CONTEXT_DESTROYED, DESTROYED_EXPLICITLY, out)

    def _destroy_context(self, ctx: Context, uri: str, reason: str, out: Outgoing) -> None:
        self.by_id.pop(ctx.context_id, None)
        if self.by_name.get(ctx.name) is ctx:
            del self.by_name[ctx.name]
        for member in ctx.members:
            member.contexts.discard(ctx.context_id)
        ctx.members.clear()
        if self.hub.store is not None and ctx.lifetime == "retained":
            self.hub.store.delete(ctx.name)
        for other in self.hub.peers.values():
            out.append(
                (
                    other.conn,
                    {
                        "domain": other.context_domain,
                        "type": "context-destroyed",
                        "peer_id": other.peer_id,
                        "context_id": ctx.context_id,
                        "name": ctx.name,
                        "reason_uri": uri,
                        "reason": reason,
                    },
                )
            )
