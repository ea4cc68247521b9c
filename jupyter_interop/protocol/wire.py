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
    "ACCEPTED_TYPE",
    "ACCESS_TOKEN_AUTH_METHOD",
    "ADD_INTEREST_TYPE",
    "AGM_DOMAIN",
    "AGM_MESSAGE_TYPES",
    "APPS_APPLICATION",
    "APPS_LIST_METHOD",
    "APPS_START_METHOD",
    "APPS_STOP_METHOD",
    "APPS_WATCH_METHOD",
    "APP_ERROR_KEY",
    "BATCH_EXTENSION",
    "BINARY_EXTENSION",
    "BUS_DOMAIN",
    "BUS_INTEREST_ADDED_TYPE",
    "BUS_INTEREST_READY_TYPE",
    "BUS_INTEREST_REMOVED_TYPE",
    "BUS_MESSAGE_TYPES",
    "CALL_TYPE",
    "CHANNELS_EXTENSION",
    "CHANNEL_CHANGED_TYPE",
    "CHANNEL_CHANGE_REQUEST_TYPE",
    "CHANNEL_MEMBERSHIP_TYPE",
    "CHANNEL_PREFIX",
    "CONTEXT_ADDED_TYPE",
    "CONTEXT_CREATED_TYPE",
    "CONTEXT_DESTROYED_TYPE",
    "CONTEXT_DOMAIN",
    "CONTEXT_LIFETIMES",
    "CONTEXT_MESSAGE_TYPES",
    "CONTEXT_UPDATED_TYPE",
    "CREATE_CONTEXT_TYPE",
    "CREATE_TOKEN_TYPE",
    "DESKTOP_CONTEXT_ENV",
    "DESTROY_CONTEXT_TYPE",
    "DOMAINS",
    "DROP_SUBSCRIPTION_TYPE",
    "ENV_FEDERATION_SPACE",
    "ENV_FEDERATION_URL",
    "ENV_START_CONTEXT",
    "ENV_TOKEN",
    "ENV_URL",
    "ERROR_TYPE",
    "EVENTS_DROPPED_TYPE",
    "EVENT_MANY_TYPE",
    "EVENT_TYPE",
    "EXTENSIONS_KEY",
    "FDC3_CHANNEL_MARK_KEY",
    "FDC3_CHANNEL_RESULT_KEY",
    "FDC3_CONTROL_ADD_LISTENER",
    "FDC3_CONTROL_DISCONNECT",
    "FDC3_CONTROL_METHOD",
    "FDC3_CONTROL_UNSUBSCRIBE",
    "FDC3_DATA_KEY_PREFIX",
    "FDC3_LATEST_TYPE_KEY",
    "FDC3_OPEN_CONTEXT_KEY",
    "FDC3_OPEN_INSTANCE_KEY",
    "FDC3_OPEN_INVOKED_KEY",
    "FDC3_OPEN_META_KEY",
    "FDC3_OPEN_RESPONSE_KEY",
    "FDC3_OPEN_RESPONSE_PREFIX",
    "FDC3_PRIVATE_CHANNEL_PREFIX",
    "FDC3_PRIVATE_CLIENT_KEY",
    "FDC3_PRIVATE_CREATOR_KEY",
    "FDC3_PRIVATE_DISCONNECTED_KEY",
    "FDC3_PRIVATE_LISTENER_TYPES_KEY",
    "FEDERATION_APPLICATION",
    "FEDERATION_AUTH_METHOD",
    "FEDERATION_CONTEXT_APPLY_TYPE",
    "FEDERATION_CONTEXT_PUBLISH_TYPE",
    "FEDERATION_CONTEXT_REFUSED_TYPE",
    "FEDERATION_KEY",
    "FOR_TOPIC_KEY",
    "GATEWAY_TOKEN_AUTH_METHOD",
    "GET_CHANNEL_RESTRICTIONS_TYPE",
    "GLOBAL_DOMAIN",
    "GOING_AWAY_CLOSE",
    "HELLO_TYPE",
    "INTENT_METHOD_PREFIX",
    "INVOKE_TYPE",
    "JOIN_TYPE",
    "LEAVE_TYPE",
    "META_HUB_KEY",
    "METHODS_ADDED_TYPE",
    "METHODS_REMOVED_TYPE",
    "METRICS_DOMAIN",
    "MOVE_TO_CHANNEL_TYPE",
    "NOTICES_EXTENSION",
    "PEER_ADDED_TYPE",
    "PEER_REMOVED_TYPE",
    "PING_TYPE",
    "POLICY_VIOLATION_CLOSE",
    "POST_TYPE",
    "PUBLISHER_IDENTITY_KEY",
    "PUBLISH_MANY_TYPE",
    "PUBLISH_TYPE",
    "READ_ONLY_EXTENSION",
    "REGISTER_TYPE",
    "REMOVE_INTEREST_TYPE",
    "RESTRICT_CHANNEL_TYPE",
    "RESULT_TYPE",
    "RUNS_EXTENSION",
    "SECRET_AUTH_METHOD",
    "SET_CONTEXT_READ_ONLY_TYPE",
    "SHM_EXTENSION",
    "SHM_PROOF_TYPE",
    "STREAM_ID_KEY",
    "SUBSCRIBED_CONTEXT_TYPE",
    "SUBSCRIBED_TYPE",
    "SUBSCRIBE_CONTEXT_TYPE",
    "SUBSCRIBE_TYPE",
    "SUBSCRIPTION_CANCELLED_TYPE",
    "SUCCESS_TYPE",
    "SUPPORTED_EXTENSIONS",
    "TOKEN_TYPE",
    "UNREGISTER_TYPE",
    "UNSUBSCRIBE_CONTEXT_TYPE",
    "UNSUBSCRIBE_TYPE",
    "UPDATE_CONTEXT_TYPE",
    "VERSIONS_EXTENSION",
    "WELCOME_TYPE",
    "YIELD_TYPE",
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

