"""Channels: default channel contexts, membership reports, move requests, views."""

from __future__ import annotations

from typing import Any

from hubkit import HubKit

from jupyter_interop.hub import CHANNEL_PREFIX, DEFAULT_CHANNELS
from jupyter_interop.protocol import Reason

#: the Red channel's meta: its colour and its FDC3 user channel (docs/FDC3.md, "The wire")
RED_META = {
    "color": "red",
    "fdc3": {"id": "fdc3.channel.1", "displayMetadata": {"name": "Channel 1", "glyph": "1"}},
}


def test_default_channels_are_contexts_with_name_meta_data() -> None:
    kit = HubKit()
    names = [c["name"] for c in DEFAULT_CHANNELS]
    assert names == [
        "Red",
        "Green",
        "Blue",
        "Pink",
        "Yellow",
        "DarkYellow",
        "Orange",
        "Purple",
        "Lime",
        "Cyan",
    ]
    red = kit.hub.contexts.by_name[CHANNEL_PREFIX + "Red"]
    assert red.data == {"name": "Red", "meta": RED_META, "data": {}}
    assert "fdc3" not in next(c for c in DEFAULT_CHANNELS if c["name"] == "Lime")["meta"]
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
    reply = ui.send(
        {"domain": "global", "type": "move-to-channel", "target": nb.peer_id, "channel": "Blue"}
    )
    assert reply[0]["type"] == "success"
    req = nb.one("channel-change-request")
    assert req["channel"] == "Blue" and req["requested_by"] == ui.peer_id
    reply = ui.send(
        {"domain": "global", "type": "move-to-channel", "target": plain.peer_id, "channel": "Blue"}
    )[0]
    assert reply["type"] == "error" and reply["reason_uri"] == Reason.INVALID_MESSAGE
    reply = ui.send(
        {"domain": "global", "type": "move-to-channel", "target": "ghost", "channel": None}
    )[0]
    assert reply["type"] == "error"


def test_channel_data_survives_as_context_updates() -> None:
    kit = HubKit()
    a = kit.client("a")
    red = kit.hub.contexts.by_name[CHANNEL_PREFIX + "Red"]
    a.send(
        {
            "domain": "global",
            "type": "update-context",
            "context_id": red.context_id,
            "delta": {"commands": [{"type": "set", "path": "data.symbol", "value": "AAPL"}]},
        }
    )
    view = next(c for c in kit.hub.views.channels() if c["name"] == "Red")
    assert view["data"] == {"symbol": "AAPL"} and view["meta"]["color"] == "red"


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


def _write(client: Any, context_id: str, path: str, value: Any) -> dict[str, Any]:
    return client.send(
        {
            "domain": "global",
            "type": "update-context",
            "context_id": context_id,
            "delta": {"commands": [{"type": "set", "path": path, "value": value}]},
        }
    )[0]


def _restrict(client: Any, **fields: Any) -> dict[str, Any]:
    return client.send({"domain": "global", "type": "restrict-channel", **fields})[0]


def test_a_peer_restricted_from_writing_a_channel_is_refused_whatever_it_sends() -> None:
    kit = HubKit()
    ui, nb = kit.client("ui"), kit.client("nb")
    red = kit.hub.contexts.by_name[CHANNEL_PREFIX + "Red"]
    assert _restrict(ui, target=nb.peer_id, channel="Red", read=True, write=False)["type"] == (
        "success"
    )
    reply = _write(nb, red.context_id, "data.symbol", "AAPL")
    assert reply["type"] == "error" and reply["reason_uri"] == Reason.CONTEXT_NOT_AUTHORIZED
    assert "may not change channel 'Red'" in reply["reason"] and ui.peer_id in reply["reason"]
    assert red.data["data"] == {}
    destroyed = nb.send(
        {"domain": "global", "type": "destroy-context", "context_id": red.context_id}
    )[0]
    assert destroyed["type"] == "error" and "may not remove channel 'Red'" in destroyed["reason"]
    blue = kit.hub.contexts.by_name[CHANNEL_PREFIX + "Blue"]
    assert _write(nb, blue.context_id, "data.symbol", "IBM")["type"] == "success"
    # it cannot lift what another peer put on it; the other peer can
    lifted = _restrict(nb, channel="Red", read=True, write=True)
    assert lifted["type"] == "error" and "cannot lift" in lifted["reason"]
    assert _restrict(nb, read=True, write=True)["type"] == "error"
    assert _restrict(ui, target=nb.peer_id, channel="Red", read=True, write=True)["type"] == (
        "success"
    )
    assert _write(nb, red.context_id, "data.symbol", "AAPL")["type"] == "success"


