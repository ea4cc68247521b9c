"""Streams across hubs (docs/FEDERATION.md, "Streams").

A subscriber on hub A subscribes to the proxy of a publisher P of hub B; the proxy gets the
``add-interest`` and asks B (NATS request on ``ji.<space>.hub.<B>.subscribe``). B's link
subscribes through its observer, so P accepts or rejects as for any subscriber (the decision
is P's). On acceptance B's link answers with the branch, A's link holds one NATS
subscription per branch on ``ji.<space>.stream.<B>.<P>.<branch>`` and the proxy accepts the
subscription on the same branch: B publishes each item of the branch once (its hub gives
the observer an item once per branch), NATS carries it once to each hub holding that
branch, and the proxy publishes it once on A, which fans it out to A's subscribers. Until
A's NATS subscription for a branch new to it is in place (A says ``ready``, and again once
its connection is back: a drop may lose it), B holds the branch's items back, so that
nothing P pushes after accepting is lost.

What is for one subscription alone (a ``post``, the publisher dropping it, P leaving) goes
from B to A on ``ji.<space>.hub.<A>.streams`` under A's subscription id. Unsubscribing on A
goes to B on ``ji.<space>.hub.<B>.unsubscribe``; the last subscriber of a branch on A
releases its NATS subscription. A hub that leaves the space loses the subscriptions it held
on the others; a publisher's hub that leaves closes its proxies, and with them their
subscriptions (``hub/agm.py``).

Items and private posts with binary values (bytes, numpy arrays, DataFrames) cross as binary
frames, and larger than a NATS message they are offered and pulled in chunks
(``federation_values.py``); a branch's NATS messages are handled one after the other, so a
large item keeps its place among the small ones. An item above a link's budget ends the
subscriptions of its branch on the hubs that could not take it, with a reason naming the
setting; the other branches and hubs go on.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

import orjson

from ..protocol import ProtocolError, Reason, messages
from ..protocol.frames import encode_binary
from ..protocol.limits import FEDERATION_FOLD_MAX_BYTES, FEDERATION_PAUSE_MAX_BYTES
from ..protocol.wire import (
    AGM_DOMAIN,
    ERROR_TYPE,
    EVENT_MANY_TYPE,
    EVENT_TYPE,
    PUBLISH_MANY_TYPE,
    STREAM_ID_KEY,
    SUBSCRIBED_TYPE,
    SUBSCRIPTION_CANCELLED_TYPE,
)
from .federation_bus import subject_token
from .federation_nats import Reconnects, subscribed
from .federation_values import ValueTooLarge, ValueTransfers

__all__ = ["FederationStreams", "stream_subject"]

Message = dict[str, Any]
Send = Callable[[Message], None]

#: how long a subscription across hubs may wait for the publisher's decision
DECISION_TIMEOUT = 3600.0

#: the key of an end this hub decided for a subscription not yet accepted here (an item
#: that could not reach it), kept among what came early for it
_ENDED = "ended-here"


def stream_subject(space: str, hub: str, peer_id: str, branch: str) -> str:
    """The subject of one branch of one publisher: ``ji.<space>.stream.<hub>.<peer>.<branch>``
    (each part one token, see ``federation_bus.py:subject_token``)."""
    parts = (hub, peer_id, branch)
    return ".".join([f"ji.{space}.stream", *(subject_token(p) for p in parts)])


@dataclass(eq=False)
class _Wanted:
    """This hub's subscription to a stream of another hub (the proxy's ``add-interest``)."""

    sub_id: str
    hub: str
    peer_id: str
    send: Send
    #: the publisher's hub's subscription id, once it accepted
    remote_id: str | None = None
    subject: str | None = None
    #: the proxy accepted it on this hub (posts and drops may go to it)
    accepted: bool = False
    #: what B sent for it before the proxy accepted it here
    early: list[Message] = field(default_factory=list)


@dataclass(eq=False)
class _Branch:
    """One branch of a stream of another hub, held for this hub's subscribers."""

    subject: str
    stream_id: str
    send: Send
    subs: set[str]
    nats_sub: asyncio.Task[Any]


@dataclass(eq=False)
class _Fold:
    """Items of one branch waiting for the end of this turn of the loop: encoded as JSON,
    or as they are when they hold binary values (then ``binary``)."""

    parts: list[Any] = field(default_factory=list)
    size: int = 0
    binary: bool = False


