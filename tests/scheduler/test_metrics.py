"""The Prometheus registry: crawl counters from crawler.stats, store figures, daemon events;
`promtool check metrics` on a live scrape."""

from __future__ import annotations

import subprocess

from crawler.stats import CrawlStats
from scheduler.http import build_app
from scheduler.metrics import DaemonMetrics
from storage import Store
from tests.scheduler.promtool import promtool
from tests.scheduler.server import get, serving


def _busy_stats() -> CrawlStats:
    stats = CrawlStats()
    for status in (200, 200, 200, 429, 503):
        stats.count_request("hub:model", "127.0.0.1", status, nbytes=1000)
    stats.count_retry("hub:model", "127.0.0.1")
    stats.count_retry("hub:model", "127.0.0.1")
    stats.count_items("hub:model", 42)
    stats.count_rejected("npm", 3)
    stats.start("npm", 7)
    return stats


def _scrape(store: Store) -> str:
    metrics = DaemonMetrics(_busy_stats(), version="9.9.9")
    metrics.figures.refresh(store)
    metrics.crawl_finished("hub:model", "complete", 12.5)
    metrics.crawl_finished("pypi", "failed", 3.0)
    metrics.crawl_finished("npm", "partial", 4.0)
    metrics.jobs.labels("crawl", "success").inc()
    with serving(build_app(store, metrics.registry)) as url:
        status, _, body = get(f"{url}/metrics")
    assert status == 200
    return body.decode()


def test_scrape_has_every_family_with_the_right_values(small_store: Store) -> None:
    text = _scrape(small_store)
    expected = [
        'hubtide_crawl_requests_total{host="127.0.0.1",source="hub:model",status="200"} 3.0',
        'hubtide_crawl_requests_total{host="127.0.0.1",source="hub:model",status="429"} 1.0',
        'hubtide_crawl_rate_limited_responses_total{host="127.0.0.1",source="hub:model"} 1.0',
        'hubtide_crawl_retries_total{host="127.0.0.1",source="hub:model"} 2.0',
        'hubtide_crawl_response_bytes_total{host="127.0.0.1",source="hub:model"} 5000.0',
        'hubtide_crawl_items_total{source="hub:model"} 42.0',
        'hubtide_crawl_rejected_records_total{source="npm"} 3.0',
        'hubtide_crawl_running{source="npm"} 1.0',
        'hubtide_crawl_duration_seconds_count{source="hub:model",status="complete"} 1.0',
        'hubtide_crawl_duration_seconds_bucket{le="15.0",source="hub:model",status="complete"} 1.0',
        'hubtide_crawls_total{outcome="failed",source="pypi"} 1.0',
        'hubtide_scheduler_jobs_total{job="crawl",outcome="success"} 1.0',
        'hubtide_store_table_files{table="hub/repos"}',
        'hubtide_store_table_rows{table="registry/packages"} '
        f"{float(_rows(small_store, 'registry/packages'))}",
        'hubtide_last_complete_snapshot_id{source="npm"} 2.0',
        'hubtide_last_complete_snapshot_timestamp_seconds{source="hub:model"}',
        'hubtide_last_failed_crawl_timestamp_seconds{source="pypi"}',
        # a partial crawl (a server outage) counts as a failure for alerting
        'hubtide_last_failed_crawl_timestamp_seconds{source="npm"}',
        'hubtide_build_info{python="',
        'version="9.9.9"',
        # the help text names every outcome the daemon counts, the lease's refusal too
        "# HELP hubtide_scheduler_jobs_total Scheduler job runs by job kind and outcome "
        "(success, error, missed, skipped, lease_held).",
    ]
    missing = [line for line in expected if line not in text]
    assert not missing, missing


def test_promtool_check_metrics_passes_on_a_live_scrape(small_store: Store) -> None:
    text = _scrape(small_store)
    res = subprocess.run(
        [promtool(), "check", "metrics"], input=text, capture_output=True, text=True, timeout=60
    )
    assert res.returncode == 0, res.stdout + res.stderr
    assert res.stdout.strip() == "" and res.stderr.strip() == "", res.stdout + res.stderr


def test_store_figures_refresh_reads_the_catalog(small_store: Store) -> None:
    metrics = DaemonMetrics(CrawlStats())
    metrics.figures.refresh(small_store)
    assert metrics.figures.last_complete["hub:model"][0] == 3
    tables = {t.table: t for t in metrics.figures.tables}
    assert tables["hub/repos"].rows == _rows(small_store, "hub/repos") > 0


def _rows(store: Store, table: str) -> int:
    """Rows as the store counts them (the per-table encoding is storage's to change)."""
    return int({t.table: t.rows for t in store.table_stats()}[table])


def test_disk_bytes_are_scraped_beside_live_bytes(small_store: Store) -> None:
    """`hubtide_store_disk_bytes` is what the store's folders hold (the store-growth alert
    watches it), per table too, and never less than the live bytes."""
    text = _scrape(small_store)
    stats = small_store.table_stats()
    disk = sum(t.disk_bytes for t in stats)
    assert f"hubtide_store_disk_bytes {float(disk)}" in text
    repos = next(t for t in stats if t.table == "hub/repos")
    assert f'hubtide_store_table_disk_bytes{{table="hub/repos"}} {float(repos.disk_bytes)}' in text
    assert disk >= sum(t.bytes for t in stats) > 0
