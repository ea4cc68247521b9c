"""Field checks of incoming messages (hub/_fields.py): the fast path keeps every rule."""

from __future__ import annotations

from typing import Any

import pytest

from jupyter_interop.hub._fields import field, ident, optional
from jupyter_interop.protocol import ProtocolError, Reason


class Name(str):
    pass


def test_values_of_the_asked_type_or_a_subtype_are_returned() -> None:
    msg: dict[str, Any] = {"type": "t", "s": "x", "n": 3, "sub": Name("y"), "f": True}
    assert field(msg, "s", str) == "x"
    assert field(msg, "n", int) == 3
    assert field(msg, "sub", str) == "y"
    assert field(msg, "f", bool) is True
    assert field(msg, "n", (str, int)) == 3
    assert ident(msg, "n") == "3"


@pytest.mark.parametrize(
    ("value", "types", "reason"),
    [
        (None, str, Reason.MISSING_FIELD),
        ("1", int, Reason.BAD_TYPE),
        (True, int, Reason.BAD_TYPE),  # a bool is not a number here
        (False, (str, int), Reason.BAD_TYPE),
        ([], dict, Reason.BAD_TYPE),
    ],
)
def test_missing_null_and_wrongly_typed_values_are_refused(
    value: Any, types: Any, reason: str
) -> None:
    with pytest.raises(ProtocolError) as refused:
        field({"type": "t", "v": value}, "v", types)
    assert refused.value.reason_uri == reason
    with pytest.raises(ProtocolError):
        field({"type": "t"}, "v", types)


def test_optional_fields_default_when_absent_or_null_and_are_still_checked() -> None:
    assert optional({"type": "t"}, "v", str, "d") == "d"
    assert optional({"type": "t", "v": None}, "v", str, "d") == "d"
    with pytest.raises(ProtocolError):
        optional({"type": "t", "v": 1}, "v", str)
