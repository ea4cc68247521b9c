"""Field checks for incoming messages: one place for 'missing field' and 'wrong type' errors."""

from __future__ import annotations

from typing import Any, TypeVar, overload

from ..protocol import ProtocolError, Reason

T = TypeVar("T")

_TYPE_NAMES = {
    str: "a string",
    dict: "an object",
    list: "an array",
    bool: "a boolean",
    int: "a number",
}


def _type_name(types: type | tuple[type, ...]) -> str:
    if isinstance(types, tuple):
        return " or ".join(_TYPE_NAMES.get(t, t.__name__) for t in types)
    return _TYPE_NAMES.get(types, types.__name__)


@overload
def field(msg: dict[str, Any], name: str, types: type[T]) -> T: ...
@overload
def field(msg: dict[str, Any], name: str, types: tuple[type, ...]) -> Any: ...
def field(msg: dict[str, Any], name: str, types: Any) -> Any:
    """Return ``msg[name]``, raising a ProtocolError if it is missing or of the wrong type."""
    value = msg.get(name)
    if value is None:
        raise ProtocolError(Reason.MISSING_FIELD, f"Message {msg.get('type')!r} needs {name!r}")
    if type(value) is types:  # the common case, one check (a bool is only ever a bool here)
        return value
    if not isinstance(value, types) or (isinstance(value, bool) and bool not in _as_tuple(types)):
        raise ProtocolError(
            Reason.BAD_TYPE,
            f"{name!r} of message {msg.get('type')!r} must be {_type_name(types)}, "
            f"not {type(value).__name__}",
        )
    return value


def optional(msg: dict[str, Any], name: str, types: Any, default: Any = None) -> Any:
    """Return ``msg[name]`` if present and not null, else ``default``; wrong types are errors."""
    if msg.get(name) is None:
        return default
    return field(msg, name, types)


def ident(msg: dict[str, Any], name: str) -> str:
    """An id field: GW3 clients send ids as strings or integers; the hub keys them as strings."""
    value = field(msg, name, (str, int))
    return str(value)


def _as_tuple(types: Any) -> tuple[type, ...]:
    return types if isinstance(types, tuple) else (types,)
