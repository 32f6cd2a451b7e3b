"""Crawl benchmark: prints figures, asserts nothing.

Every simulator runs in its own process (`python -m simulator`), as the Hub runs on other
machines: server and crawler do not share one interpreter lock, so the figures measure the
client. Sections, one run:

1. Listing throughput: items/s of `crawl_source` (Scrapy, details off, rows parsed into
   HUB_REPO and written to a real store in batches) vs a bare aiohttp loop fetching the
   same pages (same expand fields and page size, following the same Link headers, decoding
   the JSON, nothing else). Both after a warm-up crawl (imports, reactor), best of `--reps`.
   The Scrapy figure is given with and without closing the snapshot (tombstones, derived
   tables, catalog row), which is store work done once per crawl.
2. Detail requests per changed repo on day-to-day crawls, per kind (commits, discussions,
   cards, repo info), where "changed" is the crawler's own test: new, or a new sha /
   lastModified since the last complete snapshot, for each `--detail-budget` and the old
   `refresh_days` rotation; and the freshness they buy: the share of the truth's
   discussions stored as they are, and of cards read at the listed sha.
3. Budget: the simulator's per-client budget on (the Hub's free tier is 1000 API requests
   per 300 s; here `--budget Q/W`, the window shortened) and the crawler configured to
   the same; a day-0 crawl with details (several windows of work): the share of the budget
   used over the crawl and the 429s drawn.
4. Peak memory (RSS) of a child process that crawls the whole listing of `--memory-models`
   models into a store (the 2M figure: `--memory-models 2000000`, once).

    .venv/bin/python bench/crawl.py [--models 20000] [--detail-models 3000] [--days 3]
        [--budget 500/15] [--budget-models 1500] [--memory-models 200000]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import json
import math
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import urlencode

import aiohttp
import msgspec
import polars as pl

from crawler import CrawlSettings, crawl_source, hub_parse
from crawler.budget import budgets, reset_budgets
from crawler.engine import release_reactor_threads
from crawler.links import next_link
from crawler.services import HUB_API
from crawler.stats import CrawlStats
from hubtide.config import load_settings
from hubtide.wiring import crawl_settings
from storage import Store

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@contextlib.contextmanager
def simulator(models: int, *, faults: str = "", seed: int = 11) -> Iterator[str]:
    """A simulator in a child process; yields its base URL."""
    cmd = [sys.executable, "-m", "simulator", "--port", "0", "--seed", str(seed)]
    cmd += ["--models", str(models), "--datasets", "10", "--spaces", "10"]
    cmd += ["--npm", "10", "--pypi", "10"]
    # the Hub's quotas off: this bench measures the crawler; its budget stage sets its own
    cmd += ["--quota", "off"]
    if faults:
        cmd += ["--faults", faults]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        url = None
        assert proc.stdout is not None
        for line in proc.stdout:
            if line.startswith("HUBTIDE_CRAWLER_HUB_ENDPOINT="):
                url = line.split("=", 1)[1].strip()
                break
        if url is None:
            raise RuntimeError(f"simulator exited with {proc.wait()}")
        yield url
    finally:
        proc.terminate()
        proc.wait(30)


def settings(url: str, **kw: object) -> CrawlSettings:
    cs = crawl_settings(load_settings(None, env={}), endpoint=url)
    return dataclasses.replace(cs, hub_requests_per_window=10**9, hub_token=None, **kw)  # type: ignore[arg-type]


async def bare_listing(
    url: str, decode: Callable[[bytes], Any] = json.loads
) -> tuple[int, int, float]:
    """Fetch every page of one listing with a plain aiohttp loop: (pages, items, seconds).
    `decode`: `json.loads` (the issue's reference) or msgspec's (what the crawler uses)."""
    params = [("expand", f) for f in hub_parse.EXPAND["model"]] + [("limit", "1000")]
    next_url: str | None = f"{url}/api/models?{urlencode(params)}"
    pages = items = 0
    t0 = time.perf_counter()
    async with aiohttp.ClientSession() as session:
        while next_url:
            async with session.get(next_url) as resp:
                body = await resp.read()
                link = resp.headers.get("Link")
            items += len(decode(body))
            pages += 1
            next_url = next_link(link)
    return pages, items, time.perf_counter() - t0


def cpu_seconds() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


async def throughput(models: int, reps: int) -> None:
    print(f"== 1. listing throughput, {models} models, best of {reps}")
    with simulator(models) as url:
        cs = settings(url, details=False)
        with tempfile.TemporaryDirectory() as tmp:  # warm-up: imports, reactor, caches
            await crawl_source(Store.open(tmp), "hub:model", cs, stats=CrawlStats())
            await bare_listing(url)
            await bare_listing(url, msgspec.json.decode)
        bare: list[float] = []
        bare_ms: list[float] = []
        total: list[float] = []
        listing: list[float] = []
        cpu: dict[str, list[float]] = {"bare": [], "bare_ms": [], "crawl": []}
        items = pages = 0
        for _ in range(reps):
            c0 = cpu_seconds()
            pages, items, sec = await bare_listing(url)
            c1 = cpu_seconds()
            bare.append(items / sec)
            _p, _i, sec = await bare_listing(url, msgspec.json.decode)
            c2 = cpu_seconds()
            bare_ms.append(items / sec)
            with tempfile.TemporaryDirectory() as tmp:
                res = await crawl_source(Store.open(tmp), "hub:model", cs, stats=CrawlStats())
            c3 = cpu_seconds()
            total.append(res.items / res.seconds)
            listing.append(res.items / (res.seconds - res.finish_seconds))
            for key, a, b in (("bare", c0, c1), ("bare_ms", c1, c2), ("crawl", c2, c3)):
                cpu[key].append((b - a) * 1000 / max(pages, 1))
        b, bm, t, li = max(bare), max(bare_ms), max(total), max(listing)
        print(
            f"bare aiohttp (fetch + json.loads)  : {pages} pages, {items} items, {b:,.0f} items/s"
            f" (client CPU {min(cpu['bare']):.1f} ms/page)"
        )
        print(
            f"bare aiohttp (fetch + msgspec)     : {bm:,.0f} items/s"
            f" (client CPU {min(cpu['bare_ms']):.1f} ms/page)"
        )
        print(
            f"crawl_source, rows into the store  : {li:,.0f} items/s = {li / b:.0%} of bare "
            f"(target >= 50 %); {li / bm:.0%} of bare with msgspec"
            f" (CPU {min(cpu['crawl']):.1f} ms/page incl. the store's threads and finish)"
        )
        print(
            f"  + closing the snapshot (finish)  : {t:,.0f} items/s = {t / b:.0%} of bare; "
            f"{t / bm:.0%} of bare with msgspec"
        )


def changed_repos(store: Store, before: int, after: int) -> int:
    """Repos new in `after` or whose sha / last_modified differ from `before` (cross-check)."""
    cols = ["entity_id", "sha", "last_modified"]
    old = store.as_of("hub:model", before, columns=cols).collect()
    new = store.as_of("hub:model", after, columns=cols).collect()
    joined = new.join(old, on="entity_id", how="left", suffix="_old")
    return joined.filter(
        pl.col("sha_old").is_null()
        | (pl.col("sha") != pl.col("sha_old"))
        | (pl.col("last_modified") != pl.col("last_modified_old"))
    ).height


_DISC_FIELDS = ("title", "author", "is_pull_request", "status", "created_at")


async def _get_lines(session: aiohttp.ClientSession, url: str) -> list[dict[str, object]]:
    async with session.get(url) as resp:
        resp.raise_for_status()
        text = await resp.text()
    return [json.loads(line) for line in text.splitlines() if line.strip()]


async def freshness(
    session: aiohttp.ClientSession, url: str, store: Store
) -> tuple[int, int, int, int]:
    """(discussions whose newest stored state equals the truth, discussions in the truth,
    listed repos whose newest stored card was read at the listed sha, listed repos)."""
    want: dict[tuple[str, int], tuple[object, ...]] = {}
    for r in await _get_lines(session, f"{url}/_sim/truth?source=discussions&type=model"):
        page = {"discussions": [r], "count": 1, "start": 0}
        row = hub_parse.discussion_rows(page, "model", str(r["_id"]), 0)[0][0]
        want[(row["entity_id"], row["num"])] = tuple(row[f] for f in _DISC_FIELDS)
    got = store.discussions("model").collect()
    have = {(r["entity_id"], r["num"]): tuple(r[f] for f in _DISC_FIELDS) for r in got.to_dicts()}
    fresh = sum(1 for k, v in want.items() if have.get(k) == v)
    listed = store.as_of("hub:model", columns=["entity_id", "sha"]).collect()
    cards = store.cards("model").select("entity_id", pl.col("sha").alias("card_sha")).collect()
    j = listed.join(cards, on="entity_id", how="left")
    cards_fresh = j.filter(pl.col("card_sha") == pl.col("sha")).height
    return fresh, len(want), cards_fresh, listed.height


def refresh_intervals(store: Store, refreshes: int) -> str:
    """Expected crawls between two refreshes of a repo's discussions, by weight quantile,
    when `refreshes` repos are drawn per crawl (the race drawing the top `refreshes` keys
    is close to keeping keys under a threshold t: P(drawn) = 1 - exp(-t * weight/cost))."""
    import numpy as np  # the details section's own helpers

    from crawler.hub_details import DiscussionStats, activity, discussion_pages

    df = store.as_of("hub:model", columns=["entity_id", "downloads", "likes"]).collect()
    stats = DiscussionStats.load(store, "model")
    keys = df.select(pl.col("entity_id").hash(seed=7)).to_series().to_list()
    rates = []
    for key, row in zip(keys, df.to_dicts(), strict=True):
        known, open_ = stats.lookup(key)
        rates.append(activity(row, known, open_, False) / discussion_pages(known))
    r = np.sort(np.array(rates))
    if refreshes <= 0 or len(r) == 0:
        return "no refreshes: discussions of unchanged repos are never re-read"
    lo, hi = 0.0, 1.0
    while (1 - np.exp(-r * hi)).sum() < refreshes and hi < 1e12:
        hi *= 2
    for _ in range(100):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if (1 - np.exp(-r * mid)).sum() < refreshes else (lo, mid)
    q = 1 - np.exp(-r * hi)
    parts = [
        f"{name} {1 / q[min(int(f * len(r)), len(r) - 1)]:,.0f}"
        for name, f in (("median", 0.5), ("p90", 0.9), ("p99", 0.99), ("top", 1.0))
    ]
    return f"{refreshes} drawn per crawl of {len(r)}: expected crawls between refreshes: " + (
        ", ".join(parts)
    )


async def details_run(models: int, days: int, label: str, **kw: object) -> None:
    """Day 0 (reads everything) then `days` daily crawls of one world with settings `kw`."""
    print(f"-- {label}")
    with simulator(models) as url, tempfile.TemporaryDirectory() as tmp:
        cs = settings(url, **kw)
        store = Store.open(tmp)
        first = await crawl_source(store, "hub:model", cs, stats=CrawlStats())
        print(
            f"day 0: {first.status}, {first.detail_requests} detail requests "
            f"(first crawl reads everything: {dict(sorted(first.detail_kinds.items()))})"
        )
        prev = first.snapshot_id
        sums: Counter[str] = Counter()
        changed_sum = 0
        async with aiohttp.ClientSession() as session:
            for day in range(1, days + 1):
                async with session.post(f"{url}/_sim/advance?days=1") as resp:
                    resp.raise_for_status()
                res = await crawl_source(store, "hub:model", cs, stats=CrawlStats())
                check = changed_repos(store, prev, res.snapshot_id)
                k = Counter(res.detail_kinds)
                sums.update(k)
                changed_sum += res.changed
                print(
                    f"day {day}: {res.status}, {res.changed} changed repos (store says {check});"
                    f" commits {k['commits']}, repo info {k['repo_info']}, cards {k['cards']},"
                    f" discussions {k['discussions']}; "
                    f"{res.detail_requests / max(res.changed, 1):.2f} per changed repo"
                )
                prev = res.snapshot_id
            fresh, total_d, cards_fresh, listed = await freshness(session, url, store)
            drawn = res.detail_kinds.get("discussions", 0)
        per = {kind: n / max(changed_sum, 1) for kind, n in sorted(sums.items())}
        total = sum(sums.values()) / max(changed_sum, 1)
        print(
            f"days 1-{days}: {changed_sum} changed repos; per changed repo: "
            + ", ".join(f"{kind} {v:.2f}" for kind, v in per.items())
            + f"; ALL {total:.2f} (target <= 1.1 at the default budget)"
        )
        print(
            f"  freshness after day {days}: discussions {fresh}/{total_d} = "
            f"{fresh / max(total_d, 1):.2%} stored as the truth ({total_d - fresh} stale or "
            f"missing); cards read at the listed sha {cards_fresh}/{listed} = "
            f"{cards_fresh / max(listed, 1):.2%}"
        )
        if not kw.get("refresh_days"):
            print(f"  weighted draw (last day): {refresh_intervals(store, drawn)}")


async def details(models: int, days: int) -> None:
    # options of this section (`--detail-budget`, `--detail-rotation`) are read from the
    # command line's namespace when run as a script
    ns = getattr(sys.modules["__main__"], "ns", None)
    budgets = [float(b) for b in str(getattr(ns, "detail_budget", "1.1,3")).split(",") if b]
    rotation = int(getattr(ns, "detail_rotation", 30))
    print(f"== 2. detail requests per changed repo, {models} models, {days} days")
    for b in budgets:
        await details_run(models, days, f"detail_budget={b:g}", detail_budget=b)
    if rotation:
        # the session-2 plan: the rotation alone (its cost leaves the 1.1 budget no room)
        await details_run(
            models,
            days,
            f"rotation refresh_days={rotation} (budget 1.1)",
            detail_budget=1.1,
            refresh_days=rotation,
        )


async def budget(models: int, spec: str) -> None:
    quota_s, window_s = spec.split("/")
    quota, window = int(quota_s), float(window_s)
    print(f"== 3. budget {quota} API requests per {window:g} s (simulator enforces it)")
    with simulator(models, faults=f"budget={quota}/{window:g}") as url:
        reset_budgets()
        cs = settings(url)
        cs = dataclasses.replace(cs, hub_requests_per_window=quota, hub_window_seconds=window)
        stats = CrawlStats()
        with tempfile.TemporaryDirectory() as tmp:
            store = Store.open(tmp)
            res = await crawl_source(store, "hub:model", cs, stats=stats)
            # the snapshot's own record of them (ops/crawl_events), beside the live counters
            kinds = store.events().collect()["kind"].to_list()
        async with aiohttp.ClientSession() as session, session.get(f"{url}/_sim/faults") as resp:
            injected = (await resp.json()).get("injected", {})
        api = res.requests - res.detail_kinds.get("cards", 0)  # cards go to the resolvers
        b = next(v for (service, _h), v in budgets().items() if service == HUB_API)
        span = b.last_sent - (b.first_sent or b.last_sent)
        # the fastest schedule the budget allows: a full quota at the start of each window
        fastest = (math.ceil(api / quota) - 1) * window
        crawl_s = res.seconds - res.finish_seconds
        limited = sum(stats.rate_limited.values())
        print(
            f"{res.status}: {api} API requests (+{res.detail_kinds.get('cards', 0)} resolver) "
            f"sent over {span:.1f} s; the budget allows them in {fastest:.0f} s at the "
            f"fastest: {fastest / span:.1%} of the budget used (target >= 90 %)"
        )
        print(
            f"  over the whole crawl ({crawl_s:.1f} s incl. start-up, the last partial window"
            f" and the last batch's write): {api / (quota * crawl_s / window):.1%}; "
            f"429s drawn: {limited} (simulator counted {injected.get('budget', 0)}; target 0)"
        )
        print(
            f"  snapshot {res.snapshot_id}: {kinds.count('rate_limited')} 429s, "
            f"{kinds.count('retry')} retries (live counters: {limited} 429s, "
            f"{sum(stats.retries.values())} retries; a 429 costs at most one retry)"
        )


def memory_child(url: str, out: str) -> None:
    """Runs in a child process: crawl the listing, sampling RSS; peak overall, peak while
    listing (before the snapshot is closed) and the baseline, as JSON."""
    import threading

    import psutil

    samples: list[tuple[float, float]] = []
    stop = threading.Event()

    def sample() -> None:
        proc = psutil.Process()
        while not stop.is_set():
            samples.append((time.monotonic(), proc.memory_info().rss / 2**20))
            stop.wait(0.2)

    async def run() -> dict[str, float]:
        cs = settings(url, details=False)
        with tempfile.TemporaryDirectory() as tmp:
            # the baseline: interpreter, Scrapy, polars, deltalake, reactor, an empty store
            await crawl_source(Store.open(tmp + "/w"), "hub:dataset", cs, stats=CrawlStats())
            base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            t0 = time.monotonic()
            res = await crawl_source(Store.open(tmp), "hub:model", cs, stats=CrawlStats())
            t_end = time.monotonic()
            peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        listing_end = t_end - res.finish_seconds
        listing = max((m for t, m in samples if t0 <= t <= listing_end), default=0.0)
        return {
            "items": res.items,
            "seconds": res.seconds,
            "finish_seconds": res.finish_seconds,
            "base_mb": base,
            "listing_mb": listing,
            "peak_mb": peak,
        }

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    try:
        result = asyncio.run(run())
    finally:
        stop.set()
    with open(out, "w") as f:
        json.dump(result, f)


def memory(models: int) -> None:
    print(f"== 4. peak memory of a {models}-model listing crawl (child process)")
    t0 = time.perf_counter()
    with simulator(models) as url, tempfile.TemporaryDirectory() as tmp:
        built = time.perf_counter() - t0
        out = os.path.join(tmp, "mem.json")
        subprocess.run([sys.executable, __file__, "--memory-child", url, out], cwd=ROOT, check=True)
        with open(out) as f:
            r = json.load(f)
    print(
        f"simulator built in {built:.0f} s; crawled {r['items']:,} items in {r['seconds']:.0f} s"
        f" (closing the snapshot {r['finish_seconds']:.0f} s); RSS: baseline after a tiny crawl"
        f" {r['base_mb']:,.0f} MB, peak while listing {r['listing_mb']:,.0f} MB, peak overall"
        f" (incl. the store's finish) {r['peak_mb']:,.0f} MB"
    )


async def main(ns: argparse.Namespace) -> None:
    print(f"load average {os.getloadavg()[0]:.2f} at start, {os.cpu_count()} cores")
    if ns.models:
        await throughput(ns.models, ns.reps)
    if ns.detail_models:
        await details(ns.detail_models, ns.days)
    if ns.budget_models:
        await budget(ns.budget_models, ns.budget)
    if ns.memory_models:
        memory(ns.memory_models)
    print(f"load average {os.getloadavg()[0]:.2f} at end")


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--models", type=int, default=20000, help="throughput world (0: skip)")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--detail-models", type=int, default=3000, help="details world (0: skip)")
    ap.add_argument("--days", type=int, default=3)
    ap.add_argument(
        "--detail-budget",
        default="1.1,3",
        help="comma-separated crawler.detail_budget values the details section compares",
    )
    ap.add_argument(
        "--detail-rotation",
        type=int,
        default=30,
        help="also run the refresh_days rotation with this period (0: skip)",
    )
    ap.add_argument("--budget", default="500/15", help="QUOTA/WINDOW_SECONDS")
    ap.add_argument("--budget-models", type=int, default=1500, help="budget world (0: skip)")
    ap.add_argument("--memory-models", type=int, default=200000, help="memory world (0: skip)")
    ap.add_argument("--memory-child", nargs=2, metavar=("URL", "OUT"), help=argparse.SUPPRESS)
    ns = ap.parse_args()
    if ns.memory_child:
        memory_child(*ns.memory_child)
    else:
        asyncio.run(main(ns))
    release_reactor_threads()  # Twisted's pool threads would keep the process alive
