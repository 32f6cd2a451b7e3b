"""The item pipeline: closed listing pages -> `SnapshotWriter` batches, exactly once.

Pages arrive out of order (details finish at different times) and are committed in page
order, grouped into batches of about `batch_rows` rows. A batch writes its details first
(commits, discussions, cards; each idempotent per (snapshot, kind, seq)), then the listing
rows with the checkpoint: the next page's URL. A crawl killed between the two re-crawls
that batch on `--resume`; the detail writes it repeats are skipped by the store.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from operator import itemgetter
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from crawler.items import PageResult
from storage.schemas import entity_schema

if TYPE_CHECKING:
    from scrapy.crawler import Crawler

    from crawler.context import CrawlContext


@dataclass(frozen=True)
class Checkpoint:
    """Where a resumed crawl goes on: saved with every committed batch."""

    next_url: str | None  # None: the listing's end was reached
    page: int  # pages done
    failures: list[str]  # failures so far (the snapshot ends partial if any)
    carry: float = 0.0  # the detail budget's balance after the last committed page


def encode_checkpoint(cp: Checkpoint) -> str:
    return json.dumps(
        {"next": cp.next_url, "page": cp.page, "failures": cp.failures[:20], "carry": cp.carry}
    )


def decode_checkpoint(text: str | None) -> Checkpoint | None:
    """The checkpoint a batch was committed with, or None (none, or unreadable)."""
    if not text:
        return None
    try:
        cp = json.loads(text)
        return Checkpoint(
            cp.get("next"),
            int(cp.get("page", 0)),
            list(cp.get("failures", [])),
            float(cp.get("carry", 0.0)),
        )
    except (ValueError, TypeError, AttributeError):
        return None


def as_table(source: str, rows: list[dict[str, Any]]) -> pa.Table | list[dict[str, Any]]:
    """Listing rows as an Arrow table in the source's logical schema, built column by
    column (Arrow converts Python lists, datetimes and nested lists far faster than Polars
    or the store's row-by-row path). Rows that do not fit stay a list: the store then sorts
    them out row by row and quarantines the bad ones."""
    schema = entity_schema(source)
    if schema is None or not rows:
        return [{k: v for k, v in r.items() if not k.startswith("_")} for r in rows]
    try:
        try:
            if len(schema.names) < 2:
                raise KeyError  # itemgetter of one name gives values, not tuples
            # the parsers give every row every column: one C-level pass transposes them
            # (half the time of a `r.get(name)` per column and row)
            columns: Any = zip(*map(itemgetter(*schema.names), rows), strict=True)
        except KeyError:
            columns = ([r.get(name) for r in rows] for name in schema.names)
        arrays = [pa.array(col, f.type) for col, f in zip(columns, schema, strict=True)]
        return pa.Table.from_arrays(arrays, schema=schema)
    except (TypeError, ValueError, OverflowError, pa.ArrowException):
        # the store's row-by-row path: without the crawler's private keys (`_state`)
        return [{k: v for k, v in r.items() if not k.startswith("_")} for r in rows]


class SnapshotPipeline:
    """Orders pages, batches them and hands them to the snapshot writer."""

    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler
        self._pending: dict[int, PageResult] = {}
        self._buffer: list[PageResult] = []
        self._rows = 0
        self._next_page: int | None = None
        self._seq: int | None = None
        self._carry = 0.0  # the detail budget's balance after the last flushed page
        self._lock: asyncio.Lock | None = None
        self._closing: asyncio.Future[None] | None = None

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> SnapshotPipeline:
        return cls(crawler)

    @property
    def ctx(self) -> CrawlContext:
        spider = self.crawler.spider
        assert spider is not None
        ctx: CrawlContext = spider.ctx  # type: ignore[attr-defined]
        return ctx

    def open_spider(self) -> None:
        self._next_page = self.ctx.start_page
        self._seq = self.ctx.start_seq
        self._carry = self.ctx.start_carry
        self._lock = asyncio.Lock()

    async def process_item(self, item: Any) -> Any:
        if not isinstance(item, PageResult):
            return item
        assert self._next_page is not None and self._lock is not None
        self._pending[item.page] = item
        async with self._lock:
            while self._next_page in self._pending:
                page = self._pending.pop(self._next_page)
                self._next_page += 1
                self._buffer.append(page)
                self._rows += len(page.rows)
                if page.last:
                    # nothing after a last page may be committed (a failed or stopped
                    # listing resumes here)
                    self._pending.clear()
                if self._rows >= self.ctx.settings.batch_rows or page.last:
                    await self._flush()
                if page.last:
                    break
        return None

    async def close_spider(self) -> None:
        if self._lock is None:
            return
        async with self._lock:
            await self._flush()

    async def _flush(self) -> None:
        ctx = self.ctx
        if not self._buffer or ctx.write_error is not None:
            self._buffer = []
            self._rows = 0
            return
        pages, self._buffer, self._rows = self._buffer, [], 0
        assert self._seq is not None and self._next_page is not None
        seq = self._seq
        last = pages[-1]
        # a failed page (HTTP error) resumes at its own URL; otherwise at the next one
        for p in pages:
            if p.carry is not None:
                self._carry = p.carry
        checkpoint = encode_checkpoint(
            Checkpoint(
                last.next_url, last.page + (0 if last.failed else 1), ctx.failures, self._carry
            )
        )
        rows: dict[str, dict[str, Any]] = {}
        commits: list[dict[str, Any]] = []
        discussions: list[dict[str, Any]] = []
        cards: list[dict[str, Any]] = []
        for p in pages:
            for r in p.rows:
                rows[r["entity_id"]] = r  # as_table keeps the schema's columns only
            commits.extend(p.commits)
            discussions.extend(p.discussions)
            cards.extend(p.cards)
        events, ctx.events = ctx.events, []
        writer = ctx.writer
        assert writer is not None  # a listing always has its snapshot's writer

        def write() -> None:
            if commits:
                writer.write_details("commits", seq, commits)
            if discussions:
                writer.write_details("discussions", seq, discussions)
            if cards:
                writer.write_details("cards", seq, cards)
            writer.write_batch(
                seq, as_table(ctx.source, list(rows.values())), checkpoint=checkpoint
            )
            if events:
                writer.record_events(events)

        try:
            await asyncio.to_thread(write)
        except Exception as exc:  # the store refused: stop the crawl, mark it failed
            ctx.write_error = exc
            ctx.events = events + ctx.events
            engine = self.crawler.engine
            if engine is not None:
                self._closing = asyncio.ensure_future(
                    engine.close_spider_async(reason="store write failed")
                )
            return
        self._seq = seq + 1
