"""Where is the hub, and who are we: URL/token discovery, kernel id, default application name.

Order (DESIGN §2.4): explicit arguments win; otherwise ``JUPYTER_INTEROP_URL`` and
``JUPYTER_INTEROP_TOKEN`` (a kernel started by a Jupyter server with the extension inherits
them); otherwise the newest runtime file ``jupyter_interop-<pid>.json`` of a live process in
the Jupyter runtime dir (a script started outside Jupyter). When nothing is found, the error
says what was tried, so the user knows which of the three to fix.
"""

from __future__ import annotations

import json
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from .errors import DiscoveryError

__all__ = [
    "ENV_TOKEN",
    "ENV_URL",
    "HubAddress",
    "default_application",
    "find_hub",
    "kernel_id",
]

ENV_URL = "JUPYTER_INTEROP_URL"
ENV_TOKEN = "JUPYTER_INTEROP_TOKEN"
_RUNTIME_GLOB = "jupyter_interop-*.json"
_KERNEL_FILE = re.compile(r"kernel-([0-9A-Za-z_\-]+)\.json$")


@dataclass(frozen=True)
class HubAddress:
    """A hub to connect to and how it was found (``source`` is shown in errors and reprs)."""

    url: str
    token: str | None
    source: str


def _token_from_url(url: str) -> str | None:
    values = parse_qs(urlsplit(url).query).get("token")
    return values[-1] if values else None


def _pid_alive(pid: object) -> bool:
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # alive, owned by someone else
    except OSError:
        return False
    return True


def _runtime_dir() -> Path:
    from jupyter_core.paths import jupyter_runtime_dir

    return Path(jupyter_runtime_dir())


def _from_runtime_files(directory: Path) -> HubAddress | None:
    candidates: list[tuple[float, Path, dict[str, object]]] = []
    for path in directory.glob(_RUNTIME_GLOB):
        try:
            info = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if not isinstance(info, dict) or not isinstance(info.get("url"), str):
            continue
        if not _pid_alive(info.get("pid")):
            continue
        started = info.get("started")
        when = float(started) if isinstance(started, (int, float)) else path.stat().st_mtime
        candidates.append((when, path, info))
    if not candidates:
        return None
    _, path, info = max(candidates, key=lambda c: c[0])
    token = info.get("token")
    return HubAddress(
        str(info["url"]), token if isinstance(token, str) else None, f"runtime file {path}"
    )


def find_hub(url: str | None = None, token: str | None = None) -> HubAddress:
    """Resolve the hub address; raise :class:`DiscoveryError` listing what was tried."""
    if url:
        return HubAddress(url, token if token is not None else _token_from_url(url), "argument")
    tried = []
    env_url = os.environ.get(ENV_URL)
    if env_url:
        env_token = os.environ.get(ENV_TOKEN)
        return HubAddress(
            env_url,
            token if token is not None else (env_token or _token_from_url(env_url)),
            f"environment ({ENV_URL})",
        )
    tried.append(f"the environment variable {ENV_URL} (not set)")
    try:
        directory = _runtime_dir()
    except Exception as error:  # jupyter_core missing or broken: say so
        tried.append(f"runtime files (could not locate the Jupyter runtime dir: {error})")
    else:
        found = _from_runtime_files(directory)
        if found is not None:
            if token is not None:
                return HubAddress(found.url, token, found.source)
            return found
        tried.append(f"runtime files {directory / _RUNTIME_GLOB} (none of a live process)")
    tried.append("explicit arguments (connect(url=..., token=...) not given)")
    raise DiscoveryError(
        "No interop hub found. Tried: "
        + "; ".join(tried)
        + ". Start one with 'python -m jupyter_interop hub' or run inside a Jupyter server "
        "that has the jupyter_interop extension enabled."
    )


def kernel_id() -> str | None:
    """The id of the Jupyter kernel this process is, from its connection file; else None.

    The hub maps it to the notebook path through the server's own records (DESIGN §2.5);
    claiming a wrong id gains nothing, the hub only trusts ids of kernels it runs.
    """
    if "ipykernel" not in sys.modules:
        return None
    try:
        from ipykernel.connect import get_connection_file

        match = _KERNEL_FILE.search(get_connection_file())
    except Exception:
        match = None
    if match is None:  # not a running kernel app: look at the command line
        for arg in sys.argv:
            match = _KERNEL_FILE.search(arg)
            if match:
                break
    return match.group(1) if match else None


def default_application(kernel: str | None) -> str:
    """A readable application name; the hub replaces it with the notebook name for kernels."""
    session = os.environ.get("JPY_SESSION_NAME")
    if session:
        name = os.path.basename(session)
        return name[:-6] if name.endswith(".ipynb") else name
    if kernel:
        return f"kernel-{kernel[:8]}"
    main = sys.modules.get("__main__")
    script = getattr(main, "__file__", None) if main is not None else None
    if script:
        return os.path.splitext(os.path.basename(script))[0]
    return f"python-{os.getpid()}"
