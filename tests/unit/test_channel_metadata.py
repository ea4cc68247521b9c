"""Channel metadata: the colour rule, the channel-context rule, and the hub refusing CSS."""

from __future__ import annotations

from typing import Any

import pytest
from hubkit import Client, HubKit

from jupyter_interop.hub import CHANNEL_PREFIX, DEFAULT_CHANNELS
from jupyter_interop.protocol import Reason
from jupyter_interop.protocol.channels import channel_context_problem, channel_name_problem
from jupyter_interop.protocol.colors import CSS_NAMED_COLORS, is_css_color

OVERLAY = "red;}</style><div style=position:fixed;inset:0>"
BEACON = "url(http://127.0.0.1:9/beacon)"
HOSTILE = [
    OVERLAY,
    BEACON,
    "red; background-image: url(x)",
    "var(--x)",
    "'red'",
    "red ",
    "expression(alert(1))",
    "rgb(1,2,3);",
    "#12345",
    "rgb(a,b,c)",
    "",
    7,
    None,
]
GOOD = [
    "red",
    "Red",
    "REBECCAPURPLE",
    "transparent",
    "#abc",
    "#abcd",
    "#66ABFF",
    "#aabbccdd",
    "rgb(1, 2, 3)",
    "rgb(10%,20%,30%)",
    "rgba(1,2,3,.5)",
    "hsl(120, 50%, 50%)",
    "hsla(120.5,50%,50%,0.25)",
]


@pytest.mark.parametrize("color", GOOD)
def test_css_colours_pass(color: str) -> None:
    assert is_css_color(color)


@pytest.mark.parametrize("color", HOSTILE)
def test_anything_but_a_colour_is_refused(color: Any) -> None:
    assert not is_css_color(color)


def test_named_colours_are_the_css_list() -> None:
    assert len(CSS_NAMED_COLORS) == 149  # 148 names of CSS Color 4 and 'transparent'
    assert {"beige", "indigo", "indianred", "rebeccapurple"} <= CSS_NAMED_COLORS


def test_default_channels_pass_the_rule() -> None:
    for channel in DEFAULT_CHANNELS:
        value = {"name": channel["name"], "meta": channel["meta"], "data": {}}
        assert channel_context_problem(CHANNEL_PREFIX + channel["name"], value) is None


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("", "non-empty"),
        ("x" * 65, "at most 64"),
        ("a\nb", "control"),
        (" Red", "spaces"),
        ("a\u202eb", "control"),
    ],
)
def test_bad_channel_names(name: str, problem: str) -> None:
    found = channel_name_problem(name)
    assert found is not None and problem in found


def test_channel_context_shape() -> None:
    name = CHANNEL_PREFIX + "Desk"
    ok = {"name": "Desk", "meta": {"color": "teal", "icon": "x"}, "data": {"a": 1}}
    assert channel_context_problem(name, ok) is None
    for bad, why in [
        ({}, "'data'"),
        ({"name": "Desk", "meta": {}, "data": []}, "'data'"),
        ({"name": "Other", "meta": {}, "data": {}}, "'name'"),
        ({"name": "Desk", "meta": "red", "data": {}}, "'meta'"),
        ({"name": "Desk", "meta": {"color": BEACON}, "data": {}}, "meta.color"),
        ({"name": "Desk", "meta": {}, "data": {}, "style": "x"}, "not style"),
        ([1], "object"),
    ]:
        problem = channel_context_problem(name, bad)
        assert problem is not None and why in problem, (bad, problem)


def test_an_old_bad_channel_can_still_carry_data_but_not_new_bad_meta() -> None:
    name = CHANNEL_PREFIX + "Old"
    before = {"name": "Old", "meta": {"color": OVERLAY}, "data": {}}
    assert channel_context_problem(name, {**before, "data": {"x": 1}}, before) is None
    changed = {**before, "meta": {"color": BEACON}}
    assert "meta.color" in (channel_context_problem(name, changed, before) or "")
    assert channel_context_problem(name, {**before, "meta": {"color": "red"}}, before) is None


# ------------------------------------------------------------------ the hub


def _create(c: Client, name: str, data: Any) -> list[dict[str, Any]]:
    return c.send({"domain": "global", "type": "create-context", "name": name, "data": data})


def _refused(replies: list[dict[str, Any]], words: str) -> None:
    errors = [r for r in replies if r["type"] == "error"]
    assert len(errors) == 1 and len(replies) == 1, replies
    assert errors[0]["reason_uri"] == Reason.CHANNEL_INVALID
    assert words in errors[0]["reason"], errors[0]


