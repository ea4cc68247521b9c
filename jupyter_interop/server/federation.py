"""The federation link: one hub's bridge to the other hubs of its space, through NATS
(docs/FEDERATION.md).

The hub core knows nothing of NATS. The link is a client of its own hub through connections
attached to the hub's gateway service in process (``server/inprocess.py``: no socket),
authenticated with the hub's federation token (``hub/core.py:_federated_hello``):

- a hidden *observer* reads the hub's announcements, so the link knows the local peers and
  their methods (``federation_state.py:LocalPeers``) and publishes them on
  ``ji.<space>.hub.<hub>.peers`` at every change and every heartbeat interval;
- one *proxy* connection per peer of another hub stands for that peer here: same peer id
  and identity, ``meta.local`` false with its hub, the same methods; an ``invoke`` it gets
  becomes a NATS request to that hub, the reply its ``yield`` or ``error``; and the calls
  other hubs ask for on ``ji.<space>.hub.<hub>.invoke`` go through their caller's proxy,
  opened from the request when no snapshot brought it yet (``RemoteHubs.meet``).
- a hidden *contexts* peer carries the retained contexts to and from the space's KV bucket
  (``federation_contexts.py``), when the NATS server has JetStream.

A hub that says goodbye, or falls silent for ``federation_heartbeat_timeout``, loses its
proxies: closing a proxy is a local peer leaving, so calls pending on it fail at once with
"Peer has left while waiting for result" (``hub/agm.py``).

The bus and streams across hubs ride on the same connections: ``federation_bus.py`` and
``federation_streams.py``.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import itertools
import logging
import secrets
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import orjson

from ..hub.core import InteropHub
from ..protocol import ProtocolError, Reason, messages
from ..protocol.chunks import ReassemblyBudget
from ..protocol.limits import (
    FEDERATION_BUS_READY_TIMEOUT,
    FEDERATION_MAX_CONTEXT_BYTES,
    FEDERATION_MAX_QUEUE_BYTES,
    FEDERATION_MAX_VALUE_BYTES,
)
from ..protocol.wire import (
    ADD_INTEREST_TYPE,
    BUS_DOMAIN,
    ERROR_TYPE,
    EVENT_MANY_TYPE,
    EVENT_TYPE,
    FEDERATION_AUTH_METHOD,
    FEDERATION_CONTEXT_PUBLISH_TYPE,
    FEDERATION_KEY,
    INVOKE_TYPE,
    REMOVE_INTEREST_TYPE,
    RESULT_TYPE,
)
from .federation_access import inbox_prefix, public_url
from .federation_bus import FederationBus
from .federation_calls import CallReplies
from .federation_contexts import ContextsLink
from .federation_credentials import CREDENTIALS_SETTING, NKEY_SEED_SETTING, nats_auth_options
from .federation_nats import Reconnects, server_caught_up
from .federation_queue import BUS, STREAMS, LinkQueue, Publication
from .federation_state import LocalPeers, PeerChanges, RemoteHubs, RemotePeer
from .federation_streams import FederationStreams
from .federation_values import ValueTooLarge, ValueTransfers
from .inprocess import InProcessConnection

if TYPE_CHECKING:
    from .service import GatewayService

__all__ = ["FederationLink", "FederationState", "subjects"]

Message = dict[str, Any]

#: how long a call across hubs may wait for its reply (the caller's own timeout is usually
#: shorter; a dead hub fails it sooner, through the heartbeat timeout)
CALL_TIMEOUT = 3600.0


#: the first connection to NATS: seconds per attempt, attempts, seconds between them
CONNECT_TIMEOUT = 2.0
CONNECT_ATTEMPTS = 2
RECONNECT_WAIT = 0.5


def subjects(space: str, hub: str) -> dict[str, str]:
    """The NATS subjects of ``hub`` in ``space`` (docs/FEDERATION.md, "Subjects")."""
    base = f"ji.{space}.hub.{hub}"
    return {"peers": f"{base}.peers", "bye": f"{base}.bye", "invoke": f"{base}.invoke"}


#: the messages of a proxy that keep binary values: calls it serves, results of calls it makes
_PROXY_VALUES = frozenset({INVOKE_TYPE, RESULT_TYPE, ERROR_TYPE})
#: the observer's: it makes no calls, but binary frames bring it large messages in chunks,
#: and the stream items and bus messages it carries to other hubs (``event``, ``event-many``)
_OBSERVER_VALUES = frozenset({RESULT_TYPE, ERROR_TYPE, EVENT_TYPE, EVENT_MANY_TYPE})
#: the contexts link's: the changes of contexts it writes into the space's bucket
_CONTEXT_VALUES = frozenset({FEDERATION_CONTEXT_PUBLISH_TYPE})


class _Proxy:
    """Stands for one peer of another hub on this hub (docs/FEDERATION.md, "Remote peers")."""

    def __init__(self, link: FederationLink, remote: RemotePeer) -> None:
        self.link = link
        self.remote = remote
        self.socket = InProcessConnection(link.service, self._receive, _PROXY_VALUES, link.budget)
        self.calls: set[asyncio.Task[None]] = set()
        #: the calls this proxy sends to its peer's hub, and those waiting for a reply
        self.invoke_subject = subjects(link.space, remote.hub)["invoke"]
        self.sent: set[str] = set()
        #: request ids of the calls this proxy makes here for its peer (``FederationLink``)
        self.placed: set[str] = set()
        self.opening = asyncio.ensure_future(self._open())
        self.opening.add_done_callback(self._opened)

    def _opened(self, opening: asyncio.Task[None]) -> None:
        if not opening.cancelled() and opening.exception() is not None:
            self.link.log.warning(
                "Interop federation: no proxy for peer %s of hub %s: %s",
                self.remote.peer_id,
                self.remote.hub,
                opening.exception(),
            )

    async def _open(self) -> None:
        remote = self.remote
        await self.socket.open(
            {
                "identity": remote.identity,
                "authentication": self.link.authentication,
                FEDERATION_KEY: {"peer_id": remote.peer_id, "hub": remote.hub},
            }
        )
        if remote.methods:
            self.register(list(remote.methods.values()))

    def register(self, methods: list[Message]) -> None:
        self.socket.send(messages.register(methods))

    def unregister(self, method_ids: list[str]) -> None:
        self.socket.send(messages.unregister(method_ids))

    def ready(self) -> bool:
        """Is the proxy on its hub, able to make calls in its peer's name?"""
        opening = self.opening
        return (
            opening.done()
            and not opening.cancelled()
            and opening.exception() is None
            and not self.socket.closed.is_set()
        )

    def _receive(self, message: Message) -> None:
        mtype = message.get("type")
        if mtype in (RESULT_TYPE, ERROR_TYPE) and message.get("request_id") in self.placed:
            self.placed.discard(str(message["request_id"]))
            self.link.answered(message)
        elif mtype == INVOKE_TYPE:
            task = asyncio.ensure_future(self._forward(message))
            self.calls.add(task)
            task.add_done_callback(self.calls.discard)
        elif mtype == ADD_INTEREST_TYPE and self.link.streams is not None:
            remote = self.remote
            self.link.streams.add_interest(remote.peer_id, remote.hub, self.socket.send, message)
        elif mtype == REMOVE_INTEREST_TYPE and self.link.streams is not None:
            self.link.streams.remove_interest(message)
        elif mtype == ERROR_TYPE:
            self.link.log.info(
                "Interop federation: the hub refused proxy %s: %s",
                self.remote.peer_id,
                message.get("reason"),
            )

    async def _forward(self, invoke: Message) -> None:
        invocation_id = invoke.get("invocation_id")
        request = {
            "peer_id": self.remote.peer_id,
            "method_id": invoke.get("method_id"),
            # the owning hub makes the call in this caller's name (its proxy there)
            "caller": await self.link.caller(str(invoke.get("caller_id"))),
            "arguments": invoke.get("arguments"),
            "arguments_kv": invoke.get("arguments_kv"),
            "context": invoke.get("context") or {},
        }
        replies = self.link.replies
        assert replies is not None, "the link is not started"
        answer = functools.partial(self._answer, invocation_id)
        refused = self.link.refused(self.remote.hub)
        if refused is not None:
            await answer({"error": {"reason": refused}})
            return
        await replies.call(self.remote.hub, self.invoke_subject, request, answer, self.sent)

    async def _answer(self, invocation_id: Any, reply: Message) -> None:
        """The owning hub's reply becomes the caller's ``yield`` or ``error`` here."""
        if "error" in reply:
            error = reply["error"] if isinstance(reply["error"], dict) else {}
            self.socket.send(
                messages.invocation_error(
                    invocation_id,
                    error.get("reason_uri") or Reason.INVOCATION_FAILURE,
                    str(error.get("reason") or "The remote call failed"),
                    error.get("context") or {},
                )
            )
        else:
            await self.socket.send_value(messages.yield_result(invocation_id, reply.get("result")))

    def close(self) -> None:
        """The remote peer left: this peer leaves the hub (its pending calls fail there)."""
        self.opening.cancel()
        for task in list(self.calls):
            task.cancel()
        if self.link.streams is not None:
            self.link.streams.proxy_closed(self.remote.peer_id)
        self.link.caller_left(self.placed)
        if self.link.replies is not None:
            self.link.replies.forget(self.sent)
        self.sent.clear()
        self.socket.close()


