"""The daemon loop with real store, real HTTP and a real simulator clock; the network side
of a crawl is scripted (tests/scheduler/scripted.py) so timing is controlled."""

from __future__ import annotations

import asyncio
import json
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from analytics.stored import TABLE
from crawler.stats import CrawlStats
from scheduler.daemon import Daemon
from scheduler.plan import DaemonPlan, SourcePlan
from scheduler.status import collect_status, fetch_live
from simulator.testing import running_simulator
from storage import Store
from tests.scheduler.scripted import ScriptedCrawl

SOURCES = ("hub:model", "hub:dataset")


def _plan(**kw: Any) -> DaemonPlan:
    base: dict[str, Any] = {
        "sources": tuple(SourcePlan(s, interval_seconds=0.2) for s in SOURCES),
        "crawl_settings": None,
        "listen": "127.0.0.1:0",
        "analytics_after_snapshot": False,
        "maintenance_cron": "",
        "store_refresh_seconds": 0.5,
        "shutdown_grace_seconds": 5.0,
    }
    base.update(kw)
    return DaemonPlan(**base)


def _complete(store: Store, source: str) -> list[int]:
    return (
        sorted(store.snapshots(source)["snapshot_id"].to_list())
        if source in store.sources()
        else []
    )


def _fetch(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=5) as r:
        return json.loads(r.read())


def test_rounds_advance_the_simulator_and_max_rounds_exits_zero(tmp_path: Path) -> None:
    store = Store.open(str(tmp_path / "store"))
    crawl = ScriptedCrawl(batches=2, delay=0.02)
    with running_simulator(seed=1, models=20, datasets=10, spaces=10, npm=10, pypi=10) as sim:
        day0 = _fetch(f"{sim}/_sim/clock")
        plan = _plan(sim_endpoint=sim, sim_advance_days=2, max_rounds=3)
        daemon = Daemon(store, plan, crawl=crawl, stats=CrawlStats())
        t0 = time.monotonic()
        code = asyncio.run(daemon.run())
        took = time.monotonic() - t0
        day3 = _fetch(f"{sim}/_sim/clock")
    assert code == 0 and daemon.rounds_done == 3
    for source in SOURCES:
        assert _complete(store, source) == [1, 2, 3]  # exactly one crawl per round, lockstep
    assert day0 != day3
    assert took < 30
    text = json.dumps(day3)
    assert text  # the clock answers after the advances


def test_two_crawls_of_a_source_never_overlap_and_metrics_count_them(tmp_path: Path) -> None:
    store = Store.open(str(tmp_path / "store"))
    # each crawl takes ~0.6 s while the interval is 0.2 s: runs would pile up if allowed
    crawl = ScriptedCrawl(batches=3, delay=0.2)
    daemon = Daemon(store, _plan(), crawl=crawl, stats=CrawlStats())

    async def main() -> int:
        task = asyncio.create_task(daemon.run())
        await asyncio.sleep(2.5)
        # a loaded machine (CI beside other jobs) may need longer for the second crawl
        deadline = asyncio.get_running_loop().time() + 30
        while len(_complete(store, "hub:model")) < 2 and not task.done():
            assert asyncio.get_running_loop().time() < deadline, "no second crawl in 30 s"
            await asyncio.sleep(0.1)
        port = daemon.site_port
        body = await asyncio.to_thread(_text, f"http://127.0.0.1:{port}/metrics")
        ready = await asyncio.to_thread(_fetch, f"http://127.0.0.1:{port}/readyz")
        daemon.metrics_text = body  # type: ignore[attr-defined]
        daemon.ready_seen = ready  # type: ignore[attr-defined]
        daemon.request_stop("test")
        return await task

    assert asyncio.run(main()) == 0
    assert crawl.max_active == {s: 1 for s in SOURCES}
    assert len(_complete(store, "hub:model")) >= 2
    text = daemon.metrics_text  # type: ignore[attr-defined]
    assert 'hubtide_crawls_total{outcome="complete",source="hub:model"}' in text
    assert 'hubtide_crawl_items_total{source="hub:model"}' in text
    assert daemon.ready_seen["status"] == "ready"  # type: ignore[attr-defined]


