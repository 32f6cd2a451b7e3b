"""Details in day-to-day crawls (real simulator over HTTP, real store): a crawl after a
first one fetches the details of the repos whose sha moved and no others, every commit is
stored, and two crawls of the same world fetch the same repos (crawler/backlog.py)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import polars as pl

from crawler import crawl_source
from crawler.budget import reset_budgets
from crawler.stats import CrawlStats
from simulator.testing import running_simulator
from storage import Store
from tests.crawler.truth import advance, settings_for, stored_commits, truth_commits

WORLD: dict[str, Any] = {"models": 400, "datasets": 5, "spaces": 5, "npm": 5, "pypi": 5}


def two_days(tmp: Path, budget: float) -> tuple[Store, Any, set[tuple[Any, ...]]]:
    """Crawl day 0 and day 3 of the seed-3 world; (store, day-3 result, truth commits)."""
    reset_budgets()
    store = Store.open(str(tmp))
    with running_simulator(seed=3, page_size=40, **WORLD) as url:
        s = settings_for(url, detail_budget=budget)
        first = asyncio.run(crawl_source(store, "hub:model", s, stats=CrawlStats()))
        assert first.status == "complete"
        advance(url, 3)  # three days' changes in one crawl: enough changed repos
        res = asyncio.run(crawl_source(store, "hub:model", s, stats=CrawlStats()))
        return store, res, truth_commits(url, "model")


def refreshed(store: Store, sid: int) -> list[str]:
    df = store.discussions("model", at=sid).filter(pl.col("snapshot_id") == sid).collect()
    return sorted(set(df["entity_id"].to_list()))


def test_a_day_fetches_the_details_of_moved_shas_only_and_commits_stay_complete(
    tmp_path: Path,
) -> None:
    store, res, truth = two_days(tmp_path / "a", 1.1)
    assert res.status == "complete", res
    assert res.changed > 5, res
    kinds = res.detail_kinds
    # the backlog holds the repos whose sha moved (or new ones): one commits request each
    # (a long history a page more), one card each; nothing for a repo detailed at its sha
    assert 0 < kinds.get("commits", 0) <= 1.05 * res.changed + 2, (kinds, res.changed)
    assert kinds.get("cards", 0) <= res.changed, (kinds, res.changed)
    assert res.details_pending == 0
    # every commit of every repo is stored
    assert {c[:4] for c in stored_commits(store, "model")} >= {c[:4] for c in truth}
    # the same world drains the same repos in a second store
    again, res_b, _ = two_days(tmp_path / "b", 1.1)
    assert res_b.detail_kinds == res.detail_kinds
    chosen = refreshed(store, res.snapshot_id)
    assert chosen and chosen == refreshed(again, res_b.snapshot_id)
