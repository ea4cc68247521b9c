"""What a channel context may hold: the rule the hub enforces and the clients check early.

A channel is the retained context ``___channel___<Name>`` holding ``{name, meta, data}`` and,
once an FDC3 app broadcast on it, ``latest_fdc3_type`` (docs/FDC3.md, "The wire"): ``name``
repeats ``<Name>``, ``meta`` is an object whose optional ``color`` passes
:func:`~jupyter_interop.protocol.colors.is_css_color`, ``data`` is an object. ``<Name>`` is
1 to :data:`MAX_CHANNEL_NAME` characters without control or line-separator characters.

A channel already stored with metadata that breaks the rule (an old store) stays usable: an
update is checked only for what it changes, so publishing into its ``data`` still works while
nobody can write new bad metadata. Views tolerate the old values (they show no colour).
"""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping
from typing import Any

from .colors import is_css_color
from .wire import CHANNEL_PREFIX, FDC3_LATEST_TYPE_KEY

__all__ = [
    "CHANNEL_PREFIX",
    "MAX_CHANNEL_NAME",
    "channel_context_problem",
    "channel_name_problem",
]

#: longest channel name (the part after the prefix)
MAX_CHANNEL_NAME = 64

#: ``latest_fdc3_type``: the FDC3 type last broadcast on it, as io.Connect writes (docs/FDC3.md)
_CHANNEL_KEYS = ("name", "meta", "data", FDC3_LATEST_TYPE_KEY)
#: Unicode categories a channel name may not contain: control, format, surrogate, separators
_FORBIDDEN_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})


def channel_name_problem(name: object) -> str | None:
    """Why ``name`` cannot name a channel, or None when it can."""
    if not isinstance(name, str) or not name:
        return f"a channel name must be a non-empty string, not {name!r}"
    if len(name) > MAX_CHANNEL_NAME:
        return f"a channel name may have at most {MAX_CHANNEL_NAME} characters"
    if name != name.strip():
        return f"a channel name may not start or end with spaces: {name!r}"
    if any(unicodedata.category(ch) in _FORBIDDEN_CATEGORIES for ch in name):
        return f"a channel name may not contain control characters: {name!r}"
    return None


def _meta_problem(meta: object) -> str | None:
    if not isinstance(meta, Mapping):
        return "a channel's 'meta' must be an object"
    if "color" in meta and not is_css_color(meta["color"]):
        return (
            f"a channel's meta.color must be a CSS colour (#hex, rgb(), rgba(), hsl(), hsla() "
            f"or a colour name), not {str(meta['color'])[:80]!r}"
        )
    return None


def channel_context_problem(
    context_name: str, value: object, before: Mapping[str, Any] | None = None
) -> str | None:
    """Why ``value`` cannot be the data of the channel context ``context_name``, or None.

    ``before`` is the stored data when ``value`` is an update of it: then the name and meta
    are checked only when the update changes them (so an old store's channel stays usable).
    """
    channel = context_name[len(CHANNEL_PREFIX) :]
    if before is None:
        problem = channel_name_problem(channel)
        if problem is not None:
            return problem
    if not isinstance(value, Mapping):
        return "a channel context must be an object {name, meta, data}"
    old = before or {}
    extra = [k for k in value if k not in _CHANNEL_KEYS and k not in old]
    if extra:
        return (
            f"a channel context holds only name, meta, data and {FDC3_LATEST_TYPE_KEY}, not "
            f"{', '.join(extra)}"
        )
    if not isinstance(value.get("data"), Mapping):
        return "a channel's 'data' must be an object"
    name_changed = before is None or value.get("name") != old.get("name")
    if name_changed and value.get("name") != channel:
        return f"a channel context's 'name' must be {channel!r}, as in its context name"
    if before is None or value.get("meta") != old.get("meta"):
        return _meta_problem(value.get("meta"))
    return None
