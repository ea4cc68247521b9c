"""Messages encoded once for many recipients, whose only per-recipient field is ``peer_id``.

A join, a registration or a departure is announced to every agm peer: N peers joining mean
about N² announcements (docs/RELIABILITY.md, join storms). Encoding each recipient's copy
with the JSON encoder (and copying it out of the encoder's buffer) was most of what an
announcement cost the hub. A :class:`Template` encodes the message once; each recipient's
copy is an :class:`Addressed` message whose frame is the template's bytes with the
recipient's encoded ``peer_id`` spliced in (one allocation of the exact size).

Even one copy per recipient is N² Python objects in a storm, so the hub core does not make
them: it returns one :class:`Announcement` per announcement, for every agm peer, and one
:class:`Readership` when a peer starts or stops being told (its ``backlog``: what it must learn
first, the peers and methods already there). A transport keeps them in order and writes each
recipient's copies itself (``server/announcements.py`` joins them into one write, in C);
:class:`Fanout` turns them back into one :class:`Addressed` message per recipient for code
that wants plain ``(connection, message)`` pairs.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Iterator
from typing import Any

import orjson

__all__ = [
    "Addressed",
    "Announcement",
    "Fanout",
    "Readership",
    "Template",
    "encoded_peer_id",
]

Message = dict[str, Any]


def encoded_peer_id(peer_id: str) -> bytes:
    """``peer_id`` as a JSON string, ready to splice into a template's frame."""
    return bytes(memoryview(orjson.dumps(peer_id)))


class Addressed(dict[str, Any]):
    """One recipient's copy of a :class:`Template`: the whole message (as a dict, for
    whoever inspects it) and :attr:`frame`, its encoding, so it is never encoded again."""

    __slots__ = ("frame",)

    frame: bytes


class Template:
    """A message for many recipients without its ``peer_id``, encoded once.

    ``fields`` must hold ``domain`` and ``type`` and not ``peer_id``; their values may be
    ``orjson.Fragment`` (JSON already encoded, such as a peer's identity). The frames read
    ``{"domain":...,"type":...,"peer_id":<recipient>,<the other fields>}``.
    """

    __slots__ = ("fields", "framed", "head", "size", "subject", "tail")

    def __init__(
        self, fields: Message, tail: bytes | None = None, subject: str | None = None
    ) -> None:
        """``tail``: the encoding of the fields after ``peer_id`` (``,"k":v,...}``) when the
        caller builds it from parts encoded already; it must encode exactly those fields.
        ``subject``: the peer an announcement is about (who joined, left, registered or
        unregistered), so that a transport can drop the announcements of a peer that left
        before any of them was written (server/announcements.py)."""
        if "peer_id" in fields:
            raise ValueError("A template's fields must not hold peer_id: it is the recipient's")
        self.fields = fields
        self.subject = subject
        #: ``{"domain":...,"type":...,"peer_id":`` (shared by the templates of one type)
        self.head = _head(fields["domain"], fields["type"])
        if tail is None:
            rest = {k: v for k, v in fields.items() if k != "domain" and k != "type"}
            encoded = orjson.dumps(rest)
            # a new exactly sized bytes, without the encoder's slack (see server/attachments.py)
            tail = b"," + encoded[1:] if len(encoded) > 2 else b"}"
        #: the other fields and the closing brace
        self.tail = tail
        #: bytes of a copy without its ``peer_id``
        self.size = len(self.head) + len(tail)
        #: :attr:`head` behind a transport's frame header, by the length of the recipient's
        #: encoded ``peer_id`` (filled by the transport: server/announcements.py)
        self.framed: dict[int, bytes] = {}

    def to(self, peer_id: str, peer_id_json: bytes) -> Addressed:
        """The copy for the peer ``peer_id`` (``peer_id_json``: its :func:`encoded_peer_id`)."""
        message = Addressed(self.fields)
        message["peer_id"] = peer_id
        message.frame = b"".join((self.head, peer_id_json, self.tail))
        return message


_heads: dict[tuple[str, str], bytes] = {}


def _head(domain: str, mtype: str) -> bytes:
    head = _heads.get((domain, mtype))
    if head is None:
        opening = orjson.dumps({"domain": domain, "type": mtype})[:-1]
        head = _heads[(domain, mtype)] = opening + b',"peer_id":'
    return head


class Announcement(dict[str, Any]):
    """An announcement for every peer that reads announcements (see :class:`Readership`) at
    this point of the output; the connection it comes with is not its recipient. The dict is
    the message without ``peer_id`` (the template's fields)."""

    __slots__ = ("template",)

    template: Template

    @classmethod
    def of(cls, template: Template) -> Announcement:
        announcement = cls(template.fields)
        announcement.template = template
        return announcement


class Readership(dict[str, Any]):
    """Its connection's peer starts reading announcements (``backlog``: the copies it gets
    first, in order) or stops (``backlog`` None). Never written to a peer."""

    __slots__ = ("backlog", "peer_id", "peer_id_json")

    backlog: list[Template] | None
    peer_id: str
    peer_id_json: bytes

    @classmethod
    def of(cls, peer_id: str, peer_id_json: bytes, backlog: list[Template] | None) -> Readership:
        mtype = "announcements-stop" if backlog is None else "announcements-start"
        readership = cls(domain="agm", type=mtype)
        readership.peer_id, readership.peer_id_json = peer_id, peer_id_json
        readership.backlog = backlog
        return readership


class Fanout:
    """Turns :class:`Announcement` and :class:`Readership` items into one :class:`Addressed`
    copy per recipient, in order: what a transport that writes each message on its own
    needs (tests, simple transports). One per hub: it remembers who reads."""

    def __init__(self) -> None:
        #: connection -> (peer_id, peer_id_json), in the order they started reading
        self.readers: dict[Hashable, tuple[str, bytes]] = {}

    def expand(self, out: Iterable[tuple[Any, dict[str, Any]]]) -> Iterator[tuple[Any, Any]]:
        readers = self.readers
        for conn, message in out:
            if isinstance(message, Announcement):
                to = message.template.to
                for reader, (peer_id, peer_id_json) in list(readers.items()):
                    yield reader, to(peer_id, peer_id_json)
            elif isinstance(message, Readership):
                if message.backlog is None:
                    readers.pop(conn, None)
                    continue
                peer_id, peer_id_json = message.peer_id, message.peer_id_json
                for template in message.backlog:
                    yield conn, template.to(peer_id, peer_id_json)
                readers[conn] = (peer_id, peer_id_json)
            else:
                yield conn, message
