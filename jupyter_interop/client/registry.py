"""What the client knows about servers and their methods (from ``peer-added``,
``methods-added``, ``methods-removed`` and ``peer-removed``), and the discovery events.

Loop-confined: only the I/O loop mutates it. Callers that wait for a method to appear await
:meth:`Registry.changed`, which is set on every change (no polling, unlike io.Connect's 500 ms).
Event semantics follow io.Connect: ``method_added`` fires when the *first* server offering a
method identity appears and ``method_removed`` when the *last* one goes; the ``*_added``
events replay the current state to a new callback; on disconnect every remote server is
removed with reason ``"reset"`` and comes back after the reconnect.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..protocol.wire import (
    AGM_DOMAIN,
    META_HUB_KEY,
    METHODS_ADDED_TYPE,
    METHODS_REMOVED_TYPE,
    PEER_ADDED_TYPE,
    PEER_REMOVED_TYPE,
)
from .errors import ArgumentError
from .instance import Instance, InstanceFilter, matches, normalize_filter

if TYPE_CHECKING:
    from .session import ClientSession

__all__ = ["Method", "MethodInfo", "Registry", "Server", "Unsubscribe"]

Unsubscribe = Callable[[], None]


@dataclass(frozen=True)
class MethodInfo:
    """One method (or stream) as registered by one server."""

    id: str
    name: str
    display_name: str | None = None
    description: str | None = None
    accepts: str | None = None
    returns: str | None = None
    version: int | None = None
    object_types: tuple[str, ...] = ()
    flags: dict[str, Any] = field(default_factory=dict)
    supports_streaming: bool = False

    @classmethod
    def from_wire(cls, method: dict[str, Any]) -> MethodInfo:
        flags = method.get("flags") if isinstance(method.get("flags"), dict) else {}
        assert isinstance(flags, dict)
        user_flags = flags.get("metadata") if isinstance(flags.get("metadata"), dict) else {}
        object_types = method.get("object_types") or ()
        return cls(
            id=str(method.get("id")),
            name=str(method.get("name")),
            display_name=method.get("display_name"),
            description=method.get("description"),
            accepts=method.get("input_signature"),
            returns=method.get("result_signature"),
            version=method.get("version"),
            object_types=tuple(object_types) if isinstance(object_types, list) else (),
            flags=dict(user_flags or {}),
            supports_streaming=bool(flags.get("streaming")),
        )

    @property
    def identity(self) -> tuple[str, str, str]:
        """io.Connect's method identity: name + accepts + returns, case-insensitive."""
        return (self.name.lower(), (self.accepts or "").lower(), (self.returns or "").lower())


@dataclass(frozen=True)
class Method:
    """A method as offered by one or more servers (what :meth:`Methods.methods` lists)."""

    name: str
    display_name: str | None
    description: str | None
    accepts: str | None
    returns: str | None
    version: int | None
    object_types: tuple[str, ...]
    flags: dict[str, Any]
    supports_streaming: bool
    servers: tuple[Instance, ...]
    #: each server's own definition, in the order of ``servers``: servers that share the
    #: identity may differ in the rest (an intent handler's ``flags.intent``, a description)
    definitions: tuple[MethodInfo, ...] = ()

    def __repr__(self) -> str:
        kind = "stream" if self.supports_streaming else "method"
        return f"<{kind} {self.name!r} on {len(self.servers)} server(s)>"


@dataclass
class Server:
    instance: Instance
    methods: dict[str, MethodInfo] = field(default_factory=dict)

    def offer(self, identity: tuple[str, str, str]) -> MethodInfo | None:
        """This server's own definition of the method ``identity`` names, if it has one."""
        return next((m for m in self.methods.values() if m.identity == identity), None)


def method_matches(method: MethodInfo, query: str | dict[str, Any]) -> bool:
    """A name (case-insensitive, as io.Connect compares) or a definition used as a filter."""
    if isinstance(query, str):
        return method.name.lower() == query.lower()
    for key, expected in query.items():
        if expected is None or key.startswith("_"):
            continue
        if key == "object_types":
            if not set(expected) <= set(method.object_types):
                return False
        elif key == "flags":
            if not _subset(expected, method.flags):
                return False
        else:
            actual = getattr(method, key, None)
            if actual is None or str(actual).lower() != str(expected).lower():
                return False
    return True


def _subset(expected: Any, actual: Any) -> bool:
    if isinstance(expected, dict):
        return isinstance(actual, dict) and all(
            k in actual and _subset(v, actual[k]) for k, v in expected.items()
        )
    return bool(expected == actual)


