"""Finish streams the staged listing: batches over the writer's memory cap are read back
from staging one at a time, a keyframe is streamed to the table batch by batch, and the
result is the very same state and rows as when the batches are kept in memory.

Also: a writer only trusts its kept batches when they are all the staged ones, and the
catalog a store caches after its own commits still shows other writers' rows.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import polars as pl
import pytest

import storage.writer as writer
from storage import Store
from storage.writer import SnapshotWriter
from tests.storage.conftest import repo


def _days() -> list[list[dict[str, Any]]]:
    """Four listings: keyframe, changes + deletes + new ones, a rename, counters only."""
    d0 = [repo(i, downloads=i, tags=["a"] if i % 2 else None) for i in range(40)]
    d1 = [repo(i, downloads=i + 1, sha="x" if i % 5 == 0 else None) for i in range(3, 45)]
    d2 = [r if r["entity_id"] != "id7" else {**r, "name": "org/renamed"} for r in d1]
    d3 = [{**r, "downloads": (r.get("downloads") or 0) * 2} for r in d2]
    return [d0, d1, d2, d3]


def _write(store: Store, rows: list[dict[str, Any]], batch: int = 7) -> None:
    w = store.begin_snapshot("hub:model")
    for seq, start in enumerate(range(0, len(rows), batch)):
        assert w.write_batch(seq, rows[start : start + batch])
    if writer.STAGED_MEMORY_BYTES == 0:
        assert not w._mine, "batches over the cap are not kept"
    w.finish("complete")


def _attribute_rows(store: Store) -> pl.DataFrame:
    cols = ["entity_key", "entity_id", "name", "sha", "tags", "valid_from", "op"]
    rows = pl.scan_delta(store._core.tables.must("hub/repos")).select(cols).collect()
    return rows.sort("valid_from", "entity_key")


@pytest.mark.parametrize("keyframe_every", [1, 3])
def test_read_back_and_streamed_keyframes_equal_the_in_memory_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, keyframe_every: int
) -> None:
    kept = Store.open(str(tmp_path / "kept"), keyframe_every=keyframe_every, keyframe_cost=0.5)
    for rows in _days():
        _write(kept, rows)
    monkeypatch.setattr(writer, "STAGED_MEMORY_BYTES", 0)
    streamed = Store.open(str(tmp_path / "read"), keyframe_every=keyframe_every, keyframe_cost=0.5)
    for rows in _days():
        _write(streamed, rows)
    a, b = kept.snapshots("hub:model"), streamed.snapshots("hub:model")
    assert a["keyframe"].to_list() == b["keyframe"].to_list()
    assert a["keyframe"].sum() >= 2  # the streamed keyframe path ran after the first one
    assert a["attribute_rows"].to_list() == b["attribute_rows"].to_list()
    assert a["counter_rows"].to_list() == b["counter_rows"].to_list()
    assert _attribute_rows(kept).equals(_attribute_rows(streamed))
    for sid in a["snapshot_id"].to_list():
        want = kept.as_of("hub:model", sid).collect().sort("entity_id")
        got = streamed.as_of("hub:model", sid).collect().sort("entity_id")
        assert got.equals(want), sid
        top_a = kept.top_k("hub:model", sid, "downloads", 5).collect()
        top_b = streamed.top_k("hub:model", sid, "downloads", 5).collect()
        assert top_a.equals(top_b)


def test_keyframe_streamed_per_batch_is_sorted_by_key_within_each_batch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(writer, "STAGED_MEMORY_BYTES", 0)
    store = Store.open(str(tmp_path / "s"))
    # ids listed in reverse order: the keys (ranks of sorted ids) run backwards
    rows = [repo(f"e{i:03d}") for i in reversed(range(30))]
    _write(store, rows, batch=10)
    got = pl.scan_delta(store._core.tables.must("hub/repos")).select("entity_key").collect()
    keys = got["entity_key"].to_list()
    assert sorted(keys) == list(range(1, 31))
    for start in range(0, 30, 10):  # each staged batch comes out sorted
        part = keys[start : start + 10]
        assert part == sorted(part)


def test_kept_batches_are_used_only_when_they_are_all_the_staged_ones(tmp_path: Path) -> None:
    root = str(tmp_path / "s")
    a = Store.open(root)
    w = a.begin_snapshot("hub:model")
    assert w.write_batch(0, [repo(1)])
    assert w.flush() == [0]
    # another process resumes the same snapshot and stages the next batch
    b = Store.open(root)
    other = b.resume_snapshot("hub:model")
    assert other is not None and other.snapshot_id == w.snapshot_id
    assert other.write_batch(1, [repo(2)])
    assert other.flush() == [1]
    assert not w._mine_is_all()
    w.finish("complete")
    assert sorted(a.as_of("hub:model").collect()["entity_id"].to_list()) == ["id1", "id2"]


def test_a_racer_staging_the_waiting_seqs_first_makes_its_batches_the_listing(
    tmp_path: Path,
) -> None:
    """Batches waiting in a writer that another writer of the snapshot stages first (with
    other rows) are left out, and finish diffs the staged listing, not the kept one."""
    root = str(tmp_path / "s")
    a = Store.open(root)
    w = a.begin_snapshot("hub:model")
    assert w.write_batch(0, [repo(1)]) and w.write_batch(1, [repo(2)])
    other = Store.open(root).resume_snapshot("hub:model")
    assert other is not None and other.last_committed_seq == -1  # nothing staged yet
    assert other.write_batch(0, [repo(3)]) and other.write_batch(1, [repo(4)])
    assert other.flush() == [0, 1]
    w.finish("complete")
    assert sorted(a.as_of("hub:model").collect()["entity_id"].to_list()) == ["id3", "id4"]


def test_a_racer_staging_during_the_finish_flush_makes_its_batches_the_listing(
    tmp_path: Path,
) -> None:
    """The same race, landing between finish's check of the staged seqs and its flush
    (which runs beside the diff): the diff of the kept batches is dropped and redone."""
    root = str(tmp_path / "s")
    a = Store.open(root)
    w = a.begin_snapshot("hub:model")
    assert w.write_batch(0, [repo(1)]) and w.write_batch(1, [repo(2)])
    other = Store.open(root).resume_snapshot("hub:model")
    assert other is not None
    assert other.write_batch(0, [repo(5)]) and other.write_batch(1, [repo(6)])
    flushed: list[list[int]] = []

    def racer_first() -> list[int]:  # the racer's commit lands just before w's flush
        flushed.append(other.flush())
        mine = SnapshotWriter.flush(w)
        flushed.append(mine)
        return mine

    w.flush = racer_first  # type: ignore[method-assign]
    w.finish("complete")
    assert flushed == [[0, 1], []]
    assert sorted(a.as_of("hub:model").collect()["entity_id"].to_list()) == ["id5", "id6"]


def test_the_cached_catalog_shows_other_writers_rows(tmp_path: Path) -> None:
    root = str(tmp_path / "s")
    a, b = Store.open(root), Store.open(root)
    wa = a.begin_snapshot("hub:model")
    wb = b.begin_snapshot("npm")  # b commits between a's catalog rows
    wa.write_batch(0, [repo(1)])
    wb.write_batch(0, [{"entity_id": "left-pad", "downloads": 1}])
    wa.finish("complete")
    wb.finish("complete")
    for store in (a, b):
        cat = store.snapshots(all_statuses=True)
        assert sorted(zip(cat["source"], cat["status"], strict=True)) == [
            ("hub:model", "complete"),
            ("npm", "complete"),
        ]
    wa2 = a.begin_snapshot("hub:model")
    assert wa2.snapshot_id == 2
    assert a.snapshots("npm")["snapshot_id"].to_list() == [1]


def test_a_change_to_another_entitys_old_attributes_is_still_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Pass 1 keeps the rows whose attribute hash no previous entity had; a change to
    attributes another entity had (the same hash) is found by the diff and its batch is
    read again in pass 2."""
    monkeypatch.setattr(writer, "STAGED_MEMORY_BYTES", 0)
    store = Store.open(str(tmp_path / "s"), keyframe_cost=100.0)
    x = {"name": "org/x", "sha": "1"}
    y = {"name": "org/y", "sha": "2"}
    z = {"name": "org/z", "sha": "3"}
    _write(store, [{"entity_id": "a", **x}, {"entity_id": "b", **y}], batch=1)
    # a takes b's old attributes (a hash the previous state has), b some new ones
    _write(store, [{"entity_id": "a", **y}, {"entity_id": "b", **z}], batch=1)
    snaps = store.snapshots("hub:model")
    assert snaps["keyframe"].to_list() == [True, False]
    got = store.as_of("hub:model").collect().sort("entity_id")
    assert got.select("entity_id", "name", "sha").rows() == [
        ("a", "org/y", "2"),
        ("b", "org/z", "3"),
    ]
