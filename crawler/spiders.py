"""The spiders: Hub listings with incremental details, and registry top-N listings.

A listing is a chain of pages (each page's Link names the next), fetched through Scrapy's
scheduler; a page's details (commits back to the newest stored one, discussions, the card)
and re-fetches of suspect records go through `engine.download_async`, so they pass the same
downloader middlewares (budget, token, retries). A page is handed to the pipeline as one
`PageResult` once all of its details are in; at most `AHEAD` pages are open at a time, so
memory stays bounded however large the listing.
"""

from __future__ import annotations

import asyncio
import json
import math
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode

import scrapy
from scrapy import Request
from scrapy.http import Response

from crawler import hub_parse, registry_parse
from crawler.context import CrawlContext, payload_of
from crawler.errors import Malformed
from crawler.items import PageResult
from crawler.links import next_link
from crawler.middlewares import retry_request
from crawler.prev import RowState
from storage.schemas import repo_type_of

AHEAD = 3  # listing pages open at once (fetched, details pending)
DETAIL_META = "hubtide_detail"
GONE = object()  # a 404: the entity went away between listing and detail
# 401/403 on a detail: a disabled, gated or private repo. The Hub answers so for good, not
# by accident, so it is recorded and skipped rather than failing the snapshot.
FORBIDDEN = object()
_PREFIX = {"model": "", "dataset": "datasets/", "space": "spaces/"}


@dataclass(frozen=True)
class DetailPlan:
    """The detail requests one listed repo gets in this crawl."""

    commits: bool
    discussions: bool
    card: bool


