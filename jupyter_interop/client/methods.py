"""Interop methods: register, invoke, discover (io.Connect ``interop.*``).

Handlers are ordinary Python functions called with the invocation's arguments as keyword
arguments (``def quote(symbol: str, qty: int = 1)``); who called is available through
:func:`current_invocation`. What they return travels as the result: a dict as it is, anything
else as ``{"_value": x}`` (what io.Connect JS callers expect), unwrapped again for Python
callers. An exception becomes a GW3 error whose reason is ``"<Type>: <message>"``; its context
carries the type, the message and the traceback.

Defaults suited to notebooks (settings of :class:`~jupyter_interop.client.api.Interop`):
``method_wait_timeout`` = 5 s to wait for a method that is not there yet (io.Connect: 30 s, too
long for a typo in a cell), ``invoke_timeout`` = 30 s for the reply (io.Connect's default).
Multi-target calls fail only when every target failed.

Re-running a cell that registers a method replaces the handler of the same name (notebooks
re-run cells); io.Connect would refuse a second registration of the name.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import inspect
import itertools
import logging
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, overload

from ..protocol.errors import Reason
from .codec import unwrap_value, wrap_value
from .connection import RequestTimeout
from .dispatch import OutputTarget, capture_output_target
from .errors import (
    ArgumentError,
    ConnectionLostError,
    InvocationError,
    InvocationTimeoutError,
    MethodNotFoundError,
    RegistrationError,
    RemoteError,
    SerializationError,
)
from .instance import Instance, InstanceFilter, normalize_filter
from .registry import Method, MethodInfo, Unsubscribe
from .twins import blocking, on_io_loop

log = logging.getLogger("jupyter_interop.client")

if TYPE_CHECKING:
    from .session import ClientSession

__all__ = [
    "Invocation",
    "InvocationErrorEntry",
    "InvocationResult",
    "InvocationResultEntry",
    "Methods",
    "current_invocation",
]

Target = str | dict[str, Any] | Instance | list[dict[str, Any] | Instance]
_TRACEBACK_LIMIT = 8000


@dataclass(frozen=True)
class Invocation:
    """The invocation a handler is serving (see :func:`current_invocation`)."""

    method: str
    caller: Instance
    arguments: dict[str, Any]
    invocation_id: str


_current: contextvars.ContextVar[Invocation | None] = contextvars.ContextVar(
    "jupyter_interop_invocation", default=None
)


def current_invocation() -> Invocation | None:
    """Inside a method handler: who called, which method, with what (else None)."""
    return _current.get()


@dataclass(frozen=True)
class InvocationResultEntry:
    """One target's successful reply."""

    executed_by: Instance
    returned: Any
    method: str
    called_with: dict[str, Any]
    message: str = ""
    status: int = 0


@dataclass(frozen=True)
class InvocationErrorEntry:
    """One target's failure (``context`` is the error payload a handler sent, if any)."""

    executed_by: Instance | None
    method: str
    called_with: dict[str, Any]
    message: str
    reason_uri: str | None = None
    context: Any = None
    status: int = 1


@dataclass(frozen=True)
class InvocationResult:
    """The outcome of :meth:`Methods.invoke`.

    ``returned``/``executed_by`` come from the first target that succeeded (io.Connect takes
    the first target whatever its outcome, which leaves ``returned`` empty when that one
    failed); ``all_return_values`` and ``all_errors`` hold every target's outcome.
    """

    method: str
    called_with: dict[str, Any]
    returned: Any
    executed_by: Instance | None
    message: str = ""
    status: int = 0
    all_return_values: list[InvocationResultEntry] = field(default_factory=list)
    all_errors: list[InvocationErrorEntry] = field(default_factory=list)


@dataclass
class LocalMethod:
    """A method or stream this client offers."""

    id: str
    name: str
    wire: dict[str, Any]
    handler: Callable[..., Any] | None
    target: OutputTarget | None
    streaming: bool = False
    stream: Any = None


