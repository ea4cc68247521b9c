"""The notebook's interop state: its one client and what its cells registered.

Why one client per kernel: channel membership, method registrations and subscriptions belong
to a connection, and the user expects "this notebook" to be one peer: the channel selector,
``%interop channel join`` and ``bind(..., channel=True)`` must all move and follow the same
peer. The session keeps what cells created under user-visible keys (method names, variable
names, bus patterns), so re-running a cell replaces instead of duplicating, and
``%interop unsubscribe VAR`` knows what to close.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..client.api import Interop
    from ..client.intents import IntentListener

__all__ = ["Feed", "NotebookSession", "session"]


@dataclass
class Feed:
    """Something that keeps a variable (or the cell output) updated: a stream subscription,
    a watched share, a bus subscription. ``close`` stops it."""

    kind: str
    name: str
    var: str | None
    close: Callable[[], None]
    detail: str = ""


@dataclass
class NotebookSession:
    """Per-kernel state shared by the magics and the widgets."""

    _client: Interop | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)
    #: method name -> description, for ``%interop status``
    methods: dict[str, str] = field(default_factory=dict)
    #: key (variable name, or ``bus:<pattern>``) -> feed
    feeds: dict[str, Feed] = field(default_factory=dict)
    #: shared name -> variable name
    shares: dict[str, str] = field(default_factory=dict)
    #: intent -> the listener a ``%%interop intent`` cell added (a re-run cell replaces it)
    intents: dict[str, IntentListener] = field(default_factory=dict)

    def client(self) -> Interop:
        """The notebook's client, connected on first use (and again after ``close``)."""
        with self._lock:
            if self._client is None or self._client.closed:
                from ..client import connect

                self._client = connect()
            return self._client

    def use(self, client: Interop) -> None:
        """Make ``client`` the notebook's client (for a custom ``connect(...)``)."""
        with self._lock:
            self._client = client

    @property
    def connected_client(self) -> Interop | None:
        """The client if one was created (never connects)."""
        return self._client

    def add_feed(self, key: str, feed: Feed) -> None:
        """Register a feed, closing the one it replaces (a re-run cell)."""
        old = self.feeds.pop(key, None)
        if old is not None:
            old.close()
        self.feeds[key] = feed

    def close_feed(self, key: str) -> Feed | None:
        feed = self.feeds.pop(key, None)
        if feed is not None:
            feed.close()
        return feed


_SESSION = NotebookSession()


def session() -> NotebookSession:
    return _SESSION
