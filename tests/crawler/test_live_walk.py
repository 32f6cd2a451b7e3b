"""The Hub listing walk against a live world: the world moves while the crawl runs (each
request moves the simulated clock, several midnights pass per crawl: counters, creations,
deletions and renames), and every complete snapshot is judged against the truth at the
crawl's start and at its end. An id in both must be in the snapshot, an id in neither must
not be, and no id appears twice. The Hub's default (trending) order and any counter order
fail this under a keyset cursor (tests/simulator/test_listing_order.py shows the skip);
creation order cannot."""

from __future__ import annotations

import asyncio

from crawler import crawl_source
from crawler.budget import reset_budgets
from crawler.stats import CrawlStats
from simulator.testing import simulator_server
from storage import Store
from tests.crawler.truth import expected_rows, settings_for

# a simulated day every 12 requests: a walk of 15 listing pages spans
# about a day and a half, so repos are created, deleted, renamed and re-ranked between pages
LIVE = {"models": 300, "datasets": 10, "spaces": 10, "npm": 10, "pypi": 10,
        "live_seconds_per_request": 86_400 / 10}  # fmt: skip


def test_created_at_walk_of_a_moving_world_has_no_skip_no_repeat(tmp_path) -> None:  # type: ignore[no-untyped-def]
    store = Store.open(str(tmp_path / "store"))
    with simulator_server(seed=11, **LIVE) as srv:
        moved = 0
        for _day in range(3):
            before = set(expected_rows(srv.url, "hub:model"))
            reset_budgets()
            # listing only: detail requests would move the clock on after the walk ended,
            # and "after" must be the truth at the walk's end
            s = settings_for(srv.url, hub_page_size=20, details=False)
            r = asyncio.run(crawl_source(store, "hub:model", s, stats=CrawlStats()))
            after = set(expected_rows(srv.url, "hub:model"))
            assert r.status == "complete", r
            snap = store.as_of("hub:model", r.snapshot_id).collect()
            ids = snap["entity_id"].to_list()
            assert len(ids) == len(set(ids)), "a repo listed twice"
            missing = (before & after) - set(ids)
            assert not missing, f"alive throughout the crawl yet absent: {sorted(missing)[:5]}"
            invented = set(ids) - (before | after)
            assert not invented, f"alive at neither end yet present: {sorted(invented)[:5]}"
            moved += len(before ^ after)
        # the world really moved during the crawls (else the test proves nothing)
        assert moved > 0
