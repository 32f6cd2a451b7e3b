"""The crawl's volume guard (`crawler.max_shrink`) against the simulator over real HTTP: a
Hub listing that comes back much smaller than the previous complete state ends partial with
a 'shrink' crawl event and tombstones nothing; with the guard at 1.0 the same crawl
completes."""

from __future__ import annotations

import asyncio
from pathlib import Path

from crawler import crawl_source
from simulator.testing import simulator_server
from storage import Store
from tests.crawler.truth import settings_for

TINY = {"datasets": 2, "spaces": 2, "npm": 2, "pypi": 2}


def crawl(store: Store, models: int, max_shrink: float) -> str:
    """One complete-or-not crawl of hub:model against a fresh world of `models` models."""
    with simulator_server(seed=3, models=models, **TINY) as srv:
        s = settings_for(srv.url, details=False, max_shrink=max_shrink)
        return asyncio.run(crawl_source(store, "hub:model", s)).status


def test_a_listing_half_the_size_ends_partial_with_a_shrink_event(tmp_path: Path) -> None:
    store = Store(str(tmp_path / "s"))
    assert crawl(store, 40, 0.10) == "complete"
    assert crawl(store, 20, 0.10) == "partial"
    assert "shrink" in store.events().collect()["kind"].to_list()
    assert crawl(store, 20, 1.0) == "complete"
