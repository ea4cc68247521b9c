"""Live widgets: the channel selector, a context view and a stream view.

They follow the hub through client callbacks (client event thread) and change their own state
only on the kernel's main loop. Anything a click starts (joining a channel) runs on a short
background thread, so a click never blocks the kernel and a slow hub never freezes the UI;
errors show in the widget's status line.
"""

from __future__ import annotations

import html
import json
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import ipywidgets as w
from traitlets import Unicode

from ._kernel import call_on_main
from ._session import session

if TYPE_CHECKING:
    from ..client import Interop

__all__ = ["ChannelSelector", "ContextView", "StreamView", "in_background"]

_DARK_TEXT = {"#FFE733", "#8af59e", "#80f3ff", "#b09b00", "Lime", "Yellow"}


def in_background(
    fn: Callable[[], Any], on_error: Callable[[BaseException], None] | None = None
) -> None:
    """Run a blocking client call off the kernel's threads; report errors on the main loop."""

    def run() -> None:
        try:
            fn()
        except Exception as exc:
            if on_error is not None:
                call_on_main(on_error, exc)

    threading.Thread(target=run, name="jupyter-interop-ui", daemon=True).start()


def _text_color(color: str | None) -> str:
    if not color:
        return "black"
    if color in _DARK_TEXT or color.lower() in {
        "yellow",
        "lime",
        "#ffe733",
        "#8af59e",
        "#80f3ff",
        "cyan",
        "pink",
    }:
        return "black"
    return "white"


class ChannelSelector(w.VBox):
    """A coloured channel picker: click a colour to join it, "Leave" to leave.

    A change made elsewhere (``%interop channel join``, another widget, the dashboard moving
    this notebook) shows up here: the selector listens to ``channels.on_changed``.
    ``value`` is the current channel name (or ``None``), a kernel-side trait that can be
    observed; ``selector.join("Red")`` works too.
    """

    value = Unicode(None, allow_none=True, help="the notebook's current channel")

    def __init__(self, *, client: Interop | None = None, **kwargs: Any) -> None:
        self._io = client or session().client()
        self._buttons: dict[str, w.Button] = {}
        self._colors: dict[str, str | None] = {}
        self.label = w.HTML()
        self.status = w.HTML()
        row = []
        for channel in self._io.channels.list():
            button = w.Button(
                description=channel.name,
                tooltip=f"Join the {channel.name} channel",
                layout=w.Layout(width="auto", min_width="64px", margin="1px"),
            )
            button.style.button_color = channel.color or None
            button.style.text_color = _text_color(channel.color)
            button.on_click(self._clicked)
            button.add_class("ji-channel-button")
            button.add_class(f"ji-channel-{channel.name}")
            self._buttons[channel.name] = button
            self._colors[channel.name] = channel.color
            row.append(button)
        self.leave_button = w.Button(
            description="Leave",
            icon="times",
            tooltip="Leave the current channel",
            layout=w.Layout(width="auto", margin="1px"),
        )
        self.leave_button.on_click(lambda _: self._request(None))
        self.leave_button.add_class("ji-channel-leave")
        super().__init__(
            [
                self.label,
                w.HBox([*row, self.leave_button], layout=w.Layout(flex_flow="row wrap")),
                self.status,
            ],
            **kwargs,
        )
        self.add_class("ji-channel-selector")
        self._show(self._io.channels.current)
        self._stop: Callable[[], None] | None = self._io.channels.on_changed(
            lambda name: call_on_main(self._show, name)
        )

    # -- actions

    def join(self, name: str | None) -> None:
        """Join ``name`` (``None``: leave) in the background, as a click does."""
        self._request(name)

    def _clicked(self, button: w.Button) -> None:
        self._request(button.description)

    def _request(self, name: str | None) -> None:
        self.status.value = ""
        channels = self._io.channels
        action = (lambda: channels.join(name)) if name else channels.leave
        in_background(action, self._failed)

    def _failed(self, exc: BaseException) -> None:
        self.status.value = f'<span style="color:#c00">{html.escape(str(exc))}</span>'

    # -- display

    def _show(self, name: str | None) -> None:
        self.value = name
        for channel, button in self._buttons.items():
            on = channel == name
            button.icon = "check" if on else ""
            button.style.font_weight = "bold" if on else ""
            if on:
                button.add_class("ji-current")
            else:
                button.remove_class("ji-current")
        if name:
            color = html.escape(self._colors.get(name) or "", quote=True)
            self.label.value = (
                f'<span class="ji-channel-current" data-channel="{html.escape(name)}">'
                f'Channel: <span style="display:inline-block;width:10px;height:10px;'
                f'background:{color};border-radius:2px"></span> <b>{html.escape(name)}</b></span>'
            )
        else:
            self.label.value = (
                '<span class="ji-channel-current" data-channel="">Channel: <i>none</i></span>'
            )

    def close(self) -> None:
        stop = getattr(self, "_stop", None)
        if stop is not None:
            stop()
            self._stop = None
        super().close()


def _json_html(data: Any) -> str:
    try:
        text = json.dumps(data, indent=2, default=str, ensure_ascii=False)
    except (TypeError, ValueError):
        text = repr(data)
    return f'<pre style="margin:0;font-size:12px">{html.escape(text)}</pre>'