CREATE_CONTEXT_TYPE: Final = "create-context"
SUBSCRIBE_CONTEXT_TYPE: Final = "subscribe-context"
UPDATE_CONTEXT_TYPE: Final = "update-context"
UNSUBSCRIBE_CONTEXT_TYPE: Final = "unsubscribe-context"
DESTROY_CONTEXT_TYPE: Final = "destroy-context"
#: the owner of an ``ownership`` context makes it read-only for other peers, or writable again
#: (``{context_id, read_only}``; the ``read-only`` extension)
SET_CONTEXT_READ_ONLY_TYPE: Final = "set-context-read-only"
#: context requests, accepted on ``global`` and on ``context`` (a peer joined to either)
CONTEXT_MESSAGE_TYPES: Final = (
    CREATE_CONTEXT_TYPE,
    SUBSCRIBE_CONTEXT_TYPE,
    UPDATE_CONTEXT_TYPE,
    UNSUBSCRIBE_CONTEXT_TYPE,
    DESTROY_CONTEXT_TYPE,
    SET_CONTEXT_READ_ONLY_TYPE,
)
#: a context's ``lifetime`` in ``create-context``: kept until destroyed, destroyed when no
#: peer follows it any more, destroyed when its creator leaves (as io.Connect has them)
CONTEXT_LIFETIMES: Final = ("retained", "ref-counted", "ownership")
REGISTER_TYPE: Final = "register"
UNREGISTER_TYPE: Final = "unregister"
CALL_TYPE: Final = "call"
#: a server's reply to ``invoke`` (a failed one is an ``error``)
YIELD_TYPE: Final = "yield"
#: a stream subscription (``agm``) or a topic subscription (``bus``)
SUBSCRIBE_TYPE: Final = "subscribe"
#: a publisher accepts a subscription on one of its branches' stream ids
ACCEPTED_TYPE: Final = "accepted"
#: a stream item to every subscriber of a branch (``agm``), or a topic message (``bus``)
PUBLISH_TYPE: Final = "publish"
#: a run of one stream's items (``runs`` extension)
PUBLISH_MANY_TYPE: Final = "publish-many"
#: a stream item to one subscriber
POST_TYPE: Final = "post"
DROP_SUBSCRIPTION_TYPE: Final = "drop-subscription"
UNSUBSCRIBE_TYPE: Final = "unsubscribe"
#: a refused request, in any domain (also what a server sends on ``agm`` for a failed call)
ERROR_TYPE: Final = "error"
#: requests a peer sends on ``agm`` (methods and streams)
AGM_MESSAGE_TYPES: Final = (
    REGISTER_TYPE,
    UNREGISTER_TYPE,
    CALL_TYPE,
    YIELD_TYPE,
    ERROR_TYPE,
    SUBSCRIBE_TYPE,
    ACCEPTED_TYPE,
    PUBLISH_TYPE,
    PUBLISH_MANY_TYPE,
    POST_TYPE,
    DROP_SUBSCRIPTION_TYPE,
    UNSUBSCRIBE_TYPE,
)
#: ``bus`` message of the link's observer to the hub: its NATS subscription for ``{"topic"}``
#: is in place (or could not be made); the hub confirms the subscriptions it held for it
BUS_INTEREST_READY_TYPE: Final = "interest-ready"
#: requests a peer sends on ``bus`` (the last one only the federation link's observer)
BUS_MESSAGE_TYPES: Final = (
    PUBLISH_TYPE,
    SUBSCRIBE_TYPE,
    UNSUBSCRIBE_TYPE,
    BUS_INTEREST_READY_TYPE,
)
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
#: the owner of an ``ownership`` context may make it read-only for other peers (``read_only``
#: in ``create-context``, ``set-context-read-only``), enforced by the hub
READ_ONLY_EXTENSION: Final = "read-only"
#: every extension our hub may accept, in the order it lists them
SUPPORTED_EXTENSIONS: Final = (
    CHANNELS_EXTENSION,
    NOTICES_EXTENSION,
    VERSIONS_EXTENSION,
    BINARY_EXTENSION,
    BATCH_EXTENSION,
    RUNS_EXTENSION,
    SHM_EXTENSION,
    READ_ONLY_EXTENSION,
)

