"""How the client proves who it is in ``hello``, the three ways io.Connect's JS clients offer.

- ``access-token``: the interop token of our hub (``JUPYTER_INTEROP_TOKEN``), or any access
  token a gateway's authenticator accepts;
- ``secret``: a login and password (``ji.connect(url, username=..., password=...)``);
- ``gateway-token``: a token the gateway itself issued (``create-token``). io.Connect Desktop
  hands one to every app it starts, in the environment variable ``_GD_STARTING_CONTEXT_``
  (JSON with ``gwURL`` and ``gwToken``); a client found there logs in with it.

The identity the client claims next to it is :func:`default_identity`; what a refused
``hello`` refused, in the error the client raises, is :func:`credentials`.

Gateway tokens are short-lived, so a client that logged in with one asks the gateway for a
fresh one after each ``welcome`` and uses that to log in again after a reconnect.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Any

from .._version import __version__
from ..protocol.wire import (
    ACCESS_TOKEN_AUTH_METHOD,
    DESKTOP_CONTEXT_ENV,
    GATEWAY_TOKEN_AUTH_METHOD,
    SECRET_AUTH_METHOD,
)

__all__ = [
    "DESKTOP_CONTEXT_ENV",
    "DesktopStart",
    "authentication",
    "credentials",
    "default_identity",
    "desktop_start",
    "env_object",
]

#: what an authentication failure refused, by ``hello`` method
_CREDENTIALS = {
    ACCESS_TOKEN_AUTH_METHOD: "the token",
    SECRET_AUTH_METHOD: "the username and password",
    GATEWAY_TOKEN_AUTH_METHOD: "the gateway token",
}


@dataclass(frozen=True)
class DesktopStart:
    """What io.Connect Desktop told a process it started: its gateway and a gateway token."""

    url: str
    gateway_token: str | None


def env_object(name: str) -> dict[str, Any] | None:
    """The JSON object in the environment variable ``name`` (a starting context a launcher
    handed this process), or None when unset or not a JSON object."""
    raw = os.environ.get(name)
    if not raw:
        return None
    try:
        value = json.loads(raw)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def desktop_start() -> DesktopStart | None:
    """The gateway of the io.Connect Desktop that started this process, if one did."""
    context = env_object(DESKTOP_CONTEXT_ENV)
    if context is None:
        return None
    url = context.get("gwURL")
    token = context.get("gwToken")
    if not isinstance(url, str) or not url:
        return None
    return DesktopStart(url, token if isinstance(token, str) and token else None)


def authentication(
    token: str | None,
    username: str | None = None,
    password: str | None = None,
    gateway_token: str | None = None,
) -> dict[str, Any]:
    """The ``authentication`` of ``hello``: a gateway token first, then a login, then the
    access token (an empty one when there is none: the gateway refuses it with its reason)."""
    if gateway_token:
        return {"method": GATEWAY_TOKEN_AUTH_METHOD, "token": gateway_token}
    if username is not None:
        return {"method": SECRET_AUTH_METHOD, "login": username, "secret": password or ""}
    return {"method": ACCESS_TOKEN_AUTH_METHOD, "token": token or ""}


def credentials(authentication: dict[str, Any]) -> str:
    """What a refused ``hello`` with this ``authentication`` refused, for the error message."""
    return _CREDENTIALS[authentication["method"]]


def default_identity(application: str, kernel: str | None) -> dict[str, Any]:
    """What we claim in ``hello``; the hub resolves the rest (machine, user, notebook)."""
    identity: dict[str, Any] = {
        "application": application,
        "applicationName": application,
        "process": os.getpid(),
        "api": f"jupyter_interop/{__version__}",
        "language": "python",
    }
    if kernel:
        identity["kernelId"] = kernel
    return identity
