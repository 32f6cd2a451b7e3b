"""The one top-K rule (storage.ranking): `ranked` and the writer's `top_keys` agree."""

from __future__ import annotations

import random

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from storage.layout import KEY
from storage.ranking import ranked, ranks_of, top_keys


def _rows(seed: int, n: int) -> pl.DataFrame:
    rng = random.Random(seed)
    # few distinct values: many ties at the boundary; some nulls, which never rank
    values = [None if rng.random() < 0.1 else rng.randint(0, 9) for _ in range(n)]
    ids = rng.sample(range(10 * n), n)
    return pl.DataFrame(
        {KEY: list(range(n)), "entity_id": [f"e{i:05d}" for i in ids], "v": values},
        schema={KEY: pl.Int64, "entity_id": pl.String, "v": pl.Int64},
    )


@pytest.mark.parametrize(("seed", "k"), [(1, 1), (2, 7), (3, 50), (4, 199), (5, 500)])
def test_ranked_and_top_keys_keep_the_same_rows(seed: int, k: int) -> None:
    rows = _rows(seed, 200)
    top = ranked(rows, "v", k)
    keys = rows.filter(pl.col("entity_id").is_in(top["entity_id"].to_list()))[KEY].sort()
    assert keys.to_list() == top_keys(rows, "v", k).to_list()
    assert top.height == min(k, rows["v"].drop_nulls().len())


def test_ranked_order_is_value_desc_then_entity_id_asc() -> None:
    rows = pl.DataFrame({"entity_id": ["b", "a", "c", "d"], "v": [1, 1, None, 2]})
    top = ranked(rows, "v", 10)
    assert top["entity_id"].to_list() == ["d", "a", "b"]
    assert top["rank"].to_list() == [1, 2, 3]
    assert top["name"].null_count() == 3  # no name column: the label is null, the id stays


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_ranks_of_gives_each_entity_its_rank_in_the_whole_ranking(seed: int) -> None:
    rows = _rows(seed, 300)
    every = ranked(rows, "v", rows.height)
    rng = random.Random(seed)
    follow = [*rng.sample(rows["entity_id"].to_list(), 12), "not-there"]
    got = ranks_of(rows, "v", follow)
    want = every.filter(pl.col("entity_id").is_in(follow))
    assert got.to_dicts() == want.to_dicts()
    assert got.height == rows.filter(pl.col("entity_id").is_in(follow))["v"].drop_nulls().len()
    # NaN orders above every number when ranked: the same rule, by the sorting route
    nan = rows.with_columns(v=pl.when(pl.col(KEY) == 5).then(float("nan")).otherwise(pl.col("v")))
    also = [*nan.filter(pl.col(KEY) == 5)["entity_id"].to_list(), *follow]
    assert_frame_equal(
        ranks_of(nan, "v", also),
        ranked(nan, "v", nan.height).filter(pl.col("entity_id").is_in(also)),
    )
