"""Every measure of metrics.md, each declared once: a `catalog.Measure` naming its compute
function, the sources it applies to, its chart and its method paragraph.

`MEASURES` is a plain tuple read by `catalog.registry()`; importing this module registers
nothing. The work lives in the modules named for what they compute (topk, longitudinal,
paper_a, documentation, activity, network, adoption). Snapshot measures read the complete
snapshot `at` (None = newest); series measures read every complete snapshot.
Method texts use the placeholders of `analytics.terms.Terms` (`{popularity}`, `{key}`,
...), so the report names each source's own columns.
"""

from __future__ import annotations

import polars as pl

from analytics import (
    activity,
    adoption,
    charts,
    documentation,
    longitudinal,
    network,
    paper_a,
    topk,
)
from analytics.catalog import ANY, HUB, Measure

_MODEL = ("hub:model",)
_SPACE = ("hub:space",)


def _turnover_chart(per: str) -> charts.Chart:
    return charts.lines(
        "as_of",
        ["newcomers", "returning", "left"],
        f"Top-K newcomers, returning and left per {per}",
        ytitle=f"entities per {per}",
    )


MEASURES: tuple[Measure, ...] = (
    # -- Longitudinal -----------------------------------------------------------------------
    Measure(
        "growth",
        "longitudinal",
        "series",
        (ANY,),
        longitudinal.growth,
        "Entities per complete snapshot with the exponential growth fit (rate, doubling, R²)",
        "Counts the live {entities} in each complete snapshot (snapshots come {cadence}) and fits an "
        "exponential by least squares on log(count) against days; doubling time = ln 2 / "
        "rate. Only snapshots of `full` coverage count the source: a top-N or subset listing "
        "says nothing of the rest, so its `entities` is null and the fit skips it.",
        chart=charts.lines(
            "as_of",
            ["entities", "fitted"],
            "Entities per snapshot and exponential fit",
            ytitle="entities (live in the snapshot)",
            names={"fitted": "exponential fit"},
        ),
        update=longitudinal.growth_update,
    ),
    Measure(
        "growth_monthly",
        "longitudinal",
        "snapshot",
        (ANY,),
        longitudinal.growth_monthly,
        "New entities per month from created_at (first release for registries), with the fit",
        "Groups the {entities} live in the snapshot by the month of {created} and fits an "
        "exponential to the complete months (the running month is shown but kept out of "
        "the fit). A source without a creation date has no such series.",
        chart=charts.lines(
            "month",
            ["new", "fitted"],
            "New entities per month",
            ytitle="entities created per month (log scale)",
            log_y=True,
            names={"new": "created", "fitted": "exponential fit"},
        ),
    ),
    Measure(
        "churn",
        "longitudinal",
        "series",
        (ANY,),
        longitudinal.churn,
        "Entities created, deleted (gone from a complete listing), renamed and updated per "
        "consecutive pair of complete snapshots",
        "Compares the as-of states of each consecutive pair of complete snapshots "
        "(they come {cadence}), entities keyed by {key}: created = in the later only, deleted = in "
        "the earlier only, renamed = `name` changed, updated = a version column changed. "
        "Created and deleted need two snapshots of `full` coverage (leaving a top-N list "
        "is no deletion) and are null otherwise; renamed and updated count the entities "
        "both snapshots cover.",
        chart=charts.lines(
            "as_of",
            ["created", "deleted", "renamed", "updated"],
            "Churn per snapshot pair",
            ytitle="entities (since the previous snapshot)",
        ),
        pairs=True,
        update=longitudinal.churn_update,
    ),
    Measure(
        "concentration",
        "longitudinal",
        "series",
        (ANY,),
        None,
        "Concentration of popularity per snapshot: Gini, top-1 % share, shares holding 80/99 %",
        "Per series snapshot, over the {entities} with a value of {popularity}: the Gini "
        "coefficient, the share of the total held by the top 1 %, the smallest shares of "
        "entities holding 80 % and 99 % of it, and the share at zero. `coverage` says "
        "what a snapshot lists: of a `top` snapshot these are shares within its top N.",
        chart=charts.lines(
            "as_of",
            ["gini", "top1_share", "share_80", "share_99"],
            "Concentration over time",
            ytitle="Gini or share of entities (0-1)",
            names={
                "top1_share": "share held by the top 1 %",
                "share_80": "share of entities holding 80 %",
                "share_99": "share of entities holding 99 %",
            },
        ),
        rows=longitudinal.concentration_rows,
        version=2,  # the series' snapshot sample: a power-of-two stride
    ),
    Measure(
        "trajectories",
        "longitudinal",
        "series",
        (ANY,),
        longitudinal.trajectories,
        "Rank and popularity over time of the top entities now (or of `entity`)",
        "Follows the top `trajectory_n` {entities} of the newest snapshot by {popularity} "
        "(or one `entity`) through every series snapshot, keyed by {key}: their rank over "
        "the whole source (ties by `entity_id` ascending; null when not live) and their "
        "counters. Lines are labelled by {label}.",
        chart=charts.grouped_lines(
            "as_of",
            "rank",
            "label",
            "Rank over time (1 = most popular)",
            ytitle="rank by popularity (1 = most popular)",
        ),
        version=2,  # the series' snapshot sample: a power-of-two stride
        across="it follows the newest snapshot's top entities: a new snapshot changes who is followed through every earlier one",
    ),
    Measure(
        "maintenance",
        "longitudinal",
        "series",
        (HUB,),
        longitudinal.maintenance,
        "Commits per repo per month, share of repos with a commit, median days between commits "
        "(share updated per interval is in churn)",
        "Per month of commit dates: commits, repos committed to, commits per live repo "
        "(live = created by the month's end, by {created}), the share of live repos with a "
        "commit and the median days since the repo's previous commit.",
        chart=charts.lines(
            "month",
            ["commits_per_repo", "share_committed"],
            "Maintenance per month",
            ytitle="commits per repo; share of repos committed (0-1)",
        ),
        across="it reads the commit history whole: a later crawl adds commits of earlier months (a repo seen for the first time brings its whole history)",
    ),
    # -- Paper A, M2 --------------------------------------------------------------------------
    Measure(
        "turnover",
        "A",
        "series",
        (ANY,),
        None,
        "M2 top-K turnover per consecutive pair of complete snapshots: remained, newcomers, "
        "returning, left, distinct ever",
        "Ranks each complete snapshot (they come {cadence}) by {popularity}, nulls never ranked, ties "
        "by `entity_id` ascending, and compares the top K of consecutive snapshots, "
        "entities keyed by {key}: remained, newcomers (never in it before), returning, "
        "left and distinct ever; turnover share = (newcomers + returning) / K.",
        chart=_turnover_chart("snapshot"),
        pairs=True,
        rows=topk.top_rows,
        combine=topk.consecutive,
        sample="all",
    ),
    Measure(
        "turnover_interval",
        "A",
        "series",
        (ANY,),
        None,
        "M2 top-K turnover per fixed interval (interval_days; the last snapshot of each interval)",
        "The turnover of the top K by {popularity} between the last complete snapshot of "
        "each fixed interval of {interval}; snapshots come {cadence}.",
        chart=_turnover_chart("interval"),
        pairs=True,
        rows=topk.top_rows,
        combine=topk.per_interval,
        sample="all",
    ),
    Measure(
        "topk_lifespan",
        "A",
        "series",
        (ANY,),
        None,
        "M2 lifespan in the top-K per entity: snapshots in it, longest consecutive spell",
        "For every entity ever in the top K by {popularity}, keyed by {key}: the complete "
        "snapshots it spent there and its longest run of consecutive ones.",
        chart=charts.histogram(
            "snapshots_in_topk",
            "Snapshots spent in the top-K (entities ever in it)",
            ytitle="entities",
        ),
        rows=topk.top_rows,
        combine=topk.lifespans,
        sample="all",
    ),
    Measure(
        "topk_survival",
        "A",
        "series",
        (ANY,),
        None,
        "M2 Kaplan-Meier survival of top-K spells (share still in the top-K after t snapshots)",
        "Kaplan-Meier over maximal consecutive spells in the top K by {popularity}; a spell "
        "reaching the newest snapshot is censored. Time counts snapshots, which come {cadence}.",
        chart=charts.lines(
            "snapshots",
            ["survival"],
            "Survival in the top-K (Kaplan-Meier)",
            ytitle="share still in the top-K (0-1)",
        ),
        rows=topk.top_rows,
        combine=topk.survival,
        sample="all",
    ),
    Measure(
        "rank_correlation",
        "A",
        "series",
        (ANY,),
        topk.rank_correlation,
        "M2 Spearman and Kendall between consecutive top-K rankings (entities in both)",
        "Spearman's ρ and Kendall's τ between the ranks by {popularity} of the {entities} in "
        "both top-K lists of each consecutive pair of complete snapshots.",
        chart=charts.lines(
            "as_of",
            ["spearman", "kendall"],
            "Rank correlation between consecutive top-K",
            ytitle="rank correlation (-1 to 1)",
            names={"spearman": "Spearman ρ", "kendall": "Kendall τ"},
        ),
        pairs=True,
        update=topk.rank_correlation_update,
    ),
    # -- Paper A, M1 / M3 / M4 ----------------------------------------------------------------
    Measure(
        "library_preservation",
        "A",
        "snapshot",
        _MODEL,
        paper_a.m1,
        "M1 share of descendants of multi-library base models that keep library L (P_L)",
        "A model supports library L when L is its `library_name` or one of its library "
        "tags; descendants are matched to base models by name (`base_models`), filtered by "
        "`relations`. P_L = descendants of multi-library bases that keep L / all such "
        "descendants.",
        chart=charts.bars(
            "library",
            "preservation_rate",
            "Library preservation rate P_L (top 10)",
            vtitle="share of descendants keeping the library (0-1)",
            top=10,
        ),
    ),
    Measure(
        "library_preservation_series",
        "A",
        "series",
        _MODEL,
        None,
        "M1 P_L of the top-10 libraries over time",
        "P_L at every series snapshot for the ten libraries with the most preserving "
        "descendants in the newest one.",
        chart=charts.grouped_lines(
            "as_of",
            "preservation_rate",
            "library",
            "P_L over time",
            ytitle="share of descendants keeping the library (0-1)",
        ),
        rows=paper_a.m1_series_rows,
        combine=paper_a.m1_series,
        version=2,  # the series' snapshot sample: a power-of-two stride
    ),
    Measure(
        "descendants_popularity",
        "A",
        "snapshot",
        _MODEL,
        paper_a.m3,
        "M3 descendants vs popularity over the top-N: log-log slope, Pearson on logs, Spearman",
        "Over the top `top_n` models by {popularity}: the least-squares slope of "
        "log10(1 + descendants) on log10(1 + popularity), Pearson on those logs and "
        "Spearman on raw values; log10(1 + x) keeps models without descendants in.",
    ),
    Measure(
        "descendants_heatmap",
        "A",
        "snapshot",
        _MODEL,
        paper_a.m3_heatmap,
        "M3 2-D histogram of log10(1+popularity) x log10(1+descendants)",
        "Models of the top `top_n` by {popularity} counted on a `heatmap_bins` x "
        "`heatmap_bins` grid of log10(1 + popularity) by log10(1 + direct descendants).",
        chart=charts.heatmap(
            "log_popularity",
            "log_descendants",
            "models",
            "Descendants vs popularity (log10(1+x))",
            ytitle="log10(1 + descendants)",
            ztitle="models",
        ),
        x_title="log10(1 + popularity: downloads, 30-day window)",
    ),
    Measure(
        "descendants_popularity_series",
        "A",
        "series",
        _MODEL,
        None,
        "M3 slope and correlations over time",
        "The M3 slope, Pearson (on logs) and Spearman by {popularity} at every series snapshot.",
        chart=charts.lines(
            "as_of",
            ["slope", "pearson_log", "spearman"],
            "M3 slope and correlations over time",
            ytitle="slope (log-log) or correlation (-1 to 1)",
            names={"pearson_log": "Pearson (log10)", "spearman": "Spearman ρ"},
        ),
        rows=paper_a.m3_series_rows,
        version=2,  # the series' snapshot sample: a power-of-two stride
    ),
    Measure(
        "documentation",
        "A",
        "snapshot",
        _MODEL,
        documentation.m4,
        "M4 documentation quality, top vs bottom group by downloads, likes, descendants: "
        "medians and Mann-Whitney U",
        "Population = the top `top_n` models by {popularity}; groups = its first and last "
        "`group_n` by downloads, likes and descendants. Completeness = card sections found "
        "/ 5 by the rules of card_rules.py, availability = metadata fields present, score "
        "= their mean; medians per group and Mann-Whitney U between them.",
    ),
    Measure(
        "documentation_series",
        "A",
        "series",
        _MODEL,
        None,
        "M4 top vs bottom over time: medians, means and Mann-Whitney U per ranking and metric at "
        "every series snapshot",
        "M4 redone at every series snapshot (population and groups re-drawn each time, "
        "card scores cached by content): medians, means, U and p per ranking and metric.",
        chart=charts.facet_lines(
            "as_of",
            "value",
            "group",
            "ranking",
            "M4 documentation score over time: mean of the top vs the bottom group, per ranking",
            ytitle="mean score (0-1)",
            prep=lambda df: df.filter(pl.col("metric") == "score").unpivot(
                index=["as_of", "ranking"],
                on=["mean_top", "mean_bottom"],
                variable_name="group",
            ),
            panel_height=170,
        ),
        rows=documentation.m4_series_rows,
        combine=documentation.m4_series,
        version=2,  # the series' snapshot sample: a power-of-two stride
    ),
    Measure(
        "documentation_scores",
        "A",
        "snapshot",
        _MODEL,
        documentation.m4_scores,
        "M4 per-model completeness, metadata availability and score in the compared groups",
        "Every model of the compared groups with its completeness, availability and score; "
        "a model without a stored card is scored on availability alone.",
        chart=charts.box(
            "group",
            "score",
            "ranking",
            "Documentation score: top vs bottom",
            ytitle="documentation score (0-1)",
        ),
        x_title="ranking",
    ),
    # -- Paper B ------------------------------------------------------------------------------
    Measure(
        "activity_distribution",
        "B",
        "snapshot",
        (HUB,),
        activity.distribution,
        "Activity variables per repo (tables 2-4): count, mean, std, quartiles, max, share at "
        "zero, shares holding 80/99 %, Gini",
        "Per activity variable of the {entities} (likes, downloads, commits, committers, "
        "discussions, discussion starters, community; bots removed, identities merged): "
        "count, mean, std, quartiles, max, share at zero, shares holding 80/99 % and Gini. "
        "Repos whose details were not read are missing, never zero, and counted.",
    ),
    Measure(
        "activity_series",
        "B",
        "series",
        (HUB,),
        None,
        "Activity distributions over time: mean, median, share at zero, shares holding 80/99 %, "
        "Gini of likes, downloads, commits, discussions per snapshot; of committers, discussion "
        "starters and community (bots removed, identities merged at each) on people_series_max",
        "The activity distributions at every series snapshot; the people variables "
        "(identity merging redone at each) on at most `people_series_max` snapshots, "
        "spread by a power-of-two stride with the newest.",
        chart=charts.facet_lines(
            "as_of",
            "value",
            "variable",
            "measure",
            "Activity variables over time (bots removed, identities merged at each snapshot)",
            ytitle="value",
            prep=lambda df: df.unpivot(
                index=["as_of", "variable"],
                on=["gini", "share_zero", "share_80", "mean"],
                variable_name="measure",
            ),
            log_y_facets=("mean",),
            note="sampled",
        ),
        rows=activity.series_rows,
        combine=activity.series,
        version=2,  # the series' snapshot sample: a power-of-two stride
    ),
    Measure(
        "activity_correlation_series",
        "B",
        "series",
        (HUB,),
        None,
        "Pearson and Spearman of every pair of activity variables over time, overall and per "
        "license category (on people_series_max snapshots)",
        "Pearson and Spearman (with p-values) of every pair of activity variables, overall "
        "and per license category, on `people_series_max` snapshots.",
        chart=charts.facet_lines(
            "as_of",
            "spearman",
            "pair",
            "license_category",
            "Spearman of likes and downloads with every other variable, per license category",
            ytitle="Spearman ρ",
            prep=lambda df: df.filter(
                pl.col("var_a").is_in(["n_likes", "n_downloads"])
            ).with_columns(pair=pl.col("var_a") + " ~ " + pl.col("var_b")),
            panel_height=170,
            note="sampled",
        ),
        rows=activity.correlation_series_rows,
        combine=activity.correlation_series,
        sample="people",
        version=2,  # the series' snapshot sample: a power-of-two stride
    ),
    Measure(
        "activity_lorenz",
        "B",
        "snapshot",
        (HUB,),
        activity.lorenz,
        "Lorenz curve of each activity variable",
        "The Lorenz curve of each activity variable: the share of the total held by the "
        "least active share of {entities}.",
        chart=charts.grouped_lines(
            "population_share",
            "value_share",
            "variable",
            "Lorenz curves",
            ytitle=charts.axis_title("value_share"),
        ),
    ),
    Measure(
        "activity_ccdf",
        "B",
        "snapshot",
        (HUB,),
        activity.ccdf,
        "Complementary CDF of each activity variable",
        "The share of {entities} with at least each value of every activity variable.",
        chart=charts.grouped_lines(
            "value",
            "ccdf",
            "variable",
            "CCDF of activity variables",
            ytitle="share of entities with at least this value (log scale)",
            log_x=True,
            log_y=True,
        ),
        x_title="activity value (count; downloads over a 30-day window; log scale)",
    ),
    Measure(
        "activity_correlation",
        "B",
        "snapshot",
        (HUB,),
        activity.correlations,
        "Pearson and Spearman matrices with p-values, overall and per license category",
        "Pearson and Spearman of every pair of activity variables with p-values, overall "
        "and per license category; rows without both values are left out and counted.",
        chart=charts.corr_matrix("Spearman correlation of activity variables (all licenses)"),
    ),
    Measure(
        "licenses",
        "B",
        "snapshot",
        (HUB,),
        activity.license_shares,
        "License categories (analytics/reference/licenses.csv) and top licenses with shares",
        "Licenses mapped to permissive / restrictive / none by "
        "analytics/reference/licenses.csv (absent or 'unknown' is none); shares of all "
        "{entities} and of the licensed ones.",
        chart=charts.bars(
            "label",
            "share",
            "License shares (categories, then licenses)",
            vtitle="share of entities (0-1)",
            top=15,
        ),
    ),
    Measure(
        "licenses_series",
        "B",
        "series",
        (HUB,),
        None,
        "License category shares over time",
        "The share of {entities} per license category at every series snapshot.",
        chart=charts.grouped_lines(
            "as_of",
            "share",
            "license_category",
            "License categories over time",
            ytitle="share of entities (0-1)",
        ),
        rows=activity.license_series_rows,
        version=2,  # the series' snapshot sample: a power-of-two stride
    ),
    Measure(
        "license_tests",
        "B",
        "snapshot",
        (HUB,),
        activity.license_tests,
        "Table 5: pairwise Mann-Whitney U between license categories per activity variable",
        "Mann-Whitney U and p between every pair of license categories for each activity "
        "variable (paper B table 5), missing values left out and counted.",
    ),
    Measure(
        "identity_merges",
        "B",
        "snapshot",
        (HUB,),
        activity.identity_merges,
        "Commit/discussion authors merged as one person (review; override with a CSV file)",
        "Authors of the same repo merged when their normalised names are at least "
        "`similarity` alike (difflib) or a real-name-looking author is contained in a "
        "username; the username is kept; an override CSV forces or forbids a merge.",
    ),
    Measure(
        "collaboration_kcore",
        "B",
        "snapshot",
        (HUB,),
        network.kcore,
        "Tables 6-9: k-core table of the collaboration network (bots removed, identities merged), "
        "overall and per sub-field",
        "The developer network (directed, commit-weighted edges as metrics.md) cut into "
        "k-cores of the undirected simple graph; per core nodes, edges, density, CNM "
        "modularity and communities, clustering, rich-club and reciprocity, overall and "
        "per sub-field.",
    ),
    Measure(
        "collaboration_kcore_paper",
        "B",
        "snapshot",
        (HUB,),
        network.kcore_paper,
        "Table 6 as published: k-cores by in+out degree on the directed network, every k "
        "(nodes, directed edges, average degree, density), overall and per sub-field",
        "Paper B's reading: cores by in+out degree on the directed network, every k from "
        "1 to the maximum, with nodes, directed edges, average degree and density.",
    ),
    Measure(
        "collaboration_kcore_series",
        "B",
        "series",
        (HUB,),
        None,
        "The k-core table of the whole collaboration network over time (sampled: at most "
        "people_series_max snapshots)",
        "The k-core table of the whole collaboration network on at most "
        "`people_series_max` snapshots, spread by a power-of-two stride with the newest.",
        chart=charts.facet_lines(
            "as_of",
            "value",
            "k_label",
            "measure",
            "Collaboration network k-cores over time",
            ytitle="value",
            prep=lambda df: df.unpivot(
                index=["as_of", "k_label"],
                on=["nodes", "density", "modularity", "avg_clustering"],
                variable_name="measure",
            ).with_columns(k_label="k = " + pl.col("k_label")),
            note="sampled",
            log_y_facets=("nodes",),
        ),
        rows=network.kcore_series_rows,
        combine=network.kcore_series,
        sample="people",
        version=2,  # the series' snapshot sample: a power-of-two stride
    ),
    Measure(
        "collaboration_centrality",
        "B",
        "snapshot",
        (HUB,),
        network.centrality,
        "Degree, strength and PageRank of every developer in the collaboration network",
        "Degree, strength (summed commit weights) and PageRank (igraph) of every developer "
        "of the collaboration network.",
        chart=charts.bars(
            "developer",
            "pagerank",
            "Developers by PageRank",
            vtitle="PageRank (sums to 1)",
            top=15,
        ),
    ),
    Measure(
        "adoption",
        "B",
        "snapshot",
        _SPACE,
        adoption.summary,
        "Model adoption in spaces: usage distribution, likes/downloads vs usage, per sub-field",
        "Models used by spaces (the spaces' `space_models`), counters from the newest "
        "complete `hub:model` snapshot at or before the space snapshot: the usage "
        "distribution, likes and downloads against usage, per sub-field.",
    ),
    Measure(
        "adoption_top_models",
        "B",
        "snapshot",
        _SPACE,
        adoption.usage,
        "Most-used models in spaces with their owners, likes and downloads",
        "Models by the number of spaces using them (ties by name), with owner, likes and "
        "downloads.",
        chart=charts.bars(
            "model",
            "spaces",
            "Most-used models in spaces",
            vtitle="spaces using the model",
            top=15,
        ),
    ),
    Measure(
        "adoption_degrees",
        "B",
        "snapshot",
        _SPACE,
        adoption.degree_distribution,
        "Degree distributions of the bipartite and co-usage networks",
        "How many nodes have each degree in the space-model bipartite network and in the "
        "co-usage network of models.",
        chart=charts.grouped_lines(
            "degree",
            "models",
            "network",
            "Degree distributions",
            ytitle="nodes with this degree (log scale)",
            log_x=True,
            log_y=True,
            mode="markers",
        ),
        x_title=charts.axis_title("degree"),
    ),
    Measure(
        "adoption_co_usage",
        "B",
        "snapshot",
        _SPACE,
        adoption.co_usage_degree,
        "Co-usage network: models by number of co-used models and co-usage weight",
        "Two models are linked when a space uses both; per model the number of co-used "
        "models and the summed co-usage weight.",
    ),
    Measure(
        "adoption_series",
        "B",
        "series",
        _SPACE,
        None,
        "Model usage in spaces over time",
        "Mean, median and maximum spaces per used model at every series snapshot.",
        chart=charts.lines(
            "as_of",
            ["mean_usage", "median_usage", "max_usage"],
            "Model usage in spaces over time",
            ytitle="spaces per used model (log scale)",
            log_y=True,
        ),
        rows=adoption.series_rows,
        version=2,  # the series' snapshot sample: a power-of-two stride
    ),
)
