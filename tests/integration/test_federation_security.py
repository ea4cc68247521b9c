"""Space isolation enforced by NATS itself (docs/FEDERATION.md, "Security model"): a real
nats-server runs the configuration of ``server/federation_access.py`` (one user per space,
each confined to its subjects, inboxes and KV bucket). Alice's hubs federate; a hub with bob's
credentials sees none of alice's peers; a hand-written nats-py client with bob's credentials
is refused every subject of alice's by the server; hubs whose credentials are refused say so.
Also the ``federation`` view, and the JupyterHub recipe of docs/examples/jupyterhub_config.py
handing a real Jupyter server its space and credentials."""

from __future__ import annotations

import asyncio
import contextlib
import json
import runpy
import signal
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import nats
import pytest
from test_client_support import wait_for
from test_federation import Hub, Nats, hub_env, servers_of, start_hub, start_server, stop
from traitlets.config import Config

import jupyter_interop as ji
from jupyter_interop.protocol.wire import ENV_FEDERATION_SPACE, ENV_FEDERATION_URL
from jupyter_interop.server.federation import subjects
from jupyter_interop.server.federation_access import (
    inbox_prefix,
    nats_config,
    space_password,
    space_url,
)
from jupyter_interop.server.federation_context_objects import objects_bucket_name
from jupyter_interop.server.federation_contexts import bucket_name, context_key, decode_record

SECRET = "deployment-secret-for-tests"
SPACES = ("alice", "bob", "desk-1")
#: alice's context, in her space's KV bucket
CONTEXT = "Alice.Pricing"
RECIPE = Path(__file__).parents[2] / "docs" / "examples" / "jupyterhub_config.py"


@pytest.fixture
def nats_secured(tmp_path: Path) -> Iterator[Nats]:
    """nats-server with JetStream (``Nats`` turns it on) and one confined user per space."""
    config = tmp_path / "nats.conf"
    config.write_text(nats_config([(space, space_password(SECRET, space)) for space in SPACES]))
    server = Nats(tmp_path, "-c", str(config))
    try:
        yield server
    finally:
        server.stop()


def url_of(nats: Nats, space: str, password: str | None = None) -> str:
    return space_url(nats.url, space, password or space_password(SECRET, space))


def start_space_hub(root: Path, nats: Nats, space: str, **kwargs: Any) -> Hub:
    return start_hub(root, url_of(nats, space, **kwargs), f"--InteropHub.federation_space={space}")


def view(hub: Hub, name: str) -> Any:
    http = hub.url.replace("ws://", "http://").split("/interop/")[0]
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(f"{http}/interop/api/{name}?token={hub.token}", timeout=10) as response:
        return json.loads(response.read())


class Outsider:
    """A hand-written nats-py client: what anybody holding some space's credentials can run."""

    def __init__(self, url: str, space: str, **options: Any) -> None:
        #: more nats-py options: the credentials when not in the URL (``user_credentials``)
        self.url, self.space, self.options = url, space, options
        self.errors: list[str] = []

    async def connect(self) -> Any:
        async def record(error: Exception) -> None:
            self.errors.append(str(error).lower())

        return await nats.connect(
            self.url,
            inbox_prefix=inbox_prefix(self.space),
            error_cb=record,
            connect_timeout=5,
            **self.options,
        )


async def alice_reads_a_context(alice: Outsider, name: str) -> Any:
    """Alice's own hand-written client may read her space's KV bucket, where her hubs keep
    their contexts (so bob's refusal below means something): the data of context ``name``."""
    nc = await alice.connect()
    try:
        kv = await nc.jetstream().key_value(bucket_name("alice"))
        entry = await kv.get(context_key(name))
        assert alice.errors == []
        return decode_record(bytes(entry.value or b""), name)["data"]
    finally:
        await nc.close()


