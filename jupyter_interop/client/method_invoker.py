"""The invoking side of methods: choose the targets, call them, gather their outcomes.

:class:`Invoker` waits for servers of a method to appear (the registry's ``changed`` event,
no polling), sends one GW3 ``call`` per chosen target and folds the replies into an
:class:`InvocationResult`, or the error ``client/methods.py`` describes when every target
failed. Streams use the same waiting to pick their publishers.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..protocol import messages
from .codec import unwrap_value
from .connection import RequestTimeout
from .errors import (
    ArgumentError,
    ConnectionLostError,
    InvocationError,
    InvocationTimeoutError,
    MethodNotFoundError,
    RemoteError,
)
from .instance import Instance, InstanceFilter, normalize_filter
from .registry import MethodInfo

if TYPE_CHECKING:
    from .session import ClientSession

log = logging.getLogger("jupyter_interop.client")

__all__ = [
    "InvocationErrorEntry",
    "InvocationResult",
    "InvocationResultEntry",
    "Invoker",
    "SentCall",
    "Target",
    "check_timeout",
    "parse_target",
]

Target = str | dict[str, Any] | Instance | list[dict[str, Any] | Instance]


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


class Invoker:
    """Invocations of other peers' (and our own) methods."""

    def __init__(self, session: ClientSession) -> None:
        self._session = session

    async def invoke(
        self,
        method: str | dict[str, Any],
        arguments: dict[str, Any] | None,
        target: Target | None,
        timeout: float | None,
        wait_timeout: float | None,
    ) -> InvocationResult:
        """On the loop: what :meth:`Methods.ainvoke` documents."""
        name, arguments, parsed, response_timeout, wait, payload = self._checked(
            method, arguments, target, timeout, wait_timeout
        )
        conn = self._session.conn
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
        return _gathered(name, arguments, outcomes)

    def _checked(
        self,
        method: str | dict[str, Any],
        arguments: dict[str, Any] | None,
        target: Target | None,
        timeout: float | None,
        wait_timeout: float | None,
    ) -> tuple[str, dict[str, Any], str | list[InstanceFilter], float, float, Any]:
        """An invocation's arguments checked, before anything is sent or waited for: (the
        method's name, the arguments, the parsed target, the reply timeout, the wait for a
        server, the prepared payload). Raises ArgumentError or SerializationError."""
        settings = self._session.settings
        name = _method_name(method)
        arguments = _check_arguments(arguments)
        parsed = parse_target(target)
        response_timeout = check_timeout(timeout, settings.invoke_timeout, "timeout")
        wait = check_timeout(wait_timeout, settings.method_wait_timeout, "wait_timeout")
        payload = self._session.conn.codec.prepare(arguments)  # a bad value fails now
        return name, arguments, parsed, response_timeout, wait, payload

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
                _call_message(server, info, payload), timeout, f"invocation of {info.name!r}"
            )
        except (RequestTimeout, RemoteError, ConnectionLostError) as error:
            return _failed(server, info, arguments, timeout, error)
        return InvocationResultEntry(
            server, unwrap_value(reply.get("result")), info.name, arguments
        )

    # ------------------------------------------------------------------ from another thread

    def send_from_thread(
        self,
        method: str | dict[str, Any],
        arguments: dict[str, Any] | None,
        target: Target | None,
        timeout: float | None,
        wait_timeout: float | None,
        reply: Any,
    ) -> SentCall | None:
        """From a thread other than the I/O thread (a kernel's loop, a cell, a handler):
        when the client is connected and the target picks one server at once (the common
        case), send the call from here; its reply settles ``reply`` on the I/O thread
        (``Connection.request_threadsafe``). Argument errors are raised here, as
        :meth:`invoke` raises them. None: nothing was sent, run :meth:`invoke` on the loop
        (it waits for the connection or a server, or calls several targets)."""
        session = self._session
        name, arguments, parsed, response_timeout, _, payload = self._checked(
            method, arguments, target, timeout, wait_timeout
        )
        conn = session.conn
        if not conn.connected.is_set():
            return None
        registry = session.registry
        try:  # the registry is the loop's: read it here, or give up if it changes meanwhile
            chosen = registry.select(registry.candidates(method, False), parsed, conn.peer_id)
        except RuntimeError:  # "changed size during iteration"
            return None
        if len(chosen) != 1:
            return None
        server, info = chosen[0]
        request_id = conn.request_threadsafe(
            _call_message(server, info, payload),
            reply,
            response_timeout,
            f"invocation of {info.name!r}",
        )
        if request_id is None:
            return None
        return SentCall(request_id, name, server, info, arguments, response_timeout)

    async def outcome(self, sent: SentCall, reply: asyncio.Future[Any]) -> InvocationResult:
        """The result of a call :meth:`send_from_thread` sent, awaited on the caller's loop."""
        try:
            message = await reply
        except (RequestTimeout, RemoteError, ConnectionLostError) as error:
            return self._sent_outcome(sent, error)
        finally:
            self._session.conn.forget(sent.request_id)
        return self._sent_outcome(sent, message)

    def wait_outcome(
        self, sent: SentCall, reply: concurrent.futures.Future[Any]
    ) -> InvocationResult:
        """The result of a call :meth:`send_from_thread` sent, waited for on this thread (the
        request's own timeout, expired on the I/O loop, bounds the wait)."""
        try:
            message = reply.result()
        except (RequestTimeout, RemoteError, ConnectionLostError) as error:
            return self._sent_outcome(sent, error)
        finally:
            self._session.conn.forget(sent.request_id)
        return self._sent_outcome(sent, message)

    @staticmethod
    def _sent_outcome(sent: SentCall, reply: dict[str, Any] | Exception) -> InvocationResult:
        entry: InvocationResultEntry | InvocationErrorEntry
        if isinstance(reply, Exception):
            entry = _failed(sent.server, sent.info, sent.arguments, sent.timeout, reply)
        else:
            entry = InvocationResultEntry(
                sent.server, unwrap_value(reply.get("result")), sent.info.name, sent.arguments
            )
        return _gathered(sent.name, sent.arguments, [entry])


