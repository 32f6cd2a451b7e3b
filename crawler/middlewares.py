"""Downloader middlewares: the one HTTP choke point of a crawl.

`ServiceMiddleware` (next to the downloader) waits for a back-off delay and a budget slot,
adds the token (Hub services only), counts every response in `crawler.stats`, and reads the
Hub's `RateLimit` header. `PoliteRetryMiddleware` replaces Scrapy's RetryMiddleware: it
retries 408/429/5xx and network errors with exponential back-off and full jitter, and
honours `Retry-After` and `RateLimit: ...;r=0;t=N` (Scrapy ignores both: stack-notes.md).
A host failing for `max_outage_seconds` is taken as down: its requests are dropped unsent
(`CrawlContext.answered`).
Settings read: timeout, max_retries, backoff_*, max_outage_seconds, hub_requests_per_window,
hub_window_seconds.
"""

from __future__ import annotations

import asyncio
import random
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from scrapy import Request
from scrapy.exceptions import IgnoreRequest
from scrapy.http import Response

from crawler.budget import ROUNDING, Budget, budget_for, hub_bucket, parse_policy, parse_ratelimit
from crawler.services import HUB_API, HUB_RESOLVERS, HUB_SERVICES, budget_of, service_of
from crawler.settings import CrawlSettings, host_of

if TYPE_CHECKING:
    from scrapy.crawler import Crawler

    from crawler.context import CrawlContext

RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
OUTAGE_STATUSES = RETRY_STATUSES - {429}  # answers that count towards max_outage_seconds
DELAY_KEY = "hubtide_delay"
SERVICE_KEY = "hubtide_service"
RETRIED_429_KEY = "hubtide_429_retried"
HUB_PAGES = "hub-pages"
WAIT_SHOWN = 1.0  # seconds: a shorter pause is pacing noise, a longer one is shown


def bucket_of(service: str, url: str) -> str:
    """The quota bucket a request spends: the Hub's api/resolvers/pages by its path (the
    names the Hub's `RateLimit` header uses), else the service's own budget."""
    if service in HUB_SERVICES:
        return hub_bucket(urlsplit(url).path)
    return service


