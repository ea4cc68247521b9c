"""Live widgets: the channel selector, a context view and a stream view.

They follow the hub through client callbacks (client event thread) and change their own state
only on the kernel's main loop. Anything a click starts (joining a channel) runs on a short
background thread, so a click never blocks the kernel and a slow hub never freezes the UI;
errors show in the widget's status line.
"""

from __future__ import annotations

import datetime as _dt
import html
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import ipywidgets as w
from traitlets import List, TraitError, Unicode

from ._kernel import call_on_main
from ._render import json_html
from ._session import session

if TYPE_CHECKING:
    from ..client import Interop
    from ..client.channels import ChannelContext

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


def _paint(button: w.Button, color: str | None) -> None:
    """Colour a channel button; ``color`` is a checked CSS colour or None (``ChannelContext.
    color``). ipywidgets accepts fewer forms than CSS (e.g. no ``beige``): such a button
    stays uncoloured rather than failing the whole selector."""
    try:
        button.style.button_color = color
    except TraitError:
        color = None
    button.style.text_color = _text_color(color)


class ChannelSelector(w.VBox):
    """A coloured channel picker: click a colour to join it, "Leave" to leave.

    A change made elsewhere (``%interop channel join``, another widget, the dashboard moving
    this notebook) shows up here: the selector listens to ``channels.on_channels_changed``.
    ``value`` is the current channel name (or ``None``), a kernel-side trait that can be
    observed; ``selector.join("Red")`` works too. In multi-channel mode
    (``channels.mode = "multi"``) every channel the notebook is on is checked (``channels``),
    a click on one of them leaves it, a click on another adds it, "Leave" leaves them all.
    """

    value = Unicode(None, allow_none=True, help="the notebook's current channel")
    channels = List(Unicode(), help="every channel the notebook is on, in the order joined")

    def __init__(self, *, client: Interop | None = None, **kwargs: Any) -> None:
        self._io = client or session().client()
        self._buttons: dict[str, w.Button] = {}
        self._colors: dict[str, str | None] = {}
        self.label = w.HTML()
        self.status = w.HTML()
        row = [self._channel_button(channel) for channel in self._io.channels.list()]
        self.leave_button = self._leave_button()
        super().__init__(
            [
                self.label,
                w.HBox([*row, self.leave_button], layout=w.Layout(flex_flow="row wrap")),
                self.status,
            ],
            **kwargs,
        )
        self.add_class("ji-channel-selector")
        self._show(self._io.channels.my_channels())
        self._stop: Callable[[], None] | None = self._io.channels.on_channels_changed(
            lambda names: call_on_main(self._show, names)
        )

    def _channel_button(self, channel: ChannelContext) -> w.Button:
        """The button that joins ``channel``, in its colour."""
        button = w.Button(
            description=channel.name,
            tooltip=f"Join the {channel.name} channel",
            layout=w.Layout(width="auto", min_width="64px", margin="1px"),
        )
        _paint(button, channel.color)
        button.on_click(self._clicked)
        button.add_class("ji-channel-button")
        button.add_class(f"ji-channel-{channel.name}")
        self._buttons[channel.name] = button
        self._colors[channel.name] = channel.color
        return button

    def _leave_button(self) -> w.Button:
        button = w.Button(
            description="Leave",
            icon="times",
            tooltip="Leave the current channel",
            layout=w.Layout(width="auto", margin="1px"),
        )
        button.on_click(lambda _: self._request(None))
        button.add_class("ji-channel-leave")
        return button

    # -- actions

    def join(self, name: str | None) -> None:
        """Join ``name`` (``None``: leave) in the background, as a click does."""
        self._request(name)

    def _clicked(self, button: w.Button) -> None:
        channels, name = self._io.channels, button.description
        if channels.mode == "multi" and name in channels.my_channels():
            self.status.value = ""
            in_background(lambda: channels.leave(name), self._failed)
        else:
            self._request(name)

    def _request(self, name: str | None) -> None:
        self.status.value = ""
        channels = self._io.channels
        action = (lambda: channels.join(name)) if name else channels.leave
        in_background(action, self._failed)

    def _failed(self, exc: BaseException) -> None:
        self.status.value = f'<span style="color:#c00">{html.escape(str(exc))}</span>'

    # -- display

    def _show(self, names: list[str]) -> None:
        self.channels = list(names)
        name = self.value = names[-1] if names else None
        for channel, button in self._buttons.items():
            on = channel in names
            button.icon = "check" if on else ""
            button.style.font_weight = "bold" if on else ""
            if on:
                button.add_class("ji-current")
            else:
                button.remove_class("ji-current")
        if name:
            shown = " ".join(
                f'<span style="display:inline-block;width:10px;height:10px;'
                f"background:{html.escape(self._colors.get(one) or '', quote=True)};"
                f'border-radius:2px"></span> <b>{html.escape(one)}</b>'
                for one in names
            )
            title = "Channels" if len(names) > 1 else "Channel"
            self.label.value = (
                f'<span class="ji-channel-current" data-channel="{html.escape(name)}">'
                f"{title}: {shown}</span>"
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


def local_time(epoch: float) -> str:
    """``14:03:07.125``: a moment as local time with milliseconds."""
    moment = _dt.datetime.fromtimestamp(epoch)
    return moment.strftime("%H:%M:%S.") + f"{moment.microsecond // 1000:03d}"


#: names of fields that hold a moment; numeric ones (epoch s or ms) are shown as local times
_TIME_FIELDS = {"time", "timestamp", "ts", "date", "datetime"}


def _cell(key: str, value: Any) -> str:
    """A stream item's field as text; epoch times in time-named fields become local times."""
    named_time = key.lower() in _TIME_FIELDS or key.endswith(("_at", "_time", "At", "Time"))
    if named_time and isinstance(value, (int, float)) and not isinstance(value, bool):
        if 1e12 <= value < 1e14:  # milliseconds since the epoch
            return _dt.datetime.fromtimestamp(value / 1000).strftime("%Y-%m-%d ") + local_time(
                value / 1000
            )
        if 1e9 <= value < 1e11:  # seconds since the epoch
            return _dt.datetime.fromtimestamp(value).strftime("%Y-%m-%d ") + local_time(value)
    return str(value)


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
        self.body.value = json_html(data)

    def close(self) -> None:
        sub = getattr(self, "_sub", None)
        if sub is not None:
            sub.unsubscribe()
            self._sub = None
        super().close()


class StreamView(w.VBox):
    """A live view of a stream: the last ``max_items`` items as a table, newest first, each
    with the local time it was received (ms); numeric time fields (``time``, ``timestamp``,
    ``ts``, ``*_at``: epoch seconds or ms) are shown as local times too.

    ``chart="px"`` adds a live line chart (bqplot) of that numeric field against the time
    received, keeping the last ``chart_points`` points; ``chart_line`` is its ``Lines`` mark.
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
        chart: str | None = None,
        chart_points: int = 200,
        client: Interop | None = None,
        **kwargs: Any,
    ) -> None:
        if chart is not None and (not isinstance(chart, str) or not chart):
            raise ValueError(f"chart must be the name of a numeric field, not {chart!r}")
        if not isinstance(chart_points, int) or chart_points < 2:
            raise ValueError(f"chart_points must be an integer >= 2, not {chart_points!r}")
        self.chart_field = chart
        self.chart_points = chart_points
        #: the bqplot Figure and its Lines mark (None without ``chart``)
        self.chart: Any = None
        self.chart_line: Any = None
        if chart is not None:
            self.chart, self.chart_line = self._chart_figure(name, chart)
        self._io = client or session().client()
        self.name = name
        self.max_items = max_items
        self.items: list[Any] = []
        #: when each of ``items`` was received (epoch seconds)
        self.received: list[float] = []
        self._points: list[tuple[float, float]] = []
        self.count = 0
        self.header = w.HTML(f"<b>{html.escape(name)}</b> <i>(subscribing)</i>")
        self.body = w.HTML()
        shown = [self.header] + ([self.chart] if self.chart is not None else []) + [self.body]
        super().__init__(shown, **kwargs)
        self.add_class("ji-stream-view")
        self._pending: list[tuple[float, Any]] = []
        self._lock = threading.Lock()
        self._scheduled = False
        self._sub: Any = None
        self._closed_view = False
        #: set once the subscription is established (or failed: see ``error``)
        self.ready = threading.Event()
        self.error: BaseException | None = None
        self._subscribe_in_background(name, dict(arguments or {}), target)

    def _subscribe_in_background(self, name: str, arguments: dict[str, Any], target: Any) -> None:
        """Subscribe off the main thread; ``ready`` is set once it succeeded or failed."""

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

    @staticmethod
    def _chart_figure(name: str, field: str) -> tuple[Any, Any]:
        try:
            import bqplot as bq
        except ImportError:
            raise ImportError(
                "StreamView(chart=...) draws with bqplot: pip install 'jupyter_interop[data]'"
            ) from None
        x, y = bq.DateScale(), bq.LinearScale()
        line = bq.Lines(x=[], y=[], scales={"x": x, "y": y})
        axes = [
            bq.Axis(scale=x, label="received", tick_format="%H:%M:%S"),
            bq.Axis(scale=y, orientation="vertical", label=field),
        ]
        figure = bq.Figure(
            marks=[line],
            axes=axes,
            title=f"{name}: {field}",
            animation_duration=0,
            layout=w.Layout(width="100%", height="260px"),
        )
        figure.add_class("ji-stream-chart")
        return figure, line

    def _received(self, item: Any) -> None:
        with self._lock:
            self._pending.append((time.time(), item.data))
            if self._scheduled:
                return
            self._scheduled = True
        call_on_main(self._flush)

    def _flush(self) -> None:
        with self._lock:
            batch, self._pending = self._pending, []
            self._scheduled = False
        self.count += len(batch)
        self.items = (self.items + [data for _, data in batch])[-self.max_items :]
        self.received = (self.received + [when for when, _ in batch])[-self.max_items :]
        if self.chart_line is not None:
            self._plot(batch)
        self._render()

    def _plot(self, batch: list[tuple[float, Any]]) -> None:
        import numpy as np

        field = self.chart_field
        for when, data in batch:
            value = data.get(field) if isinstance(data, dict) and field else None
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                self._points.append((when, float(value)))
        del self._points[: -self.chart_points]
        if not self._points:
            return
        times = np.array([int(t * 1000) for t, _ in self._points], dtype="datetime64[ms]")
        with self.chart_line.hold_sync():
            self.chart_line.x = times
            self.chart_line.y = np.array([v for _, v in self._points])

    def _render(self) -> None:
        rows = list(zip(reversed(self.received), reversed(self.items), strict=True))
        keys: list[str] = []
        for _, row in rows:
            if isinstance(row, dict):
                keys.extend(k for k in row if k not in keys)
        head = '<th class="ji-received">received</th>' + "".join(
            f"<th>{html.escape(k)}</th>" for k in keys
        )
        body = "".join(
            f'<tr><td class="ji-received">{local_time(when)}</td>'
            + (
                "".join(f"<td>{html.escape(_cell(k, r.get(k, '')))}</td>" for k in keys)
                if isinstance(r, dict)
                else f'<td colspan="{max(1, len(keys))}">{html.escape(repr(r))}</td>'
            )
            + "</tr>"
            for when, r in rows
        )
        table = f'<table class="ji-table"><tr>{head}</tr>{body}</table>'
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
