"""Paper B model adoption in spaces: the models-spaces bipartite network and co-usage.

A space uses the models it declares (`space_models`). A model's usage is the number of
distinct spaces using it. Co-usage links two models used by the same space (weight = number
of such spaces). Models are read from the newest complete `hub:model` snapshot at or before
the space snapshot's as_of (likes and downloads for the correlations; models not in the
listing keep null counters and are left out of the correlations only).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import polars as pl

from analytics import stats, subfields
from analytics.data import Data
from analytics.errors import NotEnoughData


def _uses(
    data: Data, source: str, at: Any, with_models: bool = True
) -> tuple[pl.DataFrame, pl.DataFrame, int]:
    """(space, model) pairs, the model table (name, author, likes, downloads, tags), space count.

    Without `with_models` the model table is empty (a series needs no counters).
    """
    sid = data.resolve(source, at)

    def build() -> tuple[pl.DataFrame, pl.DataFrame, int]:
        spaces = data.state(source, sid, ["name", "space_models"])
        uses = (
            spaces.select(pl.col("entity_id").alias("space"), pl.col("space_models").alias("model"))
            .explode("model")
            .filter(pl.col("model").is_not_null())
            .unique()
        )
        models = pl.DataFrame(
            schema={
                "model": pl.String,
                "owner": pl.String,
                "likes": pl.Int64,
                "downloads": pl.Int64,
                "pipeline_tag": pl.String,
                "tags": pl.List(pl.String),
            }
        )
        if with_models and "hub:model" in data.sources() and data.snapshot_ids("hub:model"):
            when = data.as_of_time(source, sid)
            try:
                msid = data.store.resolve_snapshot("hub:model", when)
            except Exception:  # no model snapshot that early: counters stay null
                msid = None
            if msid is not None:
                m = data.state(
                    "hub:model",
                    msid,
                    ["name", "author", "likes", "downloads", "pipeline_tag", "tags"],
                )
                models = m.select(
                    pl.col("name").alias("model"),
                    pl.col("author").alias("owner"),
                    "likes",
                    "downloads",
                    "pipeline_tag",
                    "tags",
                )
        return uses, models, spaces.height

    result: tuple[pl.DataFrame, pl.DataFrame, int] = data.memo(
        ("adoption", source, sid, with_models), build
    )
    return result


def usage(data: Data, source: str, at: Any) -> pl.DataFrame:
    """model, owner, spaces (usage), likes, downloads: every used model, most used first."""
    uses, models, _ = _uses(data, source, at)
    if uses.is_empty():
        raise NotEnoughData(f"not enough data: no space of {source!r} declares a model")
    deg = uses.group_by("model").agg(pl.col("space").n_unique().cast(pl.Int64).alias("spaces"))
    out = deg.join(models.select("model", "owner", "likes", "downloads"), on="model", how="left")
    return out.with_columns(
        pl.coalesce("owner", pl.col("model").str.split("/").list.first()).alias("owner")
    ).sort(["spaces", "model"], descending=[True, False])


def summary(data: Data, source: str, at: Any) -> pl.DataFrame:
    """Usage distribution and correlations, overall and per sub-field of the model."""
    uses, models, n_spaces = _uses(data, source, at)
    u = usage(data, source, at)
    tagged = u.join(models.select("model", "pipeline_tag", "tags"), on="model", how="left")
    rows = []
    spaces_using = uses["space"].n_unique()
    for name in ("all", *subfields.SUBFIELDS):
        part = tagged if name == "all" else tagged.filter(subfields.subfield_expr(name))
        s = part["spaces"].to_numpy()
        if s.size == 0:
            continue
        known = part.filter(pl.col("likes").is_not_null())
        cl = stats.correlate(known["likes"].to_numpy(), known["spaces"].to_numpy())
        cd = stats.correlate(known["downloads"].to_numpy(), known["spaces"].to_numpy())
        rows.append(
            {
                "subfield": name,
                "spaces": n_spaces,
                "spaces_using_models": spaces_using,
                "models_used": int(s.size),
                "mean_usage": float(s.mean()),
                "median_usage": float(np.median(s)),
                "max_usage": int(s.max()),
                "models_in_1000_plus": int((s >= 1000).sum()),
                "likes_usage_spearman": cl.spearman,
                "likes_usage_pearson": cl.pearson,
                "downloads_usage_spearman": cd.spearman,
                "downloads_usage_pearson": cd.pearson,
                "n_with_counters": cl.n,
            }
        )
    return pl.DataFrame(rows)


def degree_distribution(data: Data, source: str, at: Any) -> pl.DataFrame:
    """network (bipartite model side | co-usage), degree, models: the degree distributions."""
    u = usage(data, source, at)
    co = co_usage_degree(data, source, at)
    a = (
        u.group_by("spaces")
        .agg(pl.len().cast(pl.Int64).alias("models"))
        .rename({"spaces": "degree"})
        .with_columns(network=pl.lit("bipartite"))
    )
    b = (
        co.group_by("co_degree")
        .agg(pl.len().cast(pl.Int64).alias("models"))
        .rename({"co_degree": "degree"})
        .with_columns(network=pl.lit("co-usage"))
    )
    return pl.concat(
        [a.select("network", "degree", "models"), b.select("network", "degree", "models")]
    ).sort(["network", "degree"])


def co_usage_edges(data: Data, source: str, at: Any) -> pl.DataFrame:
    uses, _, _ = _uses(data, source, at)
    return (
        uses.join(uses.rename({"model": "other"}), on="space")
        .filter(pl.col("model") < pl.col("other"))
        .group_by("model", "other")
        .agg(pl.len().cast(pl.Int64).alias("weight"))
    )


def co_usage_degree(data: Data, source: str, at: Any) -> pl.DataFrame:
    """model, co_degree (distinct co-used models), co_strength (sum of weights); top first."""
    e = co_usage_edges(data, source, at)
    both = pl.concat(
        [e.select("model", "weight"), e.select(pl.col("other").alias("model"), "weight")]
    )
    u = usage(data, source, at).select("model")
    deg = both.group_by("model").agg(
        pl.len().cast(pl.Int64).alias("co_degree"), pl.col("weight").sum().alias("co_strength")
    )
    return (
        u.join(deg, on="model", how="left")
        .with_columns(pl.col("co_degree").fill_null(0), pl.col("co_strength").fill_null(0))
        .sort(["co_strength", "model"], descending=[True, False])
    )


def series(data: Data, source: str) -> pl.DataFrame:
    """Usage distribution per space snapshot (no model counters: one read per snapshot)."""
    rows = []
    for sid in data.series_ids(source):
        uses, _, n_spaces = _uses(data, source, sid, with_models=False)
        if uses.is_empty():
            continue
        s = uses.group_by("model").agg(pl.col("space").n_unique())["space"].to_numpy()
        rows.append(
            {
                "snapshot_id": sid,
                "as_of": data.as_of_time(source, sid),
                "spaces": n_spaces,
                "spaces_using_models": uses["space"].n_unique(),
                "models_used": int(s.size),
                "mean_usage": float(s.mean()),
                "median_usage": float(np.median(s)),
                "max_usage": int(s.max()),
            }
        )
    if not rows:
        raise NotEnoughData(f"not enough data: no space of {source!r} declares a model")
    return pl.DataFrame(rows)
