"""Issue 16, point 1: every snapshot records what its listing covers (full | top | subset)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from analytics import compute_measure
from storage import Store
from storage.importing import import_listing
from tests.storage.conftest import T0, day, repo, write_snapshot

# a top-N list growing 5 -> 4 -> 5 -> 8 rows (the PyPI case of the issue)
TOPS = [[1, 2, 3, 4, 5], [1, 2, 3, 6], [2, 1, 3, 7, 8], [1, 2, 3, 4, 5, 6, 7, 9]]


def _import_tops(store: Store, tmp_path: Path) -> None:
    for m, ids in enumerate(TOPS):
        f = tmp_path / f"top{m}.csv"
        f.write_text("project,downloads\n" + "".join(f"p{i},{1000 - 10 * i + m}\n" for i in ids))
        import_listing(
            store,
            "custom:pypi",
            f,
            at=T0 + timedelta(days=30 * m),
            id_column="project",
            coverage="top",
            top_by="downloads",
        )


def test_a_top_n_sequence_writes_no_tombstones_and_as_of_returns_the_listed(
    store: Store, tmp_path: Path
) -> None:
    _import_tops(store, tmp_path)
    snaps = store.snapshots("custom:pypi").sort("snapshot_id")
    assert snaps["coverage"].to_list() == ["top"] * 4
    assert snaps["top_by"].to_list() == ["downloads"] * 4
    assert snaps["top_n"].to_list() == [5, 4, 5, 8]
    assert snaps["tombstones"].to_list() == [0, 0, 0, 0]
    for sid, ids in enumerate(TOPS, start=1):
        got = sorted(store.as_of("custom:pypi", sid).collect()["entity_id"].to_list())
        assert got == sorted(f"p{i}" for i in ids)
    # p4 left the top at 2 and came back at 4: never deleted
    assert store.history("custom:pypi", "p4").collect()["op"].to_list() == ["upsert", "upsert"]
    assert store.snapshot_info("custom:pypi", 2).covers() == "top 4 by downloads"
    # growth and churn count nothing a top-N list cannot show
    churn = compute_measure(store, "churn", source="custom:pypi")
    assert churn["deleted"].to_list() == [None, None, None]
    assert churn["created"].to_list() == [None, None, None]
    growth = compute_measure(store, "growth", source="custom:pypi")
    assert growth["entities"].to_list() == [None] * 4
    # a full listing after them: gone are the 9 - 2 entities ever listed and not named
    f = tmp_path / "full.csv"
    f.write_text("project,downloads\np1,5\np2,6\n")
    info = import_listing(
        store, "custom:pypi", f, at=day(200), id_column="project", allow_shrink=True
    )
    assert (info.coverage, info.entities, info.tombstones) == ("full", 2, 7)


def test_a_subset_keeps_what_it_did_not_name(store: Store) -> None:
    write_snapshot(store, "hub:model", [repo(i, downloads=i) for i in range(1, 5)], at=day(1))
    w = store.begin_snapshot("hub:model", as_of=day(2), coverage="subset")
    w.write_batch(0, [repo(2, downloads=20), repo(9, downloads=90)])
    info = w.finish("complete")
    assert (info.coverage, info.tombstones, info.entities) == ("subset", 0, 2)
    st = store.as_of("hub:model", columns=["downloads"]).collect().sort("entity_id")
    assert st["entity_id"].to_list() == ["id1", "id2", "id3", "id4", "id9"]
    assert st["downloads"].to_list() == [1, 20, 3, 4, 90]
    # the ranking of a subset snapshot is over its whole state, not its listing
    top = store.top_k("hub:model", None, "downloads", 3).collect()
    assert top["entity_id"].to_list() == ["id9", "id2", "id4"]
    # a full listing next diffs against all of it: two of five gone
    info = write_snapshot(store, "hub:model", [repo(i, downloads=i) for i in (1, 2, 3)], at=day(3))
    assert store.snapshot_info("hub:model", info).tombstones == 2


def test_turnover_refuses_k_above_a_top_snapshots_n(store: Store, tmp_path: Path) -> None:
    _import_tops(store, tmp_path)
    from analytics.errors import NotEnoughData

    with pytest.raises(NotEnoughData, match=r"k=5 is larger than snapshot 2 .* top 4 by"):
        compute_measure(store, "turnover", source="custom:pypi", params={"k": 5, "by": "downloads"})
    df = compute_measure(
        store, "turnover", source="custom:pypi", params={"k": 3, "by": "downloads"}
    )
    # top 3 within each list: {1,2,3} every time
    assert df["remained"].to_list() == [3, 3, 3]


def test_old_rows_read_as_full(store: Store) -> None:
    write_snapshot(store, "hub:model", [repo(1)], at=day(1))
    assert store.snapshot_info("hub:model").coverage == "full"
