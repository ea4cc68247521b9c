"""The hub core: a transport-neutral GW3 state machine.

``handle(conn, message) -> [(conn, message), ...]``: messages are processed in arrival order and
the core never touches a socket, so every rule is unit-testable and the order is total per hub.
Domain logic lives in ``agm``, ``contexts`` and ``bus``; this module owns peers, the global
domain (hello, authentication, join/leave, tokens) and dispatch.
"""

from __future__ import annotations

import getpass
import hmac
import itertools
import os
import secrets
import socket
from typing import Any

import orjson
from traitlets import Any as AnyTrait
from traitlets import Dict, Float, Int, List, TraitError, Unicode, default, validate
from traitlets.config import LoggingConfigurable

from ..protocol import ProtocolError, Reason, messages
from ..protocol.limits import (
    FEDERATION_BUS_READY_TIMEOUT,
    FEDERATION_MAX_CONTEXT_BYTES,
    FEDERATION_MAX_QUEUE_BYTES,
    FEDERATION_MAX_VALUE_BYTES,
)
from ..protocol.wire import (
    ACCESS_TOKEN_AUTH_METHOD,
    AGM_DOMAIN,
    BINARY_EXTENSION,
    BUS_DOMAIN,
    CHANNEL_CHANGED_TYPE,
    CHANNELS_EXTENSION,
    CONTEXT_DOMAIN,
    CREATE_TOKEN_TYPE,
    DOMAINS,
    ENV_FEDERATION_CREDENTIALS,
    ENV_FEDERATION_NKEY_SEED,
    ENV_FEDERATION_SPACE,
    ENV_FEDERATION_URL,
    EXTENSIONS_KEY,
    FEDERATION_APPLICATION,
    FEDERATION_AUTH_METHOD,
    FEDERATION_KEY,
    GATEWAY_TOKEN_AUTH_METHOD,
    GET_CHANNEL_RESTRICTIONS_TYPE,
    GLOBAL_DOMAIN,
    HELLO_TYPE,
    JOIN_TYPE,
    LEAVE_TYPE,
    META_HUB_KEY,
    METRICS_DOMAIN,
    MOVE_TO_CHANNEL_TYPE,
    PING_TYPE,
    RESTRICT_CHANNEL_TYPE,
    SECRET_AUTH_METHOD,
    SHM_EXTENSION,
    SHM_PROOF_TYPE,
    SUPPORTED_EXTENSIONS,
    TOKEN_TYPE,
    WELCOME_TYPE,
)
from ._fields import field, ident, optional
from ._services import Handler
from .agm import AgmDomain
from .bus import BusDomain
from .channels import DEFAULT_CHANNELS, ChannelRegistry
from .connection import Outgoing, PeerConn
from .contexts import ContextDomain
from .peers import LOCAL_META_JSON, Message, Peer
from .views import HubViews

__all__ = ["AVAILABLE_DOMAINS", "SUPPORTED_EXTENSIONS", "InteropHub", "notebook_name"]

AVAILABLE_DOMAINS: list[Message] = [
    {"uri": AGM_DOMAIN, "version": 1, "description": "Interop methods and streams"},
    {"uri": BUS_DOMAIN, "version": 1, "description": "Publish/subscribe on topics"},
    {"uri": CONTEXT_DOMAIN, "version": 2, "description": "Shared contexts"},
    {"uri": METRICS_DOMAIN, "version": 1, "description": "Accepted and discarded"},
]


