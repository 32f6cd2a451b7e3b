"""The daemon's Prometheus registry: one `CollectorRegistry` with everything hubtide exports.

Three kinds of figures, each read the cheapest way:

* crawl counters (requests, 429s, retries, bytes, items, rejects) live in
  `crawler.stats.CrawlStats`; a custom Collector turns them into metric families at scrape
  time, so the crawler never imports prometheus-client;
* store figures (rows/files/bytes per table, last complete snapshot per source) need Delta
  metadata reads, so the daemon refreshes a cached `StoreFigures` after each snapshot and
  on a timer, and a scrape only reads the cache (a scrape never touches the disk);
* daemon events (crawl duration, crawl outcomes, job outcomes) are ordinary metrics the
  daemon observes directly.

Names follow Prometheus conventions: `hubtide_` prefix, base units in the name
(`_seconds`, `_bytes`), `_total` on counters, `_timestamp_seconds` for Unix times.
"""

from __future__ import annotations

import platform
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    Info,
    PlatformCollector,
    ProcessCollector,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from crawler.stats import CrawlStats, global_stats

# Crawls last from seconds (a small registry) to hours (the whole Hub).
CRAWL_DURATION_BUCKETS = (1, 5, 15, 60, 300, 900, 1800, 3600, 7200, 14400, 43200, 86400)
# the per-snapshot analyze job: a small world takes well under a second, a Hub-scale
# snapshot minutes
ANALYZE_BUCKETS = (0.1, 0.5, 1, 5, 15, 60, 300, 900, 1800, 3600)


@dataclass(frozen=True)
class TableFigure:
    table: str
    rows: int
    files: int
    bytes: int
    disk_bytes: int = 0


@dataclass
class StoreFigures:
    """What the last refresh read from the store; scrapes read only this."""

    tables: list[TableFigure] = field(default_factory=list)
    last_complete: dict[str, tuple[int, float]] = field(default_factory=dict)  # id, unix time
    # (source, detail, scope) -> covered share of the newest complete snapshot's repos
    coverage: dict[tuple[str, str, str], float] = field(default_factory=dict)
    refreshed_at: float = 0.0
    refresh_seconds: float = 0.0
    refresh_errors: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def refresh(self, store: Any) -> None:
        """Read table stats and the newest complete snapshot per source (blocking I/O)."""
        t0 = time.perf_counter()
        try:
            tables = [
                TableFigure(
                    str(t.table),
                    int(t.rows),
                    int(t.files),
                    int(t.bytes),
                    int(getattr(t, "disk_bytes", 0)),
                )
                for t in store.table_stats()
            ]
            last: dict[str, tuple[int, float]] = {}
            snaps = store.snapshots()
            if snaps.height:
                for row in snaps.iter_rows(named=True):
                    ts = _unix(row.get("finished_at") or row.get("as_of"))
                    prev = last.get(row["source"])
                    if prev is None or row["snapshot_id"] > prev[0]:
                        last[row["source"]] = (int(row["snapshot_id"]), ts)
            coverage = _coverage(store, last)
        except Exception:
            with self._lock:
                self.refresh_errors += 1
            raise
        with self._lock:
            self.tables = tables
            self.last_complete = last
            self.coverage = coverage
            self.refreshed_at = time.time()
            self.refresh_seconds = time.perf_counter() - t0


def _coverage(store: Any, last: dict[str, tuple[int, float]]) -> dict[tuple[str, str, str], float]:
    """The details coverage of each source's newest complete snapshot (Hub sources)."""
    reader = getattr(store, "detail_coverage", None)
    if reader is None:
        return {}
    out: dict[tuple[str, str, str], float] = {}
    for row in reader().iter_rows(named=True):
        src = row["source"]
        if src in last and row["snapshot_id"] == last[src][0]:
            out[(src, row["detail"], row["scope"])] = float(row["ratio"])
    return out


def _unix(value: Any) -> float:
    if isinstance(value, datetime):
        return value.timestamp()
    return 0.0


