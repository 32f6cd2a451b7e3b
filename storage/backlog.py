"""The details backlog and details coverage of Hub sources (`ops/detail_backlog`,
`ops/detail_coverage`): generic bookkeeping the crawler drives through `Store`.

A listing snapshot completes without the per-repo details (commits, discussions, cards);
they are fetched later, in numbered drain batches, and attributed to a complete snapshot.
`ops/detail_backlog` records, per source and batch, a `claim` row per (entity, detail,
sha) before a batch is fetched and a `done` row per detail that came in after its detail
rows are written. What a repo still needs is its listed sha against its newest `done` sha
per detail (the crawler computes it), so the backlog survives crawls and restarts.

Exactly once: a batch's detail rows are appended under txn (`details:{source}:{kind}`,
batch); its claim and done rows under (`backlog:{source}:claim|done`, batch). A drain killed
mid-batch finds the claim open (claim version > done version) and runs that batch again
first: its detail appends already in are skipped (no row twice), then the done rows land.

`ops/detail_coverage` keeps, per snapshot, detail and scope, how many of its listed repos
had that detail at their listed sha (appended whenever measured; the newest row counts).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import polars as pl
import pyarrow as pa

from storage import schemas
from storage.core import StoreCore
from storage.layout import BACKLOG, COVERAGE, DETAIL_KINDS, DetailKind, detail_table
from storage.writer import details_table

log = logging.getLogger(__name__)

ENTRIES = ("claim", "done")

BACKLOG_SCHEMA = pa.schema(
    [
        pa.field("source", pa.string(), nullable=False),
        pa.field("batch", pa.int64(), nullable=False),
        pa.field("entry", pa.string(), nullable=False),  # claim | done
        pa.field("entity_id", pa.string(), nullable=False),
        pa.field("name", pa.string()),
        pa.field("detail", pa.string(), nullable=False),  # commits | discussions | cards
        pa.field("sha", pa.string()),
        pa.field("snapshot_id", pa.int64(), nullable=False),  # the details' snapshot
        pa.field("at", pa.timestamp("us", tz="UTC"), nullable=False),
    ]
)

COVERAGE_SCHEMA = pa.schema(
    [
        pa.field("source", pa.string(), nullable=False),
        pa.field("snapshot_id", pa.int64(), nullable=False),
        pa.field("detail", pa.string(), nullable=False),
        pa.field("scope", pa.string(), nullable=False),
        pa.field("covered", pa.int64(), nullable=False),
        pa.field("total", pa.int64(), nullable=False),
        pa.field("at", pa.timestamp("us", tz="UTC"), nullable=False),
    ]
)


def _app(source: str, part: str) -> str:
    return f"backlog:{source}:{part}"


def _details_app(source: str, kind: str) -> str:
    return f"details:{source}:{kind}"


def _check_detail(detail: str) -> None:
    if detail not in DETAIL_KINDS:
        raise ValueError(f"detail kind {detail!r} unknown; kinds are {', '.join(DETAIL_KINDS)}")


def _ensure(core: StoreCore, rel: str) -> None:
    core.tables.ensure(rel, BACKLOG_SCHEMA if rel == BACKLOG else COVERAGE_SCHEMA)


def _version(core: StoreCore, rel: str, app: str) -> int:
    dt = core.tables.get(rel)
    if dt is None:
        return 0
    v = dt.transaction_version(app)
    return int(v) if v is not None else 0


def _entries(core: StoreCore, source: str, entry: str) -> pl.DataFrame:
    dt = core.tables.get(BACKLOG)
    if dt is None:
        empty = pl.from_arrow(BACKLOG_SCHEMA.empty_table())
        assert isinstance(empty, pl.DataFrame)
        return empty
    return (
        pl.scan_delta(dt)
        .filter((pl.col("source") == source) & (pl.col("entry") == entry))
        .collect()
    )


def detailed(core: StoreCore, source: str) -> pl.DataFrame:
    """entity_id, detail, sha: the newest `done` sha of each repo's each detail."""
    df = _entries(core, source, "done")
    return (
        df.sort("batch")
        .unique(["entity_id", "detail"], keep="last", maintain_order=True)
        .select("entity_id", "detail", "sha")
    )


def open_claim(core: StoreCore, source: str) -> tuple[int, pl.DataFrame | None]:
    """(the next batch number, the rows of a claimed batch not marked done, or None)."""
    claimed = _version(core, BACKLOG, _app(source, "claim"))
    done = _version(core, BACKLOG, _app(source, "done"))
    if claimed > done:
        rows = _entries(core, source, "claim").filter(pl.col("batch") == claimed)
        return claimed, rows
    return max(claimed, done) + 1, None


