"""Shared-memory attachments between real processes through a real hub.

The hub's directory is made under a fresh directory of /dev/shm (its ``shm_dir``) so that the
tests can look at the files; the grace period is short so that removals can be waited for.
A sender runs in its own process (``SENDER``); receivers are clients of the test process.
"""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from test_client_support import (
    REPO,
    Clients,
    Recorder,
    StandaloneHub,
    assert_same,
    standalone_hub,
    wait_for,
)

import jupyter_interop as ji

GRACE = 0.3

SENDER = r"""
import json, sys
sys.path.insert(0, sys.argv[1])
import jupyter_interop as ji
from test_shm_transfer import make_value

url, token, name, kind, mode = sys.argv[2:7]
io = ji.connect(url, token, "shm-sender", new=True)
shared = io._conn.codec.shared
if mode == "orphan":  # written in the inbox, never announced
    placeholder = shared.write(make_value(kind))
    print(json.dumps({"inbox": shared.inbox, "name": placeholder["shm"]["name"]}), flush=True)
else:
    io.contexts.set(name, {"v": make_value(kind)})
    print(json.dumps({"shared": shared is not None}), flush=True)
sys.stdin.readline()
io.close()
"""


def make_value(kind: str) -> Any:
    """The values the tests send (above the default 1 MiB threshold)."""
    rng = np.random.default_rng(7)
    if kind == "frame":
        rows = 100_000
        frame = pd.DataFrame({"f": rng.random(rows), "i": np.arange(rows, dtype="int64")})
        frame["t"] = pd.date_range("2024-01-01", periods=rows, freq="s").to_numpy()
        return frame
    if kind == "array":
        return rng.random((400, 500))
    return bytes(range(256)) * 8192


class Sender:
    """A client in its own process that sends one value (``mode`` "set" or "orphan")."""

    def __init__(self, hub: StandaloneHub, name: str, kind: str, mode: str = "set") -> None:
        here = str(Path(__file__).parent)
        self.proc = subprocess.Popen(
            [sys.executable, "-c", SENDER, here, hub.url, hub.token, name, kind, mode],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            cwd=str(REPO),
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            self.proc.wait(10)
            raise AssertionError(f"the sender failed (exit code {self.proc.returncode})")
        self.report = json.loads(line)

    def close(self) -> None:
        if self.proc.poll() is None:
            assert self.proc.stdin is not None
            self.proc.stdin.close()
            self.proc.wait(10)

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)


@pytest.fixture(scope="module")
def shm_root() -> Iterator[Path]:
    root = Path(tempfile.mkdtemp(prefix="ji-shm-test-", dir="/dev/shm"))
    yield root
    shutil.rmtree(root, ignore_errors=True)


def configure(tmp: Path, **settings: Any) -> Path:
    (tmp / "config").mkdir(exist_ok=True)
    config = {"StandaloneHubApp": settings}
    (tmp / "config" / "jupyter_interop_hub_config.json").write_text(json.dumps(config))
    return tmp


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory, shm_root: Path) -> Iterator[StandaloneHub]:
    tmp = configure(tmp_path_factory.mktemp("shm-hub"), shm_dir=str(shm_root), shm_grace=GRACE)
    with standalone_hub(tmp) as h:
        yield h


def hub_dir(root: Path) -> Path:
    dirs = [p for p in root.iterdir() if p.name.startswith("jupyter-interop-")]
    assert len(dirs) == 1, dirs
    return dirs[0]


def held(root: Path) -> list[Path]:
    return sorted((hub_dir(root) / "held").iterdir())


def received(events: Recorder, count: int = 1) -> Any:
    return events.wait(count, timeout=20)[count - 1][0]["v"]


@pytest.mark.parametrize("kind", ["frame", "array", "bytes"])
def test_a_value_goes_by_reference_between_two_processes(
    hub: StandaloneHub, clients: Clients, shm_root: Path, kind: str
) -> None:
    reader = clients("shm-reader")
    assert reader._conn.codec.shared is not None  # negotiated and proven by default
    name = f"Shm.{kind}"
    events = Recorder()
    reader.contexts.subscribe(name, events)
    sender = Sender(hub, name, kind)
    try:
        assert sender.report == {"shared": True}
        got = received(events)
        expected = make_value(kind)
        assert_same(got, expected)
        files = held(shm_root)
        assert len(files) == 1 and files[0].stat().st_size >= 1024 * 1024
        before = files[0].read_bytes()[:64]
        if kind == "frame":
            got.iloc[0, 0] = -1.0  # an ordinary writable DataFrame...
            got["i"] += 1
            assert got.iloc[0, 0] == -1.0
        elif kind == "array":
            got[0, 0] = -1.0
        assert files[0].read_bytes()[:64] == before  # ...whose writes never reach the file
        # a later reader gets the retained value by reference too
        assert_same(clients("shm-late").contexts.get(name)["v"], expected)
    finally:
        sender.close()
    # the value replaced: its file goes after the grace period
    reader.contexts.set(name, {"v": 0})
    wait_for(lambda: held(shm_root) == [], 10, "the replaced value's file to be removed")


