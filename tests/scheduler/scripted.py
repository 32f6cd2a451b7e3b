"""A scripted crawl for scheduling tests: writes real snapshots into the real store in
`batches` batches, honouring `stop` and `resume` as `crawler.crawl_source` does, with a
controllable pace. It stands in for the network side only; the store is real.
(End-to-end tests with the real crawler and simulator are in test_daemon_e2e.py.)"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from crawler.stats import CrawlStats
from tests.scheduler.conftest import model


@dataclass
class Result:
    source: str
    snapshot_id: int
    status: str
    items: int


@dataclass
class ScriptedCrawl:
    batches: int = 3
    rows: int = 10
    delay: float = 0.05
    fail_when_resuming: bool = False
    calls: list[tuple[str, bool]] = field(default_factory=list)
    active: dict[str, int] = field(default_factory=dict)
    max_active: dict[str, int] = field(default_factory=dict)
    day: int = 0

    async def __call__(
        self,
        store: Any,
        source: str,
        settings: Any,
        *,
        resume: bool = False,
        stats: CrawlStats | None = None,
        stop: asyncio.Event | None = None,
    ) -> Result:
        self.calls.append((source, resume))
        self.active[source] = self.active.get(source, 0) + 1
        self.max_active[source] = max(self.max_active.get(source, 0), self.active[source])
        try:
            if resume and self.fail_when_resuming:
                raise RuntimeError("checkpoint refers to a page the upstream forgot")
            w: Any = await asyncio.to_thread(store.resume_snapshot, source) if resume else None
            if w is None:
                w = await asyncio.to_thread(store.begin_snapshot, source)
            if stats is not None:
                stats.start(source, w.snapshot_id)
            for seq in range(w.last_committed_seq + 1, self.batches):
                if stop is not None and stop.is_set():
                    await asyncio.to_thread(w.flush)  # left running: stage what waits
                    if stats is not None:
                        stats.finish(source, "stopped")
                    return Result(source, w.snapshot_id, "running", seq * self.rows)
                await asyncio.sleep(self.delay)
                rows = [model(seq * self.rows + i, self.day) for i in range(self.rows)]
                await asyncio.to_thread(w.write_batch, seq, rows)
                if stats is not None:
                    stats.count_items(source, self.rows)
            info = await asyncio.to_thread(w.finish, "complete")
            if stats is not None:
                stats.finish(source, "complete")
            return Result(source, info.snapshot_id, "complete", self.batches * self.rows)
        finally:
            self.active[source] -= 1
