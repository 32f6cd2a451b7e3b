"""Known methodology breaks in the archives' counters: data, one table.

`BREAKS` is the table. A backfill writes the rows of each source it imports into the store
(`ops/crawl_events`, kind `methodology-break`, one JSON payload per break: `break_events`),
so analytics, which reads storage only, shows them on the series they affect.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date

import polars as pl

from storage import CrawlEvent, Store

BREAK_EVENT = "methodology-break"  # the crawl-event kind carrying one row of BREAKS


@dataclass(frozen=True)
class Break:
    """A date from which (or a window in which) a series means something else."""

    source: str
    column: str
    start: date
    end: date | None  # None: a change of definition from `start` on; else an outage window
    what: str
    reference: str


BREAKS: tuple[Break, ...] = (
    Break(
        "hub:dataset",
        "downloads",
        date(2024, 9, 1),
        None,
        "dataset downloads count every file GET/HEAD (one per IP per 5 min), not only "
        "load_dataset calls",
        "hub-docs datasets-download-stats.md",
    ),
    Break(
        "hub:model",
        "downloads_all_time",
        date(2025, 2, 26),
        None,
        "downloadsAllTime exists from here on (null before: unknown, not zero)",
        "field-notes.md section 1",
    ),
    Break(
        "hub:dataset",
        "downloads_all_time",
        date(2025, 2, 26),
        None,
        "downloadsAllTime exists from here on (null before: unknown, not zero)",
        "field-notes.md section 1",
    ),
    Break(
        "hub:model",
        "trending_score",
        date(2024, 10, 1),
        None,
        "trendingScore (and cardData) appear in hub-stats from about 2024-10",
        "field-notes.md section 2 (month unverified)",
    ),
    Break(
        "pypi",
        "entities",
        date(2018, 3, 1),
        None,
        "top-pypi list size changes (5,000 / 4,000 / 5,000 / 8,000 / 15,000 over the years)",
        "hugovk/top-pypi-packages history",
    ),
    Break(
        "pypi",
        "downloads",
        date(2025, 7, 1),
        None,
        "top-pypi counts come from ClickHouse instead of BigQuery",
        "top-pypi-packages-30-days.json `source` field",
    ),
    Break(
        "hub:model",
        "entities",
        date(2025, 1, 1),
        None,
        "hub-stats left GGUF repos out for several weeks (exact window unverified here: "
        "the entities series shows it as a dip)",
        "field-notes.md / hub-stats discussions (unverified)",
    ),
)


def breaks_frame(source: str | None = None) -> pl.DataFrame:
    """The breaks as a frame (source, column, start, end, what, reference), of one source."""
    rows = [b.__dict__ for b in BREAKS if source is None or b.source == source]
    schema = {
        "source": pl.String,
        "column": pl.String,
        "start": pl.Date,
        "end": pl.Date,
        "what": pl.String,
        "reference": pl.String,
    }
    return pl.DataFrame(rows, schema=schema)


def _key(b: Mapping[str, object]) -> tuple[str, str, str]:
    return (str(b["source"]), str(b["column"]), str(b["start"]))


def break_events(store: Store, source: str) -> list[CrawlEvent]:
    """The rows of BREAKS for `source` the store does not hold yet, as crawl events."""
    have = set()
    if source in store.sources():
        ev = (
            store.events()
            .filter((pl.col("kind") == BREAK_EVENT) & (pl.col("source") == source))
            .collect()
        )
        have = {_key(json.loads(p)) for p in ev["payload"].to_list()}
    out = []
    for b in BREAKS:
        row = {
            "source": b.source,
            "column": b.column,
            "start": b.start.isoformat(),
            "end": b.end.isoformat() if b.end else None,
            "what": b.what,
            "reference": b.reference,
        }
        if b.source == source and _key(row) not in have:
            out.append(
                CrawlEvent(BREAK_EVENT, f"{b.column} from {row['start']}", payload=json.dumps(row))
            )
    return out
