"""The FDC3 2.2 Desktop Agent API over io.Connect's wire mapping (docs/FDC3.md, "The API").

``io.fdc3`` is a :class:`DesktopAgent`: the standard's methods in snake_case, each an
``async def a<name>`` with its blocking twin, as everywhere in the client. It adds no message
of its own: FDC3 and io.Connect apps meet on one hub because both read the same contexts.

- user channels are the colour channels whose ``meta.fdc3.id`` names them; joining one joins
  the colour channel (``io.channels``), so the hub and the lab's chip see it;
- a channel keeps its latest context of each type in ``data["fdc3_<type, . as &>"]`` and the
  type last broadcast in ``latest_fdc3_type``; app channels are plain contexts named by their
  id, private channels contexts named ``___privateFDC3Channel___<id>``, in the same layout;
- intents are ``io.intents`` (docs/INTENTS.md), ``open`` is ``io.apps.start``.
"""

from __future__ import annotations

import asyncio
import builtins
import inspect
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .._version import __version__
from ..client.apps import RunningApp
from ..client.contexts import ContextMeta, ContextSubscriber, adapt_callback, copy_data
from ..client.dispatch import OutputTarget, capture_output_target
from ..client.errors import (
    ArgumentError,
    ErrorOnLaunch,
    InteropError,
    InvocationError,
    MalformedContext,
    NoAppsFound,
    TargetAppUnavailable,
)
from ..client.instance import Instance
from ..client.intents import Intent, IntentHandler, choose_handler
from ..client.method_server import current_invocation
from ..client.twins import blocking, on_io_loop
from ..protocol.intents import is_channel_result, result_problem
from ..protocol.wire import (
    CHANNEL_PREFIX,
    FDC3_CHANNEL_MARK_KEY,
    FDC3_CHANNEL_RESULT_KEY,
    FDC3_CONTROL_ADD_LISTENER,
    FDC3_CONTROL_DISCONNECT,
    FDC3_CONTROL_METHOD,
    FDC3_CONTROL_UNSUBSCRIBE,
    FDC3_DATA_KEY_PREFIX,
    FDC3_LATEST_TYPE_KEY,
    FDC3_OPEN_INVOKED_KEY,
    FDC3_PRIVATE_CHANNEL_PREFIX,
    FDC3_PRIVATE_CLIENT_KEY,
    FDC3_PRIVATE_CREATOR_KEY,
    FDC3_PRIVATE_DISCONNECTED_KEY,
    FDC3_PRIVATE_LISTENER_TYPES_KEY,
)
from .errors import (
    ChannelErrorName,
    Fdc3ChannelError,
    Fdc3OpenError,
    NoResultReturned,
    OpenErrorName,
)
from .opening import OpenRequest, PendingOpen, claim, starting_context
from .schemas import STANDARD_PREFIX, validate_context

if TYPE_CHECKING:
    from ..client.api import Interop
    from ..client.session import ClientSession

__all__ = [
    "AppIdentifier",
    "Channel",
    "DesktopAgent",
    "Fdc3IntentResolution",
    "Listener",
    "PrivateChannel",
]

log = logging.getLogger("jupyter_interop.fdc3")

#: FDC3 version this agent implements (``get_info``)
FDC3_VERSION = "2.2"
#: the one event type of FDC3 2.2's ``addEventListener``
USER_CHANNEL_CHANGED = "userChannelChanged"

Context = dict[str, Any]
ContextHandler = Callable[..., Any]


# ---------------------------------------------------------------------- the encoding (no I/O)


def encode_type(context_type: str) -> str:
    """A context type as io.Connect writes it in keys: ``.`` becomes ``&``."""
    return context_type.replace(".", "&")


def decode_type(encoded: str) -> str:
    return encoded.replace("&", ".")


def data_key(context_type: str) -> str:
    """The ``data`` key holding a channel's latest context of ``context_type``."""
    return FDC3_DATA_KEY_PREFIX + encode_type(context_type)


def private_context_name(channel_id: str) -> str:
    """The context of a private channel: its id itself when the id has io.Connect's prefix
    (io.Connect's ids and ours do), else the prefix and the id."""
    if channel_id.startswith(FDC3_PRIVATE_CHANNEL_PREFIX):
        return channel_id
    return FDC3_PRIVATE_CHANNEL_PREFIX + channel_id


def checked_context(context: Any) -> Context:
    """``context`` if it is an FDC3 context (a dict with a string ``type``), else
    :class:`MalformedContext`."""
    if not isinstance(context, dict) or not isinstance(context.get("type"), str):
        raise MalformedContext(
            f"An FDC3 context is a dict with a string 'type', not {str(context)[:80]!r}"
        )
    return context


def valid_context(context: Any) -> Context:
    """``context`` if it may be sent: a standard (``fdc3.*``) type valid against FINOS's
    schema (``schemas.validate_context``), any other type a dict with a string ``type``;
    else :class:`MalformedContext` (FDC3's ``ChannelError.MalformedContext``), before
    anything is sent."""
    checked_context(context)
    if context["type"].startswith(STANDARD_PREFIX):
        validate_context(context)
    return context


def stored_context(value: dict[str, Any], context_type: str | None) -> Context | None:
    """The latest context of ``context_type`` (None: of the type last broadcast) in a
    channel's context value, or None when there is none."""
    data = value.get("data")
    if not isinstance(data, dict):
        return None
    if context_type is None:
        latest = value.get(FDC3_LATEST_TYPE_KEY)
        if not isinstance(latest, str):
            return None
        context_type = decode_type(latest)
    entry = data.get(data_key(context_type))
    if not isinstance(entry, dict):
        return None
    return {"type": context_type, **{k: v for k, v in entry.items() if k != "type"}}


def _check_type_filter(context_type: Any) -> str | None:
    if context_type is None or context_type == "*":
        return None
    if not isinstance(context_type, str) or not context_type:
        raise ArgumentError(f"A context type filter is a string or None, not {context_type!r}")
    return context_type


@dataclass(frozen=True)
class AppIdentifier:
    """FDC3 ``AppIdentifier``: an application (``app_id``: its application name, or a
    directory notebook's path) and optionally one instance (``instance_id``: its peer id)."""

    app_id: str
    instance_id: str | None = None

    def to_json(self) -> dict[str, str]:
        out = {"appId": self.app_id}
        if self.instance_id is not None:
            out["instanceId"] = self.instance_id
        return out

    @classmethod
    def of(cls, app: Any) -> AppIdentifier:
        """From an ``AppIdentifier``, a ``{"appId", "instanceId"?}`` dict or an app id."""
        if isinstance(app, AppIdentifier):
            return app
        if isinstance(app, str) and app:
            return cls(app)
        if isinstance(app, dict) and isinstance(app.get("appId"), str):
            instance = app.get("instanceId")
            return cls(app["appId"], instance if isinstance(instance, str) else None)
        raise ArgumentError(f"An app is an AppIdentifier, {{'appId': ...}} or a name, not {app!r}")

    @classmethod
    def from_instance(cls, instance: Instance) -> AppIdentifier:
        return cls(instance.application or "", instance.peer_id or None)


