"""The Python client against our hub and against the real Glue42 gateway, the same tests.

``gateway`` is parametrized: ``hub`` (``python -m jupyter_interop hub``) and ``glue42``
(``@glue42/gateway-web`` from npm behind tests/compat/gateway/serve.js, channels seeded as
io.Connect Desktop seeds them). Where a feature exists only on our hub, the test asserts the
documented fallback on the real gateway (docs/GATEWAYS.md). The real gateway's adapter closes a
connection that sends anything but GW3 JSON objects, so an extension used without being
accepted fails these tests.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from gateway_support import Glue42Gateway, JsClient, glue42_gateway
from test_client_support import (
    REPO,
    Recorder,
    StandaloneHub,
    isolated_env,
    standalone_hub,
    wait_for,
)

import jupyter_interop as ji

PLAIN_FALLBACKS = {"binary", "batch", "runs", "channels", "notices", "versions", "read-only"}


@dataclass
class Gateway:
    """One gateway under test: how Python and JS clients log in to it."""

    kind: str
    url: str
    token: str
    username: str
    password: str

    @property
    def ours(self) -> bool:
        return self.kind == "hub"


@pytest.fixture(scope="module", params=["hub", "glue42"])
def gateway(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Gateway]:
    if request.param == "hub":
        with standalone_hub(tmp_path_factory.mktemp("hub")) as hub:
            # our hub takes any login whose password is the interop token
            yield Gateway("hub", hub.url, hub.token, "analyst", hub.token)
    else:
        with glue42_gateway("default") as real:
            yield Gateway("glue42", real.url, real.token, real.user, real.password)


class Opened:
    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway
        self.clients: list[ji.Interop] = []

    def __call__(self, application: str, **kwargs: Any) -> ji.Interop:
        g = self.gateway
        if "username" not in kwargs:
            kwargs.setdefault("token", g.token)
        client = ji.connect(g.url, application=application, new=True, **kwargs)
        self.clients.append(client)
        return client


@pytest.fixture
def connect(gateway: Gateway) -> Iterator[Opened]:
    opened = Opened(gateway)
    yield opened
    for client in opened.clients:
        client.close()


def test_status_shows_the_gateway_and_each_fallback(gateway: Gateway, connect: Opened) -> None:
    io = connect("gw-status")
    status = io.status()
    assert status["state"] == "connected" and status["authentication"] == "access-token"
    if gateway.ours:
        assert status["gateway"] == "jupyter_interop hub"
        assert {"binary", "batch", "channels"} <= set(status["extensions"])
        assert not PLAIN_FALLBACKS & set(status["fallbacks"])
    else:
        assert status["gateway"] == "GW3 gateway"
        assert status["extensions"] == []
        assert set(status["fallbacks"]) >= PLAIN_FALLBACKS
        assert "JSON form" in status["fallbacks"]["binary"]


def test_secret_login_and_refused_password(gateway: Gateway, connect: Opened) -> None:
    io = connect("gw-secret", username=gateway.username, password=gateway.password)
    assert io.status()["authentication"] == "secret"
    assert io.methods.invoke  # usable: a round trip below
    other = connect("gw-token")
    assert wait_for(lambda: any(s.peer_id == io.peer_id for s in other.methods.servers()))
    with pytest.raises(ji.AuthenticationError, match="username and password"):
        connect("gw-bad", username=gateway.username, password="not-the-password")


def test_gateway_token_from_the_desktop_starting_context(
    gateway: Gateway, connect: Opened, tmp_path: Path
) -> None:
    """A process started by io.Connect Desktop finds the gateway and a gateway token in
    ``_GD_STARTING_CONTEXT_`` and logs in with it, as the JS clients do."""
    js = JsClient("interopio", gateway.url, {"token": gateway.token}, "gw-token-giver")
    try:
        token = js.call("gatewayToken")
    finally:
        js.close()
    env = isolated_env(tmp_path)
    env["_GD_STARTING_CONTEXT_"] = json.dumps({"gwURL": gateway.url, "gwToken": token})
    code = (
        "import json, jupyter_interop as ji\n"
        "io = ji.connect(application='desktop-started')\n"
        "print(json.dumps({'status': io.status(), 'app': io.instance.application}))\n"
        "io.close()\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        env=env,
        cwd=str(REPO),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["status"]["authentication"] == "gateway-token"
    assert report["status"]["url"] == gateway.url
    assert report["app"] == "desktop-started"


def test_the_real_gateway_refuses_a_join_without_peer_id(real_gateway: Glue42Gateway) -> None:
    """What broke the client once: after ``welcome`` every message must carry ``peer_id``."""
    from websockets.sync.client import connect as ws_connect

    def ask(ws: Any, message: dict[str, Any]) -> dict[str, Any]:
        ws.send(json.dumps(message))
        while True:
            reply = json.loads(ws.recv(timeout=10))
            if reply.get("request_id") == message["request_id"]:
                return reply

    with ws_connect(real_gateway.url) as ws:
        welcome = ask(ws, {
            "domain": "global", "type": "hello", "request_id": "1",
            "identity": {"application": "raw"},
            "authentication": {"method": "access-token", "token": real_gateway.token},
        })  # fmt: skip
        assert welcome["type"] == "welcome"
        join = {"domain": "global", "type": "join", "destination": "agm"}
        refused = ask(ws, {**join, "request_id": "2"})
        assert (refused["type"], refused["reason_uri"]) == ("error", "global.errors.invalid_peer")
        accepted = ask(ws, {**join, "request_id": "3", "peer_id": welcome["peer_id"]})
        assert accepted["type"] == "success"


def test_methods_between_python_peers(connect: Opened) -> None:
    server, caller = connect("gw-server"), connect("gw-caller")

    @server.methods.register("Gw.Add")
    def add(a: int, b: int) -> dict[str, int]:
        return {"sum": a + b}

    @server.methods.register("Gw.Fail")
    def fail() -> None:
        raise ValueError("no luck")

    assert caller.methods.invoke("Gw.Add", {"a": 2, "b": 3}).returned == {"sum": 5}
    assert caller.methods.invoke("Gw.Add", {"a": 1, "b": 1}, target="all").all_return_values[
        0
    ].returned == {"sum": 2}
    with pytest.raises(ji.InvocationError, match="no luck"):
        caller.methods.invoke("Gw.Fail")
    with pytest.raises(ji.MethodNotFoundError):
        caller.methods.invoke("Gw.Missing", timeout=1, wait_timeout=0.2)


def test_streams_arrive_in_order(connect: Opened) -> None:
    publisher, subscriber = connect("gw-publisher"), connect("gw-subscriber")
    stream = publisher.streams.create("Gw.Ticks")
    got: list[int] = []
    done = threading.Event()

    def on_data(item: ji.StreamData) -> None:
        got.append(item.data["i"])
        if item.data["i"] == 499:
            done.set()

    subscriber.streams.subscribe("Gw.Ticks", on_data=on_data)
    wait_for(lambda: stream.subscriptions, 10, "the subscription to reach the publisher")
    for i in range(500):
        stream.push({"i": i})
    assert done.wait(30), f"got {len(got)} of 500 items"
    assert got == list(range(500))


def test_discovery_branches_rejects_destroy_and_versions(gateway: Gateway, connect: Opened) -> None:
    server, client = connect("gw-disc-server"), connect("gw-disc-client")
    added, removed = Recorder(), Recorder()
    client.methods.on_method_added(added)
    client.methods.on_method_removed(removed)
    server.methods.register("Gw.Temp", lambda: 1)
    wait_for(lambda: any(m[0].name == "Gw.Temp" for m in added.calls), 10, "methodAdded")
    server.methods.unregister("Gw.Temp")
    wait_for(lambda: any(m[0].name == "Gw.Temp" for m in removed.calls), 10, "methodRemoved")

    def decide(request: ji.SubscriptionRequest) -> None:
        if request.arguments.get("symbol") == "BAD":
            request.reject("unknown symbol")
        else:
            request.accept_on_branch(request.arguments["symbol"])

    stream = server.streams.create("Gw.Quotes", on_subscription_request=decide)
    with pytest.raises(ji.InteropError, match="unknown symbol"):
        client.streams.subscribe("Gw.Quotes", arguments={"symbol": "BAD"})
    got: list[Any] = []
    client.streams.subscribe(
        "Gw.Quotes", arguments={"symbol": "AAPL"}, on_data=lambda item: got.append(item.data)
    )
    wait_for(lambda: stream.branches, 10, "the AAPL branch")
    stream.push({"px": 2}, branch="MSFT")  # nobody on that branch
    stream.push({"px": 1}, branch="AAPL")
    wait_for(lambda: got, 10, "the AAPL item")
    assert got == [{"px": 1}]

    client.contexts.set("gw-temp", {"v": 1})
    assert "gw-temp" in server.contexts.all()
    client.contexts.update("gw-temp", {"v": 2})
    assert (client.contexts.version("gw-temp") is None) is not gateway.ours  # our hub counts
    client.contexts.destroy("gw-temp")
    wait_for(lambda: "gw-temp" not in server.contexts.all(), 10, "the destroyed context to go")


def test_contexts_set_update_paths_and_subscribe(connect: Opened) -> None:
    writer, reader = connect("gw-writer"), connect("gw-reader")
    seen = Recorder()
    writer.contexts.set("gw-ctx", {"a": 1, "b": {"c": 2}})
    reader.contexts.subscribe("gw-ctx", seen)
    assert seen.wait(1)[0][0] == {"a": 1, "b": {"c": 2}}
    writer.contexts.update("gw-ctx", {"a": None, "d": 4})
    writer.contexts.set_path("gw-ctx", "b.c", 3)
    wait_for(lambda: seen.calls[-1][0] == {"b": {"c": 3}, "d": 4}, 10, "both changes")
    assert reader.contexts.get("gw-ctx") == {"b": {"c": 3}, "d": 4}


def test_context_lifetimes_and_read_only(gateway: Gateway, connect: Opened) -> None:
    """Lifetimes are GW3's own (``create-context``), so both gateways honour them; only our
    hub enforces read-only contexts, and a plain gateway's client says so instead of
    pretending."""
    owner, watcher = connect("gw-life-owner"), connect("gw-life-watcher")
    assert owner.contexts.create("gw-owned", {"v": 1}, lifetime="ownership") is True
    wait_for(lambda: "gw-owned" in watcher.contexts.all(), 10, "the owned context")
    assert watcher.contexts.get("gw-owned") == {"v": 1}
    if gateway.ours:
        owner.contexts.set_read_only("gw-owned")
        with pytest.raises(ji.ContextError, match="read-only"):
            watcher.contexts.update("gw-owned", {"v": 2})
    else:
        with pytest.raises(ji.ContextError, match="does not enforce read-only contexts"):
            owner.contexts.set_read_only("gw-owned")
        with pytest.raises(ji.ContextError, match="does not enforce read-only contexts"):
            owner.contexts.create("gw-locked", lifetime="ownership", read_only=True)
    owner.close()
    wait_for(lambda: "gw-owned" not in watcher.contexts.all(), 10, "gone with its owner")


def js_client(hub: StandaloneHub, flavor: str, application: str) -> JsClient:
    """An unchanged JS client of ``flavor`` logged in to ``hub`` as each flavour logs in."""
    auth = (
        {"token": hub.token}
        if flavor == "interopio"
        else {"username": "analyst", "password": hub.token}
    )
    return JsClient(flavor, hub.url, auth, application)


@pytest.mark.parametrize("flavor", ["interopio", "glue42"])
def test_js_clients_follow_but_cannot_change_a_read_only_context(
    hub: StandaloneHub, flavor: str
) -> None:
    """An unchanged JS client of either flavour gets the hub's refusal of its update as a
    rejected promise with the reason naming the owner, still follows the owner's writes, and
    sees the ownership context go with its owner."""
    js = js_client(hub, flavor, f"js-ro-{flavor}")
    owner = ji.connect(hub.url, hub.token, f"py-ro-{flavor}", new=True)
    name = f"ro-{flavor}"
    try:
        owner.contexts.create(name, {"px": 1}, lifetime="ownership", read_only=True)
        js.call("ctxSubscribe", name=name)
        js.event(lambda e: e["event"] == "ctx" and e["data"] == {"px": 1})
        refusal = rf"'{name}' is read-only: only its owner 'py-ro-{flavor}'"
        with pytest.raises(AssertionError, match=f"JS ctxUpdate failed: .*{refusal}"):
            js.call("ctxUpdate", name=name, data={"px": 2})
        owner.contexts.update(name, {"px": 3})
        js.event(lambda e: e["event"] == "ctx" and e["data"] == {"px": 3})
        assert owner.contexts.get(name) == {"px": 3}
        owner.close()
        wait_for(lambda: name not in js.call("ctxAll"), 10, "the context gone with its owner")
    finally:
        owner.close()
        js.close()


@pytest.mark.parametrize("flavor", ["interopio", "glue42"])
def test_js_clients_on_channel_paths_and_restrictions(hub: StandaloneHub, flavor: str) -> None:
    """io.Connect's channels.setPath/setPaths are contexts.setPaths on "data.<path>" of the
    channel context: an unchanged JS client's paths reach Python's channel subscriber, Python's
    set_path and clear_data reach the JS subscriber; a JS client restricted from writing a
    channel gets the hub's refusal as a rejected promise, and one restricted from reading hears
    nothing of it until the restriction is lifted."""
    js = js_client(hub, flavor, f"js-ch-{flavor}")
    py = ji.connect(hub.url, hub.token, f"py-ch-{flavor}", new=True)
    red, blue = "___channel___Red", "___channel___Blue"
    try:
        heard = Recorder()
        py.channels.subscribe_for("Red", heard)
        heard.wait(1)
        paths = [
            {"path": f"data.{flavor}.ticker", "value": "AAPL"},
            {"path": "data.qty", "value": 1},
        ]
        js.call("ctxSetPaths", name=red, paths=paths)
        wait_for(lambda: heard.calls[-1][0].get(flavor) == {"ticker": "AAPL"}, what="JS paths")
        js.call("ctxSubscribe", name=red)
        py.channels.set_path(f"{flavor}.isin", "US0378331005", name="Red")
        js.event(
            lambda e: (
                e["event"] == "ctx"
                and e["data"]["data"].get(flavor, {}).get("isin") == "US0378331005"
            )
        )
        py.channels.clear_data("Red")
        cleared = js.event(lambda e: e["event"] == "ctx" and e["data"]["data"] == {})
        assert cleared["data"]["meta"]["color"] == "red", "clear_data keeps name and meta"
        peer_id = js.ready["peerId"]
        py.channels.restrict(name="Red", read=True, write=False, target=peer_id)
        with pytest.raises(
            AssertionError, match=r"JS ctxSetPaths failed: .*may not change channel"
        ):
            js.call("ctxSetPaths", name=red, paths=[{"path": "data.x", "value": 1}])
        assert py.channels.get("Red").data == {}
        py.channels.restrict(name="Blue", read=False, write=True, target=peer_id)
        js.call("ctxSubscribe", name=blue)
        js.event(lambda e: e["event"] == "ctx" and e["name"] == blue and e["data"]["data"] == {})
        py.channels.publish({"symbol": "MSFT"}, name="Blue")
        py.channels.publish({"symbol": "MSFT"}, name="Red")
        js.event(
            lambda e: (
                e["event"] == "ctx"
                and e["name"] == red
                and e["data"]["data"].get("symbol") == "MSFT"
            )
        )
        # the hub routes in order: Blue's update would have come before Red's
        assert not [e for e in js.events if e.get("name") == blue and e["data"]["data"]]
        py.channels.restrict(name="Blue", read=True, write=True, target=peer_id)
        js.event(lambda e: e["event"] == "ctx" and e["name"] == blue and e["data"]["data"])
    finally:
        py.close()
        js.close()


def test_bus_delivers_an_empty_object(connect: Opened) -> None:
    sub, pub = connect("gw-empty-sub"), connect("gw-empty-pub")
    got = Recorder()
    sub.bus.subscribe("gw.empty", got)
    wait_for(lambda: (pub.bus.publish("gw.empty", {}), got.calls)[1], 10, "an empty event")
    assert got.calls[0][0] == {}


def test_bus_wildcards(gateway: Gateway, connect: Opened) -> None:
    sub, pub = connect("gw-bus-sub"), connect("gw-bus-pub")
    got = Recorder()
    sub.bus.subscribe("gw.*.px", got)
    wait_for(lambda: (pub.bus.publish("gw.AAPL.px", {"px": 1}), got.calls)[1], 10, "a bus event")
    assert got.calls[0][0] == {"px": 1}
    # a GW3 bus event does not name its topic: the callback gets the subscribed pattern
    assert got.calls[0][1] == ("gw.AAPL.px" if gateway.ours else "gw.*.px")


def test_channels_are_contexts_and_membership_degrades(gateway: Gateway, connect: Opened) -> None:
    a, b = connect("gw-chan-a"), connect("gw-chan-b")
    assert {c.name for c in a.channels.list()} >= {"Red", "Green", "Blue"}
    heard, changes, on_blue = Recorder(), Recorder(), Recorder()
    b.channels.on_changed(changes)
    b.channels.join("Red")
    b.channels.subscribe(heard)
    b.channels.subscribe_for("Blue", on_blue)
    a.channels.join("Red")
    a.channels.publish({"symbol": "AAPL"})
    wait_for(lambda: any(c[0].get("symbol") == "AAPL" for c in heard.calls), 10, "the publish")
    a.channels.publish({"qty": 3}, name="Blue")
    wait_for(lambda: any(c[0].get("qty") == 3 for c in on_blue.calls), 10, "the Blue publish")
    members = a.channels.members()
    if gateway.ours:
        wait_for(lambda: b.peer_id in a.channels.members().get("Red", []), 10, "membership")
        a.channels.move(b.instance, "Green")
        wait_for(lambda: changes.firsts[-1:] == ["Green"], 10, "the move, announced")
    else:
        assert members == {"Red": [a.peer_id]}  # only this client: the gateway tracks nothing
        with pytest.raises(ji.ChannelError, match="does not track"):
            a.channels.move(b.instance, "Green")
    b.channels.leave()
    assert b.channels.current is None
    expected = ["Red", "Green", None] if gateway.ours else ["Red", None]
    wait_for(
        lambda: changes.firsts == expected, 10, f"on_changed {expected} (got {changes.firsts})"
    )


def test_channel_paths_multi_mode_and_restrictions_per_gateway(
    gateway: Gateway, connect: Opened
) -> None:
    a, b = connect("gw-chpath-a"), connect("gw-chpath-b")
    on_lime = Recorder()
    b.channels.subscribe_for("Lime", on_lime)
    a.channels.set_paths({"order.side": "buy", "order.qty": 2}, name="Lime")
    # the subscription's first call may come before or after the write: wait for the write's
    wait_for(
        lambda: on_lime.calls and on_lime.calls[-1][0] == {"order": {"side": "buy", "qty": 2}},
        10,
        "paths",
    )
    a.channels.clear_data("Lime")
    wait_for(lambda: on_lime.calls and on_lime.calls[-1][0] == {}, 10, "cleared")
    a.channels.mode = "multi"
    a.channels.join("Lime")
    a.channels.join("Cyan")
    assert a.channels.my_channels() == ["Lime", "Cyan"]
    if gateway.ours:
        wait_for(lambda: b.channels.members().get("Cyan") == [a.peer_id], 10, "membership")
        a.channels.restrict(name="Lime", read=True, write=False)
        held = {
            c["name"]: (c["read"], c["write"]) for c in a.channels.get_restrictions()["channels"]
        }
        assert (held["Lime"], held["Cyan"]) == ((True, False), (True, True))
        with pytest.raises(ji.ContextError, match="may not change channel 'Lime'"):
            a.channels.publish({"symbol": "AAPL"})  # to each channel joined: Lime refuses
        a.channels.restrict_all(read=True, write=True)  # it lifts what it put on itself
    else:
        with pytest.raises(ji.ChannelError, match="only the jupyter_interop hub"):
            a.channels.restrict(name="Lime", read=True, write=False)
        with pytest.raises(ji.ChannelError, match="only the jupyter_interop hub"):
            a.channels.get_restrictions()
    a.channels.leave()
    assert a.channels.my_channels() == []


def test_pings_keep_a_quiet_client_on_a_gateway_that_removes_silent_ones() -> None:
    with glue42_gateway("none", inactive_seconds=2) as strict:
        pinging = ji.connect(strict.url, strict.token, "gw-pinging", new=True, ping_interval=0.5)
        silent = ji.connect(strict.url, strict.token, "gw-silent", new=True, ping_interval=0)
        try:
            removed = Recorder()
            pinging.methods.on_server_removed(removed)
            pinging.methods.register("Gw.Alive", lambda: {"alive": True})
            wait_for(lambda: any(s.peer_id == silent.peer_id for s in pinging.methods.servers()))
            wait_for(
                lambda: any(c[0].peer_id == silent.peer_id for c in removed.calls),
                20,
                "the gateway to remove the silent client",
            )
            assert pinging.methods.invoke("Gw.Alive").returned == {"alive": True}
            assert all(c[0].peer_id != pinging.peer_id for c in removed.calls)
        finally:
            pinging.close()
            silent.close()


def test_without_channel_definitions_join_says_why(tmp_path: Path) -> None:
    with glue42_gateway("none") as bare:
        io = ji.connect(bare.url, bare.token, "gw-bare", new=True)
        try:
            assert io.channels.list() == []
            with pytest.raises(ji.ChannelError, match="defines no channels"):
                io.channels.join("Red")
            io.channels.add("Desk", "teal")  # a channel anybody can add, as a context
            io.channels.join("Desk")
            assert io.channels.current == "Desk"
        finally:
            io.close()


def test_arrays_travel_binary_only_where_accepted(gateway: Gateway, connect: Opened) -> None:
    a, b = connect("gw-array-a"), connect("gw-array-b")
    array = np.arange(12, dtype="<f8").reshape(3, 4)
    a.contexts.set("gw-array", {"w": array})
    got = b.contexts.get("gw-array")["w"]
    assert isinstance(got, np.ndarray) and got.dtype == array.dtype and (got == array).all()
    assert ("binary" in a.status()["extensions"]) is gateway.ours


def readme_gateway_example() -> str:
    """The Python block of the README's section on joining io.Connect Desktop."""
    text = (REPO / "README.md").read_text()
    section = text.split("## Joining io.Connect Desktop or another GW3 gateway", 1)[1]
    return section.split("```python\n", 1)[1].split("```", 1)[0]


