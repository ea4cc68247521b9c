"""Federated contexts: retained contexts (and so channels) as one object across the hubs of a
space, kept in a JetStream key-value bucket (docs/FEDERATION.md, "Contexts and channels").

The bucket ``ji-<space>-contexts`` holds one key per context: the context name as base64url
without padding (:func:`context_key`), since NATS keys allow only ``[-/_=.a-zA-Z0-9]``. Its
value is a :data:`Record`: the whole data, plus the delta that made it from revision ``prev``,
who wrote it and on which hub. The key's revision (the bucket's sequence number) is the
context's version on every hub.

The hub core stays without I/O: this link is a hidden peer of its own hub, opened with the
federation token and ``{"contexts": true}``. The hub sends it every change of a retained
context (``federation-context-publish``); it writes updates as a compare-and-set on the revision
it last saw and, on conflict, re-reads the key and re-applies the delta (:func:`rebase`). It
watches the bucket and hands every revision, in order, back to its hub
(``federation-context-apply``), which applies it once: the hub's own updates take effect
there too, so all hubs apply all updates in the bucket's order.

A record too large for one NATS message, or with binary values (bytes, numpy arrays,
DataFrames), keeps its data and delta in the space's object store and only a reference in the
bucket (``federation_context_objects.py``); the link's connection to its hub negotiates binary
frames for those messages, so the values keep their types from hub to hub.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

import orjson

from ..protocol.channels import CHANNEL_PREFIX, channel_context_problem
from ..protocol.deltas import apply_delta, copy_data
from ..protocol.limits import (
    FEDERATION_CONTEXT_OBJECT_GRACE,
    FEDERATION_MAX_CONTEXT_BYTES,
    NATS_MESSAGE_ROOM,
)
from ..protocol.wire import (
    FEDERATION_CONTEXT_APPLY_TYPE,
    FEDERATION_CONTEXT_PUBLISH_TYPE,
    FEDERATION_CONTEXT_REFUSED_TYPE,
    FEDERATION_KEY,
    GLOBAL_DOMAIN,
)
from .federation_context_objects import (
    VALUE_KEY,
    ContextObjects,
    ContextTooLarge,
    load_value,
    object_name,
    object_of,
    pack_record,
    record_header,
    sweep_age,
    unpack_record,
)

__all__ = [
    "ContextGone",
    "ContextsLink",
    "KeyedQueue",
    "Record",
    "bucket_name",
    "context_key",
    "context_name",
    "decode_record",
    "rebase",
    "tombstone",
]

Message = dict[str, Any]
#: a bucket value: ``{name, data, delta, prev, updater, hub, ticket}`` (delta and prev are
#: None for a creation; ticket names the writer's pending update, or creation, on hub
#: ``hub``), the same
#: with ``value: {object, size}`` instead of data and delta for a large or binary one
#: (``federation_context_objects.py``), or the tombstone of a destroyed context
#: ``{name, deleted: true, updater, hub, ticket}``
Record = dict[str, Any]

#: how often an update is re-applied after losing a compare-and-set before it is refused
MAX_ATTEMPTS = 64
#: seconds one operation on the bucket may take (NATS away: the writer gets an error)
KV_TIMEOUT = 5.0
#: seconds between attempts to watch the bucket again after NATS came back
RESYNC_WAIT = 0.5
#: revisions the bucket keeps per context: a watch that lags (a busy link) reads the ones it
#: missed from there, so its hub still forwards every update as a delta; a hub that lags by
#: more resets its members to the whole value. Each kept revision is a whole value.
HISTORY = 16
#: times a revision whose object did not arrive is read again before the hub goes without it
FETCH_ATTEMPTS = 3


def bucket_name(space: str) -> str:
    """The space's KV bucket (a space is one subject token, so the name is a valid bucket)."""
    return f"ji-{space}-contexts"


def context_key(name: str) -> str:
    """The bucket key of context ``name``: its UTF-8 bytes in base64url without padding
    (letters, digits, ``-`` and ``_``: a valid key for any name)."""
    if not name:
        raise ValueError("a context name is never empty")
    return base64.urlsafe_b64encode(name.encode()).rstrip(b"=").decode("ascii")