def _metadata(meta: ContextMeta) -> dict[str, Any]:
    """FDC3 ``ContextMetadata`` for a change (its source, when the writer is known)."""
    if meta.updater is not None:
        return {"source": AppIdentifier.from_instance(meta.updater).to_json()}
    return {}


# ---------------------------------------------------------------------- listeners


@dataclass(eq=False)
class _Handler:
    context_type: str | None
    callback: Callable[..., Any]
    output: OutputTarget | None
    active: bool = True

    def accepts(self, context_type: str) -> bool:
        return self.active and self.context_type in (None, context_type)


class Listener:
    """What the ``add_*_listener`` calls return: ``unsubscribe()`` stops it."""

    def __init__(self, stop: Callable[[], None]) -> None:
        self._stop: Callable[[], None] | None = stop

    def unsubscribe(self) -> None:
        """Stop listening (idempotent)."""
        stop, self._stop = self._stop, None
        if stop is not None:
            stop()

    async def aunsubscribe(self) -> None:
        """Awaitable :meth:`unsubscribe` (FDC3 2.2's ``unsubscribe`` returns a promise)."""
        self.unsubscribe()


def _handler(context_type: Any, callback: Any) -> _Handler:
    if not callable(callback):
        raise ArgumentError(f"The context handler must be callable, not {callback!r}")
    return _Handler(_check_type_filter(context_type), adapt_callback(callback, 2), None)


# ---------------------------------------------------------------------- channels


class Channel:
    """An FDC3 channel: ``id``, ``type`` (``"user"``, ``"app"`` or ``"private"``) and
    ``display_metadata``, held in the GW3 context ``context_name``."""

    def __init__(
        self,
        agent: DesktopAgent,
        id: str,
        type: str,
        context_name: str,
        display_metadata: dict[str, Any] | None = None,
    ) -> None:
        self._agent = agent
        self.id = id
        self.type = type
        self.context_name = context_name
        self.display_metadata = display_metadata

    @property
    def _session(self) -> ClientSession:
        return self._agent.session

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.type} {self.id!r}>"

    def to_json(self) -> dict[str, Any]:
        """The channel's metadata (``id``, ``type``, ``displayMetadata``)."""
        out: dict[str, Any] = {"id": self.id, "type": self.type}
        if self.display_metadata:
            out["displayMetadata"] = self.display_metadata
        return out

    @on_io_loop
    async def abroadcast(self, context: Context) -> None:
        """Make ``context`` this channel's latest of its type; listeners of others hear it."""
        self._check_broadcast()
        await self._agent.write_context(self.context_name, valid_context(context))

    broadcast = blocking(abroadcast)

    @on_io_loop
    async def aget_current_context(self, context_type: str | None = None) -> Context | None:
        """The latest context of ``context_type`` (None: the last broadcast), or None."""
        kind = _check_type_filter(context_type)
        value = await self._agent.io.contexts.aget(self.context_name)
        return stored_context(value, kind)

    get_current_context = blocking(aget_current_context)

    @on_io_loop
    async def aadd_context_listener(
        self, context_type: str | None, handler: ContextHandler
    ) -> Listener:
        """``handler(context, metadata)`` for each context of ``context_type`` (None or
        ``"*"``: all) others broadcast here from now on (the current one is not replayed,
        as FDC3 says for ``Channel.addContextListener``)."""
        entry = _handler(context_type, handler)
        entry.output = capture_output_target()
        subscriber = ContextSubscriber(self._relay(entry), None, False, on_loop=True)
        contexts = self._agent.io.contexts
        await contexts.add_subscriber(self.context_name, subscriber)

        kind = entry.context_type or "*"
        await self._listener_added(kind)

        def stop() -> None:
            entry.active = subscriber.active = False
            contexts.remove_subscriber_soon(self.context_name, subscriber)
            self._listener_removed(kind)

        return Listener(stop)

    add_context_listener = blocking(aadd_context_listener)

    def _check_broadcast(self) -> None:
        """Raise when nothing may be broadcast here (a disconnected private channel)."""

    async def _listener_added(self, context_type: str) -> None:
        """On the loop: a listener of ``context_type`` (``"*"``: all) was added here."""

    def _listener_removed(self, context_type: str) -> None:
        """From any thread: a listener of ``context_type`` was removed."""

    def _relay(self, entry: _Handler) -> Callable[..., None]:
        def relay(
            value: dict[str, Any], changed: dict[str, Any], _: Any, meta: ContextMeta
        ) -> None:
            if meta.snapshot or FDC3_LATEST_TYPE_KEY not in changed:
                return
            self._agent.deliver(entry, stored_context(value, None), meta)

        return relay


