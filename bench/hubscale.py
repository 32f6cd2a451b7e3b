"""Hub-scale bench: prints figures, asserts nothing (issue 14, point 6).

A simulator in a child process (`python -m simulator`, quotas on, every token the free
tier: api 1,000 / resolvers 5,000 / pages 200 per 5 minutes, the window divided by
`--time-scale F`), the real crawler crawling hub:model, hub:dataset and hub:space into a
temporary store, one simulated day at a time (`/_sim/advance?days=1` between days: the
simulator's daily change rates; the world is not live, `--no-live`, so each day is exactly
one day). A day runs as the daemon runs it:

  1. the three listing snapshots, one after the other (`crawl_source` with
     `details_per_crawl` 0: no drain between listings; each measures its coverage);
  2. the details drain with what is left of the day's quota (`drain_source` passes of
     `--pass-requests`, the source whose next backlog repo comes first, as the daemon's
     drain between crawls: every source's top-10,000 coverage scope first, then weight),
     up to `--drain-hours` of quota (default: the rest of the day).

"Mandatory details" of a day are those its snapshots' coverage promises: the top 10,000 of
each source by downloads (spaces: likes) detailed at their listed sha. The daily snapshot
with them is done when the last source's scope is (`DrainOutcome.scope_requests`).

Real-world (unscaled) time of a stage is given two ways:
  * quota floor: the stage's requests per bucket over the free token's quota, in whole
    5-minute windows (what the real Hub's quota allows at the fastest);
  * time-scaled clock: wall seconds x F (the real-world time only when the crawl was
    quota-bound here; when the simulator or the client is the bottleneck it overstates).
The estimate printed as "real" is max(quota floor, wall seconds): the quota's time, unless
this machine's own speed is slower.

Details coverage of the top `--top` models (by downloads) is measured after each simulated
day; days past `--days` up to 30 are projected from the measured drain (labelled).

    .venv/bin/python bench/hubscale.py [--scale hub | --models 100000] [--time-scale 60]
        [--days 1] [--top 100000] [--drain-hours H] [--first-drain-hours H0]
        [--pass-requests N]
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import math
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from typing import Any

import psutil

from crawler import CrawlSettings, crawl_source, drain_source
from crawler.backlog import COVERAGE_TOP_N as COVERAGE
from crawler.backlog import UNKNOWN_KEY, first_to_drain, measure
from crawler.budget import budgets, reset_budgets
from crawler.engine import release_reactor_threads
from crawler.services import HUB_API, HUB_RESOLVERS
from crawler.stats import CrawlStats
from hubtide.config import load_settings
from hubtide.wiring import crawl_settings
from simulator.config import QUOTA_TIERS, SCALES
from storage import Store

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SOURCES = ("hub:model", "hub:dataset", "hub:space")
WINDOW = 300.0  # the Hub's quota window, seconds
DAY = 86400.0
FREE = QUOTA_TIERS["free"]
TOKEN = "hf_hubscale_bench"  # any token is the free tier on the simulator


def hours(seconds: float) -> str:
    return f"{seconds / 3600:.2f} h"


def sizes(ns: argparse.Namespace) -> dict[str, int]:
    if ns.models:
        # the real Hub's proportions (3.2M / 1M / 800k)
        return {"models": ns.models, "datasets": ns.models * 5 // 16, "spaces": ns.models // 4}
    return dict(SCALES[ns.scale])


class Simulator:
    """`python -m simulator` in a child process, its RSS sampled."""

    def __init__(self, world: dict[str, int], time_scale: float, seed: int) -> None:
        cmd = [sys.executable, "-m", "simulator", "--port", "0", "--seed", str(seed)]
        for k, v in world.items():
            cmd += [f"--{k}", str(v)]
        cmd += ["--npm", "10", "--pypi", "10", "--quota", "on", "--no-live"]
        cmd += ["--time-scale", f"{time_scale:g}"]
        t0 = time.perf_counter()
        self.proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, text=True)
        self.url = ""
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            if line.startswith("simulator:"):
                print("  " + line.strip())
            if line.startswith("HUBTIDE_CRAWLER_HUB_ENDPOINT="):
                self.url = line.split("=", 1)[1].strip()
                break
        if not self.url:
            raise RuntimeError(f"simulator exited with {self.proc.wait()}")
        self.built = time.perf_counter() - t0
        self.peak_rss = 0
        self._stop = threading.Event()
        self._ps = psutil.Process(self.proc.pid)
        threading.Thread(target=self._sample, daemon=True).start()

    def _sample(self) -> None:
        while not self._stop.is_set():
            try:
                self.peak_rss = max(self.peak_rss, self._ps.memory_info().rss)
            except psutil.Error:
                return
            self._stop.wait(1.0)

    def advance(self, days: int) -> None:
        req = urllib.request.Request(f"{self.url}/_sim/advance?days={days}", method="POST")
        with urllib.request.urlopen(req, timeout=1800) as r:
            r.read()

    def stop(self) -> None:
        self._stop.set()
        self.proc.terminate()
        self.proc.wait(60)


class SelfRss:
    """Peak RSS of this process (the crawler and the store run in it), sampled, plus
    getrusage's high-water mark."""

    def __init__(self) -> None:
        self.peak = 0
        self._stop = threading.Event()
        threading.Thread(target=self._sample, daemon=True).start()

    def _sample(self) -> None:
        proc = psutil.Process()
        while not self._stop.is_set():
            self.peak = max(self.peak, proc.memory_info().rss)
            self._stop.wait(0.5)

    def high_water(self) -> int:
        return max(self.peak, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)


