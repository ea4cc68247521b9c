"""What the hub core writes keeps to the shapes of protocol/messages.py.

One session through every domain (methods, streams, bus, contexts, channels, tokens, a peer
leaving) on the socket-free hub; each message any client received must have every required
key of its shape and no key the shape does not name, and every shape must have been seen.
"""

from __future__ import annotations

from typing import Any

from hubkit import TOKEN, HubKit

from jupyter_interop.protocol import messages
from jupyter_interop.protocol.wire import BUS_DOMAIN, EVENT_TYPE

EXTENSIONS = {"channels": True, "runs": True, "batch": True}


class RecordingKit(HubKit):
    """A HubKit that also keeps every message any client received, in order."""

    def __init__(self) -> None:
        super().__init__()
        self.received: list[dict[str, Any]] = []

    def deliver(self, out: list[Any]) -> None:
        before = {client: len(client.inbox) for client in self.clients.values()}
        super().deliver(out)
        for client, count in before.items():
            self.received.extend(client.inbox[count:])


def method(method_id: int, name: str, streaming: bool = False) -> dict[str, Any]:
    flags = {"streaming": True} if streaming else {}
    return {"id": method_id, "name": name, "flags": flags}


def session(kit: HubKit) -> None:
    server = kit.client("server", extensions=EXTENSIONS)
    caller = kit.client("caller", extensions=EXTENSIONS)
    plain = kit.client("plain")
    server.send(
        {"domain": "agm", "type": "register", "methods": [method(1, "Add"), method(2, "Px", True)]}
    )
    call = {"domain": "agm", "type": "call", "server_id": server.peer_id, "method_id": 1}
    caller.send({**call, "arguments_kv": {"a": 1}})
    (invoke,) = [m for m in server.inbox if m["type"] == "invoke"]
    server.send({"domain": "agm", "type": "yield", "invocation_id": invoke["invocation_id"]})
    caller.send(dict(call))
    invoke = [m for m in server.inbox if m["type"] == "invoke"][-1]
    server.send(
        {"domain": "agm", "type": "error", "request_id": invoke["invocation_id"], "reason": "no"}
    )
    subscribe = {"domain": "agm", "type": "subscribe", "server_id": server.peer_id, "method_id": 2}
    for subscriber in (caller, plain, caller):
        subscriber.send(dict(subscribe))
    interests = [m for m in server.inbox if m["type"] == "add-interest"]
    for interest in interests[:2]:
        server.send(
            {
                "domain": "agm",
                "type": "accepted",
                "subscription_id": interest["subscription_id"],
                "stream_id": "s",
            }
        )
    server.send({"domain": "agm", "type": "publish", "stream_id": "s", "data": {"px": 1}})
    server.send({"domain": "agm", "type": "publish-many", "stream_id": "s", "items": [{}, {}]})
    first, second, third = (i["subscription_id"] for i in interests)
    server.send({"domain": "agm", "type": "post", "subscription_id": first, "data": {}})
    server.send({"domain": "agm", "type": "drop-subscription", "subscription_id": first})
    plain.send({"domain": "agm", "type": "unsubscribe", "subscription_id": second})
    server.send({"domain": "agm", "type": "error", "request_id": third, "reason": "refused"})
    plain.send({"domain": "bus", "type": "subscribe", "topic": "t.*"})
    caller.send({"domain": "bus", "type": "publish", "topic": "t.x", "data": {"n": 1}})
    created = caller.send({"domain": "global", "type": "create-context", "name": "c", "data": {}})
    (reply,) = [m for m in created if m["type"] == "context-created"]
    context = {"domain": "global", "context_id": reply["context_id"]}
    server.send({**context, "type": "subscribe-context"})
    caller.send({**context, "type": "update-context", "delta": {"added": {"k": 1}}})
    caller.send({**context, "type": "destroy-context"})
    server.send({"domain": "global", "type": "channel-changed", "channel": "Red"})
    caller.send({"domain": "global", "type": "move-to-channel", "target": server.peer_id})
    caller.send({"domain": "global", "type": "create-token"})
    kit.hello("late")
    server.close()


def test_every_message_the_hub_writes_has_its_shape() -> None:
    kit = RecordingKit()
    session(kit)
    seen: set[type] = set()
    for message in kit.received:
        shape = messages.shape_of(message)
        assert shape is not None, message
        required, optional = shape.__required_keys__, shape.__optional_keys__
        keys = set(message)
        assert required <= keys, (shape.__name__, required - keys, message)
        assert keys <= required | optional, (shape.__name__, keys - required - optional)
        seen.add(shape)
    every = set(messages.SHAPES.values()) | {messages.BusEvent}
    assert seen == every, [s.__name__ for s in every - seen]


