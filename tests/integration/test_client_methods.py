"""The Python client against a real standalone hub: connection, methods, discovery, bad input."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from test_client_support import (
    REPO,
    Clients,
    Recorder,
    StandaloneHub,
    isolated_env,
    wait_for,
)

import jupyter_interop as ji


def wait_servers(io: ji.Interop, method: str, count: int) -> None:
    """Discovery is eventually consistent: wait until ``io`` sees ``count`` servers."""
    wait_for(lambda: len(io.methods.servers(method)) == count, what=f"{count} servers of {method}")


# ---------------------------------------------------------------------- connection


def test_connect_identity_and_repr(clients: Clients) -> None:
    io = clients("pricer")
    assert io.connected
    assert io.instance.application == "pricer"
    assert io.instance.peer_id == io.peer_id
    assert io.instance.pid == os.getpid()
    assert io.instance.user and io.instance.machine
    assert "pricer" in repr(io) and "connected" in repr(io)


def test_connect_is_shared_per_application_unless_new(hub: StandaloneHub) -> None:
    a = ji.connect(hub.url, hub.token, "shared-app")
    try:
        assert ji.connect(hub.url, hub.token, "shared-app") is a
        b = ji.connect(hub.url, hub.token, "shared-app", new=True)
        assert b is not a and b.peer_id != a.peer_id
        b.close()
    finally:
        a.close()
    c = ji.connect(hub.url, hub.token, "shared-app")
    assert c is not a and c.connected
    c.close()


def test_wrong_token_is_an_authentication_error(hub: StandaloneHub) -> None:
    with pytest.raises(ji.AuthenticationError, match="refused the token"):
        ji.connect(hub.url, "wrong", "x", new=True)


def test_unreachable_hub_says_where(tmp_path: Path) -> None:
    with pytest.raises(ji.HubUnreachableError, match=r"ws://127\.0\.0\.1:9/.*argument"):
        ji.connect("ws://127.0.0.1:9/interop/gateway", "t", "x", new=True, connect_timeout=2)


def test_discovery_from_environment_and_runtime_file(hub: StandaloneHub, tmp_path: Path) -> None:
    """A script finds the hub through the environment, else the runtime file; else the error
    lists every place tried."""
    script = (
        "import json, jupyter_interop as ji\n"
        "try:\n"
        "    io = ji.connect(application='finder')\n"
        "except ji.DiscoveryError as e:\n"
        "    print(json.dumps({'error': str(e)}))\n"
        "else:\n"
        "    print(json.dumps({'url': io.url, 'app': io.instance.application}))\n"
        "    io.close()\n"
    )

    def run(env: dict[str, str]) -> dict[str, str]:
        out = subprocess.run(
            [sys.executable, "-c", script],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            cwd=str(REPO),
        )
        assert out.returncode == 0, out.stderr
        return dict(json.loads(out.stdout.strip().splitlines()[-1]))

    env = isolated_env(hub.tmp)  # the hub's runtime dir holds its runtime file
    assert run(env) == {"url": hub.url, "app": "finder"}
    assert run({**env, "JUPYTER_INTEROP_URL": hub.url, "JUPYTER_INTEROP_TOKEN": hub.token}) == {
        "url": hub.url,
        "app": "finder",
    }
    empty = isolated_env(tmp_path)
    error = run(empty)["error"]
    assert "JUPYTER_INTEROP_URL" in error and "runtime files" in error
    assert "explicit arguments" in error


def test_closed_client_refuses_calls_and_close_is_idempotent(clients: Clients) -> None:
    io = clients("closer")
    io.close()
    io.close()
    assert not io.connected
    with pytest.raises(ji.ClientClosedError):
        io.methods.invoke("X")
    with pytest.raises(ji.ClientClosedError):
        io.contexts.get("x")
    with pytest.raises(ji.ClientClosedError):
        io.bus.publish("a.b", {"x": 1})


def test_interpreter_exit_does_not_hang(hub: StandaloneHub) -> None:
    """A script that never closes its client, with a handler stuck in user code and a call in
    flight, still exits promptly."""
    script = (
        "import threading, time, jupyter_interop as ji\n"
        f"a = ji.connect({hub.url!r}, {hub.token!r}, 'stuck', new=True)\n"
        "a.methods.register('Stuck', lambda: time.sleep(120))\n"
        f"b = ji.connect({hub.url!r}, {hub.token!r}, 'caller', new=True)\n"
        "threading.Thread(target=lambda: b.methods.invoke('Stuck', timeout=100),"
        " daemon=True).start()\n"
        "time.sleep(0.5)\n"
        "print('bye')\n"
    )
    started = time.monotonic()
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, cwd=str(REPO)
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "bye"
    assert time.monotonic() - started < 15


# ---------------------------------------------------------------------- invoke


def test_register_invoke_kwargs_result_and_caller(clients: Clients) -> None:
    server, caller = clients("server"), clients("caller")
    seen: list[ji.Invocation | None] = []

    @server.methods.register("Pricing.Quote", description="A quote")
    def quote(symbol: str, qty: int = 1) -> dict:
        seen.append(ji.current_invocation())
        return {"symbol": symbol, "px": 101.5 * qty}

    assert quote("X", 2) == {"symbol": "X", "px": 203.0}  # still a plain function
    r = caller.methods.invoke("Pricing.Quote", {"symbol": "AAPL"}, target="best", timeout=5)
    assert r.returned == {"symbol": "AAPL", "px": 101.5}
    assert r.executed_by == server.instance
    assert r.method == "Pricing.Quote" and r.called_with == {"symbol": "AAPL"}
    assert [e.returned for e in r.all_return_values] == [{"symbol": "AAPL", "px": 101.5}]
    assert r.all_errors == [] and r.status == 0
    invocation = seen[-1]
    assert invocation is not None
    assert invocation.caller.application == "caller"
    assert invocation.caller.peer_id == caller.peer_id
    assert invocation.arguments == {"symbol": "AAPL"}
    assert ji.current_invocation() is None


def test_non_dict_results_are_wrapped_and_unwrapped(clients: Clients, hub: StandaloneHub) -> None:
    server, caller = clients("wrap-server"), clients("wrap-caller")
    values = {
        "Int": 42,
        "Str": "hi",
        "List": [1, "two", {"three": 3}],
        "None": None,
        "Dict": {"a": 1},
        "Date": dt.datetime(2024, 5, 6, 7, 8, 9, 123000, tzinfo=dt.timezone.utc),
        "Bytes": b"\x00\xffraw",
    }
    for name, value in values.items():
        server.methods.register(f"Wrap.{name}", lambda value=value: value)
    for name, value in values.items():
        assert caller.methods.invoke(f"Wrap.{name}").returned == value, name


def test_handler_exception_becomes_error_with_type_and_message(clients: Clients) -> None:
    server, caller = clients("err-server"), clients("err-caller")

    @server.methods.register("Err.Boom")
    def boom(symbol: str) -> None:
        raise ValueError(f"bad symbol {symbol}")

    with pytest.raises(ji.InvocationError) as info:
        caller.methods.invoke("Err.Boom", {"symbol": "ZZZ"})
    error = info.value
    assert str(error) == "ValueError: bad symbol ZZZ"
    assert error.reason_uri == "agm.errors.client_error"
    assert error.remote_type == "ValueError"
    assert "Traceback" in error.context["traceback"] and "boom" in error.context["traceback"]
    assert [e.message for e in error.all_errors] == ["ValueError: bad symbol ZZZ"]
    assert error.all_errors[0].executed_by == server.instance
    # wrong arguments are the handler's TypeError, reported the same way
    with pytest.raises(ji.InvocationError, match=r"^TypeError: .*unexpected keyword"):
        caller.methods.invoke("Err.Boom", {"symbol": "A", "qty": 1})


def test_result_that_cannot_be_sent_is_an_error(clients: Clients) -> None:
    server, caller = clients("ser-server"), clients("ser-caller")
    server.methods.register("Ser.Set", lambda: {"s": {1, 2}})
    with pytest.raises(ji.InvocationError, match=r"result of 'Ser.Set' cannot be sent.*set"):
        caller.methods.invoke("Ser.Set")


def test_targets_best_all_skipmine_filters(clients: Clients) -> None:
    a, b, c = clients("tgt-a"), clients("tgt-b"), clients("tgt-c")
    for io in (a, b, c):
        io.methods.register("Tgt.Who", lambda io=io: io.instance.application)
    wait_servers(a, "Tgt.Who", 3)
    assert a.methods.invoke("Tgt.Who").returned == "tgt-a"  # best: the first (ourselves)
    everyone = a.methods.invoke("Tgt.Who", target="all")
    assert sorted(e.returned for e in everyone.all_return_values) == ["tgt-a", "tgt-b", "tgt-c"]
    others = a.methods.invoke("Tgt.Who", target="skipMine")
    assert sorted(e.returned for e in others.all_return_values) == ["tgt-b", "tgt-c"]
    assert a.methods.invoke("Tgt.Who", target={"application": "TGT-C"}).returned == "tgt-c"
    assert a.methods.invoke("Tgt.Who", target=b.instance).returned == "tgt-b"
    listed = a.methods.invoke("Tgt.Who", target=[{"application": "tgt-b"}, c.instance])
    assert [e.returned for e in listed.all_return_values] == ["tgt-b", "tgt-c"]
    # a filter targets every matching server (io.Connect); a compiled regex is searched
    regex = a.methods.invoke("Tgt.Who", target={"application": re.compile(r"-[bc]$")})
    assert sorted(e.returned for e in regex.all_return_values) == ["tgt-b", "tgt-c"]
    with pytest.raises(ji.MethodNotFoundError, match=r"Tgt.Who"):
        a.methods.invoke("Tgt.Who", target={"application": "nobody"}, wait_timeout=0.2)


def test_multi_target_fails_only_if_every_target_failed(clients: Clients) -> None:
    a, b, c = clients("mt-a"), clients("mt-b"), clients("mt-c")

    def fail() -> None:
        raise RuntimeError("nope")

    a.methods.register("Mt.Maybe", fail)
    b.methods.register("Mt.Maybe", lambda: "ok-b")
    wait_servers(c, "Mt.Maybe", 2)
    r = c.methods.invoke("Mt.Maybe", target="all")
    assert r.returned == "ok-b" and r.executed_by == b.instance
    assert [e.message for e in r.all_errors] == ["RuntimeError: nope"]
    assert r.all_errors[0].executed_by == a.instance
    b.methods.unregister("Mt.Maybe")
    b.methods.register("Mt.Maybe", fail)
    wait_servers(c, "Mt.Maybe", 2)
    with pytest.raises(ji.InvocationError) as info:
        c.methods.invoke("Mt.Maybe", target="all")
    assert len(info.value.all_errors) == 2
    assert info.value.result is not None and info.value.result.all_return_values == []


def test_wait_for_method_and_timeouts(clients: Clients) -> None:
    server, caller = clients("late-server"), clients("late-caller")
    started = time.monotonic()
    with pytest.raises(ji.MethodNotFoundError, match=r"Late\.Absent.*waited 0\.3 s"):
        caller.methods.invoke("Late.Absent", wait_timeout=0.3)
    assert time.monotonic() - started < 2
    threading.Timer(0.3, lambda: server.methods.register("Late.Arrives", lambda: 1)).start()
    assert caller.methods.invoke("Late.Arrives", wait_timeout=5).returned == 1

    server.methods.register("Late.Slow", lambda: time.sleep(2) or "late")
    started = time.monotonic()
    with pytest.raises(ji.InvocationTimeoutError, match=r"Invocation timeout \(300 ms\)"):
        caller.methods.invoke("Late.Slow", timeout=0.3)
    assert isinstance(ji.InvocationTimeoutError("x"), TimeoutError)
    assert time.monotonic() - started < 1.5


def test_reregister_replaces_the_handler(clients: Clients) -> None:
    server, caller = clients("rr-server"), clients("rr-caller")
    server.methods.register("Rr.Version", lambda: 1)
    server.methods.register("Rr.Version", lambda: 2)  # a re-run cell
    r = caller.methods.invoke("Rr.Version", target="all")
    assert [e.returned for e in r.all_return_values] == [2]
    with pytest.raises(ji.RegistrationError, match=r"No method 'Rr.Other'"):
        server.methods.unregister("Rr.Other")


def test_handlers_run_off_the_calling_thread_and_concurrently(clients: Clients) -> None:
    server, caller = clients("conc-server", handler_threads=4), clients("conc-caller")
    threads: list[str] = []
    barrier = threading.Barrier(4, timeout=5)

    @server.methods.register("Conc.Wait")
    def wait() -> str:
        threads.append(threading.current_thread().name)
        barrier.wait()  # only passes if 4 run at the same time
        return "ok"

    async def four() -> list[ji.InvocationResult]:
        return list(await asyncio.gather(*(caller.methods.ainvoke("Conc.Wait") for _ in range(4))))

    results = asyncio.run(four())
    assert [x.returned for x in results] == ["ok"] * 4
    assert all(t.startswith("interop-handler") for t in threads)
    assert threading.main_thread().name not in threads


def test_async_handler_runs_on_the_io_loop_and_can_await(clients: Clients) -> None:
    server, caller = clients("async-server"), clients("async-caller")
    server.methods.register("Async.Inner", lambda x: x + 1)

    @server.methods.register("Async.Outer")
    async def outer(x: int) -> dict:
        inner = await server.methods.ainvoke("Async.Inner", {"x": x})
        return {"thread": threading.current_thread().name, "value": inner.returned}

    r = caller.methods.invoke("Async.Outer", {"x": 1})
    assert r.returned == {"thread": "jupyter-interop-io", "value": 2}

    @server.methods.register("Async.Blocking")
    async def blocking() -> None:
        server.methods.invoke("Async.Inner", {"x": 1})  # a sync call on the I/O loop

    with pytest.raises(ji.InvocationError, match="would block the event loop this interop client"):
        caller.methods.invoke("Async.Blocking")


def test_async_twins_from_an_asyncio_program(hub: StandaloneHub) -> None:
    async def main() -> tuple[object, ...]:
        io = await ji.aconnect(hub.url, hub.token, "async-main", new=True)
        try:
            await io.methods.aregister("Twin.Add", lambda a, b: a + b)
            r = await io.methods.ainvoke("Twin.Add", {"a": 1, "b": 2})
            await io.contexts.aset("twin-ctx", {"x": 1})
            got = await io.contexts.aget("twin-ctx")
            methods = await io.methods.amethods("Twin.Add")
            return r.returned, got, [m.name for m in methods]
        finally:
            await io.aclose()

    assert asyncio.run(main()) == (3, {"x": 1}, ["Twin.Add"])


class _WakeCountingLoop(asyncio.SelectorEventLoop):
    """Counts, while ``counting``, the thread-safe wake-ups and the timers asked of it."""

    def __init__(self) -> None:
        super().__init__()
        self.counting = False
        self.woken = 0
        self.timers = 0

    def call_soon_threadsafe(self, callback: Any, *args: Any, context: Any = None) -> Any:
        if self.counting:
            self.woken += 1
        return super().call_soon_threadsafe(callback, *args, context=context)

    def call_at(self, when: float, callback: Any, *args: Any, context: Any = None) -> Any:
        if self.counting:
            self.timers += 1
        return super().call_at(when, callback, *args, context=context)


def test_await_from_another_loop_is_woken_once_by_the_reply(clients: Clients) -> None:
    """``await ainvoke`` on a loop that is not the client's (a kernel's, with the client on
    the I/O thread): that loop is woken exactly once, by the reply, and never by a timer
    (no polling, nothing that waits for an interval to see the outcome)."""
    server = clients("wake-server")
    server.methods.register("Wake.Echo", lambda x: x)
    caller = clients("wake-caller")
    assert caller.methods.invoke("Wake.Echo", {"x": 0}, wait_timeout=10).returned == 0
    loop = _WakeCountingLoop()

    async def main() -> list[object]:
        got = []
        for x in (1, 2, 3):
            loop.counting = True
            result = await caller.methods.ainvoke("Wake.Echo", {"x": x})
            loop.counting = False
            got.append(result.returned)
        return got

    try:
        assert loop.run_until_complete(main()) == [1, 2, 3]
    finally:
        loop.close()
    assert (loop.woken, loop.timers) == (3, 0)


def test_await_from_another_loop_times_out_in_deadline_order(clients: Clients) -> None:
    """Calls awaited from another loop are sent from its thread and expired by the I/O
    loop: a call with a shorter timeout than one already waiting fails first (the expiry
    timer is moved earlier), and the caller's loop still asks for no timer."""
    server = clients("expiry-server")
    server.methods.register("Expiry.Slow", lambda: time.sleep(1) or "late")
    caller = clients("expiry-caller")
    caller.methods.invoke("Expiry.Slow", wait_timeout=10)  # the method is known
    loop = _WakeCountingLoop()
    finished: list[str] = []

    async def patient() -> None:
        result = await caller.methods.ainvoke("Expiry.Slow", timeout=30)
        finished.append(str(result.returned))

    async def hasty() -> None:
        with pytest.raises(ji.InvocationTimeoutError, match=r"Invocation timeout \(300 ms\)"):
            await caller.methods.ainvoke("Expiry.Slow", timeout=0.3)
        finished.append("timeout")

    async def main() -> None:
        loop.counting = True
        first = asyncio.ensure_future(patient())
        await asyncio.sleep(0)  # the patient call is sent first
        await asyncio.gather(first, hasty())
        loop.counting = False

    try:
        loop.run_until_complete(main())
    finally:
        loop.close()
    assert finished == ["timeout", "late"]
    assert loop.timers == 0


