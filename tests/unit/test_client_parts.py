"""Client pieces without a hub: discovery, instance filters, targets, context deltas, callbacks."""

from __future__ import annotations

import copy
import json
import os
import re
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jupyter_interop.client.contexts import _commands, _paths, adapt_callback, apply_update
from jupyter_interop.client.discovery import find_hub
from jupyter_interop.client.errors import ArgumentError, DiscoveryError
from jupyter_interop.client.instance import Instance, matches, normalize_filter
from jupyter_interop.client.method_invoker import parse_target
from jupyter_interop.hub.contexts import apply_delta

# ---------------------------------------------------------------------- discovery


@pytest.fixture
def runtime(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(tmp_path))
    monkeypatch.delenv("JUPYTER_INTEROP_URL", raising=False)
    monkeypatch.delenv("JUPYTER_INTEROP_TOKEN", raising=False)
    return tmp_path


def write_runtime(directory: Path, pid: int, url: str, started: float) -> None:
    info = {"url": url, "token": f"t{pid}", "pid": pid, "kind": "server", "started": started}
    (directory / f"jupyter_interop-{pid}.json").write_text(json.dumps(info))


def test_explicit_arguments_win_and_a_url_token_is_used(runtime: Path) -> None:
    write_runtime(runtime, os.getpid(), "ws://file", 1.0)
    assert find_hub("ws://x/interop/gateway?token=abc").token == "abc"
    address = find_hub("ws://x", "tok")
    assert (address.url, address.token, address.source) == ("ws://x", "tok", "argument")


