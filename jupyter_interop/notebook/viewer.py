"""``InteropViewer()``: peers, methods and streams of the hub, with an invoke form and a live
stream preview, in the spirit of io.Connect's Interop Viewer.

It follows discovery events (peers and methods coming and going) and redraws on the kernel's
main loop, at most once per burst. Invocations and subscriptions start on background threads,
so a slow method never blocks the kernel.
"""

from __future__ import annotations

import html
import json
import threading
from typing import TYPE_CHECKING, Any

import ipywidgets as w

from ._kernel import call_on_main
from ._render import json_html
from ._session import session
from ._views import describe_instance, methods_table, peers_table, stream_methods
from .widgets import StreamView, in_background

if TYPE_CHECKING:
    from ..client import Interop, Method

__all__ = ["InteropViewer"]


class InteropViewer(w.VBox):
    """Peers, methods and streams with an invoke form and a stream preview (live)."""

    def __init__(self, *, client: Interop | None = None, **kwargs: Any) -> None:
        self._io = client or session().client()
        self._lock = threading.Lock()
        self._scheduled = False
        self._methods: dict[str, Method] = {}
        self._streams: dict[str, Method] = {}
        self._preview: StreamView | None = None

        self.title = w.HTML()
        self.refresh_button = w.Button(
            description="Refresh", icon="refresh", layout=w.Layout(width="auto")
        )
        self.refresh_button.on_click(lambda _: self.refresh())

        self.peers = w.HTML()

        methods_tab = self._methods_tab()
        streams_tab = self._streams_tab()
        self.tabs = w.Tab(children=[self.peers, methods_tab, streams_tab])
        for index, label in enumerate(("Peers", "Methods", "Streams")):
            self.tabs.set_title(index, label)
        super().__init__([w.HBox([self.title, self.refresh_button]), self.tabs], **kwargs)
        self.add_class("ji-interop-viewer")
        self.refresh()
        methods = self._io.methods
        self._stops = [
            methods.on_server_added(lambda *_: self._soon()),
            methods.on_server_removed(lambda *_: self._soon()),
            methods.on_method_added(lambda *_: self._soon()),
            methods.on_method_removed(lambda *_: self._soon()),
        ]

    # ------------------------------------------------------------------ layout

    def _methods_tab(self) -> w.HBox:
        """The methods tab: the list, the chosen method, an invoke form and its result."""
        self.method_list = w.Select(options=[], rows=10, layout=w.Layout(width="260px"))
        self.method_info = w.HTML()
        self.arguments = w.Textarea(
            value="{}",
            placeholder='{"symbol": "AAPL"}',
            description="arguments",
            layout=w.Layout(width="100%", height="70px"),
        )
        self.target = w.Dropdown(
            options=["best", "all", "skipMine"],
            value="best",
            description="target",
            layout=w.Layout(width="220px"),
        )
        self.invoke_button = w.Button(description="Invoke", button_style="primary", icon="play")
        self.invoke_button.on_click(lambda _: self._invoke())
        self.result = w.HTML()
        self.method_list.observe(lambda _: self._show_method(), names="value")
        return w.HBox(
            [
                self.method_list,
                w.VBox(
                    [
                        self.method_info,
                        self.arguments,
                        w.HBox([self.target, self.invoke_button]),
                        self.result,
                    ],
                    layout=w.Layout(flex="1", padding="0 0 0 8px"),
                ),
            ]
        )

    def _streams_tab(self) -> w.HBox:
        """The streams tab: the list, the chosen stream and a live preview."""
        self.stream_list = w.Select(options=[], rows=10, layout=w.Layout(width="260px"))
        self.stream_info = w.HTML()
        self.stream_arguments = w.Textarea(
            value="{}", description="arguments", layout=w.Layout(width="100%", height="50px")
        )
        self.subscribe_button = w.Button(description="Preview", icon="eye")
        self.subscribe_button.on_click(lambda _: self._toggle_preview())
        self.preview_box = w.VBox()
        self.stream_list.observe(lambda _: self._show_stream(), names="value")
        return w.HBox(
            [
                self.stream_list,
                w.VBox(
                    [
                        self.stream_info,
                        self.stream_arguments,
                        self.subscribe_button,
                        self.preview_box,
                    ],
                    layout=w.Layout(flex="1", padding="0 0 0 8px"),
                ),
            ]
        )

    # ------------------------------------------------------------------ refresh

    def _soon(self) -> None:
        with self._lock:
            if self._scheduled:
                return
            self._scheduled = True
        call_on_main(self.refresh)

    def refresh(self) -> None:
        """Redraw from the client's view of the hub."""
        with self._lock:
            self._scheduled = False
        io = self._io
        me = io.instance
        self.title.value = (
            f"<b>Interop Viewer</b> &nbsp; {html.escape(io.url)} &nbsp; "
            f"as {html.escape(describe_instance(me))}"
        )
        self.peers.value = peers_table(io)._repr_html_()
        self._methods = {m.name: m for m in io.methods.methods()}
        self._streams = {m.name: m for m in stream_methods(io)}
        self._set_options(self.method_list, sorted(self._methods, key=str.lower))
        self._set_options(self.stream_list, sorted(self._streams, key=str.lower))
        self._show_method()
        self._show_stream()

    @staticmethod
    def _set_options(select: w.Select, names: list[str]) -> None:
        current = select.value
        if list(select.options) != names:
            select.options = names
            select.value = current if current in names else (names[0] if names else None)

    def _describe(self, method: Method | None) -> str:
        if method is None:
            return "<i>nothing selected</i>"
        return methods_table([method], "")._repr_html_().split("</div>", 1)[-1]

    def _show_method(self) -> None:
        self.method_info.value = self._describe(self._methods.get(self.method_list.value or ""))

    def _show_stream(self) -> None:
        self.stream_info.value = self._describe(self._streams.get(self.stream_list.value or ""))

    # ------------------------------------------------------------------ invoke

    def _parse(self, text: str) -> dict[str, Any] | None:
        try:
            value = json.loads(text or "{}")
        except ValueError as exc:
            self.result.value = (
                f'<span style="color:#c00">arguments: {html.escape(str(exc))}</span>'
            )
            return None
        if not isinstance(value, dict):
            self.result.value = '<span style="color:#c00">arguments must be a JSON object</span>'
            return None
        return value

    def _invoke(self) -> None:
        name = self.method_list.value
        if not name:
            return
        arguments = self._parse(self.arguments.value)
        if arguments is None:
            return
        target = self.target.value
        self.result.value = "<i>invoking...</i>"
        io = self._io

        def call() -> None:
            result = io.methods.invoke(name, arguments, target)
            rows = [
                (describe_instance(e.executed_by), e.returned) for e in result.all_return_values
            ]
            call_on_main(self._show_result, rows)

        in_background(call, self._show_error)

    def _show_result(self, rows: list[tuple[str, Any]]) -> None:
        parts = [
            f'<div style="color:var(--jp-ui-font-color2,#777)">{html.escape(who)}</div>'
            f"{json_html(value)}"
            for who, value in rows
        ]
        self.result.value = "".join(parts)

    def _show_error(self, exc: BaseException) -> None:
        self.result.value = f'<span style="color:#c00">{html.escape(str(exc))}</span>'

    # ------------------------------------------------------------------ preview

    def _toggle_preview(self) -> None:
        if self._preview is not None:
            self._preview.close()
            self._preview = None
            self.preview_box.children = ()
            self.subscribe_button.description = "Preview"
            return
        name = self.stream_list.value
        if not name:
            return
        try:
            arguments = json.loads(self.stream_arguments.value or "{}")
        except ValueError as exc:
            self.preview_box.children = (w.HTML(html.escape(str(exc))),)
            return
        view = StreamView(name, arguments, client=self._io, max_items=10)
        self._preview = view
        self.preview_box.children = (view,)
        self.subscribe_button.description = "Stop preview"

    def close(self) -> None:
        for stop in getattr(self, "_stops", []):
            stop()
        self._stops = []
        if self._preview is not None:
            self._preview.close()
        super().close()
