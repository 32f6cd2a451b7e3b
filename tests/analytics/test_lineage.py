"""Lineage over time (issue 18 point 6): the hand-made world of lineage_world.py, answered
by hand; the SQL views and macros give the Python API's answers, there and on a random world.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from analytics.lineage import RELATIONS, LineageError, edges_at, family_series, tree_at
from storage import AmbiguousName, EntityNotFound, Store, sql
from tests.analytics.lineage_world import lineage_world
from tests.analytics.test_cli import run
from tests.analytics.world import day, hub, snapshot


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Store:
    return lineage_world(Store.open(str(tmp_path_factory.mktemp("lineage") / "store")))


def _edges(store: Store, sid: int) -> set[tuple[Any, ...]]:
    df = edges_at(store, sid)
    assert (df["snapshot_id"] == sid).all()
    return set(df.select("child_id", "declared", "base_id", "base_name", "base_status").rows())


def test_edges_by_hand(store: Store) -> None:
    """Added, removed, renamed, taken-over, deleted and missing bases, per snapshot; a
    model naming itself (u/self) is not its own base."""
    x = ("x", "google/outside", None, "google/outside", "missing")
    f1 = ("f1", "org/base", "b", "org/base", "live")
    a1 = ("a1", "org/base", "b", "org/base", "live")
    s = ("s", "org/base", "b", "org/base", "live")
    q1 = ("q1", "u/ft1", "f1", "u/ft1", "live")
    cycle = {("c1", "c/two", "c2", "c/two", "live"), ("c2", "c/one", "c1", "c/one", "live")}
    one = {f1, x}
    assert _edges(store, 1) == one
    two = one | {a1, q1, s} | cycle
    assert _edges(store, 2) == two
    # b renamed org/base-v2: models still naming org/base reach it by its _id
    f1_r = ("f1", "org/base", "b", "org/base-v2", "renamed")
    s_r = ("s", "org/base", "b", "org/base-v2", "renamed")
    a1_v2 = ("a1", "org/base-v2", "b", "org/base-v2", "live")
    m_ft1 = ("m", "u/ft1", "f1", "u/ft1", "live")
    m_ad1 = ("m", "u/ad1", "a1", "u/ad1", "live")
    three = (two - {f1, a1, s}) | {f1_r, s_r, a1_v2, m_ft1, m_ad1}
    assert _edges(store, 3) == three
    # f1 deleted (its edge goes, the edges to it say so), x's base removed, a new model nb
    # took the name org/base (s, still naming it, follows the name)
    q1_d = ("q1", "u/ft1", "f1", "u/ft1", "deleted")
    m_d = ("m", "u/ft1", "f1", "u/ft1", "deleted")
    s_nb = ("s", "org/base", "nb", "org/base", "live")
    k = ("k", "org/base", "nb", "org/base", "live")
    assert _edges(store, 4) == (three - {f1_r, x, q1, m_ft1, s_r}) | {q1_d, m_d, s_nb, k}
    rel = edges_at(store, "2026-01-04").filter(pl.col("child_id") == "q1")["relation"]
    assert rel.to_list() == ["quantized"]


def _tree(store: Store, model: str, at: Any, depth: int | None = None) -> list[tuple[Any, ...]]:
    df = tree_at(store, model, at, depth=depth)
    return df.select("depth", "entity_id", "status", "via_id", "declared", "repeat").rows()


def test_tree_by_hand(store: Store) -> None:
    # breadth first, children in name order: m is reached first through u/ad1, the edge
    # from u/ft1 is its second base (shared, not expanded again)
    assert _tree(store, "b", 3) == [
        (0, "b", "live", None, None, None),
        (1, "a1", "live", "b", "org/base-v2", None),
        (1, "f1", "live", "b", "org/base", None),
        (1, "s", "live", "b", "org/base", None),
        (2, "m", "live", "a1", "u/ad1", None),
        (2, "m", "live", "f1", "u/ft1", "shared"),
        (2, "q1", "live", "f1", "u/ft1", None),
    ]
    assert _tree(store, "org/base-v2", 3, depth=1) == _tree(store, "b", 3)[:4]
    # the name the model had then, found by its current name (keyed by _id)
    first = tree_at(store, "org/base-v2", 1)
    assert first.select("depth", "name").rows() == [(0, "org/base"), (1, "u/ft1")]
    # a cycle both ways, each shown once and not followed again
    assert _tree(store, "c/one", 2) == [
        (0, "c1", "live", None, None, None),
        (-1, "c2", "live", "c1", "c/two", None),
        (1, "c2", "live", "c1", "c/one", None),
        (-2, "c1", "live", "c2", "c/one", "cycle"),
        (2, "c1", "live", "c2", "c/two", "cycle"),
    ]
    # bases of a merge: one deleted by then (still named, by id), and theirs
    assert _tree(store, "u/merge", 4) == [
        (0, "m", "live", None, None, None),
        (-1, "a1", "live", "m", "u/ad1", None),
        (-1, "f1", "deleted", "m", "u/ft1", None),
        (-2, "b", "live", "a1", "org/base-v2", None),
    ]
    merge = tree_at(store, "m", 4)
    assert merge["relation"].to_list() == [None, "merge", "merge", "adapter"]
    assert merge["downloads"].to_list() == [10, 7, None, 400]
    assert _tree(store, "m", 4, depth=0) == _tree(store, "m", 4)[:1]
    # a base outside the store: shown as missing, as an ancestor and as a root
    assert _tree(store, "x", 1) == [
        (0, "x", "live", None, None, None),
        (-1, None, "missing", "x", "google/outside", None),
    ]
    outside = tree_at(store, "google/outside", 2)
    assert outside.select("depth", "entity_id", "name", "status").rows() == [
        (0, None, "google/outside", "missing"),
        (1, "x", "u/ext", "live"),
    ]
    # the model that took the name org/base has its own family
    assert _tree(store, "nb", 4) == [
        (0, "nb", "live", None, None, None),
        (1, "k", "live", "nb", "org/base", None),
        (1, "s", "live", "nb", "org/base", None),
    ]


def test_family_series_by_hand(store: Store) -> None:
    cols = ["snapshot_id", "root_name", "root_live", "direct", "descendants"]
    dl = ["root_downloads", "descendant_downloads", "family_downloads"]
    b = family_series(store, "org/base-v2")
    assert b["root_id"].unique().to_list() == ["b"]
    assert b.select(cols).rows() == [
        (1, "org/base", True, 1, 1),  # f1
        (2, "org/base", True, 3, 4),  # f1, a1, s; q1
        (3, "org/base-v2", True, 3, 5),  # + m (reached twice, counted once)
        (4, "org/base-v2", True, 1, 2),  # a1, m: f1 deleted (q1 cut off), s moved to nb
    ]
    assert b.select(dl).rows() == [
        (100, 10, 110),
        (200, 20 + 5 + 4 + 3, 232),
        (300, 30 + 6 + 4 + 4 + 9, 353),
        (400, 7 + 10, 417),
    ]
    rel = ["n_finetune", "n_adapter", "n_quantized", "n_merge"]
    assert b.select(rel).rows() == [(1, 0, 0, 0), (2, 1, 1, 0), (2, 1, 1, 1), (0, 1, 0, 1)]
    nb = family_series(store, "nb")
    assert nb.select(cols + dl).rows() == [
        (1, None, False, 0, 0, None, 0, 0),
        (2, None, False, 0, 0, None, 0, 0),
        (3, None, False, 0, 0, None, 0, 0),
        (4, "org/base", True, 2, 2, 50, 5, 55),
    ]
    out = family_series(store, "google/outside")
    assert out["root_id"].to_list() == [None] * 4
    assert out.select("descendants", "descendant_downloads").rows() == [
        (1, 1),
        (1, 2),
        (1, 3),
        (0, 0),
    ]
    cyc = family_series(store, "c1")
    assert cyc["descendants"].to_list() == [0, 1, 1, 1]  # c2; the way back is not counted


def test_bad_questions(store: Store) -> None:
    with pytest.raises(AmbiguousName, match="org/base"):
        tree_at(store, "org/base", 4)  # b had it, nb has it: ask by id
    with pytest.raises(EntityNotFound, match="no model declares it"):
        tree_at(store, "nobody/none")
    with pytest.raises(EntityNotFound, match="no model declares it"):
        family_series(store, "nobody/none")
    with pytest.raises(EntityNotFound, match="snapshot 4"):
        tree_at(store, "google/outside", 4)  # x dropped its base
    with pytest.raises(LineageError, match="not in the store yet at snapshot 1"):
        tree_at(store, "nb", 1)
    with pytest.raises(LineageError, match="depth -1"):
        tree_at(store, "b", depth=-1)


def _sql(con: Any, query: str) -> pl.DataFrame:
    df = pl.from_arrow(con.sql(query).to_arrow_table())
    assert isinstance(df, pl.DataFrame)
    return df


def _check_sql_equals_python(store: Store, models: list[str]) -> int:
    """Every snapshot's edges; the tree nodes of each model at the middle and the newest
    snapshot; each model's family series: SQL == Python. Returns the tree rows compared."""
    con = store.sql()
    ids = store.snapshots("hub:model")["snapshot_id"].to_list()
    for sid in ids:
        want = edges_at(store, sid).sort("child_id", "declared")
        got = _sql(con, f"FROM lineage_asof('{sid}')").drop("as_of")
        assert_frame_equal(got.sort("child_id", "declared"), want, check_dtypes=False)
    checked = 0
    for sid in (ids[len(ids) // 2], ids[-1]):
        for model in models:
            try:
                py = tree_at(store, model, sid)
            except (LineageError, EntityNotFound):
                continue
            nodes = py.filter(pl.col("repeat").is_null()).select(
                "depth", "entity_id", "name", "status", "downloads"
            )
            sql = _sql(con, f"FROM lineage_tree('{model}', '{sid}')")
            key = ["depth", "entity_id", "name"]
            assert_frame_equal(sql.sort(key), nodes.sort(key), check_dtypes=False)
            checked += py.height
    for model in models:
        want = family_series(store, model)
        got = _sql(con, f"FROM lineage_family('{model}')")
        assert_frame_equal(got, want, check_dtypes=False)
    return checked


def test_sql_equals_python_on_the_hand_made_world(store: Store) -> None:
    assert sql.RELATIONS == RELATIONS  # storage cannot import analytics: one list, two places
    models = ["b", "nb", "m", "x", "c1", "google/outside"]
    assert _check_sql_equals_python(store, models) > 20
    # edges over every snapshot at once: one view
    n = _sql(
        store.sql(), "SELECT snapshot_id, count(*) AS n FROM lineage_edges GROUP BY ALL ORDER BY 1"
    )
    assert n.rows() == [(1, 2), (2, 7), (3, 9), (4, 8)]


def test_history_view_keeps_a_cleared_base(store: Store) -> None:
    """x cleared base_models in snapshot 4: the history row says null, as Store.history."""
    got = _sql(
        store.sql(), "SELECT snapshot_id, base_models FROM hub_model_history WHERE entity_id = 'x'"
    ).sort("snapshot_id")
    assert got.rows()[-1] == (4, None)
    want = store.history("hub:model", "x").collect()
    assert want.filter(pl.col("snapshot_id") == 4)["base_models"].to_list() == [None]


@pytest.mark.slow
def test_sql_equals_python_on_a_random_world(tmp_path: Path) -> None:
    """Renames, deletions, name takeovers, missing bases and cycles drawn at random over 6
    snapshots (keyframes every 3, so reads cross keyframe copies)."""
    rng = random.Random(186)
    st = Store.open(str(tmp_path / "store"), keyframe_every=3)
    alive: dict[str, dict[str, Any]] = {}
    names = [f"o/m{i}" for i in range(30)]
    declared = [*names, "ext/a", "ext/b"]  # two bases no model is named
    for n in range(6):
        for eid in list(alive):
            r = rng.random()
            if r < 0.07:
                del alive[eid]
            elif r < 0.17:
                alive[eid]["name"] = rng.choice(names)  # a rename, maybe onto a freed name
            elif r < 0.35:
                bases = rng.sample(declared, rng.choice([0, 1, 1, 2]))
                alive[eid]["base_models"] = bases or None
                alive[eid]["base_model_relation"] = rng.choice(["finetune", "merge", None])
        for _ in range(rng.randint(2, 5)):
            eid = f"e{rng.randrange(60):02d}"
            bases = rng.sample(declared, rng.choice([0, 1, 2]))
            alive.setdefault(
                eid,
                hub(
                    eid,
                    rng.choice(names),
                    base_models=bases or None,
                    base_model_relation="finetune",
                ),
            )
        for row in alive.values():
            row["downloads"] = rng.randint(0, 100) if rng.random() < 0.9 else None
        snapshot(st, "hub:model", day(n + 1), [dict(r) for r in alive.values()])
    statuses = _sql(st.sql(), "SELECT DISTINCT base_status FROM lineage_edges")
    assert set(statuses["base_status"]) == {"live", "renamed", "deleted", "missing"}
    ever = sorted({r["entity_id"] for r in alive.values()})
    assert _check_sql_equals_python(st, [*ever[:5], "ext/a"]) > 20


def test_lineage_command(store: Store) -> None:
    res = run("--store", store.uri, "lineage", "b", "--snapshot", "3", "--format", "json")
    assert res.returncode == 0, res.stderr
    rows = json.loads(res.stdout)
    assert [(r["depth"], r["name"]) for r in rows][:4] == [
        (0, "org/base-v2"),
        (1, "u/ad1"),
        (1, "u/ft1"),
        (1, "u/self"),
    ]
    same = run("--store", store.uri, "lineage", "b", "--at", "2026-01-04", "-f", "json")
    assert json.loads(same.stdout) == rows
    table = run("--store", store.uri, "lineage", "b", "--snapshot", "3")
    assert table.returncode == 0, table.stderr
    lines = table.stdout.splitlines()
    assert max(map(len, lines)) <= 100
    drawn = [line.split("│")[2].strip() for line in lines if line.startswith("│")]
    # drawn as a tree: each descendant under the model it descends from
    assert drawn == [
        "org/base-v2", "v u/ad1", "v u/merge", "v u/ft1", "v u/merge", "v u/q1", "v u/self"
    ]  # fmt: skip
    up = run("--store", store.uri, "lineage", "u/merge", "--depth", "1")
    assert up.returncode == 0 and "deleted" in up.stdout and "^ u/ad1" in up.stdout
    csv = run("--store", store.uri, "lineage", "org/base-v2", "--series", "--format", "csv")
    lines = csv.stdout.strip().splitlines()
    assert csv.returncode == 0, csv.stderr
    assert lines[0].split(",")[:7] == [
        "snapshot_id", "as_of", "root_id", "root_name", "root_live", "direct", "descendants"
    ]  # fmt: skip
    assert [line.split(",")[6] for line in lines[1:]] == ["1", "4", "5", "2"]
    both = run("--store", store.uri, "lineage", "b", "--at", "2026-01-04", "--snapshot", "3")
    assert both.returncode != 0 and "give one" in both.stderr
    amb = run("--store", store.uri, "lineage", "org/base")
    assert amb.returncode != 0 and "ask for one by its id" in amb.stderr
