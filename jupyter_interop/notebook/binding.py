"""``bind(widget, trait, context=... | channel=..., path=...)``: a widget trait, two-way, on a
shared context or a channel.

Rules (docs/ARCHITECTURE.md, "The client's I/O thread" and "Notebook bindings"):

* The initial value comes from the hub: if the path holds a value, the widget takes it when
  ``bind`` returns. If a *context* lacks it, the widget's value is written (the first notebook
  to bind seeds the others); joining a channel never writes.
* No feedback loops: a value applied from the hub is applied under a guard, so the widget's
  observer does not publish it back; the subscription excludes our own writes
  (``include_own=False``), so a slider being dragged is not pulled back by late echoes.
  Other bindings in the same kernel on the same path are updated locally.
* Remote updates are applied on the kernel's main loop (ipywidgets state is not thread-safe),
  all traits of one widget in one ``hold_sync()`` message.
* Writes leave the kernel in order on one background thread and are coalesced per path: a fast
  drag sends the latest value, never a backlog, and never blocks the kernel.
* ``transform=(to_remote, from_remote)`` converts between the widget's and the shared value.
* ``channel=True`` follows the notebook's current channel (the snapshot of a newly joined channel
  is applied); ``channel="Red"`` sticks to one channel. In multi-channel mode there is no one
  current channel: ``channel=True`` is refused (the error names ``channel='<first channel>'``),
  and a binding made before the switch follows the last channel joined only.
* ``fdc3=("fdc3.instrument", "id.ticker")`` follows the current FDC3 user channel's context of
  that type (``io.fdc3``, docs/FDC3.md); a widget change broadcasts that context with the path
  changed.
* A channel-bound widget whose path has no value on the channel (an empty channel was joined,
  or the notebook left its channel) keeps its value but is marked stale (:mod:`._stale`,
  ``binding.stale`` says why) until a value arrives or its own value is published.
"""

from __future__ import annotations

import collections
import contextlib
import copy
import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..protocol.wire import CHANNEL_PREFIX
from ._kernel import call_on_main, on_main_thread
from ._session import session
from ._stale import show_stale

if TYPE_CHECKING:
    from ..client import Interop

__all__ = ["Binding", "bind"]

log = logging.getLogger("jupyter_interop.notebook")
_MISSING = object()


def get_path(data: Any, path: str) -> Any:
    """The value at a dot-path of nested dicts, or ``_MISSING``."""
    node = data
    for part in path.split("."):
        if not isinstance(node, dict) or part not in node:
            return _MISSING
        node = node[part]
    return node


class _Writer:
    """One background thread sending writes in order, coalescing them per key."""

    def __init__(self) -> None:
        self._pending: collections.OrderedDict[Any, Callable[[], None]] = collections.OrderedDict()
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None

    def submit(self, key: Any, write: Callable[[], None]) -> None:
        with self._cond:
            self._pending.pop(key, None)
            self._pending[key] = write
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._run, name="jupyter-interop-bind-writer", daemon=True
                )
                self._thread.start()
            self._cond.notify()

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._pending:
                    if not self._cond.wait(timeout=30):
                        self._thread = None
                        return
                _, write = self._pending.popitem(last=False)
            try:
                write()
            except Exception as exc:
                log.warning("jupyter_interop: a bound widget could not publish: %s", exc)

    def flush(self, timeout: float = 5.0) -> bool:
        """Wait until every queued write was sent (tests, and before closing)."""
        done = threading.Event()
        self.submit(object(), done.set)
        return done.wait(timeout)


_WRITER = _Writer()


@dataclass(eq=False)
class Binding:
    """One widget trait bound to a path of a context or channel; ``unbind()`` stops it."""

    widget: Any
    trait: str
    path: str
    source: _Source
    to_remote: Callable[[Any], Any] | None = None
    from_remote: Callable[[Any], Any] | None = None
    active: bool = True
    #: why the widget's value is not the channel's ("no data on Blue"), else None
    stale: str | None = None
    #: True while the binding sets the widget from the hub (the change is not published back)
    applying: bool = field(default=False, repr=False)

    # -- widget -> hub

    def observe_widget(self) -> None:
        """Publish the widget's changes of the bound trait from now on."""
        self.widget.observe(self._on_widget_change, names=self.trait)

    def _on_widget_change(self, change: dict[str, Any]) -> None:
        if not self.active or self.applying:
            return
        value = change["new"]
        remote = self.to_remote(value) if self.to_remote else value
        self.source.write(self, remote)

    # -- hub -> widget (main thread)

    def remote_value(self, value: Any) -> Any:
        return self.from_remote(value) if self.from_remote else value

    def unbind(self) -> None:
        """Stop following and publishing (the widget keeps its value)."""
        if not self.active:
            return
        self.active = False
        with contextlib.suppress(ValueError):
            self.widget.unobserve(self._on_widget_change, names=self.trait)
        self.source.remove(self)

    def __repr__(self) -> str:
        state = "" if self.active else " (unbound)"
        widget = f"{type(self.widget).__name__}.{self.trait}"
        return f"<Binding {widget} <-> {self.source.label}:{self.path}{state}>"


