"""Tables for the listing magics and the viewer: peers, methods, streams, contexts, channels.

Kept apart from the magics so the Interop Viewer widget renders the same tables.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from ..protocol.channels import CHANNEL_PREFIX
from ._render import Badge, KeyValues, Table, swatch

if TYPE_CHECKING:
    from ..client import Instance, Interop, Method

__all__ = [
    "channels_table",
    "contexts_table",
    "describe_instance",
    "methods_table",
    "peers_table",
    "status_view",
    "stream_methods",
]


def _match(pattern: str | None, *names: str | None) -> bool:
    if not pattern:
        return True
    return any(n and fnmatch.fnmatchcase(n.lower(), pattern.lower()) for n in names)


def describe_instance(instance: Instance | None) -> str:
    """A peer as a user reads it: the notebook path, else the application, plus its id."""
    if instance is None:
        return ""
    label = instance.notebook_path or instance.application or "?"
    return f"{label} ({instance.peer_id})"


def stream_methods(io: Interop) -> list[Method]:
    """The streams the hub announced (``io.methods.methods()`` lists methods only)."""
    return io.streams.streams()


def peers_table(io: Interop, pattern: str | None = None) -> Table:
    me = io.peer_id
    members: dict[str, str] = {}
    for name, peer_ids in io.channels.members().items():
        for peer_id in peer_ids:
            members[peer_id] = name
    colors = _colors(io)
    peers = [p for p in io.methods.servers() if _match(pattern, p.application, p.notebook_path)]
    rows = []
    for p in peers:
        channel = members.get(p.peer_id)
        rows.append(
            [
                p.application or "",
                p.notebook_path or "",
                p.peer_id,
                p.user or "",
                p.pid or "",
                swatch(colors.get(channel), channel) if channel else "",
                "this notebook" if p.peer_id == me else "",
            ]
        )
    return Table(
        ["application", "notebook", "peer", "user", "pid", "channel", ""],
        rows,
        title=f"{len(rows)} peer(s)",
        data=peers,
    )


def methods_table(methods: Iterable[Method], what: str, pattern: str | None = None) -> Table:
    chosen = [m for m in methods if _match(pattern, m.name)]
    chosen.sort(key=lambda m: m.name.lower())
    rows = [
        [
            m.name,
            m.accepts or "",
            m.returns or "",
            m.description or "",
            ", ".join(s.notebook_path or s.application or s.peer_id for s in m.servers),
        ]
        for m in chosen
    ]
    return Table(
        ["name", "accepts", "returns", "description", "offered by"],
        rows,
        title=f"{len(rows)} {what}",
        data=chosen,
    )


def contexts_table(
    io: Interop, pattern: str | None = None, include_channels: bool = False
) -> Table:
    names = [
        n
        for n in io.contexts.all()
        if (include_channels or not n.startswith(CHANNEL_PREFIX)) and _match(pattern, n)
    ]
    owners = _peer_names(io)
    rows = []
    for n in names:
        version = io.contexts.version(n)
        rows.append([n, _lifetime(io, n, owners), version if version is not None else ""])
    return Table(
        ["name", "lifetime", "version (if followed here)"],
        rows,
        title=f"{len(rows)} context(s)",
        data=names,
    )


def _lifetime(io: Interop, name: str, owners: dict[str, str]) -> str:
    """The lifetime cell: ``retained``, ``ref-counted``, or ``ownership`` with its owner and
    a ``read-only`` mark; ``?`` when the gateway does not say."""
    info = io.contexts.info(name)
    if info is None or info.lifetime is None:
        return "?"
    text = info.lifetime
    if info.lifetime == "ownership" and info.owner is not None:
        mine = info.owner == io.peer_id
        text += f" (owner: {'this notebook' if mine else owners.get(info.owner, info.owner)})"
    return text + (", read-only" if info.read_only else "")


def _colors(io: Interop) -> dict[str, str]:
    return {c.name: c.color or "" for c in io.channels.list()}


def channels_table(io: Interop) -> Table:
    channels = io.channels.list()
    members = io.channels.members()
    names = _peer_names(io)
    rows = []
    data = []
    for c in channels:
        on = [names.get(p, p) for p in members.get(c.name, [])]
        here = " (this notebook)" if io.channels.current == c.name else ""
        rows.append([swatch(c.color, c.name + here), c.color or "", ", ".join(on), c.data])
        data.append({"name": c.name, "color": c.color, "members": on, "data": c.data})
    return Table(
        ["channel", "colour", "notebooks on it", "data"],
        rows,
        title=f"{len(rows)} channel(s)",
        data=data,
    )


def _peer_names(io: Interop) -> dict[str, str]:
    return {p.peer_id: p.notebook_path or p.application or p.peer_id for p in io.methods.servers()}


def status_view(io: Interop, methods: dict[str, str]) -> KeyValues:
    me = io.instance
    current = io.channels.current
    color = None
    if current:
        color = next((c.color for c in io.channels.list() if c.name == current), None)
    own = list(io.methods.own.values())
    own_methods = sorted(m.name for m in own if not m.streaming)
    own_streams = sorted(m.name for m in own if m.streaming)
    state = "connected" if io.connected else ("closed" if io.closed else "reconnecting")
    channel: Any = swatch(color, current) if current else Badge("(none)", "(none)")
    link = io.status()
    fallbacks = link["fallbacks"]
    items: list[tuple[str, Any]] = [
        ("hub", f"{io.url} ({state})"),
        ("gateway", f"{link['gateway']}, logged in with {link['authentication']}"),
        ("extensions", ", ".join(link["extensions"]) or "(none: plain GW3)"),
        ("fallbacks", "; ".join(f"{k}: {v}" for k, v in fallbacks.items()) or "(none)"),
        ("application", me.application or ""),
        ("notebook", me.notebook_path or "(not a notebook kernel)"),
        ("peer id", me.peer_id),
        ("instance", me.instance or ""),
        ("user", me.user or ""),
        ("channel", channel),
        ("my methods", ", ".join(own_methods) or "(none)"),
        ("my streams", ", ".join(own_streams) or "(none)"),
    ]
    data = {
        "url": io.url,
        "connected": io.connected,
        "application": me.application,
        "notebook_path": me.notebook_path,
        "peer_id": me.peer_id,
        "instance": me.instance,
        "user": me.user,
        "channel": current,
        "methods": own_methods,
        "streams": own_streams,
        "cell_methods": dict(methods),
        "gateway": link["gateway"],
        "extensions": link["extensions"],
        "fallbacks": fallbacks,
    }
    return KeyValues(items, title="Interop status", data=data)
