"""Property tests: any sequence of (possibly nonsensical) messages keeps the hub consistent.

Whatever peers send, every reply is a well-formed GW3 message, every error names a reason, and
after all peers leave the hub holds no calls, subscriptions or members.
"""

from __future__ import annotations

from hubkit import HubKit
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

json_scalars = st.one_of(st.none(), st.booleans(), st.integers(-5, 5), st.text(max_size=4))
json_values = st.recursive(
    json_scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=3), inner, max_size=3)
    ),
    max_leaves=6,
)
ids = st.one_of(st.sampled_from(["0", "1", "2"]), st.integers(0, 2), json_scalars)
TYPES = {
    "agm": ["register", "unregister", "call", "yield", "error", "subscribe", "accepted",
            "publish", "post", "drop-subscription", "unsubscribe", "bogus"],
    "global": ["join", "leave", "create-context", "subscribe-context", "update-context",
               "unsubscribe-context", "destroy-context", "create-token", "ping", "hello",
               "channel-changed", "move-to-channel"],
    "bus": ["publish", "subscribe", "unsubscribe"],
    "weird": ["x"],
}


@st.composite
def messages(draw: st.DrawFn) -> tuple[int, dict]:
    domain = draw(st.sampled_from(sorted(TYPES)))
    msg: dict = {"domain": domain, "type": draw(st.sampled_from(TYPES[domain]))}
    for key in ("server_id", "method_id", "invocation_id", "subscription_id", "stream_id",
                "context_id", "request_id", "target"):
        if draw(st.booleans()):
            msg[key] = draw(ids)
    for key in ("methods", "data", "delta", "result", "arguments_kv", "topic", "name",
                "destination", "lifetime", "channel", "reason"):
        if draw(st.booleans()):
            msg[key] = draw(
                st.one_of(
                    json_values,
                    st.sampled_from(["agm", "bus", "retained", "ref-counted", "ownership", "Red",
                                     "t.*", "t.x"]),
                    st.just([{"id": "0", "name": "M", "flags": {"streaming": True}}]),
                    st.just({"commands": [{"type": "set", "path": "a.b", "value": 1}]}),
                )
            )
    return draw(st.integers(0, 2)), msg


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(messages(), max_size=40), st.lists(st.integers(0, 2), max_size=3))
def test_random_traffic_keeps_hub_consistent(traffic: list, deaths: list) -> None:
    kit = HubKit()
    clients = [kit.client(f"app{i}", "agm", "bus") for i in range(3)]
    for who, msg in traffic:
        out = kit.hub.handle(clients[who].conn, dict(msg))
        for _conn, reply in out:
            assert isinstance(reply.get("type"), str) and isinstance(reply.get("domain"), str)
            if reply["type"] == "error":
                assert reply["reason_uri"] and isinstance(reply["reason"], str)
        kit.deliver(out)
    for who in deaths:
        clients[who].close()
    for client in clients:
        client.close()
    hub = kit.hub
    assert hub.peers == {} and all(not m for m in hub._members.values())
    assert hub.agm.calls == {} and hub.agm.subscriptions == {} and hub.agm.branches == {}
    assert hub.bus.subscriptions == {} and hub.bus.exact == {} and hub.bus.wildcards == {}
    assert all(not ctx.members for ctx in hub.contexts.by_id.values())
