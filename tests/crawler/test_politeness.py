"""Politeness: Retry-After and RateLimit header parsing, back-off, the budget's arithmetic
and its adaptation to the server's headers, and the token going to the Hub only. The
middlewares run on real Scrapy requests and responses, with a real crawl context (store in
tmp); only Scrapy's crawler object is stood in for (it just carries the spider)."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from scrapy import Request
from scrapy.http import Response

from crawler.budget import ROUNDING, Budget, parse_policy, parse_ratelimit, reset_budgets
from crawler.context import CrawlContext
from crawler.middlewares import (
    DELAY_KEY,
    PoliteRetryMiddleware,
    ServiceMiddleware,
    backoff,
    server_wait,
)
from crawler.services import HUB_API, HUB_RESOLVERS, budget_of, service_of
from crawler.settings import CrawlSettings
from crawler.stats import CrawlStats
from storage import Store

HUB = "http://127.0.0.1:9"
S = CrawlSettings(
    hub_endpoint=HUB,
    ecosystems_endpoint=HUB + "/ecosystems",
    npm_downloads_endpoint="http://127.0.0.2:9/npm",
    hub_token="hf_test_secret",
    max_retries=2,
    backoff_base_seconds=0.5,
    backoff_max_seconds=4.0,
    hub_requests_per_window=3,
    hub_window_seconds=10.0,
)


@pytest.fixture
def crawler(tmp_path: Path) -> Any:
    reset_budgets()
    store = Store.open(str(tmp_path / "store"))
    writer = store.begin_snapshot("hub:model")
    stats = CrawlStats()
    ctx = CrawlContext("hub:model", S, store, writer, stats, stats.start("hub:model", 1))
    return SimpleNamespace(spider=SimpleNamespace(ctx=ctx))


def resp(url: str, status: int, **headers: str) -> Response:
    return Response(url, status=status, headers=headers, request=Request(url))


def test_ratelimit_and_policy_headers() -> None:
    assert parse_ratelimit('"api";r=12;t=30') == ("api", 12, 30)
    assert parse_ratelimit("api;r=0;t=5") == ("api", 0, 5)
    assert parse_ratelimit("garbage") is None and parse_ratelimit(None) is None
    assert parse_policy('"fixed window";"api";q=1000;w=300') == (1000, 300.0)
    assert parse_policy('"fixed window";"api"') is None


def test_server_wait_reads_ratelimit_then_retry_after() -> None:
    url = HUB + "/api/models"
    assert server_wait(resp(url, 429, RateLimit='"api";r=0;t=7')) == 7 + ROUNDING
    assert server_wait(resp(url, 429, RateLimit='"api";r=3;t=7')) is None  # not exhausted
    assert server_wait(resp(url, 503, **{"Retry-After": "4"})) == 4.0
    when = format_datetime(datetime.now(UTC) + timedelta(seconds=30), usegmt=True)
    wait = server_wait(resp(url, 503, **{"Retry-After": when}))
    assert wait is not None and 25 < wait <= 30
    assert server_wait(resp(url, 503, **{"Retry-After": "soon"})) is None


def test_backoff_is_exponential_with_full_jitter() -> None:
    for attempt, cap in ((0, 0.5), (1, 1.0), (2, 2.0), (5, 4.0)):
        waits = [backoff(attempt, 0.5, 4.0) for _ in range(200)]
        assert all(0 <= w <= cap for w in waits)
        assert max(waits) > cap * 0.8  # the range is used, not a constant


def test_budget_rolling_window() -> None:
    b = Budget(quota=3, window=10.0, margin=0.5)
    assert [b.reserve(now=100.0) for _ in range(3)] == [0.0, 0.0, 0.0]
    # the 4th waits until the 1st leaves the window (+ margin)
    assert b.reserve(now=101.0) == pytest.approx(9.5)
    b.block_for(20.0, now=102.0)
    assert b.hold(now=110.0) == pytest.approx(12.5)


def test_budget_adapts_to_the_servers_headers() -> None:
    b = Budget(quota=1000, window=300.0)
    b.observe(5, 60, (100, 60.0))  # stricter: 100 per 60 s < 1000 per 300 s
    assert (b.quota, b.window) == (100, 60.0)
    b.observe(5, 60, (10_000, 60.0))  # looser than configured: ours stays
    assert (b.quota, b.window) == (100, 60.0)
    now = time.monotonic()
    b.observe(0, 4)  # exhausted: hold until the server's window resets
    assert b.hold(now) >= 4 + ROUNDING


def test_token_goes_to_the_hub_only(crawler: Any) -> None:
    mw = ServiceMiddleware(crawler)
    ctx = crawler.spider.ctx

    async def send(url: str, kind: str = "") -> Request:
        req = Request(url, meta={"hubtide_detail": kind}, headers={"Authorization": "Bearer x"})
        await mw.process_request(req)
        return req

    api = asyncio.run(send(HUB + "/api/models/a/b/commits/main", "commits"))
    card = asyncio.run(send(HUB + "/a/b/resolve/main/README.md", "cards"))
    eco = asyncio.run(send(HUB + "/ecosystems/api/v1/registries"))
    npm = asyncio.run(send("http://127.0.0.2:9/npm/downloads/point/last-day/a"))
    assert api.headers[b"Authorization"] == b"Bearer hf_test_secret"
    assert card.headers[b"Authorization"] == b"Bearer hf_test_secret"
    # same host as the Hub (one simulator), but another service: no token
    assert b"Authorization" not in eco.headers and b"Authorization" not in npm.headers
    assert service_of(card.url, S) == HUB_RESOLVERS and service_of(api.url, S) == HUB_API
    assert ctx.detail_kinds == {"commits": 1, "cards": 1} and ctx.requests == 4
    assert "hf_test_secret" not in repr(S)


def test_429_retries_after_the_servers_wait_and_blocks_the_service(crawler: Any) -> None:
    mw = PoliteRetryMiddleware(crawler)
    url = HUB + "/api/models"
    req = Request(url)
    before = time.monotonic()
    out = mw.process_response(req, resp(url, 429, RateLimit='"api";r=0;t=3'))
    assert isinstance(out, Request) and out.meta["retry_times"] == 1
    assert out.meta[DELAY_KEY] == 0.0  # the budget holds it (and every other API request)
    assert budget_of(HUB_API, url, S).hold(before) >= 3 + ROUNDING
    # 503 with Retry-After, then retries run out: the response is handed on
    again = mw.process_response(out, resp(url, 503, **{"Retry-After": "1"}))
    assert isinstance(again, Request) and again.meta["retry_times"] == 2
    final = mw.process_response(again, resp(url, 500))
    assert isinstance(final, Response) and final.status == 500
    # a 404 is not retried; a network error is, with back-off
    assert isinstance(mw.process_response(req, resp(url, 404)), Response)
    retry = mw.process_exception(req, ConnectionResetError("reset"))
    assert retry is not None and 0 <= retry.meta[DELAY_KEY] <= S.backoff_base_seconds
    events = crawler.spider.ctx.events
    assert [e.kind for e in events] == ["retry"] * 3
    assert "HTTP 429" in events[0].reason
