"""`crawl_source`: one snapshot of one source, from `begin_snapshot` to `finish`.

Status: `complete` when the whole listing came in (details are not waited for: once the
listing snapshot is closed, the details backlog is drained under `details_per_crawl`
requests, crawler/backlog.py, and the coverage of the newest complete snapshot recorded;
a drain waits while a Hub listing of the same host runs in the process, so concurrent
crawls' listings go first);
`partial` when a page or record could not be had after retries (no tombstones); `failed`
when the store refused a write or the crawl broke; left `running` when `stop` was set
(resumable: the next crawl of the source resumes it by default). A running snapshot
beats a heartbeat while written (crawler/heartbeat.py), so an orphan is found and resumed
or marked failed.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import threading
import time
from collections.abc import Iterator

from crawler.backlog import drain
from crawler.budget import listing_running
from crawler.context import CrawlContext
from crawler.engine import run_spider
from crawler.heartbeat import beating, mark_failed, orphan_reason
from crawler.pipeline import decode_checkpoint
from crawler.prev import PrevState, newest_commits
from crawler.result import CrawlResult
from crawler.settings import CrawlSettings
from crawler.spiders import HubSpider, RegistrySpider
from crawler.stats import CrawlStats, global_stats
from storage import Store
from storage.catalog import Coverage, Status
from storage.schemas import HUB_SOURCES, is_registry_source, repo_type_of
from storage.writer import SnapshotWriter

log = logging.getLogger("hubtide.crawler")


_frozen = 0  # crawls running with the heap frozen
_frozen_lock = threading.Lock()


@contextlib.contextmanager
def _heap_frozen() -> Iterator[None]:
    """The objects alive when a crawl starts (modules, Scrapy, Twisted, polars...) leave the
    collector's care while it runs (`gc.freeze`). A listing keeps many fresh containers
    alive (pages, rows) that age into the oldest generation, whose full collections then
    walked the whole heap: ~100 ms pauses mid-page, measured in bench/crawl.py. Unfrozen
    when the last concurrent crawl ends, so nothing stays out of the collector's care."""
    global _frozen
    with _frozen_lock:  # crawls may run on loops in several threads
        if _frozen == 0:
            gc.freeze()
        _frozen += 1
    try:
        yield
    finally:
        with _frozen_lock:
            _frozen -= 1
            if _frozen == 0:
                gc.unfreeze()


def _check(source: str) -> None:
    if source not in HUB_SOURCES and not is_registry_source(source):
        raise ValueError(
            f"source {source!r} cannot be crawled; crawlable sources are "
            f"{', '.join(HUB_SOURCES)}, npm, pypi and registry:NAME"
        )


async def crawl_source(
    store: Store,
    source: str,
    settings: CrawlSettings,
    *,
    resume: bool = True,
    stats: CrawlStats | None = None,
    stop: asyncio.Event | None = None,
) -> CrawlResult:
    """Crawl `source` into one snapshot of `store`.

    Args:
        store: the open store.
        source: `hub:model`, `hub:dataset`, `hub:space`, `npm`, `pypi` or `registry:NAME`.
        settings: see `CrawlSettings` (built by `hubtide.wiring.crawl_settings`).
        resume: what to do with an orphaned `running` snapshot of `source` (its writer
            gone: crawler/heartbeat.py): continue it from its checkpoint (True, the
            default) or mark it failed with the reason and start a new one (False). A
            running snapshot whose writer is alive is left alone; a new one is begun.
        stats: live counters (default: the process-wide `crawler.stats.global_stats()`).
        stop: when set, the current page batch is committed and the crawl returns with
            status `running` (resumable).
    """
    _check(source)
    with _heap_frozen():
        return await _crawl(store, source, settings, resume, stats, stop)


async def _crawl(
    store: Store,
    source: str,
    settings: CrawlSettings,
    resume: bool,
    stats: CrawlStats | None,
    stop: asyncio.Event | None,
) -> CrawlResult:
    stats = stats if stats is not None else global_stats()
    t0 = time.monotonic()
    writer = None
    orphan = await asyncio.to_thread(orphan_reason, store, source, settings.heartbeat_seconds)
    if orphan is not None and resume:
        log.info("%s: resuming an orphaned crawl: %s", source, orphan)
        writer = await asyncio.to_thread(store.resume_snapshot, source)
        if writer is not None:
            writer.max_shrink = settings.max_shrink  # the shrink guard holds on resume too
    elif orphan is not None:
        reason = f"orphaned and not resumed (--no-resume): {orphan}"
        sid = await asyncio.to_thread(mark_failed, store, source, reason)
        log.warning("%s: snapshot %s marked failed: %s", source, sid, reason)
    if writer is None:
        # a registry crawl lists its top registry_top_n by downloads (N: what it listed)
        top: Coverage = "top" if is_registry_source(source) else "full"
        writer = await asyncio.to_thread(
            store.begin_snapshot,
            source,
            coverage=top,
            top_by="downloads" if top == "top" else None,
            max_shrink=settings.max_shrink,
        )
    async with beating(store, writer, settings.heartbeat_seconds):
        return await _write(store, source, settings, writer, stats, stop, t0)


