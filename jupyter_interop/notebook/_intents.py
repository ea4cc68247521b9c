"""Intents in notebooks: ``%interop intents``, ``%interop intent``, and the resolver widget.

Why a widget: when several handlers fit a raised intent and no target chooses, a person
picks one (docs/INTENTS.md, "In notebooks"). The client's resolver hook is an async function
run on the client's I/O loop; this module turns it into a widget under the raising cell and
waits on the I/O loop for the click, which arrives on the kernel's main thread.

A click reaches the kernel only while its main thread is free: after a magic returned, or
while a cell ``await``s (ipykernel dispatches widget messages during an awaiting cell). A
blocking ``io.intents.raise_intent(...)`` in a cell holds the main thread, so the kernel's
default resolver refuses at once there (:class:`ResolverUnavailable`, saying what to use)
rather than showing a widget nobody can answer before the timeout.
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import threading
from collections.abc import Awaitable, Callable
from concurrent.futures import FIRST_COMPLETED, Future, wait
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from IPython.core.error import UsageError

from ..client.dispatch import OutputTarget, capture_output_target
from ..client.errors import ResolverUnavailable
from ..client.twins import main_thread_waiting
from ..protocol.intents import result_type_problem
from ._args import parse_payload
from ._cellmethod import compile_cell_method
from ._commands import CommandMixin
from ._kernel import call_on_main
from ._render import Message, ResultView, Table
from ._views import describe_instance
from ._waiting import call_showing_wait

if TYPE_CHECKING:
    import argparse

    from ..client.apps import App
    from ..client.intents import Intent, IntentHandler, IntentResolution

    #: a resolver that always waits (what :func:`asking_resolver` makes)
    AskingResolver = Callable[
        [str, list[IntentHandler], dict[str, Any] | None], Awaitable[IntentHandler | None]
    ]

__all__ = [
    "IntentCommands",
    "PendingChoice",
    "apps_table",
    "asking_resolver",
    "handler_place",
    "intents_table",
    "main_thread_blocked",
    "notebook_resolver",
    "pending_resolvers",
]


def apps_table(apps: list[App]) -> Table:
    """``%interop apps``: one row per directory notebook, its intents and kernels."""
    rows = [
        [
            app.path,
            ", ".join(i.name for i in app.intents),
            ", ".join(app.methods),
            app.channel or "",
            ", ".join(f"{r.kernel_id} ({r.state})" for r in app.running),
            app.error or "",
        ]
        for app in apps
    ]
    return Table(
        ["notebook", "intents", "methods", "channel", "kernels", "error"],
        rows,
        title=f"{len(apps)} notebook app(s)",
        empty="(no notebook declares metadata.interop, or no Jupyter server's app directory)",
        data=apps,
    )


def intents_table(intents: list[Intent], name: str | None = None) -> Table:
    """``%interop intents``: one row per handler, grouped by intent."""
    rows = [
        [
            intent.name,
            handler.display_name or "",
            ", ".join(handler.context_types) or "(any)",
            handler.result_type or "",
            handler.application or "",
            handler_place(handler),
        ]
        for intent in sorted(intents, key=lambda i: i.name.lower())
        for handler in intent.handlers
    ]
    title = f"handlers of {name}" if name else f"{len(intents)} intent(s)"
    return Table(
        ["intent", "display name", "context types", "result type", "application", "handled by"],
        rows,
        title=title,
        empty=f"no handler of {name}" if name else "(no intents)",
        data=intents,
    )


# ---------------------------------------------------------------------- the choice


@dataclass
class PendingChoice:
    """A raise waiting for a person: its handlers, and ``choose`` (thread-safe; ``None``
    cancels) that settles the resolver waiting on the I/O loop."""

    intent: str
    handlers: list[IntentHandler]
    context: dict[str, Any] | None
    choose: Callable[[IntentHandler | None], None]
    #: called (on the kernel's main loop) when the raise stops waiting: picked, cancelled,
    #: timed out
    on_closed: list[Callable[[], None]] = field(default_factory=list)
    #: the raise stopped waiting (a widget shown later than that is disabled at once)
    finished: bool = False

    def closed(self) -> None:
        self.finished = True
        for callback in list(self.on_closed):
            call_on_main(callback)


def asking_resolver(present: Callable[[PendingChoice], None]) -> AskingResolver:
    """A resolver that hands each choice to ``present`` (called on the I/O loop) and waits
    for ``PendingChoice.choose``; the raise's timeout bounds the wait."""

    async def resolve(
        intent: str, handlers: list[IntentHandler], context: dict[str, Any] | None
    ) -> IntentHandler | None:
        loop = asyncio.get_running_loop()
        chosen: asyncio.Future[IntentHandler | None] = loop.create_future()

        def choose(handler: IntentHandler | None) -> None:
            def settle() -> None:
                if not chosen.done():
                    chosen.set_result(handler)

            with contextlib.suppress(RuntimeError):  # the client closed meanwhile
                loop.call_soon_threadsafe(settle)

        pending = PendingChoice(intent, list(handlers), context, choose)
        present(pending)
        try:
            return await chosen
        finally:
            pending.closed()

    return resolve


