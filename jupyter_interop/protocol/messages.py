"""GW3 message shapes, the hub's and a peer's, and one builder for each written in several places.

Each ``TypedDict`` below is one message type as the hub sends it (names from
``protocol/wire.py``); ``tests/unit/test_messages.py`` checks that what the hub core writes
keeps to them. A message that more than one place writes has a builder here (one function per
message), so its fields and their order are spelled once: the hub's replies and notices, and
the requests and replies of a peer, which the Python client and the server's own peers (the
app directory, the federation link) all send. Builders return a plain ``dict``: the transport
encodes, coalesces and hands on ``dict[str, Any]``, and the shapes are for the reader and the
type checker.

This module imports only ``protocol/wire.py``: every layer may use it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypedDict

from .wire import (
    ACCEPTED_TYPE,
    ADD_INTEREST_TYPE,
    AGM_DOMAIN,
    BUS_DOMAIN,
    CALL_TYPE,
    CHANNEL_CHANGE_REQUEST_TYPE,
    CHANNEL_MEMBERSHIP_TYPE,
    CONTEXT_ADDED_TYPE,
    CONTEXT_CREATED_TYPE,
    CONTEXT_DESTROYED_TYPE,
    CONTEXT_UPDATED_TYPE,
    DROP_SUBSCRIPTION_TYPE,
    ERROR_TYPE,
    EVENT_MANY_TYPE,
    EVENT_TYPE,
    GLOBAL_DOMAIN,
    HELLO_TYPE,
    INVOKE_TYPE,
    JOIN_TYPE,
    METHODS_ADDED_TYPE,
    METHODS_REMOVED_TYPE,
    PEER_ADDED_TYPE,
    PEER_REMOVED_TYPE,
    POST_TYPE,
    PUBLISH_TYPE,
    REGISTER_TYPE,
    REMOVE_INTEREST_TYPE,
    RESULT_TYPE,
    SUBSCRIBE_CONTEXT_TYPE,
    SUBSCRIBE_TYPE,
    SUBSCRIBED_CONTEXT_TYPE,
    SUBSCRIBED_TYPE,
    SUBSCRIPTION_CANCELLED_TYPE,
    SUCCESS_TYPE,
    TOKEN_TYPE,
    UNREGISTER_TYPE,
    UNSUBSCRIBE_CONTEXT_TYPE,
    UNSUBSCRIBE_TYPE,
    WELCOME_TYPE,
    YIELD_TYPE,
)

__all__ = [
    "SHAPES",
    "Accepted",
    "AddInterest",
    "BusEvent",
    "BusPublish",
    "CallRequest",
    "ChannelChangeRequest",
    "ChannelMembership",
    "ContextAdded",
    "ContextCreated",
    "ContextDestroyed",
    "ContextRequest",
    "ContextUpdated",
    "DropSubscription",
    "Error",
    "EventMany",
    "GatewayToken",
    "Hello",
    "Invoke",
    "Join",
    "MethodsAdded",
    "MethodsRemoved",
    "PeerAdded",
    "PeerError",
    "PeerRemoved",
    "Register",
    "RemoveInterest",
    "Result",
    "StreamEvent",
    "StreamItem",
    "StreamSubscribe",
    "Subscribed",
    "SubscribedContext",
    "SubscriptionCancelled",
    "Success",
    "Unsubscribe",
    "Welcome",
    "Yield",
    "accepted",
    "bus_event",
    "bus_publish",
    "bus_unsubscribe",
    "call",
    "channel_membership",
    "drop_subscription",
    "error",
    "hello",
    "invocation_error",
    "join",
    "register",
    "shape_of",
    "stream_post",
    "stream_publish",
    "stream_refusal",
    "stream_subscribe",
    "stream_unsubscribe",
    "subscribe_context",
    "subscribed",
    "success",
    "unregister",
    "unsubscribe_context",
    "yield_result",
]

Message = dict[str, Any]


class _Addressed(TypedDict):
    """Every message the hub writes names its domain, its type and its recipient."""

    domain: str
    type: str
    peer_id: str | None


class _Reply(_Addressed):
    """A reply carries the ``request_id`` of the request it answers."""

    request_id: Any


# ------------------------------------------------------------------------- any domain


class Success(_Reply, total=False):
    """A request done; some carry more (``version`` after a context update)."""

    version: int


class _ErrorFields(_Reply):
    reason_uri: str
    reason: str


class Error(_ErrorFields, total=False):
    """A request refused or failed (``reason_uri``: ``protocol/errors.py:Reason``)."""

    context: Any


# ----------------------------------------------------------------------------- global


class Welcome(_Reply, total=False):
    """The answer to a successful ``hello``; ``extensions`` only when some were accepted."""

    resolved_identity: dict[str, Any]
    available_domains: list[dict[str, Any]]
    options: dict[str, Any]
    extensions: dict[str, Any]


class GatewayToken(_Reply):
    """A gateway token for a child process (``create-token``)."""

    token: str


class ChannelMembership(_Addressed):
    """Which channels a peer is on now (``channels`` extension): ``channels`` all of them in
    the order joined (several in multi-channel mode), ``channel`` the last (None: none)."""

    member_id: str
    application: Any
    channel: str | None
    channels: list[str]


class ChannelChangeRequest(_Addressed):
    """Asks a peer to move to ``channel`` (``move-to-channel`` from ``requested_by``)."""

    channel: str | None
    requested_by: str


# -------------------------------------------------------------------------------- agm


class PeerAdded(_Addressed):
    new_peer_id: str
    identity: dict[str, Any]
    meta: dict[str, Any]


class PeerRemoved(_Addressed):
    removed_id: str
    reason_uri: str
    reason: str


class MethodsAdded(_Addressed):
    server_id: str
    methods: list[dict[str, Any]]
    source_type: str


class MethodsRemoved(_Addressed):
    server_id: str
    methods: list[str]


class Invoke(_Addressed):
    """A call for the server that registered the method."""

    invocation_id: str
    method_id: str
    caller_id: str
    arguments: Any
    arguments_kv: Any
    context: dict[str, Any]


class Result(_Reply):
    """The server's ``yield``, for the caller."""

    result: Any