def _text(url: str) -> str:
    with urllib.request.urlopen(url, timeout=5) as r:
        return r.read().decode()


def test_stop_commits_the_batch_then_restart_resumes(tmp_path: Path) -> None:
    store = Store.open(str(tmp_path / "store"))
    slow = ScriptedCrawl(batches=50, delay=0.1)
    plan = _plan(sources=(SourcePlan("hub:model", interval_seconds=3600),))
    daemon = Daemon(store, plan, crawl=slow, stats=CrawlStats())

    async def main() -> tuple[int, float, Any]:
        task = asyncio.create_task(daemon.run())
        await asyncio.sleep(1.0)
        live = await asyncio.to_thread(_fetch, f"http://127.0.0.1:{daemon.site_port}/api/status")
        # `hubtide status` merges the daemon's live view into the store's
        got, note = await asyncio.to_thread(fetch_live, f"127.0.0.1:{daemon.site_port}")
        report = await asyncio.to_thread(collect_status, store, list(plan.sources), live=got)
        reports.append((report, note))
        t0 = time.monotonic()
        daemon.request_stop("SIGTERM")
        code = await task
        return code, time.monotonic() - t0, live

    reports: list[Any] = []
    code, took, live = asyncio.run(main())
    report, note = reports[0]
    assert note.startswith("listening at")
    assert report.sources[0].running["items"] > 0 and report.sources[0].running["snapshot_id"] == 1
    assert code == 0 and took < 2.0  # a batch takes 0.1 s; far inside the 10 s budget
    assert [r["source"] for r in live["running"]] == ["hub:model"]
    assert live["running"][0]["items"] > 0
    writer = store.resume_snapshot("hub:model")
    assert writer is not None and writer.last_committed_seq >= 3
    done_before = writer.last_committed_seq

    fast = ScriptedCrawl(batches=50, delay=0.0)
    again = Daemon(store, _plan(sources=plan.sources, max_rounds=1), crawl=fast, stats=CrawlStats())
    assert asyncio.run(again.run()) == 0
    assert fast.calls == [("hub:model", True)]
    assert _complete(store, "hub:model") == [1]  # the same snapshot, finished
    rows = store.as_of("hub:model").collect()
    assert rows.height == 50 * 10 and rows["entity_id"].n_unique() == 500
    assert done_before < 49


def test_a_resume_that_fails_marks_the_snapshot_failed_and_the_next_run_starts_afresh(
    tmp_path: Path,
) -> None:
    store = Store.open(str(tmp_path / "store"))
    w = store.begin_snapshot("hub:model")  # as if the daemon had been SIGKILLed mid-crawl
    w.write_batch(0, [{"entity_id": "x", "name": "a/x"}])
    crawl = ScriptedCrawl(batches=2, delay=0.0, fail_when_resuming=True)
    plan = _plan(sources=(SourcePlan("hub:model", interval_seconds=0.2),), max_rounds=2)
    daemon = Daemon(store, plan, crawl=crawl, stats=CrawlStats())
    assert asyncio.run(asyncio.wait_for(daemon.run(), 30)) == 0
    assert crawl.calls[:2] == [("hub:model", True), ("hub:model", False)]
    cat = store.snapshots("hub:model", all_statuses=True).sort("snapshot_id")
    assert cat["status"].to_list()[:2] == ["failed", "complete"]
    assert "resume failed" in cat["message"][0]
    assert daemon.live.failures and "RuntimeError" in daemon.live.failures[0].message