class PrivateChannel(Channel):
    """An FDC3 private channel between the app that created it and the one it was given to
    (through an intent result), as io.Connect keeps it: a context holding both parties'
    instance ids (``creatorId``, ``clientId``), ``disconnected`` and the types of the
    listeners added on it. Each event travels as an invocation of the control method
    ``T42.FDC3.Client.Control`` on the other party (docs/FDC3.md, "Private channels"); a
    party that leaves the hub without disconnecting counts as disconnected."""

    def __init__(self, agent: DesktopAgent, id: str) -> None:
        super().__init__(agent, id, "private", private_context_name(id))
        self._added: list[_Handler] = []
        self._unsubscribed: list[_Handler] = []
        self._disconnected: list[_Handler] = []
        #: this party's listener types, and the other party's as its invocations announced
        self._own_listeners: list[str | None] = []
        self._heard: list[str | None] = []
        self._parties: tuple[str | None, str | None] = (None, None)
        self._gone = False
        self._closed = False
        self._sending: asyncio.Future[Any] | None = None
        self._watch: ContextSubscriber | None = None
        self._stop_peers: Callable[[], None] | None = None

    @property
    def _me(self) -> str:
        return self._agent.instance_id

    def _other(self) -> str | None:
        """The other party's instance id, once the context names it."""
        creator, client = self._parties
        other = creator if client == self._me else client
        return other if other is not None and other != self._me else None

    async def _other_party(self) -> str | None:
        """The other party's instance id, read from the context as io.Connect does."""
        self._changed(await self._agent.io.contexts.aget(self.context_name))
        return self._other()

    async def start(self) -> None:
        """Serve the control method and follow the context and the other party (on the loop)."""
        await self._agent.track_private(self)
        self._watch = ContextSubscriber(self._changed, None, False, on_loop=True)
        await self._agent.io.contexts.add_subscriber(self.context_name, self._watch)
        self._stop_peers = self._agent.io.methods.on_server_removed(self._peer_left)

    def _changed(self, value: dict[str, Any], *_: Any) -> None:
        creator, client = value.get(FDC3_PRIVATE_CREATOR_KEY), value.get(FDC3_PRIVATE_CLIENT_KEY)
        self._parties = (
            creator if isinstance(creator, str) else None,
            client if isinstance(client, str) else None,
        )
        # io.Connect's flag: written by a party that disconnects (or saw the other leave)
        if value.get(FDC3_PRIVATE_DISCONNECTED_KEY) is True and not self._closed:
            self._party_gone()

    def _peer_left(self, instance: Instance, reason: str) -> None:
        """A peer left the hub (a handler thread): if it was the other party, it is gone."""
        if reason == "reset":  # our own connection dropped: the other party may still be there
            return
        other = self._other()
        if other is not None and other in (instance.instance, instance.peer_id):
            self._session.io.call_soon(self._other_left)

    def _other_left(self) -> None:
        """On the loop: record the disconnection as io.Connect's surviving party does."""
        if self._gone or self._closed:
            return
        self._party_gone()
        contexts = self._agent.io.contexts
        _spawn_soon(
            self._session,
            lambda: contexts.aset_path(self.context_name, FDC3_PRIVATE_DISCONNECTED_KEY, True),
        )

    def _party_gone(self) -> None:
        """On the loop: the other party disconnected or left: its listeners are gone."""
        if self._gone:
            return
        self._gone = True
        heard, self._heard = self._heard, []
        for kind in heard:
            self._fire(self._unsubscribed, kind)
        self._fire(self._disconnected, None)

    def controlled(self, action: str, payload: dict[str, Any]) -> None:
        """On the loop: the other party invoked the control method for this channel."""
        kind = payload.get("contextType")
        kind = kind if isinstance(kind, str) else None
        if action == FDC3_CONTROL_ADD_LISTENER:
            self._heard.append(kind)
            self._fire(self._added, kind)
        elif action == FDC3_CONTROL_UNSUBSCRIBE:
            if kind in self._heard:
                self._heard.remove(kind)
            self._fire(self._unsubscribed, kind)
        elif action == FDC3_CONTROL_DISCONNECT:
            self._party_gone()

    def _fire(self, handlers: builtins.list[_Handler], arg: str | None) -> None:
        args = () if handlers is self._disconnected else (arg,)
        for entry in list(handlers):
            if entry.active:
                self._session.dispatcher.post_event(entry.callback, args, entry.output)

    def _event(self, handlers: builtins.list[_Handler], callback: Any, arity: int) -> Listener:
        if not callable(callback):
            raise ArgumentError(f"The event handler must be callable, not {callback!r}")
        entry = _Handler(None, adapt_callback(callback, arity), capture_output_target())
        handlers.append(entry)

        def stop() -> None:
            entry.active = False
            if entry in handlers:
                handlers.remove(entry)

        return Listener(stop)

    def _check_broadcast(self) -> None:
        """Once either party disconnected: ``AccessDenied`` (FDC3: an agent SHOULD refuse
        it; io.Connect does)."""
        if self._closed or self._gone:
            raise Fdc3ChannelError(
                ChannelErrorName.AccessDenied,
                f"The private channel {self.id!r} is disconnected: nothing more can be "
                "broadcast on it",
            )

    def on_add_context_listener(self, handler: Callable[[str | None], Any]) -> Listener:
        """``handler(context_type)`` when the other party adds a context listener (None: for
        every type)."""
        return self._event(self._added, handler, 1)

    def on_unsubscribe(self, handler: Callable[[str | None], Any]) -> Listener:
        """``handler(context_type)`` when the other party removes a context listener."""
        return self._event(self._unsubscribed, handler, 1)

    def on_disconnect(self, handler: Callable[[], Any]) -> Listener:
        """``handler()`` when the other party disconnects."""
        return self._event(self._disconnected, handler, 0)

    def add_event_listener(self, event_type: str | None, handler: Callable[..., Any]) -> Listener:
        """FDC3 2.2's form of the three ``on_*`` events: ``handler(event)`` with ``event``
        ``{"type": "addContextListener" | "unsubscribe", "details": {"contextType": ...}}``
        or ``{"type": "disconnect", "details": None}``; ``event_type`` None: all three."""
        kinds = ("addContextListener", "unsubscribe", "disconnect")
        if event_type is not None and event_type not in kinds:
            raise ArgumentError(f"A private channel's events are {kinds}, not {event_type!r}")
        if not callable(handler):
            raise ArgumentError(f"The event handler must be callable, not {handler!r}")
        stops = []
        if event_type in (None, "addContextListener"):
            stops.append(
                self.on_add_context_listener(
                    lambda kind: handler(
                        {"type": "addContextListener", "details": {"contextType": kind}}
                    )
                )
            )
        if event_type in (None, "unsubscribe"):
            stops.append(
                self.on_unsubscribe(
                    lambda kind: handler({"type": "unsubscribe", "details": {"contextType": kind}})
                )
            )
        if event_type in (None, "disconnect"):
            stops.append(
                self.on_disconnect(lambda: handler({"type": "disconnect", "details": None}))
            )

        def stop() -> None:
            for listener in stops:
                listener.unsubscribe()

        return Listener(stop)

    async def _notify(self, action: str, **fields: Any) -> None:
        """Invoke the control method on the other party, after the previous invocation (so
        the other party hears this party's events in order); one that fails is logged."""
        previous, done = self._sending, asyncio.get_running_loop().create_future()
        self._sending = done
        try:
            if previous is not None:
                await previous
            other = await self._other_party()
            if other is None or self._gone:  # io.Connect also skips a channel with one party
                return
            payload = {"channelId": self.context_name, "clientId": other, **fields}
            try:
                await self._agent.io.methods.ainvoke(
                    FDC3_CONTROL_METHOD, {"action": action, "payload": payload}, {"instance": other}
                )
            except InteropError as exc:
                log.warning("FDC3: %s on %s did not reach %s: %s", action, self.id, other, exc)
        finally:
            done.set_result(None)

    async def _listener_added(self, context_type: str) -> None:
        kind = None if context_type == "*" else context_type
        self._own_listeners.append(kind)
        contexts = self._agent.io.contexts
        value = await contexts.aget(self.context_name)
        types = value.get(FDC3_PRIVATE_LISTENER_TYPES_KEY)
        types = list(types) if isinstance(types, list) else []
        await contexts.aset_path(self.context_name, FDC3_PRIVATE_LISTENER_TYPES_KEY, [*types, kind])
        await self._notify(FDC3_CONTROL_ADD_LISTENER, **_type_field(kind))

    def _listener_removed(self, context_type: str) -> None:
        kind = None if context_type == "*" else context_type

        async def removed() -> None:  # on the loop, where _own_listeners changes
            if kind in self._own_listeners:
                self._own_listeners.remove(kind)
            await self._notify(FDC3_CONTROL_UNSUBSCRIBE, **_type_field(kind))

        _spawn_soon(self._session, removed)

    @on_io_loop
    async def adisconnect(self) -> None:
        """Leave the channel: the other party's ``on_unsubscribe`` (per listener) and
        ``on_disconnect`` fire; this side hears nothing more."""
        if self._closed:
            return
        self._closed = True
        contexts = self._agent.io.contexts
        await contexts.aset_path(self.context_name, FDC3_PRIVATE_DISCONNECTED_KEY, True)
        replay = [kind for kind in self._own_listeners if kind is not None]
        await self._notify(FDC3_CONTROL_DISCONNECT, replayContextTypes=replay)
        if self._watch is not None:
            self._watch.active = False
            contexts.remove_subscriber(self.context_name, self._watch)
        if self._stop_peers is not None:
            self._stop_peers()
        self._agent.untrack_private(self)

    disconnect = blocking(adisconnect)