def test_environment_then_the_live_runtime_file(
    runtime: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # several live hubs: tests/unit/test_discovery_choice.py
    write_runtime(runtime, os.getpid(), "ws://mine", time.time())
    write_runtime(runtime, 2**22 + 12345, "ws://dead-newest", time.time())  # no such process
    (runtime / "jupyter_interop-bad.json").write_text("{not json")
    found = find_hub()
    assert (found.url, found.token) == ("ws://mine", f"t{os.getpid()}")
    assert found.source.startswith("runtime file")
    monkeypatch.setenv("JUPYTER_INTEROP_URL", "ws://env")
    monkeypatch.setenv("JUPYTER_INTEROP_TOKEN", "envtok")
    env = find_hub()
    assert (env.url, env.token, env.source) == (
        "ws://env",
        "envtok",
        "environment (JUPYTER_INTEROP_URL)",
    )


def test_nothing_found_lists_what_was_tried(runtime: Path) -> None:
    with pytest.raises(DiscoveryError) as info:
        find_hub()
    message = str(info.value)
    assert "JUPYTER_INTEROP_URL (not set)" in message
    assert str(runtime) in message and "none of a live process" in message
    assert "explicit arguments" in message


# ---------------------------------------------------------------------- instances and targets


INSTANCE = Instance.from_identity(
    {
        "application": "Pricer",
        "applicationName": "Pricer app",
        "process": 42,
        "machine": "box",
        "user": "ana",
        "instance": "p1",
        "peerId": "p1",
        "notebookPath": "work/pricer.ipynb",
        "kernelId": "k-1",
        "custom": "x",
    },
    "p1",
)


def test_instance_from_identity() -> None:
    assert INSTANCE.pid == 42 and INSTANCE.notebook_path == "work/pricer.ipynb"
    assert INSTANCE.kernel_id == "k-1" and INSTANCE.identity["custom"] == "x"
    assert Instance(peer_id="p1") == INSTANCE and hash(INSTANCE) == hash(Instance(peer_id="p1"))


@pytest.mark.parametrize(
    ("flt", "expected"),
    [
        ({"application": "pricer"}, True),  # case-insensitive, as io.Connect compares
        ({"applicationName": "PRICER APP"}, True),
        ({"application_name": "pricer app", "user": "ana"}, True),
        ({"notebookPath": "work/pricer.ipynb"}, True),
        ({"pid": 42}, True),
        ({"custom": "X"}, True),
        ({"application": re.compile(r"^Pri")}, True),
        ({"application": re.compile(r"^pri")}, False),
        ({"application": "pricer", "user": "bob"}, False),
        ({"missing": "x"}, False),
        ({"application": None}, True),  # undefined fields are ignored
    ],
)
def test_instance_filters(flt: dict[str, Any], expected: bool) -> None:
    assert matches(INSTANCE, normalize_filter(flt)) is expected


def test_parse_target() -> None:
    assert parse_target(None) == "best" and parse_target("skipMine") == "skipMine"
    assert parse_target({"applicationName": "a"}) == [{"application_name": "a"}]
    assert parse_target([INSTANCE, {"user": "x"}]) == [{"peer_id": "p1"}, {"user": "x"}]
    for bad in ("mine", 3, [], [3], {1: "x"}):
        with pytest.raises(ArgumentError):
            parse_target(bad)
    with pytest.raises(ArgumentError, match="not a valid target"):
        parse_target("skipMine", allow_skip_mine=False)


# ---------------------------------------------------------------------- context deltas

keys = st.sampled_from(["a", "b", "c", "a.b", "x"])
leaf = st.one_of(st.integers(0, 9), st.text(max_size=2), st.none())
values = st.recursive(
    leaf, lambda c: st.dictionaries(st.sampled_from(["a", "b", "c"]), c, max_size=3), max_leaves=6
)
paths = st.lists(st.sampled_from(["a", "b", "c"]), max_size=3).map(".".join)
commands = st.lists(
    st.one_of(
        st.builds(lambda p, v: {"type": "set", "path": p, "value": v}, paths.filter(bool), values),
        st.builds(lambda p: {"type": "remove", "path": p}, paths),
        st.builds(
            lambda v: {"type": "set", "path": "", "value": v},
            st.dictionaries(keys, values, max_size=3),
        ),
    ),
    min_size=1,
    max_size=4,
)
deltas = st.one_of(
    st.builds(lambda d: {"reset": d}, st.dictionaries(keys, values, max_size=3)),
    st.builds(
        lambda a, r: {k: v for k, v in (("added", a), ("removed", r)) if v},
        st.dictionaries(keys, values, max_size=3),
        st.lists(keys, max_size=3),
    ).filter(bool),
    st.builds(lambda u: {"updated": u}, st.dictionaries(keys, values, min_size=1, max_size=3)),
    st.builds(lambda c: {"commands": c}, commands),
)


@settings(max_examples=400, deadline=None)
@given(st.dictionaries(keys, values, max_size=4), deltas)
def test_client_applies_deltas_exactly_as_the_hub(
    data: dict[str, Any], delta: dict[str, Any]
) -> None:
    hub = apply_delta(copy.deepcopy(data), copy.deepcopy(delta))
    client, _changed, removed = apply_update(copy.deepcopy(data), copy.deepcopy(delta))
    assert client == hub
    assert sorted(removed) == sorted(key for key in data if key not in client)
    assert len(set(removed)) == len(removed)


def test_callback_delta_and_removed_keys() -> None:
    data, changed, removed = apply_update(
        {"a": 1, "b": {"c": 2, "d": 3}},
        {"commands": [{"type": "set", "path": "b.c", "value": 5}, {"type": "remove", "path": "a"}]},
    )
    assert data == {"b": {"c": 5, "d": 3}}
    assert changed == {"b": {"c": 5}} and removed == ["a"]
    data, changed, removed = apply_update({"a": 1, "b": 2}, {"reset": {"b": 3}})
    assert (data, changed, removed) == ({"b": 3}, {"b": 3}, ["a"])


def test_paths_and_commands() -> None:
    assert _paths({"a.b": 1}) == [("a.b", 1)]
    assert _paths([("a", 1), {"path": "b", "value": None}]) == [("a", 1), ("b", None)]
    assert _commands([("a", None), ("b", 2)]) == [
        {"type": "remove", "path": "a"},
        {"type": "set", "path": "b", "value": 2},
    ]
    for bad in (3, [("a",)], [(1, 2)]):
        with pytest.raises(ArgumentError):
            _paths(bad)
    with pytest.raises(ArgumentError, match="whole context"):
        _commands([("", 3)])


def test_callbacks_get_as_many_arguments_as_they_take() -> None:
    seen: list[tuple[Any, ...]] = []
    adapt_callback(lambda data: seen.append((data,)), 4)(1, 2, 3, 4)
    adapt_callback(lambda data, delta: seen.append((data, delta)), 4)(1, 2, 3, 4)
    adapt_callback(lambda *args: seen.append(args), 4)(1, 2, 3, 4)
    adapt_callback(print, 4)  # builtins without a signature are left alone
    assert seen == [(1,), (1, 2), (1, 2, 3, 4)]
