"""The sub-commands that keep something updated: subscribe, watch, share/pull, channels, bus.

Remote data arrives on the client's event thread; every change to the notebook's variables
is posted to the kernel's main loop (:func:`._kernel.call_on_main`), so a variable never
changes in the middle of a running cell, only between cells (or while a cell awaits).
"""

from __future__ import annotations

import collections
import datetime as _dt
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from IPython.core.error import UsageError

from ..protocol.wire import CHANNEL_PREFIX
from ._args import nest, parse_json, parse_pairs, parse_payload
from ._commands import CommandMixin
from ._kernel import call_on_main
from ._render import Message, Table, data_view
from ._session import Feed

if TYPE_CHECKING:
    import argparse


__all__ = ["SHARE_PREFIX", "FeedCommands", "describe_value", "share_context"]

#: Shared variables live in the context ``jupyter.share.<name>``.
SHARE_PREFIX = "jupyter.share."


def share_context(name: str) -> str:
    return SHARE_PREFIX + name


def describe_value(value: Any) -> str:
    """A short description: ``DataFrame 120x4``, ``ndarray float64 (3, 3)``, ``dict 5 keys``."""
    kind = type(value).__name__
    shape = getattr(value, "shape", None)
    if kind == "DataFrame" and shape is not None:
        return f"DataFrame {shape[0]}x{shape[1]}"
    if kind == "ndarray" and shape is not None:
        return f"ndarray {getattr(value, 'dtype', '')} {tuple(shape)}"
    if isinstance(value, (list, dict, tuple, set, str)):
        return f"{kind} of {len(value)}"
    return kind


class _LiveBuffer:
    """Items from another thread, flushed into the notebook on the main loop in batches."""

    def __init__(self, flush: Callable[[list[Any]], None]) -> None:
        self._items: collections.deque[Any] = collections.deque()
        self._lock = threading.Lock()
        self._scheduled = False
        self._flush = flush
        self.active = True

    def add(self, item: Any) -> None:
        if not self.active:
            return
        with self._lock:
            self._items.append(item)
            if self._scheduled:
                return
            self._scheduled = True
        call_on_main(self._drain)

    def _drain(self) -> None:
        with self._lock:
            items = list(self._items)
            self._items.clear()
            self._scheduled = False
        if items and self.active:
            self._flush(items)