def test_the_readme_example_joins_the_real_gateway(real_gateway: Glue42Gateway) -> None:
    code = readme_gateway_example()
    for shown, real in [
        ("ws://127.0.0.1:8385", real_gateway.url),
        ('username="analyst"', f"username={real_gateway.user!r}"),
        ('password="s3cret"', f"password={real_gateway.password!r}"),
    ]:
        assert shown in code, f"the README example no longer shows {shown}"
        code = code.replace(shown, real)
    code = code.replace("ji.connect(", "ji.connect(new=True, url=", 1)
    namespace: dict[str, Any] = {}
    exec(compile(code, "README.md", "exec"), namespace)
    io = namespace["io"]
    other = ji.connect(real_gateway.url, real_gateway.token, "readme-peer", new=True)
    try:
        assert io.status()["gateway"] == "GW3 gateway"
        quote = other.methods.invoke("Pricing.Quote", {"symbol": "MSFT"}, wait_timeout=10)
        assert quote.returned == {"symbol": "MSFT", "px": 101.5}
        assert other.channels.get("Red").data["symbol"] == "AAPL"
    finally:
        other.close()
        io.close()


# ---------------------------------------------------------------- Python <-> JS via the gateway


@pytest.fixture(scope="module")
def real_gateway() -> Iterator[Glue42Gateway]:
    with glue42_gateway("default") as real:
        yield real