def test_restrict_all_then_per_channel_and_get_restrictions() -> None:
    kit = HubKit()
    nb = kit.client("nb")
    assert _restrict(nb, read=False, write=False)["type"] == "success"  # every channel
    assert _restrict(nb, channel="Green", read=True, write=False)["type"] == "success"
    [reply] = nb.send({"domain": "global", "type": "get-channel-restrictions"})
    assert reply["type"] == "success" and reply["target"] == nb.peer_id
    by_name = {c["name"]: (c["read"], c["write"]) for c in reply["channels"]}
    assert by_name["Green"] == (True, False) and by_name["Red"] == (False, False)
    assert len(by_name) == len(DEFAULT_CHANNELS)
    # a peer may lift what it put on itself; restrict-all replaces the per-channel ones
    assert _restrict(nb, read=True, write=True)["type"] == "success"
    [reply] = nb.send({"domain": "global", "type": "get-channel-restrictions"})
    assert all(c["read"] and c["write"] for c in reply["channels"])
    bad = _restrict(nb, channel="Mauve", read=True, write=True)
    assert bad["type"] == "error" and "Unknown channel 'Mauve'" in bad["reason"]
    bad = _restrict(nb, channel="Red", read="yes", write=True)
    assert bad["type"] == "error"
    bad = _restrict(nb, channel="Red", read=True, write=True, target="ghost")
    assert bad["type"] == "error" and "No peer with id ghost" in bad["reason"]


def test_a_peer_restricted_from_reading_gets_no_updates_then_the_whole_data() -> None:
    kit = HubKit()
    writer, reader = kit.client("writer"), kit.client("reader")
    red = kit.hub.contexts.by_name[CHANNEL_PREFIX + "Red"]
    _write(writer, red.context_id, "data.symbol", "AAPL")
    assert (
        _restrict(writer, target=reader.peer_id, channel="Red", read=False, write=True)["type"]
        == "success"
    )
    [snapshot] = reader.send(
        {"domain": "global", "type": "subscribe-context", "context_id": red.context_id}
    )
    assert snapshot["data"] == {"name": "Red", "meta": RED_META, "data": {}}
    _write(writer, red.context_id, "data.symbol", "MSFT")
    assert reader.take("context-updated") == []
    # it may still write (a directional channel), and its write reaches the writer
    assert _write(reader, red.context_id, "data.qty", 5)["type"] == "success"
    assert (
        _restrict(writer, target=reader.peer_id, channel="Red", read=True, write=True)["type"]
        == "success"
    )
    update = reader.one("context-updated")
    assert update["delta"] == {"reset": red.data} and red.data["data"] == {
        "symbol": "MSFT",
        "qty": 5,
    }
    _write(writer, red.context_id, "data.symbol", "IBM")
    assert reader.one("context-updated")["delta"]["commands"][0]["value"] == "IBM"


def test_restrictions_go_with_their_peer() -> None:
    kit = HubKit()
    ui, nb = kit.client("ui"), kit.client("nb")
    _restrict(ui, target=nb.peer_id, read=False, write=False)
    nb.close()
    assert kit.hub.channel_registry.restrictions == {}


def test_a_peer_on_several_channels_is_a_member_of_each() -> None:
    kit = HubKit()
    ui = kit.client("ui", extensions={"channels": True})
    nb = kit.client("nb", extensions={"channels": True})
    ui.take()
    changed = {
        "domain": "global",
        "type": "channel-changed",
        "channel": "Blue",
        "channels": ["Red", "Blue"],
    }
    assert nb.send(changed)[0]["type"] == "success"
    note = ui.one("channel-membership")
    assert (note["channel"], note["channels"]) == ("Blue", ["Red", "Blue"])
    views = {c["name"]: [m["peer_id"] for m in c["members"]] for c in kit.hub.views.channels()}
    assert views["Red"] == views["Blue"] == [nb.peer_id] and views["Green"] == []
    [peer] = [p for p in kit.hub.views.peers() if p["peer_id"] == nb.peer_id]
    assert peer["channels"] == ["Red", "Blue"]
    _, replies = kit.hello("late", {"channels": True})
    [note] = [r for r in replies if r["type"] == "channel-membership"]
    assert note["channels"] == ["Red", "Blue"]
    for bad in (
        {"channel": "Red", "channels": ["Red", "Blue"]},  # channel is not the last
        {"channel": "Blue", "channels": ["Mauve", "Blue"]},
        {"channel": "Blue", "channels": [None, "Blue"]},
        {"channel": None, "channels": "Red"},
    ):
        reply = nb.send({"domain": "global", "type": "channel-changed", **bad})[0]
        assert reply["type"] == "error", bad
    # a single-channel report (no list) still works, and means that one channel
    nb.send({"domain": "global", "type": "channel-changed", "channel": "Green"})
    assert ui.one("channel-membership")["channels"] == ["Green"]
    nb.send({"domain": "global", "type": "channel-changed", "channel": None, "channels": []})
    assert ui.one("channel-membership")["channels"] == []
