"""Daily download increments from `downloads_all_time` differences between snapshots."""

from __future__ import annotations

import polars as pl

from storage import Store

CATCH_UP = 3.0  # a per-day increment this many times the entity's median is a catch-up


def daily_deltas(store: Store, source: str = "hub:model") -> pl.DataFrame:
    """entity_id, snapshot_id, as_of, days, delta, per_day, flag for each pair of
    consecutive complete snapshots where both have `downloads_all_time`.

    `delta` is never negative: a decrease is clipped to 0 and flagged `decrease`; a zero
    after a rising counter is `stall`; a per-day rate over CATCH_UP times the entity's
    median is `catch-up` (a stall's downloads arriving late). Nothing is smoothed.
    """
    snaps = store.snapshots(source).sort("snapshot_id")
    frames = []
    for sid, at in zip(snaps["snapshot_id"].to_list(), snaps["as_of"].to_list(), strict=True):
        s = store.as_of(source, sid, columns=["downloads_all_time"]).collect()
        frames.append(
            s.drop_nulls("downloads_all_time").with_columns(
                pl.lit(sid).alias("snapshot_id"), pl.lit(at).alias("as_of")
            )
        )
    if not frames:
        return pl.DataFrame()
    df = pl.concat(frames).sort("entity_id", "snapshot_id")
    prev = pl.col("downloads_all_time").shift(1).over("entity_id")
    prev_at = pl.col("as_of").shift(1).over("entity_id")
    df = df.with_columns(
        raw=pl.col("downloads_all_time") - prev,
        days=(pl.col("as_of") - prev_at).dt.total_seconds() / 86400.0,
    ).filter(pl.col("raw").is_not_null())
    df = df.with_columns(delta=pl.col("raw").clip(lower_bound=0))
    df = df.with_columns(per_day=pl.col("delta") / pl.col("days"))
    median = pl.col("per_day").median().over("entity_id")
    rising_before = pl.col("delta").shift(1).over("entity_id") > 0
    df = df.with_columns(
        flag=pl.when(pl.col("raw") < 0)
        .then(pl.lit("decrease"))
        .when((pl.col("delta") == 0) & rising_before.fill_null(False))
        .then(pl.lit("stall"))
        .when((median > 0) & (pl.col("per_day") > CATCH_UP * median))
        .then(pl.lit("catch-up"))
        .otherwise(pl.lit(None, dtype=pl.String))
    )
    return df.select("entity_id", "snapshot_id", "as_of", "days", "delta", "per_day", "flag")
