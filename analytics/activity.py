"""Paper B activity variables per repo, their distributions, correlations and license tests.

Per repo (as of one complete snapshot of a Hub source): n_likes, n_downloads (models and
datasets), n_discussions (discussions and PRs), n_commits, n_committers, n_disc_starters,
n_community = |committers ∪ discussion starters|, counted after bots are removed and
identities merged (analytics.people). Commits are those first seen in a complete snapshot
at or before the one asked for. n_commits counts every commit, bots' too (paper B §3.3;
`commits_without_bots` gives the count without them).

Missing is missing: a repo whose details could not be read has null commit, discussion and
people variables, never zeros. Every repo has an initial commit, so a repo with no stored
commit at all was not read (a 401/403/404 answer, or never fetched); a repo the listing
marks `disabled` is unreadable too. `details_read` says which repos count; the statistics
drop the nulls and say how many they left out (`missing`, `left_out`).
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl
from scipy import stats as sps

from analytics import licenses, people, stats
from analytics.catalog import SeriesRows
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
    commits: pl.DataFrame  # repo, n_commits: every commit (or with a non-bot author: params)
    discussions: pl.DataFrame  # repo, n_discussions (every discussion and PR, bots too)


@dataclass(frozen=True)
class Details:
    """Every commit of one Hub source (read once for all its snapshots: a snapshot's commits
    are those first seen at or before it) and the name matches between people of a repo,
    from which each snapshot takes the pairs present then."""

    commits: pl.DataFrame  # entity_id, commit, snapshot_id, author (non-bot; exploded)
    first_commit: pl.DataFrame  # entity_id, snapshot_id: first commit of any author (bots too)
    every: pl.DataFrame  # entity_id, commit, snapshot_id: every commit, bots' too
    known: pl.DataFrame  # repo, author: every (non-bot) person of a repo in the newest states
    similar: pl.DataFrame  # repo, author, other, similarity, rule: name matches ever in a repo


def details(data: Data, source: str) -> Details:
    result: Details = data.memo(("details", source), lambda: _details(data, source))
    return result


def _details(data: Data, source: str) -> Details:
    rt = source.split(":", 1)[1]
    p = data.params
    # the store holds every commit once per (entity_id, commit_id), so its row number is
    # its identity: `commit` (u32) stands for the 40-character sha, which a year of daily
    # Hub snapshots holds ~27M times, twice over (here and exploded by author)
    raw = (
        data.store.commits(rt)
        .select("entity_id", "snapshot_id", "authors")
        .collect()
        .with_row_index("commit")
    )
    # a commit's authors deduplicated in their order, then exploded, are the unique (repo,
    # commit, author) rows in their first order; bots are told apart on the distinct names (thousands)
    # rather than on every commit
    # (lazy plans: the eager group-bys of exploded or filtered chunks are 2-3x slower)
    distinct = raw.lazy().select(pl.col("authors").explode().drop_nulls().unique())
    bots = distinct.rename({"authors": "author"}).filter(people.bot_expr("author", p.bots))
    commits = (
        raw.lazy()
        .with_columns(pl.col("authors").list.unique(maintain_order=True))
        .explode("authors")
        .rename({"authors": "author"})
        .filter(
            pl.col("author").is_not_null()
            & ~pl.col("author").is_in(bots.collect()["author"].implode())
        )
        .collect()
    )
    first = raw.lazy().group_by("entity_id").agg(pl.col("snapshot_id").min()).collect()
    every = raw.select("entity_id", "commit", "snapshot_id")  # each commit once already
    del raw
    disc = _without_bots(data.store.discussions(rt).select("entity_id", "author").collect(), p.bots)
    disc = disc.filter(pl.col("author") != "deleted")
    known = (
        pl.concat(
            [
                commits.lazy().select(pl.col("entity_id").alias("repo"), "author"),
                disc.lazy().select(pl.col("entity_id").alias("repo"), "author"),
            ]
        )
        .unique()
        .collect()
    )
    return Details(commits, first, every, known, similar_in(data, known, distinct=True))


def _without_bots(frame: pl.DataFrame, extra: tuple[str, ...]) -> pl.DataFrame:
    """`frame` without the rows whose `author` `people.bot_expr` calls a bot, told on the
    distinct names (a few thousand) instead of on every row."""
    distinct = frame.select(pl.col("author").drop_nulls().unique())
    bots = distinct.filter(people.bot_expr("author", extra))["author"]
    return frame.filter(pl.col("author").is_not_null() & ~pl.col("author").is_in(bots.implode()))


_SIMILAR_IN = {
    "repo": pl.String,
    "author": pl.String,
    "other": pl.String,
    "similarity": pl.Float64,
    "rule": pl.String,
}


def similar_in(
    data: Data, people_in_repos: pl.DataFrame, *, distinct: bool = False
) -> pl.DataFrame:
    """repo, author, other, similarity, rule for the pairs of people of one repo that merge
    by name (verdicts cached per Data: they depend on the two names only).

    The rows of `people.repo_pairs` joined to `people.similar_pairs` (a test checks the
    two routes agree), on integer codes of the names (code order is name order): only
    repos with two people or more are paired, and the names are tested on the distinct
    pairs, far fewer than the repos. `distinct`: the (repo, author) rows are distinct
    already (details' `known`), no need to make them so."""
    pe = people_in_repos.select("repo", "author")
    pe = pe if distinct else pe.unique()
    names = pe["author"].drop_nulls().unique().sort()
    code = pl.DataFrame({"author": names}).with_row_index("a")
    cache = data.memo(("similar-cache",), dict)
    # in slices of repos: a year of Hub commits gives ~11M (repo, person) rows, and their
    # pairs built at once took 1.3 GB beyond the rows; a repo's pairs stay in its slice
    parts = max(1, pe.height // SIMILAR_SLICE_ROWS)
    slice_of = pe["repo"].hash(seed=0) % parts if parts > 1 else None
    found = []
    for part in range(parts):
        rows = pe if slice_of is None else pe.filter(slice_of == part)
        found.append(_similar_in_slice(rows, names, code, data.params.similarity, cache))
    return pl.concat(found).sort("repo", "author", "other")


SIMILAR_SLICE_ROWS = 2_000_000  # (repo, person) rows per slice of `similar_in`


def _similar_in_slice(
    pe: pl.DataFrame,
    names: pl.Series,
    code: pl.DataFrame,
    similarity: float,
    cache: dict[tuple[str, str], tuple[bool, float, str]],
) -> pl.DataFrame:
    """`similar_in` over the distinct (repo, author) rows `pe` (whole repos); `names`: the
    sorted distinct names, `code` their row numbers `a`."""
    grouped = (
        pe.lazy()
        .join(code.lazy(), on="author")
        .group_by("repo")
        .agg(pl.col("a"))
        .filter(pl.col("a").list.len() >= 2)
        .with_columns(b=pl.col("a"))
        .collect()
    )
    pairs = grouped.explode("a").explode("b").filter(pl.col("a") < pl.col("b"))
    del grouped
    each = pairs.select("a", "b").unique()
    by_name = pl.DataFrame({"author": names.gather(each["a"]), "other": names.gather(each["b"])})
    sim = people.similar_pairs(by_name, similarity, cache)
    if sim.is_empty():
        return pl.DataFrame(schema=_SIMILAR_IN)
    coded = sim.join(code, on="author").join(code.rename({"author": "other", "a": "b"}), on="other")
    return pairs.join(coded, on=["a", "b"]).select(list(_SIMILAR_IN))


def gather_people(data: Data, source: str, sid: int, live: pl.DataFrame) -> People:
    """Bots removed and identities merged, over the repos live in `live` (entity_id).

    The big steps are lazy plans (the eager group-bys and joins of filtered chunks are 2-3x
    slower on a 3M-repo snapshot); the name matches are checked against the people present
    in the matched repos only."""
    p = data.params
    base = details(data, source)
    ids = live.lazy().select("entity_id")
    commits = (
        base.commits.lazy()
        .filter(pl.col("snapshot_id") <= sid)
        .join(ids, on="entity_id", how="semi")
    )
    has_commits = (
        base.first_commit.lazy()
        .filter(pl.col("snapshot_id") <= sid)
        .join(ids, on="entity_id", how="semi")
        .select(pl.len())
        .collect()
        .item()
        > 0
    )
    rt = source.split(":", 1)[1]
    disc = (
        data.store.discussions(rt, at=sid)
        .select("entity_id", "num", "author")
        .join(ids, on="entity_id", how="semi")
        .collect()
    )
    contrib = (
        commits.rename({"entity_id": "repo"})
        .group_by("repo", "author")
        .agg(pl.len().cast(pl.Int64).alias("commits"))
        .collect()
    )
    starters = (
        _without_bots(disc.rename({"entity_id": "repo"}), p.bots)
        .lazy()
        .filter(pl.col("author") != "deleted")
        .group_by("repo", "author")
        .agg(pl.len().cast(pl.Int64).alias("discussions"))
        .collect()
    )
    both = pl.concat(
        [contrib, starters.select("repo", "author", pl.lit(0, pl.Int64).alias("commits"))]
    )
    similar = base.similar
    # every committer of a repo is in `known` (all commits, bots out): only a discussion's
    # author can be new, e.g. one in an older state (before "deleted")
    extra = starters.select("repo", "author").join(base.known, on=["repo", "author"], how="anti")
    if extra.height:
        again = both.join(extra.select("repo").unique(), on="repo", how="semi")
        similar = pl.concat([similar, similar_in(data, again.select("repo", "author"))]).unique()
    present = (
        both.filter(pl.col("repo").is_in(similar["repo"].unique().implode()))
        .select("repo", "author")
        .unique()
    )  # the people present now in the repos with a name match
    similar = similar.join(present, on=["repo", "author"], how="semi").join(
        present.rename({"author": "other"}), on=["repo", "other"], how="semi"
    )
    names = pl.concat([similar["author"], similar["other"]]).unique()
    weight = dict(
        both.filter(pl.col("author").is_in(names.implode()))
        .group_by("author")
        .agg(pl.col("commits").sum())
        .iter_rows()
    )
    canonical, merges = people.union_identities(
        similar, weight, people.read_overrides(p.identity_overrides)
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
    if p.commits_without_bots:  # a row per (commit, author): count the distinct commits
        per_repo = (
            commits.group_by("entity_id")
            .agg(pl.col("commit").n_unique().cast(pl.Int64).alias("n_commits"))
            .collect()
        )
    else:  # `every` holds each commit once
        per_repo = (
            base.every.lazy()
            .filter(pl.col("snapshot_id") <= sid)
            .join(ids, on="entity_id", how="semi")
            .group_by("entity_id")
            .agg(pl.len().cast(pl.Int64).alias("n_commits"))
            .collect()
        )
    n_disc = disc.group_by("entity_id").agg(pl.len().cast(pl.Int64).alias("n_discussions"))
    return People(
        contrib,
        starters,
        merges,
        has_commits,
        disc.height > 0,
        per_repo.rename({"entity_id": "repo"}),
        n_disc.rename({"entity_id": "repo"}),
    )


def people_counts(pp: People) -> pl.DataFrame:
    """repo, n_commits, n_committers, n_discussions, n_disc_starters, n_community (repos with
    any of them; the caller fills the rest; a count is null where the repo has no row of
    its kind).

    One group-by of every (repo, person) with its roles and one of the per-repo rows,
    in one lazy plan, instead of a group-by per count and four full joins on the repo
    name."""
    roles = pl.concat(
        [
            pp.contributions.lazy().select(
                "repo", "author", c=pl.lit(1, pl.UInt32), s=pl.lit(0, pl.UInt32)
            ),
            pp.starters.lazy().select(
                "repo", "author", c=pl.lit(0, pl.UInt32), s=pl.lit(1, pl.UInt32)
            ),
        ]
    )
    people_in = (
        roles.group_by("repo", "author")
        .agg(pl.col("c").max(), pl.col("s").max())
        .group_by("repo")
        .agg(
            n_committers=pl.col("c").sum(),
            n_disc_starters=pl.col("s").sum(),
            n_community=pl.len(),
        )
        .with_columns(
            n_committers=pl.when(pl.col("n_committers") > 0).then(pl.col("n_committers")),
            n_disc_starters=pl.when(pl.col("n_disc_starters") > 0).then(pl.col("n_disc_starters")),
        )
    )
    cols = ["n_commits", "n_committers", "n_discussions", "n_disc_starters", "n_community"]
    return (
        pl.concat([pp.commits.lazy(), pp.discussions.lazy(), people_in], how="diagonal_relaxed")
        .group_by("repo")
        .agg([pl.col(c).max() for c in cols])  # one row of each kind per repo at most
        .select("repo", *cols)
        .collect()  # lazily: the eager group-by of concatenated chunks is 2-3x slower
    )


def with_people(df: pl.DataFrame, pp: People) -> pl.DataFrame:
    """`df` (entity_id, ...) with the people variables; 0 where the detail table exists but
    the repo has none, null where the store has no such table at all. The counts are
    joined to the ids alone and set beside `df` (its list columns are not moved)."""
    counts = df.select("entity_id").join(
        people_counts(pp),
        left_on="entity_id",
        right_on="repo",
        how="left",
        maintain_order="left",
    )
    has = {
        "n_commits": pp.has_commits,
        "n_committers": pp.has_commits,
        "n_discussions": pp.has_discussions,
        "n_disc_starters": pp.has_discussions,
        "n_community": pp.has_commits or pp.has_discussions,
    }
    return df.hstack(
        counts.select(
            [(pl.col(c).fill_null(0) if ok else pl.col(c)).cast(pl.Int64) for c, ok in has.items()]
        ).get_columns()
    )


def activity(data: Data, source: str, at: Any) -> tuple[pl.DataFrame, People]:
    """One row per live repo with the activity variables, license and tags."""
    sid = data.resolve(source, at)
    result: tuple[pl.DataFrame, People] = data.memo(
        ("activity", source, sid), lambda: _activity(data, source, sid)
    )
    return result


PEOPLE_VARIABLES = ("n_commits", "n_committers", "n_discussions", "n_disc_starters", "n_community")


def details_read(data: Data, source: str, sid: int, st: pl.DataFrame) -> pl.Series:
    """Per row of `st` (entity_id, optionally disabled): True when the repo's details were
    read as of `sid` — it has a stored commit (every repo has an initial one) and is not
    disabled."""
    first = details(data, source).first_commit.filter(pl.col("snapshot_id") <= sid)
    have = st["entity_id"].is_in(first["entity_id"].implode())
    if "disabled" not in st.columns:
        st = st.join(data.state(source, sid, ["disabled"]), on="entity_id", how="left")
    disabled = st["disabled"].cast(pl.Boolean).fill_null(False)
    return (have & ~disabled).alias("details_read")


def _activity(data: Data, source: str, sid: int) -> tuple[pl.DataFrame, People]:
    cols = ["name", "author", "license", "tags", "pipeline_tag", "likes", "downloads", "disabled"]
    st = data.state(source, sid, cols)
    # a disabled repo's people are unknown now, even with commits stored from before
    pp = gather_people(data, source, sid, st.filter(~pl.col("disabled").fill_null(False)))
    df = with_people(st.rename({"likes": "n_likes", "downloads": "n_downloads"}), pp)
    df = df.with_columns(details_read(data, source, sid, st))
    df = licenses.with_category(unread_as_missing(df, pp.has_commits).drop("disabled"))
    return df, pp


def unread_as_missing(df: pl.DataFrame, has_commits: bool) -> pl.DataFrame:
    """The people variables of `df` null where `details_read` is false (when the store has
    no commit at all, `with_people` left them null already)."""
    if not has_commits:
        return df
    return df.with_columns(
        [
            pl.when(pl.col("details_read")).then(pl.col(c)).alias(c)
            for c in PEOPLE_VARIABLES
            if c in df.columns
        ]
    )


def variables(df: pl.DataFrame) -> list[str]:
    """The activity variables with at least one value (spaces have no downloads)."""
    return [v for v in VARIABLES if v in df.columns and df[v].drop_nulls().len() > 0]


def _need_variables(df: pl.DataFrame, source: str) -> None:
    if not variables(df):
        raise NotEnoughData(f"not enough data: no activity variables with values in {source!r}")


def distribution(data: Data, source: str, at: Any) -> pl.DataFrame:
    """Paper B tables 2-4: count, mean, std, min, quartiles, max, zero share, 80/99 % shares, Gini."""
    df, _ = activity(data, source, at)
    rows = [
        {"variable": v} | stats.describe(df[v]) | {"missing": df[v].null_count()}
        for v in variables(df)
    ]
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
    df = df.select("license_category", *vs)  # the groups copy no other column
    rows = []
    groups = [("all", df)] + [
        (c, df.filter(pl.col("license_category") == c))
        for c in sorted(df["license_category"].unique().to_list())
    ]
    for cat, part in groups:
        cols = {v: part[v].to_numpy() for v in vs}
        cache: dict[tuple[str, bytes], np.ndarray] = {}  # each column ranked once per mask
        rank = {v: stats.ranks(cache, v, np.asarray(x, dtype=float)) for v, x in cols.items()}
        for a, b in itertools.combinations(vs, 2):
            c = stats.correlate(cols[a], cols[b], rank[a], rank[b])
            rows.append(
                {
                    "license_category": cat,
                    "var_a": a,
                    "var_b": b,
                    "n": c.n,
                    "left_out": part.height - c.n,
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
    """license_category, license, repos, share, share_of_licensed: every category total,
    then the top licenses. `share` is of all repos (hubtide), `share_of_licensed` of the
    repos with a license (category not none: paper B's reading; null for none)."""
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
    licensed = st.filter(pl.col("license_category") != "none").height
    of_licensed = (
        pl.when((pl.col("license_category") != "none") & pl.lit(licensed > 0))
        .then(pl.col("repos") / max(licensed, 1))
        .otherwise(None)
    )
    return out.with_columns(
        pl.col("repos").cast(pl.Int64), share=pl.col("repos") / n, share_of_licensed=of_licensed
    ).sort([pl.col("license") != "(all)", "repos", "license"], descending=[False, True, False])


def license_series_rows(data: Data, source: str, sid: int) -> pl.DataFrame:
    """`licenses_series`' rows of snapshot `sid`: repos and share per license category."""
    st = licenses.with_category(data.state(source, sid, ["license"]))
    rows = []
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


_TESTED = ("permissive", "restrictive", "none")  # the categories license_tests compares


def license_tests(data: Data, source: str, at: Any) -> pl.DataFrame:
    """Paper B table 5: pairwise Mann-Whitney U between license categories per variable
    (models: with the table's `n_usage_spaces`, the spaces using each model); `missing_a`,
    `missing_b` are the repos left out for want of a value (details not read)."""
    df, _ = activity(data, source, at)
    vs = variables(df)
    if source == "hub:model":
        from analytics import adoption

        df = df.join(adoption.usage_by_model(data, source, at), on="name", how="left")
        vs.append("n_usage_spaces")
    rows = []
    slim = df.select("license_category", *vs)
    part = {c: slim.filter(pl.col("license_category") == c) for c in _TESTED}  # split once
    for v in vs:
        for a, b in (
            ("permissive", "restrictive"),
            ("permissive", "none"),
            ("restrictive", "none"),
        ):
            ya = part[a][v]
            yb = part[b][v]
            xa, xb = ya.drop_nulls(), yb.drop_nulls()
            u, pv = stats.mann_whitney(xa.to_numpy(), xb.to_numpy())
            rows.append(
                {
                    "variable": v,
                    "a": a,
                    "b": b,
                    "n_a": xa.len(),
                    "n_b": xb.len(),
                    "missing_a": ya.null_count(),
                    "missing_b": yb.null_count(),
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


def correlation_rows(df: pl.DataFrame, vs: list[str]) -> list[dict[str, Any]]:
    """`correlations` for a series: the same figures from two matrix products per license
    category (Pearson on values, Spearman as Pearson on average ranks, p-values from the
    t distribution with n - 2 degrees of freedom, as scipy computes them) instead of two
    scipy calls per pair. A category with missing values takes the pairwise scipy route.
    The tests check both routes against each other."""
    rows: list[dict[str, Any]] = []
    groups = [("all", df)] + [
        (c, df.filter(pl.col("license_category") == c))
        for c in sorted(df["license_category"].unique().to_list())
    ]
    for cat, part in groups:
        x = part.select([pl.col(v).cast(pl.Float64) for v in vs]).to_numpy()
        if np.isnan(x).any():
            for a, b in itertools.combinations(vs, 2):
                c = stats.correlate(part[a].to_numpy(), part[b].to_numpy())
                rows.append(
                    _corr_row(cat, a, b, c.n, c.pearson, c.pearson_p, c.spearman, c.spearman_p)
                )
            continue
        n = x.shape[0]
        ranks = part.select([pl.col(v).rank("average").cast(pl.Float64) for v in vs]).to_numpy()
        const = np.ptp(x, axis=0) == 0 if n else np.ones(len(vs), dtype=bool)
        with np.errstate(all="ignore"):
            pear = np.corrcoef(x, rowvar=False) if n >= 3 else None
            spear = np.corrcoef(ranks, rowvar=False) if n >= 3 else None
        for (i, a), (j, b) in itertools.combinations(enumerate(vs), 2):
            if pear is None or spear is None or const[i] or const[j]:
                rows.append(_corr_row(cat, a, b, n, None, None, None, None))
                continue
            r, s = float(np.clip(pear[i, j], -1, 1)), float(np.clip(spear[i, j], -1, 1))
            rows.append(_corr_row(cat, a, b, n, r, _t_p(r, n), s, _t_p(s, n)))
    return rows


def _t_p(r: float, n: int) -> float | None:
    """Two-sided p-value of a correlation r over n pairs (t with n - 2 df)."""
    if not math.isfinite(r):
        return None
    if abs(r) >= 1.0:
        return 0.0
    t = r * math.sqrt((n - 2) / (1.0 - r * r))
    return float(2.0 * sps.t.sf(abs(t), n - 2))


def _corr_row(
    cat: str,
    a: str,
    b: str,
    n: int,
    pearson: float | None,
    pearson_p: float | None,
    spearman: float | None,
    spearman_p: float | None,
) -> dict[str, Any]:
    return {
        "license_category": cat,
        "var_a": a,
        "var_b": b,
        "n": n,
        "pearson": pearson,
        "pearson_p": pearson_p,
        "spearman": spearman,
        "spearman_p": spearman_p,
    }


# the people variables proper: bots removed and identities merged, so counted only at the
# `people_series_max` snapshots (commits and discussions are counted at every one)
PEOPLE_ONLY = ("n_committers", "n_disc_starters", "n_community")


def _timeline_at(data: Data, source: str, sid: int) -> tuple[pl.DataFrame, pl.DataFrame]:
    """One snapshot of the activity series: every activity variable described, and the
    correlation matrices per license category. Likes, downloads, commits and discussions
    always; the people counts (bots removed and identities merged as of the snapshot,
    analytics.people_series) and the correlations, which need them, when the snapshot is
    one of the `people_series_max` the network series samples too."""
    from analytics import people_series

    st = data.state(source, sid, ["license", "likes", "downloads"])
    full = sid in data.people_ids(source)
    if full and data.has_memo(("activity", source, sid)):
        # the snapshot measures gathered this snapshot's people already: the same counts
        # (tests/analytics/test_series.py checks the two routes agree), not built again
        # from every commit's steps
        counts = activity(data, source, sid)[0].select("entity_id", *PEOPLE_VARIABLES)
    else:
        counts = people_series.counts_at(data, source, sid, st, with_people=full).counts
    df = licenses.with_category(
        st.rename({"likes": "n_likes", "downloads": "n_downloads"}).join(
            counts, on="entity_id", how="left"
        )
    )
    when = data.as_of_time(source, sid)
    vs = variables(df)
    dist: list[dict[str, Any]] = []
    for v in vs:
        d = stats.describe(df[v])
        dist.append(
            {
                "snapshot_id": sid,
                "as_of": when,
                "variable": v,
                "repos": d["count"],
                "mean": d["mean"],
                "p50": d["p50"],
                "max": d["max"],
                "share_zero": d["share_zero"],
                "share_80": d["share_80"],
                "share_99": d["share_99"],
                "gini": d["gini"],
            }
        )
    rows = correlation_rows(df, vs) if full else []
    corr = (
        pl.DataFrame(rows).select(
            pl.lit(sid, pl.Int64).alias("snapshot_id"),
            pl.lit(when, pl.Datetime("us", "UTC")).alias("as_of"),
            pl.all(),
        )
        if rows
        else pl.DataFrame()
    )
    return pl.DataFrame(dist), corr


def timeline_at(data: Data, source: str, sid: int) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(distribution rows, correlation rows) of snapshot `sid`, computed once per Data."""
    result: tuple[pl.DataFrame, pl.DataFrame] = data.memo(
        ("timeline_at", source, sid), lambda: _timeline_at(data, source, sid)
    )
    return result


def _sampled_note(data: Data, source: str) -> str:
    people, ids = data.people_ids(source), data.series_ids(source)
    return f"people and correlations: {len(people)} of {len(ids)} snapshots"


def series_rows(data: Data, source: str, sid: int) -> pl.DataFrame:
    """`activity_series`' rows of snapshot `sid` (the people variables when it is one of
    the `people_series_max` snapshots as of now; `series` keeps them only while it is)."""
    df = timeline_at(data, source, sid)[0]
    if df.is_empty():
        raise NotEnoughData(f"not enough data: no activity variables in {source!r}")
    return df


def series(data: Data, source: str, rows: SeriesRows) -> pl.DataFrame:
    """Paper B distributions over time: per snapshot and variable (likes, downloads,
    commits, discussions and the people counts: committers, discussion starters,
    community), count, mean, median, max, share at zero, shares holding 80/99 %, Gini."""
    df = rows.concat()
    if df.is_empty():
        raise NotEnoughData(f"not enough data: no activity variables in {source!r}")
    people = data.people_ids(source)
    return df.filter(
        pl.col("snapshot_id").is_in(people) | ~pl.col("variable").is_in(PEOPLE_ONLY)
    ).with_columns(sampled=pl.lit(_sampled_note(data, source)))


def correlation_series_rows(data: Data, source: str, sid: int) -> pl.DataFrame:
    """`activity_correlation_series`' rows of (a people-sampled) snapshot `sid`."""
    df = timeline_at(data, source, sid)[1]
    if df.is_empty():
        raise NotEnoughData(f"not enough data: fewer than two activity variables in {source!r}")
    return df


def correlation_series(data: Data, source: str, rows: SeriesRows) -> pl.DataFrame:
    """Pearson and Spearman (with p-values) of every pair of activity variables per
    snapshot, overall and per license category."""
    df = rows.concat()
    if df.is_empty():
        raise NotEnoughData(f"not enough data: fewer than two activity variables in {source!r}")
    return df.with_columns(sampled=pl.lit(_sampled_note(data, source)))
