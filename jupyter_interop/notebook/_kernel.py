"""The kernel side of threading: the main loop for widgets, the cell for output.

Why: the client delivers remote events on its own I/O thread (DESIGN §2.6), but ipywidgets
state is not thread-safe, so every widget mutation is posted to the kernel's main loop
(``call_soon_threadsafe``); it runs as soon as no cell is blocking. And output printed by a
method handler or a callback belongs under the cell that registered it, not under whatever
cell happens to run: ipykernel >= 7.4 has ``shell.set_thread_parent(parent)`` for exactly
that (feature-detected). On older kernels the output goes where ipykernel sends output from
other threads, the most recently executed cell; that is the documented fallback.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Callable, Iterator
from typing import Any

__all__ = [
    "call_on_main",
    "capture_parent",
    "on_main_thread",
    "routed",
    "routes_output",
    "shell",
]

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
    """Whether this kernel can route a thread's output to a chosen cell (ipykernel >= 7.4)."""
    ip = shell()
    return ip is not None and hasattr(ip, "set_thread_parent") and hasattr(ip, "get_parent")


def capture_parent() -> dict[str, Any] | None:
    """The message of the cell running now, to route later output back under it."""
    ip = shell()
    get_parent = getattr(ip, "get_parent", None)
    if get_parent is None:
        return None
    parent = get_parent()
    return dict(parent) if parent else None


@contextlib.contextmanager
def routed(parent: dict[str, Any] | None) -> Iterator[None]:
    """Send this thread's output to ``parent``'s cell while the block runs (when supported)."""
    ip = shell()
    if not parent or ip is None or not hasattr(ip, "set_thread_parent"):
        yield
        return
    tokens = ip.set_thread_parent(parent)
    try:
        yield
    finally:
        with contextlib.suppress(Exception):
            ip.reset_thread_parent(tokens)