async def bob_tries_alices_subjects(
    url: str, alice_hub: str, refusals: list[str]
) -> tuple[list[str], list[str]]:
    """Everything bob's credentials try on alice's space; (errors NATS reported, what bob
    received or was answered), once every one of ``refusals`` is among the errors or after
    a generous while."""
    bob = Outsider(url, "bob")
    nc = await bob.connect()
    got: list[str] = []

    async def keep(msg: Any) -> None:
        got.append(msg.subject)

    try:
        await nc.subscribe("ji.alice.>", cb=keep)
        await nc.subscribe("_INBOX.>", cb=keep)
        await nc.subscribe(f"{inbox_prefix('alice')}.>", cb=keep)
        invoke = subjects("alice", alice_hub)["invoke"]
        await nc.publish(invoke, b'{"peer_id": "x", "method_id": "1", "arguments": {}}')
        # no reply is the point (a timeout or "no responders"); the errors say why
        with contextlib.suppress(Exception):
            reply = await nc.request(invoke, b"{}", timeout=2)
            got.append(f"reply {reply.data!r}")
        bucket, key = bucket_name("alice"), context_key(CONTEXT)
        for read in (
            lambda: nc.jetstream().key_value(bucket),
            lambda: nc.request(f"$JS.API.DIRECT.GET.KV_{bucket}.$KV.{bucket}.{key}", timeout=2),
            lambda: nc.jetstream().create_key_value(bucket=bucket),
            lambda: nc.jetstream().object_store(objects_bucket_name("alice")),
        ):
            with contextlib.suppress(Exception):
                got.append(f"kv {await read()!r}")
        await nc.publish(f"$KV.{bucket}.{key}", b"{}")
        await nc.flush(timeout=5)
        deadline = asyncio.get_running_loop().time() + 30

        def missing() -> list[str]:
            return [r for r in refusals if not [e for e in bob.errors if r in e]]

        while missing() and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.05)
        return bob.errors, got
    finally:
        await nc.close()


def clients_of(stack: ExitStack, hubs: dict[str, Hub]) -> dict[str, Any]:
    """A client (application ``app-<name>``) on each of ``hubs``, closed by ``stack``."""
    clients = {}
    for name, hub in hubs.items():
        clients[name] = ji.connect(url=hub.url, token=hub.token, application=f"app-{name}")
        stack.callback(clients[name].close)
    return clients


def test_nats_confines_each_space_even_against_a_hand_written_client(
    tmp_path: Path, nats_secured: Nats
) -> None:
    with ExitStack() as stack:
        hubs = {}
        for name, space in (("a1", "alice"), ("a2", "alice"), ("b1", "bob"), ("b2", "bob")):
            hubs[name] = start_space_hub(tmp_path / name, nats_secured, space)
            stack.callback(stop, hubs[name].proc)
        clients = clients_of(stack, hubs)
        clients["a2"].methods.register("Alice.Price")(lambda: {"px": 101.5})
        clients["b2"].methods.register("Bob.Price")(lambda: {"px": 7.0})
        clients["a2"].contexts.set(CONTEXT, {"px": 101.5})
        clients["b2"].contexts.set("Bob.Plan", {"step": 1})

        # each space federates, methods and contexts: bob's second hub reaches bob's first,
        # alice's likewise
        wait_for(lambda: servers_of(clients["b1"], "Bob.Price"), 30, "B2's method on B1")
        wait_for(lambda: servers_of(clients["a1"], "Alice.Price"), 30, "A2's method on A1")
        wait_for(lambda: "Bob.Plan" in clients["b1"].contexts.all(), 30, "B2's context on B1")
        wait_for(lambda: CONTEXT in clients["a1"].contexts.all(), 30, "A2's context on A1")
        assert not servers_of(clients["b1"], "Alice.Price")
        assert CONTEXT not in clients["b1"].contexts.all()
        assert {h["hub"] for h in view(hubs["b1"], "federation")["remote_hubs"]} == {
            view(hubs["b2"], "federation")["hub"]
        }

        url_alice, url_bob = url_of(nats_secured, "alice"), url_of(nats_secured, "bob")
        assert asyncio.run(alice_reads_a_context(Outsider(url_alice, "alice"), CONTEXT)) == {
            "px": 101.5
        }
        alice_hub = view(hubs["a2"], "federation")["hub"]
        bucket = bucket_name("alice")
        kv = f"kv_{bucket}"
        refusals = [
            f"permissions violation for {what}"
            for what in (
                'subscription to "ji.alice.>"',
                'subscription to "_inbox.>"',
                'subscription to "_inbox.alice.>"',
                f'publish to "ji.alice.hub.{alice_hub}.invoke"',
                f'publish to "$js.api.stream.info.{kv}"',
                f'publish to "$js.api.direct.get.{kv}.',
                f'publish to "$js.api.stream.create.{kv}"',
                f'publish to "$kv.{bucket}.{context_key(CONTEXT).lower()}"',
                f'publish to "$js.api.stream.info.obj_{objects_bucket_name("alice")}"',
            )
        ]
        errors, got = asyncio.run(bob_tries_alices_subjects(url_bob, alice_hub, refusals))
        assert got == []
        for refused in refusals:
            assert [e for e in errors if refused in e], (refused, errors)

        # alice's hubs still work, and bob's hubs never saw alice's method
        assert clients["a1"].methods.invoke("Alice.Price", {}, timeout=30).returned == {"px": 101.5}
        assert not servers_of(clients["b1"], "Alice.Price")
        assert not servers_of(clients["b2"], "Alice.Price")
        assert CONTEXT not in clients["b2"].contexts.all()
        # a binary value goes through alice's object store, which her permissions allow
        clients["a2"].contexts.set("Alice.Blob", {"raw": b"\x01" * 2_000_000})
        wait_for(lambda: "Alice.Blob" in clients["a1"].contexts.all(), 30, "the blob on A1")
        assert clients["a1"].contexts.get("Alice.Blob") == {"raw": b"\x01" * 2_000_000}
        assert "Alice.Blob" not in clients["b1"].contexts.all()


