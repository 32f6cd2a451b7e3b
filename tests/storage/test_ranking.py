"""The one top-K rule (storage.ranking): `ranked` and the writer's `top_keys` agree."""

from __future__ import annotations

import random

import polars as pl
import pytest

from storage.layout import KEY
from storage.ranking import ranked, top_keys


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
