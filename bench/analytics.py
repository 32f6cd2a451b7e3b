"""Benchmark of analytics: the full report over 30 snapshots of a Hub- and registry-shaped
world written through the storage writer (prints figures only, no timed asserts).

World (defaults): 100k models, 25k datasets, 25k spaces, 10k npm and 10k PyPI packages,
30 daily complete snapshots each. Every day a third of the download counters move
(lognormal), 0.5 % of entities are created, 0.1 % deleted, 0.05 % renamed, 1 % change
attributes. Models carry libraries, licenses, base-model lineage and card fields; commits,
discussions and cards go in as detail rows; spaces declare the models they use.

    .venv/bin/python bench/analytics.py                  # build (cached) + full report
    .venv/bin/python bench/analytics.py --models 20000 --days 10   # quick
    .venv/bin/python bench/analytics.py --rebuild        # force a fresh store

The store is cached under --dir (default: a folder in the temp dir named for the sizes).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from analytics import turnover, write_report
from storage import Store

T0 = datetime(2026, 1, 1, tzinfo=UTC)
LIBS = ["transformers", "diffusers", "sentence-transformers", "peft", "timm", "gguf", "keras", None]
LIB_P = [0.52, 0.07, 0.06, 0.09, 0.03, 0.05, 0.04, 0.14]
PIPES = [
    "text-generation",
    "text-classification",
    "image-classification",
    "text-to-image",
    "automatic-speech-recognition",
    None,
]
LICENSES = ["apache-2.0", "mit", "openrail", "cc-by-4.0", "llama2", "other", "cc-by-nc-4.0", None]
LIC_P = [0.13, 0.07, 0.03, 0.03, 0.03, 0.03, 0.03, 0.65]
SECTIONS = [
    "Model description",
    "Intended uses & limitations",
    "How to use",
    "Training data",
    "Evaluation results",
    "Citation",
]
FIELDS = [
    "license",
    "language",
    "datasets",
    "metrics",
    "base_model",
    "pipeline_tag",
    "tags",
    "model-index",
]


def _pick(rng: np.random.Generator, values: list, p: list[float] | None, n: int) -> list:
    idx = rng.choice(len(values), size=n, p=p)
    return [values[i] for i in idx]


class Source:
    """One source's listing, moving one day at a time."""

    def __init__(self, kind: str, n: int, rng: np.random.Generator, prefix: str) -> None:
        self.kind, self.rng, self.prefix = kind, rng, prefix
        self.next_id = 0
        self.df = self._new(n, 0)

    def _new(self, n: int, day: int) -> pl.DataFrame:
        rng = self.rng
        ids = np.arange(self.next_id, self.next_id + n)
        self.next_id += n
        dl = (rng.pareto(1.1, n) * 10).astype(np.int64) * (rng.random(n) < 0.6)
        likes = (dl**0.5 * rng.random(n)).astype(np.int64)
        created = [
            T0 + timedelta(days=day) - timedelta(days=int(d)) for d in rng.exponential(300, n)
        ]
        authors = rng.zipf(1.8, n) % 5000
        if self.kind in ("npm", "pypi"):
            return pl.DataFrame(
                {
                    "entity_id": [f"{self.prefix}{i}" for i in ids],
                    "name": [f"{self.prefix}{i}" for i in ids],
                    "ecosystem": self.kind,
                    "licenses": _pick(rng, LICENSES, LIC_P, n),
                    "first_release_at": created,
                    "versions_count": rng.integers(1, 200, n),
                    "downloads": dl * 50,
                    "dependent_packages": (dl**0.6).astype(np.int64),
                }
            )
        libs = _pick(rng, LIBS, LIB_P, n)
        extra = rng.random(n)
        tags = [
            [
                t
                for t in (lib, "pytorch" if e < 0.6 else None, "safetensors" if e > 0.3 else None)
                if t
            ]
            for lib, e in zip(libs, extra, strict=True)
        ]
        base = {
            "entity_id": [f"{self.prefix}{i}" for i in ids],
            "name": [f"u{a}/{self.prefix}{i}" for a, i in zip(authors, ids, strict=True)],
            "author": [f"u{a}" for a in authors],
            "created_at": created,
            "sha": [f"s{i}" for i in ids],
            "license": _pick(rng, LICENSES, LIC_P, n),
            "likes": likes,
            "tags": tags,
            "pipeline_tag": _pick(rng, PIPES, None, n),
        }
        if self.kind == "model":
            has_base = rng.random(n) < 0.4
            pool = max(int(self.next_id * 0.05), 1)
            bases = rng.zipf(1.5, n) % pool
            base.update(
                library_name=libs,
                base_models=[
                    [f"u0/{self.prefix}{b}"] if h else None
                    for b, h in zip(bases, has_base, strict=True)
                ],
                base_model_relation=[
                    _pick(rng, ["finetune", "adapter", "quantized", "merge"], None, 1)[0]
                    if h
                    else None
                    for h in has_base
                ],
                card_fields=[FIELDS[: int(k)] for k in rng.integers(0, len(FIELDS), n)],
                downloads=dl,
            )
        elif self.kind == "dataset":
            base.update(downloads=dl)
        else:
            base.update(
                sdk=_pick(rng, ["gradio", "streamlit", "docker"], None, n),
                space_models=[
                    [f"u0/m{int(m)}" for m in rng.zipf(1.4, int(k)) % 50000]
                    for k in rng.integers(0, 4, n)
                ],
            )
        df = pl.DataFrame(base)
        if self.kind == "model":
            # bases named u0/m<id> must exist: the author of the first 5 % is u0
            df = df.with_columns(
                pl.when(pl.col("entity_id").str.slice(1).cast(pl.Int64) < pool)
                .then(pl.lit("u0/") + pl.col("entity_id"))
                .otherwise(pl.col("name"))
                .alias("name")
            )
        return df

    def step(self, day: int) -> None:
        rng, df = self.rng, self.df
        n = df.height
        move = rng.random(n) < 1 / 3
        factor = np.where(move, rng.lognormal(0, 0.35, n), 1.0)
        cols = [c for c in ("downloads", "likes") if c in df.columns]
        df = df.with_columns(
            [(pl.col(c) * pl.Series(factor)).cast(pl.Int64).alias(c) for c in cols]
        )
        if "sha" in df.columns:
            touched = rng.random(n) < 0.01
            df = df.with_columns(
                pl.when(pl.Series(touched))
                .then(pl.col("sha") + f"-{day}")
                .otherwise(pl.col("sha"))
                .alias("sha")
            )
        if "author" in df.columns:
            renamed = rng.random(n) < 0.0005
            df = df.with_columns(
                pl.when(pl.Series(renamed))
                .then(pl.col("name") + "-r")
                .otherwise(pl.col("name"))
                .alias("name")
            )
        keep = rng.random(n) >= 0.001
        df = df.filter(pl.Series(keep))
        self.df = pl.concat([df, self._new(max(1, int(n * 0.005)), day)], how="diagonal_relaxed")


