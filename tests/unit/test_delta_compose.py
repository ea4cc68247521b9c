"""Composed deltas (what a lagging subscriber gets, docs/RELIABILITY.md): applying the
composition equals applying the deltas in order, for random sequences of every form."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from jupyter_interop.protocol.deltas import apply_delta, compose_deltas, copy_data

# few keys, so that deltas touch the same ones; "a.b" and "" test keys commands cannot name
KEYS = st.sampled_from(["a", "b", "c", "a.b", ""])
PATH_KEYS = st.sampled_from(["a", "b", "c"])
LEAVES = st.one_of(st.integers(-3, 3), st.text(max_size=3), st.none(), st.booleans())
VALUES = st.recursive(
    LEAVES,
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(KEYS, inner, max_size=3)),
    max_leaves=8,
)
# maps inside maps: what ``updated`` merges and commands walk into
MAPS = st.dictionaries(
    KEYS, st.one_of(st.dictionaries(KEYS, VALUES, max_size=3), VALUES), max_size=3
)
ENTRIES = st.one_of(MAPS, MAPS, VALUES)
DATA = st.dictionaries(KEYS, ENTRIES, max_size=4)
PATHS = st.lists(PATH_KEYS, min_size=1, max_size=3).map(".".join)
COMMAND = st.one_of(
    st.fixed_dictionaries({"type": st.just("set"), "path": PATHS, "value": ENTRIES}),
    st.fixed_dictionaries({"type": st.just("remove"), "path": PATHS}),
    st.fixed_dictionaries({"type": st.just("set"), "path": PATHS, "value": ENTRIES}),
    st.fixed_dictionaries({"type": st.just("remove"), "path": PATHS}),
    st.fixed_dictionaries({"type": st.just("set"), "path": st.just(""), "value": DATA}),
    st.fixed_dictionaries({"type": st.just("remove"), "path": st.just("")}),
)
V1 = st.fixed_dictionaries(
    {},
    optional={
        "added": st.dictionaries(KEYS, ENTRIES, max_size=3),
        "updated": st.dictionaries(KEYS, ENTRIES, max_size=3),
        "removed": st.lists(KEYS, max_size=3),
    },
)
COMMANDS = st.fixed_dictionaries({"commands": st.lists(COMMAND, min_size=1, max_size=4)})
# a reset makes every later composition the whole value: rarer, so the rest is exercised
DELTA = st.one_of(V1, V1, V1, COMMANDS, COMMANDS, st.fixed_dictionaries({"reset": DATA}))


def applied(data: dict[str, Any], delta: dict[str, Any]) -> dict[str, Any]:
    """``delta`` applied to a copy of ``data`` and of itself (apply_delta shares values)."""
    return apply_delta(copy_data(data), copy_data(delta))


@settings(max_examples=600, deadline=None)
@given(DATA, st.lists(DELTA, min_size=2, max_size=6))
def test_the_composed_delta_ends_where_the_deltas_in_order_end(
    data: dict[str, Any], deltas: list[dict[str, Any]]
) -> None:
    expected = data
    composed: dict[str, Any] | None = None
    for delta in deltas:
        before = copy_data(delta)
        expected = applied(expected, delta)
        if composed is None:
            composed = delta
            continue
        # what the outbox does when no delta can say it: the current data, whole
        composed = compose_deltas(composed, delta) or {"reset": copy_data(expected)}
        assert delta == before and composed is not None  # the inputs are left as they were
        if "commands" in composed:  # @glue42/core reads nothing else of such a delta
            assert list(composed) == ["commands"]
    assert composed is not None
    assert applied(data, composed) == expected


def test_each_key_appears_once_with_its_last_change() -> None:
    first = {"added": {"x": 1, "y": {"a": 1}}, "removed": ["z"]}
    second = {"updated": {"y": {"b": 2}}, "removed": ["x"]}
    assert compose_deltas(first, second) == {
        "added": {"y": {"a": 1, "b": 2}},
        "removed": ["x", "z"],
    }


def test_commands_compose_into_commands_only() -> None:
    first = {"commands": [{"type": "set", "path": "a.b", "value": 1}]}
    second = {"added": {"c": 3}, "removed": ["d"]}
    assert compose_deltas(first, second) == {
        "commands": [
            {"type": "set", "path": "a.b", "value": 1},
            {"type": "set", "path": "c", "value": 3},
            {"type": "remove", "path": "d"},
        ]
    }


def test_what_no_delta_can_say_is_none() -> None:
    assert compose_deltas({"added": {"a": 1}}, {"reset": {}}) is None
    whole = {"commands": [{"type": "set", "path": "", "value": {}}]}
    assert compose_deltas(whole, {"added": {"a": 1}}) is None
    # commands cannot name a key with a dot
    dotted = {"commands": [{"type": "set", "path": "a", "value": 1}]}
    assert compose_deltas(dotted, {"added": {"a.b": 1}}) is None
