"""`catalog/snapshots`: which snapshots exist and which status each has.

The table is append-only; a snapshot has a `running` row written by `begin` and, later,
one terminal row (`complete`, `partial` or `failed`). The terminal row wins. Each row is
committed under txn (`layout.txn_id(source, id, "catalog")`, 0 for running / 1 for
terminal), so a finish re-run after a kill never writes a second terminal row.

`Catalog` owns every read and write of that table and every answer drawn from it:
which sources and snapshots exist, what an `at` means (`resolve`), which snapshots
keyframed a table. It reaches the table through `storage.tables.Tables` only.
"""

from __future__ import annotations

import contextlib
import logging
import re
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from datetime import time as dtime
from typing import Literal

import polars as pl
import pyarrow as pa

from storage import schemas
from storage.errors import SnapshotNotFound, StoreError, UnknownSource
from storage.layout import CATALOG, HEARTBEATS, check_source, txn_id
from storage.tables import NO_HOOKS, WRITER_PROPS, Tables

log = logging.getLogger(__name__)

Status = Literal["running", "complete", "partial", "failed"]
# What a snapshot's listing covers (docs/storage.md, "Coverage"): `full` = every entity of
# the source (absence means gone: a tombstone), `top` = the top N by one column (absence
# means "not in the top N"; an as-of read returns the covered entities), `subset` = a
# filtered listing (absence means nothing). No tombstones unless `full`.
Coverage = Literal["full", "top", "subset"]
COVERAGES: tuple[Coverage, ...] = ("full", "top", "subset")
# the catalog columns added after the first stores were written: read as null there
_LATER_COLUMNS = ("coverage", "top_by", "top_n", "id_column", "digest")
TerminalStatus = Literal["complete", "partial", "failed"]
# which change-encoded table a keyframe question is about
TableKind = Literal["attributes", "counters"]
# the statuses of a terminal row (it wins over the snapshot's running row)
TERMINAL_STATUSES: tuple[TerminalStatus, ...] = ("complete", "partial", "failed")
# The catalog gets two one-row files per snapshot; delta-rs re-reads a table's whole file
# list after every commit, so its appends slowed from 11 to 30 ms over 30 snapshots. A
# finish merges them once this many have piled up (~40 ms, every 8 snapshots).
CATALOG_COMPACT_FILES = 16
# what `at` may be: a snapshot id, an instant or day, an ISO string, None for the newest
At = int | datetime | date | str | None


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
    coverage: Coverage = "full"
    top_by: str | None = None
    top_n: int | None = None

    def covers(self) -> str:
        """What the listing covers, in words: `full`, `top 10000 by downloads`, `subset`."""
        if self.coverage == "top":
            n = "?" if self.top_n is None else str(self.top_n)
            return f"top {n} by {self.top_by}"
        return self.coverage

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
            coverage=coverage_of(row.get("coverage")),
            top_by=row.get("top_by") if isinstance(row.get("top_by"), str) else None,  # type: ignore[arg-type]
            top_n=int(row["top_n"]) if isinstance(row.get("top_n"), int) else None,  # type: ignore[call-overload]
        )


def coverage_of(value: object) -> Coverage:
    """A catalog `coverage` value; null (a store written before coverage) is `full`."""
    if value is None:
        return "full"
    if value not in COVERAGES:
        raise StoreError(f"coverage {value!r} unknown; coverages are {', '.join(COVERAGES)}")
    return value


@dataclass(frozen=True)
class Heartbeat:
    """The newest "still writing" of a running snapshot's writer (catalog/heartbeats)."""

    source: str
    snapshot_id: int
    run_id: str
    host: str
    pid: int
    at: datetime


def latest_rows(raw: pl.DataFrame) -> pl.DataFrame:
    """One row per (source, snapshot_id): the terminal row if any, else the running one."""
    if raw.is_empty():
        return raw
    rank = pl.when(pl.col("status").is_in(list(TERMINAL_STATUSES))).then(1).otherwise(0)
    return (
        raw.with_columns(_rank=rank)
        .sort(["source", "snapshot_id", "_rank"])
        .unique(["source", "snapshot_id"], keep="last", maintain_order=True)
        .drop("_rank")
        .sort(["source", "snapshot_id"])
    )


def with_later_columns(df: pl.DataFrame) -> pl.DataFrame:
    """A catalog frame with every column of today's schema: a store written before
    `coverage` existed has none of `_LATER_COLUMNS` until its first new row (then
    delta-rs merges the schema, and older rows read as null)."""
    missing = [c for c in _LATER_COLUMNS if c not in df.columns]
    if not missing:
        return df
    types = empty().schema
    return df.with_columns([pl.lit(None, types[c]).alias(c) for c in missing])


