"""Shared contexts (io.Connect ``contexts.*``) with versions and provenance.

* ``set(name, data)`` replaces the whole context; ``update(name, data)`` replaces the given
  top-level keys and removes those whose value is ``None`` (a key containing a dot stays one
  key: updates travel as ``{added, removed}``, not as dot-paths); ``set_path``/``set_paths``
  apply dot-paths in one message (``None`` removes the path). Writing an unknown name creates
  it (lifetime ``retained``).
* ``create(name, data, lifetime=..., read_only=...)`` creates a context with one of
  io.Connect's lifetimes: ``retained`` (until destroyed), ``ref-counted`` (destroyed when no
  peer follows it), ``ownership`` (destroyed when this client, its owner, leaves or
  reconnects). The owner of an ``ownership`` context may make it read-only for every other
  peer (``read_only=True``, or ``set_read_only(name)`` later); the hub enforces it, and a
  writer gets a :class:`ContextError` naming the owner.
* ``subscribe(name, callback)`` delivers a snapshot first, then one call per change, in the
  hub's order: ``callback(data, delta, removed, meta)`` where ``meta`` carries the hub's
  ``version``, the updater (peer id and :class:`Instance`) and whether it is the snapshot or our
  own write. Callbacks taking fewer parameters get the first ones (``callback(data)`` works).
  ``data`` and ``delta`` are read-only, nested too (``client/readonly.py``): every callback
  gets the client's own data, not a copy, so its cost follows the delta, not the context's
  size; a change raises ``TypeError``, ``copy.deepcopy(data)`` gives a copy to change.
  Subscribing to a name nobody created yet waits for it. ``include_own=False`` suppresses our
  own writes (a widget bound to a context must not loop).
* ``get(name)`` returns ``{}`` for an unknown name, as io.Connect does, but only after one
  round trip to the hub: a context another peer created just before is seen (io.Connect
  answers from the announcements it happened to have read).
* After a reconnect, subscriptions are re-made and a callback hears the new snapshot if the
  context changed meanwhile; a context the hub lost (a new hub without persistence) is
  re-created from the last data this client held.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..protocol import messages
from ..protocol.deltas import apply_command, apply_delta, copy_data
from ..protocol.wire import (
    CONTEXT_ADDED_TYPE,
    CONTEXT_DESTROYED_TYPE,
    CONTEXT_DOMAIN,
    CONTEXT_LIFETIMES,
    CONTEXT_UPDATED_TYPE,
    CREATE_CONTEXT_TYPE,
    DESTROY_CONTEXT_TYPE,
    GLOBAL_DOMAIN,
    READ_ONLY_EXTENSION,
    SET_CONTEXT_READ_ONLY_TYPE,
    SUBSCRIBED_CONTEXT_TYPE,
    UPDATE_CONTEXT_TYPE,
    VERSIONS_EXTENSION,
)
from .errors import ArgumentError, ContextError, RemoteError
from .instance import Instance
from .readonly import ReadOnlyDict, freeze
from .twins import blocking, on_io_loop

if TYPE_CHECKING:
    from .dispatch import OutputTarget
    from .session import ClientSession

__all__ = [
    "ContextInfo",
    "ContextMeta",
    "ContextSubscription",
    "Contexts",
    "adapt_callback",
    "copy_data",
]

Data = dict[str, Any]


def adapt_callback(callback: Callable[..., Any], available: int) -> Callable[..., Any]:
    """Call ``callback`` with as many of the ``available`` positional arguments as it takes."""
    try:
        signature = inspect.signature(callback)
    except (TypeError, ValueError):
        return callback
    count = 0
    for parameter in signature.parameters.values():
        if parameter.kind == parameter.VAR_POSITIONAL:
            return callback
        if parameter.kind in (parameter.POSITIONAL_ONLY, parameter.POSITIONAL_OR_KEYWORD):
            count += 1
    if count >= available:
        return callback
    if inspect.iscoroutinefunction(callback):

        async def async_adapted(*args: Any) -> Any:
            return await callback(*args[:count])

        return async_adapted

    def adapted(*args: Any) -> Any:
        return callback(*args[:count])

    adapted.__qualname__ = getattr(callback, "__qualname__", "callback")
    return adapted


@dataclass(frozen=True)
class ContextMeta:
    """Where a context change came from (the 4th callback argument)."""

    name: str
    version: int | None
    updater_id: str | None
    updater: Instance | None
    snapshot: bool = False
    own: bool = False


@dataclass(eq=False)
class ContextSubscriber:
    """One callback following a context (a :class:`ContextSubscription`'s, or a channel's)."""

    callback: Callable[..., Any]
    output: OutputTarget | None
    include_own: bool
    active: bool = True
    #: internal subscribers (channels) run on the loop, in order, not on the event lane
    on_loop: bool = False


@dataclass(eq=False)
class _Context:
    name: str
    context_id: str | None = None
    #: the data we hold (None: not tracked); kept across reconnects as the last known value
    data: Data | None = None
    version: int | None = None
    updater_id: str | None = None
    member: bool = False
    subscribers: list[ContextSubscriber] = field(default_factory=list)
    #: how this client created it (re-created so when a new hub lost it)
    lifetime: str = "retained"
    read_only: bool = False
    #: what the hub announced (``context-added``; only a hub with the read-only extension
    #: says the lifetime and the flag): see :meth:`Contexts.info`
    creator_id: str | None = None
    announced_lifetime: str | None = None
    announced_read_only: bool = False


@dataclass(frozen=True)
class ContextInfo:
    """What the hub says of a context (:meth:`Contexts.info`): ``lifetime`` (``"retained"``,
    ``"ref-counted"``, ``"ownership"``; None when the gateway does not say), ``read_only``
    (only its owner may change it) and ``owner``, the peer id of the peer that created it."""

    name: str
    lifetime: str | None
    read_only: bool
    owner: str | None


class ContextSubscription:
    """Returned by :meth:`Contexts.subscribe`; call it (or :meth:`unsubscribe`) to stop."""

    def __init__(self, contexts: Contexts, name: str, subscriber: ContextSubscriber) -> None:
        self._contexts = contexts
        self.name = name
        self._subscriber = subscriber

    def unsubscribe(self) -> None:
        """Stop the callbacks (the last one also unsubscribes from the hub)."""
        self._subscriber.active = False
        self._contexts.remove_subscriber_soon(self.name, self._subscriber)

    async def aunsubscribe(self) -> None:
        """Async twin of :meth:`unsubscribe` (it never blocks)."""
        self.unsubscribe()

    __call__ = unsubscribe

    def __repr__(self) -> str:
        state = "active" if self._subscriber.active else "stopped"
        return f"<ContextSubscription {self.name!r} {state}>"


def _check_name(name: Any) -> str:
    if not isinstance(name, str) or not name:
        raise ArgumentError(f"A context name must be a non-empty string, not {name!r}")
    return name


def _check_data(data: Any, what: str) -> Data:
    if not isinstance(data, dict):
        raise ArgumentError(f"{what} needs a dict, not {type(data).__name__}")
    for key in data:
        if not isinstance(key, str):
            raise ArgumentError(f"Context keys must be strings, not {key!r}")
    return data


def apply_update(data: Data, delta: Data) -> tuple[Data, Data, list[str]]:
    """Apply a wire delta as the hub does; return (new data, callback delta, removed keys),
    both read-only. The new data is a new top level sharing every entry the delta did not
    touch: callbacks still holding the old one keep it as it was, and an update costs what
    the delta holds, plus one copy of the top level's references."""
    changed: Data = {}
    new = apply_delta(dict(data), delta, changed)
    for key in changed:  # every entry the delta set or changed below the top level
        if key in new:
            new[key] = freeze(new[key])
    commands = delta.get("commands") or ()
    if "reset" in delta or any(not c.get("path") for c in commands):
        removed = [key for key in data if key not in new]
    else:
        gone = [*delta.get("removed", ())]
        gone += [c.get("path") for c in commands if c.get("type") == "remove"]
        removed = [key for key in dict.fromkeys(gone) if key in data and key not in new]
    return ReadOnlyDict(new), freeze(changed), removed


