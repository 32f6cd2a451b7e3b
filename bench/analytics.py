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
    nice -n 5 .venv/bin/python bench/analytics.py --scale hub [--build-minutes 45]

--scale hub: 3.2M models, 365 daily snapshots (see "Hub scale" below; resumable, each run
builds for --build-minutes, then measures on the days built so far): `analyze` of the
newest snapshot (the daemon's job) and the report reading stored results, each in a child
process (wall time, peak RSS from os.wait4), beside the default world computed the same
way and from scratch, and whether the stored and from-scratch reports' tables are equal.

The store is cached under --dir (default: a folder in the temp dir named for the sizes).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl
from polars.testing import assert_frame_equal

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


def build_gen(root: Path, sizes: dict[str, int], seed: int) -> Iterator[float]:
    """Write one day of every source per `next()`; yields the seconds that day took."""
    store = Store.open(str(root))
    rng = np.random.default_rng(seed)
    sources = {
        "hub:model": Source("model", sizes["hub:model"], rng, "m"),
        "hub:dataset": Source("dataset", sizes["hub:dataset"], rng, "d"),
        "hub:space": Source("space", sizes["hub:space"], rng, "s"),
        "npm": Source("npm", sizes["npm"], rng, "n"),
        "pypi": Source("pypi", sizes["pypi"], rng, "p"),
    }
    day = 0
    while True:
        t0 = time.perf_counter()
        for name, src in sources.items():
            if day:
                src.step(day)
            w = store.begin_snapshot(name, as_of=T0 + timedelta(days=day))
            w.write_batch(0, src.df)
            if name == "hub:model":
                for kind, rows in details(src.df, rng, day, day == 0).items():
                    w.write_details(kind, 0, rows)
            w.finish("complete")
        day += 1
        yield time.perf_counter() - t0


def build(root: Path, sizes: dict[str, int], days: int, seed: int) -> float:
    gen = build_gen(root, sizes, seed)
    secs = 0.0
    for day in range(days):
        secs += next(gen)
        print(f"  day {day + 1}/{days} written ({secs:.0f} s)", flush=True)
    return secs


# -- Hub scale (--scale hub) --------------------------------------------------------------
#
# 3.2M models (models only: the targets name models; datasets and spaces would triple the
# build), 365 daily complete snapshots written through the storage writer, with commits,
# discussions and cards. Daily change as on the Hub (and the simulator): a third of the
# download counters move, ~1.5 % of repos change (new sha and a commit), 0.12 % created,
# 0.02 % deleted, 0.01 % renamed. The build is resumable: after each day the generator's
# state (listing + rng) is saved beside the store; a killed build continues from the last
# complete snapshot (a snapshot left running is finished or failed and rewritten).

HUB_T0 = datetime(2025, 12, 1, tzinfo=UTC)  # 365 days end before today
HUB_MODELS = 3_200_000
HUB_SIZES = {"hub:model": HUB_MODELS}
_FIELD_LISTS = [FIELDS[:k] for k in range(len(FIELDS) + 1)]
_SECTION_LISTS = [SECTIONS[:k] for k in range(len(SECTIONS) + 1)]


def _gather(values: list, idx: np.ndarray, dtype: pl.DataType | None = None) -> pl.Series:
    """values[idx] as a Series, built column-wise (lists of small lookup tables too)."""
    return pl.Series(values, dtype=dtype).gather(pl.Series(idx.astype(np.int64)))


class HubModels:
    """The model listing of the Hub-scale world, built column-wise (3.2M rows in seconds)."""

    def __init__(self, n: int, rng: np.random.Generator) -> None:
        self.rng = rng
        self.next_id = 0
        self.df = self.new(n, 0)

    def new(self, n: int, day: int) -> pl.DataFrame:
        rng = self.rng
        ids = np.arange(self.next_id, self.next_id + n, dtype=np.int64)
        self.next_id += n
        dl = (rng.pareto(1.1, n) * 10).astype(np.int64) * (rng.random(n) < 0.6)
        likes = (dl**0.5 * rng.random(n)).astype(np.int64)
        age = (rng.exponential(300, n) * 86400).astype("timedelta64[s]").astype("timedelta64[us]")
        created = np.datetime64(HUB_T0.replace(tzinfo=None) + timedelta(days=day), "s") - age
        authors = rng.zipf(1.8, n) % 50_000
        libs = rng.choice(len(LIBS), size=n, p=LIB_P)
        extra = rng.random(n)
        has_base = rng.random(n) < 0.4
        pool = max(int(self.next_id * 0.05), 1)
        bases = rng.zipf(1.5, n) % pool
        rel = rng.integers(0, 4, n)
        df = pl.DataFrame(
            {
                "id": ids,
                "a": authors,
                "created_at": pl.Series(created).dt.replace_time_zone("UTC"),
                "license": _gather(LICENSES, rng.choice(len(LICENSES), size=n, p=LIC_P)),
                "likes": likes,
                "library_name": _gather(LIBS, libs),
                "pipeline_tag": _gather(PIPES, rng.integers(0, len(PIPES), n)),
                "e": extra,
                "h": has_base,
                "b": bases,
                "rel": _gather(["finetune", "adapter", "quantized", "merge"], rel),
                "card_fields": _gather(
                    _FIELD_LISTS, rng.integers(0, len(FIELDS), n), pl.List(pl.String)
                ),
                "downloads": dl,
            }
        )
        eid = pl.lit("m") + pl.col("id").cast(pl.String)
        author = pl.lit("u") + pl.col("a").cast(pl.String)
        return df.select(
            eid.alias("entity_id"),
            pl.when(pl.col("id") < pool)  # bases named u0/m<id> exist: the first 5 % are u0's
            .then(pl.lit("u0/") + eid)
            .otherwise(author + pl.lit("/") + eid)
            .alias("name"),
            pl.when(pl.col("id") < pool).then(pl.lit("u0")).otherwise(author).alias("author"),
            "created_at",
            (pl.lit("s") + pl.col("id").cast(pl.String)).alias("sha"),
            "license",
            "likes",
            pl.concat_list(
                pl.col("library_name"),
                pl.when(pl.col("e") < 0.6).then(pl.lit("pytorch")),
                pl.when(pl.col("e") > 0.3).then(pl.lit("safetensors")),
            )
            .list.drop_nulls()
            .alias("tags"),
            "pipeline_tag",
            "library_name",
            pl.when(pl.col("h"))
            .then(pl.concat_list(pl.lit("u0/m") + pl.col("b").cast(pl.String)))
            .alias("base_models"),
            pl.when(pl.col("h")).then(pl.col("rel")).alias("base_model_relation"),
            "card_fields",
            "downloads",
        )

    def step(self, day: int) -> pl.Series:
        """Move one day; returns the entity ids whose repo changed (they get a commit)."""
        rng, df = self.rng, self.df
        n = df.height
        move = rng.random(n) < 1 / 3
        factor = np.where(move, rng.lognormal(0, 0.35, n), 1.0)
        touched = pl.Series(rng.random(n) < 0.015)
        renamed = pl.Series(rng.random(n) < 0.0001)
        df = df.with_columns(
            (pl.col("downloads") * pl.Series(factor)).cast(pl.Int64),
            (pl.col("likes") * pl.Series(np.where(move, rng.lognormal(0, 0.05, n), 1.0))).cast(
                pl.Int64
            ),
            pl.when(touched).then(pl.col("sha") + f"-{day}").otherwise(pl.col("sha")).alias("sha"),
            pl.when(renamed).then(pl.col("name") + "-r").otherwise(pl.col("name")).alias("name"),
        )
        changed = df.filter(touched)["entity_id"]
        df = df.filter(pl.Series(rng.random(n) >= 0.0002))
        born = self.new(max(1, int(n * 0.0012)), day)
        self.df = pl.concat([df, born], how="vertical_relaxed")
        return pl.concat([changed, born["entity_id"]])

    def save(self, folder: Path, day: int, changed: pl.Series | None) -> None:
        """The listing of `day` and what changed that day (written before the snapshot)."""
        for name, frame in (
            ("listing", self.df),
            ("changed", pl.DataFrame({"entity_id": changed if changed is not None else []})),
        ):
            frame.write_parquet(folder / f"{name}.tmp.parquet")
            (folder / f"{name}.tmp.parquet").replace(folder / f"{name}.parquet")
        state = {
            "day": day,
            "first": changed is None,
            "next_id": self.next_id,
            "rng": self.rng.bit_generator.state,
        }
        (folder / "state.tmp.json").write_text(json.dumps(state))
        (folder / "state.tmp.json").replace(folder / "state.json")

    @classmethod
    def load(cls, folder: Path) -> tuple[HubModels, int, pl.Series | None]:
        state = json.loads((folder / "state.json").read_text())
        self = cls.__new__(cls)
        self.rng = np.random.default_rng()
        self.rng.bit_generator.state = state["rng"]
        self.next_id = int(state["next_id"])
        self.df = pl.read_parquet(folder / "listing.parquet")
        changed = None
        if not state["first"]:
            changed = pl.read_parquet(folder / "changed.parquet")["entity_id"]
        return self, int(state["day"]), changed


def hub_details(
    models: pl.DataFrame, changed: pl.Series | None, rng: np.random.Generator, day: int
) -> dict[str, pl.DataFrame]:
    """Day 0: every model's commit history, discussions for half of them, cards of the top
    10 %; later days: a commit on every changed repo and a discussion on 0.2 % of repos."""
    first = changed is None
    pick = models if first else models.filter(pl.col("entity_id").is_in(changed.implode()))
    m = pick.height
    counts = np.minimum(rng.zipf(2.5, m), 50) if first else np.ones(m, dtype=np.int64)
    repo_idx = np.repeat(np.arange(m), counts)
    k = repo_idx.size
    owner = pick["author"].to_numpy()[repo_idx]
    other = np.char.add("dev", (rng.zipf(1.5, k) % 3000).astype(str))
    authors = np.where(rng.random(k) < 0.7, owner, other)
    back = (
        (rng.exponential(60 if first else 1, k) * 86400)
        .astype("timedelta64[s]")
        .astype("timedelta64[us]")
    )
    date = np.datetime64(HUB_T0.replace(tzinfo=None) + timedelta(days=day), "s") - back
    commits = pl.DataFrame(
        {
            "repo_type": pl.Series(["model"]).gather(pl.Series(np.zeros(k, dtype=np.int64))),
            "entity_id": pick["entity_id"].gather(pl.Series(repo_idx)),
            "commit_id": pl.Series(np.arange(k)).cast(pl.String),
            "date": pl.Series(date).dt.replace_time_zone("UTC"),
            "title": pl.Series(["Update README.md"]).gather(pl.Series(np.zeros(k, dtype=np.int64))),
            "authors": pl.Series(authors),
        }
    ).with_columns(
        (pl.lit(f"c{day}-") + pl.col("commit_id")).alias("commit_id"),
        pl.concat_list("authors").alias("authors"),
    )
    out = {"commits": commits}
    n = models.height
    nd = n // 2 if first else max(1, n // 500)
    didx = rng.integers(0, n, nd)
    out["discussions"] = pl.DataFrame(
        {
            "repo_type": "model",
            "entity_id": models["entity_id"].gather(pl.Series(didx)),
            "num": np.arange(nd) + (0 if first else 10_000_000 + day * nd),
            "title": "How to use this model?",
            "author": pl.Series(np.char.add("dev", (rng.zipf(1.5, nd) % 3000).astype(str))),
            "is_pull_request": rng.random(nd) < 0.3,
            "status": "open",
        }
    )
    if first:
        top = models.sort("downloads", descending=True).head(n // 10)
        ns = rng.integers(0, len(SECTIONS) + 1, top.height)
        out["cards"] = pl.DataFrame(
            {
                "repo_type": "model",
                "entity_id": top["entity_id"],
                "sha": top["sha"],
                "length": (ns * 400).astype(np.int64),
                "headings": _gather(_SECTION_LISTS, ns, pl.List(pl.String)),
                "metadata_fields": top["card_fields"],
                "text_sample": "A model card.",
            }
        )
    return out


DETAIL_CHUNK = 400_000  # the writer turns detail rows into records: bounded memory per call


def _write_day(store: Store, models: HubModels, day: int, changed: pl.Series | None) -> None:
    w = store.begin_snapshot("hub:model", as_of=HUB_T0 + timedelta(days=day))
    step = 500_000
    for seq, off in enumerate(range(0, models.df.height, step)):
        w.write_batch(seq, models.df.slice(off, step))
    for kind, rows in hub_details(models.df, changed, models.rng, day).items():
        for seq, off in enumerate(range(0, rows.height, DETAIL_CHUNK)):
            w.write_details(kind, seq, rows.slice(off, DETAIL_CHUNK))  # type: ignore[arg-type]
    w.finish("complete")


def hub_complete(store: Store) -> int:
    if "hub:model" not in store.sources():
        return 0
    return store.snapshots("hub:model").height


def build_hub(
    root: Path, upto: int, budget_s: float, seed: int, n: int = HUB_MODELS
) -> tuple[int, float]:
    """Write daily snapshots until `upto` complete ones exist or `budget_s` is spent;
    resumable. Returns (complete snapshots, seconds spent now)."""
    store_dir, gen = root / "store", root / "gen"
    store_dir.mkdir(parents=True, exist_ok=True)
    gen.mkdir(exist_ok=True)
    store = Store.open(str(store_dir))
    running = store.resume_snapshot("hub:model") if "hub:model" in store.sources() else None
    if running is not None:  # a killed write: its rows are rewritten from the saved state
        running.finish("failed", message="bench build killed; rewritten")
    done = hub_complete(store)
    t0 = time.perf_counter()
    if not (gen / "state.json").exists():
        if done:
            raise SystemExit(f"{root}: a store without generator state; use --rebuild")
        models = HubModels(n, np.random.default_rng(seed))
        models.save(gen, 0, None)
        print(f"  day 0: {models.df.height:,} models generated ({time.perf_counter() - t0:.0f} s)")
    models, day, changed = HubModels.load(gen)
    if day == done:  # the listing of day `day` is saved but not (completely) written
        _write_day(store, models, day, changed)
        done += 1
        print(f"  day {done}/{upto} written ({time.perf_counter() - t0:.0f} s)", flush=True)
    elif day + 1 != done:
        raise SystemExit(
            f"{root}: the generator state is of day {day} but the store holds {done} "
            "complete snapshots; use --rebuild"
        )
    while done < upto and time.perf_counter() - t0 < budget_s:
        day = done
        changed = models.step(day)
        models.save(gen, day, changed)
        _write_day(store, models, day, changed)
        done += 1
        print(f"  day {done}/{upto} written ({time.perf_counter() - t0:.0f} s)", flush=True)
    return done, time.perf_counter() - t0


# -- measuring in a child process (its own peak RSS) ------------------------------------


def child(job: str, store_dir: Path, out: Path) -> None:
    """One measured job, run in a child process: `analyze` (newest snapshot, what the daemon
    runs after a snapshot completes), `report` (reading stored results) or `scratch` (the
    report computing every measure now)."""
    from analytics.measures import MEASURES
    from analytics.stored import analyze

    store = Store.open(str(store_dir))
    t0 = time.perf_counter()
    info: dict[str, object] = {}
    if job in ("analyze", "catchup"):
        # the catch-up before the newest day stores what the incremental series carry
        # forward: the previous results of the `update` series, the per-snapshot rows of the
        # `rows` series (their sample: at most series_max snapshots)
        carried = (
            [m.name for m in MEASURES if m.update is not None or m.rows is not None]
            if job == "catchup"
            else None
        )
        t_start = time.perf_counter()

        def progress(done: int, total: int, what: str) -> None:
            took = time.perf_counter() - t_start
            print(f"    [{job} {took:6.0f} s] {done}/{total} {what}", file=sys.stderr, flush=True)

        s = analyze(store, newest=True, measures=carried, progress=progress)
        info = {
            "keys": s.keys,
            "already": s.already,
            "written": s.written,
            "updated": s.updated,
            "rows_computed": s.rows_computed,
            "rows_reused": s.rows_reused,
            "failures": s.failures,
            "per_measure": dict(sorted(s.seconds.items(), key=lambda kv: -kv[1])),
        }
    else:
        write_report(store, out, stored=job == "report")
        t = pl.read_csv(out / "tables" / "timings.csv")
        info = {
            "measures_s": float(t["seconds"].sum()),
            "computed": int((t["result"] == "computed").sum()),
            "stored": int((t["result"] == "stored").sum()),
        }
    info["seconds"] = time.perf_counter() - t0
    (out.parent / f"{out.name}.json").write_text(json.dumps(info, default=str))


def measured(job: str, store_dir: Path, out: Path) -> dict:
    """Run `child(job)` in a fresh interpreter: wall time, peak RSS (os.wait4) and its info."""
    out.parent.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, __file__, "--child", job, "--dir", str(store_dir), "--out", str(out)]
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd)
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - t0
    if proc.returncode:
        raise SystemExit(f"{job} on {store_dir} exited {proc.returncode}")
    info = json.loads((out.parent / f"{out.name}.json").read_text())
    info.update(wall=wall, rss_gb=usage.ru_maxrss / 2**20, cpu=usage.ru_utime + usage.ru_stime)
    return info


