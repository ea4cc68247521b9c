"""The README's main job and install: ``bash scripts/serve.sh`` starts JupyterLab with the hub
inside (whatever the install mode), and a regular install (a wheel) carries the config file
that enables the server extension everywhere."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

from test_client_support import REPO, free_port, isolated_env

CONFIG = "etc/jupyter/jupyter_server_config.d/jupyter_interop.json"


def get(url: str) -> tuple[int, bytes]:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(url, timeout=5) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, b""


def test_serve_script_starts_jupyterlab_with_the_hub(tmp_path: Path) -> None:
    port, token = free_port(), "main-job-token"
    proc = subprocess.Popen(
        ["bash", "scripts/serve.sh", "--no-browser", f"--port={port}",
         f"--IdentityProvider.token={token}"],
        cwd=REPO,
        env=isolated_env(tmp_path),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120  # the script installs the package first
        status = 0
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                status, body = get(f"{base}/interop/api/status?token={token}")
            except OSError:
                status = 0
            if status == 200:
                break
            time.sleep(0.5)
        assert status == 200, f"no hub at {base}/interop/ (exit {proc.poll()})"
        status_view = json.loads(body)
        assert status_view["peers"] == 0 and status_view["persisted"] is True  # embedded defaults
        assert get(f"{base}/lab?token={token}")[0] == 200  # JupyterLab itself
        assert (REPO / "notebooks").is_dir()
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)


def test_a_wheel_carries_the_config_that_enables_the_extension(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path), str(REPO)],
        check=True,
        capture_output=True,
    )
    [wheel] = tmp_path.glob("jupyter_interop-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        [name] = [n for n in archive.namelist() if n.endswith(CONFIG)]
        config = json.loads(archive.read(name))
    assert config == {"ServerApp": {"jpserver_extensions": {"jupyter_interop": True}}}
