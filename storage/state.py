"""Reconstructing a source's state as of a snapshot, and diffing a listing against it.

State as of S = per `entity_id` the newest row with `valid_from <= S` among rows of
*complete* snapshots no older than the newest keyframe <= S, tombstones dropped. Rows of
snapshots that never completed (a finish killed midway) are ignored by the `is_in` filter,
so they can never leak into a read. Each (entity_id, valid_from) pair has at most one row
(the diff writes one row per entity), so the fast window pattern of stack-notes §2 is exact.
"""

from __future__ import annotations

from collections.abc import Sequence

import polars as pl

from storage.layout import OP_DELETE, OP_KEEP, OP_UPSERT


def state_from_changes(
    changes: pl.LazyFrame,
    source: str,
    snapshot_id: int,
    visible: Sequence[int],
    keyframe: int | None,
    columns: Sequence[str],
) -> pl.LazyFrame:
    """`changes` is the scanned entity table; `visible` the complete ids <= snapshot_id."""
    lo = keyframe if keyframe is not None else 0
    ids = [i for i in visible if lo <= i <= snapshot_id]
    lf = changes.filter(
        (pl.col("source") == source)
        & (pl.col("valid_from") >= lo)
        & (pl.col("valid_from") <= snapshot_id)
    )
    if len(ids) != snapshot_id - lo + 1:  # some ids in range are not complete: drop them
        lf = lf.filter(pl.col("valid_from").is_in(ids))
    lf = lf.filter(pl.col("valid_from") == pl.col("valid_from").max().over("entity_id"))
    return lf.filter(pl.col("op") != OP_DELETE).select(list(columns))


def diff(
    listing: pl.DataFrame,
    previous: pl.DataFrame,
    columns: Sequence[str],
    *,
    keyframe: bool,
) -> pl.DataFrame:
    """Rows to append for a complete listing: upserts, tombstones, and keyframe copies.

    Returns the logical `columns` plus `op`. `previous` is the state before the listing.
    """
    value_cols = [c for c in columns if c != "entity_id"]
    prev = previous.select(
        [pl.col("entity_id")]
        + [
            (pl.col(c) if c in previous.columns else pl.lit(None, listing.schema[c])).alias(
                c + "__prev"
            )
            for c in value_cols
        ]
    ).with_columns(__seen=pl.lit(True))
    joined = listing.select(columns).join(prev, on="entity_id", how="left")
    changed = pl.col("__seen").is_null()
    for c in value_cols:
        changed = changed | pl.col(c).ne_missing(pl.col(c + "__prev"))
    op = pl.when(changed).then(pl.lit(OP_UPSERT)).otherwise(pl.lit(OP_KEEP))
    marked = joined.with_columns(op=op)
    if not keyframe:
        marked = marked.filter(pl.col("op") == OP_UPSERT)
    upserts = marked.select([*columns, "op"])
    gone = previous.select("entity_id").join(
        listing.select("entity_id"), on="entity_id", how="anti"
    )
    tombs = gone.with_columns(
        [pl.lit(None, listing.schema[c]).alias(c) for c in value_cols]
        + [pl.lit(OP_DELETE).alias("op")]
    ).select([*columns, "op"])
    return pl.concat([upserts, tombs], how="vertical")
