"""The top-K ranking rule, once: by value descending, nulls never ranked, ties broken by
`entity_id` ascending.

Every ranking of hubtide goes through here: `Store.top_k` and `derived/topk` (via
`storage.reads`), the writer's top-k members (`top_keys`), and the analytics' rankings of
cached states and of descendant counts (`analytics.data.Data.top`). A change to the rule
is a change to this module alone.
"""

from __future__ import annotations

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
