"""The serving side of methods: what this client offers and how it answers ``invoke``.

:class:`MethodServer` registers this client's methods and streams (and registers them again
after a reconnect), and runs a handler per GW3 ``invoke`` on a handler thread (or the loop, for
``async def``), encoding the reply there (docs/ARCHITECTURE.md, "Client"). What a handler
returns and raises travels as ``client/methods.py`` describes.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import inspect
import itertools
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..protocol import messages
from ..protocol.errors import Reason
from ..protocol.wire import (
    AGM_DOMAIN,
    INVOKE_TYPE,
)
from .codec import wrap_value
from .dispatch import OutputTarget, capture_output_target
from .errors import (
    ArgumentError,
    ConnectionLostError,
    RegistrationError,
    RemoteError,
    SerializationError,
)
from .instance import Instance

if TYPE_CHECKING:
    from .session import ClientSession

__all__ = [
    "Invocation",
    "LocalMethod",
    "MethodServer",
    "current_invocation",
    "definition",
]

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


class MethodServer:
    """The methods and streams this client offers (by method id), and the invocations of them."""

    def __init__(self, session: ClientSession) -> None:
        self._session = session
        self._ids = itertools.count(1)
        #: method id -> what this client offers (methods and streams)
        self.own: dict[str, LocalMethod] = {}
        conn = session.conn
        conn.on(AGM_DOMAIN, INVOKE_TYPE, self._on_invoke)
        conn.add_restorer(self._restore)

    async def register(self, name: str, handler: Callable[..., Any], **options: Any) -> None:
        """On the loop: offer ``handler`` as the method ``name``, or give the method of that
        name this client offers already its new handler (a re-run cell)."""
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

    async def register_local(self, local: LocalMethod) -> None:
        """Register a method or stream on the hub and remember it for reconnects."""
        local.wire["id"] = local.id
        self.own[local.id] = local
        try:
            await self._session.conn.request(
                messages.register([local.wire]),
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

    async def unregister(self, name: str) -> None:
        """On the loop: stop offering the method ``name`` (registered by this client)."""
        local = self.own_by_name(name)
        if local is None or local.streaming:
            raise RegistrationError(f"No method {name!r} is registered by this client")
        await self.unregister_ids([local.id])

    async def unregister_ids(self, ids: list[str]) -> None:
        """Stop offering the methods or streams with these ids."""
        conn = self._session.conn
        locals_ = [self.own.pop(i) for i in ids if i in self.own]
        if not conn.connected.is_set():
            return  # the hub forgot them already; they are not restored
        with contextlib.suppress(ConnectionLostError):  # gone, and not restored either
            await conn.request(
                messages.unregister(ids),
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
            messages.register([local.wire for local in self.own.values()]),
            self._session.settings.request_timeout,
            "re-registration of methods and streams",
            internal=True,
        )

    def _on_invoke(self, msg: dict[str, Any]) -> None:
        session = self._session
        conn = session.conn
        invocation_id = str(msg.get("invocation_id"))
        local = self.own.get(str(msg.get("method_id")))
        if local is None or local.streaming or local.handler is None:
            conn.send(_client_error(invocation_id, "No such method is registered here"))
            return
        if session.dispatcher.busy:
            waiting = session.settings.max_queued_handlers
            conn.send(
                _client_error(
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
        message = messages.yield_result(invocation.invocation_id, wrap_value(value), conn.peer_id)
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
        message = _client_error(
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
        conn.send_frame(frame, generation)


def _client_error(
    invocation_id: str, reason: str, context: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The failed answer to ``invoke`` of a handler that raised, or was never called."""
    return messages.invocation_error(invocation_id, Reason.CLIENT_ERROR, reason, context)


async def _await(awaitable: Any) -> Any:
    return await awaitable
