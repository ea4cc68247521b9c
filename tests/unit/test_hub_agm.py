"""AGM domain: registration, discovery announcements, invocations, streams and peer death."""

from __future__ import annotations

from hubkit import Client, HubKit

from jupyter_interop.protocol import Reason


def register(c: Client, *methods: dict) -> list[dict]:
    return c.send({"domain": "agm", "type": "register", "methods": list(methods)})


def stream_def(mid: str, name: str) -> dict:
    return {"id": mid, "name": name, "flags": {"metadata": {}, "streaming": True}}


def test_join_announces_peers_both_ways_then_methods_then_success() -> None:
    kit = HubKit()
    a = kit.client("a")
    register(a, {"id": "0", "name": "A.M"})
    b = kit.client("b", "agm")  # not yet joined: client() joins and clears; redo by hand
    assert a.one("peer-added")["new_peer_id"] == b.peer_id
    c = kit.raw()
    c.send({"domain": "global", "type": "hello", "identity": {"application": "c"},
            "authentication": {"method": "access-token", "token": "test-token"}})
    c.peer_id = kit.hub.peer_for(c.conn).peer_id
    replies = c.send({"domain": "global", "type": "join", "destination": "agm"})
    types = [(r["type"], r.get("new_peer_id") or r.get("server_id")) for r in replies]
    assert types == [
        ("peer-added", a.peer_id),
        ("peer-added", b.peer_id),
        ("methods-added", a.peer_id),
        ("success", None),
    ]
    added = replies[0]
    assert added["identity"]["application"] == "a" and added["meta"] == {"local": True}
    assert replies[-1]["domain"] == "agm"


def test_register_announces_to_everyone_including_registrant_before_success() -> None:
    kit = HubKit()
    a, b = kit.client("a"), kit.client("b")
    a.take()
    replies = register(a, {"id": "0", "name": "Pricing.Quote", "flags": {"metadata": {"x": 1}}})
    assert [r["type"] for r in replies] == ["methods-added", "success"]
    assert replies[0]["server_id"] == a.peer_id
    seen = b.one("methods-added")
    assert seen["server_id"] == a.peer_id and seen["methods"][0]["name"] == "Pricing.Quote"
    # the same id twice is refused
    reply = register(a, {"id": "0", "name": "Other"})[0]
    assert reply["type"] == "error" and reply["reason_uri"] == Reason.REGISTRATION_FAILURE


def test_method_limit() -> None:
    kit = HubKit(max_methods_per_peer=2)
    a = kit.client("a")
    register(a, {"id": "0", "name": "x"}, {"id": "1", "name": "y"})
    reply = register(a, {"id": "2", "name": "z"})[0]
    assert reply["reason_uri"] == Reason.LIMITS_EXCEEDED
    assert len(kit.hub.peers[a.peer_id].methods) == 2


def test_call_invoke_yield_result() -> None:
    kit = HubKit()
    server, caller = kit.client("server"), kit.client("caller")
    register(server, {"id": "7", "name": "Add"})
    server.take()
    caller.take()
    assert caller.send({"domain": "agm", "type": "call", "request_id": "q1",
                        "server_id": server.peer_id, "method_id": "7",
                        "arguments_kv": {"a": 1, "b": 2}}) == []
    invoke = server.one("invoke")
    assert invoke["method_id"] == "7" and invoke["caller_id"] == caller.peer_id
    assert invoke["arguments_kv"] == {"a": 1, "b": 2} and invoke["domain"] == "agm"
    # the JS client fills request_id of a yield with a random id: key on invocation_id
    server.send({"domain": "agm", "type": "yield", "request_id": "random",
                 "invocation_id": invoke["invocation_id"], "result": {"sum": 3}})
    result = caller.one("result")
    assert result == {"domain": "agm", "type": "result", "request_id": "q1",
                      "peer_id": caller.peer_id, "result": {"sum": 3}}
    # a second yield for the same invocation is an error for the server only
    reply = server.send({"domain": "agm", "type": "yield",
                         "invocation_id": invoke["invocation_id"], "result": {}})[0]
    assert reply["type"] == "error" and caller.inbox == []


