"""Hub-scale bench: prints figures, asserts nothing (issue 14, point 6).

A simulator in a child process (`python -m simulator`, quotas on, every token the free
tier: api 1,000 / resolvers 5,000 / pages 200 per 5 minutes, the window divided by
`--time-scale F`), the real crawler (`crawl_source`, details on) crawling hub:model,
hub:dataset and hub:space into a temporary store, one crawl of each per simulated day
(`/_sim/advance?days=1` between days: the simulator's daily change rates). The world is not
live (`--no-live`): a day's changes land at once, so each day is exactly one day.

Real-world (unscaled) time of a stage is given two ways:
  * quota floor: the stage's requests per bucket over the free token's quota, in whole
    5-minute windows (what the real Hub's quota allows at the fastest);
  * time-scaled clock: wall seconds x F (the real-world time only when the crawl was
    quota-bound here; when the simulator or the client is the bottleneck it overstates).
The estimate printed as "real" is max(quota floor, wall seconds): the quota's time, unless
this machine's own speed is slower.

Details coverage of the top `--top` models (by downloads) is measured after each simulated
day run; days past `--days` up to 30 are projected from the measured drain rate (labelled).

    .venv/bin/python bench/hubscale.py [--scale hub | --models 100000] [--time-scale 60]
        [--days 1] [--top 100000]
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

from crawler import CrawlSettings, crawl_source
from crawler.backlog import measure
from crawler.budget import budgets, reset_budgets
from crawler.engine import release_reactor_threads
from crawler.stats import CrawlStats
from hubtide.config import load_settings
from hubtide.wiring import crawl_settings
from simulator.config import QUOTA_TIERS, SCALES
from storage import Store

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SOURCES = ("hub:model", "hub:dataset", "hub:space")
WINDOW = 300.0  # the Hub's quota window, seconds
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
    seconds: float  # wall, listing + drain
    rate_limited: int
    retries: int
    pending: int | None

    @property
    def api(self) -> int:
        # cards go through the resolvers; every other request is /api/...
        return self.listing_requests + sum(n for k, n in self.detail_kinds.items() if k != "cards")

    @property
    def resolvers(self) -> int:
        return self.detail_kinds.get("cards", 0)

    @property
    def details(self) -> int:
        return sum(self.detail_kinds.values())


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
    real = max(quota_floor(c.api, c.resolvers), c.seconds)
    print(
        f"  {c.source:<12} {c.status}: {c.items:,} listed, {c.changed:,} changed; "
        f"listing {c.listing_requests:,} api requests in {c.listing_seconds:.0f} s wall "
        f"(x{f:g} = {hours(c.listing_seconds * f)}); details "
        f"{dict(sorted(c.detail_kinds.items()))}, {c.pending if c.pending is not None else '?'}"
        f" repos still pending; whole crawl {c.seconds:.0f} s wall (x{f:g} = "
        f"{hours(c.seconds * f)}), quota floor {hours(quota_floor(c.api, c.resolvers))}, "
        f"real {hours(real)}; 429s {c.rate_limited}, retries {c.retries}"
    )


def print_day(label: str, crawls: list[Crawl], f: float, wall: float) -> None:
    api = sum(c.api for c in crawls)
    res = sum(c.resolvers for c in crawls)
    listing_api = sum(c.listing_requests for c in crawls)
    listing_wall = sum(c.listing_seconds for c in crawls)
    changed = sum(c.changed for c in crawls)
    details = sum(c.details for c in crawls)
    lim = sum(c.rate_limited for c in crawls)
    retries = sum(c.retries for c in crawls)
    lf = quota_floor(listing_api, 0)
    print(
        f"  {label}: listings of all three: {listing_api:,} api requests = "
        f"{listing_api / FREE['api']:.2f} windows of {FREE['api']:,} -> quota floor "
        f"{hours(lf)}; measured {listing_wall:.0f} s wall (x{f:g} = {hours(listing_wall * f)});"
        f" real {hours(max(lf, listing_wall))}"
    )
    # as run: each listing followed by its drain, so the last listing waits for the drains
    as_api = sum(c.api for c in crawls[:-1]) + crawls[-1].listing_requests
    as_res = sum(c.resolvers for c in crawls[:-1])
    print(
        f"    as run (each listing followed by its drain): the last listing closed after "
        f"{as_api:,} api + {as_res:,} resolver requests -> quota floor "
        f"{hours(quota_floor(as_api, as_res))}"
    )
    # the day's mandatory details: every changed repo's commits, discussions (api) and card
    # (resolvers) - what a day's snapshot owes before its history is whole
    mand_api, mand_res = listing_api + 2 * changed, changed
    mf = quota_floor(mand_api, mand_res)
    print(
        f"    with the day's mandatory details ({changed:,} changed repos x (2 api + 1 resolver)):"
        f" {mand_api:,} api + {mand_res:,} resolver requests -> quota floor {hours(mf)}"
    )
    print(
        f"    the whole crawl as run (listing + drain of up to details_per_crawl each): "
        f"{api:,} api + {res:,} resolver requests, quota floor {hours(quota_floor(api, res))};"
        f" {wall:.0f} s wall (x{f:g} = {hours(wall * f)}); "
        f"real {hours(max(quota_floor(api, res), wall))}"
    )
    per = (details / changed) if changed else float("nan")
    print(
        f"    requests per changed repo: details {per:.2f}, all (incl. listing) "
        f"{(api + res) / max(changed, 1):.2f} (the drain spends up to details_per_crawl, "
        f"backlog first by weight, not per changed repo); 429s {lim}, retries {retries}"
    )


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
    cs = settings(sim.url, f, ns.details_per_crawl)
    print(f"  crawler: details_per_crawl {cs.details_per_crawl:,}, concurrency {cs.concurrency}")
    coverage: list[tuple[int, dict[str, tuple[int, int]]]] = []
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
                wall = time.perf_counter() - t0
                print_day("first snapshot" if day == 0 else "daily snapshot", crawls, f, wall)
                cov = top_coverage(store, ns.top)
                coverage.append((day, cov))
                print(
                    f"    details coverage of the top {ns.top:,} models after day {day} "
                    "(measured): "
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


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--scale", choices=sorted(SCALES), default="hub")
    ap.add_argument("--models", type=int, default=0, help="a smaller world (Hub proportions)")
    ap.add_argument("--time-scale", type=float, default=60.0)
    ap.add_argument("--days", type=int, default=1, help="simulated days after day 0")
    ap.add_argument("--top", type=int, default=100_000, help="coverage of the top N models")
    ap.add_argument("--details-per-crawl", type=int, default=None)
    ap.add_argument("--seed", type=int, default=11)
    ap.add_argument("--tmp", default=None, help="directory for the temporary store")
    ns = ap.parse_args()
    if ns.time_scale <= 0:
        ap.error("--time-scale must be > 0")
    asyncio.run(run(ns))
    release_reactor_threads()


if __name__ == "__main__":
    main()
