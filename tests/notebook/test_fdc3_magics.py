"""``%interop fdc3`` and ``ji.bind(..., fdc3=(TYPE, PATH))`` in real kernels on a real hub
(docs/FDC3.md): two notebooks on the Red channel, FDC3's ``fdc3.channel.1``."""

from __future__ import annotations

from kernelkit import Kernel

SETUP = "import ipywidgets as w\nfrom jupyter_interop.notebook import flush_writes"


def test_broadcast_and_listen_on_the_user_channel(nb_a: Kernel, nb_b: Kernel) -> None:
    nb_a.run("%interop channel join Red")
    nb_b.run("%interop channel join Red")
    listening = nb_b.run("%interop fdc3 listen fdc3.instrument --to inst")
    assert "inst is the latest fdc3.instrument context" in listening.text
    printed = nb_b.run("%interop fdc3 listen '*'")
    sent = nb_a.run("%interop fdc3 broadcast fdc3.instrument id.ticker=AAPL name=Apple")
    assert "Broadcast fdc3.instrument on fdc3.channel.1 (Channel 1)" in sent.text
    aapl = {"type": "fdc3.instrument", "id": {"ticker": "AAPL"}, "name": "Apple"}
    nb_b.wait_value("inst", aapl)
    nb_a.run('%interop fdc3 broadcast fdc3.contact {"id": {"email": "a@example.com"}}')
    nb_b.wait_iopub(
        lambda msgs: any(
            m["msg_type"] == "stream"
            and m["parent_header"].get("msg_id") == printed.msg_id
            and "[fdc3.contact]" in m["content"]["text"]
            and "(from " in m["content"]["text"]
            for m in msgs
        )
    )
    assert nb_b.value("inst") == aapl  # the contact is not an instrument
    assert "Stopped fdc3" in nb_b.run("%interop unsubscribe inst").text
    assert "Stopped fdc3" in nb_b.run("%interop unsubscribe fdc3:*").text


def test_fdc3_usage_errors(nb_a: Kernel) -> None:
    nb_a.run("%interop channel leave")
    assert "not on an FDC3 user channel" in nb_a.usage_error(
        "%interop fdc3 broadcast fdc3.instrument id.ticker=AAPL"
    )
    nb_a.run("%interop channel join Lime")  # a colour channel without meta.fdc3
    assert "not on an FDC3 user channel" in nb_a.usage_error(
        "%interop fdc3 broadcast fdc3.instrument id.ticker=AAPL"
    )
    nb_a.run("%interop channel join Red")
    assert "is not 'fdc3.instrument'" in nb_a.usage_error(
        '%interop fdc3 broadcast fdc3.instrument {"type": "fdc3.contact"}'
    )
    assert "needs a context type" in nb_a.usage_error("%interop fdc3 broadcast '*' a=1")
    assert "--to is for fdc3 listen" in nb_a.usage_error(
        "%interop fdc3 broadcast fdc3.instrument a=1 --to x"
    )
    assert "not a valid variable name" in nb_a.usage_error(
        "%interop fdc3 listen fdc3.instrument --to 1x"
    )


def test_bind_a_widget_to_the_user_channels_context(nb_a: Kernel, nb_b: Kernel) -> None:
    for kernel in (nb_a, nb_b):
        kernel.run(SETUP)
        kernel.run("%interop channel join Orange")  # fdc3.channel.2
    nb_a.run("%interop fdc3 broadcast fdc3.instrument id.ticker=MSFT name=Microsoft")
    nb_b.run("t = w.Text()\nb = ji.bind(t, 'value', fdc3=('fdc3.instrument', 'id.ticker'))")
    nb_b.wait_value("t.value", "MSFT")  # the channel's current instrument, at once
    nb_a.run("%interop fdc3 broadcast fdc3.instrument id.ticker=AAPL")
    nb_b.wait_value("t.value", "AAPL")
    # the widget changes: the instrument is broadcast with the path changed
    nb_a.run("%interop fdc3 listen fdc3.instrument --to seen")
    nb_b.run("t.value = 'TSLA'\nassert flush_writes()")
    nb_a.wait_value("seen", {"type": "fdc3.instrument", "id": {"ticker": "TSLA"}})
    assert nb_b.value("b.stale") is None
    # a user channel without an instrument leaves the widget stale
    nb_b.run("%interop channel join Yellow")
    nb_b.wait_value("b.stale", "no fdc3.instrument on fdc3.channel.3")
    assert nb_b.value("t.value") == "TSLA"
    nb_b.run("b.unbind()")
    wrong = nb_b.execute("ji.bind(t, 'value', channel=True, fdc3=('fdc3.instrument', 'id'))")
    assert wrong.error is not None
    assert "takes no context=, channel= or path=" in wrong.error["evalue"]