def definition(
    name: str,
    *,
    display_name: str | None = None,
    description: str | None = None,
    accepts: str | None = None,
    returns: str | None = None,
    version: int | None = None,
    object_types: list[str] | None = None,
    flags: dict[str, Any] | None = None,
    streaming: bool = False,
) -> dict[str, Any]:
    """The wire form of a method definition (``id`` is added when registering)."""
    if not isinstance(name, str) or not name.strip():
        raise ArgumentError(f"A method name must be a non-empty string, not {name!r}")
    for label, value in (
        ("display_name", display_name),
        ("description", description),
        ("accepts", accepts),
        ("returns", returns),
    ):
        if value is not None and not isinstance(value, str):
            raise ArgumentError(f"{label} must be a string, not {type(value).__name__}")
    if flags is not None and not isinstance(flags, dict):
        raise ArgumentError(f"flags must be a dict, not {type(flags).__name__}")
    if object_types is not None and (
        not isinstance(object_types, (list, tuple))
        or not all(isinstance(t, str) for t in object_types)
    ):
        raise ArgumentError("object_types must be a list of strings")
    wire: dict[str, Any] = {
        "name": name,
        "flags": {"metadata": dict(flags or {}), "streaming": streaming},
        "object_types": list(object_types or []),
    }
    optional = {
        "display_name": display_name,
        "description": description,
        "input_signature": accepts,
        "result_signature": returns,
        "version": version,
    }
    wire.update({k: v for k, v in optional.items() if v is not None})
    return wire


def parse_target(target: Any, allow_skip_mine: bool = True) -> str | list[InstanceFilter]:
    """``"best"``/``"all"``/``"skipMine"``, or a list of normalized instance filters."""
    if target is None:
        return "best"
    if isinstance(target, str):
        allowed = ("best", "all", "skipMine") if allow_skip_mine else ("best", "all")
        if target not in allowed:
            raise ArgumentError(
                f"{target!r} is not a valid target: use {', '.join(map(repr, allowed))}, an "
                "instance filter dict or a list of them"
            )
        return target
    if isinstance(target, (dict, Instance)):
        return [normalize_filter(target)]
    if isinstance(target, (list, tuple)):
        if not target:
            raise ArgumentError("An empty list of targets matches nobody")
        return [normalize_filter(t) for t in target]
    raise ArgumentError(
        f"A target must be 'best', 'all', 'skipMine', an instance filter dict or a list of "
        f"them, not {type(target).__name__}"
    )


def check_timeout(value: Any, default: float, label: str) -> float:
    if value is None:
        return float(default)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        raise ArgumentError(f"{label} must be a number of seconds >= 0, not {value!r}")
    return float(value)


