"""Registry download counts from the registries' own services (npm's `point` counts,
pypistats `recent`), end to end: real simulator over HTTP, real store in tmp.

The simulator's ecosyste.ms and download-count routes agree by design; here ecosyste.ms is
made to lag (its cached 30-day sums recomputed as of a few days earlier, like its own sync
jobs), so the stored figure shows which service it came from. The registry's own figure
(the expected one) is read from the world before the lag is applied.
"""

from __future__ import annotations

import asyncio
import json
import math
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from crawler import crawl_source
from crawler.budget import reset_budgets
from crawler.errors import Malformed
from crawler.registry_parse import npm_batches, npm_point_downloads, pypistats_recent
from crawler.result import CrawlResult
from crawler.services import NPM_DOWNLOADS, PYPI_STATS
from crawler.stats import CrawlStats
from simulator.app import WORLD
from simulator.registry_routes import REGISTRIES
from simulator.testing import SimServer, simulator_server
from storage import Store
from tests.crawler.truth import set_faults, settings_for

LAG_DAYS = 5
FAST = {  # budgets that do not slow a local test down
    "npm_downloads_requests_per_window": 100_000,
    "npm_downloads_window_seconds": 1.0,
    "pypi_stats_requests_per_window": 100_000,
    "pypi_stats_window_seconds": 1.0,
}


# ------------------------------------------------------------------------- pure parts
def test_npm_batches_bulk_128_unscoped_and_scoped_alone() -> None:
    names = [f"p{i}" for i in range(300)] + ["@a/x", "@b/y"]
    batches = npm_batches(names)
    assert [len(b) for b in batches] == [128, 128, 44, 1, 1]
    assert batches[-2:] == [["@a/x"], ["@b/y"]]
    assert sorted(n for b in batches for n in b) == sorted(names)
    assert npm_batches([]) == []


def test_npm_point_bodies() -> None:
    one = {"downloads": 7, "start": "a", "end": "b", "package": "left-pad"}
    assert npm_point_downloads(one, ["left-pad"]) == {"left-pad": 7}
    bulk = {"a": {"downloads": 3, "package": "a"}, "b": None, "downloads": {"downloads": 1}}
    # a package literally named `downloads` is a bulk key like any other
    assert npm_point_downloads(bulk, ["a", "b", "downloads"]) == {"a": 3, "downloads": 1}
    with pytest.raises(Malformed, match="asked for 'x'"):
        npm_point_downloads({"downloads": 1, "package": "y"}, ["x"])
    with pytest.raises(Malformed, match="expected an object"):
        npm_point_downloads([], ["x"])


def test_pypistats_recent_body() -> None:
    assert pypistats_recent({"data": {"last_month": 12}, "package": "x"}) == 12
    assert pypistats_recent({"data": {"last_day": 1}}) is None
    assert pypistats_recent({"data": {"last_month": True}}) is None
    with pytest.raises(Malformed, match="pypistats"):
        pypistats_recent({"error": "x"})


def test_wiring_points_count_services_at_the_simulator_and_budgets_per_service() -> None:
    from crawler.services import budget_of, service_of
    from hubtide.config import load_settings
    from hubtide.wiring import crawl_settings

    plain = crawl_settings(load_settings(None, env={}))
    assert plain.npm_downloads_endpoint == plain.pypi_stats_endpoint == ""  # today's path
    assert (plain.npm_downloads_requests_per_window, plain.npm_downloads_window_seconds) == (
        1,
        3.0,
    )
    assert (plain.pypi_stats_requests_per_window, plain.pypi_stats_window_seconds) == (5, 12.0)
    url = "http://127.0.0.1:9"
    sim = crawl_settings(load_settings(None, env={}), endpoint=url)
    npm_url = f"{url}/npm-downloads/downloads/point/last-month/a,b"
    pypi_url = f"{url}/pypistats/api/packages/x/recent"
    assert sim.npm_downloads_endpoint == f"{url}/npm-downloads"
    assert sim.pypi_stats_endpoint == f"{url}/pypistats"
    assert service_of(npm_url, sim) == NPM_DOWNLOADS
    assert service_of(pypi_url, sim) == PYPI_STATS
    reset_budgets()
    conservative = plain.with_(
        npm_downloads_endpoint=f"{url}/npm-downloads", pypi_stats_endpoint=f"{url}/pypistats"
    )
    npm_b = budget_of(NPM_DOWNLOADS, npm_url, conservative)
    pypi_b = budget_of(PYPI_STATS, pypi_url, conservative)
    assert (npm_b.quota, npm_b.window, pypi_b.quota, pypi_b.window) == (1, 3.0, 5, 12.0)
    # one slot per 3 s: a second npm request waits, pypistats' fifth does not, its sixth does
    assert npm_b.reserve(0.0) == 0.0 and npm_b.reserve(0.0) >= 3.0
    assert [pypi_b.reserve(0.0) > 0 for _ in range(6)] == [False] * 5 + [True]
    # against a simulator (no limiter for these services) the public paces are lifted
    assert budget_of(NPM_DOWNLOADS, npm_url, sim).quota > 1000
    reset_budgets()


