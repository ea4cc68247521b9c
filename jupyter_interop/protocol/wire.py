"""The wire vocabulary: every name the hub, the client and the notebook layer agree on.

One place for the strings both ends of a GW3 connection must spell alike, so that a rule
changes once: domain names, message-type names, the ``hello`` extensions of our hub, the
channel context prefix and the environment variables a kernel is handed. Reason URIs live
in ``protocol/errors.py`` (:class:`~.errors.Reason`) and numeric limits in
``protocol/limits.py``. docs/ARCHITECTURE.md says where to add a new message type.

This module imports nothing: every layer may use it.
"""

from __future__ import annotations

from typing import Final

__all__ = [
    "AGM_DOMAIN",
    "AGM_MESSAGE_TYPES",
    "BATCH_EXTENSION",
    "BINARY_EXTENSION",
    "BUS_DOMAIN",
    "BUS_MESSAGE_TYPES",
    "CHANNELS_EXTENSION",
    "CHANNEL_PREFIX",
    "CONTEXT_DOMAIN",
    "CONTEXT_MESSAGE_TYPES",
    "DESKTOP_CONTEXT_ENV",
    "DOMAINS",
    "ENV_TOKEN",
    "ENV_URL",
    "EXTENSIONS_KEY",
    "GLOBAL_DOMAIN",
    "METRICS_DOMAIN",
    "NOTICES_EXTENSION",
    "RUNS_EXTENSION",
    "SHM_EXTENSION",
    "SHM_PROOF_TYPE",
    "SUPPORTED_EXTENSIONS",
    "VERSIONS_EXTENSION",
]

# ---------------------------------------------------------------------------- domains

GLOBAL_DOMAIN: Final = "global"
AGM_DOMAIN: Final = "agm"
CONTEXT_DOMAIN: Final = "context"
BUS_DOMAIN: Final = "bus"
#: accepted and discarded by our hub (Glue42 clients report metrics on it)
METRICS_DOMAIN: Final = "metrics"
#: the domains a message may name (``metrics`` aside)
DOMAINS: Final = (GLOBAL_DOMAIN, AGM_DOMAIN, BUS_DOMAIN, CONTEXT_DOMAIN)

# ---------------------------------------------------------------------- message types

#: context requests, accepted on ``global`` and on ``context`` (a peer joined to either)
CONTEXT_MESSAGE_TYPES: Final = (
    "create-context",
    "subscribe-context",
    "update-context",
    "unsubscribe-context",
    "destroy-context",
)
#: requests a peer sends on ``agm`` (methods and streams)
AGM_MESSAGE_TYPES: Final = (
    "register",
    "unregister",
    "call",
    "yield",
    "error",
    "subscribe",
    "accepted",
    "publish",
    "publish-many",
    "post",
    "drop-subscription",
    "unsubscribe",
)
#: requests a peer sends on ``bus``
BUS_MESSAGE_TYPES: Final = ("publish", "subscribe", "unsubscribe")
#: the ``global`` message a client sends to prove it sees the hub's shared-memory directory
SHM_PROOF_TYPE: Final = "shm-proof"

# ------------------------------------------------------------------------- extensions

#: where a client asks for ours in ``hello`` (``extensions.jupyter_interop``)
EXTENSIONS_KEY: Final = "jupyter_interop"
#: the hub tracks channel membership and announces it (``channel-membership``)
CHANNELS_EXTENSION: Final = "channels"
#: the hub reports events it dropped for a slow reader
NOTICES_EXTENSION: Final = "notices"
#: context messages carry a version number
VERSIONS_EXTENSION: Final = "versions"
#: attachments (arrays, frames) travel as binary WebSocket frames
BINARY_EXTENSION: Final = "binary"
#: a text frame may hold a JSON array of messages, both ways
BATCH_EXTENSION: Final = "batch"
#: stream items fold into ``publish-many`` / ``event-many``
RUNS_EXTENSION: Final = "runs"
#: large attachments travel through shared-memory files (``protocol/shm.py``)
SHM_EXTENSION: Final = "shm"
#: every extension our hub may accept, in the order it lists them
SUPPORTED_EXTENSIONS: Final = (
    CHANNELS_EXTENSION,
    NOTICES_EXTENSION,
    VERSIONS_EXTENSION,
    BINARY_EXTENSION,
    BATCH_EXTENSION,
    RUNS_EXTENSION,
    SHM_EXTENSION,
)

# --------------------------------------------------------------------------- channels

#: a channel is the context named ``CHANNEL_PREFIX + <Name>`` (``protocol/channels.py``)
CHANNEL_PREFIX: Final = "___channel___"

# ---------------------------------------------------------------- environment variables

#: the hub's gateway URL, exported by the server extension to the kernels it starts
ENV_URL: Final = "JUPYTER_INTEROP_URL"
#: the hub's interop token, exported alongside :data:`ENV_URL`
ENV_TOKEN: Final = "JUPYTER_INTEROP_TOKEN"
#: the starting context io.Connect Desktop hands every app it starts (docs/GATEWAYS.md)
DESKTOP_CONTEXT_ENV: Final = "_GD_STARTING_CONTEXT_"