def main_thread_blocked() -> bool:
    """Whether the kernel's main thread waits in a blocking client call (a sync
    ``raise_intent`` in a cell): then no widget click can reach the kernel."""
    return threading.current_thread() is not threading.main_thread() and bool(main_thread_waiting())


async def notebook_resolver(
    intent: str, handlers: list[IntentHandler], context: dict[str, Any] | None
) -> IntentHandler | None:
    """The kernel's default resolver: a widget under the raising cell (see the module
    docstring for when it cannot be answered)."""
    if main_thread_blocked():
        raise ResolverUnavailable(
            f"{len(handlers)} handlers fit the intent {intent!r}, and a blocking raise_intent() "
            "holds the kernel, so no widget can be answered: use "
            "'await io.intents.araise_intent(...)' or '%interop intent raise' to choose in a "
            "widget, or pass a target or resolver='first'",
            intent=intent,
        )
    target = capture_output_target()  # the cell that is raising (the last one started)

    def present(pending: PendingChoice) -> None:
        call_on_main(_show_resolver, pending, target)

    return await asking_resolver(present)(intent, handlers, context)


def _show_resolver(pending: PendingChoice, target: OutputTarget | None) -> None:
    from IPython.display import display

    widget = resolver_widget(pending)
    with target.active() if target is not None else contextlib.nullcontext():
        display(widget)


# ---------------------------------------------------------------------- the widget

_OPEN: list[Any] = []


def pending_resolvers() -> list[Any]:
    """The resolver widgets still waiting for a choice, oldest first."""
    return list(_OPEN)


def handler_place(handler: IntentHandler) -> str:
    """Where a handler runs, as a user reads it: its notebook or application and peer id, or,
    for a directory notebook that is not running (type ``"app"``), that it starts on demand."""
    if handler.type == "app":
        return f"{handler.notebook_path or handler.application or '?'} (starts on demand)"
    return describe_instance(handler.instance)


def _handler_label(handler: IntentHandler) -> str:
    """The intent (after its display name, when it has another) and where it runs: a choice
    may span several intents (``io.fdc3.raise_intent_for_context``)."""
    name = handler.display_name or handler.intent
    if name != handler.intent:
        name = f"{name} ({handler.intent})"
    return f"{name} — {handler_place(handler)}"


def resolver_widget(pending: PendingChoice) -> Any:
    """The chooser: one button per handler (application, notebook path, peer id), Cancel."""
    import ipywidgets as w

    title = w.HTML(
        f"<b>{html.escape(pending.intent)}</b>: {len(pending.handlers)} handlers fit; choose one"
    )
    buttons = []
    for handler in pending.handlers:
        button = w.Button(
            description=_handler_label(handler),
            tooltip=handler_place(handler),
            layout=w.Layout(width="auto"),
            _dom_classes=["ji-intent-handler"],
        )
        buttons.append(button)
    cancel = w.Button(
        description="Cancel", button_style="warning", _dom_classes=["ji-intent-cancel"]
    )
    status = w.HTML("")
    box = w.VBox([title, *buttons, cancel, status], _dom_classes=["ji-intent-resolver"])
    box.handler_buttons = buttons  # what tests and callers click
    box.cancel_button = cancel
    box.status = status
    _OPEN.append(box)

    def finish(text: str) -> None:
        for button in [*buttons, cancel]:
            button.disabled = True
        if box in _OPEN:
            _OPEN.remove(box)
        if not status.value:
            status.value = f'<span class="ji-muted">{html.escape(text)}</span>'

    def pick(handler: IntentHandler | None) -> Callable[[Any], None]:
        def clicked(_button: Any) -> None:
            finish("cancelled" if handler is None else f"chose {_handler_label(handler)}")
            pending.choose(handler)

        return clicked

    for handler, button in zip(pending.handlers, buttons, strict=True):
        button.on_click(pick(handler))
    cancel.on_click(pick(None))
    pending.on_closed.append(lambda: finish("no choice was made in time"))
    if pending.finished:  # the raise gave up before the kernel could show the widget
        finish("no choice was made in time")
    return box


# ---------------------------------------------------------------------- the magics