@pytest.mark.parametrize("color", [OVERLAY, BEACON])
def test_hub_refuses_a_channel_whose_colour_is_css(color: str) -> None:
    kit = HubKit()
    evil = kit.client("evil")
    watcher = kit.client("watcher")
    value = {"name": "Evil", "meta": {"color": color}, "data": {}}
    _refused(_create(evil, CHANNEL_PREFIX + "Evil", value), "meta.color")
    assert CHANNEL_PREFIX + "Evil" not in kit.hub.contexts.by_name
    assert "Evil" not in [c["name"] for c in kit.hub.views.channels()]
    assert watcher.take() == []  # nothing announced
    # a good colour under the same name is accepted and announced
    ok = _create(evil, CHANNEL_PREFIX + "Evil", {**value, "meta": {"color": "#123"}})
    assert [r["type"] for r in ok] == ["context-added", "context-created"], ok
    assert watcher.one("context-added")["name"] == CHANNEL_PREFIX + "Evil"


def test_hub_refuses_bad_channel_names_and_shapes() -> None:
    kit = HubKit()
    c = kit.client("c")
    _refused(
        _create(c, CHANNEL_PREFIX + "a\u0007b", {"name": "a\u0007b", "meta": {}, "data": {}}),
        "control",
    )
    _refused(_create(c, CHANNEL_PREFIX + "Bare", {}), "'data'")
    _refused(_create(c, CHANNEL_PREFIX + "Mis", {"name": "X", "meta": {}, "data": {}}), "'name'")
    assert [n for n in kit.hub.contexts.by_name if "Bare" in n or "Mis" in n] == []


def _update(c: Client, context_id: str, delta: dict[str, Any]) -> list[dict[str, Any]]:
    return c.send(
        {"domain": "global", "type": "update-context", "context_id": context_id, "delta": delta}
    )


def test_hub_refuses_updates_that_write_css_into_a_channel() -> None:
    kit = HubKit()
    evil = kit.client("evil")
    member = kit.client("member")
    red = kit.hub.contexts.by_name[CHANNEL_PREFIX + "Red"]
    for c in (evil, member):
        c.send({"domain": "global", "type": "subscribe-context", "context_id": red.context_id})
    member.take()
    for delta in (
        {"updated": {"meta": {"color": OVERLAY}}},
        {"commands": [{"type": "set", "path": "meta.color", "value": BEACON}]},
        {
            "commands": [
                {
                    "type": "set",
                    "path": "",
                    "value": {"name": "Red", "meta": {"color": BEACON}, "data": {}},
                }
            ]
        },
        {"reset": {"name": "Red", "meta": {"color": OVERLAY}, "data": {}}},
        {"removed": ["data"]},
        {"added": {"style": "x"}},
    ):
        _refused(_update(evil, red.context_id, delta), "channel")
    fdc3_meta = {"id": "fdc3.channel.1", "displayMetadata": {"name": "Channel 1", "glyph": "1"}}
    assert red.data == {"name": "Red", "meta": {"color": "red", "fdc3": fdc3_meta}, "data": {}}
    assert red.version == 0
    assert member.take() == []  # nothing routed
    # publishing into data and a good new colour still work
    ok = _update(
        evil,
        red.context_id,
        {
            "commands": [
                {"type": "set", "path": "data.symbol", "value": "MSFT"},
                {"type": "set", "path": "meta.color", "value": "#c00"},
            ]
        },
    )
    assert ok[0]["type"] == "success", ok
    assert red.data["meta"]["color"] == "#c00" and red.data["data"] == {"symbol": "MSFT"}
    assert member.one("context-updated")["version"] == 1


def test_configured_channels_with_bad_metadata_are_skipped() -> None:
    kit = HubKit(
        channels=[
            {"name": "Desk", "meta": {"color": "#123456"}},
            {"name": "Evil", "meta": {"color": BEACON}},
            {"name": "Bad\nName", "meta": {}},
        ]
    )
    assert [c["name"] for c in kit.hub.views.channels()] == ["Desk"]


# ------------------------------------------------------------------ views of stored values


@pytest.mark.parametrize("color", HOSTILE)
def test_client_and_swatch_show_no_colour_for_a_bad_value(color: Any) -> None:
    from jupyter_interop.client.channels import ChannelContext
    from jupyter_interop.notebook._render import swatch

    channel = ChannelContext.from_context("Old", {"name": "Old", "meta": {"color": color}})
    assert channel.color is None
    badge = swatch(color, "Old")
    assert badge.html == "Old" and badge.text == "Old"


def test_swatch_of_a_good_colour() -> None:
    from jupyter_interop.notebook._render import swatch

    assert 'style="background:#123"' in swatch("#123", "Desk").html
