"""What the kernel rows run inside a real ipykernel (``benchmarks/kernels.py`` sends the cells).

A cell imports this module and awaits :func:`command` (or calls :func:`command_sync` for the
sync API, as a cell that calls ``io.methods.invoke`` does: on the kernel's main thread, its
event loop blocked meanwhile). Each command writes its reply as JSON to ``cmd["out"]``, which
the coordinator reads back; the timing loops are the workers' (``worker.timed_calls``).
"""

from __future__ import annotations

import json
from typing import Any

import orjson

from .worker import METHOD, SMALL_ARGS, nats_connect, timed_calls, timed_calls_sync

#: the client this kernel opened ("ji" or "nats") and what it calls
_state: dict[str, Any] = {}


def _reply(cmd: dict[str, Any], **fields: Any) -> None:
    with open(cmd["out"], "w") as f:
        json.dump(fields, f)


async def command(cmd: dict[str, Any]) -> None:
    """``open`` a client (``system``: "ji" or "nats"), or ``run`` ``n`` timed awaited calls."""
    if cmd["cmd"] == "open":
        await _open(cmd)
        _reply(cmd, ok=True)
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
    """``run`` ``n`` timed calls of the project's sync API on the kernel's main thread."""
    io, method = _state["io"], _state["method"]

    def once() -> None:
        io.methods.invoke(method, SMALL_ARGS)

    _reply(cmd, lat_us=timed_calls_sync(once, int(cmd["n"])))


async def _open(cmd: dict[str, Any]) -> None:
    _state["system"] = cmd["system"]
    if cmd["system"] == "nats":
        _state["nc"] = await nats_connect(cmd["url"])
        return
    import jupyter_interop as ji

    # connect() in a kernel: the client lives on the interop I/O thread, as in a notebook
    io = ji.connect(url=cmd["url"], token=cmd["token"], application="bench-kernel-caller")
    await io.methods.ainvoke(cmd["method"], SMALL_ARGS, wait_timeout=15)  # waits for the handler
    _state["io"] = io
    _state["method"] = cmd["method"]
