"""Global domain: hello, authentication, join/leave, tokens, bad input."""

from __future__ import annotations

from hubkit import TOKEN, HubKit

from jupyter_interop.protocol import Reason


def hello(auth: object, application: object = "app") -> dict:
    return {
        "domain": "global",
        "type": "hello",
        "identity": {"application": application},
        "authentication": auth,
    }


def test_welcome_carries_identity_and_domains() -> None:
    kit = HubKit(user="ana", machine="box")
    c = kit.raw()
    replies = c.send(hello({"method": "access-token", "token": TOKEN}))
    welcome = replies[0]
    assert welcome["type"] == "welcome" and welcome["domain"] == "global"
    assert welcome["request_id"] == "r1"
    ident = welcome["resolved_identity"]
    assert ident["user"] == "ana" and ident["machine"] == "box"
    assert ident["application"] == "app"
    assert ident["instance"] == welcome["peer_id"]
    uris = {d["uri"]: d["version"] for d in welcome["available_domains"]}
    assert uris == {"agm": 1, "bus": 1, "context": 2, "metrics": 1}
    # channel contexts exist from the start and are announced right after welcome
    added = [r["name"] for r in replies if r["type"] == "context-added"]
    assert "___channel___Red" in added and len(added) == 10


def test_secret_authentication_and_question_marks() -> None:
    kit = HubKit()
    c = kit.raw()
    msg = hello({"method": "secret", "login": "x", "secret": TOKEN})
    msg["identity"]["instance"] = "?"
    welcome = c.send(msg)[0]
    assert welcome["type"] == "welcome"
    assert welcome["resolved_identity"]["instance"] == welcome["peer_id"]


def test_wrong_or_missing_token_is_refused_and_nothing_else_processed() -> None:
    kit = HubKit()
    for auth in (None, {"method": "access-token", "token": "nope"}, {"method": "secret"}, 7):
        c = kit.raw()
        reply = c.send(hello(auth))[0]
        assert reply["type"] == "error"
        assert reply["reason_uri"] == Reason.AUTH_FAILURE
        assert reply["request_id"] == "r1"
        assert c.conn.close_reason == "authentication failed"
        # anything else from this connection is refused
        reply = c.send({"domain": "agm", "type": "register", "methods": []})[0]
        assert reply["reason_uri"] == Reason.NOT_AUTHENTICATED
    assert kit.hub.peers == {}


def test_hub_without_token_accepts_only_trusted_connections() -> None:
    kit = HubKit(token="")
    c = kit.raw()
    assert c.send(hello({"method": "access-token", "token": ""}))[0]["type"] == "error"
    t = kit.raw(trusted=True)
    assert t.send(hello({"method": "access-token", "token": "whatever"}))[0]["type"] == "welcome"


def test_message_before_hello_refused() -> None:
    kit = HubKit()
    c = kit.raw()
    reply = c.send({"domain": "global", "type": "join", "destination": "agm"})[0]
    assert reply["type"] == "error" and reply["reason_uri"] == Reason.NOT_AUTHENTICATED
    assert c.conn.close_reason == "not authenticated"


def test_second_hello_is_already_seen() -> None:
    kit = HubKit()
    c = kit.client()
    reply = c.send(hello({"method": "access-token", "token": TOKEN}))[0]
    assert reply["reason_uri"] == Reason.ALREADY_SEEN


def test_missing_application_is_an_error_unless_a_notebook_names_it() -> None:
    kit = HubKit()
    c = kit.raw()
    reply = c.send(hello({"method": "access-token", "token": TOKEN}, application=None))[0]
    assert reply["type"] == "error" and "application" in reply["reason"]
    k = kit.raw(trusted=True, kernel_id="k-1", notebook_path="work/Pricing.ipynb")
    welcome = k.send(hello({}, application=None))[0]
    ident = welcome["resolved_identity"]
    assert ident["application"] == "Pricing"
    assert ident["notebookPath"] == "work/Pricing.ipynb" and ident["kernelId"] == "k-1"


def test_notebook_path_overrides_claimed_application() -> None:
    kit = HubKit()
    k = kit.raw(trusted=True, notebook_path="a/B.ipynb")
    welcome = k.send(hello({}, application="I-claim-this"))[0]
    assert welcome["resolved_identity"]["application"] == "B"


