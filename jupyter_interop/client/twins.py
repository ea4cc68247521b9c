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
from collections.abc import Callable, Coroutine, Iterator
from typing import TYPE_CHECKING, Any, Concatenate, ParamSpec, Protocol, TypeVar

from .errors import ClientClosedError, InteropError

if TYPE_CHECKING:
    from .session import ClientSession

__all__ = ["LoopReply", "blocking", "main_thread_wait", "main_thread_waiting", "on_io_loop"]

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


@contextlib.contextmanager
def main_thread_wait(name: str) -> Iterator[None]:
    """Record, while it lasts, that the calling thread waits in the blocking call ``name``
    when that thread is the main thread (see :func:`main_thread_waiting`)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    _main_thread_waits.append(name)
    try:
        yield
    finally:
        _main_thread_waits.pop()


class LoopReply:
    """The reply of a request sent from a loop other than the client's (a kernel's): set on
    the I/O thread, it settles :attr:`future` on the caller's loop with one
    ``call_soon_threadsafe``, the one wake-up of that loop per call."""

    __slots__ = ("_loop", "_settled", "future")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._settled = False
        self.future: asyncio.Future[Any] = loop.create_future()

    def done(self) -> bool:
        return self._settled

    def set_result(self, result: Any) -> None:
        self._settle(result, None)

    def set_exception(self, error: BaseException) -> None:
        self._settle(None, error)

    def _settle(self, result: Any, error: BaseException | None) -> None:
        if self._settled:
            return
        self._settled = True
        with contextlib.suppress(RuntimeError):  # the caller's loop is closed: nobody waits
            self._loop.call_soon_threadsafe(_settle_future, self.future, result, error)


def _settle_future(future: asyncio.Future[Any], result: Any, error: BaseException | None) -> None:
    if future.done():  # the caller gave up meanwhile
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)


def blocking(
    afn: Callable[Concatenate[S, P], Coroutine[Any, Any, R]],
    twin_of: str | None = None,
) -> Callable[Concatenate[S, P], R]:
    """The blocking twin of ``afn`` (named without its leading ``a``), or of the public
    coroutine ``twin_of`` when ``afn`` is the part of it that runs on the loop."""
    impl = getattr(afn, "__wrapped_async__", afn)
    awaited = twin_of or afn.__name__

    @functools.wraps(afn)
    def wrapper(self: S, *args: P.args, **kwargs: P.kwargs) -> R:
        session = self._session
        session.check_open()
        io = session.io
        if io.in_thread:
            raise InteropError(
                f"{name}() would block the event loop this interop client runs on (the I/O "
                f"loop in an async handler or callback, or your program's loop after "
                f"aconnect()): use 'await ....{awaited}(...)' there"
            )
        # recorded before the coroutine is scheduled: the I/O loop may run it (and a resolver
        # that asks main_thread_waiting) before this thread gets to wait
        with main_thread_wait(name):
            future = asyncio.run_coroutine_threadsafe(impl(self, *args, **kwargs), io.loop)
            try:
                return future.result()
            except concurrent.futures.CancelledError:
                raise ClientClosedError("The interop client was closed") from None
            except BaseException:
                future.cancel()  # KeyboardInterrupt in a cell: stop waiting for the reply
                raise

    name = awaited[1:] if awaited.startswith("a") else awaited
    wrapper.__name__ = name
    wrapper.__qualname__ = afn.__qualname__.rsplit(".", 1)[0] + "." + name
    wrapper.__doc__ = f"Blocking twin of :meth:`{awaited}` (same arguments).\n\n{afn.__doc__ or ''}"
    return wrapper