def test_discovery_lists_and_events(clients: Clients) -> None:
    watcher = clients("disc-watcher")
    added, removed = Recorder(), Recorder()
    servers_added, servers_removed = Recorder(), Recorder()
    watcher.methods.on_method_added(added)
    watcher.methods.on_method_removed(removed)
    watcher.methods.on_server_added(servers_added)
    watcher.methods.on_server_removed(servers_removed)
    server = clients("disc-server")
    server.methods.register("Disc.M", lambda: 1, accepts="string x", returns="int y")
    wait_for(lambda: any(m.name == "Disc.M" for m in added.firsts), what="method_added")
    wait_for(lambda: server.instance in servers_added.firsts, what="server_added")
    [method] = watcher.methods.methods("Disc.M")
    assert method.accepts == "string x" and method.returns == "int y"
    assert method.servers == (server.instance,) and not method.supports_streaming
    assert server.instance in watcher.methods.servers("Disc.M")
    assert watcher.methods.servers(instance={"application": "disc-server"}) == [server.instance]
    assert watcher.methods.wait_for_method("Disc.M", timeout=1).name == "Disc.M"
    peer = server.instance
    server.close()
    wait_for(lambda: any(m.name == "Disc.M" for m in removed.firsts), what="method_removed")
    calls = servers_removed.wait()
    assert any(c[0] == peer and c[1] == "Peer has been removed" for c in calls)
    assert watcher.methods.methods("Disc.M") == []


