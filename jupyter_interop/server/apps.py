"""Notebooks that start on demand: the app directory's running side (docs/INTENTS.md).

:class:`NotebookApps` lists the directory (``server/appdir.py``), starts a notebook headless
(a kernel from the server's kernel manager, its cells run top to bottom by nbclient), waits for
the handler it declares to register on the hub, and stops it when asked or when no invocation
reached it for ``idle_timeout``. A start asked for while the same notebook is starting joins
that start: concurrent raises start a notebook once.

A kernel started here has no Jupyter session, so :meth:`NotebookApps.notebook_of` is what
tells the server which notebook it runs (``extension.py:_resolve_kernel``): its hello is then
identified with the notebook path like any other kernel's.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import posixpath
import re
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import nbformat
from jupyter_server.utils import ensure_async
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError
from traitlets import Any as AnyTrait
from traitlets import Float, Int
from traitlets.config import LoggingConfigurable

from ..protocol.limits import MAX_START_CONTEXT_BYTES
from ..protocol.wire import ENV_START_CONTEXT, INTENT_METHOD_PREFIX
from .appdir import AppDirectory, AppEntry

__all__ = ["AppFailure", "HeadlessNotebook", "NotebookApps"]

_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


class AppFailure(Exception):
    """A start that failed; ``fdc3_error`` is FDC3's name for it (``ErrorOnLaunch``,
    ``AppTimeout``, ``NoAppsFound``, ``TargetAppUnavailable``) and ``details`` what the
    raiser gets besides the message (notebook path, cell, traceback)."""

    def __init__(self, fdc3_error: str, message: str, **details: Any) -> None:
        super().__init__(message)
        self.fdc3_error = fdc3_error
        self.details = details

    def as_json(self) -> dict[str, Any]:
        return {"fdc3_error": self.fdc3_error, "message": str(self), **self.details}


@dataclass
class HeadlessNotebook:
    """One notebook started headless, from its start until it is stopped."""

    kernel_id: str
    path: str
    started: float = field(default_factory=time.time)
    #: "starting" (cells running), "running" (every cell ran), "failed", "stopped"
    state: str = "starting"
    #: the notebook as executed so far (outputs included)
    notebook: Any = None
    #: when the kernel answered (its cells start then)
    kernel_ready: float | None = None
    #: index of the cell being (or last) run
    cell_index: int | None = None
    failure: AppFailure | None = None
    #: the kernel's peer that registered the handler waited for
    peer_id: str | None = None
    #: invocations routed to the kernel's peers when last looked at, and when that changed
    invocations: int = 0
    last_activity: float = field(default_factory=time.time)
    task: asyncio.Task[None] | None = field(default=None, repr=False)
    #: set once its kernel is shut down (failed or stopped); :meth:`NotebookApps.watch` waits
    ended: asyncio.Event = field(default_factory=asyncio.Event, repr=False)

    def as_json(self) -> dict[str, Any]:
        return {
            "kernel_id": self.kernel_id,
            "path": self.path,
            "state": self.state,
            "peer_id": self.peer_id,
            "started": self.started,
            "kernel_ready": self.kernel_ready,
            "last_activity": self.last_activity,
            "error": None if self.failure is None else self.failure.as_json(),
        }

    def output(self) -> dict[str, Any]:
        """The cells run so far and what they printed, displayed or raised."""
        cells = []
        if self.notebook is not None:
            last = -1 if self.cell_index is None else self.cell_index
            for index, cell in enumerate(self.notebook.cells[: last + 1]):
                if cell.cell_type != "code":
                    continue
                cells.append(
                    {
                        "index": index,
                        "source": cell.source,
                        "execution_count": cell.get("execution_count"),
                        "outputs": [_plain_output(o) for o in cell.get("outputs", [])],
                    }
                )
        return {**self.as_json(), "cells": cells}


def _start_env(start_context: Any, path: str) -> dict[str, str]:
    """The environment of a kernel started with ``start_context`` (the server's own, plus
    the context as JSON); :class:`AppFailure` when it is not a JSON object of bounded size."""
    if not isinstance(start_context, dict):
        raise AppFailure(
            "ErrorOnLaunch",
            f"A starting context is an object, not {type(start_context).__name__}",
            notebook_path=path,
        )
    try:
        text = json.dumps(start_context, allow_nan=False)
    except (TypeError, ValueError) as error:
        raise AppFailure(
            "ErrorOnLaunch", f"The starting context is not JSON: {error}", notebook_path=path
        ) from None
    if len(text.encode()) > MAX_START_CONTEXT_BYTES:
        raise AppFailure(
            "ErrorOnLaunch",
            f"The starting context is larger than {MAX_START_CONTEXT_BYTES} bytes as JSON",
            notebook_path=path,
        )
    return {**os.environ, ENV_START_CONTEXT: text}


def _plain_output(output: Any) -> dict[str, Any]:
    """An output as JSON, tracebacks without terminal colours."""
    plain = dict(output)
    if plain.get("output_type") == "error":
        plain["traceback"] = [_ANSI.sub("", line) for line in plain.get("traceback", [])]
    return json.loads(json.dumps(plain, default=str))


class NotebookApps(LoggingConfigurable):
    """The app directory of a Jupyter server and the notebooks it started headless."""

    start_timeout = Float(
        30.0,
        help="Seconds a notebook started for an intent (or method) has, from the start of its "
        "kernel, to register the handler; then the raiser gets AppTimeout.",
    ).tag(config=True)
    idle_timeout = Float(
        1800.0,
        help="Seconds without any invocation delivered to a notebook started headless after "
        "which it is stopped (0: never).",
    ).tag(config=True)
    idle_check_interval = Float(
        5.0, help="Seconds between two looks for idle notebooks started headless."
    ).tag(config=True)
    rescan_interval = Float(
        2.0,
        help="A listing older than this many seconds is refreshed from the files (only "
        "notebooks whose size or mtime changed are read again).",
    ).tag(config=True)
    max_depth = Int(4, help="Folders deeper than this below the root are not searched.").tag(
        config=True
    )
    max_files = Int(2000, help="Most notebooks one scan of the root looks at.").tag(config=True)
    max_notebook_bytes = Int(
        16 * 1024 * 1024, help="A notebook larger than this is not read for its metadata."
    ).tag(config=True)
    registration_poll = Float(
        0.02, help="Seconds between two looks at the hub while waiting for a handler."
    ).tag(config=True)
    max_watch = Float(
        600.0,
        help="Most seconds one watch of a started notebook (JupyterInterop.Apps.Watch) waits "
        "for it to stop; a longer wait asked for is cut to this.",
    ).tag(config=True)
    kept_finished = Int(
        20, help="Stopped or failed starts kept for their output (newest first)."
    ).tag(config=True)

    root_dir = AnyTrait(help="The server's root directory (the contents root).")
    kernel_manager = AnyTrait(help="The server's MappingKernelManager.")
    hub_views = AnyTrait(help="The hub's views (hub/views.py:HubViews).")

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.directory = AppDirectory(
            os.path.abspath(self.root_dir),
            max_depth=self.max_depth,
            max_files=self.max_files,
            max_notebook_bytes=self.max_notebook_bytes,
        )
        self._entries: list[AppEntry] = []
        self._scanned = 0.0
        self._scanning: asyncio.Future[list[AppEntry]] | None = None
        self._running: dict[str, HeadlessNotebook] = {}
        self._finished: deque[HeadlessNotebook] = deque(maxlen=max(1, self.kept_finished))
        self._launching: dict[str, asyncio.Future[HeadlessNotebook]] = {}
        self._idle_task: asyncio.Task[None] | None = None

    # ------------------------------------------------------------------ the directory

    async def entries(self) -> list[AppEntry]:
        """The directory, rescanned (off the loop) when older than ``rescan_interval``;
        concurrent callers share one scan."""
        if time.monotonic() - self._scanned < self.rescan_interval:
            return self._entries
        if self._scanning is None:
            self._scanning = asyncio.ensure_future(asyncio.to_thread(self.directory.scan))
            scanning = self._scanning
            try:
                self._entries = await scanning
                self._scanned = time.monotonic()
            finally:
                self._scanning = None
            return self._entries
        return await asyncio.shield(self._scanning)

    async def listing(self) -> dict[str, Any]:
        """What ``GET interop/api/apps`` returns: each notebook with its running kernels."""
        by_path: dict[str, list[HeadlessNotebook]] = {}
        for running in self._running.values():
            by_path.setdefault(running.path, []).append(running)
        apps = []
        for entry in await self.entries():
            item = entry.as_json()
            item["running"] = [r.as_json() for r in by_path.get(entry.path, [])]
            apps.append(item)
        return {
            "apps": apps,
            "start_timeout": self.start_timeout,
            "truncated": self.directory.truncated,
        }

    def notebook_of(self, kernel_id: str) -> str | None:
        """The notebook path of a kernel started here (``None`` for any other kernel)."""
        running = self._running.get(kernel_id)
        return None if running is None else running.path

    def find(self, kernel_id: str) -> HeadlessNotebook | None:
        """A kernel started here, running or kept after it stopped."""
        running = self._running.get(kernel_id)
        if running is not None:
            return running
        return next((r for r in self._finished if r.kernel_id == kernel_id), None)

    async def _entry(
        self, path: str | None, intent: str | None, context_type: str | None, method: str | None
    ) -> AppEntry:
        entries = await self.entries()
        if path is not None:
            found = [e for e in entries if path in (e.path, e.name)]
            if not found:
                raise AppFailure(
                    "TargetAppUnavailable",
                    f"No notebook {path!r} in the app directory",
                    notebook_path=path,
                )
            entry = found[0]
            if entry.error is not None:
                raise AppFailure(
                    "ErrorOnLaunch",
                    f"{entry.path}: {entry.error}",
                    notebook_path=entry.path,
                )
            if intent is not None and not entry.handles(intent, context_type):
                raise AppFailure(
                    "TargetAppUnavailable",
                    f"{entry.path} does not declare the intent {intent!r}"
                    + (f" for {context_type!r}" if context_type else ""),
                    notebook_path=entry.path,
                )
            return entry
        if intent is not None:
            fitting = [e for e in entries if e.handles(intent, context_type)]
        elif method is not None:
            fitting = [e for e in entries if e.error is None and method in e.methods]
        else:
            raise AppFailure("NoAppsFound", "Name a notebook, an intent or a method to start")
        if not fitting:
            raise AppFailure(
                "NoAppsFound",
                f"No notebook in the app directory declares {intent or method!r}",
            )
        return fitting[0]

    # ------------------------------------------------------------------ starting

    async def start(
        self,
        *,
        path: str | None = None,
        intent: str | None = None,
        context_type: str | None = None,
        method: str | None = None,
        new: bool = False,
        wait: bool = True,
        start_context: dict[str, Any] | None = None,
    ) -> HeadlessNotebook:
        """A running instance of the notebook ``path`` (or of the first that declares the
        intent or method), started unless one runs or is starting (``new``: always started).
        With an intent or method and ``wait``, returns once its handler is registered on the
        hub; :class:`AppFailure` otherwise. A ``start_context`` is handed to a new kernel
        (always started then) in its environment (``ENV_START_CONTEXT``), as io.Connect hands
        an app its starting context."""
        entry = await self._entry(path, intent, context_type, method)
        env = None if start_context is None else _start_env(start_context, entry.path)
        new = new or env is not None
        running = None if new else self._reusable(entry.path)
        if running is None:
            launching = None if new else self._launching.get(entry.path)
            if launching is not None:
                running = await asyncio.shield(launching)
            else:
                running = await self._launch_once(entry, remember=not new, env=env)
        running.last_activity = time.time()
        wanted = INTENT_METHOD_PREFIX + intent if intent else method
        if wanted and wait:
            await self._wait_for(running, wanted)
            running.last_activity = time.time()
        return running

    def _reusable(self, path: str) -> HeadlessNotebook | None:
        for running in self._running.values():
            if running.path == path and running.state in ("starting", "running"):
                return running
        return None

    async def _launch_once(
        self, entry: AppEntry, remember: bool, env: dict[str, str] | None = None
    ) -> HeadlessNotebook:
        future: asyncio.Future[HeadlessNotebook] = asyncio.get_running_loop().create_future()
        future.add_done_callback(lambda f: f.cancelled() or f.exception())  # always retrieved
        if remember:
            self._launching[entry.path] = future
        try:
            running = await self._launch(entry, env)
        except BaseException as error:
            future.set_exception(error)
            raise
        else:
            future.set_result(running)
            return running
        finally:
            if self._launching.get(entry.path) is future:
                del self._launching[entry.path]

    async def _launch(self, entry: AppEntry, env: dict[str, str] | None) -> HeadlessNotebook:
        full = os.path.join(self.directory.root, *entry.path.split("/"))
        try:
            notebook = await asyncio.to_thread(nbformat.read, full, as_version=4)
        except Exception as error:
            raise AppFailure(
                "ErrorOnLaunch", f"{entry.path} cannot be read: {error}", notebook_path=entry.path
            ) from error
        spec = notebook.metadata.get("kernelspec") or {}
        kernel_name = spec.get("name") if isinstance(spec.get("name"), str) else None
        folder = posixpath.dirname(entry.path)
        try:
            kwargs: dict[str, Any] = {"path": folder}
            if kernel_name:
                kwargs["kernel_name"] = kernel_name
            if env is not None:
                kwargs["env"] = env
            kernel_id = await ensure_async(self.kernel_manager.start_kernel(**kwargs))
        except Exception as error:
            raise AppFailure(
                "ErrorOnLaunch",
                f"The kernel of {entry.path} did not start: {error}",
                notebook_path=entry.path,
            ) from error
        running = HeadlessNotebook(kernel_id, entry.path, notebook=notebook)
        self._running[kernel_id] = running
        running.task = asyncio.ensure_future(self._execute(running, entry, os.path.dirname(full)))
        self.log.info("Interop: started %s headless (kernel %s)", entry.path, kernel_id)
        self._watch_idle()
        return running

    async def _execute(self, running: HeadlessNotebook, entry: AppEntry, cwd: str) -> None:
        """Run the notebook's code cells in order (as nbclient does), after joining its
        starting channel; a cell that raises fails the start."""
        client = NotebookClient(
            running.notebook,
            km=self.kernel_manager.get_kernel(running.kernel_id),
            timeout=None,
            allow_errors=False,
            resources={"metadata": {"path": cwd}},
        )
        try:
            await client.async_start_new_kernel_client()
            running.kernel_ready = time.time()
            if entry.channel:
                await self._join_channel(client, running, entry.channel)
            for index, cell in enumerate(running.notebook.cells):
                if cell.cell_type != "code":
                    continue
                running.cell_index = index
                await client.async_execute_cell(cell, index)
            if running.state == "starting":
                running.state = "running"
        except CellExecutionError as error:
            running.failure = self._cell_failure(running, error)
        except AppFailure as failure:
            running.failure = failure
        except asyncio.CancelledError:
            raise
        except Exception as error:
            if running.state == "stopped":
                return  # stopped while its cells ran (a kernel that dies then is no failure)
            running.failure = AppFailure(
                "ErrorOnLaunch",
                f"{running.path} could not be run: {error}",
                notebook_path=running.path,
            )
        finally:
            if client.kc is not None:
                client.kc.stop_channels()
        if running.failure is not None and running.state != "stopped":
            self.log.warning("Interop: %s failed: %s", running.path, running.failure)
            running.state = "failed"
            await self._shut_down(running)

    async def _join_channel(
        self, client: NotebookClient, running: HeadlessNotebook, channel: str
    ) -> None:
        """Join the notebook's starting channel before its cells run (code of ours, not a
        cell of the notebook: its output is not kept)."""
        kernel_client: Any = client.kc  # the kernel manager's async client
        code = (
            "import jupyter_interop as _ji\n"
            f"_ji.connect().channels.join({json.dumps(channel)})\ndel _ji"
        )
        reply = await ensure_async(
            kernel_client.execute_interactive(
                code,
                store_history=False,
                output_hook=lambda message: None,
                timeout=self.start_timeout,
            )
        )
        content = reply.get("content", {})
        if content.get("status") != "ok":
            raise AppFailure(
                "ErrorOnLaunch",
                f"{running.path} could not join its channel {channel!r}: "
                f"{content.get('ename')}: {content.get('evalue')}",
                notebook_path=running.path,
                traceback="\n".join(_ANSI.sub("", t) for t in content.get("traceback", [])),
            )

    @staticmethod
    def _cell_failure(running: HeadlessNotebook, error: CellExecutionError) -> AppFailure:
        index = running.cell_index
        cell = running.notebook.cells[index] if index is not None else None
        traceback = ""
        for output in cell.get("outputs", []) if cell is not None else []:
            if output.get("output_type") == "error":
                traceback = "\n".join(_ANSI.sub("", line) for line in output.get("traceback", []))
        return AppFailure(
            "ErrorOnLaunch",
            f"{running.path}: cell {index} raised {error.ename}: {error.evalue}",
            notebook_path=running.path,
            cell_index=index,
            cell_source=None if cell is None else cell.source,
            traceback=traceback or _ANSI.sub("", str(error)),
            ename=error.ename,
            evalue=error.evalue,
        )

    async def _wait_for(self, running: HeadlessNotebook, method_name: str) -> str:
        """The id of the kernel's peer once it registered ``method_name``."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.start_timeout - (time.time() - running.started)
        while True:
            if running.state == "stopped":
                raise AppFailure(
                    "ErrorOnLaunch",
                    f"{running.path} was stopped before it registered {method_name!r}",
                    notebook_path=running.path,
                )
            if running.failure is not None:
                raise running.failure
            for peer in self.hub_views.kernel_peers(running.kernel_id):
                if method_name in peer["methods"]:
                    running.peer_id = str(peer["peer_id"])
                    return running.peer_id
            if loop.time() >= deadline:
                ran = "ran every cell" if running.state == "running" else "was still running"
                raise AppFailure(
                    "AppTimeout",
                    f"{running.path} did not register {method_name!r} within "
                    f"{self.start_timeout:g} s (it {ran})",
                    notebook_path=running.path,
                )
            await asyncio.sleep(self.registration_poll)

    async def watch(self, kernel_id: str, timeout: float) -> HeadlessNotebook:
        """The notebook started in ``kernel_id`` once it stopped, or after ``timeout`` seconds
        (at most ``max_watch``) if it still runs; its :class:`AppFailure` when it failed:
        whoever started it for a reason of its own (FDC3's ``open``) hears of a failure when
        it happens."""
        running = self.find(kernel_id)
        if running is None:
            raise AppFailure("TargetAppUnavailable", f"No notebook app ran in {kernel_id!r}")
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(running.ended.wait(), min(max(0.0, timeout), self.max_watch))
        if running.failure is not None:
            raise running.failure
        return running

    # ------------------------------------------------------------------ stopping

    async def stop(self, kernel_id: str) -> HeadlessNotebook | None:
        """Stop a notebook started here (``None``: no such kernel, or it stopped already)."""
        running = self._running.get(kernel_id)
        if running is None or running.state == "stopped":
            return None
        if running.state != "failed":
            running.state = "stopped"
        if running.task is not None and not running.task.done():
            running.task.cancel()
        await self._shut_down(running)
        return running

    async def _shut_down(self, running: HeadlessNotebook) -> None:
        """Stop the kernel, then forget it (it is listed, not running, until it stopped)."""
        if running.kernel_id in self.kernel_manager:
            try:
                await ensure_async(self.kernel_manager.shutdown_kernel(running.kernel_id))
            except Exception:
                self.log.exception("Interop: could not stop kernel %s", running.kernel_id)
        if self._running.pop(running.kernel_id, None) is not None:
            self._finished.appendleft(running)
        running.ended.set()
        self.log.info("Interop: %s (kernel %s) %s", running.path, running.kernel_id, running.state)

    def _watch_idle(self) -> None:
        if self._idle_task is None or self._idle_task.done():
            self._idle_task = asyncio.ensure_future(self._reap_idle())

    async def _reap_idle(self) -> None:
        """Stop the notebooks no invocation reached for ``idle_timeout``; forget kernels
        stopped elsewhere (the kernels API, JupyterLab)."""
        while self._running:
            await asyncio.sleep(self.idle_check_interval)
            now = time.time()
            for running in list(self._running.values()):
                if running.state == "stopped":
                    continue  # being stopped
                if running.kernel_id not in self.kernel_manager:
                    running.state = "stopped"
                    await self._shut_down(running)
                    continue
                peers = self.hub_views.kernel_peers(running.kernel_id)
                count = sum(p["invocations"] for p in peers)
                if count != running.invocations:
                    running.invocations = count
                    running.last_activity = now
                # a notebook still starting is not idle before a start could have timed out
                since = running.last_activity
                if running.state == "starting":
                    since = max(since, running.started + self.start_timeout)
                if self.idle_timeout > 0 and now - since >= self.idle_timeout:
                    self.log.info("Interop: %s idle for %g s", running.path, self.idle_timeout)
                    await self.stop(running.kernel_id)

    async def close(self) -> None:
        """Stop watching; the server stops the kernels itself."""
        if self._idle_task is not None:
            self._idle_task.cancel()
        for running in list(self._running.values()):
            if running.task is not None:
                running.task.cancel()
