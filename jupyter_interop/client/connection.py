"""One GW3 connection to the hub, kept alive: hello, request/reply, events, reconnect, restore.

Everything here runs on the I/O loop (docs/ARCHITECTURE.md, "The client's I/O thread"). The
connection goes through generations: each successful ``hello`` starts one (a new peer id), and
when the socket drops the connection retries with a capped exponential backoff until the client
is closed. After a reconnect the services *restore* themselves in order (methods and streams
re-registered, subscriptions, contexts and bus topics re-subscribed, the channel re-joined)
before user calls proceed; then ``on_connected(True)`` fires.

What a call sees meanwhile: a request made while disconnected waits for the connection up to
its own timeout and then raises :class:`HubUnreachableError`; a request whose reply was still
awaited when the socket dropped fails at once with :class:`ConnectionLostError` (it is not
re-sent: an invocation is not idempotent). Fire-and-forget messages (stream pushes, bus
publishes) sent while disconnected are dropped and counted, as in io.Connect.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import os
import random
from collections import deque
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import orjson

from .._version import __version__
from ..protocol.errors import ProtocolError, Reason
from ..protocol.frames import CHUNK_MAGIC, ChunkAssembler, ChunkedFrame

# a batch frame the client sends is closed at these caps (limits.py: why below the hub's)
from ..protocol.limits import CLIENT_BATCH_MAX_BYTES as BATCH_MAX_BYTES
from ..protocol.limits import CLIENT_BATCH_MAX_MESSAGES as BATCH_MAX_MESSAGES
from ..protocol.limits import MAX_NESTING, frame_too_deep, too_deep_error
from ..protocol.wire import SHM_PROOF_TYPE
from .auth import authentication
from .codec import Codec, revive
from .discovery import HubAddress
from .errors import (
    AuthenticationError,
    ClientClosedError,
    ConnectionLostError,
    HubUnreachableError,
    InteropError,
    RemoteError,
)
from .instance import Instance
from .transport import LockedTransport, Transport, TransportClosed, open_transport

if TYPE_CHECKING:
    from .api import Interop

__all__ = ["Connection", "RequestTimeout", "default_identity"]

log = logging.getLogger("jupyter_interop.client")

Message = dict[str, Any]
Handler = Callable[[Message], None]

#: reply types that resolve a pending request (matched by ``request_id``)
_REPLY_TYPES = frozenset(
    {
        "success",
        "error",
        "result",
        "subscribed",
        "context-created",
        "subscribed-context",
        "welcome",
        "token",
    }
)
#: what an authentication failure refused, by ``hello`` method
_CREDENTIALS = {
    "access-token": "the token",
    "secret": "the username and password",
    "gateway-token": "the gateway token",
}


class Connection:
    """The client's link to the hub. Create with :meth:`start` (first connect must succeed)."""

    def __init__(
        self,
        client: Interop,
        address: HubAddress,
        rediscover: Callable[[], HubAddress] | None,
        identity: Message,
        extensions: Message,
    ) -> None:
        self.client = client
        self.loop = asyncio.get_running_loop()
        self.address = address
        self._rediscover = rediscover
        self.identity = identity
        self.requested_extensions = extensions
        self.codec = Codec(binary=False)
        self.ready = asyncio.Event()  # socket open, hello and joins done: internal requests
        self.connected = asyncio.Event()  # restored too: user requests
        self.closed = False
        self.generation = 0
        self.peer_id: str | None = None
        self.instance: Instance | None = None
        self.welcome: Message = {}
        self.extensions: Message = {}
        self.hub_id: str | None = None
        #: a gateway token issued to us after the last login (see auth.py)
        self._gateway_token: str | None = None
        self.last_error = ""
        #: messages that never reached the hub: sent while disconnected, or queued when the
        #: socket dropped (fire-and-forget ones are lost silently otherwise, as in io.Connect)
        self.dropped_sends = 0
        self._ids = itertools.count(1)
        self._pending: dict[
            str, tuple[asyncio.Future[Message], str, Callable[[Message], None] | None]
        ] = {}
        self._handlers: dict[tuple[str, str], list[Handler]] = {}
        #: (domain, type) -> handler of runs of consecutive such messages (see on_many)
        self._many: dict[tuple[str, str], Callable[[list[Message]], None]] = {}
        self._restorers: list[Callable[[], Awaitable[None]]] = []
        self._lost_hooks: list[Callable[[], None]] = []
        self._ready_hooks: list[Callable[[], None]] = []
        self._transport: Transport | None = None
        self._out: deque[bytes] = deque()
        #: large binary messages from the hub arriving as chunk frames
        self._chunks = ChunkAssembler()
        #: frames sent from other threads, not yet moved to ``_out`` (see send_threadsafe)
        self._incoming: deque[bytes] = deque()
        self._drain_scheduled = False
        self._wake = asyncio.Event()
        #: a large message is being written chunk by chunk (see write_now)
        self._writing_chunks = False
        self._tasks: set[asyncio.Task[Any]] = set()
        self._supervisor: asyncio.Task[None] | None = None
        self._reader: asyncio.Task[None] | None = None

    # ------------------------------------------------------------------ wiring

    def on(self, domain: str, mtype: str, handler: Handler) -> None:
        """Call ``handler(message)`` (on the loop) for every event of this domain and type."""
        self._handlers.setdefault((domain, mtype), []).append(handler)

    def on_many(self, domain: str, mtype: str, handler: Callable[[list[Message]], None]) -> None:
        """Call ``handler(messages)`` (on the loop) with each run of consecutive events of this
        domain and type: a batch frame of stream events is one call, not one per event."""
        key = (domain, mtype)
        if mtype in _REPLY_TYPES or key in self._handlers or key in self._many:
            raise ValueError(f"{domain}/{mtype} cannot take a run handler")
        self._many[key] = handler

    def add_restorer(self, restorer: Callable[[], Awaitable[None]]) -> None:
        """Run after every *re*connect, in registration order, before user calls proceed."""
        self._restorers.append(restorer)

    def add_ready_hook(self, hook: Callable[[], None]) -> None:
        """Called (on the loop) right after each ``welcome``: the new identity is known."""
        self._ready_hooks.append(hook)

    def add_lost_hook(self, hook: Callable[[], None]) -> None:
        """Called (on the loop) when the socket drops, before reconnecting."""
        self._lost_hooks.append(hook)

    def spawn(self, coro: Awaitable[Any]) -> asyncio.Task[Any]:
        """A background task owned by this connection (cancelled on close, errors logged)."""
        task: asyncio.Task[Any] = self.loop.create_task(coro)  # type: ignore[arg-type]
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            error = task.exception()
            if not isinstance(error, (ClientClosedError, HubUnreachableError)):
                log.error("Interop: background task failed", exc_info=error)

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        """First connection: fails loudly (unreachable hub, refused token) instead of retrying."""
        try:
            await self._connect_once(reconnect=False)
        except AuthenticationError:
            raise
        except (OSError, TimeoutError, TransportClosed, asyncio.TimeoutError) as error:
            raise HubUnreachableError(
                f"Cannot connect to the interop hub at {self.address.url} "
                f"(found through {self.address.source}): {_describe(error)}"
            ) from None
        except Exception as error:
            if isinstance(error, InteropError):
                raise
            raise HubUnreachableError(
                f"Cannot connect to the interop hub at {self.address.url} "
                f"(found through {self.address.source}): {_describe(error)}"
            ) from None
        self._supervisor = self.loop.create_task(self._supervise())

    async def _connect_once(self, reconnect: bool) -> None:
        settings = self.client
        timeout = settings.connect_timeout
        headers = {"User-Agent": f"jupyter_interop/{__version__}"}
        transport = await open_transport(
            self.address.url,
            headers,
            timeout,
            settings.max_message_size,
            settings.websocket_library,
        )
        self._transport = transport
        self._out.clear()
        reader = self._reader = self.loop.create_task(self._read(transport))
        writer = self.loop.create_task(self._write(transport))
        reader.add_done_callback(lambda _: writer.cancel())
        try:
            address = self.address
            hello: Message = {
                "domain": "global",
                "type": "hello",
                "identity": self.identity,
                "authentication": authentication(
                    address.token,
                    address.username,
                    address.password,
                    self._gateway_token or address.gateway_token,
                ),
                "extensions": {"jupyter_interop": self.requested_extensions},
            }
            try:
                welcome = await self.request(hello, timeout, "hello", internal=True, raw=True)
            except RemoteError as error:
                if error.reason_uri == Reason.AUTH_FAILURE:
                    what = _CREDENTIALS[hello["authentication"]["method"]]
                    raise AuthenticationError(
                        f"The interop hub at {address.url} refused {what} found through "
                        f"{address.source}: {error.reason}"
                    ) from None
                raise
            self._welcomed(welcome)
            if address.gateway_token:
                self.spawn(self._refresh_gateway_token(timeout))
            if self.client.ping_interval > 0:
                self.spawn(self._ping(self.generation, self.client.ping_interval))
            await asyncio.gather(
                *(
                    self.request(
                        {"domain": "global", "type": "join", "destination": domain},
                        timeout,
                        f"join {domain}",
                        internal=True,
                        raw=True,
                    )
                    for domain in ("agm", "bus")
                ),
                self.codec.enable_shared_memory(
                    self.extensions.get("shm"),
                    lambda proof: self.request(
                        proof, timeout, SHM_PROOF_TYPE, internal=True, raw=True
                    ),
                    self.client.shared_memory_threshold,
                ),
            )
            if reconnect:
                for restorer in self._restorers:
                    try:
                        await restorer()
                    except (ConnectionLostError, ClientClosedError):
                        raise
                    except Exception:
                        log.exception("Interop: restoring state after reconnect failed")
            self.connected.set()
        except BaseException:
            reader.cancel()
            self._lost(transport)
            await transport.close()
            raise
        self.client._fire_connected(reconnect)

    def _welcomed(self, welcome: Message) -> None:
        self.welcome = welcome
        self.peer_id = str(welcome.get("peer_id"))
        identity = welcome.get("resolved_identity") or {}
        self.instance = Instance.from_identity(identity, self.peer_id)
        accepted = (welcome.get("extensions") or {}).get("jupyter_interop") or {}
        self.extensions = accepted if isinstance(accepted, dict) else {}
        self.codec = Codec(
            binary=bool(self.extensions.get("binary")), tune_allocator=self.client.tune_allocator
        )
        info = (welcome.get("options") or {}).get("info") or {}
        self.hub_id = info.get("hub_id") if isinstance(info, dict) else None
        self.generation += 1
        self.ready.set()
        for hook in self._ready_hooks:
            try:
                hook()
            except Exception:
                log.exception("Interop: a connection hook failed")

    async def _refresh_gateway_token(self, timeout: float) -> None:
        """Gateway tokens are short-lived: keep a fresh one for the next login."""
        try:
            reply = await self.request(
                {"domain": "global", "type": "create-token"}, timeout, "create-token", internal=True
            )
        except InteropError as error:
            log.debug("Interop: no fresh gateway token: %s", error)
            return
        token = reply.get("token")
        if isinstance(token, str) and token:
            self._gateway_token = token

    async def _ping(self, generation: int, interval: float) -> None:
        """``ping`` every ``interval`` seconds while this connection generation lasts."""
        while not self.closed and self.generation == generation:
            await asyncio.sleep(interval)
            if self.generation != generation or not self.ready.is_set():
                return
            self.send({"domain": "global", "type": "ping"})

    async def _supervise(self) -> None:
        """Wait for the socket to drop, then reconnect with backoff, forever until closed."""
        initial = max(0.01, self.client.reconnect_delay)
        delay = initial
        while not self.closed:
            reader = self._reader
            if reader is not None:
                await asyncio.wait([reader])
            if self.closed:
                return
            self._lost(self._transport)
            attempt = 0
            while not self.closed:
                await asyncio.sleep(delay * random.uniform(0.8, 1.2))
                attempt += 1
                if self._rediscover is not None:
                    try:
                        self.address = self._rediscover()
                    except InteropError as error:
                        self.last_error = str(error)
                try:
                    await self._connect_once(reconnect=True)
                except asyncio.CancelledError:
                    raise
                except Exception as error:
                    self.last_error = _describe(error)
                    log.debug("Interop: reconnect attempt %d failed: %s", attempt, error)
                    delay = min(delay * 2, max(initial, self.client.reconnect_max_delay))
                    continue
                log.info(
                    "Interop: reconnected to %s after %d attempt(s)", self.address.url, attempt
                )
                delay = initial
                break

    def _lost(self, transport: Transport | None) -> None:
        """The socket of ``transport`` is gone: fail what waited on it, reset the services."""
        if transport is not None and transport is not self._transport:
            return
        was_ready = self.ready.is_set()
        self._transport = None
        self.ready.clear()
        self.connected.clear()
        # queued but never written: counted (a request among them also fails below)
        self.dropped_sends += len(self._out)
        self._out.clear()
        self._chunks.clear()  # a message cut off by the drop is never completed
        while self._incoming:  # sent from other threads while the socket went away
            self._incoming.popleft()
            self.dropped_sends += 1
        pending, self._pending = self._pending, {}
        for future, what, _ in pending.values():
            if not future.done():
                future.set_exception(
                    ConnectionLostError(
                        f"The connection to the interop hub at {self.address.url} was lost "
                        f"while waiting for the reply to {what}"
                    )
                )
        if was_ready:
            for hook in self._lost_hooks:
                try:
                    hook()
                except Exception:
                    log.exception("Interop: resetting state after a disconnect failed")
            self.client._fire_disconnected()

    async def close(self) -> None:
        """Close for good (idempotent): pending calls fail with :class:`ClientClosedError`."""
        if self.closed:
            return
        self.closed = True
        if self._supervisor is not None:
            self._supervisor.cancel()
        pending, self._pending = self._pending, {}
        for future, _, _ in pending.values():
            if not future.done():
                future.set_exception(ClientClosedError("The interop client was closed"))
        transport, self._transport = self._transport, None
        self.ready.set()  # wake waiters: they see ``closed`` and raise
        self.connected.set()
        if transport is not None:
            await transport.close()
        for task in [self._reader, *self._tasks]:
            if task is not None and not task.done():
                task.cancel()

    # ------------------------------------------------------------------ sending

    async def wait_connected(self, deadline: float, what: str, internal: bool = False) -> None:
        event = self.ready if internal else self.connected
        if not event.is_set():
            if self.closed:
                raise ClientClosedError("The interop client was closed")
            remaining = deadline - self.loop.time()
            try:
                if remaining <= 0:
                    raise TimeoutError
                await asyncio.wait_for(event.wait(), remaining)
            except (TimeoutError, asyncio.TimeoutError):
                raise HubUnreachableError(
                    f"The interop hub at {self.address.url} is unreachable: {what} waited "
                    f"for the connection until its timeout"
                    + (f" (last error: {self.last_error})" if self.last_error else "")
                ) from None
        if self.closed:
            raise ClientClosedError("The interop client was closed")

    async def request(
        self,
        message: Message,
        timeout: float,
        what: str,
        *,
        internal: bool = False,
        raw: bool = False,
        on_reply: Callable[[Message], None] | None = None,
    ) -> Message:
        """Send a request and return its reply; a GW3 ``error`` reply raises RemoteError.

        Waits for the connection first (up to ``timeout`` overall). ``raw`` skips that wait
        for the handshake itself. ``on_reply(reply)`` runs synchronously when a successful
        reply is read, before any later message: a subscription registers its id there, so
        an event that follows the reply in the same batch is not missed.
        """
        loop = self.loop
        deadline = loop.time() + timeout
        if not raw:
            await self.wait_connected(deadline, what, internal)
        elif self.closed:
            raise ClientClosedError("The interop client was closed")
        request_id = str(next(self._ids))
        message["request_id"] = request_id
        if message.get("type") != "hello":
            message["peer_id"] = self.peer_id
        frame = self.codec.encode(message)  # a SerializationError leaves nothing behind
        future: asyncio.Future[Message] = loop.create_future()
        self._pending[request_id] = (future, what, on_reply)
        timer = loop.call_later(max(0.0, deadline - loop.time()), _expire, future, what, timeout)
        try:
            if not self.write_now(frame, self.generation):
                self._enqueue(frame)
            return await future
        finally:
            timer.cancel()
            self._pending.pop(request_id, None)

    async def barrier(self, timeout: float) -> None:
        """One round trip to the hub: when it returns, every message the hub sent us before
        (announcements of contexts other peers just created) has been handled. Joining the
        metrics domain is the request: the hub accepts it and does nothing else."""
        await self.request(
            {"domain": "global", "type": "join", "destination": "metrics"}, timeout, "a barrier"
        )

    def send(self, message: Message) -> bool:
        """Fire and forget (on the loop). False when disconnected: the message is dropped."""
        if not self.ready.is_set() or self.closed:
            self.dropped_sends += 1
            return False
        message.setdefault("request_id", str(next(self._ids)))
        message["peer_id"] = self.peer_id
        self._enqueue(self.codec.encode(message))
        return True

    def send_threadsafe(self, message: Message) -> None:
        """Fire and forget from any thread; encoding errors are raised here, in the caller.

        Frames sent from other threads wait in ``_incoming``, which the writer empties itself
        (as batch frames when the hub accepted the ``batch`` extension); a burst of pushes
        wakes the loop once, not once per push.
        """
        if self.closed:
            raise ClientClosedError("The interop client was closed")
        if "request_id" not in message:
            message["request_id"] = str(next(self._ids))
        message["peer_id"] = self.peer_id
        self._post_incoming(self.codec.encode(message))

    def send_item_threadsafe(self, stream_id: str, data: bytes) -> None:
        """One stream item from any thread, its data already encoded JSON (the hub accepted
        the ``runs`` extension): consecutive items of one stream leave as one ``publish-many``
        message, which the hub routes once for all of them."""
        if self.closed:
            raise ClientClosedError("The interop client was closed")
        self._post_incoming((stream_id, data))

    def _post_incoming(self, item: Any) -> None:
        self._incoming.append(item)
        if not self._drain_scheduled:
            self._drain_scheduled = True
            self.client._io.call_soon(self._drain_incoming)

    def _drain_incoming(self) -> None:
        """On the loop, after sends from other threads: wake the writer, or drop (and count)
        what they sent while disconnected."""
        # reset first: a frame appended after this line schedules another call
        self._drain_scheduled = False
        if not self._incoming:
            return
        if not self.ready.is_set() or self.closed:
            self._drop_incoming()
            return
        self._wake.set()

    def _drop_incoming(self) -> None:
        incoming = self._incoming
        while incoming:
            incoming.popleft()
            self.dropped_sends += 1

    def _enqueue(self, frame: bytes) -> None:
        incoming = self._incoming
        if incoming:  # keep the order of what other threads sent before
            if not self.ready.is_set() or self.closed:
                self._drop_incoming()
            else:
                out = self._out
                while incoming:
                    out.append(incoming.popleft())
        self._out.append(frame)
        self._wake.set()

    async def _write(self, transport: Transport) -> None:
        """Send ``_out`` (frames from the loop), then ``_incoming`` (from other threads):
        everything in ``_out`` was sent before what waits in ``_incoming`` (``_enqueue``
        moves the latter first), so taking them in this order keeps the order of sends."""
        if isinstance(transport, LockedTransport):
            await self._write_direct(transport)
            return
        try:
            while True:
                queue = await self._next_queue()
                frame = queue.popleft()
                if frame.__class__ is tuple:
                    frame = _fold_items(frame, queue)
                if isinstance(frame, ChunkedFrame):  # a large message, in chunks
                    for chunk in frame:  # one chunk in memory at a time
                        await transport.send(chunk, True)
                    continue
                binary = frame[:1] != b"{"
                if not binary and queue and self.extensions.get("batch"):
                    frame = _take_batch(frame, queue)
                await transport.send(frame, binary)
        except TransportClosed:
            return

    async def _next_queue(self) -> deque[Any]:
        """The queue the writer takes its next frame from, once there is one: ``_out``
        (frames from the loop) before ``_incoming`` (from other threads, once ready)."""
        out = self._out
        incoming = self._incoming
        while True:
            if out:
                return out
            if incoming and self.ready.is_set():
                return incoming
            self._wake.clear()
            await self._wake.wait()

    async def _write_direct(self, transport: LockedTransport) -> None:
        """:meth:`_write` for the direct transport: taking a frame from the queue and writing
        it are one step under the transport's lock, so :meth:`write_now` sees every frame
        either still queued or already written."""
        lock = transport.lock
        batch = bool(self.extensions.get("batch"))
        try:
            while True:
                queue = await self._next_queue()
                chunked: ChunkedFrame | None = None
                with lock:
                    frame = queue.popleft()
                    if frame.__class__ is tuple:
                        frame = _fold_items(frame, queue)
                    if isinstance(frame, ChunkedFrame):
                        chunked = frame
                        self._writing_chunks = True
                    else:
                        binary = frame[:1] != b"{"
                        if not binary and queue and batch:
                            frame = _take_batch(frame, queue)
                        transport.write_locked(frame, binary)
                if chunked is None:
                    await transport.drained()
                    continue
                try:
                    for chunk in chunked:  # a large message, one chunk in memory at a time
                        await transport.send(chunk, True)
                finally:
                    self._writing_chunks = False
        except TransportClosed:
            return

    def write_now(self, frame: Any, generation: int) -> bool:
        """Write ``frame`` (a request, an invocation's reply) at once, from any thread, when
        nothing this connection queued is still waiting to be written (so it cannot overtake
        a message sent before it, by this thread or another): no writer wake-up, and a
        handler thread answers without waking the loop at all. False: queue it as usual
        (another transport, a backlog, a new connection, the handshake)."""
        transport = self._transport
        if (
            not isinstance(transport, LockedTransport)
            or isinstance(frame, ChunkedFrame)
            or generation != self.generation
            or not self.ready.is_set()
        ):
            return False
        with transport.lock:
            if self._out or self._incoming or self._writing_chunks:
                return False
            if transport is not self._transport:
                return False
            # TransportClosed: the reader fails what waits for a reply (see _lost)
            with contextlib.suppress(TransportClosed):
                transport.write_locked(frame, frame[:1] != b"{")
        return True

    # ------------------------------------------------------------------ receiving

    async def _read(self, transport: Transport) -> None:
        try:
            if isinstance(transport, LockedTransport):  # dispatched as soon as it is read
                transport.deliver_to(self._dispatch_logged)
                await transport.wait_closed()
            while True:
                self._dispatch_logged(await transport.recv())
        except TransportClosed as error:
            self.last_error = str(error)
        except OSError as error:
            self.last_error = _describe(error)
        finally:
            # at once, not when the supervisor gets to it: a restore in progress must fail
            self._lost(transport)

    def _dispatch_logged(self, frame: bytes | bytearray | str) -> None:
        try:
            self._dispatch(frame)
        except Exception:
            log.exception("Interop: could not handle a message from the hub")

    def _dispatch(self, frame: bytes | bytearray | str) -> None:
        if isinstance(frame, bytes) and frame[:4] == CHUNK_MAGIC:
            whole = self._chunks.feed(frame)
            if whole is None:
                return  # more chunks to come
            frame = whole
        first = frame[:1]
        if first in (b"[", "["):  # a batch frame: its messages in order
            items = orjson.loads(frame)
            if not isinstance(items, list):
                return
            if frame_too_deep(frame, MAX_NESTING + 1):  # (the array is one level more)
                items = [self._refused_if_too_deep(item) for item in items]
            if Codec.needs_revive(frame):
                items = revive(items)
            self._dispatch_batch(items)
            return
        if isinstance(frame, (bytes, bytearray)) and first != b"{":
            try:
                message = self.codec.decode_binary(frame)
            except ProtocolError as error:  # its header nests too deep (protocol/limits.py)
                self._refuse(error)
                return
        else:
            message = orjson.loads(frame)
            if frame_too_deep(frame):
                self._refuse(too_deep_error(message))
                return
            if Codec.needs_revive(frame):
                message = revive(message)
        if isinstance(message, dict):
            self._dispatch_message(message)

    def _refused_if_too_deep(self, item: Any) -> Any:
        """A batch item, or None (skipped) when it nests deeper than the limit."""
        try:
            too_deep = frame_too_deep(orjson.dumps(item))
        except orjson.JSONEncodeError:  # deeper than orjson writes
            too_deep = True
        if too_deep:
            self._refuse(too_deep_error(item))
            return None
        return item

    def _refuse(self, error: ProtocolError) -> None:
        """A message from the hub that breaks a protocol limit is not handled: the request it
        answers fails with the reason, anything else is logged."""
        message = error.request or {}
        request_id = message.get("request_id")
        entry = self._pending.get(str(request_id)) if request_id is not None else None
        if entry is not None and not entry[0].done():
            entry[0].set_exception(RemoteError(error.reason, error.reason_uri))
            return
        log.warning("Interop: ignored a %r message from the hub: %s", message.get("type"), error)

    def _dispatch_batch(self, items: list[Any]) -> None:
        """The messages of a batch frame in order; runs of consecutive messages that have a
        run handler (:meth:`on_many`) go to it in one call each."""
        many = self._many
        run: list[Message] = []
        run_type: Any = None
        run_domain: Any = None
        for item in items:
            if not isinstance(item, dict):
                continue
            mtype = item.get("type")
            domain = item.get("domain", "global")
            if run and mtype == run_type and domain == run_domain:
                run.append(item)
                continue
            if run:
                self._dispatch_run((run_domain, run_type), run)
                run = []
            if (domain, mtype) in many:
                run_type, run_domain = mtype, domain
                run = [item]
                continue
            try:
                self._dispatch_message(item)
            except Exception:
                log.exception("Interop: could not handle a message from the hub")
        if run:
            self._dispatch_run((run_domain, run_type), run)

    def _dispatch_run(self, key: Any, run: list[Message]) -> None:
        try:
            self._many[key](run)
        except Exception:
            log.exception("Interop: handling %s failed", key[1])

    def _dispatch_message(self, message: Message) -> None:
        mtype = message.get("type")
        request_id = message.get("request_id")
        if request_id is not None and mtype in _REPLY_TYPES:
            entry = self._pending.get(str(request_id))
            if entry is not None:
                future, _, on_reply = entry
                if not future.done():
                    if mtype == "error":
                        future.set_exception(_remote_error(message))
                    else:
                        if on_reply is not None:
                            on_reply(message)
                        future.set_result(message)
                return
        key = (message.get("domain", "global"), mtype)
        many = self._many.get(key)  # type: ignore[arg-type]
        if many is not None:
            self._dispatch_run(key, [message])
            return
        handlers = self._handlers.get(key)  # type: ignore[arg-type]
        if handlers:
            for handler in handlers:
                try:
                    handler(message)
                except Exception:
                    log.exception("Interop: handling %s failed", mtype)
        elif mtype == "error":
            log.info(
                "Interop: the hub refused a message: %s (%s)",
                message.get("reason"),
                message.get("reason_uri"),
            )