class InteropHub(LoggingConfigurable):
    """One hub: peers, methods, streams, contexts, channels and bus subscriptions."""

    token = Unicode(
        "", help="Interop token accepted in hello (access-token or secret). Empty: trusted only."
    ).tag(config=True)
    user = Unicode(help="User name reported in every resolved identity.").tag(config=True)
    machine = Unicode(help="Machine name reported in every resolved identity.").tag(config=True)
    max_methods_per_peer = Int(
        10_000, help="Methods (and streams) one peer may register at once."
    ).tag(config=True)
    max_subscriptions_per_peer = Int(
        100_000, help="Stream subscriptions one peer may hold at once."
    ).tag(config=True)
    max_contexts_per_peer = Int(10_000, help="Contexts one peer may create.").tag(config=True)
    max_bus_subscriptions_per_peer = Int(
        10_000, help="Bus topic subscriptions one peer may hold at once."
    ).tag(config=True)
    channels = List(
        Dict(),
        default_value=DEFAULT_CHANNELS,
        help="Channel definitions {name, meta: {color}}; io.Connect's ten colours by default.",
    ).tag(config=True)
    hub_id = Unicode(help="Prefix that keeps peer and context ids unique across hubs.")
    store = AnyTrait(None, allow_none=True, help="ContextStore persisting retained contexts.")
    federation_token = Unicode(
        "",
        help="Secret of this hub's own federation link (server/federation.py), set by the "
        "server when federation is on; empty: no connection may stand for a remote peer.",
    )
    federation_url = Unicode(
        help="NATS URL (nats://host:port, or nats://user:password@host:port for a NATS user "
        "of the space) of the federation this hub joins (docs/FEDERATION.md). Default: "
        f"${ENV_FEDERATION_URL}, else empty: the hub serves its own peers only.",
    ).tag(config=True)
    federation_credentials = Unicode(
        help="Path of a NATS credentials file (.creds: user JWT and nkey seed, NATS's "
        "decentralised authentication) for the federation. Default: "
        f"${ENV_FEDERATION_CREDENTIALS}, else empty: none (or the user and password in "
        "federation_url).",
    ).tag(config=True)
    federation_nkey_seed = Unicode(
        help="Path of a file holding the NATS user nkey seed (SU...) this hub connects with, "
        "for a nats-server that lists its users by nkey. Default: "
        f"${ENV_FEDERATION_NKEY_SEED}, else empty: none.",
    ).tag(config=True)
    federation_space = Unicode(
        help="Name of the federated space (one NATS subject token): hubs of one space see each "
        f"other's peers. Default: ${ENV_FEDERATION_SPACE}, else the hub's user, so a "
        "federation joins one user's servers.",
    ).tag(config=True)
    federation_heartbeat_interval = Float(
        1.0, help="Seconds between two announcements of this hub's peers to the federation."
    ).tag(config=True)
    federation_heartbeat_timeout = Float(
        5.0,
        help="Seconds without an announcement after which a remote hub counts as dead: its "
        "peers leave and calls pending on them fail.",
    ).tag(config=True)
    federation_max_value_bytes = Int(
        FEDERATION_MAX_VALUE_BYTES,
        help="Bytes of call values (arguments, results) the federation link holds at a time, "
        "sent and received together; a larger value fails its call with a clear error.",
    ).tag(config=True)
    federation_bus_ready_timeout = Float(
        FEDERATION_BUS_READY_TIMEOUT,
        min=0.0,
        help="Seconds the hub holds the confirmation of a bus subscription on a topic new to "
        "it while the federation link makes its NATS subscription; then it confirms anyway "
        "(logging why), and messages of other hubs on that topic may miss the subscriber.",
    ).tag(config=True)
    federation_max_context_bytes = Int(
        FEDERATION_MAX_CONTEXT_BYTES,
        help="Largest value of a federated (retained) context, encoded: one above it fails "
        "for its writer with a clear error and the context stays as it was on every hub.",
    ).tag(config=True)
    federation_max_queue_bytes = Int(
        FEDERATION_MAX_QUEUE_BYTES,
        min=1,
        help="Bytes of messages to other hubs (bus, streams) the federation link queues "
        "while the NATS server takes them slower than they come (stalled or slow); past it "
        "they are dropped and counted, and calls across hubs fail at once, until the queue "
        "has drained to half of it. Local peers are never affected.",
    ).tag(config=True)
    shared_memory = AnyTrait(
        None,
        allow_none=True,
        help="SharedMemoryArea (server/shm.py) offered to same-host peers; None: bytes only.",
    )

    @default("user")
    def _default_user(self) -> str:
        try:
            return getpass.getuser()
        except Exception:
            return "jupyter"

    @default("machine")
    def _default_machine(self) -> str:
        return socket.gethostname()

    @default("federation_url")
    def _default_federation_url(self) -> str:
        return os.environ.get(ENV_FEDERATION_URL, "")

    @default("federation_credentials")
    def _default_federation_credentials(self) -> str:
        return os.environ.get(ENV_FEDERATION_CREDENTIALS, "")

    @default("federation_nkey_seed")
    def _default_federation_nkey_seed(self) -> str:
        return os.environ.get(ENV_FEDERATION_NKEY_SEED, "")

    @default("federation_space")
    def _default_federation_space(self) -> str:
        space = os.environ.get(ENV_FEDERATION_SPACE)
        return _space_token(space) if space else subject_token(self.user)

    @validate("federation_space")
    def _valid_space(self, proposal: Any) -> str:
        return _space_token(str(proposal["value"]))

    @default("hub_id")
    def _default_hub_id(self) -> str:
        return secrets.token_hex(3)

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._counter = itertools.count(1)
        self.peers: dict[str, Peer] = {}
        #: domain -> peers joined to it, in join order (announcements iterate these)
        self._members: dict[str, dict[str, Peer]] = {}
        self._by_conn: dict[PeerConn, Peer] = {}
        self._gateway_tokens: set[str] = set()
        self.agm = AgmDomain(self)
        self.contexts = ContextDomain(self)
        self.bus = BusDomain(self)
        self.channel_registry = ChannelRegistry(self, self.contexts)
        self.views = HubViews(self)
        #: (domain, type) -> handler: every message of an authenticated peer goes through it
        self._handlers: dict[tuple[str, str], Handler] = {
            (GLOBAL_DOMAIN, JOIN_TYPE): self._join,
            (GLOBAL_DOMAIN, LEAVE_TYPE): self._leave,
            (GLOBAL_DOMAIN, CREATE_TOKEN_TYPE): self._create_token,
            (GLOBAL_DOMAIN, PING_TYPE): lambda peer, msg, out: None,
            (GLOBAL_DOMAIN, HELLO_TYPE): self._hello_again,
            (GLOBAL_DOMAIN, CHANNEL_CHANGED_TYPE): self.channel_registry.handle_changed,
            (GLOBAL_DOMAIN, MOVE_TO_CHANNEL_TYPE): self.channel_registry.handle_move,
            (GLOBAL_DOMAIN, RESTRICT_CHANNEL_TYPE): self.channel_registry.handle_restrict,
            (GLOBAL_DOMAIN, GET_CHANNEL_RESTRICTIONS_TYPE): (
                self.channel_registry.handle_get_restrictions
            ),
            (GLOBAL_DOMAIN, SHM_PROOF_TYPE): self._shm_proof,
        }
        for domain in (GLOBAL_DOMAIN, CONTEXT_DOMAIN):
            for mtype, handler in self.contexts.handlers.items():
                self._handlers[(domain, mtype)] = handler
        for mtype, handler in self.contexts.link_handlers.items():
            self._handlers[(GLOBAL_DOMAIN, mtype)] = handler
        for mtype, handler in self.agm.handlers.items():
            self._handlers[(AGM_DOMAIN, mtype)] = handler
        for mtype, handler in self.bus.handlers.items():
            self._handlers[(BUS_DOMAIN, mtype)] = handler
        if self.store is not None:
            self.contexts.load(self.store.load())
        self.channel_registry.ensure_channel_contexts(self.channels)

    # ------------------------------------------------------------------ ids

    def new_id(self, kind: str) -> str:
        """A fresh id, unique within and across hubs (the hub id is part of it)."""
        return f"{kind}{self.hub_id}-{next(self._counter)}"

    # ------------------------------------------------------------- transport API

    def open(self, conn: PeerConn) -> None:
        """A new connection; nothing is accepted from it until a successful ``hello``."""
        conn.attrs.setdefault("opened", True)

    def peer_for(self, conn: PeerConn) -> Peer | None:
        return self._by_conn.get(conn)

    def handle(self, conn: PeerConn, message: Message) -> Outgoing:
        """Process one decoded message and return the messages to send, in order."""
        out: Outgoing = []
        peer = self._by_conn.get(conn)
        try:
            mtype = field(message, "type", str)
            domain = optional(message, "domain", str, GLOBAL_DOMAIN)
            if peer is None:
                if domain == GLOBAL_DOMAIN and mtype == HELLO_TYPE:
                    self._hello(conn, message, out)
                    return out
                conn.close_reason = "not authenticated"
                raise ProtocolError(
                    Reason.NOT_AUTHENTICATED,
                    f"{mtype!r} refused: send 'hello' with valid authentication first",
                )
            handler = self._handlers.get((domain, mtype))
            if handler is None:
                if domain == METRICS_DOMAIN:
                    return out  # metrics are accepted and discarded
                if domain not in DOMAINS:
                    raise ProtocolError(Reason.UNKNOWN_DOMAIN, f"Unknown domain {domain!r}")
                raise ProtocolError(
                    _unhandled_uri(domain), f"Unknown message type {mtype!r} in domain {domain!r}"
                )
            if domain in _JOIN_FIRST and domain not in peer.domains:
                raise ProtocolError(
                    Reason.NOT_JOINED, f"Join the {domain!r} domain before using it"
                )
            handler(peer, message, out)
        except ProtocolError as error:
            out.extend(self.error_reply(conn, message, error))
        except Exception as error:  # a bug must not take the hub down for everybody
            self.log.exception("Interop hub failed on %s from %s", message.get("type"), conn)
            out.extend(
                self.error_reply(
                    conn,
                    message,
                    ProtocolError(Reason.UNHANDLED, f"Internal hub error: {error!r}"),
                )
            )
        return out

    def error_reply(
        self, conn: PeerConn, message: Message | None, error: ProtocolError
    ) -> Outgoing:
        """A GW3 ``error`` for a request that failed, logged once."""
        message = message if isinstance(message, dict) else {}
        peer = self._by_conn.get(conn)
        domain = message.get("domain") if isinstance(message.get("domain"), str) else GLOBAL_DOMAIN
        if domain not in DOMAINS and domain != METRICS_DOMAIN:
            domain = GLOBAL_DOMAIN
        self.log.info(
            "Interop: refused %r from %s: %s (%s)",
            message.get("type"),
            peer or conn,
            error.reason,
            error.reason_uri,
        )
        reply = messages.error(
            domain,
            message.get("request_id"),
            peer.peer_id if peer else None,
            error.reason_uri,
            error.reason,
            error.context,
        )
        return [(conn, reply)]

    def close(self, conn: PeerConn, reason: str = "Peer has been removed") -> Outgoing:
        """The connection is gone: release everything its peer held, notify the others."""
        out: Outgoing = []
        peer = self._by_conn.pop(conn, None)
        if peer is None:
            return out
        self._detach_agm(peer, out)
        self.peers.pop(peer.peer_id, None)
        self.bus.detach(peer, out)
        self.contexts.detach(peer, out)
        self.channel_registry.detach(peer, out)
        if self.shared_memory is not None:
            self.shared_memory.forget(peer.peer_id)
        for domain in list(peer.domains):
            self._exit(peer, domain)
        self.log.debug("Interop: peer %s left (%s)", peer, reason)
        return out

    def context_snapshot(self, context_id: str) -> dict[str, Any] | None:
        """Current full data of a context (for coalescing queued updates into one reset)."""
        ctx = self.contexts.by_id.get(context_id)
        return ctx.data if ctx is not None else None

    def shutdown(self) -> None:
        """Flush persisted state; safe to call twice."""
        if self.store is not None:
            self.store.flush()

    # --------------------------------------------------------------- helpers

    def send(self, out: Outgoing, peer: Peer, message: Message) -> None:
        message["peer_id"] = peer.peer_id
        out.append((peer.conn, message))

    def success(self, out: Outgoing, peer: Peer, request: Message, **extra: Any) -> None:
        reply = messages.success(
            request.get("domain", GLOBAL_DOMAIN), request.get("request_id"), peer.peer_id
        )
        if extra:
            reply.update(extra)
        out.append((peer.conn, reply))

    def peers_in(self, domain: str) -> list[Peer]:
        """Peers joined to ``domain`` (an index, not a scan of all peers)."""
        return list(self._members.get(domain, {}).values())

    def _enter(self, peer: Peer, domain: str) -> None:
        peer.domains.add(domain)
        self._members.setdefault(domain, {})[peer.peer_id] = peer

    def _exit(self, peer: Peer, domain: str) -> None:
        peer.domains.discard(domain)
        self._members.get(domain, {}).pop(peer.peer_id, None)

    # ----------------------------------------------------------- global domain

    def _authenticated(self, conn: PeerConn, auth: Any) -> bool:
        if conn.trusted:
            return True
        if not isinstance(auth, dict):
            return False
        method = auth.get("method")
        if method == ACCESS_TOKEN_AUTH_METHOD:
            offered = auth.get("token")
        elif method == SECRET_AUTH_METHOD:
            offered = auth.get("secret")
        elif method == GATEWAY_TOKEN_AUTH_METHOD:
            offered = auth.get("token")
            return isinstance(offered, str) and offered in self._gateway_tokens
        else:
            return False
        return (
            bool(self.token)
            and isinstance(offered, str)
            and hmac.compare_digest(offered.encode(), self.token.encode())
        )

    def _hello(self, conn: PeerConn, msg: Message, out: Outgoing) -> None:
        federated = self._federated_hello(conn, msg)
        if federated is not None:
            self._welcome(conn, msg, *federated, out)
            if msg[FEDERATION_KEY].get("contexts") is True:
                self.contexts.attach_link(self._by_conn[conn], out)
            return
        if not self._authenticated(conn, msg.get("authentication")):
            conn.close_reason = "authentication failed"
            raise ProtocolError(
                Reason.AUTH_FAILURE,
                "Authentication failed: pass the interop token (JUPYTER_INTEROP_TOKEN) as "
                "auth.token, or connect through Jupyter's own authentication",
            )
        identity = field(msg, "identity", dict)
        if not isinstance(identity.get("application"), str) or not identity["application"]:
            if conn.notebook_path:
                identity = {**identity, "application": notebook_name(conn.notebook_path)}
            else:
                raise ProtocolError(
                    Reason.MISSING_FIELD, "Identity is missing a required key: application"
                )
        peer_id = self.new_id("p")
        resolved = self._resolve_identity(conn, identity, peer_id)
        self._welcome(conn, msg, peer_id, resolved, LOCAL_META_JSON, False, out)

    def _welcome(
        self,
        conn: PeerConn,
        msg: Message,
        peer_id: str,
        resolved: dict[str, Any],
        meta_json: bytes,
        hidden: bool,
        out: Outgoing,
    ) -> None:
        """Make the peer of an accepted ``hello`` and welcome it."""
        ext_request = (msg.get("extensions") or {}).get(EXTENSIONS_KEY)
        extensions: dict[str, Any] = {}
        if isinstance(ext_request, dict):
            extensions = {k: True for k in SUPPORTED_EXTENSIONS if ext_request.get(k)}
        # shared memory is offered now and on once the peer proved it sees it (server/shm.py)
        offer = None
        if (
            extensions.pop(SHM_EXTENSION, None)
            and extensions.get(BINARY_EXTENSION)
            and self.shared_memory
        ):
            offer = self.shared_memory.offer(peer_id)
        peer = Peer(
            peer_id=peer_id,
            conn=conn,
            identity=resolved,
            extensions=extensions,
            meta_json=meta_json,
            hidden=hidden,
        )
        conn.attrs["extensions"] = extensions  # the transport's framing and notices follow it
        self._enter(peer, CONTEXT_DOMAIN)  # implicit join in compatibility mode
        self.peers[peer_id] = peer
        self._by_conn[conn] = peer
        welcome: Message = {
            "domain": GLOBAL_DOMAIN,
            "type": WELCOME_TYPE,
            "request_id": msg.get("request_id"),
            "peer_id": peer_id,
            "resolved_identity": resolved,
            "available_domains": AVAILABLE_DOMAINS,
            "options": {"info": {"hub": "jupyter_interop", "hub_id": self.hub_id}},
        }
        if extensions or offer:
            accepted = {**extensions, SHM_EXTENSION: offer} if offer else extensions
            welcome["extensions"] = {EXTENSIONS_KEY: accepted}
        out.append((conn, welcome))
        self.contexts.announce_all(peer, out)
        if extensions.get(CHANNELS_EXTENSION):
            self.channel_registry.announce_members_to(peer, out)

    def _federated_hello(
        self, conn: PeerConn, msg: Message
    ) -> tuple[str, dict[str, Any], bytes, bool] | None:
        """For a ``hello`` of the federation link (docs/FEDERATION.md): the peer id, identity,
        meta and hidden flag of the peer it makes; None for any other ``hello``.

        A connection standing for a remote peer keeps that peer's id and identity as its own
        hub resolved them; only the holder of :attr:`federation_token` may open one, whatever
        other trust the connection has."""
        auth = msg.get("authentication")
        if not isinstance(auth, dict) or auth.get("method") != FEDERATION_AUTH_METHOD:
            return None
        offered = auth.get("token")
        if not (
            self.federation_token
            and isinstance(offered, str)
            and hmac.compare_digest(offered.encode(), self.federation_token.encode())
        ):
            conn.close_reason = "authentication failed"
            raise ProtocolError(Reason.AUTH_FAILURE, "Federation authentication failed")
        stands_for = field(msg, FEDERATION_KEY, dict)
        if stands_for.get("observer") is True or stands_for.get("contexts") is True:
            peer_id = self.new_id("p")
            identity = {"application": FEDERATION_APPLICATION}
            return peer_id, self._resolve_identity(conn, identity, peer_id), LOCAL_META_JSON, True
        peer_id = ident(stands_for, "peer_id")
        hub = ident(stands_for, "hub")
        if peer_id in self.peers:
            conn.close_reason = "peer id in use"
            raise ProtocolError(Reason.INVALID_MESSAGE, f"Peer id {peer_id} is in use")
        identity = field(msg, "identity", dict)
        meta = orjson.dumps({"local": False, META_HUB_KEY: hub})
        return peer_id, identity, meta, False

    def _hello_again(self, peer: Peer, msg: Message, out: Outgoing) -> None:
        raise ProtocolError(Reason.ALREADY_SEEN, "Hello already received once")

    def _resolve_identity(
        self, conn: PeerConn, identity: dict[str, Any], peer_id: str
    ) -> dict[str, Any]:
        resolved = {
            k: (peer_id if v == "?" else v)
            for k, v in identity.items()
            if k not in _HUB_ASSIGNED_IDENTITY  # established by the hub, never claimed
        }
        resolved["machine"] = self.machine
        resolved["user"] = self.user
        resolved.setdefault("instance", peer_id)
        if not resolved.get("instance"):
            resolved["instance"] = peer_id
        resolved["peerId"] = peer_id
        if conn.kernel_id:
            resolved["kernelId"] = conn.kernel_id
        if conn.notebook_path:
            resolved["notebookPath"] = conn.notebook_path
            resolved["application"] = notebook_name(conn.notebook_path)
        return resolved

    def _join(self, peer: Peer, msg: Message, out: Outgoing) -> None:
        destination = field(msg, "destination", str)
        if destination not in _JOINABLE:
            raise ProtocolError(
                Reason.UNKNOWN_DOMAIN, f"Cannot join unknown domain {destination!r}"
            )
        if destination == AGM_DOMAIN and AGM_DOMAIN not in peer.domains:
            self.agm.join(peer, out)
        if destination == BUS_DOMAIN and peer.hidden and BUS_DOMAIN not in peer.domains:
            self.bus.attach_link(peer, out)
        if destination == CONTEXT_DOMAIN:
            joined_on = msg.get("domain", GLOBAL_DOMAIN)
            peer.context_domain = GLOBAL_DOMAIN if joined_on == GLOBAL_DOMAIN else CONTEXT_DOMAIN
        self._enter(peer, destination)
        # the reply is in the joined domain
        out.append((peer.conn, messages.success(destination, msg.get("request_id"), peer.peer_id)))

    def _leave(self, peer: Peer, msg: Message, out: Outgoing) -> None:
        destination = field(msg, "destination", str)
        if destination == AGM_DOMAIN:
            self._detach_agm(peer, out)
        elif destination == BUS_DOMAIN:
            self.bus.detach(peer, out)
        self._exit(peer, destination)
        out.append((peer.conn, messages.success(destination, msg.get("request_id"), peer.peer_id)))

    def _detach_agm(self, peer: Peer, out: Outgoing) -> None:
        if AGM_DOMAIN in peer.domains:
            self.agm.detach(peer, out)
            self._exit(peer, AGM_DOMAIN)

    def _shm_proof(self, peer: Peer, msg: Message, out: Outgoing) -> None:
        if self.shared_memory is None:
            raise ProtocolError(Reason.UNHANDLED, "This hub does not offer shared memory")
        try:
            self.shared_memory.accept_proof(peer, msg.get("nonce"))
        except ValueError as error:  # SharedMemoryError
            raise ProtocolError(Reason.INVALID_MESSAGE, str(error)) from None
        self.success(out, peer, msg)

    def _create_token(self, peer: Peer, msg: Message, out: Outgoing) -> None:
        token = secrets.token_urlsafe(24)
        self._gateway_tokens.add(token)
        out.append(
            (
                peer.conn,
                {
                    "domain": GLOBAL_DOMAIN,
                    "type": TOKEN_TYPE,
                    "request_id": msg.get("request_id"),
                    "peer_id": peer.peer_id,
                    "token": token,
                },
            )
        )


