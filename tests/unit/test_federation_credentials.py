"""A hub's NATS identity files checked before it connects (server/federation_credentials.py):
each unusable file is said with its setting and path. NATS accepting and refusing real ones
is tests/integration/test_federation_creds.py."""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path

import nkeys
import pytest

from jupyter_interop.server.federation_access import space_jwt_permissions, space_permissions
from jupyter_interop.server.federation_credentials import CredentialsError, nats_auth_options

NOW = 1_800_000_000.0


def new_seed() -> tuple[str, str]:
    """A user nkey seed and its public key."""
    seed = nkeys.encode_seed(os.urandom(32), nkeys.PREFIX_BYTE_USER)
    return seed.decode(), nkeys.from_seed(bytearray(seed)).public_key.decode()


def token(claims: dict[str, object]) -> str:
    """A JWT with ``claims`` (unsigned: the hub reads claims, the NATS server checks)."""

    def part(value: object) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")

    return f"{part({'typ': 'JWT', 'alg': 'ed25519-nkey'})}.{part(claims)}.c2ln"


def creds(tmp_path: Path, jwt: str, seed: str) -> str:
    """A ``.creds`` file as ``nsc generate creds`` writes it."""
    path = tmp_path / "hub.creds"
    path.write_text(
        f"-----BEGIN NATS USER JWT-----\n{jwt}\n------END NATS USER JWT------\n\n"
        "************************* IMPORTANT *************************\n\n"
        f"-----BEGIN USER NKEY SEED-----\n{seed}\n------END USER NKEY SEED------\n"
    )
    return str(path)


def user_claims(public: str, **more: object) -> dict[str, object]:
    return {"sub": public, "iss": "A" * 56, "nats": {"type": "user", "version": 2}, **more}


def refusal(credentials: str = "", nkey_seed: str = "") -> str:
    with pytest.raises(CredentialsError) as caught:
        nats_auth_options(credentials, nkey_seed, now=NOW)
    return str(caught.value)


def test_a_valid_creds_file_or_seed_file_becomes_nats_py_options(tmp_path: Path) -> None:
    seed, public = new_seed()
    path = creds(tmp_path, token(user_claims(public, exp=NOW + 60)), seed)
    assert nats_auth_options(path, "", now=NOW) == {"user_credentials": path}
    seed_file = tmp_path / "hub.nk"
    seed_file.write_text(seed + "\n")
    assert nats_auth_options("", str(seed_file)) == {"nkeys_seed": str(seed_file)}
    assert nats_auth_options("", "") == {}


def test_each_unusable_creds_file_is_said_with_its_setting_and_path(tmp_path: Path) -> None:
    setting = "c.InteropHub.federation_credentials"
    seed, public = new_seed()
    missing = str(tmp_path / "nowhere.creds")
    assert refusal(missing) == f"{setting}: cannot read {missing!r}: No such file or directory"
    assert refusal(str(tmp_path)).startswith(f"{setting}: cannot read {str(tmp_path)!r}")

    junk = tmp_path / "junk.creds"
    junk.write_text("not a creds file\n")
    assert refusal(str(junk)).startswith(f"{setting} {str(junk)!r}: not a NATS .creds file")
    assert "cannot be read" in refusal(creds(tmp_path, "no-jwt-here", seed))
    account = token({"sub": "A" * 56, "nats": {"type": "account"}})
    assert "not a NATS user's (type 'account')" in refusal(creds(tmp_path, account, seed))

    expired = creds(tmp_path, token(user_claims(public, exp=1_000_000_000)), seed)
    said = refusal(expired)
    assert said.startswith(f"{setting} {expired!r}: its user JWT expired at 2001-09-09T01:46:40")

    other_seed, _ = new_seed()
    mismatched = creds(tmp_path, token(user_claims(public)), other_seed)
    assert f"its nkey seed is not that of the JWT's user {public}" in refusal(mismatched)
    assert "not a NATS user nkey seed" in refusal(
        creds(tmp_path, token(user_claims(public)), "SAx")
    )
    broken = seed[:20]  # cut short
    assert "not a valid NATS nkey seed" in refusal(
        creds(tmp_path, token(user_claims(public)), broken)
    )
    # the seed never appears in what is said
    assert seed not in said and seed not in refusal(mismatched)


def test_a_seed_file_and_both_settings_at_once(tmp_path: Path) -> None:
    setting = "c.InteropHub.federation_nkey_seed"
    garbage = tmp_path / "garbage.nk"
    garbage.write_text("hello\n")
    assert refusal(nkey_seed=str(garbage)) == (
        f"{setting} {str(garbage)!r}: not a NATS user nkey seed (SU...)"
    )
    missing = str(tmp_path / "nowhere.nk")
    assert refusal(nkey_seed=missing).startswith(f"{setting}: cannot read {missing!r}")
    assert "both set" in refusal(str(garbage), str(garbage))


def test_a_creds_user_carries_the_spaces_permissions() -> None:
    config, jwt = space_permissions("alice"), space_jwt_permissions("alice")
    assert jwt["pub"]["allow"] == config["publish"]["allow"]
    assert jwt["sub"]["allow"] == config["subscribe"]["allow"] == ["ji.alice.>", "_INBOX.alice.>"]
    assert jwt["resp"]["max"] == 1  # allow_responses: one reply per request received
