"""The client's read-only context data (docs/ARCHITECTURE.md, contexts): changes raise,
copies are plain, and an update shares the entries it did not touch."""

from __future__ import annotations

import copy
import json
import pickle
from typing import Any

import orjson
import pytest

from jupyter_interop.client.contexts import apply_update
from jupyter_interop.client.readonly import ReadOnlyDict, ReadOnlyList, freeze


def test_every_change_nested_too_raises_and_readers_see_plain_json() -> None:
    data = freeze({"a": {"b": [1, {"c": 2}]}, "n": 0})
    changes: list[Any] = [
        lambda: data.__setitem__("x", 1),
        lambda: data.__delitem__("n"),
        lambda: data.update(x=1),
        lambda: data.setdefault("x", 1),
        lambda: data.pop("n"),
        lambda: data.popitem(),
        lambda: data.clear(),
        lambda: data["a"].__setitem__("b", 1),
        lambda: data["a"]["b"].append(3),
        lambda: data["a"]["b"].extend([3]),
        lambda: data["a"]["b"].insert(0, 3),
        lambda: data["a"]["b"].sort(),
        lambda: data["a"]["b"].__setitem__(0, 3),
        lambda: data["a"]["b"][1].__setitem__("c", 3),
    ]
    for change in changes:
        with pytest.raises(TypeError, match="read-only"):
            change()
    assert data == {"a": {"b": [1, {"c": 2}]}, "n": 0}
    assert orjson.loads(orjson.dumps(data)) == data == json.loads(json.dumps(data))
    for mine in (copy.deepcopy(data), pickle.loads(pickle.dumps(data))):
        assert type(mine) is dict and type(mine["a"]["b"]) is list
        mine["a"]["b"][1]["c"] = 3
    assert type(copy.copy(data)) is dict and type(data.copy()) is dict
    assert data["a"]["b"][1] == {"c": 2}
    assert freeze(data) is data  # already read-only: shared


def test_an_update_makes_a_new_top_level_sharing_what_it_did_not_touch() -> None:
    old = freeze({"keep": {"x": [1]}, "nested": {"p": {"q": 1}}, "gone": 1})
    delta = {"commands": [{"type": "set", "path": "nested.p.r", "value": {"s": [2]}}]}
    new, changed, removed = apply_update(old, delta)
    assert new == {"keep": {"x": [1]}, "nested": {"p": {"q": 1, "r": {"s": [2]}}}, "gone": 1}
    assert old == {"keep": {"x": [1]}, "nested": {"p": {"q": 1}}, "gone": 1}  # as it was
    assert new["keep"] is old["keep"]
    assert isinstance(new["nested"]["p"]["r"]["s"], ReadOnlyList)
    assert isinstance(changed, ReadOnlyDict) and changed == {"nested": {"p": {"r": {"s": [2]}}}}
    assert removed == []
    value = {"k": [1]}
    newer, changed, removed = apply_update(
        new, {"added": {"v": value}, "removed": ["gone", "none"]}
    )
    value["k"].append(2)  # the writer's own dict stays the writer's
    assert newer["v"] == {"k": [1]} and removed == ["gone"] and "gone" in new
    _, _, removed = apply_update(newer, {"reset": {"keep": 1}})
    assert sorted(removed) == ["nested", "v"]
