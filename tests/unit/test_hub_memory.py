"""The heap trimmer: once after a burst, postponed while traffic goes on.

The trimmer's timer runs on the asyncio loop, so the loop's clock is the one to control: these
tests run it on a loop whose ``time()`` only moves when the test advances it, in 10 ms steps,
each followed by one pass of the loop (timers that became due run then). Nothing depends on
how fast the machine is.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import platform
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from jupyter_interop.protocol import malloc
from jupyter_interop.server import memory

STEP_MS = 10


class ManualClockLoop(asyncio.SelectorEventLoop):
    """An event loop whose clock is moved by the test, never by the wall clock."""

    def __init__(self) -> None:
        super().__init__()
        self.now_ms = 0

    def time(self) -> float:
        return self.now_ms / 1000

    def call(self, fn: Callable[..., Any], *args: Any) -> Any:
        """Run ``fn`` inside the loop (the trimmer arms its timer on the running loop)."""

        async def inside() -> Any:
            return fn(*args)

        return self.run_until_complete(inside())

    def advance(self, ms: int) -> None:
        """Move the clock forward ``ms`` milliseconds, running what falls due on the way."""
        assert ms % STEP_MS == 0
        for _ in range(ms // STEP_MS):
            self.now_ms += STEP_MS
            self.run_until_complete(asyncio.sleep(0))


@pytest.fixture
def loop() -> Iterator[ManualClockLoop]:
    manual = ManualClockLoop()
    yield manual
    manual.close()


@pytest.fixture
def trims(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The loop times at which the trimmer called ``malloc_trim`` (glibc or not)."""
    calls: list[float] = []
    monkeypatch.setattr(memory, "HAS_MALLOC_TRIM", True)
    monkeypatch.setattr(
        memory, "malloc_trim", lambda: calls.append(asyncio.get_running_loop().time()) or True
    )
    return calls


def test_below_the_threshold_nothing_is_trimmed(loop: ManualClockLoop, trims: list[float]) -> None:
    trimmer = memory.HeapTrimmer(threshold=1000, delay=0.05)
    loop.call(trimmer.note, 999)
    loop.advance(1000)
    assert trims == [] and trimmer.trims == 0


def test_trims_once_when_the_burst_is_over(loop: ManualClockLoop, trims: list[float]) -> None:
    trimmer = memory.HeapTrimmer(threshold=1000, delay=0.05)
    loop.call(trimmer.note, 600)
    loop.advance(100)
    assert trims == []  # below the threshold: nothing to give back
    loop.call(trimmer.note, 600)  # 1200 bytes: the timer is armed at 0.10 s, due at 0.15 s
    for _ in range(4):  # traffic every 30 ms (more than a quarter of the threshold per delay)
        loop.advance(30)
        loop.call(trimmer.note, 500)
    assert trims == []  # postponed: at 0.15, 0.20 and 0.25 s it was still busy
    # the last traffic was at 0.22 s: the timer re-armed at 0.25 s finds it quiet at 0.30 s
    loop.advance(70)
    assert trims == []
    loop.advance(10)
    assert trims == [pytest.approx(0.30)] and trimmer.trims == 1
    loop.advance(1000)
    assert trimmer.trims == 1  # once per burst
    loop.call(trimmer.note, 2000)
    trimmer.cancel()
    loop.advance(1000)
    assert trimmer.trims == 1 and len(trims) == 1


def test_light_traffic_does_not_postpone_the_trim(
    loop: ManualClockLoop, trims: list[float]
) -> None:
    trimmer = memory.HeapTrimmer(threshold=1000, delay=0.05)
    loop.call(trimmer.note, 1000)  # armed at 0 s
    loop.advance(20)
    loop.call(trimmer.note, 249)  # under a quarter of the threshold within the delay
    loop.advance(30)
    assert trims == [pytest.approx(0.05)]


def _is_glibc() -> bool:
    return platform.system() == "Linux" and platform.libc_ver()[0] == "glibc"


class _MallInfo2(ctypes.Structure):
    _fields_ = [
        (name, ctypes.c_size_t)
        for name in (
            "arena",
            "ordblks",
            "smblks",
            "hblks",
            "hblkhd",
            "usmblks",
            "fsmblks",
            "uordblks",
            "fordblks",
            "keepcost",
        )
    ]


def test_allocator_controls_act_on_glibc_and_say_so() -> None:
    expected = _is_glibc()
    assert malloc.tune_for_large_frames() is expected
    assert malloc.tune_for_large_frames() is expected  # idempotent
    assert malloc.malloc_trim() is expected
    if expected:
        # tuned: a block below the raised mmap threshold comes from the heap, not its own map
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.mallinfo2.restype = _MallInfo2
        mapped_before = libc.mallinfo2().hblks
        block = bytearray(8 * 1024 * 1024)  # above glibc's default threshold
        mapped_during = libc.mallinfo2().hblks
        del block
        assert mapped_during == mapped_before
