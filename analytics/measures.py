"""Every measure of metrics.md, registered in the catalog under its CLI name.

Each function takes (data, source, at) and returns one frame; the work lives in the modules
named for what they compute (turnover, lineage, documentation, activity, ...). Snapshot
measures read the complete snapshot `at` (None = newest); series measures read every
complete snapshot and ignore `at`.
"""

from __future__ import annotations

from typing import Any

import polars as pl

from analytics import activity, adoption, documentation, longitudinal, network, paper_a, topk
from analytics.catalog import ANY, HUB, register
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


@register(
    "maintenance",
    "Commits per repo per month, share of repos with a commit, median days between commits "
    "(share updated per interval is in churn)",
    "longitudinal",
    (HUB,),
    "series",
)
def _maintenance(data: Data, source: str, at: Any) -> pl.DataFrame:
    return longitudinal.maintenance(data, source)


# -- Paper A, M1 / M3 / M4 ------------------------------------------------------------------


@register(
    "library_preservation",
    "M1 share of descendants of multi-library base models that keep library L (P_L)",
    "A",
    ("hub:model",),
    "snapshot",
)
def _m1(data: Data, source: str, at: Any) -> pl.DataFrame:
    return paper_a.m1(data, source, at)


@register(
    "library_preservation_series",
    "M1 P_L of the top-10 libraries over time",
    "A",
    ("hub:model",),
    "series",
)
def _m1s(data: Data, source: str, at: Any) -> pl.DataFrame:
    return paper_a.m1_series(data, source)


@register(
    "descendants_popularity",
    "M3 descendants vs popularity over the top-N: log-log slope, Pearson on logs, Spearman",
    "A",
    ("hub:model",),
    "snapshot",
)
def _m3(data: Data, source: str, at: Any) -> pl.DataFrame:
    return paper_a.m3(data, source, at)


@register(
    "descendants_heatmap",
    "M3 2-D histogram of log10(1+popularity) x log10(1+descendants)",
    "A",
    ("hub:model",),
    "snapshot",
)
def _m3h(data: Data, source: str, at: Any) -> pl.DataFrame:
    return paper_a.m3_heatmap(data, source, at)


@register(
    "descendants_popularity_series",
    "M3 slope and correlations over time",
    "A",
    ("hub:model",),
    "series",
)
def _m3s(data: Data, source: str, at: Any) -> pl.DataFrame:
    return paper_a.m3_series(data, source)


@register(
    "documentation",
    "M4 documentation quality, top vs bottom group by downloads, likes, descendants: "
    "medians and Mann-Whitney U",
    "A",
    ("hub:model",),
    "snapshot",
)
def _m4(data: Data, source: str, at: Any) -> pl.DataFrame:
    return documentation.m4(data, source, at)


@register(
    "documentation_series",
    "M4 top vs bottom over time: medians, means and Mann-Whitney U per ranking and metric at "
    "every series snapshot",
    "A",
    ("hub:model",),
    "series",
)
def _m4series(data: Data, source: str, at: Any) -> pl.DataFrame:
    return documentation.m4_series(data, source)


@register(
    "documentation_scores",
    "M4 per-model completeness, metadata availability and score in the compared groups",
    "A",
    ("hub:model",),
    "snapshot",
)
def _m4s(data: Data, source: str, at: Any) -> pl.DataFrame:
    return documentation.m4_scores(data, source, at)


# -- Paper B --------------------------------------------------------------------------------


@register(
    "activity_distribution",
    "Activity variables per repo (tables 2-4): count, mean, std, quartiles, max, share at "
    "zero, shares holding 80/99 %, Gini",
    "B",
    (HUB,),
    "snapshot",
)
def _dist(data: Data, source: str, at: Any) -> pl.DataFrame:
    return activity.distribution(data, source, at)


@register(
    "activity_series",
    "Activity distributions over time: mean, median, share at zero, shares holding 80/99 %, "
    "Gini of likes, downloads, commits, discussions per snapshot; of committers, discussion "
    "starters and community (bots removed, identities merged at each) on people_series_max",
    "B",
    (HUB,),
    "series",
)
def _activity_series(data: Data, source: str, at: Any) -> pl.DataFrame:
    return activity.series(data, source)


@register(
    "activity_correlation_series",
    "Pearson and Spearman of every pair of activity variables over time, overall and per "
    "license category (on people_series_max snapshots)",
    "B",
    (HUB,),
    "series",
)
def _corr_series(data: Data, source: str, at: Any) -> pl.DataFrame:
    return activity.correlation_series(data, source)


