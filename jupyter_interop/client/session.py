"""What the client's services share: one narrow object instead of the whole client.

``Interop`` builds a :class:`ClientSession` when it opens and hands it to every service
(methods, streams, contexts, channels, bus, the registry), so that a service reads the
connection, the loop host, the dispatcher, the registry and the settings it needs through
public attributes, never through the client's private state (docs/ARCHITECTURE.md, "Client").
A service that needs another service is given it explicitly.
"""

from __future__ import annotations

from typing import Protocol

from .connection import Connection
from .dispatch import Dispatcher
from .errors import ClientClosedError
from .iothread import LoopHost
from .registry import Registry

__all__ = ["ClientSession", "ClientSettings"]


class ClientSettings(Protocol):
    """The settings (traits of ``Interop``) the services read; ``Interop`` is one."""

    @property
    def request_timeout(self) -> float: ...

    @property
    def invoke_timeout(self) -> float: ...

    @property
    def method_wait_timeout(self) -> float: ...

    @property
    def subscribe_timeout(self) -> float: ...

    @property
    def restore_timeout(self) -> float: ...

    @property
    def max_queued_handlers(self) -> int: ...

    @property
    def shared_memory_threshold(self) -> int: ...

    @property
    def tune_allocator(self) -> bool: ...


class ClientSession:
    """The connection, loop host, dispatcher, registry and settings of one open client.

    ``closed`` turns True once, when the client closes; :meth:`check_open` is what every
    public operation calls first.
    """

    def __init__(
        self,
        settings: ClientSettings,
        io: LoopHost,
        conn: Connection,
        dispatcher: Dispatcher,
    ) -> None:
        self.settings = settings
        self.io = io
        self.conn = conn
        self.dispatcher = dispatcher
        self.closed = False
        #: what the client knows about servers and their methods (the discovery events)
        self.registry = Registry(self)

    @property
    def url(self) -> str:
        """The hub's URL (as connected now)."""
        return self.conn.address.url

    def check_open(self) -> None:
        """Raise :class:`ClientClosedError` once the client (or its loop) is closed."""
        if self.closed or self.io.stopped:
            raise ClientClosedError(
                "This interop client is closed; open a new one with jupyter_interop.connect()"
            )
