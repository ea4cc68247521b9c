"""The NATS permissions of a space and the secrets kept out of sight
(server/federation_access.py); nats-server enforcing them is tests/integration/
test_federation_security.py."""

from __future__ import annotations

import json

import pytest

from jupyter_interop.server.federation_access import (
    inbox_prefix,
    nats_config,
    public_url,
    space_password,
    space_permissions,
    space_url,
)
from jupyter_interop.server.federation_contexts import bucket_name


def test_a_space_may_use_its_subjects_inboxes_and_kv_bucket_only() -> None:
    rights = space_permissions("alice")
    publish, subscribe = rights["publish"]["allow"], rights["subscribe"]["allow"]
    assert subscribe == ["ji.alice.>", "_INBOX.alice.>"]
    assert "ji.alice.>" in publish and "$KV.ji-alice-contexts.>" in publish
    assert inbox_prefix("alice") == "_INBOX.alice" and bucket_name("alice") in str(publish)
    # nothing of another space, no wildcard over every inbox, stream or subject
    assert not [s for s in publish + subscribe if "bob" in s or s in (">", "_INBOX.>")]
    assert all("alice" in s for s in publish + subscribe)
    assert rights["allow_responses"] is True


def test_the_config_has_one_confined_user_per_space() -> None:
    config = json.loads(
        nats_config([("alice", "pw-a"), ("desk-1", "pw-d")], listen="127.0.0.1:4222")
    )
    assert config["listen"] == "127.0.0.1:4222" and "jetstream" not in config
    users = config["authorization"]["users"]
    assert [(u["user"], u["password"]) for u in users] == [("alice", "pw-a"), ("desk-1", "pw-d")]
    assert users[1]["permissions"] == space_permissions("desk-1")


def test_passwords_derive_from_one_secret_and_differ_per_space() -> None:
    assert space_password("s3cret", "alice") == space_password("s3cret", "alice")
    assert space_password("s3cret", "alice") != space_password("s3cret", "bob")
    assert space_password("s3cret", "alice") != space_password("other", "alice")


def test_urls_carry_credentials_and_are_shown_without_them() -> None:
    url = space_url("nats://nats.example:4222", "alice", space_password("s3cret", "alice"))
    assert url == f"nats://alice:{space_password('s3cret', 'alice')}@nats.example:4222"
    assert public_url(url) == "nats://nats.example:4222"
    assert public_url("nats://s3cret-token@127.0.0.1:4222") == "nats://127.0.0.1:4222"
    assert public_url("nats://127.0.0.1:4222") == "nats://127.0.0.1:4222"
    with pytest.raises(ValueError, match="password"):
        space_url("nats://127.0.0.1:4222", "alice", "p@ss/word")
