"""Soak: the daemon against the simulator with an accelerated clock for >= 100 snapshots.

Starts a small simulated world, runs `hubtide daemon` as a child process in lockstep
rounds (every source crawled once, then the simulator advances one day), and prints:

* the daemon's resident memory over time (sampled every second; flat is good),
* data files per table before and after `store.maintain()`,
* errors (failed/partial snapshots, crawl errors from /metrics),
* as-of read time for each source after its first snapshot vs at the end,
* what a crawl in a child process would cost instead (interpreter + imports, RSS).

    python bench/soak.py                 # 100+ snapshots (5 sources x 21 rounds)
    python bench/soak.py --snapshots 10  # a quick run
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
    ap.add_argument("--keep", action="store_true", help="Keep the store folder.")
    args = ap.parse_args()
    sources = [s for s in args.sources.split(",") if s]
    rounds = max(1, math.ceil(args.snapshots / len(sources)))
    work = Path(tempfile.mkdtemp(prefix="hubtide-soak-"))
    store_dir = work / "store"
    port = _free_port()
    api = f"http://127.0.0.1:{port}"
    print(
        f"soak: {len(sources)} sources x {rounds} rounds = {len(sources) * rounds} snapshots; store {store_dir}"
    )
    samples: list[tuple[float, float]] = []
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
        }
        cmd = [
            sys.executable, "-m", "hubtide", "--store", str(store_dir), "daemon",
            "--endpoint", sim, "--interval", "1", "--listen", f"127.0.0.1:{port}",
            "--sim-advance-days", "1", "--max-rounds", str(rounds),
        ]  # fmt: skip
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
        try:
            while proc.poll() is None:
                time.sleep(1.0)
                for source in sources:
                    if source in first_read:
                        continue
                    try:
                        if reader.snapshots(source).height >= 1:
                            first_read[source] = _asof_seconds(reader, source)
                    except Exception:  # not in the store yet
                        pass
                with contextlib.suppress(OSError):
                    last_metrics = _get(f"{api}/metrics", timeout=2)
        except KeyboardInterrupt:
            proc.send_signal(signal.SIGTERM)
            proc.wait(20)
        stop_sampling.set()
        took = time.monotonic() - t_start
        log.close()
    code = proc.returncode
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
    files_before = _files(store)
    t0 = time.perf_counter()
    store.maintain(retention_hours=0)
    maint_s = time.perf_counter() - t0
    files_after = _files(store)
    end_read = {s: _asof_seconds(store, s) for s in sources}

    print(f"\ndaemon exit code {code}; wall time {took:.1f} s; complete snapshots {complete}")
    print("\nresident memory of the daemon (MiB) over time:")
    if samples:
        step = max(1, len(samples) // 12)
        for t, rss in samples[::step]:
            print(f"  t={t:7.1f}s  rss={rss:7.1f}")
        rss = [r for _, r in samples]
        n = len(rss)
        q1 = statistics.median(rss[n // 10 : n // 4 + 1]) if n > 8 else rss[0]
        q4 = statistics.median(rss[-n // 4 :]) if n > 8 else rss[-1]
        print(f"  max {max(rss):.1f}; median of the 2nd decile-quarter {q1:.1f} vs last quarter {q4:.1f} "
              f"(drift {q4 - q1:+.1f} MiB over {rounds} rounds)")  # fmt: skip
    print(f"\ndata files per table, before -> after maintenance ({maint_s:.1f} s):")
    for table in sorted(files_before):
        print(f"  {table:24s} {files_before[table]:6d} -> {files_after.get(table, 0):6d}")
    print(f"  {'total':24s} {sum(files_before.values()):6d} -> {sum(files_after.values()):6d}")
    print(
        f"\nerrors: {len(errors_seen)} non-complete snapshots, {crawl_errors:.0f} failed crawls in /metrics"
    )
    for e in errors_seen[:10]:
        print(f"  {e}")
    print("\nas-of read of the newest snapshot (best of 3, ms): after first snapshot -> at the end")
    for s in sources:
        a = first_read.get(s)
        print(f"  {s:12s} {'-' if a is None else f'{a * 1000:8.1f}'} -> {end_read[s] * 1000:8.1f}")
    secs, mib = child_crawl_cost()
    print(
        f"\nchild-process crawl overhead: {secs:.2f} s and {mib:.0f} MiB RSS per crawl just to import"
    )
    print(json.dumps({"rounds": rounds, "complete": complete, "exit": code}))
    if args.keep:
        print(f"kept {work}")
    else:
        shutil.rmtree(work, ignore_errors=True)
    return 0 if code == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
