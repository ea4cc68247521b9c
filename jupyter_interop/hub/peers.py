"""Peer state: one authenticated connection, its identity and what it owns in each domain."""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, cast

import orjson

from ..protocol.addressed import encoded_peer_id
from ..protocol.wire import GLOBAL_DOMAIN
from .connection import PeerConn

Message = dict[str, Any]


class _NoIds(frozenset[str]):
    """The id set of a peer before its first id. Most peers never call, serve, publish or
    subscribe, and an empty ``set`` costs 216 bytes per field and peer: they all share this
    one instead. Reading it sees an empty set, ``discard``/``clear`` have nothing to do, and
    the first id goes in through :func:`with_id` (``add`` does not exist on it)."""

    __slots__ = ()

    def discard(self, item: object) -> None:
        return None

    def clear(self) -> None:
        return None


#: ``meta`` of the ``peer-added`` of a peer connected to this hub
LOCAL_META_JSON = b'{"local":true}'

#: the shared empty id set (see :class:`_NoIds`)
NO_IDS = cast(set[str], _NoIds())


class RegisteredMethod:
    """A method as its server registered it, kept encoded.

    Its definition goes as is to every agm peer (in each ``methods-added``) and to the views,
    decoded on request; the hub itself routes by method id and only needs to know whether it
    streams. Kept as decoded dicts, the five methods of an idle peer cost about 3 KiB; encoded,
    a fifth of that.
    """

    __slots__ = ("encoded", "streaming")

    def __init__(self, definition: Message) -> None:
        # bytes(memoryview(...)): without orjson's 4 KiB of slack (kept for the method's life)
        self.encoded = bytes(memoryview(orjson.dumps(definition)))
        flags = definition.get("flags")
        self.streaming = bool(isinstance(flags, dict) and flags.get("streaming"))

    @property
    def definition(self) -> Message:
        """The definition as registered (a fresh dict)."""
        definition: Message = orjson.loads(self.encoded)
        return definition


def encoded_methods(methods: Iterable[RegisteredMethod]) -> bytes:
    """The JSON array of these methods' definitions, for a ``methods-added``."""
    return b"[" + b",".join([m.encoded for m in methods]) + b"]"


def with_id(ids: set[str], item: str) -> set[str]:
    """``ids`` with ``item`` added: assign the result back to the field it came from."""
    if ids is NO_IDS:
        return {item}
    ids.add(item)
    return ids


@dataclass(eq=False, slots=True)
class Peer:
    """An authenticated GW3 peer (one ``hello`` on one connection)."""

    peer_id: str
    conn: PeerConn
    identity: dict[str, Any]
    extensions: dict[str, Any] = field(default_factory=dict)
    domains: set[str] = field(default_factory=set)
    connected_at: float = field(default_factory=time.time)
    #: domain used for context replies and events ("global" in compatibility mode)
    context_domain: str = GLOBAL_DOMAIN
    #: method id (as a string) -> method definition as registered on the wire
    methods: dict[str, RegisteredMethod] = field(default_factory=dict)
    #: invocation ids this peer is serving / has asked for
    serving_calls: set[str] = NO_IDS
    calling: set[str] = NO_IDS
    #: invocations routed to this peer so far (how idle a notebook app is, server/apps.py)
    invocations: int = 0
    #: subscription ids where this peer is the subscriber / the publisher
    subscriptions: set[str] = NO_IDS
    publishing: set[str] = NO_IDS
    #: context ids this peer is a member of
    contexts: set[str] = field(default_factory=set)
    contexts_created: int = 0
    #: bus subscription ids
    bus_subscriptions: set[str] = NO_IDS
    #: current channel, when the peer negotiated the channels extension and told us
    channel: str | None = None
    #: every channel it is on, in the order it joined them (several in multi-channel mode;
    #: ``channel`` is the last of them)
    channels: tuple[str, ...] = ()
    #: ``identity`` encoded once (it goes to every other agm peer), see :attr:`identity_json`
    _identity_json: bytes | None = field(default=None, repr=False)
    #: ``peer_id`` as JSON, spliced into every announcement this peer receives
    peer_id_json: bytes = field(default=b"", repr=False)
    #: the ``meta`` of its ``peer-added``, encoded: ``{"local": false, "hub": ...}`` for a
    #: peer of another hub that the federation link stands for (docs/FEDERATION.md)
    meta_json: bytes = field(default=LOCAL_META_JSON, repr=False)
    #: the federation link's observer: in agm, but never announced to the other peers
    hidden: bool = False

    def __post_init__(self) -> None:
        self.peer_id_json = encoded_peer_id(self.peer_id)

    def __hash__(self) -> int:
        return hash(self.peer_id)

    def __repr__(self) -> str:
        return f"<Peer {self.peer_id} {self.identity.get('application')!r}>"

    @property
    def identity_json(self) -> bytes:
        """The identity as encoded JSON, shared by every message that carries it (a peer's
        identity does not change after ``hello``)."""
        encoded = self._identity_json
        if encoded is None:
            # bytes(memoryview(...)): without orjson's 4 KiB of slack (kept for the peer's life)
            encoded = self._identity_json = bytes(memoryview(orjson.dumps(self.identity)))
        return encoded

    @property
    def supports(self) -> dict[str, Any]:
        """Extensions this peer negotiated in ``hello``."""
        return self.extensions
