"""Sync and async twins generated from one async implementation (as jupyter_client does).

Every operation is written once, ``async def aname(...)``, decorated with :func:`on_io_loop`
so that it runs on the client's I/O loop whichever loop awaits it (the kernel's, for top-level
``await``; the I/O loop itself, inside an ``async def`` handler). ``name = blocking(aname)``
makes the twin for cells and scripts: it submits the coroutine to the I/O loop and waits.

A blocking twin called on the I/O thread would deadlock, so it raises instead and says which
twin to await. Interrupting the wait (Ctrl-C, "interrupt kernel") cancels the operation.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import functools
import threading
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any, Concatenate, ParamSpec, Protocol, TypeVar

from .errors import ClientClosedError, InteropError

if TYPE_CHECKING:
    from .session import ClientSession

__all__ = ["blocking", "main_thread_waiting", "on_io_loop"]

P = ParamSpec("P")
R = TypeVar("R")


class HasSession(Protocol):
    """A service (or one of its objects) of an open client."""

    @property
    def _session(self) -> ClientSession: ...


S = TypeVar("S", bound=HasSession)


def on_io_loop(
    fn: Callable[Concatenate[S, P], Coroutine[Any, Any, R]],
) -> Callable[Concatenate[S, P], Coroutine[Any, Any, R]]:
    """Run the coroutine on the client's I/O loop, awaited from whatever loop calls it."""

    @functools.wraps(fn)
    async def wrapper(self: S, *args: P.args, **kwargs: P.kwargs) -> R:
        session = self._session
        session.check_open()
        loop = session.io.loop
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            return await fn(self, *args, **kwargs)
        if running is not None:
            return await _hop(session, loop, running, fn(self, *args, **kwargs))
        future = asyncio.run_coroutine_threadsafe(fn(self, *args, **kwargs), loop)
        try:
            return await asyncio.wrap_future(future)
        except concurrent.futures.CancelledError:
            if session.closed:
                raise ClientClosedError("The interop client was closed") from None
            raise

    wrapper.__wrapped_async__ = fn  # type: ignore[attr-defined]
    return wrapper


async def _hop(
    session: ClientSession,
    loop: asyncio.AbstractEventLoop,
    running: asyncio.AbstractEventLoop,
    coro: Coroutine[Any, Any, R],
) -> R:
    """Run ``coro`` as a task on the I/O loop and await its outcome on ``running``: one
    ``call_soon_threadsafe`` there, one back, and no ``concurrent.futures.Future`` between
    (what ``run_coroutine_threadsafe`` + ``wrap_future`` cost on every call)."""
    waiter: asyncio.Future[R] = running.create_future()
    started: list[asyncio.Task[R]] = []

    def settle(task: asyncio.Task[R]) -> None:  # on the I/O loop
        with contextlib.suppress(RuntimeError):  # the caller's loop is closed: nobody waits
            running.call_soon_threadsafe(_copy_outcome, task, waiter, session)

    def start() -> None:  # on the I/O loop
        if waiter.done():  # cancelled before it started
            coro.close()
            return
        task = loop.create_task(coro)
        started.append(task)
        task.add_done_callback(settle)

    try:
        loop.call_soon_threadsafe(start)
    except RuntimeError:  # the I/O loop is closed
        coro.close()
        raise ClientClosedError("The interop client was closed") from None
    try:
        return await waiter
    except asyncio.CancelledError:
        if not waiter.cancelled():
            raise  # the I/O loop's task was cancelled (see _copy_outcome)
        # our caller gave up: stop the operation on the I/O loop too (after ``start``)
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(_cancel_started, started)
        raise


def _copy_outcome(task: asyncio.Task[R], waiter: asyncio.Future[R], session: ClientSession) -> None:
    if waiter.done():
        return
    if task.cancelled():
        if session.closed:
            waiter.set_exception(ClientClosedError("The interop client was closed"))
        else:
            waiter.set_exception(asyncio.CancelledError())
        return
    error = task.exception()
    if error is not None:
        waiter.set_exception(error)
    else:
        waiter.set_result(task.result())


def _cancel_started(started: list[asyncio.Task[Any]]) -> None:
    for task in started:
        task.cancel()


#: the blocking calls the main thread is waiting in, innermost last (see main_thread_waiting)
_main_thread_waits: list[str] = []


def main_thread_waiting() -> str | None:
    """The blocking client call the main thread waits in (its name), if any: in a kernel that
    thread runs the cells, so while it waits no widget click reaches the kernel."""
    return _main_thread_waits[-1] if _main_thread_waits else None


def blocking(
    afn: Callable[Concatenate[S, P], Coroutine[Any, Any, R]],
) -> Callable[Concatenate[S, P], R]:
    """The blocking twin of ``afn`` (named without its leading ``a``)."""
    impl = getattr(afn, "__wrapped_async__", afn)

    @functools.wraps(afn)
    def wrapper(self: S, *args: P.args, **kwargs: P.kwargs) -> R:
        session = self._session
        session.check_open()
        io = session.io
        if io.in_thread:
            raise InteropError(
                f"{name}() would block the event loop this interop client runs on (the I/O "
                f"loop in an async handler or callback, or your program's loop after "
                f"aconnect()): use 'await ....{afn.__name__}(...)' there"
            )
        future = asyncio.run_coroutine_threadsafe(impl(self, *args, **kwargs), io.loop)
        main = threading.current_thread() is threading.main_thread()
        if main:
            _main_thread_waits.append(name)
        try:
            return future.result()
        except concurrent.futures.CancelledError:
            raise ClientClosedError("The interop client was closed") from None
        except BaseException:
            future.cancel()  # KeyboardInterrupt in a cell: stop waiting for the reply
            raise
        finally:
            if main:
                _main_thread_waits.pop()

    name = afn.__name__[1:] if afn.__name__.startswith("a") else afn.__name__
    wrapper.__name__ = name
    wrapper.__qualname__ = afn.__qualname__.rsplit(".", 1)[0] + "." + name
    wrapper.__doc__ = (
        f"Blocking twin of :meth:`{afn.__name__}` (same arguments).\n\n{afn.__doc__ or ''}"
    )
    return wrapper
