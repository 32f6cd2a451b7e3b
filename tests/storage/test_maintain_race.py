"""`maintain()` next to finishing snapshots on one shared `Store` (as the daemon runs it).

The daemon runs `store.maintain()` in a thread while crawls finish snapshots in others,
on the same `Store`. delta-rs's vacuum and compaction write the table state they started
from back into the `DeltaTable` object when they end, so a commit another thread made
through that same object meanwhile vanished from it (its txn and its file), and a
refresh did not bring it back: the finishing thread then found no terminal row for the
snapshot it had just completed. These tests race the two and check every finish.
"""

from __future__ import annotations

import threading
from pathlib import Path

import polars as pl
import pyarrow as pa
import pytest

from storage import Store, schemas
from storage.layout import CATALOG


@pytest.mark.slow
def test_finish_next_to_maintain_on_a_shared_store(tmp_path: Path) -> None:
    store = Store.open(str(tmp_path / "s"))
    stop = threading.Event()
    maint_errors: list[BaseException] = []

    def maintain_loop() -> None:
        while not stop.is_set():
            try:
                store.maintain(retention_hours=0)  # floored at MIN_RETENTION_HOURS
            except BaseException as exc:  # surfaced by the assert below
                maint_errors.append(exc)

    t = threading.Thread(target=maintain_loop)
    t.start()
    failures: list[str] = []
    try:
        for k in range(40):
            snap = store.begin_snapshot("hub:dataset")
            rows = [{"entity_id": f"e{i}", "name": f"o/d{i}", "downloads": i * k} for i in range(8)]
            snap.write_batch(0, rows[:4])
            snap.write_batch(1, rows[4:])
            try:
                info = snap.finish("complete")
                assert info.status == "complete"
            except Exception as exc:
                failures.append(f"snapshot {snap.snapshot_id}: {type(exc).__name__}: {exc!s}")
                continue
            # the thread that committed the terminal row must keep seeing it
            seen = store._core.catalog.terminal_info("hub:dataset", snap.snapshot_id)
            if seen is None or seen.status != "complete":
                failures.append(f"snapshot {snap.snapshot_id}: terminal row not visible")
    finally:
        stop.set()
        t.join()
    assert not failures, failures
    assert not maint_errors, maint_errors
    fresh = Store.open(str(tmp_path / "s"))
    raw = pl.scan_delta(fresh._core.tables.must("catalog/snapshots")).collect()
    assert raw.filter(pl.col("status") == "complete").height == 40
    assert raw.filter(pl.col("status") == "running").height == 40
    assert fresh.snapshots("hub:dataset")["snapshot_id"].to_list() == list(range(1, 41))
    got = fresh.as_of("hub:dataset", 40, columns=["downloads"]).collect().sort("entity_id")
    assert got["downloads"].to_list() == [i * 39 for i in range(8)]


@pytest.mark.slow
def test_a_commit_stays_visible_while_another_thread_vacuums(tmp_path: Path) -> None:
    """The hazard itself, made likely: one thread vacuums the catalog in a tight loop
    (what maintain does to every table), the other appends through `Tables` and checks
    its own txn after a refresh. With one `DeltaTable` object shared by both threads (the
    cache before it was per thread) this failed: the vacuum's end rolled the object back
    and a refresh then did not show the txn the thread had just committed."""
    store = Store.open(str(tmp_path / "s"))
    tables = store._core.tables
    stop = threading.Event()

    def vacuum_loop() -> None:
        while not stop.is_set():
            dt = tables.must(CATALOG)
            dt.vacuum(retention_hours=1, dry_run=False, enforce_retention_duration=False)

    t = threading.Thread(target=vacuum_loop)
    t.start()
    lost = []
    try:
        for i in range(100):
            row = pa.Table.from_pylist(
                [{"source": "hub:model", "snapshot_id": 1000 + i, "status": "running"}],
                schema=schemas.CATALOG_SNAPSHOTS,
            )
            assert tables.append_once(CATALOG, row, f"probe:{i}", 0)
            if tables.must(CATALOG).transaction_version(f"probe:{i}") != 0:
                lost.append(i)
    finally:
        stop.set()
        t.join()
    assert not lost, f"{len(lost)} of 100 commits not visible to their own thread: {lost[:10]}"


def test_each_thread_gets_its_own_delta_table(tmp_path: Path) -> None:
    """The fast guard of the above: `Tables` never hands one `DeltaTable` to two threads."""
    tables = Store.open(str(tmp_path / "s"))._core.tables
    here = tables.must(CATALOG)
    assert tables.must(CATALOG) is here  # cached within a thread
    other: list[object] = []
    t = threading.Thread(target=lambda: other.append(tables.must(CATALOG)))
    t.start()
    t.join()
    assert other and other[0] is not here
