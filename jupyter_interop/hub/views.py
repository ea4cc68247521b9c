"""Read-only JSON views of hub state, for the REST API and viewers (never on the hot path)."""

from __future__ import annotations

from typing import Any

from ._services import HubState
from .channels import CHANNEL_PREFIX

JSON = dict[str, Any]


class HubViews:
    def __init__(self, hub: HubState) -> None:
        self.hub = hub

    def peers(self) -> list[JSON]:
        return [
            {
                "peer_id": p.peer_id,
                "identity": p.identity,
                "domains": sorted(p.domains),
                "channel": p.channel,
                "channels": list(p.channels),
                "connected_at": p.connected_at,
                "methods": sum(1 for m in p.methods.values() if not m.streaming),
                "streams": sum(1 for m in p.methods.values() if m.streaming),
                "subscriptions": len(p.subscriptions),
                "contexts": len(p.contexts),
                "bus_subscriptions": len(p.bus_subscriptions),
                "pending_calls": len(p.calling),
                "invocations": p.invocations,
                "dropped_events": p.conn.attrs.get("dropped_events", 0),
                "extensions": sorted(p.extensions),
            }
            for p in self.hub.peers.values()
        ]

    def kernel_peers(self, kernel_id: str) -> list[JSON]:
        """The peers the server verified as running in the kernel ``kernel_id``: their ids,
        the names of the methods they registered and the invocations routed to them."""
        return [
            {
                "peer_id": p.peer_id,
                "methods": [m.definition.get("name") for m in p.methods.values()],
                "invocations": p.invocations,
            }
            for p in self.hub.peers.values()
            if p.conn.kernel_id == kernel_id
        ]

    def _methods(self, streaming: bool) -> list[JSON]:
        result = []
        for peer in self.hub.peers.values():
            for method_id, registered in peer.methods.items():
                if registered.streaming != streaming:
                    continue
                method = registered.definition
                item = {
                    "server_id": peer.peer_id,
                    "application": peer.identity.get("application"),
                    "instance": peer.identity.get("instance"),
                    "id": method_id,
                    "name": method.get("name"),
                    "display_name": method.get("display_name"),
                    "description": method.get("description"),
                    "accepts": method.get("input_signature"),
                    "returns": method.get("result_signature"),
                    "flags": (method.get("flags") or {}).get("metadata"),
                }
                if streaming:
                    item.update(self._stream_state(peer.peer_id, method_id))
                result.append(item)
        return result

    def _stream_state(self, peer_id: str, method_id: str) -> JSON:
        branches: dict[str, int] = {}
        pending = 0
        peer = self.hub.peers[peer_id]
        for sub_id in peer.publishing:
            sub = self.hub.agm.subscriptions.get(sub_id)
            if sub is None or sub.method_id != method_id:
                continue
            if sub.stream_id is None:
                pending += 1
            else:
                branches[sub.stream_id] = branches.get(sub.stream_id, 0) + 1
        return {"branches": branches, "subscribers": sum(branches.values()), "pending": pending}

    def methods(self) -> list[JSON]:
        return self._methods(streaming=False)

    def streams(self) -> list[JSON]:
        return self._methods(streaming=True)

    def contexts(self) -> list[JSON]:
        return [
            {
                "name": c.name,
                "context_id": c.context_id,
                "lifetime": c.lifetime,
                "version": c.version,
                "updated_at": c.updated_at,
                "updater_id": c.updater_id,
                "creator_id": c.creator_id,
                "members": sorted(p.peer_id for p in c.members),
                "keys": sorted(c.data) if isinstance(c.data, dict) else [],
            }
            for c in self.hub.contexts.by_id.values()
        ]

    def channels(self) -> list[JSON]:
        members = self.hub.channel_registry.members()
        result = []
        for name, ctx in self.hub.contexts.by_name.items():
            if not name.startswith(CHANNEL_PREFIX):
                continue
            channel = name[len(CHANNEL_PREFIX) :]
            data = ctx.data if isinstance(ctx.data, dict) else {}
            result.append(
                {
                    "name": channel,
                    "meta": data.get("meta", {}),
                    "data": data.get("data", {}),
                    "version": ctx.version,
                    "members": [
                        {
                            "peer_id": p.peer_id,
                            "application": p.identity.get("application"),
                            "notebook_path": p.identity.get("notebookPath"),
                        }
                        for p in members.get(channel, [])
                    ],
                }
            )
        return result

    def status(self) -> JSON:
        return {
            "hub_id": self.hub.hub_id,
            "peers": len(self.hub.peers),
            "methods": sum(len(p.methods) for p in self.hub.peers.values()),
            "contexts": len(self.hub.contexts.by_id),
            "pending_calls": len(self.hub.agm.calls),
            "stream_subscriptions": len(self.hub.agm.subscriptions),
            "bus_subscriptions": len(self.hub.bus.subscriptions),
            "persisted": self.hub.store is not None,
        }