#: traits applied after the others of the same update, so that bounds and options change
#: first (a slider's new ``max`` before a ``value`` beyond the old one, which would be clamped)
_LATE_TRAITS = ("value", "index", "label")


def _apply_group(bindings: list[tuple[Binding, Any]]) -> None:
    """Set values on one widget in one ``hold_sync`` message, guarded against re-publishing."""
    bindings = sorted(bindings, key=lambda item: item[0].trait in _LATE_TRAITS)
    widget = bindings[0][0].widget
    hold = getattr(widget, "hold_sync", None)
    ctx = hold() if callable(hold) else _null()
    for binding, _ in bindings:
        binding.applying = True
    try:
        with ctx:
            for binding, value in bindings:
                if not binding.active:
                    continue
                try:
                    if getattr(widget, binding.trait) != value:
                        setattr(widget, binding.trait, value)
                except Exception as exc:
                    log.warning(
                        "jupyter_interop: cannot set %s.%s to %r: %s",
                        type(widget).__name__,
                        binding.trait,
                        value,
                        exc,
                    )
    finally:
        for binding, _ in bindings:
            binding.applying = False


class _null:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: Any) -> None:
        return None


class _Source:
    """A context (or channel) followed by one subscription, shared by all its bindings."""

    label = "?"

    def __init__(self, io: Interop) -> None:
        self.io = io
        self.bindings: list[Binding] = []
        self._lock = threading.Lock()
        self._stop: Callable[[], None] | None = None
        self.data: Any = None
        #: path -> the newest value this kernel knows (its own pending writes included)
        self.latest: dict[str, Any] = {}

    # subclass API
    def _subscribe(self) -> Callable[[], None]:
        raise NotImplementedError

    def _read(self) -> Any:
        raise NotImplementedError

    def _write(self, path: str, value: Any) -> None:
        raise NotImplementedError

    def _seeds(self) -> bool:
        return False

    def key(self) -> Any:
        """What identifies this source: bindings to the same one share it."""
        raise NotImplementedError

    # shared machinery
    def add(self, binding: Binding) -> None:
        with self._lock:
            self.bindings.append(binding)
            first = self._stop is None
        if first:
            self._stop = self._subscribe()
        if binding.path in self.latest:  # a sibling's write may not have reached the hub yet
            value = self.latest[binding.path]
        else:
            data = self._read()
            value = get_path(data, binding.path) if data is not None else _MISSING
        if value is not _MISSING:
            self._apply_now([(binding, binding.remote_value(value))])
        elif self._missing_reason() is not None:
            self._mark_now([(binding, self._missing_reason())])
        elif self._seeds():
            current = getattr(binding.widget, binding.trait)
            remote = binding.to_remote(current) if binding.to_remote else current
            self.write(binding, remote)

    def remove(self, binding: Binding) -> None:
        with self._lock:
            if binding in self.bindings:
                self.bindings.remove(binding)
            last = not self.bindings
            stop, self._stop = (self._stop, None) if last else (None, self._stop)
        if last:
            _SOURCES.pop(self.key(), None)
            if stop is not None:
                stop()

    def write(self, origin: Binding, value: Any) -> None:
        """Publish a widget's value; bindings in this kernel on the same path follow now."""
        path = origin.path
        self.latest[path] = value
        _WRITER.submit((self.key(), path), lambda: self._write(path, value))
        siblings = [
            (b, b.remote_value(value))
            for b in list(self.bindings)
            if b is not origin and b.path == path and b.active
        ]
        if siblings:
            self._apply_soon(siblings)
        if self._publishes():  # the widget's value is the shared one now
            self._mark_soon([(origin, None)] + [(b, None) for b, _ in siblings])

    def _publishes(self) -> bool:
        """Whether a widget's write reaches the hub now."""
        return True

    def _missing_reason(self) -> str | None:
        """Why a path without a value leaves widgets stale here (None: it does not)."""
        return None

    def mark_missing(self, data: Any, reason: str) -> None:
        """Mark the bindings whose path ``data`` lacks (client event thread)."""
        marks = [
            (b, reason)
            for b in list(self.bindings)
            if b.active and (data is None or get_path(data, b.path) is _MISSING)
        ]
        if marks:
            self._mark_soon(marks)

    def _mark_soon(self, marks: Sequence[tuple[Binding, str | None]]) -> None:
        if on_main_thread():
            self._mark_now(marks)
        else:
            call_on_main(self._mark_now, marks)

    @staticmethod
    def _mark_now(marks: Sequence[tuple[Binding, str | None]]) -> None:
        for binding, reason in marks:
            if binding.active and binding.stale != reason:
                binding.stale = reason
                show_stale(binding.widget, reason)

    def deliver(self, data: Any) -> None:
        """New data from the hub (client event thread): apply it on the main loop."""
        self.data = data
        updates = []
        for binding in list(self.bindings):
            value = get_path(data, binding.path) if data is not None else _MISSING
            if value is not _MISSING and binding.active:
                self.latest[binding.path] = value
                updates.append((binding, binding.remote_value(value)))
        if updates:
            self._apply_soon(updates)
            self._mark_soon([(b, None) for b, _ in updates if b.stale is not None])

    def _apply_soon(self, updates: list[tuple[Binding, Any]]) -> None:
        if on_main_thread():
            self._apply_now(updates)
        else:
            call_on_main(self._apply_now, updates)

    @staticmethod
    def _apply_now(updates: list[tuple[Binding, Any]]) -> None:
        by_widget: dict[int, list[tuple[Binding, Any]]] = {}
        for binding, value in updates:
            by_widget.setdefault(id(binding.widget), []).append((binding, value))
        for group in by_widget.values():
            _apply_group(group)


