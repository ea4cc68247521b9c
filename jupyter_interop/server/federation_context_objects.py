"""Large and binary context values across hubs: a record too large for one NATS message
stays small in the KV bucket and points to an entry of the space's JetStream object store
(docs/FEDERATION.md, "Large context values").

A context is state that must outlive any one hub, so its value cannot stay with its writer
(as a call's value does, ``federation_values.py``): NATS keeps it. A record that fits one
NATS message is written into the KV bucket as before: as JSON, or as one binary frame when it
has binary values (:func:`load_value` reads either). A larger record keeps there only what
every hub needs to order it (name, ``prev``, writer, ticket) and ``value: {object, size}``;
its data and delta go, as one binary frame (bytes, numpy arrays and DataFrames as buffers,
``protocol/frames.py``), into the object store ``ji-<space>-context-values`` under a name of
its own (:func:`object_name`), which NATS chunks. The object of a revision is deleted once a
newer revision supersedes it, and a hub that joins deletes what a stopped hub left behind
(:func:`left_behind`).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import secrets
from collections.abc import Awaitable, Callable
from datetime import datetime, timezone
from typing import Any

import orjson

from ..protocol import ProtocolError
from ..protocol.frames import MAGIC, PiecedFrame, encode_binary, peek_header
from ..protocol.limits import FEDERATION_CONTEXT_SWEEP_AGE
from .attachments import decode_frame

__all__ = [
    "VALUE_KEY",
    "ContextObjects",
    "ContextTooLarge",
    "left_behind",
    "load_value",
    "object_name",
    "object_of",
    "objects_bucket_name",
    "pack_record",
    "record_header",
    "sweep_age",
    "unpack_record",
]

Record = dict[str, Any]

#: the field of a KV record that points to its object: ``{"object": name, "size": bytes}``
VALUE_KEY = "value"
#: what a record keeps in its object rather than in the KV bucket
_BODY_FIELDS = ("data", "delta")
#: seconds an object operation may take besides its transfer (NATS away: an error)
OBJECT_TIMEOUT = 5.0
#: bytes per second an object transfer is granted at least before it counts as failed
OBJECT_RATE = 4 * 1024 * 1024


class ContextTooLarge(ValueError):
    """A context value above ``federation_max_context_bytes``: nothing was written."""

    def __init__(self, size: int, limit: int) -> None:
        super().__init__(
            f"A context value of {size} bytes cannot be federated: a federated context holds "
            f"at most {limit} bytes (c.InteropHub.federation_max_context_bytes)"
        )


def objects_bucket_name(space: str) -> str:
    """The space's object store (a space is one subject token: a valid bucket name)."""
    return f"ji-{space}-context-values"


def object_name(key: str, base: int) -> str:
    """A fresh object name for the record of context ``key`` written over revision ``base``:
    the context and the revision it follows, plus a nonce, since two hubs (or two attempts)
    may write over the same revision and only one compare-and-set wins."""
    return f"{key}/{base}-{secrets.token_hex(6)}"


def object_of(record: Record | None) -> str | None:
    """The object a record points to (None for an inline record, a tombstone, or none)."""
    ref = record.get(VALUE_KEY) if record is not None else None
    name = ref.get("object") if isinstance(ref, dict) else None
    return name if isinstance(name, str) else None


def pack_record(
    record: Record, *, name: str, inline_limit: int, max_bytes: int
) -> tuple[bytes, bytes | None]:
    """The KV value of ``record`` and, for a large one, its object's body (to be stored as
    ``name``); raises :class:`ContextTooLarge` over ``max_bytes``. A record of at most
    ``inline_limit`` bytes is the KV value itself: its JSON exactly as before, or one binary
    frame when it holds binary values."""
    record = {k: v for k, v in record.items() if k != VALUE_KEY}
    encoded = encode_binary(record)
    if len(encoded) <= inline_limit:
        return _bytes_of(encoded), None
    frame = encode_binary({k: record.get(k) for k in _BODY_FIELDS})
    size = len(frame)
    if size > max_bytes:
        raise ContextTooLarge(size, max_bytes)
    body = _bytes_of(frame)
    small = {k: v for k, v in record.items() if k not in _BODY_FIELDS}
    small[VALUE_KEY] = {"object": name, "size": size}
    return orjson.dumps(small), body


def _bytes_of(frame: bytes) -> bytes:
    return b"".join(frame.parts) if isinstance(frame, PiecedFrame) else bytes(frame)


def load_value(value: Any) -> Any:
    """A KV value or object body as written: JSON, or a binary frame whose binary values
    become attachments, as the hub core keeps them (raises ValueError when it is neither)."""
    if bytes(value[:4]) != MAGIC:
        return orjson.loads(value)
    try:
        return decode_frame(value)
    except ProtocolError as error:
        raise ValueError(str(error)) from None


def record_header(value: bytes) -> dict[str, Any]:
    """The JSON fields of a KV value (``prev``, ``value``...), without decoding its binary
    values; {} for what is no record."""
    try:
        header = peek_header(value) if value[:4] == MAGIC else orjson.loads(value)
    except ValueError:
        return {}
    return header if isinstance(header, dict) else {}


def unpack_record(small: Record, body: Any) -> Record:
    """The whole record from its KV part and its object's body (binary values as
    attachments, as the hub core keeps them); raises ValueError for a broken body."""
    loaded = load_value(body)
    if not isinstance(loaded, dict) or not isinstance(loaded.get("data"), dict):
        raise ValueError(f"the object of context {small.get('name')!r} holds no data object")
    return {**small, **{k: loaded.get(k) for k in _BODY_FIELDS}}


