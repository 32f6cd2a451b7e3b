"""The details backlog of a Hub source: what its repos still need, drained most valuable
first, and the details coverage of its snapshots (docs/crawler.md, Details).

A listing snapshot completes without details. What a repo needs is read off the store:
its sha in the newest complete snapshot against the sha each of its details (commits,
discussions, card) was last fetched at (`Store.detailed`, the `done` rows of
`ops/detail_backlog`). A new repo needs all three; a repo whose sha moved needs them again;
one whose details were fetched at its listed sha needs nothing, so no sha is detailed
twice. The backlog lives in the store, so it carries over crawls and restarts.

`drain` fetches the backlog in numbered batches of `DRAIN_BATCH_REPOS` repos, highest
`weight` first, until `crawler.details_per_crawl` detail requests are spent or it is
empty, through the same downloader middlewares (quota, retries) as the listing. A batch is
claimed (`claim` rows) before it is fetched and marked `done` after its detail rows are in;
a drain killed mid-batch runs that batch again first (its detail appends already in are
skipped by their transaction ids, so no row lands twice).
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
import uuid
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import polars as pl

from crawler.budget import listings_running
from crawler.context import CrawlContext
from crawler.engine import run_spider
from crawler.hub_details import DetailPlan, Fetched, HubDetails
from crawler.prev import newest_commits
from crawler.settings import CrawlSettings
from crawler.stats import CrawlStats, RunningCrawl
from storage import Store
from storage.errors import SnapshotNotFound, StoreError
from storage.layout import DETAIL_KINDS
from storage.schemas import HUB_SOURCES, repo_type_of

if TYPE_CHECKING:
    from storage.layout import DetailKind

log = logging.getLogger("hubtide.crawler")

# repos per drain batch (each costs ~3 requests: commits, discussions, card): one claim,
# three detail appends and one done append per batch
DRAIN_BATCH_REPOS = 100
# expected requests per repo needing every detail (sizes the last batch to the budget)
REQUESTS_PER_REPO = 3
# the second coverage scope: the top N of the snapshot by its ranking counter
COVERAGE_TOP_N = 10_000
# how often a drain looks whether the listings it yields the quota to are done
LISTING_POLL_SECONDS = 0.5


def rank_by(source: str) -> str:
    """The counter coverage ranks by: downloads (spaces have none: likes)."""
    return "likes" if source == "hub:space" else "downloads"


def weight() -> pl.Expr:
    """`hub_details.activity` of a repo whose details are due, as an expression over its
    listed downloads and likes and its open discussions known to the store (`open`)."""
    return 2.0 * (
        0.2
        + pl.col("downloads").fill_null(0).clip(0).log1p() / 10
        + pl.col("likes").fill_null(0).clip(0).log1p() / 5
        + 4.0 * pl.col("open").fill_null(0).cast(pl.Float64).sqrt()
    )


def _open_discussions(store: Store, repo_type: str) -> pl.DataFrame:
    try:
        return (
            store.discussions(repo_type)
            .group_by("entity_id")
            .agg(pl.col("status").is_in(["open", "draft"]).sum().cast(pl.Int64).alias("open"))
            .collect()
        )
    except StoreError:
        return pl.DataFrame(schema={"entity_id": pl.String, "open": pl.Int64})


def _have(kind: str) -> str:
    return f"have_{kind}"


def _needs(
    store: Store,
    source: str,
    snapshot_id: int,
    top_n: int | None = None,
    columns: tuple[str, ...] = (),
) -> pl.DataFrame:
    """One row per listed repo: entity_id, sha, downloads, likes, `columns`,
    `have_<detail>` per detail (fetched at the listed sha) and `in_top` (among the top
    `top_n` by `rank_by`, default `COVERAGE_TOP_N`: the coverage scope a snapshot
    promises, drained first).

    One wide row per repo rather than one per (repo, detail): at 3.2M models the long form
    was a 9.6M-row frame of strings."""
    by = rank_by(source)
    top_n = COVERAGE_TOP_N if top_n is None else top_n
    cols = list(dict.fromkeys(["entity_id", "sha", "downloads", "likes", by, *columns]))
    state = store.as_of(source, snapshot_id, columns=cols).collect()
    done = store.detailed(source)
    for kind in DETAIL_KINDS:
        got = done.filter(pl.col("detail") == kind).select(
            "entity_id", pl.col("sha").alias("sha_done")
        )
        state = (
            state.join(got, on="entity_id", how="left")
            .with_columns(
                (
                    pl.col("sha_done").is_not_null() & pl.col("sha").eq_missing(pl.col("sha_done"))
                ).alias(_have(kind))
            )
            .drop("sha_done")
        )
    top = (
        state.select("entity_id", by)
        .sort([by, "entity_id"], descending=[True, False], nulls_last=True)
        .head(top_n)
        .select("entity_id", pl.lit(True).alias("in_top"))
    )
    return state.join(top, on="entity_id", how="left").with_columns(
        pl.col("in_top").fill_null(False)
    )


def newest_complete(store: Store, source: str) -> int | None:
    try:
        return store.resolve_snapshot(source)
    except SnapshotNotFound:
        return None


def pending(store: Store, source: str, snapshot_id: int) -> pl.DataFrame:
    """The backlog as of complete snapshot `snapshot_id`, in drain order: per repo
    entity_id, name, sha, card_fields, in_top, weight and `details` (the kinds it still
    needs). The repos of the coverage scope (`in_top`: the top `COVERAGE_TOP_N` by
    `rank_by`, what each snapshot's coverage promises) come first, so a day's changed top
    repos are detailed right after the listings; then the rest, highest `weight` first."""
    state = _needs(store, source, snapshot_id, columns=("name", "card_fields"))
    missing = [pl.when(~pl.col(_have(k))).then(pl.lit(k)) for k in DETAIL_KINDS]
    need = state.filter(~pl.all_horizontal([pl.col(_have(k)) for k in DETAIL_KINDS])).with_columns(
        pl.concat_list(missing).list.drop_nulls().alias("details")
    )
    cols = ["entity_id", "name", "sha", "card_fields", "in_top", "weight", "details"]
    if need.height == 0:
        return need.with_columns(pl.lit(0.0).alias("weight")).select(cols)
    open_ = _open_discussions(store, repo_type_of(source))
    return (
        need.join(open_, on="entity_id", how="left")
        .with_columns(weight().alias("weight"))
        .sort(["in_top", "weight", "entity_id"], descending=[True, True, False])
        .select(cols)
    )


def measure(
    store: Store, source: str, snapshot_id: int, top_n: int | None = None
) -> list[dict[str, Any]]:
    """The details coverage of a complete snapshot: per detail, of all its repos and of
    its top `top_n` by `rank_by`, how many had that detail fetched at their listed sha."""
    top_n = COVERAGE_TOP_N if top_n is None else top_n
    state = _needs(store, source, snapshot_id, top_n)
    scopes = {"all": state, f"top{top_n}_{rank_by(source)}": state.filter(pl.col("in_top"))}
    out = []
    for scope, df in scopes.items():
        for kind in DETAIL_KINDS:
            out.append(
                {
                    "detail": kind,
                    "scope": scope,
                    "covered": int(df[_have(kind)].sum()),
                    "total": df.height,
                }
            )
    return out


def record_coverage(store: Store, source: str) -> list[dict[str, Any]]:
    """Measure and store the coverage of the newest complete snapshot (none: [])."""
    sid = newest_complete(store, source)
    if sid is None:
        return []
    rows = measure(store, source, sid)
    store.record_detail_coverage(source, sid, rows)
    return [{**r, "snapshot_id": sid} for r in rows]


def coverage_line(rows: list[dict[str, Any]], detail: str = "commits") -> str:
    """'commits complete for 12 % of repos, 100 % of the top 10000 by downloads'."""
    parts: list[str] = []
    for r in rows:
        if r["detail"] != detail:
            continue
        pct = 100.0 * r["covered"] / r["total"] if r["total"] else 100.0
        if r["scope"] == "all":
            parts.insert(0, f"{detail} complete for {pct:.0f} % of repos")
        else:
            n, _, by = r["scope"].removeprefix("top").partition("_")
            parts.append(f"{pct:.0f} % of the top {n} by {by}")
    return ", ".join(parts)


@dataclass
class DrainOutcome:
    requests: int = 0  # detail requests spent
    repos: int = 0  # repos whose details were fetched
    batches: int = 0
    pending: int = 0  # repos still needing a detail after the drain
    coverage: list[dict[str, Any]] | None = None
    # the drain order key (in_top, weight) of the first repo the drain left in the backlog
    # (None: it left none): what the daemon's drain between crawls compares across sources
    next_key: tuple[bool, float] | None = None
    # detail requests this drain had spent when the last repo of the coverage scope (the
    # snapshot's top `COVERAGE_TOP_N`) it had to detail was done; None: not reached
    scope_requests: int | None = None


class DrainSpider(HubDetails):
    """Fetches backlog batches; yields no requests of its own (every fetch goes through
    `engine.download_async`, so the quota and retry middlewares apply)."""

    name = "hubtide-details"

    def __init__(
        self,
        ctx: CrawlContext,
        outcome: DrainOutcome,
        run_id: str | None = None,
        **kw: Any,
    ) -> None:
        super().__init__(ctx, **kw)
        self.repo_type = repo_type_of(ctx.source)
        self.detail_sem: asyncio.Semaphore | None = None
        self.outcome = outcome
        # a drain on its own (no listing's writer) records its events under this run id
        self.run_id = run_id or f"{ctx.source}-drain-{uuid.uuid4().hex[:8]}"
        self.snapshot_id = ctx.writer.snapshot_id if ctx.writer is not None else 0

    async def refetch(self, item: Any, name: str | None) -> dict[str, Any] | None:
        return None  # a drain cannot change a finished listing (`card_mismatch` is filed)

    async def start(self) -> AsyncIterator[Any]:
        try:
            await self.drain()
        except Exception:  # a broken store: the listing snapshot stands, the backlog too
            log.exception("details drain of %s failed", self.ctx.source)
            self.ctx.fail("details drain failed")
        return
        yield  # an async generator that yields nothing

    async def yield_to_listings(self) -> bool:
        """Wait while a Hub listing of the same host runs in this process (listings go
        first on the shared quota). False when a stop was asked meanwhile."""
        host = self.ctx.settings.hub_host
        while listings_running(host):
            if self.ctx.stop_requested:
                return False
            await asyncio.sleep(LISTING_POLL_SECONDS)
        return not self.ctx.stop_requested

    async def drain(self) -> None:
        ctx, store, source = self.ctx, self.ctx.store, self.ctx.source
        self.detail_sem = asyncio.Semaphore(max(1, ctx.settings.concurrency * 2))
        budget = ctx.settings.details_per_crawl
        out = self.outcome
        ctx.known_commits = await asyncio.to_thread(newest_commits, store, self.repo_type)
        batch, claim = await asyncio.to_thread(store.open_detail_batch, source)
        if claim is not None and claim.height:
            # a drain killed mid-batch: that batch first, as claimed
            sid = int(claim["snapshot_id"][0])
            repos = (
                claim.group_by("entity_id", maintain_order=True)
                .agg(pl.col("name", "sha").first(), pl.col("detail").alias("details"))
                .with_columns(pl.lit(None, dtype=pl.List(pl.String)).alias("card_fields"))
            )
            log.info("%s: finishing details batch %s left open", source, batch)
            await self.run_batch(batch, sid, repos.to_dicts(), claimed=True)
            batch += 1
        sid_now = await asyncio.to_thread(newest_complete, store, source)
        if sid_now is None:
            return
        todo = await asyncio.to_thread(pending, store, source, sid_now)
        # `max_detail_repos` (0: none) caps the repos a drain takes on, whatever the budget
        cap = ctx.settings.max_detail_repos or todo.height
        end = min(todo.height, cap)
        i = 0
        in_scope = int(todo["in_top"].sum()) if todo.height else 0
        if in_scope == 0:
            out.scope_requests = 0
        while i < end and out.requests < budget:
            if not await self.yield_to_listings():
                ctx.stopped = True
                break
            left = budget - out.requests
            n = min(DRAIN_BATCH_REPOS, max(1, math.ceil(left / REQUESTS_PER_REPO)), end - i)
            chunk = todo.slice(i, n).to_dicts()
            i += n
            await self.run_batch(batch, sid_now, chunk)
            batch += 1
            if out.scope_requests is None and i >= in_scope:
                out.scope_requests = out.requests
        out.pending = max(0, todo.height - i)
        if i < todo.height:
            out.next_key = (bool(todo["in_top"][i]), float(todo["weight"][i]))

    async def run_batch(
        self, batch: int, sid: int, repos: list[dict[str, Any]], *, claimed: bool = False
    ) -> None:
        ctx, store, source = self.ctx, self.ctx.store, self.ctx.source
        self.snapshot_id = sid
        claims = [
            {"entity_id": r["entity_id"], "name": r["name"], "detail": d, "sha": r["sha"]}
            for r in repos
            for d in r["details"]
        ]
        if not claimed:
            await asyncio.to_thread(store.mark_details, source, batch, "claim", sid, claims)
        plans = [
            DetailPlan(
                "commits" in r["details"], "discussions" in r["details"], "cards" in r["details"]
            )
            for r in repos
        ]
        outs: list[Fetched] = await asyncio.gather(
            *(self.repo_details(r, p) for r, p in zip(repos, plans, strict=True))
        )
        rows: dict[str, list[dict[str, Any]]] = {k: [] for k in DETAIL_KINDS}
        done = []
        for r, o in zip(repos, outs, strict=True):
            self.outcome.requests += o.requests
            if not o.ok:
                continue  # stays in the backlog
            if o.card_mismatch:
                ctx.event("card_mismatch", f"{r['name']}: card front matter differs from cardData")
            rows["commits"].extend(o.commits)
            rows["discussions"].extend(o.discussions)
            if o.card is not None:
                rows["cards"].append(o.card)
            done += [c for c in claims if c["entity_id"] == r["entity_id"]]
            self.outcome.repos += 1
        events, ctx.events = ctx.events, []
        writer, run_id = ctx.writer, self.run_id

        def write() -> None:
            kind: DetailKind
            for kind in DETAIL_KINDS:
                if rows[kind]:
                    store.append_details(source, sid, kind, batch, rows[kind])
            store.mark_details(source, batch, "done", sid, done)
            if events and writer is not None:
                writer.record_events(events)
            elif events:
                store.record_events(source, sid, f"{run_id}-{batch}", events)

        await asyncio.to_thread(write)
        self.outcome.batches += 1


# the drain order key of a source whose backlog is not known yet: it comes first
UNKNOWN_KEY = (True, math.inf)


def first_to_drain(keys: Mapping[str, tuple[bool, float] | None]) -> str | None:
    """Of sources and the drain order key of their next backlog repo (None: nothing to
    drain), the one to drain next: the highest key, so the coverage scopes of every
    source come before any other repo, then the highest weight across sources."""
    best: tuple[tuple[bool, float], str] | None = None
    for source, key in keys.items():
        if key is not None and (best is None or key > best[0]):
            best = (key, source)
    return None if best is None else best[1]


async def drain(ctx: CrawlContext) -> DrainOutcome:
    """Drain the backlog of `ctx.source` under `details_per_crawl` detail requests, then
    record the newest complete snapshot's coverage."""
    out = DrainOutcome()
    if ctx.settings.details_per_crawl > 0:
        await run_spider(DrainSpider, ctx.settings, ctx=ctx, outcome=out)
    out.coverage = await asyncio.to_thread(record_coverage, ctx.store, ctx.source)
    if ctx.settings.details_per_crawl <= 0:
        sid = await asyncio.to_thread(newest_complete, ctx.store, ctx.source)
        if sid is not None:
            todo = await asyncio.to_thread(pending, ctx.store, ctx.source, sid)
            out.pending = todo.height
            if todo.height:
                out.next_key = (bool(todo["in_top"][0]), float(todo["weight"][0]))
    return out


async def drain_source(
    store: Store,
    source: str,
    settings: CrawlSettings,
    *,
    stats: CrawlStats | None = None,
    stop: asyncio.Event | None = None,
) -> DrainOutcome:
    """One drain of `source`'s details backlog on its own, outside a crawl: up to
    `settings.details_per_crawl` detail requests, most valuable first, yielding the quota
    to any Hub listing running in this process; then the newest complete snapshot's
    coverage is measured and recorded. What the daemon runs between crawls and the
    hub-scale bench after the day's listings.

    Args:
        store: the open store; the caller holds the source's lease (the daemon does).
        source: a Hub source (`hub:model`, `hub:dataset`, `hub:space`).
        settings: the crawl settings (quota, concurrency, `details_per_crawl`).
        stats: live counters for the requests (default: a private collector).
        stop: when set, the current batch is finished and the drain returns.

    Returns:
        The `DrainOutcome`: requests and repos, pending repos, coverage, `next_key`.

    Raises:
        ValueError: `source` is not a Hub source.
    """
    if source not in HUB_SOURCES:
        raise ValueError(
            f"{source!r} has no details backlog; Hub sources: {', '.join(HUB_SOURCES)}"
        )
    stats = stats if stats is not None else CrawlStats()
    sid = await asyncio.to_thread(newest_complete, store, source)
    run = RunningCrawl(source, sid, time.time())
    ctx = CrawlContext(source, settings, store, None, stats, run, stop)
    out = await drain(ctx)
    if ctx.failures:
        log.warning("%s: details drain: %s", source, "; ".join(ctx.failures[:3]))
    return out


async def drain_sources(
    store: Store,
    sources: list[str],
    settings: CrawlSettings,
    *,
    requests: int,
    stats: CrawlStats | None = None,
    stop: asyncio.Event | None = None,
) -> dict[str, DrainOutcome]:
    """Drain several Hub sources' backlogs with `requests` detail requests in all: passes
    of at most `settings.details_per_crawl` requests, each on the source whose next backlog
    repo comes first (`first_to_drain`), until the requests are spent, every backlog is
    empty or `stop` is set (what `hubtide drain` runs).

    Returns:
        Per source, its passes summed: requests, repos, batches; pending, coverage and
        `next_key` from its last pass (a source never drained has an empty outcome).

    Raises:
        ValueError: a source that is not a Hub source, or `requests` below 1.
    """
    if requests < 1:
        raise ValueError(f"requests must be at least 1, got {requests}")
    bad = [s for s in sources if s not in HUB_SOURCES]
    if bad:
        raise ValueError(
            f"{', '.join(bad)}: no details backlog; Hub sources: {', '.join(HUB_SOURCES)}"
        )
    keys: dict[str, tuple[bool, float] | None] = dict.fromkeys(sources, UNKNOWN_KEY)
    totals = {s: DrainOutcome() for s in sources}
    left = requests
    per_pass = settings.details_per_crawl or requests
    while left > 0 and not (stop is not None and stop.is_set()):
        source = first_to_drain(keys)
        if source is None:
            break
        n = min(left, per_pass)
        out = await drain_source(
            store, source, settings.with_(details_per_crawl=n), stats=stats, stop=stop
        )
        t = totals[source]
        t.requests += out.requests
        t.repos += out.repos
        t.batches += out.batches
        t.pending, t.coverage, t.next_key = out.pending, out.coverage, out.next_key
        if t.scope_requests is None and out.scope_requests is not None:
            t.scope_requests = t.requests - out.requests + out.scope_requests
        keys[source] = out.next_key if out.repos else None  # no progress: leave it be
        left -= out.requests
    return totals