class _Base(scrapy.Spider):
    ctx: CrawlContext

    def __init__(self, ctx: CrawlContext, **kw: Any) -> None:
        super().__init__(**kw)
        self.ctx = ctx
        self._ahead: asyncio.Semaphore | None = None

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

    async def next_page_request(self, url: str, page: int, callback: Any) -> Request | None:
        """The request for the listing page after `page`, or None when a stop was asked
        (the crawl then ends after this page, resumable from its checkpoint)."""
        if self.ctx.stop_requested:
            self.ctx.stopped = True
            return None
        await self.ahead.acquire()  # bounds how far the listing runs ahead of the writer
        return Request(
            url,
            callback=callback,
            errback=self.listing_errback,
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


class HubSpider(_Base):
    """One Hub listing (`/api/models` etc.) with exactly the expand fields of `EXPAND`."""

    name = "hubtide-hub"

    def __init__(self, ctx: CrawlContext, **kw: Any) -> None:
        super().__init__(ctx, **kw)
        self.repo_type = repo_type_of(ctx.source)
        self.detail_sem: asyncio.Semaphore | None = None

    def first_url(self) -> str:
        s = self.ctx.settings
        params = [("expand", f) for f in hub_parse.EXPAND[self.repo_type]]
        params.append(("limit", str(s.hub_page_size)))
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
        data, retry = self.listing_json(response)
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
        rows, suspects = self.parse_items(data, response.url)
        # records that looked wrong: fetch them again, one repo-info request each
        for item, name in suspects:
            row = await self.refetch(item, name)
            if row is not None:
                rows.append(row)
        result = PageResult(page, rows, nxt, last=last)
        if ctx.settings.details:
            await self.page_details(result)
        if nxt is None:
            ctx.listing_done = True
        ctx.items += len(rows)
        ctx.stats.count_items(ctx.source, len(rows))
        self.close_page(page)
        yield result

    def parse_items(
        self, data: list[Any], url: str
    ) -> tuple[list[dict[str, Any]], list[tuple[Any, str | None]]]:
        ctx = self.ctx
        rows: list[dict[str, Any]] = []
        suspects: list[tuple[Any, str | None]] = []
        for item in data:
            name = item.get("id") if isinstance(item, dict) else None
            try:
                row = hub_parse.repo_row(item, self.repo_type)
            except Malformed as exc:
                ctx.event("malformed", str(exc), url, payload_of(item))
                suspects.append((item, name if isinstance(name, str) else None))
                continue
            nulls = hub_parse.suspicious_nulls(item)
            if nulls:
                ctx.event("malformed", f"null {', '.join(nulls)}", url, payload_of(item))
                suspects.append((item, row["name"]))
                continue
            rows.append(row)
        keep = []
        for row, st in zip(rows, ctx.prev.classify(rows), strict=True):
            if st.lost:
                # unchanged sha/lastModified but an optional field vanished: suspect
                ctx.event("malformed", "optional field missing on an unchanged repo", url)
                suspects.append((row, row["name"]))
                continue
            if st.new and not ctx.prev.initial and hub_parse.card_implied_by_tags(row):
                # a new repo's card is only read on its refresh day, so the listing is the
                # only witness: tags derived from card metadata but no cardData is suspect
                ctx.event("malformed", "tags imply card metadata but cardData is missing", url)
                suspects.append((row, row["name"]))
                continue
            row["_state"] = st
            keep.append(row)
        return keep, suspects

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

    def plan(self, row: dict[str, Any]) -> DetailPlan:
        """Which details of a listed repo this crawl fetches (docs/crawler.md, Details).

        Commits whenever the repo is new or its sha / lastModified moved: that is the only
        way to see new commits. Discussions change without a commit and the card's body
        without a metadata change, and the listing shows neither; so both are refreshed on
        a rotation: the repos whose entity hash falls in this snapshot's slot (one in
        `refresh_days`) get their discussions, and their card when it was read at an older
        sha. A card whose metadata keys changed is read at once. The first crawl of a
        source reads everything.
        """
        ctx = self.ctx
        st: RowState = row["_state"]
        if ctx.prev.initial:
            return DetailPlan(True, True, True)
        period = ctx.settings.refresh_days
        in_slot = period > 0 and st.key % period == ctx.writer.snapshot_id % period
        card = (st.card_keys_changed and not st.new) or (in_slot and st.card_stale)
        return DetailPlan(st.changed, in_slot, card)

    async def page_details(self, result: PageResult) -> None:
        ctx = self.ctx
        if self.detail_sem is None:
            self.detail_sem = asyncio.Semaphore(max(1, ctx.settings.concurrency * 2))
        todo: list[tuple[dict[str, Any], DetailPlan]] = []
        for r in result.rows:
            plan = self.plan(r)
            if r["_state"].changed:
                ctx.changed += 1
            if plan.commits or plan.discussions or plan.card:
                todo.append((r, plan))
        cap = ctx.settings.max_detail_repos
        if cap:
            room = max(0, cap - ctx.detail_repos)
            if len(todo) > room:
                ctx.fail(f"details capped at {cap} repos (max_detail_repos)")
                todo = todo[:room]
        ctx.detail_repos += len(todo)
        outs = await asyncio.gather(*(self.repo_details(r, p) for r, p in todo))
        for (row, _plan), out in zip(todo, outs, strict=True):
            if out is None:
                continue
            commits, discussions, card, card_mismatch = out
            if card_mismatch:
                # the card's front matter says the listing's cardData was cut: fetch again
                again = await self.refetch(row, row["name"])
                if again is not None:
                    i = result.rows.index(row)
                    result.rows[i] = again
            result.commits.extend(commits)
            result.discussions.extend(discussions)
            if card is not None:
                result.cards.append(card)

    async def repo_details(
        self, row: dict[str, Any], plan: DetailPlan
    ) -> tuple[list[dict[str, Any]], list[dict[str, Any]], dict[str, Any] | None, bool] | None:
        assert self.detail_sem is not None
        async with self.detail_sem:
            try:
                return await self._repo_details(row, plan)
            except Malformed as exc:
                self.ctx.error(f"{row['name']}: {exc}")
                self.ctx.fail(f"details of {row['name']}: {exc}")
                return None

    async def _repo_details(
        self, row: dict[str, Any], plan: DetailPlan
    ) -> tuple[list[dict[str, Any]], list[dict[str, Any]], dict[str, Any] | None, bool] | None:
        ctx = self.ctx
        s = ctx.settings
        rt = self.repo_type
        eid, name = row["entity_id"], row["name"]
        sid = ctx.writer.snapshot_id
        api = f"{s.hub_endpoint}/api/{rt}s/{quote(name, safe='/')}"
        commits: list[dict[str, Any]] = []
        if plan.commits:
            # newest first, back to the newest one already stored
            known = ctx.known_commits.get(eid, frozenset())
            url: str | None = f"{api}/commits/main"
            while url:
                body, resp = await self.fetch_json(url, detail="commits", forbidden_ok=True)
                if body is GONE:
                    ctx.event("gone", f"{name}: commits answered 404", url)
                    return [], [], None, False
                if body is FORBIDDEN and resp is not None:
                    reason = (resp.headers.get("X-Error-Message") or b"").decode(errors="replace")
                    ctx.event("forbidden", f"{name}: commits answered {resp.status} {reason}", url)
                    return [], [], None, False
                if body is None or resp is None:
                    ctx.fail(f"commits of {name} could not be fetched")
                    return None
                rows, reached = hub_parse.commit_rows(body, rt, eid, known, sid)
                commits.extend(rows)
                url = None if reached else next_link(resp.headers.get("Link"))
        discussions: list[dict[str, Any]] = []
        if plan.discussions:
            # every page, for their current state
            p = 0
            while True:
                durl = f"{api}/discussions?p={p}"
                body, resp = await self.fetch_json(durl, detail="discussions", forbidden_ok=True)
                if body is GONE or body is FORBIDDEN:
                    break
                if body is None:
                    ctx.fail(f"discussions of {name} could not be fetched")
                    return None
                rows, more = hub_parse.discussion_rows(body, rt, eid, sid)
                discussions.extend(rows)
                if not more or not rows:
                    break
                p += 1
        card = None
        mismatch = False
        if plan.card:
            # the card (README.md); 404 means the repo has none
            curl = f"{s.hub_endpoint}/{_PREFIX[rt]}{quote(name, safe='/')}/resolve/main/README.md"
            resp = await self.fetch(curl, detail="cards")
            if resp is None or resp.status not in (200, 404, 401, 403):
                ctx.fail(f"card of {name} could not be fetched")
                return None
            if resp.status in (200, 404):
                raw = resp.body if resp.status == 200 else None
                card = hub_parse.card_row(raw, rt, eid, row["sha"], sid)
                listed = row.get("card_fields")
                if card["metadata_fields"] and (
                    listed is None or set(listed) != set(card["metadata_fields"])
                ):
                    mismatch = True
        return commits, discussions, card, mismatch


class RegistrySpider(_Base):
    """The top N packages of one registry by downloads, through ecosyste.ms."""

    name = "hubtide-registry"

    def __init__(self, ctx: CrawlContext, **kw: Any) -> None:
        super().__init__(ctx, **kw)
        s = ctx.settings
        self.per_page = max(1, min(s.registry_page_size, s.registry_top_n))
        self.top_n = s.registry_top_n
        ctx.run.pages_total = math.ceil(self.top_n / self.per_page)
        self.registry: str | None = None

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
                errback=self.listing_errback,
                dont_filter=True,
                meta={"page": ctx.start_page},
            )
            return
        wanted = ctx.settings.ecosystem_of(ctx.source)
        url = f"{ctx.settings.ecosystems_endpoint}/api/v1/registries"
        if self._mailto():
            url += "?" + urlencode(self._mailto())
        body, _ = await self.fetch_json(url)
        name = None
        if body is not None and body is not GONE:
            try:
                name = registry_parse.registry_name(body, wanted)
            except Malformed as exc:
                ctx.error(str(exc), url, payload_of(body))
        if name is None:
            ctx.fail(f"ecosyste.ms lists no registry for {wanted!r}")
            ctx.error(f"no registry for {wanted!r}", url)
            self.ahead.release()
            return
        self.registry = name
        yield Request(
            self.page_url(ctx.start_page),
            callback=self.parse_page,
            errback=self.listing_errback,
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
        more = len(data) == self.per_page and (page + 1) * self.per_page < self.top_n
        nxt = self.page_url(page + 1) if more else None
        last = nxt is None
        if nxt is not None:
            request = await self.next_page_request(nxt, page, self.parse_page)
            if request is None:
                last = True
            else:
                yield request
        if nxt is None:
            ctx.listing_done = True
        ctx.items += len(rows)
        ctx.stats.count_items(ctx.source, len(rows))
        self.close_page(page)
        yield PageResult(page, rows, nxt, last=last)

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


def _registry_from_url(url: str) -> str | None:
    marker = "/api/v1/registries/"
    if marker not in url:
        return None
    from urllib.parse import unquote

    return unquote(url.split(marker, 1)[1].split("/", 1)[0])
