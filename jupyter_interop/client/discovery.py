"""Where is the hub, and who are we: URL/token discovery, kernel id, default application name.

Order (docs/ARCHITECTURE.md, "Discovery"): explicit arguments win; otherwise
``JUPYTER_INTEROP_URL`` and ``JUPYTER_INTEROP_TOKEN`` (a kernel started by a Jupyter server with
the extension inherits them); otherwise the gateway of the io.Connect Desktop that started this
process (``_GD_STARTING_CONTEXT_``, see auth.py and docs/GATEWAYS.md); otherwise the runtime
files ``jupyter_interop-<pid>.json`` in the Jupyter runtime dir (a script started outside
Jupyter). Runtime files of dead processes are deleted. One live hub is used; with several, the
one whose root dir holds the working directory, if exactly one does; otherwise
:class:`AmbiguousHubError` lists them, never a silent guess. A URL given without a token takes
the token from that hub's runtime file. When nothing is found, the error says what was tried, so
the user knows which one to fix.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qs, urlsplit, urlunsplit

from ..protocol.wire import DESKTOP_CONTEXT_ENV, ENV_TOKEN, ENV_URL
from .auth import DesktopStart, authentication, desktop_start
from .errors import AmbiguousHubError, DiscoveryError

__all__ = [
    "ENV_TOKEN",
    "ENV_URL",
    "HubAddress",
    "RuntimeHub",
    "choose_hub",
    "default_application",
    "find_hub",
    "kernel_id",
    "live_hubs",
]

_RUNTIME_GLOB = "jupyter_interop-*.json"
_RUNTIME_NAME = re.compile(r"jupyter_interop-([0-9]+)\.json")
#: seconds a process may seem to have started after writing its file (clock granularity)
_PID_REUSE_SLACK = 2.0
_KERNEL_FILE = re.compile(r"kernel-([0-9A-Za-z_\-]+)\.json$")


@dataclass(frozen=True)
class HubAddress:
    """A hub (or another GW3 gateway) to connect to, how it was found (``source`` is shown in
    errors and reprs) and the credentials for its ``hello`` (see auth.py)."""

    url: str
    token: str | None
    source: str
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    gateway_token: str | None = field(default=None, repr=False)

    @property
    def auth_method(self) -> str:
        """The ``hello`` authentication method these credentials use."""
        return str(authentication(self.token, self.username, None, self.gateway_token)["method"])


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


def _process_start(pid: int) -> float | None:
    """When ``pid`` started (epoch seconds), from ``/proc``; None where that is unknown."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        boot = next(
            float(line.split()[1])
            for line in Path("/proc/stat").read_text().splitlines()
            if line.startswith("btime ")
        )
        ticks = os.sysconf("SC_CLK_TCK")
        # field 22 (starttime) counts from the ')' that ends the command name
        return boot + int(stat.rsplit(")", 1)[1].split()[19]) / ticks
    except (OSError, ValueError, IndexError, StopIteration):
        return None


def _writer_gone(pid: int, started: object) -> bool:
    """True when the process that wrote a runtime file is dead, or its pid now belongs to a
    process started after the file was written (the pid was reused)."""
    if not _pid_alive(pid):
        return True
    if not isinstance(started, (int, float)):
        return False
    began = _process_start(pid)
    return began is not None and began > float(started) + _PID_REUSE_SLACK


def _runtime_dir() -> Path:
    from jupyter_core.paths import jupyter_runtime_dir

    return Path(jupyter_runtime_dir())


@dataclass(frozen=True)
class RuntimeHub:
    """A live hub as its runtime file describes it."""

    path: Path
    url: str
    token: str | None
    pid: int
    kind: str
    root_dir: str | None
    started: float | None

    def serves(self, directory: Path) -> bool:
        """Whether ``directory`` is this hub's root dir or below it."""
        if not self.root_dir:
            return False
        root = Path(self.root_dir).resolve()
        return directory == root or root in directory.parents

    def describe(self) -> str:
        """One line for error messages: URL (never the token), pid, kind, root, start."""
        url = urlunsplit(urlsplit(self.url)._replace(query="", fragment=""))
        when = (
            time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(self.started))
            if self.started is not None
            else "unknown time"
        )
        root = self.root_dir or "(no root dir recorded)"
        return f"{url}  pid {self.pid}, {self.kind}, root {root}, started {when}"


def _remove_quietly(path: Path) -> None:
    """Delete a stale runtime file; another process may have removed it first."""
    with contextlib.suppress(OSError):
        path.unlink()


def live_hubs(directory: Path) -> list[RuntimeHub]:
    """The hubs whose runtime files in ``directory`` belong to live processes, oldest first.

    Files of dead processes are deleted (only names ``jupyter_interop-<pid>.json``); files
    that cannot be read or parsed are skipped and left alone.
    """
    hubs: list[RuntimeHub] = []
    for path in directory.glob(_RUNTIME_GLOB):
        match = _RUNTIME_NAME.fullmatch(path.name)
        if match is None:
            continue
        pid = int(match.group(1))
        if not _pid_alive(pid):
            _remove_quietly(path)
            continue
        try:
            info = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if not isinstance(info, dict) or not isinstance(info.get("url"), str):
            continue
        started = info.get("started")
        if _writer_gone(pid, started):
            _remove_quietly(path)
            continue
        token, kind, root = info.get("token"), info.get("kind"), info.get("root_dir")
        hubs.append(
            RuntimeHub(
                path=path,
                url=info["url"],
                token=token if isinstance(token, str) else None,
                pid=pid,
                kind=kind if isinstance(kind, str) else "hub",
                root_dir=root if isinstance(root, str) and root else None,
                started=float(started) if isinstance(started, (int, float)) else None,
            )
        )
    hubs.sort(key=lambda h: (h.started or 0.0, h.pid))
    return hubs


