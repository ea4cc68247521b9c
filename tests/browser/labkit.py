"""Browser test kit: a real ``jupyter lab`` subprocess and JupyterLab driven in headless Chromium.

Why a subprocess and not pytest-jupyter: the browser needs the real JupyterLab frontend, the
real kernel provisioning and the interop extension loaded the way users get it. The server
runs with isolated config/data/runtime dirs under a temporary directory, so nothing of the
machine's own Jupyter setup leaks in, but with the ``jupyter_interop`` server extension
enabled explicitly in that isolated config.

Why the helpers look the way they do (facts from the Jupyter notes): the execution indicator
says "idle" before a notebook has a kernel, and a run-all at that moment opens a modal "Select
Kernel" dialog that waits forever. So readiness is read from the notebook's ``sessionContext``
(a connected, idle kernel), every command promise is raced against a timeout, and any
``.jp-Dialog`` fails the test at once with its text.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nbformat

__all__ = [
    "ARTIFACTS",
    "BUILT_LABEXTENSION",
    "CHROMIUM",
    "CHROMIUM_ARGS",
    "LabError",
    "LabPage",
    "LabServer",
    "launch_chromium",
    "link_built_labextension",
    "start_lab",
    "wait_until",
    "write_notebook",
]

#: Where screenshots and server logs of the browser tests go (ignored by git).
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
#: Debian's Chromium; Playwright must never download a browser here.
CHROMIUM = "/usr/bin/chromium"
#: Flags that keep headless Chromium quiet and working as root in a container.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


class LabError(AssertionError):
    """A JupyterLab condition failed (dialog, cell error, timeout); carries what was seen."""


def wait_until(condition: Callable[[], Any], what: str, timeout: float = 60.0) -> Any:
    """Poll ``condition`` until it returns something truthy; fail with the last value."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = condition()
        if last:
            return last
        time.sleep(0.1)
    raise LabError(f"timed out after {timeout} s waiting for {what} (last: {last!r})")


# ---------------------------------------------------------------------------- the server


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class LabServer:
    """A running ``jupyter lab``: where it listens, how to authenticate, where its files are."""

    url: str
    token: str
    root_dir: Path
    log_path: Path
    process: subprocess.Popen[bytes]
    env: dict[str, str] = field(default_factory=dict)

    def api(self, path: str, method: str = "GET", body: Any = None) -> Any:
        """Call the server's REST API (``/api/...`` or ``/interop/api/...``) with the token."""
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(
            f"{self.url}/{path.lstrip('/')}",
            data=data,
            method=method,
            headers={"Authorization": f"token {self.token}", "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(req, timeout=10) as resp:
            raw = resp.read()
        return json.loads(raw) if raw else None

    def lab_url(self, workspace: str | None = None) -> str:
        """The JupyterLab page, with a fresh (``?reset``) workspace and the login token."""
        ws = f"/workspaces/{workspace}" if workspace else ""
        return f"{self.url}/lab{ws}?reset&token={self.token}"

    def interop_env(self) -> dict[str, str]:
        """An environment for kernels started outside the server (nbclient) that reach its hub:
        the URL and token from the runtime file the extension wrote."""
        runtime = Path(self.env["JUPYTER_RUNTIME_DIR"])
        for path in sorted(runtime.glob("jupyter_interop-*.json")):
            info = json.loads(path.read_text())
            if info.get("kind") == "server" and info.get("pid") == self.process.pid:
                return {
                    **self.env,
                    "JUPYTER_INTEROP_URL": info["url"],
                    "JUPYTER_INTEROP_TOKEN": info["token"],
                }
        raise LabError(f"no runtime file of the server in {runtime}")

    def client(self, application: str) -> Any:
        """A new Python client (``ji.Interop``) on this server's hub, named ``application``."""
        import jupyter_interop as ji

        env = self.interop_env()
        return ji.connect(
            url=env["JUPYTER_INTEROP_URL"],
            token=env["JUPYTER_INTEROP_TOKEN"],
            application=application,
            new=True,
        )

    def log_tail(self, lines: int = 60) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no server log)"
        return "\n".join(text.splitlines()[-lines:])


def _server_env(base: Path) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("JUPYTER_INTEROP_", "JPY_")) and k not in ("JUPYTER_PATH",)
    }
    for name in ("config", "data", "runtime"):
        (base / name).mkdir(parents=True, exist_ok=True)
    env["JUPYTER_CONFIG_DIR"] = str(base / "config")
    env["JUPYTER_DATA_DIR"] = str(base / "data")
    env["JUPYTER_RUNTIME_DIR"] = str(base / "runtime")
    env["JUPYTERLAB_SETTINGS_DIR"] = str(base / "config" / "lab" / "user-settings")
    env["JUPYTERLAB_WORKSPACES_DIR"] = str(base / "config" / "lab" / "workspaces")
    env["IPYTHONDIR"] = str(base / "ipython")
    env["PYTHONUNBUFFERED"] = "1"
    return env


