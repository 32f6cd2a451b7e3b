"""The fast routes of identity matching and people counts against the plain ones (the
hub-scale rewrite of issue 18 must give the very same rows)."""

from __future__ import annotations

import random

import polars as pl

from analytics import activity, people
from analytics.activity import People
from analytics.data import Data
from storage import Store


def _names(rng: random.Random) -> list[str]:
    base = ["alice", "alicee", "Alice Smith", "bob", "bobby", "Bob Jones", "carol", "dave", "eve"]
    return base + [f"user{rng.randrange(40)}" for _ in range(30)] + ["user1 x", "useR1"]


def test_similar_in_gives_the_rows_of_repo_pairs_and_similar_pairs(tmp_path) -> None:
    rng = random.Random(5)
    names = _names(rng)
    rows = [(f"r{rng.randrange(60)}", rng.choice(names)) for _ in range(400)]
    rows += [("solo", "alice"), ("r1", None)]
    frame = pl.DataFrame(rows, schema={"repo": pl.String, "author": pl.String}, orient="row")
    pairs = people.repo_pairs(frame)
    plain = pairs.join(people.similar_pairs(pairs, 0.9), on=["author", "other"])
    fast = activity.similar_in(Data(Store.open(str(tmp_path / "s"))), frame)
    assert fast.columns == ["repo", "author", "other", "similarity", "rule"]
    assert fast.height > 5  # the names above do merge in some repos
    assert sorted(fast.rows()) == sorted(plain.select(fast.columns).rows())
    again = activity.similar_in(
        Data(Store.open(str(tmp_path / "s"))), frame.unique(), distinct=True
    )
    assert sorted(again.rows()) == sorted(fast.rows())


def test_similar_in_by_slices_of_repos_gives_the_same_rows(tmp_path, monkeypatch) -> None:
    rng = random.Random(8)
    names = _names(rng)
    rows = [(f"r{rng.randrange(90)}", rng.choice(names)) for _ in range(600)]
    frame = pl.DataFrame(rows, schema={"repo": pl.String, "author": pl.String}, orient="row")
    whole = activity.similar_in(Data(Store.open(str(tmp_path / "s"))), frame)
    monkeypatch.setattr(activity, "SIMILAR_SLICE_ROWS", 60)  # ~7 slices of the 400-odd rows
    sliced = activity.similar_in(Data(Store.open(str(tmp_path / "s"))), frame)
    assert whole.height > 10
    assert sliced.equals(whole)  # sorted by repo, author, other either way


def test_similar_in_without_any_match_is_empty_with_its_columns(tmp_path) -> None:
    frame = pl.DataFrame({"repo": ["a", "a"], "author": ["xavier", "bob"]})
    out = activity.similar_in(Data(Store.open(str(tmp_path / "s"))), frame)
    assert out.is_empty() and out.columns == ["repo", "author", "other", "similarity", "rule"]


def _people(
    contrib: list[tuple], starters: list[tuple], commits: list, discussions: list
) -> People:
    return People(
        pl.DataFrame(contrib, schema=["repo", "author", "commits"], orient="row"),
        pl.DataFrame(starters, schema=["repo", "author", "discussions"], orient="row"),
        pl.DataFrame(),
        True,
        True,
        pl.DataFrame(commits, schema={"repo": pl.String, "n_commits": pl.Int64}, orient="row"),
        pl.DataFrame(
            discussions, schema={"repo": pl.String, "n_discussions": pl.Int64}, orient="row"
        ),
    )


def test_people_counts_by_hand() -> None:
    pp = _people(
        [("a", "u1", 3), ("a", "u2", 1), ("b", "u1", 2)],
        [("a", "u2", 1), ("a", "u3", 2), ("c", "u4", 1)],
        [("a", 4), ("b", 2), ("d", 1)],
        [("a", 3), ("c", 1)],
    )
    got = {r["repo"]: r for r in activity.people_counts(pp).iter_rows(named=True)}
    assert set(got) == {"a", "b", "c", "d"}
    # a: committers u1, u2; starters u2, u3; community u1, u2, u3
    assert [got["a"][c] for c in ("n_commits", "n_committers", "n_discussions")] == [4, 2, 3]
    assert [got["a"][c] for c in ("n_disc_starters", "n_community")] == [2, 3]
    # b has no discussion, c no commit, d only a commit count (null where there is no row)
    assert (got["b"]["n_disc_starters"], got["b"]["n_discussions"], got["b"]["n_community"]) == (
        None,
        None,
        1,
    )
    assert (got["c"]["n_committers"], got["c"]["n_commits"], got["c"]["n_community"]) == (
        None,
        None,
        1,
    )
    assert [got["d"][c] for c in ("n_commits", "n_committers", "n_community")] == [1, None, None]
    df = activity.with_people(pl.DataFrame({"entity_id": ["d", "a", "zz"], "x": [1, 2, 3]}), pp)
    assert df["entity_id"].to_list() == ["d", "a", "zz"]
    assert df["n_community"].to_list() == [0, 3, 0] and df["x"].to_list() == [1, 2, 3]


def test_correlate_with_kept_ranks_is_scipy_to_the_last_bit() -> None:
    import numpy as np
    from scipy import stats as sps

    from analytics import stats

    rng = np.random.default_rng(3)
    a = rng.integers(0, 6, 500).astype(float)  # many ties
    b = a * 2 + rng.integers(0, 3, 500)
    c = rng.random(500)
    c[rng.random(500) < 0.2] = np.nan
    cache: dict = {}
    rank = {k: stats.ranks(cache, k, x) for k, x in {"a": a, "b": b, "c": c}.items()}
    for x, y, kx, ky in ((a, b, "a", "b"), (a, c, "a", "c"), (b, c, "b", "c")):
        got = stats.correlate(x, y, rank[kx], rank[ky])
        ok = ~(np.isnan(x) | np.isnan(y))
        want = sps.spearmanr(x[ok], y[ok])
        assert got.spearman == float(want.statistic) and got.spearman_p == float(want.pvalue)
        assert got == stats.correlate(x, y)
    assert len(cache) == 5  # a, b whole; a, b, c under the mask of c


def test_subfield_repos_are_the_rows_of_subfield_expr() -> None:
    from analytics import network, subfields

    df = pl.DataFrame(
        {
            "entity_id": ["a", "b", "c", "d", "e", "f"],
            "pipeline_tag": ["text-generation", None, "image-classification", None, None, "x"],
            "tags": [
                ["en"],
                ["task_categories:object-detection", "text-to-image"],
                None,
                [],
                ["task_ids:translation", None],
                ["image-classification-x"],
            ],
        }
    )
    got = {name: sorted(r["repo"].to_list()) for name, r in network._subfield_repos(df)}
    want = {
        name: sorted(df.filter(subfields.subfield_expr(name))["entity_id"].to_list())
        for name in subfields.SUBFIELDS
    }
    assert got == want
    assert want == {"nlp": ["a", "e"], "cv": ["b", "c"], "multimodal": ["b"]}