@pytest.mark.parametrize("cron", ["0 3 * * *"])
def test_cron_sources_wait_for_their_time(tmp_path: Path, cron: str) -> None:
    store = Store.open(str(tmp_path / "store"))
    crawl = ScriptedCrawl()
    plan = _plan(sources=(SourcePlan("hub:model", cron=cron),))
    daemon = Daemon(store, plan, crawl=crawl, stats=CrawlStats())

    async def main() -> Any:
        task = asyncio.create_task(daemon.run())
        await asyncio.sleep(0.8)
        assert daemon.scheduler is not None
        job = daemon.scheduler.get_job("crawl:hub:model")
        nxt = job.next_run_time
        daemon.request_stop()
        await task
        return nxt

    nxt = asyncio.run(main())
    assert crawl.calls == []
    assert (nxt.hour, nxt.minute) == (3, 0)


def _run_until(daemon: Daemon, done: Callable[[], bool], seconds: float = 120) -> None:
    """Run the daemon until `done()` (or `seconds`), then stop it and wait for its exit."""

    async def main() -> None:
        task = asyncio.create_task(daemon.run())
        deadline = time.monotonic() + seconds
        while not done() and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        daemon.request_stop()
        await task

    asyncio.run(main())


def test_a_complete_snapshot_refreshes_the_report(tmp_path: Path) -> None:
    store = Store.open(str(tmp_path / "store"))
    crawl = ScriptedCrawl(batches=2, delay=0.0)
    plan = _plan(
        sources=(SourcePlan("hub:model", interval_seconds=3600),),
        analytics_after_snapshot=True,
        report_dir=str(tmp_path / "report"),
    )
    daemon = Daemon(store, plan, crawl=crawl, stats=CrawlStats())
    _run_until(daemon, lambda: daemon.live.last_report is not None)
    assert daemon.live.last_report is not None, "no report within 120 s"
    assert (tmp_path / "report" / "index.html").is_file()
    text = daemon.metrics.registry.get_sample_value(
        "hubtide_scheduler_jobs_total", {"job": "analytics", "outcome": "success"}
    )
    assert text == 1.0
    # the per-snapshot job stored every measure result of the new snapshot first
    stored = store.derived_index(TABLE, source="hub:model", snapshot_id=1)
    assert {"growth", "growth_monthly", "concentration", "licenses"} <= set(stored["name"])
    registry = daemon.metrics.registry
    assert registry.get_sample_value("hubtide_analyze_seconds_count") == 1.0
    assert registry.get_sample_value("hubtide_analyze_seconds_sum") > 0
    assert (
        registry.get_sample_value(
            "hubtide_scheduler_jobs_total", {"job": "analyze", "outcome": "success"}
        )
        == 1.0
    )


def test_a_failing_measure_is_counted_and_never_blocks_the_crawl(tmp_path: Path) -> None:
    store = Store.open(str(tmp_path / "store"))
    crawl = ScriptedCrawl(batches=1, delay=0.0)
    # a popularity column the source does not have: every measure ranking by it fails
    plan = _plan(
        sources=(SourcePlan("hub:model", interval_seconds=0.2),),
        analytics_after_snapshot=True,
        analytics_params={"by": "no_such_column"},
        report_dir=str(tmp_path / "report"),
    )
    daemon = Daemon(store, plan, crawl=crawl, stats=CrawlStats())
    registry = daemon.metrics.registry
    _run_until(
        daemon,
        lambda: (
            len(_complete(store, "hub:model")) >= 3
            and (registry.get_sample_value("hubtide_analyze_seconds_count") or 0) >= 1
        ),
    )
    assert len(_complete(store, "hub:model")) >= 3  # crawls went on meanwhile
    failures = {
        s.labels["measure"]: s.value
        for m in registry.collect()
        if m.name == "hubtide_analyze_failures"
        for s in m.samples
        if s.name == "hubtide_analyze_failures_total"
    }
    assert failures.get("concentration", 0) >= 1, failures
    names = set(store.derived_index(TABLE, source="hub:model")["name"])
    assert "growth" in names and "concentration" not in names
