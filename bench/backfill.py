"""Backfill throughput: rows/s and store bytes against archive bytes, for hub-stats-shaped
daily versions of `models.parquet` (a folder of revisions), and the projection for a year
of real hub-stats (350 MB to 1.6 GB a day).

The generated files have hub-stats' columns and value shapes (`_id`, `id`, `author`,
`createdAt`, `lastModified`, `downloads`, `downloadsAllTime`, `likes`, `trendingScore`,
`pipeline_tag`, `library_name`, ~8 `tags`, `cardData` as a JSON string, `baseModels`,
`siblings`, `safetensors`), so their bytes per row stand for the real files'. Every day
the counters move for about a third of the models and ~1 % are modified.

    .venv/bin/python bench/backfill.py                          # 100 versions x 100k models
    .venv/bin/python bench/backfill.py --versions 10 --models 10000   # quick
"""

from __future__ import annotations

import sys
from pathlib import Path

# `python bench/backfill.py` puts bench/ first on sys.path, where `backfill` is this file:
# drop it so `import backfill` finds the package
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]

import argparse  # noqa: E402
import json  # noqa: E402
import resource  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from datetime import UTC, datetime, timedelta  # noqa: E402

import numpy as np  # noqa: E402
import polars as pl  # noqa: E402

from backfill import run_backfill  # noqa: E402
from storage import Store  # noqa: E402

PIPELINES = ["text-generation", "text-classification", "image-classification", None]
LIBRARIES = ["transformers", "diffusers", "gguf", "sentence-transformers", None]


def base_models(n: int, rng: np.random.Generator) -> pl.DataFrame:
    """The static part of n models, shaped like hub-stats' models.parquet."""
    ids = [f"{0x640000000000000000000000 + i:024x}" for i in range(n)]
    names = [f"org{i % 5000}/model-{i}" for i in range(n)]
    lib = [LIBRARIES[i % len(LIBRARIES)] for i in range(n)]
    extra = ["region:us", "endpoints_compatible", "autotrain"]
    tags = [
        [
            lib[i] or "pytorch",
            "safetensors",
            "en",
            f"license:{('mit', 'apache-2.0')[i % 2]}",
            f"dataset:org{i % 97}/data-{i % 13}",
            *extra[: 1 + i % 3],
        ]
        for i in range(n)
    ]
    # free text and file names carry the entropy that makes the real files ~600-900 B/row
    vocab = [f"{w:x}{'abcdefgh'[w % 8] * (1 + w % 7)}" for w in rng.integers(0, 1 << 24, 3000)]
    words = rng.integers(0, len(vocab), (n, 140))
    cards = [
        json.dumps(
            {
                "license": ("mit", "apache-2.0")[i % 2],
                "language": ["en"],
                "tags": tags[i][:3],
                "datasets": [f"org{i % 97}/data-{i % 13}"],
                "metrics": ["accuracy"],
                "widget": [{"text": " ".join(vocab[w] for w in words[i])}],
                "model-index": [{"name": names[i], "results": []}],
            }
        )
        if i % 3
        else None
        for i in range(n)
    ]
    hashes = rng.integers(0, 1 << 62, (n, 24))
    siblings = [
        [{"rfilename": f} for f in ("README.md", "config.json", ".gitattributes")]
        + [{"rfilename": f"{hashes[i, k]:x}/part-{k:05d}.safetensors"} for k in range(i % 24)]
        for i in range(n)
    ]
    created = datetime(2022, 1, 1, tzinfo=UTC)
    return pl.DataFrame(
        {
            "_id": ids,
            "id": names,
            "author": [x.split("/")[0] for x in names],
            "createdAt": [created + timedelta(minutes=7 * i) for i in range(n)],
            "pipeline_tag": [PIPELINES[i % len(PIPELINES)] for i in range(n)],
            "library_name": lib,
            "tags": tags,
            "cardData": cards,
            "baseModels": [
                {"relation": "finetune", "models": [{"id": names[i // 2]}]} if i % 5 == 0 else None
                for i in range(n)
            ],
            "siblings": siblings,
            "safetensors": [
                {"parameters": {"F32": int(p)}, "total": int(p)}
                for p in rng.integers(10**6, 10**10, n)
            ],
        }
    )


def write_versions(root: Path, versions: int, n: int) -> int:
    """`root/<day>/models.parquet` for each day; returns their total bytes."""
    rng = np.random.default_rng(0)
    static = base_models(n, rng)
    total = rng.integers(0, 100_000, n)
    modified = np.full(n, 0, dtype=np.int64)
    start = datetime(2025, 3, 1, 13, tzinfo=UTC)
    size = 0
    for v in range(versions):
        moved = rng.random(n) < 0.3
        step = rng.integers(0, 200, n) * moved
        total = total + step
        modified[rng.random(n) < 0.01] = v
        day = root / f"{(start + timedelta(days=v)).date()}"
        day.mkdir(parents=True)
        last = [start + timedelta(days=int(d)) for d in modified]
        last[0] = start + timedelta(days=v)  # the folder's instant: its newest lastModified
        static.with_columns(
            lastModified=pl.Series(last, dtype=pl.Datetime("us", "UTC")),
            downloads=pl.Series(total // 10 + step, dtype=pl.Int64),
            downloadsAllTime=pl.Series(total, dtype=pl.Int64),
            likes=pl.Series(total // 1000, dtype=pl.Int64),
            trendingScore=pl.Series(step / 10.0),
        ).write_parquet(day / "models.parquet", compression="snappy")  # pandas' default
        size += (day / "models.parquet").stat().st_size
    return size


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--versions", type=int, default=100)
    ap.add_argument("--models", type=int, default=100_000)
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "hub-stats"
        t = time.perf_counter()
        write_versions(root, a.versions, a.models)
        print(
            f"generated {a.versions} versions x {a.models:,} models in {time.perf_counter() - t:.0f} s"
        )
        store = Store.open(str(Path(tmp) / "store"))
        t = time.perf_counter()
        res = run_backfill(store, "hub-stats", root)
        secs = time.perf_counter() - t
        store.wait_for_tidying()
        store_bytes = sum(s.disk_bytes for s in store.table_stats())
        rate = res.rows / secs
        ratio = store_bytes / res.archive_bytes
        print(
            f"{res.count('imported')} versions x {a.models:,} models: {res.rows:,} rows in "
            f"{secs:.1f} s = {rate:,.0f} rows/s ({secs / max(1, res.count('imported')):.2f} s "
            f"per version); archive {res.archive_bytes / 1e6:,.1f} MB "
            f"({res.archive_bytes / res.rows:.0f} B/row), store {store_bytes / 1e6:,.1f} MB "
            f"({ratio:.3f}x the archive)"
        )
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6  # KiB on Linux
        print(f"peak RSS {peak:.2f} GB (generation and backfill; one version read at a time)")
        per_row = res.archive_bytes / res.rows
        for mb in (350, 1600):
            rows_day = mb * 1e6 / per_row
            hours = rows_day * 365 / rate / 3600
            print(
                f"a year of real hub-stats at {mb:,} MB/day (~{rows_day:,.0f} rows/day at "
                f"{per_row:.0f} B/row): ~{hours:.1f} h, archive {mb * 365 / 1e3:,.0f} GB -> "
                f"store ~{mb * 365 * ratio / 1e3:,.1f} GB (at this ratio)"
            )


if __name__ == "__main__":
    main()
