"""An intent handler's result type: how it is written and how FDC3 filters by it.

A handler declares what it returns in ``flags.intent.resultType`` (io.Connect's intent flags;
a directory notebook in its ``metadata.interop`` intents entry, docs/INTENTS.md): a context
type (``"fdc3.chart"``), ``"channel"`` (a channel of any context), or ``"channel<type>"`` (a
channel of that context type). FDC3 2.2's ``findIntent``, ``findIntentsByContext`` take such
a type as a filter: ``"channel"`` matches every channel result, any other type matches only
itself, and a handler that declares none matches no filter (docs/FDC3.md). What a handler
returns is checked against its declaration (:func:`result_problem`): FDC3 2.2's ``getResult``
fails with ``ResultError.NoResultReturned`` on a mismatch; a void result always fits.
"""

from __future__ import annotations

import re
from typing import Any

from .wire import FDC3_CHANNEL_MARK_KEY, FDC3_CHANNEL_RESULT_KEY

__all__ = [
    "RESULT_TYPE_KEY",
    "is_channel_result",
    "result_problem",
    "result_type_matches",
    "result_type_problem",
]

#: the key of ``flags.intent`` (and of an app directory's intent entry) naming the result type
RESULT_TYPE_KEY = "resultType"
#: a context type, as a result type names one
_TYPE = r"[A-Za-z0-9_][A-Za-z0-9_.:\-]*"
_RESULT_TYPE = re.compile(rf"{_TYPE}|channel<{_TYPE}>")
#: longest result type
MAX_RESULT_TYPE = 200
_CHANNEL = "channel"


def result_type_problem(value: Any) -> str | None:
    """Why ``value`` is not a result type (``None``: it is one)."""
    if not isinstance(value, str):
        return f"a result type is a string, not {type(value).__name__}"
    if len(value) > MAX_RESULT_TYPE or not _RESULT_TYPE.fullmatch(value):
        return (
            f"{value[:60]!r} is not a result type (a context type such as 'fdc3.chart', "
            "'channel', or 'channel<fdc3.instrument>')"
        )
    return None


def result_type_matches(declared: str | None, wanted: str | None) -> bool:
    """Does a handler declaring ``declared`` pass the filter ``wanted`` (None: no filter)?"""
    if wanted is None:
        return True
    if declared is None:
        return False
    if wanted == _CHANNEL:
        return declared == _CHANNEL or declared.startswith(_CHANNEL + "<")
    return declared == wanted


def is_channel_result(result: Any) -> bool:
    """Is ``result`` (an intent's result as it travels) a channel, in io.Connect's form
    (``isChannel``) or the older ``fdc3_channel`` one?"""
    if not isinstance(result, dict):
        return False
    return result.get(FDC3_CHANNEL_MARK_KEY) is True or isinstance(
        result.get(FDC3_CHANNEL_RESULT_KEY), dict
    )


def result_problem(declared: str | None, result: Any) -> str | None:
    """Why ``result`` (as it travels; None: void) is not what a handler declaring
    ``declared`` returns (``None``: it is, or it declared nothing). A context type wants a
    context of that type, ``"channel"`` and ``"channel<type>"`` a channel (which contexts it
    will carry cannot be seen when it is returned); void fits any declaration, as FDC3 2.2's
    ``getResult`` resolves to void then."""
    if declared is None or result is None:
        return None
    channel = is_channel_result(result)
    wants_channel = declared == _CHANNEL or declared.startswith(_CHANNEL + "<")
    if wants_channel:
        return (
            None if channel else f"it declares {declared!r} but returned a context, not a channel"
        )
    if channel:
        return f"it declares {declared!r} but returned a channel"
    if isinstance(result, dict) and result.get("type") == declared:
        return None
    return f"it declares {declared!r} but returned {_describe(result)}"


def _describe(result: Any) -> str:
    returned = result.get("type") if isinstance(result, dict) else None
    if isinstance(returned, str):
        return f"a context of type {returned[:80]!r}"
    return f"{type(result).__name__} {str(result)[:60]!r}, not a context"
