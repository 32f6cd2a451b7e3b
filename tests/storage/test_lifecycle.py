"""Snapshot lifecycle: begin, batches, finish complete / partial / failed, resume."""

from __future__ import annotations

import polars as pl
import pytest

from storage import CrawlEvent, SnapshotNotFound, Store, UnknownSource, writer
from storage.catalog import CATALOG_COMPACT_FILES
from storage.core import STAGING_DROP_EVERY
from storage.layout import CATALOG
from tests.storage.conftest import day, repo, write_snapshot


def test_complete_snapshot_is_visible_with_every_row(store: Store) -> None:
    sid = write_snapshot(store, "hub:model", [repo(1, downloads=5), repo(2), repo(3)])
    assert sid == 1
    df = store.as_of("hub:model", sid).collect().sort("entity_id")
    assert df["entity_id"].to_list() == ["id1", "id2", "id3"]
    assert df["downloads"].to_list() == [5, None, None]
    snaps = store.snapshots("hub:model")
    assert snaps["status"].to_list() == ["complete"]
    assert snaps["entities"].to_list() == [3]


def test_running_snapshot_is_invisible(store: Store) -> None:
    write_snapshot(store, "hub:model", [repo(1)])
    w = store.begin_snapshot("hub:model")
    w.write_batch(0, [repo(2)])
    assert store.snapshots("hub:model")["snapshot_id"].to_list() == [1]
    assert store.as_of("hub:model").collect()["entity_id"].to_list() == ["id1"]
    with pytest.raises(SnapshotNotFound, match="complete snapshots: 1"):
        store.as_of("hub:model", w.snapshot_id).collect()


def test_partial_only_when_asked_and_flagged(store: Store) -> None:
    write_snapshot(store, "hub:model", [repo(1), repo(2)])
    sid = write_snapshot(store, "hub:model", [repo(1, "org/renamed")], status="partial")
    assert store.snapshots("hub:model")["snapshot_id"].to_list() == [1]
    both = store.snapshots("hub:model", include_partial=True)
    assert both["status"].to_list() == ["complete", "partial"]
    part = store.as_of("hub:model", sid, include_partial=True).collect().sort("entity_id")
    # no tombstone for id2: an incomplete listing never deletes
    assert part["name"].to_list() == ["org/renamed", "org/m2"]
    assert store.as_of("hub:model").collect().height == 2


def test_failed_snapshot_writes_nothing_visible(store: Store) -> None:
    write_snapshot(store, "hub:model", [repo(1), repo(2)])
    write_snapshot(store, "hub:model", [repo(1)], status="failed")
    third = write_snapshot(store, "hub:model", [repo(1), repo(2), repo(3)])
    assert third == 3
    assert store.as_of("hub:model").collect().height == 3
    assert store.as_of("hub:model", 1).collect().height == 2


def test_replayed_batch_is_skipped(store: Store) -> None:
    w = store.begin_snapshot("hub:model")
    assert w.write_batch(0, [repo(1)], checkpoint="p1")
    assert not w.write_batch(0, [repo(1)], checkpoint="p1")
    assert w.write_batch(1, [repo(2)], checkpoint="p2")
    assert not w.write_batch(0, [repo(9)])  # an older seq after a newer one: skipped too
    info = w.finish("complete")
    assert info.entities == 2
    assert w.finish("complete") == info  # finishing again changes nothing


def test_resume_returns_seq_and_checkpoint(store: Store) -> None:
    w = store.begin_snapshot("hub:model", run_id="run-a")
    w.write_batch(0, [repo(1)], checkpoint="next=2")
    w.write_batch(1, [repo(2)], checkpoint="next=3")
    w.record_events([CrawlEvent("retry", "429")])
    # accepted batches wait to be staged together: a resume (after a kill) does not see them
    waiting = store.resume_snapshot("hub:model")
    assert waiting is not None and waiting.last_committed_seq == -1
    assert waiting.checkpoint is None
    assert w.flush() == [0, 1]
    assert w.flush() == []
    again = store.resume_snapshot("hub:model")
    assert again is not None
    assert (again.snapshot_id, again.run_id) == (w.snapshot_id, "run-a")
    assert again.last_committed_seq == 1
    assert again.checkpoint == "next=3"
    again.record_events([CrawlEvent("retry", "503")])
    assert store.events("run-a").collect()["seq"].to_list() == [0, 1]
    again.write_batch(2, [repo(3)])
    again.finish("complete")
    assert store.resume_snapshot("hub:model") is None
    assert store.as_of("hub:model").collect().height == 3


def test_resolve_by_time(store: Store) -> None:
    write_snapshot(store, "hub:model", [repo(1)], at=day(0))
    write_snapshot(store, "hub:model", [repo(1), repo(2)], at=day(1))
    assert store.resolve_snapshot("hub:model", day(0)) == 1
    assert store.resolve_snapshot("hub:model", "2026-01-02") == 2
    assert store.resolve_snapshot("hub:model", "2026-01-01T12:00:00+00:00") == 1
    with pytest.raises(SnapshotNotFound, match="first is at 2026-01-01"):
        store.resolve_snapshot("hub:model", "2025-12-31")