def test_the_federation_view_shows_remote_hubs_without_secrets(
    tmp_path: Path, nats_secured: Nats
) -> None:
    with ExitStack() as stack:
        hub_a = start_space_hub(tmp_path / "a", nats_secured, "alice")
        stack.callback(stop, hub_a.proc)
        hub_b = start_space_hub(tmp_path / "b", nats_secured, "alice")
        stack.callback(stop, hub_b.proc)
        b = ji.connect(url=hub_b.url, token=hub_b.token, application="pricer-b")
        stack.callback(b.close)
        b.methods.register("Quote")(lambda: {})
        id_b = view(hub_b, "federation")["hub"]

        def b_with_its_peer() -> Any:
            status = view(hub_a, "federation")
            return status if [h for h in status["remote_hubs"] if h["peers"] >= 1] else None

        status = wait_for(b_with_its_peer, 30, "hub B and its peer in A's federation view")
        assert status["enabled"] is True and status["connected"] is True
        assert (status["url"], status["space"], status["error"]) == (nats_secured.url, "alice", "")
        [remote] = status["remote_hubs"]
        assert remote["hub"] == id_b and remote["peers"] == 1
        assert 0 <= remote["last_heard"] < 1.5  # the heartbeat timeout: B is alive
        password = space_password(SECRET, "alice")
        assert password not in json.dumps(status) and hub_a.token not in json.dumps(status)