# --------------------------------------------------------------- authentication methods
# ``hello``'s ``authentication.method`` (the federation link's own: FEDERATION_AUTH_METHOD)

#: the hub's interop token, in ``token``
ACCESS_TOKEN_AUTH_METHOD: Final = "access-token"
#: a login and a password, in ``login`` and ``secret`` (our hub checks the secret against its
#: interop token)
SECRET_AUTH_METHOD: Final = "secret"
#: a gateway token the hub issued on ``create-token``, in ``token``
GATEWAY_TOKEN_AUTH_METHOD: Final = "gateway-token"

# --------------------------------------------------------------------------- channels

#: a channel is the context named ``CHANNEL_PREFIX + <Name>`` (``protocol/channels.py``)
CHANNEL_PREFIX: Final = "___channel___"

# ---------------------------------------------------------------- environment variables

#: the hub's gateway URL, exported by the server extension to the kernels it starts
ENV_URL: Final = "JUPYTER_INTEROP_URL"
#: the hub's interop token, exported alongside :data:`ENV_URL`
ENV_TOKEN: Final = "JUPYTER_INTEROP_TOKEN"
#: defaults of ``c.InteropHub.federation_url`` and ``federation_space``, for a spawner that
#: hands each server its own (JupyterHub's ``c.Spawner.environment``, docs/FEDERATION.md)
ENV_FEDERATION_URL: Final = "JUPYTER_INTEROP_FEDERATION_URL"
ENV_FEDERATION_SPACE: Final = "JUPYTER_INTEROP_FEDERATION_SPACE"
#: defaults of ``federation_credentials`` and ``federation_nkey_seed`` (paths), likewise
ENV_FEDERATION_CREDENTIALS: Final = "JUPYTER_INTEROP_FEDERATION_CREDENTIALS"
ENV_FEDERATION_NKEY_SEED: Final = "JUPYTER_INTEROP_FEDERATION_NKEY_SEED"
#: the starting context io.Connect Desktop hands every app it starts (docs/GATEWAYS.md)
DESKTOP_CONTEXT_ENV: Final = "_GD_STARTING_CONTEXT_"
#: the starting context (JSON) the server hands a notebook it starts with ``start_context``
#: (``APPS_START_METHOD``); the notebook reads it as ``io.apps.starting_context``
ENV_START_CONTEXT: Final = "JUPYTER_INTEROP_START_CONTEXT"