def _rows(
    source: str, batch: int, entry: str, snapshot_id: int, rows: Sequence[dict[str, Any]]
) -> pa.Table:
    at = datetime.now(UTC)
    out = []
    for r in rows:
        _check_detail(r["detail"])
        out.append(
            {
                "source": source,
                "batch": batch,
                "entry": entry,
                "entity_id": r["entity_id"],
                "name": r.get("name"),
                "detail": r["detail"],
                "sha": r.get("sha"),
                "snapshot_id": snapshot_id,
                "at": at,
            }
        )
    return pa.Table.from_pylist(out, schema=BACKLOG_SCHEMA)


def mark(
    core: StoreCore,
    source: str,
    batch: int,
    entry: str,
    snapshot_id: int,
    rows: Sequence[dict[str, Any]],
) -> bool:
    """Append a batch's claim or done rows (entity_id, name, detail, sha), once."""
    if entry not in ENTRIES:
        raise ValueError(f"backlog entry {entry!r} unknown; entries are {', '.join(ENTRIES)}")
    if batch < 1:
        raise ValueError(f"backlog batch numbers start at 1, not {batch}")
    _ensure(core, BACKLOG)
    table = _rows(source, batch, entry, snapshot_id, rows)
    return core.tables.append_once(BACKLOG, table, _app(source, entry), batch)


def append_details(
    core: StoreCore,
    source: str,
    snapshot_id: int,
    kind: DetailKind,
    batch: int,
    rows: Sequence[dict[str, Any]],
) -> bool:
    """Append a drain batch's detail rows, attributed to complete snapshot `snapshot_id`
    (readers show details of complete snapshots only), once per (source, kind, batch).
    Rows that do not fit the schema are dropped, with a warning."""
    if kind not in schemas.DETAIL_SCHEMAS:
        raise ValueError(f"detail kind {kind!r} unknown; kinds are {', '.join(DETAIL_KINDS)}")
    if batch < 1:
        raise ValueError(f"backlog batch numbers start at 1, not {batch}")
    if core.catalog.status_of(source, snapshot_id) != "complete":
        raise ValueError(
            f"details are attributed to complete snapshots only; {source} snapshot "
            f"{snapshot_id} is {core.catalog.status_of(source, snapshot_id)}"
        )
    table, rejects = details_table(source, snapshot_id, kind, list(rows))
    if rejects:
        log.warning(
            "%s %s batch %s: %d rows dropped: %s",
            source,
            kind,
            batch,
            len(rejects),
            rejects[0].reason,
        )
    return core.tables.append_once(detail_table(kind), table, _details_app(source, kind), batch)


def record_coverage(
    core: StoreCore, source: str, snapshot_id: int, rows: Sequence[dict[str, Any]]
) -> None:
    """Append coverage rows (detail, scope, covered, total) of one snapshot."""
    at = datetime.now(UTC)
    out = []
    for r in rows:
        _check_detail(r["detail"])
        covered, total = int(r["covered"]), int(r["total"])
        if not 0 <= covered <= total:
            raise ValueError(f"coverage {covered} of {total}: covered must be in 0..total")
        out.append(
            {
                "source": source,
                "snapshot_id": snapshot_id,
                "detail": r["detail"],
                "scope": str(r["scope"]),
                "covered": covered,
                "total": total,
                "at": at,
            }
        )
    if not out:
        return
    _ensure(core, COVERAGE)
    core.append_plain(COVERAGE, pa.Table.from_pylist(out, schema=COVERAGE_SCHEMA))


def coverage(core: StoreCore, source: str | None = None) -> pl.DataFrame:
    """The newest coverage row per (source, snapshot_id, detail, scope), with `ratio`."""
    dt = core.tables.get(COVERAGE)
    if dt is None:
        df = pl.from_arrow(COVERAGE_SCHEMA.empty_table())
        assert isinstance(df, pl.DataFrame)
    else:
        lf = pl.scan_delta(dt)
        if source is not None:
            lf = lf.filter(pl.col("source") == source)
        df = lf.collect()
    return (
        df.sort("at")
        .unique(["source", "snapshot_id", "detail", "scope"], keep="last")
        .with_columns(
            # nothing listed: nothing missing
            pl.when(pl.col("total") > 0)
            .then(pl.col("covered") / pl.col("total"))
            .otherwise(1.0)
            .alias("ratio")
        )
        .sort(["source", "snapshot_id", "detail", "scope"])
    )