def _paths(paths: Any) -> list[tuple[str, Any]]:
    if isinstance(paths, dict):
        items = list(paths.items())
    elif isinstance(paths, (list, tuple)):
        items = []
        for item in paths:
            if isinstance(item, dict) and "path" in item:
                items.append((item["path"], item.get("value")))
            elif isinstance(item, (list, tuple)) and len(item) == 2:
                items.append((item[0], item[1]))
            else:
                raise ArgumentError(
                    f"Each path must be a (path, value) pair or {{'path', 'value'}}, not {item!r}"
                )
    else:
        raise ArgumentError(
            f"paths must be a dict {{path: value}} or a list of (path, value), not "
            f"{type(paths).__name__}"
        )
    for path, _ in items:
        if not isinstance(path, str):
            raise ArgumentError(f"A path must be a string like 'a.b.c', not {path!r}")
    return items


def _commands(items: list[tuple[str, Any]]) -> list[Data]:
    commands: list[Data] = []
    for path, value in items:
        if value is None:
            commands.append({"type": "remove", "path": path})
        else:
            if not path and not isinstance(value, dict):
                raise ArgumentError("Setting the whole context (path '') needs a dict")
            commands.append({"type": "set", "path": path, "value": value})
    return commands


def _create_message(name: str, data: Data, lifetime: str, read_only: bool) -> dict[str, Any]:
    """``create-context``; ``read_only`` only when set (a plain GW3 gateway never sees it)."""
    message: dict[str, Any] = {
        "domain": GLOBAL_DOMAIN,
        "type": CREATE_CONTEXT_TYPE,
        "name": name,
        "data": data,
        "lifetime": lifetime,
    }
    if read_only:
        message["read_only"] = True
    return message


