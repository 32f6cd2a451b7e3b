"""A crawl freezes the heap for the collector while it runs (docs/crawler.md, Throughput)
and leaves it as it found it, also when two crawls overlap."""

from __future__ import annotations

import asyncio
import gc
from pathlib import Path

from crawler import crawl_source
from crawler.budget import reset_budgets
from crawler.pipeline import SnapshotPipeline
from crawler.stats import CrawlStats
from simulator.testing import running_simulator
from storage import Store
from tests.crawler.truth import settings_for


def test_the_heap_is_frozen_during_a_crawl_and_unfrozen_after(tmp_path: Path) -> None:
    reset_budgets()
    gc.unfreeze()
    seen: list[int] = []
    process_item = SnapshotPipeline.process_item

    async def spy(self: SnapshotPipeline, item: object) -> object:
        seen.append(gc.get_freeze_count())
        return await process_item(self, item)

    SnapshotPipeline.process_item = spy  # type: ignore[method-assign]
    try:
        with running_simulator(seed=3, models=40, datasets=30, spaces=5, page_size=10) as url:
            s = settings_for(url, details=False)
            store = Store.open(str(tmp_path / "store"))

            async def both() -> list[str]:
                results = await asyncio.gather(
                    crawl_source(store, "hub:model", s, stats=CrawlStats()),
                    crawl_source(store, "hub:dataset", s, stats=CrawlStats()),
                )
                return [r.status for r in results]

            assert asyncio.run(both()) == ["complete", "complete"]
    finally:
        SnapshotPipeline.process_item = process_item  # type: ignore[method-assign]
    assert seen and min(seen) > 0  # every page went through with the heap frozen
    assert gc.get_freeze_count() == 0  # and the last crawl to end unfroze it
