"""The registry spider: the top N packages of one registry by downloads, through
ecosyste.ms (one registry per source; more registries are one config entry each), with
each page's last-month download counts from the registry's own service when one is
configured (npm's download counts, pypistats).

The registry's own figure wins over ecosyste.ms's: ecosyste.ms copies it from the same
services on its own sync schedule, so it can only be as fresh or staler. A package the
service gave no count for keeps ecosyste.ms's figure, with a `fallback` crawl event that
names it and says why; the snapshot stays complete (the listing itself is whole).

The listing's pages are fetched back to back and held; the count services (paced at one
request per 3 s for npm, 5 per 12 s for pypistats) run after its last page, page by page,
never between two listing pages. ecosyste.ms pages by OFFSET over a downloads ranking that
moves (behind a 1-hour cache): a listing spread over hours of count requests would cross
cache refreshes and skip or repeat packages at page boundaries; back to back, it reads one
ranking. A package listed twice anyway is kept once (`BaseSpider.first_seen`).

A top-N listing is not a census: a package absent from it merely left the top N. Its
snapshot is written with coverage `top` by downloads (`crawler/run.py` `_crawl` opens it so),
and the store tombstones none of the absent ones.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import quote, urlencode

from scrapy import Request
from scrapy.http import Response

from crawler import registry_parse
from crawler.context import CrawlContext, payload_of
from crawler.errors import Malformed
from crawler.items import PageResult
from crawler.services import NPM_DOWNLOADS, PYPI_STATS
from crawler.settings import host_of
from crawler.spider_base import GONE, BaseSpider, answer_time, observed_at

log = logging.getLogger("hubtide.crawler")

# count requests in flight at once; the service budgets set the pace, this only keeps
# them from filling the downloader's per-host slots ahead of the next listing page
COUNT_CONCURRENCY = 4
PERIOD = "last-month"  # what ecosyste.ms reports for npm and PyPI (`downloads_period`)


class RegistrySpider(BaseSpider):
    """The top N packages of one registry by downloads, through ecosyste.ms."""

    name = "hubtide-registry"

    def __init__(self, ctx: CrawlContext, **kw: Any) -> None:
        super().__init__(ctx, **kw)
        s = ctx.settings
        self.per_page = max(1, min(s.registry_page_size, s.registry_top_n))
        self.top_n = s.registry_top_n
        ctx.run.pages_total = math.ceil(self.top_n / self.per_page)
        self.registry: str | None = None
        self._count_sem: asyncio.Semaphore | None = None
        self.fallbacks = 0  # packages that kept ecosyste.ms's figure
        # listing pages read, waiting for their counts (after the listing's last page):
        # at most `registry_top_n` rows (10,000 by default: a few MB)
        self.held: list[PageResult] = []

    def _mailto(self) -> list[tuple[str, str]]:
        c = self.ctx.settings.contact
        return [("mailto", c.removeprefix("mailto:"))] if "@" in c else []

    def page_url(self, page: int) -> str:
        s = self.ctx.settings
        assert self.registry is not None
        params = [
            ("sort", "downloads"),
            ("order", "desc"),
            ("per_page", str(self.per_page)),
            ("page", str(page + 1)),
            *self._mailto(),
        ]
        return (
            f"{s.ecosystems_endpoint}/api/v1/registries/{quote(self.registry, safe='')}"
            f"/packages?{urlencode(params)}"
        )

    async def start(self) -> AsyncIterator[Any]:
        ctx = self.ctx
        await self.ahead.acquire()
        if ctx.start_url:
            yield Request(
                ctx.start_url,
                callback=self.parse_page,
                errback=self.page_errback,
                dont_filter=True,
                meta={"page": ctx.start_page},
            )
            return
        wanted = ctx.settings.ecosystem_of(ctx.source)
        url = f"{ctx.settings.ecosystems_endpoint}/api/v1/registries"
        if self._mailto():
            url += "?" + urlencode(self._mailto())
        body, resp = await self.fetch_json(url)
        name = None
        if body is not None and body is not GONE:
            try:
                name = registry_parse.registry_name(body, wanted)
            except Malformed as exc:
                ctx.error(str(exc), url, payload_of(body))
        if name is None and (body is None or body is GONE):
            # no answer is not "no such registry": name the host and what it gave
            host = host_of(url)
            errs = [e.reason for e in ctx.events if e.kind == "error"]
            why = ctx.down.get(host) or (
                f"HTTP {resp.status}" if resp is not None else (errs[-1] if errs else "no answer")
            )
            ctx.fail(f"ecosyste.ms at {host} could not be asked for its registries: {why}")
        elif name is None:
            ctx.fail(f"ecosyste.ms lists no registry for {wanted!r}")
            ctx.error(f"no registry for {wanted!r}", url)
            self.ahead.release()
            return
        self.registry = name
        yield Request(
            self.page_url(ctx.start_page),
            callback=self.parse_page,
            errback=self.page_errback,
            dont_filter=True,
            meta={"page": ctx.start_page},
        )

    async def parse_page(self, response: Response) -> AsyncIterator[Any]:
        ctx = self.ctx
        page = int(response.meta.get("page", 0))
        if self.registry is None:
            self.registry = _registry_from_url(response.url)
        data, retry = self.listing_json(response)
        if retry is not None:
            yield retry
            return
        if not isinstance(data, list):
            if data is not None:
                ctx.fail(f"registry page {response.url}: not a JSON array")
            self.close_page(page)
            async for held in self.counted_pages():
                yield held
            yield PageResult(page, [], response.url, last=True, failed=True)
            return
        remaining = self.top_n - page * self.per_page
        data = data[: max(0, remaining)]
        rows: list[dict[str, Any]] = []
        eco = ctx.settings.ecosystem_of(ctx.source)
        for item in data:
            try:
                rows.append(registry_parse.package_row(item, eco))
            except Malformed as exc:
                ctx.event("malformed", str(exc), response.url, payload_of(item))
                row = await self.refetch_package(item)
                if row is not None:
                    rows.append(row)
        # OFFSET paging over a moving ranking lists a package again on a later page when
        # it fell across the boundary: kept once, before any count is asked for it
        rows = self.first_seen(rows, response.url)
        # ecosyste.ms's `last_synced_at` where the record has one, else the page's time
        observed_at(rows, answer_time(response))
        more = len(data) == self.per_page and (page + 1) * self.per_page < self.top_n
        nxt = self.page_url(page + 1) if more else None
        request = None
        if nxt is not None:
            request = await self.next_page_request(nxt, page, self.parse_page, self.page_errback)
        # held before the next page's request is handed over, so that page (were it the
        # last) finds this one waiting
        self.held.append(PageResult(page, rows, nxt, last=request is None))
        if nxt is None:
            ctx.listing_done = True
        ctx.items += len(rows)
        ctx.stats.count_items(ctx.source, len(rows))
        self.close_page(page)
        if request is not None:
            yield request  # the next listing page at once: no count request goes first
            return
        async for held in self.counted_pages():
            yield held

    async def counted_pages(self) -> AsyncIterator[PageResult]:
        """The held listing pages in order, each with its own download counts: run once
        the listing has ended (its last page, a failure or a stop)."""
        while self.held:
            result = self.held.pop(0)
            await self.own_counts(result.rows)
            yield result

    async def page_errback(self, failure: Any) -> AsyncIterator[PageResult]:
        """A listing page that could not be fetched: the pages read before it go to the
        pipeline with their counts, then the failed page (which ends the run)."""
        failed = self.listing_errback(failure)
        async for held in self.counted_pages():
            yield held
        yield failed

    async def refetch_package(self, item: Any) -> dict[str, Any] | None:
        ctx = self.ctx
        name = item.get("name") if isinstance(item, dict) else None
        if not isinstance(name, str) or self.registry is None:
            ctx.lost += 1
            ctx.fail("a package record without a name could not be fetched again")
            return None
        url = (
            f"{ctx.settings.ecosystems_endpoint}/api/v1/registries/"
            f"{quote(self.registry, safe='')}/packages/{quote(name, safe='')}"
        )
        body, _ = await self.fetch_json(url, detail="package_info")
        if body is GONE:
            return None
        try:
            if body is None:
                raise Malformed("package lookup kept failing")
            return registry_parse.package_row(body, ctx.settings.ecosystem_of(ctx.source))
        except Malformed as exc:
            ctx.lost += 1
            ctx.fail(f"{name}: record malformed and its lookup too ({exc})")
            return None

    # ------------------------------------------------------------ own download counts
    def count_service(self, rows: list[dict[str, Any]]) -> str | None:
        """The download-count service for these rows, or None when none is configured."""
        s = self.ctx.settings
        eco = rows[0].get("ecosystem") if rows else None
        if eco is None:
            eco = s.ecosystem_of(self.ctx.source)
        if eco == "npm" and s.npm_downloads_endpoint:
            return NPM_DOWNLOADS
        if eco == "pypi" and s.pypi_stats_endpoint:
            return PYPI_STATS
        return None

    async def own_counts(self, rows: list[dict[str, Any]]) -> None:
        """Replace each row's `downloads` by the registry's own last-month count; rows the
        service gave no count for keep ecosyste.ms's, with a `fallback` event each."""
        service = self.count_service(rows)
        if service is None:
            return
        if self._count_sem is None:
            self._count_sem = asyncio.Semaphore(
                max(1, min(COUNT_CONCURRENCY, self.ctx.settings.concurrency))
            )
        names = [r["name"] for r in rows]
        if service == NPM_DOWNLOADS:
            groups = registry_parse.npm_batches(names)
            answers = await asyncio.gather(*(self.npm_counts(g) for g in groups))
        else:
            answers = await asyncio.gather(*(self.pypistats_count(n) for n in names))
        counts: dict[str, int] = {}
        why: dict[str, tuple[str, str]] = {}
        for got, missing in answers:
            counts.update(got)
            why.update(missing)
        for row in rows:
            name = row["name"]
            if name in counts:
                row["downloads"] = counts[name]
                row["downloads_period"] = PERIOD
                continue
            reason, url = why.get(name, ("no answer", ""))
            self.fallbacks += 1
            self.ctx.event(
                "fallback",
                f"{name}: {service} gave no count ({reason}); ecosyste.ms figure kept",
                url or None,
            )

    async def npm_counts(
        self, names: list[str]
    ) -> tuple[dict[str, int], dict[str, tuple[str, str]]]:
        """One npm `point` request for `names` (a bulk group or one scoped name):
        (name -> count, name -> (why it has none, url))."""
        base = self.ctx.settings.npm_downloads_endpoint
        if len(names) == 1 and names[0].startswith("@"):
            # scoped names go unescaped in the path (`@scope/name`), one per request
            path = quote(names[0], safe="@/")
        else:
            path = ",".join(quote(n, safe="@") for n in names)
        url = f"{base}/downloads/point/{PERIOD}/{path}"
        assert self._count_sem is not None
        async with self._count_sem:
            body, resp = await self.fetch_json(url, detail=NPM_DOWNLOADS)
        got: dict[str, int] = {}
        reason = ""
        if body is GONE:
            reason = "HTTP 404: unknown to the service"
        elif body is None:
            reason = f"request failed ({_status(resp)})"
        else:
            try:
                got = registry_parse.npm_point_downloads(body, names)
                reason = "no count in its answer"
            except Malformed as exc:
                self.ctx.event("malformed", str(exc), url, payload_of(body))
                reason = f"malformed answer: {exc}"
        return got, {n: (reason, url) for n in names if n not in got}

    async def pypistats_count(self, name: str) -> tuple[dict[str, int], dict[str, tuple[str, str]]]:
        """One pypistats `recent` request: ({name: count} or {}, {name: (why, url)})."""
        base = self.ctx.settings.pypi_stats_endpoint
        # pypistats wants the name lower-cased (it maps `.` and `_` to `-` itself)
        url = f"{base}/api/packages/{quote(name.lower(), safe='')}/recent?period=month"
        assert self._count_sem is not None
        async with self._count_sem:
            body, resp = await self.fetch_json(url, detail=PYPI_STATS)
        if body is GONE:
            return {}, {name: ("HTTP 404: unknown to the service", url)}
        if body is None:
            return {}, {name: (f"request failed ({_status(resp)})", url)}
        try:
            n = registry_parse.pypistats_recent(body)
        except Malformed as exc:
            self.ctx.event("malformed", str(exc), url, payload_of(body))
            return {}, {name: (f"malformed answer: {exc}", url)}
        if n is None:
            return {}, {name: ("no last_month in its answer", url)}
        return {name: n}, {}

    def closed(self, reason: str) -> None:
        if self.fallbacks:
            log.warning(
                "%s: %d packages kept ecosyste.ms's download count (see ops/crawl_events)",
                self.ctx.source,
                self.fallbacks,
            )


def _status(resp: Response | None) -> str:
    if resp is None:
        return "no response after retries"
    if resp.status == 200:
        return "body kept failing to parse"
    return f"HTTP {resp.status} after retries"


def _registry_from_url(url: str) -> str | None:
    marker = "/api/v1/registries/"
    if marker not in url:
        return None
    from urllib.parse import unquote

    return unquote(url.split(marker, 1)[1].split("/", 1)[0])
