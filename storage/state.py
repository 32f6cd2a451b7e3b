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

from storage.layout import OP_COUNT, OP_DELETE, OP_KEEP, OP_UPSERT


def _latest(lf: pl.LazyFrame) -> pl.LazyFrame:
    return lf.filter(pl.col("valid_from") == pl.col("valid_from").max().over("entity_id"))


def state_from_changes(
    changes: pl.LazyFrame,
    source: str,
    snapshot_id: int,
    visible: Sequence[int],
    keyframe: int | None,
    columns: Sequence[str],
    counters: Sequence[str] = (),
) -> pl.LazyFrame:
    """`changes` is the scanned entity table; `visible` the complete ids <= snapshot_id.

    Full rows (upsert / keep / delete) give each entity's attributes; a `count` row newer
    than the entity's newest full row overrides its counters. A count row is only ever
    written for an entity alive in the previous snapshot, so it always belongs to the
    current incarnation of the entity (after a delete, a re-appearance is a full row).
    """
    lo = keyframe if keyframe is not None else 0
    ids = [i for i in visible if lo <= i <= snapshot_id]
    lf = changes.filter(
        (pl.col("source") == source)
        & (pl.col("valid_from") >= lo)
        & (pl.col("valid_from") <= snapshot_id)
    )
    if len(ids) != snapshot_id - lo + 1:  # some ids in range are not complete: drop them
        lf = lf.filter(pl.col("valid_from").is_in(ids))
    wanted = [c for c in counters if c in columns]
    if not counters:
        full = _latest(lf)
        return full.filter(pl.col("op") != OP_DELETE).select(list(columns))
    full = _latest(lf.filter(pl.col("op") != OP_COUNT)).filter(pl.col("op") != OP_DELETE)
    if not wanted:
        return full.select(list(columns))
    cnt = _latest(
        lf.filter(pl.col("op") == OP_COUNT).select(["entity_id", "valid_from", *wanted])
    ).rename({c: c + "__c" for c in ["valid_from", *wanted]})
    newer = pl.col("valid_from__c").is_not_null() & (pl.col("valid_from__c") > pl.col("valid_from"))
    joined = full.join(cnt, on="entity_id", how="left")
    return joined.with_columns(
        [pl.when(newer).then(pl.col(c + "__c")).otherwise(pl.col(c)).alias(c) for c in wanted]
    ).select(list(columns))


def diff(
    listing: pl.DataFrame,
    previous: pl.DataFrame,
    columns: Sequence[str],
    *,
    keyframe: bool,
    counters: Sequence[str] = (),
) -> pl.DataFrame:
    """Rows to append for a complete listing: upserts, count rows, tombstones, keyframe copies.

    Returns the logical `columns` plus `op`. `previous` is the state before the listing.
    """
    value_cols = [c for c in columns if c != "entity_id"]
    counter_cols = [c for c in value_cols if c in counters]
    attr_cols = [c for c in value_cols if c not in counters]
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
    attr_changed = pl.col("__seen").is_null()
    for c in attr_cols:
        attr_changed = attr_changed | pl.col(c).ne_missing(pl.col(c + "__prev"))
    count_changed = pl.lit(False)
    for c in counter_cols:
        count_changed = count_changed | pl.col(c).ne_missing(pl.col(c + "__prev"))
    if keyframe:
        # a keyframe holds every live entity in full, so reads can start there
        op = (
            pl.when(attr_changed | count_changed).then(pl.lit(OP_UPSERT)).otherwise(pl.lit(OP_KEEP))
        )
    else:
        op = (
            pl.when(attr_changed)
            .then(pl.lit(OP_UPSERT))
            .when(count_changed)
            .then(pl.lit(OP_COUNT))
            .otherwise(pl.lit(None, pl.String))
        )
    marked = joined.with_columns(op=op).filter(pl.col("op").is_not_null())
    blank = pl.col("op") == OP_COUNT
    upserts = marked.select(
        [
            pl.col("entity_id"),
            *[
                pl.when(blank).then(pl.lit(None, listing.schema[c])).otherwise(pl.col(c)).alias(c)
                if c in attr_cols
                else pl.col(c)
                for c in value_cols
            ],
            pl.col("op"),
        ]
    )
    gone = previous.select("entity_id").join(
        listing.select("entity_id"), on="entity_id", how="anti"
    )
    tombs = gone.with_columns(
        [pl.lit(None, listing.schema[c]).alias(c) for c in value_cols]
        + [pl.lit(OP_DELETE).alias("op")]
    ).select([*columns, "op"])
    return pl.concat([upserts, tombs], how="vertical")
