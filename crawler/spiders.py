"""The Hub listing spider: `/api/models` etc. with exactly the expand fields it needs.

Each page is parsed into rows, checked against the previous snapshot (`prev`), given its
details (`hub_details`) and handed to the pipeline as one `PageResult`. The registry
spider lives in `registry_spider`; both are re-exported here for `run`.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import quote, urlencode

from scrapy import Request
from scrapy.http import Response

from crawler import hub_page, hub_parse
from crawler.context import CrawlContext, make_event, payload_of
from crawler.errors import Malformed
from crawler.hub_details import HubDetails
from crawler.items import PageResult
from crawler.links import next_link
from crawler.middlewares import retry_request
from crawler.registry_spider import RegistrySpider
from crawler.spider_base import GONE, answer_time, observed_at
from storage import CrawlEvent
from storage.schemas import repo_type_of

__all__ = ["HubSpider", "RegistrySpider"]

# The order a Hub listing is walked in: creation order, ties on `_id` (see
# `HubSpider.first_url`). A module constant, not a setting: no other order is correct;
# tests/crawler/test_live_walk.py swaps it for the default order to show that one fails.
WALK_ORDER: tuple[tuple[str, str], ...] = (("sort", "createdAt"), ("direction", "1"))


class HubSpider(HubDetails):
    """One Hub listing (`/api/models` etc.) with exactly the expand fields of `EXPAND`."""

    name = "hubtide-hub"

    def __init__(self, ctx: CrawlContext, **kw: Any) -> None:
        super().__init__(ctx, **kw)
        self.repo_type = repo_type_of(ctx.source)
        self.detail_sem: asyncio.Semaphore | None = None

    def first_url(self) -> str:
        """The listing's first page, in creation order (`sort=createdAt&direction=1`).

        The Hub's default order (trending) and every counter order move while a walk runs,
        and its keyset cursor then skips or repeats a repo whose key crossed it; creation
        time never changes and ties break on `_id`, so a repo created during the walk
        lands after the cursor and a deleted one merely drops out (docs/crawler.md).
        """
        s = self.ctx.settings
        params = [("expand", f) for f in hub_parse.EXPAND[self.repo_type]]
        params += [*WALK_ORDER, ("limit", str(s.hub_page_size))]
        return f"{s.hub_endpoint}/api/{self.repo_type}s?{urlencode(params)}"

    async def start(self) -> AsyncIterator[Any]:
        await self.ahead.acquire()
        url = self.ctx.start_url or self.first_url()
        yield Request(
            url,
            callback=self.parse_listing,
            errback=self.listing_errback,
            dont_filter=True,
            meta={"page": self.ctx.start_page},
        )

    async def parse_listing(self, response: Response) -> AsyncIterator[Any]:
        ctx = self.ctx
        page = int(response.meta.get("page", 0))
        # the fast path: the whole page decoded into typed records at once (hub_page);
        # a page it does not take goes the record-by-record way below
        records = (
            hub_page.decode_page(response.body, self.repo_type) if response.status == 200 else None
        )
        data, retry = (records, None) if records is not None else self.listing_json(response)
        if retry is not None:
            yield retry
            return
        if data is None:
            self.close_page(page)
            yield PageResult(page, [], response.url, last=True, failed=True)
            return
        if not isinstance(data, list):
            ctx.event(
                "malformed", "listing page is not a JSON array", response.url, payload_of(data)
            )
            retry = retry_request(ctx, response.request, "listing page is not an array")  # type: ignore[arg-type]
            if retry is not None:
                yield retry
                return
            ctx.fail(f"listing page {response.url}: not a JSON array")
            self.close_page(page)
            yield PageResult(page, [], response.url, last=True, failed=True)
            return
        nxt = next_link(response.headers.get("Link"))
        last = nxt is None
        if nxt is not None:
            # ask for the next page before parsing this one: the server builds it meanwhile
            request = await self.next_page_request(nxt, page, self.parse_listing)
            if request is None:
                last = True
            else:
                yield request
        # parsed off the event loop: meanwhile the loop sends the next page's request and
        # takes in its answer (the listing is a chain; one page in flight is all there is)
        rows, suspects, events = await asyncio.to_thread(
            self.parse_page, data, records is not None, response.body, response.url
        )
        ctx.events.extend(events)
        # records that looked wrong: fetch them again, one repo-info request each
        for item, name in suspects:
            row = await self.refetch(item, name)
            if row is not None:
                rows.append(row)
        # creation order cannot list a repo twice; should the server repeat one anyway
        # (an order it does not keep), it is kept once, before its details are fetched
        rows = self.first_seen(rows, response.url)
        # refetched suspects included: the page's answer time is when the listing saw them
        observed_at(rows, answer_time(response))
        result = PageResult(page, rows, nxt, last=last)
        if ctx.settings.details:
            await self.page_details(result)
        if nxt is None:
            ctx.listing_done = True
        ctx.items += len(rows)
        ctx.stats.count_items(ctx.source, len(rows))
        self.close_page(page)
        yield result

    def parse_page(
        self, data: list[Any], typed: bool, body: bytes, url: str
    ) -> tuple[list[dict[str, Any]], list[tuple[Any, str | None]], list[CrawlEvent]]:
        """One page -> (rows with their `_state`, suspects to fetch again, events).

        `data` holds typed records (`typed`, from `hub_page.decode_page`) or the decoded
        JSON. Runs in a worker thread: it only reads the context (settings, `prev`) and
        returns its events instead of queueing them (the pipeline swaps `ctx.events` on
        the loop's thread).
        """
        rows = hub_page.page_rows(data, self.repo_type) if typed else None
        if rows is not None:
            return self.screen(rows, [], [], url)
        if typed:
            # typed records the fast path does not take: the page record by record
            data = json.loads(body)
        return self.parse_items(data, url)

    def parse_items(
        self, data: list[Any], url: str
    ) -> tuple[list[dict[str, Any]], list[tuple[Any, str | None]], list[CrawlEvent]]:
        """Decoded JSON records -> rows, checked one by one: each bad record is filed with
        its reason and becomes a suspect (fetched again); then `screen`."""
        events: list[CrawlEvent] = []
        rows: list[dict[str, Any]] = []
        suspects: list[tuple[Any, str | None]] = []
        repo_row, nulls_of = hub_parse.repo_row, hub_parse.suspicious_nulls
        for item in data:
            try:
                row = repo_row(item, self.repo_type)
            except Malformed as exc:
                name = item.get("id") if isinstance(item, dict) else None
                events.append(make_event("malformed", str(exc), url, payload_of(item)))
                suspects.append((item, name if isinstance(name, str) else None))
                continue
            nulls = nulls_of(item)
            if nulls:
                reason = f"null {', '.join(nulls)}"
                events.append(make_event("malformed", reason, url, payload_of(item)))
                suspects.append((item, row["name"]))
                continue
            rows.append(row)
        return self.screen(rows, suspects, events, url)

    def screen(
        self,
        rows: list[dict[str, Any]],
        suspects: list[tuple[Any, str | None]],
        events: list[CrawlEvent],
        url: str,
    ) -> tuple[list[dict[str, Any]], list[tuple[Any, str | None]], list[CrawlEvent]]:
        """Rows checked against the last complete snapshot: each kept one gets its
        `_state`; one that lost an optional field while unchanged, or a new one whose
        tags imply card metadata it lacks, becomes a suspect."""
        ctx = self.ctx
        keep = []
        initial = ctx.prev.initial
        for row, st in zip(rows, ctx.prev.classify(rows), strict=True):
            if st.lost:
                # unchanged sha/lastModified but an optional field vanished: suspect
                reason = "optional field missing on an unchanged repo"
                events.append(make_event("malformed", reason, url))
                suspects.append((row, row["name"]))
                continue
            if st.new and not initial and hub_parse.card_implied_by_tags(row):
                # a new repo's card is only read when a refresh draws it, so the listing is the
                # only witness: tags derived from card metadata but no cardData is suspect
                reason = "tags imply card metadata but cardData is missing"
                events.append(make_event("malformed", reason, url))
                suspects.append((row, row["name"]))
                continue
            row["_state"] = st
            keep.append(row)
        return keep, suspects, events

    def info_url(self, name: str) -> str:
        s = self.ctx.settings
        params = urlencode([("expand", f) for f in hub_parse.EXPAND[self.repo_type]])
        return f"{s.hub_endpoint}/api/{self.repo_type}s/{quote(name, safe='/')}?{params}"

    async def refetch(self, item: Any, name: str | None) -> dict[str, Any] | None:
        ctx = self.ctx
        if name is None:
            ctx.lost += 1
            ctx.fail("a listing record without an id could not be fetched again")
            return None
        body, _resp = await self.fetch_json(self.info_url(name), detail="repo_info")
        if body is GONE:
            return None  # deleted since the page was served: absent is the truth
        try:
            if body is None:
                raise Malformed("repo info kept failing")
            row = hub_parse.repo_row(body, self.repo_type)
        except Malformed as exc:
            ctx.lost += 1
            ctx.fail(f"{name}: record malformed and its repo info too ({exc})")
            return None
        row["_state"] = ctx.prev.classify([row])[0]
        return row
