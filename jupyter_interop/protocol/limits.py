"""Limits every message obeys, checked where data enters the hub and the client.

Nesting. orjson reads JSON nested up to 1024 levels but writes at most 254, so a message the
hub could read might be impossible to write to its receivers. Every frame that enters the hub
(a text frame, each item of a batch, the JSON header of a binary frame) and every frame the
Python client sends or receives is refused when it nests more than :data:`MAX_NESTING` levels
(the message object itself is level 1). The hub never builds a message deeper than the ones it
was given (a value keeps its level or moves up), and a context path may not make stored data
deeper than that either (see :func:`path_too_deep`), so whatever the hub writes fits the
writer's limit with room to spare, and every peer that accepts :data:`MAX_NESTING` levels can
read it. Refusals carry :attr:`Reason.TOO_DEEP`.

The check costs two byte counts for a frame with fewer opening brackets than the limit (almost
every frame); only a frame with more is measured exactly, on its bytes, by C-speed byte
operations (no Python loop per character).
"""

from __future__ import annotations

from typing import Any

from .errors import ProtocolError, Reason

__all__ = [
    "CLIENT_BATCH_MAX_BYTES",
    "CLIENT_BATCH_MAX_MESSAGES",
    "CLIENT_WRITE_RUN_BYTES",
    "FEDERATION_BUS_READY_TIMEOUT",
    "FEDERATION_CONTEXT_OBJECT_GRACE",
    "FEDERATION_CONTEXT_SWEEP_AGE",
    "FEDERATION_FLUSH_TIMEOUT",
    "FEDERATION_FOLD_MAX_BYTES",
    "FEDERATION_MAX_CONTEXT_BYTES",
    "FEDERATION_MAX_VALUE_BYTES",
    "FEDERATION_PAUSE_MAX_BYTES",
    "FEDERATION_VALUE_IDLE",
    "FEDERATION_VALUE_WINDOW",
    "HUB_BATCH_MAX_BYTES",
    "MAX_FEDERATED_CONTEXT_NAME_BYTES",
    "MAX_NESTING",
    "MAX_START_CONTEXT_BYTES",
    "check_frame_nesting",
    "frame_too_deep",
    "path_too_deep",
    "too_deep_error",
    "value_depth",
]

#: most levels of objects and arrays a message may nest (orjson writes at most 254)
MAX_NESTING = 128
#: longest context name (UTF-8 bytes) federated through the space's KV bucket: its key, the
#: name in base64, is part of a NATS subject, and a NATS server closes a connection whose
#: line passes 4 KiB (its max_control_line), cutting the whole link. A longer name stays a
#: context of its own hub (docs/FEDERATION.md, "Contexts and channels")
MAX_FEDERATED_CONTEXT_NAME_BYTES = 1024
#: largest starting context (as JSON) a notebook started headless may be given: it travels
#: in an environment variable, whose length Linux caps at 128 KiB
MAX_START_CONTEXT_BYTES = 64 * 1024

# Batch frames (``batch`` extension): two caps on purpose, one per direction.
#: a composed context delta a lagging subscriber would get (docs/RELIABILITY.md, coalescing)
#: is measured against the whole value once it reaches this many bytes (and again each time
#: it doubled): the whole value is sent instead when it is smaller. Below, the delta is sent
#: as it is: measuring means encoding the value, which is what composing saves
COMPOSED_DELTA_CHECK_BYTES = 64 * 1024
#: a batch frame the hub writes to a peer is closed once it holds this many bytes: big enough
#: that a burst of announcements costs a peer few writes
HUB_BATCH_MAX_BYTES = 1024 * 1024
#: a batch frame the client sends is closed once it holds this many bytes or messages. Smaller
#: than the hub's cap because the hub handles a slice of an incoming batch and queues what it
#: produced for every recipient before writing any of it: the client's cap bounds that burst
#: and keeps it below the hub's outbox limits
CLIENT_BATCH_MAX_BYTES = 256 * 1024
CLIENT_BATCH_MAX_MESSAGES = 256
#: stream items of one branch that pile up at a federation link go to NATS as one message of
#: at most this many bytes of items (NATS refuses a message above its max_payload, 1 MiB by
#: default)
FEDERATION_FOLD_MAX_BYTES = 256 * 1024
#: the items of a branch a publisher's link holds back for a hub that is joining it (until
#: that hub says its NATS subscription is in place) are sent anyway past this many bytes
FEDERATION_PAUSE_MAX_BYTES = 4 * 1024 * 1024
#: the client's writer hands the socket the frames that piled up, each still its own
#: WebSocket frame, in one system call of up to about this many bytes: unbatched sends then
#: cost a system call per burst, not per message, while a full batch frame (larger than
#: this) is written from itself, never copied into a join with the next one
CLIENT_WRITE_RUN_BYTES = 64 * 1024

#: brackets become parentheses; everything but brackets and quotes is deleted
_AS_PARENS = bytes.maketrans(b"{[}]", b"(())")
_NOT_STRUCTURE = bytes(b for b in range(256) if b not in b'{[}]"')


def _nesting_over(frame: bytes, limit: int) -> bool:
    """True when the JSON text ``frame`` nests deeper than ``limit`` levels (exact).

    Escaped backslashes, then escaped quotes, are removed so that the quotes left delimit
    strings; the text between them (string contents, where brackets mean nothing) is dropped;
    what remains is the bracket structure, from which each pass of ``replace`` removes the
    innermost level.
    """
    if b"\\" in frame:  # (``in`` looks for one byte fast; ``replace`` scans slowly)
        frame = frame.replace(b"\\\\", b"").replace(b'\\"', b"")
    text = frame.translate(_AS_PARENS, _NOT_STRUCTURE)
    if b'"' in text:
        text = _without_strings(text)
    for _ in range(limit):
        if not text:
            return False
        text = text.replace(b"()", b"")
    return bool(text)