def details(
    models: pl.DataFrame, rng: np.random.Generator, day: int, first: bool
) -> dict[str, pl.DataFrame]:
    """Commits, discussions and cards seen on `day` (everything on day 0, a trickle after)."""
    n = models.height
    share = 1.0 if first else 0.02
    pick = models.filter(pl.Series(rng.random(n) < share))
    m = pick.height
    counts = np.minimum(rng.zipf(1.7, m), 50) if first else np.ones(m, dtype=np.int64)
    repo_idx = np.repeat(np.arange(m), counts)
    k = repo_idx.size
    owner = pick["author"].to_numpy()[repo_idx]
    other = np.array([f"dev{int(d)}" for d in rng.zipf(1.5, k) % 3000])
    authors = np.where(rng.random(k) < 0.7, owner, other)
    eids = pick["entity_id"].to_numpy()[repo_idx]
    commits = pl.DataFrame(
        {
            "repo_type": "model",
            "entity_id": eids,
            "commit_id": [f"c{day}-{i}" for i in range(k)],
            "date": [
                T0 + timedelta(days=day) - timedelta(days=int(x))
                for x in rng.exponential(60 if first else 1, k)
            ],
            "title": "Update README.md",
            "authors": [[a] for a in authors],
        }
    )
    out = {"commits": commits}
    if first:
        nd = n // 2
        didx = rng.integers(0, n, nd)
        out["discussions"] = pl.DataFrame(
            {
                "repo_type": "model",
                "entity_id": models["entity_id"].to_numpy()[didx],
                "num": np.arange(nd),
                "title": "How to use this model?",
                "author": [f"dev{int(d)}" for d in rng.zipf(1.5, nd) % 3000],
                "is_pull_request": rng.random(nd) < 0.3,
                "status": "open",
            }
        )
        top = models.sort("downloads", descending=True).head(20000)
        ns = rng.integers(0, len(SECTIONS) + 1, top.height)
        out["cards"] = pl.DataFrame(
            {
                "repo_type": "model",
                "entity_id": top["entity_id"],
                "sha": top["sha"],
                "length": (ns * 400).astype(np.int64),
                "headings": [SECTIONS[: int(x)] for x in ns],
                "metadata_fields": top["card_fields"],
                "text_sample": "A model card.",
            }
        )
    return out


