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

HUB_BUCKETS = ("api", "resolvers", "pages")  # the Hub's quota buckets (RateLimit names)


@dataclass
class RunningCrawl:
    source: str
    snapshot_id: int | None
    started_at: float  # time.time()
    pages: int = 0
    pages_total: int | None = None  # known for registries (top N / page size)
    items: int = 0
    errors: int = 0
    # bucket -> (requests waiting for it, unix time the latest of them may be sent): the
    # crawl pacing to a quota, shown by progress, `status`, `/api/status` and a gauge
    waits: dict[str, tuple[int, float]] = field(default_factory=dict)

    def waiting(self, now: float | None = None) -> tuple[str, float] | None:
        """(bucket, seconds until it resumes) of the longest wait in progress, or None."""
        if not self.waits:
            return None
        now = time.time() if now is None else now
        bucket, (_n, until) = max(self.waits.items(), key=lambda kv: kv[1][1])
        return bucket, max(0.0, until - now)


def waiting_text(bucket: str, seconds: float) -> str:
    """The one line every view shows while a crawl paces to a quota."""
    who = f"the Hub's {bucket}" if bucket in HUB_BUCKETS else f"the {bucket}"
    return f"waiting for {who} budget, resets in {seconds:.0f} s"


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

    def wait_begin(self, source: str, bucket: str, seconds: float) -> None:
        """A request of `source` waits `seconds` for `bucket` (paired with `wait_end`)."""
        with self._lock:
            run = self.running.get(source)
            if run is not None:
                n, until = run.waits.get(bucket, (0, 0.0))
                run.waits[bucket] = (n + 1, max(until, time.time() + seconds))

    def wait_end(self, source: str, bucket: str) -> None:
        with self._lock:
            run = self.running.get(source)
            if run is not None and bucket in run.waits:
                n, until = run.waits[bucket]
                if n <= 1:
                    del run.waits[bucket]
                else:
                    run.waits[bucket] = (n - 1, until)

    def waiting(self) -> list[tuple[str, str, float]]:
        """(source, bucket, seconds left) of every crawl pacing to a quota now."""
        now = time.time()
        with self._lock:
            return [
                (src, b, max(0.0, until - now))
                for src, run in self.running.items()
                for b, (_n, until) in run.waits.items()
            ]

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
