"""Peer state: one authenticated connection, its identity and what it owns in each domain."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import orjson

from .connection import Connection

Message = dict[str, Any]


@dataclass(eq=False, slots=True)
class Peer:
    """An authenticated GW3 peer (one ``hello`` on one connection)."""

    peer_id: str
    conn: Connection
    identity: dict[str, Any]
    extensions: dict[str, Any] = field(default_factory=dict)
    domains: set[str] = field(default_factory=set)
    connected_at: float = field(default_factory=time.time)
    #: domain used for context replies and events ("global" in compatibility mode)
    context_domain: str = "global"
    #: method id (as a string) -> method definition as registered on the wire
    methods: dict[str, Message] = field(default_factory=dict)
    #: invocation ids this peer is serving / has asked for
    serving_calls: set[str] = field(default_factory=set)
    calling: set[str] = field(default_factory=set)
    #: subscription ids where this peer is the subscriber / the publisher
    subscriptions: set[str] = field(default_factory=set)
    publishing: set[str] = field(default_factory=set)
    #: context ids this peer is a member of
    contexts: set[str] = field(default_factory=set)
    contexts_created: int = 0
    #: bus subscription ids
    bus_subscriptions: set[str] = field(default_factory=set)
    #: current channel, when the peer negotiated the channels extension and told us
    channel: str | None = None
    #: ``identity`` encoded once (it goes to every other agm peer), see :attr:`identity_json`
    _identity_json: orjson.Fragment | None = field(default=None, repr=False)

    def __hash__(self) -> int:
        return hash(self.peer_id)

    def __repr__(self) -> str:
        return f"<Peer {self.peer_id} {self.identity.get('application')!r}>"

    @property
    def identity_json(self) -> orjson.Fragment:
        """The identity as encoded JSON, shared by every message that carries it (a peer's
        identity does not change after ``hello``)."""
        encoded = self._identity_json
        if encoded is None:
            # bytes(memoryview(...)): without orjson's 4 KiB of slack (kept for the peer's life)
            encoded = orjson.Fragment(bytes(memoryview(orjson.dumps(self.identity))))
            self._identity_json = encoded
        return encoded

    @property
    def supports(self) -> dict[str, Any]:
        """Extensions this peer negotiated in ``hello``."""
        return self.extensions
