"""A cell that waits says so: "waiting for Pricing.Quote… 2.1 s", updated, gone when done.

A magic that may wait (an invocation whose method has no server yet, a slow handler) runs the
blocking call on a helper thread and, once it has taken longer than a moment, keeps a transient
display in the cell up to date from the kernel's main thread. Fast calls show nothing.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, wait
from typing import TypeVar

from ._render import Message

__all__ = ["call_showing_wait"]

T = TypeVar("T")

#: seconds before the display appears (fast calls show nothing), and between its updates
SHOW_AFTER = 0.3
UPDATE_EVERY = 0.1


def call_showing_wait(call: Callable[[], T], describe: Callable[[float], str]) -> T:
    """Return ``call()``; while it runs, show ``describe(elapsed seconds)`` in the cell."""
    from IPython.display import display

    future: Future[T] = Future()

    def run() -> None:
        try:
            future.set_result(call())
        except BaseException as error:
            future.set_exception(error)

    threading.Thread(target=run, name="jupyter-interop-wait", daemon=True).start()
    began = time.monotonic()
    handle = None
    try:
        # wait() rather than result(timeout): the call's own error may be a TimeoutError
        while not wait([future], timeout=SHOW_AFTER if handle is None else UPDATE_EVERY).done:
            view = Message(describe(time.monotonic() - began))
            if handle is None:
                handle = display(view, display_id=True)
            else:
                handle.update(view)
        return future.result()
    finally:
        if handle is not None:  # cleared: an empty output stays in place of the message
            handle.update({"text/plain": "", "text/html": ""}, raw=True)
