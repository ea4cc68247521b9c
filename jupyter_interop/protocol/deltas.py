"""GW3 context deltas: the one implementation the hub and the client both apply.

A delta is a dict of forms applied in key order: ``reset`` (replace everything), ``added`` /
``updated`` / ``removed`` (protocol v1: ``updated`` merges one level deep), and ``commands``
(protocol v2: ``set``/``remove`` at dot paths, intermediate maps created as needed, a non-map
intermediate replaced by ``{}``; path ``""`` is the whole context).

The hub applies deltas to keep state; the client also needs what changed, for its callbacks,
so ``apply_delta`` can record a ``changed`` tree on the way (never sharing containers with the
data, so a later command in the same delta cannot alter what was reported).
"""

from __future__ import annotations

from typing import Any

__all__ = ["apply_command", "apply_delta", "copy_data", "split_path"]

Data = dict[str, Any]


def copy_data(value: Any) -> Any:
    """A copy of the JSON containers; leaves (arrays, DataFrames, strings) are shared."""
    if isinstance(value, dict):
        return {k: copy_data(v) for k, v in value.items()}
    if isinstance(value, list):
        return [copy_data(v) for v in value]
    return value


def split_path(path: str) -> list[str]:
    return path.split(".") if path else []


def apply_delta(data: Data, delta: Data, changed: Data | None = None) -> Data:
    """Apply a (validated) delta and return the new data.

    With ``changed``, also record there what changed: the new values, ``None`` at removed
    nested paths (removed top-level keys are found by comparing keys before and after).
    """
    for kind, value in delta.items():
        if kind == "reset":
            data = dict(value)
            if changed is not None:
                changed.update(copy_data(value))
        elif kind == "added":
            data.update(value)
            if changed is not None:
                changed.update(copy_data(value))
        elif kind == "updated":
            for key, new in value.items():
                old = data.get(key)
                merged = {**old, **new} if isinstance(old, dict) and isinstance(new, dict) else new
                data[key] = merged
                if changed is not None:
                    changed[key] = copy_data(merged)
        elif kind == "removed":
            for key in value:
                data.pop(key, None)
        elif kind == "commands":
            for command in value:
                data = apply_command(data, command, changed)
    return data


def _branch(tree: Data, parts: list[str]) -> Data:
    """The map at ``parts`` inside ``tree``, created (or replaced by ``{}``) where needed."""
    for part in parts:
        child = tree.get(part)
        if not isinstance(child, dict):
            child = tree[part] = {}
        tree = child
    return tree


def apply_command(data: Data, command: Data, changed: Data | None = None) -> Data:
    """Apply one ``set``/``remove`` command at a dot path; return the new data."""
    parts = split_path(command.get("path", ""))
    if command.get("type") == "set":
        value: Any = command.get("value")
        if changed is not None:
            if parts:
                _branch(changed, parts[:-1])[parts[-1]] = copy_data(value)
            else:
                changed.update(copy_data(value))
        if not parts:
            return dict(value)
        _branch(data, parts[:-1])[parts[-1]] = value
        return data
    if not parts:
        return {}
    node = data
    for part in parts[:-1]:
        child = node.get(part)
        if not isinstance(child, dict):
            return data
        node = child
    if parts[-1] in node:
        del node[parts[-1]]
        if changed is not None and len(parts) > 1:
            _branch(changed, parts[:-1])[parts[-1]] = None
    return data
