"""Every measure of metrics.md, registered in the catalog under its CLI name.

Each function takes (data, source, at) and returns one frame; the work lives in the modules
named for what they compute (turnover, lineage, documentation, activity, ...). Snapshot
measures read the complete snapshot `at` (None = newest); series measures read every
complete snapshot and ignore `at`.
"""

from __future__ import annotations

from typing import Any

import polars as pl

from analytics import longitudinal, topk
from analytics.catalog import ANY, register
from analytics.data import Data
from analytics.errors import NotEnoughData


def _need_pairs(data: Data, source: str) -> None:
    if len(data.snapshot_ids(source)) < 2:
        raise NotEnoughData(
            f"not enough data: {source!r} needs two complete snapshots, has "
            f"{len(data.snapshot_ids(source))}"
        )


# -- Paper A, M2 ----------------------------------------------------------------------------


@register(
    "turnover",
    "M2 top-K turnover per consecutive pair of complete snapshots: remained, newcomers, "
    "returning, left, distinct ever",
    "A",
    (ANY,),
    "series",
)
def _turnover(data: Data, source: str, at: Any) -> pl.DataFrame:
    _need_pairs(data, source)
    return topk.consecutive(data, source)


@register(
    "turnover_interval",
    "M2 top-K turnover per fixed interval (interval_days; the last snapshot of each interval)",
    "A",
    (ANY,),
    "series",
)
def _turnover_interval(data: Data, source: str, at: Any) -> pl.DataFrame:
    _need_pairs(data, source)
    return topk.per_interval(data, source)


@register(
    "topk_lifespan",
    "M2 lifespan in the top-K per entity: snapshots in it, longest consecutive spell",
    "A",
    (ANY,),
    "series",
)
def _lifespan(data: Data, source: str, at: Any) -> pl.DataFrame:
    return topk.lifespans(data, source)


@register(
    "topk_survival",
    "M2 Kaplan-Meier survival of top-K spells (share still in the top-K after t snapshots)",
    "A",
    (ANY,),
    "series",
)
def _survival(data: Data, source: str, at: Any) -> pl.DataFrame:
    return topk.survival(data, source)


@register(
    "rank_correlation",
    "M2 Spearman and Kendall between consecutive top-K rankings (entities in both)",
    "A",
    (ANY,),
    "series",
)
def _rank_corr(data: Data, source: str, at: Any) -> pl.DataFrame:
    _need_pairs(data, source)
    return topk.rank_correlation(data, source)


# -- Longitudinal -------------------------------------------------------------------------


@register(
    "growth",
    "Entities per complete snapshot with the exponential growth fit (rate, doubling, R²)",
    "longitudinal",
    (ANY,),
    "series",
)
def _growth(data: Data, source: str, at: Any) -> pl.DataFrame:
    return longitudinal.growth(data, source)


@register(
    "growth_monthly",
    "New entities per month from created_at (first release for registries), with the fit",
    "longitudinal",
    (ANY,),
    "snapshot",
)
def _growth_monthly(data: Data, source: str, at: Any) -> pl.DataFrame:
    return longitudinal.growth_monthly(data, source, at)


@register(
    "churn",
    "Entities created, deleted (gone from a complete listing), renamed and updated per "
    "consecutive pair of complete snapshots",
    "longitudinal",
    (ANY,),
    "series",
)
def _churn(data: Data, source: str, at: Any) -> pl.DataFrame:
    _need_pairs(data, source)
    return longitudinal.churn(data, source)


@register(
    "concentration",
    "Concentration of popularity per snapshot: Gini, top-1 % share, shares holding 80/99 %",
    "longitudinal",
    (ANY,),
    "series",
)
def _concentration(data: Data, source: str, at: Any) -> pl.DataFrame:
    return longitudinal.concentration(data, source)


@register(
    "trajectories",
    "Rank and popularity over time of the top entities now (or of `entity`)",
    "longitudinal",
    (ANY,),
    "series",
)
def _trajectories(data: Data, source: str, at: Any) -> pl.DataFrame:
    return longitudinal.trajectories(data, source)