class IntentCommands(CommandMixin):
    """Mixin of :class:`~.magics.InteropMagics`: ``intents`` and ``intent``."""

    def _cmd_intents(self, args: argparse.Namespace, cell: str | None) -> Table:
        table = intents_table(self.io.intents.find(args.intent), args.intent)
        self._store(args.output, table.data)
        return table

    def _cmd_apps(self, args: argparse.Namespace, cell: str | None) -> Any:
        words = list(args.words)
        if not words:
            table = apps_table(self.io.apps.list())
            self._store(args.output, table.data)
            return table
        if words[0] != "stop" or len(words) != 2:
            raise UsageError("%interop apps [stop KERNEL_ID]")
        stopped = self.io.apps.stop(words[1])
        return Message(f"Stopped {stopped.path} (kernel {stopped.kernel_id})", stopped)

    def _cmd_intent(self, args: argparse.Namespace, cell: str | None) -> Any:
        words = list(args.words)
        if cell is not None:
            if len(words) != 1:
                raise UsageError(
                    "%%interop intent INTENT [--context-types T1,T2] [--display-name NAME] "
                    "[--result-type TYPE]: "
                    f"one intent name, not {' '.join(words)!r}"
                )
            return self._listen(words[0], cell, args)
        if words[0] == "unsubscribe" and len(words) == 2:
            return self._unsubscribe(words[1])
        if words[0] != "raise" or len(words) < 2:
            raise UsageError(
                "%interop intent raise INTENT [CONTEXT] [--target APP|ID] [-o VAR], "
                "%interop intent unsubscribe INTENT, or %%interop intent INTENT as the first "
                "line of a cell to handle it"
            )
        return self._raise(words[1], words[2:], args)

    # ------------------------------------------------------------------ handle

    def _listen(self, intent: str, cell: str, args: argparse.Namespace) -> Message:
        shell = getattr(self, "shell", None)
        body = compile_cell_method(
            intent, cell, self.ns, getattr(shell, "transform_cell", None), kind="intent"
        )
        types = [t.strip() for t in (args.context_types or "").split(",") if t.strip()]
        problem = None if args.result_type is None else result_type_problem(args.result_type)
        if problem is not None:  # before a re-run cell's handler is dropped
            raise UsageError(f"--result-type: {problem}")
        io = self.io
        old = self.state.intents.pop(intent, None)
        if old is not None:  # a re-run cell replaces its handler
            old.unsubscribe()
        listener = io.intents.add_listener(
            intent,
            lambda context: body(context=context),
            context_types=types,
            display_name=args.display_name,
            description=args.description,
            result_type=args.result_type,
        )
        self.state.intents[intent] = listener
        kinds = f" for {', '.join(types)}" if types else ""
        returns = f", returning {args.result_type}" if args.result_type else ""
        return Message(
            f"Handling intent {intent!r}{kinds}{returns}; the context is `context`, output of "
            "raises appears below."
        )

    def _unsubscribe(self, intent: str) -> Message:
        listener = self.state.intents.pop(intent, None)
        if listener is None:
            raise UsageError(f"no %%interop intent cell of this notebook handles {intent!r}")
        listener.unsubscribe()
        return Message(f"Stopped handling intent {intent!r}")

    # ------------------------------------------------------------------ raise

    def _raise(self, intent: str, words: list[str], args: argparse.Namespace) -> Any:
        if args.timeout is not None and args.timeout <= 0:
            raise UsageError("--timeout must be a positive number of seconds")
        context = parse_payload(words, self.ns, what="CONTEXT") if words else None
        if args.output and not args.output.isidentifier():
            raise UsageError(f"-o {args.output}: not a valid variable name")
        io = self.io
        target: Any = None
        if args.target:  # a peer id or instance id, else an application name
            peers = io.methods.servers()
            ids = {p.peer_id for p in peers} | {p.instance for p in peers if p.instance}
            target = args.target if args.target in ids else {"application": args.target}
        asked: Future[PendingChoice] = Future()

        def present(pending: PendingChoice) -> None:
            with contextlib.suppress(Exception):  # a second choice: the first one stands
                asked.set_result(pending)

        # the widget only when the notebook's own resolver would choose (not "first", ...)
        resolver = asking_resolver(present) if io.intents.resolver is notebook_resolver else None
        raised: Future[IntentResolution] = Future()

        def run() -> None:
            try:
                raised.set_result(
                    io.intents.raise_intent(
                        intent, context, target, args.timeout, resolver=resolver
                    )
                )
            except BaseException as error:
                raised.set_exception(error)

        threading.Thread(target=run, name="jupyter-interop-intent", daemon=True).start()
        either: list[Future[Any]] = [raised, asked]
        call_showing_wait(
            lambda: wait(either, return_when=FIRST_COMPLETED),
            lambda elapsed: f"raising {intent}… {elapsed:.1f} s",
        )
        if raised.done():
            return self._resolved(raised.result(), args.output)
        # several handlers fit: a person chooses below; the outcome shows in the widget
        widget = resolver_widget(asked.result())
        raised.add_done_callback(
            lambda done: call_on_main(self._outcome, done, widget, args.output)
        )
        return widget

    def _resolved(self, resolution: IntentResolution, var: str | None) -> Any:
        self._store(var, resolution.result)
        return ResultView(
            resolution.result, describe_instance(resolution.handler.instance), resolution
        )

    def _outcome(self, done: Future[IntentResolution], widget: Any, var: str | None) -> None:
        error = done.exception()
        if error is not None:
            text = f"{type(error).__name__}: {error}"
            widget.status.value = f'<span class="ji-error">{html.escape(text)}</span>'
            return
        resolution = done.result()
        self._store(var, resolution.result)
        who = describe_instance(resolution.handler.instance)
        shown = html.escape(repr(resolution.result))
        widget.status.value = (
            f'<pre>{shown}</pre><span class="ji-muted">handled by {html.escape(who)}</span>'
        )