class AddInterest(_Addressed):
    """A subscription request, for the publisher."""

    subscription_id: str
    method_id: str
    caller_id: str
    arguments: Any
    arguments_kv: dict[str, Any]
    flags: dict[str, Any]
    context: dict[str, Any]


class RemoveInterest(_Addressed):
    """A subscriber left or unsubscribed, for the publisher."""

    subscription_id: str
    method_id: str
    caller_id: str
    reason_uri: str
    reason: str


class Subscribed(_Reply):
    """A stream subscription accepted (``agm``) or a topic subscription made (``bus``)."""

    subscription_id: str


class StreamEvent(_Addressed):
    """One stream item for one subscriber: published (``oob`` False) or posted to it."""

    subscription_id: str
    oob: bool
    sequence: Any
    snapshot: Any
    data: Any


class EventMany(_Addressed):
    """A run of one stream's items for a subscriber with the ``runs`` extension."""

    subscription_id: str
    items: list[Any]


class SubscriptionCancelled(_Addressed):
    """The publisher side ended a subscription."""

    subscription_id: str
    reason_uri: str
    reason: str


# -------------------------------------------------------------------------------- bus

BusEvent = TypedDict(
    "BusEvent",
    {
        "domain": str,
        "type": str,
        "peer_id": str | None,
        "subscription_id": str,
        "publisher-identity": dict[str, Any],
        "topic": str,
        "data": Any,
    },
)
BusEvent.__doc__ = "A topic message for one subscription (GW3 spells one key with a hyphen)."


# ---------------------------------------------------------------------------- context


class ContextAdded(_Addressed):
    """A context exists (sent to every peer when created, and after ``welcome``)."""

    creator_id: str | None
    context_id: str
    name: str


