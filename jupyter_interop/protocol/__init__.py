"""GW3 wire protocol: message shapes, codec, reason URIs and protocol errors."""

from __future__ import annotations

from .codec import decode, encode
from .errors import ProtocolError, Reason

__all__ = ["ProtocolError", "Reason", "decode", "encode"]
