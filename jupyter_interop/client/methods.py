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

:class:`Methods` is the facade ``io.methods``: serving lives in ``client/method_server.py``,
invoking in ``client/method_invoker.py``, discovery in the registry (``client/registry.py``).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, overload

from .errors import MethodNotFoundError
from .instance import Instance
from .method_invoker import (
    InvocationErrorEntry,
    InvocationResult,
    InvocationResultEntry,
    Invoker,
    Target,
    check_timeout,
)
from .method_server import Invocation, LocalMethod, MethodServer, current_invocation
from .registry import Method, Unsubscribe
from .twins import LoopReply, blocking, main_thread_wait, on_io_loop

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


class Methods:
    """``io.methods``: register, invoke and discover interop methods."""

    def __init__(self, session: ClientSession, server: MethodServer, invoker: Invoker) -> None:
        self._session = session
        self._server = server
        self._invoker = invoker

    @property
    def own(self) -> dict[str, LocalMethod]:
        """Method id -> what this client offers (methods and streams)."""
        return self._server.own

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
        await self._server.register(name, handler, **options)

    _register_blocking = blocking(aregister)

    async def register_local(self, local: LocalMethod) -> None:
        """Register a method or stream on the hub and remember it for reconnects."""
        await self._server.register_local(local)

    @on_io_loop
    async def aunregister(self, name: str) -> None:
        """Stop offering the method ``name`` (registered by this client)."""
        await self._server.unregister(name)

    unregister = blocking(aunregister)

    # ------------------------------------------------------------------ invoke

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
        session.check_open()
        running = asyncio.get_running_loop()
        if running is not session.io.loop:  # a kernel's loop: send from here if we can
            reply = LoopReply(running)
            sent = self._invoker.send_from_thread(
                method, arguments, target, timeout, wait_timeout, reply
            )
            if sent is not None:
                return await self._invoker.outcome(sent, reply.future)
        return await self._ainvoke_on_loop(
            method, arguments, target, timeout=timeout, wait_timeout=wait_timeout
        )

    @on_io_loop
    async def _ainvoke_on_loop(
        self,
        method: str | dict[str, Any],
        arguments: dict[str, Any] | None,
        target: Target | None,
        *,
        timeout: float | None,
        wait_timeout: float | None,
    ) -> InvocationResult:
        return await self._invoker.invoke(method, arguments, target, timeout, wait_timeout)

    def invoke(
        self,
        method: str | dict[str, Any],
        arguments: dict[str, Any] | None = None,
        target: Target | None = "best",
        *,
        timeout: float | None = None,
        wait_timeout: float | None = None,
    ) -> InvocationResult:
        """Blocking twin of :meth:`ainvoke` (same arguments)."""
        session = self._session
        session.check_open()
        if not session.io.in_thread:  # a cell, a script, a handler: send from this thread
            reply: concurrent.futures.Future[Any] = concurrent.futures.Future()
            sent = self._invoker.send_from_thread(
                method, arguments, target, timeout, wait_timeout, reply
            )
            if sent is not None:
                with main_thread_wait("invoke"):
                    return self._invoker.wait_outcome(sent, reply)
        return self._invoke_on_loop(
            method, arguments, target, timeout=timeout, wait_timeout=wait_timeout
        )

    _invoke_on_loop = blocking(_ainvoke_on_loop, twin_of="ainvoke")

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
        chosen = await self._invoker.wait_for_targets(name, "best", False, wait)
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
