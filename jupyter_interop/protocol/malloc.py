"""glibc allocator controls for processes that move large binary frames.

Two things cost more than the copies themselves when megabyte-sized frames go through a
Python process: glibc serves each allocation above its mmap threshold with a fresh ``mmap``
(every page faulted in and zeroed by the kernel, then unmapped on free), and it gives the top
of the heap back as soon as more than its trim threshold is free, so the next large frame
faults its pages in again. A 1 MiB round trip through the hub spent about a third of its time
there. :func:`tune_for_large_frames` (called the first time a process meets a large binary
frame, never before) raises both thresholds so that frame-sized blocks are reused from the
heap; memory is returned by :func:`malloc_trim` instead, which the hub calls once traffic
calms down after a burst (``server/memory.py``). Where the C library is not glibc, both do
nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
from typing import Any

__all__ = ["HAS_MALLOC_TRIM", "LARGE_FRAME", "malloc_trim", "tune_for_large_frames"]

#: a binary frame at least this long tunes the allocator (see the module docstring)
LARGE_FRAME = 256 * 1024
#: allocations up to this size come from the heap, where freed blocks are reused
MMAP_THRESHOLD = 32 * 1024 * 1024
#: free memory at the top of the heap kept for reuse (malloc_trim returns it)
TRIM_THRESHOLD = 64 * 1024 * 1024

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3


def _load() -> Any:
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.malloc_trim.argtypes = [ctypes.c_size_t]
        libc.mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    except (OSError, AttributeError):
        return None
    return libc


_LIBC = _load()
_tuned = False
#: whether this process's C library is glibc (``malloc_trim`` and ``mallopt`` work)
HAS_MALLOC_TRIM = _LIBC is not None


def malloc_trim() -> bool:
    """Return free heap pages to the system; False where that is not available."""
    if _LIBC is None:
        return False
    _LIBC.malloc_trim(0)
    return True


def tune_for_large_frames() -> bool:
    """Keep frame-sized blocks in the heap for reuse (once per process; False if not glibc)."""
    global _tuned
    if _tuned or _LIBC is None:
        return _tuned
    _tuned = True
    _LIBC.mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)
    _LIBC.mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD)
    return True
