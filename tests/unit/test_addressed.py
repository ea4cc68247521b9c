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


def test_agm_announcements_built_from_encoded_parts_encode_their_fields() -> None:
    from jupyter_interop.hub import PeerConn
    from jupyter_interop.hub.agm import AgmDomain
    from jupyter_interop.hub.peers import Peer, RegisteredMethod, encoded_methods

    peer = Peer("p-1", PeerConn(), {"application": "a\u00e9\"b", "instance": "i"})
    peer.methods["0"] = RegisteredMethod({"id": "0", "name": "M", "flags": {"streaming": True}})
    templates = [
        AgmDomain._peer_added(peer),
        AgmDomain._methods_added(peer, encoded_methods(peer.methods.values())),
    ]
    for template in templates:
        copy = template.to("p-2", encoded_peer_id("p-2"))
        assert decode(copy.frame) == orjson.loads(orjson.dumps(dict(copy)))
    added, methods = (decode(t.to("p-2", b'"p-2"').frame) for t in templates)
    assert added["identity"]["application"] == 'a\u00e9"b' and added["meta"] == {"local": True}
    assert methods["methods"] == [{"id": "0", "name": "M", "flags": {"streaming": True}}]
