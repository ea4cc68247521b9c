"""Messages encoded once for many recipients, whose only per-recipient field is ``peer_id``.

A join, a registration or a departure is announced to every agm peer: N peers joining mean
about N² announcements (docs/RELIABILITY.md, join storms). Encoding each recipient's copy
with the JSON encoder (and copying it out of the encoder's buffer) was most of what an
announcement cost the hub. A :class:`Template` encodes the message once; each recipient's
copy is an :class:`Addressed` message whose frame is the template's bytes with the
recipient's encoded ``peer_id`` spliced in (one allocation of the exact size).
"""

from __future__ import annotations

from typing import Any

import orjson

__all__ = ["Addressed", "Template", "encoded_peer_id"]

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

    __slots__ = ("fields", "head", "tail")

    def __init__(self, fields: Message, tail: bytes | None = None) -> None:
        """``tail``: the encoding of the fields after ``peer_id`` (``,"k":v,...}``) when the
        caller builds it from parts encoded already; it must encode exactly those fields."""
        if "peer_id" in fields:
            raise ValueError("A template's fields must not hold peer_id: it is the recipient's")
        self.fields = fields
        #: ``{"domain":...,"type":...,"peer_id":`` (shared by the templates of one type)
        self.head = _head(fields["domain"], fields["type"])
        if tail is None:
            rest = {k: v for k, v in fields.items() if k != "domain" and k != "type"}
            encoded = orjson.dumps(rest)
            # a new exactly sized bytes, without the encoder's slack (see server/attachments.py)
            tail = b"," + encoded[1:] if len(encoded) > 2 else b"}"
        #: the other fields and the closing brace
        self.tail = tail

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
