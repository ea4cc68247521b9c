"""``%interop fdc3 broadcast TYPE CONTEXT`` and ``%interop fdc3 listen TYPE [--to VAR]``: the
FDC3 Desktop Agent (``io.fdc3``, docs/FDC3.md) from a cell, on the current user channel."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from IPython.core.error import UsageError

from ._args import parse_payload
from ._commands import CommandMixin
from ._kernel import call_on_main
from ._render import Message
from ._session import Feed

if TYPE_CHECKING:
    import argparse

__all__ = ["Fdc3Commands"]


class Fdc3Commands(CommandMixin):
    """Mixin of :class:`~.magics.InteropMagics` for ``%interop fdc3``."""

    def _cmd_fdc3(self, args: argparse.Namespace, cell: str | None) -> Message:
        if args.action == "broadcast":
            if args.to:
                raise UsageError("--to is for fdc3 listen")
            return self._fdc3_broadcast(args.type, args.values)
        if args.values:
            raise UsageError("fdc3 listen takes a context type only (and --to VAR)")
        return self._fdc3_listen(args.type, args.to)

    def _user_channel(self) -> str:
        channel = self.io.fdc3.get_current_channel()
        if channel is None:
            raise UsageError(
                "not on an FDC3 user channel: join one first ('%interop channel join Red'; "
                "io.fdc3.get_user_channels() lists them)"
            )
        return f"{channel.id} ({channel.display_metadata.get('name', '')})"

    def _fdc3_broadcast(self, context_type: str, values: list[str]) -> Message:
        if context_type == "*":
            raise UsageError("fdc3 broadcast needs a context type, not '*'")
        fields = parse_payload(values, self.ns, what="CONTEXT")
        if "type" in fields and fields["type"] != context_type:
            raise UsageError(f"the context's type {fields['type']!r} is not {context_type!r}")
        where = self._user_channel()
        self.io.fdc3.broadcast({**fields, "type": context_type})
        return Message(f"Broadcast {context_type} on {where}")

    def _fdc3_listen(self, context_type: str, var: str | None) -> Message:
        agent = self.io.fdc3
        kind = None if context_type == "*" else context_type
        if var is None:

            def show(context: dict[str, Any], metadata: dict[str, Any]) -> None:
                source = metadata.get("source", {}).get("appId", "?")
                print(f"[{context.get('type')}] {context!r}  (from {source})")

            listener = agent.add_context_listener(kind, show)
            key = f"fdc3:{context_type}"
            self.state.add_feed(key, Feed("fdc3", context_type, None, listener.unsubscribe))
            return Message(f"Listening for {context_type} on the user channel: printed below")
        if not var.isidentifier():
            raise UsageError(f"--to {var}: not a valid variable name")
        self.ns[var] = None

        def keep(context: dict[str, Any]) -> None:
            call_on_main(self.ns.__setitem__, var, context)

        listener = agent.add_context_listener(kind, keep)
        self.state.add_feed(var, Feed("fdc3", context_type, var, listener.unsubscribe))
        return Message(
            f"{var} is the latest {context_type} context on the user channel (None until one "
            "arrives), updated between cells; stop with '%interop unsubscribe "
            f"{var}'"
        )