class ContextCreated(_Reply):
    context_id: str


class SubscribedContext(_Reply):
    """The snapshot a new member starts from (also the answer to creating an existing name)."""

    context_id: str
    name: str
    data: dict[str, Any]
    version: int
    updater_id: str | None
    updated_at: float


class ContextUpdated(_Addressed):
    """A delta for every member but its writer."""

    updater_id: str
    context_id: str
    delta: dict[str, Any]
    version: int


class ContextDestroyed(_Addressed):
    context_id: str
    name: str
    reason_uri: str
    reason: str


#: message type -> its shape; ``subscribed`` and ``event`` per domain (see :func:`shape_of`)
SHAPES: dict[str, type] = {
    SUCCESS_TYPE: Success,
    ERROR_TYPE: Error,
    WELCOME_TYPE: Welcome,
    TOKEN_TYPE: GatewayToken,
    CHANNEL_MEMBERSHIP_TYPE: ChannelMembership,
    CHANNEL_CHANGE_REQUEST_TYPE: ChannelChangeRequest,
    PEER_ADDED_TYPE: PeerAdded,
    PEER_REMOVED_TYPE: PeerRemoved,
    METHODS_ADDED_TYPE: MethodsAdded,
    METHODS_REMOVED_TYPE: MethodsRemoved,
    INVOKE_TYPE: Invoke,
    RESULT_TYPE: Result,
    ADD_INTEREST_TYPE: AddInterest,
    REMOVE_INTEREST_TYPE: RemoveInterest,
    SUBSCRIBED_TYPE: Subscribed,
    EVENT_TYPE: StreamEvent,
    EVENT_MANY_TYPE: EventMany,
    SUBSCRIPTION_CANCELLED_TYPE: SubscriptionCancelled,
    CONTEXT_ADDED_TYPE: ContextAdded,
    CONTEXT_CREATED_TYPE: ContextCreated,
    SUBSCRIBED_CONTEXT_TYPE: SubscribedContext,
    CONTEXT_UPDATED_TYPE: ContextUpdated,
    CONTEXT_DESTROYED_TYPE: ContextDestroyed,
}


def shape_of(message: Message) -> type | None:
    """The shape ``message`` must keep to (None: not a message the hub writes)."""
    mtype = message.get("type")
    if not isinstance(mtype, str):
        return None
    if mtype == EVENT_TYPE and message.get("domain") == BUS_DOMAIN:
        return BusEvent
    return SHAPES.get(mtype)


# --------------------------------------------------------------------------- builders


def _plain(message: Any) -> Message:
    """The message as the transport takes it (a plain dict; the shape is for the checker).
    ``message`` is returned as it is: no ``typing.cast`` call, every reply passes here."""
    return message


def success(domain: str, request_id: Any, peer_id: str | None) -> Message:
    """``success`` for the request ``request_id`` of ``peer_id``, in the request's domain."""
    reply: Success = {
        "domain": domain,
        "type": SUCCESS_TYPE,
        "request_id": request_id,
        "peer_id": peer_id,
    }
    return _plain(reply)


def error(
    domain: str,
    request_id: Any,
    peer_id: str | None,
    reason_uri: str,
    reason: str,
    context: Any = None,
) -> Message:
    """``error`` for the request ``request_id``; ``context`` only when there is one."""
    reply: Error = {
        "domain": domain,
        "type": ERROR_TYPE,
        "request_id": request_id,
        "peer_id": peer_id,
        "reason_uri": reason_uri,
        "reason": reason,
    }
    if context is not None:
        reply["context"] = context
    return _plain(reply)


def subscribed(domain: str, request_id: Any, peer_id: str, subscription_id: str) -> Message:
    """``subscribed``: a stream subscription accepted (``agm``) or a topic subscription made
    (``bus``)."""
    reply: Subscribed = {
        "domain": domain,
        "type": SUBSCRIBED_TYPE,
        "request_id": request_id,
        "peer_id": peer_id,
        "subscription_id": subscription_id,
    }
    return _plain(reply)