#: domains a peer must ``join`` before it sends to them (contexts work on ``global`` at once)
_JOIN_FIRST = frozenset({AGM_DOMAIN, BUS_DOMAIN})
#: what a ``join`` may name
_JOINABLE = frozenset({AGM_DOMAIN, BUS_DOMAIN, CONTEXT_DOMAIN, METRICS_DOMAIN})

_HUB_ASSIGNED_IDENTITY = frozenset({"kernelId", "notebookPath", "peerId", "machine", "user"})


def _space_token(space: str) -> str:
    """``space`` if it is one NATS subject token, else a clear error."""
    if space != subject_token(space):
        raise TraitError(
            f"federation_space {space!r}: use letters, digits, '-' and '_' only "
            "(it is one NATS subject token)"
        )
    return space


def subject_token(name: str) -> str:
    """``name`` as one NATS subject token: what is not a letter, digit, '-' or '_' becomes
    '_' (a space name, docs/FEDERATION.md)."""
    return "".join(c if c.isascii() and (c.isalnum() or c in "-_") else "_" for c in name) or "_"


def notebook_name(path: str) -> str:
    """The application name of a notebook kernel: the file name without `.ipynb`."""
    name = path.rstrip("/").rsplit("/", 1)[-1]
    return name[:-6] if name.endswith(".ipynb") else name


def _unhandled_uri(domain: str) -> str:
    return {
        AGM_DOMAIN: Reason.AGM_UNHANDLED,
        BUS_DOMAIN: Reason.BUS_UNHANDLED,
        CONTEXT_DOMAIN: Reason.CONTEXT_UNHANDLED,
    }.get(domain, Reason.UNHANDLED)
