"""Who may use which space: the NATS permissions that confine a federated hub to its own
space (docs/FEDERATION.md, "Security model"), and how its URL is shown without secrets.

NATS enforces a space's isolation, not our code: each space has one NATS user whose
permissions allow exactly the space's subjects, its reply inboxes and its JetStream KV
bucket. A hub connects with the credentials of its space; a client holding another space's
credentials, whatever code it runs, is refused by the NATS server (a permissions violation).
With NATS's decentralised authentication a space is an account instead, and its users' JWTs
carry the same permissions (:func:`space_jwt_permissions`).
No I/O here: :func:`nats_config` renders a nats-server configuration (JSON, which
nats-server reads) that an operator installs and the tests start nats-server with.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterable
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

from ..hub.core import subject_token
from .federation_context_objects import objects_bucket_name
from .federation_contexts import bucket_name

__all__ = [
    "inbox_prefix",
    "nats_config",
    "public_url",
    "space_jwt_permissions",
    "space_password",
    "space_permissions",
    "space_url",
    "subject_token",
]


def inbox_prefix(space: str) -> str:
    """The reply inboxes of a space's hubs (nats-py's ``inbox_prefix``): under the space,
    so that another space can neither subscribe to its replies nor forge them."""
    return f"_INBOX.{space}"


def space_permissions(space: str) -> dict[str, Any]:
    """The nats-server ``permissions`` of the user of ``space``: publish and subscribe on
    ``ji.<space>.>``, replies through its own inboxes, and the JetStream API, subjects and
    flow control of its own KV bucket and object store only."""
    return {
        "publish": {
            "allow": [
                f"ji.{space}.>",
                f"$KV.{bucket_name(space)}.>",
                *_stream_rights(f"KV_{bucket_name(space)}"),
                f"$O.{objects_bucket_name(space)}.>",
                *_stream_rights(f"OBJ_{objects_bucket_name(space)}"),
            ]
        },
        "subscribe": {"allow": [f"ji.{space}.>", f"{inbox_prefix(space)}.>"]},
        # answering a request it received (an invoke from another hub of the space) needs no
        # publish right on the asker's inbox
        "allow_responses": True,
    }


def space_jwt_permissions(space: str) -> dict[str, Any]:
    """:func:`space_permissions` as a NATS user JWT carries them (``pub``, ``sub``,
    ``resp``): the user of a ``.creds`` file confined to ``space`` the same way."""
    permissions = space_permissions(space)
    return {
        "pub": {"allow": list(permissions["publish"]["allow"])},
        "sub": {"allow": list(permissions["subscribe"]["allow"])},
        # allow_responses: one reply to each request received, for the server's default time
        "resp": {"max": 1, "ttl": 0},
    }


def _stream_rights(stream: str) -> list[str]:
    """The JetStream API calls and acknowledgements on one stream: $JS.API.STREAM.INFO.<s>,
    $JS.API.CONSUMER.CREATE.<s>[.<name>...], $JS.API.DIRECT.GET.<s>.<subject>,
    $JS.API.STREAM.MSG.GET.<s>, $JS.API.STREAM.PURGE.<s> ..."""
    return [
        f"$JS.API.*.*.{stream}",
        f"$JS.API.*.*.{stream}.>",
        f"$JS.API.*.*.*.{stream}",
        f"$JS.API.*.*.*.{stream}.>",
        f"$JS.ACK.{stream}.>",
    ]


def space_password(secret: str, space: str) -> str:
    """A space's NATS password derived from one deployment ``secret``: JupyterHub's config
    and the nats-server config compute it alike, and no password list is kept anywhere."""
    return hmac.new(secret.encode(), f"ji-space:{space}".encode(), hashlib.sha256).hexdigest()


def space_url(nats_url: str, space: str, password: str) -> str:
    """``nats_url`` with the space's user and password (``nats://<space>:<password>@host``).
    nats-py reads them from the URL as they are, so both must need no %-escape."""
    for what, value in (("space", space), ("password", password)):
        if quote(value, safe="") != value:
            raise ValueError(f"the {what} must be letters, digits, '-', '_', '.' or '~' only")
    parts = urlsplit(nats_url)
    host = parts.hostname or ""
    netloc = f"{space}:{password}@{host}"
    if parts.port is not None:
        netloc += f":{parts.port}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def public_url(url: str) -> str:
    """``url`` without its user, password or token: what logs, errors and views may show."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    netloc = parts.netloc.rsplit("@", 1)[1]
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def nats_config(
    spaces: Iterable[tuple[str, str]], *, listen: str = "", jetstream_dir: str = ""
) -> str:
    """A nats-server configuration with one user per ``(space, password)``, each confined to
    its space; ``listen`` (``host:port``) and ``jetstream_dir`` when given."""
    config: dict[str, Any] = {}
    if listen:
        config["listen"] = listen
    if jetstream_dir:
        config["jetstream"] = {"store_dir": jetstream_dir}
    config["authorization"] = {
        "users": [
            {"user": space, "password": password, "permissions": space_permissions(space)}
            for space, password in spaces
        ]
    }
    return json.dumps(config, indent=2) + "\n"