def test_calling_own_method_routes_back() -> None:
    kit = HubKit()
    a = kit.client("a")
    register(a, {"id": "0", "name": "Self"})
    a.take()
    (invoke,) = a.send({"domain": "agm", "type": "call", "request_id": "q",
                        "server_id": a.peer_id, "method_id": "0", "arguments_kv": {}})
    assert invoke["type"] == "invoke"
    (result,) = a.send({"domain": "agm", "type": "yield", "invocation_id": invoke["invocation_id"],
                        "result": {"ok": True}})
    assert result["type"] == "result" and result["result"] == {"ok": True}


def test_handler_error_forwards_reason_and_context() -> None:
    kit = HubKit()
    server, caller = kit.client("server"), kit.client("caller")
    register(server, {"id": "0", "name": "Boom"})
    caller.send({"domain": "agm", "type": "call", "request_id": "q", "server_id": server.peer_id,
                 "method_id": "0", "arguments_kv": {}})
    invoke = server.one("invoke")
    server.send({"domain": "agm", "type": "error", "request_id": invoke["invocation_id"],
                 "reason_uri": Reason.CLIENT_ERROR, "reason": "ValueError: bad",
                 "context": {"_value": "bad"}})
    err = caller.one("error")
    assert err["request_id"] == "q" and err["reason"] == "ValueError: bad"
    assert err["reason_uri"] == Reason.CLIENT_ERROR and err["context"] == {"_value": "bad"}


def test_unknown_method_and_stale_id() -> None:
    kit = HubKit()
    server, caller = kit.client("server"), kit.client("caller")
    reply = caller.send({"domain": "agm", "type": "call", "server_id": server.peer_id,
                         "method_id": "9", "arguments_kv": {}})[-1]
    assert reply["type"] == "error" and reply["reason_uri"] == Reason.INVOCATION_FAILURE
    assert "Unable to find method with id 9" in reply["reason"]


def test_server_death_fails_pending_calls_at_once() -> None:
    kit = HubKit()
    server, caller, other = kit.client("server"), kit.client("caller"), kit.client("other")
    register(server, {"id": "0", "name": "Slow"}, {"id": "1", "name": "Slow2"})
    for c in (caller, other):
        c.take()
    for rid in ("q1", "q2"):
        caller.send({"domain": "agm", "type": "call", "request_id": rid,
                     "server_id": server.peer_id, "method_id": "0", "arguments_kv": {}})
    server.close()
    errors = caller.take("error")
    assert sorted(e["request_id"] for e in errors) == ["q1", "q2"]
    for e in errors:
        assert e["reason_uri"] == Reason.INVOCATION_FAILURE
        assert e["reason"] == "Peer has left while waiting for result"
    for c in (caller, other):
        types = [m["type"] for m in c.take()]
        assert types == ["methods-removed", "peer-removed"], types
    assert kit.hub.agm.calls == {}
    assert server.peer_id not in kit.hub.peers


def test_caller_death_drops_its_calls_and_late_yield_is_harmless() -> None:
    kit = HubKit()
    server, caller = kit.client("server"), kit.client("caller")
    register(server, {"id": "0", "name": "M"})
    caller.send({"domain": "agm", "type": "call", "request_id": "q", "server_id": server.peer_id,
                 "method_id": "0", "arguments_kv": {}})
    invoke = server.one("invoke")
    caller.close()
    assert kit.hub.agm.calls == {}
    server.take()
    reply = server.send({"domain": "agm", "type": "yield",
                         "invocation_id": invoke["invocation_id"], "result": {}})
    assert reply[0]["type"] == "error"  # told, not crashed


