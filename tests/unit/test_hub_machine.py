"""A stateful property test of the hub core (no sockets): peers join, register, call, answer,
subscribe, update, publish, die and reconnect in any order.

Each simulated client keeps what a real client keeps: its outstanding requests, the contexts it
follows (snapshot, then every delta in arrival order, its own on its ``success``, as the Python
client does) and the bus events it got. After every step:

- every request is answered at most once; a call whose server is gone, or that its server
  answered, is answered exactly once; a call still pending is known to the hub;
- no route (call, bus subscription, context membership, held reply, domain index) names a peer
  that is gone;
- every client that has no context request in flight holds exactly the hub's data of every
  context it follows;
- every index agrees with a brute-force recomputation from the peers' own state.

The hub runs on a real ContextStore in either acknowledgement mode (or none), so replies held
for the disk are part of every run: ``commit`` flushes the store and routes what it released.
"""

from __future__ import annotations

import itertools
import shutil
import tempfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    consumes,
    initialize,
    invariant,
    multiple,
    precondition,
    rule,
)

from jupyter_interop.hub import InteropHub, PeerConn
from jupyter_interop.hub.store import ContextStore
from jupyter_interop.protocol import decode, encode
from jupyter_interop.protocol.addressed import Fanout
from jupyter_interop.protocol.deltas import apply_delta

TOKEN = "machine-token"
CONTEXT_NAMES = ("alpha", "beta")
TOPICS = ("md.a", "md.b", "news")
PATTERNS = ("md.a", "md.*", "news", "md.>")
#: replies that answer a request (carry its request_id)
ANSWERS = frozenset(
    {"welcome", "success", "error", "result", "context-created", "subscribed-context", "subscribed"}
)

json_leaf = st.one_of(st.none(), st.booleans(), st.integers(-3, 3), st.sampled_from(["x", "y"]))
keys = st.sampled_from(["a", "b"])
deltas = st.one_of(
    st.builds(lambda d: {"updated": d}, st.dictionaries(keys, json_leaf, min_size=1, max_size=2)),
    st.builds(lambda k: {"removed": k}, st.lists(keys, min_size=1, max_size=2)),
    st.builds(lambda d: {"reset": d}, st.dictionaries(keys, json_leaf, max_size=2)),
    st.builds(
        lambda k, v: {"commands": [{"type": "set", "path": f"n.{k}", "value": v}]}, keys, json_leaf
    ),
)


@dataclass(eq=False)
class SimClient:
    """One client connection and what it has seen."""

    name: str
    conn: PeerConn
    peer_id: str = ""
    alive: bool = True
    ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    #: request id -> what it was (for the answer it gets)
    pending: dict[str, tuple[str, Any]] = field(default_factory=dict)
    answered: Counter[str] = field(default_factory=Counter)
    #: context id -> data as this client knows it (contexts it follows)
    contexts: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: invocations it was asked to serve and has not answered
    invocations: list[str] = field(default_factory=list)
    #: (bus publish number, subscription id) -> times received
    events: Counter[tuple[int, str]] = field(default_factory=Counter)
    #: pattern -> subscription id, for the subscriptions it holds
    bus_subscribed: dict[str, str] = field(default_factory=dict)


@dataclass(eq=False)
class SimCall:
    caller: SimClient
    request_id: str
    server: SimClient
    answered_by_server: bool = False


