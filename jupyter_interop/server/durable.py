"""Releasing the acknowledgements the hub core holds until the context store has committed.

The core never waits for the disk (hub/contexts.py holds the replies to retained writes with
the store's sequence numbers); the store's writer thread calls ``on_commit`` after each
transaction. This glue hops from that thread to the event loop and routes what became
releasable through the gateway, like any other output of the core.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..hub.core import InteropHub
    from ..hub.store import ContextStore
    from .service import GatewayService

__all__ = ["DurableAcks"]

#: schedules a callback on the event loop from any thread (``loop.call_soon_threadsafe``,
#: tornado's ``IOLoop.add_callback``)
Schedule = Callable[[Callable[[], None]], object]


class DurableAcks:
    """Connects a store's commits to the release of the replies the hub holds for them."""

    def __init__(
        self, store: ContextStore, hub: InteropHub, service: GatewayService, schedule: Schedule
    ) -> None:
        self.store = store
        self.hub = hub
        self.service = service
        self.schedule = schedule
        self._lock = threading.Lock()
        self._scheduled = False  # one release queued on the loop covers every commit before it

    def attach(self) -> None:
        """Start releasing on every commit."""
        self.store.on_commit = self._committed

    def detach(self) -> None:
        """Stop (the hub is shutting down); a final :meth:`release` sends what is durable."""
        self.store.on_commit = None

    def _committed(self) -> None:  # writer thread
        with self._lock:
            if self._scheduled:
                return
            self._scheduled = True
        try:
            self.schedule(self.release)
        except RuntimeError:  # the loop is closed: the hub is gone, nobody waits for replies
            with self._lock:
                self._scheduled = False

    def release(self) -> None:
        """Route the replies whose writes are durable now (event loop thread)."""
        with self._lock:
            self._scheduled = False
        self.service.dispatch(self.hub.contexts.release_durable())
