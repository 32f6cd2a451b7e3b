"""People in the activity counts: bot removal and identity merging (paper B).

Bots: the names in BOTS, the config's extra names, and names ending in `[bot]`, `-bot`
or `_bot`. Identities: two authors of the same repo are merged when their normalised names
(lowercase, letters and digits only) are at least `similarity` alike (difflib ratio), or
when one looks like a real name (has a space) and its normalised form is contained in the
other's. The username (no space) is kept, else the one with more commits, else the smaller
name. Every merge is recorded; an override CSV `author,merged_into` forces a merge, or
with an empty `merged_into` forbids merging that author.
"""

from __future__ import annotations

import csv
import difflib
import re
from collections.abc import Iterable
from pathlib import Path

import polars as pl

BOTS: tuple[str, ...] = (
    "librarian-bot",
    "SFconvertbot",
    "hf-bot",
    "system",
    "github-actions",
    "dependabot",
)
_BOT_SUFFIX = re.compile(r"(\[bot\]|[-_]bot)$", re.IGNORECASE)


def is_bot(name: str | None, extra: Iterable[str] = ()) -> bool:
    if not name:
        return True  # no name is nobody we can count
    low = name.lower()
    return low in {b.lower() for b in (*BOTS, *extra)} or bool(_BOT_SUFFIX.search(name))


def bot_expr(col: str, extra: Iterable[str] = ()) -> pl.Expr:
    """True where `col` is a bot (or empty)."""
    names = [b.lower() for b in (*BOTS, *extra)]
    c = pl.col(col)
    return (
        c.is_null()
        | (c == "")
        | c.str.to_lowercase().is_in(names)
        | c.str.contains(r"(?i)(\[bot\]|[-_]bot)$")
    )


def _norm(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())


def _similar(a: str, b: str, threshold: float) -> tuple[bool, float, str]:
    na, nb = _norm(a), _norm(b)
    if not na or not nb:
        return False, 0.0, ""
    ratio = difflib.SequenceMatcher(None, na, nb).ratio()
    if ratio >= threshold:
        return True, ratio, "similar-name"
    if (" " in a) != (" " in b):
        real, user = (na, nb) if " " in a else (nb, na)
        if len(real) >= 4 and (real in user or user in real):
            return True, ratio, "real-name"
    return False, ratio, ""


def read_overrides(path: str | Path | None) -> dict[str, str | None]:
    """author -> merged_into (None = never merge) from the override CSV; {} without a file."""
    if not path:
        return {}
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"identity override file {p} does not exist")
    out: dict[str, str | None] = {}
    with p.open(encoding="utf-8") as f:
        for r in csv.DictReader(f):
            if "author" not in r or "merged_into" not in r:
                raise ValueError(f"{p}: needs the columns author,merged_into; has {', '.join(r)}")
            out[r["author"].strip()] = (r["merged_into"] or "").strip() or None
    return out


def _norm_expr(col: str) -> pl.Expr:
    """`_norm` in Polars (lowercase, letters and digits only)."""
    return pl.col(col).str.to_lowercase().str.replace_all(r"[^a-z0-9]", "")


def candidate_pairs(pairs: pl.DataFrame, similarity: float) -> pl.DataFrame:
    """The distinct (author, other) pairs that could pass `_similar`, by a vectorised bound
    that never drops one that passes (the tests check that against `_similar` itself).

    difflib's ratio is 2M / (la + lb) with M <= min(la, lb), so names whose normalised
    lengths are too far apart cannot reach `similarity`; the real-name rule needs exactly
    one name with a space whose normalised form (>= 4 characters) is contained in the
    other's, or the other way round. Only the survivors pay for difflib in Python.
    """
    la, lb = pl.col("na").str.len_chars(), pl.col("nb").str.len_chars()
    sa = pl.col("author").str.contains(" ", literal=True)
    sb = pl.col("other").str.contains(" ", literal=True)
    ratio_ok = 2.0 * pl.min_horizontal(la, lb) >= similarity * (la + lb) - 1e-9
    real_ok = (
        (sa != sb)
        & (pl.when(sa).then(la).otherwise(lb) >= 4)
        & (
            pl.col("nb").str.contains(pl.col("na"), literal=True)
            | pl.col("na").str.contains(pl.col("nb"), literal=True)
        )
    )
    return (
        pairs.select("author", "other")
        .unique()
        .with_columns(na=_norm_expr("author"), nb=_norm_expr("other"))
        .filter((la > 0) & (lb > 0) & (ratio_ok | real_ok))
        .select("author", "other")
    )