def channel_membership(
    peer_id: str, member_id: str, application: Any, channels: Sequence[str]
) -> Message:
    """Tell ``peer_id`` that ``member_id`` is on ``channels`` now (empty: on none)."""
    notice: ChannelMembership = {
        "domain": GLOBAL_DOMAIN,
        "type": CHANNEL_MEMBERSHIP_TYPE,
        "peer_id": peer_id,
        "member_id": member_id,
        "application": application,
        "channel": channels[-1] if channels else None,
        "channels": list(channels),
    }
    return _plain(notice)


# ------------------------------------------------------------------ what a peer sends
# (``request_id`` and the sender's ``peer_id`` are added by whoever sends: each sender
# numbers its own requests)


class _Sent(TypedDict):
    """Every message a peer sends names its domain and its type."""

    domain: str
    type: str


class _HelloFields(_Sent):
    identity: Any
    authentication: Any


class Hello(_HelloFields, total=False):
    """A peer's login: who it is and how it proves it, the extensions it asks for
    (``{"jupyter_interop": {...}}``) and, from the federation link, the remote peer it stands
    for (``federation``)."""

    extensions: Any
    federation: Any


class Join(_Sent):
    """Join a domain (``destination``: ``agm``, ``bus``, or ``metrics``, which does nothing)."""

    destination: str


class Register(_Sent):
    """Offer methods (their definitions, each with its ``id``); ``unregister`` names ids."""

    methods: list[Any]


class Yield(_Sent, total=False):
    """A server's answer to ``invoke`` (``peer_id`` only when the builder was given it)."""

    invocation_id: Any
    peer_id: str
    result: Any


class PeerError(_Sent, total=False):
    """A server's failed answer to ``invoke`` (``request_id`` and ``invocation_id`` both the
    invocation's) or a publisher's refusal of a stream subscription (``request_id`` the
    subscription's)."""

    request_id: Any
    invocation_id: Any
    reason_uri: str
    reason: str
    context: Any


class Accepted(_Sent):
    """A publisher accepts a stream subscription on one of its branches' stream ids."""

    subscription_id: str
    stream_id: str


class DropSubscription(_Sent):
    """A publisher ends one subscriber's subscription, saying why."""

    subscription_id: str
    reason: str


class _CallFields(_Sent):
    server_id: str
    method_id: Any
    arguments_kv: Any


class CallRequest(_CallFields, total=False):
    """Invoke a method of one server (the federation link also passes ``arguments`` and the
    caller's ``context`` on)."""

    request_id: Any
    arguments: Any
    context: Any


class ContextRequest(_Sent):
    """A request about one context by its id (``subscribe-context``,
    ``unsubscribe-context``)."""

    context_id: str


class StreamSubscribe(_Sent, total=False):
    """Subscribe to the stream ``method_id`` of the peer ``server_id``."""

    request_id: Any
    server_id: Any
    method_id: Any
    arguments: Any
    arguments_kv: Any
    flags: dict[str, Any]
    context: dict[str, Any]


class StreamItem(_Sent, total=False):
    """One item a publisher sends: to a branch (``publish``, by ``stream_id``) or to one
    subscriber (``post``, by ``subscription_id``)."""

    stream_id: str
    subscription_id: str
    data: Any
    sequence: Any
    snapshot: Any


class BusPublish(_Sent, total=False):
    """A message on a topic; ``routing_key`` and ``target_identity`` narrow who gets it."""

    topic: str
    data: Any
    routing_key: str
    target_identity: dict[str, Any]


class Unsubscribe(_Sent, total=False):
    """Leave a stream subscription (``agm``, with the reason the publisher is told) or a
    topic subscription (``bus``)."""

    subscription_id: Any
    reason_uri: str
    reason: str