class _ContextSource(_Source):
    def __init__(self, io: Interop, name: str) -> None:
        super().__init__(io)
        self.name = name
        self.label = f"context {name}"

    def key(self) -> Any:
        return ("context", id(self.io), self.name)

    def _seeds(self) -> bool:
        return True

    def _subscribe(self) -> Callable[[], None]:
        sub = self.io.contexts.subscribe(self.name, self.deliver, include_own=False)
        return sub.unsubscribe

    def _read(self) -> Any:
        return self.io.contexts.get(self.name)

    def _write(self, path: str, value: Any) -> None:
        self.io.contexts.set_path(self.name, path, value)


class _ChannelSource(_Source):
    """The current channel (``fixed`` None) or one named channel; paths are inside ``data``."""

    def __init__(self, io: Interop, fixed: str | None) -> None:
        super().__init__(io)
        self.fixed = fixed
        self.label = f"channel {fixed}" if fixed else "current channel"

    def key(self) -> Any:
        return ("channel", id(self.io), self.fixed)

    def _channel(self) -> str | None:
        return self.fixed or self.io.channels.current

    def _subscribe(self) -> Callable[[], None]:
        def on_data(data: Any, channel: Any, meta: Any) -> None:
            if self.fixed is None and channel.name != self.io.channels.current:
                return  # multi mode, switched to after binding: only the last channel joined
            self.deliver(data)
            if getattr(meta, "snapshot", False):  # just joined: what it lacks is stale here
                self.mark_missing(data, f"no data on {channel.name}")

        def on_changed(name: str | None) -> None:
            if name is None:
                self.mark_missing(None, "not on a channel")

        if self.fixed:
            sub = self.io.channels.subscribe_for(self.fixed, on_data, include_own=False)
            return sub.unsubscribe
        stop_data = self.io.channels.subscribe(on_data, include_own=False)
        stop_changes = self.io.channels.on_changed(on_changed)

        def stop() -> None:
            stop_data()
            stop_changes()

        return stop

    def _publishes(self) -> bool:
        return self._channel() is not None

    def _missing_reason(self) -> str | None:
        channel = self._channel()
        return f"no data on {channel}" if channel else "not on a channel"

    def _read(self) -> Any:
        channel = self._channel()
        return self.io.channels.get(channel).data if channel else None

    def _write(self, path: str, value: Any) -> None:
        channel = self._channel()
        if channel is None:
            return  # not on a channel: the widget is local until the notebook joins one
        if "." in path:
            self.io.contexts.set_path(CHANNEL_PREFIX + channel, f"data.{path}", value)
        else:
            self.io.channels.publish({path: value}, name=channel)


