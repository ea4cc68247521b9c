"""Channels: default channel contexts, membership reports, move requests, views."""

from __future__ import annotations

from hubkit import HubKit

from jupyter_interop.hub import CHANNEL_PREFIX, DEFAULT_CHANNELS
from jupyter_interop.protocol import Reason


def test_default_channels_are_contexts_with_name_meta_data() -> None:
    kit = HubKit()
    names = [c["name"] for c in DEFAULT_CHANNELS]
    assert names == ["Red", "Green", "Blue", "Pink", "Yellow", "DarkYellow", "Orange", "Purple",
                     "Lime", "Cyan"]
    red = kit.hub.contexts.by_name[CHANNEL_PREFIX + "Red"]
    assert red.data == {"name": "Red", "meta": {"color": "red"}, "data": {}}
    assert [c["name"] for c in kit.hub.views.channels()] == names


def test_configured_channels_replace_the_default_set() -> None:
    kit = HubKit(channels=[{"name": "Desk", "meta": {"color": "#123456"}}, {"meta": {}}])
    assert [c["name"] for c in kit.hub.views.channels()] == ["Desk"]


def test_membership_reported_and_announced_to_channel_aware_peers() -> None:
    kit = HubKit()
    ui = kit.client("ui", extensions={"channels": True})
    nb = kit.client("nb", extensions={"channels": True})
    plain = kit.client("plain")
    ui.take()
    replies = nb.send({"domain": "global", "type": "channel-changed", "channel": "Red"})
    assert replies[0]["type"] == "success"
    note = ui.one("channel-membership")
    assert note["member_id"] == nb.peer_id and note["channel"] == "Red"
    assert note["application"] == "nb"
    assert plain.take("channel-membership") == []
    red = next(c for c in kit.hub.views.channels() if c["name"] == "Red")
    assert [m["peer_id"] for m in red["members"]] == [nb.peer_id]
    reply = nb.send({"domain": "global", "type": "channel-changed", "channel": "Mauve"})[0]
    assert reply["type"] == "error" and "Unknown channel 'Mauve'" in reply["reason"]
    nb.close()
    assert ui.one("channel-membership")["channel"] is None
    red = next(c for c in kit.hub.views.channels() if c["name"] == "Red")
    assert red["members"] == []


def test_move_request_reaches_only_peers_that_follow_them() -> None:
    kit = HubKit()
    ui = kit.client("ui")
    nb = kit.client("nb", extensions={"channels": True})
    plain = kit.client("plain")
    reply = ui.send({"domain": "global", "type": "move-to-channel", "target": nb.peer_id,
                     "channel": "Blue"})
    assert reply[0]["type"] == "success"
    req = nb.one("channel-change-request")
    assert req["channel"] == "Blue" and req["requested_by"] == ui.peer_id
    reply = ui.send({"domain": "global", "type": "move-to-channel", "target": plain.peer_id,
                     "channel": "Blue"})[0]
    assert reply["type"] == "error" and reply["reason_uri"] == Reason.INVALID_MESSAGE
    reply = ui.send({"domain": "global", "type": "move-to-channel", "target": "ghost",
                     "channel": None})[0]
    assert reply["type"] == "error"


def test_channel_data_survives_as_context_updates() -> None:
    kit = HubKit()
    a = kit.client("a")
    red = kit.hub.contexts.by_name[CHANNEL_PREFIX + "Red"]
    a.send({"domain": "global", "type": "update-context", "context_id": red.context_id,
            "delta": {"commands": [{"type": "set", "path": "data.symbol", "value": "AAPL"}]}})
    view = next(c for c in kit.hub.views.channels() if c["name"] == "Red")
    assert view["data"] == {"symbol": "AAPL"} and view["meta"] == {"color": "red"}


def test_a_channel_aware_peer_learns_current_members_after_welcome() -> None:
    kit = HubKit()
    nb = kit.client("nb", extensions={"channels": True})
    nb.send({"domain": "global", "type": "channel-changed", "channel": "Green"})
    _, replies = kit.hello("ui", {"channels": True})
    assert replies[0]["type"] == "welcome"
    [note] = [r for r in replies if r["type"] == "channel-membership"]
    assert (note["member_id"], note["channel"], note["application"]) == (nb.peer_id, "Green", "nb")
    _, plain = kit.hello("plain")
    assert [r for r in plain if r["type"] == "channel-membership"] == []
