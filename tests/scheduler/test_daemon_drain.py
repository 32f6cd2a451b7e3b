"""The daemon drains the Hub sources' details backlogs between crawls: one crawl of each
source, then passes of `details_per_crawl` requests until every repo is detailed, the most
valuable first across sources, with no second crawl and no detail fetched twice (real
crawler, real simulator over HTTP, real store)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import polars as pl

from crawler.backlog import drain_source, pending
from crawler.budget import reset_budgets
from crawler.stats import CrawlStats
from scheduler.daemon import Daemon, stop_twisted_threads
from scheduler.plan import DaemonPlan, SourcePlan
from simulator.testing import running_simulator
from storage import Store
from tests.crawler.truth import settings_for, stored_commits, truth_commits

SOURCES = ("hub:model", "hub:dataset")


def _coverage(store: Store, source: str) -> float:
    cov = store.detail_coverage(source)
    if cov.is_empty():
        return 0.0
    newest = cov.filter(pl.col("snapshot_id") == cov["snapshot_id"].max())
    return float(newest.filter(pl.col("scope") == "all")["ratio"].min())  # type: ignore[arg-type]


def test_the_daemon_drains_every_backlog_between_crawls(tmp_path: Path) -> None:
    reset_budgets()
    store = Store.open(str(tmp_path / "store"))
    with running_simulator(seed=5, models=150, datasets=60, spaces=5, npm=5, pypi=5) as url:
        plan = DaemonPlan(
            sources=tuple(SourcePlan(s, interval_seconds=3600) for s in SOURCES),
            crawl_settings=settings_for(url, details_per_crawl=90, concurrency=4),
            listen="127.0.0.1:0",
            maintenance_cron="",
            analytics_after_snapshot=False,
            drain_details=True,
        )
        daemon = Daemon(store, plan, stats=CrawlStats())

        async def main() -> None:
            task = asyncio.create_task(daemon.run())
            deadline = asyncio.get_running_loop().time() + 150
            while not all(_coverage(store, s) == 1.0 for s in SOURCES):
                assert not task.done(), "the daemon stopped"
                assert asyncio.get_running_loop().time() < deadline, [
                    _coverage(store, s) for s in SOURCES
                ]
                await asyncio.sleep(0.2)
            daemon.request_stop()
            await asyncio.wait_for(task, 60)

        try:
            asyncio.run(main())
        finally:
            stop_twisted_threads()
        truth = truth_commits(url, "model")
    jobs = daemon.metrics.registry.get_sample_value(
        "hubtide_scheduler_jobs_total", {"job": "drain", "outcome": "success"}
    )
    # 150 models x ~3 requests over passes of 90: many passes, no second crawl
    assert jobs is not None and jobs >= 5, jobs
    for source in SOURCES:
        assert store.snapshots(source)["snapshot_id"].to_list() == [1], source
    backlog = pl.read_delta(str(Path(store.uri) / "ops" / "detail_backlog"))
    done = backlog.filter(pl.col("entry") == "done")
    assert done.height == done.unique(["source", "entity_id", "detail", "sha"]).height
    assert {c[:4] for c in stored_commits(store, "model")} == {c[:4] for c in truth}
    for source in SOURCES:
        assert pending(store, source, 1).height == 0


def test_drain_source_takes_the_coverage_scope_first_and_says_what_is_next(
    tmp_path: Path,
) -> None:
    """Repos of the snapshot's top-N scope come before any other, whatever their weight."""
    import crawler.backlog as backlog
    from crawler import crawl_source

    reset_budgets()
    store = Store.open(str(tmp_path / "store"))
    with running_simulator(seed=4, models=120, datasets=5, spaces=5, npm=5, pypi=5) as url:
        s = settings_for(url, details_per_crawl=0)
        res = asyncio.run(crawl_source(store, "hub:model", s, stats=CrawlStats()))
        n = res.items
        assert res.status == "complete" and res.details_pending == n > 20
        old = backlog.COVERAGE_TOP_N
        backlog.COVERAGE_TOP_N = 10  # a scope smaller than the world
        try:
            todo = pending(store, "hub:model", res.snapshot_id)
            assert todo["in_top"].head(10).all() and not todo["in_top"].tail(n - 10).any()
            state = store.as_of("hub:model", res.snapshot_id).collect()
            top10 = set(
                state.sort(["downloads", "entity_id"], descending=[True, False])
                .head(10)["entity_id"]
                .to_list()
            )
            assert set(todo["entity_id"].head(10).to_list()) == top10
            out = asyncio.run(
                drain_source(store, "hub:model", settings_for(url, details_per_crawl=30))
            )
        finally:
            backlog.COVERAGE_TOP_N = old
        assert out.repos >= 10 and out.pending == n - out.repos, out
        assert out.next_key is not None and out.next_key[0] is False  # the scope is done
        done = pl.read_delta(str(Path(store.uri) / "ops" / "detail_backlog")).filter(
            pl.col("entry") == "done"
        )
        first = done.filter(pl.col("batch") == done["batch"].min())
        assert set(first["entity_id"].to_list()) == top10