def frames_identical(a: Path, b: Path) -> str:
    """'yes' when every table file of report `a` equals `b`'s (timings aside), else the
    first difference."""
    close: list[str] = []
    names = sorted(p.name for p in (a / "tables").glob("*.parquet"))
    other = sorted(p.name for p in (b / "tables").glob("*.parquet"))
    if names != other:
        return f"no: table files differ: {sorted(set(names) ^ set(other))[:5]}"
    for name in names:
        if name in ("timings.parquet", "freshness.parquet"):  # seconds, and age by the clock
            continue
        x, y = pl.read_parquet(a / "tables" / name), pl.read_parquet(b / "tables" / name)
        if x.schema != y.schema:
            return f"no: {name}: schema {x.schema} != {y.schema}"
        if not x.equals(y, null_equal=True):
            try:  # floats summed in another order (Polars' threads) differ in the last bits
                assert_frame_equal(x, y, rel_tol=1e-9, abs_tol=1e-12)
                close.append(name)
                continue
            except AssertionError:
                pass
            if x.height != y.height:
                return f"no: {name}: {x.height} rows != {y.height}"
            for c in x.columns:
                if not x[c].equals(y[c], null_equal=True):
                    i = int((x[c].ne_missing(y[c])).arg_max() or 0)
                    return f"no: {name}: column {c} row {i}: {x[c][i]!r} != {y[c][i]!r}"
    if close:
        return (
            f"yes ({len(names) - 2} tables; {len(close)} equal to 1e-9 relative, not to the "
            f"last bit, e.g. {close[0]})"
        )
    return f"yes ({len(names) - 2} tables, bit for bit)"


