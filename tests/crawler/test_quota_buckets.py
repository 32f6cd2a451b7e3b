"""The Hub's three quota buckets in real crawls (real simulator over HTTP, real store): each
request is paced by the budget of the bucket the server counts it in, README cards spend
only the resolvers bucket, the budgets take the server's `RateLimit-Policy`, a 429 costs one
retry after the window resets (never two), and a crawl pacing to a quota says so in
`/api/status`, the status report and the `hubtide_crawl_waiting_seconds` gauge."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from scrapy import Request
from scrapy.http import Response

from crawler import crawl_source
from crawler.budget import budgets, hub_bucket, reset_budgets
from crawler.context import CrawlContext
from crawler.middlewares import RETRIED_429_KEY, PoliteRetryMiddleware, bucket_of
from crawler.result import CrawlResult
from crawler.services import HUB_API
from crawler.stats import CrawlStats, waiting_text
from scheduler.http import build_app
from scheduler.live import LiveState
from scheduler.metrics import DaemonMetrics
from scheduler.plan import SourcePlan
from scheduler.status import collect_status
from simulator.app import FAULTS
from simulator.config import QuotaConfig
from simulator.testing import simulator_server
from storage import Store
from tests.crawler.truth import settings_for
from tests.scheduler.server import get_json, serving

TINY = {"datasets": 2, "spaces": 2, "npm": 2, "pypi": 2}


def spend_api(url: str, n: int) -> None:
    """Spend `n` requests of this address's api bucket (the crawler's too: same client)."""
    for _ in range(n):
        with contextlib.suppress(urllib.error.HTTPError):
            urllib.request.urlopen(f"{url}/api/models?limit=1", timeout=10).close()


def test_each_request_spends_its_own_bucket() -> None:
    assert hub_bucket("/api/models") == "api"
    assert hub_bucket("/acme/m/resolve/main/README.md") == "resolvers"
    assert hub_bucket("/datasets/acme/d/resolve/main/README.md") == "resolvers"
    assert hub_bucket("/acme/m") == "pages"
    assert bucket_of(HUB_API, "http://h/acme/m/discussions") == "pages"
    assert bucket_of("npm-downloads", "http://h/npm/x") == "npm-downloads"


def test_cards_spend_only_resolvers_and_budgets_follow_the_policy(tmp_path: Path) -> None:
    reset_budgets()
    store = Store.open(str(tmp_path / "store"))
    quota = QuotaConfig(time_scale=100.0)  # the Hub's anonymous tier, windows of 3 s
    with simulator_server(seed=3, models=30, page_size=10, quota=quota, **TINY) as srv:
        s = settings_for(srv.url)  # configured far above the Hub's quotas
        res = asyncio.run(crawl_source(store, "hub:model", s, stats=CrawlStats()))
        windows = dict(srv.app[FAULTS].quota.windows)
    assert res.status == "complete", res
    cards = res.detail_kinds["cards"]
    assert cards > 0
    used = {bucket: n for (_client, bucket), (_start, n) in windows.items()}
    # the simulator counted every card in resolvers and none in api; no page was fetched
    assert used == {"resolvers": cards, "api": res.requests - cards}, (used, res)
    got = {svc: (b.quota, b.window, b.sent) for (svc, _host), b in budgets().items()}
    # our budgets are the server's buckets: sizes from RateLimit-Policy (500 and 3000 per
    # 300 s / 100), each charged with exactly the requests the server counted in it
    assert got == {
        "hub-api": (500, 3.0, res.requests - cards),
        "hub-resolvers": (3000, 3.0, cards),
    }, got


def test_a_429_is_retried_once_after_the_reset(tmp_path: Path) -> None:
    reset_budgets()
    store = Store.open(str(tmp_path / "store"))
    stats = CrawlStats()
    # a tiny api bucket (5 per 2 s), spent before the crawl starts: its first request is
    # refused and must wait for the window to reset
    with simulator_server(seed=3, models=20, page_size=10, faults="budget=5/2", **TINY) as srv:
        s = settings_for(srv.url, details=False)
        spend_api(srv.url, 5)
        t0 = time.monotonic()
        res = asyncio.run(crawl_source(store, "hub:model", s, stats=stats))
        took = time.monotonic() - t0
        refused = srv.app[FAULTS].quota.refused
    assert res.status == "complete", res
    assert refused == 1  # the server refused one request: the retry came after the reset
    assert sum(stats.rate_limited.values()) == 1 and sum(stats.retries.values()) == 1
    assert took >= 1.0, took  # it waited for the reset (t >= 1 s), not a back-off
    kinds = store.events().collect()["kind"].to_list()
    assert kinds.count("rate_limited") == 1 and kinds.count("retry") == 1, kinds


def test_a_second_429_is_handed_on(tmp_path: Path) -> None:
    reset_budgets()
    store = Store.open(str(tmp_path / "store"))
    s = settings_for("http://127.0.0.1:9", max_retries=5)
    stats = CrawlStats()
    ctx = CrawlContext(
        "hub:model", s, store, store.begin_snapshot("hub:model"), stats, stats.start("hub:model", 1)
    )
    mw = PoliteRetryMiddleware(SimpleNamespace(spider=SimpleNamespace(ctx=ctx)))  # type: ignore[arg-type]
    url = "http://127.0.0.1:9/api/models"
    h = {"RateLimit": '"api";r=0;t=1'}
    first = mw.process_response(Request(url), Response(url, status=429, headers=h))
    assert isinstance(first, Request) and first.meta[RETRIED_429_KEY]
    again = mw.process_response(first, Response(url, status=429, headers=h))
    assert isinstance(again, Response) and again.status == 429  # one retry, never two
    assert ctx.retries == 1


def test_waiting_shows_in_status_and_gauge(tmp_path: Path) -> None:
    reset_budgets()
    store = Store.open(str(tmp_path / "store"))
    stats = CrawlStats()
    live = LiveState(stats, ["hub:model"])
    metrics = DaemonMetrics(stats, version="test")
    seen: dict[str, Any] = {}
    with (
        simulator_server(seed=3, models=20, page_size=10, faults="budget=3/4", **TINY) as srv,
        serving(build_app(store, metrics.registry, live=live)) as api,
    ):
        s = settings_for(srv.url, details=False)
        spend_api(srv.url, 3)  # the crawl starts on a spent bucket: ~4 s of waiting
        box: dict[str, CrawlResult] = {}
        t = threading.Thread(
            target=lambda: box.setdefault(
                "res", asyncio.run(crawl_source(store, "hub:model", s, stats=stats))
            )
        )
        t.start()
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and t.is_alive():
            _code, body = get_json(f"{api}/api/status")
            run = next(iter(body["running"]), None)
            if run and run.get("waiting"):
                seen["status"] = run["waiting"]
                seen["report"] = collect_status(store, [SourcePlan("hub:model")], live=body)
                with urllib.request.urlopen(f"{api}/metrics", timeout=10) as r:
                    seen["metrics"] = r.read().decode()
                break
            time.sleep(0.05)
        t.join(30)
    assert box["res"].status == "complete", box
    w = seen["status"]
    assert w["bucket"] == "api" and 0 < w["seconds"] <= 5, w
    assert w["text"].startswith("waiting for the Hub's api budget, resets in "), w
    running = seen["report"].sources[0].running
    assert running["waiting"]["text"] == w["text"]
    gauge = [
        line
        for line in seen["metrics"].splitlines()
        if line.startswith('hubtide_crawl_waiting_seconds{bucket="api",source="hub:model"}')
    ]
    assert gauge and 0 < float(gauge[0].split()[-1]) <= 5, gauge
    # once the crawl ends nothing waits any more
    assert stats.waiting() == [] and waiting_text("api", 42) == (
        "waiting for the Hub's api budget, resets in 42 s"
    )


def test_progress_table_says_waiting() -> None:
    from rich.console import Console

    from hubtide.commands.crawl import progress_table

    stats = CrawlStats()
    stats.start("hub:model", 3)
    stats.wait_begin("hub:model", "resolvers", 42.4)
    stats.wait_begin("hub:model", "resolvers", 10.0)  # two requests wait; the longer shows
    console = Console(width=200, record=True)
    console.print(progress_table(stats, ["hub:model"], {}))
    assert "waiting for the Hub's resolvers budget, resets in 42 s" in console.export_text()
    stats.wait_end("hub:model", "resolvers")
    assert stats.waiting() and stats.waiting()[0][:2] == ("hub:model", "resolvers")
    stats.wait_end("hub:model", "resolvers")
    assert stats.waiting() == []
