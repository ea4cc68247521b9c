"""Federation with NATS's decentralised authentication (docs/FEDERATION.md, "Security
model"): a real nats-server in operator mode (a MEMORY resolver with the account JWTs
preloaded), an account per space and a user per hub, made at test time by NATS's own JWT
library (``tests/compat/nats_accounts.js``); each user's JWT carries the permissions of its
space (``space_jwt_permissions``). Hubs of one space federate with their ``.creds`` files;
another account sees and writes nothing of the space, even through a hand-written nats-py
client; unusable or refused credentials stop the standalone hub with one clear line. Also nkey
users (a nats-server that lists users by public nkey) with seed files."""

from __future__ import annotations

import asyncio
import json
import subprocess
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from nodekit import COMPAT, node_or_fail
from test_client_support import wait_for
from test_federation import Hub, Nats, servers_of, start_hub, start_server, stop
from test_federation_security import (
    Outsider,
    alice_reads_a_context,
    carol_calls_dave,
    clients_of,
    run_hub,
    run_recipe,
)

import jupyter_interop as ji
from jupyter_interop.protocol.wire import (
    ENV_FEDERATION_CREDENTIALS,
    ENV_FEDERATION_SPACE,
    ENV_FEDERATION_URL,
)
from jupyter_interop.server.federation_access import (
    space_jwt_permissions,
    space_permissions,
)
from jupyter_interop.server.federation_contexts import bucket_name, context_key

CONTEXT = "Alice.Pricing"
#: an expiry long gone (2001), for an expired user
LONG_AGO = 1_000_000_000
RECIPE = Path(__file__).parents[2] / "docs" / "examples" / "jupyterhub_config_creds.py"