# ------------------------------------------------------- global requests (besides contexts)

HELLO_TYPE: Final = "hello"
JOIN_TYPE: Final = "join"
LEAVE_TYPE: Final = "leave"
CREATE_TOKEN_TYPE: Final = "create-token"
PING_TYPE: Final = "ping"
#: a peer with the ``channels`` extension reports the channel it is on
CHANNEL_CHANGED_TYPE: Final = "channel-changed"
#: asks the hub to tell another peer to move to a channel
MOVE_TO_CHANNEL_TYPE: Final = "move-to-channel"
#: sets whether a peer (itself or another) may read and write one channel or all of them
#: (io.Connect's ``restrict``/``restrictAll``; the hub enforces it, docs/RELIABILITY.md)
RESTRICT_CHANNEL_TYPE: Final = "restrict-channel"
#: asks for a peer's channel restrictions; the ``success`` reply holds ``target`` and
#: ``channels`` (``[{name, read, write}]``, io.Connect's ``Restrictions``)
GET_CHANNEL_RESTRICTIONS_TYPE: Final = "get-channel-restrictions"

# ------------------------------------------------------------ what the hub writes (GW3)
# (their shapes and builders: protocol/messages.py)

WELCOME_TYPE: Final = "welcome"
TOKEN_TYPE: Final = "token"
SUCCESS_TYPE: Final = "success"
PEER_ADDED_TYPE: Final = "peer-added"
PEER_REMOVED_TYPE: Final = "peer-removed"
METHODS_ADDED_TYPE: Final = "methods-added"
METHODS_REMOVED_TYPE: Final = "methods-removed"
INVOKE_TYPE: Final = "invoke"
RESULT_TYPE: Final = "result"
ADD_INTEREST_TYPE: Final = "add-interest"
REMOVE_INTEREST_TYPE: Final = "remove-interest"
#: a stream subscription (``agm``) or a topic subscription (``bus``) is in place
SUBSCRIBED_TYPE: Final = "subscribed"
#: a stream item (``agm``) or a topic message (``bus``)
EVENT_TYPE: Final = "event"
#: a run of one stream's items (``runs`` extension)
EVENT_MANY_TYPE: Final = "event-many"
SUBSCRIPTION_CANCELLED_TYPE: Final = "subscription-cancelled"
#: how many stream and bus events the hub dropped for a slow reader (``notices`` extension)
EVENTS_DROPPED_TYPE: Final = "events-dropped"
CHANNEL_MEMBERSHIP_TYPE: Final = "channel-membership"
CHANNEL_CHANGE_REQUEST_TYPE: Final = "channel-change-request"
CONTEXT_ADDED_TYPE: Final = "context-added"
CONTEXT_CREATED_TYPE: Final = "context-created"
SUBSCRIBED_CONTEXT_TYPE: Final = "subscribed-context"
CONTEXT_UPDATED_TYPE: Final = "context-updated"
CONTEXT_DESTROYED_TYPE: Final = "context-destroyed"

# ------------------------------------------------------------------- close codes
#: WebSocket close code for a peer the hub refuses (a failed ``hello``, a request before it)
#: or cannot keep (a slow consumer): 1008, "policy violation"
POLICY_VIOLATION_CLOSE: Final = 1008
#: WebSocket close code when the hub shuts down: 1001, "going away"
GOING_AWAY_CLOSE: Final = 1001

