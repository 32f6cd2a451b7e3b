"""Measures only a series of snapshots can show: growth, churn, concentration, trajectories.

Everything reads narrow as-of states (the few columns each needs) of the complete snapshots.
"""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np
import polars as pl

from analytics import stats
from analytics.data import Data
from analytics.errors import NotEnoughData
from storage.ranking import ranks_of

_TS = pl.Datetime("us", "UTC")


def _need(data: Data, source: str) -> list[int]:
    ids = data.snapshot_ids(source)
    if not ids:
        raise NotEnoughData(f"not enough data: {source!r} has no complete snapshot yet")
    return ids


def _fit_columns(df: pl.DataFrame, time_col: str, count_col: str) -> pl.DataFrame:
    """Add fit_rate_per_day, fit_doubling_days, fit_r2 and fitted (same value on each row)."""
    t0 = df[time_col].min()
    days = (
        ((df[time_col] - t0).dt.total_seconds() / 86400.0).to_numpy() if df.height else np.array([])
    )
    fit = stats.exp_fit(days, df[count_col].to_numpy())
    fitted = (
        np.exp(fit.intercept + fit.rate_per_day * days)
        if fit.rate_per_day is not None and fit.intercept is not None
        else np.full(days.size, np.nan)
    )
    return df.with_columns(
        fitted=pl.Series(fitted, dtype=pl.Float64).fill_nan(None),
        fit_rate_per_day=pl.lit(fit.rate_per_day, pl.Float64),
        fit_doubling_days=pl.lit(fit.doubling_days, pl.Float64),
        fit_r2=pl.lit(fit.r2, pl.Float64),
    )


def growth(data: Data, source: str) -> pl.DataFrame:
    """snapshot_id, as_of, entities (live in the as-of state), coverage, fitted exponential.

    Only a `full` snapshot counts the source: a `top` one lists its top N and a `subset`
    one a filtered part, so their `entities` is null and the fit skips them."""
    return _fit_columns(_growth_rows(data, source, _need(data, source)), "as_of", "entities")


_GROWTH_ROWS: dict[str, pl.DataType] = {
    "snapshot_id": pl.Int64(),
    "as_of": _TS,
    "entities": pl.Int64(),
    "coverage": pl.String(),
}


def _growth_rows(data: Data, source: str, ids: list[int]) -> pl.DataFrame:
    rows = []
    for sid in ids:
        cov = data.coverage(source, sid)[0]
        n = data.state(source, sid, []).height if cov == "full" else None
        rows.append(
            {
                "snapshot_id": sid,
                "as_of": data.as_of_time(source, sid),
                "entities": n,
                "coverage": cov,
            }
        )
    return pl.DataFrame(rows, schema=_GROWTH_ROWS)


def growth_update(data: Data, source: str, previous: pl.DataFrame) -> pl.DataFrame:
    """`growth` from its previous result: the previous snapshots' rows as they were, a row
    per complete snapshot since (one state read each, not one per snapshot ever), and the
    fit over them all again (it is cheap; the states are not)."""
    ids = _need(data, source)
    kept = previous.select(list(_GROWTH_ROWS)).filter(pl.col("snapshot_id").is_in(ids))
    done = set(kept["snapshot_id"].to_list())
    new = _growth_rows(data, source, [i for i in ids if i not in done])
    rows = pl.concat([kept, new]).sort("snapshot_id")
    return _fit_columns(rows, "as_of", "entities")


def _created_column(data: Data, source: str) -> str | None:
    cols = data.columns(source)
    for c in ("created_at", "first_release_at"):
        if c in cols:
            return c
    return None


def growth_monthly(data: Data, source: str, at: Any) -> pl.DataFrame:
    """month, new (entities created that month, live as of the snapshot), cumulative, fit."""
    sid = data.resolve(source, at)
    col = _created_column(data, source)
    if col is None:
        raise NotEnoughData(f"not enough data: {source!r} has no created_at/first_release_at")
    st = data.state(source, sid, [col])
    df = (
        st.lazy()
        .filter(pl.col(col).is_not_null())
        .group_by(pl.col(col).dt.truncate("1mo").alias("month"))
        .agg(pl.len().cast(pl.Int64).alias("new"))
        .sort("month")
        .with_columns(cumulative=pl.col("new").cum_sum())
        .collect()
    )
    if df.is_empty():
        raise NotEnoughData(f"not enough data: no {col} in {source!r}")
    # the month of the snapshot is still running: shown, but kept out of the fit
    as_of = data.as_of_time(source, sid)
    month_end = pl.col("month").dt.offset_by("1mo")
    df = df.with_columns(complete_month=month_end <= pl.lit(as_of, _TS))
    fitted = _fit_columns(df.filter(pl.col("complete_month")), "month", "new")
    if fitted.is_empty():
        return _fit_columns(df, "month", "new")
    return df.join(
        fitted.select("month", "fitted", "fit_rate_per_day", "fit_doubling_days", "fit_r2"),
        on="month",
        how="left",
    ).with_columns(
        [
            pl.col(c).fill_null(strategy="forward")
            for c in ("fit_rate_per_day", "fit_doubling_days", "fit_r2")
        ]
    )


