"""Observation time (issue 16 point 2): a row may say when its values were observed.

`observed_at` is kept apart from attributes and counters (layout.OBSERVED), so a crawl
that observes the same values again at a new time writes no change rows; as-of reads,
history and the SQL views return it (null where unknown), and `max_staleness` keeps the
rows observed recently enough.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

import polars as pl
import pytest
from deltalake import DeltaTable

from storage import Store
from storage.errors import SchemaViolation
from storage.importing import import_listing
from storage.layout import OBSERVED
from storage.sql import run
from tests.storage.conftest import day, repo, write_snapshot

SRC = "hub:model"


def seen(d: int, page: int) -> Any:
    """The answer time of listing page `page` of day `d`."""
    return day(d) + timedelta(seconds=90 * page)


def observed(store: Store, at: Any = None, **kw: Any) -> dict[str, Any]:
    df = store.as_of(SRC, at, columns=["observed_at"], **kw).collect()
    return dict(zip(df["entity_id"].to_list(), df["observed_at"].to_list(), strict=True))


def snapshot(store: Store, d: int, rows: list[dict[str, Any]], page_rows: int = 2) -> int:
    """One crawl of `rows` on day `d`: each page of `page_rows` rows carries its time."""
    for i, r in enumerate(rows):
        r.setdefault("observed_at", seen(d, i // page_rows))
    return write_snapshot(store, SRC, rows, at=day(d), batch=page_rows)


def test_a_new_observation_of_the_same_values_writes_no_change_rows(store: Store) -> None:
    snapshot(store, 0, [repo(i, downloads=i) for i in range(6)])
    sid = snapshot(store, 1, [repo(i, downloads=i) for i in range(6)])
    info = store.snapshots(SRC).filter(pl.col("snapshot_id") == sid).row(0, named=True)
    assert (info["attribute_rows"], info["counter_rows"], info["upserts"]) == (0, 0, 0)
    assert observed(store) == {f"id{i}": seen(1, i // 2) for i in range(6)}
    assert observed(store, 1) == {f"id{i}": seen(0, i // 2) for i in range(6)}
    # the attribute and counters tables never hold it
    for rel in ("hub/repos", "hub/repo_counters"):
        names = DeltaTable(f"{store.uri}/{rel}").schema().to_arrow().names
        assert "observed_at" not in names, rel
    hist = store.history(SRC, "id3").collect()
    assert hist["snapshot_id"].to_list() == [1]  # a new time alone is no change
    assert hist["observed_at"].to_list() == [seen(0, 1)]


def test_history_shows_when_each_change_was_observed(store: Store) -> None:
    snapshot(store, 0, [repo(1, downloads=5), repo(2, downloads=1)])
    snapshot(store, 1, [repo(1, downloads=5), repo(2, downloads=2)])
    snapshot(store, 2, [repo(1, downloads=7), repo(2, downloads=2)], page_rows=1)
    h = store.history(SRC, "id1").collect()
    assert h.select("snapshot_id", "downloads", "observed_at").rows() == [
        (1, 5, seen(0, 0)),
        (3, 7, seen(2, 0)),
    ]
    h2 = store.history(SRC, "id2").collect()
    assert h2.select("snapshot_id", "downloads", "observed_at").rows() == [
        (1, 1, seen(0, 0)),
        (2, 2, seen(1, 0)),
    ]


def test_rows_without_a_time_read_null_and_a_time_gone_is_unknown(store: Store) -> None:
    write_snapshot(store, SRC, [repo(1), repo(2)], at=day(0))
    assert observed(store) == {"id1": None, "id2": None}
    assert store.as_of(SRC).collect().schema["observed_at"] == pl.Datetime("us", "UTC")
    snapshot(store, 1, [repo(1), repo(2)])
    # id2's next listing has no time: unknown, not the old one
    write_snapshot(store, SRC, [repo(1, observed_at=seen(2, 0)), repo(2)], at=day(2))
    assert observed(store) == {"id1": seen(2, 0), "id2": None}
    assert observed(store, 2) == {"id1": seen(1, 0), "id2": seen(1, 0)}


def test_reads_agree_with_a_model_across_keyframes(tmp_path: Any) -> None:
    """Random listings over many snapshots (keyframes every 3): every as-of read, the
    SQL view and history give each entity the time its snapshot observed."""
    store = Store.open(str(tmp_path / "store"), keyframe_every=3)
    rng = random.Random(16)
    truth: list[dict[str, Any]] = []
    ids = [f"id{i}" for i in range(12)]
    for d in range(10):
        live = [i for i in ids if rng.random() < 0.85]
        rows = []
        for i in live:
            t = rng.choice([None, seen(d, rng.randrange(3)), day(0)])  # day(0): unchanged
            rows.append({"entity_id": i, "name": i, "downloads": rng.randrange(3)})
            rows[-1]["observed_at"] = t
        write_snapshot(store, SRC, rows, at=day(d), batch=3)
        truth.append({r["entity_id"]: r["observed_at"] for r in rows})
    kf = store.snapshots(SRC)["counters_keyframe"].to_list()
    assert sum(kf) >= 3  # the reads cross several keyframes
    odt = DeltaTable(f"{store.uri}/{OBSERVED}")
    okf = [odt.transaction_version(f"{SRC}:{i}:observed") for i in range(1, len(truth) + 1)]
    # observation keyframes of their own (most times new), and snapshots that are none
    assert any(v == 1 and not c for v, c in zip(okf, kf, strict=True)), okf
    assert 0 in okf, okf
    for sid, want in enumerate(truth, start=1):
        assert observed(store, sid) == want, sid
    con = store.sql()
    got = con.execute(f"SELECT entity_id, observed_at FROM asof('{SRC}', '{len(truth)}')")
    assert dict(got.fetchall()) == truth[-1]
    for eid in ids:
        h = store.history(SRC, eid).collect().filter(pl.col("op") == "upsert")
        for sid, at in h.select("snapshot_id", "observed_at").rows():
            assert at == truth[sid - 1][eid]


def test_max_staleness_keeps_the_rows_observed_recently_enough(store: Store) -> None:
    rows = [
        repo(1, observed_at=day(3) - timedelta(hours=1)),
        repo(2, observed_at=day(3) - timedelta(days=2)),  # a registry re-synced long ago
        repo(3, observed_at=day(3) + timedelta(minutes=5)),  # a page after the start
        repo(4),  # unknown: nothing says it is fresh
    ]
    write_snapshot(store, SRC, rows, at=day(3))
    fresh = store.as_of(SRC, max_staleness=timedelta(days=1), columns=["name"]).collect()
    assert fresh.columns == ["entity_id", "name"]
    assert sorted(fresh["entity_id"]) == ["id1", "id3"]
    every = store.as_of(SRC, max_staleness=timedelta(days=3)).collect()
    assert sorted(every["entity_id"]) == ["id1", "id2", "id3"]
    with pytest.raises(ValueError, match="max_staleness"):
        store.as_of(SRC, max_staleness=timedelta(hours=-1))


def test_a_top_listing_carries_the_times_of_the_entities_it_did_not_name(store: Store) -> None:
    snapshot(store, 0, [repo(i, downloads=10 - i) for i in range(4)])
    w = store.begin_snapshot(SRC, as_of=day(1), coverage="top", top_by="downloads")
    w.write_batch(0, [repo(0, downloads=10, observed_at=seen(1, 0))])
    w.finish("complete")
    # the next full listing finds the carried times unchanged: only id0's is new
    sid = snapshot(
        store, 2, [repo(i, downloads=10 - i, observed_at=seen(0, i // 2)) for i in range(4)]
    )
    assert observed(store, 2) == {"id0": seen(1, 0)}
    assert observed(store, sid) == {f"id{i}": seen(0, i // 2) for i in range(4)}
    odt = store.sql().execute("SELECT valid_from, count(*) FROM _t_observed_times GROUP BY 1")
    assert dict(odt.fetchall()) == {1: 4, 2: 1, 3: 1}


def test_custom_source_observed_at_is_no_attribute(store: Store) -> None:
    src = "custom:papers"
    write_snapshot(store, src, [{"entity_id": "a", "n": 1, "observed_at": day(0)}], at=day(0))
    sid = write_snapshot(store, src, [{"entity_id": "a", "n": 1, "observed_at": day(1)}], at=day(1))
    assert store.snapshot_info(src, sid).upserts == 0
    assert store.as_of(src).collect().rows() == [("a", 1, day(1))]
    assert store.columns(src) == ["entity_id", "n", "observed_at"]
    assert OBSERVED in store.table_names()
    assert run(store, "SELECT observed_at FROM custom_papers").column(0).to_pylist() == [day(1)]


@pytest.mark.parametrize("source", ["hub:model", "custom:dump"])
def test_an_import_takes_an_optional_observed_at_column(
    store: Store, tmp_path: Any, source: str
) -> None:
    f = tmp_path / "listing.csv"
    f.write_text(
        "entity_id,name,observed_at\n"
        "a,org/a,2026-01-01T10:00:00Z\n"
        "b,org/b,2025-12-20T08:30:00+01:00\n"
        "c,org/c,\n"
    )
    import_listing(store, source, f, at=day(1))
    got = dict(store.as_of(source, columns=["observed_at"]).collect().rows())
    assert got == {
        "a": day(0) + timedelta(hours=10),
        "b": datetime(2025, 12, 20, 7, 30, tzinfo=UTC),
        "c": None,
    }
    # the same values seen later: a snapshot with no change rows
    f.write_text("entity_id,name,observed_at\na,org/a,2026-01-02T10:00:00Z\nb,org/b,\nc,org/c,\n")
    info = import_listing(store, source, f, at=day(2))
    assert info.upserts == 0
    bad = tmp_path / "bad.csv"
    bad.write_text("entity_id,name,observed_at\nd,org/d,yesterday\n")
    with pytest.raises(SchemaViolation, match=r"column 'observed_at', row 1: 'yesterday'"):
        import_listing(store, source, bad, at=day(3))
