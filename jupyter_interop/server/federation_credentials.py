"""The NATS identity of a federated hub besides a URL's user and password: a ``.creds`` file
(a user JWT and its nkey seed, NATS's decentralised authentication) or an nkey seed file
(docs/FEDERATION.md, "Security model").

The files are read and checked before the first connection, so that a missing, unreadable,
malformed or expired one is said with its setting and path: nats-py itself would fail later
with an unrelated error, or read a ``.creds`` file without a JWT forever. nats-py reads the
files again at each (re)connection, so credentials an admin renews in place are picked up.
"""

from __future__ import annotations

import base64
import binascii
import json
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

__all__ = [
    "CREDENTIALS_SETTING",
    "NKEY_SEED_SETTING",
    "CredentialsError",
    "nats_auth_options",
]

CREDENTIALS_SETTING = "c.InteropHub.federation_credentials"
NKEY_SEED_SETTING = "c.InteropHub.federation_nkey_seed"

#: the armour lines of a ``.creds`` file (``nsc generate creds``); nats-py takes the line
#: after each BEGIN as the JWT, the seed
_JWT_BEGIN = "-----BEGIN NATS USER JWT-----"
_SEED_BEGIN = "-----BEGIN USER NKEY SEED-----"


class CredentialsError(ValueError):
    """A credentials or seed file this hub cannot use: its message names setting and path."""


def nats_auth_options(
    credentials: str, nkey_seed: str, *, now: float | None = None
) -> dict[str, Any]:
    """nats-py ``connect`` options for ``credentials`` (a ``.creds`` path) or ``nkey_seed``
    (a seed file path), each checked first; ``{}`` when neither is set."""
    if credentials and nkey_seed:
        raise CredentialsError(
            f"{CREDENTIALS_SETTING} and {NKEY_SEED_SETTING} are both set: a hub connects as "
            "one NATS user, give it one of them"
        )
    if credentials:
        check_creds(credentials, time.time() if now is None else now)
        return {"user_credentials": credentials}
    if nkey_seed:
        _seed_pair(NKEY_SEED_SETTING, nkey_seed, _read(NKEY_SEED_SETTING, nkey_seed).strip())
        return {"nkeys_seed": nkey_seed}
    return {}


def check_creds(path: str, now: float) -> None:
    """Raise :class:`CredentialsError` unless ``path`` holds a user JWT, valid at ``now``,
    and the seed of that same user."""
    text = _read(CREDENTIALS_SETTING, path)
    token = _after(text, _JWT_BEGIN, path, "user JWT")
    seed = _after(text, _SEED_BEGIN, path, "user nkey seed")
    claims = _claims(token, path)
    subject = claims.get("sub")
    kind = (claims.get("nats") or {}).get("type", claims.get("type"))
    if kind != "user" or not isinstance(subject, str):
        raise CredentialsError(
            f"{CREDENTIALS_SETTING} {path!r}: its JWT is not a NATS user's (type {kind!r})"
        )
    expires = claims.get("exp")
    if isinstance(expires, int | float) and expires and expires <= now:
        when = datetime.fromtimestamp(expires, timezone.utc).isoformat(timespec="seconds")
        raise CredentialsError(
            f"{CREDENTIALS_SETTING} {path!r}: its user JWT expired at {when}: ask the NATS "
            "admin for new credentials"
        )
    if _seed_pair(CREDENTIALS_SETTING, path, seed) != subject:
        raise CredentialsError(
            f"{CREDENTIALS_SETTING} {path!r}: its nkey seed is not that of the JWT's user {subject}"
        )


def _read(setting: str, path: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        why = error.strerror if isinstance(error, OSError) and error.strerror else str(error)
        raise CredentialsError(f"{setting}: cannot read {path!r}: {why}") from error


def _after(text: str, begin: str, path: str, what: str) -> str:
    """The line after ``begin``, where nats-py looks for it."""
    lines = text.splitlines()
    for number, line in enumerate(lines[:-1]):
        if begin in line and lines[number + 1].strip():
            return lines[number + 1].strip()
    raise CredentialsError(
        f"{CREDENTIALS_SETTING} {path!r}: not a NATS .creds file (no {what} after "
        f"{begin!r}); make one with 'nsc generate creds'"
    )


def _claims(token: str, path: str) -> dict[str, Any]:
    """The claims of ``token``, read only: the NATS server checks the signatures."""
    parts = token.split(".")
    try:
        if len(parts) != 3:
            raise ValueError("not three parts")
        payload = parts[1] + "=" * (-len(parts[1]) % 4)
        claims = json.loads(base64.urlsafe_b64decode(payload))
        if not isinstance(claims, dict):
            raise ValueError("claims are not an object")
        return claims
    except (ValueError, binascii.Error) as error:
        raise CredentialsError(
            f"{CREDENTIALS_SETTING} {path!r}: its user JWT cannot be read ({error})"
        ) from error


def _seed_pair(setting: str, path: str, seed: str) -> str:
    """The public user key of ``seed``, or :class:`CredentialsError` if it is none."""
    try:
        import nkeys  # nats-py's optional dependency; the federation extra (setup.cfg)
    except ImportError as error:
        raise CredentialsError(
            f"{setting} needs the nkeys package: pip install nkeys (or jupyter_interop[federation])"
        ) from error
    if not seed.startswith("SU"):
        raise CredentialsError(f"{setting} {path!r}: not a NATS user nkey seed (SU...)")
    try:
        pair = nkeys.from_seed(bytearray(seed.encode()))
        public = str(pair.public_key.decode())
    except Exception as error:  # nkeys raises its own errors, and binascii's
        raise CredentialsError(
            f"{setting} {path!r}: not a valid NATS nkey seed ({type(error).__name__})"
        ) from error
    pair.wipe()
    return public
