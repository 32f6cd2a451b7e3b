"""`CrawlResult`: what one `crawl_source` call did."""

from __future__ import annotations

from dataclasses import dataclass, field


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
    # detail requests per kind: commits, discussions, cards, repo_info, package_info
    detail_kinds: dict[str, int] = field(default_factory=dict)
    changed: int = 0  # listed repos that were new or whose sha / lastModified moved
    finish_seconds: float = 0.0  # of `seconds`: closing the snapshot (tombstones, derived)
    # of `detail_requests`: those made before the listing snapshot closed (repo info of
    # suspect records); the rest drained the details backlog after it
    listing_detail_requests: int = 0
    # Hub: repos of the newest complete snapshot still needing a detail after the drain
    details_pending: int | None = None
    # Hub: that snapshot's coverage rows (detail, scope, covered, total, snapshot_id)
    details_coverage: list[dict[str, object]] = field(default_factory=list)
    details_failures: list[str] = field(default_factory=list)  # why some details are missing
