"""GW3 context deltas: the one implementation the hub and the client both apply.

A delta is a dict of forms applied in key order: ``reset`` (replace everything), ``added`` /
``updated`` / ``removed`` (protocol v1: ``updated`` merges one level deep), and ``commands``
(protocol v2: ``set``/``remove`` at dot paths, intermediate maps created as needed, a non-map
intermediate replaced by ``{}``; path ``""`` is the whole context).

The hub applies deltas to keep state; the client also needs what changed, for its callbacks,
so ``apply_delta`` can record a ``changed`` tree on the way (never sharing containers with the
data, so a later command in the same delta cannot alter what was reported). Only the top level
is changed in place: a command copies the maps on its path below it, so values shared with an
earlier delta, or the client's read-only data (``client/readonly.py``), are never altered.
"""

from __future__ import annotations

from typing import Any

__all__ = ["apply_command", "apply_delta", "compose_deltas", "copy_data", "split_path"]

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


def _branch_copied(data: Data, parts: list[str]) -> Data:
    """:func:`_branch` in ``data`` with each map on the path below the top level copied."""
    tree = data
    for part in parts:
        child = tree.get(part)
        child = tree[part] = dict(child) if isinstance(child, dict) else {}
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
        _branch_copied(data, parts[:-1])[parts[-1]] = value
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
        del _branch_copied(data, parts[:-1])[parts[-1]]
        if changed is not None and len(parts) > 1:
            _branch(changed, parts[:-1])[parts[-1]] = None
    return data


# ---------------------------------------------------------------------- composition
#
# Two deltas queued for one subscriber compose into one (docs/RELIABILITY.md, coalescing).
# Without the data they apply to, each top-level key's net effect is one of: a value now
# known (``_Set``), gone (``_REMOVED``), or changes below it on a base not known
# (``_Patch``). Different keys never interact, so the composed delta lists each key once.


class _Set:
    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value


class _Removed:
    __slots__ = ()


_REMOVED = _Removed()


class _Patch:
    """Changes below a node whose value is not known: ``ensure`` makes it a map first (as a
    ``set`` below it, or an ``updated`` merge, does); then each child's effect applies."""

    __slots__ = ("children", "ensure")

    def __init__(self, ensure: bool) -> None:
        self.ensure = ensure
        self.children: dict[str, _Effect] = {}


_Effect = _Set | _Removed | _Patch | None  # None: unchanged


def _set_known(node: Any, parts: list[str], value: Any) -> Data:
    """``node`` with ``value`` at ``parts``, copied along the path (shared values stay
    untouched: they belong to messages other recipients still get)."""
    copied = dict(node) if isinstance(node, dict) else {}
    if len(parts) == 1:
        copied[parts[0]] = value
    else:
        copied[parts[0]] = _set_known(copied.get(parts[0]), parts[1:], value)
    return copied


def _remove_known(node: Any, parts: list[str]) -> Any:
    if not isinstance(node, dict) or parts[0] not in node:
        return node
    copied = dict(node)
    if len(parts) == 1:
        del copied[parts[0]]
    else:
        copied[parts[0]] = _remove_known(copied[parts[0]], parts[1:])
    return copied


def _set_at(effect: _Effect, parts: list[str], value: Any) -> _Effect:
    """``effect`` followed by setting ``value`` at ``parts`` below the node."""
    if not parts:
        return _Set(value)
    if isinstance(effect, _Set):
        return _Set(_set_known(effect.value, parts, value))
    if isinstance(effect, _Removed):
        return _Set(_set_known(None, parts, value))
    patch = effect if isinstance(effect, _Patch) else _Patch(True)
    patch.ensure = True
    patch.children[parts[0]] = _set_at(patch.children.get(parts[0]), parts[1:], value)
    return patch


def _remove_at(effect: _Effect, parts: list[str]) -> _Effect:
    """``effect`` followed by removing ``parts`` below the node (nothing if not a map)."""
    if isinstance(effect, _Set):
        return _Set(_remove_known(effect.value, parts))
    if isinstance(effect, _Removed):
        return effect
    patch = effect if isinstance(effect, _Patch) else _Patch(False)
    key = parts[0]
    patch.children[key] = (
        _REMOVED if len(parts) == 1 else _remove_at(patch.children.get(key), parts[1:])
    )
    return patch