class Methods:
    """``io.methods``: register, invoke and discover interop methods."""

    def __init__(self, session: ClientSession) -> None:
        self._session = session
        self._ids = itertools.count(1)
        #: method id -> what this client offers (methods and streams)
        self.own: dict[str, LocalMethod] = {}
        conn = session.conn
        conn.on("agm", "invoke", self._on_invoke)
        conn.add_restorer(self._restore)

    # ------------------------------------------------------------------ register

    @overload
    def register(
        self, name: str, handler: None = None, **options: Any
    ) -> Callable[[Callable[..., Any]], Callable[..., Any]]: ...
    @overload
    def register(
        self, name: str, handler: Callable[..., Any], **options: Any
    ) -> Callable[..., Any]: ...
    def register(self, name: str, handler: Callable[..., Any] | None = None, **options: Any) -> Any:
        """Offer ``handler`` as the interop method ``name``; also usable as a decorator.

        ``options``: ``display_name``, ``description``, ``accepts``, ``returns``, ``version``,
        ``object_types``, ``flags`` (io.Connect's method definition). Returns the handler, so
        the decorated function stays callable locally.
        """
        if handler is None:

            def decorator(fn: Callable[..., Any]) -> Callable[..., Any]:
                self.register(name, fn, **options)
                return fn

            return decorator
        self._register_blocking(name, handler, **options)
        return handler

    @on_io_loop
    async def aregister(self, name: str, handler: Callable[..., Any], **options: Any) -> None:
        """Offer ``handler`` as the interop method ``name`` (see :meth:`register`)."""
        if not callable(handler):
            raise ArgumentError(f"A method handler must be callable, not {handler!r}")
        wire = definition(name, **options)
        existing = self.own_by_name(name)
        target = capture_output_target()
        if existing is not None:
            if existing.streaming:
                raise RegistrationError(f"{name!r} is already registered here as a stream")
            if {k: v for k, v in existing.wire.items() if k != "id"} == wire:
                existing.handler = handler  # a re-run cell: same method, new code
                existing.target = target
                return
            await self.unregister_ids([existing.id])
        await self.register_local(LocalMethod(self.new_id(), name, wire, handler, target))

    _register_blocking = blocking(aregister)

    async def register_local(self, local: LocalMethod) -> None:
        """Register a method or stream on the hub and remember it for reconnects."""
        local.wire["id"] = local.id
        self.own[local.id] = local
        try:
            await self._session.conn.request(
                {"domain": "agm", "type": "register", "methods": [local.wire]},
                self._session.settings.request_timeout,
                f"registration of {local.name!r}",
            )
        except RemoteError as error:
            self.own.pop(local.id, None)
            raise RegistrationError(
                f"Could not register {local.name!r}: {error.reason}", error.reason_uri
            ) from None
        except BaseException:
            self.own.pop(local.id, None)
            raise

    @on_io_loop
    async def aunregister(self, name: str) -> None:
        """Stop offering the method ``name`` (registered by this client)."""
        local = self.own_by_name(name)
        if local is None or local.streaming:
            raise RegistrationError(f"No method {name!r} is registered by this client")
        await self.unregister_ids([local.id])

    unregister = blocking(aunregister)

    async def unregister_ids(self, ids: list[str]) -> None:
        """Stop offering the methods or streams with these ids."""
        conn = self._session.conn
        locals_ = [self.own.pop(i) for i in ids if i in self.own]
        if not conn.connected.is_set():
            return  # the hub forgot them already; they are not restored
        with contextlib.suppress(ConnectionLostError):  # gone, and not restored either
            await conn.request(
                {"domain": "agm", "type": "unregister", "methods": ids},
                self._session.settings.request_timeout,
                "unregistration of " + ", ".join(repr(m.name) for m in locals_),
            )

    def new_id(self) -> str:
        """A method id not used yet by this client (methods and streams share them)."""
        return str(next(self._ids))

    def own_by_name(self, name: str) -> LocalMethod | None:
        """The method or stream named ``name`` this client offers, if any."""
        for local in self.own.values():
            if local.name == name:
                return local
        return None

    async def _restore(self) -> None:
        if not self.own:
            return
        await self._session.conn.request(
            {
                "domain": "agm",
                "type": "register",
                "methods": [local.wire for local in self.own.values()],
            },
            self._session.settings.request_timeout,
            "re-registration of methods and streams",
            internal=True,
        )

    # ------------------------------------------------------------------ serve

    def _on_invoke(self, msg: dict[str, Any]) -> None:
        session = self._session
        conn = session.conn
        invocation_id = str(msg.get("invocation_id"))
        local = self.own.get(str(msg.get("method_id")))
        if local is None or local.streaming or local.handler is None:
            conn.send(_error_message(invocation_id, "No such method is registered here"))
            return
        if session.dispatcher.busy:
            waiting = session.settings.max_queued_handlers
            conn.send(
                _error_message(
                    invocation_id, f"{local.name!r} is busy: {waiting} invocations waiting"
                )
            )
            return
        kwargs = msg.get("arguments_kv")
        positional = msg.get("arguments")
        if not isinstance(kwargs, dict):
            kwargs = {}
        if not isinstance(positional, list):
            positional = []
        caller_id = str(msg.get("caller_id"))
        server = session.registry.servers.get(caller_id)
        caller = server.instance if server is not None else Instance(peer_id=caller_id)
        invocation = Invocation(local.name, caller, kwargs, invocation_id)
        handler = local.handler
        generation = conn.generation
        serve = self._serve_async if inspect.iscoroutinefunction(handler) else self._serve_sync
        session.dispatcher.run_handler_then(
            serve,
            (handler, positional, kwargs, invocation),
            local.target,
            lambda frame, error: self._reply(frame, error, generation),
            lambda frame: conn.write_now(frame, generation),  # from the handler thread
        )

    def _serve_sync(
        self,
        handler: Callable[..., Any],
        positional: list[Any],
        kwargs: dict[str, Any],
        invocation: Invocation,
    ) -> bytes:
        """On a handler thread: run the handler and encode the reply there (big results
        must not block the I/O loop)."""
        token = _current.set(invocation)
        try:
            try:
                value = handler(*positional, **kwargs)
                if inspect.isawaitable(value):
                    value = asyncio.run_coroutine_threadsafe(
                        _await(value), self._session.io.loop
                    ).result()
            except BaseException as error:
                return self._encode_error(invocation, error)
            return self._encode_result(invocation, value)
        finally:
            _current.reset(token)

    async def _serve_async(
        self,
        handler: Callable[..., Any],
        positional: list[Any],
        kwargs: dict[str, Any],
        invocation: Invocation,
    ) -> bytes:
        _current.set(invocation)
        try:
            value = await handler(*positional, **kwargs)
        except Exception as error:
            return self._encode_error(invocation, error)
        return self._encode_result(invocation, value)

    def _encode_result(self, invocation: Invocation, value: Any) -> bytes:
        conn = self._session.conn
        message = {
            "domain": "agm",
            "type": "yield",
            "invocation_id": invocation.invocation_id,
            "peer_id": conn.peer_id,
            "result": wrap_value(value),
        }
        try:
            return conn.codec.encode(message)
        except SerializationError as error:
            return self._encode_error(
                invocation,
                error,
                f"The result of {invocation.method!r} cannot be sent: {error}",
            )

    def _encode_error(
        self, invocation: Invocation, error: BaseException, reason: str | None = None
    ) -> bytes:
        text = "".join(traceback.format_exception(error))
        if len(text) > _TRACEBACK_LIMIT:
            text = "...\n" + text[-_TRACEBACK_LIMIT:]
        message = _error_message(
            invocation.invocation_id,
            reason or f"{type(error).__name__}: {error}",
            {"type": type(error).__name__, "message": str(error), "traceback": text},
        )
        message["peer_id"] = self._session.conn.peer_id
        return self._session.conn.codec.encode(message)

    def _reply(self, frame: Any, error: BaseException | None, generation: int) -> None:
        conn = self._session.conn
        if error is not None or conn.generation != generation or not conn.ready.is_set():
            return  # the hub that asked is gone (or we are closing): nobody waits for this
        if not conn.write_now(frame, generation):
            conn._enqueue(frame)

    # ------------------------------------------------------------------ invoke

    @on_io_loop
    async def ainvoke(
        self,
        method: str | dict[str, Any],
        arguments: dict[str, Any] | None = None,
        target: Target | None = "best",
        *,
        timeout: float | None = None,
        wait_timeout: float | None = None,
    ) -> InvocationResult:
        """Invoke ``method`` with ``arguments`` (a dict) on ``target`` and return the result.

        ``target``: ``"best"`` (the first server offering it), ``"all"``, ``"skipMine"``,
        an instance filter dict (``{"application": "pricer"}``), an :class:`Instance`, or a
        list of them. ``wait_timeout`` (default ``method_wait_timeout``, 5 s): how long to wait
        for a matching server to appear. ``timeout`` (default ``invoke_timeout``, 30 s): how
        long to wait for each target's reply, and for the hub if it is reconnecting.

        Raises :class:`MethodNotFoundError`, :class:`InvocationTimeoutError` or
        :class:`InvocationError` (with ``all_errors``) when every target failed.
        """
        session = self._session
        if isinstance(method, str):
            if not method:
                raise ArgumentError("The method name must not be empty")
            name = method
        elif isinstance(method, dict) and isinstance(method.get("name"), str):
            name = method["name"]
        else:
            raise ArgumentError(
                f"method must be a name or a definition dict with a name, not {method!r}"
            )
        if arguments is None:
            arguments = {}
        elif not isinstance(arguments, dict):
            raise ArgumentError(
                f"The method arguments must be a dict (keyword arguments), not "
                f"{type(arguments).__name__}"
            )
        parsed = parse_target(target)
        response_timeout = check_timeout(timeout, session.settings.invoke_timeout, "timeout")
        wait = check_timeout(wait_timeout, session.settings.method_wait_timeout, "wait_timeout")
        conn = session.conn
        payload = conn.codec.prepare(arguments)  # a bad value fails now, not after waiting
        await conn.wait_connected(conn.loop.time() + response_timeout, f"invoke({name!r})")
        chosen = await self.wait_for_targets(method, parsed, False, wait)
        if not chosen:
            raise MethodNotFoundError(self._not_found(name, method, target, wait), method=name)
        if len(chosen) == 1:  # the common case: no task per target
            server, info = chosen[0]
            outcomes = [await self._call_one(server, info, arguments, payload, response_timeout)]
        else:
            outcomes = await asyncio.gather(
                *(
                    self._call_one(server, info, arguments, payload, response_timeout)
                    for server, info in chosen
                )
            )
        values = [o for o in outcomes if isinstance(o, InvocationResultEntry)]
        errors = [o for o in outcomes if isinstance(o, InvocationErrorEntry)]
        first = values[0] if values else None
        result = InvocationResult(
            method=name,
            called_with=arguments,
            returned=first.returned if first else None,
            executed_by=first.executed_by if first else None,
            message=first.message if first else (errors[0].message if errors else ""),
            status=0 if first else 1,
            all_return_values=values,
            all_errors=errors,
        )
        if first is None:
            error = errors[0]
            if all(e.reason_uri == "connection" for e in errors):
                raise ConnectionLostError(error.message)
            cls = (
                InvocationTimeoutError
                if all(e.reason_uri == "timeout" for e in errors)
                else InvocationError
            )
            reason = (
                error.message
                if len(errors) == 1
                else (
                    f"Invocation of {name!r} failed on all {len(errors)} targets: "
                    + "; ".join(e.message for e in errors)
                )
            )
            raise cls(
                reason,
                error.reason_uri,
                error.context,
                method=name,
                all_errors=errors,
                result=result,
            )
        return result

    invoke = blocking(ainvoke)

    async def wait_for_targets(
        self,
        query: str | dict[str, Any],
        target: str | list[InstanceFilter],
        streaming: bool,
        wait: float,
    ) -> list[tuple[Instance, MethodInfo]]:
        """The servers ``target`` picks among those offering ``query`` (a method, or a
        stream when ``streaming``), waiting up to ``wait`` seconds for one to appear."""
        registry = self._session.registry
        loop = self._session.io.loop
        began = loop.time()
        deadline = began + wait
        own = self._session.conn.peer_id
        waiting = False
        while True:
            chosen = registry.select(registry.candidates(query, streaming), target, own)
            remaining = deadline - loop.time()
            if chosen or remaining <= 0:
                if waiting:
                    log.info(
                        "Interop: %s %r after %.1f s",
                        "found" if chosen else "gave up waiting for",
                        _query_name(query),
                        loop.time() - began,
                    )
                return chosen
            if not waiting:  # say so once, so a script's wait is never silent
                waiting = True
                log.info(
                    "Interop: waiting up to %g s for a server of %r matching %r",
                    wait,
                    _query_name(query),
                    target,
                )
            changed = registry.changed
            with contextlib.suppress(TimeoutError, asyncio.TimeoutError):
                await asyncio.wait_for(changed.wait(), remaining)

    def _not_found(
        self, name: str, query: str | dict[str, Any], target: Target | None, wait: float
    ) -> str:
        """Why no server was chosen: nobody offers the method, or nobody the target picks."""
        offering = self._session.registry.candidates(query, False)
        if offering:
            who = ", ".join(_describe_server(server) for server, _ in offering)
            return (
                f"No instance matching the target {target!r} offers {name!r} (waited "
                f"{wait:g} s); it is offered by: {who}"
            )
        return (
            f"Can not find a method matching {name!r} with server filter {target!r} "
            f"(waited {wait:g} s)" + self._known_hint(name)
        )

    def _known_hint(self, name: str) -> str:
        names = sorted({m.name for m in self._session.registry.methods()})
        close = [n for n in names if n.lower().startswith(name.lower()[:3])][:5]
        return f"; similar methods: {', '.join(close)}" if close else ""

    async def _call_one(
        self,
        server: Instance,
        info: MethodInfo,
        arguments: dict[str, Any],
        payload: Any,
        timeout: float,
    ) -> InvocationResultEntry | InvocationErrorEntry:
        conn = self._session.conn
        try:
            reply = await conn.request(
                {
                    "domain": "agm",
                    "type": "call",
                    "server_id": server.peer_id,
                    "method_id": info.id,
                    "arguments_kv": payload,
                },
                timeout,
                f"invocation of {info.name!r}",
            )
        except RequestTimeout:
            return InvocationErrorEntry(
                server,
                info.name,
                arguments,
                f"Invocation timeout ({timeout * 1000:.0f} ms) reached for method name: "
                f"{info.name}, target instance: {server!r}",
                "timeout",
            )
        except RemoteError as error:
            reason = error.reason + _argument_hint(error.context, server, info, arguments)
            return InvocationErrorEntry(
                server, info.name, arguments, reason, error.reason_uri, error.context
            )
        except ConnectionLostError as error:
            return InvocationErrorEntry(server, info.name, arguments, str(error), "connection")
        return InvocationResultEntry(
            server, unwrap_value(reply.get("result")), info.name, arguments
        )

    # ------------------------------------------------------------------ discovery

    @on_io_loop
    async def amethods(self, query: str | dict[str, Any] | None = None) -> list[Method]:
        """Methods (not streams) known now, one entry per method with all its servers;
        ``query``: a name or a definition dict used as a filter."""
        return [m for m in self._session.registry.methods(query) if not m.supports_streaming]

    methods = blocking(amethods)

    @on_io_loop
    async def aservers(
        self, query: str | dict[str, Any] | None = None, *, instance: Any = None
    ) -> list[Instance]:
        """Peers offering at least one method matching ``query`` (all peers without one),
        optionally only those matching the ``instance`` filter; ourselves included."""
        return self._session.registry.server_list(query, instance)

    servers = blocking(aservers)

    @on_io_loop
    async def await_for_method(self, name: str, timeout: float | None = None) -> Method:
        """Wait until a method named ``name`` is offered (raises MethodNotFoundError)."""
        wait = check_timeout(timeout, self._session.settings.method_wait_timeout, "timeout")
        chosen = await self.wait_for_targets(name, "best", False, wait)
        if not chosen:
            raise MethodNotFoundError(f"No method {name!r} appeared within {wait:g} s", method=name)
        return self._session.registry.methods(name)[0]

    wait_for_method = blocking(await_for_method)

    def on_method_added(self, callback: Callable[[Method], Any]) -> Unsubscribe:
        """``callback(method)`` when the first server of a method appears (replays the
        current methods first). Returns a function that stops the notifications."""
        return self._session.registry.listen("method_added", callback)

    def on_method_removed(self, callback: Callable[[Method], Any]) -> Unsubscribe:
        """``callback(method)`` when the last server of a method goes away."""
        return self._session.registry.listen("method_removed", callback)

    def on_server_added(self, callback: Callable[[Instance], Any]) -> Unsubscribe:
        """``callback(instance)`` when a peer joins (replays the current peers first)."""
        return self._session.registry.listen("server_added", callback)

    def on_server_removed(self, callback: Callable[[Instance, str], Any]) -> Unsubscribe:
        """``callback(instance, reason)`` when a peer leaves (``"reset"``: we disconnected)."""
        return self._session.registry.listen("server_removed", callback)

    def on_server_method_added(self, callback: Callable[[Instance, Method], Any]) -> Unsubscribe:
        """``callback(instance, method)`` per server and method (replays first)."""
        return self._session.registry.listen("server_method_added", callback)

    def on_server_method_removed(self, callback: Callable[[Instance, Method], Any]) -> Unsubscribe:
        """``callback(instance, method)`` when a server stops offering a method."""
        return self._session.registry.listen("server_method_removed", callback)


