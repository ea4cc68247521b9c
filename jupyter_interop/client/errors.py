"""The client's exceptions: one small hierarchy under :class:`InteropError`.

Every failure a user can meet from a cell is one of these, so ``except ji.InteropError`` is
enough to keep a notebook running, and the concrete class says what went wrong without parsing
messages. Argument errors are also ``TypeError``/``ValueError`` so that ordinary Python habits
keep working.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Sequence

    from .discovery import RuntimeHub
    from .method_invoker import InvocationErrorEntry, InvocationResult

__all__ = [
    "AmbiguousHubError",
    "AppTimeout",
    "ArgumentError",
    "AuthenticationError",
    "ChannelError",
    "ClientClosedError",
    "ConnectionLostError",
    "ContextError",
    "DiscoveryError",
    "ErrorOnLaunch",
    "HubUnreachableError",
    "IntentDeliveryFailed",
    "IntentError",
    "IntentHandlerRejected",
    "InteropError",
    "InvocationError",
    "InvocationTimeoutError",
    "MalformedContext",
    "MethodNotFoundError",
    "NoAppsFound",
    "RegistrationError",
    "RemoteError",
    "SerializationError",
    "SubscriptionError",
    "TargetAppUnavailable",
    "TargetInstanceUnavailable",
    "UserCancelledResolution",
]


class InteropError(Exception):
    """Base class of every error raised by the interop client."""


class DiscoveryError(InteropError):
    """No hub could be found: the message lists every place that was tried."""


class AmbiguousHubError(DiscoveryError):
    """Several hubs are running and nothing says which one to use.

    ``hubs`` holds the candidates (:class:`~jupyter_interop.client.discovery.RuntimeHub`); the
    message lists them and how to pick one.
    """

    def __init__(self, message: str, hubs: Sequence[RuntimeHub]) -> None:
        super().__init__(message)
        self.hubs = list(hubs)


class HubUnreachableError(InteropError, ConnectionError):
    """The hub could not be reached within the call's timeout (server down or restarting)."""


class ConnectionLostError(HubUnreachableError):
    """The connection to the hub dropped while this call was waiting for its reply.

    The request may or may not have been executed; it is not retried automatically because an
    invocation is not idempotent in general.
    """


class AuthenticationError(InteropError):
    """The hub refused the ``hello`` (wrong or missing token)."""


class ClientClosedError(InteropError):
    """The client was closed (``io.close()`` or interpreter exit); open a new one."""


class ArgumentError(InteropError, TypeError, ValueError):
    """A call got an argument of the wrong type or value; nothing was sent."""


class SerializationError(ArgumentError):
    """A value cannot be sent (not JSON, a date, bytes, an array or a DataFrame)."""


