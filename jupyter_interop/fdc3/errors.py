"""FDC3 2.2's error enums, and the errors the Desktop Agent raises with them (docs/FDC3.md).

The enums hold the standard's strings (``ChannelErrorName.NoChannelFound == "NoChannelFound"``;
``str, Enum`` rather than ``StrEnum``, which Python 3.10 lacks). They are FDC3's
``ChannelError``, ``OpenError``, ``ResolveError`` and ``ResultError`` with ``Name`` added: the
package's class names are unique, and ``ChannelError`` is already the client's exception.
Every error raised carries one as ``fdc3_error``: intents raise the ``IntentError``
subclasses of ``client/errors.py`` (named after ``ResolveErrorName`` and ``ResultErrorName``),
channels
raise :class:`Fdc3ChannelError`, ``open`` raises :class:`Fdc3OpenError`; all are
``InteropError``.
"""

from __future__ import annotations

from enum import Enum

from ..client.errors import ChannelError as _ClientChannelError
from ..client.errors import IntentError, InteropError

__all__ = [
    "ChannelErrorName",
    "Fdc3ChannelError",
    "Fdc3OpenError",
    "NoResultReturned",
    "OpenErrorName",
    "ResolveErrorName",
    "ResultErrorName",
]


class ChannelErrorName(str, Enum):
    """FDC3's ``ChannelError`` enum."""

    NoChannelFound = "NoChannelFound"
    AccessDenied = "AccessDenied"
    CreationFailed = "CreationFailed"
    MalformedContext = "MalformedContext"
    ApiTimeout = "ApiTimeout"


class OpenErrorName(str, Enum):
    """FDC3's ``OpenError`` enum."""

    AppNotFound = "AppNotFound"
    ErrorOnLaunch = "ErrorOnLaunch"
    AppTimeout = "AppTimeout"
    ResolverUnavailable = "ResolverUnavailable"
    MalformedContext = "MalformedContext"
    DesktopAgentNotFound = "DesktopAgentNotFound"
    ApiTimeout = "ApiTimeout"


class ResolveErrorName(str, Enum):
    """FDC3's ``ResolveError`` enum (``IntentError.fdc3_error`` holds one of these)."""

    NoAppsFound = "NoAppsFound"
    ResolverUnavailable = "ResolverUnavailable"
    UserCancelled = "UserCancelledResolution"
    ResolverTimeout = "ResolverTimeout"
    TargetAppUnavailable = "TargetAppUnavailable"
    TargetInstanceUnavailable = "TargetInstanceUnavailable"
    IntentDeliveryFailed = "IntentDeliveryFailed"
    MalformedContext = "MalformedContext"
    DesktopAgentNotFound = "DesktopAgentNotFound"
    ApiTimeout = "ApiTimeout"


class ResultErrorName(str, Enum):
    """FDC3's ``ResultError`` enum."""

    NoResultReturned = "NoResultReturned"
    IntentHandlerRejected = "IntentHandlerRejected"
    ApiTimeout = "ApiTimeout"


class Fdc3ChannelError(_ClientChannelError):
    """A channel operation failed; ``fdc3_error`` is a :class:`ChannelErrorName`."""

    def __init__(self, fdc3_error: ChannelErrorName, message: str) -> None:
        super().__init__(message)
        self.fdc3_error = fdc3_error


class Fdc3OpenError(InteropError):
    """``open`` failed; ``fdc3_error`` is an :class:`OpenErrorName`. For an
    ``ErrorOnLaunch`` whose cell raised, ``notebook_path``, ``cell_index``, ``cell_source``
    and ``traceback`` say where (as the client's ``ErrorOnLaunch`` does)."""

    def __init__(
        self,
        fdc3_error: OpenErrorName,
        message: str,
        *,
        notebook_path: str | None = None,
        cell_index: int | None = None,
        cell_source: str | None = None,
        traceback: str | None = None,
    ) -> None:
        super().__init__(message)
        self.fdc3_error = fdc3_error
        self.notebook_path = notebook_path
        self.cell_index = cell_index
        self.cell_source = cell_source
        self.traceback = traceback


class NoResultReturned(IntentError):
    """The intent's handler returned something that is neither a context nor a channel."""

    fdc3_error = ResultErrorName.NoResultReturned
