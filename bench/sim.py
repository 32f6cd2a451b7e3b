"""Simulator benchmark: build time and memory of a big world, and listing throughput.

    .venv/bin/python bench/sim.py [--scale hub | --models 2000000] [--pages 20]

Prints: time and RSS growth to build the world; listing pages of 1000 models with the full
expand set (sorted by downloads, cursor-paged) in pages/s and items/s; the same for a bare
aiohttp handler returning one fixed page of the same bytes (the transport limit).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import time
from urllib.parse import urlencode

import aiohttp
import psutil
from aiohttp import web

from simulator.config import SCALES, QuotaConfig, SimConfig
from simulator.hub_render import LISTING_EXPAND, TRUTH_FIELDS
from simulator.testing import SimServer


async def crawl(url: str, pages: int) -> tuple[float, int, int, bytes]:
    """Follow Link headers for `pages` pages; (seconds, pages, items, last body)."""
    items = 0
    body = b""
    done = 0
    t0 = time.perf_counter()
    async with aiohttp.ClientSession() as s:
        nxt: str | None = url
        while nxt and done < pages:
            async with s.get(nxt) as r:
                body = await r.read()
                assert r.status == 200, body[:200]
                items += body.count(b'"_id"')
                link = r.headers.get("Link")
            nxt = link.split(";")[0].strip("<>") if link else None
            done += 1
    return time.perf_counter() - t0, done, items, body


async def bare(body: bytes, pages: int) -> tuple[float, int, int]:
    async def handler(request: web.Request) -> web.Response:
        return web.Response(body=body, content_type="application/json")

    app = web.Application()
    app.router.add_get("/api/models", handler)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    n = body.count(b'"_id"')
    t0 = time.perf_counter()
    async with aiohttp.ClientSession() as s:
        for _ in range(pages):
            async with s.get(f"http://127.0.0.1:{port}/api/models") as r:
                await r.read()
    dt = time.perf_counter() - t0
    await runner.cleanup()
    return dt, pages, n * pages


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--models", type=int, default=2_000_000)
    ap.add_argument("--pages", type=int, default=20)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--scale", choices=sorted(SCALES), help="the real Hub's sizes")
    a = ap.parse_args()
    sizes = {"models": a.models, "datasets": a.models // 4, "spaces": a.models // 5}
    sizes.update(SCALES.get(a.scale or "", {}))
    proc = psutil.Process()
    gc.collect()
    rss0 = proc.memory_info().rss
    t0 = time.perf_counter()
    # quotas off: the bench measures the server, not the Hub's limits
    cfg = SimConfig(seed=a.seed, **sizes, npm=10_000, pypi=10_000,
                    quota=QuotaConfig(enabled=False))  # fmt: skip
    srv = SimServer(cfg).start()
    build = time.perf_counter() - t0
    rss = proc.memory_info().rss - rss0
    a.models = sizes["models"]
    print(f"world: {sizes['models']:,} models, {sizes['datasets']:,} datasets, "
          f"{sizes['spaces']:,} spaces, 20,000 packages")  # fmt: skip
    print(f"  build          {build:8.1f} s   RSS +{rss / 2**20:,.0f} MiB")
    full = LISTING_EXPAND["model"]
    listed = [e for e in TRUTH_FIELDS["model"] if e in full]  # childrenModelCount is not listable
    params = [("sort", "downloads"), ("limit", "1000")] + [("expand", e) for e in full]
    url = f"{srv.url}/api/models?{urlencode(params)}"
    try:
        dt, pages, items, body = asyncio.run(crawl(url, a.pages))
        print(f"  full-expand listing, {pages} pages of 1000 (first page sorts {a.models:,}):")
        print(f"    simulator    {pages / dt:8.1f} pages/s  {items / dt:10,.0f} items/s  "
              f"{len(body) / 1e6:.2f} MB/page")  # fmt: skip
        dt2, pages2, items2, _body2 = asyncio.run(crawl(url, a.pages))
        print(f"    again (warm) {pages2 / dt2:8.1f} pages/s  {items2 / dt2:10,.0f} items/s")
        stored = [("sort", "downloads"), ("limit", "1000")] + [("expand", e) for e in listed]
        url2 = f"{srv.url}/api/models?{urlencode(stored)}"
        dt3, pages3, items3, body3 = asyncio.run(crawl(url2, a.pages))
        print(f"    stored set   {pages3 / dt3:8.1f} pages/s  {items3 / dt3:10,.0f} items/s  "
              f"{len(body3) / 1e6:.2f} MB/page (the truth fields hubtide stores)")  # fmt: skip
        created = [("sort", "createdAt"), ("direction", "1"), ("limit", "1000")] + [
            ("expand", e) for e in listed
        ]
        url4 = f"{srv.url}/api/models?{urlencode(created)}"
        dt4, pages4, items4, _b4 = asyncio.run(crawl(url4, a.pages))
        print(f"    createdAt asc{pages4 / dt4:8.1f} pages/s  {items4 / dt4:10,.0f} items/s  "
              "(sort=createdAt&direction=1, stored set)")  # fmt: skip
        url5 = f"{srv.url}/api/models?{urlencode(stored[1:])}"
        dt5, pages5, items5, _b5 = asyncio.run(crawl(url5, a.pages))
        print(f"    default order{pages5 / dt5:8.1f} pages/s  {items5 / dt5:10,.0f} items/s  "
              "(trending-like, stored set)")  # fmt: skip
        bdt, bpages, bitems = asyncio.run(bare(body, a.pages * 5))
        print(f"    bare aiohttp {bpages / bdt:8.1f} pages/s  {bitems / bdt:10,.0f} items/s  "
              "(fixed page, same bytes)")  # fmt: skip
    finally:
        srv.stop()


if __name__ == "__main__":
    main()
