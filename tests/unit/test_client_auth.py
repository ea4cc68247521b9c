"""How the client chooses its gateway and its ``hello`` authentication (client/auth.py,
client/discovery.py), including io.Connect Desktop's ``_GD_STARTING_CONTEXT_``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import jupyter_interop as ji
from jupyter_interop.client.auth import authentication, desktop_start
from jupyter_interop.client.discovery import find_hub
from jupyter_interop.client.negotiation import connection_status

DESKTOP_URL = "ws://127.0.0.1:8385"


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ("JUPYTER_INTEROP_URL", "JUPYTER_INTEROP_TOKEN", "_GD_STARTING_CONTEXT_"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(tmp_path))  # no runtime files of real hubs


def started_by_desktop(monkeypatch: pytest.MonkeyPatch, **context: object) -> None:
    monkeypatch.setenv("_GD_STARTING_CONTEXT_", json.dumps(context))


def test_hello_methods() -> None:
    assert authentication("T") == {"method": "access-token", "token": "T"}
    assert authentication(None) == {"method": "access-token", "token": ""}
    assert authentication(None, "ann", "pw") == {"method": "secret", "login": "ann", "secret": "pw"}
    assert authentication("T", None, None, "G") == {"method": "gateway-token", "token": "G"}


def test_the_desktop_starting_context_gives_url_and_gateway_token(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    started_by_desktop(monkeypatch, gwURL=DESKTOP_URL, gwToken="G1", env="DEMO")
    address = find_hub()
    assert (address.url, address.gateway_token, address.auth_method) == (
        DESKTOP_URL,
        "G1",
        "gateway-token",
    )
    assert "_GD_STARTING_CONTEXT_" in address.source
    assert find_hub(DESKTOP_URL).gateway_token == "G1"  # the same gateway named explicitly
    assert find_hub("ws://elsewhere:1").gateway_token is None
    # credentials given by the caller win over the desktop's token
    assert find_hub(None, username="ann", password="pw").auth_method == "secret"
    assert find_hub(None, token="T").auth_method == "access-token"


def test_jupyter_interop_url_comes_before_the_desktop(monkeypatch: pytest.MonkeyPatch) -> None:
    started_by_desktop(monkeypatch, gwURL=DESKTOP_URL, gwToken="G1")
    monkeypatch.setenv("JUPYTER_INTEROP_URL", "ws://127.0.0.1:9999/interop/gateway")
    monkeypatch.setenv("JUPYTER_INTEROP_TOKEN", "T")
    address = find_hub()
    assert (address.url, address.auth_method) == (
        "ws://127.0.0.1:9999/interop/gateway",
        "access-token",
    )


@pytest.mark.parametrize(
    "raw", ["not json", "[1]", json.dumps({"gwToken": "G"}), json.dumps({"gwURL": ""})]
)
def test_an_unusable_starting_context_is_ignored(monkeypatch: pytest.MonkeyPatch, raw: str) -> None:
    monkeypatch.setenv("_GD_STARTING_CONTEXT_", raw)
    assert desktop_start() is None
    with pytest.raises(ji.DiscoveryError, match="_GD_STARTING_CONTEXT_"):
        find_hub()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"password": "pw"}, "password needs a username"),
        ({"username": ""}, "username must be a non-empty string"),
        ({"username": "ann", "token": "T"}, "either token or username"),
        ({"username": "ann", "password": 3}, "password must be a string"),
    ],
)
def test_bad_credentials_are_refused_before_connecting(kwargs: dict, message: str) -> None:
    with pytest.raises(ji.ArgumentError, match=message):
        ji.connect("ws://127.0.0.1:1/", new=True, **kwargs)


def test_status_lists_each_fallback_on_a_plain_gateway() -> None:
    requested = {"binary": True, "batch": True, "channels": True, "kernel_id": "k1"}
    plain = connection_status(
        requested, {}, {"peer_id": "p1", "resolved_identity": {"kernelId": "k1"}}
    )
    assert plain["gateway"] == "GW3 gateway" and plain["extensions"] == []
    assert set(plain["fallbacks"]) == {"binary", "batch", "channels", "kernel_id"}
    ours = connection_status(
        requested,
        {"binary": True, "batch": True, "channels": True},
        {"options": {"info": {"hub": "jupyter_interop"}}},
    )
    assert ours["gateway"] == "jupyter_interop hub"
    assert ours["extensions"] == ["batch", "binary", "channels", "kernel_id"]
    assert ours["fallbacks"] == {}
