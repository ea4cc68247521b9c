"""jupyter_interop: io.Connect (Glue42) interop services between notebooks, scripts and apps."""

from __future__ import annotations

from typing import Any

from ._version import __version__
from .client import (
    ArgumentError,
    AuthenticationError,
    ChannelContext,
    ChannelError,
    ClientClosedError,
    ClosedInfo,
    ConnectionLostError,
    ContextError,
    ContextMeta,
    ContextSubscription,
    DiscoveryError,
    HubUnreachableError,
    Instance,
    Interop,
    InteropError,
    Invocation,
    InvocationError,
    InvocationErrorEntry,
    InvocationResult,
    InvocationResultEntry,
    InvocationTimeoutError,
    Method,
    MethodNotFoundError,
    RegistrationError,
    RemoteError,
    SerializationError,
    Stream,
    StreamData,
    StreamSubscription,
    Subscription,
    SubscriptionError,
    SubscriptionRequest,
    aconnect,
    connect,
    current_invocation,
)

__all__ = [
    "ArgumentError",
    "AuthenticationError",
    "ChannelContext",
    "ChannelError",
    "ClientClosedError",
    "ClosedInfo",
    "ConnectionLostError",
    "ContextError",
    "ContextMeta",
    "ContextSubscription",
    "DiscoveryError",
    "HubUnreachableError",
    "Instance",
    "Interop",
    "InteropError",
    "Invocation",
    "InvocationError",
    "InvocationErrorEntry",
    "InvocationResult",
    "InvocationResultEntry",
    "InvocationTimeoutError",
    "Method",
    "MethodNotFoundError",
    "RegistrationError",
    "RemoteError",
    "SerializationError",
    "Stream",
    "StreamData",
    "StreamSubscription",
    "Subscription",
    "SubscriptionError",
    "SubscriptionRequest",
    "__version__",
    "aconnect",
    "connect",
    "current_invocation",
]


def _jupyter_server_extension_points() -> list[dict[str, Any]]:
    """Tell jupyter_server where the interop hub extension lives."""
    from .server.extension import InteropExtension

    return [{"module": "jupyter_interop.server.extension", "app": InteropExtension}]


# -- the notebook experience: %load_ext jupyter_interop, widgets bound to contexts/channels --
from .notebook import Binding, bind  # noqa: E402

__all__ += [
    "Binding",
    "ChannelSelector",
    "ContextView",
    "InteropViewer",
    "StreamView",
    "bind",
    "load_ipython_extension",
]


def load_ipython_extension(ipython: Any) -> None:
    """``%load_ext jupyter_interop``: register the ``%interop`` magics."""
    from .notebook import load_ipython_extension as load

    load(ipython)


def unload_ipython_extension(ipython: Any) -> None:
    from .notebook import unload_ipython_extension as unload

    unload(ipython)


def __getattr__(name: str) -> Any:
    """The widgets import ipywidgets: loaded on first use (the server never needs them)."""
    if name in ("ChannelSelector", "ContextView", "StreamView", "InteropViewer"):
        from . import notebook

        return getattr(notebook, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
