"""What an invocation says when it cannot run: a target that matches no server names the
servers that do offer the method; a handler that failed on its arguments names where it ran
and what it accepts; a wait for a server is logged, not silent."""

from __future__ import annotations

import logging
import threading

import pytest
from test_client_support import Clients

import jupyter_interop as ji


def test_a_target_matching_no_server_lists_who_offers_the_method(clients: Clients) -> None:
    server, caller = clients("msg-quotes"), clients("msg-caller")
    server.methods.register("Msg.Quote", lambda symbol: symbol)
    caller.methods.wait_for_method("Msg.Quote")
    with pytest.raises(ji.MethodNotFoundError) as info:
        caller.methods.invoke(
            "Msg.Quote", {"symbol": "A"}, {"application": "nobody"}, wait_timeout=0
        )
    message = str(info.value)
    assert message.startswith("No instance matching the target {'application': 'nobody'} offers")
    assert f"application 'msg-quotes' (peer {server.peer_id})" in message
    assert "similar methods" not in message
    # a method nobody offers keeps the name hint
    with pytest.raises(ji.MethodNotFoundError, match=r"Can not find a method matching 'Msg\.Quot'"):
        caller.methods.invoke("Msg.Quot", {}, wait_timeout=0)


def test_a_missing_argument_names_the_remote_handler_and_its_accepts(clients: Clients) -> None:
    server, caller = clients("msg-pricer"), clients("msg-asker")

    def price(symbol: str, qty: int) -> float:
        return 1.0 * qty

    server.methods.register("Msg.Price", price, accepts="String symbol, Int qty")
    caller.methods.wait_for_method("Msg.Price")
    with pytest.raises(ji.InvocationError) as info:
        caller.methods.invoke("Msg.Price", {"symbol": "A"})
    message = str(info.value)
    assert message.startswith("TypeError: ") and "'qty'" in message
    assert (
        f"[raised by 'Msg.Price' in application 'msg-pricer' (peer {server.peer_id}), "
        "which accepts 'String symbol, Int qty'; sent: symbol]"
    ) in message

    def fails(symbol: str) -> None:
        raise ValueError(f"bad symbol {symbol}")

    server.methods.register("Msg.Plain", fails)
    caller.methods.wait_for_method("Msg.Plain")
    with pytest.raises(ji.InvocationError) as plain:
        caller.methods.invoke("Msg.Plain", {"symbol": "Z"})
    assert str(plain.value) == "ValueError: bad symbol Z"  # other failures read as raised


def test_waiting_for_a_server_is_logged(clients: Clients, caplog: pytest.LogCaptureFixture) -> None:
    server, caller = clients("msg-late"), clients("msg-waiter")
    caplog.set_level(logging.INFO, logger="jupyter_interop.client")
    waiting = threading.Event()

    class Watch(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if "waiting up to" in record.getMessage():
                waiting.set()

    watch = Watch()
    logging.getLogger("jupyter_interop.client").addHandler(watch)
    try:
        results: list[object] = []
        call = threading.Thread(
            target=lambda: results.append(
                caller.methods.invoke("Msg.Late", {}, wait_timeout=60).returned
            )
        )
        call.start()
        assert waiting.wait(30)
        server.methods.register("Msg.Late", lambda: "here")
        call.join(60)
        assert results == ["here"]
    finally:
        logging.getLogger("jupyter_interop.client").removeHandler(watch)
    messages = [r.getMessage() for r in caplog.records]
    assert "Interop: waiting up to 60 s for a server of 'Msg.Late' matching 'best'" in messages
    assert any(m.startswith("Interop: found 'Msg.Late' after ") for m in messages)