@dataclass(eq=False)
class _Pause:
    """A branch's items held back until the hubs joining it (their subscriptions here) are
    ready to receive them."""

    waiting: set[str] = field(default_factory=set)
    payloads: list[bytes] = field(default_factory=list)
    size: int = 0


@dataclass(eq=False)
class _Served:
    """A subscription of this hub's observer, for a subscriber of another hub."""

    hub: str
    ref: str
    subject: str


class _Refused(Exception):
    """The link does not send the subscription now (its queue is full)."""


class FederationStreams:
    """One hub's side of streams across hubs, both as the subscribers' hub and as the
    publishers'."""

    def __init__(
        self,
        *,
        space: str,
        hub_id: str,
        nats: Any,
        observe: Callable[[Message], None],
        publish: Callable[[str, bytes], None],
        values: ValueTransfers,
        spawn: Callable[[Coroutine[Any, Any, Any]], None],
        log: logging.Logger,
        reconnects: Reconnects,
        refused: Callable[[str, str], str | None] = lambda hub, what: None,
    ) -> None:
        self.space = space
        self._reconnects = reconnects
        #: why a subscription to a hub is not asked now, or None (``FederationLink.refused``)
        self._refused = refused
        self._values = values
        self.hub_id = hub_id
        self._nats = nats
        self._observe = observe
        self._publish = publish
        self._spawn = spawn
        self.log = log
        # subscribers' side
        self.wanted: dict[str, _Wanted] = {}
        self.branches: dict[str, _Branch] = {}
        # publishers' side
        self.served: dict[str, _Served] = {}
        #: the observer's pending subscribe request id -> (hub, ref, NATS reply subject)
        self._asked: dict[str, tuple[str, str, str, str]] = {}
        self._ids = 0
        #: branch subject -> the items folding into its next NATS message
        self._folds: dict[str, _Fold] = {}
        self._fold_scheduled = False
        #: branch subject -> its items held back for a hub that joins it
        self._pauses: dict[str, _Pause] = {}

    def _subject(self, hub: str, kind: str) -> str:
        return f"ji.{self.space}.hub.{hub}.{kind}"

    async def start(self) -> None:
        own = self.hub_id
        await self._nats.subscribe(self._subject(own, "subscribe"), cb=self._on_subscribe)
        await self._nats.subscribe(self._subject(own, "unsubscribe"), cb=self._on_unsubscribe)
        await self._nats.subscribe(self._subject(own, "streams"), cb=self._on_streams)
        await self._nats.subscribe(self._subject(own, "ready"), cb=self._on_ready)

    def _send_to(self, hub: str, kind: str, message: Message) -> None:
        self._publish(self._subject(hub, kind), orjson.dumps(message))

    # ------------------------------------------------------------ subscribers' side

    def add_interest(self, peer_id: str, hub: str, send: Send, message: Message) -> None:
        """The proxy of ``peer_id`` (of ``hub``) got an ``add-interest``: ask ``hub``."""
        sub_id = str(message.get("subscription_id"))
        wanted = self.wanted[sub_id] = _Wanted(sub_id, hub, peer_id, send)
        request = {"peer_id": peer_id, **_asks_for(message), "hub": self.hub_id, "ref": sub_id}
        self._spawn(self._ask(wanted, request))

    async def _ask(self, wanted: _Wanted, request: Message) -> None:
        subject = self._subject(wanted.hub, "subscribe")
        try:
            why = self._refused(wanted.hub, "subscription")
            if why is not None:  # (its answer could not come back either)
                raise _Refused(why)
            answer = await self._nats.request(
                subject, orjson.dumps(request), timeout=DECISION_TIMEOUT
            )
            reply = orjson.loads(answer.data)
            if not isinstance(reply, dict):
                raise ValueError("not an object")
        except asyncio.CancelledError:
            raise
        except _Refused as why:
            reply = {"error": {"reason": str(why)}}
        except Exception as failure:  # nats-py: no responders, timeout, closed; a bad reply
            reason = f"The subscription to hub {wanted.hub} failed: {failure!r}"
            reply = {"error": {"reason": reason}}
        accepted = reply.get("subscription")
        if self.wanted.get(wanted.sub_id) is not wanted:  # gone while B decided
            if accepted is not None:
                self._send_to(wanted.hub, "unsubscribe", {"subscription": accepted})
            return
        if accepted is None:
            del self.wanted[wanted.sub_id]
            error = reply.get("error")
            if not isinstance(error, dict):
                error = {}
            wanted.send(
                messages.stream_refusal(
                    wanted.sub_id,
                    error.get("reason_uri") or Reason.SUBSCRIPTION_FAILURE,
                    str(error.get("reason") or "The subscription was refused"),
                )
            )
            return
        stream_id = str(reply.get("branch") or "")
        wanted.remote_id = str(accepted)
        subject = wanted.subject = stream_subject(self.space, wanted.hub, wanted.peer_id, stream_id)
        branch = self.branches.get(subject)
        if branch is None:
            nats_sub = asyncio.ensure_future(self._hold(subject))
            branch = self.branches[subject] = _Branch(
                subject, stream_id, wanted.send, set(), nats_sub
            )
        branch.subs.add(wanted.sub_id)
        await asyncio.shield(branch.nats_sub)  # the items flow before the subscriber is told
        # the publisher's hub holds the branch's items back for this hub until now
        self._send_to(wanted.hub, "ready", {"subscription": wanted.remote_id})
        if self.wanted.get(wanted.sub_id) is not wanted:
            return
        wanted.send(messages.accepted(wanted.sub_id, stream_id))
        wanted.accepted = True
        for early in wanted.early:
            if self.wanted.get(wanted.sub_id) is not wanted:  # ended: nothing after the end
                break
            self._for_one(wanted, early)
        wanted.early.clear()

    async def _hold(self, subject: str) -> Any:
        async def items(msg: Any) -> None:
            await self._items(subject, msg)  # (one at a time: a large one keeps its place)

        return await subscribed(self._nats, subject, items, self.log, self._reconnects)

    async def _items(self, subject: str, msg: Any) -> None:
        branch = self.branches.get(subject)
        if branch is None:
            return
        try:
            item = await self._values.unpack(msg.data)  # (an offer: pulled in chunks)
        except ValueTooLarge as error:
            self._lost(subject, f"An item of this stream cannot reach this hub: {error}")
            return
        except (ValueError, ProtocolError):
            return
        except Exception as error:  # nats-py: the publisher's hub stopped serving the value
            self._lost(subject, f"An item of this stream did not reach this hub: {error!r}")
            return
        if self.branches.get(subject) is not branch:  # gone while the item arrived
            return
        if "items" in item:
            publish: Message = {
                "domain": AGM_DOMAIN,
                "type": PUBLISH_MANY_TYPE,
                "stream_id": branch.stream_id,
                "items": item["items"],
            }
        else:
            publish = messages.stream_publish(
                branch.stream_id,
                item.get("data"),
                sequence=item.get("sequence"),
                snapshot=item.get("snapshot", False),
            )
        branch.send(publish)  # (binary values as attachments, kept for binary subscribers)

    def _lost(self, subject: str, reason: str) -> None:
        """An item of a branch could not reach this hub: the branch's subscriptions here
        end with ``reason`` (a subscriber learns of the gap), the other branches go on."""
        branch = self.branches.get(subject)
        if branch is None:
            return
        self.log.warning("Interop federation: %s: %s", subject, reason)
        for sub_id in list(branch.subs):
            wanted = self.wanted.get(sub_id)
            if wanted is not None:
                self._end(wanted, reason)

    def _end(self, wanted: _Wanted, reason: str) -> None:
        """End this hub's subscription ``wanted`` with ``reason`` (at the publisher too).
        One the proxy has yet to accept here ends once accepted, in its place among what
        came early: the hub drops only accepted subscriptions, so the subscriber would
        otherwise wait for an acceptance that never comes."""
        if not wanted.accepted:
            wanted.early.append({_ENDED: reason})
            return
        self.wanted.pop(wanted.sub_id, None)
        self._forget(wanted)
        wanted.send(messages.drop_subscription(wanted.sub_id, reason))

    def remove_interest(self, message: Message) -> None:
        """The proxy got a ``remove-interest``: the subscriber on this hub is gone."""
        wanted = self.wanted.pop(str(message.get("subscription_id")), None)
        if wanted is not None:
            self._forget(wanted)

    def proxy_closed(self, peer_id: str) -> None:
        """The proxy of ``peer_id`` left this hub (with its subscriptions, hub/agm.py)."""
        for wanted in [w for w in self.wanted.values() if w.peer_id == peer_id]:
            del self.wanted[wanted.sub_id]
            self._forget(wanted)

    def _forget(self, wanted: _Wanted) -> None:
        if wanted.remote_id is not None:
            self._send_to(wanted.hub, "unsubscribe", {"subscription": wanted.remote_id})
        branch = self.branches.get(wanted.subject or "")
        if branch is None:
            return
        branch.subs.discard(wanted.sub_id)
        if not branch.subs:
            del self.branches[branch.subject]
            self._spawn(_release(branch.nats_sub))

    async def _on_streams(self, msg: Any) -> None:
        """From a publisher's hub, for one subscription of this hub."""
        try:
            message = await self._values.unpack(msg.data)
            wanted = self.wanted.get(str(message["ref"]))
        except (ValueError, KeyError, TypeError, ProtocolError):
            return
        except Exception as error:  # too large, or its hub stopped serving it
            self._post_lost(msg.data, error)
            return
        if wanted is None:
            return
        if not wanted.accepted:
            wanted.early.append(message)  # before the acceptance reached this hub
        else:
            self._for_one(wanted, message)

    def _post_lost(self, offer: bytes, error: Exception) -> None:
        """A private item offered to this hub could not be taken: its subscription (named
        beside the offer) ends, saying why."""
        why = "cannot reach" if isinstance(error, ValueTooLarge) else "did not reach"
        reason = f"A private item of this stream {why} this hub: {error}"
        self.log.warning("Interop federation: %s", reason)
        try:
            ref = orjson.loads(offer).get("ref")
        except (ValueError, AttributeError):  # not an offer: no subscription named
            return
        wanted = self.wanted.get(str(ref))
        if wanted is not None:
            self._end(wanted, reason)

    def _for_one(self, wanted: _Wanted, message: Message) -> None:
        post = message.get("post")
        if isinstance(post, dict):
            posted = messages.stream_post(
                wanted.sub_id,
                post.get("data"),
                sequence=post.get("sequence"),
                snapshot=post.get("snapshot", False),
            )
            wanted.send(posted)
            return
        ended = message.get(_ENDED)
        if isinstance(ended, str):
            self._end(wanted, ended)
            return
        closed = message.get("closed")
        if isinstance(closed, dict):
            wanted.remote_id = None  # gone there already
            self._end(wanted, str(closed.get("reason") or "The publisher closed the stream"))

    # ------------------------------------------------------------- publishers' side

    async def _on_subscribe(self, msg: Any) -> None:
        try:
            request = orjson.loads(msg.data)
            hub, ref, peer_id = str(request["hub"]), str(request["ref"]), str(request["peer_id"])
        except (ValueError, KeyError, TypeError) as error:
            await msg.respond(orjson.dumps({"error": {"reason": f"Bad subscription: {error}"}}))
            return
        self._ids += 1
        request_id = f"xs{self._ids}"
        self._asked[request_id] = (hub, ref, peer_id, msg.reply)
        asks = _asks_for(request)
        method_id = asks.pop("method_id")
        self._observe(messages.stream_subscribe(peer_id, method_id, request_id=request_id, **asks))

    async def _on_unsubscribe(self, msg: Any) -> None:
        try:
            sub_id = str(orjson.loads(msg.data)["subscription"])
        except (ValueError, KeyError, TypeError):
            return
        if self._drop_served(sub_id) is not None:
            self._unsubscribe(sub_id)

    async def _on_ready(self, msg: Any) -> None:
        """The subscribers' hub holds its NATS subscription for the branch: what was held
        back for it goes (see :meth:`_to_branch`)."""
        try:
            sub_id = str(orjson.loads(msg.data)["subscription"])
        except (ValueError, KeyError, TypeError):
            return
        served = self.served.get(sub_id)
        if served is not None:
            self._joined(sub_id, served.subject)

    def _drop_served(self, sub_id: str) -> _Served | None:
        served = self.served.pop(sub_id, None)
        if served is not None:
            self._joined(sub_id, served.subject)  # nobody waits for it any more
        return served

    def _unsubscribe(self, sub_id: str) -> None:
        self._observe(messages.stream_unsubscribe(sub_id))

    def hub_left(self, hub: str) -> None:
        """``hub`` left the space: its subscribers' subscriptions here go."""
        for sub_id in [s for s, served in self.served.items() if served.hub == hub]:
            self._drop_served(sub_id)
            self._unsubscribe(sub_id)

    def on_hub_message(self, message: Message) -> bool:
        """An ``agm`` message of this hub to the observer; True when it was for streams."""
        mtype = message.get("type")
        if mtype in (EVENT_TYPE, EVENT_MANY_TYPE):
            served = self.served.get(str(message.get("subscription_id")))
            if served is not None:
                self._event(served, message)
            return True
        if mtype in (SUBSCRIBED_TYPE, ERROR_TYPE):
            asked = self._asked.pop(str(message.get("request_id")), None)
            if asked is None:
                return False
            hub, ref, peer_id, reply = asked
            if mtype == ERROR_TYPE:
                error = {"reason_uri": message.get("reason_uri"), "reason": message.get("reason")}
                self._publish(reply, orjson.dumps({"error": error}))
                return True
            sub_id = str(message.get("subscription_id"))
            branch = str(message.get(STREAM_ID_KEY) or "")
            subject = stream_subject(self.space, self.hub_id, peer_id, branch)
            joining = not any(s.subject == subject and s.hub == hub for s in self.served.values())
            self.served[sub_id] = _Served(hub, ref, subject)
            if joining:  # the branch's items wait until that hub can receive them
                self._pauses.setdefault(subject, _Pause()).waiting.add(sub_id)
            # queued before anything for this subscription: the subscriber's hub reads it first
            self._publish(reply, orjson.dumps({"subscription": sub_id, "branch": branch}))
            return True
        if mtype == SUBSCRIPTION_CANCELLED_TYPE:
            served = self._drop_served(str(message.get("subscription_id")))
            if served is not None:
                closed = {"reason_uri": message.get("reason_uri"), "reason": message.get("reason")}
                self._send_to(served.hub, "streams", {"ref": served.ref, "closed": closed})
            return True
        return False

    def _event(self, served: _Served, event: Message) -> None:
        if event.get("type") == EVENT_MANY_TYPE:
            items = event.get("items")
            self._fold(served.subject, items if isinstance(items, list) else [])
            return
        item = {
            "data": event.get("data"),
            "sequence": event.get("sequence"),
            "snapshot": event.get("snapshot", False),
        }
        if event.get("oob"):
            self._post(served, item)
        elif item["sequence"] is None and not item["snapshot"]:
            self._fold(served.subject, [item["data"]])
        else:  # an item of its own, after those before it
            self._flush_folds()
            try:
                payload: bytes | None = orjson.dumps(item)
            except TypeError:  # binary values
                payload = self._pack(served.subject, item)
            if payload is not None:
                self._to_branch(served.subject, payload)

    def _post(self, served: _Served, item: Message) -> None:
        """A private item for one subscriber of another hub."""
        message = {"ref": served.ref, "post": item}
        try:
            payload = orjson.dumps(message)
        except TypeError:  # binary values
            try:
                payload = self._values.pack(message, beside={"ref": served.ref})
            except ValueTooLarge as error:
                sub_id = next(s for s, known in self.served.items() if known is served)
                self._close_served(sub_id, f"A private item cannot cross hubs: {error}")
                return
        self._publish(self._subject(served.hub, "streams"), payload)

    def _pack(self, subject: str, message: Message) -> bytes | None:
        """A branch's message with binary values as a NATS payload (an offer for each hub on
        the branch when large); None when it is above the budget: the branch's
        subscriptions of other hubs end, saying why."""
        hubs = {served.hub for served in self.served.values() if served.subject == subject}
        try:
            return self._values.pack(message, receivers=max(len(hubs), 1))
        except ValueTooLarge as error:
            reason = f"An item of this stream cannot cross hubs: {error}"
            self.log.warning("Interop federation: %s: %s", subject, reason)
            for sub_id in [s for s, served in self.served.items() if served.subject == subject]:
                self._close_served(sub_id, reason)
            return None

    def _close_served(self, sub_id: str, reason: str) -> None:
        """End a subscription of another hub here, and there with ``reason``."""
        served = self._drop_served(sub_id)
        if served is None:
            return
        self._unsubscribe(sub_id)
        closed = {"reason_uri": Reason.SUBSCRIPTION_FAILURE, "reason": reason}
        self._send_to(served.hub, "streams", {"ref": served.ref, "closed": closed})

    def _fold(self, subject: str, datas: list[Any]) -> None:
        """Items of a branch that arrive in one turn of the loop cross as one NATS message
        (of at most ``FEDERATION_FOLD_MAX_BYTES``): the subscribers' hub publishes them as
        one run, which reaches each of its subscribers as the subscriber negotiated."""
        for data in datas:
            try:
                part: Any = orjson.dumps(data)
                size = len(part)
            except TypeError:  # binary values: encoded with the others when the fold goes
                part, size = data, len(encode_binary(data))
            fold = self._folds.get(subject)
            if fold is not None and fold.size + size > FEDERATION_FOLD_MAX_BYTES:
                self._send_fold(subject, self._folds.pop(subject))
                fold = None
            if fold is None:
                fold = self._folds[subject] = _Fold()
            fold.parts.append(part)
            fold.size += size + 1
            fold.binary = fold.binary or part is data
        if self._folds and not self._fold_scheduled:
            self._fold_scheduled = True
            asyncio.get_running_loop().call_soon(self._flush_folds)

    def _flush_folds(self) -> None:
        self._fold_scheduled = False
        folds, self._folds = self._folds, {}
        for subject, fold in folds.items():
            self._send_fold(subject, fold)

    def _send_fold(self, subject: str, fold: _Fold) -> None:
        if fold.binary:
            parts = [orjson.Fragment(p) if isinstance(p, bytes) else p for p in fold.parts]
            message = {"data": parts[0]} if len(parts) == 1 else {"items": parts}
            payload = self._pack(subject, message)
            if payload is None:
                return
        elif len(fold.parts) == 1:
            payload = b'{"data":' + fold.parts[0] + b"}"
        else:
            payload = b'{"items":[' + b",".join(fold.parts) + b"]}"
        self._to_branch(subject, payload)

    def _to_branch(self, subject: str, payload: bytes) -> None:
        """Publish on a branch, unless a hub joining it has no NATS subscription for it yet:
        then the items wait for that hub's ``ready`` (a round trip after the acceptance), so
        that what the publisher pushes at once after accepting reaches it too. Nothing goes
        once no subscription of another hub is served on the branch: an item folded in the
        same turn after one that ended them (above the budget) would reach the other hub on
        the branch's subject, read apart from the end on its ``streams`` subject, and could
        reach a subscriber there after the gap, before the end."""
        if not any(served.subject == subject for served in self.served.values()):
            return  # its subscriptions ended at an item before this one: nothing after the end
        pause = self._pauses.get(subject)
        if pause is None:
            self._publish(subject, payload)
            return
        pause.payloads.append(payload)
        pause.size += len(payload)
        if pause.size > FEDERATION_PAUSE_MAX_BYTES:
            self.log.warning("Interop federation: %s waited too long for a hub to join", subject)
            self._resume(subject)

    def _joined(self, sub_id: str, subject: str) -> None:
        pause = self._pauses.get(subject)
        if pause is not None:
            pause.waiting.discard(sub_id)
            if not pause.waiting:
                self._resume(subject)

    def _resume(self, subject: str) -> None:
        pause = self._pauses.pop(subject, None)
        for payload in pause.payloads if pause is not None else ():
            self._publish(subject, payload)

    def reconnected(self) -> None:
        """The link's NATS connection is back. A ``ready`` in flight when it dropped may be
        lost (NATS keeps nothing for a hub that is not connected), and the publisher's hub
        would then hold its branch back for this hub for good: this hub says ``ready``
        again for its accepted subscriptions (nats-py made their branches' subscriptions
        again on the new server before saying it is back), and the branches held back here
        for other hubs go, their ``ready`` maybe lost on the way here."""
        for wanted in self.wanted.values():
            if wanted.accepted and wanted.remote_id is not None:
                self._send_to(wanted.hub, "ready", {"subscription": wanted.remote_id})
        for subject in list(self._pauses):
            self._resume(subject)

    def status(self) -> dict[str, Any]:
        """For the link's status: the branches of other hubs held here, this hub's
        subscriptions to them, the subscriptions of other hubs served here, and the branches
        of this hub whose items wait for a hub joining them to say ``ready`` (a wait that
        lasts is seen there, not only as items that do not arrive)."""
        return {
            "branches": sorted(self.branches),
            "subscriptions": len(self.wanted),
            "served": len(self.served),
            "held": sorted(self._pauses),
        }

    def close(self) -> None:
        for branch in self.branches.values():
            branch.nats_sub.cancel()
        self.branches.clear()


def _asks_for(message: Message) -> Message:
    """What a subscription asks for, from the proxy's ``add-interest`` or the request that
    carries it to the publisher's hub."""
    return {
        "method_id": message.get("method_id"),
        "arguments": message.get("arguments"),
        "arguments_kv": message.get("arguments_kv"),
        "flags": message.get("flags") or {},
        "context": message.get("context") or {},
    }


async def _release(nats_sub: asyncio.Task[Any]) -> None:
    try:
        subscription = await nats_sub
        await subscription.unsubscribe()
    except Exception:  # never made, or the connection is closing
        return
