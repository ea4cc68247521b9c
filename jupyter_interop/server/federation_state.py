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

__all__ = ["LocalPeers", "PeerChanges", "RemoteHubs", "RemotePeer", "Snapshot"]

Message = dict[str, Any]
#: peer id -> {"identity": {...}, "methods": {method id: definition}}
Snapshot = dict[str, dict[str, Any]]


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

    def observe(self, hub: str, peers: Any, now: float) -> PeerChanges:
        """A snapshot ``peers`` (see :class:`LocalPeers`) from ``hub`` at time ``now``."""
        changes = PeerChanges()
        if hub == self.own_hub:
            return changes
        if not isinstance(peers, dict):
            raise ValueError(f"snapshot of hub {hub!r}: 'peers' must be an object")
        known = self.hubs.setdefault(hub, _Hub(now))
        known.last_seen = now
        for peer_id in [p for p in known.peers if p not in peers]:
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
            # a method whose definition changed is removed, then registered again
            gone = [m for m, d in peer.methods.items() if methods.get(m) != d]
            new = [d for m, d in methods.items() if peer.methods.get(m) != d]
            if gone:
                changes.methods_removed.append((peer, gone))
            if new:
                changes.methods_added.append((peer, new))
            peer.methods = methods
        return changes

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