def churn(data: Data, source: str) -> pl.DataFrame:
    """Per consecutive pair: created, deleted, renamed, updated, live before/after.

    Created and deleted need two `full` snapshots: leaving a top-N list is not a deletion
    nor entering it a creation, and a subset says nothing of what it left out; they are
    null otherwise. Renamed and updated count the entities both snapshots cover."""
    return _churn_rows(data, source, list(itertools.pairwise(_need(data, source))))


def churn_update(data: Data, source: str, previous: pl.DataFrame) -> pl.DataFrame:
    """`churn` from its previous result: the rows of the consecutive pairs that are still
    consecutive kept as they were, only the pairs since computed (two states each)."""
    pairs = list(itertools.pairwise(_need(data, source)))
    wanted = pl.DataFrame(
        {"previous_snapshot_id": [a for a, _ in pairs], "snapshot_id": [b for _, b in pairs]},
        schema={"previous_snapshot_id": pl.Int64, "snapshot_id": pl.Int64},
    )
    kept = previous.join(wanted, on=["previous_snapshot_id", "snapshot_id"], how="semi")
    done = set(zip(kept["previous_snapshot_id"], kept["snapshot_id"], strict=True))
    new = _churn_rows(data, source, [p for p in pairs if p not in done])
    return pl.concat([kept, new]).sort("snapshot_id")


def _churn_rows(data: Data, source: str, pairs: list[tuple[int, int]]) -> pl.DataFrame:
    cols = data.columns(source)
    watch = [c for c in ("name", "sha", "last_modified", "latest_version") if c in cols]
    rows = []
    for a, b in pairs:
        sa = data.state(source, a, watch)
        sb = data.state(source, b, watch)
        j = sb.join(sa, on="entity_id", how="inner", suffix="__a")
        renamed = (
            int(j.filter(pl.col("name").ne_missing(pl.col("name__a"))).height)
            if "name" in watch
            else 0
        )
        changed = pl.lit(False)
        for c in watch:
            if c != "name":
                changed = changed | pl.col(c).ne_missing(pl.col(c + "__a"))
        updated = int(j.filter(changed).height) if len(watch) > ("name" in watch) else 0
        full = data.coverage(source, a)[0] == "full" and data.coverage(source, b)[0] == "full"
        rows.append(
            {
                "snapshot_id": b,
                "as_of": data.as_of_time(source, b),
                "previous_snapshot_id": a,
                "live_before": sa.height,
                "live_after": sb.height,
                "created": sb.join(sa, on="entity_id", how="anti").height if full else None,
                "deleted": sa.join(sb, on="entity_id", how="anti").height if full else None,
                "renamed": renamed,
                "updated": updated,
                "in_both": j.height,
                "coverage": "/".join(data.coverage(source, s)[0] for s in (a, b)),
            }
        )
    schema: dict[str, Any] = {
        "snapshot_id": pl.Int64,
        "as_of": _TS,
        "previous_snapshot_id": pl.Int64,
        "live_before": pl.Int64,
        "live_after": pl.Int64,
        "created": pl.Int64,
        "deleted": pl.Int64,
        "renamed": pl.Int64,
        "updated": pl.Int64,
        "in_both": pl.Int64,
        "coverage": pl.String,
    }
    df = pl.DataFrame(rows, schema=schema)
    # share of repos updated per interval (maintenance, Castaño et al.): of those live in both
    both = pl.col("in_both")
    return df.with_columns(
        share_updated=pl.when(both > 0).then(pl.col("updated") / both).otherwise(None)
    ).drop("in_both")


def concentration_row(values: pl.Series) -> dict[str, Any]:
    v = values.drop_nulls().cast(pl.Float64)
    return {
        "n": v.len(),
        "total": float(v.sum()) if v.len() else None,
        "gini": stats.gini(v),
        "top1_share": stats.top_share(v, 0.01),
        "share_80": stats.share_holding(v, 0.8),
        "share_99": stats.share_holding(v, 0.99),
        "share_zero": float((v == 0).mean()) if v.len() else None,  # type: ignore[arg-type]
    }


_CONCENTRATION: dict[str, pl.DataType | type[pl.DataType]] = {
    "snapshot_id": pl.Int64,
    "as_of": _TS,
    "by": pl.String,
    "n": pl.Int64,
    "total": pl.Float64,
    "gini": pl.Float64,
    "top1_share": pl.Float64,
    "share_80": pl.Float64,
    "share_99": pl.Float64,
    "share_zero": pl.Float64,
    "coverage": pl.String,
}