class HubMachine(RuleBasedStateMachine):
    clients = Bundle("clients")

    def __init__(self) -> None:
        super().__init__()
        self.tmp = Path(tempfile.mkdtemp(prefix="hub-machine-"))
        self.store: ContextStore | None = None
        self.hub: InteropHub | None = None
        self.by_conn: dict[PeerConn, SimClient] = {}
        self.all_clients: list[SimClient] = []
        self.calls: list[SimCall] = []
        #: per bus publish, the (client, subscription id) pairs that must get it once each
        self.publishes: list[list[tuple[SimClient, str]]] = []

    # ------------------------------------------------------------------ plumbing

    @initialize(mode=st.sampled_from(["durable", "durable", "immediate", "none"]))
    def start(self, mode: str) -> None:
        if mode != "none":
            self.store = ContextStore(
                self.tmp / "contexts.sqlite", ack_after_commit=mode == "durable"
            )
        self.hub = InteropHub(token=TOKEN, store=self.store)
        #: one copy of each announcement per recipient, as the transport writes them
        self.fanout = Fanout()

    def teardown(self) -> None:
        if self.store is not None:
            self.store.close()
        shutil.rmtree(self.tmp, ignore_errors=True)

    @property
    def core(self) -> InteropHub:
        assert self.hub is not None
        return self.hub

    def deliver(
        self,
        out: list[tuple[PeerConn, dict[str, Any]]],
        closing: SimClient | None = None,
    ) -> None:
        """Route what the hub returned; ``closing``: the client whose close produced it (what
        the hub addresses to it is dropped, as the transport does with a closed socket)."""
        for conn, message in self.fanout.expand(out):
            client = self.by_conn.get(conn)
            assert client is not None, f"message for an unknown connection: {message}"
            if client is closing:
                continue
            assert client.alive, f"message routed to a dead peer {client.name}: {message}"
            self.receive(client, decode(encode(message)))

    def receive(self, client: SimClient, msg: dict[str, Any]) -> None:
        mtype = msg["type"]
        request_id = msg.get("request_id")
        if mtype in ANSWERS and isinstance(request_id, str) and request_id in client.answered:
            raise AssertionError(f"{client.name}: request {request_id} answered twice: {msg}")
        if mtype in ANSWERS and isinstance(request_id, str) and request_id in client.pending:
            kind, detail = client.pending.pop(request_id)
            client.answered[request_id] += 1
            self.answered(client, kind, detail, msg)
            return
        if mtype == "context-updated":
            cid = msg["context_id"]
            if cid in client.contexts:
                client.contexts[cid] = apply_delta(client.contexts[cid], msg["delta"])
        elif mtype == "context-destroyed":
            client.contexts.pop(msg["context_id"], None)
        elif mtype == "invoke":
            client.invocations.append(msg["invocation_id"])
        elif mtype == "event" and msg.get("domain") == "bus":
            client.events[(int(msg["data"]["n"]), msg["subscription_id"])] += 1

    def answered(self, client: SimClient, kind: str, detail: Any, msg: dict[str, Any]) -> None:
        mtype = msg["type"]
        if kind == "hello":
            assert mtype == "welcome", msg
            client.peer_id = msg["peer_id"]
        elif kind == "update" and mtype == "success":
            cid, delta = detail
            if cid in client.contexts:  # the Python client applies its own delta on the ack
                client.contexts[cid] = apply_delta(client.contexts[cid], delta)
        elif kind in ("create", "subscribe-context") and mtype in (
            "context-created",
            "subscribed-context",
        ):
            ctx = self.core.contexts.by_id.get(msg["context_id"])
            if mtype == "subscribed-context":
                client.contexts[msg["context_id"]] = msg["data"]
            elif ctx is not None:
                client.contexts[msg["context_id"]] = detail  # created with this data
        elif kind == "bus-subscribe" and mtype == "subscribed":
            client.bus_subscribed[detail] = msg["subscription_id"]

    def send(
        self, client: SimClient, message: dict[str, Any], kind: str, detail: Any = None
    ) -> str:
        request_id = f"r{next(client.ids)}"
        message["request_id"] = request_id
        if kind:
            client.pending[request_id] = (kind, detail)
        # decoded from its encoding, as from a socket: the hub never shares our objects
        self.deliver(self.core.handle(client.conn, decode(encode(message))))
        return request_id

    def connect(self, name: str) -> SimClient:
        conn = PeerConn()
        self.core.open(conn)
        client = SimClient(name, conn)
        self.by_conn[conn] = client
        self.all_clients.append(client)
        hello = {
            "domain": "global",
            "type": "hello",
            "identity": {"application": name},
            "authentication": {"method": "access-token", "token": TOKEN},
        }
        self.send(client, hello, "hello")
        for domain in ("agm", "bus"):
            self.send(client, {"domain": "global", "type": "join", "destination": domain}, "join")
        return client

    def live(self) -> list[SimClient]:
        return [c for c in self.all_clients if c.alive]

    def context_id(self, name: str) -> str | None:
        ctx = self.core.contexts.by_name.get(name)
        return ctx.context_id if ctx is not None else None

    # ------------------------------------------------------------------ rules

    @rule(target=clients, app=st.sampled_from(["a", "b", "c", "d"]), follow=st.booleans())
    def join(self, app: str, follow: bool) -> SimClient:
        client = self.connect(app)
        if follow:  # create or join every context, as a notebook bound to them does
            for name in CONTEXT_NAMES:
                self.create_context(client, name, {})
        return client

    @rule(client=consumes(clients))
    def die(self, client: SimClient) -> None:
        if client.alive:
            client.alive = False
            self.deliver(self.core.close(client.conn), closing=client)

    @rule(target=clients, client=consumes(clients))
    def reconnect(self, client: SimClient) -> Any:
        if client.alive:
            client.alive = False
            self.deliver(self.core.close(client.conn), closing=client)
        return multiple(self.connect(client.name))

    @rule(client=clients)
    def register(self, client: SimClient) -> None:
        if client.alive:
            method = {"id": "1", "name": "Echo", "flags": {}}
            self.send(client, {"domain": "agm", "type": "register", "methods": [method]}, "reg")

    @rule(caller=clients, server=clients)
    def call(self, caller: SimClient, server: SimClient) -> None:
        if not caller.alive:
            return
        message = {
            "domain": "agm",
            "type": "call",
            "server_id": server.peer_id,
            "method_id": "1",
            "arguments_kv": {"x": 1},
        }
        request_id = self.send(caller, message, "call")
        self.calls.append(SimCall(caller, request_id, server))

    @rule(server=clients, ok=st.booleans())
    def answer(self, server: SimClient, ok: bool) -> None:
        if not server.alive or not server.invocations:
            return
        invocation_id = server.invocations.pop(0)
        if ok:
            message = {"domain": "agm", "type": "yield", "invocation_id": invocation_id}
        else:
            message = {"domain": "agm", "type": "error", "request_id": invocation_id}
        self.send(server, message, "")
        for call in self.calls:
            if call.server is server and call.request_id in call.caller.answered:
                call.answered_by_server = True

    @rule(
        client=clients, name=st.sampled_from(CONTEXT_NAMES), data=st.dictionaries(keys, json_leaf)
    )
    def create_context(self, client: SimClient, name: str, data: dict[str, Any]) -> None:
        if client.alive:
            message = {"type": "create-context", "name": name, "data": data}
            self.send(client, message, "create", decode(encode(data)))

    @rule(client=clients, name=st.sampled_from(CONTEXT_NAMES))
    def subscribe_context(self, client: SimClient, name: str) -> None:
        cid = self.context_id(name)
        if client.alive and cid is not None:
            self.send(client, {"type": "subscribe-context", "context_id": cid}, "subscribe-context")

    @rule(client=clients, name=st.sampled_from(CONTEXT_NAMES), delta=deltas)
    def update_context(self, client: SimClient, name: str, delta: dict[str, Any]) -> None:
        cid = self.context_id(name)
        if client.alive and cid is not None:
            message = {"type": "update-context", "context_id": cid, "delta": delta}
            self.send(client, message, "update", (cid, delta))

    @rule(
        first=clients,
        second=clients,
        name=st.sampled_from(CONTEXT_NAMES),
        values=st.tuples(json_leaf, json_leaf),
    )
    def race(self, first: SimClient, second: SimClient, name: str, values: tuple[Any, Any]) -> None:
        """Two writers set the same key back to back: the first one's ack may be held while
        the second one's update is already on its way to it."""
        for client, value in zip((first, second), values, strict=True):
            self.update_context(client, name, {"updated": {"a": value}})

    @rule(client=clients, name=st.sampled_from(CONTEXT_NAMES))
    def destroy_context(self, client: SimClient, name: str) -> None:
        cid = self.context_id(name)
        if client.alive and cid is not None:
            self.send(client, {"type": "destroy-context", "context_id": cid}, "destroy")

    @rule(client=clients, pattern=st.sampled_from(PATTERNS))
    def bus_subscribe(self, client: SimClient, pattern: str) -> None:
        if client.alive and pattern not in client.bus_subscribed:
            message = {"domain": "bus", "type": "subscribe", "topic": pattern}
            self.send(client, message, "bus-subscribe", pattern)

    @rule(client=clients, topic=st.sampled_from(TOPICS))
    def bus_publish(self, client: SimClient, topic: str) -> None:
        if not client.alive:
            return
        n = len(self.publishes)
        self.publishes.append(
            [
                (c, sid)
                for c in self.live()
                for pattern, sid in c.bus_subscribed.items()
                if _matches(pattern, topic)
            ]
        )
        message = {"domain": "bus", "type": "publish", "topic": topic, "data": {"n": n}}
        self.send(client, message, "")

    @precondition(lambda self: self.store is not None)
    @rule()
    def commit(self) -> None:
        assert self.store is not None and self.store.flush(timeout=30)
        self.deliver(self.core.contexts.release_durable())

    # ------------------------------------------------------------------ invariants

    @invariant()
    def calls_answered_exactly_once(self) -> None:
        if self.hub is None:
            return
        pending = {(c.caller.peer_id, c.request_id) for c in self.core.agm.calls.values()}
        for call in self.calls:
            count = call.caller.answered[call.request_id]
            assert count <= 1
            if not call.caller.alive:
                continue
            if (call.caller.peer_id, call.request_id) in pending:
                assert count == 0, f"call {call.request_id} answered yet still pending"
            elif not call.server.alive or call.answered_by_server:
                assert count == 1, f"call {call.request_id} never answered"

    @invariant()
    def every_publish_reached_its_subscribers_once(self) -> None:
        expected: dict[SimClient, set[tuple[int, str]]] = {}
        for n, receivers in enumerate(self.publishes):
            for client, sid in receivers:
                expected.setdefault(client, set()).add((n, sid))
        for client in self.all_clients:
            # one event per matching subscription, none for others, never twice
            assert set(client.events) == expected.get(client, set()), client.name
            assert all(v == 1 for v in client.events.values()), client.events

    @invariant()
    def no_route_to_a_dead_peer(self) -> None:
        if self.hub is None:
            return
        hub = self.core
        alive = set(hub.peers.values())
        assert {c.peer_id for c in self.live()} == set(hub.peers)
        for call in hub.agm.calls.values():
            assert call.caller in alive and call.server in alive
        for sub in hub.agm.subscriptions.values():
            assert sub.subscriber in alive and sub.server in alive
        for bus_sub in hub.bus.subscriptions.values():
            assert bus_sub.peer in alive
        for ctx in hub.contexts.by_id.values():
            assert ctx.members <= alive
        assert set(hub.contexts.held) <= alive
        for domain in ("agm", "bus", "context"):
            assert set(hub.peers_in(domain)) <= alive

    @invariant()
    def followers_hold_the_hubs_state(self) -> None:
        if self.hub is None:
            return
        context_kinds = {"create", "subscribe-context", "update", "destroy"}
        for client in self.live():
            if any(kind in context_kinds for kind, _ in client.pending.values()):
                continue  # its view catches up when the replies arrive
            for cid, data in client.contexts.items():
                ctx = self.core.contexts.by_id.get(cid)
                assert ctx is not None, f"{client.name} follows a context the hub lost"
                assert data == ctx.data, (client.name, ctx.name, data, ctx.data)

    @invariant()
    def indexes_match_a_recomputation(self) -> None:
        if self.hub is None:
            return
        hub = self.core
        for peer in hub.peers.values():
            assert set(peer.serving_calls) == {
                i for i, c in hub.agm.calls.items() if c.server is peer
            }
            assert set(peer.calling) == {i for i, c in hub.agm.calls.items() if c.caller is peer}
            assert set(peer.contexts) == {
                cid for cid, ctx in hub.contexts.by_id.items() if peer in ctx.members
            }
            assert set(peer.bus_subscriptions) == {
                sid for sid, s in hub.bus.subscriptions.items() if s.peer is peer
            }
        for domain in ("agm", "bus", "context"):
            assert hub.peers_in(domain) == [p for p in hub.peers.values() if domain in p.domains]
        assert {ctx.name: cid for cid, ctx in hub.contexts.by_id.items()} == {
            name: ctx.context_id for name, ctx in hub.contexts.by_name.items()
        }
        exact: dict[str, set[str]] = {}
        for sid, s in hub.bus.subscriptions.items():
            if s.pattern is None:
                exact.setdefault(s.topic, set()).add(sid)
        assert {t: set(subs) for t, subs in hub.bus.exact.items()} == exact
        assert set(hub.bus.wildcards) == {
            sid for sid, s in hub.bus.subscriptions.items() if s.pattern is not None
        }
        for topic in TOPICS:  # the match cache agrees with matching every pattern again
            assert {s.subscription_id for s in hub.bus.matching(topic)} == {
                sid for sid, s in hub.bus.subscriptions.items() if _matches(s.topic, topic)
            }


def _matches(pattern: str, topic: str) -> bool:
    """Bus topic matching as documented: ``*`` one token, ``>`` one or more at the end."""
    p, t = pattern.split("."), topic.split(".")
    for i, token in enumerate(p):
        if token == ">":
            return len(t) > i
        if i >= len(t) or (token != "*" and token != t[i]):
            return False
    return len(p) == len(t)


HubMachine.TestCase.settings = settings(
    max_examples=200,
    stateful_step_count=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
TestHubMachine = HubMachine.TestCase