# --------------------------------------------------------------------- end to end
def _get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=60) as r:
        return json.loads(r.read())


@pytest.fixture(scope="module")
def sim() -> Iterator[tuple[SimServer, dict[str, dict[str, int]], dict[str, dict[str, int]]]]:
    """A world whose ecosyste.ms lags the registries by LAG_DAYS; yields the server, the
    registries' own 30-day counts and ecosyste.ms's (lagged) ones, by source and name."""
    with simulator_server(seed=21, models=20, datasets=5, spaces=5, npm=700, pypi=120) as srv:

        def lag() -> tuple[dict[str, dict[str, int]], dict[str, dict[str, int]]]:
            world = srv.app[WORLD]
            own: dict[str, dict[str, int]] = {}
            eco: dict[str, dict[str, int]] = {}
            for source in ("npm", "pypi"):
                p = world.packages[source]
                alive = [r for r in range(p.n) if p.alive[r]]
                own[source] = {p.names[r]: int(p.last_month[r]) for r in alive}
                p.refresh(world.day - LAG_DAYS)
                eco[source] = {p.names[r]: int(p.last_month[r]) for r in alive}
            return own, eco

        own, eco = srv.call(lag)
        yield srv, own, eco


def _crawl(store: Store, source: str, url: str, **kw: Any) -> CrawlResult:
    reset_budgets()
    s = settings_for(url, **{**FAST, **kw})
    return asyncio.run(crawl_source(store, source, s, stats=CrawlStats()))


def _stored(store: Store, source: str, sid: int) -> dict[str, int | None]:
    df = store.as_of(source, sid, include_partial=True).collect()
    return dict(zip(df["name"].to_list(), df["downloads"].to_list(), strict=True))


def _fallbacks(store: Store, source: str, sid: int) -> pl.DataFrame:
    return (
        store.events()
        .filter(
            (pl.col("source") == source)
            & (pl.col("snapshot_id") == sid)
            & (pl.col("kind") == "fallback")
        )
        .collect()
    )


def _expected_npm_requests(url: str, per_page: int, n: int) -> int:
    """Bulk requests of <= 128 unscoped names plus one per scoped name, page by page, from
    the simulator's own ecosyste.ms pages."""
    total = 0
    reg = "npm-registry.sim"
    for page in range(1, math.ceil(n / per_page) + 1):
        names = [
            p["name"]
            for p in _get(
                f"{url}/ecosystems/api/v1/registries/{reg}/packages"
                f"?sort=downloads&order=desc&per_page={per_page}&page={page}"
            )
        ]
        scoped = sum(x.startswith("@") for x in names)
        total += math.ceil((len(names) - scoped) / 128) + scoped
    return total


