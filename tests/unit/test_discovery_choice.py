"""Which hub a script finds: runtime files of dead servers are deleted, one live hub is used,
several are told apart by their root dir or refused with a list.

Real files in a temporary runtime dir and real processes: a live pid is this test or a child
that sleeps, a dead pid is a child that has exited.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import jupyter_interop as ji
from jupyter_interop.client.discovery import find_hub, live_hubs


@pytest.fixture
def runtime(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    directory = tmp_path / "runtime"
    directory.mkdir()
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(directory))
    monkeypatch.delenv("JUPYTER_INTEROP_URL", raising=False)
    monkeypatch.delenv("JUPYTER_INTEROP_TOKEN", raising=False)
    return directory


@pytest.fixture
def other_live_pid() -> Iterator[int]:
    """The pid of a second live process (a sleeping child), ended after the test."""
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    try:
        yield child.pid
    finally:
        child.kill()
        child.wait(10)


@pytest.fixture
def dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait(30)
    return child.pid


def write_hub(
    directory: Path, pid: int, *, root: Path | None = None, started: float | None = None
) -> Path:
    info: dict[str, object] = {
        "url": f"ws://127.0.0.1:{10000 + pid % 50000}/interop/gateway",
        "token": f"secret-{pid}",
        "pid": pid,
        "kind": "server",
        "started": time.time() if started is None else started,
    }
    if root is not None:
        info["root_dir"] = str(root)
    path = directory / f"jupyter_interop-{pid}.json"
    path.write_text(json.dumps(info))
    return path


def test_dead_servers_files_are_deleted_and_nothing_else(runtime: Path, dead_pid: int) -> None:
    live = write_hub(runtime, os.getpid())
    dead = write_hub(runtime, dead_pid)
    unrelated = [
        runtime / "jupyter_interop-notapid.json",
        runtime / f"jupyter_interop-{dead_pid}.json.bak",
        runtime / f"kernel-{dead_pid}.json",
        runtime / f"jpserver-{dead_pid}.json",
    ]
    for path in unrelated:
        path.write_text("{}")
    [hub] = live_hubs(runtime)
    assert hub.pid == os.getpid() and hub.token == f"secret-{os.getpid()}"
    assert live.exists() and not dead.exists()
    assert all(path.exists() for path in unrelated)


def test_unreadable_or_broken_files_of_live_processes_are_skipped_and_kept(
    runtime: Path, other_live_pid: int
) -> None:
    broken = runtime / f"jupyter_interop-{os.getpid()}.json"
    broken.write_text("{not json")
    unreadable = runtime / f"jupyter_interop-{other_live_pid}.json"
    unreadable.mkdir()  # reading it fails with an OSError, whoever we are
    assert live_hubs(runtime) == []
    assert broken.exists() and unreadable.exists()


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc")
def test_a_file_older_than_the_process_with_its_pid_is_stale(runtime: Path) -> None:
    reused = write_hub(runtime, os.getpid(), started=time.time() - 10 * 365 * 86400)
    assert live_hubs(runtime) == []
    assert not reused.exists()


def test_one_live_hub_is_used(runtime: Path, dead_pid: int) -> None:
    write_hub(runtime, dead_pid)
    write_hub(runtime, os.getpid())
    found = find_hub()
    assert found.token == f"secret-{os.getpid()}"
    assert found.source == f"runtime file {runtime / f'jupyter_interop-{os.getpid()}.json'}"


def test_several_hubs_and_nothing_to_choose_is_an_error_listing_them(
    runtime: Path, other_live_pid: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    write_hub(runtime, os.getpid(), root=tmp_path / "a")
    write_hub(runtime, other_live_pid)  # an older file without a root dir
    with pytest.raises(ji.AmbiguousHubError) as info:
        find_hub()
    message = str(info.value)
    assert isinstance(info.value, ji.DiscoveryError)
    assert {h.pid for h in info.value.hubs} == {os.getpid(), other_live_pid}
    for hub in info.value.hubs:
        assert hub.url in message and f"pid {hub.pid}" in message
        assert hub.token is not None and hub.token not in message  # tokens stay secret
    assert f"root {tmp_path / 'a'}" in message and "(no root dir recorded)" in message
    assert "started 20" in message  # a readable local time
    assert "ji.connect(url=" in message and "JUPYTER_INTEROP_URL" in message


def test_the_hub_whose_root_holds_the_working_directory_is_chosen(
    runtime: Path, other_live_pid: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "a" / "deep").mkdir(parents=True)
    (tmp_path / "b").mkdir()
    write_hub(runtime, os.getpid(), root=tmp_path / "a")
    write_hub(runtime, other_live_pid, root=tmp_path / "b")
    monkeypatch.chdir(tmp_path / "a" / "deep")
    assert find_hub().token == f"secret-{os.getpid()}"
    monkeypatch.chdir(tmp_path / "b")
    assert find_hub().token == f"secret-{other_live_pid}"


def test_nested_roots_both_holding_the_working_directory_are_ambiguous(
    runtime: Path, other_live_pid: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "outer" / "inner").mkdir(parents=True)
    write_hub(runtime, os.getpid(), root=tmp_path / "outer")
    write_hub(runtime, other_live_pid, root=tmp_path / "outer" / "inner")
    monkeypatch.chdir(tmp_path / "outer" / "inner")
    with pytest.raises(ji.AmbiguousHubError, match="2 have a root dir holding"):
        find_hub()


def test_a_url_without_token_takes_the_token_from_its_runtime_file(
    runtime: Path, other_live_pid: int
) -> None:
    write_hub(runtime, os.getpid())
    write_hub(runtime, other_live_pid)
    [mine] = [h for h in live_hubs(runtime) if h.pid == other_live_pid]
    assert find_hub(mine.url).token == f"secret-{other_live_pid}"
    assert find_hub(mine.url, "given").token == "given"
    assert find_hub("ws://unknown:1/interop/gateway").token is None


def test_the_environment_wins_over_several_runtime_files(
    runtime: Path, other_live_pid: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_hub(runtime, os.getpid())
    write_hub(runtime, other_live_pid)
    monkeypatch.setenv("JUPYTER_INTEROP_URL", "ws://kernel-hub/interop/gateway")
    monkeypatch.setenv("JUPYTER_INTEROP_TOKEN", "from-env")
    found = find_hub()
    assert (found.url, found.token) == ("ws://kernel-hub/interop/gateway", "from-env")
