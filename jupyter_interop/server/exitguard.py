"""The runtime file holds the interop token: it must not outlive the hub that wrote it.

A normal stop removes it (the apps call :meth:`RuntimeFileGuard.remove`). The guard covers the
other ways out of the process:

- an exception or ``sys.exit`` anywhere after the file was written (a Jupyter server whose
  port is taken exits from its start-up after the extension wrote the file): ``atexit``;
- SIGTERM or SIGHUP while the process still has the default handler for it (before Jupyter
  installs its own, or SIGHUP, which Jupyter leaves alone): the file is removed, then the
  signal's default action (termination) proceeds as it would have. A handler someone else
  installed (``nohup``'s SIG_IGN, Jupyter's SIGTERM handler, asyncio's) is left alone: those
  paths reach the app's own stop, which removes the file.

Only ``kill -9`` (and a power loss) can leave the file; readers check that its pid is alive.
"""

from __future__ import annotations

import atexit
import os
import signal
import threading
from types import FrameType
from typing import Protocol

__all__ = ["GUARDED_SIGNALS", "RuntimeFileGuard"]

#: signals whose default action ends the process without running Python's cleanup
GUARDED_SIGNALS = tuple(
    getattr(signal, name) for name in ("SIGTERM", "SIGHUP") if hasattr(signal, name)
)


class _Removable(Protocol):
    def remove(self) -> None: ...


class RuntimeFileGuard:
    """Removes one runtime file on every exit path of this process (see the module doc)."""

    def __init__(self, runtime: _Removable) -> None:
        self.runtime = runtime
        self._installed: dict[int, object] = {}
        self._armed = False

    def arm(self) -> RuntimeFileGuard:
        """Register the exit hooks; call before the file is written. Returns self."""
        if self._armed:
            return self
        self._armed = True
        atexit.register(self.remove)
        if threading.current_thread() is threading.main_thread():  # signals: main thread only
            for signum in GUARDED_SIGNALS:
                if signal.getsignal(signum) == signal.SIG_DFL:
                    signal.signal(signum, self._on_signal)
                    self._installed[signum] = self._on_signal
        return self

    def remove(self) -> None:
        """Remove the file now and drop the hooks; safe to call again."""
        self.runtime.remove()
        if not self._armed:
            return
        self._armed = False
        atexit.unregister(self.remove)
        if threading.current_thread() is threading.main_thread():
            for signum in list(self._installed):
                if signal.getsignal(signum) == self._on_signal:  # nobody replaced it since
                    signal.signal(signum, signal.SIG_DFL)
        self._installed.clear()

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        """Remove the file, then let the signal do what it would have done (terminate)."""
        try:
            self.runtime.remove()
        finally:
            signal.signal(signum, signal.SIG_DFL)
            os.kill(os.getpid(), signum)
