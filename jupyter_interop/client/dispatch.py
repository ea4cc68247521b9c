"""Where user code runs: never on the I/O loop (unless it is ``async def``), never on the
kernel's main thread.

* Method handlers and stream subscription requests run on a bounded thread pool
  (``handler_threads``): a notebook busy in a long cell still answers, and invocations run
  concurrently up to that bound. More than ``max_queued_handlers`` waiting invocations are
  refused at once (the caller gets an error) instead of piling up without limit.
* Event callbacks (stream data, context updates, bus messages, discovery events) run on one
  *ordered* lane, so a subscriber sees data in the order it was published.
* ``async def`` callables run on the I/O loop as tasks (they must not block); stream and bus
  items for one callback are awaited one after the other, in order, by one task at a time.
* In a kernel, output printed by a callback goes to the cell that registered it
  (``set_thread_parent``, ipykernel >= 7.4, feature-detected).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import inspect
import logging
import queue
import sys
import threading
import traceback
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

__all__ = ["Dispatcher", "OutputTarget", "capture_output_target", "is_async_callable"]

log = logging.getLogger("jupyter_interop.client")


class OutputTarget:
    """The kernel cell (parent message) that output of a callback should go to."""

    __slots__ = ("parent", "shell")

    def __init__(self, shell: Any, parent: Any) -> None:
        self.shell = shell
        self.parent = parent

    @contextlib.contextmanager
    def active(self) -> Any:
        try:
            tokens = self.shell.set_thread_parent(self.parent)
        except Exception:
            yield
            return
        try:
            yield
        finally:
            with contextlib.suppress(Exception):
                self.shell.reset_thread_parent(tokens)


def capture_output_target() -> OutputTarget | None:
    """The current cell of this kernel, if we run in one whose shell can route output."""
    if "IPython" not in sys.modules:
        return None
    try:
        from IPython import get_ipython

        shell = get_ipython()
    except Exception:
        return None
    if shell is None or not hasattr(shell, "set_thread_parent") or not hasattr(shell, "get_parent"):
        return None
    try:
        parent = shell.get_parent()
    except Exception:
        return None
    return OutputTarget(shell, parent) if parent else None


def is_async_callable(fn: Any) -> bool:
    if inspect.iscoroutinefunction(fn):
        return True
    call = getattr(fn, "__call__", None)  # noqa: B004 - callable objects with async __call__
    return call is not None and inspect.iscoroutinefunction(call)


class _Workers:
    """Daemon threads taking jobs from a queue, started on demand up to ``size``.

    Not a ``ThreadPoolExecutor``: its threads are joined at interpreter exit, so one handler
    stuck in user code would keep the process from exiting.
    """

    def __init__(self, size: int, name: str) -> None:
        self.size = max(1, size)
        self.name = name
        self._queue: queue.SimpleQueue[tuple[Callable[..., Any], tuple[Any, ...]] | None] = (
            queue.SimpleQueue()
        )
        self._threads: list[threading.Thread] = []
        self._idle = 0
        self._lock = threading.Lock()
        self.closed = False

    def submit(self, fn: Callable[..., Any], *args: Any) -> None:
        if self.closed:
            raise RuntimeError("workers shut down")
        self._queue.put((fn, args))
        with self._lock:
            if self._idle == 0 and len(self._threads) < self.size:
                thread = threading.Thread(
                    target=self._run, name=f"{self.name}-{len(self._threads) + 1}", daemon=True
                )
                self._threads.append(thread)
                thread.start()
            else:
                self._idle -= 1 if self._idle > 0 else 0

    def _run(self) -> None:
        while True:
            job = self._queue.get()
            if job is None:
                return
            fn, args = job
            try:
                fn(*args)
            except BaseException:  # jobs handle their own errors; never kill the worker
                log.debug("Interop: worker job failed", exc_info=True)
            with self._lock:
                self._idle += 1

    def shutdown(self) -> None:
        self.closed = True
        for _ in self._threads:
            self._queue.put(None)


class _Lane:
    """The ordered event lane: one daemon thread running callbacks in the order posted.

    Consecutive posts of the same callback (with the same output target) that the thread has
    not started yet are grouped into one job: a burst of stream events costs one hand-off to
    the thread, and the callback still sees every item, in order. :meth:`post_items` hands
    over a whole run of single-argument calls (a batch frame's stream items) at once.
    """

    def __init__(self, name: str, loop: asyncio.AbstractEventLoop) -> None:
        self.name = name
        self.loop = loop
        #: [fn, target, spread, calls]: ``fn(*args)`` per args tuple in ``calls`` when
        #: ``spread``, else ``fn(item)`` per item; the last entry grows while it waits
        self._entries: deque[list[Any]] = deque()
        self._lock = threading.Lock()
        self._wake: queue.SimpleQueue[None] = queue.SimpleQueue()
        self._waiting = False
        self._thread: threading.Thread | None = None
        self.closed = False

    def post(self, fn: Callable[..., Any], args: tuple[Any, ...], target: Any) -> None:
        """Queue ``fn(*args)`` (ignored once shut down)."""
        self.post_items(fn, [args], target, spread=True)

    def post_items(
        self, fn: Callable[..., Any], items: list[Any], target: Any, spread: bool = False
    ) -> None:
        """Queue ``fn(item)`` for each of ``items`` (``fn(*item)`` when ``spread``), in order
        (the lane takes the list; ignored once shut down)."""
        with self._lock:
            if self.closed:
                return
            entries = self._entries
            if entries:
                last = entries[-1]
                if last[0] is fn and last[1] is target and last[2] is spread:
                    last[3].extend(items)
                    return
            entries.append([fn, target, spread, items])
            wake = self._started()
        if wake:
            self._wake.put(None)

    def _started(self) -> bool:
        """(Under the lock, after queueing a new entry.) Start the thread on first use;
        True when it waits and must be woken."""
        wake = self._waiting
        self._waiting = False
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
            self._thread.start()
            return False
        return wake

    def _run(self) -> None:
        entries = self._entries
        lock = self._lock
        while True:
            with lock:
                entry = entries.popleft() if entries else None
                if entry is None:
                    if self.closed:
                        return  # what was posted before shutdown has run
                    self._waiting = True
            if entry is None:
                self._wake.get()
                continue
            try:
                _call_each(entry[0], entry[3], entry[1], self.loop, entry[2])
            except BaseException:  # never kill the lane
                log.debug("Interop: event job failed", exc_info=True)

    def shutdown(self) -> None:
        """Refuse new posts; the thread runs what was posted before, then ends."""
        with self._lock:
            self.closed = True
        self._wake.put(None)


class Dispatcher:
    """Runs user callables off the I/O loop; see the module docstring for the rules."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        handler_threads: int,
        max_queued_handlers: int,
        name: str,
    ) -> None:
        self.loop = loop
        self.max_queued = max_queued_handlers
        self._handlers = _Workers(handler_threads, f"{name}-handler")
        self._events = _Lane(f"{name}-events", loop)
        #: ``async def`` event callbacks at work on the loop: (id of fn, id of the output
        #: target, spread) -> the calls its task awaits in order, which later posts extend
        self._async_runs: dict[tuple[int, int, bool], list[Any]] = {}
        #: invocations submitted and not finished; changed on the loop and, for replies
        #: written from a handler thread (see run_handler_then), there: hence the lock
        self._queued = 0
        self._queued_lock = threading.Lock()
        self.closed = False

    # ------------------------------------------------------------------ handlers

    @property
    def busy(self) -> bool:
        return self._queued >= self.max_queued

    def run_handler(
        self,
        fn: Callable[..., Any],
        args: tuple[Any, ...],
        target: OutputTarget | None,
    ) -> asyncio.Future[Any]:
        """Run ``fn(*args)``: on a handler thread, or as a loop task for ``async def``."""
        if is_async_callable(fn):
            return self.loop.create_task(self._run_async(fn, args, {}, target))
        future: asyncio.Future[Any] = self.loop.create_future()
        self._count(1)
        future.add_done_callback(self._handler_done)
        try:
            self._handlers.submit(_run_job, fn, args, target, future, self.loop)
        except RuntimeError:
            future.cancel()
        return future

    def _handler_done(self, _: Any) -> None:
        self._count(-1)

    def _count(self, change: int) -> None:
        with self._queued_lock:
            self._queued += change

    def run_handler_then(
        self,
        fn: Callable[..., Any],
        args: tuple[Any, ...],
        target: OutputTarget | None,
        done: Callable[[Any, BaseException | None], None],
        finish: Callable[[Any], bool] | None = None,
    ) -> None:
        """Like :meth:`run_handler`, but ``done(result, error)`` is called on the loop when
        ``fn`` returns: the handler thread hands the outcome back with one
        ``call_soon_threadsafe``, no future in between (invocations are latency-bound).

        ``finish(result)``, when given, is tried first on the handler thread after ``fn``
        returned: True means it dealt with the result there (an invocation's reply written
        at once), and the loop is not woken at all.
        """
        if is_async_callable(fn):
            task = self.loop.create_task(self._run_async(fn, args, {}, target))
            task.add_done_callback(lambda t: _task_outcome(t, done))
            return
        self._count(1)
        try:
            self._handlers.submit(
                _run_then, fn, args, target, self.loop, self._settled, done, finish, self._count
            )
        except RuntimeError:
            self._count(-1)

    def _settled(
        self,
        done: Callable[[Any, BaseException | None], None],
        result: Any,
        error: BaseException | None,
    ) -> None:
        self._count(-1)
        done(result, error)

    async def _run_async(
        self,
        fn: Callable[..., Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        target: OutputTarget | None,
    ) -> Any:
        if target is None:
            return await fn(*args, **kwargs)
        with target.active():
            return await fn(*args, **kwargs)

    # ------------------------------------------------------------------ events

    def post_event(
        self,
        fn: Callable[..., Any],
        args: tuple[Any, ...],
        target: OutputTarget | None = None,
        is_async: bool | None = None,
    ) -> None:
        """Queue a callback on the ordered lane (an ``async def`` one becomes a loop task).

        ``is_async``: whether ``fn`` is ``async def``, when the caller knows it already (it is
        looked up otherwise, which is slow enough to matter per stream event).
        """
        if self.closed:
            return
        if is_async if is_async is not None else is_async_callable(fn):
            task = self.loop.create_task(self._run_async(fn, args, {}, target))
            task.add_done_callback(_log_task_error)
            return
        self._events.post(fn, args, target)

    def post_items(
        self,
        fn: Callable[..., Any],
        items: list[Any],
        target: OutputTarget | None,
        is_async: bool,
        spread: bool = False,
    ) -> None:
        """``fn(item)`` (``fn(*item)`` when ``spread``: items are args tuples) for each of
        ``items`` as :meth:`post_event` would run it, with one hand-off to the lane for them
        all (``items`` is taken over: do not reuse it).

        An ``async def`` ``fn`` gets one loop task, which awaits it item after item, in
        order; items posted while that task still works join it, as a burst joins a waiting
        job of the lane: a task per item would cost more than the callback itself at stream
        rates (docs/ARCHITECTURE.md, "The client's I/O thread")."""
        if self.closed:
            return
        if is_async:
            key = (id(fn), id(target), spread)
            run = self._async_runs.get(key)
            if run is not None:
                run.extend(items)
                return
            self._async_runs[key] = items
            task = self.loop.create_task(self._await_run(key, fn, items, target, spread))
            task.add_done_callback(_log_task_error)
            return
        self._events.post_items(fn, items, target, spread)

    async def _await_run(
        self,
        key: tuple[int, int, bool],
        fn: Callable[..., Any],
        calls: list[Any],
        target: OutputTarget | None,
        spread: bool,
    ) -> None:
        """On the loop: ``fn`` awaited for each of ``calls``, including those appended while
        it runs (the task holds ``fn`` and ``target``, so the ids in ``key`` stay theirs)."""
        try:
            await _await_each(fn, calls, target, spread)
        finally:
            if self._async_runs.get(key) is calls:
                del self._async_runs[key]

    def shutdown(self) -> None:
        """Stop accepting work; running callbacks finish on their own (never joined)."""
        self.closed = True
        self._handlers.shutdown()
        self._events.shutdown()


def _run_job(
    fn: Callable[..., Any],
    args: tuple[Any, ...],
    target: OutputTarget | None,
    future: asyncio.Future[Any],
    loop: asyncio.AbstractEventLoop,
) -> None:
    if future.cancelled():
        return
    try:
        result = _call_with_output(fn, args, {}, target)
    except BaseException as error:
        _settle(loop, future, None, error)
    else:
        _settle(loop, future, result, None)


def _run_then(
    fn: Callable[..., Any],
    args: tuple[Any, ...],
    target: OutputTarget | None,
    loop: asyncio.AbstractEventLoop,
    settled: Callable[..., None],
    done: Callable[[Any, BaseException | None], None],
    finish: Callable[[Any], bool] | None,
    count: Callable[[int], None],
) -> None:
    result: Any = None
    error: BaseException | None = None
    try:
        result = _call_with_output(fn, args, {}, target)
    except BaseException as e:
        error = e
    if error is None and finish is not None:
        try:
            finished = finish(result)
        except BaseException:
            log.exception("Interop: finishing a handler's result on its thread failed")
            finished = False
        if finished:
            count(-1)
            return
    with contextlib.suppress(RuntimeError):  # the loop is gone (interpreter exit)
        loop.call_soon_threadsafe(settled, done, result, error)


def _task_outcome(
    task: asyncio.Task[Any], done: Callable[[Any, BaseException | None], None]
) -> None:
    if task.cancelled():
        done(None, asyncio.CancelledError())
        return
    error = task.exception()
    done(None if error is not None else task.result(), error)


def _settle(
    loop: asyncio.AbstractEventLoop,
    future: asyncio.Future[Any],
    result: Any,
    error: BaseException | None,
) -> None:
    def apply() -> None:
        if future.done():
            return
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(result)

    with contextlib.suppress(RuntimeError):  # the loop is gone (interpreter exit)
        loop.call_soon_threadsafe(apply)


def _call_with_output(
    fn: Callable[..., Any],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    target: OutputTarget | None,
) -> Any:
    if target is None:
        return fn(*args, **kwargs)
    with target.active():
        return fn(*args, **kwargs)


def _call_each(
    fn: Callable[..., Any],
    calls: list[Any],
    target: OutputTarget | None,
    loop: asyncio.AbstractEventLoop,
    spread: bool = True,
) -> None:
    """Run an event callback once per call, in order: ``fn(*args)`` per args tuple when
    ``spread``, else ``fn(item)`` per item. Each exception is printed where the output goes
    (the cell that subscribed, in a kernel) and logged, never raised into the lane, and the
    next call still happens."""
    with target.active() if target is not None else contextlib.nullcontext():
        for args in calls:
            try:
                result = fn(*args) if spread else fn(args)
                if result is not None and inspect.isawaitable(result):
                    future = asyncio.run_coroutine_threadsafe(_await(result), loop)
                    future.add_done_callback(_log_future_error)
            except Exception:
                name = getattr(fn, "__qualname__", repr(fn))
                log.debug("Interop: callback %s failed", name, exc_info=True)
                print(f"Interop: callback {name} failed:", file=sys.stderr)
                traceback.print_exc()


async def _await_each(
    fn: Callable[..., Any], calls: list[Any], target: OutputTarget | None, spread: bool
) -> None:
    """:func:`_call_each` for an ``async def`` callback, on the loop: each call awaited
    before the next one starts (calls appended meanwhile included); a failing call is logged
    and the next one still happens."""
    with target.active() if target is not None else contextlib.nullcontext():
        for args in calls:  # a list iterator sees what is appended before it ends
            try:
                await (fn(*args) if spread else fn(args))
            except Exception:
                log.error("Interop: async callback failed", exc_info=True)


async def _await(awaitable: Awaitable[Any]) -> Any:
    return await awaitable


def _log_task_error(task: asyncio.Future[Any]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("Interop: async callback failed", exc_info=task.exception())


def _log_future_error(future: concurrent.futures.Future[Any]) -> None:
    if not future.cancelled() and future.exception() is not None:
        log.error("Interop: async callback failed", exc_info=future.exception())
