"""Transport-neutral interop hub core speaking the io.Connect Gateway protocol (GW3)."""

from __future__ import annotations

from .channels import CHANNEL_PREFIX, DEFAULT_CHANNELS
from .connection import Outgoing, PeerConn
from .core import AVAILABLE_DOMAINS, InteropHub

__all__ = [
    "AVAILABLE_DOMAINS",
    "CHANNEL_PREFIX",
    "DEFAULT_CHANNELS",
    "InteropHub",
    "Outgoing",
    "PeerConn",
]
