"""The mark on a widget bound to a channel whose value is not the channel's.

After joining a channel that has no value at a bound path (an empty channel), or after leaving
the channel, a bound widget keeps its value, which would look current. It gets a dashed amber
border, the class ``ji-stale`` and a tooltip saying why ("no data on Blue"); all three go when
a value arrives from the channel or the user's own value is published to it. Widgets without
a layout (any ``HasTraits`` can be bound) are only tracked on the binding (``binding.stale``).
"""

from __future__ import annotations

import weakref
from typing import Any

__all__ = ["STALE_BORDER", "STALE_CLASS", "show_stale"]

STALE_CLASS = "ji-stale"
STALE_BORDER = "1px dashed #d08700"

#: widget -> (border, tooltip) it had before it was marked
_saved: weakref.WeakKeyDictionary[Any, tuple[Any, Any]] = weakref.WeakKeyDictionary()


def show_stale(widget: Any, reason: str | None) -> None:
    """Mark ``widget`` with ``reason`` (``None``: remove the mark). Main thread only."""
    layout: Any = getattr(widget, "layout", None)
    has_border = hasattr(layout, "border")
    has_tooltip = hasattr(widget, "has_trait") and widget.has_trait("tooltip")
    if reason is not None:
        if widget not in _saved:
            _saved[widget] = (
                layout.border if has_border else None,
                widget.tooltip if has_tooltip else None,
            )
        if has_border:
            layout.border = STALE_BORDER
        if has_tooltip:
            widget.tooltip = f"stale: {reason}"
        if hasattr(widget, "add_class"):
            widget.add_class(STALE_CLASS)
        return
    saved = _saved.pop(widget, None)
    if saved is None:
        return
    border, tooltip = saved
    if has_border:
        layout.border = border
    if has_tooltip:
        widget.tooltip = tooltip
    if hasattr(widget, "remove_class"):
        widget.remove_class(STALE_CLASS)