@pytest.mark.parametrize("flavor", ["interopio", "glue42"])
def test_python_and_js_clients_through_the_real_gateway(
    real_gateway: Glue42Gateway, flavor: str
) -> None:
    auth = (
        {"token": real_gateway.token}
        if flavor == "interopio"
        else {"username": real_gateway.user, "password": real_gateway.password}
    )
    js = JsClient(flavor, real_gateway.url, auth, f"js-{flavor}")
    io = ji.connect(real_gateway.url, real_gateway.token, f"py-{flavor}", new=True)
    try:
        # methods both ways
        js.call("register", name=f"Js.Echo.{flavor}")
        r = io.methods.invoke(f"Js.Echo.{flavor}", {"x": 1}, wait_timeout=10)
        assert r.returned == {"echo": {"x": 1}, "caller": f"py-{flavor}"}

        @io.methods.register(f"Py.Double.{flavor}")
        def double(n: int) -> dict[str, int]:
            return {"n": n * 2}

        assert js.call("invoke", method=f"Py.Double.{flavor}", args={"n": 21}) == {"n": 42}

        # streams both ways, in order
        stream = io.streams.create(f"Py.Ticks.{flavor}")
        js.call("subscribe", name=f"Py.Ticks.{flavor}", args={})
        wait_for(lambda: stream.subscriptions, 10, "the JS subscription")
        for i in range(50):
            stream.push({"i": i})
        js.event(lambda e: e["event"] == "stream-data" and e["data"] == {"i": 49})
        items = [e["data"]["i"] for e in js.events if e["event"] == "stream-data"]
        assert items == list(range(50))
        js.call("createStream", name=f"Js.Ticks.{flavor}")
        got: list[Any] = []
        io.streams.subscribe(f"Js.Ticks.{flavor}", on_data=lambda item: got.append(item.data["i"]))
        js.event(lambda e: e["event"] == "stream-subscribed")
        for i in range(20):
            js.call("push", name=f"Js.Ticks.{flavor}", data={"i": i})
        wait_for(lambda: len(got) == 20, 10, "20 JS stream items")
        assert got == list(range(20))

        # contexts both ways
        io.contexts.set(f"shared-{flavor}", {"from": "python"})
        js.call("ctxSubscribe", name=f"shared-{flavor}")
        js.event(lambda e: e["event"] == "ctx" and e["data"] == {"from": "python"})
        seen = Recorder()
        io.contexts.subscribe(f"shared-{flavor}", seen)
        js.call("ctxUpdate", name=f"shared-{flavor}", data={"js": True})
        wait_for(
            lambda: seen.calls and seen.calls[-1][0] == {"from": "python", "js": True},
            10,
            "the JS update",
        )

        # bus both ways
        heard = Recorder()
        io.bus.subscribe("js.>", heard)
        js.call("busSubscribe", topic="py.*")
        wait_for(
            lambda: (
                io.bus.publish("py.x", {"v": 1}),
                [e for e in js.events if e["event"] == "bus"],
            )[1],
            10,
            "bus to JS",
        )
        wait_for(
            lambda: (js.call("busPublish", topic="js.a.b", data={"v": 2}), heard.calls)[1],
            10,
            "bus to Python",
        )
        assert heard.calls[0][0] == {"v": 2}

        # channels, seeded as io.Connect Desktop seeds them, used as its clients use them
        channel = f"___channel___{'Blue' if flavor == 'glue42' else 'Cyan'}"
        name = channel.removeprefix("___channel___")
        assert channel in js.call("ctxAll") and name in io.channels.all()
        io.channels.join(name)
        on_channel = Recorder()
        io.channels.subscribe(on_channel)
        js.call("ctxSetPaths", name=channel, paths=[{"path": "data.symbol", "value": "MSFT"}])
        wait_for(
            lambda: any(c[0].get("symbol") == "MSFT" for c in on_channel.calls),
            10,
            "the JS publish",
        )
        js.call("ctxSubscribe", name=channel)
        io.channels.publish({"qty": 5})
        js.event(
            lambda e: (
                e["event"] == "ctx" and e["name"] == channel and e["data"]["data"].get("qty") == 5
            )
        )

        # a value JSON lacks reaches JS in its documented JSON form
        io.contexts.set(f"array-{flavor}", {"w": np.arange(3, dtype="<i8")})
        js.call("ctxSubscribe", name=f"array-{flavor}")
        ev = js.event(lambda e: e["event"] == "ctx" and e["name"] == f"array-{flavor}")
        assert ev["data"]["w"] == {
            "__ji__": "ndarray",
            "dtype": "<i8",
            "shape": [3],
            "data": [0, 1, 2],
        }
    finally:
        io.close()
        js.close()