def request_budget(service: str, url: str, s: CrawlSettings, bucket: str | None = None) -> Budget:
    """The budget a request spends: for the Hub, its bucket's (`bucket` as the server named
    it, else by the path), three separate budgets; else its service's."""
    if service not in HUB_SERVICES:
        return budget_of(service, url, s)
    bucket = bucket or hub_bucket(urlsplit(url).path)
    if bucket == "resolvers":
        return budget_of(HUB_RESOLVERS, url, s)
    if bucket == "pages":
        # the Hub's pages bucket is a fifth of the API one (free tier: 200 vs 1000 per 5 min);
        # the server's RateLimit-Policy tightens it further when it says so
        quota = max(1, s.hub_requests_per_window // 5)
        return budget_for(HUB_PAGES, host_of(url), quota, s.hub_window_seconds)
    return budget_of(HUB_API, url, s)


def _ctx(crawler: Crawler) -> CrawlContext:
    spider = crawler.spider
    assert spider is not None
    ctx: CrawlContext = spider.ctx  # type: ignore[attr-defined]
    return ctx


class ServiceMiddleware:
    """Budget, token, stats and the server's rate-limit state, per service."""

    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> ServiceMiddleware:
        return cls(crawler)

    async def process_request(self, request: Request) -> None:
        ctx = _ctx(self.crawler)
        s = ctx.settings
        service = service_of(request.url, s)
        request.meta[SERVICE_KEY] = service
        host = host_of(request.url)
        _drop_if_down(ctx, host)
        delay = float(request.meta.pop(DELAY_KEY, 0.0) or 0.0)
        if delay > 0:
            await asyncio.sleep(delay)
        bucket = bucket_of(service, request.url)
        budget = request_budget(service, request.url, s)
        wait = budget.reserve()
        if wait > 0:
            await _wait(ctx, bucket, wait)
        while (hold := budget.hold()) > 0:
            await _wait(ctx, bucket, hold)
        _drop_if_down(ctx, host)  # declared down while this request waited
        if service in HUB_SERVICES and s.hub_token:
            request.headers[b"Authorization"] = f"Bearer {s.hub_token}".encode()
        else:
            # never let a token reach another service (e.g. through a redirect)
            request.headers.pop(b"Authorization", None)
        ctx.requests += 1
        kind = request.meta.get("hubtide_detail")
        if kind:
            ctx.detail_requests += 1
            ctx.detail_kinds[str(kind)] += 1
            ctx.stats.count_detail(ctx.source)
        return None

    def process_response(self, request: Request, response: Response) -> Response:
        ctx = _ctx(self.crawler)
        service = request.meta.get(SERVICE_KEY) or service_of(request.url, ctx.settings)
        host = host_of(request.url)
        ctx.stats.count_request(ctx.source, host, response.status, len(response.body))
        if response.status != 429:  # a quota answer: the host is up, but not a good answer
            ctx.answered(host, response.status not in OUTAGE_STATUSES)
        if response.status == 429:
            ctx.event("rate_limited", f"HTTP 429 ({bucket_of(service, request.url)})", request.url)
        rl = parse_ratelimit(_header(response, "RateLimit"))
        if rl is not None:
            bucket, remaining, reset = rl
            policy = parse_policy(_header(response, "RateLimit-Policy"))
            # the bucket the server says it counted this request in is the one to pace
            budget = request_budget(service, request.url, ctx.settings, bucket)
            budget.observe(remaining, reset, policy)
        return response

    def process_exception(self, request: Request, exception: Exception) -> None:
        if isinstance(exception, IgnoreRequest):
            return None  # dropped here (a host down), never sent
        ctx = _ctx(self.crawler)
        host = host_of(request.url)
        ctx.stats.count_request(ctx.source, host, type(exception).__name__)
        ctx.answered(host, False)
        return None


async def _wait(ctx: CrawlContext, bucket: str, seconds: float) -> None:
    """Sleep for a budget; a wait long enough to notice is published (`CrawlStats.waits`)."""
    if seconds < WAIT_SHOWN:
        await asyncio.sleep(seconds)
        return
    ctx.stats.wait_begin(ctx.source, bucket, seconds)
    try:
        await asyncio.sleep(seconds)
    finally:
        ctx.stats.wait_end(ctx.source, bucket)


def _drop_if_down(ctx: CrawlContext, host: str) -> None:
    if host in ctx.down:
        raise IgnoreRequest(f"host down: {ctx.down[host]}")


def _header(response: Response, name: str) -> str | None:
    v = response.headers.get(name)
    if v is None:
        return None
    return v.decode("latin-1") if isinstance(v, bytes) else str(v)


def server_wait(response: Response) -> float | None:
    """Seconds the server asks us to wait: RateLimit `r=0;t=N`, else Retry-After."""
    rl = parse_ratelimit(_header(response, "RateLimit"))
    if rl is not None and rl[1] == 0:
        return float(rl[2]) + ROUNDING
    ra = _header(response, "Retry-After")
    if ra:
        ra = ra.strip()
        if ra.isdigit():
            return float(ra)
        try:
            import time

            return max(0.0, parsedate_to_datetime(ra).timestamp() - time.time())
        except (TypeError, ValueError):
            return None
    return None


def backoff(attempt: int, base: float, cap: float) -> float:
    """Exponential back-off with full jitter: uniform(0, min(cap, base * 2**attempt))."""
    return random.uniform(0.0, min(cap, base * (2**attempt)))


def retry_request(
    ctx: CrawlContext, request: Request, reason: str, delay: float | None = None
) -> Request | None:
    """A copy of `request` to send again after a delay, or None when retries are used up."""
    s = ctx.settings
    attempt = int(request.meta.get("retry_times", 0)) + 1
    host = host_of(request.url)
    if attempt > s.max_retries or host in ctx.down:
        return None
    if delay is None:
        delay = backoff(attempt - 1, s.backoff_base_seconds, s.backoff_max_seconds)
    left = ctx.outage_left(host)
    if left is not None:
        # never sleep past the moment the host would be declared down: the outage is then
        # seen on time, not a whole back-off later
        delay = min(delay, left + 0.01)
    new = request.copy()
    new.meta["retry_times"] = attempt
    new.meta[DELAY_KEY] = delay
    new.dont_filter = True
    new.priority = request.priority + 1
    ctx.stats.count_retry(ctx.source, host_of(request.url))
    ctx.retries += 1
    ctx.event("retry", f"attempt {attempt}: {reason}", request.url)
    return new


class PoliteRetryMiddleware:
    """Retry 408/429/5xx and network errors; wait what the server asks, else back off."""

    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> PoliteRetryMiddleware:
        return cls(crawler)

    def process_response(self, request: Request, response: Response) -> Request | Response:
        if response.status not in RETRY_STATUSES or request.meta.get("dont_retry"):
            return response
        ctx = _ctx(self.crawler)
        if response.status == 429 and request.meta.get(RETRIED_429_KEY):
            # a 429 costs at most one retry after the window resets: a second one means our
            # pacing and the server disagree, and hammering would not help
            return response
        wait = server_wait(response) if response.status in (429, 503) else None
        if wait is not None:
            service = request.meta.get(SERVICE_KEY) or service_of(request.url, ctx.settings)
            bucket = parse_ratelimit(_header(response, "RateLimit"))
            budget = request_budget(
                service, request.url, ctx.settings, bucket[0] if bucket else None
            )
            budget.block_for(wait)
            wait = 0.0  # the budget holds every request of the bucket, this one included
        new = retry_request(ctx, request, f"HTTP {response.status}", wait)
        if new is not None and response.status == 429:
            new.meta[RETRIED_429_KEY] = True
        return new if new is not None else response

    def process_exception(self, request: Request, exception: Exception) -> Request | None:
        if request.meta.get("dont_retry"):
            return None
        ctx = _ctx(self.crawler)
        reason = f"{type(exception).__name__}: {str(exception)[:200]}"
        return retry_request(ctx, request, reason)