def _write_config(base: Path, extra: dict[str, Any] | None = None) -> None:
    """Enable the interop extension in the isolated config; keep its store under ``base``;
    ``extra``: more sections (``{"NotebookApps": {...}}``)."""
    config = {
        "ServerApp": {"jpserver_extensions": {"jupyter_interop": True}},
        "InteropExtension": {"context_store_path": str(base / "data" / "contexts.sqlite")},
        **(extra or {}),
    }
    (base / "config" / "jupyter_server_config.json").write_text(json.dumps(config, indent=1))
    # No "get notified about Jupyter news?" toast over the screenshots, no update checks.
    settings = base / "config" / "lab" / "user-settings" / "@jupyterlab" / "apputils-extension"
    settings.mkdir(parents=True, exist_ok=True)
    (settings / "notification.jupyterlab-settings").write_text(
        json.dumps({"fetchNews": "false", "checkForUpdates": False})
    )


def _wait_ready(server: LabServer, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise LabError(
                f"jupyter lab exited with {server.process.returncode}:\n{server.log_tail()}"
            )
        try:
            server.api("api/status")
            status = server.api("interop/api/status")
        except (urllib.error.URLError, ConnectionError, TimeoutError) as exc:
            last = exc
            time.sleep(0.2)
            continue
        if not status.get("url"):
            raise LabError(f"interop status without a gateway url: {status}")
        return
    raise LabError(f"jupyter lab not ready after {timeout}s ({last!r}):\n{server.log_tail()}")


def _stop(server: LabServer) -> None:
    proc = server.process
    if proc.poll() is None:
        with contextlib.suppress(Exception):
            server.api("api/shutdown", method="POST")
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)


@contextlib.contextmanager
def start_lab(
    base: Path, *, timeout: float = 90.0, config: dict[str, Any] | None = None
) -> Iterator[LabServer]:
    """Run ``jupyter lab`` on a free loopback port with a token, isolated under ``base``
    (``config``: more sections of its configuration).

    The server log is copied to ``test-artifacts/`` when the server stops.
    """
    base.mkdir(parents=True, exist_ok=True)
    env = _server_env(base)
    _write_config(base, config)
    root = base / "notebooks"
    root.mkdir(exist_ok=True)
    port = _free_port()
    token = secrets.token_hex(24)
    log_path = base / "lab.log"
    cmd = [
        sys.executable,
        "-m",
        "jupyterlab",
        "--no-browser",
        "--allow-root",
        "--ip=127.0.0.1",
        f"--port={port}",
        "--port-retries=0",
        f"--IdentityProvider.token={token}",
        f"--ServerApp.root_dir={root}",
        "--LabApp.expose_app_in_browser=True",
        "--LabApp.news_url=None",
        "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
    ]
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=root)
    server = LabServer(
        url=f"http://127.0.0.1:{port}",
        token=token,
        root_dir=root,
        log_path=log_path,
        process=proc,
        env=env,
    )
    try:
        _wait_ready(server, timeout)
        yield server
    finally:
        _stop(server)
        ARTIFACTS.mkdir(exist_ok=True)
        with contextlib.suppress(OSError):
            shutil.copy(log_path, ARTIFACTS / "browser-lab.log")


