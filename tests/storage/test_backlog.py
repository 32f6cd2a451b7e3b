"""The details backlog and coverage tables (storage/backlog.py) on a real store: batches
land once, an open claim is found, details go to complete snapshots only, the newest
coverage measure counts, and bad input gets a precise error."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from storage import Store


def _store(tmp_path: Path) -> tuple[Store, int]:
    store = Store.open(str(tmp_path / "s"))
    w = store.begin_snapshot("hub:model", as_of=datetime(2026, 1, 1, tzinfo=UTC))
    w.write_batch(0, [{"entity_id": "a", "name": "o/a", "sha": "s1"}])
    w.finish("complete")
    return store, w.snapshot_id


def _claim(eid: str, detail: str, sha: str) -> dict[str, str]:
    return {"entity_id": eid, "name": f"o/{eid}", "detail": detail, "sha": sha}


def test_batches_land_once_and_an_open_claim_is_found(tmp_path: Path) -> None:
    store, sid = _store(tmp_path)
    assert store.open_detail_batch("hub:model") == (1, None)
    assert store.detailed("hub:model").height == 0
    rows = [_claim("a", "commits", "s1"), _claim("a", "cards", "s1")]
    assert store.mark_details("hub:model", 1, "claim", sid, rows)
    assert not store.mark_details("hub:model", 1, "claim", sid, rows)  # once
    batch, claim = store.open_detail_batch("hub:model")
    assert batch == 1 and claim is not None and claim.height == 2
    commit = {"entity_id": "a", "commit_id": "c1", "title": "t", "authors": ["x"]}
    assert store.append_details("hub:model", sid, "commits", 1, [commit])
    assert not store.append_details("hub:model", sid, "commits", 1, [commit])  # no row twice
    assert store.commits("model").collect()["commit_id"].to_list() == ["c1"]
    assert store.mark_details("hub:model", 1, "done", sid, rows)
    assert store.open_detail_batch("hub:model") == (2, None)
    # a later batch at a new sha is the one that counts
    store.mark_details("hub:model", 2, "claim", sid, [_claim("a", "commits", "s2")])
    store.mark_details("hub:model", 2, "done", sid, [_claim("a", "commits", "s2")])
    got = store.detailed("hub:model").sort("detail")
    assert got.rows() == [("a", "cards", "s1"), ("a", "commits", "s2")]


def test_coverage_keeps_the_newest_measure(tmp_path: Path) -> None:
    store, sid = _store(tmp_path)
    assert store.detail_coverage().height == 0
    row = {"detail": "commits", "scope": "all", "covered": 1, "total": 4}
    store.record_detail_coverage("hub:model", sid, [row])
    store.record_detail_coverage("hub:model", sid, [{**row, "covered": 3}])
    store.record_detail_coverage(
        "hub:model", sid, [{**row, "scope": "top1_downloads", "total": 0, "covered": 0}]
    )
    cov = store.detail_coverage("hub:model")
    assert cov.select("scope", "covered", "ratio").rows() == [
        ("all", 3, 0.75),
        ("top1_downloads", 0, 1.0),  # nothing listed: nothing missing
    ]
    assert "ops/detail_coverage" in store.table_names()


def test_bad_input_gets_a_precise_error(tmp_path: Path) -> None:
    store, sid = _store(tmp_path)
    with pytest.raises(ValueError, match="detail kind 'readme' unknown"):
        store.mark_details("hub:model", 1, "claim", sid, [_claim("a", "readme", "s1")])
    with pytest.raises(ValueError, match="backlog entry 'started' unknown"):
        store.mark_details("hub:model", 1, "started", sid, [])
    with pytest.raises(ValueError, match="start at 1, not 0"):
        store.mark_details("hub:model", 0, "claim", sid, [])
    with pytest.raises(ValueError, match=r"covered must be in 0\.\.total"):
        store.record_detail_coverage(
            "hub:model", sid, [{"detail": "cards", "scope": "all", "covered": 5, "total": 4}]
        )
    w = store.begin_snapshot("hub:model", as_of=datetime(2026, 1, 2, tzinfo=UTC))
    with pytest.raises(
        ValueError, match="complete snapshots only; hub:model snapshot 2 is running"
    ):
        store.append_details("hub:model", w.snapshot_id, "cards", 1, [])


def test_commits_lists_a_commit_seen_twice_once_at_its_first_snapshot(tmp_path: Path) -> None:
    store, first = _store(tmp_path)
    w = store.begin_snapshot("hub:model", as_of=datetime(2026, 1, 2, tzinfo=UTC))
    w.write_batch(0, [{"entity_id": "a", "name": "o/a", "sha": "s2"}])
    w.finish("complete")
    second = w.snapshot_id

    def commit(eid: str, cid: str, title: str) -> dict[str, object]:
        return {"entity_id": eid, "commit_id": cid, "title": title, "authors": ["x"]}

    assert store.append_details("hub:model", first, "commits", 1, [commit("a", "c1", "one")])
    # c1 read again at the next snapshot, and a copy of the repo sharing c1's history
    again = [commit("b", "c1", "copy"), commit("a", "c1", "one"), commit("a", "c2", "two")]
    assert store.append_details("hub:model", second, "commits", 2, again)
    got = store.commits("model").collect().select("entity_id", "commit_id", "snapshot_id")
    assert got.rows() == [("a", "c1", first), ("b", "c1", second), ("a", "c2", second)]
