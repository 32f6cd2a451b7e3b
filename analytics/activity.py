"""Paper B activity variables per repo, their distributions, correlations and license tests.

Per repo (as of one complete snapshot of a Hub source): n_likes, n_downloads (models and
datasets), n_discussions (discussions and PRs), n_commits, n_committers, n_disc_starters,
n_community = |committers ∪ discussion starters|, counted after bots are removed and
identities merged (analytics.people). Commits are those first seen in a complete snapshot
at or before the one asked for.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

import polars as pl

from analytics import licenses, people, stats
from analytics.data import Data
from analytics.errors import NotEnoughData

VARIABLES = (
    "n_likes",
    "n_downloads",
    "n_discussions",
    "n_commits",
    "n_committers",
    "n_disc_starters",
    "n_community",
)


@dataclass
class People:
    """Commit contributions and discussion starters after bot removal and merging."""

    contributions: pl.DataFrame  # repo, author, commits
    starters: pl.DataFrame  # repo, author, discussions
    merges: pl.DataFrame
    has_commits: bool
    has_discussions: bool
    commits: pl.DataFrame  # repo, n_commits: commits with at least one non-bot author


def gather_people(data: Data, source: str, sid: int, live: pl.DataFrame) -> People:
    """Bots removed and identities merged, over the repos live in `live` (entity_id)."""
    rt = source.split(":", 1)[1]
    p = data.params
    commits = (
        data.store.commits(rt)
        .filter(pl.col("snapshot_id") <= sid)
        .select("entity_id", "commit_id", "authors")
        .join(live.lazy().select("entity_id"), on="entity_id", how="semi")
        .collect()
    )
    disc = (
        data.store.discussions(rt, at=sid)
        .select("entity_id", "author")
        .join(live.lazy().select("entity_id"), on="entity_id", how="semi")
        .collect()
    )
    contrib = (
        commits.explode("authors")
        .rename({"entity_id": "repo", "authors": "author"})
        .filter(~people.bot_expr("author", p.bots))
        .group_by("repo", "author")
        .agg(pl.len().cast(pl.Int64).alias("commits"))
    )
    starters = (
        disc.rename({"entity_id": "repo"})
        .filter(~people.bot_expr("author", p.bots) & (pl.col("author") != "deleted"))
        .group_by("repo", "author")
        .agg(pl.len().cast(pl.Int64).alias("discussions"))
    )
    both = pl.concat(
        [contrib, starters.select("repo", "author", pl.lit(0, pl.Int64).alias("commits"))]
    )
    canonical, merges = people.merge_identities(
        both, similarity=p.similarity, overrides=people.read_overrides(p.identity_overrides)
    )
    contrib = (
        people.apply_identities(contrib, "author", canonical)
        .group_by("repo", "author")
        .agg(pl.col("commits").sum())
    )
    starters = (
        people.apply_identities(starters, "author", canonical)
        .group_by("repo", "author")
        .agg(pl.col("discussions").sum())
    )
    per_repo = (
        commits.explode("authors")
        .filter(~people.bot_expr("authors", p.bots))
        .group_by("entity_id")
        .agg(pl.col("commit_id").n_unique().cast(pl.Int64).alias("n_commits"))
        .rename({"entity_id": "repo"})
    )
    return People(contrib, starters, merges, commits.height > 0, disc.height > 0, per_repo)


def activity(data: Data, source: str, at: Any) -> tuple[pl.DataFrame, People]:
    """One row per live repo with the activity variables, license and tags."""
    sid = data.resolve(source, at)
    result: tuple[pl.DataFrame, People] = data.memo(
        ("activity", source, sid), lambda: _activity(data, source, sid)
    )
    return result


def _activity(data: Data, source: str, sid: int) -> tuple[pl.DataFrame, People]:
    st = data.state(
        source, sid, ["name", "author", "license", "tags", "pipeline_tag", "likes", "downloads"]
    )
    pp = gather_people(data, source, sid, st)
    n_commits = pp.commits.join(
        pp.contributions.group_by("repo").agg(pl.col("author").n_unique().alias("n_committers")),
        on="repo",
        how="full",
        coalesce=True,
    )
    disc_counts = (
        data.store.discussions(source.split(":", 1)[1], at=sid)
        .group_by("entity_id")
        .agg(pl.len().alias("n_discussions"))
        .collect()
        .rename({"entity_id": "repo"})
    )
    n_start = pp.starters.group_by("repo").agg(pl.col("author").n_unique().alias("n_disc_starters"))
    community = (
        pl.concat([pp.contributions.select("repo", "author"), pp.starters.select("repo", "author")])
        .unique()
        .group_by("repo")
        .agg(pl.len().alias("n_community"))
    )
    df = st.rename({"likes": "n_likes", "downloads": "n_downloads"})
    for part in (n_commits, disc_counts, n_start, community):
        df = df.join(part, left_on="entity_id", right_on="repo", how="left")
    fill = []
    for c in ("n_commits", "n_committers"):
        fill.append(
            pl.col(c).fill_null(0).cast(pl.Int64) if pp.has_commits else pl.col(c).cast(pl.Int64)
        )
    for c in ("n_discussions", "n_disc_starters"):
        fill.append(
            pl.col(c).fill_null(0).cast(pl.Int64)
            if pp.has_discussions
            else pl.col(c).cast(pl.Int64)
        )
    has_people = pp.has_commits or pp.has_discussions
    fill.append(
        pl.col("n_community").fill_null(0).cast(pl.Int64)
        if has_people
        else pl.col("n_community").cast(pl.Int64)
    )
    df = df.with_columns(fill)
    df = licenses.with_category(df)
    return df, pp


def variables(df: pl.DataFrame) -> list[str]:
    """The activity variables with at least one value (spaces have no downloads)."""
    return [v for v in VARIABLES if v in df.columns and df[v].drop_nulls().len() > 0]


def _need_variables(df: pl.DataFrame, source: str) -> None:
    if not variables(df):
        raise NotEnoughData(f"not enough data: no activity variables with values in {source!r}")


def distribution(data: Data, source: str, at: Any) -> pl.DataFrame:
    """Paper B tables 2-4: count, mean, std, min, quartiles, max, zero share, 80/99 % shares, Gini."""
    df, _ = activity(data, source, at)
    rows = [{"variable": v} | stats.describe(df[v]) for v in variables(df)]
    if not rows:
        raise NotEnoughData(f"not enough data: no activity variables in {source!r}")
    return pl.DataFrame(rows)


def lorenz(data: Data, source: str, at: Any) -> pl.DataFrame:
    df, _ = activity(data, source, at)
    _need_variables(df, source)
    frames = [stats.lorenz(df[v]).with_columns(variable=pl.lit(v)) for v in variables(df)]
    return pl.concat(frames).select("variable", "population_share", "value_share")


def ccdf(data: Data, source: str, at: Any) -> pl.DataFrame:
    df, _ = activity(data, source, at)
    _need_variables(df, source)
    frames = [stats.ccdf(df[v]).with_columns(variable=pl.lit(v)) for v in variables(df)]
    return pl.concat(frames).select("variable", "value", "ccdf")


def correlations(data: Data, source: str, at: Any) -> pl.DataFrame:
    """Pearson and Spearman (with p-values) of every pair of variables, overall and per license category."""
    df, _ = activity(data, source, at)
    vs = variables(df)
    rows = []
    groups = [("all", df)] + [
        (c, df.filter(pl.col("license_category") == c))
        for c in sorted(df["license_category"].unique().to_list())
    ]
    for cat, part in groups:
        for a, b in itertools.combinations(vs, 2):
            c = stats.correlate(part[a].to_numpy(), part[b].to_numpy())
            rows.append(
                {
                    "license_category": cat,
                    "var_a": a,
                    "var_b": b,
                    "n": c.n,
                    "pearson": c.pearson,
                    "pearson_p": c.pearson_p,
                    "spearman": c.spearman,
                    "spearman_p": c.spearman_p,
                }
            )
    if not rows:
        raise NotEnoughData(f"not enough data: fewer than two activity variables in {source!r}")
    return pl.DataFrame(rows)


def license_shares(data: Data, source: str, at: Any) -> pl.DataFrame:
    """license_category, license, repos, share: every category total, then the top licenses."""
    sid = data.resolve(source, at)
    st = licenses.with_category(data.state(source, sid, ["license"]))
    n = st.height
    if n == 0:
        raise NotEnoughData(f"not enough data: {source!r} snapshot {sid} is empty")
    cats = (
        st.group_by("license_category")
        .agg(pl.len().alias("repos"))
        .with_columns(license=pl.lit("(all)"))
    )
    top = (
        st.filter(pl.col("license").is_not_null())
        .group_by("license_category", "license")
        .agg(pl.len().alias("repos"))
    )
    out = pl.concat(
        [
            cats.select("license_category", "license", "repos"),
            top.select("license_category", "license", "repos"),
        ]
    )
    label = (
        pl.when(pl.col("license") == "(all)")
        .then(pl.lit("all ") + pl.col("license_category"))
        .otherwise(pl.col("license"))
    )
    out = out.with_columns(label=label)
    return out.with_columns(pl.col("repos").cast(pl.Int64), share=pl.col("repos") / n).sort(
        [pl.col("license") != "(all)", "repos", "license"], descending=[False, True, False]
    )


def license_series(data: Data, source: str) -> pl.DataFrame:
    rows = []
    for sid in data.series_ids(source):
        st = licenses.with_category(data.state(source, sid, ["license"]))
        for cat in (*licenses.CATEGORIES, "other"):
            k = st.filter(pl.col("license_category") == cat).height
            rows.append(
                {
                    "snapshot_id": sid,
                    "as_of": data.as_of_time(source, sid),
                    "license_category": cat,
                    "repos": k,
                    "share": k / st.height if st.height else None,
                }
            )
    return pl.DataFrame(rows)


def license_tests(data: Data, source: str, at: Any) -> pl.DataFrame:
    """Paper B table 5: pairwise Mann-Whitney U between license categories per variable."""
    df, _ = activity(data, source, at)
    rows = []
    for v in variables(df):
        for a, b in (
            ("permissive", "restrictive"),
            ("permissive", "none"),
            ("restrictive", "none"),
        ):
            xa = df.filter(pl.col("license_category") == a)[v].drop_nulls()
            xb = df.filter(pl.col("license_category") == b)[v].drop_nulls()
            u, pv = stats.mann_whitney(xa.to_numpy(), xb.to_numpy())
            rows.append(
                {
                    "variable": v,
                    "a": a,
                    "b": b,
                    "n_a": xa.len(),
                    "n_b": xb.len(),
                    "median_a": xa.median() if xa.len() else None,
                    "median_b": xb.median() if xb.len() else None,
                    "u": u,
                    "p_value": pv,
                }
            )
    return pl.DataFrame(rows)


def identity_merges(data: Data, source: str, at: Any) -> pl.DataFrame:
    """Every identity merge made for this source (review it; override with the CSV)."""
    _, pp = activity(data, source, at)
    return pp.merges


def series(data: Data, source: str) -> pl.DataFrame:
    """Paper B distributions over time: per snapshot and variable, mean, share at zero,
    share holding 80 %, Gini. Commits (with a non-bot author) and discussions are those
    seen up to each snapshot; people counts need the full merge and stay per snapshot."""
    rt = source.split(":", 1)[1]
    p = data.params
    commits = (
        data.store.commits(rt)
        .select("entity_id", "commit_id", "snapshot_id", "authors")
        .explode("authors")
        .filter(~people.bot_expr("authors", p.bots))
        .unique(["entity_id", "commit_id"])
        .collect()
    )
    disc = (
        data.store.discussions(rt)
        .select("entity_id", "num", "snapshot_id")
        .group_by("entity_id", "num")
        .agg(pl.col("snapshot_id").min())
        .collect()
    )
    rows = []
    for sid in data.series_ids(source):
        st = data.state(source, sid, ["likes", "downloads"])
        nc = (
            commits.filter(pl.col("snapshot_id") <= sid)
            .group_by("entity_id")
            .agg(pl.len().alias("n_commits"))
        )
        nd = (
            disc.filter(pl.col("snapshot_id") <= sid)
            .group_by("entity_id")
            .agg(pl.len().alias("n_discussions"))
        )
        df = st.join(nc, on="entity_id", how="left").join(nd, on="entity_id", how="left")
        df = df.rename({"likes": "n_likes", "downloads": "n_downloads"}).with_columns(
            pl.col("n_commits").fill_null(0) if commits.height else pl.col("n_commits"),
            pl.col("n_discussions").fill_null(0) if disc.height else pl.col("n_discussions"),
        )
        for v in ("n_likes", "n_downloads", "n_commits", "n_discussions"):
            x = df[v].drop_nulls()
            if x.len() == 0:
                continue
            d = stats.describe(x)
            rows.append(
                {
                    "snapshot_id": sid,
                    "as_of": data.as_of_time(source, sid),
                    "variable": v,
                    "repos": d["count"],
                    "mean": d["mean"],
                    "share_zero": d["share_zero"],
                    "share_80": d["share_80"],
                    "gini": d["gini"],
                }
            )
    if not rows:
        raise NotEnoughData(f"not enough data: no activity variables in {source!r}")
    return pl.DataFrame(rows)
