"""What every hubtide spider shares: fetching through Scrapy's downloader middlewares
(budget, token, retries) with JSON decoding, and the bound on open listing pages.

A listing is a chain of pages (each page's Link names the next), fetched through Scrapy's
scheduler; at most `AHEAD` pages are open at a time, so memory stays bounded however large
the listing.
"""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import numpy as np
import numpy.typing as npt
import polars as pl
import scrapy
from scrapy import Request
from scrapy.exceptions import IgnoreRequest
from scrapy.http import Response

from crawler.context import CrawlContext, payload_of
from crawler.items import PageResult
from crawler.middlewares import retry_request

AHEAD = 3  # listing pages open at once (fetched, details pending)
DETAIL_META = "hubtide_detail"
GONE = object()  # a 404: the entity went away between listing and detail
# 401/403 on a detail: a disabled, gated or private repo. The Hub answers so for good, not
# by accident, so it is recorded and skipped rather than failing the snapshot.
FORBIDDEN = object()


def answer_time(response: Response) -> datetime:
    """When a listing page answered: its HTTP `Date` header (RFC 9110: the instant the
    server made the answer), else the instant it was received. Every row the page
    carries was observed then (`observed_at`)."""
    date = response.headers.get("Date")
    if date:
        try:
            at = parsedate_to_datetime(date.decode("latin-1"))
        except (TypeError, ValueError, IndexError):
            at = None
        if at is not None and at.tzinfo is not None:
            return at.astimezone(UTC)
    return datetime.now(UTC)


def observed_at(rows: list[dict[str, Any]], at: datetime) -> None:
    """Give each row its observation time: `at`, unless the row has its own (a
    registry's `last_synced_at`)."""
    for r in rows:
        if r.get("observed_at") is None:
            r["observed_at"] = at


class SeenKeys:
    """The entities a listing walk has already yielded, as 64-bit hashes of their ids.

    A listing hands each entity over once: the Hub's creation-order walk cannot repeat
    one, but OFFSET paging over a moving ranking (ecosyste.ms) does, and a server that
    ignores `sort` would. Kept as sorted numpy runs merged like a binary counter (at most
    log2(n) runs, each id merged O(log n) times): 8 bytes an id, 25 MB for the Hub's
    3.1M models, where a Python set of the ids would take ~300 MB. Held in memory for one
    run: an entity repeated across a resume lands in two batches, and the store keeps
    the newer (storage/writer.py `_narrow`).
    """

    def __init__(self) -> None:
        self._runs: list[npt.NDArray[np.uint64]] = []
        self.repeats = 0  # entities seen again (dropped)

    def __len__(self) -> int:
        return sum(len(r) for r in self._runs)

    @property
    def runs(self) -> int:
        """Sorted runs held (binary searches per lookup)."""
        return len(self._runs)

    def fresh(self, ids: list[str]) -> list[bool]:
        """Per id: True when no earlier call (nor an earlier place in `ids`) had it; the
        fresh ones are remembered."""
        if not ids:
            return []
        keys = pl.Series(ids, dtype=pl.String).hash(seed=7).to_numpy().astype(np.uint64)
        seen = np.zeros(len(keys), dtype=bool)
        for run in self._runs:
            pos = np.minimum(np.searchsorted(run, keys), len(run) - 1)
            seen |= run[pos] == keys
        # a repeat within this batch: only its first place counts as fresh
        _, first = np.unique(keys, return_index=True)
        once = np.zeros(len(keys), dtype=bool)
        once[first] = True
        ok = ~seen & once
        self.repeats += int(len(keys) - ok.sum())
        self._add(np.sort(keys[ok]))
        return [bool(x) for x in ok]

    def _add(self, run: npt.NDArray[np.uint64]) -> None:
        if not len(run):
            return
        # merge while the newest run is no longer than the new one (a binary counter):
        # run lengths at least halve down the list, so a lookup is log2(n) binary searches
        while self._runs and len(self._runs[-1]) <= len(run):
            run = np.sort(np.concatenate([self._runs.pop(), run]), kind="stable")
        self._runs.append(run)


