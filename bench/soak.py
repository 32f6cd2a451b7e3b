"""Soak: the daemon against the simulator with an accelerated clock for >= 100 snapshots.

Starts a small simulated world, runs `hubtide daemon` as a child process in lockstep
rounds (every source crawled once, then the simulator advances one day), and prints:

* the daemon's resident memory by snapshot count (read at each round's end, when no crawl
  runs), Arrow's live bytes and the files under the store, and the slope of RSS over the
  second half in MiB per 100 snapshots (flat is ~0);
* data files per table before and after `store.maintain()`,
* errors (failed/partial snapshots, crawl errors from /metrics),
* as-of read time for each source after its first snapshot vs at the end,
* what a crawl in a child process would cost instead (interpreter + imports, RSS).

    python bench/soak.py                 # 100+ snapshots (5 sources x 21 rounds)
    python bench/soak.py --snapshots 10  # a quick run
    python bench/soak.py --snapshots 300 --maintain-every 0 --keep-memory   # as before the fix
    python bench/soak.py --tracemalloc   # also log Python heap growth by line (daemon.log)
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from dataclasses import asdict, dataclass
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from simulator.testing import running_simulator  # noqa: E402
from storage import Store  # noqa: E402

SOURCES = ("hub:model", "hub:dataset", "hub:space", "npm", "pypi")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _get(url: str, timeout: float = 5) -> bytes:
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return bytes(r.read())


def _asof_seconds(store: Store, source: str, reps: int = 3) -> float:
    best = math.inf
    for _ in range(reps):
        t0 = time.perf_counter()
        store.as_of(source).collect()
        best = min(best, time.perf_counter() - t0)
    return best


def _files(store: Store) -> dict[str, int]:
    return {t.table: t.files for t in store.table_stats()}


def _metric(text: str, name: str) -> float | None:
    m = re.search(rf"^{re.escape(name)} (\S+)$", text, re.M)
    return float(m.group(1)) if m else None


def _disk_files(root: Path) -> tuple[int, int]:
    """(Parquet files, Delta log JSON commits) under the store folder, live or not."""
    parquet = logs = 0
    for dirpath, _dirs, names in os.walk(root):
        in_log = dirpath.endswith("_delta_log")
        for n in names:
            if n.endswith(".parquet") and not in_log:
                parquet += 1
            elif in_log and n.endswith(".json"):
                logs += 1
    return parquet, logs


@dataclass(frozen=True)
class RoundSample:
    round: int
    snapshots: int
    seconds: float
    rss_mib: float
    arrow_mib: float
    parquet_files: int
    log_commits: int


def _slope(points: list[tuple[float, float]]) -> float:
    """Least-squares slope of y over x (0 with fewer than two distinct x)."""
    if len(points) < 2:
        return 0.0
    xs = [p[0] for p in points]
    ys = [p[1] for p in points]
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    den = sum((x - mx) ** 2 for x in xs)
    return 0.0 if den == 0 else sum((x - mx) * (y - my) for x, y in points) / den


def _with_logged_memory(
    polled: list[RoundSample], log_path: Path, n_sources: int, store_dir: Path
) -> list[RoundSample]:
    """Per-round memory as the daemon itself logged it at each round's end ("round N done:
    rss X MiB, arrow Y ..."): exact, and it includes the last round, which ends just as the
    daemon exits (the /metrics poll misses it). File counts come from the poll."""
    files = {r.round: (r.seconds, r.parquet_files, r.log_commits) for r in polled}
    out = []
    pat = re.compile(r"round (\d+) done: rss ([\d.]+) MiB, arrow ([\d.]+)")
    for line in log_path.read_text(errors="replace").splitlines():
        m = pat.search(line)
        if not m:
            continue
        n = int(m.group(1))
        seconds, parquet, logs = files.get(n) or (math.nan, *_disk_files(store_dir))
        out.append(
            RoundSample(
                n, n * n_sources, seconds, float(m.group(2)), float(m.group(3)), parquet, logs
            )
        )
    return out or polled


def child_crawl_cost() -> tuple[float, float]:
    """Seconds and MiB RSS for a fresh interpreter to import what one crawl needs."""
    code = (
        "import time,resource; t=time.perf_counter();"
        "import storage, crawler, polars, deltalake, scrapy, aiohttp;"
        "print(time.perf_counter()-t, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)"
    )
    runs = []
    for _ in range(3):
        t0 = time.perf_counter()
        out = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True
        ).stdout.split()
        runs.append((time.perf_counter() - t0, float(out[1]) / 1024))
    return statistics.median(r[0] for r in runs), statistics.median(r[1] for r in runs)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--snapshots", type=int, default=105, help="Total snapshots (>= 100 for the soak)."
    )
    ap.add_argument("--sources", default=",".join(SOURCES), help="Comma-separated sources.")
    ap.add_argument("--models", type=int, default=400, help="Models in the small world.")
    ap.add_argument(
        "--maintain-every",
        type=int,
        default=None,
        help="Passed to the daemon (snapshots between maintenance runs; 0 = never).",
    )
    ap.add_argument(
        "--keep-memory",
        action="store_true",
        help="Daemon does not release freed Arrow/malloc pages after crawls.",
    )
    ap.add_argument("--malloc-arena-max", type=int, default=0, help="Set MALLOC_ARENA_MAX.")
    ap.add_argument(
        "--tracemalloc", action="store_true", help="PYTHONTRACEMALLOC=1; heap diffs in the log."
    )
    ap.add_argument(
        "--skip-child-cost", action="store_true", help="Skip the child-process import figure."
    )
    ap.add_argument("--keep", action="store_true", help="Keep the store folder and the log.")
    args = ap.parse_args()
    sources = [s for s in args.sources.split(",") if s]
    rounds = max(1, math.ceil(args.snapshots / len(sources)))
    work = Path(tempfile.mkdtemp(prefix="hubtide-soak-"))
    store_dir = work / "store"
    port = _free_port()
    api = f"http://127.0.0.1:{port}"
    variant = {
        "maintain_every": args.maintain_every,
        "release_memory": not args.keep_memory,
        "malloc_arena_max": args.malloc_arena_max or None,
        "tracemalloc": args.tracemalloc,
    }
    print(
        f"soak: {len(sources)} sources x {rounds} rounds = {len(sources) * rounds} snapshots; "
        f"{args.models} models; store {store_dir}; {variant}; load {os.getloadavg()[0]:.1f}"
    )
    samples: list[tuple[float, float]] = []
    per_round: list[RoundSample] = []
    first_read: dict[str, float] = {}
    errors_seen: list[str] = []
    with running_simulator(
        seed=11,
        models=args.models,
        datasets=max(10, args.models // 3),
        spaces=max(10, args.models // 4),
        npm=max(10, args.models // 2),
        pypi=max(10, args.models // 2),
    ) as sim:
        env = {
            **os.environ,
            "HUBTIDE_SOURCES": ",".join(sources),
            "HUBTIDE_DAEMON_ANALYTICS_AFTER_SNAPSHOT": "false",
            "HUBTIDE_CRAWLER_DETAILS": "true",
            # the simulator has no request quota: without this the crawler paces itself to
            # the Hub's 1000 requests / 300 s and a fast soak idles for minutes
            "HUBTIDE_CRAWLER_HUB_REQUESTS_PER_WINDOW": "1000000",
        }
        if args.malloc_arena_max:
            env["MALLOC_ARENA_MAX"] = str(args.malloc_arena_max)
        if args.tracemalloc:
            env["PYTHONTRACEMALLOC"] = "1"
        cmd = [
            sys.executable, "-m", "hubtide", "--store", str(store_dir), "daemon",
            "--endpoint", sim, "--interval", "1", "--listen", f"127.0.0.1:{port}",
            "--sim-advance-days", "1", "--max-rounds", str(rounds),
        ]  # fmt: skip
        if args.maintain_every is not None:
            cmd += ["--maintain-every", str(args.maintain_every)]
        if args.keep_memory:
            cmd.append("--keep-memory")
        log = (work / "daemon.log").open("wb")
        t_start = time.monotonic()
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        ps = psutil.Process(proc.pid)
        stop_sampling = threading.Event()

        def sample() -> None:
            while not stop_sampling.is_set() and proc.poll() is None:
                try:
                    samples.append((time.monotonic() - t_start, ps.memory_info().rss / 2**20))
                except psutil.Error:
                    return
                stop_sampling.wait(1.0)

        threading.Thread(target=sample, daemon=True).start()
        reader = Store.open(str(store_dir))
        last_metrics = b""
        seen_rounds = 0
        try:
            while proc.poll() is None:
                time.sleep(0.25)
                with contextlib.suppress(OSError):
                    last_metrics = _get(f"{api}/metrics", timeout=2)
                text = last_metrics.decode(errors="replace")
                done = int(_metric(text, "hubtide_rounds_total") or 0)
                if done > seen_rounds:
                    # the round just ended; the next one is only starting: the quiet point
                    seen_rounds = done
                    parquet, logs = _disk_files(store_dir)
                    per_round.append(
                        RoundSample(
                            done,
                            done * len(sources),
                            time.monotonic() - t_start,
                            (_metric(text, "process_resident_memory_bytes") or 0) / 2**20,
                            (_metric(text, "hubtide_arrow_allocated_bytes") or 0) / 2**20,
                            parquet,
                            logs,
                        )
                    )
                for source in sources:
                    if source in first_read:
                        continue
                    try:
                        if reader.snapshots(source).height >= 1:
                            first_read[source] = _asof_seconds(reader, source)
                    except Exception:  # not in the store yet
                        pass
        except KeyboardInterrupt:
            proc.send_signal(signal.SIGTERM)
            proc.wait(20)
        stop_sampling.set()
        took = time.monotonic() - t_start
        log.close()
    code = proc.returncode
    per_round = _with_logged_memory(per_round, work / "daemon.log", len(sources), store_dir)
    store = Store.open(str(store_dir))
    snaps = store.snapshots(all_statuses=True)
    complete = snaps.filter(snaps["status"] == "complete").height
    bad = snaps.filter(snaps["status"] != "complete")
    for row in bad.iter_rows(named=True):
        errors_seen.append(
            f"{row['source']} #{row['snapshot_id']} {row['status']}: {row['message']}"
        )
    text = last_metrics.decode(errors="replace")
    crawl_errors = sum(
        float(m.group(1))
        for m in re.finditer(
            r'hubtide_crawls_total\{outcome="(?:error|failed)",[^}]*\} (\S+)', text
        )
    )
    maint_runs = sum(
        float(m.group(1))
        for m in re.finditer(
            r'hubtide_scheduler_jobs_total\{job="maintenance",outcome="success"\} (\S+)', text
        )
    )
    files_before = _files(store)
    disk_before = _disk_files(store_dir)
    t0 = time.perf_counter()
    store.maintain(retention_hours=0)
    maint_s = time.perf_counter() - t0
    files_after = _files(store)
    disk_after = _disk_files(store_dir)
    end_read = {s: _asof_seconds(store, s) for s in sources}

    print(f"\ndaemon exit code {code}; wall time {took:.1f} s; complete snapshots {complete}")
    print(f"maintenance runs inside the daemon: {maint_runs:.0f}")
    print("\nat the end of a round (no crawl running):")
    print("  snapshots   t (s)   RSS MiB   Arrow MiB   parquet files   log commits")
    marks = {10, 50} | set(range(100, 100_000, 50))
    shown = [
        r
        for i, r in enumerate(per_round)
        if i == 0 or i == len(per_round) - 1 or r.snapshots in marks
    ]
    for r in shown:
        print(
            f"  {r.snapshots:9d} {'end' if math.isnan(r.seconds) else f'{r.seconds:.1f}':>7} {r.rss_mib:9.1f} {r.arrow_mib:11.1f} "
            f"{r.parquet_files:15d} {r.log_commits:13d}"
        )
    half = [r for r in per_round if r.snapshots > (per_round[-1].snapshots if per_round else 0) / 2]
    first = [r for r in per_round if r not in half and r.round > 1]
    slope2 = 100 * _slope([(r.snapshots, r.rss_mib) for r in half])
    slope1 = 100 * _slope([(r.snapshots, r.rss_mib) for r in first])
    print(
        f"  RSS slope: first half (after round 1) {slope1:+.1f}, second half {slope2:+.1f} "
        f"MiB per 100 snapshots"
    )
    if samples:
        print(f"  max RSS (1 s samples, during crawls too) {max(r for _, r in samples):.1f} MiB")
    print(f"\ndata files per table, before -> after maintenance ({maint_s:.1f} s):")
    for table in sorted(files_before):
        print(f"  {table:24s} {files_before[table]:6d} -> {files_after.get(table, 0):6d}")
    print(f"  {'total':24s} {sum(files_before.values()):6d} -> {sum(files_after.values()):6d}")
    print(
        f"  on disk: parquet {disk_before[0]} -> {disk_after[0]}, "
        f"log commits {disk_before[1]} -> {disk_after[1]}"
    )
    print(
        f"\nerrors: {len(errors_seen)} non-complete snapshots, {crawl_errors:.0f} failed crawls in /metrics"
    )
    for e in errors_seen[:10]:
        print(f"  {e}")
    print("\nas-of read of the newest snapshot (best of 3, ms): after first snapshot -> at the end")
    for s in sources:
        a = first_read.get(s)
        print(f"  {s:12s} {'-' if a is None else f'{a * 1000:8.1f}'} -> {end_read[s] * 1000:8.1f}")
    if args.tracemalloc:
        lines = (work / "daemon.log").read_text(errors="replace").splitlines()
        traced = [ln for ln in lines if "tracemalloc" in ln]
        print("\nPython heap (tracemalloc), last report:")
        last = max((i for i, ln in enumerate(traced) if "since baseline" in ln), default=-1)
        for ln in traced[last : last + 9] if last >= 0 else []:
            print("  " + ln.split("tracemalloc", 1)[1].strip())
    if not args.skip_child_cost:
        secs, mib = child_crawl_cost()
        print(
            f"\nchild-process crawl overhead: {secs:.2f} s and {mib:.0f} MiB RSS per crawl just to import"
        )
    summary = {
        "variant": variant,
        "rounds": rounds,
        "complete": complete,
        "exit": code,
        "errors": len(errors_seen) + int(crawl_errors),
        "rss_slope_second_half_mib_per_100": round(slope2, 1),
        "rss_by_snapshots": {r.snapshots: round(r.rss_mib, 1) for r in shown},
        "load": round(os.getloadavg()[0], 1),
    }
    print(json.dumps(summary))
    if per_round and args.keep:
        (work / "rounds.json").write_text(json.dumps([asdict(r) for r in per_round]))
    if args.keep:
        print(f"kept {work}")
    else:
        shutil.rmtree(work, ignore_errors=True)
    return 0 if code == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
