"""The hub core's part in shared memory: the offer in ``welcome``, the proof, a peer leaving.

Skipped while the core does not negotiate the ``shm`` extension.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hubkit import Client, HubKit

from jupyter_interop.hub.core import SUPPORTED_EXTENSIONS
from jupyter_interop.protocol.shm import SharedFiles
from jupyter_interop.server.attachments import AttachmentForm, wants_binary
from jupyter_interop.server.shm import SharedMemoryArea


def test_the_core_lists_shm_among_its_extensions() -> None:
    assert "shm" in SUPPORTED_EXTENSIONS


def hello(kit: HubKit, extensions: dict[str, Any]) -> tuple[Client, dict[str, Any]]:
    client, replies = kit.hello("shm", extensions)
    welcome = next(r for r in replies if r["type"] == "welcome")
    client.peer_id = welcome["peer_id"]
    return client, welcome


def proof(client: Client, nonce: Any) -> dict[str, Any]:
    return client.send({"domain": "global", "type": "shm-proof", "nonce": nonce})[0]


def accepted(welcome: dict[str, Any]) -> dict[str, Any]:
    return dict((welcome.get("extensions") or {}).get("jupyter_interop") or {})


def test_offer_proof_and_departure(tmp_path: Path) -> None:
    area = SharedMemoryArea(str(tmp_path), grace=0)
    assert area.open()
    kit = HubKit(shared_memory=area)
    client, welcome = hello(kit, {"binary": True, "shm": True})
    offer = accepted(welcome)["shm"]
    assert set(offer) == {"inbox", "held", "nonce"} and Path(offer["inbox"]).is_dir()
    extensions = client.conn.attrs["extensions"]
    assert wants_binary(extensions) == AttachmentForm.BINARY  # nothing before the proof
    assert "shm" not in client.conn.attrs

    wrong = proof(client, "not the nonce")
    assert wrong["type"] == "error" and "Wrong nonce" in wrong["reason"]
    ok = proof(client, SharedFiles(offer).proof())
    assert ok["type"] == "success"
    assert wants_binary(extensions) == AttachmentForm.SHARED
    assert client.conn.attrs["shm"] is area.inbox(client.peer_id or "")

    client.close()  # the peer leaves: its inbox (and anything it never announced) goes
    assert not Path(offer["inbox"]).exists() and area.inbox(client.peer_id or "") is None
    area.close()


def test_only_binary_peers_that_ask_get_an_offer(tmp_path: Path) -> None:
    area = SharedMemoryArea(str(tmp_path))
    assert area.open()
    kit = HubKit(shared_memory=area)
    _, welcome = hello(kit, {"binary": True})
    assert "shm" not in accepted(welcome)
    client, welcome = hello(kit, {"shm": True})  # references need binary frames
    assert "shm" not in accepted(welcome)
    refused = proof(client, "anything")
    assert refused["type"] == "error" and "No shared-memory offer" in refused["reason"]
    area.close()


def test_a_hub_without_a_directory_offers_nothing() -> None:
    kit = HubKit()
    client, welcome = hello(kit, {"binary": True, "shm": True})
    assert accepted(welcome) == {"binary": True}
    refused = proof(client, "anything")
    assert refused["type"] == "error" and "does not offer shared memory" in refused["reason"]