def settings(url: str, time_scale: float, details_per_crawl: int | None) -> CrawlSettings:
    cs = crawl_settings(load_settings(None, env={}), endpoint=url)
    extra: dict[str, Any] = {}
    if details_per_crawl is not None:
        extra["details_per_crawl"] = details_per_crawl
    # the free token's quota, the window scaled as the simulator's (the crawler's own pace;
    # the server's RateLimit / RateLimit-Policy headers tighten it when they say so)
    return dataclasses.replace(
        cs,
        hub_token=TOKEN,
        hub_requests_per_window=FREE["api"],
        hub_window_seconds=WINDOW / time_scale,
        **extra,
    )


@dataclasses.dataclass
class Crawl:
    source: str
    status: str
    items: int
    changed: int
    listing_requests: int  # api bucket: listing pages (+ repo info of suspect records)
    detail_kinds: dict[str, int]
    listing_seconds: float  # wall, from the catalog's started_at to finished_at
    seconds: float  # wall
    rate_limited: int
    retries: int
    pending: int | None


def quota_floor(api: int, resolvers: int, pages: int = 0) -> float:
    """Seconds the free token's quota needs at the fastest for these requests: whole windows
    of the slowest bucket (the last window counted in full)."""
    w = max(
        math.ceil(api / FREE["api"]),
        math.ceil(resolvers / FREE["resolvers"]),
        math.ceil(pages / FREE["pages"]),
    )
    return w * WINDOW


async def crawl_one(store: Store, source: str, cs: CrawlSettings) -> Crawl:
    stats = CrawlStats()
    res = await crawl_source(store, source, cs, stats=stats)
    cat = store.snapshots(source, all_statuses=True).filter(
        store.snapshots(source, all_statuses=True)["snapshot_id"] == res.snapshot_id
    )
    row = cat.to_dicts()[0]
    listing_s = (row["finished_at"] - row["started_at"]).total_seconds()
    listing_requests = res.requests - res.detail_requests + res.listing_detail_requests
    return Crawl(
        source=source,
        status=res.status,
        items=res.items,
        changed=res.changed,
        listing_requests=listing_requests,
        detail_kinds=dict(res.detail_kinds),
        listing_seconds=listing_s,
        seconds=res.seconds,
        rate_limited=sum(stats.rate_limited.values()),
        retries=sum(stats.retries.values()),
        pending=res.details_pending,
    )


def top_coverage(store: Store, top: int) -> dict[str, tuple[int, int]]:
    """(covered, total) per detail over the top `top` models of the newest complete model
    snapshot."""
    sid = store.resolve_snapshot("hub:model")
    rows = measure(store, "hub:model", sid, top_n=top)
    return {
        str(r["detail"]): (int(r["covered"]), int(r["total"])) for r in rows if r["scope"] != "all"
    }


def print_crawl(c: Crawl, f: float) -> None:
    print(
        f"  {c.source:<12} {c.status}: {c.items:,} listed, {c.changed:,} changed; "
        f"listing {c.listing_requests:,} api requests in {c.listing_seconds:.0f} s wall "
        f"(x{f:g} = {hours(c.listing_seconds * f)}), quota floor "
        f"{hours(quota_floor(c.listing_requests, 0))}; "
        f"{c.pending if c.pending is not None else '?'} repos wait for details; "
        f"429s {c.rate_limited}, retries {c.retries}"
    )


def sent(host: str) -> tuple[int, int]:
    """Requests the client's api and resolvers budgets of `host` have sent so far."""
    b = budgets()
    api, res = b.get((HUB_API, host)), b.get((HUB_RESOLVERS, host))
    return (api.sent if api else 0, res.sent if res else 0)


