"""What the kernel rows run inside a real ipykernel (``benchmarks/kernels.py`` sends the cells).

A cell imports this module and awaits :func:`command` (or calls :func:`command_sync` for the
sync API, as a cell that calls ``io.methods.invoke`` or ``io.contexts.set`` does: on the
kernel's main thread, its event loop blocked meanwhile). Each command writes its reply as JSON
to ``cmd["out"]``, which the coordinator reads back; the timing loops are the workers'
(``worker.timed_calls``).

Notebook to notebook: a writer kernel sets a context (or publishes on a NATS subject) with its
``time.monotonic()`` inside the value, and a reader kernel's callback takes the difference on
arrival (CLOCK_MONOTONIC is one clock for every process of the machine).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from typing import Any

import orjson

from .worker import METHOD, SMALL_ARGS, nats_connect, timed_calls, timed_calls_sync

#: the client this kernel opened ("ji" or "nats") and what it calls
_state: dict[str, Any] = {}
#: a reader's arrivals: run -> [(seq, latency in µs)]
_arrivals: dict[int, list[tuple[int, float]]] = {}
#: what a written value carries besides its run, seq and send time (as in scenario 4)
PAD = "x" * 64


def _arrived(data: Any) -> None:
    """A reader's callback body: the value's latency from its writer's clock to now."""
    now = time.monotonic()
    if isinstance(data, dict) and "run" in data and int(data["run"]) >= 0:
        _arrivals.setdefault(int(data["run"]), []).append(
            (int(data["seq"]), (now - float(data["t"])) * 1e6)
        )


def _reply(cmd: dict[str, Any], **fields: Any) -> None:
    with open(cmd["out"], "w") as f:
        json.dump(fields, f)


async def command(cmd: dict[str, Any]) -> None:
    """``open`` a client (``system``: "ji" or "nats"), or ``run`` ``n`` timed awaited calls."""
    if cmd["cmd"] == "open":
        await _open(cmd)
        _reply(cmd, ok=True)
        return
    if cmd["cmd"] == "write":  # NATS: publish, and wait for the server as set() waits for the hub
        nc = _state["nc"]
        for seq in range(int(cmd["n"])):
            value = {"run": cmd["run"], "seq": seq, "t": time.monotonic(), "payload": PAD}
            await nc.publish(cmd["name"], orjson.dumps(value))
            await nc.flush()
            await asyncio.sleep(float(cmd["interval"]))
        _reply(cmd, ok=True)
        return
    if cmd["cmd"] == "collect":
        _reply(cmd, **(await _collect(int(cmd["run"]), int(cmd["n"]))))
        return
    if _state["system"] == "ji":
        io, method = _state["io"], _state["method"]

        async def once() -> None:
            await io.methods.ainvoke(method, SMALL_ARGS)
    else:
        nc, body = _state["nc"], orjson.dumps(SMALL_ARGS)

        async def once() -> None:
            reply = await nc.request(METHOD, body, timeout=10)
            orjson.loads(reply.data)

    _reply(cmd, lat_us=await timed_calls(once, int(cmd["n"])))


def command_sync(cmd: dict[str, Any]) -> None:
    """``run`` ``n`` timed calls of the project's sync API on the kernel's main thread, or
    ``write`` ``n`` values with ``io.contexts.set`` (each waits for the hub's version)."""
    io, method = _state["io"], _state["method"]
    if cmd["cmd"] == "write":
        for seq in range(int(cmd["n"])):
            value = {"run": cmd["run"], "seq": seq, "t": time.monotonic(), "payload": PAD}
            io.contexts.set(cmd["name"], value)
            time.sleep(float(cmd["interval"]))
        _reply(cmd, ok=True)
        return

    def once() -> None:
        io.methods.invoke(method, SMALL_ARGS)

    _reply(cmd, lat_us=timed_calls_sync(once, int(cmd["n"])))


async def _collect(run: int, n: int, timeout: float = 60.0, idle: float = 2.0) -> dict[str, Any]:
    """A reader's latencies of one run, once the last value came (or nothing came for
    ``idle`` seconds): values a context folded into a later one count as missed."""
    deadline = time.monotonic() + timeout
    last = (-1, time.monotonic())
    while time.monotonic() < deadline:
        got = _arrivals.get(run, [])
        if got and got[-1][0] == n - 1:
            break
        if len(got) != last[0]:
            last = (len(got), time.monotonic())
        elif time.monotonic() - last[1] > idle:
            break
        await asyncio.sleep(0.01)
    got = _arrivals.pop(run, [])
    seqs = [seq for seq, _ in got]
    return {
        "lat_us": [lat for _, lat in got],
        "missed": n - len(set(seqs)),
        "out_of_order": sum(1 for a, b in itertools.pairwise(seqs) if b <= a),
    }


async def _open(cmd: dict[str, Any]) -> None:
    """Open this kernel's client; a ``reader`` also follows ``cmd["name"]`` (a context, or a
    NATS subject), a ``writer`` of a context creates it."""
    _state["system"] = cmd["system"]
    if cmd["system"] == "nats":
        nc = _state["nc"] = await nats_connect(cmd["url"])
        if cmd.get("reader"):

            async def on_msg(msg: Any) -> None:
                _arrived(orjson.loads(msg.data))

            await nc.subscribe(cmd["name"], cb=on_msg)
            await nc.flush()
        return
    import jupyter_interop as ji

    # connect() in a kernel: the client lives on the interop I/O thread, as in a notebook
    io = ji.connect(url=cmd["url"], token=cmd["token"], application=cmd["application"])
    await io.methods.ainvoke(cmd["method"], SMALL_ARGS, wait_timeout=15)  # waits for the handler
    _state["io"] = io
    _state["method"] = cmd["method"]
    if cmd.get("writer"):
        await io.contexts.aset(cmd["name"], {"run": -1, "seq": -1, "t": 0.0, "payload": PAD})
    if cmd.get("reader"):

        def on_change(data: Any) -> None:
            _arrived(data)

        await io.contexts.asubscribe(cmd["name"], on_change)
