"""The client object and how to get one: ``ji.connect()`` (or ``await ji.aconnect()``).

In a notebook kernel started by a Jupyter server with the extension, ``connect()`` finds the
hub through the environment and the hub identifies the notebook from the kernel id (its path
becomes ``io.instance.notebook_path``, its name ``io.instance.application``). In a script it
reads the runtime file, or takes ``url=``/``token=``.

``connect()`` without ``new=True`` returns the open client this process already has for the same
hub and application: re-running the cell does not create a second peer offering the same
methods.

Settings are traitlets (``c.Interop.invoke_timeout = 60`` in an IPython profile's config, or
``ji.connect(invoke_timeout=60)``).

Where the client runs (``io_loop``): ``connect()`` and anything in IPython use the process's
interop I/O thread, so a busy cell still answers; ``await aconnect()`` in a plain asyncio
program runs the client on that program's loop, so awaited calls need no thread hand-off.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import threading
from collections.abc import Callable
from typing import Any

from traitlets import Bool, Enum, Float, Int
from traitlets.config import LoggingConfigurable

from ..protocol.wire import (
    BATCH_EXTENSION,
    BINARY_EXTENSION,
    CHANNELS_EXTENSION,
    EVENTS_DROPPED_TYPE,
    GLOBAL_DOMAIN,
    NOTICES_EXTENSION,
    READ_ONLY_EXTENSION,
    RUNS_EXTENSION,
    SHM_EXTENSION,
    VERSIONS_EXTENSION,
)
from .apps import Apps
from .auth import default_identity
from .bus import Bus
from .channels import Channels
from .connection import Connection, ConnectionSettings
from .contexts import Contexts
from .discovery import HubAddress, default_application, find_hub, kernel_id
from .dispatch import Dispatcher, OutputTarget, capture_output_target
from .errors import ArgumentError
from .instance import Instance
from .intents import Intents
from .iothread import CallerLoop, LoopHost, current_io_thread, io_thread
from .method_invoker import Invoker
from .method_server import MethodServer
from .methods import Methods
from .negotiation import connection_status
from .registry import Registry
from .session import ClientSession
from .streams import Streams

__all__ = ["Interop", "aconnect", "connect", "register_service"]

log = logging.getLogger("jupyter_interop.client")

#: services a layer above the client adds to every client, built on first use: attribute ->
#: ``factory(client, session)``. ``jupyter_interop/__init__.py`` registers ``fdc3``, the
#: FDC3 Desktop Agent (docs/FDC3.md), so the client never imports that layer.
_SERVICE_FACTORIES: dict[str, Callable[[Interop, ClientSession], Any]] = {}


def register_service(name: str, factory: Callable[[Interop, ClientSession], Any]) -> None:
    """Have ``client.<name>`` built by ``factory(client, session)`` on first use."""
    _SERVICE_FACTORIES[name] = factory


class Interop(LoggingConfigurable):
    """A connection to the interop hub: ``methods``, ``streams``, ``contexts``, ``channels``,
    ``bus``, ``intents``, ``apps``; ``instance`` is this peer's identity as the hub resolved it.

    Every blocking call has an ``a``-prefixed async twin (``invoke``/``ainvoke``) usable with
    top-level ``await`` in a notebook or inside ``async def`` handlers.
    """

    connect_timeout = Float(
        10.0, help="Seconds to open the WebSocket and complete the GW3 hello."
    ).tag(config=True)
    request_timeout = Float(
        10.0,
        help=(
            "Seconds a hub request (register, context and bus operations) may take, waiting "
            "for a reconnect included; then HubUnreachableError."
        ),
    ).tag(config=True)
    invoke_timeout = Float(
        30.0,
        help="Default seconds to wait for each target's reply to an invocation (io.Connect: 30).",
    ).tag(config=True)
    fdc3_open_timeout = Float(
        60.0,
        min=15.0,
        help=(
            "Seconds io.fdc3.open(app, context) waits for the started app to add a context "
            "listener that takes the context (FDC3: at least 15; io.Connect: 60); then "
            "AppTimeout."
        ),
    ).tag(config=True)
    method_wait_timeout = Float(
        5.0,
        help=(
            "Default seconds an invocation or subscription waits for a matching method to "
            "appear (io.Connect: 30; shorter so that a typo in a cell fails fast)."
        ),
    ).tag(config=True)
    subscribe_timeout = Float(
        10.0, help="Default seconds to wait for a publisher to accept a subscription."
    ).tag(config=True)
    restore_timeout = Float(
        30.0,
        help=(
            "Seconds a subscription waits for its publisher to come back after a reconnect "
            "before on_failed fires."
        ),
    ).tag(config=True)
    reconnect_delay = Float(
        0.1, help="First delay (seconds) before reconnecting; doubled per failed attempt."
    ).tag(config=True)
    reconnect_max_delay = Float(
        2.0, help="Longest delay (seconds) between reconnect attempts."
    ).tag(config=True)
    ping_interval = Float(
        30.0,
        min=0.0,
        help=(
            "Seconds between GW3 'ping' messages while connected, as io.Connect's JS clients "
            "send them: a gateway may drop a client it has not heard from for a while (the "
            "Glue42 gateway's default is 60 s). 0 sends none."
        ),
    ).tag(config=True)
    handler_threads = Int(
        8, help="Threads running method handlers and subscription requests concurrently."
    ).tag(config=True)
    max_queued_handlers = Int(
        1000,
        help="Invocations waiting for a handler thread above which new ones are refused.",
    ).tag(config=True)
    max_message_size = Int(
        512 * 1024 * 1024, help="Largest frame (bytes) accepted from the hub."
    ).tag(config=True)
    websocket_library = Enum(
        ["auto", "direct", "websockets", "tornado"],
        "auto",
        help=(
            "WebSocket client: 'direct' (websockets' sans-I/O framing on a plain socket, "
            "ws:// only: the fastest), 'websockets' (its asyncio client), 'tornado' (always "
            "available where Jupyter is). 'auto': 'direct' for ws://, 'websockets' for "
            "wss://, tornado when websockets is not installed."
        ),
    ).tag(config=True)
    binary = Bool(
        True,
        help=(
            "Negotiate binary frames: bytes, numpy arrays and DataFrames travel as raw "
            "buffers between Python peers (JSON forms otherwise)."
        ),
    ).tag(config=True)
    shared_memory = Bool(
        True,
        help=(
            "Negotiate shared memory with a hub on this host (with binary frames): values of "
            "shared_memory_threshold bytes or more are written once into a file in the hub's "
            "tmpfs directory and travel as a reference; received ones are mapped copy-on-write "
            "(no copy). Only used once this process proved it sees the hub's directory."
        ),
    ).tag(config=True)
    shared_memory_threshold = Int(
        1024 * 1024, help="Smallest value (bytes) sent through shared memory."
    ).tag(config=True)
    tune_allocator = Bool(
        True,
        help=(
            "When this process first sends a binary frame of 256 KiB or more, raise glibc's "
            "mmap and trim thresholds so that frame-sized blocks are reused instead of being "
            "page-faulted in for every frame (a 1 MiB round trip spends a third of its time "
            "there otherwise). This changes the allocator of the whole process, the kernel's "
            "numpy and pandas included: set False to leave it alone."
        ),
    ).tag(config=True)
    io_loop = Enum(
        ["auto", "thread", "caller"],
        "auto",
        help=(
            "Where the client's socket and bookkeeping run. 'thread': the process's interop "
            "I/O thread (a busy cell or a blocked loop still answers; every awaited call "
            "crosses to that thread and back). 'caller': the event loop that awaited "
            "aconnect() (no thread hand-offs, the fastest for asyncio programs; that loop "
            "must keep running, and blocking calls cannot be made on its thread). 'auto': "
            "'caller' for aconnect() outside IPython, 'thread' for connect() and in kernels."
        ),
    ).tag(config=True)
    batch = Bool(
        True,
        help=(
            "Negotiate batch frames: messages that are sent (or received) together travel as "
            "one WebSocket frame holding a JSON array, in order (streams, bus)."
        ),
    ).tag(config=True)

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        #: the loop this client lives on, chosen by connect()/aconnect() (see ``io_loop``)
        self._io: LoopHost
        #: what the services share (built when the client opens)
        self._session: ClientSession | None = None
        self._connected_cbs: list[tuple[Callable[[bool], Any], OutputTarget | None]] = []
        self._disconnected_cbs: list[tuple[Callable[[], Any], OutputTarget | None]] = []
        self.address: HubAddress | None = None
        #: stream and bus events the hub dropped for us because we read too slowly
        self.dropped_events = 0
        #: services of the layers above, built on first use (:func:`register_service`)
        self._services: dict[str, Any] = {}
        self._services_lock = threading.Lock()

    # ------------------------------------------------------------------ opening

    async def open_on(
        self,
        host: LoopHost,
        address: HubAddress,
        rediscover: Callable[[], HubAddress] | None,
        application: str,
        kernel: str | None,
    ) -> None:
        """On the loop of ``host``: build the connection and the services, connect once.

        What :func:`connect` and :func:`aconnect` run to open a new client; call those.
        """
        self._io = host
        self.address = address
        conn = Connection(
            address,
            rediscover,
            default_identity(application, kernel),
            self._extensions(kernel),
            ConnectionSettings(
                connect_timeout=self.connect_timeout,
                max_message_size=self.max_message_size,
                websocket_library=self.websocket_library,
                ping_interval=self.ping_interval,
                reconnect_delay=self.reconnect_delay,
                reconnect_max_delay=self.reconnect_max_delay,
                shared_memory_threshold=self.shared_memory_threshold,
                tune_allocator=self.tune_allocator,
            ),
            call_soon=self._io.call_soon,
            on_connected=self._fire_connected,
            on_disconnected=self._fire_disconnected,
        )
        dispatcher = Dispatcher(
            self._io.loop, self.handler_threads, self.max_queued_handlers, "interop"
        )
        session = self._session = ClientSession(self, self._io, conn, dispatcher)
        self._build_services(session)
        try:
            await conn.start()
        except BaseException:
            session.closed = True
            dispatcher.shutdown()
            await conn.close()
            raise
        self._io.clients.add(self)

    def _extensions(self, kernel: str | None) -> dict[str, Any]:
        """What ``hello`` asks for (``extensions.jupyter_interop``), from the settings."""
        extensions: dict[str, Any] = {
            CHANNELS_EXTENSION: True,
            NOTICES_EXTENSION: True,
            VERSIONS_EXTENSION: True,
            READ_ONLY_EXTENSION: True,
        }
        if kernel:
            extensions["kernel_id"] = kernel
        if self.binary:
            extensions[BINARY_EXTENSION] = True
            if self.shared_memory:
                extensions[SHM_EXTENSION] = True
        if self.batch:
            extensions[BATCH_EXTENSION] = True
            extensions[RUNS_EXTENSION] = True  # stream items folded into publish-many / event-many
        return extensions

    def _build_services(self, session: ClientSession) -> None:
        """The services on ``session``, in the order their hooks must run (the registry's
        first: it is part of the session)."""
        conn = session.conn
        conn.add_ready_hook(session.registry.add_self)
        server, invoker = MethodServer(session), Invoker(session)
        self.methods = Methods(session, server, invoker)
        self.streams = Streams(session, server, invoker)
        self.contexts = Contexts(session)
        self.channels = Channels(session, self.contexts)
        self.bus = Bus(session)
        self.apps = Apps(session, self.methods)
        self.intents = Intents(session, self.methods, self.apps)
        conn.on(GLOBAL_DOMAIN, EVENTS_DROPPED_TYPE, self._events_dropped)

    @property
    def fdc3(self) -> Any:
        """The FDC3 2.2 Desktop Agent on this client (``jupyter_interop.fdc3.agent``,
        docs/FDC3.md), built on first use."""
        return self._service("fdc3")

    def _service(self, name: str) -> Any:
        session = self._opened
        with self._services_lock:
            built = self._services.get(name)
            if built is None:
                factory = _SERVICE_FACTORIES.get(name)
                if factory is None:
                    raise AttributeError(f"No service {name!r}: import jupyter_interop first")
                built = self._services[name] = factory(self, session)
            return built

    # ------------------------------------------------------------------ the session's parts

    @property
    def _opened(self) -> ClientSession:
        assert self._session is not None, "the client is not open yet"
        return self._session

    @property
    def _conn(self) -> Connection:
        return self._opened.conn

    @property
    def _dispatcher(self) -> Dispatcher:
        return self._opened.dispatcher

    @property
    def _registry(self) -> Registry:
        return self._opened.registry

    # ------------------------------------------------------------------ state

    @property
    def closed(self) -> bool:
        """True once the client was closed (for good)."""
        return self._session is not None and self._session.closed

    @property
    def instance(self) -> Instance:
        """This peer as the hub resolved it (changes peer id after a reconnect)."""
        instance = self._conn.instance
        assert instance is not None
        return instance

    @property
    def peer_id(self) -> str | None:
        return self._conn.peer_id

    @property
    def connected(self) -> bool:
        """True while connected to the hub (False while reconnecting or once closed)."""
        return not self.closed and self._conn.connected.is_set()

    @property
    def url(self) -> str:
        return self._conn.address.url

    def status(self) -> dict[str, Any]:
        """The connection at a glance: URL, state, the gateway kind (our hub or another GW3
        gateway), how this client logged in, the extensions in use and, for each extension
        the gateway did not accept, what the client does instead (docs/GATEWAYS.md)."""
        conn = self._conn
        state = "closed" if self.closed else ("connected" if self.connected else "reconnecting")
        return {
            "url": conn.address.url,
            "state": state,
            "peer_id": conn.peer_id,
            "authentication": conn.address.auth_method,
            **connection_status(conn.requested_extensions, conn.extensions, conn.welcome),
            "dropped_sends": conn.dropped_sends,
            "dropped_events": self.dropped_events,
        }

    # ------------------------------------------------------------------ events

    def on_connected(self, callback: Callable[[bool], Any]) -> Callable[[], None]:
        """``callback(reconnect)`` after every (re)connection, once state is restored."""
        return self._listen(self._connected_cbs, callback)

    def on_disconnected(self, callback: Callable[[], Any]) -> Callable[[], None]:
        """``callback()`` when the connection to the hub drops (it is being restored)."""
        return self._listen(self._disconnected_cbs, callback)

    def _listen(self, listeners: list[Any], callback: Callable[..., Any]) -> Callable[[], None]:
        if not callable(callback):
            raise ArgumentError(f"The callback must be callable, not {callback!r}")
        entry = (callback, capture_output_target())
        listeners.append(entry)

        def unsubscribe() -> None:
            if entry in listeners:
                listeners.remove(entry)

        return unsubscribe

    def _fire_connected(self, reconnect: bool) -> None:
        for callback, output in list(self._connected_cbs):
            self._dispatcher.post_event(callback, (reconnect,), output)

    def _fire_disconnected(self) -> None:
        for callback, output in list(self._disconnected_cbs):
            self._dispatcher.post_event(callback, (), output)

    def _events_dropped(self, message: dict[str, Any]) -> None:
        count = message.get("count")
        if isinstance(count, int) and count > 0:
            self.dropped_events += count
            log.warning(
                "Interop: the hub dropped %d stream/bus events for this client (%d in all): "
                "callbacks are too slow for the rate of data",
                count,
                self.dropped_events,
            )

    # ------------------------------------------------------------------ closing

    async def _shutdown(self) -> None:
        if self.closed:
            return
        self._opened.closed = True
        with _shared_lock:
            for key, (client, _) in list(_shared.items()):
                if client is self:
                    del _shared[key]
        await self._conn.close()
        self._dispatcher.shutdown()

    async def aclose(self) -> None:
        """Disconnect for good; pending calls fail with :class:`ClientClosedError`."""
        if self.closed:
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is self._io.loop:
            await self._shutdown()
        else:
            await asyncio.wrap_future(self._io.submit(self._shutdown()))

    def close(self) -> None:
        """Disconnect for good (bounded: never hangs, also at interpreter exit)."""
        if self.closed:
            return
        if self._io.in_thread:
            self._io.loop.create_task(self._shutdown())
            return
        future = self._io.submit(self._shutdown())
        try:
            future.result(5)
        except Exception:
            self._opened.closed = True

    def __enter__(self) -> Interop:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    async def __aenter__(self) -> Interop:
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        if self._session is None:
            return "<Interop (not connected)>"
        state = "closed" if self.closed else ("connected" if self.connected else "reconnecting")
        instance = self._conn.instance
        who = f" {instance.application!r} peer={instance.peer_id}" if instance else ""
        return f"<Interop{who} {state} to {self._conn.address.url}>"


#: (hub URL, application) -> the process's shared client for them, and its loop host
_shared: dict[tuple[str, str], tuple[Interop, LoopHost]] = {}
_shared_lock = threading.Lock()


def _prepare(
    url: str | None,
    token: str | None,
    application: str | None,
    settings: dict[str, Any],
    username: str | None = None,
    password: str | None = None,
) -> tuple[Interop, HubAddress, Callable[[], HubAddress] | None, str, str | None]:
    if url is not None and not isinstance(url, str):
        raise ArgumentError(f"url must be a string, not {type(url).__name__}")
    if token is not None and not isinstance(token, str):
        raise ArgumentError(f"token must be a string, not {type(token).__name__}")
    if application is not None and (not isinstance(application, str) or not application):
        raise ArgumentError(f"application must be a non-empty string, not {application!r}")
    if username is not None and (not isinstance(username, str) or not username):
        raise ArgumentError(f"username must be a non-empty string, not {username!r}")
    if password is not None and not isinstance(password, str):
        raise ArgumentError(f"password must be a string, not {type(password).__name__}")
    if password is not None and username is None:
        raise ArgumentError(
            "password needs a username: ji.connect(url, username=..., password=...)"
        )
    if username is not None and token is not None:
        raise ArgumentError("pass either token or username/password, not both")
    address = find_hub(url, token, username, password)
    rediscover = None if url else (lambda: find_hub(None, token, username, password))
    kernel = kernel_id()
    app = application or default_application(kernel)
    config = None
    try:
        from IPython import get_ipython

        shell = get_ipython()
        config = shell.config if shell is not None else None
    except Exception:
        config = None
    try:
        client = Interop(config=config, **settings) if config is not None else Interop(**settings)
    except Exception as error:  # a traitlets validation error: say which setting
        raise ArgumentError(f"Invalid setting: {error}") from None
    return client, address, rediscover, app, kernel


def _in_ipython() -> bool:
    if "IPython" not in sys.modules:
        return False
    try:
        from IPython import get_ipython

        return get_ipython() is not None
    except Exception:
        return False


def _host_for(client: Interop, running: asyncio.AbstractEventLoop | None) -> LoopHost:
    """The loop host ``client`` will live on, from its ``io_loop`` setting and the loop that
    is opening it (None for ``connect()``)."""
    mode = client.io_loop
    if running is None:
        if mode == "caller":
            raise ArgumentError(
                "io_loop='caller' runs the client on the event loop that opens it: use "
                "'await aconnect()' (connect() uses the interop I/O thread)"
            )
        return io_thread()
    if mode == "thread" or (mode == "auto" and _in_ipython()):
        return io_thread()
    shared = current_io_thread()
    if shared is not None and running is shared.loop:  # aconnect() in an async handler
        return shared
    return CallerLoop(running)


def _open_client(key: tuple[str, str]) -> Interop | None:
    """The process's open client for this hub and application, if it has one."""
    with _shared_lock:
        existing = _shared.get(key)
    if existing is None:
        return None
    client, host = existing
    return None if client.closed or host.stopped else client