def _spawn_soon(session: ClientSession, start: Callable[[], Any]) -> None:
    """From any thread: run the coroutine ``start()`` makes as a task on the I/O loop."""
    if not session.closed:
        session.io.call_soon(lambda: session.conn.spawn(start()))


def _type_field(context_type: str | None) -> dict[str, Any]:
    """The control method's ``contextType`` (absent for a listener of every type, as
    io.Connect's ``undefined`` travels)."""
    return {} if context_type is None else {"contextType": context_type}


# ---------------------------------------------------------------------- intents


@dataclass(frozen=True)
class Fdc3IntentResolution:
    """FDC3's ``IntentResolution`` (``io.intents`` has its own ``IntentResolution``):
    ``source`` handled ``intent``; :meth:`get_result` gives what it returned (a context, a
    :class:`Channel`, or None)."""

    source: AppIdentifier
    intent: str
    result: Context | Channel | None = field(default=None, repr=False)
    #: why the handler's result is none FDC3 takes (:meth:`get_result` raises it)
    error: NoResultReturned | None = field(default=None, repr=False)

    def get_result(self) -> Context | Channel | None:
        """What the handler returned; :class:`NoResultReturned` when it returned neither a
        context nor a channel, or not what it declared (its ``resultType``)."""
        if self.error is not None:
            raise self.error
        return self.result

    async def aget_result(self) -> Context | Channel | None:
        return self.get_result()


def _serves(handler: IntentHandler, app: Any) -> bool:
    """Is ``handler`` one of ``app``'s (any app's when None): its application name or
    notebook path, and its instance when ``app`` names one?"""
    if app is None:
        return True
    ident = AppIdentifier.of(app)
    if ident.app_id not in (handler.application, handler.notebook_path):
        return False
    return ident.instance_id in (None, handler.peer_id)


def _app_intent(intent: Intent) -> dict[str, Any]:
    """FDC3 ``AppIntent``: the intent's metadata and the apps that handle it."""
    return {
        "intent": {"name": intent.name, "displayName": intent.display_name},
        "apps": [_app_metadata(h) for h in intent.handlers],
    }


def _app_metadata(handler: IntentHandler) -> dict[str, Any]:
    app: dict[str, Any] = {"appId": handler.application or handler.notebook_path or ""}
    if handler.type == "instance":
        app["instanceId"] = handler.peer_id
    if handler.display_name:
        app["title"] = handler.display_name
    if handler.result_type is not None:
        app["resultType"] = handler.result_type
    return app


# ---------------------------------------------------------------------- the agent