def test_busy_main_thread_still_answers(hub: StandaloneHub) -> None:
    """A process whose main thread is blocked (a long cell) still serves its methods."""
    script = (
        "import time, jupyter_interop as ji\n"
        f"io = ji.connect({hub.url!r}, {hub.token!r}, 'busy-server', new=True)\n"
        "io.methods.register('Busy.Ping', lambda: 'pong')\n"
        "print('ready', flush=True)\n"
        "time.sleep(20)\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", script], stdout=subprocess.PIPE, text=True, cwd=str(REPO)
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        io = ji.connect(hub.url, hub.token, "busy-caller", new=True)
        started = time.monotonic()
        assert io.methods.invoke("Busy.Ping", timeout=5).returned == "pong"
        assert time.monotonic() - started < 2
        io.close()
    finally:
        proc.kill()
        proc.wait(5)


# ---------------------------------------------------------------------- bad input


def test_bad_arguments_raise_argument_errors_and_send_nothing(clients: Clients) -> None:
    io = clients("bad-input")
    with pytest.raises(ji.ArgumentError, match="must be a dict"):
        io.methods.invoke("X", [1, 2])  # type: ignore[arg-type]
    with pytest.raises(TypeError):  # ArgumentError is a TypeError and a ValueError
        io.methods.invoke("X", "nope")  # type: ignore[arg-type]
    with pytest.raises(ji.ArgumentError, match="not a valid target"):
        io.methods.invoke("X", {}, target="everyone")
    with pytest.raises(ji.ArgumentError, match="timeout"):
        io.methods.invoke("X", {}, timeout=-1)
    with pytest.raises(ji.ArgumentError, match="non-empty string"):
        io.methods.register("", lambda: 1)
    with pytest.raises(ji.ArgumentError, match="callable"):
        io.methods.register("X", 42)  # type: ignore[call-overload]
    with pytest.raises(ji.ArgumentError, match="needs a dict"):
        io.contexts.set("c", [1])  # type: ignore[arg-type]
    with pytest.raises(ji.ArgumentError, match="context name"):
        io.contexts.update("", {})
    with pytest.raises(ji.ChannelError, match=r"Unknown channel 'Mauve'.*Red"):
        io.channels.join("Mauve")
    with pytest.raises(ji.ChannelError, match="Not on a channel"):
        io.channels.publish({"a": 1})
    with pytest.raises(ji.ArgumentError, match="topic"):
        io.bus.publish("", {"a": 1})
    with pytest.raises(ji.SerializationError, match=r"builtins.set"):
        io.contexts.set("bad-value", {"s": {1, 2}})
    with pytest.raises(ji.SerializationError, match="64-bit"):
        io.methods.invoke("X", {"n": 2**70})
    with pytest.raises(ji.SerializationError, match="object"):
        io.bus.publish("a.b", {"o": object()})
    with pytest.raises(ji.ArgumentError, match="Invalid setting"):
        ji.connect(io.url, "t", "x", new=True, invoke_timeout="soon")
    # nothing is half-broken: the same client still works, and nothing was created
    assert "bad-value" not in io.contexts.all()
    io.methods.register("Bad.Ok", lambda: "fine")
    assert io.methods.invoke("Bad.Ok").returned == "fine"


def test_tornado_websocket_client_works_too(clients: Clients) -> None:
    """Where ``websockets`` is missing the client uses tornado's WebSocket client."""
    import numpy as np

    server = clients("tornado-server", websocket_library="tornado")
    caller = clients("tornado-caller", websocket_library="tornado")
    assert type(server._conn._transport).__name__ == "_TornadoTransport"
    server.methods.register("Tornado.Echo", lambda **kw: kw)
    value = {"x": 1, "when": dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc), "raw": b"\x01"}
    assert caller.methods.invoke("Tornado.Echo", value).returned == value
    array = caller.methods.invoke("Tornado.Echo", {"a": np.arange(4.0)}).returned["a"]
    np.testing.assert_array_equal(array, np.arange(4.0))  # binary frames both ways
