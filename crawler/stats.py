"""Live crawl statistics: one collector per process, read by the progress display and by
the daemon's Prometheus exporter (scheduler/metrics.py). Counting only; no I/O.

Keys follow Scrapy's stats style but are typed: per (source, host, status) request counts,
retries, 429s, bytes, items, rejected records, pages, and the state of running crawls.
Never holds a URL query or header, so a token cannot leak through it.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from dataclasses import dataclass, field


@dataclass
class RunningCrawl:
    source: str
    snapshot_id: int | None
    started_at: float  # time.time()
    pages: int = 0
    pages_total: int | None = None  # known for registries (top N / page size)
    items: int = 0
    errors: int = 0


@dataclass
class CrawlStats:
    """Thread-safe counters. Read with `snapshot()`; written by the crawler."""

    requests: Counter[tuple[str, str, str]] = field(default_factory=Counter)  # source, host, status
    retries: Counter[tuple[str, str]] = field(default_factory=Counter)  # source, host
    rate_limited: Counter[tuple[str, str]] = field(default_factory=Counter)  # source, host (429s)
    bytes: Counter[tuple[str, str]] = field(default_factory=Counter)  # source, host
    items: Counter[str] = field(default_factory=Counter)  # source
    rejected: Counter[str] = field(default_factory=Counter)  # source
    detail_requests: Counter[str] = field(default_factory=Counter)  # source
    running: dict[str, RunningCrawl] = field(default_factory=dict)
    crawl_durations: list[tuple[str, str, float]] = field(default_factory=list)  # source, status, s
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def count_request(self, source: str, host: str, status: int | str, nbytes: int = 0) -> None:
        with self._lock:
            self.requests[(source, host, str(status))] += 1
            if str(status) == "429":
                self.rate_limited[(source, host)] += 1
            if nbytes:
                self.bytes[(source, host)] += nbytes

    def count_retry(self, source: str, host: str) -> None:
        with self._lock:
            self.retries[(source, host)] += 1

    def count_items(self, source: str, n: int = 1) -> None:
        with self._lock:
            self.items[source] += n
            if source in self.running:
                self.running[source].items += n

    def count_rejected(self, source: str, n: int = 1) -> None:
        with self._lock:
            self.rejected[source] += n

    def count_detail(self, source: str, n: int = 1) -> None:
        with self._lock:
            self.detail_requests[source] += n

    def start(self, source: str, snapshot_id: int | None) -> RunningCrawl:
        with self._lock:
            run = RunningCrawl(source, snapshot_id, time.time())
            self.running[source] = run
            return run

    def finish(self, source: str, status: str) -> None:
        with self._lock:
            run = self.running.pop(source, None)
            if run is not None:
                self.crawl_durations.append((source, status, time.time() - run.started_at))


_GLOBAL = CrawlStats()


def global_stats() -> CrawlStats:
    """The process-wide collector (the daemon exports it; `hubtide crawl` displays it)."""
    return _GLOBAL
