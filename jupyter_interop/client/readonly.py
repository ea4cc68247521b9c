"""Read-only JSON containers: the context data a client holds and hands to its callbacks.

A context callback used to get a deep copy of the whole context, so that a callback changing
what it got could not corrupt the client's state or what the next callback sees: on a 10 MB
context that copy cost milliseconds per update, whatever the update's size. Instead the
client holds its data as these containers and never changes them in place (an update builds
a new top level that shares the entries it did not touch, see ``Contexts``), so every
callback gets the data itself: its cost follows the delta, not the value. They are a
``dict`` and a ``list`` to every reader (``isinstance``, ``==``, orjson, ``json``, pandas);
a change raises :class:`TypeError`. ``copy.deepcopy(data)`` and ``contexts.get(name)`` give
plain, changeable copies; ``dict(data)`` / ``data.copy()`` a plain top level (docs/ARCHITECTURE.md,
contexts).
"""

from __future__ import annotations

import copy
from typing import Any, NoReturn

__all__ = ["ReadOnlyDict", "ReadOnlyList", "freeze"]

_REFUSAL = (
    "Context data handed to callbacks is read-only (shared with the client and the other "
    "callbacks); copy.deepcopy(data) or contexts.get(name) give a copy you may change"
)


def _refuse(self: Any, *args: Any, **kwargs: Any) -> NoReturn:
    raise TypeError(_REFUSAL)


class ReadOnlyDict(dict[str, Any]):
    """A ``dict`` whose changes raise :class:`TypeError` (see the module docstring)."""

    __slots__ = ()

    __setitem__ = __delitem__ = __ior__ = _refuse
    clear = pop = popitem = setdefault = update = _refuse

    def __copy__(self) -> dict[str, Any]:
        return dict(self)

    def __deepcopy__(self, memo: dict[int, Any]) -> dict[str, Any]:
        return {key: copy.deepcopy(value, memo) for key, value in self.items()}

    def __reduce__(self) -> tuple[Any, ...]:
        return (dict, (dict(self),))


class ReadOnlyList(list[Any]):
    """A ``list`` whose changes raise :class:`TypeError` (see the module docstring)."""

    __slots__ = ()

    __setitem__ = __delitem__ = __iadd__ = __imul__ = _refuse
    append = clear = extend = insert = pop = remove = reverse = sort = _refuse

    def __copy__(self) -> list[Any]:
        return list(self)

    def __deepcopy__(self, memo: dict[int, Any]) -> list[Any]:
        return [copy.deepcopy(value, memo) for value in self]

    def __reduce__(self) -> tuple[Any, ...]:
        return (list, (list(self),))


def freeze(value: Any) -> Any:
    """``value`` with its JSON containers read-only; read-only ones are shared as they are,
    so freezing a new top level over old entries costs only what is new."""
    kind = type(value)
    if kind is ReadOnlyDict or kind is ReadOnlyList:
        return value
    if isinstance(value, dict):
        return ReadOnlyDict({key: freeze(item) for key, item in value.items()})
    if isinstance(value, list):
        return ReadOnlyList([freeze(item) for item in value])
    return value