def test_the_link_says_when_nats_drops_is_refused_comes_back_and_closes_without_secrets(
    tmp_path: Path, nats_secured: Nats
) -> None:
    """One log line per drop, per return, per outage in which the server refuses the hub's
    credentials, and when nats-py gives up, each with the URL without its password; the
    federation view's ``connected`` follows."""
    hub = start_space_hub(tmp_path / "a", nats_secured, "alice")
    log = tmp_path / "a" / "hub.log"
    url = nats_secured.url
    config = tmp_path / "nats.conf"
    passwords = [(space, space_password(SECRET, space)) for space in SPACES]
    changed = [("alice", "a-new-password"), *passwords[1:]]
    try:

        def connected(state: bool) -> Any:
            status = view(hub, "federation")
            return status if status["connected"] is state else None

        def said(line: str, times: int = 1) -> bool:
            return log.read_text().count(line) == times

        wait_for(lambda: connected(True), 30, "the link connected")
        lost = f"Interop federation: lost the NATS server at {url}; retrying"
        back = f"Interop federation: back on the NATS server at {url} ("
        refused = f"Interop federation: the NATS server at {url} refuses this hub's credentials"
        closed = f"Interop federation: the NATS connection to {url} is closed for good"
        assert said(lost, 0) and said(back, 0)
        nats_secured.kill()
        wait_for(lambda: connected(False), 30, "the view to say the link is not connected")
        wait_for(lambda: said(lost), 30, "the line saying NATS was lost")
        nats_secured.restart()
        wait_for(lambda: connected(True), 60, "the view to say the link is connected again")
        wait_for(lambda: said(back), 30, "the line saying NATS is back")
        assert said(lost) and view(hub, "federation")["error"] == ""

        # the server comes back with another password for alice: the link keeps trying
        nats_secured.kill()
        config.write_text(nats_config(changed))
        nats_secured.restart()
        wait_for(lambda: said(refused), 30, "the line saying NATS refuses the credentials")
        assert "Authorization Violation" in log.read_text().split(refused, 1)[1].splitlines()[0]
        assert connected(False) and said(lost, 2)
        config.write_text(nats_config(passwords))
        nats_secured.proc.send_signal(signal.SIGHUP)  # nats-server reloads its configuration
        wait_for(lambda: said(back, 2), 60, "the line saying NATS is back with the password")
        assert connected(True) and said(refused)  # (once for the outage, not per attempt)

        # the password changes while the hub is connected: the server closes its connection
        # with an error, after which nats-py gives up; when the error is lost with the
        # connection (a reset can discard it), nats-py retries and is refused
        config.write_text(nats_config(changed))
        nats_secured.proc.send_signal(signal.SIGHUP)
        wait_for(lambda: said(closed) or said(refused, 2), 30, "a line saying NATS refuses it")
        status = wait_for(lambda: connected(False), 30, "the view to say it is not connected")
        if said(closed):
            assert "authorization failed" in status["error"]  # (nats-py's words for it)
            assert "authorization failed" in log.read_text().split(closed, 1)[1].splitlines()[0]
        text = log.read_text()
        assert space_password(SECRET, "alice") not in text and "a-new-password" not in text
    finally:
        stop(hub.proc)


def run_hub(root: Path, url: str, *extra: str) -> subprocess.CompletedProcess[str]:
    """The standalone hub with ``extra`` options, to its end (it stops on a refusal)."""
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "jupyter_interop",
            "hub",
            "--port=0",
            f"--federation={url}",
            "--StandaloneHubApp.write_runtime_file=False",
            *extra,
        ],
        env=hub_env(root),
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_a_standalone_hub_whose_credentials_are_refused_stops_with_a_clear_error(
    tmp_path: Path, nats_secured: Nats
) -> None:
    def run(url: str, space: str) -> subprocess.CompletedProcess[str]:
        return run_hub(tmp_path, url, f"--InteropHub.federation_space={space}")

    wrong = run(url_of(nats_secured, "alice", password="not-the-password"), "alice")
    assert wrong.returncode != 0 and "Interop hub:" not in wrong.stdout
    assert f"no NATS server accepts this hub at {nats_secured.url} " in wrong.stderr
    assert "Authorization Violation" in wrong.stderr
    assert "not-the-password" not in wrong.stderr

    # bob's valid credentials, but alice's space: NATS lets bob in and denies the subjects
    other = run(url_of(nats_secured, "bob"), "alice")
    assert other.returncode != 0 and "Interop hub:" not in other.stdout
    assert "does not let this hub's credentials use space 'alice'" in other.stderr
    assert 'permissions violation for subscription to "ji.alice.hub.*.peers"' in other.stderr
    assert space_password(SECRET, "bob") not in other.stderr


