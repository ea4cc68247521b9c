"""The Python client of the interop hub: methods, streams, contexts, channels and pub/sub.

``import jupyter_interop as ji; io = ji.connect()``. One I/O thread per process runs every
connection (docs/ARCHITECTURE.md, "The client's I/O thread"); each blocking call has an
``a``-prefixed async twin.
"""

from __future__ import annotations

from .api import Interop, aconnect, connect
from .channels import ChannelContext
from .contexts import ContextMeta, ContextSubscription
from .errors import (
    AmbiguousHubError,
    AppTimeout,
    ArgumentError,
    AuthenticationError,
    ChannelError,
    ClientClosedError,
    ConnectionLostError,
    ContextError,
    DiscoveryError,
    ErrorOnLaunch,
    HubUnreachableError,
    IntentDeliveryFailed,
    IntentError,
    IntentHandlerRejected,
    InteropError,
    InvocationError,
    InvocationTimeoutError,
    MalformedContext,
    MethodNotFoundError,
    NoAppsFound,
    RegistrationError,
    RemoteError,
    ResolverTimeout,
    ResolverUnavailable,
    SerializationError,
    SubscriptionError,
    TargetAppUnavailable,
    TargetInstanceUnavailable,
    UserCancelledResolution,
)
from .instance import Instance
from .intents import Intent, IntentHandler, IntentListener, IntentResolution
from .methods import (
    Invocation,
    InvocationErrorEntry,
    InvocationResult,
    InvocationResultEntry,
    current_invocation,
)
from .registry import Method
from .streams import (
    ClosedInfo,
    Stream,
    StreamData,
    StreamSubscription,
    Subscription,
    SubscriptionRequest,
)

__all__ = [
    "AmbiguousHubError",
    "AppTimeout",
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
    "ErrorOnLaunch",
    "HubUnreachableError",
    "Instance",
    "Intent",
    "IntentDeliveryFailed",
    "IntentError",
    "IntentHandler",
    "IntentHandlerRejected",
    "IntentListener",
    "IntentResolution",
    "Interop",
    "InteropError",
    "Invocation",
    "InvocationError",
    "InvocationErrorEntry",
    "InvocationResult",
    "InvocationResultEntry",
    "InvocationTimeoutError",
    "MalformedContext",
    "Method",
    "MethodNotFoundError",
    "NoAppsFound",
    "RegistrationError",
    "RemoteError",
    "ResolverTimeout",
    "ResolverUnavailable",
    "SerializationError",
    "Stream",
    "StreamData",
    "StreamSubscription",
    "Subscription",
    "SubscriptionError",
    "SubscriptionRequest",
    "TargetAppUnavailable",
    "TargetInstanceUnavailable",
    "UserCancelledResolution",
    "aconnect",
    "connect",
    "current_invocation",
]
