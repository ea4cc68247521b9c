"""Configuration shared by the server extension and the standalone hub.

Both apps mix in :class:`GatewaySettings`, so a setting has one name, one default and one help
text wherever the hub runs (``c.InteropExtension.outbox_soft_messages`` or
``c.StandaloneHubApp.outbox_soft_messages``). Per-peer limits and channels are traits of the
hub core itself (``c.InteropHub.max_methods_per_peer`` ...): the hub is created with the app as
its traitlets parent, so that configuration reaches it unchanged.
"""

from __future__ import annotations

import logging
import os
import secrets
from typing import TYPE_CHECKING, Any

from traitlets import Bool, Enum, Float, HasTraits, Int, Unicode, default, validate

from ..hub.store import ContextStore
from ..protocol.chunks import CHUNK_SIZE, DEFAULT_MAX_ATTACHMENT_BYTES
from .announcements import PEERS_PER_ANNOUNCE_DELAY
from .outbox import OutboxLimits
from .service import GatewayService
from .shm import SharedMemoryArea

if TYPE_CHECKING:
    from ..hub.core import InteropHub

__all__ = [
    "DEFAULT_MAX_ATTACHMENT_BYTES",
    "DEFAULT_MAX_MESSAGE_SIZE",
    "GatewaySettings",
    "new_token",
]

DEFAULT_MAX_MESSAGE_SIZE = 64 * 1024 * 1024


def new_token() -> str:
    """A fresh interop token (what an empty ``token`` setting becomes)."""
    return secrets.token_urlsafe(32)


