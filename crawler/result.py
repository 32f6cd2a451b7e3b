"""`CrawlResult`: what one `crawl_source` call did."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class CrawlResult:
    """The outcome of one crawl of one source (one snapshot)."""

    source: str
    snapshot_id: int
    status: str  # complete | partial | failed | running (stopped, resumable)
    items: int
    requests: int
    errors: int
    detail_requests: int
    seconds: float
    message: str | None = None
