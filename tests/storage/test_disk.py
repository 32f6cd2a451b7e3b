"""Disk stays near live bytes (issue 15, point 5): a finished snapshot's staged batches
leave the disk right after its finish, and the store reports its bytes on disk."""

from __future__ import annotations

import urllib.parse
from pathlib import Path

import pyarrow as pa
from deltalake import DeltaTable

from storage import Store
from storage.layout import STAGING
from tests.storage.conftest import day, write_snapshot
from tests.storage.listings import listing


def _staged_on_disk(root: Path, source: str) -> list[Path]:
    """Parquet files in `source`'s staging partitions (the folder name is hive-escaped)."""
    part = "source=" + source.replace(":", "%3A")
    return sorted((root / STAGING / part).rglob("*.parquet"))


def _live(root: Path, rel: str) -> set[Path]:
    dt = DeltaTable(str(root / rel))
    paths = pa.table(dt.get_add_actions()).column("path").to_pylist()
    # the log's paths are URL-encoded once more than the folders ("source=hub%253Amodel")
    return {(root / rel / urllib.parse.unquote(p)).resolve() for p in paths}


def test_a_finish_reclaims_its_staged_files_and_spares_a_running_writer(tmp_path: Path) -> None:
    """A writer of hub:model stages a batch; meanwhile a hub:dataset snapshot finishes:
    its staged files leave the disk at once (no vacuum), the running writer's stay and
    it finishes whole; then no staged file is left on disk at all."""
    root = tmp_path / "store"
    store = Store.open(str(root))
    running = store.begin_snapshot("hub:model", as_of=day(1))
    running.write_batch(0, listing(1, 40)[:20])
    running.flush()
    mine = _staged_on_disk(root, "hub:model")
    assert mine

    write_snapshot(store, "hub:dataset", listing(1, 40), at=day(1), batch=10)
    store.wait_for_tidying()
    assert _staged_on_disk(root, "hub:dataset") == []
    assert _staged_on_disk(root, "hub:model") == mine  # the running writer's, untouched

    running.write_batch(1, listing(1, 40)[20:])
    running.finish("complete")
    store.wait_for_tidying()
    assert list((root / STAGING).rglob("*.parquet")) == []
    fresh = Store.open(str(root))
    for source in ("hub:model", "hub:dataset"):
        got = fresh.as_of(source).collect()["entity_id"].sort().to_list()
        assert got == sorted(str(r["entity_id"]) for r in listing(1, 40))


def test_thirty_snapshots_hold_on_disk_what_is_live_plus_logs(tmp_path: Path) -> None:
    """A fresh store after 30 daily snapshots, no maintain: every data file on disk but
    the catalog's compacted-away ones (left to a vacuum: a reader may be scanning them)
    is live, so disk = live + the logs; `table_stats` counts exactly the folder."""
    root = tmp_path / "store"
    store = Store.open(str(root), keyframe_every=7)
    for k in range(1, 31):
        write_snapshot(store, "hub:model", listing(k, 200), at=day(k), batch=50)
    stats = {s.table: s for s in store.table_stats()}
    on_disk = sum(p.stat().st_size for p in root.rglob("*") if p.is_file())
    assert sum(s.disk_bytes for s in stats.values()) == on_disk
    logs = 0
    for rel in stats:
        logs += sum(p.stat().st_size for p in (root / rel / "_delta_log").rglob("*") if p.is_file())
        if rel == "catalog/snapshots":
            continue
        files = {
            p.resolve() for p in (root / rel).rglob("*.parquet") if "_delta_log" not in p.parts
        }
        assert files == _live(root, rel), rel
    assert stats[STAGING].bytes == 0 and list((root / STAGING).rglob("*.parquet")) == []
    live = sum(s.bytes for s in stats.values())
    catalog_dead = stats["catalog/snapshots"].disk_bytes - stats["catalog/snapshots"].bytes
    assert on_disk <= live + logs + catalog_dead
    assert store.snapshots("hub:model").height == 30