class GatewaySettings(HasTraits):
    """Traits of the WebSocket gateway (frame size, outgoing queues) and of the hub's store."""

    token = Unicode(
        help=(
            "Interop token: a client that did not authenticate through Jupyter (or the URL "
            "token of the standalone hub) must present it in its GW3 hello, as "
            "authentication {method: 'access-token', token} or {method: 'secret', secret}. "
            "Exported to kernels as JUPYTER_INTEROP_TOKEN. Generated when empty."
        )
    ).tag(config=True)

    @default("token")
    def _default_token(self) -> str:
        return new_token()

    max_message_size = Int(
        DEFAULT_MAX_MESSAGE_SIZE,
        help=(
            "Largest WebSocket frame (bytes) a client may send; a larger one closes its "
            "connection with code 1009. Bounds the memory a single frame can make the hub "
            "allocate (larger binary messages arrive as chunks, see max_attachment_bytes; "
            f"keep this above {CHUNK_SIZE // (1024 * 1024)} MiB for them)."
        ),
    ).tag(config=True)

    max_attachment_bytes = Int(
        DEFAULT_MAX_ATTACHMENT_BYTES,
        help=(
            "Largest message with binary attachments (bytes) a client may send as chunk frames "
            "(the 'binary' extension cuts frames above 8 MiB into chunks, so a DataFrame "
            "larger than max_message_size can be shared). A larger one is refused with a GW3 "
            "error (global.errors.limits_exceeded) before anything is allocated. Memory for a "
            "message grows with the bytes that arrive, never from the size it announces (see "
            "max_reassembly_bytes). Default 2 GiB."
        ),
    ).tag(config=True)

    max_reassembly_bytes = Int(
        DEFAULT_MAX_ATTACHMENT_BYTES,
        help=(
            "Most bytes the hub holds for chunked messages still arriving, all connections "
            "together. The chunk that would go over it is refused with its message (a GW3 "
            "error, global.errors.limits_exceeded, to the peer that sent it; the bytes it "
            "held are released at once), so N peers sending at once cannot make the hub hold "
            "more than this. Default 2 GiB."
        ),
    ).tag(config=True)

    outbox_soft_messages = Int(
        1_000,
        help=(
            "Messages waiting for one slow client above which its stream and bus events are "
            "dropped (and counted). Results, errors and lifecycle messages are never dropped."
        ),
    ).tag(config=True)
    outbox_soft_bytes = Int(
        8 * 1024 * 1024,
        help="Bytes waiting for one client above which its stream and bus events are dropped.",
    ).tag(config=True)
    outbox_hard_messages = Int(
        50_000,
        help=(
            "Messages waiting for one client above which it is disconnected as a slow consumer "
            "(close code 1008), so that the hub's memory stays bounded."
        ),
    ).tag(config=True)
    outbox_hard_bytes = Int(
        256 * 1024 * 1024,
        help="Bytes waiting for one client above which it is disconnected as a slow consumer.",
    ).tag(config=True)
    announce_delay = Float(
        0.02,
        help=(
            "Seconds the hub may hold the writes of a request that announces something to "
            "the other peers (a join, a registration, a peer leaving), to write what several "
            "such requests produced at once: in a storm of N joins each peer then costs one "
            "write (one batch frame) per delay instead of one per join. Order is unchanged, "
            "and the reply to a join or registration is never written before the others' "
            "announcements of it. 0: write at once, as any other message."
        ),
    ).tag(config=True)

    announce_delay_max = Float(
        0.25,
        help=(
            "Seconds announcement writes may be held at most when many peers are joined: "
            "each hold ends in one write per agm peer, so the hold grows by announce_delay "
            f"for every {PEERS_PER_ANNOUNCE_DELAY} agm peers, up to this (a join storm in a "
            "large hub then costs a bounded number of writes per second). Below "
            "announce_delay: announce_delay."
        ),
    ).tag(config=True)

    @validate("announce_delay", "announce_delay_max")
    def _check_announce_delay(self, proposal: dict[str, Any]) -> float:
        value = proposal["value"]
        if not 0 <= value <= 5:
            raise ValueError(f"{proposal['trait'].name} must be between 0 and 5 seconds")
        return float(value)

    outbox_stall_seconds = Float(
        60.0,
        help=(
            "Seconds the oldest message may wait for a client whose queue is over the soft "
            "limit before the client is disconnected as a slow consumer (0: never)."
        ),
    ).tag(config=True)

    persist_contexts = Bool(
        True,
        help=(
            "Keep retained shared contexts in a SQLite file so they survive restarts. "
            "False: contexts live in memory only."
        ),
    ).tag(config=True)
    context_store_path = Unicode(
        help="SQLite file for retained contexts (used when persist_contexts is True)."
    ).tag(config=True)
    context_ack = Enum(
        ["durable", "immediate"],
        default_value="durable",
        help=(
            "When the hub acknowledges a write to a retained context (create, update, "
            "destroy) while persist_contexts is on. 'durable': once it is committed to the "
            "SQLite file, so an acknowledged update survives a crash of the hub (writes that "
            "arrive together share one commit; subscribers get the update at once either "
            "way). 'immediate': at once, before it is written; the file is written up to "
            "context_store_delay later, and a crash loses what was acknowledged meanwhile."
        ),
    ).tag(config=True)
    context_store_delay = Float(
        -1.0,
        help=(
            "Seconds the store's writer waits after a change before it writes, to write a "
            "context updated many times a second once per batch. Negative: 0 with "
            "context_ack='durable' (every acknowledgement waits for this delay), 0.05 with "
            "'immediate'."
        ),
    ).tag(config=True)
    context_store_fsync = Bool(
        False,
        help=(
            "Sync the store's journal to disk on every commit (SQLite synchronous=FULL): a "
            "committed write then also survives a power loss or an OS crash, not only a crash "
            "of the hub, at the cost of one fsync per commit."
        ),
    ).tag(config=True)

    def open_context_store(self) -> ContextStore | None:
        """The store for retained contexts as configured (None when persistence is off); its
        directory is created private (0700) when missing."""
        if not self.persist_contexts:
            return None
        path = self.context_store_path
        os.makedirs(os.path.dirname(os.path.abspath(path)), mode=0o700, exist_ok=True)
        return ContextStore(
            path,
            log=getattr(self, "log", None),
            batch_delay=None if self.context_store_delay < 0 else self.context_store_delay,
            ack_after_commit=self.context_ack == "durable",
            synchronous="FULL" if self.context_store_fsync else "NORMAL",
        )

    shm_dir = Unicode(
        "/dev/shm",
        help=(
            "tmpfs directory in which the hub creates its private shared-memory directory: "
            "clients on this host that prove they see it write large attachments there once "
            "instead of sending their bytes (the 'shm' extension). Empty: off."
        ),
    ).tag(config=True)
    shm_grace = Float(
        10.0,
        help=(
            "Seconds a shared-memory attachment stays after the hub dropped the last value "
            "holding it, so that a receiver that got its reference can still map it."
        ),
    ).tag(config=True)
    shm_grace_bytes = Int(
        512 * 1024 * 1024,
        help=(
            "Most bytes of released shared-memory attachments kept for their grace period; "
            "beyond it the oldest are removed at once (bounds tmpfs under a fast stream)."
        ),
    ).tag(config=True)

    def open_shared_memory(self) -> SharedMemoryArea | None:
        """The hub's shared-memory directory, created now (None when off or unusable)."""
        if not self.shm_dir:
            return None
        area = SharedMemoryArea(
            self.shm_dir,
            max_bytes=self.max_attachment_bytes,
            grace=self.shm_grace,
            grace_bytes=self.shm_grace_bytes,
        )
        return area if area.open() else None

    @validate("max_message_size")
    def _check_max_message_size(self, proposal: dict[str, int]) -> int:
        value = proposal["value"]
        if value < 1024:
            raise ValueError("max_message_size must be at least 1024 bytes")
        return value

    @validate("max_reassembly_bytes")
    def _check_max_reassembly_bytes(self, proposal: dict[str, int]) -> int:
        value = proposal["value"]
        if value < 1024:
            raise ValueError("max_reassembly_bytes must be at least 1024 bytes")
        return value

    @validate("max_attachment_bytes")
    def _check_max_attachment_bytes(self, proposal: dict[str, int]) -> int:
        value = proposal["value"]
        if value < 1024:
            raise ValueError("max_attachment_bytes must be at least 1024 bytes")
        return value

    def gateway_service(
        self, hub: InteropHub, log: logging.Logger, **extra: Any
    ) -> GatewayService:
        """The hub's gateway service with these settings (``extra``: what only one transport
        has, e.g. the server extension's kernel resolver)."""
        return GatewayService(
            hub,
            limits=self.outbox_limits(),
            max_message_size=self.max_message_size,
            max_attachment_bytes=self.max_attachment_bytes,
            max_reassembly_bytes=self.max_reassembly_bytes,
            announce_delay=self.announce_delay,
            announce_delay_max=self.announce_delay_max,
            log=log,
            **extra,
        )

    def outbox_limits(self) -> OutboxLimits:
        """The outbox limits as the transport-neutral value object (validated there)."""
        return OutboxLimits(
            soft_messages=self.outbox_soft_messages,
            soft_bytes=self.outbox_soft_bytes,
            hard_messages=self.outbox_hard_messages,
            hard_bytes=self.outbox_hard_bytes,
            stall_seconds=self.outbox_stall_seconds,
        )
