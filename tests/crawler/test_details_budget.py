"""The detail budget in real crawls (real simulator over HTTP, real store): a day-to-day
crawl spends at most `detail_budget` detail requests per changed repo, fetches the new
commits of every changed repo, and two crawls of the same world refresh the same repos."""

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


def test_budget_bounds_detail_requests_and_commits_stay_complete(tmp_path: Path) -> None:
    store, res, truth = two_days(tmp_path / "a", 1.1)
    assert res.status == "complete", res
    assert res.changed > 5, res
    kinds = res.detail_kinds
    assert kinds.get("commits", 0) >= res.changed  # every changed repo's commits
    assert res.detail_requests <= 1.1 * res.changed, (res.detail_requests, res.changed, kinds)
    # every commit of every repo is stored (commits are never traded for the budget)
    assert {c[:4] for c in stored_commits(store, "model")} >= {c[:4] for c in truth}
    # a larger budget buys refreshes, still within it; the same world refreshes the
    # same repos in a second store
    s3, r3, _ = two_days(tmp_path / "b", 3.0)
    assert r3.detail_requests <= 3.0 * r3.changed, (r3.detail_requests, r3.changed)
    assert r3.detail_kinds.get("discussions", 0) > res.detail_kinds.get("discussions", 0)
    again, r3b, _ = two_days(tmp_path / "c", 3.0)
    assert r3b.detail_kinds == r3.detail_kinds
    chosen = refreshed(s3, r3.snapshot_id)
    assert chosen and chosen == refreshed(again, r3b.snapshot_id)
