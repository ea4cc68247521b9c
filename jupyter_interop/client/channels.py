"""Channels: io.Connect's colour channels on shared contexts, plus membership
(docs/ARCHITECTURE.md, "Semantics kept from io.Connect").

A channel is the context ``___channel___<Name>`` holding ``{name, meta: {color}, data}``, so
JS clients see the same data. ``publish(data)`` replaces the given top-level keys of ``data``
(``None`` removes one) with one ``set_paths`` message, as io.Connect does; ``subscribe``
follows the *current* channel across joins and hears the current data at once when joined;
``subscribe_for(name)`` follows one channel whatever the current one is.

The hub also learns which channel this client is on (the ``channels`` extension negotiated in
``hello``), so a user interface can list notebooks per channel and move one: the client obeys
a ``channel-change-request`` by joining (or leaving) and notifies ``on_changed``. On a plain
GW3 gateway channels are the same contexts; membership stays local (docs/GATEWAYS.md).
"""

from __future__ import annotations

import builtins
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..protocol.channels import CHANNEL_PREFIX, channel_context_problem, channel_name_problem
from ..protocol.colors import is_css_color
from ..protocol.wire import (
    CHANNEL_CHANGE_REQUEST_TYPE,
    CHANNEL_CHANGED_TYPE,
    CHANNEL_MEMBERSHIP_TYPE,
    CHANNELS_EXTENSION,
    GET_CHANNEL_RESTRICTIONS_TYPE,
    GLOBAL_DOMAIN,
    MOVE_TO_CHANNEL_TYPE,
    RESTRICT_CHANNEL_TYPE,
)
from .contexts import (
    ContextMeta,
    Contexts,
    ContextSubscriber,
    ContextSubscription,
    adapt_callback,
    copy_data,
)
from .dispatch import OutputTarget, capture_output_target
from .errors import ArgumentError, ChannelError, RemoteError
from .instance import Instance
from .twins import blocking, on_io_loop

if TYPE_CHECKING:
    from .session import ClientSession

__all__ = ["CHANNEL_MODES", "CHANNEL_PREFIX", "ChannelContext", "Channels"]

#: io.Connect's channel modes (``io.channels.mode``)
CHANNEL_MODES = ("single", "multi")

Unsubscribe = Callable[[], None]


@dataclass(frozen=True)
class ChannelContext:
    """A channel: its name, ``meta`` (``color`` and custom fields) and shared ``data``."""

    name: str
    meta: dict[str, Any] = field(default_factory=dict)
    data: dict[str, Any] = field(default_factory=dict)

    @property
    def color(self) -> str | None:
        """``meta.color`` when it is a plain CSS colour (``protocol/colors.py``), else None:
        views put it in styles, and a channel stored by an older hub may hold anything."""
        color = self.meta.get("color")
        return color if is_css_color(color) else None

    @classmethod
    def from_context(cls, name: str, value: dict[str, Any]) -> ChannelContext:
        meta = value.get("meta") if isinstance(value.get("meta"), dict) else {}
        data = value.get("data") if isinstance(value.get("data"), dict) else {}
        assert isinstance(meta, dict) and isinstance(data, dict)
        return cls(str(value.get("name") or name), meta, data)


@dataclass(eq=False)
class _Follower:
    callback: Callable[..., Any]
    output: OutputTarget | None
    include_own: bool
    active: bool = True


def context_name(channel: str) -> str:
    return CHANNEL_PREFIX + channel


def _peer_id(target: Any) -> str | None:
    """A peer id from an Instance, an id, or None."""
    if target is None or (isinstance(target, str) and target):
        return target
    if isinstance(target, Instance):
        return target.peer_id
    raise ArgumentError(f"A target must be an Instance or a peer id, not {target!r}")


def _data_path(path: Any) -> str:
    """A path inside a channel's ``data`` as a path of its context (``""``: all of data)."""
    if not isinstance(path, str):
        raise ArgumentError(f"A channel path must be a dot-path string, not {path!r}")
    return f"data.{path}" if path else "data"


