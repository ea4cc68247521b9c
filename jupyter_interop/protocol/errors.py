"""Reason URIs used on the wire and the exception that carries them."""

from __future__ import annotations

from typing import Any


class Reason:
    """GW3 reason URIs (the ones the Glue42 gateway uses, plus a few of ours for bad input)."""

    # global
    AUTH_FAILURE = "global.errors.authentication.failure"
    ALREADY_SEEN = "global.errors.already_seen"
    LIMITS_EXCEEDED = "global.errors.limits_exceeded"
    #: a message nested deeper than ``protocol.limits.MAX_NESTING`` (refused whole)
    TOO_DEEP = "global.errors.too_deep"
    NOT_AUTHENTICATED = "global.errors.not_authenticated"
    UNHANDLED = "global.errors.unhandled_message"
    INVALID_MESSAGE = "global.errors.invalid_message"
    MISSING_FIELD = "global.errors.missing_field"
    BAD_TYPE = "global.errors.bad_type"
    UNKNOWN_DOMAIN = "global.errors.unknown_domain"
    NOT_JOINED = "global.errors.not_joined"
    # agm
    AGM_FAILURE = "agm.errors.failure"
    AGM_UNHANDLED = "agm.errors.unhandled_message"
    REGISTRATION_FAILURE = "agm.errors.registration.failure"
    UNREGISTRATION_FAILURE = "agm.errors.unregistration.failure"
    INVOCATION_FAILURE = "agm.errors.invocation.failure"
    SUBSCRIPTION_FAILURE = "agm.errors.subscription.failure"
    INVALID_SUBSCRIPTION = "agm.errors.subscription.invalid_subscription"
    #: a method handler in the client raised (the client sends it with its ``error``)
    CLIENT_ERROR = "agm.errors.client_error"
    #: a publisher refused a stream subscription (the URI Glue42's own clients send for it)
    SUBSCRIPTION_REJECTED = "com.tick42.agm.errors.subscription.failure"
    PEER_REMOVED = "agm.peer-removed"
    METHOD_REMOVED = "agm.method-removed"
    # context (the Glue42 gateway prefixes these with the domain the message came on)
    CONTEXT_NOT_AUTHORIZED = "context.errors.not_authorized"
    CONTEXT_BAD_LIFETIME = "context.errors.bad_lifetime"
    CONTEXT_INVALID = "context.errors.invalid_context"
    CONTEXT_FAILURE = "context.errors.failure"
    #: a ``___channel___<Name>`` context whose name, shape or meta breaks the channel rule
    #: (``protocol/channels.py``); refused whole, nothing stored or routed
    CHANNEL_INVALID = "context.errors.invalid_channel"
    CONTEXT_DESTROYED = "context.destroyed"
    CONTEXT_PEER_LEFT = "context.peer-left"
    CONTEXT_UNHANDLED = "context.errors.unhandled_message"
    # bus
    BUS_FAILURE = "bus.errors.failure"
    BUS_INVALID_SUBSCRIPTION = "bus.errors.invalid_subscription"
    BUS_UNHANDLED = "bus.errors.unhandled_message"
    # connection-level
    SLOW_CONSUMER = "global.errors.slow_consumer"
    EVENTS_DROPPED = "global.events_dropped"


class ProtocolError(Exception):
    """A request that cannot be honoured; becomes a GW3 ``error`` reply to its sender.

    ``request`` is the refused message when it was decoded before being refused (a frame
    refused whole after decoding, see ``protocol/limits.py``), so the reply can answer it.
    """

    def __init__(
        self,
        reason_uri: str,
        reason: str,
        context: dict[str, Any] | None = None,
        request: dict[str, Any] | None = None,
    ):
        super().__init__(reason)
        self.reason_uri = reason_uri
        self.reason = reason
        self.context = context
        self.request = request
