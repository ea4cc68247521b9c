"""The heap trimmer: once after a burst, postponed while traffic goes on."""

from __future__ import annotations

import asyncio

import pytest

from jupyter_interop.hub import memory
from jupyter_interop.protocol import malloc


def test_trims_once_when_the_burst_is_over(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []
    monkeypatch.setattr(memory, "_LIBC", object())
    monkeypatch.setattr(memory, "malloc_trim", lambda: calls.append(1) or True)

    async def main() -> None:
        trimmer = memory.HeapTrimmer(threshold=1000, delay=0.05)
        trimmer.note(600)
        await asyncio.sleep(0.1)
        assert calls == []  # below the threshold: nothing to give back
        trimmer.note(600)
        for _ in range(4):  # traffic keeps going: postponed
            await asyncio.sleep(0.03)
            trimmer.note(500)
        assert calls == []
        await asyncio.sleep(0.15)
        assert calls == [1] and trimmer.trims == 1
        await asyncio.sleep(0.1)
        assert calls == [1]  # once per burst
        trimmer.note(2000)
        trimmer.cancel()
        await asyncio.sleep(0.1)
        assert calls == [1]

    asyncio.run(main())


def test_allocator_controls_are_safe_to_call() -> None:
    assert malloc.tune_for_large_frames() in (True, False)
    assert malloc.tune_for_large_frames() in (True, False)  # idempotent
    assert malloc.malloc_trim() in (True, False)