def write_notebook(path: Path, cells: list[str | tuple[str, str]]) -> Path:
    """Write a Python 3 notebook (with kernelspec, so JupyterLab never asks for a kernel).

    A cell is code source, or ``("markdown", source)``.
    """
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nb.metadata["language_info"] = {"name": "python"}
    for cell in cells:
        if isinstance(cell, tuple):
            kind, source = cell
            nb.cells.append(
                nbformat.v4.new_markdown_cell(source)
                if kind == "markdown"
                else nbformat.v4.new_code_cell(source)
            )
        else:
            nb.cells.append(nbformat.v4.new_code_cell(cell))
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, str(path))
    return path


# ---------------------------------------------------------------------------- the browser


def launch_chromium(playwright: Any) -> Any:
    """Launch Debian's Chromium headless through Playwright (never a downloaded browser)."""
    if not os.access(CHROMIUM, os.X_OK):
        raise LabError(f"{CHROMIUM} is missing: install Debian's chromium (scripts/setup.sh)")
    return playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)


# JavaScript run in the page. ``__ji`` holds small helpers installed once per page.
_JS_HELPERS = r"""
() => {
  if (window.__ji) return true;
  const app = () => window.jupyterapp;
  const panels = () => Array.from(app().shell.widgets('main'));
  const panel = (path) => panels().find(w => w.context && w.context.path === path
                                           && w.content && w.sessionContext);
  const dialog = () => {
    const d = document.querySelector('.jp-Dialog');
    return d ? (d.innerText || 'dialog').slice(0, 2000) : null;
  };
  const withTimeout = (promise, ms, what) => Promise.race([
    promise,
    new Promise((_, reject) => setTimeout(() => reject(new Error(what + ' timed out')), ms)),
  ]);
  const cells = (path) => {
    const p = panel(path);
    if (!p) return null;
    return p.content.widgets.map((cell, index) => {
      const m = cell.model;
      const code = m.type === 'code';
      return {
        index, type: m.type, source: m.sharedModel.getSource(),
        executionCount: code ? m.executionCount : null,
        executionState: code ? m.executionState : null,
        outputs: code ? m.outputs.toJSON() : [],
      };
    });
  };
  window.__ji = { app, panels, panel, dialog, withTimeout, cells, errors: [] };
  return true;
}
"""