def _path_values(paths: Any) -> builtins.list[tuple[str, Any]]:
    """io.Connect's ``PathValue`` list (``{path, value}``), pairs, or a ``{path: value}`` dict."""
    if isinstance(paths, dict):
        return builtins.list(paths.items())
    if not isinstance(paths, (builtins.list, tuple)):
        raise ArgumentError(
            f"set_paths needs a list of {{'path': ..., 'value': ...}} or a dict, not {paths!r}"
        )
    items: builtins.list[tuple[str, Any]] = []
    for item in paths:
        if isinstance(item, dict) and set(item) == {"path", "value"}:
            items.append((item["path"], item["value"]))
        elif isinstance(item, (builtins.list, tuple)) and len(item) == 2:
            items.append((item[0], item[1]))
        else:
            raise ArgumentError(
                f"Each channel path must be {{'path': ..., 'value': ...}} or a pair, not {item!r}"
            )
    return items


class Channels:
    """``io.channels``: join, leave, publish, subscribe; the channel this client is on."""

    def __init__(self, session: ClientSession, contexts: Contexts) -> None:
        self._session = session
        self._contexts = contexts
        self._mode: str = "single"
        #: channel name -> the subscriber that follows its context, in the order joined (one
        #: in single mode; a joining channel is here while its subscription is under way)
        self._joined: dict[str, ContextSubscriber] = {}
        #: single mode: each join or leave takes a ticket; a join finishes only if its ticket
        #: is still the last (the last call decides, as when they run one after the other)
        self._ticket = 0
        self._followers: list[_Follower] = []
        self._changed: list[tuple[Callable[[str | None], Any], OutputTarget | None]] = []
        self._channels_changed: list[
            tuple[Callable[[builtins.list[str]], Any], OutputTarget | None]
        ] = []
        #: peer id -> (application, channels) from the hub's membership notices
        self._members: dict[str, tuple[str | None, builtins.list[str]]] = {}
        conn = session.conn
        conn.on(GLOBAL_DOMAIN, CHANNEL_CHANGE_REQUEST_TYPE, self._on_change_request)
        conn.on(GLOBAL_DOMAIN, CHANNEL_MEMBERSHIP_TYPE, self._on_membership)
        conn.add_restorer(self._restore)
        conn.add_lost_hook(self._members.clear)

    # ------------------------------------------------------------------ state

    @property
    def _current(self) -> str | None:
        return next(reversed(self._joined), None)

    @property
    def current(self) -> str | None:
        """The channel this client is on (None: none); in multi mode the last one joined."""
        return self._current

    def my(self) -> str | None:
        """The channel this client is on (io.Connect's name for :attr:`current`)."""
        return self._current

    def my_channels(self) -> builtins.list[str]:
        """Every channel this client is on, in the order joined (io.Connect's
        ``myChannels``): one at most in single mode, any number in multi mode."""
        return builtins.list(self._joined)

    @property
    def mode(self) -> str:
        """``"single"`` (the default: joining a channel leaves the previous one) or
        ``"multi"`` (io.Connect's multi-channel mode: joining adds a channel)."""
        return self._mode

    @mode.setter
    def mode(self, mode: str) -> None:
        if mode not in CHANNEL_MODES:
            raise ArgumentError(f"The channel mode is 'single' or 'multi', not {mode!r}")
        if mode == "single" and len(self._joined) > 1:
            raise ChannelError(
                f"Cannot go back to single mode while on {len(self._joined)} channels "
                f"({', '.join(self._joined)}): leave all but one first"
            )
        self._mode = mode

    def _names(self) -> list[str]:
        return [
            name[len(CHANNEL_PREFIX) :]
            for name in self._contexts.announced_names()
            if name.startswith(CHANNEL_PREFIX)
        ]

    def _check(self, name: Any) -> str:
        if not isinstance(name, str) or not name:
            raise ArgumentError(f"A channel name must be a non-empty string, not {name!r}")
        names = self._names()
        if not names:
            raise ChannelError(
                f"Cannot use channel {name!r}: the gateway at {self._session.url} defines no "
                f"channels (no {CHANNEL_PREFIX}<Name> contexts). A bare Glue42 gateway defines "
                "none; io.Connect Desktop and the jupyter_interop hub do. Add one for everybody "
                "with io.channels.add(name, color)."
            )
        if name not in names:
            raise ChannelError(f"Unknown channel {name!r}; known channels: {', '.join(names)}")
        return name

    # ------------------------------------------------------------------ reads

    @on_io_loop
    async def aall(self) -> list[str]:
        """Names of the channels (io.Connect's ten colours by default)."""
        await self._connected("channels.all()")
        return self._names()

    all = blocking(aall)

    @on_io_loop
    async def alist(self) -> builtins.list[ChannelContext]:
        """Every channel with its meta (colour) and current data."""
        import asyncio

        await self._connected("channels.list()")
        names = self._names()
        values = await asyncio.gather(*(self._contexts.aget(context_name(n)) for n in names))
        return [ChannelContext.from_context(n, v) for n, v in zip(names, values, strict=True)]

    list = blocking(alist)

    @on_io_loop
    async def aget(self, name: str) -> ChannelContext:
        """One channel (raises :class:`ChannelError` for an unknown name)."""
        await self._connected("channels.get()")
        self._check(name)
        value = await self._contexts.aget(context_name(name))
        return ChannelContext.from_context(name, value)

    get = blocking(aget)

    @on_io_loop
    async def aget_my(self) -> ChannelContext | None:
        """io.Connect's ``getMy``: the current channel (in multi mode the last one joined),
        or None when on none."""
        current = self._current
        return None if current is None else await self.aget(current)

    get_my = blocking(aget_my)

    @on_io_loop
    async def aget_my_channels(self) -> builtins.list[ChannelContext]:
        """io.Connect's ``getMyChannels``: every channel this client is on, in the order
        joined."""
        return [await self.aget(name) for name in builtins.list(self._joined)]

    get_my_channels = blocking(aget_my_channels)

    async def _connected(self, what: str) -> None:
        session = self._session
        conn = session.conn
        await conn.wait_connected(conn.loop.time() + session.settings.request_timeout, what)

    # ------------------------------------------------------------------ join

    @on_io_loop
    async def ajoin(self, name: str) -> None:
        """Join the channel ``name``: ``subscribe`` callbacks hear its data now and its
        changes from then on; ``on_changed`` fires; the hub learns it. In single mode the
        previous channel is left; in multi mode ``name`` is added to :meth:`my_channels`."""
        await self._connected(f"channels.join({name!r})")
        self._check(name)
        single = self._mode == "single"
        if single:
            self._ticket += 1
        ticket = self._ticket
        if name in self._joined and (not single or len(self._joined) == 1):
            return
        contexts = self._contexts
        subscriber = self._joined.get(name)
        if subscriber is None:
            subscriber = ContextSubscriber(self._from_channel, None, True, on_loop=True)
            # joined first: the snapshot delivered while subscribing is for a joined channel
            self._joined[name] = subscriber
            try:
                await contexts.add_subscriber(context_name(name), subscriber)
            except BaseException:
                if self._joined.get(name) is subscriber:
                    del self._joined[name]
                raise
        if self._joined.get(name) is not subscriber or (single and ticket != self._ticket):
            # a leave (or another join) came while subscribing: it decided, this join is void
            self._drop(name, subscriber)
            return
        if single:
            for other in [n for n in self._joined if n != name]:
                self._drop(other, self._joined[other])
        self._announce()

    join = blocking(ajoin)

    def _drop(self, name: str, subscriber: ContextSubscriber) -> None:
        """Stop following the channel ``name`` through ``subscriber``."""
        subscriber.active = False
        if self._joined.get(name) is subscriber:
            del self._joined[name]
        self._contexts.remove_subscriber(context_name(name), subscriber)

    @on_io_loop
    async def aleave(self, name: str | None = None) -> None:
        """Leave ``name``, or every channel this client is on (``on_changed`` fires)."""
        if self._mode == "single":
            self._ticket += 1
        if name is None:
            leaving = builtins.list(self._joined.items())
        elif name in self._joined:
            leaving = [(name, self._joined[name])]
        else:
            return
        if not leaving:
            return
        for channel, subscriber in leaving:
            self._drop(channel, subscriber)
        self._announce()

    leave = blocking(aleave)

    def _changed_message(self) -> dict[str, Any]:
        message: dict[str, Any] = {
            "domain": GLOBAL_DOMAIN,
            "type": CHANNEL_CHANGED_TYPE,
            "channel": self._current,
        }
        if self._mode == "multi":
            message["channels"] = builtins.list(self._joined)
        return message

    def _announce(self) -> None:
        conn = self._session.conn
        if conn.extensions.get(CHANNELS_EXTENSION):
            conn.send(self._changed_message())
        current, joined = self._current, builtins.list(self._joined)
        for callback, output in builtins.list(self._changed):
            self._session.dispatcher.post_event(callback, (current,), output)
        for on_channels, output in builtins.list(self._channels_changed):
            self._session.dispatcher.post_event(on_channels, (builtins.list(joined),), output)

    def _from_channel(
        self,
        data: dict[str, Any],
        delta: dict[str, Any],
        removed: builtins.list[str],
        meta: ContextMeta,
    ) -> None:
        """A joined channel's context changed (on the loop): tell the followers."""
        name = meta.name[len(CHANNEL_PREFIX) :]
        if name not in self._joined:
            return  # a late change of a channel we just left
        channel = ChannelContext.from_context(name, data)
        for follower in list(self._followers):
            self._follow(follower, channel, meta)

    def _follow(self, follower: _Follower, channel: ChannelContext, meta: ContextMeta) -> None:
        if not follower.active or (meta.own and not follower.include_own):
            return
        self._session.dispatcher.post_event(
            follower.callback, (copy_data(channel.data), channel, meta), follower.output
        )

    # ------------------------------------------------------------------ publish

    @on_io_loop
    async def apublish(self, data: dict[str, Any], name: str | None = None) -> None:
        """Replace the given top-level keys of the channel's ``data`` (``None`` removes one)
        on ``name``, or on the current channel (in multi mode: on every channel joined)."""
        if not isinstance(data, dict):
            raise ArgumentError(f"channels.publish needs a dict, not {type(data).__name__}")
        for key in data:
            if not isinstance(key, str) or not key:
                raise ArgumentError(f"Channel data keys must be non-empty strings, not {key!r}")
        await self._connected("channels.publish()")
        channels = self._targets(name, "publish()")
        if data:
            await self._write_paths(
                channels, [(f"data.{key}", value) for key, value in data.items()]
            )

    publish = blocking(apublish)

    def _targets(self, name: str | None, what: str) -> builtins.list[str]:
        """The channels a write goes to: ``name``, or those this client is on."""
        if name is not None:
            return [self._check(name)]
        if not self._joined:
            raise ChannelError(f"Not on a channel: join one first, or pass name=... ({what})")
        return builtins.list(self._joined)

    async def _write_paths(
        self, channels: builtins.list[str], paths: builtins.list[tuple[str, Any]]
    ) -> None:
        """One ``update-context`` of ``paths`` for each channel, sent together."""
        import asyncio

        await asyncio.gather(
            *(self._contexts.aset_paths(context_name(channel), paths) for channel in channels)
        )

    @on_io_loop
    async def aset_path(self, path: str, value: Any, name: str | None = None) -> None:
        """Set the dot-path ``path`` inside the channel's ``data`` to ``value`` (``None``
        removes it), on ``name`` or the current channel(s): io.Connect's ``setPath``."""
        await self.aset_paths([(path, value)], name)

    set_path = blocking(aset_path)

    @on_io_loop
    async def aset_paths(self, paths: Any, name: str | None = None) -> None:
        """Several dot-paths of ``data`` in one message (io.Connect's ``setPaths``):
        ``[{"path": ..., "value": ...}]``, ``[(path, value)]`` or ``{path: value}``."""
        items = _path_values(paths)
        await self._connected("channels.set_paths()")
        channels = self._targets(name, "set_paths()")
        if items:
            await self._write_paths(channels, [(_data_path(path), value) for path, value in items])

    set_paths = blocking(aset_paths)

    @on_io_loop
    async def aclear_data(self, name: str | None = None) -> None:
        """Empty the ``data`` of ``name`` or of the current channel(s) (io.Connect's
        ``clearChannelData``); its name and meta stay."""
        await self._connected("channels.clear_data()")
        await self._write_paths(self._targets(name, "clear_data()"), [("data", {})])

    clear_data = blocking(aclear_data)

    @on_io_loop
    async def aremove(self, name: str) -> None:
        """Remove the channel ``name`` for everybody (its context is destroyed); this
        client leaves it first when on it."""
        await self._connected("channels.remove()")
        self._check(name)
        if name in self._joined:
            await self.aleave(name)
        await self._contexts.adestroy(context_name(name))

    remove = blocking(aremove)

    # ------------------------------------------------------------------ subscribe

    @on_io_loop
    async def asubscribe(
        self, callback: Callable[..., Any], *, include_own: bool = True
    ) -> Unsubscribe:
        """``callback(data, channel, meta)`` for the current channel's data, following joins
        (called at once with the current data when on a channel; in multi mode for each
        channel joined, ``channel.name`` says which). Returns an unsubscribe function."""
        if not callable(callback):
            raise ArgumentError(f"The channel callback must be callable, not {callback!r}")
        follower = _Follower(adapt_callback(callback, 3), capture_output_target(), include_own)
        self._followers.append(follower)
        for name in self._joined:
            held = self._contexts.held(context_name(name))
            if held is not None:
                data, meta = held
                self._follow(follower, ChannelContext.from_context(name, data), meta)

        def unsubscribe() -> None:
            follower.active = False
            self._session.io.call_soon(self._drop_follower, follower)

        return unsubscribe

    subscribe = blocking(asubscribe)

    def _drop_follower(self, follower: _Follower) -> None:
        if follower in self._followers:
            self._followers.remove(follower)

    @on_io_loop
    async def asubscribe_for(
        self, name: str, callback: Callable[..., Any], *, include_own: bool = True
    ) -> ContextSubscription:
        """``callback(data, channel, meta)`` for the channel ``name``, whatever the current
        one is."""
        await self._connected(f"channels.subscribe_for({name!r})")
        self._check(name)
        if not callable(callback):
            raise ArgumentError(f"The channel callback must be callable, not {callback!r}")
        adapted = adapt_callback(callback, 3)

        def relay(data: dict[str, Any], delta: Any, removed: Any, meta: ContextMeta) -> Any:
            channel = ChannelContext.from_context(name, data)
            return adapted(channel.data, channel, meta)

        return await self._contexts.asubscribe(context_name(name), relay, include_own=include_own)

    subscribe_for = blocking(asubscribe_for)

    def on_changed(self, callback: Callable[[str | None], Any]) -> Unsubscribe:
        """``callback(name)`` whenever this client joins (``None``: leaves) a channel,
        including when a user interface moved it."""
        return self._listen(self._changed, callback, "on_changed")

    def on_channels_changed(self, callback: Callable[[builtins.list[str]], Any]) -> Unsubscribe:
        """``callback(names)`` with every channel this client is on whenever that changes
        (io.Connect's ``onChannelsChanged``, meant for multi mode; fires in both modes)."""
        return self._listen(self._channels_changed, callback, "on_channels_changed")

    @staticmethod
    def _listen(
        listeners: builtins.list[tuple[Any, OutputTarget | None]],
        callback: Callable[..., Any],
        what: str,
    ) -> Unsubscribe:
        """Add ``callback`` (with the cell output it belongs to) to ``listeners``."""
        if not callable(callback):
            raise ArgumentError(f"The {what} callback must be callable, not {callback!r}")
        entry = (callback, capture_output_target())
        listeners.append(entry)

        def unsubscribe() -> None:
            if entry in listeners:
                listeners.remove(entry)

        return unsubscribe

    # ------------------------------------------------------------------ channels of others

    @on_io_loop
    async def amove(self, target: Instance | str, channel: str | None) -> None:
        """Ask another peer (a notebook) to join ``channel`` (None: leave); it obeys.
        Only the jupyter_interop hub tracks membership: elsewhere this raises ChannelError."""
        await self._connected("channels.move()")
        if not self._session.conn.extensions.get(CHANNELS_EXTENSION):
            raise ChannelError(
                f"channels.move() needs channel membership, which the gateway at "
                f"{self._session.url} does not track (only the jupyter_interop hub does)"
            )
        if channel is not None:
            self._check(channel)
        peer_id = target.peer_id if isinstance(target, Instance) else target
        if not isinstance(peer_id, str) or not peer_id:
            raise ArgumentError(f"move() needs an Instance or a peer id, not {target!r}")
        session = self._session
        await session.conn.request(
            {
                "domain": GLOBAL_DOMAIN,
                "type": MOVE_TO_CHANNEL_TYPE,
                "target": peer_id,
                "channel": channel,
            },
            session.settings.request_timeout,
            "move-to-channel",
        )

    move = blocking(amove)

    @on_io_loop
    async def amembers(self) -> dict[str, builtins.list[str]]:
        """Channel name -> peer ids on it, as far as the hub told us (peers that report).
        A gateway without the ``channels`` extension tells nothing: only this client."""
        result: dict[str, builtins.list[str]] = {}
        for peer_id, (_, channels) in self._members.items():
            for channel in channels:
                result.setdefault(channel, []).append(peer_id)
        own = self._session.conn.peer_id
        for channel in self._joined:
            on_it = result.setdefault(channel, [])
            if own is not None and own not in on_it:
                on_it.append(own)
        return result

    members = blocking(amembers)

    # ------------------------------------------------------------------ restrictions

    @on_io_loop
    async def arestrict(self, restriction: dict[str, Any] | None = None, /, **fields: Any) -> None:
        """Whether a peer may read (receive) and write (publish to) one channel:
        io.Connect's ``restrict({name, read, write, windowId?})``, as a dict or keywords;
        ``target`` (or ``windowId``) is another peer's id or Instance, default this client.
        The hub enforces it for every client; a peer cannot lift a restriction another peer
        put on it."""
        given = {**(restriction or {}), **fields}
        name = given.pop("name", None)
        if name is None:
            raise ArgumentError("restrict() needs the channel's name (use restrict_all for all)")
        await self._restrict(given, name, "restrict")

    restrict = blocking(arestrict)

    @on_io_loop
    async def arestrict_all(
        self, restriction: dict[str, Any] | None = None, /, **fields: Any
    ) -> None:
        """io.Connect's ``restrictAll({read, write, windowId?})``: the same for every channel,
        replacing the per-channel restrictions of that peer."""
        given = {**(restriction or {}), **fields}
        if "name" in given:
            raise ArgumentError("restrict_all() applies to every channel: use restrict(name=...)")
        await self._restrict(given, None, "restrict_all")

    restrict_all = blocking(arestrict_all)

    async def _restrict(self, given: dict[str, Any], name: str | None, what: str) -> None:
        read, write = given.pop("read", None), given.pop("write", None)
        target = _peer_id(given.pop("target", given.pop("windowId", None)))
        if given:
            raise ArgumentError(f"{what}() takes name, read, write and target, not {given}")
        if not isinstance(read, bool) or not isinstance(write, bool):
            raise ArgumentError(f"{what}() needs read=True/False and write=True/False")
        await self._membership(f"channels.{what}()")
        if name is not None:
            self._check(name)
        message: dict[str, Any] = {
            "domain": GLOBAL_DOMAIN,
            "type": RESTRICT_CHANNEL_TYPE,
            "channel": name,
            "read": read,
            "write": write,
        }
        if target is not None:
            message["target"] = target
        await self._request(message, what)

    @on_io_loop
    async def aget_restrictions(
        self, target: Instance | str | None = None
    ) -> dict[str, builtins.list[dict[str, Any]]]:
        """io.Connect's ``Restrictions`` of this client (or ``target``), as the hub holds
        them: ``{"channels": [{"name", "read", "write"}, ...]}``, one entry per channel."""
        await self._membership("channels.get_restrictions()")
        message: dict[str, Any] = {"domain": GLOBAL_DOMAIN, "type": GET_CHANNEL_RESTRICTIONS_TYPE}
        peer_id = _peer_id(target)
        if peer_id is not None:
            message["target"] = peer_id
        reply = await self._request(message, "get_restrictions")
        return {"channels": builtins.list(reply.get("channels") or [])}

    get_restrictions = blocking(aget_restrictions)

    async def _membership(self, what: str) -> None:
        """Connected to a gateway that tracks channel membership (only the jupyter_interop
        hub does); ChannelError elsewhere."""
        await self._connected(what)
        if not self._session.conn.extensions.get(CHANNELS_EXTENSION):
            raise ChannelError(
                f"{what} needs a gateway that tracks channels, which the gateway at "
                f"{self._session.url} does not (only the jupyter_interop hub does)"
            )

    async def _request(self, message: dict[str, Any], what: str) -> dict[str, Any]:
        session = self._session
        try:
            reply: dict[str, Any] = await session.conn.request(
                message, session.settings.request_timeout, what
            )
        except RemoteError as error:
            raise ChannelError(f"channels.{what}(): {error.reason}") from None
        return reply

    @on_io_loop
    async def aadd(self, name: str, color: str, meta: dict[str, Any] | None = None) -> None:
        """Add a channel (a new ``___channel___<name>`` context) for everybody."""
        problem = channel_name_problem(name)
        if problem is not None:
            raise ArgumentError(f"Cannot add channel {name!r}: {problem}")
        if not is_css_color(color):
            raise ArgumentError(
                f"A channel's colour must be a CSS colour (#hex, rgb(), rgba(), hsl(), hsla() "
                f"or a colour name such as 'teal'), not {color!r}"
            )
        value = {"name": name, "meta": {**(meta or {}), "color": color}, "data": {}}
        problem = channel_context_problem(context_name(name), value)
        if problem is not None:
            raise ArgumentError(f"Cannot add channel {name!r}: {problem}")
        await self._connected("channels.add()")
        if name in self._names():
            raise ChannelError(f"The channel {name!r} exists already")
        await self._contexts.aset(context_name(name), value)

    add = blocking(aadd)

    # ------------------------------------------------------------------ hub notices

    def _on_change_request(self, msg: dict[str, Any]) -> None:
        channel = msg.get("channel")
        conn = self._session.conn
        if channel is None:
            conn.spawn(self.aleave())
        elif isinstance(channel, str):
            conn.spawn(self.ajoin(channel))

    def _on_membership(self, msg: dict[str, Any]) -> None:
        member = msg.get("member_id")
        if not isinstance(member, str):
            return
        channels = msg.get("channels")
        if not isinstance(channels, builtins.list):  # a hub from before multi-channel mode
            channel = msg.get("channel")
            channels = [channel] if isinstance(channel, str) else []
        names = [name for name in channels if isinstance(name, str)]
        if names:
            self._members[member] = (msg.get("application"), names)
        else:
            self._members.pop(member, None)

    async def _restore(self) -> None:
        # the contexts layer re-subscribed the channels' contexts; tell the new hub where we are
        if self._joined:
            conn = self._session.conn
            if conn.extensions.get(CHANNELS_EXTENSION):
                conn.send(self._changed_message())
