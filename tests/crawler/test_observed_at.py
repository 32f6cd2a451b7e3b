"""A crawl says when it observed each row (issue 16 point 2), end to end: real simulator
over HTTP, real store in tmp. A Hub row's `observed_at` is the HTTP `Date` of the listing
page that carried it (the simulator's answers are dated by a middleware here, one instant
per page); a registry row's is ecosyste.ms's `last_synced_at` of the package."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from crawler import crawl_source
from crawler.budget import reset_budgets
from crawler.stats import CrawlStats
from simulator.app import WORLD
from simulator.config import QuotaConfig, SimConfig
from simulator.testing import SimServer
from storage import Store
from tests.crawler.truth import settings_for

DATED = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)  # page i answers at DATED + i minutes


@pytest.fixture
def sim() -> Iterator[tuple[SimServer, list[list[str]]]]:
    pages: list[list[str]] = []  # the ids each Hub listing page served, in order

    @web.middleware
    async def dated(request: web.Request, handler: Any) -> web.StreamResponse:
        resp = await handler(request)
        if request.path == "/api/models":
            import json

            body = json.loads(resp.body)  # type: ignore[attr-defined]
            resp.headers["Date"] = format_datetime(DATED + timedelta(minutes=len(pages)), True)
            pages.append([r["_id"] for r in body])
        return resp

    cfg = SimConfig(seed=3, models=11, datasets=2, spaces=2, npm=120, pypi=20,
                    quota=QuotaConfig.parse("off"))  # fmt: skip
    srv = SimServer(cfg)
    srv.app.middlewares.append(dated)
    srv.start()
    try:
        yield srv, pages
    finally:
        srv.stop()


def _crawl(store: Store, source: str, url: str, **kw: Any) -> Any:
    reset_budgets()
    s = settings_for(url, details=False, **kw)
    return asyncio.run(crawl_source(store, source, s, stats=CrawlStats()))


def test_hub_rows_carry_their_listing_pages_date(
    tmp_path: Path, sim: tuple[SimServer, list[list[str]]]
) -> None:
    srv, pages = sim
    store = Store.open(str(tmp_path / "store"))
    r = _crawl(store, "hub:model", srv.url, hub_page_size=4)
    assert r.status == "complete", r
    assert len(pages) == 3  # 11 models, 4 a page
    want = {eid: DATED + timedelta(minutes=i) for i, ids in enumerate(pages) for eid in ids}
    got = store.as_of("hub:model", columns=["observed_at"]).collect()
    assert dict(got.rows()) == want
    # the same values seen again at a new time: no change rows, the new times
    r2 = _crawl(store, "hub:model", srv.url, hub_page_size=4)
    info = store.snapshot_info("hub:model", r2.snapshot_id)
    assert (info.upserts, info.tombstones) == (0, 0)
    got2 = dict(store.as_of("hub:model", columns=["observed_at"]).collect().rows())
    assert got2 == {
        eid: DATED + timedelta(minutes=3 + i) for i, ids in enumerate(pages[3:]) for eid in ids
    }


def test_registry_rows_carry_last_synced_at(
    tmp_path: Path, sim: tuple[SimServer, list[list[str]]]
) -> None:
    srv, _ = sim
    store = Store.open(str(tmp_path / "store"))
    r = _crawl(store, "npm", srv.url, registry_page_size=50, registry_top_n=100)
    assert r.status == "complete", r
    synced = datetime.fromtimestamp(srv.call(lambda: srv.app[WORLD].now), tz=UTC)
    got = store.as_of("npm", columns=["observed_at"]).collect()
    assert got.height == 100
    assert set(got["observed_at"].to_list()) == {synced}
