"""Discovery: the environment variables kernels inherit and the runtime file scripts read.

Kernels started by the server inherit ``os.environ``, so the extension exports the gateway URL
and the interop token there (docs/ARCHITECTURE.md, "Discovery"). Processes started elsewhere
find a running hub through ``jupyter_interop-<pid>.json`` in the Jupyter runtime dir; it holds
the token, so it is created with mode 0600 from the start (never written world-readable, then
chmod-ed). It also records ``root_dir``, the directory the hub serves (a Jupyter server's root,
a standalone hub's working directory): with several hubs running, a script picks the one whose
root holds its working directory (see :mod:`jupyter_interop.client.discovery`).
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import socket
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from jupyter_core.paths import jupyter_runtime_dir

from .._version import __version__
from ..protocol.wire import ENV_TOKEN, ENV_URL

__all__ = [
    "ENV_TOKEN",
    "ENV_URL",
    "GATEWAY_PATH",
    "EnvironmentExport",
    "RuntimeFile",
    "host_for_url",
    "http_to_ws",
    "runtime_file_path",
]

#: path of the gateway below the server's base URL
GATEWAY_PATH = "interop/gateway"


def runtime_file_path(pid: int | None = None, runtime_dir: str | None = None) -> Path:
    """``<runtime dir>/jupyter_interop-<pid>.json``."""
    directory = Path(runtime_dir or jupyter_runtime_dir())
    return directory / f"jupyter_interop-{pid if pid is not None else os.getpid()}.json"


def http_to_ws(url: str) -> str:
    """The WebSocket form of an http(s) URL (``http+unix`` becomes ``ws+unix``)."""
    parts = urlsplit(url)
    scheme = parts.scheme.replace("https", "wss").replace("http", "ws")
    return urlunsplit((scheme, parts.netloc, parts.path, parts.query, parts.fragment))


def host_for_url(ip: str) -> str:
    """A connectable host for a listening address: wildcards become the host name, IPv6 is
    bracketed."""
    if ip in ("", "0.0.0.0", "::"):
        return socket.gethostname()
    with contextlib.suppress(ValueError):
        if ipaddress.ip_address(ip).version == 6:
            return f"[{ip}]"
    return ip


class RuntimeFile:
    """The runtime file of one hub; :meth:`write` may be called again when the URL changes."""

    def __init__(self, kind: str, pid: int | None = None, runtime_dir: str | None = None):
        self.kind = kind
        self.pid = pid if pid is not None else os.getpid()
        self.path = runtime_file_path(self.pid, runtime_dir)
        self.written = False

    def write(self, url: str, token: str, **extra: Any) -> Path:
        """Write (or replace) the file atomically, readable by the owner only; ``extra``
        fields are added (``root_dir`` replaces the default, the working directory)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        payload = {
            "url": url,
            "token": token,
            "pid": self.pid,
            "kind": self.kind,
            "version": __version__,
            "started": time.time(),
            "root_dir": os.path.abspath(os.getcwd()),
            **extra,
        }
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            if hasattr(os, "fchmod"):  # an old tmp file could have wider permissions
                os.fchmod(fd, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump(payload, f, indent=1)
        except BaseException:
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise
        os.replace(tmp, self.path)
        self.written = True
        return self.path

    def remove(self) -> None:
        """Delete the file if this object wrote it; safe to call again."""
        if self.written:
            with contextlib.suppress(FileNotFoundError):
                self.path.unlink()
            self.written = False


class EnvironmentExport:
    """Sets ``JUPYTER_INTEROP_URL``/``_TOKEN`` in ``os.environ`` and restores what was there."""

    def __init__(self) -> None:
        self._saved: dict[str, str | None] | None = None

    def set(self, url: str, token: str) -> None:
        if self._saved is None:
            self._saved = {name: os.environ.get(name) for name in (ENV_URL, ENV_TOKEN)}
        os.environ[ENV_URL] = url
        os.environ[ENV_TOKEN] = token

    def restore(self) -> None:
        """Put the previous values back (or unset them); safe to call again."""
        if self._saved is None:
            return
        for name, value in self._saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        self._saved = None