def hello(identity: Any, authentication: Any, **fields: Any) -> Message:
    """A peer's ``hello``; ``fields`` are the rest (``extensions``, ``federation``)."""
    message: Hello = {
        "domain": GLOBAL_DOMAIN,
        "type": HELLO_TYPE,
        "identity": identity,
        "authentication": authentication,
    }
    return {**message, **fields}


def join(domain: str) -> Message:
    """Join ``domain`` (``agm``, ``bus``; ``metrics`` is accepted and does nothing)."""
    message: Join = {"domain": GLOBAL_DOMAIN, "type": JOIN_TYPE, "destination": domain}
    return _plain(message)


def register(methods: list[Any]) -> Message:
    """Offer ``methods`` (their definitions, each with its ``id``)."""
    message: Register = {"domain": AGM_DOMAIN, "type": REGISTER_TYPE, "methods": methods}
    return _plain(message)


def unregister(method_ids: list[str]) -> Message:
    """Stop offering the methods with these ids."""
    message: Register = {"domain": AGM_DOMAIN, "type": UNREGISTER_TYPE, "methods": method_ids}
    return _plain(message)


def yield_result(invocation_id: Any, result: Any, peer_id: str | None = None) -> Message:
    """A server's answer to ``invoke``; ``peer_id`` when the sender does not add it itself."""
    message: Yield = {"domain": AGM_DOMAIN, "type": YIELD_TYPE, "invocation_id": invocation_id}
    if peer_id is not None:
        message["peer_id"] = peer_id
    message["result"] = result
    return _plain(message)


def invocation_error(
    invocation_id: Any, reason_uri: str, reason: str, context: Any = None
) -> Message:
    """A server's failed answer to ``invoke``: GW3 names the invocation in ``request_id``
    (what the hub reads); ``invocation_id`` repeats it. ``context`` only when there is one."""
    message: PeerError = {
        "domain": AGM_DOMAIN,
        "type": ERROR_TYPE,
        "request_id": invocation_id,
        "invocation_id": invocation_id,
        "reason_uri": reason_uri,
        "reason": reason,
    }
    if context is not None:
        message["context"] = context
    return _plain(message)


def stream_refusal(subscription_id: str, reason_uri: str, reason: str) -> Message:
    """A publisher's refusal of a stream subscription (``add-interest``)."""
    message: PeerError = {
        "domain": AGM_DOMAIN,
        "type": ERROR_TYPE,
        "request_id": subscription_id,
        "reason_uri": reason_uri,
        "reason": reason,
    }
    return _plain(message)


def accepted(subscription_id: str, stream_id: str) -> Message:
    """A publisher's acceptance of a stream subscription on the branch of ``stream_id``."""
    message: Accepted = {
        "domain": AGM_DOMAIN,
        "type": ACCEPTED_TYPE,
        "subscription_id": subscription_id,
        "stream_id": stream_id,
    }
    return _plain(message)


def drop_subscription(subscription_id: str, reason: str) -> Message:
    """A publisher's end of one subscription (``reason`` reaches the subscriber)."""
    message: DropSubscription = {
        "domain": AGM_DOMAIN,
        "type": DROP_SUBSCRIPTION_TYPE,
        "subscription_id": subscription_id,
        "reason": reason,
    }
    return _plain(message)


def subscribe_context(context_id: Any) -> Message:
    """Follow a context: the reply holds its data, updates follow."""
    message: ContextRequest = {
        "domain": GLOBAL_DOMAIN,
        "type": SUBSCRIBE_CONTEXT_TYPE,
        "context_id": context_id,
    }
    return _plain(message)


def unsubscribe_context(context_id: Any) -> Message:
    """Stop following a context."""
    message: ContextRequest = {
        "domain": GLOBAL_DOMAIN,
        "type": UNSUBSCRIBE_CONTEXT_TYPE,
        "context_id": context_id,
    }
    return _plain(message)


