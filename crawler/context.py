"""`CrawlContext`: the live state of one crawl, shared by its spider, middlewares and
pipeline (they reach it as `crawler.spider.ctx`). Counting and bookkeeping only."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from crawler.prev import PrevState
from crawler.settings import CrawlSettings
from crawler.stats import CrawlStats, RunningCrawl
from storage import CrawlEvent, Store
from storage.writer import SnapshotWriter

PAYLOAD_MAX = 64 * 1024


@dataclass
class CrawlContext:
    source: str
    settings: CrawlSettings
    store: Store
    # None for a details drain run on its own, after its snapshot closed (`drain_source`)
    writer: SnapshotWriter | None
    stats: CrawlStats
    run: RunningCrawl
    stop: asyncio.Event | None = None
    prev: PrevState = field(default_factory=PrevState.empty)
    known_commits: dict[str, frozenset[str]] = field(default_factory=dict)
    start_url: str | None = None  # resume: the next page to fetch
    start_seq: int = 0  # the next batch sequence number
    start_page: int = 0  # pages already committed (resume)
    start_carry: float = 0.0  # the detail budget's balance at `start_page` (resume)
    # counters
    requests: int = 0
    retries: int = 0
    errors: int = 0
    items: int = 0
    detail_requests: int = 0
    detail_kinds: Counter[str] = field(default_factory=Counter)  # commits, cards, ...
    detail_repos: int = 0
    changed: int = 0
    # outcome
    listing_done: bool = False
    stopped: bool = False
    lost: int = 0  # records neither parsed nor recovered
    failures: list[str] = field(default_factory=list)  # why the snapshot is not complete
    write_error: BaseException | None = None
    events: list[CrawlEvent] = field(default_factory=list)
    # host -> when its current run of failed answers began (monotonic); gone on a good one
    failing_since: dict[str, float] = field(default_factory=dict)
    down: dict[str, str] = field(default_factory=dict)  # host -> why it is taken as down

    def event(
        self, kind: str, reason: str, url: str | None = None, payload: str | None = None
    ) -> None:
        """Queue an ops/crawl_events row (written with the next batch). URLs carry no token."""
        self.events.append(make_event(kind, reason, url, payload))

    def error(self, reason: str, url: str | None = None, payload: str | None = None) -> None:
        self.errors += 1
        self.run.errors += 1
        self.event("error", reason, url, payload)

    def fail(self, reason: str) -> None:
        """Something that makes the snapshot partial (listing or details incomplete)."""
        if len(self.failures) < 20:
            self.failures.append(reason)

    def answered(self, host: str, ok: bool) -> None:
        """Record an answer of `host`: `ok` ends its run of failures, a failure starts one.

        A host is declared down when a failure comes `max_outage_seconds` after the run
        began: its requests are dropped from then on (`ServiceMiddleware`) and the snapshot
        ends partial, so a total outage costs a bounded time, not every retry of every
        request (issue 19: registry crawls retried for 8-10 minutes)."""
        if ok:
            self.failing_since.pop(host, None)
            return
        now = time.monotonic()
        since = self.failing_since.setdefault(host, now)
        limit = self.settings.max_outage_seconds
        if host not in self.down and now - since >= limit:
            why = f"{host} gave no good answer for {now - since:.0f} s (crawler.max_outage_seconds = {limit:g})"
            self.down[host] = why
            self.event("outage", why)
            self.fail(f"outage: {why}")

    def outage_left(self, host: str) -> float | None:
        """Seconds before a failing `host` would be declared down (None: not failing)."""
        since = self.failing_since.get(host)
        if since is None:
            return None
        return max(0.0, self.settings.max_outage_seconds - (time.monotonic() - since))

    @property
    def stop_requested(self) -> bool:
        return self.stop is not None and self.stop.is_set()


def make_event(
    kind: str, reason: str, url: str | None = None, payload: str | None = None
) -> CrawlEvent:
    """An ops/crawl_events row, reason and payload cut to size (code running off the event
    loop collects these and hands them to `CrawlContext.events` on the loop's thread)."""
    if payload is not None:
        payload = payload[:PAYLOAD_MAX]
    return CrawlEvent(kind, reason[:500], url, payload)


def payload_of(body: bytes | str | Any) -> str:
    if isinstance(body, bytes):
        return body[:PAYLOAD_MAX].decode("utf-8", errors="replace")
    if isinstance(body, str):
        return body[:PAYLOAD_MAX]
    import json

    return json.dumps(body, default=str)[:PAYLOAD_MAX]
