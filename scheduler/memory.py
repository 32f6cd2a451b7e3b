"""Memory of a long-lived daemon: handing freed memory back to the OS, and what it holds.

A daemon that crawls for months must keep a flat resident size. Two things here:

* `release_unused_memory()` runs after each crawl: Arrow's pool (mimalloc in the pyarrow
  wheels) and glibc malloc (used by delta-rs and the interpreter) keep freed pages for
  reuse; asking both to give them back keeps RSS at what is live, not at the high-water
  mark of the biggest crawl so far. Polars' own allocator returns pages by itself.
* `MemoryFigures.read()`: RSS, Arrow's live bytes, and (only when tracemalloc is on, e.g.
  `PYTHONTRACEMALLOC=1` in the soak) the Python heap, so the soak can tell Python objects
  from native memory. `TraceDiff` logs which source lines grew the Python heap since a
  baseline (the soak's evidence for or against a Python-side leak).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
import tracemalloc
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import psutil
import pyarrow as pa

log = logging.getLogger("hubtide.daemon")

MIB = 2**20


@lru_cache(maxsize=1)
def _malloc_trim() -> Any:
    """glibc's `malloc_trim`, or None (musl, macOS: nothing to call)."""
    name = ctypes.util.find_library("c")
    if not name:
        return None
    try:
        fn = ctypes.CDLL(name).malloc_trim
    except (OSError, AttributeError):
        return None
    fn.argtypes = [ctypes.c_size_t]
    fn.restype = ctypes.c_int
    return fn


def release_unused_memory() -> int:
    """Return freed-but-kept pages to the OS; the bytes of RSS that went away (>= 0)."""
    proc = psutil.Process(os.getpid())
    before = proc.memory_info().rss
    pa.default_memory_pool().release_unused()
    trim = _malloc_trim()
    if trim is not None:
        trim(0)
    return max(0, before - proc.memory_info().rss)


@dataclass(frozen=True)
class MemoryFigures:
    rss_bytes: int
    arrow_bytes: int  # live in Arrow's default pool
    python_bytes: int | None  # traced Python heap; None when tracemalloc is off

    @classmethod
    def read(cls) -> MemoryFigures:
        traced = tracemalloc.get_traced_memory()[0] if tracemalloc.is_tracing() else None
        return cls(
            psutil.Process(os.getpid()).memory_info().rss, pa.total_allocated_bytes(), traced
        )

    def __str__(self) -> str:
        py = "" if self.python_bytes is None else f", python heap {self.python_bytes / MIB:.1f}"
        return f"rss {self.rss_bytes / MIB:.1f} MiB, arrow {self.arrow_bytes / MIB:.1f}{py} MiB"


class TraceDiff:
    """Python heap growth by source line since a baseline (only when tracemalloc is on)."""

    def __init__(self) -> None:
        self._base: tracemalloc.Snapshot | None = None

    def log(self, label: str, top: int = 8) -> None:
        if not tracemalloc.is_tracing():
            return
        snap = tracemalloc.take_snapshot().filter_traces(
            [tracemalloc.Filter(False, tracemalloc.__file__)]
        )
        if self._base is None:
            self._base = snap  # the first call (after round 1: imports and caches are in)
            return
        stats = snap.compare_to(self._base, "lineno")
        grown = sum(s.size_diff for s in stats)
        log.info("tracemalloc %s: python heap %+.2f MiB since baseline", label, grown / MIB)
        for s in stats[:top]:
            log.info(
                "tracemalloc   %+9.1f KiB %+7d blocks  %s",
                s.size_diff / 1024,
                s.count_diff,
                s.traceback,
            )
