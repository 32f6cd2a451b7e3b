"""Benchmark of the snapshot store on a seeded Hub-shaped world (prints figures only).

World: N entities (default 100k) over D daily snapshots (default 30). Every day the 30-day
`downloads` (and `downloads_all_time`) change for every entity that has any (about a
third), about 1 % of entities change attributes (sha, last_modified, likes, tags), 0.5 %
are created and 0.1 % deleted.

Prints: store bytes vs D full daily zstd Parquet dumps; ingest rows/s; as-of read of one
snapshot at `--scale` entities vs scanning one plain Parquet file of that state; the same
after maintenance.

    .venv/bin/python bench/store.py                 # 100k x 30, as-of at 1M (a few minutes)
    .venv/bin/python bench/store.py --entities 20000 --days 10 --scale 200000   # quick
    .venv/bin/python bench/store.py --memory 2000000    # peak RSS of a 2M-row listing only

`--memory N` runs a child process that writes an N-row Hub-shaped listing in 5,000-row
batches (the crawler's `batch_rows`), generated batch by batch so the bench itself never
holds the listing, and finishes it: day 0 (a keyframe), then day 1 (~3 % of entities
change attributes, downloads move for a third, 0.1 % deleted, 0.5 % created). It prints
the RSS baseline (interpreter, Polars, deltalake, a warmed-up store), the peak of each
day, and what stays after (the kept narrow state for the next diff).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import storage.maintenance as maintenance
from storage import Store
from storage.schemas import HUB_REPO

T0 = datetime(2026, 1, 1, tzinfo=UTC)
LIBS = ["transformers", "diffusers", "timm", "peft", "sentence-transformers", None]
PIPES = ["text-generation", "text-classification", "image-classification", "fill-mask", None]
TAGS = [f"tag{i}" for i in range(200)]


class World:
    """A seeded Hub-like listing that moves one day at a time."""

    def __init__(self, n: int, seed: int) -> None:
        self.rng = np.random.default_rng(seed)
        self.next_id = 0
        self.day = 0
        self.df = self._new(n)

    def _new(self, n: int) -> pl.DataFrame:
        rng = self.rng
        ids = np.arange(self.next_id, self.next_id + n)
        self.next_id += n
        has_dl = rng.random(n) < 1 / 3
        dl = np.where(has_dl, rng.zipf(1.6, n).clip(1, 10**8), 0)
        created = [T0 - timedelta(days=int(d)) for d in rng.integers(0, 900, n)]
        ntags = rng.integers(1, 6, n)
        tags = [[TAGS[j] for j in rng.integers(0, len(TAGS), k)] for k in ntags]
        authors = rng.integers(0, max(n // 20, 1), n)
        df = pl.DataFrame(
            {
                "entity_id": [f"{i:024x}" for i in ids],
                "name": [f"user{a}/model-{i}" for a, i in zip(authors, ids, strict=True)],
                "author": [f"user{a}" for a in authors],
                "created_at": created,
                "last_modified": created,
                "sha": [f"{x:040x}" for x in rng.integers(0, 2**62, n)],
                "private": np.zeros(n, dtype=bool),
                "gated": rng.choice(["false", "auto", "manual"], n, p=[0.9, 0.07, 0.03]),
                "disabled": np.zeros(n, dtype=bool),
                "library_name": [LIBS[i] for i in rng.integers(0, len(LIBS), n)],
                "pipeline_tag": [PIPES[i] for i in rng.integers(0, len(PIPES), n)],
                "tags": tags,
                "license": rng.choice(["mit", "apache-2.0", "other", "cc-by-4.0"], n),
                "card_fields": [["license", "tags"]] * n,
                "downloads": dl.astype(np.int64),
                "downloads_all_time": (dl * rng.integers(1, 20, n)).astype(np.int64),
                "likes": rng.zipf(2.0, n).clip(0, 10**6).astype(np.int64) - 1,
                "trending_score": np.zeros(n),
            }
        )
        return conform(df)

    def step(self) -> pl.DataFrame:
        rng = self.rng
        df = self.df
        n = df.height
        self.day += 1
        # deletions (0.1 %) and creations (0.5 %)
        df = df.filter(pl.Series(rng.random(n) >= 0.001))
        n = df.height
        # counters: every entity with downloads moves, every day
        moving = (df["downloads"] > 0).to_numpy()
        factor = rng.normal(1.0, 0.1, n).clip(0.5, 1.5)
        new_dl = np.where(moving, (df["downloads"].to_numpy() * factor).astype(np.int64) + 1, 0)
        df = df.with_columns(
            downloads=pl.Series(new_dl),
            downloads_all_time=df["downloads_all_time"] + pl.Series(new_dl // 30),
        )
        # attributes: ~1 % per day
        ch = pl.Series(rng.random(n) < 0.01)
        now = T0 + timedelta(days=self.day)
        df = df.with_columns(
            sha=pl.when(ch).then(pl.col("sha").str.reverse()).otherwise(pl.col("sha")),
            last_modified=pl.when(ch).then(pl.lit(now)).otherwise(pl.col("last_modified")),
            likes=pl.when(ch).then(pl.col("likes") + 1).otherwise(pl.col("likes")),
        )
        born = self._new(max(int(n * 0.005), 1))
        self.df = pl.concat([df, born])
        return self.df


def conform(df: pl.DataFrame) -> pl.DataFrame:
    empty = pl.from_arrow(HUB_REPO.empty_table())
    assert isinstance(empty, pl.DataFrame)
    cols = []
    for name, dtype in empty.schema.items():
        cols.append(df[name].cast(dtype) if name in df.columns else pl.lit(None, dtype).alias(name))
    return df.select(cols)


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def print_tables(store: Store, label: str) -> None:
    print(f"tables ({label}):")
    for s in store.table_stats():
        if s.rows or s.disk_bytes > s.bytes + 100_000:
            print(
                f"  {s.table:26s} rows {s.rows:>10,}  files {s.files:>4}  {s.bytes / 1e6:8.2f} MB"
                f" live  {s.disk_bytes / 1e6:8.2f} MB on disk"
            )


def dir_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


PAGE_ROWS = 1_000  # a Hub listing page (`limit=1000`)
PAGE_SECONDS = 1.5  # one page answered after another, in creation order


def page_times(day: int, start: int, n: int) -> pl.Series:
    """`observed_at` of listing rows start..start+n of day `day`, as a crawl sets it: each
    row carries the answer time of its listing page (PAGE_ROWS rows a page)."""
    page = pl.int_range(start, start + n, eager=True) // PAGE_ROWS
    t0 = T0 + timedelta(days=day)
    return (
        pl.select(pl.lit(t0) + pl.duration(milliseconds=page * int(PAGE_SECONDS * 1000)))
        .to_series()
        .cast(pl.Datetime("us", "UTC"))
        .alias("observed_at")
    )


def ingest(
    store: Store, world: World, days: int, batch: int, *, observed: bool = True
) -> tuple[int, float, float]:
    """Rows ingested, wall seconds and process CPU seconds (all threads) of the store calls.
    `observed`: every row carries its page's answer time (`observed_at`, see page_times).

    CPU seconds are reported too because this 2-core machine is shared: wall time moves
    2x with the load, CPU time much less (rows per CPU second x the cores the process
    keeps busy, ~1.3 here, is what an idle machine gives)."""
    rows = 0
    seconds = 0.0
    cpu = 0.0
    for d in range(days):
        listing = world.df if d == 0 else world.step()
        t = time.perf_counter()
        c = time.process_time()
        w = store.begin_snapshot("hub:model", as_of=T0 + timedelta(days=d))
        for seq, start in enumerate(range(0, listing.height, batch)):
            part = listing.slice(start, batch)
            if observed:
                part = part.with_columns(observed_at=page_times(d, start, part.height))
            w.write_batch(seq, part, checkpoint=f"page{seq}")
        w.finish("complete")
        seconds += time.perf_counter() - t
        cpu += time.process_time() - c
        rows += listing.height
    return rows, seconds, cpu


def paired(a: object, b: object, n: int = 5) -> tuple[float, float]:
    """Best of `n` of each, run alternately, so both see the same load (this machine is
    shared: one run's absolute times move 2-4x with the load, a ratio much less)."""
    ta, tb = [], []
    for _ in range(n):
        ta.append(best_of(a, 1))
        tb.append(best_of(b, 1))
    return min(ta), min(tb)


def best_of(fn: object, n: int = 3) -> float:
    times = []
    for _ in range(n):
        t = time.perf_counter()
        fn()  # type: ignore[operator]
        times.append(time.perf_counter() - t)
    return min(times)


MEM_BATCH = 5_000  # the crawler's batch_rows


def mem_batch(day: int, i: int, n: int, seed: int) -> pl.DataFrame:
    """Batch `i` of day `day` of an n-entity listing, built from (seed, i) alone: the same
    entities every day (minus 0.1 % deleted), ~3 % with changed attributes on day 1,
    downloads moving for a third; the 0.5 % created come as extra batches at the end."""
    base = i * MEM_BATCH
    born = base >= n  # a batch of entities created on day >= 1
    if born and day == 0:
        return pl.DataFrame()
    rows = MEM_BATCH
    rng = np.random.default_rng([seed, i])
    ids = np.arange(base, base + rows)
    has_dl = rng.random(rows) < 1 / 3
    dl = np.where(has_dl, rng.zipf(1.6, rows).clip(1, 10**8), 0).astype(np.int64)
    created = [T0 - timedelta(days=int(d)) for d in rng.integers(0, 900, rows)]
    tags = [[TAGS[j] for j in rng.integers(0, len(TAGS), k)] for k in rng.integers(1, 6, rows)]
    authors = rng.integers(0, max(n // 20, 1), rows)
    sha = [f"{x:040x}" for x in rng.integers(0, 2**62, rows)]
    likes = rng.zipf(2.0, rows).clip(0, 10**6).astype(np.int64) - 1
    modified = list(created)
    keep = np.ones(rows, dtype=bool)
    if day >= 1 and not born:
        r2 = np.random.default_rng([seed, i, day])
        changed = r2.random(rows) < 0.03
        keep = r2.random(rows) >= 0.001
        dl = np.where(
            dl > 0, (dl * r2.normal(1.0, 0.1, rows).clip(0.5, 1.5)).astype(np.int64) + 1, 0
        )
        now = T0 + timedelta(days=day)
        for j in np.flatnonzero(changed):
            sha[j] = sha[j][::-1]
            modified[j] = now
            likes[j] += 1
    df = pl.DataFrame(
        {
            "entity_id": [f"{x:024x}" for x in ids],
            "name": [f"user{a}/model-{x}" for a, x in zip(authors, ids, strict=True)],
            "author": [f"user{a}" for a in authors],
            "created_at": created,
            "last_modified": modified,
            "sha": sha,
            "private": np.zeros(rows, dtype=bool),
            "gated": rng.choice(["false", "auto", "manual"], rows, p=[0.9, 0.07, 0.03]),
            "disabled": np.zeros(rows, dtype=bool),
            "library_name": [LIBS[j] for j in rng.integers(0, len(LIBS), rows)],
            "pipeline_tag": [PIPES[j] for j in rng.integers(0, len(PIPES), rows)],
            "tags": tags,
            "license": rng.choice(["mit", "apache-2.0", "other", "cc-by-4.0"], rows),
            "card_fields": [["license", "tags"]] * rows,
            "downloads": dl,
            "downloads_all_time": dl * 12,
            "likes": likes,
            "trending_score": np.zeros(rows),
        }
    )
    return conform(df.filter(pl.Series(keep)))


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def memory_child(n: int, out: str, seed: int) -> None:
    """Runs in a child process: write and finish day 0 and day 1 of an n-row listing,
    sampling RSS every 50 ms; figures as JSON."""
    samples: list[tuple[float, float]] = []
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            samples.append((time.monotonic(), rss_mb()))
            stop.wait(0.05)

    def peak(t0: float, t1: float) -> float:
        return max((m for t, m in samples if t0 <= t <= t1), default=0.0)

    result: dict[str, float] = {}
    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    with tempfile.TemporaryDirectory() as tmp:
        # the baseline: interpreter, numpy, Polars, deltalake, a store that has written
        # and finished two small snapshots (thread pools and caches warmed up)
        warm = Store.open(tmp + "/warm")
        for day in range(2):
            w = warm.begin_snapshot("hub:model", as_of=T0 + timedelta(days=day))
            for i in range(4):
                w.write_batch(i, mem_batch(day, i, 4 * MEM_BATCH, seed))
            w.finish("complete")
        del warm, w
        time.sleep(0.3)
        result["base_mb"] = rss_mb()
        store = Store.open(tmp + "/store")
        extra = max(int(n * 0.005) // MEM_BATCH, 1)
        for day in range(2):
            nb = -(-n // MEM_BATCH) + (extra if day else 0)
            t0 = time.monotonic()
            w = store.begin_snapshot("hub:model", as_of=T0 + timedelta(days=day))
            rows = 0
            for i in range(nb):
                b = mem_batch(day, i, n, seed)
                rows += b.height
                w.write_batch(i, b)
            t1 = time.monotonic()
            info = w.finish("complete")
            t2 = time.monotonic()
            del w, b
            time.sleep(0.2)
            result[f"day{day}_rows"] = rows
            result[f"day{day}_upserts"] = info.upserts
            result[f"day{day}_write_s"] = t1 - t0
            result[f"day{day}_finish_s"] = t2 - t1
            result[f"day{day}_write_peak_mb"] = peak(t0, t1)
            result[f"day{day}_finish_peak_mb"] = peak(t1, t2)
            result[f"day{day}_after_mb"] = rss_mb()
        result["max_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    stop.set()
    with open(out, "w") as f:
        json.dump(result, f)


def memory(n: int, seed: int) -> None:
    print(f"# peak RSS: a {n:,}-row Hub listing in {MEM_BATCH:,}-row batches (child process)")
    print(f"load average at start: {load()}")
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "mem.json")
        cmd = [sys.executable, __file__, "--memory-child", str(n), out, "--seed", str(seed)]
        subprocess.run(cmd, check=True)
        with open(out) as f:
            r = json.load(f)
    base = r["base_mb"]
    print(f"baseline RSS (interpreter, Polars, deltalake, a warmed-up store): {base:,.0f} MB")
    for day in range(2):
        print(
            f"day {day}: {r[f'day{day}_rows']:,} rows, {r[f'day{day}_upserts']:,} changed; "
            f"writing batches {r[f'day{day}_write_s']:.1f} s, peak {r[f'day{day}_write_peak_mb']:,.0f} MB "
            f"(+{r[f'day{day}_write_peak_mb'] - base:,.0f}); finish {r[f'day{day}_finish_s']:.1f} s, "
            f"peak {r[f'day{day}_finish_peak_mb']:,.0f} MB (+{r[f'day{day}_finish_peak_mb'] - base:,.0f}); "
            f"after {r[f'day{day}_after_mb']:,.0f} MB (+{r[f'day{day}_after_mb'] - base:,.0f})"
        )
    print(
        f"max RSS of the child (getrusage): {r['max_rss_mb']:,.0f} MB (+{r['max_rss_mb'] - base:,.0f})"
    )
    print(f"load average at end: {load()}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--entities", type=int, default=100_000)
    ap.add_argument("--days", type=int, default=30)
    ap.add_argument(
        "--scale", type=int, default=1_000_000, help="entities for the as-of read (0: skip)"
    )
    ap.add_argument("--scale-days", type=int, default=7, help="snapshots in the as-of store")
    ap.add_argument("--batch", type=int, default=25_000, help="rows per write_batch")
    ap.add_argument("--keyframe-every", type=int, default=7)
    ap.add_argument(
        "--no-observed",
        action="store_true",
        help="rows carry no observation time (observed_at; by default each its page's)",
    )
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument(
        "--asof-only", action="store_true", help="only the as-of read at --scale (part 2)"
    )
    ap.add_argument(
        "--big-from",
        type=Path,
        default=None,
        help="reuse the --scale store an earlier --dir DIR run left (DIR/big-unmaintained)",
    )
    ap.add_argument("--dir", type=Path, default=None, help="work folder (default: a temp dir)")
    ap.add_argument(
        "--memory", type=int, default=0, help="only the peak-RSS figure of an N-row listing"
    )
    ap.add_argument("--memory-child", nargs=2, metavar=("N", "OUT"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.memory_child:
        memory_child(int(args.memory_child[0]), args.memory_child[1], args.seed)
        return
    if args.memory:
        memory(args.memory, args.seed)
        return
    work = args.dir or Path(tempfile.mkdtemp(prefix="hubtide-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    if not args.asof_only:
        bytes_and_ingest(args, work)
    if args.scale > 0:
        asof_at_scale(args, work)
    elif args.asof_only:
        print("--asof-only with --scale 0: nothing to do")
    if args.dir is None:
        shutil.rmtree(work, ignore_errors=True)  # --scale 0 left ~400 MB behind


def bytes_and_ingest(args: argparse.Namespace, work: Path) -> None:
    """Part 1: store bytes vs daily dumps, ingest speed, as-of and top-k at --entities."""
    print(f"# hubtide store benchmark: {args.entities:,} entities x {args.days} daily snapshots")
    print(f"load average at start: {load()}")
    print(f"work dir: {work}")
    world = World(args.entities, args.seed)
    dumps = work / "dumps"
    dumps.mkdir(exist_ok=True)
    dump_world = World(args.entities, args.seed)
    dump_bytes = 0
    for d in range(args.days):
        listing = dump_world.df if d == 0 else dump_world.step()
        f = dumps / f"day{d:02d}.parquet"
        listing.write_parquet(f, compression="zstd")
        dump_bytes += f.stat().st_size
    store = Store.open(str(work / "store"), keyframe_every=args.keyframe_every)
    rows, secs, cpu = ingest(store, world, args.days, args.batch, observed=not args.no_observed)
    stats = store.table_stats()
    live = sum(s.bytes for s in stats)
    # what `hubtide status` and /metrics report (every file under the tables' folders)
    disk = sum(s.disk_bytes for s in stats)
    print(f"daily zstd Parquet dumps: {dump_bytes / 1e6:,.1f} MB")
    print(f"store, current version:   {live / 1e6:,.1f} MB  ({live / dump_bytes:.3f} of dumps)")
    print(
        f"store, on disk:           {disk / 1e6:,.1f} MB  ({disk / dump_bytes:.3f} of dumps,"
        f" {disk / live:.2f}x live; du of the folder {dir_bytes(work / 'store') / 1e6:,.1f} MB)"
    )
    print(f"ingest: {rows:,} listing rows in {secs:.1f} s = {rows / secs:,.0f} rows/s")
    print(
        f"ingest CPU: {cpu:.1f} s = {rows / cpu:,.0f} rows per CPU second ({cpu / secs:.2f} cores busy)"
    )
    print_tables(store, "current version")
    maintenance.MIN_RETENTION_HOURS = 0  # nothing else writes this bench store
    store.maintain(retention_hours=0)
    stats2 = store.table_stats()
    live2 = sum(s.bytes for s in stats2)
    disk2 = sum(s.disk_bytes for s in stats2)
    print(
        f"store after maintain: {live2 / 1e6:,.1f} MB live, {disk2 / 1e6:,.1f} MB on disk"
        f" ({disk2 / dump_bytes:.3f} of dumps, {disk2 / live2:.2f}x live)"
    )
    print_tables(store, "after maintain")
    snaps = store.snapshots("hub:model")
    kf = snaps.filter(pl.col("keyframe"))["snapshot_id"].to_list()
    ckf = snaps.filter(pl.col("counters_keyframe"))["snapshot_id"].to_list()
    print(f"keyframes: attributes {kf}; counters {ckf}")

    sid = store.resolve_snapshot("hub:model")
    one = best_of(lambda: store.as_of("hub:model", sid).collect())
    print(f"store as-of read at {args.entities:,} entities: {one:.3f} s")
    top = best_of(lambda: store.top_k("hub:model", sid, "downloads", 100).collect())
    print(f"top_k(downloads, 100) at {args.entities:,} entities: {top:.3f} s")


def asof_at_scale(args: argparse.Namespace, work: Path) -> None:
    """Part 2: the as-of read of the newest snapshot at --scale entities vs a plain
    Parquet scan of that state, before and after `maintain`. `--big-from DIR` copies a
    store an earlier `--dir DIR` run left in DIR/big-unmaintained instead of ingesting
    one again (the quick loop: ~1 min of ingest saved per run)."""
    maintenance.MIN_RETENTION_HOURS = 0  # nothing else writes this bench store
    print(f"\n# as-of read: {args.scale:,} entities x {args.scale_days} snapshots")
    print(f"load average at start: {load()}")
    if args.big_from is not None:
        shutil.rmtree(work / "big", ignore_errors=True)
        shutil.copytree(args.big_from / "big-unmaintained", work / "big")
        big = Store.open(str(work / "big"), keyframe_every=args.keyframe_every)
        print(f"store copied from {args.big_from / 'big-unmaintained'}")
        expected = None
    else:
        big = Store.open(str(work / "big"), keyframe_every=args.keyframe_every)
        bworld = World(args.scale, args.seed + 1)
        rows, secs, cpu = ingest(
            big, bworld, args.scale_days, args.batch * 4, observed=not args.no_observed
        )
        print(
            f"ingest: {rows:,} rows in {secs:.1f} s = {rows / secs:,.0f} rows/s; "
            f"{rows / cpu:,.0f} rows per CPU second"
        )
        if args.dir is not None:
            shutil.copytree(work / "big", work / "big-unmaintained", dirs_exist_ok=True)
        expected = bworld.df.height
    sid = big.resolve_snapshot("hub:model")  # the newest: the most change rows to scan
    plain = work / "plain.parquet"
    truth = big.as_of("hub:model", sid).collect()
    assert expected is None or truth.height == expected
    truth.write_parquet(plain, compression="zstd")
    t_plain, t_store = paired(
        lambda: pl.scan_parquet(plain).collect(), lambda: big.as_of("hub:model", sid).collect()
    )
    print(
        f"snapshot {sid}: plain Parquet scan {t_plain:.3f} s, store as-of {t_store:.3f} s, "
        f"ratio {t_store / t_plain:.2f}x"
    )
    top = best_of(lambda: big.top_k("hub:model", sid, "downloads", 100).collect())
    print(f"top_k(downloads, 100) at {args.scale:,} entities: {top:.3f} s")
    big.maintain(retention_hours=0)
    t_plain2, t_store2 = paired(
        lambda: pl.scan_parquet(plain).collect(), lambda: big.as_of("hub:model", sid).collect()
    )
    print(
        f"after maintain: plain {t_plain2:.3f} s, store as-of {t_store2:.3f} s, "
        f"ratio {t_store2 / t_plain2:.2f}x"
    )
    print(f"load average at end: {load()}")


if __name__ == "__main__":
    main()