class DesktopAgent:
    """``io.fdc3``: the FDC3 2.2 Desktop Agent API (docs/FDC3.md)."""

    def __init__(self, io: Interop, session: ClientSession) -> None:
        self.io = io
        self.session = session
        self._handlers: list[_Handler] = []
        #: (colour channel name, subscriber) the agent's listeners follow
        self._following: tuple[str, ContextSubscriber] | None = None
        #: the private channels this app is a party of, by context name
        self._private: dict[str, PrivateChannel] = {}
        self._control: asyncio.Future[Any] | None = None
        #: the context ``open`` asked this app to hand to a listener (its starting context)
        self._open_request = OpenRequest.from_starting_context(io.apps.starting_context)
        io.channels.on_channels_changed(self._on_channels_changed)
        if io.channels.current is not None:  # joined before the agent was built
            self._on_channels_changed(io.channels.my_channels())

    @property
    def _session(self) -> ClientSession:
        return self.session

    @property
    def instance_id(self) -> str:
        """This app's instance id (its identity's ``instance``), as private channels name it."""
        conn = self.session.conn
        instance = conn.instance.instance if conn.instance is not None else None
        return instance or conn.peer_id or ""

    # ------------------------------------------------------------------ private channel events

    async def track_private(self, channel: PrivateChannel) -> None:
        """On the loop: ``channel``'s events reach it; the control method is served once."""
        self._private[channel.context_name] = channel
        if self._control is None:
            self._control = asyncio.ensure_future(
                self.io.methods.aregister(FDC3_CONTROL_METHOD, self._controlled)
            )
        await asyncio.shield(self._control)

    def untrack_private(self, channel: PrivateChannel) -> None:
        self._private.pop(channel.context_name, None)

    async def _controlled(
        self, action: Any = None, payload: Any = None, **_: Any
    ) -> dict[str, Any]:
        """The control method (on the loop): another party's event on a private channel."""
        actions = (FDC3_CONTROL_ADD_LISTENER, FDC3_CONTROL_UNSUBSCRIBE, FDC3_CONTROL_DISCONNECT)
        channel_id = payload.get("channelId") if isinstance(payload, dict) else None
        if action not in actions or not isinstance(channel_id, str):
            raise ArgumentError(
                f"{FDC3_CONTROL_METHOD} takes {{action: one of {actions}, payload: "
                f"{{channelId, clientId, contextType?}}}}, not action={action!r}"
            )
        channel = self._private.get(private_context_name(channel_id))
        if channel is not None:
            channel.controlled(action, payload)
        return {}

    # ------------------------------------------------------------------ delivery

    def deliver(self, entry: _Handler, context: Context | None, meta: ContextMeta) -> None:
        """Post ``context`` to ``entry``'s handler when it takes its type (on the loop)."""
        if context is not None and entry.accepts(context["type"]):
            self.session.dispatcher.post_event(
                entry.callback, (context, _metadata(meta)), entry.output
            )

    async def write_context(self, context_name: str, context: Context) -> None:
        """Store ``context`` as the latest of its type in ``context_name`` (one message)."""
        kind = context["type"]
        body = {k: v for k, v in context.items() if k != "type"}
        await self.io.contexts.aset_paths(
            context_name,
            [(f"data.{data_key(kind)}", body), (FDC3_LATEST_TYPE_KEY, encode_type(kind))],
        )

    # ------------------------------------------------------------------ user channels

    @on_io_loop
    async def aget_user_channels(self) -> list[Channel]:
        """The user channels: colour channels whose ``meta.fdc3.id`` names them."""
        result = []
        for channel in await self.io.channels.alist():
            fdc3 = channel.meta.get("fdc3")
            if isinstance(fdc3, dict) and isinstance(fdc3.get("id"), str):
                display = fdc3.get("displayMetadata")
                display = dict(display) if isinstance(display, dict) else {}
                display.setdefault("name", channel.name)
                if channel.color is not None:
                    display.setdefault("color", channel.color)
                result.append(
                    Channel(self, fdc3["id"], "user", CHANNEL_PREFIX + channel.name, display)
                )
        return result

    get_user_channels = blocking(aget_user_channels)

    async def _user_channel(self, channel_id: str) -> Channel:
        for channel in await self.aget_user_channels():
            if channel.id == channel_id:
                return channel
        raise Fdc3ChannelError(ChannelErrorName.NoChannelFound, f"No user channel {channel_id!r}")

    @on_io_loop
    async def ajoin_user_channel(self, channel_id: str) -> None:
        """Join the user channel ``channel_id`` (its colour channel): context listeners hear
        its current context of their type now, and what others broadcast on it."""
        if not isinstance(channel_id, str) or not channel_id:
            raise ArgumentError(f"A channel id is a non-empty string, not {channel_id!r}")
        channel = await self._user_channel(channel_id)
        await self.io.channels.ajoin(channel.context_name[len(CHANNEL_PREFIX) :])
        await self._follow(self._user_channel_of(self.io.channels.my_channels()))

    join_user_channel = blocking(ajoin_user_channel)

    @on_io_loop
    async def aget_current_channel(self) -> Channel | None:
        """The user channel this app is on (None: none, or a colour channel without
        ``meta.fdc3``); in multi-channel mode the user channel it joined last."""
        current = self._user_channel_of(self.io.channels.my_channels())
        if current is None:
            return None
        for channel in await self.aget_user_channels():
            if channel.context_name == CHANNEL_PREFIX + current:
                return channel
        return None

    get_current_channel = blocking(aget_current_channel)

    @on_io_loop
    async def aleave_current_channel(self) -> None:
        """Leave the current user channel; listeners stay and hear the next one joined. In
        multi-channel mode only that channel is left: the user channel joined before it, if
        the app is still on one, becomes the current one."""
        channels = self.io.channels
        if channels.mode == "multi":
            current = self._user_channel_of(channels.my_channels())
            if current is not None:
                await channels.aleave(current)
        else:
            await channels.aleave()
        await self._follow(self._user_channel_of(channels.my_channels()))

    leave_current_channel = blocking(aleave_current_channel)

    def _user_channel_of(self, names: builtins.list[str]) -> str | None:
        """The colour channel that is FDC3's one current user channel among ``names`` (the
        channels joined, in order; on the loop): the last one with ``meta.fdc3.id``."""
        for name in reversed(names):
            held = self.io.contexts.held(CHANNEL_PREFIX + name)
            meta = held[0].get("meta") if held is not None else None
            fdc3 = meta.get("fdc3") if isinstance(meta, dict) else None
            if isinstance(fdc3, dict) and isinstance(fdc3.get("id"), str):
                return name
        return None

    def _on_channels_changed(self, names: builtins.list[str]) -> None:
        """A join or leave through ``io.channels`` or a user interface (a handler thread)."""
        _spawn_soon(self.session, lambda: self._follow(self._user_channel_of(names)))

    async def _follow(self, name: str | None) -> None:
        """On the loop: the agent's listeners follow the colour channel ``name``."""
        if self._following is not None and self._following[0] == name:
            return
        contexts = self.io.contexts
        if self._following is not None:
            old_name, old = self._following
            old.active = False
            contexts.remove_subscriber(CHANNEL_PREFIX + old_name, old)
            self._following = None
        if name is None:
            return
        subscriber = ContextSubscriber(self._from_channel, None, False, on_loop=True)
        self._following = (name, subscriber)
        await contexts.add_subscriber(CHANNEL_PREFIX + name, subscriber)

    def _from_channel(
        self, value: dict[str, Any], changed: dict[str, Any], _: Any, meta: ContextMeta
    ) -> None:
        if meta.snapshot:  # joined: each listener hears the current context of its type
            for entry in list(self._handlers):
                self.deliver(entry, stored_context(value, entry.context_type), meta)
        elif FDC3_LATEST_TYPE_KEY in changed:
            context = stored_context(value, None)
            for entry in list(self._handlers):
                self.deliver(entry, context, meta)

    # ------------------------------------------------------------------ broadcast, listen

    @on_io_loop
    async def abroadcast(self, context: Context) -> None:
        """Broadcast ``context`` on the current user channel (nothing when on none); a
        standard type is checked against its schema first (:func:`valid_context`)."""
        valid_context(context)
        current = self._user_channel_of(self.io.channels.my_channels())
        if current is not None:
            await self.write_context(CHANNEL_PREFIX + current, context)

    broadcast = blocking(abroadcast)

    @on_io_loop
    async def aadd_context_listener(
        self, context_type: str | None, handler: ContextHandler
    ) -> Listener:
        """``handler(context, metadata)`` for contexts of ``context_type`` (None or ``"*"``:
        all) others broadcast on the current user channel, following joins; when on a
        channel, its current context of that type is delivered now."""
        entry = _handler(context_type, handler)
        entry.output = capture_output_target()
        self._handlers.append(entry)
        if self._following is not None:
            held = self.io.contexts.held(CHANNEL_PREFIX + self._following[0])
            if held is not None:
                value, meta = held
                self.deliver(entry, stored_context(value, entry.context_type), meta)
        request = self._open_request
        if request is not None and request.takes(entry.context_type) and claim(request):
            self._open_request = None
            self.session.conn.spawn(self._hand_over(request, entry))

        def stop() -> None:
            entry.active = False
            if entry in self._handlers:
                self._handlers.remove(entry)

        return Listener(stop)

    add_context_listener = blocking(aadd_context_listener)

    # ------------------------------------------------------------------ app and private channels

    @on_io_loop
    async def aget_or_create_channel(self, channel_id: str) -> Channel:
        """The app channel ``channel_id`` (the context of that name), created when absent.
        App channels are not listed anywhere; user and private channel ids are refused."""
        if not isinstance(channel_id, str) or not channel_id:
            raise ArgumentError(f"A channel id is a non-empty string, not {channel_id!r}")
        if channel_id.startswith((CHANNEL_PREFIX, FDC3_PRIVATE_CHANNEL_PREFIX)):
            raise Fdc3ChannelError(
                ChannelErrorName.AccessDenied,
                f"{channel_id!r} names a channel that is not an app's",
            )
        if any(c.id == channel_id for c in await self.aget_user_channels()):
            raise Fdc3ChannelError(
                ChannelErrorName.AccessDenied, f"{channel_id!r} is a user channel's id"
            )
        contexts = self.io.contexts
        names = await contexts.aall()
        if FDC3_PRIVATE_CHANNEL_PREFIX + channel_id in names:
            raise Fdc3ChannelError(
                ChannelErrorName.AccessDenied, f"{channel_id!r} is a private channel's id"
            )
        if channel_id not in names:
            await contexts.aset_paths(channel_id, [("data", {})])
        return Channel(self, channel_id, "app", channel_id)

    get_or_create_channel = blocking(aget_or_create_channel)

    @on_io_loop
    async def acreate_private_channel(self) -> PrivateChannel:
        """A new private channel, to return from an intent handler."""
        channel = PrivateChannel(self, FDC3_PRIVATE_CHANNEL_PREFIX + uuid.uuid4().hex)
        await self.io.contexts.aset_paths(
            channel.context_name, [("data", {}), (FDC3_PRIVATE_CREATOR_KEY, self.instance_id)]
        )
        await channel.start()
        return channel

    create_private_channel = blocking(acreate_private_channel)

    async def _channel_from(self, value: dict[str, Any]) -> Channel:
        """The channel an intent result names."""
        channel_id, kind = value.get("id"), value.get("type")
        if not isinstance(channel_id, str):
            raise NoResultReturned(f"An intent returned a channel without an id: {value!r}")
        if kind == "private":
            return await self._join_private(PrivateChannel(self, channel_id))
        if kind == "user":
            return await self._user_channel(channel_id)
        return Channel(self, channel_id, "app", channel_id, value.get("displayMetadata"))

    async def _join_private(self, channel: PrivateChannel) -> PrivateChannel:
        """Take a private channel an intent returned: this app becomes its ``clientId``
        (io.Connect's rule: a channel with two other parties is no result for it)."""
        value = await self.io.contexts.aget(channel.context_name)
        creator, client = value.get(FDC3_PRIVATE_CREATOR_KEY), value.get(FDC3_PRIVATE_CLIENT_KEY)
        me = self.instance_id
        if creator not in (None, me) and client not in (None, me):
            raise NoResultReturned(f"The private channel {channel.id!r} has two parties already")
        if creator != me and client != me:
            await self.io.contexts.aset_path(channel.context_name, FDC3_PRIVATE_CLIENT_KEY, me)
        await channel.start()
        return channel

    # ------------------------------------------------------------------ intents

    @on_io_loop
    async def araise_intent(
        self, intent: str, context: Context, app: Any = None, *, result_type: str | None = None
    ) -> Fdc3IntentResolution:
        """Raise ``intent`` with ``context`` (to ``app``: an :class:`AppIdentifier`, its
        dict or an app id; only to handlers declaring ``result_type``, when given); the
        ``ResolveErrorName`` subclasses of ``IntentError`` on failure (``MalformedContext``
        for a context :func:`valid_context` refuses)."""
        valid_context(context)
        target = None
        if app is not None:
            ident = AppIdentifier.of(app)
            target = {"application": ident.app_id} if ident.app_id else {}
            if ident.instance_id is not None:
                target["instance"] = ident.instance_id
        resolution = await self.io.intents.araise_intent(
            intent, context, target, result_type=result_type
        )
        handler = resolution.handler
        source = AppIdentifier(handler.application or "", handler.peer_id or None)
        result: Any = resolution.result
        problem = result_problem(handler.result_type, result)
        a_context = isinstance(result, dict) and "type" in result
        if result is not None and not a_context and not is_channel_result(result):
            problem = f"it returned neither a context nor a channel: {str(result)[:80]}"
        if problem is not None:
            failed = NoResultReturned(f"The handler of {intent!r}: {problem}", intent=intent)
            return Fdc3IntentResolution(source, resolution.intent, None, failed)
        if isinstance(result, dict) and isinstance(result.get(FDC3_CHANNEL_RESULT_KEY), dict):
            result = await self._channel_from(result[FDC3_CHANNEL_RESULT_KEY])
        elif is_channel_result(result):
            result = await self._channel_from(result)  # io.Connect's form
        return Fdc3IntentResolution(source, resolution.intent, result)

    raise_intent = blocking(araise_intent)

    @on_io_loop
    async def araise_intent_for_context(
        self, context: Context, app: Any = None, *, result_type: str | None = None
    ) -> Fdc3IntentResolution:
        """Raise an intent whose handlers take ``context``'s type (``app``'s handlers, and
        those declaring ``result_type``, when given). When several handlers fit, of one
        intent or of several, ``io.intents.resolver`` chooses among them as for one intent
        (``"error"``: :class:`ResolverUnavailable`, ``"first"``, a function; a notebook's
        widget lists each intent with its app)."""
        kind = valid_context(context)["type"]
        found = await self.io.intents.afind(context_type=kind, result_type=result_type)
        handlers = [h for intent in found for h in intent.handlers if _serves(h, app)]
        if not handlers:
            raise NoAppsFound(f"No intent takes {kind!r} contexts")
        names = ", ".join(dict.fromkeys(h.intent for h in handlers))
        chosen = await choose_handler(
            names,
            handlers,
            context,
            self.io.intents.resolver,
            self.session.settings.invoke_timeout,
        )
        if chosen.type == "app":  # a directory notebook, started for it
            target = AppIdentifier(chosen.notebook_path or chosen.application or "")
        else:
            target = AppIdentifier(chosen.application or "", chosen.peer_id)
        return await self.araise_intent(chosen.intent, context, target, result_type=result_type)

    raise_intent_for_context = blocking(araise_intent_for_context)

    @on_io_loop
    async def afind_intent(
        self, intent: str, context: Context | None = None, result_type: str | None = None
    ) -> dict[str, Any]:
        """FDC3 ``AppIntent`` of ``intent`` (only handlers taking ``context``'s type and
        declaring ``result_type``: ``"channel"`` for any channel); :class:`NoAppsFound` when
        none."""
        kind = checked_context(context)["type"] if context is not None else None
        found = await self.io.intents.afind(intent, kind, result_type)
        if not found:
            raise NoAppsFound(f"No app handles {intent!r}", intent=intent)
        return _app_intent(found[0])

    find_intent = blocking(afind_intent)

    @on_io_loop
    async def afind_intents_by_context(
        self, context: Context, result_type: str | None = None
    ) -> list[dict[str, Any]]:
        """FDC3 ``AppIntent`` of every intent some handler of ``context``'s type (declaring
        ``result_type``, when given) serves; :class:`NoAppsFound` when none."""
        kind = checked_context(context)["type"]
        found = await self.io.intents.afind(context_type=kind, result_type=result_type)
        if not found:
            raise NoAppsFound(f"No intent takes {kind!r} contexts")
        return [_app_intent(i) for i in found]

    find_intents_by_context = blocking(afind_intents_by_context)

    @on_io_loop
    async def aadd_intent_listener(
        self, intent: str, handler: ContextHandler, result_type: str | None = None
    ) -> Listener:
        """Handle ``intent``: ``handler(context, metadata)`` may return a context, a
        :class:`Channel` (an app or private channel, for a stream of results) or None;
        ``result_type`` declares which (a context type, ``"channel"`` or
        ``"channel<type>"``) for ``find_intent`` and raises to filter by."""
        if not callable(handler):
            raise ArgumentError(f"The intent handler must be callable, not {handler!r}")
        adapted = adapt_callback(handler, 2)
        if inspect.iscoroutinefunction(handler):

            async def serve_async(context: Context) -> Any:
                return _intent_result(intent, await adapted(context, {}))

            listener = await self.io.intents.aadd_listener(
                intent, serve_async, result_type=result_type
            )
        else:

            def serve(context: Context) -> Any:
                return _intent_result(intent, adapted(context, {}))

            listener = await self.io.intents.aadd_listener(intent, serve, result_type=result_type)

        def stop() -> None:
            _spawn_soon(self.session, listener.aunsubscribe)

        return Listener(stop)

    add_intent_listener = blocking(aadd_intent_listener)

    # ------------------------------------------------------------------ apps

    @on_io_loop
    async def afind_instances(self, app: Any) -> list[AppIdentifier]:
        """The running instances of ``app`` (peers of that application name)."""
        wanted = AppIdentifier.of(app).app_id
        servers = await self.io.methods.aservers()
        return [AppIdentifier.from_instance(s) for s in servers if s.application == wanted]

    find_instances = blocking(afind_instances)

    @on_io_loop
    async def aopen(self, app: Any, context: Context | None = None) -> AppIdentifier:
        """Start ``app``, a notebook of the server's app directory (its path or name), and
        return the instance started. With a ``context``, a new instance is started and the
        context goes to its first context listener that takes its type (or every type): the
        call returns once one took it, or raises ``AppTimeout`` when none was added within
        ``fdc3_open_timeout`` seconds (docs/FDC3.md, "open with a context")."""
        ident = AppIdentifier.of(app)
        if context is None:
            running = await self._start(ident.app_id)
            return AppIdentifier(ident.app_id, running.peer_id)
        valid_context(context)
        pending = PendingOpen()

        async def respond(**arguments: Any) -> None:  # on the loop, as pending.answer wants
            invocation = current_invocation()
            pending.answer(invocation.caller if invocation else Instance(""), arguments)

        await self.io.methods.aregister(pending.name, respond)
        try:
            opener = self.get_info()["appMetadata"]
            asked = starting_context(pending.name, opener, copy_data(context))
            running = await self._start(ident.app_id, asked)
            timeout = self.io.fdc3_open_timeout
            listener = await self._taken_unless_failed(pending, ident.app_id, running, timeout)
        finally:
            await self.io.methods.aunregister(pending.name)
        if listener is None:
            raise await self._open_failure(ident.app_id, running, context["type"], timeout)
        return AppIdentifier(ident.app_id, listener.peer_id or running.peer_id)

    async def _start(self, app_id: str, asked: dict[str, Any] | None = None) -> RunningApp:
        """Start the directory notebook ``app_id`` (a new kernel given ``asked`` as its
        starting context, when given); its failure as an :class:`Fdc3OpenError`."""
        try:
            return await self.io.apps.astart(app_id, start_context=asked)
        except InvocationError as exc:
            raise Fdc3OpenError(OpenErrorName.ErrorOnLaunch, str(exc)) from exc
        except Exception as exc:
            name = getattr(exc, "fdc3_error", "")
            known = {e.value for e in list(OpenErrorName)}
            if name in known:
                raise Fdc3OpenError(OpenErrorName(name), str(exc)) from exc
            if name in ("NoAppsFound", "TargetAppUnavailable"):
                raise Fdc3OpenError(OpenErrorName.AppNotFound, str(exc)) from exc
            raise

    async def _taken_unless_failed(
        self, pending: PendingOpen, app_id: str, running: RunningApp, timeout: float
    ) -> Instance | None:
        """The peer whose listener took the context (None: none within ``timeout``); while
        waiting, the app directory watches the started kernel, so a notebook that fails or
        is stopped first is ``ErrorOnLaunch`` at once rather than when the window ends."""
        taken = asyncio.ensure_future(pending.wait(timeout))
        watched = asyncio.ensure_future(self.io.apps.awatch(running.kernel_id, timeout))
        try:
            await asyncio.wait({taken, watched}, return_when=asyncio.FIRST_COMPLETED)
            if not taken.done():  # the watch ended first
                ended = await _outcome(watched)
                if isinstance(ended, ErrorOnLaunch):
                    raise _launch_failure(app_id, running.kernel_id, ended)
                if isinstance(ended, RunningApp) and ended.state == "stopped":
                    raise _launch_failure(app_id, running.kernel_id, None)
            return await taken
        finally:
            for task in (taken, watched):
                task.cancel()

    async def _open_failure(
        self, app_id: str, running: RunningApp, context_type: str, timeout: float
    ) -> Fdc3OpenError:
        """Why no listener of the started app took the context: its kernel failed or
        stopped meanwhile (``ErrorOnLaunch``: the server shuts down a notebook whose cell
        raised), else ``AppTimeout``."""
        listed = [r for a in await self.io.apps.alist() for r in a.running]
        still = next((r for r in listed if r.kernel_id == running.kernel_id), None)
        if still is None or still.error:
            return _launch_failure(app_id, running.kernel_id, None)
        return Fdc3OpenError(
            OpenErrorName.AppTimeout,
            f"{app_id} (kernel {running.kernel_id}) added no context listener taking "
            f"{context_type!r} within {timeout:g} s",
        )

    async def _hand_over(self, request: OpenRequest, entry: _Handler) -> None:
        """The started app's side of ``open(app, context)``: tell the opener that the
        listener ``entry`` took its context, then deliver it (not when the opener stopped
        waiting: its ``open`` failed)."""
        try:
            await self.io.methods.ainvoke(
                request.response_method, {FDC3_OPEN_INVOKED_KEY: True}, request.target()
            )
        except InteropError as exc:
            log.warning("The opener stopped waiting: the context open() gave is dropped (%s)", exc)
            return
        metadata = {"source": dict(request.opener)} if request.opener else {}
        if entry.active:
            self.session.dispatcher.post_event(
                entry.callback, (copy_data(request.context), metadata), entry.output
            )

    open = blocking(aopen)

    @on_io_loop
    async def aget_app_metadata(self, app: Any) -> dict[str, Any]:
        """FDC3 ``AppMetadata`` of ``app``: a running peer of that application name (its
        instance, when ``app`` names one), or a notebook of the server's app directory (its
        name or path; ``title``); :class:`TargetAppUnavailable` when neither."""
        ident = AppIdentifier.of(app)
        for running in await self.afind_instances(ident.app_id):
            if ident.instance_id in (None, running.instance_id):
                return running.to_json()
        if await self.io.apps.available():
            for entry in await self.io.apps.alist():
                if ident.app_id in (entry.name, entry.path):
                    return {"appId": ident.app_id, "title": entry.title}
        raise TargetAppUnavailable(f"No app {ident.app_id!r} runs or can be started")

    get_app_metadata = blocking(aget_app_metadata)

    def add_event_listener(self, event_type: str | None, handler: Callable[..., Any]) -> Listener:
        """``handler(event)`` for FDC3's ``"userChannelChanged"`` events (None: every type):
        ``{"type": "userChannelChanged", "details": {"currentChannelId": id or None}}``,
        whenever this app joins or leaves a user channel, by any API or user interface."""
        if event_type not in (None, USER_CHANNEL_CHANGED):
            raise ArgumentError(
                f"FDC3 2.2 has one event type, {USER_CHANNEL_CHANGED!r} (or None), not "
                f"{event_type!r}"
            )
        if not callable(handler):
            raise ArgumentError(f"The event handler must be callable, not {handler!r}")

        def changed(names: builtins.list[str]) -> None:  # on a handler thread: may block
            ids = {c.context_name: c.id for c in self.get_user_channels()}
            joined = [ids[CHANNEL_PREFIX + n] for n in names if CHANNEL_PREFIX + n in ids]
            current = joined[-1] if joined else None  # the user channel joined last
            handler({"type": USER_CHANNEL_CHANGED, "details": {"currentChannelId": current}})

        return Listener(self.io.channels.on_channels_changed(changed))

    async def aadd_event_listener(
        self, event_type: str | None, handler: Callable[..., Any]
    ) -> Listener:
        """Awaitable :meth:`add_event_listener`."""
        return self.add_event_listener(event_type, handler)

    def get_info(self) -> dict[str, Any]:
        """FDC3 ``ImplementationMetadata`` of this agent (no I/O)."""
        conn = self.session.conn
        application = conn.instance.application if conn.instance is not None else None
        app = {"appId": application or "", "instanceId": conn.peer_id or ""}
        return {
            "fdc3Version": FDC3_VERSION,
            "provider": "jupyter_interop",
            "providerVersion": __version__,
            "optionalFeatures": {
                "OriginatingAppMetadata": True,
                "UserChannelMembershipAPIs": True,
                "DesktopAgentBridging": False,
            },
            "appMetadata": app,
        }

    async def aget_info(self) -> dict[str, Any]:
        """:meth:`get_info`, awaitable (FDC3's ``getInfo`` returns a promise)."""
        return self.get_info()