def context_name(key: str) -> str:
    """The context name of bucket key ``key`` (inverse of :func:`context_key`)."""
    try:
        raw = base64.urlsafe_b64decode(key + "=" * (-len(key) % 4))
        return raw.decode()
    except (binascii.Error, UnicodeDecodeError, ValueError) as error:
        raise ValueError(f"not a context key: {key!r}") from error


def decode_record(value: bytes, name: str) -> Record:
    """A bucket value, checked: raises ValueError for what no hub of ours wrote."""
    record = load_value(value)
    if not isinstance(record, dict) or record.get("name") != name:
        raise ValueError(f"the value of context {name!r} is not a record of it")
    if record.get("deleted") is True:
        return record
    ref = record.get(VALUE_KEY)
    if ref is not None:
        if not (isinstance(ref, dict) and object_of(record) and isinstance(ref.get("size"), int)):
            raise ValueError(f"the value of context {name!r} has a broken object reference")
        return record
    if not isinstance(record.get("data"), dict):
        raise ValueError(f"the value of context {name!r} has no data object")
    return record


#: makes the link's connection to its own hub (``federation.py``) from its message callback
SocketFactory = Callable[[Callable[[Message], None]], Any]


class ContextGone(Exception):
    """The context's key is deleted or missing: nothing to apply an update to."""

    def __init__(self) -> None:
        super().__init__(
            "the context is not in the space's bucket: destroyed on another hub, or its "
            "creation could not be written"
        )


def rebase(
    current: Record | None,
    revision: int,
    delta: dict[str, Any],
    *,
    updater: str | None,
    hub: str,
    ticket: str | None,
) -> Record:
    """The record that applies ``delta`` to ``current`` (the key's state at ``revision``):
    the new whole data and the delta itself, which every hub that holds ``revision``
    forwards to its members as it is. Raises :class:`ContextGone` when there is no current
    state (or a tombstone), ValueError when the result breaks the channel rule
    (``protocol/channels.py``)."""
    if current is None or current.get("deleted") is True:
        raise ContextGone()
    name = current["name"]
    data = apply_delta(copy_data(current["data"]), delta)
    if name.startswith(CHANNEL_PREFIX):
        problem = channel_context_problem(name, data, current["data"])
        if problem is not None:
            raise ValueError(f"Channel context {name!r}: {problem}")
    return {
        "name": name,
        "data": data,
        "delta": delta,
        "prev": revision,
        "updater": updater,
        "hub": hub,
        "ticket": ticket,
    }


def tombstone(name: str, *, updater: str | None, hub: str, ticket: str | None) -> Record:
    """The value that destroys context ``name``: a record, not a NATS delete, so that it
    carries the destroyer's ticket back through the watch, and an ``export`` of a hub that
    was away cannot bring the context back."""
    return {"name": name, "deleted": True, "updater": updater, "hub": hub, "ticket": ticket}


def _created(message: Message, hub: str) -> Record:
    data = message.get("data")
    return {
        "name": message["name"],
        "data": data if isinstance(data, dict) else {},
        "delta": None,
        "prev": None,
        "updater": message.get("updater_id"),
        "hub": hub,
        "ticket": message.get("ticket"),
    }


class KeyedQueue:
    """Items handled one at a time per key, in the order they were put, by ``handle``; keys
    apart run concurrently. A key's worker ends when its queue is empty."""

    def __init__(self, handle: Callable[[str, Message], Awaitable[None]]) -> None:
        self.handle = handle
        self._queues: dict[str, deque[Message]] = {}
        self._workers: set[asyncio.Task[None]] = set()

    def put(self, key: str, item: Message) -> None:
        queue = self._queues.get(key)
        if queue is None:
            queue = self._queues[key] = deque()
            worker = asyncio.ensure_future(self._drain(key, queue))
            self._workers.add(worker)
            worker.add_done_callback(self._workers.discard)
        queue.append(item)

    async def _drain(self, key: str, queue: deque[Message]) -> None:
        try:
            while queue:
                await self.handle(key, queue[0])
                queue.popleft()
        finally:  # (no await between the last item and here: a new item starts a new worker)
            if self._queues.get(key) is queue:
                del self._queues[key]

    def cancel(self) -> None:
        for worker in list(self._workers):
            worker.cancel()


