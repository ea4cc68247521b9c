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
import logging
import random
import threading
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from .._version import __version__
from ..protocol import messages
from ..protocol.chunks import ChunkedFrame
from ..protocol.errors import Reason

# batch frames and runs the client sends close at the client's caps (limits.py: why)
from ..protocol.framing import take_frame
from ..protocol.wire import (
    AGM_DOMAIN,
    BATCH_EXTENSION,
    BUS_DOMAIN,
    CREATE_TOKEN_TYPE,
    EXTENSIONS_KEY,
    GLOBAL_DOMAIN,
    HELLO_TYPE,
    METRICS_DOMAIN,
    PING_TYPE,
    SHM_EXTENSION,
    SHM_PROOF_TYPE,
)
from .auth import authentication, credentials
from .codec import Codec
from .core import ClientProtocol, Deadlines, PendingTable
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
from .sendqueue import SendQueue, is_binary
from .transport import LockedTransport, Transport, TransportClosed, open_transport

__all__ = ["Connection", "ConnectionSettings", "RequestTimeout"]

log = logging.getLogger("jupyter_interop.client")

Message = dict[str, Any]
Handler = Callable[[Message], None]


@dataclass(frozen=True)
class ConnectionSettings:
    """The client's settings the connection reads (traits of ``Interop``, client/api.py)."""

    connect_timeout: float
    max_message_size: int
    websocket_library: str
    ping_interval: float
    reconnect_delay: float
    reconnect_max_delay: float
    shared_memory_threshold: int
    tune_allocator: bool