class CrawlStatsCollector(Collector):
    """Metric families computed from `CrawlStats` at scrape time."""

    def __init__(self, stats: CrawlStats) -> None:
        self.stats = stats

    def collect(self) -> Iterator[Metric]:
        s = self.stats
        with s._lock:  # a consistent copy; the crawler holds this lock only to count
            requests = dict(s.requests)
            retries = dict(s.retries)
            limited = dict(s.rate_limited)
            nbytes = dict(s.bytes)
            items = dict(s.items)
            rejected = dict(s.rejected)
            details = dict(s.detail_requests)
            running = {
                k: (v.pages, v.pages_total, v.items, v.started_at) for k, v in s.running.items()
            }
        req = CounterMetricFamily(
            "hubtide_crawl_requests",
            "HTTP responses received by crawls, by source, host and status code.",
            labels=["source", "host", "status"],
        )
        for (source, host, status), n in sorted(requests.items()):
            req.add_metric([source, host, status], n)
        yield req
        yield _by_host(
            "hubtide_crawl_rate_limited_responses",
            "HTTP 429 responses received, by source and host.",
            limited,
        )
        yield _by_host("hubtide_crawl_retries", "Requests retried, by source and host.", retries)
        yield _by_host(
            "hubtide_crawl_response_bytes",
            "Response body bytes received, by source and host.",
            nbytes,
        )
        yield _by_source("hubtide_crawl_items", "Entities crawled, by source.", items)
        yield _by_source(
            "hubtide_crawl_rejected_records",
            "Records set aside because they did not fit the schema, by source.",
            rejected,
        )
        yield _by_source(
            "hubtide_crawl_detail_requests",
            "Detail requests (commits, discussions, cards), by source.",
            details,
        )
        run = GaugeMetricFamily(
            "hubtide_crawl_running", "1 while a crawl of the source runs.", labels=["source"]
        )
        pages = GaugeMetricFamily(
            "hubtide_crawl_running_pages", "Pages fetched by the running crawl.", labels=["source"]
        )
        started = GaugeMetricFamily(
            "hubtide_crawl_running_start_timestamp_seconds",
            "When the running crawl of the source started (Unix time).",
            labels=["source"],
        )
        for source, (n_pages, _total, _items, t0) in sorted(running.items()):
            run.add_metric([source], 1)
            pages.add_metric([source], n_pages)
            started.add_metric([source], t0)
        yield run
        yield pages
        yield started
        waiting = GaugeMetricFamily(
            "hubtide_crawl_waiting_seconds",
            "Seconds until a crawl pacing to a quota may send again, by source and bucket "
            "(absent while it does not wait).",
            labels=["source", "bucket"],
        )
        for source, bucket, left in sorted(s.waiting()):
            waiting.add_metric([source, bucket], round(left, 3))
        yield waiting

    def describe(self) -> Iterable[Metric]:
        return []  # computed at scrape time; nothing to check at registration


def _by_host(name: str, doc: str, values: dict[tuple[str, str], int]) -> Metric:
    fam = CounterMetricFamily(name, doc, labels=["source", "host"])
    for (source, host), n in sorted(values.items()):
        fam.add_metric([source, host], n)
    return fam


def _by_source(name: str, doc: str, values: dict[str, int]) -> Metric:
    fam = CounterMetricFamily(name, doc, labels=["source"])
    for source, n in sorted(values.items()):
        fam.add_metric([source], n)
    return fam


class StoreCollector(Collector):
    """Metric families from the cached `StoreFigures` (no I/O at scrape time)."""

    def __init__(self, figures: StoreFigures) -> None:
        self.figures = figures

    def collect(self) -> Iterator[Metric]:
        f = self.figures
        with f._lock:
            tables = list(f.tables)
            last = dict(f.last_complete)
            coverage = dict(f.coverage)
            refreshed, took, errors = f.refreshed_at, f.refresh_seconds, f.refresh_errors
        rows = GaugeMetricFamily(
            "hubtide_store_table_rows", "Rows per Delta table.", labels=["table"]
        )
        files = GaugeMetricFamily(
            "hubtide_store_table_files", "Live data files per Delta table.", labels=["table"]
        )
        size = GaugeMetricFamily(
            "hubtide_store_table_bytes",
            "Bytes of live data files per Delta table.",
            labels=["table"],
        )
        disk = GaugeMetricFamily(
            "hubtide_store_table_disk_bytes",
            "Bytes on disk per Delta table: every file under its folder (live data, files"
            " not yet vacuumed, the log and checkpoints).",
            labels=["table"],
        )
        for t in tables:
            rows.add_metric([t.table], t.rows)
            files.add_metric([t.table], t.files)
            size.add_metric([t.table], t.bytes)
            disk.add_metric([t.table], t.disk_bytes)
        yield rows
        yield files
        yield size
        yield disk
        if tables:  # absent before the first refresh, as the per-table gauges are
            yield GaugeMetricFamily(
                "hubtide_store_disk_bytes",
                "Bytes on disk of the whole store (the sum of hubtide_store_table_disk_bytes);"
                " the store-growth alert watches this.",
                value=sum(t.disk_bytes for t in tables),
            )
        ts = GaugeMetricFamily(
            "hubtide_last_complete_snapshot_timestamp_seconds",
            "When the newest complete snapshot of the source finished (Unix time).",
            labels=["source"],
        )
        sid = GaugeMetricFamily(
            "hubtide_last_complete_snapshot_id",
            "Id of the newest complete snapshot of the source.",
            labels=["source"],
        )
        for source, (snap, when) in sorted(last.items()):
            ts.add_metric([source], when)
            sid.add_metric([source], snap)
        yield ts
        yield sid
        cov = GaugeMetricFamily(
            "hubtide_details_coverage_ratio",
            "Share of the newest complete snapshot's repos whose detail (commits, discussions,"
            " cards) was fetched at their listed sha; scope all, or the top N by downloads"
            " (likes for spaces). The rest is the details backlog.",
            labels=["source", "detail", "scope"],
        )
        for (source, detail, scope), ratio in sorted(coverage.items()):
            cov.add_metric([source, detail, scope], ratio)
        yield cov
        yield GaugeMetricFamily(
            "hubtide_store_figures_refresh_timestamp_seconds",
            "When the store figures above were last read (Unix time).",
            value=refreshed,
        )
        yield GaugeMetricFamily(
            "hubtide_store_figures_refresh_duration_seconds",
            "How long the last read of the store figures took.",
            value=took,
        )
        yield CounterMetricFamily(
            "hubtide_store_figures_refresh_errors",
            "Failed reads of the store figures.",
            value=errors,
        )

    def describe(self) -> Iterable[Metric]:
        return []


