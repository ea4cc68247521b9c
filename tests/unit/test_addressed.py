"""Announcements encoded once for many recipients: each copy reads as if encoded on its own."""

from __future__ import annotations

import orjson
import pytest

from jupyter_interop.protocol import decode, encode
from jupyter_interop.protocol.addressed import Addressed, Template, encoded_peer_id


def test_each_copy_is_the_message_with_its_recipients_peer_id() -> None:
    identity = orjson.Fragment(orjson.dumps({"application": "a \"quoted\" app", "x": [1, 2]}))
    template = Template(
        {"domain": "agm", "type": "peer-added", "new_peer_id": "p1", "identity": identity}
    )
    for recipient in ("p2", 'odd"id\\'):
        copy = template.to(recipient, encoded_peer_id(recipient))
        assert isinstance(copy, Addressed)
        assert copy["peer_id"] == recipient and copy["type"] == "peer-added"
        wire = decode(encode(copy))
        assert wire == {
            "domain": "agm",
            "type": "peer-added",
            "peer_id": recipient,
            "new_peer_id": "p1",
            "identity": {"application": 'a "quoted" app', "x": [1, 2]},
        }
        assert next(iter(wire)) == "domain"  # domain and type lead, as in every other message


def test_a_template_of_domain_and_type_only_is_still_an_object() -> None:
    copy = Template({"domain": "global", "type": "ping"}).to("p9", encoded_peer_id("p9"))
    assert orjson.loads(copy.frame) == {"domain": "global", "type": "ping", "peer_id": "p9"}


def test_peer_id_belongs_to_the_recipient_not_the_template() -> None:
    with pytest.raises(ValueError, match="peer_id"):
        Template({"domain": "agm", "type": "peer-added", "peer_id": "p1"})
