"""The kernel side of threading: the main loop for widgets, feature detection for output.

Why: the client delivers remote events on its own threads (docs/ARCHITECTURE.md,
"The client's I/O thread"), but ipywidgets state
is not thread-safe, so every widget mutation and every change to the notebook's variables is
posted to the kernel's main loop (``call_soon_threadsafe``); it runs as soon as no cell is
blocking (or while a cell awaits).

Output printed by a method handler or a callback goes under the cell that registered it: the
client captures that cell when registering and wraps each call in ``set_thread_parent``
(ipykernel >= 7.4, feature-detected; JupyterLab keeps a cell's output area listening after the
cell finished, so the lines appear there). On older kernels there is no per-thread parent: the
output goes where ipykernel sends output from other threads, the most recently executed cell.
:func:`routes_output` says which case applies.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Callable
from typing import Any

__all__ = ["call_on_main", "on_main_thread", "routes_output", "shell"]

log = logging.getLogger("jupyter_interop.notebook")


def shell() -> Any:
    """The running IPython shell, or ``None`` outside IPython."""
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover - IPython is a dependency
        return None
    return get_ipython()


def _main_loop() -> asyncio.AbstractEventLoop | None:
    ip = shell()
    kernel = getattr(ip, "kernel", None)
    io_loop = getattr(kernel, "io_loop", None)
    loop = getattr(io_loop, "asyncio_loop", None)
    if isinstance(loop, asyncio.AbstractEventLoop) and not loop.is_closed():
        return loop
    return None


def on_main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


def call_on_main(fn: Callable[..., Any], *args: Any) -> None:
    """Run ``fn(*args)`` on the kernel's main loop (now, if already on the main thread).

    Outside a kernel (plain Python or a terminal IPython) there is no loop to post to; the
    call then runs at once on the calling thread.
    """
    loop = _main_loop()
    if loop is None or on_main_thread():
        _guarded(fn, *args)
        return
    with contextlib.suppress(RuntimeError):  # the loop closed: the kernel is shutting down
        loop.call_soon_threadsafe(_guarded, fn, *args)


def _guarded(fn: Callable[..., Any], *args: Any) -> None:
    try:
        fn(*args)
    except Exception:
        log.exception("jupyter_interop: error in a callback on the kernel's main loop")


def routes_output() -> bool:
    """Whether this kernel routes a thread's output to a chosen cell (ipykernel >= 7.4)."""
    ip = shell()
    return ip is not None and hasattr(ip, "set_thread_parent") and hasattr(ip, "get_parent")