class BaseSpider(scrapy.Spider):
    """What the Hub and registry spiders share: the context, fetches through the
    downloader middlewares, JSON with retries, and the bound on open listing pages."""

    ctx: CrawlContext

    def __init__(self, ctx: CrawlContext, **kw: Any) -> None:
        super().__init__(**kw)
        self.ctx = ctx
        self._ahead: asyncio.Semaphore | None = None
        self.seen = SeenKeys()

    @property
    def ahead(self) -> asyncio.Semaphore:
        if self._ahead is None:
            self._ahead = asyncio.Semaphore(AHEAD)
        return self._ahead

    async def fetch(self, url: str, *, detail: str = "") -> Response | None:
        """One GET through the downloader middlewares; None when it kept failing.

        `detail` names the kind of detail request (counted per kind), "" for listing work.
        """
        req = Request(url, dont_filter=True, priority=10, meta={DETAIL_META: detail})
        engine = self.crawler.engine
        assert engine is not None
        try:
            return await engine.download_async(req)
        except IgnoreRequest:  # its host is down: counted, the outage event says why
            self.ctx.errors += 1
            self.ctx.run.errors += 1
            return None
        except Exception as exc:  # network errors after every retry
            self.ctx.error(f"{type(exc).__name__}: {str(exc)[:200]}", url)
            return None

    async def fetch_json(
        self, url: str, *, detail: str = "", forbidden_ok: bool = False
    ) -> tuple[Any, Response | None]:
        """GET and parse JSON, retrying bodies that do not parse (truncated).

        Returns (body, response); body is GONE on 404, FORBIDDEN on 401/403 when
        `forbidden_ok`, and None on failure.
        """
        s = self.ctx.settings
        for attempt in range(s.max_retries + 1):
            resp = await self.fetch(url, detail=detail)
            if resp is None:
                return None, None
            if resp.status == 404:
                return GONE, resp
            if forbidden_ok and resp.status in (401, 403):
                return FORBIDDEN, resp
            if resp.status != 200:
                self.ctx.error(f"HTTP {resp.status}", url, payload_of(resp.body))
                return None, resp
            try:
                return json.loads(resp.body), resp
            except ValueError as exc:
                self.ctx.event("malformed", f"body is not JSON: {exc}", url, payload_of(resp.body))
                if attempt < s.max_retries:
                    from crawler.middlewares import backoff

                    await asyncio.sleep(
                        backoff(attempt, s.backoff_base_seconds, s.backoff_max_seconds)
                    )
        self.ctx.error("body kept failing to parse", url)
        return None, None

    def listing_json(self, response: Response) -> tuple[Any, Request | None]:
        """A listing page's JSON, or a retry request for a body that does not parse."""
        ctx = self.ctx
        if response.status == 200:
            try:
                return json.loads(response.body), None
            except ValueError as exc:
                ctx.event(
                    "malformed", f"body is not JSON: {exc}", response.url, payload_of(response.body)
                )
                retry = retry_request(ctx, response.request, "body is not JSON")  # type: ignore[arg-type]
                if retry is not None:
                    return None, retry
                ctx.fail(f"listing page {response.url}: body kept failing to parse")
                return None, None
        ctx.error(f"HTTP {response.status}", response.url, payload_of(response.body))
        ctx.fail(f"listing page {response.url}: HTTP {response.status}")
        return None, None

    def first_seen(self, rows: list[dict[str, Any]], url: str) -> list[dict[str, Any]]:
        """`rows` without the entities this walk already yielded (kept once: the first
        time), with a `repeat` event naming them."""
        fresh = self.seen.fresh([r["entity_id"] for r in rows])
        if all(fresh):
            return rows
        again = [r["entity_id"] for r, f in zip(rows, fresh, strict=True) if not f]
        shown = ", ".join(again[:10]) + (" ..." if len(again) > 10 else "")
        self.ctx.event("repeat", f"{len(again)} listed again, kept once: {shown}", url)
        return [r for r, f in zip(rows, fresh, strict=True) if f]

    async def next_page_request(
        self, url: str, page: int, callback: Any, errback: Any = None
    ) -> Request | None:
        """The request for the listing page after `page`, or None when a stop was asked
        (the crawl then ends after this page, resumable from its checkpoint)."""
        if self.ctx.stop_requested:
            self.ctx.stopped = True
            return None
        await self.ahead.acquire()  # bounds how far the listing runs ahead of the writer
        return Request(
            url,
            callback=callback,
            errback=errback or self.listing_errback,
            dont_filter=True,
            meta={"page": page + 1},
        )

    def listing_errback(self, failure: Any) -> PageResult:
        ctx = self.ctx
        request = getattr(failure, "request", None)
        url = request.url if request is not None else None
        ctx.error(f"listing request failed: {failure.getErrorMessage()[:200]}", url)
        ctx.fail(f"listing page {url}: {failure.getErrorMessage()[:200]}")
        page = request.meta.get("page", 0) if request is not None else 0
        self.close_page(page)
        # an empty last page closes the run; nothing after it is committed
        return PageResult(page=page, rows=[], next_url=url, last=True, failed=True)

    def close_page(self, page: int) -> None:
        self.ahead.release()
        self.ctx.run.pages += 1
