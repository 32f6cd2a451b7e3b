"""Crawl benchmark: prints figures, asserts nothing.

One simulator, one run:
1. items/s of the Scrapy listing crawl (`crawl_source`, details off, into a real store) vs a
   bare aiohttp loop fetching the same pages (same expand fields, same page size, following
   the same Link headers, parsing the JSON) — the transport-and-parse ceiling;
2. detail requests per changed repo on day-to-day crawls (details on), where "changed" is
   what the crawler itself uses: new, or a new sha / lastModified since the last snapshot.

Not measured yet (see README, Known gaps): peak memory of a 2M-model listing, and the
share of a per-client request budget used with the count of 429s drawn.

    .venv/bin/python bench/crawl.py [--models 20000] [--days 3]
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import tempfile
import time
from urllib.parse import urlencode

import aiohttp
import polars as pl

from crawler import crawl_source, hub_parse
from crawler.links import next_link
from hubtide.config import load_settings
from hubtide.wiring import crawl_settings
from simulator.testing import running_simulator
from storage import Store


async def bare_listing(url: str) -> tuple[int, int, float]:
    """Fetch every page of one listing with a plain aiohttp loop: (pages, items, seconds)."""
    params = [("expand", f) for f in hub_parse.EXPAND["model"]] + [("limit", "1000")]
    next_url: str | None = f"{url}/api/models?{urlencode(params)}"
    pages = items = 0
    t0 = time.perf_counter()
    async with aiohttp.ClientSession() as session:
        while next_url:
            async with session.get(next_url) as resp:
                body = await resp.read()
                link = resp.headers.get("Link")
            items += len(json.loads(body))
            pages += 1
            next_url = next_link(link)
    return pages, items, time.perf_counter() - t0


def changed_repos(store: Store, before: int, after: int) -> int:
    """Repos new in `after` or whose sha / last_modified differ from `before`."""
    cols = ["entity_id", "sha", "last_modified"]
    old = store.as_of("hub:model", before, columns=cols).collect()
    new = store.as_of("hub:model", after, columns=cols).collect()
    joined = new.join(old, on="entity_id", how="left", suffix="_old")
    return joined.filter(
        pl.col("sha_old").is_null()
        | (pl.col("sha") != pl.col("sha_old"))
        | (pl.col("last_modified") != pl.col("last_modified_old"))
    ).height


async def main(models: int, days: int) -> None:
    base = load_settings(None, env={})
    with running_simulator(seed=11, models=models, datasets=10, spaces=10, npm=10, pypi=10) as url:
        cs = crawl_settings(base, endpoint=url)
        cs = dataclasses.replace(cs, hub_requests_per_window=10**9)
        print(f"simulator: {models} models at {url}")

        pages, bare_items, bare_s = await bare_listing(url)
        with tempfile.TemporaryDirectory() as tmp:
            store = Store.open(tmp)
            t0 = time.perf_counter()
            res = await crawl_source(store, "hub:model", dataclasses.replace(cs, details=False))
            scrapy_s = time.perf_counter() - t0
        bare_rate, scrapy_rate = bare_items / bare_s, res.items / scrapy_s
        print(f"bare aiohttp listing : {pages} pages, {bare_items} items, {bare_rate:,.0f} items/s")
        print(
            f"scrapy crawl_source  : {res.items} items into the store, {scrapy_rate:,.0f} items/s"
            f" = {scrapy_rate / bare_rate:.0%} of bare (target >= 50 %)"
        )

        with tempfile.TemporaryDirectory() as tmp:
            store = Store.open(tmp)
            first = await crawl_source(store, "hub:model", cs)
            print(
                f"day 0: {first.status}, {first.detail_requests} detail requests (every repo new)"
            )
            prev = first.snapshot_id
            async with aiohttp.ClientSession() as session:
                for day in range(1, days + 1):
                    async with session.post(f"{url}/_sim/advance?days=1") as resp:
                        resp.raise_for_status()
                    res = await crawl_source(store, "hub:model", cs)
                    changed = changed_repos(store, prev, res.snapshot_id)
                    per = res.detail_requests / changed if changed else float("nan")
                    print(
                        f"day {day}: {res.status}, {changed} changed repos, "
                        f"{res.detail_requests} detail requests = {per:.2f} per changed repo "
                        "(3 kinds: commits, discussions, card)"
                    )
                    prev = res.snapshot_id


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", type=int, default=20000)
    ap.add_argument("--days", type=int, default=3)
    args = ap.parse_args()
    asyncio.run(main(args.models, args.days))