def now() -> datetime:
    return datetime.now(UTC)


def empty() -> pl.DataFrame:
    df = pl.from_arrow(schemas.CATALOG_SNAPSHOTS.empty_table())
    assert isinstance(df, pl.DataFrame)
    return df


def flag_of(which: TableKind) -> str:
    """The catalog column that flags a keyframe of `which` table."""
    return "keyframe" if which == "attributes" else "counters_keyframe"


def fmt_ids(ids: Sequence[int]) -> str:
    """`1-4, 7, 9-12`: the ids that exist, short."""
    if not ids:
        return "none"
    out: list[str] = []
    start = prev = ids[0]
    for i in [*ids[1:], None]:
        if i is not None and i == prev + 1:
            prev = i
            continue
        out.append(str(start) if start == prev else f"{start}-{prev}")
        if i is not None:
            start = prev = i
    return ", ".join(out)


def parse_at(at: str) -> datetime | int:
    """An `at` text as a snapshot id or an instant: the one date rule of CLI, HTTP and Python.

    Digits are a snapshot id. A bare date (`2026-01-31`) is the END of that UTC day, its last
    microsecond, so "as of the 31st" includes that day's snapshots. Anything else is an ISO
    8601 instant; without a zone it is UTC. `Catalog.resolve` then takes the newest snapshot
    at or before the instant. docs/contracts.md ("The date rule") documents this once.

    Raises:
        ValueError: the text is neither (the message shows the three accepted forms).
    """
    text = at.strip()
    if re.fullmatch(r"\d+", text):
        return int(text)
    try:
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
            return datetime.combine(date.fromisoformat(text), dtime.max, UTC)
        dt = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(
            f"at {at!r}: expected a snapshot id (e.g. 12), a date (2026-01-31, meaning the end "
            "of that UTC day) or an ISO timestamp (2026-01-31T06:00:00Z)"
        ) from None
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)