def choose_hub(hubs: list[RuntimeHub], cwd: Path | None) -> RuntimeHub | None:
    """The hub to use among live ones: the only one, or the only one whose root dir holds
    ``cwd``. None when there is none; :class:`AmbiguousHubError` when nothing decides."""
    if len(hubs) <= 1:
        return hubs[0] if hubs else None
    here = cwd.resolve() if cwd is not None else None
    serving = [h for h in hubs if here is not None and h.serves(here)]
    if len(serving) == 1:
        return serving[0]
    listing = "\n".join(f"  - {h.describe()}" for h in hubs)
    if here is None:
        why = "the working directory is unknown"
    elif not serving:
        why = f"none has a root dir holding the working directory {here}"
    else:
        why = f"{len(serving)} have a root dir holding the working directory {here}"
    raise AmbiguousHubError(
        f"{len(hubs)} interop hubs are running and {why}:\n{listing}\n"
        "Pick one: ji.connect(url=URL) with a URL above (its token is read from its runtime "
        f"file), or set {ENV_URL} (and {ENV_TOKEN}), or run from inside one hub's root dir.",
        hubs,
    )


def _working_dir() -> Path | None:
    try:
        return Path.cwd()
    except OSError:  # the working directory was deleted
        return None


def _token_for(url: str, directory: Path) -> str | None:
    """The token of the live hub at ``url``, from its runtime file (None if none matches)."""
    for hub in live_hubs(directory):
        if hub.url == url:
            return hub.token
    return None


def find_hub(
    url: str | None = None,
    token: str | None = None,
    username: str | None = None,
    password: str | None = None,
) -> HubAddress:
    """Resolve the hub address; raise :class:`DiscoveryError` listing what was tried, or
    :class:`AmbiguousHubError` listing the hubs when several run and nothing decides.

    ``username``/``password`` log in with a secret instead of a token. The gateway of an
    io.Connect Desktop that started this process (``_GD_STARTING_CONTEXT_``) comes after
    ``JUPYTER_INTEROP_URL`` and before runtime files, with the gateway token it handed over.
    """
    login: dict[str, str | None] = {"username": username, "password": password}
    desktop = desktop_start()
    if url:
        return _explicit_address(url, token, login, desktop)
    tried: list[str] = []
    found = (
        _environment_address(token, login, tried)
        or _desktop_address(desktop, token, login, tried)
        or _runtime_file_address(token, login, tried)
    )
    if found is not None:
        return found
    tried.append("explicit arguments (connect(url=..., token=...) not given)")
    raise DiscoveryError(
        "No interop hub found. Tried: "
        + "; ".join(tried)
        + ". Start one with 'python -m jupyter_interop hub' or run inside a Jupyter server "
        "that has the jupyter_interop extension enabled."
    )


def _explicit_address(
    url: str, token: str | None, login: dict[str, str | None], desktop: DesktopStart | None
) -> HubAddress:
    """``connect(url=...)``: the token given, in the URL, the desktop's, or a runtime file's."""
    found = token if token is not None else _token_from_url(url)
    if desktop is not None and desktop.url == url and found is None and login["username"] is None:
        # the desktop's own gateway: log in with the token it gave us
        return HubAddress(url, None, "argument", gateway_token=desktop.gateway_token)
    if found is None and login["username"] is None:
        with contextlib.suppress(Exception):  # no runtime dir: connect without a token
            found = _token_for(url, _runtime_dir())
    return HubAddress(url, found, "argument", **login)


def _environment_address(
    token: str | None, login: dict[str, str | None], tried: list[str]
) -> HubAddress | None:
    """The hub a Jupyter server handed its kernels (``JUPYTER_INTEROP_URL``/``_TOKEN``)."""
    env_url = os.environ.get(ENV_URL)
    if not env_url:
        tried.append(f"the environment variable {ENV_URL} (not set)")
        return None
    env_token = os.environ.get(ENV_TOKEN)
    return HubAddress(
        env_url,
        token if token is not None else (env_token or _token_from_url(env_url)),
        f"environment ({ENV_URL})",
        **login,
    )


def _desktop_address(
    desktop: DesktopStart | None,
    token: str | None,
    login: dict[str, str | None],
    tried: list[str],
) -> HubAddress | None:
    """The gateway of the io.Connect Desktop that started this process, with its token
    unless the caller brought its own credentials."""
    if desktop is None:
        tried.append(f"the environment variable {DESKTOP_CONTEXT_ENV} (not set)")
        return None
    explicit = token is not None or login["username"] is not None
    return HubAddress(
        desktop.url,
        token,
        f"io.Connect Desktop ({DESKTOP_CONTEXT_ENV})",
        gateway_token=None if explicit else desktop.gateway_token,
        **login,
    )


def _runtime_file_address(
    token: str | None, login: dict[str, str | None], tried: list[str]
) -> HubAddress | None:
    """The live hub a runtime file names, chosen by the working directory when several run."""
    try:
        directory = _runtime_dir()
    except Exception as error:  # jupyter_core missing or broken: say so
        tried.append(f"runtime files (could not locate the Jupyter runtime dir: {error})")
        return None
    chosen = choose_hub(live_hubs(directory), _working_dir())
    if chosen is None:
        tried.append(f"runtime files {directory / _RUNTIME_GLOB} (none of a live process)")
        return None
    return HubAddress(
        chosen.url,
        token if token is not None else chosen.token,
        f"runtime file {chosen.path}",
        **login,
    )


def kernel_id() -> str | None:
    """The id of the Jupyter kernel this process is, from its connection file; else None.

    The hub maps it to the notebook path through the server's own records (docs/ARCHITECTURE.md,
    "Identity belongs to the hub");
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
