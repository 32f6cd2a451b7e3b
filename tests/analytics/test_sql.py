"""`hubtide sql` / storage.sql: SQL answers checked against the Polars API on one store."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import duckdb
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from storage import Store
from storage.sql import SqlRefused, connect, run
from tests.analytics.world import day, hub, pkg, snapshot

N_SNAPSHOTS = 6


def _models(rng: random.Random, alive: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """Evolve the live set: some deleted, some created, some renamed, counters move."""
    for eid in list(alive):
        r = rng.random()
        if r < 0.08:
            del alive[eid]
        elif r < 0.15:
            alive[eid]["name"] = alive[eid]["name"] + "-v2"
    for _ in range(rng.randint(3, 8)):
        eid = f"m{rng.randrange(10_000):05d}"
        alive.setdefault(eid, hub(eid, downloads=0, likes=0))
    for row in alive.values():
        if rng.random() < 0.6:
            row["downloads"] = (row["downloads"] or 0) + rng.randint(0, 500)
        if rng.random() < 0.3:
            row["likes"] = (row["likes"] or 0) + rng.randint(0, 5)
    return [dict(r) for r in alive.values()]


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Store:
    root: Path = tmp_path_factory.mktemp("sql")
    # keyframes every 3 snapshots, so the SQL reads cross keyframe copies (op = keep)
    st = Store.open(str(root / "store"), keyframe_every=3, topk_n=20)
    rng = random.Random(18)
    alive = {f"m{i:05d}": hub(f"m{i:05d}", downloads=i * 10, likes=i) for i in range(40)}
    pkgs = {f"p{i}": pkg(f"p{i}", downloads=i * 7) for i in range(15)}
    for n in range(N_SNAPSHOTS):
        snapshot(st, "hub:model", day(7 * (n + 1)), _models(rng, alive))
        for p in pkgs.values():
            p["downloads"] += rng.randint(0, 30)
        if n == 2:
            pkgs.pop("p3")
        snapshot(st, "npm", day(7 * (n + 1) + 0.5), [dict(p) for p in pkgs.values()])
        custom = [
            {"entity_id": f"c{i}", "rank": i, "score": float(rng.randint(0, 100))}
            for i in range(n + 3)
        ]
        snapshot(st, "custom:toplist", day(30 * (n + 1)), custom)
    return st


def _sorted(df: pl.DataFrame) -> pl.DataFrame:
    return df.sort("entity_id")


@pytest.mark.parametrize("source", ["hub:model", "npm", "custom:toplist"])
def test_asof_macro_equals_store_as_of_at_every_snapshot(store: Store, source: str) -> None:
    con = connect(store)
    ids = store.snapshots(source)["snapshot_id"].to_list()
    assert len(ids) == N_SNAPSHOTS
    for sid in ids:
        want = store.as_of(source, sid).collect()
        got = pl.from_arrow(con.sql(f"FROM asof('{source}', '{sid}')").to_arrow_table())
        assert isinstance(got, pl.DataFrame)
        assert got.columns == want.columns
        assert got.height == want.height > 0
        assert_frame_equal(_sorted(got), _sorted(want), check_dtypes=False)


def test_dates_follow_the_store_rule(store: Store) -> None:
    con = connect(store)
    for at in ["2026-01-15", day(14).date().isoformat(), day(21).isoformat()]:
        try:
            want = store.as_of("hub:model", at).collect()
        except Exception:
            with pytest.raises(duckdb.Error):
                con.execute(f"FROM asof('hub:model', '{at}')").fetchall()
            continue
        got = con.execute(f"SELECT count(*) FROM asof('hub:model', '{at}')").fetchone()
        assert got is not None and got[0] == want.height


def test_newest_view_and_alias(store: Store) -> None:
    con = connect(store)
    want = store.as_of("hub:model").collect()
    for name in ['"hub:model"', "hub_model"]:
        got = pl.from_arrow(con.sql(f"FROM {name}").to_arrow_table())
        assert isinstance(got, pl.DataFrame)
        assert_frame_equal(_sorted(got), _sorted(want), check_dtypes=False)


def test_sql_aggregate_equals_polars(store: Store) -> None:
    """A researcher's query: the top 5 by downloads, as `Store.top_k` ranks them."""
    got = run(
        store,
        "SELECT entity_id, downloads FROM hub_model ORDER BY downloads DESC, entity_id LIMIT 5",
    ).to_pylist()
    want = store.top_k("hub:model", None, "downloads", 5).collect()
    assert [r["entity_id"] for r in got] == want["entity_id"].to_list()
    assert [r["downloads"] for r in got] == want["value"].to_list()


