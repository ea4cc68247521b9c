"""Give the heap back to the system after a burst of traffic.

A burst (a thousand peers joining agm: every join is announced to every other peer) makes
the hub encode and queue hundreds of megabytes of short-lived frames. Once they are written,
Python frees them, but glibc's allocator keeps the freed pages mapped, scattered between the
few objects that stay alive, so the process keeps its high-water RSS for good. When the
traffic calms down after such a burst, :class:`HeapTrimmer` calls glibc's ``malloc_trim(0)``,
which returns those free pages (a few milliseconds of work, at most once per burst). It does
nothing where the C library has no ``malloc_trim`` (musl, macOS, Windows).
"""

from __future__ import annotations

import asyncio

from ..protocol.malloc import HAS_MALLOC_TRIM, malloc_trim

__all__ = ["HeapTrimmer", "malloc_trim"]


class HeapTrimmer:
    """Trims the heap once the hub has been quiet for ``delay`` seconds after writing at
    least ``threshold`` bytes (traffic that keeps going postpones the trim)."""

    __slots__ = ("_busy", "_since", "_timer", "delay", "threshold", "trims")

    def __init__(self, threshold: int = 32 * 1024 * 1024, delay: float = 0.25) -> None:
        self.threshold = threshold
        self.delay = delay
        self.trims = 0
        self._since = 0  # bytes written since the last trim
        self._busy = 0  # bytes written since the timer was (re)armed
        self._timer: asyncio.TimerHandle | None = None

    def note(self, nbytes: int) -> None:
        """``nbytes`` were just written (or queued) by the transport."""
        self._since += nbytes
        self._busy += nbytes
        if self._timer is None and self._since >= self.threshold and HAS_MALLOC_TRIM:
            self._arm()

    def _arm(self) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        self._busy = 0
        self._timer = loop.call_later(self.delay, self._fire)

    def _fire(self) -> None:
        self._timer = None
        if self._busy >= self.threshold // 4:
            self._arm()  # still busy: the freed memory would be reused anyway
            return
        self._since = 0
        self.trims += 1
        malloc_trim()

    def cancel(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
