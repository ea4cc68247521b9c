"""The README's main job as a new user meets it, and the wheel users install.

``bash scripts/serve.sh`` runs in a copy of the repository with a throwaway virtual environment
(``JUPYTER_INTEROP_VENV``) and isolated Jupyter dirs, so it never touches the environment or the
checkout that runs the tests. It must create the venv, install the package with its ``data``
extra and the prebuilt lab extension, and start JupyterLab with the hub; then every example
notebook runs top to bottom in that server's own kernels (the venv's Python), as Run All would.
The wheel is built from a copy too, and must carry the server extension's config, the FDC3
schemas and the prebuilt lab extension, so that ``pip install`` needs no Node.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import textwrap
import threading
import time
import urllib.error
import urllib.request
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nbformat
import pytest
from jupyter_client.blocking.client import BlockingKernelClient
from test_client_support import REPO, free_port, isolated_env, server_kernel_client, wait_for

CONFIG = "etc/jupyter/jupyter_server_config.d/jupyter_interop.json"
LABEXTENSION = "share/jupyter/labextensions/jupyter_interop/"
#: the example notebooks, in the pairs a user runs side by side (the first offers, the second uses)
EXAMPLES = [
    ("01-pricing-service.ipynb", "01-pricing-client.ipynb"),
    ("02-channels-client-list.ipynb", "02-channels-client-details.ipynb"),
    ("03-share-analysis.ipynb", "03-share-dashboard.ipynb"),
    ("04-node-app.ipynb",),
]
#: first run: a venv, then jupyterlab, pandas, pyarrow... from the package index
INSTALL_TIMEOUT = 900
CELL_TIMEOUT = 120
#: colour codes the jupyter commands print even into a pipe
ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;]*m")
#: the first test waits for the install too
pytestmark = pytest.mark.timeout(INSTALL_TIMEOUT + 300)
#: the lab extension as scripts/build-labextension.sh builds it, and the FDC3 schemas as
#: scripts/build-fdc3-schemas.sh copies them (neither tracked by git)
BUILT_LABEXTENSION = "jupyter_interop/labextension"
BUILT_FDC3_SCHEMAS = "jupyter_interop/fdc3/schemas"


def copy_repo(target: Path) -> Path:
    """The checkout's files as a new user would clone them (tracked and new, not ignored),
    plus the built lab extension and the FDC3 schemas with their modification times, so the
    build scripts see them up to date and need no Node."""
    listed = (
        subprocess.run(
            ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
            cwd=REPO,
            capture_output=True,
            check=True,
        )
        .stdout.decode()
        .split("\0")
    )
    for name in filter(None, listed):
        source = REPO / name
        if source.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)
    shutil.copytree(REPO / BUILT_LABEXTENSION, target / BUILT_LABEXTENSION)
    shutil.copytree(REPO / BUILT_FDC3_SCHEMAS, target / BUILT_FDC3_SCHEMAS)
    return target


def get(url: str) -> tuple[int, bytes]:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(url, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, b""


@dataclass
class MainJob:
    """``scripts/serve.sh`` running in ``repo`` with its own ``venv``."""

    repo: Path
    venv: Path
    env: dict[str, str]
    port: int
    token: str
    log: Path
    proc: subprocess.Popen[bytes]
    #: :func:`caller_state` before the script ran
    caller_before: tuple[str, str, list[str]]

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def api(self, method: str, path: str, body: Any = None) -> Any:
        request = urllib.request.Request(
            f"{self.base}{path}",
            data=None if body is None else json.dumps(body).encode(),
            method=method,
            headers={"Authorization": f"token {self.token}", "Content-Type": "application/json"},
        )
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        with opener.open(request, timeout=30) as response:
            raw = response.read()
        return json.loads(raw) if raw else None

    def jupyter(self, *args: str) -> str:
        """A ``jupyter`` command of the venv, with the server's isolated dirs; its output."""
        done = subprocess.run(
            [str(self.venv / "bin" / "jupyter"), *args],
            env=self.env,
            cwd=self.repo,
            capture_output=True,
            text=True,
            timeout=120,
        )
        return ANSI_ESCAPE.sub("", done.stdout + done.stderr)

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")