class FeedCommands(CommandMixin):
    """Mixin of :class:`~.magics.InteropMagics` for the sub-commands named above."""

    @staticmethod
    def _check_var(var: str, option: str) -> str:
        if not var.isidentifier():
            raise UsageError(f"{option} {var}: not a valid variable name")
        return var

    # ------------------------------------------------------------------ streams

    def _cmd_subscribe(self, args: argparse.Namespace, cell: str | None) -> Message:
        var = self._check_var(args.to, "--to")
        if args.max <= 0:
            raise UsageError("--max must be a positive number of items")
        arguments = parse_json(args.args, self.ns) if args.args else {}
        if not isinstance(arguments, dict):
            raise UsageError("--args must be a JSON object")
        target: Any = (
            args.target if args.target in ("best", "all") else {"application": args.target}
        )
        ns = self.ns
        limit = args.max
        if args.frame:
            try:
                import pandas as pd
            except ImportError:
                raise UsageError("--frame needs pandas (pip install pandas)") from None
            rows: list[dict[str, Any]] = []
            ns[var] = pd.DataFrame()

            def flush(items: list[Any]) -> None:
                rows.extend(items)
                del rows[:-limit]
                ns[var] = pd.DataFrame(rows)

        else:
            live: list[Any] = []
            ns[var] = live

            def flush(items: list[Any]) -> None:
                live.extend(items)
                del live[:-limit]

        buffer = _LiveBuffer(flush)

        def on_data(item: Any) -> None:
            data = item.data
            if args.frame and not isinstance(data, dict):
                data = {"value": data}
            buffer.add(data)

        subscription = self.io.streams.subscribe(args.stream, arguments, target, on_data=on_data)

        def close() -> None:
            buffer.active = False
            subscription.close()

        servers = ", ".join(
            s.notebook_path or s.application or s.peer_id for s in subscription.servers
        )
        self.state.add_feed(var, Feed("stream", args.stream, var, close, servers))
        kind = "DataFrame" if args.frame else "list"
        return Message(
            f"Subscribed to {args.stream!r} from {servers or 'its publisher'}: {var} is a live "
            f"{kind} (last {limit} items), updated between cells."
        )

    def _cmd_unsubscribe(self, args: argparse.Namespace, cell: str | None) -> Message:
        feeds = self.state.feeds
        if args.key is None:
            names = list(feeds)
            for key in names:
                self.state.close_feed(key)
            return Message(f"Stopped {len(names)} feed(s)")
        for key in (args.key, f"bus:{args.key}", f"fdc3:{args.key}"):
            if key in feeds:
                feed = self.state.close_feed(key)
                assert feed is not None
                return Message(
                    f"Stopped {feed.kind} {feed.name!r}"
                    + (f" (variable {feed.var})" if feed.var else "")
                )
        matches = [k for k, f in feeds.items() if f.name == args.key]
        if len(matches) == 1:
            feed = self.state.close_feed(matches[0])
            assert feed is not None
            return Message(f"Stopped {feed.kind} {feed.name!r}")
        known = ", ".join(sorted(feeds)) or "none"
        raise UsageError(f"nothing named {args.key!r} is subscribed here (active: {known})")

    # ------------------------------------------------------------------ sharing

    def _cmd_share(self, args: argparse.Namespace, cell: str | None) -> Message:
        var = args.var
        if var not in self.ns:
            raise UsageError(f"share: no variable {var!r} in the notebook")
        name = args.name or var
        if not name or any(c.isspace() for c in name):
            raise UsageError(f"share --as {name!r}: use a name without spaces")
        value = self.ns[var]
        io = self.io
        me = io.instance
        record = {
            "value": value,
            "type": describe_value(value),
            "variable": var,
            "owner": me.notebook_path or me.application,
            "owner_peer": me.peer_id,
            "shared_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        }
        version = io.contexts.set(share_context(name), record)
        self.state.shares[name] = var
        return Message(
            f"Shared {var} ({record['type']}) as {name!r}"
            + (f", version {version}" if version is not None else "")
            + f"; others: %interop pull {name}  or  %interop watch {name}"
        )

    def _shared(self, name: str) -> dict[str, Any]:
        record = self.io.contexts.get(share_context(name))
        if not record or "value" not in record:
            raise UsageError(f"nothing is shared as {name!r} (see %interop contexts jupyter.*)")
        return record

    def _cmd_pull(self, args: argparse.Namespace, cell: str | None) -> Message:
        var = self._check_var(args.output or args.name, "-o")
        record = self._shared(args.name)
        self.ns[var] = record["value"]
        return Message(
            f"{var} = {record.get('type', describe_value(record['value']))} shared by "
            f"{record.get('owner', '?')} at {record.get('shared_at', '?')}"
        )

    def _cmd_watch(self, args: argparse.Namespace, cell: str | None) -> Message:
        var = self._check_var(args.output or args.name, "-o")
        ns = self.ns
        info: dict[str, Any] = {}

        def apply(record: dict[str, Any]) -> None:
            if "value" in record:
                ns[var] = record["value"]
                info.update(record)

        buffer = _LiveBuffer(lambda items: apply(items[-1]))
        subscription = self.io.contexts.subscribe(share_context(args.name), buffer.add)
        record = self.io.contexts.get(share_context(args.name))
        if record:
            apply(record)

        def close() -> None:
            buffer.active = False
            subscription.unsubscribe()

        self.state.add_feed(var, Feed("watch", args.name, var, close))
        if not record:
            return Message(f"Watching {args.name!r}: {var} will be set when it is shared")
        return Message(
            f"Watching {args.name!r}: {var} = {record.get('type', '?')} from "
            f"{record.get('owner', '?')}, updated each time it is re-shared"
        )

    # ------------------------------------------------------------------ channels

    def _cmd_channel(self, args: argparse.Namespace, cell: str | None) -> Any:
        io = self.io
        if args.action != "restrict" and (args.read is not None or args.write is not None):
            raise UsageError("--read and --write are for channel restrict")
        if args.action == "show":
            if args.name:
                raise UsageError("did you mean '%interop channel join NAME'?")
            from .widgets import ChannelSelector

            return ChannelSelector(client=io)
        if args.action == "join":
            if not args.name:
                raise UsageError("channel join needs a channel name (see %interop channels)")
            io.channels.join(args.name)
            return Message(f"Joined channel {args.name}")
        if args.action == "leave":
            on = io.channels.my_channels()
            if args.name and args.name not in on:
                raise UsageError(f"not on channel {args.name!r} (on {', '.join(on) or 'none'})")
            left = [args.name] if args.name else on
            io.channels.leave(args.name)
            return Message(f"Left channel {', '.join(left)}" if left else "Not on a channel")
        if args.action in ("mode", "restrict", "restrictions"):
            return self._channel_settings(args)
        current = io.channels.current
        if current is None:
            self._store(args.output, None)
            return Message("Not on a channel")
        channel = io.channels.get(current)
        self._store(args.output, channel.data)
        return data_view(f"channel {current}", channel.data)

    def _channel_settings(self, args: argparse.Namespace) -> Any:
        """``channel mode``, ``channel restrict`` and ``channel restrictions``."""
        channels = self.io.channels
        if args.action == "mode":
            if args.name is not None:
                channels.mode = args.name  # ArgumentError names the two modes
            on = channels.my_channels()
            return Message(f"Channel mode {channels.mode} (on {', '.join(on) or 'no channel'})")
        if args.action == "restrictions":
            held = channels.get_restrictions()
            self._store(args.output, held)
            rows = [[r.get("name"), r.get("read"), r.get("write")] for r in held["channels"]]
            return Table(
                ["channel", "read", "write"],
                rows,
                title="restrictions of this notebook",
                empty="(none: every channel may be read and written)",
                data=held,
            )
        if not args.name:
            raise UsageError("channel restrict needs a channel name ('*': every channel)")
        if args.read is None and args.write is None:
            raise UsageError("channel restrict needs --read/--no-read or --write/--no-write")
        kept = {r.get("name"): r for r in channels.get_restrictions()["channels"]}
        before = kept.get(args.name, {}) if args.name != "*" else {}
        read = args.read if args.read is not None else before.get("read", True)
        write = args.write if args.write is not None else before.get("write", True)
        if args.name == "*":
            channels.restrict_all(read=read, write=write)
        else:
            channels.restrict(name=args.name, read=read, write=write)
        allowed = [what for what, ok in (("read", read), ("write", write)) if ok]
        where = "every channel" if args.name == "*" else f"channel {args.name}"
        return Message(
            f"This notebook may {' and '.join(allowed) or 'neither read nor write'} {where}"
        )

    def _cmd_publish(self, args: argparse.Namespace, cell: str | None) -> Message:
        io = self.io
        channel = args.channel or io.channels.current
        if channel is None:
            raise UsageError("not on a channel: '%interop channel join NAME' first, or --channel")
        if args.values[0][:1] in ("{", "["):
            data = parse_payload(args.values, self.ns, what="VALUES")
            io.channels.publish(data, name=channel)
            keys = list(data)
        else:
            paths = parse_pairs(args.values, self.ns)
            keys = list(paths)
            if any("." in p for p in paths):
                io.channels.get(channel)  # raises for an unknown channel name
                io.contexts.set_paths(
                    CHANNEL_PREFIX + channel, {f"data.{p}": v for p, v in paths.items()}
                )
            else:
                io.channels.publish(nest(paths), name=channel)
        return Message(f"Published {', '.join(keys)} to channel {channel}")

    # ------------------------------------------------------------------ bus

    def _cmd_bus(self, args: argparse.Namespace, cell: str | None) -> Message:
        io = self.io
        if args.action == "publish":
            if args.to:
                raise UsageError("--to is for bus subscribe")
            data = parse_payload(args.values, self.ns, what="DATA", require_object=False)
            if data == {}:
                raise UsageError("bus publish needs data: JSON or key=value pairs")
            io.bus.publish(args.topic, data)
            return Message(f"Published to {args.topic}")
        if args.values:
            raise UsageError(f"bus {args.action} takes no data")
        if args.action == "unsubscribe":
            for key in (f"bus:{args.topic}", args.topic):
                feed = self.state.feeds.get(key)
                if feed is not None and feed.kind == "bus":
                    self.state.close_feed(key)
                    return Message(f"Unsubscribed from {feed.name}")
            raise UsageError(f"no bus subscription {args.topic!r} here")
        if args.to:
            var = self._check_var(args.to, "--to")
            received: list[dict[str, Any]] = []
            self.ns[var] = received
            limit = args.max

            def flush(items: list[Any]) -> None:
                received.extend(items)
                del received[:-limit]

            buffer = _LiveBuffer(flush)

            def on_message(data: Any, topic: str, source: Any) -> None:
                buffer.add(
                    {
                        "topic": topic,
                        "data": data,
                        "source": source.notebook_path or source.application,
                    }
                )

            sub = io.bus.subscribe(args.topic, on_message)

            def close() -> None:
                buffer.active = False
                sub.unsubscribe()

            self.state.add_feed(var, Feed("bus", args.topic, var, close))
            return Message(f"Subscribed to {args.topic}: messages go to the list {var}")

        def show(data: Any, topic: str, source: Any) -> None:
            who = source.notebook_path or source.application or "?"
            print(f"[{topic}] {data!r}  (from {who})")

        sub = io.bus.subscribe(args.topic, show)
        self.state.add_feed(f"bus:{args.topic}", Feed("bus", args.topic, None, sub.unsubscribe))
        return Message(f"Subscribed to {args.topic}: messages are printed below")