class RemoteError(InteropError):
    """The hub (or a peer through the hub) answered with a GW3 ``error``."""

    def __init__(self, reason: str, reason_uri: str | None = None, context: Any = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.reason_uri = reason_uri
        self.context = context


class RegistrationError(RemoteError):
    """A method or stream could not be registered or unregistered."""


class ContextError(RemoteError):
    """A shared-context operation failed."""


class ChannelError(InteropError, LookupError):
    """An unknown channel name, or a channel operation while not on a channel."""

    def __str__(self) -> str:  # LookupError would show the repr of the message
        return str(self.args[0]) if self.args else ""


class SubscriptionError(RemoteError):
    """A stream subscription failed: no publisher, rejected, timed out or not restored."""


class InvocationError(RemoteError):
    """An invocation failed on every target.

    ``all_errors`` holds one entry per failed target (``executed_by``, ``message``,
    ``reason_uri``, ``context``); ``result`` is the full :class:`InvocationResult` when the
    call reached at least one target.
    """

    def __init__(
        self,
        reason: str,
        reason_uri: str | None = None,
        context: Any = None,
        *,
        method: str | None = None,
        all_errors: list[InvocationErrorEntry] | None = None,
        result: InvocationResult | None = None,
    ) -> None:
        super().__init__(reason, reason_uri, context)
        self.method = method
        self.all_errors = list(all_errors or [])
        self.result = result

    @property
    def remote_type(self) -> str | None:
        """The exception type raised by a Python handler (``"ValueError"``), if known."""
        context = self.context
        if isinstance(context, dict) and isinstance(context.get("type"), str):
            return context["type"]
        return None


class MethodNotFoundError(InvocationError):
    """No server offered the method (matching the target) within the wait timeout."""


class InvocationTimeoutError(InvocationError, TimeoutError):
    """No reply within the response timeout (the handler may still be running)."""


# ---------------------------------------------------------------------- intents (docs/INTENTS.md)


class IntentError(InteropError):
    """An intent could not be resolved, delivered or answered.

    The subclasses are named after FDC3's ``ResolveError`` and ``ResultError`` values, which
    ``fdc3_error`` holds as a string (what a JS app would see). ``intent`` is the intent's name.
    """

    fdc3_error = ""

    def __init__(self, message: str, *, intent: str | None = None) -> None:
        super().__init__(message)
        self.intent = intent


class NoAppsFound(IntentError):
    """No handler fits the intent (and the context's type)."""

    fdc3_error = "NoAppsFound"


class ResolverUnavailable(IntentError):
    """Several handlers fit and nothing can choose between them (the ``"error"`` policy)."""

    fdc3_error = "ResolverUnavailable"


class UserCancelledResolution(IntentError):
    """The resolver chose no handler."""

    fdc3_error = "UserCancelledResolution"


class ResolverTimeout(IntentError, TimeoutError):
    """The resolver did not choose within the raise's timeout."""

    fdc3_error = "ResolverTimeout"


class TargetAppUnavailable(IntentError):
    """The target names an application that has no fitting handler (or cannot be started)."""

    fdc3_error = "TargetAppUnavailable"


class TargetInstanceUnavailable(IntentError):
    """The target names an instance that has no fitting handler (or it went away)."""

    fdc3_error = "TargetInstanceUnavailable"


class IntentDeliveryFailed(IntentError):
    """The chosen handler could not be reached, or did not answer within the timeout."""

    fdc3_error = "IntentDeliveryFailed"


class MalformedContext(IntentError, ArgumentError):
    """The context is not a dict whose ``type`` is a string, or (checked by
    ``jupyter_interop.fdc3``, docs/FDC3.md) not valid against its type's FDC3 schema; nothing
    was sent.

    ``path`` is the JSON pointer of the failing part of the context and ``schema_path`` that of
    the schema rule it broke, when a schema check found it (else ``None``).
    """

    fdc3_error = "MalformedContext"

    def __init__(
        self,
        message: str,
        *,
        intent: str | None = None,
        schema_path: str | None = None,
        path: str | None = None,
    ) -> None:
        super().__init__(message, intent=intent)
        self.schema_path = schema_path
        self.path = path


class IntentHandlerRejected(IntentError):
    """The handler raised (or its promise rejected); ``cause`` is the invocation's error."""

    fdc3_error = "IntentHandlerRejected"

    def __init__(
        self, message: str, *, intent: str | None = None, cause: InvocationError | None = None
    ) -> None:
        super().__init__(message, intent=intent)
        self.cause = cause


class ErrorOnLaunch(IntentError):
    """A notebook started to serve the intent failed: a cell raised, or its kernel did not
    start. ``notebook_path``, ``cell_index``, ``cell_source`` and ``traceback`` say where."""

    fdc3_error = "ErrorOnLaunch"

    def __init__(
        self,
        message: str,
        *,
        intent: str | None = None,
        notebook_path: str | None = None,
        cell_index: int | None = None,
        cell_source: str | None = None,
        traceback: str | None = None,
    ) -> None:
        super().__init__(message, intent=intent)
        self.notebook_path = notebook_path
        self.cell_index = cell_index
        self.cell_source = cell_source
        self.traceback = traceback


class AppTimeout(IntentError, TimeoutError):
    """A notebook started to serve the intent did not register its handler in time."""

    fdc3_error = "AppTimeout"

    def __init__(
        self, message: str, *, intent: str | None = None, notebook_path: str | None = None
    ) -> None:
        super().__init__(message, intent=intent)
        self.notebook_path = notebook_path
