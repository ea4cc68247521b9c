"""Interop streams: publish with branches, subscribe, and survive reconnects (docs/ARCHITECTURE.md,
"Semantics kept from io.Connect").

Publisher: :meth:`Streams.create` registers a streaming method. Each subscription request goes
to ``on_subscription_request(request)`` (on a handler thread, or the loop for ``async def``),
which calls ``request.accept()``, ``request.accept_on_branch(key)`` or
``request.reject(reason)``; a handler that returns without deciding accepts on the default
branch, one that raises rejects with the exception as the reason (io.Connect would leave the
subscriber waiting until it times out). ``stream.push(data, branch=...)`` multicasts;
``subscription.push(data)`` sends to one subscriber only (``private=True`` on arrival).
``on_added`` runs on the event thread once the hub accepted the subscription, so a push made
meanwhile from another thread may reach the new subscriber before what ``on_added`` sends
(io.Connect's single-threaded JS cannot interleave them; a Python publisher can).

Subscriber: :meth:`Streams.subscribe` returns a :class:`Subscription` once at least one
publisher accepted. Data that arrives before an ``on_data`` handler is attached is queued and
handed to the first one. ``on_closed`` fires once, when the last publisher is gone;
``on_failed`` fires when subscribing fails (also raised) and when a subscription cannot be
restored after a reconnect. After a reconnect, subscriptions are re-made with the same
arguments (publishers get a fresh ``on_subscription_request``) and ``on_connected(server,
True)`` fires; data published during the outage is lost, as in io.Connect.

:class:`Streams` is the facade ``io.streams``: the publisher side lives in
``client/stream_publisher.py``, the subscriber side in ``client/stream_subscriber.py``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .errors import SubscriptionError
from .instance import Instance
from .method_invoker import Invoker, Target
from .method_server import MethodServer
from .registry import Method
from .stream_publisher import (
    Publisher,
    Stream,
    StreamBranch,
    StreamSubscription,
    SubscriptionRequest,
)
from .stream_subscriber import (
    ClosedInfo,
    StreamData,
    Subscriber,
    Subscription,
    SubscriptionHandlers,
)
from .twins import blocking, on_io_loop

if TYPE_CHECKING:
    from .session import ClientSession

__all__ = [
    "ClosedInfo",
    "Stream",
    "StreamBranch",
    "StreamData",
    "StreamSubscription",
    "Streams",
    "Subscription",
    "SubscriptionRequest",
]


class Streams:
    """``io.streams``: create streams and subscribe to them."""

    def __init__(self, session: ClientSession, server: MethodServer, invoker: Invoker) -> None:
        self._session = session
        #: the streams this client publishes
        self._publisher = Publisher(session, server)
        #: this client's subscriptions
        self._subscriber = Subscriber(session, invoker)

    # ------------------------------------------------------------------ create

    def create(
        self,
        name: str,
        on_subscription_request: Callable[[SubscriptionRequest], Any] | None = None,
        on_added: Callable[[StreamSubscription], Any] | None = None,
        on_removed: Callable[[StreamSubscription], Any] | None = None,
        **options: Any,
    ) -> Stream:
        """Create (register) the stream ``name`` and return it.

        ``on_subscription_request(request)`` decides on each request (default: accept);
        ``on_added(subscription)`` / ``on_removed(subscription)`` follow subscribers (send a
        snapshot with ``subscription.push(...)`` in ``on_added``). ``options`` are those of a
        method definition. Creating a name again (a re-run cell) updates the handlers of the
        existing stream and returns it.
        """
        return self._create_blocking(name, on_subscription_request, on_added, on_removed, **options)

    @on_io_loop
    async def acreate(
        self,
        name: str,
        on_subscription_request: Callable[[SubscriptionRequest], Any] | None = None,
        on_added: Callable[[StreamSubscription], Any] | None = None,
        on_removed: Callable[[StreamSubscription], Any] | None = None,
        **options: Any,
    ) -> Stream:
        """Async twin of :meth:`create`."""
        return await self._publisher.create(
            name, on_subscription_request, on_added, on_removed, **options
        )

    _create_blocking = blocking(acreate)

    # ------------------------------------------------------------------ subscribe

    @on_io_loop
    async def asubscribe(
        self,
        name: str,
        arguments: dict[str, Any] | None = None,
        target: Target | None = "best",
        *,
        on_data: Callable[[StreamData], Any] | None = None,
        on_closed: Callable[[ClosedInfo], Any] | None = None,
        on_failed: Callable[[SubscriptionError], Any] | None = None,
        on_connected: Callable[[Instance, bool], Any] | None = None,
        wait_timeout: float | None = None,
        timeout: float | None = None,
    ) -> Subscription:
        """Subscribe to the stream ``name`` and return the :class:`Subscription`.

        ``target`` as for :meth:`Methods.invoke` (``"all"`` subscribes to every publisher);
        ``wait_timeout`` (default ``method_wait_timeout``) waits for a publisher to appear;
        ``timeout`` (default ``subscribe_timeout``, 10 s) waits for the publisher to accept.
        Raises :class:`SubscriptionError` (and calls ``on_failed``) when no publisher accepted.
        """
        handlers = SubscriptionHandlers(on_data, on_closed, on_failed, on_connected)
        return await self._subscriber.subscribe(
            name, arguments, target, handlers, wait_timeout, timeout
        )

    subscribe = blocking(asubscribe)

    # ------------------------------------------------------------------ discover

    @on_io_loop
    async def astreams(self, query: str | dict[str, Any] | None = None) -> list[Method]:
        """Streams known now, one entry per stream with all its publishers (the streaming
        counterpart of ``io.methods.methods()``); ``query``: a name or a definition dict."""
        return [m for m in self._session.registry.methods(query) if m.supports_streaming]

    streams = blocking(astreams)

    # io.Connect users look for a ``list``: the same as :meth:`streams` (last in the class, so
    # that the name ``list`` means the builtin everywhere above)
    alist = astreams
    list = streams
