"""License categories from the one shipped mapping file, `analytics/reference/licenses.csv`.

The file has `license,category,note` rows (category: permissive | restrictive | none).
Absent licenses and "unknown" are `none`; a license id the file does not list is
`restrictive` when it names a custom or family license we recognise by prefix (the
file's own prefixes: gpl-, agpl-, cc-by-nc, cc-by-sa, cc-by-nd, openrail, llama), else
`other` so it is visible in the report and can be added to the file.
"""

from __future__ import annotations

import csv
from functools import cache
from pathlib import Path

import polars as pl

MAPPING_FILE = Path(__file__).with_name("reference") / "licenses.csv"
CATEGORIES = ("permissive", "restrictive", "none")
_RESTRICTIVE_PREFIXES = (
    "gpl",
    "agpl",
    "lgpl",
    "cc-by-nc",
    "cc-by-sa",
    "cc-by-nd",
    "openrail",
    "llama",
    "bigscience",
    "bigcode",
)
_PERMISSIVE_PREFIXES = ("bsd", "cc-by-", "cc0")


@cache
def mapping() -> dict[str, str]:
    """license id (lowercase) -> category, from the shipped file."""
    with MAPPING_FILE.open(encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    out = {}
    for r in rows:
        cat = r["category"].strip()
        if cat not in CATEGORIES:
            raise ValueError(
                f"{MAPPING_FILE}: license {r['license']!r} has category {cat!r}; allowed: {', '.join(CATEGORIES)}"
            )
        out[r["license"].strip().lower()] = cat
    return out


def category(license_id: str | None) -> str:
    """The category of one license id."""
    if license_id is None or not license_id.strip():
        return "none"
    lid = license_id.strip().lower()
    m = mapping()
    if lid in m:
        return m[lid]
    if lid.startswith(_RESTRICTIVE_PREFIXES):
        return "restrictive"
    if lid.startswith(_PERMISSIVE_PREFIXES):
        return "permissive"
    return "other"


def with_category(df: pl.DataFrame, column: str = "license") -> pl.DataFrame:
    """Add `license_category` next to a license column."""
    values = df[column].unique().to_list()
    table = pl.DataFrame(
        {column: values, "license_category": [category(v) for v in values]},
        schema={column: df.schema[column], "license_category": pl.String},
    )
    return df.join(table, on=column, how="left", nulls_equal=True)
