"""People counts per snapshot for the series, without regathering every snapshot's people.

`activity.gather_people` builds one snapshot's contributions from scratch (about a second
for 100k models). A series needs only the per-repo counts, so this module reads every
commit once (`activity.details`) and keeps, per (repo, author), the snapshot of the
author's first commit there: a snapshot's raw committer counts are then one filter and one
group-by. Identity merging is redone at every snapshot (the name matches present then and
the commit weights then decide the canonical names), but it only changes the repos where a
merged-away name appears, so only those repos are recounted with the merged names; every
other repo keeps its raw counts. Discussion starters come from the store's own as-of view
of discussions at each snapshot (a discussion's author may change, e.g. to "deleted").

The tests check every count against `activity.activity` at the same snapshot.
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from analytics import activity, people
from analytics.data import Data


@dataclass(frozen=True)
class Steps:
    """Commits of one source folded by the snapshot they were first seen in."""

    commit_steps: pl.DataFrame  # repo, snapshot_id, commits: non-bot commits first seen then
    author_steps: pl.DataFrame  # repo, author, snapshot_id, commits
    first_seen: pl.DataFrame  # repo, author, snapshot_id: the author's first commit in repo


@dataclass(frozen=True)
class PeopleAt:
    """One snapshot's people counts per live repo and the identities used for them."""

    counts: (
        pl.DataFrame
    )  # entity_id, n_commits, n_discussions, n_committers, n_disc_starters, n_community
    canonical: dict[str, str]


def steps(data: Data, source: str) -> Steps:
    result: Steps = data.memo(("people-steps", source), lambda: _steps(data, source))
    return result


def _steps(data: Data, source: str) -> Steps:
    base = activity.details(data, source)
    c = base.commits.rename({"entity_id": "repo"})
    counted = c if data.params.commits_without_bots else base.every.rename({"entity_id": "repo"})
    commit_steps = (
        counted.unique(["repo", "commit"])
        .group_by("repo", "snapshot_id")
        .agg(pl.len().cast(pl.Int64).alias("commits"))
    )
    author_steps = c.group_by("repo", "author", "snapshot_id").agg(
        pl.len().cast(pl.Int64).alias("commits")
    )
    first_seen = author_steps.group_by("repo", "author").agg(pl.col("snapshot_id").min())
    return Steps(commit_steps, author_steps, first_seen)


def _in_live(frame: pl.DataFrame, live: pl.DataFrame) -> pl.DataFrame:
    return frame.join(live.select(pl.col("entity_id").alias("repo")), on="repo", how="semi")


def counts_at(
    data: Data, source: str, sid: int, live: pl.DataFrame, *, with_people: bool = True
) -> PeopleAt:
    """The people variables of every repo in `live` (entity_id) as of snapshot `sid`,
    filled as `activity.with_people` fills them; with `with_people` false only n_commits
    and n_discussions (no merging needed)."""
    p = data.params
    base = activity.details(data, source)
    st = steps(data, source)
    rt = source.split(":", 1)[1]
    has_commits = (
        base.first_commit.filter(pl.col("snapshot_id") <= sid)
        .join(live.select("entity_id"), on="entity_id", how="semi")
        .height
        > 0
    )
    n_commits = (
        _in_live(st.commit_steps.filter(pl.col("snapshot_id") <= sid), live)
        .group_by("repo")
        .agg(pl.col("commits").sum().alias("n_commits"))
    )
    pa = _in_live(st.first_seen.filter(pl.col("snapshot_id") <= sid), live).select("repo", "author")
    disc = (
        data.store.discussions(rt, at=sid)
        .select(pl.col("entity_id").alias("repo"), "author")
        .collect()
    )
    disc = _in_live(disc, live)
    has_discussions = disc.height > 0
    n_disc = disc.group_by("repo").agg(pl.len().cast(pl.Int64).alias("n_discussions"))
    if not with_people:
        out = (
            live.select("entity_id")
            .join(n_commits, left_on="entity_id", right_on="repo", how="left")
            .join(n_disc, left_on="entity_id", right_on="repo", how="left")
            .with_columns(
                (pl.col("n_commits").fill_null(0) if has_commits else pl.col("n_commits")).cast(
                    pl.Int64
                ),
                (
                    pl.col("n_discussions").fill_null(0)
                    if has_discussions
                    else pl.col("n_discussions")
                ).cast(pl.Int64),
            )
        )
        return PeopleAt(_missing(data, source, sid, out, has_commits), {})
    starters = (
        disc.filter(~people.bot_expr("author", p.bots) & (pl.col("author") != "deleted"))
        .select("repo", "author")
        .unique()
    )

    canonical = _canonical(data, source, sid, live, pa, starters)

    committers = pa.group_by("repo").agg(pl.len().cast(pl.Int64).alias("n_committers"))
    n_start = starters.group_by("repo").agg(pl.len().cast(pl.Int64).alias("n_disc_starters"))
    both = (
        starters.join(pa, on=["repo", "author"], how="semi")
        .group_by("repo")
        .agg(pl.len().cast(pl.Int64).alias("both"))
    )
    counts = (
        committers.join(n_start, on="repo", how="full", coalesce=True)
        .join(both, on="repo", how="left")
        .with_columns(
            n_community=pl.col("n_committers").fill_null(0)
            + pl.col("n_disc_starters").fill_null(0)
            - pl.col("both").fill_null(0)
        )
        .drop("both")
    )
    data.memo(("canonical", source, sid), lambda: canonical)
    if canonical:
        counts = _recount_merged(counts, pa, starters, canonical)
    out = (
        live.select("entity_id")
        .join(n_commits, left_on="entity_id", right_on="repo", how="left")
        .join(n_disc, left_on="entity_id", right_on="repo", how="left")
        .join(counts, left_on="entity_id", right_on="repo", how="left")
    )
    has = {
        "n_commits": has_commits,
        "n_committers": has_commits,
        "n_discussions": has_discussions,
        "n_disc_starters": has_discussions,
        "n_community": has_commits or has_discussions,
    }
    out = out.with_columns(
        [(pl.col(c).fill_null(0) if ok else pl.col(c)).cast(pl.Int64) for c, ok in has.items()]
    )
    return PeopleAt(_missing(data, source, sid, out, has_commits), canonical)