class LabPage:
    """One JupyterLab page in Chromium, with helpers that wait on real conditions."""

    def __init__(self, page: Any, server: LabServer, *, timeout: float = 60.0) -> None:
        self.page = page
        self.server = server
        self.timeout_ms = int(timeout * 1000)
        self.console: list[str] = []
        page.on(
            "console",
            lambda msg: (
                self.console.append(f"{msg.type}: {msg.text}") if msg.type == "error" else None
            ),
        )
        page.on("pageerror", lambda exc: self.console.append(f"pageerror: {exc}"))

    # -- plumbing

    def _eval(self, script: str, arg: Any = None) -> Any:
        self.page.evaluate(_JS_HELPERS)
        return self.page.evaluate(script, arg)

    def _check_dialog(self) -> None:
        text = self._eval("() => window.__ji.dialog()")
        if text:
            raise LabError(f"JupyterLab opened a dialog: {text}")

    def _poll(self, script: str, arg: Any, timeout_ms: int | None, what: str) -> Any:
        """Poll ``script(arg)`` in the page until it returns a truthy value.

        The script may return ``{dialog: text}`` or ``{error: text}`` to fail at once.
        """
        self.page.evaluate(_JS_HELPERS)
        limit = timeout_ms or self.timeout_ms
        try:
            handle = self.page.wait_for_function(script, arg=arg, timeout=limit, polling=100)
        except Exception as exc:  # playwright TimeoutError
            detail = self._describe()
            raise LabError(f"timed out after {limit} ms waiting for {what}\n{detail}") from exc
        value = handle.json_value()
        if isinstance(value, dict) and value.get("dialog"):
            raise LabError(
                f"JupyterLab opened a dialog while waiting for {what}: {value['dialog']}"
            )
        if isinstance(value, dict) and value.get("error"):
            raise LabError(f"{what} failed: {value['error']}")
        return value

    def _describe(self) -> str:
        try:
            dialog = self._eval("() => window.__ji.dialog()")
            return (
                f"dialog: {dialog}\nconsole errors: {self.console[-10:]}\n"
                f"server log:\n{self.server.log_tail(30)}"
            )
        except Exception as exc:  # the page may be gone
            return f"(page not readable: {exc})"

    # -- app

    def goto_lab(self, workspace: str | None = None) -> None:
        """Load JupyterLab with a fresh workspace and wait until the app has restored."""
        self.page.goto(self.server.lab_url(workspace), wait_until="domcontentloaded")
        self._poll(
            "() => window.jupyterapp && window.jupyterapp.shell ? "
            "(window.__ji_restored === true ? true : "
            "(window.jupyterapp.restored.then(() => { window.__ji_restored = true; }), false))"
            " : false",
            None,
            None,
            "JupyterLab to start",
        )

    def command(self, command: str, args: dict[str, Any] | None = None, wait: bool = True) -> Any:
        """Run a JupyterLab command; its promise is raced against the page timeout.

        ``wait=False`` fires the command without awaiting it (run-all resolves only when every
        cell has run; the caller waits on the cells instead).
        """
        if not wait:
            self._eval(
                "([c, a]) => { window.__ji.app().commands.execute(c, a)"
                ".catch(e => window.__ji.errors.push(c + ': ' + e)); return true; }",
                [command, args or {}],
            )
            return None
        return self._eval(
            "async ([c, a, ms]) => { const r = await window.__ji.withTimeout("
            "window.__ji.app().commands.execute(c, a), ms, c);"
            " try { return JSON.parse(JSON.stringify(r ?? null)); } catch { return null; } }",
            [command, args or {}, self.timeout_ms],
        )

    # -- notebooks

    def open_notebook(self, path: str, *, mode: str | None = None) -> str:
        """Open ``path`` (relative to the server root) and wait for a connected idle kernel.

        ``mode`` is a dock insert mode such as ``"split-right"``. Returns the panel id.
        """
        args: dict[str, Any] = {"path": path}
        if mode:
            args["options"] = {"mode": mode}
        self.command("docmanager:open", args)
        self.wait_kernel_ready(path)
        return str(self._eval("(p) => window.__ji.panel(p).id", path))

    def wait_kernel_ready(self, path: str, timeout_ms: int | None = None) -> None:
        """Wait until the notebook's session has a connected, idle kernel (not the indicator)."""
        self._poll(
            """(p) => {
              const ji = window.__ji; const d = ji.dialog(); if (d) return {dialog: d};
              const panel = ji.panel(p); if (!panel) return false;
              const sc = panel.sessionContext;
              const k = sc.session && sc.session.kernel;
              return !!(sc.isReady && k && k.connectionStatus === 'connected'
                        && k.status === 'idle');
            }""",
            path,
            timeout_ms,
            f"a connected idle kernel for {path}",
        )

    def activate(self, path: str) -> None:
        self._eval("(p) => window.__ji.app().shell.activateById(window.__ji.panel(p).id)", path)

    def run_all(self, path: str, timeout_ms: int | None = None) -> list[dict[str, Any]]:
        """Clear, run every cell of ``path`` and wait until each non-empty code cell has run.

        Fails at once on a dialog or on the first cell with an error output. Returns the cells
        (type, source, execution count, outputs as nbformat JSON).
        """
        self.wait_kernel_ready(path, timeout_ms)
        panel_id = self._eval("(p) => window.__ji.panel(p).id", path)
        self.command("notebook:clear-all-cell-outputs", {"widgetId": panel_id})
        self.command("notebook:run-all-cells", {"widgetId": panel_id}, wait=False)
        return self.wait_cells_done(path, timeout_ms)

    def wait_cells_done(self, path: str, timeout_ms: int | None = None) -> list[dict[str, Any]]:
        self._poll(
            r"""(p) => {
              const ji = window.__ji; const d = ji.dialog(); if (d) return {dialog: d};
              if (ji.errors.length) return {error: ji.errors.join('\n')};
              const cells = ji.cells(p); if (!cells) return {error: 'notebook closed: ' + p};
              for (const c of cells) {
                for (const o of c.outputs) {
                  if (o.output_type === 'error') {
                    return {error: `cell ${c.index} raised ${o.ename}: ${o.evalue}\n`
                                   + (o.traceback || []).join('\n').replace(/\x1b\[[0-9;]*m/g, '')};
                  }
                }
              }
              const code = cells.filter(c => c.type === 'code' && c.source.trim());
              const k = ji.panel(p).sessionContext.session?.kernel;
              return code.every(c => c.executionCount !== null && c.executionState !== 'running')
                     && !!k && k.status === 'idle';
            }""",
            path,
            timeout_ms,
            f"all cells of {path} to run",
        )
        return self.cells(path)

    def kernel_execute(self, path: str, code: str) -> None:
        """Run ``code`` in the notebook's kernel without a cell (as another tool would)."""
        self._eval(
            """async ([p, code, ms]) => {
              const kernel = window.__ji.panel(p).sessionContext.session.kernel;
              const reply = await window.__ji.withTimeout(
                kernel.requestExecute({code, store_history: false}).done, ms, 'execute');
              if (reply.content.status !== 'ok') {
                throw new Error(reply.content.ename + ': ' + reply.content.evalue);
              }
            }""",
            [path, code, self.timeout_ms],
        )

    def kernel_value(self, path: str, expression: str) -> str:
        """The ``text/plain`` of ``expression`` evaluated in the notebook's kernel (a user
        expression of an empty execute request: no cell, no history), as the page reads it."""
        return str(
            self._eval(
                """async ([p, expr, ms]) => {
                  const kernel = window.__ji.panel(p).sessionContext.session.kernel;
                  const reply = await window.__ji.withTimeout(kernel.requestExecute(
                    {code: '', silent: true, store_history: false,
                     user_expressions: {value: expr}}).done, ms, 'execute');
                  const value = reply.content.user_expressions.value;
                  if (value.status !== 'ok') throw new Error(value.ename + ': ' + value.evalue);
                  return value.data['text/plain'];
                }""",
                [path, expression, self.timeout_ms],
            )
        )

    def cells(self, path: str) -> list[dict[str, Any]]:
        result = self._eval("(p) => window.__ji.cells(p)", path)
        if result is None:
            raise LabError(f"notebook {path} is not open")
        return list(result)

    def output_text(self, path: str, index: int) -> str:
        """The text a cell showed: streams plus ``text/plain`` of results and displays."""
        return output_text(self.cells(path)[index]["outputs"])

    def panel_locator(self, path: str) -> Any:
        """A Playwright locator for the notebook panel of ``path`` (for DOM interactions)."""
        panel_id = self._eval("(p) => window.__ji.panel(p).id", path)
        return self.page.locator(f"[id='{panel_id}']")

    def check_dialog(self) -> None:
        self._check_dialog()

    def screenshot(self, name: str) -> Path:
        """Save a screenshot to ``test-artifacts/<name>`` and return its path."""
        ARTIFACTS.mkdir(exist_ok=True)
        target = ARTIFACTS / name
        self.page.screenshot(path=str(target))
        return target


