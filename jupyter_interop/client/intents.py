"""Intents (io.Connect/Glue42 ``intents.*``, FDC3 ``raiseIntent``): ask for an action by name.

A handler of the intent ``ViewChart`` is an interop method named
``Tick42.FDC3.Intents.ViewChart`` whose ``flags.intent`` holds ``{contextTypes, displayName,
icon, description}``, the form io.Connect and Glue42 apps register, so a JS app is a handler for
notebooks and the other way round (docs/INTENTS.md). No hub support is needed: intents are
methods, found in the client's registry.

Resolution, written as plain functions so that it is tested without sockets: the handlers of
the intent, those whose context types admit the context's type, those the target selects, then
the resolver when several remain. A resolver is ``"error"`` (the default: raise
:class:`ResolverUnavailable`), ``"first"``, or a callable ``resolver(intent, handlers, context)
-> handler | None`` (``None`` means the user cancelled), the hook a notebook widget uses. It
runs on the client's I/O loop: a resolver that waits for a person must be ``async``.

Notebooks of a Jupyter server's app directory (``client/apps.py``) are handlers too, of type
``"app"`` (not running, no peer id): when no running handler fits, or the target asks for a
new instance or names such a notebook, the chosen notebook is started and the intent is
delivered to the handler it registers.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from ..protocol.intents import (
    RESULT_TYPE_KEY,
    result_problem,
    result_type_matches,
    result_type_problem,
)
from ..protocol.wire import INTENT_METHOD_PREFIX
from .apps import Apps
from .errors import (
    ArgumentError,
    IntentDeliveryFailed,
    IntentHandlerRejected,
    InvocationError,
    InvocationTimeoutError,
    MalformedContext,
    MethodNotFoundError,
    NoAppsFound,
    ResolverTimeout,
    ResolverUnavailable,
    TargetAppUnavailable,
    TargetInstanceUnavailable,
    UserCancelledResolution,
)
from .instance import Instance
from .twins import blocking, on_io_loop

if TYPE_CHECKING:
    from .apps import App
    from .methods import Methods
    from .registry import Method
    from .session import ClientSession

log = logging.getLogger("jupyter_interop.client")

__all__ = [
    "INTENT_METHOD_PREFIX",
    "Intent",
    "IntentHandler",
    "IntentListener",
    "IntentResolution",
    "Intents",
    "Resolver",
    "choose_handler",
    "context_type_of",
    "fitting_handlers",
    "intents_from_methods",
    "set_default_resolver",
    "startable_handlers",
    "targeted_handlers",
]

ResolverFunction = Callable[
    [str, "list[IntentHandler]", "dict[str, Any] | None"],
    "IntentHandler | Awaitable[IntentHandler | None] | None",
]
#: how several fitting handlers become one: a policy name or a chooser
Resolver = Literal["error", "first"] | ResolverFunction

_default_resolver: list[Resolver] = ["error"]

#: seconds a started notebook's handler may take to reach this client's registry: the server
#: answered once the hub had it, its announcement may still be on its way
_STARTED_WAIT = 10.0


def set_default_resolver(resolver: Resolver) -> None:
    """The resolver of every client whose ``io.intents.resolver`` was not set: ``"error"``
    in scripts; the notebook layer makes it its widget when it loads (docs/INTENTS.md)."""
    _default_resolver[0] = resolver


@dataclass(frozen=True)
class IntentHandler:
    """One handler of an intent: a running instance that listens for it (``type``
    ``"instance"``), or a notebook the server can start for it (``"app"``: its instance has
    the notebook's application name and path, and no peer id)."""

    intent: str
    instance: Instance
    context_types: tuple[str, ...] = ()
    display_name: str | None = None
    icon: str | None = None
    description: str | None = None
    #: "instance" (running) or "app" (a notebook the server starts on demand)
    type: str = "instance"
    #: what it returns: a context type, ``"channel"`` or ``"channel<type>"`` (None: unsaid)
    result_type: str | None = None

    @property
    def application(self) -> str | None:
        return self.instance.application

    @property
    def peer_id(self) -> str:
        return self.instance.peer_id

    @property
    def notebook_path(self) -> str | None:
        return self.instance.notebook_path

    def accepts(self, context_type: str | None, result_type: str | None = None) -> bool:
        """True when the handler takes contexts of this type (any type if it lists none)
        and passes the ``result_type`` filter (``protocol/intents.py``)."""
        return (
            context_type is None or not self.context_types or context_type in self.context_types
        ) and result_type_matches(self.result_type, result_type)


@dataclass(frozen=True)
class Intent:
    """An intent and its handlers (what :meth:`Intents.find` lists)."""

    name: str
    display_name: str
    handlers: tuple[IntentHandler, ...] = field(default_factory=tuple)

    @property
    def context_types(self) -> tuple[str, ...]:
        """Every context type some handler lists (in first-seen order)."""
        seen: dict[str, None] = {}
        for handler in self.handlers:
            seen.update(dict.fromkeys(handler.context_types))
        return tuple(seen)


@dataclass(frozen=True)
class IntentResolution:
    """The outcome of :meth:`Intents.raise_intent`: who handled it and what it returned.

    ``result`` is what the handler returned (a context dict, a value), ``None`` for nothing.
    """

    intent: str
    handler: IntentHandler
    result: Any = None


# ---------------------------------------------------------------------- resolution (no I/O)


def _handler_from(intent: str, flags: dict[str, Any], server: Instance) -> IntentHandler:
    spec = flags.get("intent") if isinstance(flags, dict) else None
    spec = spec if isinstance(spec, dict) else {}
    types = spec.get("contextTypes")
    types = tuple(t for t in types if isinstance(t, str)) if isinstance(types, list) else ()

    def text(key: str) -> str | None:
        value = spec.get(key)
        return value if isinstance(value, str) else None

    result = text(RESULT_TYPE_KEY)
    return IntentHandler(
        intent,
        server,
        types,
        text("displayName"),
        text("icon"),
        text("description"),
        result_type=result if result_type_problem(result) is None else None,
    )


def intents_from_methods(methods: Iterable[Method]) -> list[Intent]:
    """The intents that the methods named ``Tick42.FDC3.Intents.*`` stand for, by name."""
    grouped: dict[str, list[IntentHandler]] = {}
    for method in methods:
        if method.supports_streaming or not method.name.startswith(INTENT_METHOD_PREFIX):
            continue
        name = method.name[len(INTENT_METHOD_PREFIX) :]
        if not name:
            continue
        handlers = grouped.setdefault(name, [])
        # each server's own flags.intent: handlers of one intent differ in display name and
        # context types, though the registry groups them under one method identity
        definitions = method.definitions or (None,) * len(method.servers)
        handlers.extend(
            _handler_from(name, own.flags if own is not None else method.flags, server)
            for server, own in zip(method.servers, definitions, strict=True)
        )
    result = []
    for name, handlers in grouped.items():
        display = next((h.display_name for h in handlers if h.display_name), name)
        result.append(Intent(name, display, tuple(handlers)))
    return result


def context_type_of(intent: str, context: Any) -> str | None:
    """The context's ``type`` (``None`` without a context); :class:`MalformedContext` when
    the context is not a dict whose ``type`` is a string."""
    if context is None:
        return None
    if not isinstance(context, dict):
        raise MalformedContext(
            f"An intent's context must be a dict such as {{'type': 'fdc3.instrument', ...}}, "
            f"not {type(context).__name__}",
            intent=intent,
        )
    kind = context.get("type")
    if not isinstance(kind, str) or not kind:
        raise MalformedContext(
            "An intent's context needs a 'type' string (e.g. 'fdc3.instrument')", intent=intent
        )
    return kind


def fitting_handlers(
    intent: str,
    handlers: Iterable[IntentHandler],
    context_type: str | None,
    result_type: str | None = None,
) -> list[IntentHandler]:
    """The handlers of ``intent`` that take contexts of ``context_type`` (and return
    ``result_type``, when given)."""
    return [h for h in handlers if h.intent == intent and h.accepts(context_type, result_type)]


def checked_result_type(result_type: Any) -> str | None:
    """``result_type`` (None or a result type), else :class:`ArgumentError`."""
    if result_type is None:
        return None
    problem = result_type_problem(result_type)
    if problem is not None:
        raise ArgumentError(problem)
    return str(result_type)


Target = str | dict[str, Any] | Instance | None


def targeted_handlers(
    intent: str, handlers: list[IntentHandler], target: Target
) -> list[IntentHandler]:
    """The fitting ``handlers`` that ``target`` selects (see :meth:`Intents.raise_intent`)."""
    if target is None or target == "reuse":
        if not handlers:
            raise NoAppsFound(f"No running handler fits the intent {intent!r}", intent=intent)
        return handlers
    if target == "startNew":
        raise NoAppsFound(
            f"target='startNew': no notebook of the server's app directory declares the "
            f"intent {intent!r}, so none can be started",
            intent=intent,
        )
    if isinstance(target, Instance):
        target = {"instance": target.peer_id}
    if isinstance(target, str):
        target = {"instance": target}
    if not isinstance(target, dict) or not ({"application", "instance"} & set(target)):
        raise ArgumentError(
            "target must be None, 'reuse', 'startNew', a peer id, an Instance, or a dict with "
            f"'application' and/or 'instance', not {target!r}"
        )
    chosen = handlers
    app = target.get("application")
    if app is not None:
        chosen = [h for h in chosen if h.application == app]
        if not chosen:
            raise TargetAppUnavailable(
                f"The application {app!r} has no running handler that fits the intent {intent!r}",
                intent=intent,
            )
    inst = target.get("instance")
    if inst is not None:
        chosen = [h for h in chosen if inst in (h.peer_id, h.instance.instance)]
        if not chosen:
            raise TargetInstanceUnavailable(
                f"The instance {inst!r} has no handler that fits the intent {intent!r}",
                intent=intent,
            )
    return chosen


def app_handlers(
    apps: Iterable[App], context_type: str | None, result_type: str | None = None
) -> list[IntentHandler]:
    """The ``"app"`` handlers the app directory's notebooks stand for (those with an error
    left out), by intent and notebook, that take ``context_type`` and return ``result_type``."""
    handlers = []
    for app in apps:
        if app.error is not None:
            continue
        instance = Instance("", application=app.name, notebook_path=app.path)
        for declared in app.intents:
            handler = IntentHandler(
                declared.name,
                instance,
                declared.context_types,
                declared.display_name,
                type="app",
                result_type=declared.result_type,
            )
            if handler.accepts(context_type, result_type):
                handlers.append(handler)
    return handlers


def startable_handlers(
    intent: str, apps: list[IntentHandler], target: Target
) -> list[IntentHandler]:
    """The ``"app"`` handlers of ``intent`` that ``target`` lets start: all of them for
    ``None``, ``"reuse"`` and ``"startNew"``; for ``{"application": x}`` those whose
    application name or notebook path is ``x``; none for an instance."""
    apps = [h for h in apps if h.intent == intent]
    if target is None or target in ("reuse", "startNew"):
        return apps
    if isinstance(target, dict) and target.get("instance") is None:
        wanted = target.get("application")
        return [h for h in apps if wanted in (h.application, h.notebook_path)]
    return []


async def choose_handler(
    intent: str,
    handlers: list[IntentHandler],
    context: dict[str, Any] | None,
    resolver: Resolver,
    timeout: float | None = None,
) -> IntentHandler:
    """One handler among ``handlers`` (non-empty): the only one, else what ``resolver`` picks."""
    if len(handlers) == 1:
        return handlers[0]
    if resolver == "first":
        return handlers[0]
    if resolver == "error":
        names = ", ".join(f"{h.application or '?'} ({h.peer_id})" for h in handlers)
        raise ResolverUnavailable(
            f"{len(handlers)} handlers fit the intent {intent!r}: {names}; pass a target, or "
            "resolver='first' or a resolver function",
            intent=intent,
        )
    if not callable(resolver):
        raise ArgumentError(f"resolver must be 'error', 'first' or a function, not {resolver!r}")
    picked: Any = resolver(intent, list(handlers), context)
    if inspect.isawaitable(picked):
        try:
            picked = await asyncio.wait_for(asyncio.ensure_future(picked), timeout)
        except asyncio.TimeoutError:
            raise ResolverTimeout(
                f"No handler was chosen for the intent {intent!r} within {timeout:g} s",
                intent=intent,
            ) from None
    if picked is None:
        raise UserCancelledResolution(f"No handler was chosen for {intent!r}", intent=intent)
    if picked not in handlers:
        raise ArgumentError(f"The resolver returned {picked!r}, not one of the handlers offered")
    return picked


# ---------------------------------------------------------------------- the service


class IntentListener:
    """What :meth:`Intents.add_listener` returns: ``unsubscribe()`` stops listening."""

    def __init__(self, intents: Intents, intent: str) -> None:
        self._intents = intents
        self.intent = intent

    @property
    def _session(self) -> ClientSession:
        return self._intents.session

    @on_io_loop
    async def aunsubscribe(self) -> None:
        """Stop handling the intent (unregisters its method)."""
        await self._intents.remove_listener(self.intent)

    unsubscribe = blocking(aunsubscribe)

    def __repr__(self) -> str:
        return f"<IntentListener {self.intent!r}>"


class Intents:
    """``io.intents``: add listeners for intents, raise them, and find who handles them.

    ``resolver`` (default ``"error"``; in a notebook, its widget) is how :meth:`raise_intent`
    chooses when several handlers fit and the target does not choose; a raise can pass its own.
    """

    def __init__(self, session: ClientSession, methods: Methods, apps: Apps) -> None:
        self._session = session
        self._methods = methods
        self._apps = apps
        self._listeners: dict[str, IntentListener] = {}
        self._resolver: Resolver | None = None

    @property
    def resolver(self) -> Resolver:
        """How several fitting handlers become one (see the module docstring); until set,
        the default (:func:`set_default_resolver`)."""
        return _default_resolver[0] if self._resolver is None else self._resolver

    @resolver.setter
    def resolver(self, resolver: Resolver) -> None:
        self._resolver = resolver

    @property
    def session(self) -> ClientSession:
        return self._session

    # ------------------------------------------------------------------ listen

    @on_io_loop
    async def aadd_listener(
        self,
        intent: str,
        handler: Callable[[dict[str, Any]], Any],
        context_types: list[str] | None = None,
        display_name: str | None = None,
        icon: str | None = None,
        description: str | None = None,
        result_type: str | None = None,
    ) -> IntentListener:
        """Handle ``intent``: ``handler(context)`` (sync or async) gets the raised context
        (``{"type": ..., ...}``, ``{}`` without one) and may return a context, a value or
        nothing. ``context_types``: the types it takes (all when empty); ``result_type``:
        what it returns (``flags.intent.resultType``: a context type, ``"channel"`` or
        ``"channel<type>"``), which finds and raises filter by. One listener per intent per
        client; ``unsubscribe()`` the returned handle to add another."""
        if not isinstance(intent, str) or not intent.strip():
            raise ArgumentError(f"An intent name must be a non-empty string, not {intent!r}")
        if not callable(handler):
            raise ArgumentError(f"handler must be callable, not {type(handler).__name__}")
        if context_types is not None and (
            isinstance(context_types, str) or not all(isinstance(t, str) for t in context_types)
        ):
            raise ArgumentError("context_types must be a list of strings")
        if intent in self._listeners:
            raise ArgumentError(
                f"This client already listens for the intent {intent!r}; call unsubscribe() on "
                "the listener first"
            )
        spec: dict[str, Any] = {"contextTypes": list(context_types or [])}
        optional = {
            "displayName": display_name,
            "icon": icon,
            "description": description,
            RESULT_TYPE_KEY: checked_result_type(result_type),
        }
        spec.update({k: v for k, v in optional.items() if v is not None})
        listener = IntentListener(self, intent)
        self._listeners[intent] = listener
        try:
            await self._methods.aregister(
                INTENT_METHOD_PREFIX + intent,
                _as_method(handler, intent, spec.get(RESULT_TYPE_KEY)),
                flags={"intent": spec},
                description=description,
            )
        except BaseException:
            del self._listeners[intent]
            raise
        return listener

    add_listener = blocking(aadd_listener)

    async def remove_listener(self, intent: str) -> None:
        """Stop handling ``intent`` (what ``IntentListener.unsubscribe`` does)."""
        if self._listeners.pop(intent, None) is not None:
            await self._methods.aunregister(INTENT_METHOD_PREFIX + intent)

    # ------------------------------------------------------------------ discover

    @on_io_loop
    async def afind(
        self,
        intent: str | None = None,
        context_type: str | None = None,
        result_type: str | None = None,
    ) -> list[Intent]:
        """Intents with their handlers: running instances, then the notebooks the server can
        start for them (``type == "app"``); optionally only ``intent`` and only the handlers
        that take ``context_type`` and return ``result_type`` (``"channel"``: any channel)."""
        result_type = checked_result_type(result_type)
        found = intents_from_methods(await self._methods.amethods())
        apps = app_handlers(await self._apps.alist(), context_type, result_type)
        names = [i.name for i in found] + [h.intent for h in apps]
        result = []
        for name in dict.fromkeys(names):
            if intent is not None and name != intent:
                continue
            running = next((i for i in found if i.name == name), None)
            handlers = fitting_handlers(
                name, running.handlers if running else (), context_type, result_type
            )
            handlers += [h for h in apps if h.intent == name]
            if handlers:
                display = running.display_name if running else None
                display = display or next(
                    (h.display_name for h in handlers if h.display_name), name
                )
                result.append(Intent(name, display, tuple(handlers)))
        return result

    find = blocking(afind)

    @on_io_loop
    async def aall(self) -> list[Intent]:
        """Every intent some running peer (this client included) handles, or a notebook of
        the server's app directory declares."""
        return await self.afind()

    all = blocking(aall)

    # ------------------------------------------------------------------ raise

    @on_io_loop
    async def araise_intent(
        self,
        intent: str,
        context: dict[str, Any] | None = None,
        target: Target = None,
        timeout: float | None = None,
        *,
        resolver: Resolver | None = None,
        result_type: str | None = None,
    ) -> IntentResolution:
        """Ask a handler of ``intent`` to act on ``context`` and return its resolution.

        ``target``: ``None``/``"reuse"`` (a running handler; else a directory notebook is
        started), ``"startNew"`` (a directory notebook is started), a peer id or
        :class:`Instance`, or a dict with ``"application"`` (an application name, or a
        directory notebook's name or path, started when none runs) and/or ``"instance"``.
        Handlers whose ``contextTypes`` do not list the context's type do not fit. Several
        fitting handlers: ``resolver`` (default ``io.intents.resolver``) chooses.
        ``timeout`` (default ``invoke_timeout``): for the resolver and for the handler's
        answer, each. ``result_type``: only handlers declaring that result fit.

        Raises the :class:`IntentError` subclasses named after FDC3's errors; a notebook
        started for it: :class:`ErrorOnLaunch` (a cell raised) or :class:`AppTimeout`.
        """
        if not isinstance(intent, str) or not intent.strip():
            raise ArgumentError(f"An intent name must be a non-empty string, not {intent!r}")
        kind = context_type_of(intent, context)
        result_type = checked_result_type(result_type)
        known = [
            i for i in intents_from_methods(await self._methods.amethods()) if i.name == intent
        ]
        handlers = fitting_handlers(intent, known[0].handlers if known else (), kind, result_type)
        try:
            candidates = targeted_handlers(intent, handlers, target)
        except (NoAppsFound, TargetAppUnavailable) as missing:
            apps = app_handlers(await self._apps.alist(), kind, result_type)
            candidates = startable_handlers(intent, apps, target)
            if not candidates:
                raise missing from None
        chosen = await choose_handler(
            intent,
            candidates,
            context,
            self.resolver if resolver is None else resolver,
            self._session.settings.invoke_timeout if timeout is None else timeout,
        )
        if chosen.type != "app":
            return await self._deliver(chosen, context, timeout)
        started = await self._start(chosen, kind, new=target == "startNew")
        return await self._deliver(started, context, timeout, wait_timeout=_STARTED_WAIT)

    raise_intent = blocking(araise_intent)

    async def _start(self, app: IntentHandler, kind: str | None, new: bool) -> IntentHandler:
        """Have the server start ``app``'s notebook (or join its start) and return the
        running handler it registered."""
        running = await self._apps.astart(
            app.notebook_path, intent=app.intent, context_type=kind, new=new
        )
        instance = Instance(
            running.peer_id or "",
            application=app.application,
            kernel_id=running.kernel_id,
            notebook_path=running.path,
        )
        return IntentHandler(
            app.intent,
            instance,
            app.context_types,
            app.display_name,
            app.icon,
            app.description,
            result_type=app.result_type,
        )

    async def _deliver(
        self,
        handler: IntentHandler,
        context: dict[str, Any] | None,
        timeout: float | None,
        wait_timeout: float = 0,
    ) -> IntentResolution:
        name = INTENT_METHOD_PREFIX + handler.intent
        try:
            reply = await self._methods.ainvoke(
                name,
                dict(context or {}),
                handler.instance,
                timeout=timeout,
                wait_timeout=wait_timeout,
            )
        except (MethodNotFoundError, InvocationTimeoutError) as exc:
            raise IntentDeliveryFailed(
                f"The intent {handler.intent!r} could not be delivered to "
                f"{handler.application or handler.peer_id}: {exc}",
                intent=handler.intent,
            ) from exc
        except InvocationError as exc:
            raise IntentHandlerRejected(
                f"The handler of {handler.intent!r} ({handler.application or handler.peer_id}) "
                f"failed: {exc}",
                intent=handler.intent,
                cause=exc,
            ) from exc
        result = reply.returned
        return IntentResolution(handler.intent, handler, None if result == {} else result)


def _as_method(
    handler: Callable[[dict[str, Any]], Any], intent: str, result_type: str | None
) -> Callable[..., Any]:
    """A method handler (called with the context's keys as keyword arguments) that calls
    ``handler(context)``; async when ``handler`` is, as the method server decides by that.
    A result that is not of the declared ``result_type`` is logged here, where the handler's
    author looks, and still returned: the raiser decides (FDC3's ``getResult`` fails)."""
    if inspect.iscoroutinefunction(handler):

        async def serve_async(**context: Any) -> Any:
            return _checked(intent, result_type, await handler(context))

        return serve_async

    def serve(**context: Any) -> Any:
        return _checked(intent, result_type, handler(context))

    return serve


def _checked(intent: str, result_type: str | None, result: Any) -> Any:
    problem = result_problem(result_type, result)
    if problem is not None:
        log.warning(
            "The handler of the intent %r returned a result of another type than it declared "
            "(%s): an FDC3 raiser's get_result() fails with NoResultReturned",
            intent,
            problem,
        )
    return result