def _missing(
    data: Data, source: str, sid: int, out: pl.DataFrame, has_commits: bool
) -> pl.DataFrame:
    """`out` with the people variables of unread repos null (`activity.details_read`)."""
    read = activity.details_read(data, source, sid, out.select("entity_id"))
    return activity.unread_as_missing(out.with_columns(read), has_commits).drop("details_read")


def _canonical(
    data: Data,
    source: str,
    sid: int,
    live: pl.DataFrame,
    pa: pl.DataFrame,
    starters: pl.DataFrame,
) -> dict[str, str]:
    """The identities of snapshot `sid`: the name matches between people present in the
    same live repo then, weighted by their commits then (as `activity.gather_people`)."""
    base = activity.details(data, source)
    st = steps(data, source)
    similar = base.similar
    extra = starters.join(base.known, on=["repo", "author"], how="anti")
    if extra.height:  # a discussion's author in an older state (e.g. before "deleted")
        again = pl.concat([pa, starters]).join(extra.select("repo").unique(), on="repo", how="semi")
        similar = pl.concat([similar, activity.similar_in(data, again.unique())]).unique()
    repos = similar["repo"].unique().implode()
    present = pl.concat(
        [pa.filter(pl.col("repo").is_in(repos)), starters.filter(pl.col("repo").is_in(repos))]
    ).unique()
    similar = similar.join(present, on=["repo", "author"], how="semi").join(
        present.rename({"author": "other"}), on=["repo", "other"], how="semi"
    )
    names = pl.concat([similar["author"], similar["other"]]).unique().implode()
    weight = dict(
        _in_live(
            st.author_steps.filter(pl.col("author").is_in(names) & (pl.col("snapshot_id") <= sid)),
            live,
        )
        .group_by("author")
        .agg(pl.col("commits").sum())
        .iter_rows()
    )
    canonical, _ = people.union_identities(
        similar, weight, people.read_overrides(data.params.identity_overrides)
    )
    return canonical


def _recount_merged(
    counts: pl.DataFrame, pa: pl.DataFrame, starters: pl.DataFrame, canonical: dict[str, str]
) -> pl.DataFrame:
    """Recount the repos where a merged-away name appears, with the merged names."""
    merged = pl.DataFrame({"author": list(canonical)}, schema={"author": pl.String})
    repos = pl.concat(
        [
            pa.join(merged, on="author", how="semi").select("repo"),
            starters.join(merged, on="author", how="semi").select("repo"),
        ]
    ).unique()
    if repos.is_empty():
        return counts
    c = people.apply_identities(pa.join(repos, on="repo", how="semi"), "author", canonical)
    s = people.apply_identities(starters.join(repos, on="repo", how="semi"), "author", canonical)
    fixed = (
        c.group_by("repo")
        .agg(pl.col("author").n_unique().cast(pl.Int64).alias("n_committers"))
        .join(
            s.group_by("repo").agg(
                pl.col("author").n_unique().cast(pl.Int64).alias("n_disc_starters")
            ),
            on="repo",
            how="full",
            coalesce=True,
        )
        .join(
            pl.concat([c, s])
            .group_by("repo")
            .agg(pl.col("author").n_unique().cast(pl.Int64).alias("n_community")),
            on="repo",
            how="full",
            coalesce=True,
        )
    )
    return pl.concat(
        [counts.join(repos, on="repo", how="anti"), fixed.select(counts.columns)],
        how="vertical_relaxed",
    )


def contributions_at(
    data: Data, source: str, sid: int, live: pl.DataFrame
) -> tuple[bool, pl.DataFrame]:
    """(has_commits, repo/author/commits with the identities of `sid`) for the network
    series: the same rows as `activity.gather_people(...).contributions`."""
    st = steps(data, source)
    canonical: dict[str, str] = data.memo(
        ("canonical", source, sid), lambda: counts_at(data, source, sid, live).canonical
    )
    rows = _in_live(st.author_steps.filter(pl.col("snapshot_id") <= sid), live)
    contrib = (
        people.apply_identities(rows, "author", canonical)
        .group_by("repo", "author")
        .agg(pl.col("commits").sum())
    )
    has = (
        activity.details(data, source)
        .first_commit.filter(pl.col("snapshot_id") <= sid)
        .join(live.select("entity_id"), on="entity_id", how="semi")
        .height
        > 0
    )
    return has, contrib
