"""Missing is missing end to end: a simulated Hub crawled over HTTP into a real store; the
simulator answers 403 for its disabled repos' commits. Expected counts come from the
simulator's own truth endpoint, not from analytics/."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import polars as pl
import pytest

from analytics import compute_measure
from analytics.activity import activity
from analytics.data import Data
from crawler import crawl_source
from crawler.budget import reset_budgets
from crawler.engine import release_reactor_threads
from crawler.stats import CrawlStats
from simulator.testing import running_simulator
from storage import Store
from tests.crawler.truth import expected_rows, settings_for, truth_commits


@pytest.fixture(scope="session", autouse=True)
def _release_reactor_threads() -> Iterator[None]:
    """The crawl runs in this process: stop Twisted's pool threads at the session's end (as
    tests/crawler/conftest.py does), or pytest hangs."""
    yield
    release_reactor_threads()


def test_crawled_disabled_repos_are_missing_and_commits_count_bots(tmp_path: Path) -> None:
    reset_budgets()
    store = Store.open(str(tmp_path / "store"))
    with running_simulator(seed=4, page_size=50, models=150, datasets=0, spaces=0) as url:
        res = asyncio.run(crawl_source(store, "hub:model", settings_for(url), stats=CrawlStats()))
        assert res.status == "complete"
        rows = expected_rows(url, "hub:model")
        commits = Counter(c[0] for c in truth_commits(url, "model"))
    disabled = {e for e, r in rows.items() if r["disabled"]}
    assert disabled, "the world should hold a disabled repo"
    df, _ = activity(Data(store), "hub:model", None)
    got = dict(zip(df["entity_id"], df["n_commits"], strict=True))
    for eid in rows:
        if eid in disabled:
            assert got[eid] is None, eid  # 403: not read, not zero
        else:  # every commit the simulator serves, bots' too
            assert got[eid] == commits[eid], eid
    dist = compute_measure(store, "activity_distribution", source="hub:model")
    r = dist.filter(pl.col("variable") == "n_commits").row(0, named=True)
    assert r["missing"] == len(disabled) and r["count"] == len(rows) - len(disabled)
    assert r["min"] >= 1 and r["share_zero"] == 0
