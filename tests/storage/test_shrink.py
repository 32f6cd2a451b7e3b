"""Issue 16, point 4: a full listing that would tombstone too much of the state is refused,
and an empty listing never tombstones anything."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from storage import ShrinkRefused, Store
from storage.importing import import_listing
from tests.storage.conftest import day, repo, write_snapshot
from tests.storage.test_cli_store import hub


def _csv(path: Path, ids: range | list[int]) -> Path:
    path.write_text("entity_id,name\n" + "".join(f"id{i},org/m{i}\n" for i in ids))
    return path


def test_an_import_dropping_two_of_ten_is_refused_then_allowed(
    store: Store, tmp_path: Path
) -> None:
    import_listing(store, "hub:model", _csv(tmp_path / "a.csv", range(10)), at=day(1))
    with pytest.raises(ShrinkRefused) as err:
        import_listing(store, "hub:model", _csv(tmp_path / "b.csv", range(8)), at=day(2))
    said = str(err.value)
    assert "tombstone 2 of the 10 entities of snapshot 1 (20.0%" in said
    assert "--allow-shrink" in said and "--coverage top --top-by" in said
    assert "--coverage subset" in said
    snaps = store.snapshots("hub:model", all_statuses=True).sort("snapshot_id")
    assert snaps["status"].to_list() == ["complete", "failed"]
    assert store.as_of("hub:model").collect().height == 10
    kinds = store.events().collect().filter(kind="shrink")
    assert kinds.height == 1
    # the same import, allowed, at the same instant (the refused one failed)
    info = import_listing(store, "hub:model", tmp_path / "b.csv", at=day(2), allow_shrink=True)
    assert (info.status, info.tombstones) == ("complete", 2)
    # one of nine gone (11.1 %) is refused too; at a larger max_shrink it is allowed
    with pytest.raises(ShrinkRefused, match="1 of the 8 entities"):
        import_listing(store, "hub:model", _csv(tmp_path / "c.csv", range(7)), at=day(3))
    info = import_listing(store, "hub:model", tmp_path / "c.csv", at=day(4), max_shrink=0.2)
    assert info.tombstones == 1


def test_ten_percent_exactly_passes(store: Store, tmp_path: Path) -> None:
    import_listing(store, "hub:model", _csv(tmp_path / "a.csv", range(10)), at=day(1))
    info = import_listing(store, "hub:model", _csv(tmp_path / "b.csv", range(9)), at=day(2))
    assert (info.status, info.tombstones) == ("complete", 1)


def test_an_empty_listing_tombstones_nothing(store: Store, tmp_path: Path) -> None:
    import_listing(store, "hub:model", _csv(tmp_path / "a.csv", range(5)), at=day(1))
    info = import_listing(store, "hub:model", _csv(tmp_path / "e.csv", []), at=day(2))
    assert (info.status, info.entities, info.tombstones) == ("complete", 0, 0)
    assert store.as_of("hub:model").collect().height == 5


def test_a_crawl_that_shrinks_ends_partial_with_an_event(store: Store) -> None:
    write_snapshot(store, "hub:model", [repo(i) for i in range(20)], at=day(1))
    # what crawler/run.py does: begin with the config's max_shrink, finish complete
    w = store.begin_snapshot("hub:model", as_of=day(2), max_shrink=0.10)
    w.write_batch(0, [repo(i) for i in range(5)])
    info = w.finish("complete")
    assert info.status == "partial"
    assert "tombstone 15 of the 20 entities of snapshot 1 (75.0%" in (info.message or "")
    ev = store.events().collect().filter(kind="shrink")
    assert ev["snapshot_id"].to_list() == [2]
    assert store.as_of("hub:model").collect().height == 20


def test_the_cli_import_exits_1_naming_the_numbers(tmp_path: Path) -> None:
    root = tmp_path / "s"
    a = _csv(tmp_path / "a.csv", range(10))
    assert hub(root, "import", "hub:model", str(a), "--at", "2026-01-01").returncode == 0
    b = _csv(tmp_path / "b.csv", range(1))
    res = hub(root, "import", "hub:model", str(b), "--at", "2026-01-02")
    assert res.returncode == 1
    assert "9 of the 10 entities" in res.stderr and "--allow-shrink" in res.stderr
    res = hub(
        root,
        "import",
        "hub:model",
        str(b),
        "--at",
        "2026-01-02",
        "--allow-shrink",
        "--format",
        "json",
    )
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)[0]["tombstones"] == 9