def test_bus_events_have_their_own_shape() -> None:
    event = {"domain": BUS_DOMAIN, "type": EVENT_TYPE}
    assert messages.shape_of(event) is messages.BusEvent
    assert messages.shape_of({**event, "domain": "agm"}) is messages.StreamEvent
    assert messages.shape_of({"type": 3}) is None


def test_a_peer_written_with_the_builders_serves_and_calls_through_the_hub() -> None:
    """hello, join, register, call, yield_result, invocation_error, stream_refusal, accepted,
    drop_subscription and unregister as protocol/messages.py builds them are what the hub
    core accepts from a peer."""
    kit = HubKit()
    server = kit.raw()
    hello = messages.hello({"application": "built"}, {"method": "access-token", "token": TOKEN})
    (welcome,) = [m for m in server.send(hello) if m["type"] == "welcome"]
    server.peer_id = welcome["peer_id"]
    for domain in ("agm", "bus", "metrics"):
        assert [r["type"] for r in server.send(messages.join(domain))][-1] == "success"
    server.take()
    caller = kit.client("caller")
    methods = [method(1, "Sum"), method(2, "Ticks", streaming=True)]
    assert server.send(messages.register(methods))[-1]["type"] == "success"
    caller.take()

    def call(arguments: dict[str, Any]) -> dict[str, Any]:
        caller.send(messages.call(server.peer_id, "1", arguments))
        return server.one("invoke")

    invoke = call({"a": 1})
    server.send(messages.yield_result(invoke["invocation_id"], {"sum": 1}))
    assert caller.one("result")["result"] == {"sum": 1}
    invoke = call({"a": 2})
    uri = "agm.errors.client_error"
    server.send(messages.invocation_error(invoke["invocation_id"], uri, "no", {"x": 1}))
    failed = caller.one("error")
    assert (failed["reason"], failed["context"]) == ("no", {"x": 1})

    caller.send({"domain": "agm", "type": "subscribe", "server_id": server.peer_id,
                 "method_id": "2"})  # fmt: skip
    interest = server.one("add-interest")
    server.send(messages.stream_refusal(interest["subscription_id"], "agm.errors.x", "refused"))
    assert caller.one("error")["reason"] == "refused"
    caller.send({"domain": "agm", "type": "subscribe", "server_id": server.peer_id,
                 "method_id": "2"})  # fmt: skip
    interest = server.one("add-interest")
    server.send(messages.accepted(interest["subscription_id"], "branch-1"))
    subscribed = caller.one("subscribed")
    server.send(messages.drop_subscription(interest["subscription_id"], "closed"))
    cancelled = caller.one("subscription-cancelled")
    assert cancelled["subscription_id"] == subscribed["subscription_id"]

    assert server.send(messages.unregister(["1", "2"]))[-1]["type"] == "success"
    assert [m["methods"] for m in caller.take("methods-removed")] == [["1", "2"]]


BUILT = [
    (messages.hello({"application": "a"}, {"method": "access-token", "token": "t"}), "Hello"),
    (messages.hello({}, {}, extensions={"jupyter_interop": {"batch": True}}), "Hello"),
    (messages.join("agm"), "Join"),
    (messages.register([{"id": "1", "name": "M"}]), "Register"),
    (messages.unregister(["1"]), "Register"),
    (messages.yield_result("i1", {"x": 1}), "Yield"),
    (messages.yield_result("i1", {"x": 1}, "p1"), "Yield"),
    (messages.invocation_error("i1", "agm.errors.client_error", "no"), "PeerError"),
    (messages.invocation_error("i1", "agm.errors.client_error", "no", {}), "PeerError"),
    (messages.stream_refusal("s1", "agm.errors.x", "no"), "PeerError"),
    (messages.accepted("s1", "b1"), "Accepted"),
    (messages.drop_subscription("s1", "closed"), "DropSubscription"),
    (messages.subscribe_context("c1"), "ContextRequest"),
    (messages.unsubscribe_context("c1"), "ContextRequest"),
    (messages.stream_unsubscribe("s1"), "Unsubscribe"),
    (messages.stream_unsubscribe("s1", "ClientInitiated"), "Unsubscribe"),
    (messages.bus_unsubscribe("s1"), "Unsubscribe"),
    (messages.call("p1", "1", {"a": 1}), "CallRequest"),
    (messages.call("p1", "1", {}, request_id="r", arguments=[], context={}), "CallRequest"),
]


def test_what_a_peer_sends_keeps_to_its_shape() -> None:
    for message, name in BUILT:
        shape = getattr(messages, name)
        required, optional = shape.__required_keys__, shape.__optional_keys__
        keys = set(message)
        assert required <= keys, (name, required - keys, message)
        assert keys <= required | optional, (name, keys - required - optional)
