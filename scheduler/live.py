"""What the running daemon knows that the store does not: crawls in flight with their
progress, recent failures, the last analytics refresh. Served at `/api/status` and read by
`hubtide status` when a daemon is listening.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import asdict, dataclass
from typing import Any

from crawler.stats import CrawlStats

RECENT = 20


@dataclass(frozen=True)
class Failure:
    source: str
    at: float  # unix time
    message: str


@dataclass(frozen=True)
class Finished:
    source: str
    at: float
    outcome: str
    seconds: float


class LiveState:
    def __init__(self, stats: CrawlStats, sources: list[str]) -> None:
        self.stats = stats
        self.sources = sources
        self.started_at = time.time()
        self.resuming: set[str] = set()
        self.failures: deque[Failure] = deque(maxlen=RECENT)
        self.finished: deque[Finished] = deque(maxlen=RECENT)
        self.last_report: tuple[float, str] | None = None

    def crawl_started(self, source: str, resume: bool) -> None:
        if resume:
            self.resuming.add(source)

    def crawl_finished(self, source: str, outcome: str, seconds: float) -> None:
        self.resuming.discard(source)
        self.finished.append(Finished(source, time.time(), outcome, round(seconds, 3)))

    def failure(self, source: str, message: str) -> None:
        self.failures.append(Failure(source, time.time(), message[:500]))

    def analytics_done(self, out: str) -> None:
        self.last_report = (time.time(), out)

    def to_json(self) -> dict[str, Any]:
        with self.stats._lock:
            running = [
                {
                    "source": r.source,
                    "snapshot_id": r.snapshot_id,
                    "started_at": r.started_at,
                    "seconds": round(time.time() - r.started_at, 3),
                    "pages": r.pages,
                    "pages_total": r.pages_total,
                    "items": r.items,
                    "errors": r.errors,
                    "resumed": r.source in self.resuming,
                }
                for r in self.stats.running.values()
            ]
        return {
            "daemon_started_at": self.started_at,
            "sources": self.sources,
            "running": running,
            "recent_failures": [asdict(f) for f in self.failures],
            "recent_crawls": [asdict(f) for f in self.finished],
            "last_report": (
                {"at": self.last_report[0], "path": self.last_report[1]}
                if self.last_report
                else None
            ),
        }
