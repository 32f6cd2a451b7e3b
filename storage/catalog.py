"""`catalog/snapshots`: which snapshots exist and which status each has.

The table is append-only; a snapshot has a `running` row written by `begin` and, later,
one terminal row (`complete`, `partial` or `failed`). The terminal row wins. Each row is
committed under txn (`{source}:{id}:catalog`, 0 for running / 1 for terminal), so a
finish re-run after a kill never writes a second terminal row.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import polars as pl

from storage import schemas

CATALOG = "catalog/snapshots"
_TERMINAL = ("complete", "partial", "failed")


@dataclass(frozen=True)
class SnapshotInfo:
    """One snapshot as the catalog describes it (its newest row)."""

    source: str
    snapshot_id: int
    run_id: str
    status: str
    as_of: datetime | None
    started_at: datetime | None
    finished_at: datetime | None
    entities: int
    upserts: int
    tombstones: int
    rejected: int
    requests: int
    errors: int
    keyframe: bool
    message: str | None

    @classmethod
    def from_row(cls, row: dict[str, object]) -> SnapshotInfo:
        def num(key: str) -> int:
            v = row.get(key)
            return int(v) if isinstance(v, (int, float)) else 0

        def ts(key: str) -> datetime | None:
            v = row.get(key)
            return v if isinstance(v, datetime) else None

        return cls(
            source=str(row["source"]),
            snapshot_id=int(row["snapshot_id"]),  # type: ignore[call-overload]
            run_id=str(row.get("run_id") or ""),
            status=str(row["status"]),
            as_of=ts("as_of"),
            started_at=ts("started_at"),
            finished_at=ts("finished_at"),
            entities=num("entities"),
            upserts=num("upserts"),
            tombstones=num("tombstones"),
            rejected=num("rejected"),
            requests=num("requests"),
            errors=num("errors"),
            keyframe=bool(row.get("keyframe")),
            message=row.get("message") if isinstance(row.get("message"), str) else None,  # type: ignore[arg-type]
        )


def latest_rows(raw: pl.DataFrame) -> pl.DataFrame:
    """One row per (source, snapshot_id): the terminal row if any, else the running one."""
    if raw.is_empty():
        return raw
    rank = pl.when(pl.col("status").is_in(list(_TERMINAL))).then(1).otherwise(0)
    return (
        raw.with_columns(_rank=rank)
        .sort(["source", "snapshot_id", "_rank"])
        .unique(["source", "snapshot_id"], keep="last", maintain_order=True)
        .drop("_rank")
        .sort(["source", "snapshot_id"])
    )


def now() -> datetime:
    return datetime.now(UTC)


def empty() -> pl.DataFrame:
    df = pl.from_arrow(schemas.CATALOG_SNAPSHOTS.empty_table())
    assert isinstance(df, pl.DataFrame)
    return df