def test_peers_without_shared_memory_get_the_bytes(
    hub: StandaloneHub, clients: Clients, shm_root: Path
) -> None:
    binary = clients("shm-off", shared_memory=False)
    plain = clients("shm-json", binary=False)
    assert binary._conn.codec.shared is None and plain._conn.codec.shared is None
    recorders = {"binary": Recorder(), "json": Recorder()}
    binary.contexts.subscribe("Shm.others", recorders["binary"])
    plain.contexts.subscribe("Shm.others", recorders["json"])
    sender = Sender(hub, "Shm.others", "frame")
    try:
        assert len(held(shm_root)) == 1  # it came by reference
        for events in recorders.values():
            assert_same(received(events), make_value("frame"))
    finally:
        sender.close()
    binary.contexts.set("Shm.others", {"v": 0})
    wait_for(lambda: held(shm_root) == [], 10, "the file to be removed")


def test_invoke_arguments_and_results_by_reference(clients: Clients, shm_root: Path) -> None:
    server, caller = clients("shm-server"), clients("shm-caller")
    seen: dict[str, Any] = {}

    @server.methods.register("Shm.Echo")
    def echo(value: Any) -> Any:
        seen["files"] = len(held(shm_root))
        seen["value"] = value
        return {"value": value}

    array = make_value("array")
    result = caller.methods.invoke("Shm.Echo", {"value": array}, timeout=20).returned
    assert_same(seen["value"], array)
    assert_same(result["value"], array)
    assert seen["files"] == 1  # the argument was a file the hub held
    # delivered and dropped: nothing stays
    wait_for(lambda: held(shm_root) == [], 10, "the delivered values' files to be removed")


def test_a_sender_that_dies_before_announcing_leaves_nothing(
    hub: StandaloneHub, shm_root: Path
) -> None:
    sender = Sender(hub, "Shm.orphan", "array", mode="orphan")
    inbox = Path(sender.report["inbox"])
    assert (inbox / sender.report["name"]).is_file()
    sender.kill()
    wait_for(lambda: not inbox.exists(), 10, "the dead peer's inbox to be removed")
    assert held(shm_root) == []


def test_hub_restart_and_crash(hub: StandaloneHub, clients: Clients, shm_root: Path) -> None:
    reader = clients("shm-restart")
    first = hub_dir(shm_root)
    hub.restart()  # a clean stop removes the directory, the new hub makes another
    assert not first.exists()
    second = hub_dir(shm_root)
    wait_for(lambda: reader._conn.connected.is_set(), 20, "the reconnect")
    wait_for(lambda: reader._conn.codec.shared is not None, 10, "shared memory again")
    assert reader._conn.codec.shared is not None
    assert reader._conn.codec.shared.held.startswith(str(second))
    events = Recorder()
    reader.contexts.subscribe("Shm.again", events)
    sender = Sender(hub, "Shm.again", "bytes")
    try:
        assert_same(received(events), make_value("bytes"))
    finally:
        sender.close()
    hub.kill()  # a crash leaves its directory behind...
    assert second.exists()
    hub.start()  # ...which the next hub removes
    assert not second.exists()
    hub_dir(shm_root)


def test_a_js_peer_sees_what_it_saw_before(
    hub: StandaloneHub, clients: Clients, shm_root: Path
) -> None:
    from test_client_js import JsPeer

    small = {
        "frame": pd.DataFrame({"px": np.linspace(0, 1, 100), "n": np.arange(100)}),
        "arr": np.arange(300, dtype="int32").reshape(30, 10),
        "raw": bytes(range(256)) * 8,
    }
    shared = clients("shm-js-a", shared_memory_threshold=1024)
    plain = clients("shm-js-b", shared_memory=False)
    js = JsPeer(hub)
    try:
        js.call("contextSubscribe", name="Shm.js.shared")
        js.call("contextSubscribe", name="Shm.js.plain")
        shared.contexts.set("Shm.js.shared", dict(small))
        assert len(held(shm_root)) == 3  # all three went by reference
        plain.contexts.set("Shm.js.plain", dict(small))

        def seen(name: str) -> Any:
            return js.event(lambda e: e.get("event") == "context" and e["name"] == name)["data"]

        assert seen("Shm.js.shared") == seen("Shm.js.plain")
        assert seen("Shm.js.shared")["arr"]["data"][1] == list(range(10, 20))
    finally:
        js.close()
    shared.contexts.set("Shm.js.shared", {})
    wait_for(lambda: held(shm_root) == [], 10, "the files to be removed")


def test_retained_contexts_are_persisted_with_their_bytes(tmp_path: Path) -> None:
    root = Path(tempfile.mkdtemp(prefix="ji-shm-persist-", dir="/dev/shm"))
    tmp = configure(tmp_path, shm_dir=str(root), shm_grace=GRACE, persist_contexts=True)
    try:
        with standalone_hub(tmp) as persistent:
            sender = Sender(persistent, "Shm.kept", "array")
            try:
                assert sender.report == {"shared": True} and len(held(root)) == 1
            finally:
                sender.close()
            persistent.restart()  # the store wrote the array itself, not a file name
            assert held(root) == []
            client = ji.connect(persistent.url, persistent.token, "shm-kept", new=True)
            try:
                assert_same(client.contexts.get("Shm.kept")["v"], make_value("array"))
            finally:
                client.close()
    finally:
        shutil.rmtree(root, ignore_errors=True)