async def _write(
    store: Store,
    source: str,
    settings: CrawlSettings,
    writer: SnapshotWriter,
    stats: CrawlStats,
    stop: asyncio.Event | None,
    t0: float,
) -> CrawlResult:
    run = stats.start(source, writer.snapshot_id)
    ctx = CrawlContext(source, settings, store, writer, stats, run, stop)
    ctx.start_seq = writer.last_committed_seq + 1
    cp = decode_checkpoint(writer.checkpoint)
    if cp is not None:
        ctx.start_url, ctx.start_page, ctx.failures = cp.next_url, cp.page, cp.failures
        ctx.start_carry = cp.carry
        ctx.run.pages = ctx.start_page
        if ctx.start_url is None:
            ctx.listing_done = True  # killed after the last batch, before finish
    status: Status = "failed"
    message: str | None = None
    try:
        if source in HUB_SOURCES:
            ctx.prev = await asyncio.to_thread(PrevState.load, store, source)
            if settings.details:
                ctx.known_commits = await asyncio.to_thread(
                    newest_commits, store, repo_type_of(source)
                )
        if not ctx.listing_done:
            if source in HUB_SOURCES:
                # details drains of this process yield the Hub quota to a listing
                with listing_running(settings.hub_host):
                    await run_spider(HubSpider, settings, ctx=ctx)
            else:
                await run_spider(RegistrySpider, settings, ctx=ctx)
        if ctx.events:
            events, ctx.events = ctx.events, []
            await asyncio.to_thread(writer.record_events, events)
        if ctx.write_error is not None:
            status, message = "failed", f"store write failed: {ctx.write_error}"
        elif ctx.stopped and not ctx.listing_done:
            status = "running"
        elif ctx.listing_done and not ctx.failures and ctx.lost == 0:
            status = "complete"
        else:
            status = "partial"
            message = "; ".join(ctx.failures[:5]) or "listing did not complete"
    except asyncio.CancelledError:
        stats.finish(source, "running")
        raise
    except Exception as exc:  # a bug or a broken store: the snapshot must not stay open
        log.exception("crawl of %s failed", source)
        status, message = "failed", f"{type(exc).__name__}: {exc}"
    t_finish = time.monotonic()
    if status == "running":
        # stopped, to be resumed: stage the batches still waiting in the writer (should
        # that fail, the resumed crawl fetches their pages again)
        try:
            await asyncio.to_thread(writer.flush)
        except Exception as exc:
            log.error("could not stage the last batches of %s: %s", source, exc)
    else:
        try:
            info = await asyncio.to_thread(
                writer.finish,
                status,
                message=message,
                requests=ctx.requests,
                errors=ctx.errors,
            )
            # the store may close it otherwise than asked: the shrink guard turns a
            # complete listing into a partial snapshot (and says why in a 'shrink' event)
            if info.status != status and info.status in ("complete", "partial", "failed"):
                status, message = info.status, info.message or message  # type: ignore[assignment]
        except Exception as exc:
            log.error(
                "could not finish snapshot %s of %s: %s: %s",
                writer.snapshot_id,
                source,
                type(exc).__name__,
                exc,
            )
            status, message = "failed", f"finish failed: {type(exc).__name__}: {exc}"
    finish_seconds = time.monotonic() - t_finish
    # the listing snapshot is closed; now the details backlog, under its own budget
    dctx = CrawlContext(source, settings, store, writer, stats, run, stop)
    drained = None
    if source in HUB_SOURCES and settings.details and status in ("complete", "partial"):
        try:
            drained = await drain(dctx)
        except asyncio.CancelledError:
            stats.finish(source, status)
            raise
        except Exception as exc:  # the snapshot stands; the backlog waits for the next crawl
            log.exception("details drain of %s failed", source)
            dctx.failures.append(f"details drain failed: {type(exc).__name__}: {exc}")
        if dctx.events:
            with contextlib.suppress(Exception):
                await asyncio.to_thread(writer.record_events, dctx.events)
    stats.finish(source, status)
    return CrawlResult(
        source=source,
        snapshot_id=writer.snapshot_id,
        status=status,
        items=ctx.items,
        requests=ctx.requests + dctx.requests,
        errors=ctx.errors + dctx.errors,
        detail_requests=ctx.detail_requests + dctx.detail_requests,
        seconds=time.monotonic() - t0,
        message=message,
        detail_kinds=dict(ctx.detail_kinds + dctx.detail_kinds),
        changed=ctx.changed,
        finish_seconds=finish_seconds,
        listing_detail_requests=ctx.detail_requests,
        details_pending=drained.pending if drained is not None else None,
        details_coverage=(drained.coverage or []) if drained is not None else [],
        details_failures=list(dctx.failures),
    )