def test_join_replies_in_the_joined_domain_and_leave() -> None:
    kit = HubKit()
    c = kit.client("a", "agm")
    for domain in ("bus", "metrics", "context"):
        reply = c.send({"domain": "global", "type": "join", "destination": domain})
        assert reply[-1]["type"] == "success" and reply[-1]["domain"] == domain
    reply = c.send({"domain": "global", "type": "join", "destination": "nope"})[0]
    assert reply["type"] == "error" and reply["reason_uri"] == Reason.UNKNOWN_DOMAIN
    reply = c.send({"domain": "global", "type": "leave", "destination": "bus"})[0]
    assert reply == {"domain": "bus", "type": "success", "request_id": reply["request_id"],
                     "peer_id": c.peer_id}
    reply = c.send({"domain": "bus", "type": "subscribe", "topic": "t"})[0]
    assert reply["reason_uri"] == Reason.NOT_JOINED


def test_create_token_logs_in_a_child() -> None:
    kit = HubKit()
    c = kit.client()
    token = c.send({"domain": "global", "type": "create-token"})[0]
    assert token["type"] == "token" and token["token"]
    child = kit.raw()
    reply = child.send(hello({"method": "gateway-token", "token": token["token"]}))[0]
    assert reply["type"] == "welcome"
    bad = kit.raw()
    assert bad.send(hello({"method": "gateway-token", "token": "x"}))[0]["type"] == "error"


def test_ping_and_metrics_get_no_reply() -> None:
    kit = HubKit()
    c = kit.client("a", "agm", "metrics")
    assert c.send({"domain": "global", "type": "ping"}) == []
    assert c.send({"domain": "metrics", "type": "define", "metrics": []}) == []


def test_bad_input_gets_clear_errors_and_leaves_others_working() -> None:
    kit = HubKit()
    a = kit.client("a")
    b = kit.client("b")
    a.take()
    bad_messages = [
        {"domain": "global"},  # no type
        {"domain": "global", "type": 5},
        {"domain": "nowhere", "type": "x"},
        {"domain": "agm", "type": "frobnicate"},
        {"domain": "agm", "type": "register"},
        {"domain": "agm", "type": "register", "methods": "m"},
        {"domain": "agm", "type": "register", "methods": [{"name": "x"}]},
        {"domain": "agm", "type": "call", "server_id": "nope", "method_id": "1"},
        {"domain": "agm", "type": "yield", "invocation_id": "nope", "result": {}},
        {"domain": "agm", "type": "unsubscribe", "subscription_id": "nope"},
        {"domain": "bus", "type": "publish", "topic": 5, "data": {}},
        {"domain": "global", "type": "update-context", "context_id": "nope", "delta": {}},
        {"domain": "global", "type": "create-context", "name": "x", "lifetime": "forever"},
    ]
    for msg in bad_messages:
        replies = a.send(msg)
        assert len(replies) == 1, (msg, replies)
        reply = replies[0]
        assert reply["type"] == "error", (msg, reply)
        assert reply["reason_uri"] and reply["reason"], reply
    # b still works and a is still connected
    b.send({"domain": "agm", "type": "register", "methods": [{"id": "1", "name": "M"}]})
    a.take()
    a.send({"domain": "agm", "type": "call", "server_id": b.peer_id, "method_id": "1",
            "arguments_kv": {}})
    assert b.one("invoke")["caller_id"] == a.peer_id


def test_error_reply_for_undecodable_frame() -> None:
    from jupyter_interop.protocol import ProtocolError, decode

    kit = HubKit()
    a = kit.client()
    try:
        decode(b"{nope")
    except ProtocolError as e:
        kit.deliver(kit.hub.error_reply(a.conn, None, e))
    reply = a.one("error")
    assert reply["reason_uri"] == Reason.INVALID_MESSAGE and "JSON" in reply["reason"]


def test_claimed_kernel_and_notebook_are_ignored_and_extensions_reach_the_connection() -> None:
    kit = HubKit()
    c = kit.raw()
    msg = hello({"method": "access-token", "token": TOKEN})
    msg["identity"].update(kernelId="k-other", notebookPath="secret.ipynb", user="root2")
    msg["extensions"] = {"jupyter_interop": {"channels": True, "bogus": True}}
    welcome = c.send(msg)[0]
    ident = welcome["resolved_identity"]
    assert "kernelId" not in ident and "notebookPath" not in ident
    assert ident["user"] == kit.hub.user
    assert welcome["extensions"] == {"jupyter_interop": {"channels": True}}
    assert c.conn.attrs["extensions"] == {"channels": True}


def test_every_wire_message_type_has_one_handler_in_the_hubs_table() -> None:
    from jupyter_interop.protocol.wire import (
        AGM_MESSAGE_TYPES,
        BUS_MESSAGE_TYPES,
        CONTEXT_MESSAGE_TYPES,
    )

    hub = HubKit().hub
    assert set(hub.agm.handlers) == set(AGM_MESSAGE_TYPES)
    assert set(hub.bus.handlers) == set(BUS_MESSAGE_TYPES)
    assert set(hub.contexts.handlers) == set(CONTEXT_MESSAGE_TYPES)
