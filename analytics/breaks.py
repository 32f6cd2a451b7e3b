"""Methodology breaks: dates from which a counter means something else, shown on the series
they fall inside.

The table is written into the store by a backfill (`backfill/breaks.py`: one
`ops/crawl_events` row of kind `methodology-break` per break, its JSON payload holding
source, column, start, end, what, reference); analytics reads storage only, so it reads
them from there. A break affects a series when its start (or outage window) falls inside
the series' time span: a change of definition before the first snapshot, or after the
last, changes nothing within the series.
"""

from __future__ import annotations

import html
import json
from datetime import date, datetime
from typing import Any

import polars as pl

from analytics.data import Data
from storage import Store

BREAK_EVENT = "methodology-break"  # the kind backfill/breaks.py writes

# the payload's fields (backfill/breaks.py writes them; analytics cannot import backfill)
TEXT = ("source", "column", "what", "reference")
SCHEMA: dict[str, Any] = {**dict.fromkeys(TEXT, pl.String), "start": pl.Date, "end": pl.Date}


def recorded(store: Store, source: str | None = None) -> pl.DataFrame:
    """source, column, start, end, what, reference: the breaks held by the store (one row
    per break however many runs recorded it), of one source if given."""
    ev = store.events().filter(pl.col("kind") == BREAK_EVENT)
    if source is not None:
        ev = ev.filter(pl.col("source") == source)
    payloads = ev.select("payload").collect()["payload"].to_list()
    rows = []
    for p in payloads:
        b = json.loads(p)
        rows.append(
            {
                **{k: b.get(k) for k in TEXT},
                "start": date.fromisoformat(b["start"]),
                "end": date.fromisoformat(b["end"]) if b.get("end") else None,
            }
        )
    df = pl.DataFrame(rows, schema=SCHEMA)
    return df.unique(["source", "column", "start"], keep="last").sort("source", "start", "column")


def within(breaks: pl.DataFrame, first: datetime, last: datetime) -> pl.DataFrame:
    """The breaks inside [first, last]: a definition change starting after `first` and
    by `last`, or an outage window overlapping the span."""
    lo, hi = first.date(), last.date()
    change = pl.col("end").is_null() & (pl.col("start") > lo) & (pl.col("start") <= hi)
    window = pl.col("end").is_not_null() & (pl.col("start") <= hi) & (pl.col("end") >= lo)
    return breaks.filter(change | window)


def affecting(data: Data, source: str, frame: pl.DataFrame) -> pl.DataFrame:
    """The breaks of `source` inside the time span of a series frame: its `as_of`, or for a
    series summed over every snapshot (one row per entity, say), the snapshots' span."""
    span = frame["as_of"].drop_nulls() if "as_of" in frame.columns else None
    if span is None or span.len() == 0 or not isinstance(span[0], datetime):
        span = data.snapshots(source)["as_of"].drop_nulls()
    if span.len() == 0:
        return pl.DataFrame(schema=SCHEMA)
    held: pl.DataFrame = data.memo(("breaks", source), lambda: recorded(data.store, source))
    return within(held, span.min(), span.max())  # type: ignore[arg-type]


def series_note(data: Data, source: str, frame: pl.DataFrame | None, fig: Any = None) -> str:
    """The report's note under a series that a break falls inside ("" when none does); the
    chart, if its x axis is time, gets a dotted line at each break."""
    if frame is None:
        return ""
    found = affecting(data, source, frame)
    if found.height == 0:
        return ""
    items = []
    for b in found.iter_rows(named=True):
        when = str(b["start"]) + (f" to {b['end']}" if b["end"] else "")
        items.append(
            f"<li><b>{html.escape(b['column'])}</b> {html.escape(when)}: "
            f"{html.escape(b['what'])} <span class=meta>({html.escape(b['reference'])})</span></li>"
        )
        if fig is not None and _time_axis(fig):
            fig.add_vline(x=datetime.combine(b["start"], datetime.min.time()), line_dash="dot")
    return (
        "<div class=note><b>Methodology break inside this series</b> (values on either side "
        f"are not comparable as such):<ul>{''.join(items)}</ul></div>"
    )


def _time_axis(fig: Any) -> bool:
    for trace in fig.data:
        xs = getattr(trace, "x", None)
        if xs is not None and len(xs):
            return isinstance(xs[0], datetime | date) or (
                isinstance(xs[0], str) and len(xs[0]) >= 10 and xs[0][4] == "-"
            )
    return False
