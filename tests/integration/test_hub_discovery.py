"""Two real standalone hubs in one runtime dir: a script started elsewhere gets an error that
lists both; a script started inside one hub's root dir connects to that hub; the runtime file
of a hub that was killed is deleted by the next script that looks."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

from test_client_support import BANNER, isolated_env

SCRIPT = """
import jupyter_interop as ji
try:
    io = ji.connect(application="discovery-probe")
except ji.AmbiguousHubError as error:
    print("AMBIGUOUS", len(error.hubs))
    print(error)
else:
    print("CONNECTED", io.url, io.connected)
    io.close()
"""


@contextmanager
def hub_in(root: Path, env: dict[str, str]) -> Iterator[tuple[subprocess.Popen[str], str]]:
    """A ``python -m jupyter_interop hub`` whose working directory (its root) is ``root``."""
    root.mkdir(parents=True, exist_ok=True)
    proc = subprocess.Popen(
        [sys.executable, "-m", "jupyter_interop", "hub", "--port=0"],
        cwd=root,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()  # the hub prints its URL once it listens
        match = BANNER.search(line)
        assert match, f"hub did not start: {line!r}"
        yield proc, match.group(1).split("?")[0]
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            proc.wait(20)


def probe(cwd: Path, env: dict[str, str]) -> str:
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_two_hubs_are_refused_with_a_list_then_chosen_by_the_working_directory(
    tmp_path: Path,
) -> None:
    env = isolated_env(tmp_path / "jupyter")
    runtime = Path(env["JUPYTER_RUNTIME_DIR"])
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    with ExitStack() as stack:
        (proc_a, url_a) = stack.enter_context(hub_in(tmp_path / "project-a", env))
        (proc_b, url_b) = stack.enter_context(hub_in(tmp_path / "project-b", env))
        with hub_in(tmp_path / "crashed", env) as (proc_c, _):
            proc_c.kill()  # no clean stop: its runtime file stays behind
            proc_c.wait(10)
        crashed_file = runtime / f"jupyter_interop-{proc_c.pid}.json"
        assert crashed_file.exists()

        out = probe(elsewhere, env)
        assert out.startswith("AMBIGUOUS 2"), out
        for url, proc, root in ((url_a, proc_a, "project-a"), (url_b, proc_b, "project-b")):
            assert url in out and f"pid {proc.pid}" in out and str(tmp_path / root) in out
        assert "standalone" in out and "ji.connect(url=" in out
        assert not crashed_file.exists()  # cleaned up after the dead hub
        assert (runtime / f"jupyter_interop-{proc_a.pid}.json").exists()

        inside_b = tmp_path / "project-b" / "scripts"
        inside_b.mkdir()
        assert probe(inside_b, env).split() == ["CONNECTED", url_b, "True"]
        assert probe(tmp_path / "project-a", env).split() == ["CONNECTED", url_a, "True"]

        pinned = {**env, "JUPYTER_INTEROP_URL": url_a}
        pinned["JUPYTER_INTEROP_TOKEN"] = _token_of(runtime, proc_a.pid)
        assert probe(inside_b, pinned).split() == ["CONNECTED", url_a, "True"]


def _token_of(runtime: Path, pid: int) -> str:
    return str(json.loads((runtime / f"jupyter_interop-{pid}.json").read_text())["token"])