def _without_strings(text: bytes) -> bytes:
    """``text`` (brackets and the quotes that delimit strings) without the strings.

    A string with no bracket in it is a pair of adjacent quotes by now, and most strings are
    such: removing ``""`` pairs from the left removes exactly those. Were any quote left, a
    string holds brackets: then every other piece between quotes is kept.
    """
    stripped = text.replace(b'""', b"")
    if b'"' not in stripped:
        return stripped
    return b"".join(text.split(b'"')[::2])


def frame_too_deep(frame: bytes | bytearray | memoryview | str, limit: int = MAX_NESTING) -> bool:
    """Does this JSON frame nest deeper than ``limit`` levels?"""
    # no more opening brackets than the limit: not too deep (cheaper than measuring); a run
    # of stream items holds more objects than that, so "[" is not counted then
    if isinstance(frame, str):
        objects = frame.count("{")
        if objects <= limit and objects + frame.count("[") <= limit:
            return False
        return _nesting_over(frame.encode(), limit)
    raw = frame if isinstance(frame, bytes) else bytes(frame)
    objects = raw.count(b"{")
    if objects <= limit and objects + raw.count(b"[") <= limit:
        return False
    return _nesting_over(raw, limit)


def too_deep_error(request: Any = None, limit: int = MAX_NESTING) -> ProtocolError:
    """The refusal of a message nested deeper than ``limit`` (``request``: the message, when
    it was decoded, so the error answers it)."""
    return ProtocolError(
        Reason.TOO_DEEP,
        f"Message nested deeper than {limit} levels of objects and arrays: refused "
        "(nothing of it was stored or routed)",
        request=request if isinstance(request, dict) else None,
    )


def check_frame_nesting(frame: bytes | bytearray | memoryview | str, message: Any) -> None:
    """Raise the refusal of ``message`` when its frame nests deeper than :data:`MAX_NESTING`."""
    if frame_too_deep(frame):
        raise too_deep_error(message)


def value_depth(value: Any, stop: int = MAX_NESTING + 1) -> int:
    """Levels of objects and arrays in a decoded value (0 for a scalar), counted up to
    ``stop`` (a deeper value reports ``stop``)."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        node, level = stack.pop()
        kind = type(node)
        if kind is not dict and kind is not list:
            continue
        if level > deepest:
            deepest = level
            if deepest >= stop:
                return stop
        for child in node.values() if kind is dict else node:
            if type(child) is dict or type(child) is list:
                stack.append((child, level + 1))
    return deepest


#: levels above a context's data in the deepest message that carries it (the message, then
#: ``data`` of ``subscribed-context``)
_CONTEXT_DATA_LEVEL = 2


def path_too_deep(segments: int, value: Any) -> bool:
    """Would setting ``value`` at a context path of ``segments`` parts nest the context's data
    deeper than a message may carry it? (Maps are created along the path.)"""
    room = MAX_NESTING - _CONTEXT_DATA_LEVEL - (segments - 1)
    if room >= MAX_NESTING - 4:  # short paths: the value already passed the message's check
        return False
    return value_depth(value, room + 1) > room


#: a federation link holds at most this many bytes of values crossing hubs at a time, sent
#: and received together (``c.InteropHub.federation_max_value_bytes``'s default)
FEDERATION_MAX_VALUE_BYTES = 1024 * 1024 * 1024
#: largest federated context value (its data and the delta that made it, encoded): kept in
#: the space's object store, so NATS holds it (``c.InteropHub.federation_max_context_bytes``'s
#: default; docs/FEDERATION.md, "Large context values")
FEDERATION_MAX_CONTEXT_BYTES = 256 * 1024 * 1024
#: bytes of a NATS message (its ``max_payload``) kept for what is not the payload a
#: federation link fills (subject, reply subject, headers): value chunks and context records
#: are at most ``max_payload`` less this
NATS_MESSAGE_ROOM = 4096
#: bytes of NATS publications (bus and stream messages to other hubs) a federation link
#: queues while the NATS server takes them slower than they come; past it they are dropped
#: and calls across hubs fail at once (``c.InteropHub.federation_max_queue_bytes``'s
#: default; docs/FEDERATION.md, "A slow NATS server")
FEDERATION_MAX_QUEUE_BYTES = 64 * 1024 * 1024
#: seconds the object of a superseded context revision stays readable before it is deleted:
#: a hub whose watch lags that much behind still reads that revision, so its members get
#: its delta rather than the whole newer value
FEDERATION_CONTEXT_OBJECT_GRACE = 5.0
#: seconds after which an object of the space's store that no context's current revision
#: points to counts as left behind (its hub stopped between writing it and deleting it) and
#: is deleted by the next hub that joins; far longer than any write takes, so an object
#: being written is never taken for one
FEDERATION_CONTEXT_SWEEP_AGE = 600.0
#: seconds a hub holds the confirmation of a subscription on a topic new to it while its
#: federation link makes the NATS subscription, then it confirms anyway and logs why
#: (``c.InteropHub.federation_bus_ready_timeout``'s default)
FEDERATION_BUS_READY_TIMEOUT = 5.0
#: seconds a federation link's flush waits for the NATS server's PONG: longer than nats-py
#: takes to find a silent server stale (two pings unanswered, 120 s apart), since a flush it
#: gives up on breaks its reading of the connection when the PONG comes after all
FEDERATION_FLUSH_TIMEOUT = 600.0
#: chunks of one large value a federation link asks for before the first has arrived
FEDERATION_VALUE_WINDOW = 8
#: seconds a federation link waits for a chunk, and keeps an offered value nobody pulls
FEDERATION_VALUE_IDLE = 30.0
