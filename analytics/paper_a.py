"""Paper A, M1 and M3: library preservation along base -> descendant edges, and
descendants vs popularity.

M1: B_L = base models supporting library L and at least one other library; over their
direct descendants D_b, P_L = sum_b sum_{d in D_b} S(d, L) / sum_b |D_b|.
M3: over the top-N models by popularity, the number of direct descendants against the
popularity, on log10(1 + x) axes (so zero-descendant models stay in).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import polars as pl
from scipy import stats as sps

from analytics import stats
from analytics.catalog import SeriesRows
from analytics.data import Data
from analytics.errors import NotEnoughData
from analytics.lineage import edges, with_libraries
from storage.ranking import ranked

MODEL_COLUMNS = ["name", "library_name", "tags", "base_models", "base_model_relation"]


def preservation(models: pl.DataFrame, relations: tuple[str, ...] = ()) -> pl.DataFrame:
    """library, base_models, descendants, preserving, preservation_rate (sorted by preserving)."""
    libs = with_libraries(models).select("entity_id", "name", "libraries")
    e = edges(models, relations)
    e = e.join(
        libs.select(pl.col("name").alias("base_name"), pl.col("libraries").alias("base_libs")),
        on="base_name",
        how="inner",
    )
    e = e.join(
        libs.select(pl.col("entity_id").alias("child_id"), pl.col("libraries").alias("child_libs")),
        on="child_id",
        how="inner",
    )
    # a base counts for L only when it supports L and at least one other library
    e = e.filter(pl.col("base_libs").list.len() >= 2)
    per = (
        e.explode("base_libs")
        .rename({"base_libs": "library"})
        .group_by("library")
        .agg(
            pl.col("base_name").n_unique().alias("base_models"),
            pl.len().alias("descendants"),
            pl.col("child_libs").list.contains(pl.col("library")).sum().alias("preserving"),
        )
        .with_columns(
            pl.col("base_models").cast(pl.Int64),
            pl.col("descendants").cast(pl.Int64),
            pl.col("preserving").cast(pl.Int64),
        )
        .with_columns(preservation_rate=pl.col("preserving") / pl.col("descendants"))
        .sort(["preserving", "library"], descending=[True, False])
    )
    return per


def _preservation_at(data: Data, source: str, sid: int) -> pl.DataFrame:
    """P_L of every library at `sid` (memoised: M1 and its series' rows share it)."""
    result: pl.DataFrame = data.memo(
        ("preservation", source, sid),
        lambda: preservation(data.state(source, sid, MODEL_COLUMNS), data.params.relations),
    )
    return result


def m1(data: Data, source: str, at: Any) -> pl.DataFrame:
    sid = data.resolve(source, at)
    out = _preservation_at(data, source, sid)
    if out.is_empty():
        raise NotEnoughData(f"not enough data: no base model of {source!r} supports two libraries")
    return out


def m1_series_rows(data: Data, source: str, sid: int) -> pl.DataFrame:
    """P_L of every library at snapshot `sid` (`library_preservation_series`' rows)."""
    return _preservation_at(data, source, sid).with_columns(
        snapshot_id=pl.lit(sid, pl.Int64),
        as_of=pl.lit(data.as_of_time(source, sid), pl.Datetime("us", "UTC")),
    )


def m1_series(data: Data, source: str, rows: SeriesRows) -> pl.DataFrame:
    """P_L per snapshot for the top-10 libraries of the newest snapshot."""
    df = rows.concat()
    if df.is_empty():
        raise NotEnoughData(f"not enough data: no base model of {source!r} supports two libraries")
    last = df.filter(pl.col("snapshot_id") == df["snapshot_id"].max()).head(10)["library"]
    return (
        df.filter(pl.col("library").is_in(last.to_list()))
        .select("snapshot_id", "as_of", "library", "preserving", "descendants", "preservation_rate")
        .sort(["library", "snapshot_id"])
    )


def _m3_frame(data: Data, source: str, sid: int) -> pl.DataFrame:
    """popularity and descendants of the top N (memoised per snapshot: M3, its heatmap and
    its series' rows share it)."""
    result: pl.DataFrame = data.memo(("m3-frame", source, sid), lambda: _m3_top(data, source, sid))
    return result


def _m3_top(data: Data, source: str, sid: int) -> pl.DataFrame:
    p = data.params
    col = data.popularity(source)
    models = data.state(source, sid, [col])
    counts = data.descendants(source, sid).select("entity_id", "descendants")
    # the top N by the store's one ranking rule (storage.ranking: nulls out, ties by id)
    top = ranked(models.select("entity_id", col), col, p.top_n)
    return (
        top.select("rank", "entity_id", pl.col("value").alias("popularity"))
        .join(counts, on="entity_id")
        .sort("rank")
        .drop("rank")
    )


def m3_summary(df: pl.DataFrame) -> dict[str, Any]:
    x = np.log10(1 + df["popularity"].to_numpy())
    y = np.log10(1 + df["descendants"].to_numpy().astype(float))
    out: dict[str, Any] = {
        "n": df.height,
        "with_descendants": int((df["descendants"] > 0).sum()),
        "slope": None,
        "intercept": None,
        "r2": None,
    }
    if df.height >= 3 and np.ptp(x) > 0:
        fit = sps.linregress(x, y)
        out.update(slope=float(fit.slope), intercept=float(fit.intercept), r2=float(fit.rvalue**2))
    c = stats.correlate(x, y)
    out.update(pearson_log=c.pearson, pearson_log_p=c.pearson_p)
    c2 = stats.correlate(df["popularity"].to_numpy(), df["descendants"].to_numpy())
    out.update(spearman=c2.spearman, spearman_p=c2.spearman_p)
    return out


def m3(data: Data, source: str, at: Any) -> pl.DataFrame:
    sid = data.resolve(source, at)
    df = _m3_frame(data, source, sid)
    if df.height < 3:
        raise NotEnoughData(f"not enough data: {df.height} models with popularity in {source!r}")
    row = {"snapshot_id": sid, "by": data.popularity(source), "top_n": data.params.top_n}
    return pl.DataFrame([row | m3_summary(df)])


def m3_heatmap(data: Data, source: str, at: Any) -> pl.DataFrame:
    """The 2-D histogram: log10(1+popularity) bin x log10(1+descendants) bin -> models."""
    sid = data.resolve(source, at)
    df = _m3_frame(data, source, sid)
    if df.is_empty():
        raise NotEnoughData(f"not enough data: no models with popularity in {source!r}")
    x = np.log10(1 + df["popularity"].to_numpy())
    y = np.log10(1 + df["descendants"].to_numpy().astype(float))
    bins = data.params.heatmap_bins
    h, xe, ye = np.histogram2d(x, y, bins=[bins, max(2, min(bins, int(y.max() * 4) + 2))])
    xs, ys = np.nonzero(h)
    return pl.DataFrame(
        {
            "log_popularity": np.round(xe[xs], 3),
            "log_descendants": np.round(ye[ys], 3),
            "models": h[xs, ys].astype(np.int64),
        }
    )


def m3_series_rows(data: Data, source: str, sid: int) -> pl.DataFrame:
    """The M3 slope and correlations at snapshot `sid` (`descendants_popularity_series`)."""
    df = _m3_frame(data, source, sid)
    if df.height < 3:
        raise NotEnoughData(f"not enough data: too few models with popularity in {source!r}")
    return pl.DataFrame(
        [{"snapshot_id": sid, "as_of": data.as_of_time(source, sid)} | m3_summary(df)]
    )