@dataclass(frozen=True)
class SentCall:
    """A call :meth:`Invoker.send_from_thread` sent: what its outcome is reported with."""

    request_id: str
    name: str
    server: Instance
    info: MethodInfo
    arguments: dict[str, Any]
    timeout: float


def _call_message(server: Instance, info: MethodInfo, payload: Any) -> dict[str, Any]:
    """The GW3 ``call`` of ``info`` on ``server`` (``payload``: prepared arguments)."""
    return messages.call(server.peer_id, info.id, payload)


def _failed(
    server: Instance,
    info: MethodInfo,
    arguments: dict[str, Any],
    timeout: float,
    error: Exception,
) -> InvocationErrorEntry:
    """One target's failure: no reply in time, an error reply, or the connection lost."""
    if isinstance(error, RequestTimeout):
        return InvocationErrorEntry(
            server,
            info.name,
            arguments,
            f"Invocation timeout ({timeout * 1000:.0f} ms) reached for method name: "
            f"{info.name}, target instance: {server!r}",
            "timeout",
        )
    if isinstance(error, RemoteError):
        reason = error.reason + _argument_hint(error.context, server, info, arguments)
        return InvocationErrorEntry(
            server, info.name, arguments, reason, error.reason_uri, error.context
        )
    return InvocationErrorEntry(server, info.name, arguments, str(error), "connection")


def _method_name(method: Any) -> str:
    """The name of the method to invoke: a name, or a definition dict with one."""
    if isinstance(method, str):
        if not method:
            raise ArgumentError("The method name must not be empty")
        return method
    if isinstance(method, dict) and isinstance(method.get("name"), str):
        return str(method["name"])
    raise ArgumentError(f"method must be a name or a definition dict with a name, not {method!r}")


def _check_arguments(arguments: Any) -> dict[str, Any]:
    if arguments is None:
        return {}
    if not isinstance(arguments, dict):
        raise ArgumentError(
            f"The method arguments must be a dict (keyword arguments), not "
            f"{type(arguments).__name__}"
        )
    return arguments


def _gathered(
    name: str,
    arguments: dict[str, Any],
    outcomes: list[InvocationResultEntry | InvocationErrorEntry],
) -> InvocationResult:
    """Every target's outcome as one result; raises when every target failed."""
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
        raise _failure(name, errors, result)
    return result


def _failure(name: str, errors: list[InvocationErrorEntry], result: InvocationResult) -> Exception:
    """The error of an invocation that failed on every target."""
    error = errors[0]
    if all(e.reason_uri == "connection" for e in errors):
        return ConnectionLostError(error.message)
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
    return cls(
        reason,
        error.reason_uri,
        error.context,
        method=name,
        all_errors=errors,
        result=result,
    )


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