class FederationLink:
    """Joins the hub of ``service`` to its space on the NATS server at ``nats_url``."""

    def __init__(
        self,
        *,
        hub_id: str,
        space: str,
        nats_url: str,
        service: GatewayService,
        federation_token: str,
        heartbeat_interval: float,
        heartbeat_timeout: float,
        log: logging.Logger,
        credentials: str = "",
        nkey_seed: str = "",
        max_value_bytes: int = FEDERATION_MAX_VALUE_BYTES,
        bus_ready_timeout: float = FEDERATION_BUS_READY_TIMEOUT,
        max_context_bytes: int = FEDERATION_MAX_CONTEXT_BYTES,
        max_queue_bytes: int = FEDERATION_MAX_QUEUE_BYTES,
    ) -> None:
        if heartbeat_timeout <= heartbeat_interval:
            raise ValueError(
                f"federation_heartbeat_timeout ({heartbeat_timeout} s) must be longer than "
                f"federation_heartbeat_interval ({heartbeat_interval} s)"
            )
        self.hub_id = hub_id
        self.space = space
        self.nats_url = nats_url
        #: the hub's gateway service: the link's connections are attached to it in process
        self.service = service
        self.federation_token = federation_token
        #: the ``hello`` authentication of the link's connections to its own hub
        self.authentication = {"method": FEDERATION_AUTH_METHOD, "token": federation_token}
        #: paths of the hub's NATS identity, a .creds file or an nkey seed (or neither)
        self.credentials = credentials
        self.nkey_seed = nkey_seed
        self.heartbeat_interval = heartbeat_interval
        self.bus_ready_timeout = bus_ready_timeout
        self.log = log
        self.subjects = subjects(space, hub_id)
        self.local = LocalPeers()
        self.remote = RemoteHubs(hub_id, heartbeat_timeout)
        self.proxies: dict[str, _Proxy] = {}
        #: bytes of call values the link holds at a time (``federation_values.py``)
        self.budget = ReassemblyBudget(max_value_bytes)
        #: the largest federated context value (``federation_context_objects.py``)
        self.max_context_bytes = max_context_bytes
        self.values: ValueTransfers | None = None
        #: the calls this hub's proxies sent to other hubs, waiting for their replies
        self.replies: CallReplies | None = None
        self._nats: Any = None
        self._observer: InProcessConnection | None = None
        self._calls: dict[str, asyncio.Future[Message]] = {}
        #: the request ids of those calls (unique on each proxy's connection: seen by no one
        #: else)
        self._call_ids = itertools.count(1)
        self._tasks: set[asyncio.Task[None]] = set()
        #: waits for the NATS server start over on a new connection (federation_nats.py)
        self._reconnects = Reconnects()
        self._publish_scheduled = False
        #: a snapshot is being published; another is due once it is (``_announce``)
        self._announcing = False
        self._announce_again = False
        #: the ``seq`` of this hub's next snapshot
        self._seq = 1
        #: local peers a proxy's caller waits for the observer to read (``caller``)
        self._announced: dict[str, asyncio.Future[None]] = {}
        #: NATS publications waiting to go, in order, bounded (``publish_soon``)
        self.queue = LinkQueue(max_queue_bytes, self._queue_full, self._queue_drained)
        self._draining = False
        self.bus: FederationBus | None = None
        #: the space's contexts in its KV bucket (None: JetStream unavailable, contexts local)
        self.contexts: ContextsLink | None = None
        self.streams: FederationStreams | None = None
        #: the last error NATS reported to this link (a refusal, a permissions violation)
        self._nats_error: Exception | None = None
        self._denied: list[str] = []
        #: the link is closing its NATS connection itself (nothing to say about it)
        self._closing = False
        #: why nats-py closed the connection on its own (it no longer retries), or ""
        self._gave_up = ""
        #: the server refused the credentials as the link reconnected (said once per outage)
        self._refused = False

    async def _on_nats_error(self, error: Exception) -> None:
        """nats-py's error callback: a permissions violation means this hub's credentials
        are not those of its space (docs/FEDERATION.md, "Security model")."""
        if not _is_refusal(self._nats_error):  # a refusal outweighs the resets after it
            self._nats_error = error
        # (None while the link starts: its start fails then, saying why)
        nc = self._nats
        if nc is not None and not nc.is_closed and _is_refusal(error) and not self._refused:
            self._refused = True  # (once per outage: nats-py retries every RECONNECT_WAIT)
            self.log.warning(
                "Interop federation: the NATS server at %s refuses this hub's credentials "
                "(%s); the link keeps trying: fix %s",
                public_url(self.nats_url),
                error,
                self._identity_settings(),
            )
        if "permissions violation" in str(error).lower():
            self._denied.append(str(error))
            self.log.error("Interop federation: NATS denies space %r: %s", self.space, error)

    def _identity_settings(self) -> str:
        """The settings that say who this hub is to NATS, for an error to name."""
        if self.credentials:
            return f"c.InteropHub.federation_url or {CREDENTIALS_SETTING}"
        if self.nkey_seed:
            return f"c.InteropHub.federation_url or {NKEY_SEED_SETTING}"
        return "c.InteropHub.federation_url (and the credentials it carries)"

    async def start(self) -> None:
        """Connect to NATS and to the hub, then announce this hub's peers."""
        self._nats = await self._connect()
        values = self.values = ValueTransfers(
            nats=self._nats,
            space=self.space,
            hub_id=self.hub_id,
            budget=self.budget,
            spawn=self._spawn,
        )
        await values.start()
        self.replies = CallReplies(self._nats, values, self._spawn, CALL_TIMEOUT)
        await self.replies.start()
        await self._subscribe()
        await self._join_hub(values)
        self.contexts = await self._join_contexts()
        self._spawn(self._heartbeat())
        self.log.info(
            "Interop federation: hub %s joined space %r at %s",
            self.hub_id,
            self.space,
            public_url(self.nats_url),
        )

    async def _connect(self) -> Any:
        """The NATS connection: the first attempt fails within seconds (a wrong URL is said
        at once), then a connection that drops is retried for as long as the hub runs."""
        import nats  # the federation extra (setup.cfg); only a federated hub needs it

        options: dict[str, Any] = {
            "name": f"jupyter-interop {self.hub_id}",
            "connect_timeout": CONNECT_TIMEOUT,
            "max_reconnect_attempts": CONNECT_ATTEMPTS,
            "reconnect_time_wait": RECONNECT_WAIT,
            # a hub never needs its own messages back (the bus relies on it: no echo)
            "no_echo": True,
            "reconnected_cb": self._reconnected,
            "disconnected_cb": self._disconnected,
            "closed_cb": self._closed,
            # replies come through the space's own inboxes, which only its user may read
            "inbox_prefix": inbox_prefix(self.space),
            "error_cb": self._on_nats_error,
        }
        options.update(nats_auth_options(self.credentials, self.nkey_seed))
        try:
            connection = await nats.connect(self.nats_url, **options)
        except Exception as error:  # nats-py: NoServersError, or the server's refusal
            why = self._nats_error if self._nats_error is not None else error
            said = "it refused the credentials: Authorization Violation"
            raise ConnectionError(
                f"Interop federation: no NATS server accepts this hub at "
                f"{public_url(self.nats_url)} ({said if _is_refusal(why) else repr(why)}): "
                f"start one (nats-server) or fix {self._identity_settings()}"
            ) from error
        connection.options["max_reconnect_attempts"] = -1
        return connection

    async def _subscribe(self) -> None:
        """Subscribe to the other hubs' snapshots and goodbyes and to this hub's calls;
        PermissionError when the NATS server denies this hub the space."""
        base = f"ji.{self.space}.hub.*"
        await self._nats.subscribe(f"{base}.peers", cb=self._on_peers)
        await self._nats.subscribe(f"{base}.bye", cb=self._on_bye)
        await self._nats.subscribe(self.subjects["invoke"], cb=self._on_invoke)
        await server_caught_up(self._nats, CONNECT_TIMEOUT)  # (its answer: a denial, if any)
        if self._denied:
            raise PermissionError(
                f"Interop federation: the NATS server at {public_url(self.nats_url)} does not "
                f"let this hub's credentials use space {self.space!r} ({self._denied[0]}): give "
                "the hub the credentials of that space, or set c.InteropHub.federation_space "
                "to the space they are for"
            )

    async def _join_hub(self, values: ValueTransfers) -> None:
        """Open the observer on the hub, with the streams and the bus that ride on it (their
        large values cross through ``values``)."""
        observer = self._observer = InProcessConnection(
            self.service, self._observe, _OBSERVER_VALUES, self.budget
        )
        self.streams = FederationStreams(
            space=self.space,
            hub_id=self.hub_id,
            nats=self._nats,
            observe=observer.send,
            publish=self._publisher(STREAMS),
            values=values,
            spawn=self._spawn,
            log=self.log,
            reconnects=self._reconnects,
            refused=self.refused,
        )
        await self.streams.start()
        self.bus = FederationBus(
            space=self.space,
            nats=self._nats,
            send=observer.send,
            publish=self._publisher(BUS),
            values=values,
            spawn=self._spawn,
            log=self.log,
            ready_timeout=self.bus_ready_timeout,
            reconnects=self._reconnects,
        )
        await observer.open(
            {
                "identity": {},
                "authentication": self.authentication,
                FEDERATION_KEY: {"observer": True},
            }
        )
        observer.send(messages.join(BUS_DOMAIN))

    async def _join_contexts(self) -> ContextsLink | None:
        """Federate the retained contexts through the space's KV bucket (docs/FEDERATION.md,
        "Contexts and channels"); without JetStream they stay local to each hub."""
        service = self.service
        link = ContextsLink(
            nats=self._nats,
            hub_id=self.hub_id,
            space=self.space,
            make_socket=lambda receive: InProcessConnection(service, receive, _CONTEXT_VALUES),
            log=self.log,
            max_bytes=self.max_context_bytes,
        )
        try:
            await link.open_bucket()
        except Exception as error:
            self.log.warning(
                "Interop federation: contexts stay local to each hub: no JetStream "
                "key-value bucket at %s (%r); start nats-server with -js",
                self.nats_url,
                error,
            )
            return None
        await link.start({"identity": {}, "authentication": self.authentication})
        return link

    async def _disconnected(self) -> None:
        """nats-py lost the server and retries (docs/FEDERATION.md, "Failures"): one line
        per drop, so that a log says since when nothing crossed (nats-py keeps no cause)."""
        nc = self._nats
        if self._closing or nc is None or nc.is_closed:  # (closed: :meth:`_closed` says it)
            return
        self.log.warning(
            "Interop federation: lost the NATS server at %s; retrying every %s s, meanwhile "
            "nothing crosses between hubs and local peers are served",
            public_url(self.nats_url),
            RECONNECT_WAIT,
        )

    async def _closed(self) -> None:
        """nats-py closed the connection on its own and no longer retries (the server sent
        an error it does not survive, such as a refusal of credentials changed meanwhile)."""
        if self._closing:
            return
        error = self._nats.last_error if self._nats is not None else None
        self._gave_up = f"NATS closed the link's connection for good: {error}"
        self.log.error(
            "Interop federation: the NATS connection to %s is closed for good (%s): nothing "
            "crosses between hubs until this hub restarts",
            public_url(self.nats_url),
            error,
        )

    async def _reconnected(self) -> None:
        self.log.info(
            "Interop federation: back on the NATS server at %s (its subscriptions made again)",
            public_url(self.nats_url),
        )
        self._refused = False
        self._reconnects.happened()
        if self.streams is not None:
            self.streams.reconnected()
        if self.contexts is not None:
            self._spawn(self.contexts.resync())

    def _spawn(self, coroutine: Any) -> None:
        task = asyncio.ensure_future(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def publish_soon(self, subject: str, payload: bytes, reply: str, kind: str) -> None:
        """Publish on NATS after what was queued before (a task per message could reorder
        them); dropped while NATS is away and its buffer is full, or while the link's queue
        is at its bound (``federation_queue.py``)."""
        if not self.queue.put(Publication(subject, payload, reply, kind)):
            return
        if not self._draining:
            self._draining = True
            self._spawn(self._drain())

    def _publisher(self, kind: str) -> Callable[..., None]:
        """``publish_soon`` for the publications of one ``kind`` (the bus's, the streams')."""

        def publish(subject: str, payload: bytes, reply: str = "") -> None:
            self.publish_soon(subject, payload, reply, kind)

        return publish

    async def _drain(self) -> None:
        try:
            while (publication := self.queue.take()) is not None:
                subject, payload, reply, _ = publication
                try:
                    await self._nats.publish(subject, payload, reply=reply)
                except Exception as error:  # nats-py: closed, buffer full, too large
                    self.log.debug("Interop federation: not sent on %s: %s", subject, error)
        finally:
            self._draining = False

    def _queue_full(self) -> None:
        self.log.warning(
            "Interop federation: NATS at %s takes this hub's messages slower than they come: "
            "%d bytes wait (c.InteropHub.federation_max_queue_bytes); until they drain, bus "
            "and stream messages to other hubs are dropped and calls across hubs fail",
            public_url(self.nats_url),
            self.queue.bytes,
        )

    def refused(self, hub: str, what: str = "call") -> str | None:
        """Why a call (or another request, ``what``) to ``hub`` is not sent now (the link's
        queue is full), or None."""
        if not self.queue.full:
            return None
        return (
            f"The {what} to hub {hub} was not sent: NATS takes this hub's messages slower than "
            f"they come ({self.queue.bytes} bytes wait for it, at most "
            f"{self.queue.max_bytes}: c.InteropHub.federation_max_queue_bytes); try again "
            "once they have drained"
        )

    def _queue_drained(self, dropped: dict[str, int]) -> None:
        self.log.warning(
            "Interop federation: NATS takes this hub's messages again; dropped meanwhile: "
            "%d bus and %d stream messages",
            dropped.get(BUS, 0),
            dropped.get(STREAMS, 0),
        )

    # ------------------------------------------------------------- this hub's peers

    def _observe(self, message: Message) -> None:
        if message.get("domain") == BUS_DOMAIN:
            if self.bus is not None:
                self.bus.on_hub_message(message)
            return
        if self.streams is not None and self.streams.on_hub_message(message):
            return
        if self.local.read(message):
            announced = self._announced.pop(str(message.get("new_peer_id")), None)
            if announced is not None and not announced.done():
                announced.set_result(None)
            if not self._publish_scheduled:
                self._publish_scheduled = True
                asyncio.get_running_loop().call_soon(self._publish_now)

    async def caller(self, peer_id: str) -> Message:
        """Who makes a call one of this link's proxies serves, as the owning hub needs it to
        make the call in that caller's name (``RemoteHubs.meet``): its hub, its identity as
        that hub resolved it, and the first snapshot of its hub sure to list it.

        A local caller is read from the observer's announcements; the hub announced it
        before its call reached a proxy, but on another connection, so the link may wait for
        it (at most a heartbeat timeout; without it the owning hub refuses the call)."""
        proxy = self.proxies.get(peer_id)
        if proxy is not None:  # a peer of a third hub (it has its own proxy there)
            remote = proxy.remote
            return {"peer_id": peer_id, "hub": remote.hub, "identity": remote.identity, "seq": 0}
        if peer_id not in self.local.peers:
            announced = self._announced.get(peer_id)
            if announced is None:
                announced = self._announced[peer_id] = asyncio.get_running_loop().create_future()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(asyncio.shield(announced), self.remote.timeout)
            if not announced.done() and self._announced.get(peer_id) is announced:
                del self._announced[peer_id]
        peer = self.local.peers.get(peer_id)
        identity = peer["identity"] if peer is not None else None
        return {"peer_id": peer_id, "hub": self.hub_id, "identity": identity, "seq": self._seq}

    def _publish_now(self) -> None:
        self._publish_scheduled = False
        self._announce()

    def _announce(self) -> None:
        """Publish this hub's snapshot, one publication at a time: nats-py blocks them while
        the NATS server reads nothing ("A slow NATS server"), and the heartbeat must go on
        finding silent hubs meanwhile. A change while one waits goes in the next, taken as
        it is sent."""
        if self._announcing:
            self._announce_again = True
            return
        self._announcing = True
        self._spawn(self._publish())

    async def _publish(self) -> None:
        try:
            again = True
            while again and self._nats is not None and not self._nats.is_closed:
                self._announce_again = False
                snapshot = {"hub": self.hub_id, "seq": self._seq, "peers": self.local.snapshot()}
                self._seq += 1
                await self._nats.publish(self.subjects["peers"], orjson.dumps(snapshot))
                again = self._announce_again
        except Exception as error:  # nats-py: closed, buffer full while reconnecting
            self.log.debug("Interop federation: snapshot not sent: %s", error)
        finally:
            self._announcing = False

    async def _heartbeat(self) -> None:
        """Announce this hub's peers every interval, and drop the hubs that fell silent."""
        while True:
            self._announce()
            now = time.monotonic()
            if self.replies is not None:
                await self.replies.expire(now)
            for hub in self.remote.silent(now):
                self.log.warning("Interop federation: hub %s fell silent, its peers leave", hub)
                self._hub_left(hub)
            await asyncio.sleep(self.heartbeat_interval)

    # ----------------------------------------------------------- the other hubs

    async def _on_peers(self, msg: Any) -> None:
        try:
            snapshot = orjson.loads(msg.data)
            hub, seq = str(snapshot["hub"]), int(snapshot["seq"])
            changes = self.remote.observe(hub, snapshot["peers"], time.monotonic(), seq)
        except (ValueError, KeyError, TypeError) as error:
            self.log.warning("Interop federation: bad snapshot on %s: %s", msg.subject, error)
            return
        self._apply(changes)

    async def _on_bye(self, msg: Any) -> None:
        hub = msg.subject.split(".")[3]
        if hub != self.hub_id:
            self._hub_left(hub)

    def _hub_left(self, hub: str) -> None:
        self._apply(self.remote.leave(hub))
        if self.streams is not None:
            self.streams.hub_left(hub)

    def _apply(self, changes: PeerChanges) -> None:
        for peer in changes.removed:
            proxy = self.proxies.pop(peer.peer_id, None)
            if proxy is not None:
                proxy.close()
        for peer in changes.added:
            self.proxies[peer.peer_id] = _Proxy(self, peer)
        for peer, method_ids in changes.methods_removed:
            proxy = self.proxies.get(peer.peer_id)
            if proxy is not None and proxy.opening.done():
                proxy.unregister(method_ids)
        for peer, methods in changes.methods_added:
            proxy = self.proxies.get(peer.peer_id)
            # a proxy still opening registers its peer's methods as they are when it opens
            if proxy is not None and proxy.opening.done() and peer not in changes.added:
                proxy.register(methods)

    # ------------------------------------------------------------- calls across

    async def _on_invoke(self, msg: Any) -> None:
        # one task per call: a subscription's callbacks run one after the other
        self._spawn(self._invoke(msg))

    def answered(self, message: Message) -> None:
        """The ``result`` or ``error`` of a call made for another hub."""
        future = self._calls.pop(str(message.get("request_id")), None)
        if future is not None and not future.done():
            future.set_result(message)

    def caller_left(self, request_ids: set[str]) -> None:
        """The proxy that made these calls closed: their callers get an error at once."""
        for request_id in request_ids:
            reason = "The caller left its hub while waiting for result"
            self.answered({"type": ERROR_TYPE, "request_id": request_id, "reason": reason})
        request_ids.clear()

    async def _invoke(self, msg: Any) -> None:
        values = self.values
        try:
            request = await values.unpack(msg.data) if values is not None else None
            if not isinstance(request, dict):
                raise ValueError("not a call")
        except ValueTooLarge as error:
            await msg.respond(orjson.dumps({"error": {"reason": str(error)}}))
            return
        except (ValueError, ProtocolError) as error:
            await msg.respond(orjson.dumps({"error": {"reason": f"Bad call: {error}"}}))
            return
        except Exception as error:  # nats-py: the caller's hub stopped serving its value
            reason = f"The call's arguments did not arrive: {error!r}"
            await msg.respond(orjson.dumps({"error": {"reason": reason}}))
            return
        try:
            answer = await self._call(request)
        except ValueError as error:
            await msg.respond(orjson.dumps({"error": {"reason": f"Bad call: {error}"}}))
            return
        if answer.get("type") == RESULT_TYPE:
            reply: Message = {"result": answer.get("result")}
        else:
            reply = {
                "error": {
                    "reason_uri": answer.get("reason_uri"),
                    "reason": answer.get("reason"),
                    "context": answer.get("context"),
                }
            }
        assert values is not None
        try:
            payload = values.pack(reply)
        except ValueTooLarge as error:
            payload = orjson.dumps({"error": {"reason": str(error)}})
        await msg.respond(payload)

    async def _call(self, request: Message) -> Message:
        """Make a call on this hub for another hub's peer, in the caller's name: through
        its proxy here, so the method's server sees who calls."""
        proxy = await self._caller_proxy(request.get("caller"))
        request_id = f"x{next(self._call_ids)}"
        future: asyncio.Future[Message] = asyncio.get_running_loop().create_future()
        self._calls[request_id] = future
        proxy.placed.add(request_id)
        await proxy.socket.send_value(
            messages.call(
                request.get("peer_id"),
                request.get("method_id"),
                request.get("arguments_kv"),
                request_id=request_id,
                arguments=request.get("arguments"),
                context=request.get("context") or {},
            )
        )
        return await future

    async def _caller_proxy(self, caller: Any) -> _Proxy:
        """The caller's proxy here, opened from the request when no snapshot of its hub
        listed it yet (it joined less than an announcement ago); ValueError when the request
        names no peer of another hub."""
        peer, changes = self.remote.meet(caller, time.monotonic())
        self._apply(changes)
        proxy = self.proxies.get(peer.peer_id)
        if proxy is not None and not proxy.opening.done():  # (a done one costs no loop turn)
            await asyncio.wait([proxy.opening])
        if proxy is None or not proxy.ready():
            raise ValueError(f"caller {peer.peer_id} has no proxy on this hub")
        return proxy

    # ---------------------------------------------------------------- status, close

    def status(self) -> dict[str, Any]:
        """What the views show: the space, whether NATS is connected, the remote hubs
        with how many peers each has and how many seconds ago it was last heard, and the
        large values the link holds; an ``error`` once nats-py closed the connection on its
        own."""
        status: dict[str, Any] = {
            "connected": bool(self._nats is not None and self._nats.is_connected),
            "remote_hubs": self.remote.summary(time.monotonic()),
            "contexts": self.contexts.status() if self.contexts is not None else None,
            "bus": self.bus.status() if self.bus is not None else None,
            "streams": self.streams.status() if self.streams is not None else None,
            "values": self.values.status() if self.values is not None else None,
            "queue": self.queue.status(),
        }
        if self._gave_up:
            status["error"] = self._gave_up
        return status

    async def close(self) -> None:
        """Say goodbye (the other hubs drop this hub's peers at once), then disconnect."""
        self._closing = True
        for task in list(self._tasks):
            task.cancel()
        for proxy in self.proxies.values():
            proxy.close()
        self.proxies.clear()
        if self._observer is not None:
            self._observer.close()
        if self.bus is not None:
            self.bus.close()
        if self.contexts is not None:
            await self.contexts.close()
        if self.streams is not None:
            self.streams.close()
        if self.values is not None:
            self.values.close()
        if self.replies is not None:
            self.replies.close()
        for future in self._calls.values():
            future.cancel()
        nc = self._nats
        if nc is not None and not nc.is_closed:
            with contextlib.suppress(Exception):
                await nc.publish(self.subjects["bye"], b"{}")
                await nc.flush(timeout=2)
            await nc.close()


def _is_refusal(error: Exception | None) -> bool:
    """NATS refused the credentials (nats-py reports it as an error, or as its own type)."""
    return error is not None and (
        "authorization" in str(error).lower() or type(error).__name__ == "AuthorizationError"
    )


class FederationState:
    """The ``federation`` view of a hub (``interop/api/federation``): off, or its URL without
    credentials, its space and its link's status, or why the link could not start."""

    def __init__(self, hub: InteropHub) -> None:
        self.hub = hub
        self.link: FederationLink | None = None
        self.error = ""

    def status(self) -> dict[str, Any]:
        hub = self.hub
        if not hub.federation_url:
            return {"enabled": False}
        status: dict[str, Any] = {
            "enabled": True,
            "url": public_url(hub.federation_url),
            "space": hub.federation_space,
            "hub": hub.hub_id,
            "connected": False,
            "remote_hubs": [],
            "error": self.error,
        }
        if self.link is not None:
            status.update(self.link.status())
        return status


async def join_federation(
    state: FederationState, service: GatewayService, log: logging.Logger
) -> FederationLink | None:
    """The started link of ``state.hub`` (``hub/core.py:InteropHub``) when its
    ``federation_url`` is set, else None; ``state`` shows it, or why it failed to start.
    The link's connections are attached to ``service`` in process (``server/inprocess.py``),
    authenticated by a fresh federation token as any other connection would be."""
    hub = state.hub
    if not hub.federation_url:
        return None
    hub.federation_token = secrets.token_urlsafe(32)
    link = FederationLink(
        hub_id=hub.hub_id,
        space=hub.federation_space,
        nats_url=hub.federation_url,
        credentials=hub.federation_credentials,
        nkey_seed=hub.federation_nkey_seed,
        service=service,
        federation_token=hub.federation_token,
        heartbeat_interval=hub.federation_heartbeat_interval,
        heartbeat_timeout=hub.federation_heartbeat_timeout,
        log=log,
        max_value_bytes=hub.federation_max_value_bytes,
        bus_ready_timeout=hub.federation_bus_ready_timeout,
        max_context_bytes=hub.federation_max_context_bytes,
        max_queue_bytes=hub.federation_max_queue_bytes,
    )
    try:
        await link.start()
    except BaseException as error:
        state.error = str(error)
        await link.close()
        raise
    state.link = link
    return link