class Catalog:
    """Every read and write of `catalog/snapshots` for one store.

    The newest-row-per-snapshot frame is cached by table version; a finish pins one read
    for its whole length (`pinned`), and an append that is the only commit since the
    cached read updates the cache in place."""

    def __init__(self, tables: Tables) -> None:
        self._tables = tables
        self._cache: tuple[int, pl.DataFrame] | None = None
        self._lock = threading.Lock()
        self._appends = 0  # since the last look at its files (see compact)
        self._pin = threading.local()  # a finish's catalog, per thread (see pinned)

    # -- the table ------------------------------------------------------------------

    @contextlib.contextmanager
    def pinned(self) -> Iterator[None]:
        """Within a finish: read the catalog once (each refresh of a Delta table costs
        ~5-10 ms, and a finish asked for it ~10 times). Only this snapshot's own rows can
        change it meanwhile, and a finish never reads those back under the pin."""
        self._pin.catalog = self.read()
        try:
            yield
        finally:
            self._pin.catalog = None

    def read(self) -> pl.DataFrame:
        """One row per snapshot (its newest), sorted by source and id."""
        pinned = getattr(self._pin, "catalog", None)
        if isinstance(pinned, pl.DataFrame):
            return pinned
        dt = self._tables.must(CATALOG)  # refreshed to the newest version
        version = dt.version()
        cached = self._cache
        if cached is not None and cached[0] == version:
            return cached[1]
        df = with_later_columns(pl.scan_delta(dt).collect())
        out = latest_rows(df) if df.height else empty()
        # rows written before coverage existed were all full listings
        out = out.with_columns(pl.col("coverage").fill_null("full"))
        self._cache = (version, out)
        return out

    def append(self, table: pa.Table, app_id: str, version: int) -> bool:
        """append_once to the catalog; when the commit is the only one since the cached
        catalog, the cache takes the row in place (a full catalog scan is ~10-20 ms and
        grows with the snapshots; begin and finish each made one)."""
        cached = self._cache
        # fresh=False: the callers have just read the catalog (refreshing it); a commit
        # from a stale object fails on the same txn and append_once re-checks
        # merge: a catalog written before `coverage` existed gains the new columns
        wrote = self._tables.append_once(
            CATALOG, table, app_id, version, fresh=False, schema_mode="merge"
        )
        with self._lock:
            self._appends += 1
        dt = self._tables.get(CATALOG, fresh=False)
        if wrote and cached is not None and dt is not None:
            with self._lock:
                if dt.version() == cached[0] + 1 and self._cache is cached:
                    row = pl.from_arrow(table)
                    assert isinstance(row, pl.DataFrame)
                    both = pl.concat([with_later_columns(cached[1]), row], how="diagonal_relaxed")
                    both = both.with_columns(pl.col("coverage").fill_null("full"))
                    self._cache = (dt.version(), latest_rows(both))
        return wrote

    def compact(self) -> None:
        """Merge the catalog's files once CATALOG_COMPACT_FILES have piled up. Best effort
        (it runs after a terminal row): a conflict with a concurrent commit or maintain
        leaves the files to the next finish."""
        with self._lock:
            # counted, not listed: a refresh and a file listing per finish cost ~5-10 ms
            if self._appends < CATALOG_COMPACT_FILES:
                return
            self._appends = 0
        try:
            dt = self._tables.must(CATALOG)
            if len(dt.file_uris()) >= CATALOG_COMPACT_FILES:
                dt.optimize.compact(
                    writer_properties=WRITER_PROPS, post_commithook_properties=NO_HOOKS
                )
        except Exception as exc:
            self._tables.forget(CATALOG)  # the object may hold the state compaction began at
            log.warning(
                "%s: not compacted (maintain will): %s: %s",
                CATALOG,
                type(exc).__name__,
                str(exc) or "no message",
            )

    # -- heartbeats -----------------------------------------------------------------

    def beat(self, source: str, snapshot_id: int, run_id: str, host: str, pid: int) -> None:
        """Record that the writer of a running snapshot is alive (one row per beat, under
        the snapshot's heartbeat txn, version = now in ms, so a replay is a no-op)."""
        at = now()
        row = {
            "source": source,
            "snapshot_id": snapshot_id,
            "run_id": run_id,
            "host": host,
            "pid": pid,
            "at": at,
        }
        table = pa.Table.from_pylist([row], schema=schemas.HEARTBEATS)
        version = int(at.timestamp() * 1000)
        self._tables.append_once(
            HEARTBEATS, table, txn_id(source, snapshot_id, "heartbeat"), version
        )

    def last_beat(self, source: str, snapshot_id: int) -> Heartbeat | None:
        """The newest heartbeat of a snapshot, or None (none written: a store or writer
        from before heartbeats, or a writer killed between begin and its first beat)."""
        dt = self._tables.get(HEARTBEATS)
        if dt is None:
            return None
        hit = (
            pl.scan_delta(dt)
            .filter((pl.col("source") == source) & (pl.col("snapshot_id") == snapshot_id))
            .sort("at")
            .tail(1)
            .collect()
        )
        if hit.is_empty():
            return None
        r = hit.row(0, named=True)
        return Heartbeat(
            source,
            snapshot_id,
            str(r["run_id"] or ""),
            str(r["host"] or ""),
            int(r["pid"] or 0),
            r["at"],
        )

    # -- answers --------------------------------------------------------------------

    def sources(self) -> list[str]:
        """Sources with at least one snapshot (of any status)."""
        return sorted(set(self.read()["source"].to_list()))

    def snapshots(
        self,
        source: str | None = None,
        *,
        include_partial: bool = False,
        all_statuses: bool = False,
    ) -> pl.DataFrame:
        """Complete snapshots (plus partial ones when asked; every status with
        all_statuses); a valid source name without snapshots gives an empty frame."""
        cat = self.read()
        if source is not None:
            check_source(source)  # a valid name with no snapshot yet: an empty frame
            cat = cat.filter(pl.col("source") == source)
        if not all_statuses:
            ok = ["complete", "partial"] if include_partial else ["complete"]
            cat = cat.filter(pl.col("status").is_in(ok))
        return cat

    def check_known(self, source: str) -> None:
        """UnknownSource, listing the sources there are, unless `source` has a snapshot."""
        names = self.sources()
        if source not in names:
            listed = ", ".join(names) if names else "none yet"
            raise UnknownSource(f"unknown source {source!r}; sources in the store: {listed}")

    def resolve(self, source: str, at: At = None, *, include_partial: bool = False) -> int:
        """The snapshot id meant by `at` (id, datetime, date, ISO string; None = newest)."""
        self.check_known(source)
        snaps = self.snapshots(source, include_partial=include_partial)
        kind = "complete or partial" if include_partial else "complete"
        ids = sorted(snaps["snapshot_id"].to_list())
        if not ids:
            raise SnapshotNotFound(f"source {source!r} has no {kind} snapshot yet")
        if isinstance(at, str):
            at = parse_at(at)
        if at is None:
            return int(ids[-1])
        if isinstance(at, int) and not isinstance(at, bool):
            if at in ids:
                return at
            raise SnapshotNotFound(
                f"snapshot {at} of {source!r} is not a {kind} snapshot; "
                f"{kind} snapshots: {fmt_ids(ids)}"
            )
        if isinstance(at, date) and not isinstance(at, datetime):
            at = datetime.combine(at, dtime.max, UTC)
        if not isinstance(at, datetime):
            raise TypeError(f"at: expected an id, datetime or ISO string, got {at!r}")
        if at.tzinfo is None:
            at = at.replace(tzinfo=UTC)
        before = snaps.filter(pl.col("as_of") <= at).sort("snapshot_id")
        if before.is_empty():
            first = snaps.sort("as_of")["as_of"][0]
            raise SnapshotNotFound(
                f"no {kind} snapshot of {source!r} at or before {at.isoformat()}; "
                f"the first is at {first.isoformat() if first else 'unknown'}"
            )
        return int(before["snapshot_id"][-1])

    def id_column(self, source: str) -> str | None:
        """A custom source's id column name, as its first import recorded it (what its
        outputs call `entity_id`); None for a source without one (crawled, built-in)."""
        cat = self.read().filter(
            (pl.col("source") == source)
            & (pl.col("status") != "failed")
            & pl.col("id_column").is_not_null()
        )
        return str(cat.sort("snapshot_id")["id_column"][0]) if cat.height else None

    def imported(self, source: str, as_of: datetime, digest: str) -> SnapshotInfo | None:
        """The complete snapshot of `source` at `as_of` that an import of the file with
        this `digest` wrote, or None."""
        cat = self.read().filter(
            (pl.col("source") == source)
            & (pl.col("status") == "complete")
            & (pl.col("digest") == digest)
            & (pl.col("as_of") == as_of)
        )
        return SnapshotInfo.from_row(cat.row(0, named=True)) if cat.height else None

    def info(self, source: str, snapshot_id: int) -> SnapshotInfo:
        """The newest catalog row of a snapshot that exists."""
        cat = self.read().filter(
            (pl.col("source") == source) & (pl.col("snapshot_id") == snapshot_id)
        )
        if cat.is_empty():
            raise SnapshotNotFound(f"no snapshot {snapshot_id} of {source!r}")
        return SnapshotInfo.from_row(cat.row(0, named=True))

    def status_of(self, source: str, snapshot_id: int) -> str:
        """The status of a snapshot that exists (its newest row)."""
        cat = self.read().filter(
            (pl.col("source") == source) & (pl.col("snapshot_id") == snapshot_id)
        )
        return str(cat["status"][0])

    def terminal_info(
        self, source: str, snapshot_id: int, *, fresh: bool = True
    ) -> SnapshotInfo | None:
        """The snapshot's terminal row, or None while it has none (by its txn)."""
        dt = self._tables.get(CATALOG, fresh=fresh)
        if dt is None:
            raise StoreError(f"table {CATALOG} does not exist under {self._tables.root}")
        if dt.transaction_version(txn_id(source, snapshot_id, "catalog")) != 1:
            return None
        cat = self.read().filter(
            (pl.col("source") == source) & (pl.col("snapshot_id") == snapshot_id)
        )
        return SnapshotInfo.from_row(cat.row(0, named=True))

    def complete_ids(self, source: str) -> list[int]:
        """Ids of the complete snapshots of `source`, ascending."""
        cat = self.read()
        cat = cat.filter((pl.col("source") == source) & (pl.col("status") == "complete"))
        return sorted(cat["snapshot_id"].to_list())

    def previous_complete(self, source: str, snapshot_id: int) -> int | None:
        """The newest complete snapshot of `source` before `snapshot_id`."""
        ids = [i for i in self.complete_ids(source) if i < snapshot_id]
        return ids[-1] if ids else None

    def keyframes(self, source: str, which: TableKind) -> list[int]:
        """Ids of the complete snapshots of `source` that keyframed `which` table."""
        cat = self.read().filter(
            (pl.col("source") == source)
            & (pl.col("status") == "complete")
            & pl.col(flag_of(which)).fill_null(False)
        )
        return sorted(cat["snapshot_id"].to_list())

    def keyframe_before(self, source: str, snapshot_id: int, which: TableKind) -> int | None:
        """The newest complete snapshot <= snapshot_id that keyframed `which` table."""
        ids = [i for i in self.keyframes(source, which) if i <= snapshot_id]
        return ids[-1] if ids else None

    def complete_between(self, source: str, after: int, before: int) -> pl.DataFrame:
        """The catalog rows of the complete snapshots with after < id < before."""
        return self.read().filter(
            (pl.col("source") == source)
            & (pl.col("status") == "complete")
            & (pl.col("snapshot_id") > after)
            & (pl.col("snapshot_id") < before)
        )
