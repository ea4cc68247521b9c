"""Rich results of the magics: HTML tables with plain-text fallbacks.

A magic returns one of these objects; Jupyter renders ``text/html`` and anything else (a
terminal, nbconvert to text, an assertion in a test) reads ``text/plain``. The raw data stays
on ``.data`` so ``-o VAR`` can store plain Python values rather than the view.
"""

from __future__ import annotations

import html
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from ..protocol.colors import is_css_color

__all__ = [
    "Badge",
    "KeyValues",
    "Message",
    "ResultView",
    "Table",
    "data_bundle",
    "data_view",
    "json_html",
    "json_text",
    "swatch",
]

_STYLE = (
    "<style>.ji-table{border-collapse:collapse;font-size:12px;margin:2px 0}"
    ".ji-table th,.ji-table td{padding:2px 8px;text-align:left;vertical-align:top;"
    "border-bottom:1px solid var(--jp-border-color2,#ddd)}"
    ".ji-table th{font-weight:600}.ji-caption{font-weight:600;margin:2px 0}"
    ".ji-muted{color:var(--jp-ui-font-color2,#777)}"
    ".ji-swatch{display:inline-block;width:10px;height:10px;border-radius:2px;"
    "margin-right:4px;vertical-align:middle;border:1px solid rgba(0,0,0,.2)}</style>"
)


@dataclass(frozen=True)
class Badge:
    """A cell that renders as HTML but reads as ``text`` in plain text (e.g. a colour swatch)."""

    text: str
    html: str


def swatch(color: str | None, label: str) -> Badge:
    """A coloured square followed by ``label`` (a channel); no square for anything but a plain
    CSS colour, so a value from a peer never adds CSS to the style attribute."""
    if not is_css_color(color):
        return Badge(label, html.escape(label))
    return Badge(
        label,
        f'<span class="ji-swatch" style="background:{html.escape(str(color), quote=True)}"></span>'
        f"{html.escape(label)}",
    )


def _text(value: Any) -> str:
    if isinstance(value, Badge):
        return value.text
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, (list, dict)):
        try:
            return json.dumps(value, default=str, ensure_ascii=False)
        except (TypeError, ValueError):
            return repr(value)
    return str(value)


def _cell_html(value: Any) -> str:
    if isinstance(value, Badge):
        return value.html
    text = _text(value)
    if len(text) > 200:
        text = text[:197] + "..."
    return html.escape(text)


@dataclass
class Table:
    """Rows under column headers; ``data`` is what ``-o`` stores."""

    columns: Sequence[str]
    rows: Sequence[Sequence[Any]]
    title: str | None = None
    empty: str = "(none)"
    data: Any = field(default=None, repr=False)

    def _repr_html_(self) -> str:
        parts = [_STYLE]
        if self.title:
            parts.append(f'<div class="ji-caption">{html.escape(self.title)}</div>')
        if not self.rows:
            parts.append(f'<div class="ji-muted">{html.escape(self.empty)}</div>')
            return "".join(parts)
        parts.append('<table class="ji-table"><thead><tr>')
        parts.extend(f"<th>{html.escape(c)}</th>" for c in self.columns)
        parts.append("</tr></thead><tbody>")
        for row in self.rows:
            parts.append("<tr>" + "".join(f"<td>{_cell_html(v)}</td>" for v in row) + "</tr>")
        parts.append("</tbody></table>")
        return "".join(parts)

    def __str__(self) -> str:
        lines = [self.title] if self.title else []
        if not self.rows:
            lines.append(self.empty)
            return "\n".join(lines)
        cells = [[_text(v) for v in row] for row in self.rows]
        widths = [
            max([len(c)] + [len(r[i]) for r in cells if i < len(r)])
            for i, c in enumerate(self.columns)
        ]
        lines.append(
            "  ".join(c.ljust(w) for c, w in zip(self.columns, widths, strict=True)).rstrip()
        )
        lines.append("  ".join("-" * w for w in widths))
        lines.extend(
            "  ".join(v.ljust(w) for v, w in zip(r, widths, strict=False)).rstrip() for r in cells
        )
        return "\n".join(lines)

    def __repr__(self) -> str:
        return str(self)

    def _repr_pretty_(self, p: Any, cycle: bool) -> None:
        p.text(str(self))


@dataclass
class KeyValues:
    """A two-column "field: value" block (``%interop status``)."""

    items: Sequence[tuple[str, Any]]
    title: str | None = None
    data: Any = field(default=None, repr=False)

    def _table(self) -> Table:
        return Table(["", ""], [list(i) for i in self.items], title=self.title)

    def _repr_html_(self) -> str:
        table = self._table()._repr_html_()
        return table.replace("<thead><tr><th></th><th></th></tr></thead>", "")

    def __str__(self) -> str:
        width = max((len(k) for k, _ in self.items), default=0)
        lines = [self.title] if self.title else []
        lines.extend(f"{k.ljust(width)}  {_text(v)}" for k, v in self.items)
        return "\n".join(lines)

    def __repr__(self) -> str:
        return str(self)

    def _repr_pretty_(self, p: Any, cycle: bool) -> None:
        p.text(str(self))


@dataclass
class Message:
    """A one-line confirmation ("Registered method 'Price'") in text and HTML."""

    text: str
    data: Any = field(default=None, repr=False)

    def _repr_html_(self) -> str:
        return f'<div class="ji-muted">{html.escape(self.text)}</div>'

    def __str__(self) -> str:
        return self.text

    def __repr__(self) -> str:
        return self.text

    def _repr_pretty_(self, p: Any, cycle: bool) -> None:
        p.text(self.text)


class ResultView:
    """One returned value (an invocation's, a raised intent's), rendered as data, and who
    returned it."""

    def __init__(self, value: Any, executed_by: str, result: Any) -> None:
        self.value = value
        self.executed_by = executed_by
        self.result = result

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        bundle = data_bundle(self.value)
        note = f"executed by {self.executed_by}"
        bundle["text/html"] = (
            bundle.get("text/html", "") + f'<div class="ji-muted" style="font-size:11px;'
            f'color:var(--jp-ui-font-color2,#777)">{html.escape(note)}</div>'
        )
        bundle["text/plain"] = f"{bundle['text/plain']}\n({note})"
        return bundle


def json_text(value: Any) -> str:
    """``value`` as indented JSON (what JSON cannot hold as its ``str``), else its repr."""
    try:
        return json.dumps(value, indent=2, default=str, ensure_ascii=False)
    except (TypeError, ValueError):
        return repr(value)


def json_html(value: Any) -> str:
    """``value`` as indented JSON in a compact ``<pre>``, for the widgets' data panes."""
    return f'<pre style="margin:0;font-size:12px">{html.escape(json_text(value))}</pre>'


def data_bundle(value: Any) -> dict[str, Any]:
    """A value shown the way Jupyter would show it (DataFrames as tables), else as JSON."""
    repr_html = getattr(value, "_repr_html_", None)
    if callable(repr_html):
        html_text = repr_html()
        if html_text:
            return {"text/plain": repr(value), "text/html": html_text}
    text = json_text(value)
    return {"text/plain": text, "text/html": f"<pre>{html.escape(text)}</pre>"}


def data_view(name: str, data: Any) -> Any:
    """``data`` shown as :func:`data_bundle` does, under a bold ``name``."""

    class _View:
        def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
            bundle = data_bundle(data)
            bundle["text/html"] = f"<div><b>{html.escape(name)}</b></div>" + bundle["text/html"]
            return bundle

    return _View()