def concentration_rows(data: Data, source: str, sid: int) -> pl.DataFrame:
    """`concentration`'s row of snapshot `sid`: Gini, top-1 % share, 80 %/99 % shares of
    the source's popularity (a `top` snapshot: of the listed top N only)."""
    col = data.popularity(source)
    if col not in data.columns(source):
        raise ValueError(
            f"popularity column {col!r} not in {source!r}; columns are "
            f"{', '.join(data.columns(source))}"
        )
    st = data.state(source, sid, [col])
    row = (
        {"snapshot_id": sid, "as_of": data.as_of_time(source, sid), "by": col}
        | concentration_row(st[col])
        | {"coverage": data.coverage(source, sid)[0]}
    )
    return pl.DataFrame([row], schema=_CONCENTRATION)


def trajectories(data: Data, source: str) -> pl.DataFrame:
    """snapshot_id, as_of, entity_id, name, rank, value, counters, label (name, else the
    entity id), by per followed entity and snapshot.

    Followed: `entity` (id or name) when given, else the top `trajectory_n` of the newest
    snapshot. Rank is over the whole source (null when the entity is not live).
    """
    ids = _need(data, source)
    p = data.params
    col = data.popularity(source)
    latest = data.state(source, ids[-1], ["name", col])
    if p.entity:
        hit = latest.filter((pl.col("entity_id") == p.entity) | (pl.col("name") == p.entity))
        if hit.is_empty():
            raise ValueError(f"entity {p.entity!r} not live in {source!r} as of snapshot {ids[-1]}")
        follow = hit["entity_id"].to_list()
    else:
        follow = data.top(source, ids[-1], col, p.trajectory_n)["entity_id"].to_list()
    counters = [
        c
        for c in ("downloads", "downloads_all_time", "likes", "dependent_packages")
        if c in data.columns(source) and c != col
    ]
    frames = []
    for sid in data.series_ids(source):
        st = data.state(source, sid, ["name", col, *counters], keep=sid == ids[-1])
        # the store's one ranking rule (storage.ranking) over the whole population: a
        # followed entity whose value is null that snapshot has no rank there
        rows = (
            ranks_of(st, col, follow)
            .lazy()
            .filter(pl.col("entity_id").is_in(follow))
            .join(st.lazy().select("entity_id", *counters), on="entity_id", how="left")
            .select(
                pl.lit(sid, pl.Int64).alias("snapshot_id"),
                pl.lit(data.as_of_time(source, sid), _TS).alias("as_of"),
                "entity_id",
                "name",
                pl.col("rank").cast(pl.Int64),
                "value",
                *counters,
            )
            .collect()
        )
        frames.append(rows)
    out = pl.concat(frames).with_columns(
        # what a chart or table shows for the entity: its name when it has one, else its id
        label=pl.coalesce(pl.col("name").cast(pl.String), pl.col("entity_id")),
        by=pl.lit(col),
    )
    return out.sort(["entity_id", "snapshot_id"])


def maintenance(data: Data, source: str) -> pl.DataFrame:
    """Per month of commit dates: commits, repos committed to, commits per live repo, share
    of live repos with a commit, and the median days since the repo's previous commit."""
    ids = _need(data, source)
    rt = source.split(":", 1)[1]
    commits = (
        data.store.commits(rt)
        .filter(pl.col("date").is_not_null())
        .select("entity_id", "date")
        .sort(["entity_id", "date"])
        .with_columns(  # sorted by repo: the diff within a repo, without a window's groups
            gap_days=pl.when(pl.col("entity_id") == pl.col("entity_id").shift()).then(
                pl.col("date").diff().dt.total_seconds() / 86400.0
            )
        )
        .with_columns(month=pl.col("date").dt.truncate("1mo"))
        .collect()
    )
    if commits.is_empty():
        raise NotEnoughData(f"not enough data: no commits stored for {source!r}")
    per = commits.group_by("month").agg(
        pl.len().cast(pl.Int64).alias("commits"),
        pl.col("entity_id").n_unique().cast(pl.Int64).alias("repos_committed"),
        pl.col("gap_days").median().alias("median_days_since_previous"),
    )
    created = data.state(source, ids[-1], ["created_at"]).filter(pl.col("created_at").is_not_null())
    months = per["month"].sort()
    born = created["created_at"]
    ends = months.dt.offset_by("1mo")  # the first instant of the next month
    if born.dtype == ends.dtype:  # live = created before the month's end: one binary search
        live = born.sort().search_sorted(ends, side="left").to_list()
    else:
        live = [
            created.filter(
                pl.col("created_at")
                < m.replace(month=m.month % 12 + 1, year=m.year + m.month // 12)
            ).height
            for m in months.to_list()
        ]
    live_df = pl.DataFrame(
        {"month": months, "live_repos": live},
        schema={"month": months.dtype, "live_repos": pl.Int64},
    )
    return (
        per.join(live_df, on="month")
        .with_columns(
            commits_per_repo=pl.when(pl.col("live_repos") > 0).then(
                pl.col("commits") / pl.col("live_repos")
            ),
            share_committed=pl.when(pl.col("live_repos") > 0).then(
                pl.col("repos_committed") / pl.col("live_repos")
            ),
        )
        .sort("month")
    )