class _Fdc3Source(_Source):
    """The current user channel's latest context of one FDC3 type (``io.fdc3``); paths are
    inside the context, and a write broadcasts the context with the path changed."""

    def __init__(self, io: Interop, context_type: str) -> None:
        super().__init__(io)
        self.context_type = context_type
        self.label = f"FDC3 {context_type}"

    def key(self) -> Any:
        return ("fdc3", id(self.io), self.context_type)

    def _subscribe(self) -> Callable[[], None]:
        agent = self.io.fdc3

        def on_context(context: dict[str, Any]) -> None:
            self.deliver(context)

        def on_changed(name: str | None) -> None:
            reason = self._missing_reason()
            if reason is not None and self._read() is None:
                self.mark_missing(None, reason)

        listener = agent.add_context_listener(self.context_type, on_context)
        stop_changes = self.io.channels.on_changed(on_changed)

        def stop() -> None:
            listener.unsubscribe()
            stop_changes()

        return stop

    def _publishes(self) -> bool:
        return self.io.fdc3.get_current_channel() is not None

    def _missing_reason(self) -> str | None:
        channel = self.io.fdc3.get_current_channel()
        if channel is None:
            return "not on an FDC3 user channel"
        return f"no {self.context_type} on {channel.id}"

    def _read(self) -> Any:
        channel = self.io.fdc3.get_current_channel()
        return channel.get_current_context(self.context_type) if channel else None

    def _write(self, path: str, value: Any) -> None:
        current = self._read() or self.data or {}
        context = copy.deepcopy(current) if isinstance(current, dict) else {}
        context["type"] = self.context_type
        node = context
        *parents, leaf = path.split(".")
        for part in parents:
            child = node.get(part)
            node[part] = child = child if isinstance(child, dict) else {}
            node = child
        node[leaf] = value
        self.data = context
        self.io.fdc3.broadcast(context)  # nothing when on no user channel


_SOURCES: dict[Any, _Source] = {}
_SOURCES_LOCK = threading.Lock()


def _source(
    io: Interop, context: str | None, channel: bool | str | None, fdc3_type: str | None
) -> _Source:
    candidate: _Source
    if fdc3_type is not None:
        candidate = _Fdc3Source(io, fdc3_type)
    elif context is not None:
        candidate = _ContextSource(io, context)
    else:
        candidate = _ChannelSource(io, channel if isinstance(channel, str) else None)
    with _SOURCES_LOCK:
        return _SOURCES.setdefault(candidate.key(), candidate)


def bind(
    widget: Any,
    trait: str = "value",
    *,
    context: str | None = None,
    channel: bool | str | None = None,
    fdc3: tuple[str, str] | None = None,
    path: str | None = None,
    transform: tuple[Callable[[Any], Any], Callable[[Any], Any]] | None = None,
    client: Interop | None = None,
) -> Binding:
    """Bind ``widget.<trait>`` two-way to ``path`` of a shared context or of a channel's data,
    or to a path of the current FDC3 user channel's context of one type.

    ``bind(slider, "value", context="client", path="limit")``;
    ``bind(text, "value", channel=True, path="symbol")`` (the notebook's current channel);
    ``bind(text, "value", fdc3=("fdc3.instrument", "id.ticker"))`` (docs/FDC3.md);
    ``transform=(to_remote, from_remote)`` converts values. Returns a :class:`Binding`;
    ``binding.unbind()`` stops it.
    """
    fdc3_type = None
    if fdc3 is not None:
        if context is not None or channel not in (None, False) or path is not None:
            raise ValueError("bind(fdc3=(TYPE, PATH)) takes no context=, channel= or path=")
        if (
            not isinstance(fdc3, tuple)
            or len(fdc3) != 2
            or not all(isinstance(p, str) and p for p in fdc3)
        ):
            raise ValueError(f"fdc3 must be a pair (context type, path), not {fdc3!r}")
        fdc3_type, path = fdc3
    elif (context is None) == (channel is None or channel is False):
        raise ValueError(
            "bind() needs exactly one of context='name', channel=True/'Name' or fdc3=(TYPE, PATH)"
        )
    if context is not None and (not isinstance(context, str) or not context):
        raise ValueError(f"context must be a non-empty name, not {context!r}")
    if not isinstance(path, str) or not path or any(not p for p in path.split(".")):
        raise ValueError(f"path must be a dot-path like 'a' or 'a.b', not {path!r}")
    if not hasattr(widget, "observe") or not widget.has_trait(trait):
        raise ValueError(f"{type(widget).__name__} has no trait {trait!r}")
    to_remote = from_remote = None
    if transform is not None:
        if len(transform) != 2 or not all(callable(f) for f in transform):
            raise ValueError("transform must be a pair (to_remote, from_remote) of callables")
        to_remote, from_remote = transform
    io = client or session().client()
    if channel is True and io.channels.mode == "multi":
        on = io.channels.my_channels()
        raise ValueError(
            "channel=True follows the one current channel, and this notebook is in "
            f"multi-channel mode (on {', '.join(on) or 'no channel'}): bind to one channel "
            f"with channel={(on[0] if on else 'Name')!r}"
        )
    source = _source(io, context, channel, fdc3_type)
    binding = Binding(widget, trait, path, source, to_remote, from_remote)
    source.add(binding)
    binding.observe_widget()
    return binding


def flush_writes(timeout: float = 5.0) -> bool:
    """Wait until bound widgets' pending writes reached the hub (True when done)."""
    return _WRITER.flush(timeout)