def test_unknown_source_lists_sources(store: Store) -> None:
    write_snapshot(store, "hub:model", [repo(1)])
    with pytest.raises(UnknownSource, match="sources in the store: hub:model"):
        store.as_of("hub:dataset").collect()


def test_ids_increase_per_source(store: Store) -> None:
    assert write_snapshot(store, "hub:model", [repo(1)]) == 1
    assert write_snapshot(store, "npm", [{"entity_id": "left-pad", "downloads": 3}]) == 1
    assert write_snapshot(store, "hub:model", [repo(1)]) == 2
    assert store.sources() == ["hub:model", "npm"]


def _staged_ids(store: Store) -> list[int]:
    store.wait_for_tidying()  # the drop runs in a worker thread after the terminal row
    staged = pl.scan_delta(store._core.tables.must("staging/batches")).select("snapshot_id")
    return sorted(set(staged.collect()["snapshot_id"].to_list()))


def test_staged_batches_dropped_once_finished_and_by_maintain(store: Store) -> None:
    # every STAGING_DROP_EVERY finished snapshots one delete; a partial one stays staged
    ids = [write_snapshot(store, "hub:model", [repo(1, downloads=k)]) for k in range(3)]
    partial = write_snapshot(store, "hub:model", [repo(1), repo(2)], status="partial")
    n = STAGING_DROP_EVERY
    left = ids[len(ids) - len(ids) % n :]  # finished, not yet in a full group
    assert _staged_ids(store) == [*left, partial]
    assert store.maintain().staged_snapshots_dropped == len(left)
    assert _staged_ids(store) == [partial]
    assert store.as_of("hub:model", partial, include_partial=True).collect().height == 2
    assert store.as_of("hub:model").collect()["downloads"].to_list() == [2]


def test_the_catalog_compacts_itself_and_reads_the_same(store: Store) -> None:
    """Two catalog rows a snapshot would pile up one-row files (every commit re-reads the
    file list); finishes merge them once CATALOG_COMPACT_FILES appends piled up."""
    files = []
    for k in range(CATALOG_COMPACT_FILES):
        write_snapshot(store, "npm", [{"entity_id": "left-pad", "downloads": k}], at=day(k))
        files.append(next(t.files for t in store.table_stats() if t.table == CATALOG))
    # 2 appends a snapshot: compacted at the end of the 8th and 16th finish
    assert max(files) <= CATALOG_COMPACT_FILES
    assert files[CATALOG_COMPACT_FILES // 2 - 1] == 1 and files[-1] == 1
    fresh = Store.open(store.uri)
    assert fresh.snapshots("npm")["snapshot_id"].to_list() == list(
        range(1, CATALOG_COMPACT_FILES + 1)
    )
    assert fresh.as_of("npm", 3).collect()["downloads"].to_list() == [2]


def _staged_seq(store: Store) -> int:
    running = store.resume_snapshot("hub:model")
    assert running is not None
    return running.last_committed_seq


def test_batches_are_staged_when_enough_wait_or_before_details(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Accepted batches wait (one commit for several); they are staged once
    STAGE_FLUSH_BYTES wait, once the oldest waited STAGE_FLUSH_SECONDS, and before any
    details commit (details never run ahead of the listing by more than a batch)."""
    w = store.begin_snapshot("hub:model")
    assert w.write_batch(0, [repo(1)]) and w.write_batch(1, [repo(2)])
    assert _staged_seq(store) == -1  # both wait
    w.write_details("commits", 2, [{"entity_id": "id1", "commit_id": "c1"}])
    assert _staged_seq(store) == 1
    monkeypatch.setattr(writer, "STAGE_FLUSH_BYTES", 1)  # any batch is enough
    assert w.write_batch(2, [repo(3)])
    assert _staged_seq(store) == 2
    monkeypatch.setattr(writer, "STAGE_FLUSH_BYTES", 2**40)
    monkeypatch.setattr(writer, "STAGE_FLUSH_SECONDS", 0.0)  # waited long enough at once
    assert w.write_batch(3, [repo(4)])
    assert _staged_seq(store) == 3
    monkeypatch.setattr(writer, "STAGE_FLUSH_SECONDS", 3600.0)
    assert w.write_batch(4, [repo(5)])
    assert _staged_seq(store) == 3  # waits for finish
    w.finish("complete")
    assert store.as_of("hub:model").collect().height == 5


def test_a_failed_finish_drops_the_waiting_batches(store: Store) -> None:
    w = store.begin_snapshot("hub:model")
    assert w.write_batch(0, [repo(1)])
    assert w.finish("failed").status == "failed"
    assert _staged_ids(store) == []
    assert store.snapshots("hub:model").is_empty()
