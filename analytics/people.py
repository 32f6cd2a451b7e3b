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


def merge_identities(
    contributions: pl.DataFrame,
    *,
    similarity: float = 0.9,
    overrides: dict[str, str | None] | None = None,
) -> tuple[dict[str, str], pl.DataFrame]:
    """From (repo, author, commits) rows: author -> canonical, and the merges table.

    The merges table has author, merged_into, repo, similarity, rule (similar-name,
    real-name, override).
    """
    overrides = overrides or {}
    weight = dict(contributions.group_by("author").agg(pl.col("commits").sum()).iter_rows())
    pairs = (
        contributions.select("repo", "author")
        .unique()
        .join(contributions.select("repo", pl.col("author").alias("other")).unique(), on="repo")
        .filter(pl.col("author") < pl.col("other"))
        .unique(["author", "other"], keep="first")
    )
    parent: dict[str, str] = {}

    def find(x: str) -> str:
        while parent.get(x, x) != x:
            x = parent[x]
        return x

    def rank(x: str) -> tuple[int, int, str]:
        return (1 if " " in x else 0, -int(weight.get(x, 0)), x)

    merges = []
    for repo, a, b in pairs.select("repo", "author", "other").iter_rows():
        if a in overrides or b in overrides:
            continue  # the file decides for these authors
        ok, ratio, rule = _similar(a, b, similarity)
        if not ok:
            continue
        ra, rb = find(a), find(b)
        if ra == rb:
            continue
        keep, drop = (ra, rb) if rank(ra) <= rank(rb) else (rb, ra)
        parent[drop] = keep
        merges.append(
            {
                "author": drop,
                "merged_into": keep,
                "repo": repo,
                "similarity": round(ratio, 3),
                "rule": rule,
            }
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


def apply_identities(df: pl.DataFrame, col: str, canonical: dict[str, str]) -> pl.DataFrame:
    if not canonical:
        return df
    return df.with_columns(pl.col(col).replace(canonical))