@register("activity_lorenz", "Lorenz curve of each activity variable", "B", (HUB,), "snapshot")
def _lorenz(data: Data, source: str, at: Any) -> pl.DataFrame:
    return activity.lorenz(data, source, at)


@register("activity_ccdf", "Complementary CDF of each activity variable", "B", (HUB,), "snapshot")
def _ccdf(data: Data, source: str, at: Any) -> pl.DataFrame:
    return activity.ccdf(data, source, at)


@register(
    "activity_correlation",
    "Pearson and Spearman matrices with p-values, overall and per license category",
    "B",
    (HUB,),
    "snapshot",
)
def _corr(data: Data, source: str, at: Any) -> pl.DataFrame:
    return activity.correlations(data, source, at)


@register(
    "licenses",
    "License categories (analytics/reference/licenses.csv) and top licenses with shares",
    "B",
    (HUB,),
    "snapshot",
)
def _lic(data: Data, source: str, at: Any) -> pl.DataFrame:
    return activity.license_shares(data, source, at)


@register("licenses_series", "License category shares over time", "B", (HUB,), "series")
def _lics(data: Data, source: str, at: Any) -> pl.DataFrame:
    return activity.license_series(data, source)


@register(
    "license_tests",
    "Table 5: pairwise Mann-Whitney U between license categories per activity variable",
    "B",
    (HUB,),
    "snapshot",
)
def _lict(data: Data, source: str, at: Any) -> pl.DataFrame:
    return activity.license_tests(data, source, at)


@register(
    "identity_merges",
    "Commit/discussion authors merged as one person (review; override with a CSV file)",
    "B",
    (HUB,),
    "snapshot",
)
def _merges(data: Data, source: str, at: Any) -> pl.DataFrame:
    return activity.identity_merges(data, source, at)


@register(
    "collaboration_kcore",
    "Tables 6-9: k-core table of the collaboration network (bots removed, identities merged), "
    "overall and per sub-field",
    "B",
    (HUB,),
    "snapshot",
)
def _kcore(data: Data, source: str, at: Any) -> pl.DataFrame:
    return network.kcore(data, source, at)


@register(
    "collaboration_kcore_paper",
    "Table 6 as published: k-cores by in+out degree on the directed network, every k "
    "(nodes, directed edges, average degree, density), overall and per sub-field",
    "B",
    (HUB,),
    "snapshot",
)
def _kcore_paper(data: Data, source: str, at: Any) -> pl.DataFrame:
    return network.kcore_paper(data, source, at)


@register(
    "collaboration_kcore_series",
    "The k-core table of the whole collaboration network over time (sampled: at most "
    "people_series_max snapshots)",
    "B",
    (HUB,),
    "series",
)
def _kcore_series(data: Data, source: str, at: Any) -> pl.DataFrame:
    return network.kcore_series(data, source)


@register(
    "collaboration_centrality",
    "Degree, strength and PageRank of every developer in the collaboration network",
    "B",
    (HUB,),
    "snapshot",
)
def _central(data: Data, source: str, at: Any) -> pl.DataFrame:
    return network.centrality(data, source, at)


@register(
    "adoption",
    "Model adoption in spaces: usage distribution, likes/downloads vs usage, per sub-field",
    "B",
    ("hub:space",),
    "snapshot",
)
def _adoption(data: Data, source: str, at: Any) -> pl.DataFrame:
    return adoption.summary(data, source, at)


@register(
    "adoption_top_models",
    "Most-used models in spaces with their owners, likes and downloads",
    "B",
    ("hub:space",),
    "snapshot",
)
def _adoption_top(data: Data, source: str, at: Any) -> pl.DataFrame:
    return adoption.usage(data, source, at)


@register(
    "adoption_degrees",
    "Degree distributions of the bipartite and co-usage networks",
    "B",
    ("hub:space",),
    "snapshot",
)
def _adoption_deg(data: Data, source: str, at: Any) -> pl.DataFrame:
    return adoption.degree_distribution(data, source, at)


@register(
    "adoption_co_usage",
    "Co-usage network: models by number of co-used models and co-usage weight",
    "B",
    ("hub:space",),
    "snapshot",
)
def _adoption_co(data: Data, source: str, at: Any) -> pl.DataFrame:
    return adoption.co_usage_degree(data, source, at)


@register("adoption_series", "Model usage in spaces over time", "B", ("hub:space",), "series")
def _adoption_series(data: Data, source: str, at: Any) -> pl.DataFrame:
    return adoption.series(data, source)
