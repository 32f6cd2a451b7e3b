"""Backfill throughput: rows/s and store bytes vs archive bytes for hub-stats-shaped
daily versions (a folder of revisions), with the projection for a year of real hub-stats.

    python bench/backfill_bench.py --versions 10 --models 10000
"""

from __future__ import annotations

import argparse
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl

from backfill import run_backfill
from storage import Store


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--versions", type=int, default=10)
    ap.add_argument("--models", type=int, default=10_000)
    a = ap.parse_args()
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "hub-stats"
        ids = [f"{i:024x}" for i in range(a.models)]
        dl = rng.integers(0, 10_000, a.models)
        start = datetime(2025, 3, 1, 13, tzinfo=UTC)
        for v in range(a.versions):
            dl = dl + rng.integers(0, 50, a.models) * (rng.random(a.models) < 0.3)
            day = root / f"{v:04d}"
            day.mkdir(parents=True)
            pl.DataFrame(
                {
                    "_id": ids,
                    "id": [f"org/m{i}" for i in range(a.models)],
                    "lastModified": [start + timedelta(days=v)] * a.models,
                    "downloads": dl,
                    "downloadsAllTime": dl,
                    "likes": dl // 100,
                    "tags": [["transformers"]] * a.models,
                }
            ).write_parquet(day / "models.parquet")
        store = Store.open(str(Path(tmp) / "store"))
        t = time.perf_counter()
        res = run_backfill(store, "hub-stats", root)
        secs = time.perf_counter() - t
        store.wait_for_tidying()
        store_bytes = sum(s.disk_bytes for s in store.table_stats())
        rate = res.rows / secs
        print(
            f"{res.count('imported')} versions x {a.models} models: {res.rows} rows in "
            f"{secs:.1f} s = {rate:,.0f} rows/s; archive {res.archive_bytes / 1e6:.1f} MB, "
            f"store {store_bytes / 1e6:.1f} MB ({store_bytes / res.archive_bytes:.2f}x)"
        )
        per_row = res.archive_bytes / res.rows
        for mb in (350, 1600):
            rows = mb * 1e6 / per_row * 365
            print(
                f"a year of real hub-stats at {mb} MB/day: ~{rows / rate / 3600:.1f} h "
                f"at this rate (rows/day ~{rows / 365:,.0f} by this file's bytes per row)"
            )


if __name__ == "__main__":
    main()
