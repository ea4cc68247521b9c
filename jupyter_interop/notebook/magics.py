"""``%interop`` / ``%%interop``: io.Connect interop from notebook cells.

One magic with sub-commands (``%interop --help`` lists them; each has ``--help``). Lines are
parsed by :mod:`._args` (the magic is ``@no_var_expand``: IPython's expansion gives up on JSON)
and by one argparse parser per sub-command (:mod:`._parsers`), so every mistake is a
``UsageError``: a one-line message, no traceback, the kernel keeps running. Client errors
(method not found, unknown channel, ...) are shown the same way, as ``UsageError`` with the
client's message. Results are rich objects (HTML table + plain text); ``-o VAR`` also stores
the plain value.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from IPython.core.error import UsageError
from IPython.core.magic import Magics, line_cell_magic, magics_class, no_var_expand

from ._args import Token, nest, parse_json, parse_pairs, parse_payload, split_line, unquote
from ._cellmethod import compile_cell_method
from ._fdc3 import Fdc3Commands
from ._feeds import FeedCommands
from ._intents import IntentCommands
from ._parsers import PARSERS, overview
from ._render import KeyValues, Message, ResultView, Table, data_view
from ._session import NotebookSession, session
from ._views import (
    channels_table,
    contexts_table,
    methods_table,
    peers_table,
    status_view,
    stream_methods,
)
from ._waiting import call_showing_wait

if TYPE_CHECKING:
    import argparse

    from ..client import Interop, InvocationResult

__all__ = ["InteropMagics"]


def _client_error_types() -> tuple[type[BaseException], ...]:
    from ..client import InteropError

    return (InteropError,)


@magics_class
class InteropMagics(FeedCommands, IntentCommands, Fdc3Commands, Magics):
    """The ``%interop`` magic (see the module docstring)."""

    def __init__(self, shell: Any, state: NotebookSession | None = None) -> None:
        super().__init__(shell)
        self.state = state or session()

    # ------------------------------------------------------------------ plumbing

    @property
    def io(self) -> Interop:
        try:
            return self.state.client()
        except _client_error_types() as exc:
            raise UsageError(f"cannot connect to the interop hub: {exc}") from None

    @property
    def ns(self) -> dict[str, Any]:
        assert self.shell is not None
        ns: dict[str, Any] = self.shell.user_ns
        return ns

    def _store(self, var: str | None, value: Any) -> None:
        if var:
            if not var.isidentifier():
                raise UsageError(f"-o {var}: not a valid variable name")
            self.ns[var] = value

    @no_var_expand
    @line_cell_magic
    def interop(self, line: str, cell: str | None = None) -> Any:
        """io.Connect interop: %interop --help lists the sub-commands."""
        tokens = split_line(line)
        if not tokens:
            if cell is not None:
                raise UsageError(
                    "%%interop needs a sub-command: %%interop method NAME or %%interop intent NAME"
                )
            return self._run("status", [], None)
        head = tokens[0].text
        if head in ("-h", "--help", "help"):
            if len(tokens) > 1 and tokens[1].text in PARSERS:
                print(PARSERS[tokens[1].text]().format_help())
            else:
                print(overview())
            return None
        if head not in PARSERS:
            raise UsageError(
                f"unknown sub-command {head!r}: use one of {', '.join(PARSERS)} (%interop --help)"
            )
        if cell is not None and head not in ("method", "intent"):
            raise UsageError(
                f"%%interop {head} takes no cell body; only %%interop method NAME and "
                "%%interop intent NAME"
            )
        return self._run(head, tokens[1:], cell)

    def _run(self, sub: str, tokens: list[Token], cell: str | None) -> Any:
        parser = PARSERS[sub]()
        argv = [t.text if t.is_json else unquote(t.text) for t in tokens]
        if any(a in ("-h", "--help") for a in argv):
            print(parser.format_help())
            return None
        args = parser.parse_intermixed_args(argv)
        handler = getattr(self, f"_cmd_{sub}")
        try:
            return handler(args, cell)
        except UsageError:
            raise
        except _client_error_types() as exc:
            raise UsageError(f"%interop {sub}: {exc}") from None

    # ------------------------------------------------------------------ discovery

    def _cmd_status(self, args: argparse.Namespace, cell: str | None) -> KeyValues:
        view = status_view(self.io, self.state.methods)
        self._store(args.output, view.data)
        return view

    def _cmd_peers(self, args: argparse.Namespace, cell: str | None) -> Table:
        table = peers_table(self.io, args.pattern)
        self._store(args.output, table.data)
        return table

    def _cmd_methods(self, args: argparse.Namespace, cell: str | None) -> Table:
        table = methods_table(self.io.methods.methods(), "method(s)", args.pattern)
        self._store(args.output, table.data)
        return table

    def _cmd_streams(self, args: argparse.Namespace, cell: str | None) -> Table:
        table = methods_table(stream_methods(self.io), "stream(s)", args.pattern)
        self._store(args.output, table.data)
        return table

    def _cmd_contexts(self, args: argparse.Namespace, cell: str | None) -> Table:
        table = contexts_table(self.io, args.pattern, args.all)
        self._store(args.output, table.data)
        return table

    def _cmd_channels(self, args: argparse.Namespace, cell: str | None) -> Table:
        table = channels_table(self.io)
        self._store(args.output, table.data)
        return table

    def _cmd_viewer(self, args: argparse.Namespace, cell: str | None) -> Any:
        from .viewer import InteropViewer

        return InteropViewer(client=self.io)

    # ------------------------------------------------------------------ methods

    def _target(self, text: str) -> Any:
        if text in ("best", "all", "skipMine"):
            return text
        if text[:1] in ("{", "["):
            return parse_json(text, self.ns)
        if text.startswith("$"):
            return parse_json(text, self.ns)
        return {"application": text}

    def _cmd_invoke(self, args: argparse.Namespace, cell: str | None) -> Any:
        arguments = parse_payload(args.args, self.ns)
        if args.timeout is not None and args.timeout <= 0:
            raise UsageError("--timeout must be a positive number of seconds")
        if args.wait is not None and args.wait < 0:
            raise UsageError("--wait must be a number of seconds >= 0")
        io = self.io
        target = self._target(args.target)
        wait = args.wait if args.wait is not None else io.method_wait_timeout
        if args.start and not io.methods.methods(args.name):
            # a directory notebook that declares it (docs/INTENTS.md); returns once registered
            call_showing_wait(
                lambda: io.apps.start(method=args.name),
                lambda elapsed: f"starting a notebook that offers {args.name}… {elapsed:.1f} s",
            )

        def describe(elapsed: float) -> str:
            if io.methods.methods(args.name):
                return f"waiting for {args.name}… {elapsed:.1f} s"
            return (
                f"waiting for {args.name}… {elapsed:.1f} s (no server offers it yet; "
                f"waiting up to {wait:g} s)"
            )

        result: InvocationResult = call_showing_wait(
            lambda: io.methods.invoke(
                args.name, arguments, target, timeout=args.timeout, wait_timeout=args.wait
            ),
            describe,
        )
        many = args.target == "all" or len(result.all_return_values) > 1
        value = [e.returned for e in result.all_return_values] if many else result.returned
        self._store(args.output, value)
        return _invocation_view(result, many)

    def _cmd_method(self, args: argparse.Namespace, cell: str | None) -> Message:
        if cell is None:
            raise UsageError(
                f"%interop method needs a cell body: write '%%interop method {args.name}' as "
                "the first line of the cell"
            )
        handler = compile_cell_method(
            args.name, cell, self.ns, getattr(self.shell, "transform_cell", None)
        )
        options = {
            k: v
            for k, v in (
                ("description", args.description),
                ("accepts", args.accepts),
                ("returns", args.returns),
            )
            if v
        }
        self.io.methods.register(args.name, handler, **options)
        self.state.methods[args.name] = args.description or ""
        return Message(f"Registered method {args.name!r}; output of calls appears below.")

    def _cmd_unregister(self, args: argparse.Namespace, cell: str | None) -> Message:
        self.io.methods.unregister(args.name)
        self.state.methods.pop(args.name, None)
        return Message(f"Unregistered method {args.name!r}")

    # ------------------------------------------------------------------ contexts

    def _create_context(self, args: argparse.Namespace) -> Message:
        """``%interop context create NAME [VALUES] --lifetime L [--read-only]``."""
        data: dict[str, Any] = {}
        if args.values and args.values[0][:1] in ("{", "["):
            data = parse_payload(args.values, self.ns, what="VALUES")
        elif args.values:
            data = nest(parse_pairs(args.values, self.ns))
        created = self.io.contexts.create(
            args.name, data, lifetime=args.lifetime, read_only=args.read_only
        )
        if not created:
            return Message(f"Context {args.name!r} existed already: following it, unchanged")
        read_only = ", read-only for others" if args.read_only else ""
        return Message(f"Created context {args.name!r} ({args.lifetime}{read_only})")

    def _cmd_context(self, args: argparse.Namespace, cell: str | None) -> Any:
        io = self.io
        if args.action == "get":
            if args.values:
                raise UsageError("context get takes no values")
            current = io.contexts.get(args.name)
            self._store(args.output, current)
            return data_view(args.name, current)
        if args.action in ("destroy", "read-only", "writable"):
            if args.values:
                raise UsageError(f"context {args.action} takes no values")
            if args.action == "destroy":
                io.contexts.destroy(args.name)
                return Message(f"Destroyed context {args.name!r}")
            io.contexts.set_read_only(args.name, args.action == "read-only")
            whom = "for everyone but this kernel" if args.action == "read-only" else "again"
            return Message(f"Context {args.name!r} is {args.action} {whom}")
        if args.action == "create":
            return self._create_context(args)
        if not args.values:
            raise UsageError(f"context {args.action} needs values: JSON or key=value pairs")
        data: dict[str, Any] | None = None
        paths: dict[str, Any] | None = None
        if args.values[0][:1] in ("{", "["):
            data = parse_payload(args.values, self.ns, what="VALUES")
        else:
            paths = parse_pairs(args.values, self.ns)
        if args.action == "set":
            version = io.contexts.set(args.name, data if data is not None else nest(paths or {}))
        elif data is not None:
            version = io.contexts.update(args.name, data)
        else:
            assert paths is not None
            if any("." in p for p in paths):
                version = io.contexts.set_paths(args.name, paths)
            else:
                version = io.contexts.update(args.name, paths)
        suffix = f" (version {version})" if version is not None else ""
        done = "Set" if args.action == "set" else "Updated"
        return Message(f"{done} context {args.name!r}{suffix}")


def _invocation_view(result: InvocationResult, many: bool) -> Any:
    from ._views import describe_instance

    if not many:
        return ResultView(result.returned, describe_instance(result.executed_by), result)
    rows = [[describe_instance(e.executed_by), e.returned, ""] for e in result.all_return_values]
    rows += [[describe_instance(e.executed_by), "", e.message] for e in result.all_errors]
    return Table(["executed by", "returned", "error"], rows, title=f"{result.method}", data=result)