class Registry:
    """Servers by peer id (in the order they appeared) and the discovery events."""

    def __init__(self, session: ClientSession) -> None:
        self.session = session
        self.servers: dict[str, Server] = {}
        self._identities: dict[tuple[str, str, str], int] = {}
        self._listeners: dict[str, list[tuple[Callable[..., Any], Any]]] = {
            "method_added": [],
            "method_removed": [],
            "server_added": [],
            "server_removed": [],
            "server_method_added": [],
            "server_method_removed": [],
        }
        self.changed = asyncio.Event()
        conn = session.conn
        conn.on(AGM_DOMAIN, PEER_ADDED_TYPE, self._peer_added)
        conn.on(AGM_DOMAIN, PEER_REMOVED_TYPE, self._peer_removed)
        conn.on(AGM_DOMAIN, METHODS_ADDED_TYPE, self._methods_added)
        conn.on(AGM_DOMAIN, METHODS_REMOVED_TYPE, self._methods_removed)
        conn.add_lost_hook(self.reset)

    # ------------------------------------------------------------------ events in

    def add_self(self) -> None:
        """Our own instance is a server too (the hub sends no peer-added for ourselves)."""
        instance = self.session.conn.instance
        if instance is not None and instance.peer_id not in self.servers:
            self._add_server(instance)

    def _add_server(self, instance: Instance) -> Server:
        server = self.servers.get(instance.peer_id)
        if server is None:
            server = self.servers[instance.peer_id] = Server(instance)
            self._emit("server_added", instance)
            self._touch()
        return server

    def _peer_added(self, msg: dict[str, Any]) -> None:
        peer_id = str(msg.get("new_peer_id"))
        meta = msg.get("meta") if isinstance(msg.get("meta"), dict) else {}
        assert isinstance(meta, dict)
        identity = msg.get("identity") if isinstance(msg.get("identity"), dict) else {}
        assert isinstance(identity, dict)
        hub = meta.get(META_HUB_KEY)
        instance = Instance.from_identity(
            identity, peer_id, bool(meta.get("local", True)), hub if isinstance(hub, str) else None
        )
        self._add_server(instance)

    def _peer_removed(self, msg: dict[str, Any]) -> None:
        peer_id = str(msg.get("removed_id"))
        self._remove_server(peer_id, str(msg.get("reason") or "Peer has been removed"))

    def _remove_server(self, peer_id: str, reason: str) -> None:
        server = self.servers.pop(peer_id, None)
        if server is None:
            return
        for method in list(server.methods.values()):
            self._method_gone(server, method)
        server.methods.clear()
        self._emit("server_removed", server.instance, reason)
        self._touch()

    def _methods_added(self, msg: dict[str, Any]) -> None:
        server_id = str(msg.get("server_id"))
        server = self.servers.get(server_id)
        if server is None:
            if server_id != self.session.conn.peer_id:
                return
            self.add_self()
            server = self.servers[server_id]
        for raw in msg.get("methods") or ():
            if not isinstance(raw, dict):
                continue
            method = MethodInfo.from_wire(raw)
            previous = server.methods.get(method.id)
            if previous is not None:
                self._method_gone(server, previous)
            server.methods[method.id] = method
            count = self._identities.get(method.identity, 0)
            self._identities[method.identity] = count + 1
            if count == 0:
                self._emit("method_added", self._method_view(method))
            self._emit("server_method_added", server.instance, self._method_view(method))
        self._touch()

    def _methods_removed(self, msg: dict[str, Any]) -> None:
        server = self.servers.get(str(msg.get("server_id")))
        if server is None:
            return
        for method_id in msg.get("methods") or ():
            method = server.methods.pop(str(method_id), None)
            if method is not None:
                self._method_gone(server, method)
        self._touch()

    def _method_gone(self, server: Server, method: MethodInfo) -> None:
        self._emit("server_method_removed", server.instance, self._method_view(method))
        count = self._identities.get(method.identity, 0) - 1
        if count <= 0:
            self._identities.pop(method.identity, None)
            self._emit("method_removed", self._method_view(method))
        else:
            self._identities[method.identity] = count

    def reset(self) -> None:
        """The connection dropped: every server (ourselves included) is gone for now."""
        for peer_id in list(self.servers):
            self._remove_server(peer_id, "reset")

    def _touch(self) -> None:
        self.changed.set()
        self.changed = asyncio.Event()

    # ------------------------------------------------------------------ queries

    def candidates(
        self, query: str | dict[str, Any], streaming: bool
    ) -> list[tuple[Instance, MethodInfo]]:
        """(server, method) pairs offering ``query``, in server order."""
        found = []
        for server in self.servers.values():
            for method in server.methods.values():
                if method.supports_streaming == streaming and method_matches(method, query):
                    found.append((server.instance, method))
                    break
        return found

    def select(
        self,
        candidates: list[tuple[Instance, MethodInfo]],
        target: str | list[InstanceFilter],
        own_peer_id: str | None,
    ) -> list[tuple[Instance, MethodInfo]]:
        if target == "best":
            return candidates[:1]
        if target == "all":
            return candidates
        if target == "skipMine":
            return [c for c in candidates if c[0].peer_id != own_peer_id]
        assert isinstance(target, list)
        chosen: list[tuple[Instance, MethodInfo]] = []
        for flt in target:
            for candidate in candidates:
                if matches(candidate[0], flt) and candidate not in chosen:
                    chosen.append(candidate)
        return chosen

    def methods(self, query: str | dict[str, Any] | None = None) -> list[Method]:
        """One entry per method identity, with every server offering it."""
        grouped: dict[tuple[str, str, str], list[tuple[Instance, MethodInfo]]] = {}
        for server in self.servers.values():
            for method in server.methods.values():
                if query is not None and not method_matches(method, query):
                    continue
                grouped.setdefault(method.identity, []).append((server.instance, method))
        return [self._method_view(offers[0][1], offers) for offers in grouped.values()]

    def _method_view(
        self, method: MethodInfo, offers: Iterable[tuple[Instance, MethodInfo]] | None = None
    ) -> Method:
        if offers is None:
            offers = [
                (server.instance, own)
                for server in self.servers.values()
                if (own := server.offer(method.identity)) is not None
            ]
        offers = list(offers)
        return Method(
            name=method.name,
            display_name=method.display_name,
            description=method.description,
            accepts=method.accepts,
            returns=method.returns,
            version=method.version,
            object_types=method.object_types,
            flags=dict(method.flags),
            supports_streaming=method.supports_streaming,
            servers=tuple(instance for instance, _ in offers),
            definitions=tuple(info for _, info in offers),
        )

    def server_list(
        self, query: str | dict[str, Any] | None = None, instance_filter: Any = None
    ) -> list[Instance]:
        flt = normalize_filter(instance_filter) if instance_filter is not None else None
        result = []
        for server in self.servers.values():
            if flt is not None and not matches(server.instance, flt):
                continue
            if query is not None and not any(
                method_matches(m, query) for m in server.methods.values()
            ):
                continue
            result.append(server.instance)
        return result

    # ------------------------------------------------------------------ listeners

    def listen(self, event: str, callback: Callable[..., Any]) -> Unsubscribe:
        """Add a listener from any thread (``*_added`` replay the current state to it first).

        Returns a function that removes it. Registration happens on the I/O loop, so the
        replay and later events reach the callback in order.
        """
        from .dispatch import capture_output_target

        if not callable(callback):
            raise ArgumentError(f"The {event} callback must be callable, not {callback!r}")
        entry = (callback, capture_output_target())
        self.session.io.call_soon(self._listen, event, entry)

        def unsubscribe() -> None:
            self.session.io.call_soon(self._unlisten, event, entry)

        return unsubscribe

    def _listen(self, event: str, entry: tuple[Callable[..., Any], Any]) -> None:
        callback, target = entry
        self._listeners[event].append(entry)
        dispatcher = self.session.dispatcher
        if event == "server_added":
            for server in self.servers.values():
                dispatcher.post_event(callback, (server.instance,), target)
        elif event == "method_added":
            for method in self.methods():
                dispatcher.post_event(callback, (method,), target)
        elif event == "server_method_added":
            for server in self.servers.values():
                for m in server.methods.values():
                    dispatcher.post_event(callback, (server.instance, self._method_view(m)), target)

    def _unlisten(self, event: str, entry: tuple[Callable[..., Any], Any]) -> None:
        listeners = self._listeners[event]
        if entry in listeners:
            listeners.remove(entry)

    def _emit(self, event: str, *args: Any) -> None:
        listeners = self._listeners[event]
        if listeners:
            dispatcher = self.session.dispatcher
            for callback, target in listeners:
                dispatcher.post_event(callback, args, target)
