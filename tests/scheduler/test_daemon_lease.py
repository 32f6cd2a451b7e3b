"""Two daemons (or a daemon and another writer) on one store: the source's lease
(storage/lease.py) lets one write; the other skips its runs with a logged line, a
`lease_held` job metric and an /api/status failure, and crawls once the lease is free."""

from __future__ import annotations

import asyncio
import logging
import os
import time
from pathlib import Path
from typing import Any

import pytest

from crawler.stats import CrawlStats
from scheduler.daemon import Daemon
from scheduler.plan import DaemonPlan, SourcePlan
from storage import Store
from tests.scheduler.scripted import ScriptedCrawl


def _plan(**kw: Any) -> DaemonPlan:
    base: dict[str, Any] = {
        "sources": (SourcePlan("hub:model", interval_seconds=0.2),),
        "crawl_settings": None,
        "listen": "127.0.0.1:0",
        "analytics_after_snapshot": False,
        "maintenance_cron": "",
        "store_refresh_seconds": 0.5,
        "shutdown_grace_seconds": 5.0,
    }
    base.update(kw)
    return DaemonPlan(**base)


def _skipped(daemon: Daemon) -> float:
    return daemon.metrics.jobs.labels("crawl", "lease_held")._value.get()  # type: ignore[no-any-return]


def test_a_source_held_by_another_writer_is_skipped_until_released(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = Store.open(str(tmp_path / "store"))
    other = store.acquire_lease("hub:model", purpose="crawl", ttl_seconds=30)
    crawl = ScriptedCrawl(batches=2, delay=0.0)
    daemon = Daemon(store, _plan(), crawl=crawl, stats=CrawlStats())

    async def main() -> None:
        task = asyncio.create_task(daemon.run())
        deadline = time.monotonic() + 20
        while _skipped(daemon) < 2 and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        assert crawl.calls == []  # nothing written while the other holds it
        await asyncio.to_thread(other.release)
        while not crawl.calls and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        daemon.request_stop()
        await task

    with caplog.at_level(logging.WARNING, logger="hubtide.daemon"):
        asyncio.run(main())
    assert _skipped(daemon) >= 2 and crawl.calls
    line = f"hub:model: run skipped: hub:model is being written by crawl pid {os.getpid()}"
    assert any(r.getMessage().startswith(line) for r in caplog.records), caplog.text
    assert any("run skipped" in f.message for f in daemon.live.failures)
    state = store.lease_state("hub:model")
    assert state is not None and state.released and state.holder.purpose == "daemon"


def test_two_daemons_on_one_store_only_one_crawls(tmp_path: Path) -> None:
    store = Store.open(str(tmp_path / "store"))
    crawl_a, crawl_b = ScriptedCrawl(batches=2, delay=0.0), ScriptedCrawl(batches=2, delay=0.0)
    a = Daemon(store, _plan(), crawl=crawl_a, stats=CrawlStats())
    b = Daemon(Store.open(str(tmp_path / "store")), _plan(), crawl=crawl_b, stats=CrawlStats())

    async def main() -> None:
        ta = asyncio.create_task(a.run())
        while not a.ready:
            await asyncio.sleep(0.02)
        tb = asyncio.create_task(b.run())
        deadline = time.monotonic() + 20
        while (len(crawl_a.calls) < 3 or _skipped(b) < 3) and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        b.request_stop()
        a.request_stop()
        await asyncio.gather(ta, tb)

    asyncio.run(main())
    assert len(crawl_a.calls) >= 3 and crawl_b.calls == []  # one writer, the other skips
    assert _skipped(b) >= 3 and _skipped(a) == 0
    snaps = store.snapshots("hub:model")["snapshot_id"].to_list()
    assert len(crawl_a.calls) - 1 <= len(snaps) <= len(crawl_a.calls)  # the last may be stopped