def stream_unsubscribe(subscription_id: Any, reason: str | None = None) -> Message:
    """Leave a stream subscription; ``reason`` (with an empty ``reason_uri``, as io.Connect's
    clients send it) reaches the publisher."""
    message: Unsubscribe = {
        "domain": AGM_DOMAIN,
        "type": UNSUBSCRIBE_TYPE,
        "subscription_id": subscription_id,
    }
    if reason is not None:
        message["reason_uri"] = ""
        message["reason"] = reason
    return _plain(message)


def bus_unsubscribe(subscription_id: Any) -> Message:
    """Leave a topic subscription."""
    message: Unsubscribe = {
        "domain": BUS_DOMAIN,
        "type": UNSUBSCRIBE_TYPE,
        "subscription_id": subscription_id,
    }
    return _plain(message)


def call(server_id: Any, method_id: Any, arguments_kv: Any, **fields: Any) -> Message:
    """Invoke method ``method_id`` of the peer ``server_id`` (``fields``: ``request_id``,
    ``arguments``, ``context``)."""
    message: CallRequest = {
        "domain": AGM_DOMAIN,
        "type": CALL_TYPE,
        "server_id": server_id,
        "method_id": method_id,
        "arguments_kv": arguments_kv,
    }
    return {**message, **fields} if fields else _plain(message)


def stream_subscribe(server_id: Any, method_id: Any, **fields: Any) -> Message:
    """Subscribe to stream ``method_id`` of ``server_id`` (``fields``: ``request_id``,
    ``arguments_kv``, ``arguments``, ``flags``, ``context``)."""
    message: StreamSubscribe = {
        "domain": AGM_DOMAIN,
        "type": SUBSCRIBE_TYPE,
        "server_id": server_id,
        "method_id": method_id,
    }
    return {**message, **fields}


def stream_publish(stream_id: str, data: Any, **fields: Any) -> Message:
    """One item to every subscriber of the branch ``stream_id`` (``fields``: ``sequence``,
    ``snapshot``). Per item on the publisher's hot path: one dict, merged only with fields."""
    message: StreamItem = {
        "domain": AGM_DOMAIN,
        "type": PUBLISH_TYPE,
        "stream_id": stream_id,
        "data": data,
    }
    return {**message, **fields} if fields else _plain(message)


def stream_post(subscription_id: str, data: Any, **fields: Any) -> Message:
    """One item to one subscriber only (``fields``: ``sequence``, ``snapshot``)."""
    message: StreamItem = {
        "domain": AGM_DOMAIN,
        "type": POST_TYPE,
        "subscription_id": subscription_id,
        "data": data,
    }
    return {**message, **fields} if fields else _plain(message)


def bus_publish(
    topic: str,
    data: Any,
    routing_key: str | None = None,
    target_identity: dict[str, Any] | None = None,
    **fields: Any,
) -> Message:
    """Publish ``data`` on ``topic``; ``routing_key`` and ``target_identity`` only when
    given; ``fields`` are what a federation link adds (who published, for which topic)."""
    message: BusPublish = {"domain": BUS_DOMAIN, "type": PUBLISH_TYPE, "topic": topic, "data": data}
    if routing_key is not None:
        message["routing_key"] = routing_key
    if target_identity is not None:
        message["target_identity"] = target_identity
    return {**message, **fields} if fields else _plain(message)


def bus_event(
    peer_id: str | None, publisher_identity: Any, topic: str, data: Any, **fields: Any
) -> Message:
    """A topic message the hub sends to ``peer_id``: to a subscriber (``fields``:
    ``subscription_id``) or to a federation link (``fields``: ``routing_key``,
    ``target_identity``, what the other hubs filter on). A plain dict: the link's form
    has no ``subscription_id``, which :class:`BusEvent` requires."""
    message: Message = {
        "domain": BUS_DOMAIN,
        "type": EVENT_TYPE,
        "peer_id": peer_id,
        "publisher-identity": publisher_identity,
        "topic": topic,
        "data": data,
    }
    message.update(fields)  # once per subscriber: no second dict
    return message