def _take_batch(first: bytes, out: deque[Any]) -> bytes:
    """``first`` and the JSON frames that follow it in ``out`` as one batch frame (a JSON
    array), up to :data:`BATCH_MAX_BYTES` / :data:`BATCH_MAX_MESSAGES`; a binary frame ends
    the batch, a run of stream items joins it as one ``publish-many``. Order is kept.
    (``out`` may be appended to by other threads meanwhile.)"""
    frames = [first]
    append = frames.append
    popleft = out.popleft
    size = len(first)
    room = BATCH_MAX_MESSAGES - 1
    while out and room:
        frame = out[0]
        if frame.__class__ is tuple:  # a run of stream items: folded in place, in order
            frame = _fold_items(popleft(), out)
            out.appendleft(frame)
        # JSON frames are bytes starting with "{" (123); anything else ends the batch
        if frame.__class__ is not bytes or frame[0] != 123:
            break
        size += len(frame) + 1
        if size > BATCH_MAX_BYTES:
            break
        append(popleft())
        room -= 1
    if len(frames) == 1:
        return first
    return b"[" + b",".join(frames) + b"]"


def _fold_items(first: tuple[str, bytes], out: deque[Any]) -> bytes:
    """``first`` and the items of the same stream that follow it in ``out`` as one message:
    ``publish`` for a lone item, else ``publish-many`` (up to the batch caps)."""
    stream_id, data = first
    datas = [data]
    size = len(data)
    while out and len(datas) < BATCH_MAX_MESSAGES:
        item = out[0]
        if item.__class__ is not tuple or item[0] != stream_id:
            break
        size += len(item[1]) + 1
        if size > BATCH_MAX_BYTES:
            break
        datas.append(out.popleft()[1])
    head = b'{"domain":"agm","stream_id":' + orjson.dumps(stream_id)
    if len(datas) == 1:
        return head + b',"type":"publish","data":' + data + b"}"
    return head + b',"type":"publish-many","items":[' + b",".join(datas) + b"]}"


def _remote_error(message: Message) -> RemoteError:
    return RemoteError(
        str(message.get("reason") or "error"),
        message.get("reason_uri"),
        message.get("context"),
    )


class RequestTimeout(HubUnreachableError):
    """No reply to a request within its timeout while connected (services refine it)."""


def _expire(future: asyncio.Future[Message], what: str, timeout: float) -> None:
    if not future.done():
        future.set_exception(
            RequestTimeout(f"The interop hub did not answer {what} within {timeout:g} s")
        )


def _describe(error: BaseException) -> str:
    text = str(error)
    if isinstance(error, (TimeoutError, asyncio.TimeoutError)) and not text:
        return "timed out"
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


def default_identity(application: str, kernel: str | None) -> Message:
    """What we claim in ``hello``; the hub resolves the rest (machine, user, notebook)."""
    identity: Message = {
        "application": application,
        "applicationName": application,
        "process": os.getpid(),
        "api": f"jupyter_interop/{__version__}",
        "language": "python",
    }
    if kernel:
        identity["kernelId"] = kernel
    return identity