# ------------------------------------------------------------------------ intents
#: an intent listener is the interop method ``<prefix><intent>`` (io.Connect, Glue42)
INTENT_METHOD_PREFIX: Final = "Tick42.FDC3.Intents."

# --------------------------------------------------------------------------- FDC3 channels
# How FDC3 contexts sit in GW3 contexts, as io.Connect maps them (docs/FDC3.md, "The wire"):
# a channel's ``data["fdc3_" + type with "." as "&"]`` holds its latest context of that type
# (without ``type``), and ``latest_fdc3_type`` (encoded alike) names the type last broadcast.

#: prefix of the ``data`` key holding a channel's latest context of one type
FDC3_DATA_KEY_PREFIX: Final = "fdc3_"
#: the top-level key naming the type of the context last broadcast on a channel
FDC3_LATEST_TYPE_KEY: Final = "latest_fdc3_type"
#: a private channel is the context named ``FDC3_PRIVATE_CHANNEL_PREFIX + <id>``
FDC3_PRIVATE_CHANNEL_PREFIX: Final = "___privateFDC3Channel___"
#: key of an intent result that is a channel: ``{"fdc3_channel": {"id", "type", ...}}``
FDC3_CHANNEL_RESULT_KEY: Final = "fdc3_channel"
#: io.Connect's form of an intent result that is a channel: ``{id, type, displayMetadata,
#: isChannel: true}``
FDC3_CHANNEL_MARK_KEY: Final = "isChannel"

# A private channel's context also holds its two parties' instance ids, io.Connect's
# ``disconnected`` flag and the types of the listeners added on it; its events travel as
# invocations of the control method on the other party (docs/FDC3.md, "Private channels").

#: the instance id of the app that created the private channel
FDC3_PRIVATE_CREATOR_KEY: Final = "creatorId"
#: the instance id of the app the private channel was given to
FDC3_PRIVATE_CLIENT_KEY: Final = "clientId"
#: ``true`` once a party disconnected
FDC3_PRIVATE_DISCONNECTED_KEY: Final = "disconnected"
#: the context types of the listeners added on the channel (``null``: every type)
FDC3_PRIVATE_LISTENER_TYPES_KEY: Final = "contextListenerTypes"
#: the interop method each FDC3 app serves, invoked on the other party with
#: ``{action, payload: {channelId, clientId, contextType?, replayContextTypes?}}``
FDC3_CONTROL_METHOD: Final = "T42.FDC3.Client.Control"
#: the control method's actions
FDC3_CONTROL_ADD_LISTENER: Final = "onAddContextListener"
FDC3_CONTROL_UNSUBSCRIBE: Final = "onUnsubscribe"
FDC3_CONTROL_DISCONNECT: Final = "onDisconnect"

# ``open(app, context)`` as io.Connect does it (docs/FDC3.md, "open with a context"): the
# opener serves ``<FDC3_OPEN_RESPONSE_PREFIX>.<id>`` and starts the app with the starting
# context ``{meta: {responseMethodName, instance}, context}``; the started app's first
# listener that takes the context invokes that method with ``{listenerInvoked: true}``.

#: prefix of the method an opener serves while it waits for the started app's listener
FDC3_OPEN_RESPONSE_PREFIX: Final = "T42.FDC3.Open.Listener.Response"
#: the starting context's keys: ``meta`` (the response method's name and the opener's
#: instance) and ``context`` (the FDC3 context to hand over)
FDC3_OPEN_META_KEY: Final = "meta"
FDC3_OPEN_RESPONSE_KEY: Final = "responseMethodName"
FDC3_OPEN_INSTANCE_KEY: Final = "instance"
FDC3_OPEN_CONTEXT_KEY: Final = "context"
#: the response method's argument: ``true`` once a listener took the context
FDC3_OPEN_INVOKED_KEY: Final = "listenerInvoked"