def default_world(seed: int, base: Path) -> dict[str, dict]:
    """The default world (100k models, 30 days) the daemon's way: 29 days, analyze, day
    30, analyze (incremental), the report reading stored results, and the report computing
    everything from scratch; cached under `base`."""
    root = base / f"hubtide-bench-analytics-default-s{seed}-stored1"
    fig = root / "figures.json"
    if fig.exists():
        print(f"default world: reusing figures of {root}")
        return json.loads(fig.read_text())
    if root.exists():
        shutil.rmtree(root)
    store_dir = root / "store"
    store_dir.mkdir(parents=True)
    m = 100_000
    sizes = {"hub:model": m, "hub:dataset": m // 4, "hub:space": m // 4, "npm": m // 10,
             "pypi": m // 10}  # fmt: skip
    print(f"default world: building 29 + 1 days of {sizes} under {store_dir} ...")
    gen = build_gen(store_dir, sizes, seed)
    secs = 0.0
    for _ in range(29):
        secs += next(gen)
    figs: dict[str, dict] = {"build29": {"wall": secs}}
    figs["catchup"] = measured("catchup", store_dir, root / "catchup")
    figs["build30"] = {"wall": next(gen)}
    figs["analyze"] = measured("analyze", store_dir, root / "analyze")
    figs["report"] = measured("report", store_dir, root / "report")
    figs["scratch"] = measured("scratch", store_dir, root / "scratch")
    figs["identical"] = {"verdict": frames_identical(root / "report", root / "scratch")}
    fig.write_text(json.dumps(figs, default=str))
    return figs


def hub_world(args: argparse.Namespace, base: Path) -> tuple[int, dict[str, dict]]:
    root = args.dir or base / f"hubtide-bench-analytics-hub-{args.hub_models}-s{args.seed}"
    if args.rebuild and root.exists():
        shutil.rmtree(root)
    root.mkdir(parents=True, exist_ok=True)
    log = root / "build.log"
    budget = args.build_minutes * 60
    print(
        f"hub world under {root} (target {args.days} days, build budget {args.build_minutes} min)"
    )
    done, secs = build_hub(root, args.days - 1, budget, args.seed, args.hub_models)
    with log.open("a") as f:
        f.write(f"{datetime.now(UTC).isoformat()} built to {done} days in {secs:.1f} s\n")
    figs: dict[str, dict] = {}
    for n in (done + 1, done):  # measured before (a run that built no new day reuses them)
        key = root / f"figures-{n}.json"
        if key.exists() and (n == done + 1 or secs < 1 or budget == 0):
            return n, json.loads(key.read_text())
    figs["catchup"] = measured("catchup", root / "store", root / f"catchup-{done}")
    t0 = time.perf_counter()
    done, _ = build_hub(root, done + 1, float("inf"), args.seed, args.hub_models)
    figs["build_day"] = {"wall": time.perf_counter() - t0}
    figs["analyze"] = measured("analyze", root / "store", root / f"analyze-{done}")
    figs["report"] = measured("report", root / "store", root / f"report-{done}")
    key = root / f"figures-{done}.json"
    key.write_text(json.dumps(figs, default=str))
    return done, figs


def print_figures(
    days: int, models: int, hub: dict[str, dict], dflt: dict[str, dict] | None
) -> None:
    def cell(f: dict | None) -> str:
        if not f:
            return "-"
        return f"{f['wall']:.1f} s, {f['rss_gb']:.2f} GB" + (
            f" (cpu {f['cpu']:.0f} s)" if "cpu" in f else ""
        )

    d = dflt or {}
    rows = [
        ("one snapshot's measures (analyze newest; target < 600 s)", hub.get("analyze"),
         d.get("analyze"), d.get("scratch")),
        ("report over all snapshots (target < 120 s)", hub.get("report"), d.get("report"),
         d.get("scratch")),
        ("catch-up before the newest day (the incremental series only)", hub.get("catchup"), d.get("catchup"), None),
    ]  # fmt: skip
    print(f"\n| figure | hub: {models:,} models x {days} days (stored / incremental) "
          "| default world, stored / incremental | default world, from scratch |")  # fmt: skip
    print("|---|---|---|---|")
    for name, h, s, f in rows:
        print(f"| {name} | {cell(h)} | {cell(s)} | {cell(f)} |")
    if dflt:
        print(f"\nidentical (default world, stored report vs from scratch): "
              f"{dflt['identical']['verdict']}")  # fmt: skip
    for label, figs in (("hub", hub), ("default", d)):
        per = (figs.get("analyze") or {}).get("per_measure") or {}
        if per:
            top = ", ".join(f"{k} {v:.1f}" for k, v in list(per.items())[:8])
            print(f"{label} analyze, slowest measures (s): {top}")
        for job in ("catchup", "analyze"):
            f = figs.get(job) or {}
            if "rows_computed" in f:
                print(f"{label} {job}: per-snapshot rows computed {f['rows_computed']}, "
                      f"read back {f['rows_reused']}")  # fmt: skip
        fails = (figs.get("analyze") or {}).get("failures")
        if fails:
            print(f"{label} analyze failures: {fails}")


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--models", type=int, default=100_000)
    ap.add_argument("--days", type=int, default=30)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--dir", type=Path, default=None)
    ap.add_argument("--rebuild", action="store_true")
    ap.add_argument("--scale", choices=["default", "hub"], default="default")
    ap.add_argument(
        "--build-minutes", type=float, default=45.0, help="hub scale: build budget per run"
    )
    ap.add_argument(
        "--no-default", action="store_true", help="hub scale: skip the default-world figures"
    )
    ap.add_argument("--hub-models", type=int, default=HUB_MODELS, help="hub scale: models")
    ap.add_argument("--child", choices=["analyze", "catchup", "report", "scratch"])
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    if args.child:
        child(args.child, args.dir, args.out)
        return
    if args.scale == "hub":
        if args.days == 30:
            args.days = 365
        base = Path(tempfile.gettempdir())
        dflt = None if args.no_default else default_world(args.seed, base)
        days, hub = hub_world(args, base)
        print_figures(days, args.hub_models, hub, dflt)
        print(f"\nhub world: {days} of {args.days} daily snapshots built")
        return
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
