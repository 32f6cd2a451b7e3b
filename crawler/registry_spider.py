"""The registry spider: the top N packages of one registry by downloads, through
ecosyste.ms (one registry per source; more registries are one config entry each)."""

from __future__ import annotations

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
from crawler.spider_base import GONE, BaseSpider


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
