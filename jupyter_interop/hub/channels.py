"""Channels: io.Connect's colour channels as ``___channel___<Name>`` contexts, plus membership.

Channel data lives in ordinary shared contexts (so JS clients see the same data). What the hub
adds is knowledge of each peer's current channel: peers that negotiated the ``channels``
extension report joins, and a user interface can ask a peer to move to another channel.

It also keeps io.Connect's channel restrictions (``restrict-channel``): whether a peer may read
(receive a channel's data) and write (change it) each channel. The context domain asks
:meth:`ChannelRegistry.may_read` and :meth:`ChannelRegistry.may_write`, so the rule holds for
every client (docs/RELIABILITY.md). A peer may restrict itself or another peer; it cannot lift
a restriction that another peer put on it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..protocol import ProtocolError, Reason, messages
from ..protocol.channels import CHANNEL_PREFIX, channel_context_problem
from ..protocol.wire import CHANNEL_CHANGE_REQUEST_TYPE, CHANNELS_EXTENSION, GLOBAL_DOMAIN
from ._fields import field as msg_field
from ._fields import ident, optional
from ._services import HubServices
from .connection import Outgoing
from .contexts import ContextDomain
from .peers import Message, Peer

#: FDC3's recommended user channel set (Channel 1..8 = red, orange, yellow, green, cyan, blue,
#: magenta, purple) as io.Connect maps it onto its colours: ``meta.fdc3`` makes a colour
#: channel an FDC3 user channel (docs/FDC3.md, "User channels")
_FDC3_CHANNEL_NUMBERS = {
    "Red": 1,
    "Orange": 2,
    "Yellow": 3,
    "Green": 4,
    "Cyan": 5,
    "Blue": 6,
    "Pink": 7,
    "Purple": 8,
}


def _fdc3_meta(name: str) -> dict[str, Any]:
    number = _FDC3_CHANNEL_NUMBERS.get(name)
    if number is None:
        return {}
    display = {"name": f"Channel {number}", "glyph": str(number)}
    return {"fdc3": {"id": f"fdc3.channel.{number}", "displayMetadata": display}}


DEFAULT_CHANNELS: list[dict[str, Any]] = [
    {"name": name, "meta": {"color": color, **_fdc3_meta(name)}}
    for name, color in [
        ("Red", "red"),
        ("Green", "green"),
        ("Blue", "#66ABFF"),
        ("Pink", "#F328BB"),
        ("Yellow", "#FFE733"),
        ("DarkYellow", "#b09b00"),
        ("Orange", "#fa5a28"),
        ("Purple", "#c873ff"),
        ("Lime", "#8af59e"),
        ("Cyan", "#80f3ff"),
    ]
]


def context_name(channel: str) -> str:
    return CHANNEL_PREFIX + channel


@dataclass(frozen=True, slots=True)
class Restriction:
    """May a peer read and write a channel; ``set_by`` is the peer id that decided it."""

    read: bool
    write: bool
    set_by: str


#: the key of a peer's restriction of every channel (``restrict-channel`` without a channel)
ALL_CHANNELS = None


class ChannelRegistry:
    """Channel contexts created at start, and which peer is on which channel."""

    def __init__(self, hub: HubServices, contexts: ContextDomain) -> None:
        self.hub = hub
        self.contexts = contexts
        #: peer -> channel name (``ALL_CHANNELS``: every channel) -> its restriction
        self.restrictions: dict[Peer, dict[str | None, Restriction]] = {}

    def ensure_channel_contexts(self, definitions: list[dict[str, Any]]) -> None:
        """Create missing channel contexts; existing ones keep their data across restarts."""
        for definition in definitions:
            name = definition.get("name")
            if not isinstance(name, str) or not name:
                self.hub.log.warning("Interop: ignoring channel definition without a name")
                continue
            if context_name(name) not in self.contexts.by_name:
                meta = definition.get("meta") or {}
                value = {"name": name, "meta": meta, "data": {}}
                problem = channel_context_problem(context_name(name), value)
                if problem is not None:
                    self.hub.log.warning("Interop: ignoring channel %r: %s", name, problem)
                    continue
                self.contexts.create_retained(context_name(name), {**value, "meta": dict(meta)})

    def names(self) -> list[str]:
        return [
            n[len(CHANNEL_PREFIX) :] for n in self.contexts.by_name if n.startswith(CHANNEL_PREFIX)
        ]

    def _check(self, channel: Any) -> str | None:
        if channel is None:
            return None
        if not isinstance(channel, str) or context_name(channel) not in self.contexts.by_name:
            raise ProtocolError(
                Reason.INVALID_MESSAGE,
                f"Unknown channel {channel!r}; known channels: {', '.join(self.names())}",
            )
        return channel

    def _announce(self, peer: Peer, out: Outgoing) -> None:
        application = peer.identity.get("application")
        for other in self.hub.peers.values():
            if other.extensions.get(CHANNELS_EXTENSION):
                notice = messages.channel_membership(
                    other.peer_id, peer.peer_id, application, peer.channels
                )
                out.append((other.conn, notice))

    def announce_members_to(self, peer: Peer, out: Outgoing) -> None:
        """After ``welcome``: who is on which channels now (later changes arrive one by one)."""
        for other in self.hub.peers.values():
            if other.channels and other is not peer:
                notice = messages.channel_membership(
                    peer.peer_id, other.peer_id, other.identity.get("application"), other.channels
                )
                out.append((peer.conn, notice))

    def handle_changed(self, peer: Peer, msg: Message, out: Outgoing) -> None:
        """A peer tells the hub which channel it is on now (``null``: none), or with
        ``channels`` every channel it is on (multi-channel mode; ``channel`` is the last)."""
        channel = self._check(msg.get("channel"))
        listed = msg.get("channels")
        if listed is None:
            channels: tuple[str, ...] = () if channel is None else (channel,)
        else:
            if not isinstance(listed, list) or not all(isinstance(n, str) for n in listed):
                raise ProtocolError(Reason.INVALID_MESSAGE, "'channels' must be a list of names")
            channels = tuple(dict.fromkeys(name for name in listed if self._check(name)))
            if (channels[-1] if channels else None) != channel:
                raise ProtocolError(
                    Reason.INVALID_MESSAGE,
                    "'channel' must be the last of 'channels' (null when it is empty)",
                )
        peer.channel, peer.channels = channel, channels
        self.hub.success(out, peer, msg)
        self._announce(peer, out)

    def handle_move(self, peer: Peer, msg: Message, out: Outgoing) -> None:
        """Ask another peer (a notebook) to move to a channel; it obeys and reports back."""
        target_id = ident(msg, "target")
        channel = self._check(msg.get("channel"))
        target = self.hub.peers.get(target_id)
        if target is None:
            raise ProtocolError(Reason.INVALID_MESSAGE, f"No peer with id {target_id}")
        if not target.extensions.get(CHANNELS_EXTENSION):
            raise ProtocolError(
                Reason.INVALID_MESSAGE,
                f"Peer {target_id} does not follow channel requests (no channels extension)",
            )
        out.append(
            (
                target.conn,
                {
                    "domain": GLOBAL_DOMAIN,
                    "type": CHANNEL_CHANGE_REQUEST_TYPE,
                    "peer_id": target.peer_id,
                    "channel": channel,
                    "requested_by": peer.peer_id,
                },
            )
        )
        self.hub.success(out, peer, msg)

    # ------------------------------------------------------------ restrictions

    def restriction(self, peer: Peer, channel: str) -> Restriction | None:
        """The restriction ``peer`` is under for ``channel`` (None: it may read and write)."""
        held = self.restrictions.get(peer)
        if not held:
            return None
        return held.get(channel) or held.get(ALL_CHANNELS)

    def may_read(self, peer: Peer, channel: str) -> bool:
        restriction = self.restriction(peer, channel)
        return restriction is None or restriction.read

    def readers(self, members: set[Peer], channel: str) -> set[Peer]:
        """Those of ``members`` that may read ``channel`` (an update goes to them only):
        ``members`` itself when nobody is restricted, so an update pays nothing for the rule."""
        if not self.restrictions:
            return members
        return {peer for peer in members if self.may_read(peer, channel)}

    def may_write(self, peer: Peer, channel: str) -> bool:
        restriction = self.restriction(peer, channel)
        return restriction is None or restriction.write

    def write_refusal(self, peer: Peer, channel: str, action: str) -> ProtocolError:
        """The error a peer restricted from writing ``channel`` gets."""
        restriction = self.restriction(peer, channel)
        by = restriction.set_by if restriction is not None else None
        who = "itself" if by == peer.peer_id else f"peer {by}"
        return ProtocolError(
            Reason.CONTEXT_NOT_AUTHORIZED,
            f"Peer {peer.peer_id} may not {action} channel {channel!r}: it is restricted from "
            f"writing it (restricted by {who})",
        )

    def _target(self, peer: Peer, msg: Message) -> Peer:
        """The peer a restriction message is about: ``target``, default its sender."""
        target_id = optional(msg, "target", str, peer.peer_id)
        target = self.hub.peers.get(target_id)
        if target is None:
            raise ProtocolError(Reason.INVALID_MESSAGE, f"No peer with id {target_id}")
        return target

    def handle_restrict(self, peer: Peer, msg: Message, out: Outgoing) -> None:
        """Set whether a peer (``target``, default: the sender) may read and write ``channel``
        (absent or null: every channel, replacing its per-channel restrictions)."""
        read = msg_field(msg, "read", bool)
        write = msg_field(msg, "write", bool)
        channel = self._check(msg.get("channel"))
        target = self._target(peer, msg)
        held = self.restrictions.setdefault(target, {})
        if target is peer:
            for name, current in held.items():
                if name not in (channel, ALL_CHANNELS) and channel is not ALL_CHANNELS:
                    continue
                lifts = (read and not current.read) or (write and not current.write)
                if lifts and current.set_by != peer.peer_id:
                    shown = "every channel" if name is ALL_CHANNELS else f"channel {name!r}"
                    raise ProtocolError(
                        Reason.CONTEXT_NOT_AUTHORIZED,
                        f"Peer {peer.peer_id} cannot lift the restriction of {shown} that peer "
                        f"{current.set_by} put on it",
                    )
        could_read = {name: self.may_read(target, name) for name in self.names()}
        if channel is ALL_CHANNELS:
            held.clear()
        held[channel] = Restriction(read, write, peer.peer_id)
        self.hub.success(out, peer, msg)
        for name, before in could_read.items():
            if not before and self.may_read(target, name):
                self.contexts.resend(target, context_name(name), out)

    def handle_get_restrictions(self, peer: Peer, msg: Message, out: Outgoing) -> None:
        """Every channel with whether a peer (``target``, default: the sender) may read and
        write it: io.Connect's ``Restrictions`` (``{channels: [{name, read, write}]}``)."""
        target = self._target(peer, msg)
        channels = [
            {
                "name": name,
                "read": self.may_read(target, name),
                "write": self.may_write(target, name),
            }
            for name in self.names()
        ]
        self.hub.success(out, peer, msg, target=target.peer_id, channels=channels)

    def detach(self, peer: Peer, out: Outgoing) -> None:
        self.restrictions.pop(peer, None)
        if peer.channels:
            peer.channel, peer.channels = None, ()
            self._announce(peer, out)

    def members(self) -> dict[str, list[Peer]]:
        result: dict[str, list[Peer]] = {}
        for peer in self.hub.peers.values():
            for channel in peer.channels:
                result.setdefault(channel, []).append(peer)
        return result
