"""Where a client's socket and bookkeeping run: its *loop host*.

:class:`IOThread`: one I/O thread per process, with its own asyncio loop (docs/ARCHITECTURE.md,
"The client's I/O thread"). Never
the kernel's loop: a cell that blocks (or a sync call waiting for a reply) would stall it.
Every client in the process shares this thread; it is a daemon thread, and an ``atexit`` hook
closes the clients and stops the loop with a bounded wait, so the interpreter never hangs on
exit. After ``fork`` the child gets a fresh thread (the parent's loop does not exist there).

:class:`CallerLoop`: the event loop of an asyncio program that awaited ``aconnect()`` outside
IPython. Its ``await``-ed calls then run where they are awaited, with no thread hand-off each
way (about 30 µs apiece on a 2-core machine: the largest part of a client-side round trip).
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import contextlib
import logging
import os
import threading
import weakref
from collections.abc import Coroutine
from typing import Any, Protocol, TypeVar

__all__ = ["CallerLoop", "IOThread", "LoopHost", "current_io_thread", "io_thread"]

T = TypeVar("T")
log = logging.getLogger("jupyter_interop.client")


class _Closable(Protocol):
    async def aclose(self) -> None: ...


class LoopHost(Protocol):
    """What a client needs of the loop it lives on (an :class:`IOThread` or a
    :class:`CallerLoop`)."""

    loop: asyncio.AbstractEventLoop
    clients: weakref.WeakSet[Any]

    @property
    def stopped(self) -> bool: ...

    @property
    def in_thread(self) -> bool: ...

    def submit(self, coro: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]: ...

    def call_soon(self, fn: Any, *args: Any) -> None: ...


class IOThread:
    """A daemon thread running an asyncio loop forever, plus the clients living on it."""

    def __init__(self) -> None:
        self.pid = os.getpid()
        self.loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self.thread = threading.Thread(target=self._run, name="jupyter-interop-io", daemon=True)
        self.clients: weakref.WeakSet[Any] = weakref.WeakSet()
        self.stopped = False  # a plain attribute here: set by stop()
        self.thread.start()
        self._ready.wait(5)

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.call_soon(self._ready.set)
        try:
            self.loop.run_forever()
        finally:
            with contextlib.suppress(Exception):
                self._cancel_all()
                self.loop.run_until_complete(self.loop.shutdown_asyncgens())
            self.loop.close()

    def _cancel_all(self) -> None:
        tasks = [t for t in asyncio.all_tasks(self.loop) if not t.done()]
        for task in tasks:
            task.cancel()
        if tasks:
            self.loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))

    @property
    def in_thread(self) -> bool:
        return threading.current_thread() is self.thread

    def submit(self, coro: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
        """Schedule ``coro`` on the I/O loop from any thread."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop)

    def call_soon(self, fn: Any, *args: Any) -> None:
        """Run ``fn(*args)`` on the I/O loop soon (thread-safe; a no-op once stopped)."""
        if self.stopped:
            return
        with contextlib.suppress(RuntimeError):  # loop closed during interpreter exit
            self.loop.call_soon_threadsafe(fn, *args)

    def stop(self, timeout: float = 2.0) -> None:
        """Close every client (bounded), stop the loop and join the thread (bounded)."""
        if self.stopped:
            return
        clients = list(self.clients)
        if clients and self.thread.is_alive() and not self.in_thread:

            async def close_all() -> None:
                await asyncio.gather(*(c.aclose() for c in clients), return_exceptions=True)

            future = self.submit(close_all())
            with contextlib.suppress(Exception):
                future.result(timeout)
        self.stopped = True
        with contextlib.suppress(RuntimeError):
            self.loop.call_soon_threadsafe(self.loop.stop)
        if not self.in_thread:
            self.thread.join(timeout)


class CallerLoop:
    """The running loop that opened the client (``aconnect()`` in an asyncio program).

    The client is as alive as that loop: once the loop is closed (``asyncio.run`` returned)
    every call raises :class:`ClientClosedError`. Blocking twins work from other threads
    (they submit to the loop); on the loop's own thread they raise, since waiting there would
    stop the loop that must deliver the reply.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.clients: weakref.WeakSet[Any] = weakref.WeakSet()

    @property
    def stopped(self) -> bool:
        return self.loop.is_closed()

    @property
    def in_thread(self) -> bool:
        """Are we running on this loop (its thread, inside ``run_forever``)?"""
        try:
            return asyncio.get_running_loop() is self.loop
        except RuntimeError:  # no loop runs on this thread
            return False

    def submit(self, coro: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
        return asyncio.run_coroutine_threadsafe(coro, self.loop)

    def call_soon(self, fn: Any, *args: Any) -> None:
        with contextlib.suppress(RuntimeError):  # the loop was closed
            self.loop.call_soon_threadsafe(fn, *args)


_lock = threading.Lock()
_current: IOThread | None = None


def io_thread() -> IOThread:
    """The process's I/O thread, started on first use (and again after ``fork``)."""
    global _current
    current = current_io_thread()
    if current is not None:
        return current
    with _lock:
        current = current_io_thread()
        if current is None:
            current = _current = IOThread()
        return current


def current_io_thread() -> IOThread | None:
    """The process's I/O thread if it runs already (never starts one)."""
    current = _current
    if current is None or current.pid != os.getpid() or current.stopped:
        return None
    return current


@atexit.register
def _stop_at_exit() -> None:
    current = _current
    if current is not None and current.pid == os.getpid():
        try:
            current.stop(timeout=2.0)
        except Exception:  # never let interpreter exit fail because of us
            log.debug("interop I/O thread did not stop cleanly", exc_info=True)