class ContextView(w.VBox):
    """A live view of a shared context: its data, version and who changed it last."""

    def __init__(self, name: str, *, client: Interop | None = None, **kwargs: Any) -> None:
        self._io = client or session().client()
        self.name = name
        self.header = w.HTML(f"<b>{html.escape(name)}</b> <i>(waiting for data)</i>")
        self.body = w.HTML()
        super().__init__([self.header, self.body], **kwargs)
        self.add_class("ji-context-view")
        self.data: dict[str, Any] = {}
        self._sub: Any = self._io.contexts.subscribe(name, self._changed)

    def _changed(self, data: dict[str, Any], delta: Any, removed: Any, meta: Any) -> None:
        call_on_main(self._show, data, meta)

    def _show(self, data: dict[str, Any], meta: Any) -> None:
        self.data = data
        who = ""
        updater = getattr(meta, "updater", None)
        if updater is not None:
            who = f" by {html.escape(updater.notebook_path or updater.application or '?')}"
        version = getattr(meta, "version", None)
        self.header.value = (
            f"<b>{html.escape(self.name)}</b> "
            f'<span style="color:var(--jp-ui-font-color2,#777)">version {version}{who}</span>'
        )
        self.body.value = _json_html(data)

    def close(self) -> None:
        sub = getattr(self, "_sub", None)
        if sub is not None:
            sub.unsubscribe()
            self._sub = None
        super().close()


class StreamView(w.VBox):
    """A live view of a stream: the last ``max_items`` items as a table, newest first.

    The subscription starts in the background (the cell returns at once); its outcome shows
    in the header, and ``ready`` is set when it is known.
    """

    def __init__(
        self,
        name: str,
        arguments: dict[str, Any] | None = None,
        *,
        target: Any = "best",
        max_items: int = 20,
        client: Interop | None = None,
        **kwargs: Any,
    ) -> None:
        self._io = client or session().client()
        self.name = name
        self.max_items = max_items
        self.items: list[Any] = []
        self.count = 0
        self.header = w.HTML(f"<b>{html.escape(name)}</b> <i>(subscribing)</i>")
        self.body = w.HTML()
        super().__init__([self.header, self.body], **kwargs)
        self.add_class("ji-stream-view")
        self._pending: list[Any] = []
        self._lock = threading.Lock()
        self._scheduled = False
        self._sub: Any = None
        self._closed_view = False
        #: set once the subscription is established (or failed: see ``error``)
        self.ready = threading.Event()
        self.error: BaseException | None = None
        arguments = dict(arguments or {})

        def start() -> None:
            try:
                subscribe()
            except Exception as exc:
                self.error = exc
                call_on_main(self._failed, exc)
            finally:
                self.ready.set()  # set here: a cell may be waiting on it (main loop blocked)

        def subscribe() -> None:
            sub = self._io.streams.subscribe(
                name,
                arguments,
                target,
                on_data=self._received,
                on_closed=lambda info: call_on_main(self._closed, info),
            )
            if self._closed_view:
                sub.close()
                return
            self._sub = sub
            servers = ", ".join(s.notebook_path or s.application or "?" for s in sub.servers)
            call_on_main(self._started, servers)

        in_background(start)

    def _started(self, servers: str) -> None:
        self.header.value = f"<b>{html.escape(self.name)}</b> from {html.escape(servers)}"

    def _failed(self, exc: BaseException) -> None:
        self.header.value = (
            f'<b>{html.escape(self.name)}</b> <span style="color:#c00">'
            f"{html.escape(str(exc))}</span>"
        )

    def _received(self, item: Any) -> None:
        with self._lock:
            self._pending.append(item.data)
            if self._scheduled:
                return
            self._scheduled = True
        call_on_main(self._flush)

    def _flush(self) -> None:
        with self._lock:
            batch, self._pending = self._pending, []
            self._scheduled = False
        self.count += len(batch)
        self.items = (self.items + batch)[-self.max_items :]
        self._render()

    def _render(self) -> None:
        rows = list(reversed(self.items))
        keys: list[str] = []
        for row in rows:
            if isinstance(row, dict):
                keys.extend(k for k in row if k not in keys)
        if keys:
            head = "".join(f"<th>{html.escape(k)}</th>" for k in keys)
            body = "".join(
                "<tr>"
                + "".join(
                    f"<td>{html.escape(str(r.get(k, '')) if isinstance(r, dict) else '')}</td>"
                    for k in keys
                )
                + "</tr>"
                for r in rows
            )
            table = f'<table class="ji-table"><tr>{head}</tr>{body}</table>'
        else:
            table = "".join(f"<div>{html.escape(repr(r))}</div>" for r in rows)
        self.body.value = (
            f'<div style="color:var(--jp-ui-font-color2,#777)">{self.count} item(s)</div>{table}'
        )

    def _closed(self, info: Any) -> None:
        self.header.value += f" <i>(closed: {html.escape(str(info.message))})</i>"

    def close(self) -> None:
        self._closed_view = True
        sub = getattr(self, "_sub", None)
        if sub is not None:
            in_background(sub.close)
            self._sub = None
        super().close()