def test_unregister_removes_and_cancels_stream_subscriptions() -> None:
    kit = HubKit()
    pub, sub = kit.client("pub"), kit.client("sub")
    register(pub, {"id": "0", "name": "M"}, stream_def("1", "Ticks"))
    sub.take()
    sub.send({"domain": "agm", "type": "subscribe", "request_id": "s", "server_id": pub.peer_id,
              "method_id": "1", "arguments_kv": {}})
    add = pub.one("add-interest")
    pub.send({"domain": "agm", "type": "accepted", "subscription_id": add["subscription_id"],
              "stream_id": "0"})
    sub.take()
    replies = pub.send({"domain": "agm", "type": "unregister", "methods": ["1"]})
    assert [r["type"] for r in replies] == ["methods-removed", "success"]
    cancel = sub.one("subscription-cancelled")
    assert cancel["reason_uri"] == Reason.METHOD_REMOVED
    assert cancel["reason"] == "Method has been removed"
    assert sub.one("methods-removed")["methods"] == ["1"]
    reply = pub.send({"domain": "agm", "type": "unregister", "methods": ["1"]})[0]
    assert reply["reason_uri"] == Reason.UNREGISTRATION_FAILURE


def subscribe(kit: HubKit, pub: Client, sub: Client, rid: str, args: dict | None = None) -> dict:
    sub.send({"domain": "agm", "type": "subscribe", "request_id": rid, "server_id": pub.peer_id,
              "method_id": "1", "arguments_kv": args or {}})
    return pub.one("add-interest")


def test_stream_subscribe_accept_publish_branches_post() -> None:
    kit = HubKit()
    pub, s1, s2 = kit.client("pub"), kit.client("s1"), kit.client("s2")
    register(pub, stream_def("1", "Prices"))
    for c in (pub, s1, s2):
        c.take()
    add1 = subscribe(kit, pub, s1, "a", {"symbol": "AAPL"})
    assert add1["arguments_kv"] == {"symbol": "AAPL"} and add1["caller_id"] == s1.peer_id
    assert isinstance(add1["subscription_id"], str)
    add2 = subscribe(kit, pub, s2, "b")
    pub.send({"domain": "agm", "type": "accepted", "subscription_id": add1["subscription_id"],
              "stream_id": "AAPL-branch"})
    pub.send({"domain": "agm", "type": "accepted", "subscription_id": add2["subscription_id"],
              "stream_id": "default"})
    assert s1.one("subscribed") == {"domain": "agm", "type": "subscribed", "request_id": "a",
                                    "peer_id": s1.peer_id,
                                    "subscription_id": add1["subscription_id"]}
    assert s2.one("subscribed")["request_id"] == "b"
    assert pub.send({"domain": "agm", "type": "publish", "stream_id": "AAPL-branch",
                     "data": {"px": 1}}) == []
    ev = s1.one("event")
    assert ev["data"] == {"px": 1} and ev["oob"] is False
    assert ev["subscription_id"] == add1["subscription_id"]
    assert s2.inbox == []
    pub.send({"domain": "agm", "type": "publish", "stream_id": "nobody", "data": {"px": 2}})
    assert s1.inbox == [] and s2.inbox == []
    pub.send({"domain": "agm", "type": "post", "subscription_id": add2["subscription_id"],
              "data": {"hello": "you"}})
    ev = s2.one("event")
    assert ev["oob"] is True and ev["data"] == {"hello": "you"}


def test_stream_reject_reaches_subscriber() -> None:
    kit = HubKit()
    pub, sub = kit.client("pub"), kit.client("sub")
    register(pub, stream_def("1", "S"))
    add = subscribe(kit, pub, sub, "r")
    sub.take()
    pub.send({"domain": "agm", "type": "error", "request_id": add["subscription_id"],
              "reason_uri": "com.tick42.agm.errors.subscription.failure",
              "reason": "Subscription rejected by user. no access"})
    err = sub.one("error")
    assert err["request_id"] == "r" and "no access" in err["reason"]
    assert kit.hub.agm.subscriptions == {}


def test_subscribe_to_non_stream_is_refused() -> None:
    kit = HubKit()
    pub, sub = kit.client("pub"), kit.client("sub")
    register(pub, {"id": "1", "name": "Plain"})
    sub.take()
    reply = sub.send({"domain": "agm", "type": "subscribe", "server_id": pub.peer_id,
                      "method_id": "1", "arguments_kv": {}})[0]
    assert reply["type"] == "error" and "not a stream" in reply["reason"]