class Contexts:
    """``io.contexts``: shared contexts."""

    def __init__(self, session: ClientSession) -> None:
        self._session = session
        self._by_name: dict[str, _Context] = {}
        self._by_id: dict[str, _Context] = {}
        conn = session.conn
        for domain in (GLOBAL_DOMAIN, CONTEXT_DOMAIN):
            conn.on(domain, CONTEXT_ADDED_TYPE, self._on_added)
            conn.on(domain, CONTEXT_UPDATED_TYPE, self._on_updated)
            conn.on(domain, CONTEXT_DESTROYED_TYPE, self._on_destroyed)
        conn.add_lost_hook(self._lost)
        conn.add_restorer(self._restore)
        self._hub_id: str | None = None
        self._hub_changed = False
        conn.add_ready_hook(self._ready)

    def announced_names(self) -> list[str]:
        """Names of the contexts the hub announced (and did not destroy since)."""
        return [name for name, ctx in self._by_name.items() if ctx.context_id is not None]

    def info(self, name: str) -> ContextInfo | None:
        """What the hub announced of the context ``name`` (no I/O): its lifetime, whether it
        is read-only and its owner; None for a context this client has not heard of."""
        ctx = self._by_name.get(_check_name(name))
        if ctx is None or ctx.context_id is None:
            return None
        return ContextInfo(name, ctx.announced_lifetime, ctx.announced_read_only, ctx.creator_id)

    def held(self, name: str) -> tuple[Data, ContextMeta] | None:
        """The data this client holds for ``name`` (not a copy) with its meta as a snapshot,
        or None when it holds none."""
        ctx = self._by_name.get(name)
        if ctx is None or ctx.data is None:
            return None
        meta = ContextMeta(ctx.name, ctx.version, ctx.updater_id, None, snapshot=True, own=False)
        return ctx.data, meta

    def _ctx(self, name: str) -> _Context:
        ctx = self._by_name.get(name)
        if ctx is None:
            ctx = self._by_name[name] = _Context(name)
        return ctx

    # ------------------------------------------------------------------ writes

    @on_io_loop
    async def acreate(
        self,
        name: str,
        data: Data | None = None,
        *,
        lifetime: str = "retained",
        read_only: bool = False,
    ) -> bool:
        """Create the context ``name`` holding ``data`` with a ``lifetime`` (``"retained"``,
        ``"ref-counted"``, ``"ownership"``); ``read_only`` (ownership only) keeps every other
        peer from changing it. True when this call created it; False when it existed already:
        then this client follows it, and neither ``data`` nor the lifetime is applied (as
        io.Connect does)."""
        _check_name(name)
        initial = {} if data is None else _check_data(data, "contexts.create")
        if lifetime not in CONTEXT_LIFETIMES:
            raise ArgumentError(
                f"Unknown lifetime {lifetime!r}; use one of {', '.join(CONTEXT_LIFETIMES)}"
            )
        if read_only and lifetime != "ownership":
            raise ArgumentError("Only an ownership context can be read-only")
        session = self._session
        conn = session.conn
        await conn.wait_connected(
            conn.loop.time() + session.settings.request_timeout, f"create {name!r}"
        )
        if read_only:
            self._check_read_only_supported(name)
        ctx = self._ctx(name)
        if ctx.member:
            return False
        return await self._create(ctx, initial, lifetime, read_only)

    create = blocking(acreate)

    @on_io_loop
    async def aset_read_only(self, name: str, read_only: bool = True) -> None:
        """Make the ``ownership`` context ``name``, which this client created, read-only for
        every other peer (or writable again with ``read_only=False``); the hub checks that this
        client is the owner."""
        ctx = await self._announced(name, "set_read_only")
        if ctx is None:
            raise ContextError(f"No context named {name!r} is known to this client")
        self._check_read_only_supported(name)
        await self._request(
            {
                "domain": GLOBAL_DOMAIN,
                "type": SET_CONTEXT_READ_ONLY_TYPE,
                "context_id": ctx.context_id,
                "read_only": bool(read_only),
            },
            "make read-only" if read_only else "make writable",
            name,
        )
        ctx.read_only = bool(read_only)

    set_read_only = blocking(aset_read_only)

    def _check_read_only_supported(self, name: str) -> None:
        if not self._session.conn.extensions.get(READ_ONLY_EXTENSION):
            raise ContextError(
                f"Cannot make context {name!r} read-only: the gateway does not enforce "
                "read-only contexts (only the jupyter_interop hub does, docs/GATEWAYS.md)"
            )

    @on_io_loop
    async def aset(self, name: str, data: Data) -> int | None:
        """Replace the context ``name`` with ``data`` (creates it if needed); returns the
        hub's new version."""
        _check_name(name)
        _check_data(data, "contexts.set")
        return await self._write(name, {"reset": data}, data)

    set = blocking(aset)

    @on_io_loop
    async def aupdate(self, name: str, data: Data) -> int | None:
        """Replace the given top-level keys; a ``None`` value removes the key."""
        _check_name(name)
        _check_data(data, "contexts.update")
        added = {k: v for k, v in data.items() if v is not None}
        removed = [k for k, v in data.items() if v is None]
        if not data:
            return self._by_name[name].version if name in self._by_name else None
        delta: Data = {}
        if added:
            delta["added"] = added
        if removed:
            delta["removed"] = removed
        return await self._write(name, delta, added)

    update = blocking(aupdate)

    @on_io_loop
    async def aset_path(self, name: str, path: str, value: Any) -> int | None:
        """Set the dot-path ``path`` (``"address.city"``) to ``value``; ``None`` removes it."""
        _check_name(name)
        return await self._write_paths(name, _paths([(path, value)]))

    set_path = blocking(aset_path)

    @on_io_loop
    async def aset_paths(self, name: str, paths: Any) -> int | None:
        """Several dot-paths in one message: ``{path: value}`` or ``[(path, value), ...]``."""
        _check_name(name)
        return await self._write_paths(name, _paths(paths))

    set_paths = blocking(aset_paths)

    async def _write_paths(self, name: str, items: list[tuple[str, Any]]) -> int | None:
        if not items:
            return self._by_name[name].version if name in self._by_name else None
        commands = _commands(items)
        initial: Data = {}
        for command in commands:
            initial = apply_command(initial, command)
        return await self._write(name, {"commands": commands}, initial)

    async def _write(self, name: str, delta: Data, initial: Data) -> int | None:
        """Update a known context, or create it with ``initial``."""
        session = self._session
        conn = session.conn
        await conn.wait_connected(
            conn.loop.time() + session.settings.request_timeout, f"write {name!r}"
        )
        ctx = self._ctx(name)
        if ctx.context_id is None:
            created = await self._create(ctx, initial)
            if created:
                return ctx.version

        def applied(reply: dict[str, Any]) -> None:
            # at once, in reply order: a later update from another peer may already be read
            version = reply.get("version")
            if ctx.data is not None and ctx.member:
                ctx.data, changed, removed = apply_update(ctx.data, delta)
                ctx.version = version if isinstance(version, int) else ctx.version
                ctx.updater_id = conn.peer_id
                self._notify(ctx, changed, removed, snapshot=False, own=True)

        reply = await self._request(
            {
                "domain": GLOBAL_DOMAIN,
                "type": UPDATE_CONTEXT_TYPE,
                "context_id": ctx.context_id,
                "delta": delta,
            },
            "update",
            name,
            on_reply=applied,
        )
        version = reply.get("version")
        return version if isinstance(version, int) else None

    def _joined(self, ctx: _Context, reply: dict[str, Any]) -> bool:
        """A ``create-context`` reply: ``ctx`` is a member under the hub's id now. True when
        the context existed already (its snapshot is applied), False when we created it."""
        context_id = str(reply.get("context_id"))
        ctx.context_id = context_id
        self._by_id[context_id] = ctx
        ctx.member = True
        if reply.get("type") == SUBSCRIBED_CONTEXT_TYPE:
            self._snapshot(ctx, reply)
            return True
        return False

    async def _create(
        self, ctx: _Context, data: Data, lifetime: str = "retained", read_only: bool = False
    ) -> bool:
        """Create ``ctx`` on the hub; False when it existed already (we are subscribed now)."""
        session = self._session

        def known(reply: dict[str, Any]) -> None:
            if not self._joined(ctx, reply):
                ctx.data = freeze(data)
                # only a hub that counts versions (the ``versions`` extension) makes it 0
                ctx.version = 0 if session.conn.extensions.get(VERSIONS_EXTENSION) else None
                ctx.updater_id = session.conn.peer_id
                ctx.lifetime, ctx.read_only = lifetime, read_only

        reply = await self._request(
            _create_message(ctx.name, data, lifetime, read_only),
            "create",
            ctx.name,
            on_reply=known,
        )
        if reply.get("type") == SUBSCRIBED_CONTEXT_TYPE:
            return False
        if ctx.data is not None:
            self._notify(ctx, ctx.data, [], snapshot=True, own=True)
        return True

    async def _request(
        self,
        message: dict[str, Any],
        action: str,
        name: str,
        *,
        internal: bool = False,
        on_reply: Callable[[dict[str, Any]], None] | None = None,
    ) -> dict[str, Any]:
        """A context request to the hub; its error reply becomes a ContextError."""
        try:
            return await self._session.conn.request(
                message,
                self._session.settings.request_timeout,
                f"{action} context {name!r}",
                internal=internal,
                on_reply=on_reply,
            )
        except RemoteError as error:
            raise ContextError(
                f"Could not {action} context {name!r}: {error.reason}", error.reason_uri
            ) from None

    async def _announced(self, name: str, what: str) -> _Context | None:
        """The context ``name`` once connected, or None if the hub never announced it.

        Another peer may have created it a moment ago: when it is not known yet, the
        announcements the hub sent before a round trip are read first.
        """
        _check_name(name)
        session = self._session
        conn = session.conn
        await conn.wait_connected(
            conn.loop.time() + session.settings.request_timeout, f"{what} {name!r}"
        )
        ctx = self._by_name.get(name)
        if ctx is None or ctx.context_id is None:
            await conn.barrier(session.settings.request_timeout)
            ctx = self._by_name.get(name)
        return ctx if ctx is not None and ctx.context_id is not None else None

    @on_io_loop
    async def adestroy(self, name: str) -> None:
        """Destroy the context ``name`` (subscribers stay, waiting for it to come back)."""
        ctx = await self._announced(name, "destroy")
        if ctx is None:
            raise ContextError(f"No context named {name!r} is known to this client")
        await self._request(
            {"domain": GLOBAL_DOMAIN, "type": DESTROY_CONTEXT_TYPE, "context_id": ctx.context_id},
            "destroy",
            name,
        )
        self._forget(ctx)

    destroy = blocking(adestroy)

    # ------------------------------------------------------------------ reads

    @on_io_loop
    async def aget(self, name: str) -> Data:
        """The current data of ``name`` (a copy); ``{}`` if no such context exists."""
        conn = self._session.conn
        ctx = await self._announced(name, "get")
        if ctx is None:
            return {}
        if ctx.member and ctx.data is not None:
            return copy_data(ctx.data)
        context_id = ctx.context_id
        reply = await self._subscribe_request(ctx, remember=False)
        if not ctx.subscribers and not ctx.member and ctx.context_id == context_id:
            conn.send(messages.unsubscribe_context(context_id))
        data = reply.get("data")
        return data if isinstance(data, dict) else {}

    get = blocking(aget)

    @on_io_loop
    async def aall(self) -> list[str]:
        """Names of every context the hub announced to us (channels' contexts included)."""
        session = self._session
        conn = session.conn
        await conn.wait_connected(
            conn.loop.time() + session.settings.request_timeout, "contexts.all()"
        )
        await conn.barrier(session.settings.request_timeout)
        return sorted(n for n, c in self._by_name.items() if c.context_id is not None)

    all = blocking(aall)

    @on_io_loop
    async def aversion(self, name: str) -> int | None:
        """The hub's version of a context this client follows (None if it does not)."""
        ctx = self._by_name.get(_check_name(name))
        return ctx.version if ctx is not None and ctx.member else None

    version = blocking(aversion)

    # ------------------------------------------------------------------ subscribe

    @on_io_loop
    async def asubscribe(
        self, name: str, callback: Callable[..., Any], *, include_own: bool = True
    ) -> ContextSubscription:
        """Call ``callback(data, delta, removed, meta)`` with a snapshot now (or when the
        context is created) and on every change; returns a :class:`ContextSubscription`."""
        from .dispatch import capture_output_target

        _check_name(name)
        if not callable(callback):
            raise ArgumentError(f"The context callback must be callable, not {callback!r}")
        subscriber = ContextSubscriber(
            adapt_callback(callback, 4), capture_output_target(), include_own
        )
        await self.add_subscriber(name, subscriber)
        return ContextSubscription(self, name, subscriber)

    subscribe = blocking(asubscribe)

    async def add_subscriber(self, name: str, subscriber: ContextSubscriber) -> None:
        """On the loop: ``subscriber`` hears the snapshot of ``name`` (now, or once it is
        announced) and then every change."""
        session = self._session
        conn = session.conn
        await conn.wait_connected(
            conn.loop.time() + session.settings.request_timeout, f"subscribe {name!r}"
        )
        ctx = self._ctx(name)
        ctx.subscribers.append(subscriber)
        try:
            if ctx.member and ctx.data is not None:
                self._deliver(ctx, subscriber, ctx.data, ctx.data, [], True, False)
            elif ctx.context_id is not None:
                await self._subscribe_request(ctx, remember=True, only=subscriber)
            # else: parked until the context is announced
        except BaseException:
            if subscriber in ctx.subscribers:
                ctx.subscribers.remove(subscriber)
            raise

    async def _subscribe_request(
        self,
        ctx: _Context,
        remember: bool,
        only: ContextSubscriber | None = None,
        internal: bool = False,
    ) -> dict[str, Any]:

        def snapshot(reply: dict[str, Any]) -> None:
            if remember or ctx.subscribers:
                ctx.member = True
                self._snapshot(ctx, reply, only)

        return await self._request(
            messages.subscribe_context(ctx.context_id),
            "subscribe to",
            ctx.name,
            internal=internal,
            on_reply=snapshot,
        )

    def _snapshot(
        self, ctx: _Context, reply: dict[str, Any], only: ContextSubscriber | None = None
    ) -> None:
        data = reply.get("data")
        ctx.data = freeze(data if isinstance(data, dict) else {})
        version = reply.get("version")
        ctx.version = version if isinstance(version, int) else ctx.version
        ctx.updater_id = reply.get("updater_id") or ctx.updater_id
        targets = [only] if only is not None else list(ctx.subscribers)
        for subscriber in targets:
            self._deliver(ctx, subscriber, ctx.data, ctx.data, [], True, False)

    def remove_subscriber_soon(self, name: str, subscriber: ContextSubscriber) -> None:
        """From any thread: :meth:`remove_subscriber` on the I/O loop (unless closed)."""
        if not self._session.closed:
            self._session.io.call_soon(self.remove_subscriber, name, subscriber)

    def remove_subscriber(self, name: str, subscriber: ContextSubscriber) -> None:
        """On the loop: stop ``subscriber``; the last one unsubscribes from the hub."""
        ctx = self._by_name.get(name)
        if ctx is None or subscriber not in ctx.subscribers:
            return
        ctx.subscribers.remove(subscriber)
        if not ctx.subscribers and ctx.member and ctx.context_id is not None:
            self._session.conn.send(messages.unsubscribe_context(ctx.context_id))
            ctx.member = False
            ctx.data = None

    # ------------------------------------------------------------------ events

    def _ready(self) -> None:
        conn = self._session.conn
        self._hub_changed = self._hub_id is not None and conn.hub_id != self._hub_id
        self._hub_id = conn.hub_id

    def _on_added(self, msg: dict[str, Any]) -> None:
        name = msg.get("name")
        context_id = msg.get("context_id")
        if not isinstance(name, str) or context_id is None:
            return
        ctx = self._ctx(name)
        if ctx.context_id is not None and ctx.context_id != str(context_id):
            self._by_id.pop(ctx.context_id, None)
        ctx.context_id = str(context_id)
        self._by_id[ctx.context_id] = ctx
        creator, lifetime, read_only = (msg.get(k) for k in ("creator_id", "lifetime", "read_only"))
        ctx.creator_id = creator if isinstance(creator, str) else ctx.creator_id
        if isinstance(lifetime, str):
            ctx.announced_lifetime = lifetime
            ctx.announced_read_only = read_only is True
        conn = self._session.conn
        if (
            ctx.subscribers
            and not ctx.member
            and conn.connected.is_set()
            and msg.get("creator_id") != conn.peer_id
        ):
            # someone created a context we were waiting for
            conn.spawn(self._subscribe_request(ctx, remember=True))

    def _on_updated(self, msg: dict[str, Any]) -> None:
        ctx = self._by_id.get(str(msg.get("context_id")))
        delta = msg.get("delta")
        if ctx is None or ctx.data is None or not isinstance(delta, dict):
            return
        version = msg.get("version")
        ctx.version = version if isinstance(version, int) else ctx.version
        ctx.updater_id = msg.get("updater_id")
        if not delta:  # only a new version (a federated hub numbering its own creation)
            return
        ctx.data, changed, removed = apply_update(ctx.data, delta)
        self._notify(ctx, changed, removed, snapshot="reset" in delta, own=False)

    def _on_destroyed(self, msg: dict[str, Any]) -> None:
        ctx = self._by_id.get(str(msg.get("context_id")))
        if ctx is not None:
            self._forget(ctx)

    def _forget(self, ctx: _Context) -> None:
        if ctx.context_id is not None:
            self._by_id.pop(ctx.context_id, None)
        ctx.context_id = None
        ctx.member = False
        ctx.data = None
        ctx.version = None
        if not ctx.subscribers:
            self._by_name.pop(ctx.name, None)

    def _notify(
        self, ctx: _Context, changed: Data, removed: list[str], snapshot: bool, own: bool
    ) -> None:
        if not ctx.subscribers or ctx.data is None:
            return
        data = ctx.data  # read-only and never changed in place: shared, not copied
        for subscriber in list(ctx.subscribers):
            if own and not subscriber.include_own:
                continue
            self._deliver(ctx, subscriber, data, changed, removed, snapshot, own)

    def _deliver(
        self,
        ctx: _Context,
        subscriber: ContextSubscriber,
        data: Data,
        changed: Data,
        removed: list[str],
        snapshot: bool,
        own: bool,
    ) -> None:
        if not subscriber.active:
            return
        session = self._session
        updater = None
        if ctx.updater_id is not None:
            if ctx.updater_id == session.conn.peer_id:
                updater = session.conn.instance
            else:
                server = session.registry.servers.get(ctx.updater_id)
                updater = server.instance if server is not None else None
        meta = ContextMeta(ctx.name, ctx.version, ctx.updater_id, updater, snapshot, own)
        if subscriber.on_loop:
            subscriber.callback(data, changed, list(removed), meta)
            return
        session.dispatcher.post_event(
            subscriber.callback, (data, changed, list(removed), meta), subscriber.output
        )

    # ------------------------------------------------------------------ reconnect

    def _lost(self) -> None:
        for ctx in self._by_name.values():
            ctx.context_id = None
            ctx.member = bool(ctx.member)  # remembered: restore re-subscribes members
        self._by_id.clear()

    async def _restore(self) -> None:
        for ctx in list(self._by_name.values()):
            if not (ctx.subscribers or ctx.member):
                continue
            if ctx.context_id is not None:
                previous = (ctx.version, ctx.updater_id)
                before = ctx.data
                ctx.member = False

                def changed(reply: dict[str, Any], ctx: _Context = ctx) -> None:
                    ctx.member = True
                    data = reply.get("data")
                    ctx.data = freeze(data if isinstance(data, dict) else {})
                    ctx.version = (
                        reply.get("version") if isinstance(reply.get("version"), int) else None
                    )
                    ctx.updater_id = reply.get("updater_id")

                await self._session.conn.request(
                    messages.subscribe_context(ctx.context_id),
                    self._session.settings.request_timeout,
                    f"re-subscription to context {ctx.name!r}",
                    internal=True,
                    on_reply=changed,
                )
                if self._hub_changed or (ctx.version, ctx.updater_id) != previous or before is None:
                    data = ctx.data if ctx.data is not None else ReadOnlyDict()
                    self._notify(ctx, data, [], snapshot=True, own=False)
            elif self._hub_changed and ctx.member and ctx.data is not None:
                data = ctx.data
                ctx.data = None
                ctx.member = False
                reply = await self._session.conn.request(
                    _create_message(ctx.name, data, ctx.lifetime, ctx.read_only),
                    self._session.settings.request_timeout,
                    f"re-creation of context {ctx.name!r}",
                    internal=True,
                )
                if not self._joined(ctx, reply):
                    ctx.data = data
            else:
                ctx.member = False
                ctx.data = None