def test_own_counts_replace_ecosystems_and_bulk_per_128(
    tmp_path: Path, sim: tuple[SimServer, dict[str, Any], dict[str, Any]]
) -> None:
    srv, own, eco = sim
    url = srv.url
    differ = sum(own["npm"][k] != eco["npm"][k] for k in own["npm"])
    assert differ > 0.4 * len(own["npm"])  # the lag tells the two figures apart (0s do not)
    store = Store.open(str(tmp_path / "store"))
    per_page = 300  # ~250 unscoped names a page: two bulk requests each
    npm = _crawl(
        store,
        "npm",
        url,
        npm_downloads_endpoint=url + "/npm-downloads",
        registry_page_size=per_page,
    )
    assert npm.status == "complete", npm
    assert _stored(store, "npm", npm.snapshot_id) == own["npm"]
    want = _expected_npm_requests(url, per_page, len(own["npm"]))
    scoped = sum(n.startswith("@") for n in own["npm"])
    # pages of 300, 300 and 100 names, 572 unscoped in all: 2 + 2 + 1 bulk requests
    assert want == scoped + 5
    assert npm.detail_kinds.get(NPM_DOWNLOADS) == want, npm.detail_kinds
    assert _fallbacks(store, "npm", npm.snapshot_id).height == 0
    # issue 16: a registry crawl is its top N by downloads, never a tombstone source
    info = store.snapshot_info("npm", npm.snapshot_id)
    assert (info.coverage, info.top_by, info.top_n) == ("top", "downloads", len(own["npm"]))

    pypi = _crawl(store, "pypi", url, pypi_stats_endpoint=url + "/pypistats")
    assert pypi.status == "complete", pypi
    assert _stored(store, "pypi", pypi.snapshot_id) == own["pypi"]
    assert pypi.detail_kinds.get(PYPI_STATS) == len(own["pypi"])  # one per package

    # endpoints empty (the default): ecosyste.ms's figures, no count request at all
    plain = _crawl(store, "pypi", url)
    assert plain.status == "complete"
    assert _stored(store, "pypi", plain.snapshot_id) == eco["pypi"]
    assert NPM_DOWNLOADS not in plain.detail_kinds and PYPI_STATS not in plain.detail_kinds


def test_unknown_package_keeps_ecosystems_figure_with_event(
    tmp_path: Path, sim: tuple[SimServer, dict[str, Any], dict[str, Any]]
) -> None:
    """ecosyste.ms lists packages the count services do not know (it lags them): npm's bulk
    answer has `null`, its single and pypistats' answer 404. Those keep ecosyste.ms's
    figure, each with a `fallback` event naming it; the snapshot is complete."""
    srv, own, eco = sim
    url = srv.url
    npm_names = sorted(own["npm"])
    gone = {
        "npm": [
            next(n for n in npm_names if n[0] != "@"),
            next(n for n in npm_names if n[0] == "@"),
        ],
        "pypi": [sorted(own["pypi"])[3]],
    }

    def hide(on: bool) -> None:
        world = srv.app[WORLD]
        for source, names in gone.items():
            p = world.packages[source]
            for name in names:
                if on:
                    p.by_name.pop(name)
                else:
                    p.by_name[name] = p.names.index(name)

    srv.call(hide, True)
    try:
        store = Store.open(str(tmp_path / "store"))
        for source, endpoint in (
            ("npm", {"npm_downloads_endpoint": url + "/npm-downloads"}),
            ("pypi", {"pypi_stats_endpoint": url + "/pypistats"}),
        ):
            res = _crawl(store, source, url, **endpoint)
            assert res.status == "complete", res
            stored = _stored(store, source, res.snapshot_id)
            want = {n: (eco if n in gone[source] else own)[source][n] for n in own[source]}
            assert stored == want
            ev = _fallbacks(store, source, res.snapshot_id)
            named = {r.split(":", 1)[0] for r in ev["reason"].to_list()}
            assert named == set(gone[source]), ev["reason"].to_list()
            assert all("ecosyste.ms figure kept" in r for r in ev["reason"].to_list())
    finally:
        srv.call(hide, False)


def test_faulted_count_requests_fall_back_per_package(
    tmp_path: Path, sim: tuple[SimServer, dict[str, Any], dict[str, Any]]
) -> None:
    """Simulator faults (5xx, 429, dropped connections, truncated bodies) on every route, one
    retry: count requests that kept failing leave their packages on ecosyste.ms's figure
    with an event each; every other package has the registry's own figure."""
    srv, own, eco = sim
    url = srv.url
    store = Store.open(str(tmp_path / "store"))
    set_faults(url, {"server_error": 0.25, "drop": 0.05, "truncate": 0.05, "rate_limit": 0.02})
    try:
        res = _crawl(store, "pypi", url, pypi_stats_endpoint=url + "/pypistats", max_retries=1)
    finally:
        set_faults(url, {"rate": 0})
    # the listing is the first requests of the run (one page), so it meets the same faults
    # every time; this seed lets it through
    assert res.status == "complete", res
    stored = _stored(store, "pypi", res.snapshot_id)
    assert set(stored) == set(own["pypi"])
    ev = _fallbacks(store, "pypi", res.snapshot_id)
    fell = {r.split(":", 1)[0] for r in ev["reason"].to_list()}
    assert ev.height == len(fell) >= 1  # one event per package that fell back
    assert {n for n in stored if stored[n] == eco["pypi"][n] != own["pypi"][n]} <= fell
    for name, value in stored.items():
        assert value == (eco if name in fell else own)["pypi"][name], name
    assert res.detail_kinds.get(PYPI_STATS, 0) > len(own["pypi"])  # retries went out too


