"""Benchmark of the CLI's start-up: store commands vs importing Polars and deltalake (prints only).

Issue 15 point 6: `hubtide snapshots` should take within 1.5x the time of
`python -c "import polars, deltalake"`, the libraries any store command needs. Each command
runs as its own process, RUNS times, interleaved so load changes hit all of them alike;
printed: median and fastest wall time, the ratio of each median to the baseline's, and the
child's peak RSS (the largest over the runs, from wait4's rusage).

The store is made by the bench in a child process: one `custom:` source with `--snapshots`
complete snapshots of `--entities` rows each (through `storage.importing`, the `hubtide
import` path). The bench itself imports neither Polars nor storage, since a child's peak RSS
counts the parent's pages it was forked from.

    .venv/bin/python bench/startup.py                 # 15 runs each, 10 snapshots of 1,000 rows
    .venv/bin/python bench/startup.py --runs 5        # quick
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

TARGET = 1.5  # `hubtide snapshots` at most this many times the baseline's median


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def make_store(root: Path, snapshots: int, entities: int) -> None:
    """`snapshots` complete snapshots of one custom source; downloads move every day."""
    import polars as pl

    from storage import Store
    from storage.importing import import_listing

    store = Store.open(str(root))
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    listing = root.parent / "listing.parquet"
    for day in range(snapshots):
        pl.DataFrame(
            {
                "id": [f"e{i}" for i in range(entities)],
                "name": [f"entity {i}" for i in range(entities)],
                "downloads": [(i * 7 + day * 13) % 10_000 for i in range(entities)],
            }
        ).write_parquet(listing)
        import_listing(store, "custom:bench", listing, at=t0 + timedelta(days=day), id_column="id")


def run_once(argv: list[str]) -> tuple[float, float]:
    """(wall seconds, peak RSS in MB) of one run of `argv` as a child process."""
    start = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _pid, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    err = proc.stderr.read().decode() if proc.stderr else ""
    if proc.stderr:
        proc.stderr.close()
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} exited {proc.returncode}: {err.strip()}")
    return wall, usage.ru_maxrss / 1024  # ru_maxrss is in KB on Linux


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--runs", type=int, default=15, help="runs of each command")
    ap.add_argument("--snapshots", type=int, default=10, help="snapshots in the bench's store")
    ap.add_argument("--entities", type=int, default=1_000, help="rows in each snapshot")
    ap.add_argument("--dir", type=Path, default=None, help="work folder (default: a temp dir)")
    ap.add_argument("--make-store", type=Path, help=argparse.SUPPRESS)  # the child's job
    args = ap.parse_args()
    if args.make_store:
        make_store(args.make_store, args.snapshots, args.entities)
        return

    work = args.dir or Path(tempfile.mkdtemp(prefix="hubtide-startup-"))
    store = work / "store"
    # the installed entry point, as a user runs it: the script beside this interpreter
    hubtide = str(Path(sys.executable).with_name("hubtide"))
    if not Path(hubtide).exists():
        raise SystemExit(f"{hubtide}: not found; run `make install` first")
    print(f"# hubtide start-up benchmark: {args.runs} runs of each command")
    print(f"load average at start: {load()}")
    sizes = ["--snapshots", str(args.snapshots), "--entities", str(args.entities)]
    subprocess.run(
        [sys.executable, __file__, "--make-store", str(store), *sizes],
        check=True,
    )
    print(f"store: {args.snapshots} snapshots of {args.entities:,} rows in {store}")

    commands = {
        'python -c "import polars, deltalake"': [sys.executable, "-c", "import polars, deltalake"],
        # the floor storage/ sets: its modules import pyarrow (its schemas are Arrow schemas)
        'python -c "import storage"': [sys.executable, "-c", "import storage"],
        "hubtide --version": [hubtide, "--version"],
        "hubtide --help": [hubtide, "--help"],
        "hubtide snapshots": [hubtide, "--store", str(store), "snapshots"],
        "hubtide asof": [hubtide, "--store", str(store), "asof", "custom:bench", "-f", "csv"],
    }
    for argv in commands.values():  # warm the OS file cache; not counted
        run_once(argv)
    walls: dict[str, list[float]] = {name: [] for name in commands}
    rss: dict[str, float] = dict.fromkeys(commands, 0.0)
    for _ in range(args.runs):
        for name, argv in commands.items():
            wall, peak = run_once(argv)
            walls[name].append(wall)
            rss[name] = max(rss[name], peak)

    base = statistics.median(walls[next(iter(commands))])
    print(f"{'command':<38} {'median s':>9} {'fastest s':>9} {'x base':>7} {'peak RSS MB':>12}")
    for name in commands:
        med = statistics.median(walls[name])
        print(
            f"{name:<38} {med:>9.3f} {min(walls[name]):>9.3f} {med / base:>7.2f} {rss[name]:>12.0f}"
        )
    ratio = statistics.median(walls["hubtide snapshots"]) / base
    print(f"hubtide snapshots / import polars, deltalake: {ratio:.2f}x (target <= {TARGET}x)")
    print(f"load average at end: {load()}")
    if args.dir is None:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
