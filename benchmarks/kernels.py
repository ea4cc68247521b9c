"""Real ipykernels for the rows that measure the notebook's own path.

A kernel is started with jupyter_client's ``AsyncKernelManager`` in the run's environment
(so it imports this checkout), and cells are sent to it as a notebook would send them; each
cell runs a command of ``benchmarks/in_kernel.py`` and the reply is read back from a file.
The kernel's process is tracked by the run's :class:`ProcessGroup` as well, so it is stopped
whatever happens.
"""

from __future__ import annotations

import itertools
import json
from typing import Any

from jupyter_client.manager import AsyncKernelManager

from .procs import ProcessGroup

__all__ = ["Kernel"]

_ids = itertools.count(1)


class Kernel:
    """One ipykernel and its client. Construct with :meth:`start`."""

    def __init__(
        self, group: ProcessGroup, manager: AsyncKernelManager, client: Any, number: int
    ) -> None:
        self.group = group
        self.manager = manager
        self.client = client
        #: names this kernel's files in the run's scratch directory
        self.id = number
        self._seq = itertools.count(1)
        #: what the cells printed (stream text and tracebacks), for error messages
        self.output: list[str] = []

    @classmethod
    async def start(cls, group: ProcessGroup, timeout: float = 120.0) -> Kernel:
        n = next(_ids)
        manager = AsyncKernelManager(
            kernel_name="python3", connection_file=str(group.tmp / f"kernel-{n}.json")
        )
        log = open(group.tmp / f"kernel-{n}.log", "ab")  # noqa: SIM115 - closed with the process
        await manager.start_kernel(env=group.env, cwd=str(group.tmp), stdout=log, stderr=log)
        process = getattr(manager.provisioner, "process", None)
        if process is not None:
            group.track(process)
        client = manager.client()
        client.start_channels()
        try:
            await client.wait_for_ready(timeout=timeout)
        except Exception:
            client.stop_channels()
            await manager.shutdown_kernel(now=True)
            raise
        return cls(group, manager, client, n)

    def _on_output(self, msg: dict[str, Any]) -> None:
        content = msg.get("content", {})
        if msg.get("msg_type") == "stream":
            self.output.append(str(content.get("text", "")))
        elif msg.get("msg_type") == "error":
            self.output.append("\n".join(content.get("traceback", [])))

    async def command(self, timeout: float = 600.0, sync: bool = False, **cmd: Any) -> Any:
        """Run one command of ``in_kernel.py`` in a cell (``sync``: the sync entry point, no
        ``await``) and return its reply."""
        out = self.group.tmp / f"kernel-{self.id}-reply-{next(self._seq)}.json"
        cmd["out"] = str(out)
        call = f"_bench.command_sync({cmd!r})" if sync else f"await _bench.command({cmd!r})"
        code = f"import benchmarks.in_kernel as _bench\n{call}\n"
        reply = await self.client.execute_interactive(
            code, timeout=timeout, output_hook=self._on_output
        )
        content = reply.get("content", {})
        if content.get("status") != "ok":
            trace = "\n".join(content.get("traceback", [])) or "".join(self.output[-20:])
            raise RuntimeError(f"kernel cell failed: {content.get('ename')}: {trace}")
        return json.loads(out.read_text())

    async def stop(self) -> None:
        self.client.stop_channels()
        await self.manager.shutdown_kernel(now=True)