_SIMILAR_SCHEMA = {
    "author": pl.String,
    "other": pl.String,
    "similarity": pl.Float64,
    "rule": pl.String,
}


def similar_pairs(
    pairs: pl.DataFrame,
    similarity: float = 0.9,
    cache: dict[tuple[str, str], tuple[bool, float, str]] | None = None,
) -> pl.DataFrame:
    """author, other, similarity, rule: the distinct pairs of `pairs` that merge by name.

    `cache` (pair -> `_similar` result) lets a series reuse the verdicts of earlier
    snapshots: a verdict depends on the two names only.
    """
    cache = {} if cache is None else cache
    rows = []
    for a, b in candidate_pairs(pairs, similarity).iter_rows():
        key = (a, b)
        if key not in cache:
            cache[key] = _similar(a, b, similarity)
        ok, ratio, rule = cache[key]
        if ok:
            rows.append((a, b, round(ratio, 3), rule))
    return pl.DataFrame(rows, schema=_SIMILAR_SCHEMA, orient="row")


def repo_pairs(contributions: pl.DataFrame) -> pl.DataFrame:
    """repo, author, other: every ordered pair (author < other) of people of one repo."""
    people = contributions.select("repo", "author").unique()
    return people.join(people.rename({"author": "other"}), on="repo").filter(
        pl.col("author") < pl.col("other")
    )


def union_identities(
    similar: pl.DataFrame,
    weight: dict[str, int],
    overrides: dict[str, str | None] | None = None,
) -> tuple[dict[str, str], pl.DataFrame]:
    """author -> canonical and the merges table from the similar pairs present now.

    `similar` has repo, author, other, similarity, rule (a pair may appear for several
    repos; the smallest repo is recorded). The canonical of a group is its best-ranked name
    (username before real name, then more commits, then the smaller name) whatever the
    order of the pairs, so a series and a single snapshot agree.
    """
    overrides = overrides or {}
    parent: dict[str, str] = {}

    def find(x: str) -> str:
        while parent.get(x, x) != x:
            x = parent[x]
        return x

    def rank(x: str) -> tuple[int, int, str]:
        return (1 if " " in x else 0, -int(weight.get(x, 0)), x)

    merges = []
    first = similar.sort("author", "other", "repo").unique(
        ["author", "other"], keep="first", maintain_order=True
    )
    for repo, a, b, ratio, rule in first.select(
        "repo", "author", "other", "similarity", "rule"
    ).iter_rows():
        if a in overrides or b in overrides:
            continue  # the file decides for these authors
        ra, rb = find(a), find(b)
        if ra == rb:
            continue
        keep, drop = (ra, rb) if rank(ra) <= rank(rb) else (rb, ra)
        parent[drop] = keep
        merges.append(
            {"author": drop, "merged_into": keep, "repo": repo, "similarity": ratio, "rule": rule}
        )
    canonical = {a: find(a) for a in parent}
    for author, target in overrides.items():
        if target:
            canonical[author] = target
            merges.append(
                {
                    "author": author,
                    "merged_into": target,
                    "repo": None,
                    "similarity": None,
                    "rule": "override",
                }
            )
    # re-point merged names at their final canonical (an override may move a root)
    for a in list(canonical):
        seen = {a}
        t = canonical[a]
        while t in canonical and canonical[t] != t and t not in seen:
            seen.add(t)
            t = canonical[t]
        canonical[a] = t
    table = pl.DataFrame(
        merges,
        schema={
            "author": pl.String,
            "merged_into": pl.String,
            "repo": pl.String,
            "similarity": pl.Float64,
            "rule": pl.String,
        },
    )
    return canonical, table


def merge_identities(
    contributions: pl.DataFrame,
    *,
    similarity: float = 0.9,
    overrides: dict[str, str | None] | None = None,
    cache: dict[tuple[str, str], tuple[bool, float, str]] | None = None,
) -> tuple[dict[str, str], pl.DataFrame]:
    """From (repo, author, commits) rows: author -> canonical, and the merges table.

    The merges table has author, merged_into, repo, similarity, rule (similar-name,
    real-name, override).
    """
    weight = dict(contributions.group_by("author").agg(pl.col("commits").sum()).iter_rows())
    pairs = repo_pairs(contributions)
    sim = similar_pairs(pairs, similarity, cache)
    present = pairs.join(sim, on=["author", "other"])
    return union_identities(present, weight, overrides)


def apply_identities(df: pl.DataFrame, col: str, canonical: dict[str, str]) -> pl.DataFrame:
    if not canonical:
        return df
    return df.with_columns(pl.col(col).replace(canonical))