def _intent_result(intent: str, result: Any) -> Any:
    """What an intent handler returned, as the raiser's ``get_result`` reads it."""
    if result is None:
        return None
    if isinstance(result, Channel):
        return {**result.to_json(), FDC3_CHANNEL_MARK_KEY: True}  # io.Connect's form
    return copy_data(checked_context(result))


async def _outcome(task: asyncio.Future[RunningApp]) -> RunningApp | InteropError | None:
    """What a watch of a started kernel ended with: its entry, or the error it raised (None
    when it could not watch: the opener then waits for a listener or the window's end)."""
    try:
        return await task
    except ErrorOnLaunch as error:
        return error
    except InteropError as error:
        log.debug("open(): the started notebook cannot be watched: %s", error)
        return None


def _launch_failure(app_id: str, kernel_id: str, failed: ErrorOnLaunch | None) -> Fdc3OpenError:
    """``ErrorOnLaunch`` for a notebook ``open`` started that stopped before a listener took
    the context: the cell that raised and its traceback when the server said (``failed``)."""
    why = str(failed) if failed is not None else "a cell failed, or it was stopped"
    message = (
        f"{app_id} (kernel {kernel_id}) stopped before a listener took the context: {why} "
        f"(its cells: GET interop/api/apps/running/{kernel_id}/output)"
    )
    if failed is None:
        return Fdc3OpenError(OpenErrorName.ErrorOnLaunch, message)
    if failed.traceback:
        message += "\n" + failed.traceback
    return Fdc3OpenError(
        OpenErrorName.ErrorOnLaunch,
        message,
        notebook_path=failed.notebook_path,
        cell_index=failed.cell_index,
        cell_source=failed.cell_source,
        traceback=failed.traceback,
    )