def test_history_view_matches_store_history(store: Store) -> None:
    """Each attribute change (upsert/delete) of an entity is a history row of the store."""
    con = connect(store)
    rows = pl.from_arrow(
        con.sql(
            "SELECT entity_id, snapshot_id, op, name, downloads FROM hub_model_history "
            "WHERE op IN ('upsert', 'delete')"
        ).to_arrow_table()
    )
    assert isinstance(rows, pl.DataFrame)
    assert rows.height > 0
    for eid in rows["entity_id"].unique().sort().to_list()[:15]:
        hist = store.history("hub:model", eid).collect()
        mine = rows.filter(pl.col("entity_id") == eid).sort("snapshot_id")
        for r in mine.iter_rows(named=True):
            match = hist.filter(pl.col("snapshot_id") == r["snapshot_id"])
            assert match.height == 1, (eid, r)
            assert match["op"][0] == r["op"]
            if r["op"] == "upsert":
                assert match["name"][0] == r["name"]
                assert match["downloads"][0] == r["downloads"]


def test_derived_topk_and_snapshots(store: Store) -> None:
    con = connect(store)
    n = con.execute("SELECT count(*) FROM snapshots WHERE status = 'complete'").fetchone()
    assert n is not None and n[0] == store.snapshots().height
    members = con.execute(
        "SELECT count(DISTINCT snapshot_id) FROM derived_topk WHERE source = 'hub:model'"
    ).fetchone()
    assert members is not None and members[0] == N_SNAPSHOTS


@pytest.mark.parametrize(
    "query",
    [
        "CREATE TABLE x AS SELECT 1",
        "COPY (SELECT 1) TO 'out.csv'",
        "SELECT 1; DROP VIEW hub_model",
        "INSERT INTO snapshots SELECT * FROM snapshots",
    ],
)
def test_writes_are_refused(store: Store, query: str) -> None:
    with pytest.raises(SqlRefused):
        run(store, query)


def test_connection_cannot_reach_files(store: Store, tmp_path: Path) -> None:
    con = connect(store)
    out = tmp_path / "out.csv"
    with pytest.raises(duckdb.Error):
        con.execute(f"COPY (SELECT 1) TO '{out}'")
    assert not out.exists()
    with pytest.raises(duckdb.Error):
        con.execute("SET enable_external_access = true")


def test_cli_sql_formats_out_and_refusal(store: Store, tmp_path: Path) -> None:
    import csv
    import io
    import json

    from tests.analytics.test_cli import run as cli

    q = "SELECT entity_id, downloads FROM asof('npm', '2') ORDER BY entity_id"
    want = store.as_of("npm", 2, columns=["downloads"]).collect().sort("entity_id")
    res = cli("--store", store.uri, "sql", q, "--format", "json")
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout) == want.to_dicts()
    res = cli("--store", store.uri, "sql", q, "--format", "csv")
    assert res.returncode == 0, res.stderr
    rows = list(csv.DictReader(io.StringIO(res.stdout)))
    assert [r["entity_id"] for r in rows] == want["entity_id"].to_list()
    out = tmp_path / "rows.parquet"
    res = cli("--store", store.uri, "sql", q, "--out", str(out))
    assert res.returncode == 0, res.stderr
    assert_frame_equal(pl.read_parquet(out), want, check_dtypes=False)
    res = cli("--store", store.uri, "sql", "DROP VIEW hub_model")
    assert res.returncode == 1
    assert "only queries" in res.stderr and "Traceback" not in res.stderr


def test_store_sql_is_the_same_connection_route(store: Store) -> None:
    n = store.sql().execute('SELECT count(*) FROM "npm"').fetchone()
    assert n is not None
    assert n[0] == store.as_of("npm", store.snapshots("npm")["snapshot_id"].max()).collect().height
