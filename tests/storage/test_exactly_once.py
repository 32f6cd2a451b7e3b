"""Exactly once: replays, racing writers, and writers SIGKILLed at random instants."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import polars as pl
import pytest

from storage import Store
from tests.storage.listings import listing

WRITER = str(Path(__file__).with_name("writer_proc.py"))


def expected(k: int, rows: int) -> pl.DataFrame:
    df = pl.DataFrame(listing(k, rows), schema_overrides={"tags": pl.List(pl.String)})
    return df.sort("entity_id")


def check_all(store: Store, snaps: int, rows: int) -> None:
    ids = store.snapshots("hub:model")["snapshot_id"].to_list()
    assert len(ids) == snaps, ids
    for k, sid in enumerate(ids, start=1):
        got = store.as_of("hub:model", sid, columns=["name", "downloads", "tags"]).collect()
        assert got["entity_id"].is_unique().all()
        want = expected(k, rows)
        assert got.sort("entity_id").equals(want.select(got.columns)), f"snapshot {sid}"
    staged = pl.scan_delta(store._core.tables.must("staging/batches")).collect()
    seqs = staged.group_by("snapshot_id", "seq").len()
    assert (seqs["len"] == 1).all() if seqs.height else True


@pytest.mark.parametrize("flush_each", [True, False], ids=["flush-each", "flush-at-finish"])
def test_threads_racing_the_same_batches(tmp_path: Path, flush_each: bool) -> None:
    """Three writers of one snapshot stage the same six batches: each batch is staged by
    exactly one of them, batch by batch (a flush after each) or all at once at finish."""
    root = str(tmp_path / "s")
    store = Store.open(root)
    w0 = store.begin_snapshot("hub:model")
    data = listing(1, 60)
    results: list[list[bool]] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            w = Store.open(root).resume_snapshot("hub:model")
            assert w is not None
            staged: list[int] = []
            for seq in range(6):
                assert w.write_batch(seq, data[seq * 10 : seq * 10 + 10])
                if flush_each:
                    staged += w.flush()
            staged += w.flush()
            w.finish("complete")
            results.append([seq in staged for seq in range(6)])
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    # every batch committed exactly once across the racers
    assert [sum(col) for col in zip(*results, strict=True)] == [1] * 6
    fresh = Store.open(root)
    check_all(fresh, 1, 60)
    assert fresh.snapshots("hub:model")["snapshot_id"].to_list() == [w0.snapshot_id]
    raw = pl.scan_delta(fresh._core.tables.must("catalog/snapshots")).collect()
    assert raw.filter(pl.col("status") == "complete").height == 1


@pytest.mark.slow
def test_two_processes_racing_the_same_batches(tmp_path: Path) -> None:
    root = str(tmp_path / "s")
    Store.open(root).begin_snapshot("hub:model")
    procs = [
        subprocess.Popen([sys.executable, WRITER, root, "1", "400", "40"], stdout=subprocess.PIPE)
        for _ in range(2)
    ]
    for p in procs:
        assert p.wait(timeout=300) == 0
    check_all(Store.open(root), 1, 400)


@pytest.mark.slow
def test_sigkill_at_random_points_then_resume(tmp_path: Path) -> None:
    root = str(tmp_path / "s")
    snaps, rows, batch = 5, 300, 50
    rng = random.Random(1234)
    kills = 0
    seen: set[tuple[int, int]] = set()  # (complete snapshots, last committed seq) at a kill
    for _ in range(200):
        # half the writers stage each batch at once, half let them wait (STAGE_FLUSH_*)
        each = ["--flush-each"] if rng.random() < 0.5 else []
        proc = subprocess.Popen(
            [sys.executable, WRITER, root, str(snaps), str(rows), str(batch), *each],
            stdout=subprocess.PIPE,
        )
        assert proc.stdout is not None
        proc.stdout.readline()  # "go": imports done, store open
        if kills < 24:
            time.sleep(rng.uniform(0.0, 1.2))
            if proc.poll() is None:
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait()
                kills += 1
                # every complete snapshot so far must already read back exactly
                store = Store.open(root, keyframe_every=2)
                done = len(store.snapshots("hub:model"))
                check_all(store, done, rows)
                running = store.resume_snapshot("hub:model")
                seen.add((done, running.last_committed_seq if running else -2))
                continue
        assert proc.wait(timeout=300) == 0
        if kills >= 20:
            break
        # finished before we killed it enough: start over in a fresh store
        root = str(tmp_path / f"s{rng.randrange(10**9)}")
    assert kills >= 20
    assert len(seen) >= 8, seen  # the kills landed at many different points
    check_all(Store.open(root, keyframe_every=2), snaps, rows)


def test_maintain_while_a_crawl_writes(tmp_path: Path) -> None:
    root = str(tmp_path / "s")
    store = Store.open(root, keyframe_every=2)
    errors: list[BaseException] = []

    def crawl() -> None:
        try:
            w = Store.open(root, keyframe_every=2)
            for k in range(1, 6):
                snap = w.begin_snapshot("hub:model")
                data = listing(k, 80)
                for seq in range(0, 8):
                    snap.write_batch(seq, data[seq * 10 : seq * 10 + 10])
                snap.finish("complete")
        except BaseException as exc:  # surfaced by the assert below
            errors.append(exc)

    t = threading.Thread(target=crawl)
    t.start()
    reports = 0
    while t.is_alive():
        store.maintain(retention_hours=0)  # floored at MIN_RETENTION_HOURS: in-flight files stay
        reports += 1
    t.join()
    assert not errors, errors
    assert reports >= 1
    store.maintain(retention_hours=0)
    check_all(Store.open(root, keyframe_every=2), 5, 80)
