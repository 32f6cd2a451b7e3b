"""The people-based and network series, the correlation and M4 series: checked on a
four-snapshot world written through the store, by hand and against the single-snapshot
measures (which gather everything from scratch, and use scipy for correlations)."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import networkx as nx
import numpy as np
import polars as pl
import pytest

from analytics import activity, compute_measure, people, people_series
from analytics import stats as ast
from analytics.data import Data
from analytics.params import Params
from storage import Store
from tests.analytics.world import _commit, day, hub, snapshot


def _disc(eid: str, num: int, author: str) -> dict[str, Any]:
    return {
        "repo_type": "model",
        "entity_id": eid,
        "num": num,
        "author": author,
        "is_pull_request": False,
        "status": "open",
    }


def _repos(*ids: str) -> list[dict[str, Any]]:
    meta = {
        "r1": {"license": "apache-2.0", "downloads": 900, "likes": 9},
        "r2": {"license": "mit", "downloads": 50, "likes": 3},
        "r3": {"license": None, "downloads": 10, "likes": 0},
        "r4": {"license": "llama2", "downloads": 300, "likes": 1},
    }
    return [hub(i, f"org/{i}", **meta[i]) for i in ids]


def people_world(store: Store) -> Store:
    """Four daily snapshots; people arrive, merge and leave (the counts are in the tests)."""
    snapshot(
        store,
        "hub:model",
        day(1),
        _repos("r1", "r2", "r3"),
        {
            "commits": [
                _commit("r1", 1, ["alice"], day(0)),
                _commit("r1", 2, ["bob"], day(0)),
                _commit("r2", 3, ["carol"], day(0)),
            ],
            "discussions": [_disc("r1", 1, "zed"), _disc("r2", 1, "alice")],
        },
    )
    snapshot(
        store,
        "hub:model",
        day(2),
        _repos("r1", "r2", "r3", "r4"),
        {
            "commits": [
                _commit("r1", 4, ["Bob Smith"], day(1)),  # real-name rule -> bob
                _commit("r2", 5, ["dave"], day(1)),
                _commit("r2", 6, ["hf-bot"], day(1)),  # a bot's commit: no person
                _commit("r4", 7, ["erin"], day(1)),
            ]
        },
    )
    snapshot(
        store,
        "hub:model",
        day(3),
        _repos("r1", "r3", "r4"),  # r2 deleted
        {
            "commits": [
                _commit("r3", 8, ["frank"], day(2)),
                _commit("r3", 9, ["frank-bot"], day(2)),
            ],
            "discussions": [_disc("r1", 2, "Alice")],  # similar name -> alice
        },
    )
    snapshot(
        store,
        "hub:model",
        day(4),
        _repos("r1", "r3", "r4"),
        {
            "commits": [_commit("r4", 10, ["erin2"], day(3))],  # 0.89 alike: not merged
            "discussions": [_disc("r1", 1, "deleted")],  # zed deleted the account
        },
    )
    return store


@pytest.fixture(scope="module")
def pstore(tmp_path_factory: pytest.TempPathFactory) -> Store:
    return people_world(Store.open(str(tmp_path_factory.mktemp("people") / "store")))


# (n_commits, n_discussions, n_committers, n_disc_starters, n_community) by hand
# (r3 has no stored commit before snapshot 3: its details were not read, so it is missing;
# n_commits counts bots' commits: hf-bot's in r2, frank-bot's in r3)
NONE5 = (None, None, None, None, None)
EXPECTED = {
    1: {"r1": (2, 1, 2, 1, 3), "r2": (1, 1, 1, 1, 2), "r3": NONE5},
    2: {
        "r1": (3, 1, 2, 1, 3),  # Bob Smith is bob
        "r2": (3, 1, 2, 1, 3),  # carol, dave, hf-bot's commit; alice started a discussion
        "r3": NONE5,
        "r4": (1, 0, 1, 0, 1),
    },
    3: {"r1": (3, 2, 2, 2, 3), "r3": (2, 0, 1, 0, 1), "r4": (1, 0, 1, 0, 1)},
    4: {"r1": (3, 2, 2, 1, 2), "r3": (2, 0, 1, 0, 1), "r4": (2, 0, 2, 0, 2)},
}
COLS = ("n_commits", "n_discussions", "n_committers", "n_disc_starters", "n_community")


def test_people_counts_by_hand_at_every_snapshot(pstore: Store) -> None:
    data = Data(pstore)
    for sid, want in EXPECTED.items():
        live = data.state("hub:model", sid, ["name"])
        fast = people_series.counts_at(data, "hub:model", sid, live).counts
        got = {r["entity_id"]: tuple(r[c] for c in COLS) for r in fast.to_dicts()}
        assert got == want, sid
        # the single-snapshot route (everything gathered from scratch) agrees
        full, _ = activity.activity(Data(pstore), "hub:model", sid)
        assert {r["entity_id"]: tuple(r[c] for c in COLS) for r in full.to_dicts()} == want


def test_activity_series_people_variables(pstore: Store) -> None:
    df = compute_measure(pstore, "activity_series", source="hub:model")
    for var, col in (
        ("n_committers", 2),
        ("n_disc_starters", 3),
        ("n_community", 4),
        ("n_commits", 0),
    ):
        s = df.filter(pl.col("variable") == var).sort("snapshot_id")
        assert s["snapshot_id"].to_list() == [1, 2, 3, 4]
        for row in s.to_dicts():
            vals = [v[col] for v in EXPECTED[row["snapshot_id"]].values()]
            x = np.array([v for v in vals if v is not None], dtype=float)  # missing left out
            assert row["repos"] == x.size
            assert row["mean"] == pytest.approx(x.mean()), (var, row["snapshot_id"])
            assert row["share_zero"] == pytest.approx((x == 0).mean())
            g = ast.gini(x)
            assert row["gini"] == (pytest.approx(g) if g is not None else None)


def test_identity_merges_change_over_time(pstore: Store) -> None:
    m1 = compute_measure(pstore, "identity_merges", source="hub:model", at=1)
    assert m1.is_empty()
    m2 = compute_measure(pstore, "identity_merges", source="hub:model", at=2)
    assert m2.select("author", "merged_into", "rule").rows() == [("Bob Smith", "bob", "real-name")]
    m3 = compute_measure(pstore, "identity_merges", source="hub:model", at=3)
    assert set(m3.select("author", "merged_into").rows()) == {
        ("Bob Smith", "bob"),
        ("Alice", "alice"),
    }


def test_kcore_series_matches_single_snapshots_and_networkx(pstore: Store) -> None:
    ks = compute_measure(pstore, "collaboration_kcore_series", source="hub:model")
    assert ks["snapshot_id"].unique().sort().to_list() == [1, 2, 3, 4]
    assert set(ks["sampled"]) == {"4 of 4 snapshots"}
    for sid in (1, 2, 3, 4):
        one = compute_measure(pstore, "collaboration_kcore", source="hub:model", at=sid)
        one = one.filter(pl.col("subfield") == "all").drop("subfield")
        part = ks.filter(pl.col("snapshot_id") == sid).select(one.columns)
        assert part.to_dicts() == one.select(part.columns).to_dicts()
    # snapshot 4 by hand and with networkx: r1 alice-bob, r4 erin-erin2, frank alone
    g = nx.Graph([("alice", "bob"), ("erin", "erin2")])
    row = ks.filter((pl.col("snapshot_id") == 4) & (pl.col("k_label") == "max")).row(0, named=True)
    assert (row["nodes"], row["edges"]) == (g.number_of_nodes(), g.number_of_edges())
    assert row["components"] == nx.number_connected_components(g)
    assert row["developers"] == 5 and row["isolates"] == 1
    # sampling: at most people_series_max snapshots, always with the newest
    two = compute_measure(
        pstore, "collaboration_kcore_series", source="hub:model", params={"people_series_max": 2}
    )
    assert two["snapshot_id"].unique().sort().to_list() == [1, 4]
    assert set(two["sampled"]) == {"2 of 4 snapshots"}


def _same(a: Any, b: Any, key: str = "") -> bool:
    """Equal, floats within rounding; p-values within 1e-6 (at |r| = 1 scipy's r is
    0.9999999999999998 and its p 1e-8, the matrix route's exactly 1 and 0)."""
    if a is None or b is None:
        return a is None and b is None
    if not isinstance(a, float):
        return bool(a == b)
    return bool(a == pytest.approx(b, rel=1e-9, abs=1e-6 if key.endswith("_p") else 1e-12))


def test_correlation_series_matches_scipy_per_snapshot(pstore: Store) -> None:
    cs = compute_measure(pstore, "activity_correlation_series", source="hub:model")
    for sid in (1, 2, 3, 4):
        one = compute_measure(pstore, "activity_correlation", source="hub:model", at=sid)
        part = cs.filter(pl.col("snapshot_id") == sid).drop("snapshot_id", "as_of", "sampled")
        assert part.height == one.height > 0
        for x, y in zip(part.to_dicts(), one.to_dicts(), strict=True):
            assert all(_same(x[k], y[k], k) for k in x), (sid, x, y)


def test_correlation_rows_match_scipy_on_random_data() -> None:
    rng = np.random.default_rng(3)
    n = 400
    base = rng.pareto(1.2, n)
    df = pl.DataFrame(
        {
            "n_likes": (base * 10).astype(np.int64),
            "n_downloads": (base * 100 + rng.integers(0, 50, n)).astype(np.int64),
            "n_commits": rng.integers(0, 4, n),  # many ties
            "n_committers": np.zeros(n, dtype=np.int64),  # constant: undefined
            "license_category": rng.choice(["permissive", "restrictive", "none"], n),
        }
    )
    vs = ["n_likes", "n_downloads", "n_commits", "n_committers"]
    rows = activity.correlation_rows(df, vs)
    assert len(rows) == 4 * 6
    for r in rows:
        part = (
            df
            if r["license_category"] == "all"
            else df.filter(pl.col("license_category") == r["license_category"])
        )
        c = ast.correlate(part[r["var_a"]].to_numpy(), part[r["var_b"]].to_numpy())
        for k in ("pearson", "pearson_p", "spearman", "spearman_p"):
            assert _same(r[k], getattr(c, k), k), (r, c)
    # a missing value takes the pairwise route and still agrees
    with_null = df.with_columns(
        pl.when(pl.int_range(pl.len()) == 0)
        .then(None)
        .otherwise(pl.col("n_likes"))
        .alias("n_likes")
    )
    r = activity.correlation_rows(with_null, ["n_likes", "n_downloads"])[0]
    c = ast.correlate(with_null["n_likes"].to_numpy(), with_null["n_downloads"].to_numpy())
    assert r["n"] == n - 1 and _same(r["spearman"], c.spearman)


def test_documentation_series_matches_m4_per_snapshot(paper_store: Store) -> None:
    ds = compute_measure(paper_store, "documentation_series", source="hub:model")
    assert ds["snapshot_id"].unique().sort().to_list() == [1, 2]
    for sid in (1, 2):
        one = compute_measure(paper_store, "documentation", source="hub:model", at=sid)
        part = ds.filter(pl.col("snapshot_id") == sid).drop("snapshot_id", "as_of")
        for x, y in zip(part.to_dicts(), one.to_dicts(), strict=True):
            assert all(_same(x[k], y[k], k) for k in x), (sid, x, y)
    # snapshot 1 by hand: group_n = min(1000, 7 // 2) = 3; the top 3 by downloads are
    # m1 (card: 5 sections), m2 and m3; their mean score is not the bottom's
    top = ds.filter(
        (pl.col("snapshot_id") == 1)
        & (pl.col("ranking") == "downloads")
        & (pl.col("metric") == "score")
    ).row(0, named=True)
    assert top["n_top"] == 3 and top["n_bottom"] == 3


def test_candidate_prefilter_never_drops_a_match() -> None:
    """The vectorised bound keeps every pair difflib (or the real-name rule) accepts."""
    rnd = random.Random(5)
    alphabet = "abcdeéİ-_. 0123"
    names = set()
    for _ in range(80):
        base = "".join(rnd.choice(alphabet) for _ in range(rnd.randint(1, 12)))
        names.add(base)
        mutated = list(base)
        for _ in range(rnd.randint(0, 2)):
            op = rnd.random()
            pos = rnd.randrange(len(mutated) + 1)
            if op < 0.4:
                mutated.insert(pos, rnd.choice(alphabet))
            elif op < 0.7 and mutated:
                mutated.pop(min(pos, len(mutated) - 1))
            else:
                mutated.insert(pos, " ")
        names.add("".join(mutated))
        names.add(base.title() + " " + "x")
    ordered = sorted(names)
    pairs = pl.DataFrame(
        [(a, b) for i, a in enumerate(ordered) for b in ordered[i + 1 :]],
        schema={"author": pl.String, "other": pl.String},
        orient="row",
    )
    kept = set(people.candidate_pairs(pairs, 0.9).rows())
    accepted = {(a, b) for a, b in pairs.rows() if people._similar(a, b, 0.9)[0]}
    assert accepted and accepted <= kept
    assert len(kept) < pairs.height / 3  # and it does prune


def test_series_params_sampling() -> None:
    with pytest.raises(ValueError, match="people_series_max"):
        Params.from_mapping({"people_series_max": 0})


def test_people_sampling_keeps_cheap_variables_everywhere(pstore: Store) -> None:
    df = compute_measure(
        pstore, "activity_series", source="hub:model", params={"people_series_max": 2}
    )
    snaps = {
        v: df.filter(pl.col("variable") == v)["snapshot_id"].sort().to_list()
        for v in ("n_likes", "n_commits", "n_discussions", "n_committers", "n_community")
    }
    assert snaps["n_likes"] == snaps["n_commits"] == snaps["n_discussions"] == [1, 2, 3, 4]
    assert snaps["n_committers"] == snaps["n_community"] == [1, 4]
    assert set(df["sampled"]) == {"people and correlations: 2 of 4 snapshots"}
    cs = compute_measure(
        pstore, "activity_correlation_series", source="hub:model", params={"people_series_max": 2}
    )
    assert cs["snapshot_id"].unique().sort().to_list() == [1, 4]


def test_cli_people_series_max_and_report_tables(tmp_path: Path) -> None:
    from tests.analytics.test_cli import run

    store = str(tmp_path / "store")
    people_world(Store.open(store))
    res = run(
        "--store", store, "measure", "collaboration_kcore_series", "--source", "hub:model",
        "--people-series-max", "2", "--format", "json",
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    rows = json.loads(res.stdout)
    assert sorted({r["snapshot_id"] for r in rows}) == [1, 4]
    assert {r["sampled"] for r in rows} == {"2 of 4 snapshots"}
    out = tmp_path / "rep"
    res = run("--store", store, "report", "--out", str(out), "--people-series-max", "2")
    assert res.returncode == 0, res.stderr
    page = (out / "index.html").read_text()
    for name in (
        "activity_series",
        "activity_correlation_series",
        "collaboration_kcore_series",
        "documentation_series",
    ):
        assert f"id='hub-model-{name}'" in page
        assert (out / "tables" / f"{name}__hub-model.parquet").exists()
    corr = pl.read_csv(out / "tables" / "activity_correlation_series__hub-model.csv")
    assert sorted(corr["snapshot_id"].unique().to_list()) == [1, 4]
    assert "2 of 4 snapshots" in page  # the sampling is stated on the chart


def test_top_from_cached_state_equals_store_top_k(tmp_path: Path) -> None:
    """Data.top ranks the cached as-of state by the store's rule; check it against
    store.top_k with ties, nulls and k past the end."""
    store = Store.open(str(tmp_path / "store"))
    rng = np.random.default_rng(11)
    for d in (1, 2):
        rows = [
            hub(
                f"e{i:03d}",
                downloads=None if i % 17 == 0 else int(rng.integers(0, 6)),  # many ties
                likes=int(rng.integers(0, 3)),
            )
            for i in range(120 + d * 5)
        ]
        snapshot(store, "hub:model", day(d), rows)
    data = Data(store)
    data.rank_from_states = True
    for sid in (1, 2):
        for by in ("downloads", "likes"):
            for k in (1, 7, 50, 500):
                mine = data.top("hub:model", sid, by, k)
                theirs = store.top_k("hub:model", sid, by, k).collect()
                assert mine.to_dicts() == theirs.select(mine.columns).to_dicts(), (sid, by, k)
