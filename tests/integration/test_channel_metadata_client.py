"""Channel metadata through the Python client and a real hub: ``channels.add`` refuses CSS
before sending, the hub refuses it when a peer sends it anyway, and publishing still works."""

from __future__ import annotations

import pytest
from test_client_support import Clients

from jupyter_interop.client.errors import ArgumentError, ContextError
from jupyter_interop.protocol import Reason

OVERLAY = "red;}</style><div style=position:fixed;inset:0>"
BEACON = "url(http://127.0.0.1:9/beacon)"


@pytest.mark.parametrize("color", [OVERLAY, BEACON, "red ", "var(--x)"])
def test_channels_add_refuses_anything_but_a_colour(clients: Clients, color: str) -> None:
    io = clients("adder")
    with pytest.raises(ArgumentError, match="CSS colour"):
        io.channels.add("Evil", color)
    assert "Evil" not in io.channels.all()


def test_channels_add_refuses_a_bad_name_and_accepts_a_good_channel(clients: Clients) -> None:
    io = clients("adder")
    with pytest.raises(ArgumentError, match="control characters"):
        io.channels.add("a\nb", "red")
    io.channels.add("Desk", "rgb(10, 20, 30)")
    other = clients("other")
    [desk] = [c for c in other.channels.list() if c.name == "Desk"]
    assert desk.color == "rgb(10, 20, 30)"


def test_hub_refuses_css_sent_past_the_client_check(clients: Clients) -> None:
    io = clients("raw")
    for value in (
        {"name": "Raw", "meta": {"color": OVERLAY}, "data": {}},
        {"name": "Raw", "meta": {"color": BEACON}, "data": {}},
    ):
        with pytest.raises(ContextError) as failure:
            io.contexts.set("___channel___Raw", value)
        assert failure.value.reason_uri == Reason.CHANNEL_INVALID, failure.value
        assert "meta.color" in str(failure.value)
    assert "Raw" not in clients("viewer").channels.all()
    with pytest.raises(ContextError, match=r"meta\.color"):
        io.contexts.set_path("___channel___Red", "meta.color", BEACON)
    io.channels.join("Red")
    io.channels.publish({"symbol": "MSFT"})
    [red] = [c for c in clients("viewer2").channels.list() if c.name == "Red"]
    assert red.color == "red" and red.data == {"symbol": "MSFT"}
