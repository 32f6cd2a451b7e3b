"""The top-K ranking rule, once: by value descending, nulls never ranked, ties broken by
`entity_id` ascending.

Every ranking of hubtide goes through here: `Store.top_k` and `derived/topk` (via
`storage.reads`), the writer's top-k members (`top_keys`), and the analytics' rankings of
cached states and of descendant counts (`analytics.data.Data.top`). A change to the rule
is a change to this module alone.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import polars as pl

from storage.layout import KEY


def ranked(rows: pl.DataFrame | pl.LazyFrame, by: str, k: int) -> pl.DataFrame:
    """rank, entity_id, name, value: the top `k` of `rows` by column `by`.

    `rows` holds `entity_id`, `by` and optionally `name` (null when absent). `value` is
    `by` as Float64; `rank` runs 1..k (Int64) in the rule's order.
    """
    lf = rows.lazy()
    name = pl.col("name") if "name" in lf.collect_schema().names() else pl.lit(None, pl.String)
    return (
        lf.filter(pl.col(by).is_not_null())
        .select(pl.col("entity_id"), name.alias("name"), pl.col(by).cast(pl.Float64).alias("value"))
        # partial selection, then an exact sort of the k winners (ties: entity_id asc)
        .top_k(k, by=["value", "entity_id"], reverse=[False, True])
        .sort(["value", "entity_id"], descending=[True, False])
        .with_row_index("rank", offset=1)
        .select(pl.col("rank").cast(pl.Int64), "entity_id", "name", "value")
        .collect()
    )


def ranks_of(rows: pl.DataFrame, by: str, entity_ids: Sequence[str]) -> pl.DataFrame:
    """rank, entity_id, name, value of those of `entity_ids` that `ranked(rows, by,
    rows.height)` ranks (a null value is never ranked), in rank order, without ranking
    the rest: rank = 1 + the entities of a greater value + those of the same value and a
    smaller `entity_id`. Following 10 entities through a 3.2M-entity snapshot counts
    instead of sorting. `tests/storage/test_ranking.py` checks it against `ranked`."""
    value = pl.col(by).cast(pl.Float64)
    name = pl.col("name") if "name" in rows.columns else pl.lit(None, pl.String)
    vals = rows.select(value.alias("v")).get_column("v").drop_nulls()
    if vals.is_nan().any():  # NaN orders above every number in a sort, not in a comparison
        every = ranked(rows, by, max(rows.height, 1))
        return every.filter(pl.col("entity_id").is_in(list(entity_ids)))
    ordered = np.sort(vals.to_numpy())
    mine = rows.filter(
        pl.col("entity_id").is_in(list(entity_ids)) & pl.col(by).is_not_null()
    ).select("entity_id", name.alias("name"), value.alias("value"))
    ranks = []
    for eid, v in zip(mine["entity_id"].to_list(), mine["value"].to_list(), strict=True):
        greater = ordered.size - int(np.searchsorted(ordered, v, side="right"))
        ties_before = rows.filter((value == v) & (pl.col("entity_id") < eid)).height
        ranks.append(1 + greater + ties_before)
    return (
        mine.with_columns(rank=pl.Series(ranks, dtype=pl.Int64))
        .select("rank", "entity_id", "name", "value")
        .sort("rank")
    )


def top_keys(rows: pl.DataFrame, by: str, k: int) -> pl.Series:
    """Keys (`entity_key`) of the rows `ranked(rows, by, k)` would keep, sorted ascending.

    The same rule, computed without ranking: a numeric threshold first, so ids are only
    compared among the ties at the k-th value (ranking on (value, entity_id) took 27 ms
    per 100k rows, this 2). `tests/storage/test_ranking.py` checks the two agree."""
    value = pl.col(by).cast(pl.Float64)
    vals = rows.select(value.alias("v")).filter(pl.col("v").is_not_null())["v"]
    if vals.len() <= k:
        return rows.filter(pl.col(by).is_not_null())[KEY].sort()
    threshold = vals.top_k(k).min()
    above = rows.filter(value > threshold)
    ties = rows.filter(value == threshold).sort("entity_id").head(k - above.height)
    return pl.concat([above[KEY], ties[KEY]]).sort()