def make_accounts(spec: dict[str, Any]) -> dict[str, Any]:
    """``tests/compat/nats_accounts.js`` run on ``spec``: the operator, accounts and users."""
    node = node_or_fail("@nats-io/jwt")
    done = subprocess.run(
        [node, str(COMPAT / "nats_accounts.js")],
        input=json.dumps(spec),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return dict(json.loads(done.stdout))


@dataclass
class Operator:
    """A nats-server in operator mode and the ``.creds`` files of its users."""

    nats: Nats
    creds: dict[str, Path]


def operator_config(made: dict[str, Any]) -> str:
    """nats-server's configuration (JSON) trusting ``made``'s operator and its accounts."""
    return json.dumps(
        {
            "operator": made["operator"],
            "system_account": made["system_account"],
            "resolver": "MEMORY",
            "resolver_preload": {a["public"]: a["jwt"] for a in made["accounts"].values()},
        }
    )


def write_creds(directory: Path, made: dict[str, Any]) -> dict[str, Path]:
    directory.mkdir()
    paths = {}
    for user, text in made["creds"].items():
        paths[user] = directory / f"{user}.creds"
        paths[user].write_text(text)
        paths[user].chmod(0o600)
    return paths


@pytest.fixture
def operator(tmp_path: Path) -> Iterator[Operator]:
    """Accounts alice, bob and desk-1 (a team); alice-1, alice-2, bob-1, carol and dave
    confined to their space, bob-any with bob's whole account, alice-old expired."""
    made = make_accounts(
        {
            "accounts": [
                {
                    "name": "alice",
                    "users": [
                        {"name": "alice-1", "permissions": space_jwt_permissions("alice")},
                        {"name": "alice-2", "permissions": space_jwt_permissions("alice")},
                        {
                            "name": "alice-old",
                            "permissions": space_jwt_permissions("alice"),
                            "exp": LONG_AGO,
                        },
                    ],
                },
                {
                    "name": "bob",
                    "users": [
                        {"name": "bob-1", "permissions": space_jwt_permissions("bob")},
                        {"name": "bob-any"},
                    ],
                },
                {
                    "name": "desk-1",
                    "users": [
                        {"name": name, "permissions": space_jwt_permissions("desk-1")}
                        for name in ("carol", "dave")
                    ],
                },
            ]
        }
    )
    config = tmp_path / "nats-operator.conf"
    config.write_text(operator_config(made))
    server = Nats(tmp_path, "-c", str(config))
    try:
        yield Operator(server, write_creds(tmp_path / "creds", made))
    finally:
        server.stop()


def creds_hub(root: Path, op: Operator, user: str, space: str) -> Hub:
    return start_hub(
        root,
        op.nats.url,
        f"--federation-creds={op.creds[user]}",
        f"--federation-space={space}",
    )


def holder(op: Operator, user: str, space: str) -> Outsider:
    """A hand-written nats-py client with ``user``'s ``.creds``: what its holder can run."""
    return Outsider(op.nats.url, space, user_credentials=str(op.creds[user]))


def alice_reads_her_context(op: Operator) -> Any:
    """Alice's own client reads her space's KV bucket (so bob's emptiness means something)."""
    return asyncio.run(alice_reads_a_context(holder(op, "alice-1", "alice"), CONTEXT))


async def bob_looks_at_everything(op: Operator) -> dict[str, Any]:
    """bob-any (bob's account, no permission limits) listens to every subject of its
    account until it has heard bob's hub announce itself three times, over which alice's hubs
    announce themselves too; then it looks for alice's bucket and writes its own of that name.
    bob-1 (confined to bob's space) tries alice's subjects and is refused."""
    loop = asyncio.get_running_loop()
    anyone = holder(op, "bob-any", "bob")
    nc = await anyone.connect()
    heard: list[str] = []

    async def keep(msg: Any) -> None:
        heard.append(msg.subject)

    try:
        everything = await nc.subscribe(">", cb=keep)
        deadline = loop.time() + 30
        while len([s for s in heard if s.startswith("ji.bob.hub.")]) < 3:
            assert loop.time() < deadline, f"bob's hub unheard: {heard}"
            await asyncio.sleep(0.05)
        await everything.unsubscribe()  # what follows is bob's own asking
        listened = list(heard)
        js = nc.jetstream()
        try:
            await js.key_value(bucket_name("alice"))
            found = "alice's bucket"
        except Exception as error:  # nats-py: BucketNotFoundError
            found = type(error).__name__
        kv = await js.create_key_value(bucket=bucket_name("alice"))
        await kv.put(context_key(CONTEXT), b'{"forged": true}')
    finally:
        await nc.close()
    confined = holder(op, "bob-1", "bob")
    nc = await confined.connect()
    try:
        await nc.subscribe("ji.alice.>", cb=keep)
        await nc.subscribe("_INBOX.>", cb=keep)
        await nc.publish("ji.alice.hub.x.invoke", b"{}")
        await nc.flush(timeout=5)
        deadline = loop.time() + 30
        while len(confined.errors) < 3 and loop.time() < deadline:
            await asyncio.sleep(0.05)
    finally:
        await nc.close()
    return {"heard": listened, "found": found, "refused": confined.errors, "errors": anyone.errors}


def test_hubs_of_a_space_federate_with_creds_and_another_account_sees_nothing(
    tmp_path: Path, operator: Operator
) -> None:
    with ExitStack() as stack:
        hubs = {}
        for name, user, space in (
            ("a1", "alice-1", "alice"),
            ("a2", "alice-2", "alice"),
            ("b1", "bob-1", "bob"),
        ):
            hubs[name] = creds_hub(tmp_path / name, operator, user, space)
            stack.callback(stop, hubs[name].proc)
        clients = clients_of(stack, hubs)
        clients["a2"].methods.register("Alice.Price")(lambda: {"px": 101.5})
        clients["a2"].contexts.set(CONTEXT, {"px": 101.5})

        # alice's two hubs, each with its own user of alice's account: a method and a context
        wait_for(lambda: servers_of(clients["a1"], "Alice.Price"), 30, "A2's method on A1")
        assert clients["a1"].methods.invoke("Alice.Price", {}, timeout=30).returned == {"px": 101.5}
        wait_for(
            lambda: CONTEXT in clients["a1"].contexts.all(),
            30,
            "A2's context on A1",
        )
        assert clients["a1"].contexts.get(CONTEXT) == {"px": 101.5}
        assert alice_reads_her_context(operator) == {"px": 101.5}

        # bob's account: nothing of alice's is heard, her bucket is not there, and the bucket
        # bob makes under that name is bob's own
        seen = asyncio.run(bob_looks_at_everything(operator))
        assert [s for s in seen["heard"] if "alice" in s] == []
        assert seen["found"] != "alice's bucket"
        assert seen["errors"] == []
        for refused in ('subscription to "ji.alice.>"', 'subscription to "_inbox.>"'):
            assert [e for e in seen["refused"] if f"permissions violation for {refused}" in e]
        assert [e for e in seen["refused"] if 'publish to "ji.alice.hub.x.invoke"' in e]

        # alice's context and method are untouched; bob's hub never saw them
        assert alice_reads_her_context(operator) == {"px": 101.5}
        assert clients["a1"].contexts.get(CONTEXT) == {"px": 101.5}
        assert not servers_of(clients["b1"], "Alice.Price")
        assert CONTEXT not in clients["b1"].contexts.all()


def one_clear_line(done: subprocess.CompletedProcess[str], *said: str) -> None:
    """The hub stopped without serving, saying ``said`` without a traceback."""
    assert done.returncode != 0 and "Interop hub:" not in done.stdout, done.stderr
    assert "Traceback" not in done.stderr, done.stderr
    for words in said:
        assert words in done.stderr, done.stderr


def test_unusable_or_refused_creds_stop_the_hub_with_a_clear_error(
    tmp_path: Path, operator: Operator
) -> None:
    url = operator.nats.url
    setting = "c.InteropHub.federation_credentials"
    missing = tmp_path / "nowhere.creds"
    one_clear_line(
        run_hub(tmp_path, url, f"--federation-creds={missing}"),
        f"{setting}: cannot read '{missing}': No such file or directory",
    )
    malformed = tmp_path / "malformed.creds"
    malformed.write_text("not a creds file\n")
    one_clear_line(
        run_hub(tmp_path, url, f"--federation-creds={malformed}"),
        f"{setting} '{malformed}': not a NATS .creds file",
    )
    # the seed without its JWT (nats-py alone would look for the JWT forever)
    seed_only = tmp_path / "seed-only.creds"
    seed_only.write_text(operator.creds["alice-1"].read_text().split("------END NATS USER JWT")[1])
    one_clear_line(
        run_hub(tmp_path, url, f"--federation-creds={seed_only}"),
        f"{setting} '{seed_only}': not a NATS .creds file (no user JWT after",
    )
    one_clear_line(
        run_hub(tmp_path, url, f"--federation-creds={operator.creds['alice-old']}"),
        f"{setting} '{operator.creds['alice-old']}': its user JWT expired at 2001-09-09",
    )
    # a well-made user of an operator this server does not trust: NATS refuses it
    stranger = make_accounts({"accounts": [{"name": "alice", "users": [{"name": "x"}]}]})
    foreign = write_creds(tmp_path / "foreign", stranger)["x"]
    one_clear_line(
        run_hub(tmp_path, url, f"--federation-creds={foreign}"),
        f"no NATS server accepts this hub at {url} (it refused the credentials: "
        "Authorization Violation)",
        setting,
    )
    # a valid user of alice's account, asked into bob's space: NATS denies the subjects
    one_clear_line(
        run_hub(
            tmp_path,
            url,
            f"--federation-creds={operator.creds['alice-1']}",
            "--federation-space=bob",
        ),
        "does not let this hub's credentials use space 'bob'",
    )


def test_hubs_with_nkey_seeds_federate_in_their_space(tmp_path: Path) -> None:
    made = make_accounts({"nkey_users": ["alice-1", "alice-2"]})
    users = made["nkey_users"]
    config = tmp_path / "nats-nkeys.conf"
    config.write_text(
        json.dumps(
            {
                "authorization": {
                    "users": [
                        {"nkey": user["public"], "permissions": space_permissions("alice")}
                        for user in users.values()
                    ]
                }
            }
        )
    )
    seeds = {}
    for name, user in users.items():
        seeds[name] = tmp_path / f"{name}.nk"
        seeds[name].write_text(user["seed"] + "\n")
    server = Nats(tmp_path, "-c", str(config))
    with ExitStack() as stack:
        stack.callback(server.stop)
        hubs = [
            start_hub(
                tmp_path / name,
                server.url,
                f"--federation-nkey-seed={seeds[name]}",
                "--federation-space=alice",
            )
            for name in ("alice-1", "alice-2")
        ]
        for hub in hubs:
            stack.callback(stop, hub.proc)
        a, b = (
            ji.connect(url=h.url, token=h.token, application=f"app-{i}") for i, h in enumerate(hubs)
        )
        stack.callback(a.close)
        stack.callback(b.close)
        b.methods.register("Alice.Rates")(lambda: {"rate": 0.05})
        wait_for(lambda: servers_of(a, "Alice.Rates"), 30, "B's method on A")
        assert a.methods.invoke("Alice.Rates", {}, timeout=30).returned == {"rate": 0.05}
        # a seed the server does not list: refused, said clearly
        stranger = make_accounts({"nkey_users": ["x"]})["nkey_users"]["x"]
        unknown = tmp_path / "unknown.nk"
        unknown.write_text(stranger["seed"])
        one_clear_line(
            run_hub(tmp_path / "u", server.url, f"--federation-nkey-seed={unknown}"),
            "it refused the credentials: Authorization Violation",
            "c.InteropHub.federation_nkey_seed",
        )


def test_the_jupyterhub_creds_recipe_gives_each_server_its_own_nats_user(
    tmp_path: Path, operator: Operator
) -> None:
    creds_dir = operator.creds["carol"].parent
    settings = {"NATS_URL": operator.nats.url, "NATS_CREDS_DIR": str(creds_dir)}
    env = run_recipe(RECIPE, "carol", settings)
    assert env == {
        ENV_FEDERATION_URL: operator.nats.url,
        ENV_FEDERATION_SPACE: "desk-1",
        ENV_FEDERATION_CREDENTIALS: str(operator.creds["carol"]),
    }
    with ExitStack() as stack:
        teammate = creds_hub(tmp_path / "dave", operator, "dave", "desk-1")
        stack.callback(stop, teammate.proc)
        carol_calls_dave(stack, tmp_path / "carol", env, teammate, operator.nats.url)

        # a user the admin made no .creds for: the server serves its own peers and says why
        erin = run_recipe(RECIPE, "erin", settings)
        lone = start_server(tmp_path / "erin", env=erin)
        stack.callback(stop, lone.proc)
        status = wait_for(
            lambda: (s := lone.view("federation"))["error"] and s, 30, "erin's server's error"
        )
        assert status["connected"] is False
        assert status["error"] == (
            f"c.InteropHub.federation_credentials: cannot read {str(creds_dir / 'erin.creds')!r}: "
            "No such file or directory"
        )


def test_creds_renewed_in_place_are_used_at_the_next_reconnection(tmp_path: Path) -> None:
    """The NATS server restarts under a new operator: only the renewed files, read again
    by the hubs when they reconnect, let them in, and a method crosses again."""
    spec = {
        "accounts": [
            {
                "name": "alice",
                "users": [
                    {"name": n, "permissions": space_jwt_permissions("alice")}
                    for n in ("alice-1", "alice-2")
                ],
            }
        ]
    }
    config = tmp_path / "nats-operator.conf"
    config.write_text(operator_config(made := make_accounts(spec)))
    creds = write_creds(tmp_path / "creds", made)
    server = Nats(tmp_path, "-c", str(config))
    with ExitStack() as stack:
        stack.callback(server.stop)
        op = Operator(server, creds)
        hubs = {n: creds_hub(tmp_path / n, op, n, "alice") for n in ("alice-1", "alice-2")}
        for hub in hubs.values():
            stack.callback(stop, hub.proc)
        a, b = clients_of(stack, hubs).values()
        b.methods.register("Alice.Before")(lambda: {})
        wait_for(lambda: servers_of(a, "Alice.Before"), 30, "B's method on A")

        server.kill()
        renewed = make_accounts(spec)  # another operator: the old files are worth nothing
        config.write_text(operator_config(renewed))
        for user, text in renewed["creds"].items():
            creds[user].write_text(text)
        server.restart()
        b.methods.register("Alice.After")(lambda: {"renewed": True})
        wait_for(lambda: servers_of(a, "Alice.After"), 60, "B's new method on A, reconnected")
        assert a.methods.invoke("Alice.After", {}, timeout=30).returned == {"renewed": True}