def sweep_age(max_bytes: int) -> float:
    """Seconds after which an object nobody points to is left behind: far longer than the
    longest write of a value of ``max_bytes`` may take (it is abandoned after that)."""
    return max(FEDERATION_CONTEXT_SWEEP_AGE, 2 * _transfer_timeout(max_bytes))


def left_behind(
    name: str, mtime: str | None, current: str | None, now: datetime, age: float
) -> bool:
    """Whether object ``name``, written at ``mtime`` (ISO 8601), is left behind: it is not
    the object ``current`` that its context's current revision points to, and it is older
    than ``age`` seconds, so no write can still be about to point to it. An unreadable time
    keeps it."""
    if name == current:
        return False
    try:
        written = datetime.fromisoformat((mtime or "").replace("Z", "+00:00"))
    except ValueError:
        return False
    if written.tzinfo is None:
        return False
    return (now - written).total_seconds() > age


def _digest(text: str | None) -> bytes:
    """The SHA-256 of an object's info (``SHA-256=<base64url>``), b"" when unreadable."""
    _, _, encoded = (text or "").partition("=")
    try:
        return base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4))
    except ValueError:
        return b""


def _transfer_timeout(size: int) -> float:
    return OBJECT_TIMEOUT + size / OBJECT_RATE


class ContextObjects:
    """The space's object store, as the contexts link uses it."""

    def __init__(self, js: Any, bucket: str, store: Any, direct: bool) -> None:
        self.js = js
        self.bucket = bucket
        self.store = store
        #: the stream answers direct gets (raw chunks, no base64; true for a store made here)
        self.direct = direct

    @classmethod
    async def open(cls, js: Any, space: str) -> ContextObjects:
        """Create (or find) the space's object store, kept on disk like the KV bucket."""
        from nats.js.api import ObjectStoreConfig, StorageType

        bucket = objects_bucket_name(space)
        try:
            store = await js.create_object_store(
                bucket, config=ObjectStoreConfig(bucket=bucket, storage=StorageType.FILE)
            )
        except Exception:  # it exists with another configuration: use it as it is
            store = await js.object_store(bucket)
        info = await js.stream_info(f"OBJ_{bucket}")
        return cls(js, bucket, store, bool(info.config.allow_direct))

    async def put(self, name: str, body: bytes, chunk: int) -> None:
        """Store ``body`` as ``name`` in chunks of ``chunk`` bytes (one NATS message each)."""
        from nats.js.api import ObjectMeta, ObjectMetaOptions

        meta = ObjectMeta(name=name, options=ObjectMetaOptions(max_chunk_size=chunk))
        await asyncio.wait_for(self.store.put(name, body, meta), _transfer_timeout(len(body)))

    async def get(self, name: str, size: int) -> bytes:
        """The body of object ``name`` (raises when it is gone, broken, or does not arrive).

        Read here rather than with nats-py's ``ObjectStore.get``, which looks the stream up
        by subject (``$JS.API.STREAM.NAMES``): a space's NATS user may not list the streams
        of other spaces (``federation_access.py``), so the stream is named. Each chunk is one
        direct get of the next message on the object's subject: about five times faster
        than nats-py's ordered push consumer for 1 MB chunks (measured on loopback, 50 MB)."""
        return await asyncio.wait_for(self._get(name), _transfer_timeout(size))

    async def _get(self, name: str) -> bytes:
        info = await self.store.get_info(name)
        if not info.nuid or info.deleted:
            raise LookupError(f"object {name} is deleted")
        body = bytearray()
        subject, stream = f"$O.{self.bucket}.C.{info.nuid}", f"OBJ_{self.bucket}"
        sequence = 1
        for _ in range(info.chunks or 0):
            msg = await self.js.get_msg(
                stream, seq=sequence, subject=subject, next=True, direct=self.direct
            )
            body += msg.data or b""
            sequence = int(msg.seq) + 1
        if len(body) != info.size or _digest(info.digest) != hashlib.sha256(body).digest():
            raise ValueError(f"object {name} arrived broken")
        return bytes(body)

    async def delete(self, name: str) -> None:
        await asyncio.wait_for(self.store.delete(name), OBJECT_TIMEOUT)

    async def sweep(self, points_to: Callable[[str], Awaitable[str | None]], age: float) -> int:
        """Delete the objects left behind by a hub that stopped between writing a revision
        and deleting what it superseded (or between writing an object and losing its
        compare-and-set): older than ``age`` seconds and not what the current revision of
        their context points to (``points_to(key)``). Returns how many went."""
        now = datetime.now(timezone.utc)
        current: dict[str, str | None] = {}
        swept = 0
        for info in await self.infos():
            key = str(info.name).split("/", 1)[0]
            if key not in current:
                current[key] = await points_to(key)
            if left_behind(info.name, info.mtime, current[key], now, age):
                await self.delete(info.name)
                swept += 1
        return swept

    async def infos(self) -> list[Any]:
        """The ``ObjectInfo`` of each object the store holds (not deleted ones); read naming
        the stream, as :meth:`get` does, not with nats-py's ``list``."""
        from nats.js.api import DeliverPolicy, ObjectInfo
        from nats.js.errors import NotFoundError

        subject, stream = f"$O.{self.bucket}.M.>", f"OBJ_{self.bucket}"
        try:
            await self.js.get_last_msg(stream, subject)
        except NotFoundError:  # no object ever
            return []
        found: list[Any] = []
        policy = DeliverPolicy.LAST_PER_SUBJECT
        sub = await self.js.subscribe(
            subject, stream=stream, ordered_consumer=True, deliver_policy=policy
        )
        try:
            async for msg in sub.messages:
                info = ObjectInfo.from_response(orjson.loads(msg.data))
                if not info.deleted:
                    found.append(info)
                if msg.metadata.num_pending == 0:
                    break
        finally:
            await sub.unsubscribe()
        return found
