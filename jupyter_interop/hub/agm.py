"""AGM domain: methods, invocations and streams, routed by dict lookups only.

The federation link's hidden observer (docs/FEDERATION.md, "Streams") subscribes to local
streams for the subscribers of other hubs: it learns the branch its subscription was
accepted on (``stream_id`` in its ``subscribed``), and it gets each item of a branch once,
however many of its subscriptions are on that branch, so an item crosses once per branch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from ..protocol import ProtocolError, Reason, messages
from ..protocol.addressed import Announcement, Readership, Template
from ..protocol.wire import (
    ACCEPTED_TYPE,
    ADD_INTEREST_TYPE,
    AGM_DOMAIN,
    CALL_TYPE,
    DROP_SUBSCRIPTION_TYPE,
    ERROR_TYPE,
    EVENT_MANY_TYPE,
    EVENT_TYPE,
    INVOKE_TYPE,
    METHODS_ADDED_TYPE,
    METHODS_REMOVED_TYPE,
    PEER_ADDED_TYPE,
    PEER_REMOVED_TYPE,
    POST_TYPE,
    PUBLISH_MANY_TYPE,
    PUBLISH_TYPE,
    REGISTER_TYPE,
    REMOVE_INTEREST_TYPE,
    RESULT_TYPE,
    STREAM_ID_KEY,
    SUBSCRIBE_TYPE,
    SUBSCRIPTION_CANCELLED_TYPE,
    UNREGISTER_TYPE,
    UNSUBSCRIBE_TYPE,
    YIELD_TYPE,
)
from ._fields import field, ident, optional
from ._services import Handler, HubServices
from .connection import Outgoing, PeerConn
from .peers import Message, Peer, RegisteredMethod, encoded_methods, with_id

PEER_LEFT_WHILE_WAITING = "Peer has left while waiting for result"
PEER_REMOVED = "Peer has been removed"
METHOD_REMOVED = "Method has been removed"


@dataclass(eq=False)
class Call:
    """One pending invocation: caller's request waiting for the server's yield or error."""

    invocation_id: str
    caller: Peer
    request_id: Any
    server: Peer
    method_id: str


@dataclass(eq=False)
class StreamRoute:
    """One stream subscription as the hub routes it: from the publisher's branch to the
    subscriber. ``stream_id`` (the branch) is None until the publisher accepts it."""

    subscription_id: str
    subscriber: Peer
    request_id: Any
    server: Peer
    method_id: str
    stream_id: str | None = None


class AgmDomain:
    """Interop methods and streams (GW3 ``agm`` domain)."""

    def __init__(self, hub: HubServices) -> None:
        self.hub = hub
        self.calls: dict[str, Call] = {}
        self.subscriptions: dict[str, StreamRoute] = {}
        #: (publisher peer id, stream id) -> subscription id -> subscription
        self.branches: dict[tuple[str, str], dict[str, StreamRoute]] = {}
        #: peer id -> its ``peer-added``, for each agm peer in join order (what a newcomer
        #: learns first); ``_servers``: the same peers -> the ``methods-added`` of all their
        #: methods, or None. Encoded once per peer, not once per newcomer.
        self._added: dict[str, Template] = {}
        self._servers: dict[str, Template | None] = {}
        #: message type -> handler, for the hub's table (``hub/core.py``): one per type of
        #: ``protocol/wire.py:AGM_MESSAGE_TYPES``
        self.handlers: dict[str, Handler] = {
            REGISTER_TYPE: self._register,
            UNREGISTER_TYPE: self._unregister,
            CALL_TYPE: self._call,
            YIELD_TYPE: self._yield,
            ERROR_TYPE: self._error,
            SUBSCRIBE_TYPE: self._subscribe,
            ACCEPTED_TYPE: self._accepted,
            PUBLISH_TYPE: self._publish,
            PUBLISH_MANY_TYPE: self._publish_many,
            POST_TYPE: self._post,
            DROP_SUBSCRIPTION_TYPE: self._drop_subscription,
            UNSUBSCRIBE_TYPE: self._unsubscribe,
        }

    # ------------------------------------------------------------ membership

    @staticmethod
    def _peer_added(new: Peer) -> Template:
        """The ``peer-added`` of ``new``, encoded once for all its recipients."""
        identity = new.identity_json
        fields = {
            "domain": AGM_DOMAIN,
            "type": PEER_ADDED_TYPE,
            "new_peer_id": new.peer_id,
            "identity": orjson.Fragment(identity),
            "meta": orjson.Fragment(new.meta_json),
        }
        # from the parts encoded already: every join needs one per other agm peer
        tail = b"".join(
            (
                b',"new_peer_id":',
                new.peer_id_json,
                b',"identity":',
                identity,
                b',"meta":',
                new.meta_json,
                b"}",
            )
        )
        return Template(fields, tail, subject=new.peer_id)

    @staticmethod
    def _methods_added(server: Peer, methods: bytes) -> Template:
        """``methods``: the definitions' JSON, encoded once for all recipients."""
        fields = {
            "domain": AGM_DOMAIN,
            "type": METHODS_ADDED_TYPE,
            "server_id": server.peer_id,
            "methods": orjson.Fragment(methods),
            "source_type": "local",
        }
        tail = b"".join(
            (
                b',"server_id":',
                server.peer_id_json,
                b',"methods":',
                methods,
                b',"source_type":"local"}',
            )
        )
        return Template(fields, tail, subject=server.peer_id)

    @staticmethod
    def _announce(template: Template, sender: Peer, out: Outgoing) -> None:
        """Tell every agm peer (every reader of announcements, see protocol/addressed.py):
        one item, whatever the number of recipients."""
        out.append((sender.conn, Announcement.of(template)))

    def _announce_removed(
        self, server: Peer, method_ids: list[str], sender: Peer, out: Outgoing
    ) -> None:
        removed = Template(
            {
                "domain": AGM_DOMAIN,
                "type": METHODS_REMOVED_TYPE,
                "server_id": server.peer_id,
                "methods": method_ids,
            },
            subject=server.peer_id,
        )
        self._announce(removed, sender, out)

    def _remember_methods(self, server: Peer) -> None:
        methods = server.methods
        self._servers[server.peer_id] = (
            self._methods_added(server, encoded_methods(methods.values())) if methods else None
        )

    def join(self, peer: Peer, out: Outgoing) -> None:
        """Announce peers both ways, then existing methods, as the Glue42 gateway does: the
        others learn of ``peer``, then ``peer`` of the others and their methods, and from then
        on ``peer`` reads every announcement."""
        joined = self._peer_added(peer)
        if not peer.hidden:
            self._announce(joined, peer, out)  # peer does not read yet: the others only
        backlog = list(self._added.values())
        backlog.extend(filter(None, self._servers.values()))
        out.append((peer.conn, Readership.of(peer.peer_id, peer.peer_id_json, backlog)))
        if not peer.hidden:
            self._added[peer.peer_id] = joined
        self._servers[peer.peer_id] = None

    def detach(self, peer: Peer, out: Outgoing) -> None:
        """The peer left agm: fail its pending calls, cancel its streams, tell the others."""
        for invocation_id in list(peer.serving_calls):
            call = self.calls.pop(invocation_id, None)
            if call is not None:
                call.caller.calling.discard(invocation_id)
                self._fail_call(call, Reason.INVOCATION_FAILURE, PEER_LEFT_WHILE_WAITING, out)
        for invocation_id in list(peer.calling):
            call = self.calls.pop(invocation_id, None)
            if call is not None:
                call.server.serving_calls.discard(invocation_id)
        peer.serving_calls.clear()
        peer.calling.clear()
        for sub_id in list(peer.publishing):
            sub = self.subscriptions.get(sub_id)
            if sub is not None:
                self._cancel_for_subscriber(sub, Reason.PEER_REMOVED, PEER_REMOVED, out)
        for sub_id in list(peer.subscriptions):
            sub = self.subscriptions.get(sub_id)
            if sub is not None:
                self._remove_interest(sub, Reason.PEER_REMOVED, PEER_REMOVED, out)
        # the others only: it stops reading before its own removal is announced
        out.append((peer.conn, Readership.of(peer.peer_id, peer.peer_id_json, None)))
        self._added.pop(peer.peer_id, None)
        self._servers.pop(peer.peer_id, None)
        if peer.methods:
            self._announce_removed(peer, list(peer.methods), peer, out)
        peer.methods.clear()
        if peer.hidden:
            return
        removed = Template(
            {
                "domain": AGM_DOMAIN,
                "type": PEER_REMOVED_TYPE,
                "removed_id": peer.peer_id,
                "reason_uri": Reason.PEER_REMOVED,
                "reason": PEER_REMOVED,
            },
            subject=peer.peer_id,
        )
        self._announce(removed, peer, out)

    # --------------------------------------------------------------- methods

    def _register(self, peer: Peer, msg: Message, out: Outgoing) -> None:
        methods = field(msg, "methods", list)
        added: dict[str, RegisteredMethod] = {}
        for method in methods:
            if not isinstance(method, dict):
                raise ProtocolError(Reason.REGISTRATION_FAILURE, "Each method must be an object")
            method_id = ident(method, "id")
            name = field(method, "name", str)
            if not name:
                raise ProtocolError(Reason.REGISTRATION_FAILURE, "A method needs a non-empty name")
            if method_id in peer.methods or method_id in added:
                raise ProtocolError(
                    Reason.REGISTRATION_FAILURE,
                    f"Method id {method_id} is already registered by this peer",
                )
            added[method_id] = RegisteredMethod(method)
        if len(peer.methods) + len(added) > self.hub.max_methods_per_peer:
            raise ProtocolError(
                Reason.LIMITS_EXCEEDED,
                f"A peer may register at most {self.hub.max_methods_per_peer} methods",
            )
        peer.methods.update(added)
        self._remember_methods(peer)
        # encoded once, not once per recipient (every agm peer gets it, this one too)
        self._announce(self._methods_added(peer, encoded_methods(added.values())), peer, out)
        self.hub.success(out, peer, msg)

    def _unregister(self, peer: Peer, msg: Message, out: Outgoing) -> None:
        ids = [str(i) for i in field(msg, "methods", list)]
        unknown = [i for i in ids if i not in peer.methods]
        if unknown:
            raise ProtocolError(
                Reason.UNREGISTRATION_FAILURE, f"Methods {unknown} are not registered by this peer"
            )
        removed = set(ids)
        for sub_id in list(peer.publishing):
            sub = self.subscriptions[sub_id]
            if sub.method_id in removed:
                self._cancel_for_subscriber(sub, Reason.METHOD_REMOVED, METHOD_REMOVED, out)
        for method_id in ids:
            del peer.methods[method_id]
        self._remember_methods(peer)
        self._announce_removed(peer, ids, peer, out)
        self.hub.success(out, peer, msg)

    def _server_and_method(self, msg: Message, uri: str) -> tuple[Peer, str, RegisteredMethod]:
        server_id = ident(msg, "server_id")
        method_id = ident(msg, "method_id")
        server = self.hub.peers.get(server_id)
        if server is None or AGM_DOMAIN not in server.domains:
            raise ProtocolError(uri, f"Unable to find server with id {server_id}")
        method = server.methods.get(method_id)
        if method is None:
            raise ProtocolError(
                uri,
                f"Unable to find method with id {method_id} on server id {server_id} "
                "registered with this peer",
            )
        return server, method_id, method

    def _call(self, peer: Peer, msg: Message, out: Outgoing) -> None:
        server, method_id, _ = self._server_and_method(msg, Reason.INVOCATION_FAILURE)
        invocation_id = self.hub.new_id("i")
        call = Call(invocation_id, peer, msg.get("request_id"), server, method_id)
        self.calls[invocation_id] = call
        server.serving_calls = with_id(server.serving_calls, invocation_id)
        server.invocations += 1
        peer.calling = with_id(peer.calling, invocation_id)
        invoke: Message = {
            "domain": AGM_DOMAIN,
            "type": INVOKE_TYPE,
            "peer_id": server.peer_id,
            "invocation_id": invocation_id,
            "method_id": method_id,
            "caller_id": peer.peer_id,
            "arguments": msg.get("arguments"),
            "arguments_kv": msg.get("arguments_kv"),
            "context": msg.get("context") or {},
        }
        out.append((server.conn, invoke))

    def _take_call(self, peer: Peer, invocation_id: str) -> Call | None:
        call = self.calls.get(invocation_id)
        if call is None or call.server is not peer:
            return None
        del self.calls[invocation_id]
        peer.serving_calls.discard(invocation_id)
        call.caller.calling.discard(invocation_id)
        return call

    def _yield(self, peer: Peer, msg: Message, out: Outgoing) -> None:
        invocation_id = ident(msg, "invocation_id")
        call = self._take_call(peer, invocation_id)
        if call is None:
            raise ProtocolError(
                Reason.INVOCATION_FAILURE,
                f"No pending invocation {invocation_id} for this peer (caller gone or answered)",
            )
        result = msg.get("result")
        out.append(
            (
                call.caller.conn,
                {
                    "domain": AGM_DOMAIN,
                    "type": RESULT_TYPE,
                    "request_id": call.request_id,
                    "peer_id": call.caller.peer_id,
                    "result": {} if result is None else result,
                },
            )
        )

    def _fail_call(
        self, call: Call, uri: str, reason: str, out: Outgoing, context: Any = None
    ) -> None:
        caller = call.caller
        error = messages.error(AGM_DOMAIN, call.request_id, caller.peer_id, uri, reason, context)
        out.append((caller.conn, error))

    def _error(self, peer: Peer, msg: Message, out: Outgoing) -> None:
        """A server's error: a failed invocation or a rejected subscription (same request_id)."""
        request_id = ident(msg, "request_id")
        reason_uri = optional(msg, "reason_uri", str, Reason.CLIENT_ERROR)
        reason = optional(msg, "reason", str, "")
        call = self._take_call(peer, request_id)
        if call is not None:
            self._fail_call(call, reason_uri, reason, out, msg.get("context"))
            return
        sub = self.subscriptions.get(request_id)
        if sub is not None and sub.server is peer and sub.stream_id is None:
            self._forget(sub)
            self._subscribe_failed(sub, reason_uri, reason, out)
            return
        raise ProtocolError(
            Reason.AGM_FAILURE, f"No pending invocation or subscription {request_id}"
        )

    # --------------------------------------------------------------- streams

    def _subscribe(self, peer: Peer, msg: Message, out: Outgoing) -> None:
        server, method_id, method = self._server_and_method(msg, Reason.SUBSCRIPTION_FAILURE)
        if not method.streaming:
            name = method.definition.get("name")
            raise ProtocolError(Reason.SUBSCRIPTION_FAILURE, f"Method {name!r} is not a stream")
        if len(peer.subscriptions) >= self.hub.max_subscriptions_per_peer:
            raise ProtocolError(
                Reason.LIMITS_EXCEEDED,
                f"A peer may hold at most {self.hub.max_subscriptions_per_peer} subscriptions",
            )
        sub_id = self.hub.new_id("s")
        sub = StreamRoute(sub_id, peer, msg.get("request_id"), server, method_id)
        self.subscriptions[sub_id] = sub
        peer.subscriptions = with_id(peer.subscriptions, sub_id)
        server.publishing = with_id(server.publishing, sub_id)
        out.append(
            (
                server.conn,
                {
                    "domain": AGM_DOMAIN,
                    "type": ADD_INTEREST_TYPE,
                    "peer_id": server.peer_id,
                    "subscription_id": sub_id,
                    "method_id": method_id,
                    "caller_id": peer.peer_id,
                    "arguments": msg.get("arguments"),
                    "arguments_kv": msg.get("arguments_kv") or {},
                    "flags": msg.get("flags") or {},
                    "context": msg.get("context") or {},
                },
            )
        )

    def _own_subscription(self, peer: Peer, msg: Message) -> StreamRoute:
        sub_id = ident(msg, "subscription_id")
        sub = self.subscriptions.get(sub_id)
        if sub is None or sub.server is not peer:
            raise ProtocolError(
                Reason.INVALID_SUBSCRIPTION, f"No subscription {sub_id} on a stream of this peer"
            )
        return sub

    def _accepted(self, peer: Peer, msg: Message, out: Outgoing) -> None:
        sub = self._own_subscription(peer, msg)
        stream_id = ident(msg, "stream_id") if msg.get("stream_id") is not None else ""
        if sub.stream_id is not None:
            raise ProtocolError(
                Reason.INVALID_SUBSCRIPTION,
                f"Subscription {sub.subscription_id} was already accepted",
            )
        sub.stream_id = stream_id
        self.branches.setdefault((peer.peer_id, stream_id), {})[sub.subscription_id] = sub
        subscriber = sub.subscriber
        accepted = messages.subscribed(
            AGM_DOMAIN, sub.request_id, subscriber.peer_id, sub.subscription_id
        )
        if subscriber.hidden:
            accepted[STREAM_ID_KEY] = stream_id
        out.append((subscriber.conn, accepted))

    def _publish(self, peer: Peer, msg: Message, out: Outgoing) -> None:
        stream_id = ident(msg, "stream_id")
        subs = self.branches.get((peer.peer_id, stream_id))
        if not subs:
            return  # pushing to a branch nobody listens to does nothing, as in io.Connect
        data = msg.get("data")
        sequence = msg.get("sequence")
        snapshot = msg.get("snapshot", False)
        links: set[Peer] | None = None
        for sub in subs.values():
            if sub.subscriber.hidden:
                if links is None:
                    links = set()
                elif sub.subscriber in links:
                    continue  # the link's other subscriptions on this branch: once is enough
                links.add(sub.subscriber)
            out.append(_event(sub, data, False, sequence, snapshot))

    def _publish_many(self, peer: Peer, msg: Message, out: Outgoing) -> None:
        """A run of one stream's items (``runs`` extension): routed once for all of them. A
        subscriber that negotiated ``runs`` gets one ``event-many``, any other one ``event``
        per item, exactly what the items published one by one would have given it."""
        if "runs" not in peer.extensions:
            raise ProtocolError(
                Reason.INVALID_MESSAGE, "publish-many needs the 'runs' extension (see hello)"
            )
        stream_id = ident(msg, "stream_id")
        items = msg.get("items")
        if not isinstance(items, list):
            raise ProtocolError(Reason.INVALID_MESSAGE, "publish-many needs a list of items")
        subs = self.branches.get((peer.peer_id, stream_id))
        if not subs or not items:
            return
        links: set[Peer] = set()
        for sub in subs.values():
            subscriber = sub.subscriber
            if subscriber.hidden:
                if subscriber in links:
                    continue  # as in _publish: once per branch for the federation link
                links.add(subscriber)
            if "runs" in subscriber.extensions:
                out.append(
                    (
                        subscriber.conn,
                        {
                            "domain": AGM_DOMAIN,
                            "type": EVENT_MANY_TYPE,
                            "peer_id": subscriber.peer_id,
                            "subscription_id": sub.subscription_id,
                            "items": items,
                        },
                    )
                )
                continue
            out.extend(_event(sub, data, False, None, False) for data in items)

    def _post(self, peer: Peer, msg: Message, out: Outgoing) -> None:
        sub = self._own_subscription(peer, msg)
        if sub.stream_id is None:
            raise ProtocolError(
                Reason.INVALID_SUBSCRIPTION,
                f"Subscription {sub.subscription_id} has not been accepted",
            )
        out.append(
            _event(sub, msg.get("data"), True, msg.get("sequence"), msg.get("snapshot", False))
        )

    def _drop_subscription(self, peer: Peer, msg: Message, out: Outgoing) -> None:
        sub = self._own_subscription(peer, msg)
        if sub.stream_id is None:
            raise ProtocolError(
                Reason.INVALID_SUBSCRIPTION, "Trying to drop a subscription that wasnt established"
            )
        reason = optional(msg, "reason", str, "Server dropped the subscription")
        self._cancel_for_subscriber(sub, Reason.SUBSCRIPTION_FAILURE, reason, out)
        if msg.get("request_id") is not None:
            self.hub.success(out, peer, msg)

    def _unsubscribe(self, peer: Peer, msg: Message, out: Outgoing) -> None:
        sub_id = ident(msg, "subscription_id")
        sub = self.subscriptions.get(sub_id)
        if sub is None or sub.subscriber is not peer:
            raise ProtocolError(Reason.INVALID_SUBSCRIPTION, f"No subscription {sub_id} of yours")
        reason_uri = optional(msg, "reason_uri", str, "") or ""
        reason = optional(msg, "reason", str, "ClientInitiated")
        self._remove_interest(sub, reason_uri, reason, out)
        self.hub.success(out, peer, msg)

    # --------------------------------------------------------------- helpers

    def _forget(self, sub: StreamRoute) -> None:
        self.subscriptions.pop(sub.subscription_id, None)
        sub.subscriber.subscriptions.discard(sub.subscription_id)
        sub.server.publishing.discard(sub.subscription_id)
        if sub.stream_id is not None:
            key = (sub.server.peer_id, sub.stream_id)
            branch = self.branches.get(key)
            if branch is not None:
                branch.pop(sub.subscription_id, None)
                if not branch:
                    del self.branches[key]

    def _subscribe_failed(self, sub: StreamRoute, uri: str, reason: str, out: Outgoing) -> None:
        subscriber = sub.subscriber
        error = messages.error(AGM_DOMAIN, sub.request_id, subscriber.peer_id, uri, reason)
        out.append((subscriber.conn, error))

    def _cancel_for_subscriber(
        self, sub: StreamRoute, uri: str, reason: str, out: Outgoing
    ) -> None:
        """The publisher side ended a subscription: tell the subscriber."""
        self._forget(sub)
        if sub.stream_id is None:
            self._subscribe_failed(sub, Reason.SUBSCRIPTION_FAILURE, reason, out)
            return
        out.append(
            (
                sub.subscriber.conn,
                {
                    "domain": AGM_DOMAIN,
                    "type": SUBSCRIPTION_CANCELLED_TYPE,
                    "peer_id": sub.subscriber.peer_id,
                    "subscription_id": sub.subscription_id,
                    "reason_uri": uri,
                    "reason": reason,
                },
            )
        )

    def _remove_interest(self, sub: StreamRoute, uri: str, reason: str, out: Outgoing) -> None:
        """The subscriber side ended a subscription: tell the publisher."""
        self._forget(sub)
        out.append(
            (
                sub.server.conn,
                {
                    "domain": AGM_DOMAIN,
                    "type": REMOVE_INTEREST_TYPE,
                    "peer_id": sub.server.peer_id,
                    "subscription_id": sub.subscription_id,
                    "method_id": sub.method_id,
                    "caller_id": sub.subscriber.peer_id,
                    "reason_uri": uri,
                    "reason": reason,
                },
            )
        )


def _event(
    sub: StreamRoute, data: Any, oob: bool, sequence: Any, snapshot: Any
) -> tuple[PeerConn, Message]:
    """One stream item for one subscriber: a published one (``oob`` False) or a post."""
    subscriber = sub.subscriber
    return (
        subscriber.conn,
        {
            "domain": AGM_DOMAIN,
            "type": EVENT_TYPE,
            "peer_id": subscriber.peer_id,
            "subscription_id": sub.subscription_id,
            "oob": oob,
            "sequence": sequence,
            "snapshot": snapshot,
            "data": data,
        },
    )