def connect(
    url: str | None = None,
    token: str | None = None,
    application: str | None = None,
    *,
    new: bool = False,
    username: str | None = None,
    password: str | None = None,
    **settings: Any,
) -> Interop:
    """Connect to the interop hub and return the client (see the module docstring).

    ``url``/``token``: explicit hub (else the environment, else the runtime file);
    ``application``: the name other peers see (kernels: the notebook name, set by the hub);
    ``new``: always open a new connection; ``username``/``password``: log in with a secret
    instead of a token (a GW3 gateway such as io.Connect Desktop's, see docs/GATEWAYS.md);
    ``settings``: traits of :class:`Interop`.
    """
    client, address, rediscover, app, kernel = _prepare(
        url, token, application, settings, username, password
    )
    key = (address.url, app)
    existing = None if new else _open_client(key)
    if existing is not None:
        return existing
    host = _host_for(client, None)
    if host.in_thread:
        raise ArgumentError("connect() would block the interop I/O loop: use 'await aconnect()'")
    host.submit(client.open_on(host, address, rediscover, app, kernel)).result()
    _remember(client, host, key, new)
    return client


async def aconnect(
    url: str | None = None,
    token: str | None = None,
    application: str | None = None,
    *,
    new: bool = False,
    username: str | None = None,
    password: str | None = None,
    **settings: Any,
) -> Interop:
    """Async twin of :func:`connect`. Outside IPython the client lives on the calling loop
    (``io_loop='auto'``): close it (``async with`` or ``await io.aclose()``) before that loop
    ends; once the loop is closed the client is too."""
    client, address, rediscover, app, kernel = _prepare(
        url, token, application, settings, username, password
    )
    key = (address.url, app)
    existing = None if new else _open_client(key)
    if existing is not None:
        return existing
    running = asyncio.get_running_loop()
    host = _host_for(client, running)
    opening = client.open_on(host, address, rediscover, app, kernel)
    if running is host.loop:
        await opening
    else:
        await asyncio.wrap_future(host.submit(opening))
    _remember(client, host, key, new)
    return client


def _remember(client: Interop, host: LoopHost, key: tuple[str, str], new: bool) -> None:
    with _shared_lock:
        if new and key in _shared and not _shared[key][0].closed:
            return  # an extra connection: the shared one stays
        _shared[key] = (client, host)
