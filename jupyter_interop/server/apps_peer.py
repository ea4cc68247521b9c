"""The app directory as a GW3 peer of the server's own hub (docs/INTENTS.md).

Any peer (a notebook, a script, a JS app) asks for a notebook to be started by invoking the
methods of ``protocol/wire.py`` (``APPS_LIST_METHOD``, ``APPS_START_METHOD``,
``APPS_STOP_METHOD``, ``APPS_WATCH_METHOD``) on this peer, exactly as it invokes any other
method. It connects over the server's own gateway WebSocket with the interop token, so the
hub needs nothing of its own for it. A failed start (or watch) is a GW3 ``error`` whose
context names FDC3's error (``APP_ERROR_KEY``) and carries the cell and its traceback.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from tornado.websocket import WebSocketClientConnection, websocket_connect

from ..protocol import Reason, messages
from ..protocol.wire import (
    ACCESS_TOKEN_AUTH_METHOD,
    AGM_DOMAIN,
    APPS_APPLICATION,
    APPS_LIST_METHOD,
    APPS_START_METHOD,
    APPS_STOP_METHOD,
    APPS_WATCH_METHOD,
    ERROR_TYPE,
    INVOKE_TYPE,
    WELCOME_TYPE,
)
from .apps import AppFailure, NotebookApps

__all__ = ["AppsPeer"]

Message = dict[str, Any]
Served = Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]


def _text(arguments: dict[str, Any], key: str) -> str | None:
    value = arguments.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        raise AppFailure("NoAppsFound", f"{key!r} must be a non-empty string")
    return value


class AppsPeer:
    """Serves the app methods on the hub at ``url`` until :meth:`close` (reconnects if the
    connection drops while the server runs)."""

    def __init__(self, apps: NotebookApps, url: str, token: str, log: logging.Logger) -> None:
        self.apps = apps
        self.url = url
        self.token = token
        self.log = log
        self.peer_id: str | None = None
        self._ids = itertools.count(1)
        self._socket: WebSocketClientConnection | None = None
        self._task: asyncio.Task[None] | None = None
        self._serving: set[asyncio.Task[None]] = set()
        self._closed = False
        self.ready = asyncio.Event()
        self._methods: dict[str, Served] = {
            "1": self._list,
            "2": self._start,
            "3": self._stop,
            "4": self._watch,
        }

    def start(self) -> None:
        self._task = asyncio.ensure_future(self._run())

    async def _run(self) -> None:
        delay = 0.1
        while not self._closed:
            try:
                await self._session()
                delay = 0.1
            except asyncio.CancelledError:
                raise
            except Exception as error:
                self.log.info("Interop apps peer: %s; reconnecting in %g s", error, delay)
            self.ready.clear()
            if self._closed:
                return
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)

    async def _session(self) -> None:
        socket = self._socket = await websocket_connect(self.url)
        try:
            self._send(
                messages.hello(
                    {"application": APPS_APPLICATION},
                    {"method": ACCESS_TOKEN_AUTH_METHOD, "token": self.token},
                )
            )
            while True:
                frame = await socket.read_message()
                if frame is None:
                    raise ConnectionError("the hub closed the connection")
                message = orjson.loads(frame)
                if isinstance(message, dict):
                    self._receive(message)
        finally:
            socket.close()
            self._socket = None

    def _send(self, message: Message) -> None:
        socket = self._socket
        if socket is None:
            return
        message.setdefault("request_id", str(next(self._ids)))
        if self.peer_id is not None:
            message.setdefault("peer_id", self.peer_id)
        socket.write_message(orjson.dumps(message).decode())

    def _receive(self, message: Message) -> None:
        mtype = message.get("type")
        if mtype == WELCOME_TYPE:
            self.peer_id = message.get("peer_id")
            self._send(messages.join(AGM_DOMAIN))
            methods = [
                {"id": 1, "name": APPS_LIST_METHOD, "description": "The notebook app directory"},
                {"id": 2, "name": APPS_START_METHOD, "description": "Start a notebook headless"},
                {"id": 3, "name": APPS_STOP_METHOD, "description": "Stop a headless notebook"},
                {"id": 4, "name": APPS_WATCH_METHOD, "description": "Wait for one to stop"},
            ]
            self._send(messages.register(methods))
            self.ready.set()
        elif mtype == INVOKE_TYPE:
            task = asyncio.ensure_future(self._serve(message))
            self._serving.add(task)
            task.add_done_callback(self._serving.discard)
        elif mtype == ERROR_TYPE:
            self.log.warning("Interop apps peer: the hub refused: %s", message.get("reason"))

    async def _serve(self, invoke: Message) -> None:
        invocation_id = invoke.get("invocation_id")
        served = self._methods.get(str(invoke.get("method_id")))
        arguments = invoke.get("arguments_kv")
        arguments = arguments if isinstance(arguments, dict) else {}
        try:
            if served is None:
                raise AppFailure("NoAppsFound", "Unknown method")
            result = await served(arguments)
        except AppFailure as failure:
            self._send(
                messages.invocation_error(
                    invocation_id, Reason.CLIENT_ERROR, str(failure), failure.as_json()
                )
            )
        except Exception as error:
            self.log.exception("Interop apps peer: %s failed", invoke.get("method_id"))
            reason = f"{type(error).__name__}: {error}"
            self._send(messages.invocation_error(invocation_id, Reason.CLIENT_ERROR, reason, {}))
        else:
            self._send(messages.yield_result(invocation_id, result))

    async def _list(self, arguments: dict[str, Any]) -> dict[str, Any]:
        return await self.apps.listing()

    async def _start(self, arguments: dict[str, Any]) -> dict[str, Any]:
        intent = _text(arguments, "intent")
        method = _text(arguments, "method")
        running = await self.apps.start(
            path=_text(arguments, "path"),
            intent=intent,
            context_type=_text(arguments, "context_type"),
            method=method,
            new=arguments.get("new") is True,
            start_context=arguments.get("start_context"),
        )
        return running.as_json()

    async def _stop(self, arguments: dict[str, Any]) -> dict[str, Any]:
        kernel_id = _text(arguments, "kernel_id")
        stopped = None if kernel_id is None else await self.apps.stop(kernel_id)
        if stopped is None:
            raise AppFailure("TargetAppUnavailable", f"No notebook app runs in {kernel_id!r}")
        return stopped.as_json()

    async def _watch(self, arguments: dict[str, Any]) -> dict[str, Any]:
        kernel_id = _text(arguments, "kernel_id")
        timeout = arguments.get("timeout")
        if kernel_id is None or not isinstance(timeout, int | float) or isinstance(timeout, bool):
            raise AppFailure("TargetAppUnavailable", "Name a 'kernel_id' and a 'timeout' (seconds)")
        return (await self.apps.watch(kernel_id, float(timeout))).as_json()

    async def close(self) -> None:
        self._closed = True
        for task in list(self._serving):
            task.cancel()
        if self._socket is not None:
            self._socket.close()
        if self._task is not None:
            self._task.cancel()
