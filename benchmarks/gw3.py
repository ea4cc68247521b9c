"""A minimal raw GW3 client on ``websockets`` (asyncio), to measure the hub by itself.

Only what the scenarios need: ``hello`` with an access token, ``join`` of agm, methods
(register / call / answer invokes with ``yield``), streams (subscribe / accept / publish) and
contexts (create / subscribe / update). No reconnect, no discovery bookkeeping: this is a
measuring instrument, not the project's client.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from websockets.asyncio.client import ClientConnection, connect

__all__ = ["Gw3Client", "Gw3Error"]

Message = dict[str, Any]
InvokeHandler = Callable[[Message], Any]


class Gw3Error(RuntimeError):
    pass


class Gw3Client:
    """One GW3 connection. Construct with :meth:`open`."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.peer_id = ""
        self._ids = itertools.count(1)
        self._pending: dict[Any, asyncio.Future[Message]] = {}
        self.methods: dict[str, InvokeHandler] = {}
        #: (server peer id, method name) -> method id, from methods-added
        self.remote_methods: dict[tuple[str, str], str] = {}
        self._method_waiters: list[tuple[str, asyncio.Future[tuple[str, str]]]] = []
        self.on_event: Callable[[Message], None] | None = None
        self.on_add_interest: Callable[[Message], Awaitable[None] | None] | None = None
        self.on_context_updated: Callable[[Message], None] | None = None
        self._reader: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Future[Any]] = set()
        self.closed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        #: bytes of the frames received (their payloads, without the WebSocket framing)
        self.bytes_in = 0

    # ------------------------------------------------------------------ connection

    @classmethod
    async def open(
        cls, url: str, token: str, application: str = "bench", join_agm: bool = True
    ) -> Gw3Client:
        # (a generous opening timeout: a join storm keeps a busy hub from answering at once)
        ws = await connect(
            url, compression=None, max_size=None, ping_interval=None, open_timeout=120
        )
        client = cls(ws)
        client._reader = asyncio.ensure_future(client._read())
        welcome = await client.request(
            {
                "domain": "global",
                "type": "hello",
                "identity": {"application": application},
                "authentication": {"method": "access-token", "token": token},
            }
        )
        client.peer_id = welcome["peer_id"]
        if join_agm:
            await client.request({"domain": "global", "type": "join", "destination": "agm"})
        return client

    async def close(self) -> None:
        await self.ws.close()
        if self._reader is not None:
            self._reader.cancel()

    def _next_id(self) -> str:
        return str(next(self._ids))

    async def send(self, message: Message) -> None:
        await self.ws.send(orjson.dumps(message).decode())

    async def request(self, message: Message) -> Message:
        request_id = self._next_id()
        message["request_id"] = request_id
        if "peer_id" not in message and self.peer_id:
            message["peer_id"] = self.peer_id
        future: asyncio.Future[Message] = asyncio.get_running_loop().create_future()
        self._pending[request_id] = future
        await self.send(message)
        reply = await future
        if reply.get("type") == "error":
            raise Gw3Error(f"{reply.get('reason_uri')}: {reply.get('reason')}")
        return reply

    async def _read(self) -> None:
        try:
            async for frame in self.ws:
                self.bytes_in += len(frame)
                msg = orjson.loads(frame)
                if msg.get("type") == "invoke":
                    await self._invoke(msg)  # answered inline: no task per call
                else:
                    self._dispatch(msg)
        except Exception as error:  # connection gone: fail every waiter
            for future in self._pending.values():
                if not future.done():
                    future.set_exception(Gw3Error(f"connection lost: {error!r}"))
        finally:
            if not self.closed.done():
                self.closed.set_result(None)
            for future in self._pending.values():
                if not future.done():
                    future.set_exception(Gw3Error("connection closed"))

    def _dispatch(self, msg: Message) -> None:
        mtype = msg.get("type")
        if mtype == "event":
            if self.on_event is not None:
                self.on_event(msg)
            return
        if mtype == "context-updated":
            if self.on_context_updated is not None:
                self.on_context_updated(msg)
            return
        if mtype == "methods-added":
            server = msg.get("server_id", "")
            for method in msg.get("methods") or ():
                key = (server, method.get("name"))
                self.remote_methods[key] = str(method.get("id"))
            self._wake_method_waiters()
            return
        if mtype == "add-interest":
            if self.on_add_interest is not None:
                result = self.on_add_interest(msg)
                if result is not None:
                    self._spawn(result)
            return
        request_id = msg.get("request_id")
        if request_id is not None:
            future = self._pending.pop(request_id, None)
            if future is not None and not future.done():
                future.set_result(msg)

    # ------------------------------------------------------------------ methods

    async def register(
        self, name: str, handler: InvokeHandler | None = None, streaming: bool = False
    ) -> str:
        method_id = str(len(self.methods))
        self.methods[method_id] = handler or (lambda msg: msg.get("arguments_kv") or {})
        await self.request(
            {
                "domain": "agm",
                "type": "register",
                "methods": [
                    {
                        "id": method_id,
                        "name": name,
                        "flags": {"metadata": {}, "streaming": streaming},
                        "object_types": [],
                    }
                ],
            }
        )
        return method_id

    async def _invoke(self, msg: Message) -> None:
        handler = self.methods.get(str(msg.get("method_id")))
        result = handler(msg) if handler is not None else {}
        frame = orjson.dumps(
            {
                "domain": "agm",
                "type": "yield",
                "peer_id": self.peer_id,
                "invocation_id": msg["invocation_id"],
                "request_id": self._next_id(),
                "result": result,
            }
        ).decode()
        await self.ws.send(frame)

    def _spawn(self, awaitable: Awaitable[Any]) -> None:
        task = asyncio.ensure_future(awaitable)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _wake_method_waiters(self) -> None:
        for name, future in list(self._method_waiters):
            for (server, method_name), method_id in self.remote_methods.items():
                if method_name == name and server != self.peer_id and not future.done():
                    future.set_result((server, method_id))
                    self._method_waiters.remove((name, future))
                    break

    async def find_method(self, name: str, timeout: float = 10.0) -> tuple[str, str]:
        """(server peer id, method id) of a method another peer registered."""
        future: asyncio.Future[tuple[str, str]] = asyncio.get_running_loop().create_future()
        self._method_waiters.append((name, future))
        self._wake_method_waiters()
        return await asyncio.wait_for(future, timeout)

    async def call(self, server_id: str, method_id: str, args: Message) -> Message:
        reply = await self.request(
            {
                "domain": "agm",
                "type": "call",
                "server_id": server_id,
                "method_id": method_id,
                "arguments_kv": args,
                "context": {},
            }
        )
        result: Message = reply.get("result") or {}
        return result

    # ------------------------------------------------------------------ streams

    async def subscribe(self, server_id: str, method_id: str, args: Message | None = None) -> str:
        reply = await self.request(
            {
                "domain": "agm",
                "type": "subscribe",
                "server_id": server_id,
                "method_id": method_id,
                "arguments_kv": args or {},
            }
        )
        return str(reply["subscription_id"])

    async def accept(self, subscription_id: str, stream_id: str = "main") -> None:
        await self.send(
            {
                "domain": "agm",
                "type": "accepted",
                "peer_id": self.peer_id,
                "subscription_id": subscription_id,
                "stream_id": stream_id,
            }
        )

    def publish_frame(self, data: Any, stream_id: str = "main") -> str:
        return orjson.dumps(
            {
                "domain": "agm",
                "type": "publish",
                "peer_id": self.peer_id,
                "stream_id": stream_id,
                "data": data,
            }
        ).decode()

    # ------------------------------------------------------------------ contexts

    async def create_context(self, name: str, data: Message) -> str:
        reply = await self.request(
            {
                "domain": "global",
                "type": "create-context",
                "name": name,
                "data": data,
                "lifetime": "retained",
            }
        )
        return str(reply["context_id"])

    async def subscribe_context(self, context_id: str) -> Message:
        return await self.request(
            {"domain": "global", "type": "subscribe-context", "context_id": context_id}
        )

    async def update_context(self, context_id: str, updated: Message) -> Message:
        return await self.request(
            {
                "domain": "global",
                "type": "update-context",
                "context_id": context_id,
                "delta": {"updated": updated},
            }
        )