def test_drop_subscription_and_unsubscribe() -> None:
    kit = HubKit()
    pub, sub = kit.client("pub"), kit.client("sub")
    register(pub, stream_def("1", "S"))
    add = subscribe(kit, pub, sub, "r")
    reply = pub.send({"domain": "agm", "type": "drop-subscription",
                      "subscription_id": add["subscription_id"], "reason": "x"})[0]
    assert "wasnt established" in reply["reason"]
    pub.send({"domain": "agm", "type": "accepted", "subscription_id": add["subscription_id"],
              "stream_id": "0"})
    sub.take()
    pub.send({"domain": "agm", "type": "drop-subscription",
              "subscription_id": add["subscription_id"], "reason": "Server dropping"})
    cancelled = sub.one("subscription-cancelled")
    assert cancelled["reason"] == "Server dropping"
    add = subscribe(kit, pub, sub, "r2")
    pub.send({"domain": "agm", "type": "accepted", "subscription_id": add["subscription_id"],
              "stream_id": "0"})
    sub.take()
    reply = sub.send({"domain": "agm", "type": "unsubscribe",
                      "subscription_id": add["subscription_id"], "reason_uri": "",
                      "reason": "ClientInitiated"})
    assert reply[0]["type"] == "success"
    removed = pub.one("remove-interest")
    assert removed["subscription_id"] == add["subscription_id"]
    assert removed["caller_id"] == sub.peer_id and removed["method_id"] == "1"
    pub.send({"domain": "agm", "type": "publish", "stream_id": "0", "data": {"x": 1}})
    assert sub.inbox == []


def test_publisher_death_cancels_subscriptions_and_pending_requests() -> None:
    kit = HubKit()
    pub, sub = kit.client("pub"), kit.client("sub")
    register(pub, stream_def("1", "S"))
    accepted = subscribe(kit, pub, sub, "r1")
    pub.send({"domain": "agm", "type": "accepted", "subscription_id":
              accepted["subscription_id"], "stream_id": "0"})
    subscribe(kit, pub, sub, "r2")  # never accepted
    sub.take()
    pub.close()
    cancel = sub.one("subscription-cancelled")
    assert cancel["subscription_id"] == accepted["subscription_id"]
    assert cancel["reason_uri"] == Reason.PEER_REMOVED
    pending = sub.one("error")
    assert pending["request_id"] == "r2"
    assert kit.hub.agm.subscriptions == {} and kit.hub.agm.branches == {}


def test_subscriber_death_tells_publisher() -> None:
    kit = HubKit()
    pub, sub = kit.client("pub"), kit.client("sub")
    register(pub, stream_def("1", "S"))
    add = subscribe(kit, pub, sub, "r")
    pub.send({"domain": "agm", "type": "accepted", "subscription_id": add["subscription_id"],
              "stream_id": "0"})
    pub.take()
    sub.close()
    removed = pub.one("remove-interest")
    assert removed["subscription_id"] == add["subscription_id"]
    assert removed["reason_uri"] == Reason.PEER_REMOVED
    assert pub.one("peer-removed")["removed_id"] == sub.peer_id
    assert kit.hub.agm.branches == {}


def test_subscription_limit() -> None:
    kit = HubKit(max_subscriptions_per_peer=1)
    pub, sub = kit.client("pub"), kit.client("sub")
    register(pub, stream_def("1", "S"))
    subscribe(kit, pub, sub, "r")
    sub.take()
    reply = sub.send({"domain": "agm", "type": "subscribe", "server_id": pub.peer_id,
                      "method_id": "1", "arguments_kv": {}})[0]
    assert reply["reason_uri"] == Reason.LIMITS_EXCEEDED


def test_leave_agm_is_like_death_for_agm_only() -> None:
    kit = HubKit()
    a, b = kit.client("a"), kit.client("b")
    register(a, {"id": "0", "name": "M"})
    b.take()
    a.send({"domain": "global", "type": "leave", "destination": "agm"})
    assert [m["type"] for m in b.take()] == ["methods-removed", "peer-removed"]
    assert a.peer_id in kit.hub.peers
