"""The daemon in-process with the real crawler against the real simulator: two lockstep
rounds (one simulated day apart), the store equal to the simulator's truth, metrics from
the crawl, and the API serving what was crawled."""

from __future__ import annotations

import asyncio
import urllib.request
from pathlib import Path
from typing import Any

import polars as pl

from crawler import CrawlSettings
from crawler.stats import CrawlStats
from scheduler.daemon import Daemon, stop_twisted_threads
from scheduler.plan import DaemonPlan, SourcePlan
from simulator.testing import running_simulator
from storage import Store
from tests.scheduler.e2e import get_json, truth_ids

SOURCES = ("hub:model", "npm")


def _settings(sim: str) -> CrawlSettings:
    return CrawlSettings(
        hub_endpoint=sim,
        ecosystems_endpoint=f"{sim}/ecosystems",
        npm_downloads_endpoint=f"{sim}/npm-downloads",
        pypi_stats_endpoint=f"{sim}/pypistats",
        details=False,
        batch_rows=200,
        backoff_base_seconds=0.01,
        backoff_max_seconds=0.05,
    )


def test_two_rounds_against_the_simulator_match_its_truth(tmp_path: Path) -> None:
    store = Store.open(str(tmp_path / "store"))
    stats = CrawlStats()
    seen: dict[str, Any] = {}
    with running_simulator(seed=2, models=300, datasets=10, spaces=10, npm=150, pypi=10) as sim:
        plan = DaemonPlan(
            sources=tuple(SourcePlan(s, interval_seconds=1) for s in SOURCES),
            crawl_settings=_settings(sim),
            listen="127.0.0.1:0",
            maintenance_cron="",
            analytics_after_snapshot=False,
            sim_endpoint=sim,
            sim_advance_days=1,
            max_rounds=2,
        )
        daemon = Daemon(store, plan, stats=stats)

        async def main() -> int:
            task = asyncio.create_task(daemon.run())
            while daemon.rounds_done < 1 and not task.done():
                await asyncio.sleep(0.05)
            url = f"http://127.0.0.1:{daemon.site_port}"
            seen["top"] = await asyncio.to_thread(get_json, f"{url}/api/top/hub:model?k=5")
            seen["metrics"] = await asyncio.to_thread(_text, f"{url}/metrics")
            return await asyncio.wait_for(task, 120)

        try:
            assert asyncio.run(main()) == 0
        finally:
            stop_twisted_threads()  # else pytest waits for Scrapy's pool threads at exit
        truth = {s: truth_ids(sim, s) for s in SOURCES}
        sim_port = [sim.rsplit(":", 1)[1]]
    for source in SOURCES:
        assert store.snapshots(source)["snapshot_id"].to_list() == [1, 2]
        state = store.as_of(source).collect()
        assert state["entity_id"].n_unique() == state.height
        assert set(state["entity_id"]) == truth[source]
    assert len(seen["top"]["rows"]) == 5
    text = seen["metrics"]
    port = sim_port[0]
    assert (
        f'hubtide_crawl_requests_total{{host="127.0.0.1:{port}",source="hub:model",status="200"}}'
        in text
    )
    assert 'hubtide_crawls_total{outcome="complete",source="npm"} 1.0' in text


def _text(url: str) -> str:
    with urllib.request.urlopen(url, timeout=10) as r:
        return r.read().decode()


def test_a_crawled_snapshot_gets_its_measures_stored_and_metrics_say_so(tmp_path: Path) -> None:
    from analytics.stored import TABLE

    store = Store.open(str(tmp_path / "store"))
    seen: dict[str, Any] = {}
    with running_simulator(seed=3, models=120, datasets=10, spaces=10, npm=10, pypi=10) as sim:
        plan = DaemonPlan(
            sources=(SourcePlan("hub:model", interval_seconds=3600),),
            crawl_settings=_settings(sim),
            listen="127.0.0.1:0",
            maintenance_cron="",
            analytics_after_snapshot=True,
            report_dir=str(tmp_path / "report"),
        )
        daemon = Daemon(store, plan, stats=CrawlStats())
        registry = daemon.metrics.registry

        async def main() -> None:
            task = asyncio.create_task(daemon.run())
            deadline = asyncio.get_running_loop().time() + 120
            while (registry.get_sample_value("hubtide_analyze_seconds_count") or 0) < 1:
                assert asyncio.get_running_loop().time() < deadline, "no analyze in 120 s"
                await asyncio.sleep(0.1)
            url = f"http://127.0.0.1:{daemon.site_port}/metrics"
            seen["metrics"] = await asyncio.to_thread(_text, url)
            daemon.request_stop()
            await task

        try:
            asyncio.run(main())
        finally:
            stop_twisted_threads()
    stored = store.derived_index(TABLE, source="hub:model", snapshot_id=1)
    assert {"growth", "concentration", "licenses", "turnover"} <= set(stored["name"])
    assert set(stored.filter(pl.col("name") == "turnover")["status"]) == {"empty"}  # one snapshot
    text = seen["metrics"]
    assert "hubtide_analyze_seconds_count 1.0" in text
    assert "# TYPE hubtide_analyze_failures_total counter" in text
    assert 'hubtide_scheduler_jobs_total{job="analyze",outcome="success"} 1.0' in text
