"""A registry crawl's listing against a moving ecosyste.ms ranking, end to end (real
simulator over HTTP, real store in tmp): its pages are fetched back to back with the
count services after them, a package listed twice across pages is kept once (stored,
counted and its downloads asked for once), and a package that merely left the top N is
not tombstoned.

The simulator's ecosyste.ms pages by OFFSET over the downloads ranking, as the real one
does; here the world is advanced one day before every listing page but the first (the
same step `/_sim/advance` runs), so the ranking moves between pages and packages cross
page boundaries. A recording middleware on the simulator notes what each request was."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import polars as pl
import pytest
from aiohttp import web

from crawler import crawl_source
from crawler.budget import reset_budgets
from crawler.result import CrawlResult
from crawler.stats import CrawlStats
from simulator.app import WORLD
from simulator.config import QuotaConfig, SimConfig
from simulator.testing import SimServer
from storage import Store
from tests.crawler.truth import settings_for

LISTING = "/ecosystems/api/v1/registries/"
NPM_POINT = "/npm-downloads/downloads/point/last-month/"
PYPI = "/pypistats/api/packages/"


@dataclass
class Recorder:
    """What the simulator was asked, in order, and the names each listing page served."""

    move: bool = False  # advance the world a day before each listing page but the first
    kinds: list[str] = field(default_factory=list)  # "list", "count" or "other" per request
    served: list[list[str]] = field(default_factory=list)  # names per listing page
    counted: Counter[str] = field(default_factory=Counter)  # names asked of count services

    def middleware(self, world: Any) -> Any:
        @web.middleware
        async def record(request: web.Request, handler: Any) -> web.StreamResponse:
            path = request.path
            page = path.startswith(LISTING) and path.endswith("/packages")
            if page and self.move and self.served:
                world.advance(1)  # on the server's loop: the world is not touched mid-answer
            resp = await handler(request)
            if page:
                self.kinds.append("list")
                body = json.loads(resp.body)  # type: ignore[attr-defined]
                self.served.append([p["name"] for p in body])
            elif path.startswith(NPM_POINT):
                self.kinds.append("count")
                self.counted.update(unquote(n) for n in path[len(NPM_POINT) :].split(","))
            elif path.startswith(PYPI):
                self.kinds.append("count")
                self.counted[unquote(path[len(PYPI) :].split("/")[0])] += 1
            else:
                self.kinds.append("other")
            return resp

        return record


@pytest.fixture
def sim(request: pytest.FixtureRequest) -> Iterator[tuple[SimServer, Recorder]]:
    rec = Recorder(move=getattr(request, "param", False))
    cfg = SimConfig(seed=5, models=10, datasets=5, spaces=5, npm=900, pypi=400,
                    quota=QuotaConfig.parse("off"))  # fmt: skip
    srv = SimServer(cfg)
    srv.app.middlewares.append(rec.middleware(srv.app[WORLD]))
    srv.start()
    try:
        yield srv, rec
    finally:
        srv.stop()


def _crawl(store: Store, source: str, url: str, **kw: Any) -> CrawlResult:
    reset_budgets()
    s = settings_for(
        url,
        npm_downloads_endpoint=url + "/npm-downloads",
        pypi_stats_endpoint=url + "/pypistats",
        **kw,
    )
    return asyncio.run(crawl_source(store, source, s, stats=CrawlStats()))


def _ids(store: Store, source: str, sid: int) -> list[str]:
    return store.as_of(source, sid).collect()["entity_id"].to_list()


@pytest.mark.parametrize("source", ["npm", "pypi"])
def test_listing_pages_back_to_back_counts_after(
    tmp_path: Path, sim: tuple[SimServer, Recorder], source: str
) -> None:
    srv, rec = sim
    store = Store.open(str(tmp_path / "store"))
    r = _crawl(store, source, srv.url, registry_page_size=50, registry_top_n=300)
    assert r.status == "complete", r
    kinds = [k for k in rec.kinds if k != "other"]  # the registry list asked first
    assert kinds.count("list") == 6 and kinds.count("count") > 0
    # every listing page before the first count request: one run of "list", then counts
    first_count = kinds.index("count")
    assert kinds[:first_count] == ["list"] * 6, "".join(k[0] for k in kinds)
    assert len(_ids(store, source, r.snapshot_id)) == 300


@pytest.mark.parametrize("sim", [True], indirect=True)
def test_a_package_listed_twice_over_a_moving_ranking_is_kept_once(
    tmp_path: Path, sim: tuple[SimServer, Recorder]
) -> None:
    srv, rec = sim
    store = Store.open(str(tmp_path / "store"))
    r = _crawl(store, "npm", srv.url, registry_page_size=60, registry_top_n=600)
    assert r.status == "complete", r
    served = [n for page in rec.served for n in page]
    distinct = set(served)
    # the ranking moved between pages: some packages were served twice (else no test)
    assert len(served) - len(distinct) > 0, len(served)
    ids = _ids(store, "npm", r.snapshot_id)
    assert sorted(ids) == sorted(distinct)  # each served package stored, once
    assert r.items == len(distinct)  # and counted once
    # its download count asked for once
    assert set(rec.counted) == distinct and max(rec.counted.values()) == 1
    ev = store.events().filter(pl.col("kind") == "repeat").collect()["reason"].to_list()
    assert sum(int(x.split(" ", 1)[0]) for x in ev) == len(served) - len(distinct)


def test_a_package_that_left_the_top_n_is_not_tombstoned(
    tmp_path: Path, sim: tuple[SimServer, Recorder]
) -> None:
    srv, _rec = sim
    store = Store.open(str(tmp_path / "store"))
    first = _crawl(store, "npm", srv.url, registry_page_size=50, registry_top_n=50)
    assert first.status == "complete", first
    top = _ids(store, "npm", first.snapshot_id)

    def sink() -> str:
        # the top package's downloads collapse: it is still published, just not top 50
        p = srv.app[WORLD].packages["npm"]
        row = p.by_name[top[0]]
        p.last_month[row] = 0
        p.version += 1
        return str(p.names[row])

    fallen = srv.call(sink)
    second = _crawl(store, "npm", srv.url, registry_page_size=50, registry_top_n=50)
    assert second.status == "complete", second
    ch = store.changed("npm", first.snapshot_id, second.snapshot_id).collect()
    gone = ch.filter(pl.col("change") == "deleted")["entity_id"].to_list()
    assert fallen not in gone, "left the top N, tombstoned as deleted"