def caller_state() -> tuple[str, str, list[str]]:
    """The caller's environment (where its interpreter imports jupyter_interop from, what its
    pip has installed) and what a main job run in the checkout would leave there (ignored
    output: a venv, build dirs, egg-info, node_modules)."""
    origin = subprocess.run(
        [sys.executable, "-c", "import jupyter_interop; print(jupyter_interop.__file__)"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    installed = subprocess.run(
        [sys.executable, "-m", "pip", "freeze", "--disable-pip-version-check"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    ignored = subprocess.run(
        ["git", "status", "--porcelain", "--ignored"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    # what the test run itself writes meanwhile: bytecode, artifacts, hypothesis' examples
    noise = ("__pycache__", "test-artifacts", ".hypothesis")
    left = [f for f in ignored if f.startswith("!!") and not any(n in f for n in noise)]
    return origin, installed, left


@pytest.fixture(scope="module")
def main_job(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MainJob]:
    tmp = tmp_path_factory.mktemp("main-job")
    repo = copy_repo(tmp / "repo")
    env = {k: v for k, v in isolated_env(tmp).items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
    env["JUPYTER_INTEROP_VENV"] = str(tmp / "venv")
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    port, token = free_port(), "main-job-token"
    log = tmp / "serve.log"
    before = caller_state()
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [
                "bash",
                "scripts/serve.sh",
                "--no-browser",
                f"--port={port}",
                "--port-retries=0",
                f"--IdentityProvider.token={token}",
                "--LabApp.news_url=None",
                "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
            ],
            cwd=repo,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    job = MainJob(repo, tmp / "venv", env, port, token, log, proc, before)
    try:

        def up() -> bool:
            if proc.poll() is not None:
                raise AssertionError(f"serve.sh exited {proc.returncode}:\n{job.log_text()}")
            try:
                return get(f"{job.base}/interop/api/status?token={token}")[0] == 200
            except OSError:
                return False

        started = time.monotonic()
        wait_for(up, INSTALL_TIMEOUT, "serve.sh to install and start JupyterLab with the hub")
        print(f"serve.sh: JupyterLab with the hub up after {time.monotonic() - started:.0f} s")
        yield job
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(5)
        artifacts = REPO / "test-artifacts"
        artifacts.mkdir(exist_ok=True)
        shutil.copy(log, artifacts / "main-job-serve.log")


def test_serve_runs_jupyterlab_with_the_hub_from_its_own_venv(main_job: MainJob) -> None:
    status_view = json.loads(get(f"{main_job.base}/interop/api/status?token={main_job.token}")[1])
    assert status_view["persisted"] is True  # embedded defaults: the SQLite store
    assert get(f"{main_job.base}/lab?token={main_job.token}")[0] == 200
    # serve.sh execs the venv's jupyter: its interpreter and script are the venv's own
    argv = Path(f"/proc/{main_job.proc.pid}/cmdline").read_bytes().split(b"\0")
    venv_bin = str(main_job.venv / "bin") + "/"
    assert argv[0].decode().startswith(venv_bin) and argv[1].decode().startswith(venv_bin), argv
    assert caller_state() == main_job.caller_before, (
        "the main job changed the caller's environment or checkout"
    )


def test_serve_log_prints_where_the_hub_and_the_dashboard_are(main_job: MainJob) -> None:
    log = main_job.log_text()
    assert f"Interop hub at ws://127.0.0.1:{main_job.port}/interop/gateway" in log, log
    dashboard = f"Interop dashboard: http://127.0.0.1:{main_job.port}/interop/?token="
    assert dashboard + main_job.token in log, log


def test_the_install_enables_the_server_and_the_lab_extension(main_job: MainJob) -> None:
    server = main_job.jupyter("server", "extension", "list")
    assert "jupyter_interop enabled" in server, server
    assert "jupyter_interop" in server and " OK" in server, server
    lab = main_job.jupyter("labextension", "list")
    line = next((x for x in lab.splitlines() if x.strip().startswith("jupyter_interop ")), "")
    assert "enabled" in line and "OK" in line, lab
    # the page JupyterLab serves loads it
    assert (
        b"jupyter_interop" in get(f"{main_job.base}/lab/api/extensions?token={main_job.token}")[1]
    )


def run_notebook(job: MainJob, name: str, keep_until: threading.Event | None) -> list[str]:
    """Run every code cell of ``notebooks/<name>`` in a kernel the server starts for it (as
    Run All in JupyterLab would); return the errors. With ``keep_until``, the kernel stays up
    until it is set, as an open notebook would."""
    session = job.api(
        "POST",
        "/api/sessions",
        {"path": name, "name": name, "type": "notebook", "kernel": {"name": "python3"}},
    )
    kernel_id = session["kernel"]["id"]
    runtime = Path(job.env["JUPYTER_RUNTIME_DIR"])
    client: BlockingKernelClient | None = None
    errors: list[str] = []
    try:
        client = server_kernel_client(job.api, runtime, kernel_id)
        nb = nbformat.read(str(job.repo / "notebooks" / name), as_version=4)
        for index, cell in enumerate(nb.cells):
            if cell.cell_type != "code":
                continue

            def hook(msg: dict[str, Any], index: int = index) -> None:
                if msg["msg_type"] == "error":
                    errors.append(
                        f"{name} cell {index}: {msg['content']['ename']}: "
                        f"{msg['content']['evalue']}"
                    )

            reply = client.execute_interactive(cell.source, timeout=CELL_TIMEOUT, output_hook=hook)
            if reply["content"]["status"] != "ok" and not errors:
                errors.append(f"{name} cell {index}: {reply['content'].get('ename')}")
            if errors:
                break
        if keep_until is not None:
            keep_until.wait(CELL_TIMEOUT * 2)
    finally:
        if client is not None:
            client.stop_channels()
        job.api("DELETE", f"/api/sessions/{session['id']}")
    return errors


def run_side_by_side(job: MainJob, pair: tuple[str, ...]) -> list[str]:
    """Run ``pair[0]`` and, while it stays open, the others one by one; all their errors."""
    partner_done = threading.Event()
    first_errors: list[str] = []

    def run_first() -> None:
        first_errors.extend(run_notebook(job, pair[0], partner_done))

    first = threading.Thread(target=run_first)
    first.start()
    try:
        errors = [e for name in pair[1:] for e in run_notebook(job, name, None)]
    finally:
        partner_done.set()
        first.join(CELL_TIMEOUT * 3)
    return first_errors + errors


def test_every_example_runs_top_to_bottom_in_the_venv(main_job: MainJob) -> None:
    for pair in EXAMPLES:
        errors = run_side_by_side(main_job, pair)
        assert not errors, "\n".join(errors) + textwrap.indent(
            main_job.log_text()[-4000:], "  log| "
        )


def test_a_wheel_carries_the_server_config_the_prebuilt_lab_extension_and_fdc3_schemas(
    tmp_path: Path,
) -> None:
    repo = copy_repo(tmp_path / "repo")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path), str(repo)],
        check=True,
        capture_output=True,
    )
    [wheel] = tmp_path.glob("jupyter_interop-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        [config] = [n for n in names if n.endswith(CONFIG)]
        assert json.loads(archive.read(config)) == {
            "ServerApp": {"jpserver_extensions": {"jupyter_interop": True}}
        }
        lab = [n.split(LABEXTENSION, 1)[1] for n in names if LABEXTENSION in n]
        assert "package.json" in lab and "install.json" in lab, lab
        assert any(n.startswith("static/remoteEntry.") and n.endswith(".js") for n in lab), lab
        [package] = [n for n in names if n.endswith(LABEXTENSION + "package.json")]
        assert json.loads(archive.read(package))["name"] == "jupyter_interop"
        schemas = {n for n in names if n.startswith(BUILT_FDC3_SCHEMAS + "/")}
        shipped = {
            path.relative_to(REPO).as_posix()
            for path in (REPO / BUILT_FDC3_SCHEMAS).rglob("*")
            if path.is_file()
        }
        assert (
            schemas == shipped and f"{BUILT_FDC3_SCHEMAS}/context/instrument.schema.json" in schemas
        )