@pytest.mark.slow
def test_top_10k_requests_per_service(tmp_path: Path) -> None:
    """A default top-10k crawl of each registry with its count service: requests per
    service (printed; the figure docs/crawler.md quotes) match the bulk rule page by page."""
    store = Store.open(str(tmp_path / "store"))
    with simulator_server(seed=3, models=10, datasets=5, spaces=5, npm=12000, pypi=12000) as srv:
        url = srv.url
        npm = _crawl(store, "npm", url, npm_downloads_endpoint=url + "/npm-downloads")
        pypi = _crawl(store, "pypi", url, pypi_stats_endpoint=url + "/pypistats")
        want_npm = _expected_npm_requests(url, 1000, 10_000)
    for res in (npm, pypi):
        assert res.status == "complete" and res.items == 10_000, res
        eco = res.requests - sum(res.detail_kinds.values())
        print(f"{res.source}: ecosyste.ms {eco}, {dict(res.detail_kinds)}, {res.seconds:.1f} s")
    names = _stored(store, "npm", npm.snapshot_id)
    scoped = sum(n.startswith("@") for n in names)
    print(f"npm: {scoped} scoped names, {want_npm - scoped} bulk requests")
    assert npm.detail_kinds == {NPM_DOWNLOADS: want_npm}
    # full bulks: at most one part-filled bulk request per page of 1000
    assert want_npm - scoped <= math.ceil((10_000 - scoped) / 128) + 10
    assert pypi.detail_kinds == {PYPI_STATS: 10_000}
    assert _fallbacks(store, "npm", npm.snapshot_id).height == 0


def test_service_pace_keeps_under_its_limiter(
    tmp_path: Path, sim: tuple[SimServer, dict[str, Any], dict[str, Any]]
) -> None:
    """pypistats' limiter on (scaled: 10 requests per second per client): at a pace of 8
    per second the crawl draws no 429 and stores every registry figure; unpaced it draws
    429s (HTML, no Retry-After), and whatever then kept failing falls back with an event."""
    srv, own, eco = sim
    url = srv.url
    regs = srv.app[REGISTRIES]

    def limiter(on: bool) -> int:
        served = regs.count_limited.pop("pypi", 0)
        regs.count_limits = {"pypi": ((10, 1.0),)} if on else {}
        return served

    store = Store.open(str(tmp_path / "store"))
    kw: dict[str, Any] = {"pypi_stats_endpoint": url + "/pypistats", "registry_top_n": 24}
    srv.call(limiter, True)
    try:
        paced = _crawl(
            store,
            "pypi",
            url,
            pypi_stats_requests_per_window=8,
            pypi_stats_window_seconds=1.0,
            **kw,
        )
        paced_429 = srv.call(limiter, True)
        unpaced = _crawl(store, "pypi", url, **kw)
    finally:
        unpaced_429 = srv.call(limiter, False)
    assert paced.status == "complete", paced
    stored = _stored(store, "pypi", paced.snapshot_id)
    assert len(stored) == 24 and all(v == own["pypi"][n] for n, v in stored.items())
    assert paced_429 == 0 and paced.detail_kinds == {PYPI_STATS: 24}
    assert paced.seconds > 2.0  # 24 requests at 8 per second: paced, not bursted
    assert unpaced_429 > 0 and unpaced.status == "complete"
    fell = {r.split(":", 1)[0] for r in _fallbacks(store, "pypi", unpaced.snapshot_id)["reason"]}
    got = _stored(store, "pypi", unpaced.snapshot_id)
    assert all(v == (eco if n in fell else own)["pypi"][n] for n, v in got.items())
