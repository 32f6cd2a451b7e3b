"""Change encoding edge cases: one test per case the store must get exactly right."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pytest

from storage import Store
from tests.storage.conftest import repo, write_snapshot

SRC = "hub:model"


def state(store: Store, sid: int) -> list[dict[str, object]]:
    return store.as_of(SRC, sid).collect().sort("entity_id").to_dicts()


def changes_rows(store: Store, sid: int) -> pl.DataFrame:
    return store.history(SRC, "id1").collect().filter(pl.col("snapshot_id") == sid)


def test_unchanged_entity_writes_no_row(tmp_path: object, store: Store) -> None:
    rows = [repo(1, downloads=1), repo(2, downloads=2)]
    write_snapshot(store, SRC, rows)
    write_snapshot(store, SRC, rows)
    info = store.snapshots(SRC).row(1, named=True)
    assert (info["upserts"], info["tombstones"], info["keyframe"]) == (0, 0, False)
    assert state(store, 2) == state(store, 1)


def test_rename_is_an_update_not_delete_and_create(store: Store) -> None:
    write_snapshot(store, SRC, [repo(1, "old/name")])
    write_snapshot(store, SRC, [repo(1, "new/name")])
    hist = store.history(SRC, "id1").collect()
    assert hist["op"].to_list() == ["upsert", "upsert"]
    assert hist["name"].to_list() == ["old/name", "new/name"]
    ch = store.changed(SRC, 1, 2).collect()
    assert ch.select("entity_id", "change").rows() == [("id1", "renamed")]


def test_delete_then_reappear_round_trips(store: Store) -> None:
    write_snapshot(store, SRC, [repo(1, tags=["a"]), repo(2)])
    write_snapshot(store, SRC, [repo(2)])
    write_snapshot(store, SRC, [repo(1, tags=["a"]), repo(2)])
    assert [r["entity_id"] for r in state(store, 2)] == ["id2"]
    assert state(store, 3) == state(store, 1)
    assert store.history(SRC, "id1").collect()["op"].to_list() == ["upsert", "delete", "upsert"]
    kinds = store.changed(SRC, 1, 2).collect()["change"].to_list()
    assert kinds == ["deleted"]


def test_nulls_and_lists_are_kept_exactly(store: Store) -> None:
    rows = [
        repo(1, tags=[], downloads=None, likes=0, trending_score=0.5),
        repo(2, tags=None, base_models=["x", "y"], private=False),
        repo(3, tags=["", "b"], created_at=datetime(2024, 5, 1, 3, 4, 5, 6, tzinfo=UTC)),
    ]
    write_snapshot(store, SRC, rows)
    got = state(store, 1)
    assert got[0]["tags"] == [] and got[0]["downloads"] is None and got[0]["likes"] == 0
    assert got[1]["tags"] is None and got[1]["base_models"] == ["x", "y"]
    assert got[1]["private"] is False
    assert got[2]["tags"] == ["", "b"]
    assert got[2]["created_at"] == datetime(2024, 5, 1, 3, 4, 5, 6, tzinfo=UTC)
    # a value going to null, and [] to null, are changes too
    write_snapshot(store, SRC, [repo(1, tags=None, likes=0, trending_score=0.5), *rows[1:]])
    assert state(store, 2)[0]["tags"] is None
    assert state(store, 1)[0]["tags"] == []


def keyframes(store: Store, flag: str = "keyframe") -> list[int]:
    return store.snapshots(SRC).filter(pl.col(flag))["snapshot_id"].to_list()


def test_counter_keyframes_bounded_by_keyframe_every(store: Store) -> None:
    # keyframe_every=3 in the fixture; one counter change a snapshot among 10 entities
    # never reaches the cost bound (10 change rows), so counters keyframe by count
    for n in range(1, 8):
        write_snapshot(store, SRC, [repo(1, downloads=n)] + [repo(i) for i in range(2, 11)])
    assert keyframes(store, "counters_keyframe") == [1, 4, 7]
    assert keyframes(store) == [1]  # attributes never changed: no copy after the first
    for n in range(1, 8):
        got = store.as_of(SRC, n).collect().sort("entity_id")
        assert got.filter(pl.col("entity_id") == "id1")["downloads"].to_list() == [n]
        assert got.height == 10
    # a keyframe copy is not a change: id2 never changed after snapshot 1
    assert store.history(SRC, "id2").collect()["snapshot_id"].to_list() == [1]
    assert store.history(SRC, "id1").collect()["downloads"].to_list() == list(range(1, 8))


def test_keyframes_by_cost(tmp_path: Path) -> None:
    store = Store.open(str(tmp_path / "s"), keyframe_every=100)
    # both entities change attributes and counters every snapshot: 2 change rows per
    # snapshot against 2 live entities, so each table keyframes every other snapshot
    for n in range(1, 7):
        write_snapshot(store, SRC, [repo(1, f"a/{n}", likes=n), repo(2, f"b/{n}", likes=n)])
    assert keyframes(store) == [1, 3, 5]
    assert keyframes(store, "counters_keyframe") == [1, 3, 5]
    for n in range(1, 7):
        got = store.as_of(SRC, n).collect().sort("entity_id")
        assert got.select("name", "likes").rows() == [(f"a/{n}", n), (f"b/{n}", n)]
    info = store.snapshots(SRC).select("attribute_rows", "counter_rows").rows()
    assert info == [(2, 2)] * 6
    # the rarer the changes, the rarer the keyframes: one rename among 4 entities
    store2 = Store.open(str(tmp_path / "s2"), keyframe_every=100)
    for n in range(1, 8):
        write_snapshot(store2, SRC, [repo(1, f"a/{n}")] + [repo(i) for i in range(2, 5)], batch=4)
    assert store2.snapshots(SRC).filter(pl.col("keyframe"))["snapshot_id"].to_list() == [1, 6]
    got = store2.as_of(SRC, 7).collect().sort("entity_id")
    assert got.filter(pl.col("entity_id") == "id1")["name"].to_list() == ["a/7"]


def test_reopened_store_diffs_the_same(tmp_path: Path) -> None:
    """The previous state read back from the store (after a restart) hashes exactly like
    the one kept in memory: an unchanged listing writes no rows, a change exactly one."""
    root = str(tmp_path / "s")
    rows = [
        repo(1, tags=[], created_at="2024-01-02T03:04:05Z", downloads=None, private=False),
        repo(2, tags=None, base_models=["x"], trending_score=0.5, likes=3),
        repo(3, tags=["", "b"], gated="auto", downloads=7),
    ]
    write_snapshot(Store.open(root), SRC, rows)
    write_snapshot(Store.open(root), SRC, rows)
    rows[1] = repo(2, tags=None, base_models=["x"], trending_score=0.5, likes=4)
    write_snapshot(Store.open(root), SRC, rows)
    rows.append(repo(4))
    write_snapshot(Store.open(root), SRC, rows)
    snaps = Store.open(root).snapshots(SRC)
    assert snaps.select("attribute_rows", "counter_rows", "upserts").rows()[1:] == [
        (0, 0, 0),
        (0, 1, 1),
        (1, 0, 1),
    ]
    raw = pl.scan_delta(Store.open(root)._core.tables.must("hub/repos")).collect()
    # keys: 1..3 in sorted id order at first sight, 4 for the newcomer
    assert raw.sort("entity_key").select("entity_key", "entity_id").unique().sort(
        "entity_key"
    ).rows() == [(1, "id1"), (2, "id2"), (3, "id3"), (4, "id4")]


def test_partial_between_completes_does_not_disturb(store: Store) -> None:
    write_snapshot(store, SRC, [repo(1), repo(2)])
    write_snapshot(store, SRC, [repo(1, "p/renamed"), repo(5)], status="partial")
    write_snapshot(store, SRC, [repo(2), repo(3)])
    assert [r["entity_id"] for r in state(store, 3)] == ["id2", "id3"]
    assert [r["entity_id"] for r in state(store, 1)] == ["id1", "id2"]
    # the partial listing is diffed against nothing: snapshot 3 sees id1 deleted from 1
    assert store.changed(SRC, 1, 3).collect()["change"].to_list() == ["deleted", "created"]


def test_empty_complete_listing_tombstones_nothing(store: Store) -> None:
    # a header-only file or a dead page is no evidence that anything is gone
    write_snapshot(store, SRC, [repo(1), repo(2)])
    write_snapshot(store, SRC, [])
    assert [r["entity_id"] for r in state(store, 2)] == ["id1", "id2"]
    assert store.snapshots(SRC)["tombstones"].to_list() == [0, 0]


def test_duplicate_across_batches_keeps_newest(store: Store) -> None:
    w = store.begin_snapshot(SRC)
    w.write_batch(0, [repo(1, "a/one")])
    w.write_batch(1, [repo(1, "a/two")])  # the page fetched again after a resume
    w.finish("complete")
    assert [r["name"] for r in state(store, 1)] == ["a/two"]


def test_registry_source_without_stable_id(store: Store) -> None:
    write_snapshot(store, "npm", [{"entity_id": "left-pad", "name": "left-pad", "downloads": 9}])
    write_snapshot(store, "npm", [{"entity_id": "pad-left", "name": "pad-left", "downloads": 9}])
    ch = store.changed("npm", 1, 2).collect().select("entity_id", "change").rows()
    assert ch == [("left-pad", "deleted"), ("pad-left", "created")]


def test_topk_written_at_completion_with_ties(store: Store) -> None:
    rows = [repo(i, downloads=d, likes=i) for i, d in [(3, 5), (1, 5), (2, 7), (4, None)]]
    write_snapshot(store, SRC, rows)
    top = store.top_k(SRC, None, "downloads", 3).collect()
    assert top.select("rank", "entity_id", "value").rows() == [
        (1, "id2", 7.0),
        (2, "id1", 5.0),
        (3, "id3", 5.0),
    ]
    # a column that is not precomputed is ranked from the state
    assert store.top_k(SRC, 1, "trending_score", 3).collect().height == 0


def test_bad_records_quarantined_rest_written(store: Store) -> None:
    w = store.begin_snapshot(SRC, run_id="r1")
    w.write_batch(
        0,
        [
            repo(1, downloads=3),
            repo(2, downloads="many"),  # wrong type
            {"name": "no/id"},  # missing entity_id
            repo(1, "dup/again"),  # duplicate in the listing
            repo(3, created_at="2024-01-02T03:04:05Z"),  # ISO text for a timestamp: accepted
        ],
    )
    info = w.finish("complete")
    assert (info.entities, info.rejected) == (2, 3)
    ev = store.events("r1").collect()
    reasons = ev["reason"].to_list()
    assert any("downloads" in r for r in reasons), reasons
    assert any("missing entity_id" in r for r in reasons)
    assert any("duplicate entity_id 'id1'" in r for r in reasons)
    assert all(p for p in ev["payload"].to_list())
    assert "many" in " ".join(ev["payload"].to_list())


def test_custom_source_gains_columns(store: Store) -> None:
    write_snapshot(store, "custom:x", [{"entity_id": 1, "a": "one"}])
    write_snapshot(store, "custom:x", [{"entity_id": 1, "a": "one", "b": 2.5}])
    # every source's rows may say when they were observed (null: unknown), last
    assert store.columns("custom:x") == ["entity_id", "a", "b", "observed_at"]
    old = store.as_of("custom:x", 1).collect().to_dicts()
    assert old == [{"entity_id": "1", "a": "one", "b": None, "observed_at": None}]
    assert store.as_of("custom:x", 2).collect()["b"].to_list() == [2.5]


def test_details_visible_only_for_complete(store: Store) -> None:
    w = store.begin_snapshot(SRC)
    w.write_batch(0, [repo(1)])
    commit = {"entity_id": "id1", "commit_id": "c1", "title": "init", "authors": ["ann"]}
    assert w.write_details("commits", 0, [commit])
    assert not w.write_details("commits", 0, [commit])
    disc = {"entity_id": "id1", "num": 1, "status": "open", "created_at": "2025-01-01T00:00:00Z"}
    w.write_details("discussions", 0, [disc])
    w.write_details("cards", 0, [{"entity_id": "id1", "sha": "s", "length": 10}])
    assert store.commits().collect().height == 0
    w.finish("complete")
    w2 = store.begin_snapshot(SRC)
    w2.write_batch(0, [repo(1)])
    w2.write_details("commits", 0, [commit, {**commit, "commit_id": "c2"}])
    w2.write_details("discussions", 0, [{**disc, "status": "closed"}])
    w2.finish("complete")
    commits = store.commits("model").collect().sort("commit_id")
    assert commits.select("commit_id", "snapshot_id").rows() == [("c1", 1), ("c2", 2)]
    assert store.discussions("model", at=1).collect()["status"].to_list() == ["open"]
    assert store.discussions("model").collect()["status"].to_list() == ["closed"]
    assert store.cards("model").collect()["length"].to_list() == [10]
    with pytest.raises(ValueError, match="kinds are commits, discussions, cards"):
        w2.write_details("likes", 0, [])


def test_counter_only_change_writes_a_narrow_counter_row(tmp_path: Path) -> None:
    store = Store.open(str(tmp_path / "s"), keyframe_every=10)
    write_snapshot(store, SRC, [repo(1, license="mit", downloads=5, likes=1)])
    write_snapshot(store, SRC, [repo(1, license="mit", downloads=9, likes=1)])
    write_snapshot(store, SRC, [repo(1, license=None, downloads=9, likes=2)])
    write_snapshot(store, SRC, [repo(1, license=None, downloads=11, likes=2)])
    attrs = pl.scan_delta(store._core.tables.must("hub/repos")).sort("valid_from").collect()
    assert attrs.select("valid_from", "op", "license").rows() == [
        (1, "upsert", "mit"),
        (3, "upsert", None),
    ]
    assert "downloads" not in attrs.columns
    cnt = pl.scan_delta(store._core.tables.must("hub/repo_counters")).sort("valid_from").collect()
    assert cnt.columns == [
        "source",
        "entity_key",
        "valid_from",
        "downloads",
        "downloads_all_time",
        "likes",
        "trending_score",
    ]
    assert cnt.select("valid_from", "downloads", "likes").rows() == [
        (1, 5, 1),
        (2, 9, 1),
        (3, 9, 2),
        (4, 11, 2),
    ]
    got = [store.as_of(SRC, s).collect().row(0, named=True) for s in (1, 2, 3, 4)]
    assert [(g["license"], g["downloads"], g["likes"]) for g in got] == [
        ("mit", 5, 1),
        ("mit", 9, 1),
        (None, 9, 2),
        (None, 11, 2),
    ]
    hist = store.history(SRC, "id1").collect()
    assert hist.select("op", "name", "license", "downloads").rows() == [
        ("upsert", "org/m1", "mit", 5),
        ("upsert", "org/m1", "mit", 9),
        ("upsert", "org/m1", None, 9),
        ("upsert", "org/m1", None, 11),
    ]
    assert store.changed(SRC, 3, 4).collect()["change"].to_list() == ["updated"]


def test_reappearance_gets_a_new_key_and_no_stale_counters(store: Store) -> None:
    write_snapshot(store, SRC, [repo(1, downloads=50), repo(2)])
    write_snapshot(store, SRC, [repo(2)])
    write_snapshot(store, SRC, [repo(1), repo(2)])  # back, with no downloads
    got = store.as_of(SRC, 3).collect().sort("entity_id")
    assert got["downloads"].to_list() == [None, None]
    assert store.as_of(SRC, 1).collect().sort("entity_id")["downloads"].to_list() == [50, None]
    raw = pl.scan_delta(store._core.tables.must("hub/repos")).filter(pl.col("entity_id") == "id1")
    assert sorted(raw.collect()["entity_key"].unique().to_list()) == [1, 3]
    hist = store.history(SRC, "id1").collect()
    assert hist.select("snapshot_id", "op", "downloads").rows() == [
        (1, "upsert", 50),
        (2, "delete", None),
        (3, "upsert", None),
    ]


def test_top_k_members_rank_exactly_like_the_listing(tmp_path: Path) -> None:
    store = Store.open(str(tmp_path / "s"), topk_n=3)
    rows = [repo(i, downloads=d, likes=i % 3) for i, d in enumerate([5, 9, 9, 1, None, 7])]
    write_snapshot(store, SRC, rows)
    raw = pl.scan_delta(store._core.tables.must("derived/topk")).collect()
    assert raw.filter(pl.col("by") == "downloads")["entity_key"].to_list() == [2, 3, 6]
    top = store.top_k(SRC, 1, "downloads", 3).collect()
    assert top.rows() == [
        (1, "id1", "org/m1", 9.0),
        (2, "id2", "org/m2", 9.0),
        (3, "id5", "org/m5", 7.0),
    ]
    # more than topk_n: ranked from the state; the same first three
    top5 = store.top_k(SRC, 1, "downloads", 5).collect()
    assert top5.rows()[:3] == top.rows() and top5["entity_id"].to_list()[3:] == ["id0", "id3"]
    likes = store.top_k(SRC, 1, "likes", 2).collect()
    assert likes.select("entity_id", "value").rows() == [("id2", 2.0), ("id5", 2.0)]
