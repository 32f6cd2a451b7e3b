"""Issue 16, point 7: a source's snapshots run forward in time, whoever writes them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from storage import SnapshotOrder, Store
from storage.importing import import_listing
from tests.storage.conftest import day, repo, write_snapshot


def _csv(path: Path, ids: list[int]) -> Path:
    path.write_text("entity_id,name\n" + "".join(f"id{i},org/m{i}\n" for i in ids))
    return path


def test_an_import_dated_in_the_future_is_refused_and_writes_nothing(
    store: Store, tmp_path: Path
) -> None:
    future = datetime.now(UTC) + timedelta(days=30)
    with pytest.raises(SnapshotOrder, match="in the future"):
        import_listing(store, "hub:model", _csv(tmp_path / "a.csv", [1, 2]), at=future)
    assert store.snapshots("hub:model", all_statuses=True).height == 0


def test_an_import_before_a_crawl_is_refused_naming_the_newest(
    store: Store, tmp_path: Path
) -> None:
    write_snapshot(store, "hub:model", [repo(i) for i in range(5)])  # a crawl: as_of now
    with pytest.raises(SnapshotOrder, match=r"before the newest snapshot 1 \(complete, at"):
        import_listing(store, "hub:model", _csv(tmp_path / "a.csv", [1]), at=day(0))
    snaps = store.snapshots("hub:model", all_statuses=True)
    assert snaps.height == 1
    # nothing tombstoned: the crawl's five entities are all still there
    assert store.as_of("hub:model").collect().height == 5


def test_a_crawl_before_an_import_is_refused(store: Store) -> None:
    # the store API is what the crawler calls: an explicit instant before the newest
    write_snapshot(store, "hub:model", [repo(1)], at=day(10))
    with pytest.raises(SnapshotOrder, match="before the newest snapshot 1"):
        store.begin_snapshot("hub:model", as_of=day(9))


def test_the_same_instant_is_refused_unless_the_first_try_failed(
    store: Store, tmp_path: Path
) -> None:
    write_snapshot(store, "hub:model", [repo(1)], at=day(1))
    with pytest.raises(SnapshotOrder, match="at the same instant as the newest snapshot 1"):
        store.begin_snapshot("hub:model", as_of=day(1))
    w = store.begin_snapshot("hub:model", as_of=day(2))
    w.finish("failed", message="killed")
    # a failed snapshot holds nothing: the same import may be re-run at its instant
    info = import_listing(store, "hub:model", _csv(tmp_path / "a.csv", [1, 2]), at=day(2))
    assert (info.snapshot_id, info.status, info.entities) == (3, "complete", 2)
    # a running snapshot counts (a crawl in progress): nothing may land before it
    store.begin_snapshot("hub:model", as_of=day(3))
    with pytest.raises(SnapshotOrder, match=r"snapshot 4 \(running"):
        store.begin_snapshot("hub:model", as_of=day(3) - timedelta(seconds=1))


def test_other_sources_do_not_constrain_each_other(store: Store) -> None:
    write_snapshot(store, "hub:model", [repo(1)], at=day(5))
    assert write_snapshot(store, "hub:dataset", [repo(1)], at=day(1)) == 1
