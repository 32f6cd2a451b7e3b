"""M2, top-K turnover (paper A) and what it adds: lifespans, survival, rank correlations.

For consecutive complete snapshots, S_current and S_last are the top-K sets and S_history
the union of the top-K sets before S_last:
remained = S_last ∩ S_current, newcomers = S_current \\ (S_history ∪ S_last),
returning = (S_history \\ S_last) ∩ S_current, left = S_last \\ S_current.
An entity is its Hub `_id` (a rename is the same entity); `renames_as_churn` keys by name,
as paper A did.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Any

import numpy as np
import polars as pl
from scipy import stats as sps

from analytics.catalog import SeriesRows
from analytics.data import Data
from analytics.errors import NotEnoughData

TURNOVER_COLUMNS = (
    "snapshot_id",
    "as_of",
    "remained",
    "newcomers",
    "returning",
    "left",
    "distinct_ever",
)


def top_sets(data: Data, source: str, ids: Sequence[int]) -> list[pl.DataFrame]:
    """The ranked top-K of each snapshot in `ids` (rank, key, entity_id, name, value)."""
    p = data.params
    by = data.popularity(source)
    if p.renames_as_churn and "name" not in data.columns(source):
        # keyed by a column that is not there, every entity would be one key
        raise ValueError(
            f"--renames-as-churn keys the top-K by name, and {source!r} has no name column; "
            "leave it out (entities are then their ids)"
        )
    out = []
    for sid in ids:
        coverage, top_by, top_n = data.coverage(source, sid)
        if coverage == "top" and top_n is not None and p.k > top_n:
            # the top K of a top-N list with K > N is not the source's top K
            raise NotEnoughData(
                f"not enough data: k={p.k} is larger than snapshot {sid} of {source!r} "
                f"covers (its top {top_n} by {top_by}); use k <= {top_n}"
            )
        top = data.top(source, sid, by, p.k)
        key = pl.col("name") if p.renames_as_churn else pl.col("entity_id")
        out.append(top.with_columns(key.alias("key")))
    return out


def top_rows(data: Data, source: str, sid: int) -> pl.DataFrame:
    """rank, entity_id, name, value, key: the ranked top K of snapshot `sid`, the rows
    turnover, its intervals, lifespans and survival are assembled from."""
    return top_sets(data, source, [sid])[0]


def _tops(rows: SeriesRows, ids: Sequence[int]) -> list[pl.DataFrame]:
    """The top-K frames of `ids` from a series' rows; NotEnoughData when a snapshot has
    none (k past what a top-N snapshot covers)."""
    if rows.empty:
        raise NotEnoughData(rows.last_reason("not enough data: a snapshot without a top-K"))
    return [rows.frames[i] for i in ids]


def turnover_rows(
    data: Data, source: str, ids: Sequence[int], tops: Sequence[pl.DataFrame]
) -> pl.DataFrame:
    """One row per consecutive pair of `ids` (the later snapshot's id and as_of); `tops`:
    their top-K frames (`top_rows`), in the order of `ids`."""
    sets = [set(t["key"].to_list()) for t in tops]
    rows = []
    history: set[str] = set()
    ever: set[str] = set(sets[0]) if sets else set()
    for i in range(1, len(ids)):
        last, cur = sets[i - 1], sets[i]
        if i >= 2:
            history |= sets[i - 2]
        ever |= cur
        rows.append(
            {
                "snapshot_id": ids[i],
                "as_of": data.as_of_time(source, ids[i]),
                "remained": len(last & cur),
                "newcomers": len(cur - (history | last)),
                "returning": len((history - last) & cur),
                "left": len(last - cur),
                "distinct_ever": len(ever),
                "previous_snapshot_id": ids[i - 1],
                "k_current": len(cur),
            }
        )
    schema: dict[str, Any] = {
        "snapshot_id": pl.Int64,
        "as_of": pl.Datetime("us", "UTC"),
        "remained": pl.Int64,
        "newcomers": pl.Int64,
        "returning": pl.Int64,
        "left": pl.Int64,
        "distinct_ever": pl.Int64,
        "previous_snapshot_id": pl.Int64,
        "k_current": pl.Int64,
    }
    df = pl.DataFrame(rows, schema=schema)
    return df.with_columns(
        turnover_share=pl.when(pl.col("k_current") > 0)
        .then((pl.col("newcomers") + pl.col("returning")) / pl.col("k_current"))
        .otherwise(None)
    )


def consecutive(data: Data, source: str, rows: SeriesRows) -> pl.DataFrame:
    """Turnover between every consecutive pair of complete snapshots, from their top-K
    `rows`; NotEnoughData (nothing to compare) with fewer than two."""
    ids = data.snapshot_ids(source)
    if len(ids) < 2:
        have = f"one complete snapshot ({ids[0]})" if ids else "no complete snapshot"
        raise NotEnoughData(
            f"nothing to compare: {source!r} has {have}; turnover compares consecutive "
            "complete snapshots, so it needs two"
        )
    return turnover_rows(data, source, ids, _tops(rows, ids))


def interval_ids(data: Data, source: str, days: int) -> list[int]:
    """The last complete snapshot at or before each boundary first + n * days."""
    snaps = data.snapshots(source)
    if snaps.is_empty():
        return []
    first = snaps["as_of"][0]
    last = snaps["as_of"][-1]
    picked: list[int] = []
    t = first
    while t <= last + timedelta(days=days):
        before = snaps.filter(pl.col("as_of") <= t)
        if before.height:
            sid = int(before["snapshot_id"][-1])
            if not picked or picked[-1] != sid:
                picked.append(sid)
        t = t + timedelta(days=days)
    return picked


def per_interval(data: Data, source: str, rows: SeriesRows) -> pl.DataFrame:
    """Turnover between fixed intervals of `interval_days` (the last snapshot of each)."""
    days = data.interval_days(source)
    ids = interval_ids(data, source, days)
    df = turnover_rows(data, source, ids, _tops(rows, ids))
    return df.with_columns(interval_days=pl.lit(days, pl.Int64))


def _spells(rows: SeriesRows) -> tuple[pl.DataFrame, int]:
    """key, name, start, length, censored: maximal runs of consecutive snapshots in the top-K."""
    ids = rows.ids
    frames = [
        t.select("key", "name").with_columns(pos=pl.lit(i, pl.Int64))
        for i, t in enumerate(_tops(rows, ids))
    ]
    long = pl.concat(frames)
    spells = (
        long.sort(["key", "pos"])
        .with_columns(
            run=(pl.col("pos").diff().over("key").fill_null(1) != 1).cum_sum().over("key")
        )
        .group_by(["key", "run"])
        .agg(
            pl.col("name").last(),
            pl.col("pos").min().alias("start"),
            pl.len().cast(pl.Int64).alias("length"),
            pl.col("pos").max().alias("end"),
        )
        .with_columns(censored=pl.col("end") == len(ids) - 1)
    )
    return spells, len(ids)


def lifespans(data: Data, source: str, rows: SeriesRows) -> pl.DataFrame:
    """Per entity ever in the top-K: snapshots in it, longest consecutive spell, spells."""
    spells, _ = _spells(rows)
    ids = rows.ids
    per = spells.group_by("key").agg(
        pl.col("name").sort_by("start").last(),
        pl.col("length").sum().alias("snapshots_in_topk"),
        pl.col("length").max().alias("longest_spell"),
        pl.len().cast(pl.Int64).alias("spells"),
        pl.col("start").min().alias("first_pos"),
        pl.col("end").max().alias("last_pos"),
        pl.col("censored").any().alias("in_topk_now"),
    )
    id_map = pl.DataFrame(
        {"pos": list(range(len(ids))), "sid": ids}, schema={"pos": pl.Int64, "sid": pl.Int64}
    )
    per = per.join(id_map.rename({"pos": "first_pos", "sid": "first_snapshot"}), on="first_pos")
    per = per.join(id_map.rename({"pos": "last_pos", "sid": "last_snapshot"}), on="last_pos")
    return per.select(
        pl.col("key").alias("entity"),
        "name",
        "snapshots_in_topk",
        "longest_spell",
        "spells",
        "first_snapshot",
        "last_snapshot",
        "in_topk_now",
    ).sort(["snapshots_in_topk", "entity"], descending=[True, False])


def survival(data: Data, source: str, tops: SeriesRows) -> pl.DataFrame:
    """Kaplan-Meier survival of top-K spells: share still in the top-K after t snapshots.

    A spell that reaches the newest snapshot is censored (it has not ended yet).
    """
    spells, _n = _spells(tops)
    lengths = spells["length"].to_numpy()
    ended = ~spells["censored"].to_numpy()
    rows = [{"snapshots": 0, "at_risk": int(lengths.size), "exited": 0, "survival": 1.0}]
    s = 1.0
    for t in range(1, int(lengths.max()) + 1 if lengths.size else 1):
        at_risk = int((lengths >= t).sum())
        exited = int(((lengths == t) & ended).sum())
        if at_risk == 0:
            break
        s *= 1.0 - exited / at_risk
        rows.append({"snapshots": t, "at_risk": at_risk, "exited": exited, "survival": s})
    return pl.DataFrame(
        rows,
        schema={
            "snapshots": pl.Int64,
            "at_risk": pl.Int64,
            "exited": pl.Int64,
            "survival": pl.Float64,
        },
    )


def rank_correlation(data: Data, source: str) -> pl.DataFrame:
    """Spearman and Kendall between the ranks of consecutive top-K lists, over the remained."""
    return _rank_rows(data, source, data.snapshot_ids(source))


def rank_correlation_update(data: Data, source: str, previous: pl.DataFrame) -> pl.DataFrame:
    """`rank_correlation` from its previous result: its rows are kept when they are the
    pairs of the snapshots still there (else everything is computed again), and only the
    pairs since are ranked."""
    ids = data.snapshot_ids(source)
    n = previous.height
    if previous["snapshot_id"].to_list() != ids[1 : n + 1]:
        return rank_correlation(data, source)
    return pl.concat([previous, _rank_rows(data, source, ids[n:])])


def _rank_rows(data: Data, source: str, ids: list[int]) -> pl.DataFrame:
    tops = top_sets(data, source, ids)
    rows = []
    for i in range(1, len(ids)):
        j = (
            tops[i - 1]
            .select("key", pl.col("rank").alias("a"))
            .join(tops[i].select("key", pl.col("rank").alias("b")), on="key")
        )
        a = j["a"].to_numpy().astype(float)
        b = j["b"].to_numpy().astype(float)
        sp = kt = sp_p = kt_p = None
        if j.height >= 3 and np.ptp(a) > 0 and np.ptp(b) > 0:
            r = sps.spearmanr(a, b)
            sp, sp_p = float(r.statistic), float(r.pvalue)
            r2 = sps.kendalltau(a, b)
            kt, kt_p = float(r2.statistic), float(r2.pvalue)
        rows.append(
            {
                "snapshot_id": ids[i],
                "as_of": data.as_of_time(source, ids[i]),
                "n_common": j.height,
                "spearman": sp,
                "spearman_p": sp_p,
                "kendall": kt,
                "kendall_p": kt_p,
            }
        )
    schema: dict[str, Any] = {
        "snapshot_id": pl.Int64,
        "as_of": pl.Datetime("us", "UTC"),
        "n_common": pl.Int64,
        "spearman": pl.Float64,
        "spearman_p": pl.Float64,
        "kendall": pl.Float64,
        "kendall_p": pl.Float64,
    }
    return pl.DataFrame(rows, schema=schema)
