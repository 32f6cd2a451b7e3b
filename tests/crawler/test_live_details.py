"""Details drained in a live world under the Hub's free-token quotas (time-scaled): the world
moves between the listing and the drain, so `main` is often ahead of the listed sha; the
commits and card stored under a sha are that sha's (fetched at it, not at `main`), and a card
cut short on the way is fetched again, never stored half. Real simulator over HTTP, real
store in tmp (the heavier days of tests/crawler/test_ground_truth.py judge the same)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import polars as pl

from crawler import crawl_source
from crawler.budget import reset_budgets
from crawler.stats import CrawlStats
from storage import Store
from tests.crawler.live import (
    LIVE_PAGE,
    TOKEN,
    details_against_truth,
    live_simulator,
    rate_limit_costs,
)
from tests.crawler.truth import expected_rows, settings_for

SMALL = {"models": 200, "datasets": 2, "spaces": 2, "npm": 2, "pypi": 2}


def _crawl(store: Store, url: str) -> tuple[object, CrawlStats]:
    reset_budgets()
    stats = CrawlStats()
    s = settings_for(url, hub_token=TOKEN, hub_page_size=LIVE_PAGE)
    return asyncio.run(crawl_source(store, "hub:model", s, stats=stats)), stats


def test_details_stored_under_a_sha_are_that_shas(tmp_path: Path) -> None:
    store = Store.open(str(tmp_path / "store"))
    with live_simulator(seed=4, page_size=LIVE_PAGE, **SMALL) as sim:
        r, _stats = _crawl(store, sim.url)
        assert r.status == "complete", r  # type: ignore[attr-defined]
        wrong, checked = details_against_truth(store, sim.url, "model")
        now = expected_rows(sim.url, "hub:model")
        assert rate_limit_costs(sim.log) == []
    assert wrong == [], wrong
    assert checked > 100, checked
    # the world moved on during the drain: `main` of some repos is past the sha their
    # details were fetched at (so a fetch at `main` would have stored its newer commits)
    done = store.detailed("hub:model").filter(pl.col("detail") == "commits")
    ahead = sum(
        now[e]["sha"] != sha for e, sha in done.select("entity_id", "sha").rows() if e in now
    )
    assert ahead > 0, "no repo committed between its listing and its details"


def test_a_card_cut_short_is_fetched_again(tmp_path: Path) -> None:
    store = Store.open(str(tmp_path / "store"))
    with live_simulator(seed=4, page_size=LIVE_PAGE, faults={"truncate": 0.15}, **SMALL) as sim:
        r, _stats = _crawl(store, sim.url)
        assert r.status == "complete", r  # type: ignore[attr-defined]
        wrong, _checked = details_against_truth(store, sim.url, "model")
    assert wrong == [], wrong
    cut = store.events().filter(pl.col("reason").str.contains("ETag")).collect()
    assert cut.height > 0, "no card was cut short"
    cards = store.cards("model").collect()
    assert cards.height > 100 and cards["metadata_fields"].list.len().sum() > 0
