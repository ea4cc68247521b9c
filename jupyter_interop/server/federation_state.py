"""What a federation link knows, without I/O: the peers of its own hub it announces and the
peers of the other hubs it stands for (docs/FEDERATION.md).

``LocalPeers`` follows the GW3 announcements the link's observer reads from its own hub and
gives the snapshot the link publishes; ``RemoteHubs`` takes the snapshots other hubs publish
and says which remote peers appear, change or leave, and which hubs fell silent.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..protocol.wire import (
    METHODS_ADDED_TYPE,
    METHODS_REMOVED_TYPE,
    PEER_ADDED_TYPE,
    PEER_REMOVED_TYPE,
)

__all__ = ["LocalPeers", "PeerChanges", "RemoteHubs", "RemotePeer", "Snapshot", "is_peer_of"]

Message = dict[str, Any]
#: peer id -> {"identity": {...}, "methods": {method id: definition}}
Snapshot = dict[str, dict[str, Any]]


def is_peer_of(peer_id: str, hub: str) -> bool:
    """Was ``peer_id`` made by ``hub``? A hub's peer ids carry its id (``hub/core.py:new_id``),
    which keeps them unique across hubs."""
    return peer_id.startswith(f"p{hub}-")


class LocalPeers:
    """The local peers of one hub and their methods, from the announcements its observer
    reads (``peer-added`` with ``meta.local`` true, ``methods-added``/``-removed``,
    ``peer-removed``). Remote peers (``meta.local`` false) are never announced back."""

    def __init__(self) -> None:
        self.peers: Snapshot = {}

    def read(self, message: Message) -> bool:
        """Apply one announcement; True when the snapshot changed."""
        mtype = message.get("type")
        if mtype == PEER_ADDED_TYPE:
            meta = message.get("meta")
            if not (isinstance(meta, dict) and meta.get("local") is True):
                return False
            peer_id = str(message.get("new_peer_id"))
            self.peers[peer_id] = {"identity": message.get("identity") or {}, "methods": {}}
            return True
        if mtype == PEER_REMOVED_TYPE:
            return self.peers.pop(str(message.get("removed_id")), None) is not None
        peer = self.peers.get(str(message.get("server_id")))
        if peer is None:
            return False
        if mtype == METHODS_ADDED_TYPE:
            for method in message.get("methods") or ():
                if isinstance(method, dict) and "id" in method:
                    peer["methods"][str(method["id"])] = method
            return True
        if mtype == METHODS_REMOVED_TYPE:
            for method_id in message.get("methods") or ():
                peer["methods"].pop(str(method_id), None)
            return True
        return False

    def snapshot(self) -> Snapshot:
        """The peers as published to the federation (methods as a list)."""
        return {
            peer_id: {"identity": peer["identity"], "methods": list(peer["methods"].values())}
            for peer_id, peer in self.peers.items()
        }


@dataclass
class RemotePeer:
    """A peer of another hub, as its hub last announced it."""

    peer_id: str
    hub: str
    identity: dict[str, Any]
    #: method id -> definition
    methods: dict[str, Message]
    #: a caller met in a call request before any snapshot listed it: the first snapshot
    #: ``seq`` of its hub sure to list it while it stays (0: listed already)
    listed_from: int = 0


@dataclass
class PeerChanges:
    """What one snapshot (or a hub's departure) changes among the remote peers."""

    added: list[RemotePeer] = field(default_factory=list)
    removed: list[RemotePeer] = field(default_factory=list)
    #: (peer, definitions registered since the last snapshot)
    methods_added: list[tuple[RemotePeer, list[Message]]] = field(default_factory=list)
    #: (peer, method ids gone since the last snapshot)
    methods_removed: list[tuple[RemotePeer, list[str]]] = field(default_factory=list)


@dataclass
class _Hub:
    last_seen: float
    peers: dict[str, RemotePeer] = field(default_factory=dict)


class RemoteHubs:
    """The other hubs of the space: their peers and when each last announced itself."""

    def __init__(self, own_hub: str, timeout: float) -> None:
        self.own_hub = own_hub
        self.timeout = timeout
        self.hubs: dict[str, _Hub] = {}

    def observe(self, hub: str, peers: Any, now: float, seq: int | None = None) -> PeerChanges:
        """A snapshot ``peers`` (see :class:`LocalPeers`) from ``hub`` at time ``now``, its
        ``seq`` (None: later than every caller met, see :meth:`meet`)."""
        changes = PeerChanges()
        if hub == self.own_hub:
            return changes
        if not isinstance(peers, dict):
            raise ValueError(f"snapshot of hub {hub!r}: 'peers' must be an object")
        known = self.hubs.setdefault(hub, _Hub(now))
        known.last_seen = now
        # a caller met in a request stays until a snapshot made after that request omits it
        unlisted = [
            peer_id
            for peer_id, peer in known.peers.items()
            if peer_id not in peers and (seq is None or seq >= peer.listed_from)
        ]
        for peer_id in unlisted:
            changes.removed.append(known.peers.pop(peer_id))
        for peer_id, announced in peers.items():
            methods = {
                str(m["id"]): m
                for m in announced.get("methods") or ()
                if isinstance(m, dict) and "id" in m
            }
            peer = known.peers.get(peer_id)
            if peer is None:
                identity = announced.get("identity")
                peer = RemotePeer(peer_id, hub, identity if isinstance(identity, dict) else {}, {})
                known.peers[peer_id] = peer
                changes.added.append(peer)
            peer.listed_from = 0
            # a method whose definition changed is removed, then registered again
            gone = [m for m, d in peer.methods.items() if methods.get(m) != d]
            new = [d for m, d in methods.items() if peer.methods.get(m) != d]
            if gone:
                changes.methods_removed.append((peer, gone))
            if new:
                changes.methods_added.append((peer, new))
            peer.methods = methods
        return changes

    def meet(self, caller: Any, now: float) -> tuple[RemotePeer, PeerChanges]:
        """The caller a call request names, ``{"peer_id", "hub", "identity", "seq"}`` as its
        own hub resolved it: the peer known from a snapshot, else a peer of that hub added now
        (``changes.added``), as a later snapshot would add it, so that snapshot finds it known.
        ``seq`` is the first snapshot of its hub sure to list it; earlier ones may not yet.

        Raises ValueError for a caller that is not a peer of another hub, or without an
        identity: this hub stands for no such caller."""
        if not isinstance(caller, dict):
            raise ValueError("the call names no caller")
        peer_id, hub, identity = caller.get("peer_id"), caller.get("hub"), caller.get("identity")
        seq = caller.get("seq", 0)
        if not (isinstance(peer_id, str) and isinstance(hub, str) and isinstance(seq, int)):
            raise ValueError("the call's caller needs its peer_id, hub and seq")
        if hub == self.own_hub or not is_peer_of(peer_id, hub):
            raise ValueError(f"caller {peer_id!r} is not a peer of another hub ({hub!r})")
        changes = PeerChanges()
        known = self.hubs.get(hub)
        peer = known.peers.get(peer_id) if known is not None else None
        if peer is None:
            if not isinstance(identity, dict):
                raise ValueError(f"the call gives no identity for caller {peer_id!r}")
            peer = RemotePeer(peer_id, hub, identity, {}, listed_from=max(seq, 1))
            self.hubs.setdefault(hub, _Hub(now)).peers[peer_id] = peer
            changes.added.append(peer)
        return peer, changes

    def leave(self, hub: str) -> PeerChanges:
        """``hub`` said goodbye or fell silent: all its peers leave."""
        known = self.hubs.pop(hub, None)
        return PeerChanges(removed=list(known.peers.values()) if known else [])

    def silent(self, now: float) -> list[str]:
        """Hubs not heard of for longer than the timeout."""
        return [hub for hub, known in self.hubs.items() if now - known.last_seen > self.timeout]

    def summary(self, now: float) -> list[dict[str, Any]]:
        """Each hub with its number of peers and the seconds since it was last heard (what
        the federation view shows), by hub id."""
        return [
            {"hub": hub, "peers": len(known.peers), "last_heard": round(now - known.last_seen, 3)}
            for hub, known in sorted(self.hubs.items())
        ]