# ---------------------------------------------------------------------------- notebook apps
# Notebooks that start on demand (docs/INTENTS.md, "Notebooks that start on demand"): the
# server's app directory is a GW3 peer of its own hub, offering these methods to every peer.

#: the application name of the server-side peer that starts notebooks
APPS_APPLICATION: Final = "jupyter-interop-apps"
#: ``{}`` -> ``{"apps": [...]}``: the notebooks of the app directory, with their kernels
APPS_LIST_METHOD: Final = "JupyterInterop.Apps.List"
#: ``{path?, intent?, context_type?, method?, new?, start_context?}`` -> the running entry,
#: once the intent's (or method's) handler is registered on the hub; a ``start_context``
#: (an object) always starts a new kernel, which finds it in ``ENV_START_CONTEXT``
APPS_START_METHOD: Final = "JupyterInterop.Apps.Start"
#: ``{kernel_id}`` -> ``{}``: stops a notebook started headless
APPS_STOP_METHOD: Final = "JupyterInterop.Apps.Stop"
#: ``{kernel_id, timeout}`` -> the entry once its kernel stopped, or after ``timeout`` seconds
#: while it runs; a failed start's error (as ``APPS_START_METHOD``'s) when it failed
APPS_WATCH_METHOD: Final = "JupyterInterop.Apps.Watch"
#: key of a failed start's error context naming the FDC3 error (``ErrorOnLaunch``,
#: ``AppTimeout``, ``NoAppsFound``, ``TargetAppUnavailable``)
APP_ERROR_KEY: Final = "fdc3_error"

# ------------------------------------------------------------------------------ federation
# Hubs federated through NATS (docs/FEDERATION.md). A hub's federation link connects to its
# own hub like any peer, authenticated with the hub's federation token, one connection per
# remote peer it stands for plus one hidden observer.

#: ``hello`` ``authentication.method`` of the federation link's connections
FEDERATION_AUTH_METHOD: Final = "federation"
#: ``hello`` key: ``{"peer_id", "hub"}`` of the remote peer a connection stands for,
#: ``{"observer": true}`` for the link's own hidden peer, or ``{"contexts": true}`` for the
#: hidden peer that carries the federated contexts (docs/FEDERATION.md, "Contexts and channels")
FEDERATION_KEY: Final = "federation"
#: ``meta`` key of a ``peer-added`` naming the hub a remote peer lives on (``local`` false)
META_HUB_KEY: Final = "hub"
#: the application name of the federation link's hidden observer
FEDERATION_APPLICATION: Final = "jupyter-interop-federation"
#: ``bus`` messages from the hub to the link's observer: the first local subscription on a
#: topic (``{"topic"}``, as subscribed, wildcards and all) and the last one gone
BUS_INTEREST_ADDED_TYPE: Final = "interest-added"
BUS_INTEREST_REMOVED_TYPE: Final = "interest-removed"
#: ``bus`` ``publish`` keys of the observer's publications (a message of another hub): the
#: identity of its publisher, and the one subscription topic it is for (the link holds one
#: NATS subscription per topic, so a message matching two topics arrives once for each)
PUBLISHER_IDENTITY_KEY: Final = "publisher_identity"
FOR_TOPIC_KEY: Final = "for_topic"
#: hub -> contexts link: a change of a retained context to write to the space's KV bucket,
#: ``{op: create|export|update|destroy, name, data?, delta?, updater_id, ticket?}``
FEDERATION_CONTEXT_PUBLISH_TYPE: Final = "federation-context-publish"
#: contexts link -> hub: one revision of the bucket, in revision order,
#: ``{name, revision, deleted?, data?, delta?, prev?, updater_id?, ticket?}``
FEDERATION_CONTEXT_APPLY_TYPE: Final = "federation-context-apply"
#: contexts link -> hub: the update ``ticket`` could not be written, ``{ticket, reason}``
FEDERATION_CONTEXT_REFUSED_TYPE: Final = "federation-context-refused"
#: ``subscribed`` key telling the link's observer the branch its stream subscription joined
STREAM_ID_KEY: Final = "stream_id"