def build(root: Path, sizes: dict[str, int], days: int, seed: int) -> float:
    store = Store.open(str(root))
    rng = np.random.default_rng(seed)
    sources = {
        "hub:model": Source("model", sizes["hub:model"], rng, "m"),
        "hub:dataset": Source("dataset", sizes["hub:dataset"], rng, "d"),
        "hub:space": Source("space", sizes["hub:space"], rng, "s"),
        "npm": Source("npm", sizes["npm"], rng, "n"),
        "pypi": Source("pypi", sizes["pypi"], rng, "p"),
    }
    t0 = time.perf_counter()
    for day in range(days):
        for name, src in sources.items():
            if day:
                src.step(day)
            w = store.begin_snapshot(name, as_of=T0 + timedelta(days=day))
            w.write_batch(0, src.df)
            if name == "hub:model":
                for kind, rows in details(src.df, rng, day, day == 0).items():
                    w.write_details(kind, 0, rows)
            w.finish("complete")
        print(f"  day {day + 1}/{days} written ({time.perf_counter() - t0:.0f} s)", flush=True)
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--models", type=int, default=100_000)
    ap.add_argument("--days", type=int, default=30)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--dir", type=Path, default=None)
    ap.add_argument("--rebuild", action="store_true")
    args = ap.parse_args()
    m = args.models
    sizes = {
        "hub:model": m,
        "hub:dataset": m // 4,
        "hub:space": m // 4,
        "npm": m // 10,
        "pypi": m // 10,
    }
    # the cache name carries the store layout: a store written by session 1's storage
    # (no suffix) cannot be read by session 2's (integer keys, top-k as member keys)
    root = (
        args.dir
        or Path(tempfile.gettempdir())
        / f"hubtide-bench-analytics-{m}x{args.days}-s{args.seed}-layout2"
    )
    store_dir = root / "store"
    if args.rebuild and root.exists():
        shutil.rmtree(root)
    if not (root / "built").exists():
        if store_dir.exists():
            shutil.rmtree(store_dir)
        store_dir.mkdir(parents=True)
        print(f"building {args.days} snapshots of {sizes} under {store_dir} ...")
        secs = build(store_dir, sizes, args.days, args.seed)
        (root / "built").write_text(f"{secs:.1f}\n")
        print(f"build: {secs:.1f} s")
    else:
        print(f"reusing {store_dir} (built in {(root / 'built').read_text().strip()} s)")
    store = Store.open(str(store_dir))
    t0 = time.perf_counter()
    tv = turnover(store, "hub:model", k=1000)
    t_turn = time.perf_counter() - t0
    print(
        f"turnover(hub:model, k=1000): {t_turn:.2f} s, {tv.height} pairs; "
        f"mean newcomers {tv['newcomers'].mean():.0f}, distinct ever {tv['distinct_ever'][-1]}"
    )
    out = root / "report"
    load0 = os.getloadavg()[0]
    t0 = time.perf_counter()
    page = write_report(store, out)
    total = time.perf_counter() - t0
    load1 = os.getloadavg()[0]
    timings = pl.read_csv(out / "tables" / "timings.csv")
    print(f"\nfull report: {total:.1f} s  ({page}, {page.stat().st_size / 1e6:.1f} MB)")
    print(
        f"load average (1 min) before / after: {load0:.1f} / {load1:.1f} on {os.cpu_count()} cores"
    )
    print("per source (s):")
    for src, secs in (
        timings.group_by("source").agg(pl.col("seconds").sum()).sort("source").iter_rows()
    ):
        print(f"  {src:12s} {secs:7.2f}")
    print("per measure, summed over sources (s):")
    per = (
        timings.group_by("measure")
        .agg(pl.col("seconds").sum(), pl.col("status").first())
        .sort("seconds", descending=True)
    )
    for name, secs, status in per.iter_rows():
        print(f"  {name:32s} {secs:7.2f}  {'' if status == 'ok' else status[:60]}")
    print(
        f"measures: {timings['seconds'].sum():.1f} s; page and files: {total - timings['seconds'].sum():.1f} s"
    )


if __name__ == "__main__":
    main()
