"""Profile the hub (or one client process) under one benchmark workload with py-spy.

``python -m benchmarks.profile_hub WORKLOAD [--process P] [--seconds S] [--top N] [--out F]``

WORKLOAD is one of ``invoke``, ``fanout1``, ``fanout10``, ``context``, ``connect``, ``storm``
(1000 clients joining as in the ``connect`` scenario, then leaving) (raw GW3 clients) or
``ji-invoke``, ``ji-invoke-sync``, ``ji-fanout1``, ``ji-df`` (25 MiB, shared memory),
``ji-df-socket`` (100 MiB over the socket) (the project's client); ``--process`` picks the
sampled process: ``hub`` (default) or a worker of the workload (``caller``/``handler``,
``pub``/``sub``, ``writer``/``reader``). A fresh
standalone hub is started, ``py-spy record`` samples it (all threads, including idle time in
``select``/``epoll`` so that the share of the loop waiting is visible) while the workload runs,
and the collapsed stacks are summarised: self time and inclusive time per function, as a
percentage of the samples. The raw collapsed stacks are kept (``--out``) for flame graphs.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .runner import Run

WORKLOADS = (
    "invoke",
    "fanout1",
    "fanout10",
    "context",
    "connect",
    "storm",
    "ji-invoke",
    "ji-invoke-sync",
    "ji-fanout1",
    "ji-df",
    "ji-df-socket",
)
TARGETS = ("hub", "caller", "handler", "pub", "sub", "writer", "reader")


async def drive(
    r: Run, workload: str, hub: Any, seconds: float, target: str, attach: Callable[[int], None]
) -> str:
    """Start the workload's workers, start sampling ``target`` (``hub`` or a worker of the
    workload), run it for about ``seconds``, return a description."""
    url, token = hub.url, hub.token
    deadline = time.monotonic() + seconds
    if target == "hub":
        attach(hub.pid)
    if workload in ("ji-invoke", "ji-invoke-sync"):
        api = "sync" if workload.endswith("sync") else "async"
        handler = await r.worker("ji-handler", url=hub.url_with_token, token=token)
        caller = await r.worker("ji-caller", url=hub.url_with_token, token=token, api=api)
        if target != "hub":
            attach({"caller": caller, "handler": handler}[target].pid)
        deadline = time.monotonic() + seconds
        calls = 0
        while time.monotonic() < deadline:
            await caller.ask(cmd="run", n=500)
            calls += 500
        await r.stop(caller, handler)
        return f"{calls} sequential invokes through jupyter_interop ({api} API), {target}"
    if workload == "ji-fanout1":
        pub = await r.worker("ji-publisher", url=hub.url_with_token, token=token)
        sub = await r.worker("ji-sub", url=hub.url_with_token, token=token)
        if target != "hub":
            attach({"pub": pub, "sub": sub}[target].pid)
        deadline = time.monotonic() + seconds
        run_id = sent = 0
        while time.monotonic() < deadline:
            run_id += 1
            await sub.ask(cmd="expect", run=run_id, n=10000)
            await pub.ask(cmd="publish", run=run_id, n=10000, size=100)
            await sub.ask(cmd="result")
            sent += 10000
        await r.stop(pub, sub)
        return f"{sent} stream messages through jupyter_interop, {target}"
    if workload in ("ji-df", "ji-df-socket"):
        # ji-df-socket: the large scenario's 100 MiB over the socket (shared_memory=False)
        socket_only = workload == "ji-df-socket"
        rows = 1_638_400 if socket_only else 1_638_400 // 4  # 100 or 25 MiB
        common = {"url": hub.url_with_token, "token": token}
        if socket_only:
            common["shared_memory"] = False
        a = await r.worker("ji-df", side="writer", **common)
        b = await r.worker("ji-df", side="reader", **common)
        if target != "hub":
            attach({"writer": a, "reader": b}[target].pid)
        await b.ask(cmd="expect", rows=rows)
        await a.ask(cmd="write", rows=rows, timeout=600)
        await b.ask(cmd="read", timeout=600)
        await r.stop(a, b)
        return f"a {rows * 64 // 2**20} MiB DataFrame through a context, {target}"
    if workload == "invoke":
        handler = await r.worker("gw3-handler", url=url, token=token)
        caller = await r.worker("gw3-caller", url=url, token=token)
        calls = 0
        yield_start = time.monotonic()
        while time.monotonic() < deadline:
            await caller.ask(cmd="run", n=1000)
            calls += 1000
        await r.stop(caller, handler)
        rate = calls / (time.monotonic() - yield_start)
        return f"{calls} sequential invokes ({rate:.0f}/s)"
    if workload.startswith("fanout"):
        subs_n = int(workload[len("fanout") :])
        pub = await r.worker("gw3-handler", url=url, token=token)
        subs = await r.workers("gw3-sub", [{"url": url, "token": token}] * subs_n)
        run_id = sent = 0
        while time.monotonic() < deadline:
            run_id += 1
            n = 20000 // subs_n
            await asyncio.gather(*(w.ask(cmd="expect", run=run_id, n=n) for w in subs))
            await pub.ask(cmd="publish", run=run_id, n=n, size=100)
            await asyncio.gather(*(w.ask(cmd="result") for w in subs))
            sent += n
        await r.stop(pub, *subs)
        return f"{sent} stream messages of 100 bytes to {subs_n} subscriber(s)"
    if workload == "context":
        writer = await r.worker("gw3-ctx-writer", url=url, token=token, names=["bench.ctx"])
        context_id = writer.info["ids"]["bench.ctx"]
        subs = await r.workers(
            "gw3-ctx-subs", [{"url": url, "token": token, "k": 10, "context_id": context_id}] * 5
        )
        seq = 0
        while time.monotonic() < deadline:
            await writer.ask(cmd="update", name="bench.ctx", seq=seq)
            await asyncio.gather(*(w.ask(cmd="wait", seq=seq) for w in subs))
            seq += 1
        await r.stop(writer, *subs)
        return f"{seq} context updates to 50 subscribers"
    if workload == "connect":
        writer = await r.worker(
            "gw3-ctx-writer", url=url, token=token, names=[f"c{i}" for i in range(5)]
        )
        holders = await connect_holders(r, hub, 100, list(writer.info["ids"].values()))
        await r.stop(writer, *holders)
        return "400 clients connecting (hello, join, register 5 methods, 5 subscriptions)"
    if workload == "storm":  # the shape of the connect scenario (benchmarks/scenarios/connect.py)
        await r.stop(*await connect_holders(r, hub, 250, []))
        return "1000 clients connecting (hello, join, register 5 methods), then leaving"
    raise ValueError(workload)


async def connect_holders(r: Run, hub: Any, k: int, context_ids: list[str]) -> list[Any]:
    """4 processes of ``k`` raw GW3 clients each, connected (see ``gw3-holders``)."""
    return list(
        await asyncio.gather(
            *(
                r.worker(
                    "gw3-holders",
                    timeout=900,
                    url=hub.url,
                    token=hub.token,
                    k=k,
                    tag=str(i),
                    context_ids=context_ids,
                )
                for i in range(4)
            )
        )
    )


def summarize(collapsed: Path, top: int) -> str:
    self_count: collections.Counter[str] = collections.Counter()
    incl_count: collections.Counter[str] = collections.Counter()
    total = idle = 0
    for line in collapsed.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack:
            continue
        count = int(count_text)
        frames = [f for f in stack.split(";") if f and not f.startswith("process ")]
        frames = [f for f in frames if not f.startswith("thread ")]
        if not frames:
            continue
        if frames[-1].startswith(("EpollSelector.select", "PollSelector.select")):
            idle += count  # the loop waiting for I/O: not hub work
            continue
        total += count
        self_count[frames[-1]] += count
        for frame in set(frames):
            incl_count[frame] += count
    share = 100 * idle / max(1, idle + total)
    lines = [
        f"{idle + total} samples, {share:.1f}% idle in select; percentages below are of the "
        f"{total} busy samples",
        "",
        "self %  function (file:line)",
    ]
    for frame, count in self_count.most_common(top):
        lines.append(f"{100 * count / total:5.1f}  {frame}")
    lines += ["", "incl %  function (file:line)"]
    for frame, count in incl_count.most_common(top):
        lines.append(f"{100 * count / total:5.1f}  {frame}")
    return "\n".join(lines)


async def main_async(args: argparse.Namespace) -> None:
    if shutil.which("py-spy") is None:
        sys.exit("py-spy is not installed: pip install -e '.[bench]'")
    r = Run(quick=False, repeats=3)
    try:
        hub = r.hub()
        raw = args.out or Path(r.group.tmp) / f"{args.workload}.collapsed"
        spies: list[subprocess.Popen[bytes]] = []

        def attach(pid: int) -> None:
            spies.append(
                subprocess.Popen(
                    [
                        "py-spy",
                        "record",
                        "--pid",
                        str(pid),
                        "--format",
                        "raw",
                        "--rate",
                        str(args.rate),
                        "--idle",
                        "--output",
                        str(raw),
                        "--duration",
                        str(int(args.seconds)),
                    ],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.PIPE,
                )
            )
            time.sleep(0.5)  # py-spy attaches

        what = await drive(r, args.workload, hub, args.seconds, args.process, attach)
        for spy in spies:
            spy.wait(timeout=120)
        hub.stop()
        print(f"profile of the {args.process}: {what}\n")
        print(summarize(Path(raw), args.top))
        if args.out:
            print(f"\ncollapsed stacks: {args.out}")
    finally:
        r.close()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.profile_hub", description=__doc__)
    parser.add_argument("workload", choices=WORKLOADS)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--process", choices=TARGETS, default="hub", help="which process to sample")
    parser.add_argument("--rate", type=int, default=250, help="samples per second")
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--out", type=Path, default=None, help="keep the collapsed stacks")
    asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    main()