def _query_name(query: str | dict[str, Any]) -> str:
    return query if isinstance(query, str) else str(query.get("name", query))


def _describe_server(server: Instance) -> str:
    """A server as a user knows it: its notebook (or application) and peer id."""
    if server.notebook_path:
        return f"notebook {server.notebook_path!r} (peer {server.peer_id})"
    return f"application {server.application!r} (peer {server.peer_id})"


def _argument_hint(
    context: Any, server: Instance, info: MethodInfo, arguments: dict[str, Any]
) -> str:
    """For a handler that failed on its arguments (a missing or unexpected one reads as a
    ``TypeError``, an unset name in a cell method as a ``NameError``): say where it ran,
    what the method declares it accepts and what was sent, so it does not read as a local
    error. Empty for any other failure."""
    kind = context.get("type") if isinstance(context, dict) else None
    text = context.get("message") if isinstance(context, dict) else None
    about_arguments = kind == "NameError" or (
        kind == "TypeError" and isinstance(text, str) and "argument" in text
    )
    if not about_arguments:
        return ""
    accepts = f"accepts {info.accepts!r}" if info.accepts else "declares no 'accepts' signature"
    sent = ", ".join(sorted(arguments)) or "no arguments"
    return (
        f" [raised by {info.name!r} in {_describe_server(server)}, which {accepts}; sent: {sent}]"
    )


def _error_message(
    invocation_id: str, reason: str, context: dict[str, Any] | None = None
) -> dict[str, Any]:
    message: dict[str, Any] = {
        "domain": "agm",
        "type": "error",
        "request_id": invocation_id,
        "invocation_id": invocation_id,
        "reason_uri": Reason.CLIENT_ERROR,
        "reason": reason,
    }
    if context is not None:
        message["context"] = context
    return message


async def _await(awaitable: Any) -> Any:
    return await awaitable