class ContextsLink:
    """The bucket of one space on one hub: writes what the hub publishes, watches the bucket
    and feeds every revision back to the hub in order."""

    def __init__(
        self,
        *,
        nats: Any,
        hub_id: str,
        space: str,
        make_socket: SocketFactory,
        log: logging.Logger,
        max_bytes: int = FEDERATION_MAX_CONTEXT_BYTES,
    ) -> None:
        self.nats = nats
        self.hub_id = hub_id
        self.space = space
        self.bucket = bucket_name(space)
        #: the largest record body this link writes or reads (``federation_max_context_bytes``)
        self.max_bytes = max_bytes
        #: the space's object store for large and binary values (None: not available)
        self.objects: ContextObjects | None = None
        #: objects of superseded revisions, deleted after a grace (:meth:`_retire`)
        self._retiring: dict[str, asyncio.Task[None]] = {}
        #: object name -> the record this link wrote with it, until the watch brings it back
        #: (the watch may bring it before the write's own reply: it is not read back)
        self._mine: dict[str, Record] = {}
        self._sweeping: asyncio.Task[None] | None = None
        #: the link's connection to its own hub; its messages come to :meth:`receive`
        self.socket = make_socket(self.receive)
        self.log = log
        self.kv: Any = None
        #: key -> (record, revision) as last seen, the base of the next compare-and-set
        self._seen: dict[str, tuple[Record, int]] = {}
        #: key -> the last revision handed to the hub
        self._delivered: dict[str, int] = {}
        #: one key's publications are written one at a time, in the order the hub sent them
        self._queues = KeyedQueue(self._publish)
        self._watcher: Any = None
        self._watching: asyncio.Task[None] | None = None

    async def open_bucket(self) -> None:
        """Create (or find) the bucket; raises when JetStream is not available."""
        from nats.js.api import KeyValueConfig, StorageType

        js = self.nats.jetstream(timeout=KV_TIMEOUT)
        config = KeyValueConfig(bucket=self.bucket, history=HISTORY, storage=StorageType.FILE)
        try:
            self.kv = await js.create_key_value(config)
        except Exception:  # it exists with another configuration: use it as it is
            self.kv = await js.key_value(self.bucket)
        try:
            self.objects = await ContextObjects.open(js, self.space)
        except Exception as error:  # (NATS permissions of an older deployment, say)
            self.log.warning(
                "Interop federation: no object store for large context values (%r): "
                "such values are refused",
                error,
            )

    @property
    def inline_limit(self) -> int:
        """The largest record written into the bucket as it is (one NATS message)."""
        return int(self.nats.max_payload) - NATS_MESSAGE_ROOM

    async def start(self, hello: Message) -> None:
        """Open the hub connection (the hub then offers its retained contexts) and watch."""
        # contexts only: the link needs none of agm's announcements
        await self.socket.open({**hello, FEDERATION_KEY: {"contexts": True}}, agm=False)
        await self._watch()
        if self.objects is not None:
            self._sweeping = asyncio.ensure_future(self._sweep(self.objects))

    async def _sweep(self, objects: ContextObjects) -> None:
        """Delete the objects a stopped hub left behind (``ContextObjects.sweep``)."""
        try:
            swept = await objects.sweep(self._points_to, sweep_age(self.max_bytes))
        except asyncio.CancelledError:
            raise
        except Exception as error:  # (tried again by the next hub that joins)
            self.log.warning("Interop federation: objects left behind not swept: %r", error)
            return
        if swept:
            self.log.info("Interop federation: deleted %d objects left behind", swept)

    async def _points_to(self, key: str) -> str | None:
        """The object the current revision of ``key`` points to (None: none, or no key)."""
        from nats.js.errors import KeyNotFoundError

        try:
            entry = await self.kv.get(key)
        except KeyNotFoundError:
            return None
        return object_of(record_header(entry.value))

    # ------------------------------------------------------------------ the watch

    async def _watch(self) -> None:
        if self._watching is not None:
            self._watching.cancel()
        if self._watcher is not None:
            with contextlib.suppress(Exception):
                await self._watcher.stop()
        self._watcher = await self.kv.watch(">")
        self._watching = asyncio.ensure_future(self._follow(self._watcher))
        self._watching.add_done_callback(self._watch_ended)

    def _watch_ended(self, watching: asyncio.Task[None]) -> None:
        """A watch that failed is said (its hub no longer hears the bucket until the next
        resynchronisation), not left as an unread task error."""
        if not watching.cancelled() and watching.exception() is not None:
            self.log.error(
                "Interop federation: the watch of %s stopped: %r", self.bucket, watching.exception()
            )

    async def _follow(self, watcher: Any) -> None:
        async for entry in watcher:
            if entry is not None:
                for missed in await self._missed(entry):
                    await self._entry(missed)
                await self._entry(entry)

    async def _missed(self, entry: Any) -> list[Any]:
        """The revisions of ``entry``'s key between the one last handed to the hub and
        ``entry`` that the watch skipped (a key's newer revision can replace an older one
        before a lagging watch reads it), oldest first; as many as the history still has."""
        delivered = self._delivered.get(entry.key)
        if delivered is None or not entry.value:
            return []
        prev = record_header(entry.value).get("prev")
        missed: list[Any] = []
        while isinstance(prev, int) and prev > delivered and len(missed) < HISTORY:
            try:
                older = await self.kv.get(entry.key, revision=prev)
                prev = record_header(older.value).get("prev")
            except Exception:  # gone from the history: the hub resets its members
                break
            missed.append(older)
        return missed[::-1]

    async def _entry(self, entry: Any) -> None:
        """One revision of the bucket, to the hub (the hub drops what it holds already); a
        revision whose object was deleted meanwhile (superseded) is skipped: the newer one
        follows, and the hub gives its members the whole value."""
        from nats.js.kv import KV_DEL, KV_PURGE

        try:
            name = context_name(entry.key)
        except ValueError as error:
            self.log.warning("Interop federation: skipping bucket key: %s", error)
            return
        seen = self._seen.get(entry.key)
        self._delivered[entry.key] = max(entry.revision, self._delivered.get(entry.key, 0))
        apply: Message = {
            "domain": GLOBAL_DOMAIN,
            "type": FEDERATION_CONTEXT_APPLY_TYPE,
            "name": name,
            "revision": entry.revision,
        }
        if entry.operation in (KV_DEL, KV_PURGE):  # (removed by hand: a tombstone of no one)
            record: Record = tombstone(name, updater=None, hub="", ticket=None)
        else:
            try:
                small = decode_record(entry.value, name)
            except ValueError as error:
                self.log.warning(
                    "Interop federation: skipping revision %s: %s", entry.revision, error
                )
                return
            whole = await self._resolve(entry.key, entry.revision, small)
            if whole is None:
                return
            record = whole
        if seen is None or seen[1] < entry.revision:
            self._seen[entry.key] = (record, entry.revision)
        if record.get("deleted") is True:
            apply["deleted"] = True
        else:
            apply.update(
                data=record["data"],
                delta=record.get("delta"),
                prev=record.get("prev"),
                updater_id=record.get("updater"),
            )
        if record.get("hub") == self.hub_id and record.get("ticket"):
            apply["ticket"] = record["ticket"]  # this hub's writer waits for it
        self.socket.send(apply)  # (binary values as attachments: the connection takes them)

    async def _resolve(self, key: str, revision: int, record: Record) -> Record | None:
        """``record`` (revision ``revision`` of ``key``) with its data and delta, read from
        its object when it has one; None when that object is gone because a newer revision
        superseded it (or could not be read: said in the log)."""
        name = object_of(record)
        if name is None:
            return record
        mine = self._mine.pop(name, None)
        if mine is not None:  # this link's own write: its value is here already
            return mine
        size = int(record[VALUE_KEY]["size"])
        if size > self.max_bytes or self.objects is None:
            why = ContextTooLarge(size, self.max_bytes) if self.objects else "no object store"
            self.log.error("Interop federation: revision %s not applied: %s", revision, why)
            return None
        failure: Exception | None = None
        for _ in range(FETCH_ATTEMPTS):
            try:
                return unpack_record(record, await self.objects.get(name, size))
            except asyncio.CancelledError:
                raise
            except Exception as error:
                failure = error
            if await self._superseded(key, revision):
                return None
        self.log.error(
            "Interop federation: revision %s of context %r not applied: its value did not "
            "arrive (%r)",
            revision,
            record.get("name"),
            failure,
        )
        return None

    async def _superseded(self, key: str, revision: int) -> bool:
        """Whether ``key`` holds a revision newer than ``revision`` (or none at all)."""
        from nats.js.errors import KeyNotFoundError

        try:
            latest = await self.kv.get(key)
        except KeyNotFoundError:
            return True
        return int(latest.revision) > revision

    async def resync(self) -> None:
        """NATS is back: watch again from each key's last revision (the hub applies only
        what is newer than what it holds, so nothing is applied twice)."""
        while True:
            try:
                await self._watch()
                return
            except asyncio.CancelledError:
                raise
            except Exception as error:  # JetStream still recovering its streams
                self.log.info("Interop federation: watching the contexts again: %r", error)
                await asyncio.sleep(RESYNC_WAIT)

    # ---------------------------------------------------------- what the hub publishes

    def receive(self, message: Message) -> None:
        """A message of the hub to this link (only publications matter)."""
        if message.get("type") != FEDERATION_CONTEXT_PUBLISH_TYPE:
            return
        name = message.get("name")
        if not isinstance(name, str) or not name:
            return
        self._queues.put(context_key(name), message)

    async def _publish(self, key: str, message: Message) -> None:
        try:
            await self._write(key, message)
        except asyncio.CancelledError:
            raise
        except Exception as error:
            self._refuse(message, str(error) or type(error).__name__)

    def _refuse(self, message: Message, why: str) -> None:
        ticket = message.get("ticket")
        if isinstance(ticket, str):
            self.socket.send(
                {
                    "domain": GLOBAL_DOMAIN,
                    "type": FEDERATION_CONTEXT_REFUSED_TYPE,
                    "ticket": ticket,
                    "reason": why,
                }
            )
        else:
            self.log.warning(
                "Interop federation: %s of context %r not written: %s",
                message.get("op"),
                message.get("name"),
                why,
            )

    async def _write(self, key: str, message: Message) -> None:
        from nats.js.errors import KeyWrongLastSequenceError

        if not self.nats.is_connected:
            raise ConnectionError("NATS is not reachable")
        op = message.get("op")
        if op == "export":  # only a key the bucket never had (a destroyed one stays so)
            with contextlib.suppress(KeyWrongLastSequenceError):
                await self._put(key, _created(message, self.hub_id), None, 0)
        elif op == "create":  # a new context, or again one that was destroyed
            await self._replace(key, message["name"], _created(message, self.hub_id), fresh=True)
        elif op == "destroy":
            gone = tombstone(
                message["name"],
                updater=message.get("updater_id"),
                hub=self.hub_id,
                ticket=message.get("ticket"),
            )
            await self._replace(key, message["name"], gone, fresh=False)
        elif op == "update":
            await self._update(key, message)

    async def _current(self, key: str, name: str) -> tuple[Record | None, int]:
        """The key's record (with its data, read from its object if it has one) and
        revision as last seen, else as read now (None and the revision to set on when there
        is no value: 0, or that of a NATS delete)."""
        from nats.js.errors import KeyNotFoundError

        seen = self._seen.get(key)
        if seen is not None:
            return seen
        for _ in range(MAX_ATTEMPTS):
            try:
                entry = await self.kv.get(key)
            except KeyNotFoundError as missing:
                deleted = getattr(missing, "entry", None)
                return None, int(getattr(deleted, "revision", 0) or 0)
            record = await self._resolve(key, entry.revision, decode_record(entry.value, name))
            if record is not None:
                return record, entry.revision
        raise RuntimeError("the context's value could not be read from the object store")

    async def _put(self, key: str, record: Record, base: Record | None, last: int) -> int:
        """Write ``record`` over revision ``last`` (whose record was ``base``) as a
        compare-and-set, its data and delta in an object when large or binary; returns the
        new revision. The object of the revision it supersedes is deleted after a grace,
        and its own at once when the compare-and-set loses (raised as nats-py raises it)."""
        name = object_name(key, last)
        value, body = pack_record(
            record, name=name, inline_limit=self.inline_limit, max_bytes=self.max_bytes
        )
        if body is not None:
            if self.objects is None:
                raise RuntimeError("the space has no object store for large context values")
            await self.objects.put(name, body, self.inline_limit)
            record[VALUE_KEY] = orjson.loads(value)[VALUE_KEY]
            self._mine[name] = record
        try:
            revision = int(await self.kv.update(key, value, last=last))
        except BaseException:
            if body is not None:
                self._mine.pop(name, None)
                await self._delete(name)
            raise
        if self._seen.get(key, (None, 0))[1] < revision:  # the base of this link's next write
            self._seen[key] = (record, revision)
        superseded = object_of(base)
        if superseded is not None:
            self._retire(superseded)
        return revision

    def _retire(self, name: str) -> None:
        """Delete a superseded revision's object once hubs that lag a little have read it
        (``FEDERATION_CONTEXT_OBJECT_GRACE``); :meth:`close` deletes the rest at once."""

        self._mine.pop(name, None)

        async def later() -> None:
            await asyncio.sleep(FEDERATION_CONTEXT_OBJECT_GRACE)
            self._retiring.pop(name, None)
            await self._delete(name)

        self._retiring[name] = asyncio.ensure_future(later())

    async def _delete(self, name: str) -> None:
        """Delete an object nobody needs any more (a failure is logged: it stays behind)."""
        if self.objects is None:
            return
        try:
            await self.objects.delete(name)
        except asyncio.CancelledError:
            raise
        except Exception as error:
            self.log.warning("Interop federation: object %s not deleted: %r", name, error)

    async def _replace(self, key: str, name: str, value: Record, *, fresh: bool) -> None:
        """Write ``value`` over whatever the key holds, as a compare-and-set; when ``fresh``
        (a creation), only over no context or a destroyed one: an existing context wins."""
        from nats.js.errors import KeyWrongLastSequenceError

        for _ in range(MAX_ATTEMPTS):
            record, revision = await self._current(key, name)
            if fresh and record is not None and record.get("deleted") is not True:
                return
            try:
                await self._put(key, dict(value), record, revision)
            except KeyWrongLastSequenceError:
                self._seen.pop(key, None)
                continue
            return
        raise RuntimeError(f"still conflicting after {MAX_ATTEMPTS} attempts")

    async def _update(self, key: str, message: Message) -> None:
        """Compare-and-set on the revision last seen; on conflict re-read and re-apply."""
        from nats.js.errors import KeyWrongLastSequenceError

        delta = message.get("delta")
        if not isinstance(delta, dict):
            raise ValueError("an update needs a delta")
        for _ in range(MAX_ATTEMPTS):
            record, revision = await self._current(key, message["name"])
            new = rebase(
                record,
                revision,
                delta,
                updater=message.get("updater_id"),
                hub=self.hub_id,
                ticket=message.get("ticket"),
            )
            try:
                await self._put(key, new, record, revision)
            except KeyWrongLastSequenceError:
                self._seen.pop(key, None)  # another hub wrote first: re-read, re-apply
                continue
            return
        raise RuntimeError(f"still conflicting after {MAX_ATTEMPTS} attempts")

    def status(self) -> dict[str, Any]:
        """What the views show: the bucket and the newest of its revisions this hub applied."""
        return {"bucket": self.bucket, "revision": max(self._delivered.values(), default=0)}

    async def close(self) -> None:
        if self._sweeping is not None:
            self._sweeping.cancel()
        retiring, self._retiring = self._retiring, {}
        for name, task in retiring.items():
            task.cancel()
            if self.nats.is_connected:
                await self._delete(name)
        self._queues.cancel()
        if self._watching is not None:
            self._watching.cancel()
        if self._watcher is not None:
            with contextlib.suppress(Exception):
                await self._watcher.stop()
        self.socket.close()