def _merge_at(effect: _Effect, new: Any) -> _Effect:
    """``effect`` followed by v1 ``updated``: a map merges into a map, anything else
    replaces."""
    if not isinstance(new, dict):
        return _Set(new)
    if isinstance(effect, _Set):
        old = effect.value
        return _Set({**old, **new} if isinstance(old, dict) else dict(new))
    if isinstance(effect, _Removed):
        return _Set(dict(new))
    patch = effect if isinstance(effect, _Patch) else _Patch(True)
    patch.ensure = True
    for key, value in new.items():
        patch.children[key] = _Set(value)
    return patch


def _record(top: dict[str, _Effect], delta: Data) -> bool:
    """Add ``delta``'s effects to ``top``; False when it replaces the whole context."""
    for kind, value in delta.items():
        if kind == "reset":
            return False
        if kind == "added":
            for key, new in value.items():
                top[key] = _Set(new)
        elif kind == "updated":
            for key, new in value.items():
                top[key] = _merge_at(top.get(key), new)
        elif kind == "removed":
            for key in value:
                top[key] = _REMOVED
        elif kind == "commands":
            for command in value:
                parts = split_path(command.get("path", ""))
                if not parts:
                    return False
                key, rest = parts[0], parts[1:]
                if command.get("type") == "set":
                    top[key] = _set_at(top.get(key), rest, command.get("value"))
                else:
                    top[key] = _REMOVED if not rest else _remove_at(top.get(key), rest)
    return True


def _commands_of(effect: _Effect, path: str, out: list[Data]) -> bool:
    """Commands with ``effect`` at ``path``, the one making it a map first; False when
    commands cannot say it (a key with a dot, or a map made of nothing set)."""
    if isinstance(effect, _Set):
        out.append({"type": "set", "path": path, "value": effect.value})
        return True
    if isinstance(effect, _Removed):
        out.append({"type": "remove", "path": path})
        return True
    if effect is None:
        return True
    if any("." in key for key in effect.children):
        return False
    children = sorted(
        effect.children.items(),
        key=lambda item: (
            not isinstance(item[1], _Set) and not (isinstance(item[1], _Patch) and item[1].ensure)
        ),
    )
    if effect.ensure and not children:
        return False
    if effect.ensure and not _makes_map(children[0][1]):
        return False
    return all(_commands_of(child, f"{path}.{key}", out) for key, child in children)


def _makes_map(effect: _Effect) -> bool:
    return isinstance(effect, _Set) or (isinstance(effect, _Patch) and effect.ensure)


def compose_deltas(first: Data, second: Data) -> Data | None:
    """One delta with the effect of (validated) ``first`` then ``second`` on any data, or
    None when none can be written without the data (a ``reset`` or a whole-context
    command is involved, or commands would need a key containing a dot).

    The result is all ``commands`` when either delta had commands, else ``added`` /
    ``updated`` / ``removed``: @glue42/core applies only the commands of a delta that has
    them, so the two families are never mixed. Neither input is changed; values are shared
    with them.
    """
    top: dict[str, _Effect] = {}
    if not (_record(top, first) and _record(top, second)):
        return None
    if "commands" in first or "commands" in second:
        commands: list[Data] = []
        for key, effect in top.items():
            if not key or "." in key or not _commands_of(effect, key, commands):
                return None
        return {"commands": commands}
    added: Data = {}
    updated: Data = {}
    removed: list[str] = []
    for key, effect in top.items():
        if isinstance(effect, _Set):
            added[key] = effect.value
        elif isinstance(effect, _Removed):
            removed.append(key)
        elif isinstance(effect, _Patch):  # only ``updated`` merges without commands
            updated[key] = {k: c.value for k, c in effect.children.items() if isinstance(c, _Set)}
    composed: Data = {}
    if added:
        composed["added"] = added
    if updated:
        composed["updated"] = updated
    if removed:
        composed["removed"] = removed
    return composed
