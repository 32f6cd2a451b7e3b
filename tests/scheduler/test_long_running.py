"""What keeps a long-running daemon healthy: maintenance by snapshot count (an accelerated
clock never reaches the weekly cron), rounds that wait for the simulator's clock, and
handing freed memory back to the OS. Real store, real HTTP."""

from __future__ import annotations

import asyncio
import ctypes
import os
import sys
import time
from pathlib import Path
from typing import Any

import psutil
import pytest
from aiohttp import web

from crawler.stats import CrawlStats
from scheduler.daemon import Daemon
from scheduler.memory import MemoryFigures, _malloc_trim, release_unused_memory
from storage import Store
from tests.scheduler.scripted import Result, ScriptedCrawl
from tests.scheduler.server import serving
from tests.scheduler.test_daemon import SOURCES, _plan


def _topk_files(store: Store) -> int:
    return next(t.files for t in store.table_stats() if t.table == "derived/topk")


def _maintenance_runs(daemon: Daemon) -> float:
    return float(daemon.metrics.jobs.labels("maintenance", "success")._value.get())


@pytest.mark.parametrize("every", [0, 2])
def test_maintenance_runs_every_n_snapshots_between_rounds(tmp_path: Path, every: int) -> None:
    store = Store.open(str(tmp_path / "store"))
    inner = ScriptedCrawl(batches=2, delay=0.01)
    overlaps: list[str] = []

    async def crawl(store: Any, source: str, settings: Any, **kw: Any) -> Result:
        if daemon._maintaining:
            overlaps.append(source)
        out = await inner(store, source, settings, **kw)
        if daemon._maintaining:
            overlaps.append(source)
        return out

    plan = _plan(max_rounds=4, maintain_every_snapshots=every)
    daemon = Daemon(store, plan, crawl=crawl, stats=CrawlStats())
    assert asyncio.run(daemon.run()) == 0
    # 8 complete snapshots commit their top-k members, one file each (the catalog
    # compacts itself); maintenance after rounds 1, 2 and 3 (two snapshots each), none
    # after the last
    if every:
        assert _maintenance_runs(daemon) == 3
        assert _topk_files(store) < 8
    else:
        assert _maintenance_runs(daemon) == 0
        assert _topk_files(store) == 8
    assert overlaps == []  # in lockstep it runs between rounds, never next to a crawl
    assert sorted(store.snapshots("hub:model")["snapshot_id"].to_list()) == [1, 2, 3, 4]


def test_maintenance_by_count_without_lockstep(tmp_path: Path) -> None:
    store = Store.open(str(tmp_path / "store"))
    crawl = ScriptedCrawl(batches=1, delay=0.05)
    daemon = Daemon(store, _plan(maintain_every_snapshots=3), crawl=crawl, stats=CrawlStats())

    async def main() -> int:
        task = asyncio.create_task(daemon.run())
        while _maintenance_runs(daemon) < 1 and not task.done():
            await asyncio.sleep(0.1)
        daemon.request_stop("test")
        return await task

    assert asyncio.run(main()) == 0
    deadline = time.monotonic() + 30
    while daemon._maintaining and time.monotonic() < deadline:
        time.sleep(0.1)  # a run still in its thread when the daemon stopped
    assert _maintenance_runs(daemon) >= 1
    complete = sum(len(store.snapshots(s)) for s in SOURCES)
    assert complete >= 3 and _topk_files(store) < complete


def test_a_round_starts_only_after_the_simulator_clock_advanced(tmp_path: Path) -> None:
    """Crawls fire every 0.2 s while the clock takes 1 s to advance: each crawl of a source
    must still see a new simulated day (none crawls the previous day twice)."""
    state = {"day": 0}

    async def advance(request: web.Request) -> web.Response:
        await asyncio.sleep(1.0)
        state["day"] += int(request.query["days"])
        return web.json_response(state)

    app = web.Application()
    app.router.add_post("/_sim/advance", advance)
    seen: dict[str, list[int]] = {s: [] for s in SOURCES}
    inner = ScriptedCrawl(batches=1, delay=0.01)

    async def crawl(store: Any, source: str, settings: Any, **kw: Any) -> Result:
        seen[source].append(state["day"])
        return await inner(store, source, settings, **kw)

    store = Store.open(str(tmp_path / "store"))
    with serving(app) as url:
        plan = _plan(sim_endpoint=url, sim_advance_days=1, max_rounds=3)
        daemon = Daemon(store, plan, crawl=crawl, stats=CrawlStats())
        assert asyncio.run(daemon.run()) == 0
    assert seen == {s: [0, 1, 2] for s in SOURCES}


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc malloc_trim")
def test_released_memory_goes_back_to_the_os() -> None:
    """Freed blocks between live ones stay in glibc's heap (free() only trims its top);
    release_unused_memory hands their pages back."""
    assert _malloc_trim() is not None
    libc = ctypes.CDLL(None)
    libc.malloc.restype = ctypes.c_void_p
    libc.malloc.argtypes = [ctypes.c_size_t]
    libc.free.argtypes = [ctypes.c_void_p]
    proc = psutil.Process(os.getpid())
    base = proc.memory_info().rss
    # 200 MiB in 1 KiB blocks (below the mmap threshold: they live in the heap)
    blocks = [libc.malloc(1024) for _ in range(200 * 1024)]
    for p in blocks:
        ctypes.memset(p, 1, 1024)  # touch, so the pages are resident
    peak = proc.memory_info().rss
    keep = blocks[::32]  # one live block every 32 KiB pins the heap's top and middle
    for i, p in enumerate(blocks):
        if i % 32:
            libc.free(p)
    held = proc.memory_info().rss
    released = release_unused_memory()
    after = proc.memory_info().rss
    assert peak - base > 150 * 2**20
    assert held - base > 150 * 2**20, "free() alone gave the pages back: nothing to show"
    assert released > 100 * 2**20, (base, peak, held, after)
    figures = MemoryFigures.read()
    assert figures.rss_bytes > 0 and figures.arrow_bytes >= 0
    assert "rss" in str(figures)
    for p in keep:
        libc.free(p)
