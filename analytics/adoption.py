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
        spaces = data.state(source, sid, ["name", "space_models", "pipeline_tag", "tags"])
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
        # the sub-fields of each space by its own tags (paper B selects spaces, not models)
        fields = [subfields.subfield_expr(f).alias(f) for f in subfields.SUBFIELDS]
        space_fields = spaces.select(pl.col("entity_id").alias("space"), *fields)
        uses = uses.join(space_fields, on="space", how="left")
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


def usage_by_model(data: Data, model_source: str, at: Any) -> pl.DataFrame:
    """name, n_usage_spaces: per model of the `model_source` snapshot, the spaces using it
    in the newest complete `hub:space` snapshot at or before it, else the oldest one after
    it (a crawl lists spaces after models); 0 for unused models, null without any space
    snapshot. Paper B table 5's `n_usage_spaces`."""
    sid = data.resolve(model_source, at)
    names = data.state(model_source, sid, ["name"]).select("name")
    if "hub:space" not in data.sources() or not data.snapshot_ids("hub:space"):
        return names.with_columns(pl.lit(None, pl.Int64).alias("n_usage_spaces"))
    try:
        ssid = data.store.resolve_snapshot("hub:space", data.as_of_time(model_source, sid))
    except Exception:  # no space snapshot that early: the first one after
        ssid = data.snapshot_ids("hub:space")[0]
    uses, _, _ = _uses(data, "hub:space", ssid, with_models=False)
    deg = uses.group_by("model").agg(pl.col("space").n_unique().cast(pl.Int64).alias("n"))
    return names.join(deg, left_on="name", right_on="model", how="left").select(
        "name", pl.col("n").fill_null(0).alias("n_usage_spaces")
    )


def summary(data: Data, source: str, at: Any) -> pl.DataFrame:
    """Usage distribution and correlations, overall and per sub-field: `by` = model (the
    models' own tags, hubtide's reading) or space (the models used by spaces of that
    sub-field by the spaces' tags, paper B's). The `*_usage_*` correlations are over the
    used models; `*_usage_*_all` over every model of the model snapshot (usage 0 when
    unused), as the paper reads them."""
    uses, models, n_spaces = _uses(data, source, at)
    u = usage(data, source, at)
    tagged = u.join(models.select("model", "pipeline_tag", "tags"), on="model", how="left")
    every = models.join(u.select("model", "spaces"), on="model", how="left").with_columns(
        pl.col("spaces").fill_null(0)
    )
    rows = []
    spaces_using = uses["space"].n_unique()
    parts: list[tuple[str, str, pl.DataFrame, pl.DataFrame, int]] = []
    for name in ("all", *subfields.SUBFIELDS):
        if name == "all":
            parts.append(("all", "all", tagged, every, spaces_using))
            continue
        parts.append(
            (
                name,
                "model",
                tagged.filter(subfields.subfield_expr(name)),
                every.filter(subfields.subfield_expr(name)),
                spaces_using,
            )
        )
        sub = uses.filter(pl.col(name))
        used = sub.group_by("model").agg(pl.col("space").n_unique().cast(pl.Int64).alias("spaces"))
        by_space = used.join(models, on="model", how="left")
        every_space = models.join(used, on="model", how="left").with_columns(
            pl.col("spaces").fill_null(0)
        )
        parts.append((name, "space", by_space, every_space, sub["space"].n_unique()))
    for name, by, part, whole, n_using in parts:
        s = part["spaces"].to_numpy()
        if s.size == 0:
            continue
        known = part.filter(pl.col("likes").is_not_null())
        cl = stats.correlate(known["likes"].to_numpy(), known["spaces"].to_numpy())
        cd = stats.correlate(known["downloads"].to_numpy(), known["spaces"].to_numpy())
        wl = stats.correlate(whole["likes"].to_numpy(), whole["spaces"].to_numpy())
        wd = stats.correlate(whole["downloads"].to_numpy(), whole["spaces"].to_numpy())
        rows.append(
            {
                "subfield": name,
                "by": by,
                "spaces": n_spaces,
                "spaces_using_models": n_using,
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
                "likes_usage_spearman_all": wl.spearman,
                "likes_usage_pearson_all": wl.pearson,
                "downloads_usage_spearman_all": wd.spearman,
                "downloads_usage_pearson_all": wd.pearson,
                "n_all_models": wl.n,
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
    uses = uses.select("space", "model")
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


def series_rows(data: Data, source: str, sid: int) -> pl.DataFrame:
    """`adoption_series`' row of space snapshot `sid`: the usage distribution (no model
    counters: one read)."""
    uses, _, n_spaces = _uses(data, source, sid, with_models=False)
    if uses.is_empty():
        raise NotEnoughData(f"not enough data: no space of {source!r} declares a model")
    s = uses.group_by("model").agg(pl.col("space").n_unique())["space"].to_numpy()
    return pl.DataFrame(
        [
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
        ]
    )