def output_text(outputs: list[dict[str, Any]]) -> str:
    parts: list[str] = []
    for out in outputs:
        kind = out.get("output_type")
        if kind == "stream":
            text = out.get("text", "")
            parts.append("".join(text) if isinstance(text, list) else text)
        elif kind in ("execute_result", "display_data"):
            plain = out.get("data", {}).get("text/plain", "")
            parts.append("".join(plain) if isinstance(plain, list) else plain)
    return "".join(parts)


# ------------------------------------------------------------------- the lab extension

#: Where scripts/build-labextension.sh puts the prebuilt lab extension.
BUILT_LABEXTENSION = Path(__file__).resolve().parents[2] / "jupyter_interop" / "labextension"


def link_built_labextension(server: LabServer) -> Path:
    """Make ``server`` serve the lab extension built in this checkout.

    The test env has an editable install, so the extension is not under
    ``sys.prefix/share/jupyter/labextensions``; JupyterLab also looks in the (isolated)
    ``JUPYTER_DATA_DIR/labextensions/<package name>``, read on every page load, so a link
    there is enough. Fails with what to run when the extension is not built.
    """
    if not (BUILT_LABEXTENSION / "package.json").is_file():
        raise LabError(f"{BUILT_LABEXTENSION} is missing: run bash scripts/build-labextension.sh")
    link = Path(server.env["JUPYTER_DATA_DIR"]) / "labextensions" / "jupyter_interop"
    if not link.exists():
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(BUILT_LABEXTENSION, target_is_directory=True)
    return link