@dataclasses.dataclass
class DayDrain:
    api: int = 0
    resolvers: int = 0
    repos: int = 0
    passes: int = 0
    seconds: float = 0.0  # wall
    # per source: api, resolver requests of the day's drain when its coverage scope was done
    scope_done: dict[str, tuple[int, int]] = dataclasses.field(default_factory=dict)
    pending: dict[str, int] = dataclasses.field(default_factory=dict)
    rate_limited: int = 0
    retries: int = 0


async def drain_day(
    store: Store, cs: CrawlSettings, api_budget: int, pass_requests: int
) -> DayDrain:
    """The day's details drain: passes of `pass_requests` detail requests, the source
    whose next backlog repo comes first (`first_to_drain`, as the daemon), until
    `api_budget` api requests are spent or every backlog is empty."""
    host = cs.hub_host
    out = DayDrain()
    keys: dict[str, tuple[bool, float] | None] = {s: UNKNOWN_KEY for s in SOURCES}
    stats = CrawlStats()
    a0, r0 = sent(host)
    t0 = time.perf_counter()
    while True:
        a, r = sent(host)
        left = api_budget - (a - a0)
        source = first_to_drain(keys)
        if source is None or left <= 0:
            break
        # a repo costs ~2 api + 1 resolver request: a pass of n detail requests ~2n/3 api
        n = min(pass_requests, max(3, left * 3 // 2))
        res = await drain_source(store, source, cs.with_(details_per_crawl=n), stats=stats)
        out.passes += 1
        out.repos += res.repos
        keys[source] = res.next_key if res.repos else None
        out.pending[source] = res.pending
        if source not in out.scope_done and res.scope_requests is not None:
            # the scope was done within this pass: count the pass's requests up to it
            a1, r1 = sent(host)
            share = res.scope_requests / max(res.requests, 1)
            out.scope_done[source] = (
                (a - a0) + round((a1 - a) * share),
                (r - r0) + round((r1 - r) * share),
            )
    a, r = sent(host)
    out.api, out.resolvers = a - a0, r - r0
    out.seconds = time.perf_counter() - t0
    out.rate_limited = sum(stats.rate_limited.values())
    out.retries = sum(stats.retries.values())
    return out


def print_day(label: str, crawls: list[Crawl], d: DayDrain, f: float, wall: float) -> float:
    """Print the day's figures; returns the quota floor of the day's snapshot with its
    mandatory details (seconds; inf when the drain did not get through them)."""
    listing_api = sum(c.listing_requests for c in crawls)
    listing_wall = sum(c.listing_seconds for c in crawls)
    changed = sum(c.changed for c in crawls)
    lf = quota_floor(listing_api, 0)
    print(
        f"  {label}: listings of all three, back to back: {listing_api:,} api requests = "
        f"{listing_api / FREE['api']:.2f} windows of {FREE['api']:,} -> quota floor "
        f"{hours(lf)}; measured {listing_wall:.0f} s wall (x{f:g} = {hours(listing_wall * f)});"
        f" real {hours(max(lf, listing_wall))}"
    )
    print(
        f"    drain: {d.passes} passes, {d.repos:,} repos detailed with {d.api:,} api + "
        f"{d.resolvers:,} resolver requests ({(d.api + d.resolvers) / max(d.repos, 1):.2f} a "
        f"repo) in {d.seconds:.0f} s wall (x{f:g} = {hours(d.seconds * f)}), quota floor "
        f"{hours(quota_floor(d.api, d.resolvers))}; still pending: "
        + ", ".join(f"{s} {n:,}" for s, n in d.pending.items())
        + f"; 429s {d.rate_limited}, retries {d.retries}"
    )
    mandatory = float("inf")
    if len(d.scope_done) == len(SOURCES):
        sa = max(a for a, _r in d.scope_done.values())
        sr = max(r for _a, r in d.scope_done.values())
        mandatory = quota_floor(listing_api + sa, sr)
        print(
            f"    with the day's mandatory details (every source's top {COVERAGE:,} detailed at "
            f"its listed sha): listings + {sa:,} api + {sr:,} resolver requests -> quota floor "
            f"{hours(mandatory)}"
        )
    else:
        missing = ", ".join(s for s in SOURCES if s not in d.scope_done)
        print(f"    the drain did not get through the mandatory details of: {missing}")
    total_api, total_res = listing_api + d.api, d.resolvers
    per = (d.api + d.resolvers) / changed if changed else float("nan")
    print(
        f"    the day as run: {total_api:,} api + {total_res:,} resolver requests, quota floor "
        f"{hours(quota_floor(total_api, total_res))}; {wall:.0f} s wall (x{f:g} = "
        f"{hours(wall * f)}); changed repos {changed:,}; detail requests per changed repo "
        f"{per:.2f} (the drain spends the day's quota on the backlog, not only on changes)"
    )
    return mandatory


async def run(ns: argparse.Namespace) -> None:
    world = sizes(ns)
    f = ns.time_scale
    print(
        f"== hubscale: {world['models']:,} models, {world['datasets']:,} datasets, "
        f"{world['spaces']:,} spaces; free token quotas api {FREE['api']:,} / resolvers "
        f"{FREE['resolvers']:,} / pages {FREE['pages']:,} per {WINDOW:g} s, time scale {f:g} "
        f"(window {WINDOW / f:g} s); load average {os.getloadavg()[0]:.2f}, "
        f"{os.cpu_count()} cores"
    )
    pages = {s: math.ceil(world[s.split(":")[1] + "s"] / 1000) for s in SOURCES}
    n_pages = sum(pages.values())
    print(
        "  arithmetic: listing pages of 1,000 are /api/... requests (the api bucket, "
        f"simulator/quota.py): {pages['hub:model']:,} + {pages['hub:dataset']:,} + "
        f"{pages['hub:space']:,} = {n_pages:,} pages = {n_pages / FREE['api']:.2f} windows "
        f"-> {hours(math.ceil(n_pages / FREE['api']) * WINDOW)} at the fastest; details: commits"
        " and discussions are api, cards resolvers (5x the api quota): ~2 api requests per repo"
        f" -> {FREE['api'] // 2:,} repos per window, {FREE['api'] // 2 * 12:,} per hour"
    )
    rss = SelfRss()
    sim = Simulator(world, f, ns.seed)
    print(f"  simulator built in {sim.built:.0f} s at {sim.url}")
    reset_budgets()
    cs = settings(sim.url, f, 0)
    print(
        f"  crawler: concurrency {cs.concurrency}; drain passes of {ns.pass_requests:,} detail "
        f"requests, up to {ns.drain_hours if ns.drain_hours is not None else 'the rest of the day'}"
        " hours of quota a day"
    )
    coverage: list[tuple[int, dict[str, tuple[int, int]]]] = []
    daily: list[float] = []
    drains: list[tuple[int, int]] = []  # per day: (listing api, drain api) requests
    try:
        with tempfile.TemporaryDirectory(dir=ns.tmp) as tmp:
            store = Store.open(tmp)
            for day in range(0, ns.days + 1):
                if day:
                    t = time.perf_counter()
                    sim.advance(1)
                    print(
                        f"-- day {day} (advanced one simulated day in {time.perf_counter() - t:.0f} s)"
                    )
                else:
                    print("-- day 0: the first crawl of an empty store")
                t0 = time.perf_counter()
                crawls = []
                for source in SOURCES:
                    c = await crawl_one(store, source, cs)
                    print_crawl(c, f)
                    crawls.append(c)
                listing_api = sum(c.listing_requests for c in crawls)
                hours_left = (DAY - quota_floor(listing_api, 0)) / 3600
                asked = (
                    ns.first_drain_hours if day == 0 and ns.first_drain_hours else ns.drain_hours
                )
                drain_hours = hours_left if asked is None else asked
                api_budget = int(drain_hours * 12 * FREE["api"])
                d = await drain_day(store, cs, api_budget, ns.pass_requests)
                wall = time.perf_counter() - t0
                label = "first snapshot" if day == 0 else "daily snapshot"
                mandatory = print_day(label, crawls, d, f, wall)
                if day:
                    daily.append(mandatory)
                drains.append((listing_api, d.api))
                cov = top_coverage(store, ns.top)
                coverage.append((day, cov))
                print(
                    f"    details coverage of the top {ns.top:,} models after day {day} "
                    f"(measured, {drain_hours:.1f} h of drain): "
                    + ", ".join(
                        f"{k} {a:,}/{b:,} = {a / max(b, 1):.1%}" for k, (a, b) in cov.items()
                    )
                )
                print(
                    f"    peak RSS so far: crawler + store {rss.high_water() / 2**30:.2f} GiB, "
                    f"simulator {sim.peak_rss / 2**30:.2f} GiB"
                )
            du = sum(
                os.path.getsize(os.path.join(d, name))
                for d, _, names in os.walk(tmp)
                for name in names
            )
            print(f"  store on disk: {du / 2**30:.2f} GiB")
    finally:
        sim.stop()
    project(coverage, ns.top)
    project_whole_days(coverage, drains, ns.top)
    if daily:
        print(
            "  daily snapshot incl. the day's mandatory details (quota floor): "
            + ", ".join(hours(x) if math.isfinite(x) else "not reached in the drain" for x in daily)
            + " (target < 2 h)"
        )
    b = {k: v for k, v in budgets().items()}
    waited = ", ".join(f"{svc} {bud.waited:.0f} s" for (svc, _h), bud in sorted(b.items()))
    print(f"  time requests waited on the client's budgets (wall): {waited}")
    print(
        f"  peak RSS: crawler + store {rss.high_water() / 2**30:.2f} GiB (target < 4 GB at "
        f"3.2M models), simulator {sim.peak_rss / 2**30:.2f} GiB"
    )
    print(f"load average {os.getloadavg()[0]:.2f} at end")


def project(coverage: list[tuple[int, dict[str, tuple[int, int]]]], top: int) -> None:
    """Coverage of the top models after 1, 7 and 30 days: measured where run, else projected
    linearly from the measured drain rate (covered repos gained per day) up to the total."""
    measured = dict(coverage)
    last_day, last = coverage[-1]
    first_day, first = coverage[0]
    span = max(last_day - first_day, 0)
    for kind in last:
        a1, total = last[kind]
        # gained per day: over the days run, else day 0's own gain (one crawl)
        rate = (a1 - first[kind][0]) / span if span else float(first[kind][0])
        parts = []
        for d in (1, 7, 30):
            if d in measured:
                a, b = measured[d][kind]
                parts.append(f"day {d} {a / max(b, 1):.1%} (measured)")
            else:
                est = min(total, a1 + rate * (d - last_day))
                parts.append(f"day {d} {est / max(total, 1):.1%} (projected)")
        print(f"  top {top:,} {kind}: drain rate {rate:,.0f} repos/day; " + ", ".join(parts))


def project_whole_days(
    coverage: list[tuple[int, dict[str, tuple[int, int]]]],
    drains: list[tuple[int, int]],
    top: int,
) -> None:
    """Coverage of the top models after 1, 7 and 30 days were the drain to spend the whole
    day's quota (the daemon's drain between crawls): the measured coverage gained per drain
    api request on the last day run, times a day's api quota less its listings, each day
    (projected, linear: optimistic once the top fills, as the drain's order then reaches
    repos outside it and changed repos come due again)."""
    if len(coverage) != len(drains) or not drains:
        return
    per_day = int(DAY / WINDOW) * FREE["api"]
    last_day, last = coverage[-1]
    before = coverage[-2][1] if len(coverage) > 1 else None
    listing_api, drain_api = drains[-1]
    day_api = per_day - listing_api
    for kind, (a1, total) in last.items():
        gained = a1 - (before[kind][0] if before else 0)
        per_api = gained / max(drain_api, 1)
        parts = []
        # the last day's drain was shorter than the day: its rest first, then whole days
        rest = max(0, day_api - drain_api)
        for d in (1, 7, 30):
            est = min(total, a1 + per_api * (rest + day_api * max(0, d - last_day)))
            parts.append(f"day {d} {est / max(total, 1):.1%}")
        print(
            f"  top {top:,} {kind}, projected with the whole day's quota for the drain "
            f"({day_api:,} api requests a day; measured {per_api:.3f} top-{top:,} repos gained "
            f"per drain api request on day {last_day}): " + ", ".join(parts)
        )


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--scale", choices=sorted(SCALES), default="hub")
    ap.add_argument("--models", type=int, default=0, help="a smaller world (Hub proportions)")
    ap.add_argument("--time-scale", type=float, default=60.0)
    ap.add_argument("--days", type=int, default=1, help="simulated days after day 0")
    ap.add_argument("--top", type=int, default=100_000, help="coverage of the top N models")
    ap.add_argument(
        "--drain-hours",
        type=float,
        default=None,
        help="hours of quota the day's drain may spend (default: the day less the listings)",
    )
    ap.add_argument(
        "--first-drain-hours",
        type=float,
        default=None,
        help="day 0's drain in hours of quota (default: as --drain-hours)",
    )
    ap.add_argument(
        "--pass-requests", type=int, default=3000, help="detail requests per drain pass"
    )
    ap.add_argument("--seed", type=int, default=11)
    ap.add_argument("--tmp", default=None, help="directory for the temporary store")
    ns = ap.parse_args()
    if ns.time_scale <= 0:
        ap.error("--time-scale must be > 0")
    asyncio.run(run(ns))
    release_reactor_threads()


if __name__ == "__main__":
    main()