class Connection:
    """The client's link to the hub. Create with :meth:`start` (first connect must succeed).

    The protocol itself (pending requests, routing, runs, the nesting refusal, what
    ``welcome`` says) is :class:`~.core.ClientProtocol`, and what is written next and in which
    order is :class:`~.sendqueue.SendQueue`, both without I/O; this class owns the tasks, the
    lock, the socket writes and reconnection. ``call_soon(fn)`` runs ``fn`` on the loop
    from any thread; ``on_connected(reconnect)`` and ``on_disconnected()`` tell the client.

    Ways to send, each for a reason (docs/ARCHITECTURE.md, "Anatomy of an invoke"):

    * :meth:`request`: a message that waits for its reply (on the loop);
    * :meth:`send`: fire and forget on the loop (pings, unsubscriptions, a stream's answers
      to its subscribers, channel changes, an invocation refused): False when disconnected;
    * :meth:`send_threadsafe` / :meth:`send_item_threadsafe`: fire and forget from user
      threads (stream pushes, bus publishes): a burst wakes the loop once, and stream items
      wait as (stream id, data) until the writer folds a run of them into one
      ``publish-many`` (protocol/framing.py);
    * :meth:`write_now`: a frame encoded already (an invocation's reply) written at once from
      the handler thread when nothing is queued before it; :meth:`send_frame` on the loop
      falls back to the queue. No other path writes to the socket.
    """

    def __init__(
        self,
        address: HubAddress,
        rediscover: Callable[[], HubAddress] | None,
        identity: Message,
        extensions: Message,
        settings: ConnectionSettings,
        *,
        call_soon: Callable[[Callable[[], None]], None],
        on_connected: Callable[[bool], None] | None = None,
        on_disconnected: Callable[[], None] | None = None,
    ) -> None:
        self.settings = settings
        self.loop = asyncio.get_running_loop()
        self.address = address
        self._rediscover = rediscover
        self.identity = identity
        self.requested_extensions = extensions
        self._call_soon = call_soon
        self._on_connected = on_connected
        self._on_disconnected = on_disconnected
        core = self.core = ClientProtocol()
        #: what ``welcome`` gave (copied from the core, read by the services)
        self.codec: Codec = core.codec
        self.peer_id: str | None = None
        self.instance: Instance | None = None
        self.welcome: Message = {}
        self.extensions: Message = {}
        self.hub_id: str | None = None
        #: the routing table and the reader's entry point are the core's own
        self.on = core.on
        self.on_many = core.on_many
        self._dispatch = core.receive
        self.ready = asyncio.Event()  # socket open, hello and joins done: internal requests
        self.connected = asyncio.Event()  # restored too: user requests
        self.closed = False
        self.generation = 0
        #: a gateway token issued to us after the last login (see auth.py)
        self._gateway_token: str | None = None
        self.last_error = ""
        self._restorers: list[Callable[[], Awaitable[None]]] = []
        self._lost_hooks: list[Callable[[], None]] = []
        self._ready_hooks: list[Callable[[], None]] = []
        self._transport: Transport | None = None
        #: what is yet to be written, and the rules of its order (client/sendqueue.py)
        self.queue = SendQueue()
        self._wake = asyncio.Event()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._supervisor: asyncio.Task[None] | None = None
        self._reader: asyncio.Task[None] | None = None
        #: requests sent from other threads (request_threadsafe), expired on the loop by one
        #: timer set for the earliest deadline
        self._deadlines = Deadlines()
        self._deadlines_lock = threading.Lock()
        self._expiry_timer: asyncio.TimerHandle | None = None

    @property
    def dropped_sends(self) -> int:
        """Messages that never reached the hub: sent while disconnected, or queued when the
        socket dropped (fire-and-forget ones are lost silently otherwise, as in io.Connect)."""
        return self.queue.dropped

    @property
    def _pending(self) -> PendingTable:
        """The requests awaiting a reply (the core's table)."""
        return self.core.pending

    # ------------------------------------------------------------------ wiring

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
        """Open the socket, say hello, join, restore (after a reconnect): one generation."""
        settings = self.settings
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
        self.queue.out.clear()
        reader = self._reader = self.loop.create_task(self._read(transport))
        writer = self.loop.create_task(self._write(transport))
        reader.add_done_callback(lambda _: writer.cancel())
        try:
            self._welcomed(await self._hello(timeout))
            if self.address.gateway_token:
                self.spawn(self._refresh_gateway_token(timeout))
            if settings.ping_interval > 0:
                self.spawn(self._ping(self.generation, settings.ping_interval))
            await self._join(timeout)
            if reconnect:
                await self._restore()
            self.connected.set()
        except BaseException:
            reader.cancel()
            self._lost(transport)
            await transport.close()
            raise
        if self._on_connected is not None:
            self._on_connected(reconnect)

    async def _hello(self, timeout: float) -> Message:
        """The ``welcome`` to our ``hello``; a refused login raises AuthenticationError."""
        address = self.address
        hello = messages.hello(
            self.identity,
            authentication(
                address.token,
                address.username,
                address.password,
                self._gateway_token or address.gateway_token,
            ),
            extensions={EXTENSIONS_KEY: self.requested_extensions},
        )
        try:
            return await self.request(hello, timeout, HELLO_TYPE, internal=True, raw=True)
        except RemoteError as error:
            if error.reason_uri == Reason.AUTH_FAILURE:
                what = credentials(hello["authentication"])
                raise AuthenticationError(
                    f"The interop hub at {address.url} refused {what} found through "
                    f"{address.source}: {error.reason}"
                ) from None
            raise

    async def _join(self, timeout: float) -> None:
        """Join the agm and bus domains, and prove we see the hub's shared memory."""
        await asyncio.gather(
            *(
                self.request(
                    messages.join(domain),
                    timeout,
                    f"join {domain}",
                    internal=True,
                    raw=True,
                )
                for domain in (AGM_DOMAIN, BUS_DOMAIN)
            ),
            self.codec.enable_shared_memory(
                self.extensions.get(SHM_EXTENSION),
                lambda proof: self.request(proof, timeout, SHM_PROOF_TYPE, internal=True, raw=True),
                self.settings.shared_memory_threshold,
            ),
        )

    async def _restore(self) -> None:
        """The services restore themselves, in registration order, after a reconnect."""
        for restorer in self._restorers:
            try:
                await restorer()
            except (ConnectionLostError, ClientClosedError):
                raise
            except Exception:
                log.exception("Interop: restoring state after reconnect failed")

    def _welcomed(self, welcome: Message) -> None:
        core = self.core
        core.welcomed(welcome, self.settings.tune_allocator)
        self.welcome = core.welcome
        self.peer_id = core.peer_id
        self.instance = core.instance
        self.extensions = core.extensions
        self.codec = core.codec
        self.hub_id = core.hub_id
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
                {"domain": GLOBAL_DOMAIN, "type": CREATE_TOKEN_TYPE},
                timeout,
                CREATE_TOKEN_TYPE,
                internal=True,
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
            self.send({"domain": GLOBAL_DOMAIN, "type": PING_TYPE})

    async def _supervise(self) -> None:
        """Wait for the socket to drop, then reconnect with backoff, forever until closed."""
        initial = max(0.01, self.settings.reconnect_delay)
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
                    delay = min(delay * 2, max(initial, self.settings.reconnect_max_delay))
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
        self.queue.lost()
        self.core.lost()
        url = self.address.url
        self.core.fail_pending(
            lambda what: ConnectionLostError(
                f"The connection to the interop hub at {url} was lost "
                f"while waiting for the reply to {what}"
            )
        )
        if was_ready:
            for hook in self._lost_hooks:
                try:
                    hook()
                except Exception:
                    log.exception("Interop: resetting state after a disconnect failed")
            if self._on_disconnected is not None:
                self._on_disconnected()

    async def close(self) -> None:
        """Close for good (idempotent): pending calls fail with :class:`ClientClosedError`."""
        if self.closed:
            return
        self.closed = True
        if self._supervisor is not None:
            self._supervisor.cancel()
        if self._expiry_timer is not None:
            self._expiry_timer.cancel()
        self.core.fail_pending(lambda _: ClientClosedError("The interop client was closed"))
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
        future: asyncio.Future[Message] = loop.create_future()
        # a SerializationError leaves nothing behind
        request_id, frame = self.core.request(message, future, what, on_reply)
        timer = loop.call_later(max(0.0, deadline - loop.time()), _expire, future, what, timeout)
        try:
            if not self.write_now(frame, self.generation):
                self._enqueue(frame)
            return await future
        finally:
            timer.cancel()
            self.core.pending.pop(request_id, None)

    def request_threadsafe(
        self, message: Message, reply: Any, timeout: float, what: str
    ) -> str | None:
        """Send a request from a thread other than the loop's and return its request id;
        its reply (or error, timeout, loss) settles ``reply`` on the loop's thread, which
        must be thread-safe (``done``, ``set_result``, ``set_exception``). None when not
        connected now: nothing was sent, use :meth:`request` on the loop.

        What an awaited call from another loop (a kernel's) saves by this: the wake-up of
        the loop and the hand-off of the call to it (docs/ARCHITECTURE.md, "The client's
        I/O thread"). The caller calls :meth:`forget` once it has the outcome or gives up.
        """
        connected = self.connected
        if self.closed or not connected.is_set():
            return None
        generation = self.generation
        request_id, frame = self.core.request(message, reply, what)
        # after registering: a drop from here on fails it (see _lost: cleared, then failed)
        if self.closed or not connected.is_set() or generation != self.generation:
            self.core.forget(request_id)
            return None
        deadline = self.loop.time() + timeout
        with self._deadlines_lock:
            arm = self._deadlines.add(request_id, deadline, what, timeout)
        if arm:
            self._call_soon(self._arm_expiry)
        if not self.write_now(frame, generation) and self.queue.post(frame):
            self._call_soon(self._drain_incoming)
        return request_id

    def forget(self, request_id: str) -> None:
        """A request sent with :meth:`request_threadsafe` is answered or abandoned."""
        self.core.forget(request_id)
        with self._deadlines_lock:
            self._deadlines.discard(request_id)

    def _arm_expiry(self) -> None:
        """(Re)set the one timer of the requests sent from other threads (on the loop)."""
        if self._expiry_timer is not None:
            self._expiry_timer.cancel()
            self._expiry_timer = None
        at = self._deadlines.earliest
        if at is not None and not self.closed:
            self._expiry_timer = self.loop.call_at(at, self._expire_due)

    def _expire_due(self) -> None:
        """Fail the requests from other threads whose deadline passed (on the loop)."""
        self._expiry_timer = None
        with self._deadlines_lock:
            due = self._deadlines.take_due(self.loop.time())
        pending = self.core.pending
        for rid, what, timeout in due:
            entry = pending.get(rid)
            if entry is not None:
                _expire(entry[0], what, timeout)
        self._arm_expiry()

    async def barrier(self, timeout: float) -> None:
        """One round trip to the hub: when it returns, every message the hub sent us before
        (announcements of contexts other peers just created) has been handled. Joining the
        metrics domain is the request: the hub accepts it and does nothing else."""
        await self.request(
            messages.join(METRICS_DOMAIN),
            timeout,
            "a barrier",
        )

    def send(self, message: Message) -> bool:
        """Fire and forget (on the loop). False when disconnected: the message is dropped."""
        if not self.ready.is_set() or self.closed:
            self.queue.dropped += 1
            return False
        self._enqueue(self.core.frame(message))
        return True

    def send_threadsafe(self, message: Message) -> None:
        """Fire and forget from any thread; encoding errors are raised here, in the caller.

        Frames sent from other threads wait in the queue's ``incoming``, which the writer
        empties itself (as batch frames when the hub accepted the ``batch`` extension); a
        burst of pushes wakes the loop once, not once per push.
        """
        if self.closed:
            raise ClientClosedError("The interop client was closed")
        if self.queue.post(self.core.frame(message)):
            self._call_soon(self._drain_incoming)

    def send_item_threadsafe(self, stream_id: str, data: bytes) -> None:
        """One stream item from any thread, its data already encoded JSON (the hub accepted
        the ``runs`` extension): consecutive items of one stream leave as one ``publish-many``
        message, which the hub routes once for all of them."""
        if self.closed:
            raise ClientClosedError("The interop client was closed")
        if self.queue.post((stream_id, data)):
            self._call_soon(self._drain_incoming)

    def _drain_incoming(self) -> None:
        """On the loop, after sends from other threads: wake the writer (it takes what piles
        up meanwhile), or drop what they sent while disconnected (SendQueue.drain)."""
        if self.queue.drain(self.ready.is_set() and not self.closed):
            self._wake.set()

    def _enqueue(self, frame: bytes) -> None:
        self.queue.push(frame, self.ready.is_set() and not self.closed)
        self._wake.set()

    async def _write(self, transport: Transport) -> None:
        """Write what the queue gives, in its order (SendQueue.next_queue), until the
        transport closes."""
        if isinstance(transport, LockedTransport):
            await self._write_direct(transport)
            return
        try:
            while True:
                queue = await self._next_queue()
                frame = take_frame(queue, self.extensions.get(BATCH_EXTENSION))
                if isinstance(frame, ChunkedFrame):  # a large message, in chunks
                    for chunk in frame:  # one chunk in memory at a time
                        await transport.send(chunk, True)
                    continue
                await transport.send(frame, is_binary(frame))
        except TransportClosed:
            return

    async def _next_queue(self) -> deque[Any]:
        """The queue the writer takes its next frame from, once there is one."""
        queue = self.queue
        while True:
            found = queue.next_queue(self.ready.is_set()) or queue.idle(self.ready.is_set())
            if found is not None:
                return found
            self._wake.clear()
            await self._wake.wait()

    async def _write_direct(self, transport: LockedTransport) -> None:
        """:meth:`_write` for the direct transport: taking a frame from the queue and writing
        it are one step under the transport's lock, so :meth:`write_now` sees every frame
        either still queued or already written."""
        lock = transport.lock
        sends = self.queue
        try:
            while True:
                queue = await self._next_queue()
                with lock:
                    # read per frame: this writer starts before ``welcome`` says what was accepted
                    batch = self.extensions.get(BATCH_EXTENSION)
                    # what piled up leaves in the same system call, each message still its
                    # own frame (CLIENT_WRITE_RUN_BYTES)
                    run, chunked = sends.take_run(queue, batch, self.ready.is_set())
                    if run:
                        transport.write_run_locked(run)
                    if chunked is not None:
                        sends.writing_chunks = True
                if chunked is None:
                    await transport.drained()
                    continue
                try:
                    # a large message, one chunk in memory at a time, masked straight from
                    # the value's own buffers into the frame written
                    for head, views in chunked.views():
                        await transport.send_pieces([head, *views])
                finally:
                    sends.writing_chunks = False
        except TransportClosed:
            return

    def send_frame(self, frame: Any, generation: int) -> None:
        """Send an encoded frame (on the loop): written at once when it cannot overtake
        anything (:meth:`write_now`), else queued for the writer."""
        if not self.write_now(frame, generation):
            self._enqueue(frame)

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
            if not self.queue.quiet():
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
                transport.deliver_to(self.core.receive)
                await transport.wait_closed()
            while True:
                self.core.receive(await transport.recv())
        except TransportClosed as error:
            self.last_error = str(error)
        except OSError as error:
            self.last_error = _describe(error)
        finally:
            # at once, not when the supervisor gets to it: a restore in progress must fail
            self._lost(transport)


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