class ArrowMemoryCollector(Collector):
    """Bytes live in Arrow's default memory pool (native memory RSS alone cannot split)."""

    def collect(self) -> Iterator[Metric]:
        import pyarrow as pa

        yield GaugeMetricFamily(
            "hubtide_arrow_allocated_bytes",
            "Bytes currently allocated from Arrow's default memory pool.",
            value=pa.total_allocated_bytes(),
        )

    def describe(self) -> Iterable[Metric]:
        return []


class DaemonMetrics:
    """The one registry and the metrics the daemon observes itself."""

    def __init__(self, stats: CrawlStats | None = None, version: str = "unknown") -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.stats = stats if stats is not None else global_stats()
        self.figures = StoreFigures()
        self.registry.register(CrawlStatsCollector(self.stats))
        self.registry.register(StoreCollector(self.figures))
        self.registry.register(ArrowMemoryCollector())
        r = self.registry
        # process_resident_memory_bytes & co: the soak's memory figure, live
        ProcessCollector(registry=r)
        PlatformCollector(registry=r)
        self.build_info = Info("hubtide_build", "Version of the running hubtide.", registry=r)
        self.build_info.info({"version": version, "python": platform.python_version()})
        self.crawl_duration = Histogram(
            "hubtide_crawl_duration_seconds",
            "Wall time of finished crawls, by source and final status.",
            ["source", "status"],
            buckets=CRAWL_DURATION_BUCKETS,
            registry=r,
        )
        self.crawls = Counter(
            "hubtide_crawls",
            "Finished crawls by source and outcome (complete, partial, failed, stopped, error).",
            ["source", "outcome"],
            registry=r,
        )
        self.jobs = Counter(
            "hubtide_scheduler_jobs",
            "Scheduler job runs by job kind and outcome (success, error, missed, skipped, lease_held).",
            ["job", "outcome"],
            registry=r,
        )
        self.last_crawl_failure = Gauge(
            "hubtide_last_failed_crawl_timestamp_seconds",
            "When a crawl of the source last ended partial, failed or with an error (Unix time).",
            ["source"],
            registry=r,
        )
        self.rounds = Counter(
            "hubtide_rounds",
            "Rounds in which every enabled source finished one crawl.",
            registry=r,
        )
        self.up_since = Gauge(
            "hubtide_start_timestamp_seconds", "When the daemon started (Unix time).", registry=r
        )
        self.up_since.set(time.time())
        self.stale_after = Gauge(
            "hubtide_source_stale_after_seconds",
            "Configured age after which a source counts as stale (for alert rules).",
            ["source"],
            registry=r,
        )
        self.maintenance_seconds = Gauge(
            "hubtide_last_maintenance_duration_seconds",
            "How long the last store maintenance took.",
            registry=r,
        )

        self.analyze_seconds = Histogram(
            "hubtide_analyze_seconds",
            "Wall time of the per-snapshot analyze job (measure results stored in "
            "derived/measures).",
            buckets=ANALYZE_BUCKETS,
            registry=r,
        )
        self.analyze_failures = Counter(
            "hubtide_analyze_failures",
            "Measure results the analyze job failed to compute, by measure.",
            ["measure"],
            registry=r,
        )

    def crawl_finished(self, source: str, outcome: str, seconds: float) -> None:
        self.crawls.labels(source, outcome).inc()
        self.crawl_duration.labels(source, outcome).observe(seconds)
        if outcome in ("partial", "failed", "error"):
            self.last_crawl_failure.labels(source).set(time.time())