def run_recipe(recipe: Path, user: str, settings: dict[str, str]) -> dict[str, str]:
    """What the JupyterHub config lines of ``recipe`` (docs/examples), run with the
    environment ``settings``, make JupyterHub hand ``user``'s server."""
    config = Config()
    with pytest.MonkeyPatch.context() as patch:
        for name, value in settings.items():
            patch.setenv(name, value)
        runpy.run_path(str(recipe), init_globals={"get_config": lambda: config})
    spawner = SimpleNamespace(user=SimpleNamespace(name=user))  # what the callables read
    environment = config.Spawner.environment.get_value({})
    return {
        name: value(spawner) if callable(value) else value for name, value in environment.items()
    }


def recipe_environment(user: str, nats: Nats, tmp: Path) -> dict[str, str]:
    """What docs/examples/jupyterhub_config.py makes JupyterHub hand ``user``'s server."""
    secret = tmp / "nats-secret"
    secret.write_text(SECRET + "\n")
    return run_recipe(RECIPE, user, {"NATS_URL": nats.url, "NATS_SECRET_FILE": str(secret)})


def test_the_jupyterhub_recipe_puts_a_team_members_server_in_the_team_space(
    tmp_path: Path, nats_secured: Nats
) -> None:
    env = recipe_environment("carol", nats_secured, tmp_path)
    assert env[ENV_FEDERATION_SPACE] == "desk-1"
    assert env[ENV_FEDERATION_URL] == url_of(nats_secured, "desk-1")
    assert recipe_environment("alice", nats_secured, tmp_path)[ENV_FEDERATION_SPACE] == "alice"
    with ExitStack() as stack:
        teammate = start_space_hub(tmp_path / "dave", nats_secured, "desk-1")
        stack.callback(stop, teammate.proc)
        carol_calls_dave(stack, tmp_path / "carol", env, teammate, nats_secured.url)


def carol_calls_dave(
    stack: ExitStack, root: Path, env: dict[str, str], dave: Hub, url: str
) -> None:
    """Carol's Jupyter server, started with the ``env`` a recipe made for it, calls a method
    of her teammate on ``dave``'s hub through the NATS server at ``url``, in space desk-1."""
    server = start_server(root, env=env)
    stack.callback(stop, server.proc)
    teammate = ji.connect(url=dave.url, token=dave.token, application="dave")
    stack.callback(teammate.close)
    teammate.methods.register("Desk.Rates")(lambda: {"rate": 0.05})
    info = server.info
    carol = ji.connect(url=info["url"], token=info["token"], application="carol")
    stack.callback(carol.close)
    wait_for(lambda: servers_of(carol, "Desk.Rates"), 30, "dave's method on carol's server")
    assert carol.methods.invoke("Desk.Rates", {}, timeout=30).returned == {"rate": 0.05}
    status = server.view("federation")
    assert (status["space"], status["connected"], status["url"]) == ("desk-1", True, url)


def test_a_jupyter_server_whose_credentials_are_refused_serves_its_own_peers(
    tmp_path: Path, nats_secured: Nats
) -> None:
    refused = url_of(nats_secured, "alice", password="stale-password")
    env = {ENV_FEDERATION_URL: refused, ENV_FEDERATION_SPACE: "alice"}
    with ExitStack() as stack:
        server = start_server(tmp_path, env=env)
        stack.callback(stop, server.proc)
        status = wait_for(
            lambda: (s := server.view("federation"))["error"] and s,
            30,
            "the refusal in the federation view",
        )
        assert status["enabled"] is True and status["connected"] is False
        assert "Authorization Violation" in status["error"]
        assert "stale-password" not in json.dumps(status)
        log = (tmp_path / "server.log").read_text()
        assert f"Interop federation at {nats_secured.url} refused or unreachable" in log
        assert "stale-password" not in log
        info = server.info
        a = ji.connect(url=info["url"], token=info["token"], application="local-a")
        stack.callback(a.close)
        b = ji.connect(url=info["url"], token=info["token"], application="local-b")
        stack.callback(b.close)
        b.methods.register("Local.Echo")(lambda text: {"echo": text})
        wait_for(lambda: servers_of(a, "Local.Echo"), 30, "b's method on a")
        assert a.methods.invoke("Local.Echo", {"text": "hi"}, timeout=30).returned == {"echo": "hi"}
