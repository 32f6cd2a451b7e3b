"""`Store`: the snapshot store's Python API (see docs/contracts.md and docs/storage.md).

Reads always scan the *current* version of each table (never time travel), so vacuum can
remove old files without breaking as-of reads of any kept snapshot.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import threading
import uuid
from collections import OrderedDict
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, date, datetime
from datetime import time as dtime
from typing import Any

import polars as pl
import pyarrow as pa
from deltalake.exceptions import CommitFailedError

from storage import schemas
from storage.catalog import CATALOG, SnapshotInfo, empty, latest_rows, now
from storage.errors import ColumnNotFound, SnapshotNotFound, StoreError, UnknownSource
from storage.layout import (
    KEY,
    META_COLUMNS,
    OP_DELETE,
    STAGING,
    STAGING_PARTITION,
    STAGING_SCHEMA,
    check_source,
    counter_table,
    counters_of,
    entity_table,
    is_custom,
)
from storage.records import Rows
from storage.staged import StagedBatches
from storage.state import PreviousState, hash_expr, read_state, window
from storage.tables import WRITER_PROPS, Tables
from storage.writer import EVENTS, TOPK, SnapshotWriter

log = logging.getLogger(__name__)

CODE_VERSION = "hubtide-storage/2"
KEYFRAME_COST = 1.0
# finished snapshots of a source whose staged batches one delete drops (see
# _tidy_after_finish). 1: grouping 4 saved one commit in 4 but left up to 3 snapshots of
# raw batches in the current version (the bench's store grew from 0.098 to 0.401 of the
# dumps until maintain), for no ingest gain measurable at load 5-6.
STAGING_DROP_EVERY = 1
# The catalog gets two one-row files per snapshot; delta-rs re-reads a table's whole file
# list after every commit, so its appends slowed from 11 to 30 ms over 30 snapshots. A
# finish merges them once this many have piled up (~40 ms, every 8 snapshots).
CATALOG_COMPACT_FILES = 16
# ranked top-k member lists kept per (source, snapshot, column): see Store._ranked_members
TOPK_CACHE = 64

FIXED_TABLES: dict[str, pa.Schema] = {
    CATALOG: schemas.CATALOG_SNAPSHOTS,
    STAGING: STAGING_SCHEMA,
    "hub/commits": schemas.HUB_COMMITS,
    "hub/discussions": schemas.HUB_DISCUSSIONS,
    "hub/cards": schemas.HUB_CARDS,
    TOPK: schemas.DERIVED_TOPK,
    EVENTS: schemas.CRAWL_EVENTS,
}


@dataclass(frozen=True)
class TableStats:
    """Size of one Delta table (current version)."""

    table: str
    rows: int
    files: int
    bytes: int


@dataclass(frozen=True)
class TableMaintenance:
    table: str
    files_before: int
    files_after: int
    bytes_before: int
    bytes_after: int
    vacuumed_files: int


@dataclass(frozen=True)
class MaintenanceReport:
    """What `Store.maintain` did, per table."""

    tables: list[TableMaintenance]
    retention_hours: int
    staged_snapshots_dropped: int
    seconds: float


def _fmt_ids(ids: Sequence[int]) -> str:
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


def _key_of(state: tuple[Any, ...]) -> tuple[Any, ...]:
    """A state tuple where NaN equals NaN (so a NaN counter is not a change every time)."""
    return tuple("__nan__" if isinstance(v, float) and v != v else v for v in state)


def _parse_at(at: str) -> datetime | int:
    text = at.strip()
    if re.fullmatch(r"\d+", text):
        return int(text)
    try:
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
            # a bare date means "as of that day": its last instant
            return datetime.combine(date.fromisoformat(text), dtime.max, UTC)
        dt = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(
            f"--at {at!r}: expected a snapshot id (e.g. 12), a date (2026-01-31) "
            "or an ISO timestamp (2026-01-31T06:00:00Z)"
        ) from None
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)


class Store:
    """All tables under one root URI. Open with `Store.open(uri)`."""

    code_version = CODE_VERSION

    def __init__(
        self,
        uri: str,
        storage_options: Mapping[str, str] | None = None,
        *,
        keyframe_every: int = 7,
        topk_n: int = 10_000,
        keyframe_cost: float = KEYFRAME_COST,
    ) -> None:
        if keyframe_every < 1:
            raise ValueError(f"keyframe_every must be >= 1, got {keyframe_every}")
        if keyframe_cost <= 0:
            raise ValueError(f"keyframe_cost must be > 0, got {keyframe_cost}")
        self.uri = uri
        self.storage_options = dict(storage_options or {})
        self.keyframe_every = keyframe_every
        self.keyframe_cost = keyframe_cost
        self.topk_n = topk_n
        self._tables = Tables(uri, self.storage_options)
        # the last complete state per source, kept after a finish: the next diff needs it
        self._last_state: dict[str, PreviousState] = {}
        self._catalog_cache: tuple[int, pl.DataFrame] | None = None
        self._catalog_lock = threading.Lock()
        self._catalog_appends = 0  # since the last look at its files (_compact_catalog)
        self._pin = threading.local()  # a finish's catalog, per thread (see _pinned_catalog)
        # finished snapshots whose staged batches are still in (see _tidy_after_finish)
        self._undropped: dict[str, list[int]] = {}
        self._undropped_lock = threading.Lock()
        self._tidying: Future[None] | None = None  # see _tidy_after_finish
        self._tidy_lock = threading.Lock()
        self._pool: ThreadPoolExecutor | None = None
        self._pool_pid = 0
        self._topk_cache: OrderedDict[tuple[str, int, str], pl.DataFrame] = OrderedDict()
        self._topk_lock = threading.Lock()
        self._pool_lock = threading.Lock()
        for rel, schema in FIXED_TABLES.items():
            self._tables.ensure(
                rel,
                schema,
                STAGING_PARTITION if rel == STAGING else None,
                stats=rel not in (STAGING, CATALOG),
            )

    @classmethod
    def open(
        cls,
        uri: str,
        storage_options: Mapping[str, str] | None = None,
        *,
        keyframe_every: int = 7,
        topk_n: int = 10_000,
        keyframe_cost: float = KEYFRAME_COST,
    ) -> Store:
        """Open (creating when needed) the store at `uri`: a folder or an object-store URI.

        `keyframe_every`: at most this many snapshots between counter keyframes;
        `keyframe_cost`: a table keyframes when its change rows since its last keyframe
        exceed this many times the live entities (see docs/storage.md)."""
        return cls(
            uri,
            storage_options,
            keyframe_every=keyframe_every,
            topk_n=topk_n,
            keyframe_cost=keyframe_cost,
        )

    def __repr__(self) -> str:
        return f"Store({self.uri!r})"

    def _workers(self) -> ThreadPoolExecutor:
        """Two threads a finish hands its counters and top-k appends to. Kept for the
        store's life: each thread's DeltaTable cache then survives from one finish to the
        next (opening a table costs ~40 ms; a refresh ~5)."""
        with self._pool_lock:
            # a forked child inherits the pool object but not its threads: a new pool
            if self._pool is None or self._pool_pid != os.getpid():
                self._pool = ThreadPoolExecutor(2, thread_name_prefix="hubtide-finish")
                self._pool_pid = os.getpid()
            return self._pool

    # -- catalog ------------------------------------------------------------------------

    @contextlib.contextmanager
    def _pinned_catalog(self) -> Iterator[None]:
        """Within a finish: read the catalog once (each refresh of a Delta table costs
        ~5-10 ms, and a finish asked for it ~10 times). Only this snapshot's own rows can
        change it meanwhile, and a finish never reads those back under the pin."""
        self._pin.catalog = self._catalog()
        try:
            yield
        finally:
            self._pin.catalog = None

    def _catalog(self) -> pl.DataFrame:
        pinned = getattr(self._pin, "catalog", None)
        if pinned is not None:
            return pinned  # type: ignore[no-any-return]
        dt = self._tables.must(CATALOG)  # refreshed to the newest version
        version = dt.version()
        cached = self._catalog_cache
        if cached is not None and cached[0] == version:
            return cached[1]
        df = pl.scan_delta(dt).collect()
        out = latest_rows(df) if df.height else empty()
        self._catalog_cache = (version, out)
        return out

    def _append_catalog(self, table: pa.Table, app_id: str, version: int) -> bool:
        """append_once to the catalog; when the commit is the only one since the cached
        catalog, the cache takes the row in place (a full catalog scan is ~10-20 ms and
        grows with the snapshots; begin and finish each made one)."""
        cached = self._catalog_cache
        # fresh=False: the callers have just read the catalog (refreshing it); a commit
        # from a stale object fails on the same txn and append_once re-checks
        wrote = self._tables.append_once(CATALOG, table, app_id, version, fresh=False)
        with self._catalog_lock:
            self._catalog_appends += 1
        dt = self._tables.get(CATALOG, fresh=False)
        if wrote and cached is not None and dt is not None:
            with self._catalog_lock:
                if dt.version() == cached[0] + 1 and self._catalog_cache is cached:
                    row = pl.from_arrow(table)
                    assert isinstance(row, pl.DataFrame)
                    both = pl.concat(
                        [cached[1], row.select(cached[1].columns)], how="vertical_relaxed"
                    )
                    self._catalog_cache = (dt.version(), latest_rows(both))
        return wrote

    def sources(self) -> list[str]:
        """Sources with at least one snapshot (of any status)."""
        return sorted(set(self._catalog()["source"].to_list()))

    def snapshots(
        self,
        source: str | None = None,
        *,
        include_partial: bool = False,
        all_statuses: bool = False,
    ) -> pl.DataFrame:
        """Complete snapshots (plus partial ones when asked; every status with all_statuses).

        A valid source name without snapshots gives an empty frame; an invalid one raises.
        """
        cat = self._catalog()
        if source is not None:
            check_source(source)  # a valid name with no snapshot yet: an empty frame
            cat = cat.filter(pl.col("source") == source)
        if not all_statuses:
            ok = ["complete", "partial"] if include_partial else ["complete"]
            cat = cat.filter(pl.col("status").is_in(ok))
        return cat

    def _known(self, source: str, cat: pl.DataFrame | None = None) -> None:
        cat = self._catalog() if cat is None else cat
        names = sorted(set(cat["source"].to_list()))
        if source not in names:
            listed = ", ".join(names) if names else "none yet"
            raise UnknownSource(f"unknown source {source!r}; sources in the store: {listed}")

    def _visible_ids(self, source: str, include_partial: bool = False) -> list[int]:
        snaps = self.snapshots(source, include_partial=include_partial)
        return sorted(snaps["snapshot_id"].to_list())

    def resolve_snapshot(
        self,
        source: str,
        at: int | datetime | date | str | None = None,
        *,
        include_partial: bool = False,
    ) -> int:
        """The snapshot id meant by `at` (id, datetime, ISO string; None = newest)."""
        self._known(source)
        snaps = self.snapshots(source, include_partial=include_partial)
        kind = "complete or partial" if include_partial else "complete"
        ids = sorted(snaps["snapshot_id"].to_list())
        if not ids:
            raise SnapshotNotFound(f"source {source!r} has no {kind} snapshot yet")
        if isinstance(at, str):
            at = _parse_at(at)
        if at is None:
            return ids[-1]
        if isinstance(at, int) and not isinstance(at, bool):
            if at in ids:
                return at
            raise SnapshotNotFound(
                f"snapshot {at} of {source!r} is not a {kind} snapshot; "
                f"{kind} snapshots: {_fmt_ids(ids)}"
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

    def _terminal_info(
        self, source: str, snapshot_id: int, *, fresh: bool = True
    ) -> SnapshotInfo | None:
        dt = self._tables.get(CATALOG, fresh=fresh)
        if dt is None:
            raise StoreError(f"table {CATALOG} does not exist under {self.uri}")
        if dt.transaction_version(f"{source}:{snapshot_id}:catalog") != 1:
            return None
        cat = self._catalog().filter(
            (pl.col("source") == source) & (pl.col("snapshot_id") == snapshot_id)
        )
        return SnapshotInfo.from_row(cat.row(0, named=True))

    def _previous_complete(self, source: str, snapshot_id: int) -> int | None:
        ids = [i for i in self._visible_ids_raw(source) if i < snapshot_id]
        return ids[-1] if ids else None

    def _visible_ids_raw(self, source: str) -> list[int]:
        cat = self._catalog()
        cat = cat.filter((pl.col("source") == source) & (pl.col("status") == "complete"))
        return sorted(cat["snapshot_id"].to_list())

    def _keyframe_before(
        self, source: str, snapshot_id: int, which: str = "attributes"
    ) -> int | None:
        """The newest complete snapshot <= snapshot_id that keyframed `which` table."""
        flag = "keyframe" if which == "attributes" else "counters_keyframe"
        cat = self._catalog().filter(
            (pl.col("source") == source)
            & (pl.col("status") == "complete")
            & pl.col(flag).fill_null(False)
            & (pl.col("snapshot_id") <= snapshot_id)
        )
        ids = cat["snapshot_id"].to_list()
        return max(ids) if ids else None

    def _wants_keyframe(
        self,
        source: str,
        snapshot_id: int,
        prev_id: int | None,
        changes: int,
        live: int,
        which: str,
    ) -> bool:
        """Keyframes by cost: when the change rows since the table's last keyframe (this
        snapshot's included) exceed `keyframe_cost` x the live entities, so a read scans at
        most about (1 + keyframe_cost) x the state. Counters also keyframe at least every
        `keyframe_every` snapshots (a narrow copy, ~2 bytes per entity)."""
        if prev_id is None:
            return True
        kf = self._keyframe_before(source, prev_id, which)
        if kf is None:
            return True
        col = "attribute_rows" if which == "attributes" else "counter_rows"
        since = self._catalog().filter(
            (pl.col("source") == source)
            & (pl.col("status") == "complete")
            & (pl.col("snapshot_id") > kf)
            & (pl.col("snapshot_id") < snapshot_id)
        )
        rows = int(since[col].fill_null(0).sum()) + changes
        if rows > self.keyframe_cost * live:
            return True
        return which == "counters" and since.height + 1 >= self.keyframe_every

    # -- writing ------------------------------------------------------------------------

    def begin_snapshot(
        self,
        source: str,
        *,
        as_of: datetime | None = None,
        run_id: str | None = None,
    ) -> SnapshotWriter:
        """Start a new snapshot of `source` (status running); ids increase per source."""
        check_source(source)
        started = now()
        as_of = as_of or started
        if as_of.tzinfo is None:
            as_of = as_of.replace(tzinfo=UTC)
        for _ in range(100):
            cat = self._catalog().filter(pl.col("source") == source)
            ids = cat["snapshot_id"].to_list()
            sid = (max(ids) + 1) if ids else 1
            rid = run_id or f"{source}-{sid}-{uuid.uuid4().hex[:8]}"
            row = {
                "source": source,
                "snapshot_id": sid,
                "run_id": rid,
                "status": "running",
                "as_of": as_of,
                "started_at": started,
                "code_version": self.code_version,
            }
            table = pa.Table.from_pylist([row], schema=schemas.CATALOG_SNAPSHOTS)
            if self._append_catalog(table, f"{source}:{sid}:catalog", 0):
                return SnapshotWriter(self, source, sid, rid, as_of, started)
            # another process took this id first: take the next one
        raise StoreError(f"could not allocate a snapshot id for {source!r}")

    def resume_snapshot(self, source: str) -> SnapshotWriter | None:
        """The newest `running` snapshot of `source` as a writer, or None."""
        check_source(source)
        cat = self._catalog().filter(pl.col("source") == source).sort("snapshot_id")
        if cat.is_empty() or cat["status"][-1] != "running":
            return None
        row = cat.row(cat.height - 1, named=True)
        sid = int(row["snapshot_id"])
        staging = self._tables.must(STAGING)
        last = staging.transaction_version(f"{source}:{sid}")
        last_seq = -1 if last is None else int(last)
        checkpoint = None
        if last_seq >= 0:
            hit = (
                pl.scan_delta(staging)
                .filter(
                    (pl.col("source") == source)
                    & (pl.col("snapshot_id") == sid)
                    & (pl.col("seq") == last_seq)
                )
                .select("checkpoint")
                .collect()
            )
            checkpoint = hit["checkpoint"][0] if hit.height else None
        ev = (
            pl.scan_delta(self._tables.must(EVENTS))
            .filter(pl.col("run_id") == row["run_id"])
            .select(pl.col("seq").max())
            .collect()
        )
        next_event = int(ev.item()) + 1 if ev.height and ev.item() is not None else 0
        return SnapshotWriter(
            self,
            source,
            sid,
            str(row["run_id"]),
            row["as_of"],
            row["started_at"],
            last_seq,
            checkpoint,
            next_event,
        )

    def _append_plain(self, rel: str, table: pa.Table) -> None:
        from deltalake import write_deltalake

        from storage.tables import WRITER_PROPS

        dt = self._tables.must(rel)
        for _ in range(50):
            try:
                write_deltalake(dt, table, mode="append", writer_properties=WRITER_PROPS)
                return
            except CommitFailedError:
                dt.update_incremental()
        raise StoreError(f"{rel}: append kept conflicting; try again")

    def _rejected_count(self, run_id: str, snapshot_id: int) -> int:
        df = (
            pl.scan_delta(self._tables.must(EVENTS))
            .filter((pl.col("run_id") == run_id) & (pl.col("kind") == "rejected"))
            .select(pl.len())
            .collect()
        )
        return int(df.item())

    def _staged_listing(self, source: str, snapshot_id: int) -> pl.DataFrame:
        """The whole staged listing of a snapshot (the partial read; finish streams)."""
        frames = [f for _, f in StagedBatches(self._tables, source, snapshot_id) if f.height]
        if not frames:
            schema = self._logical_schema(source) if not is_custom(source) else None
            if schema is None:
                return pl.DataFrame({"entity_id": pl.Series([], dtype=pl.String)})
            out = pl.from_arrow(schema.empty_table())
            assert isinstance(out, pl.DataFrame)
            return out
        df = pl.concat(frames, how="diagonal_relaxed")
        if df["entity_id"].n_unique() == df.height:
            return df  # the common case, checked 10x faster than the unique below
        # a page fetched again after a resume lands in a later batch: the newest row wins
        return df.unique("entity_id", keep="last", maintain_order=True)

    def _tidy_after_finish(self, source: str, snapshot_id: int, *, drop: bool) -> None:
        """After a terminal row, in a worker thread: drop the snapshot's staged batches
        (`drop`, every STAGING_DROP_EVERY finishes of a source, in one commit) and compact
        the catalog when due. Off the caller's path: a finish returns without waiting
        for these two commits (~10-30 ms each). Readers never look at staged rows of a
        finished snapshot, so leaving them a while changes no read; what a process leaves
        at exit (a kill), `maintain` drops. Jobs run one after another; `wait_for_tidying`
        waits for them (a flush does not: a staging append and a drop touch different
        partitions, which delta-rs does not count as a conflict)."""
        ids: list[int] = []
        if drop:
            with self._undropped_lock:
                ids = self._undropped.setdefault(source, [])
                ids.append(snapshot_id)
                if len(ids) < STAGING_DROP_EVERY:
                    ids = []
                else:
                    self._undropped[source] = []

        def job(before: Future[None] | None) -> None:
            # one after another, so waiting for the last waits for all; never a deadlock:
            # only these jobs wait in the pool, each on one submitted (so started) before it
            if before is not None:
                before.result()  # never raises: both steps are best effort
            if ids:
                self._drop_staged(source, *ids)
            self._compact_catalog()

        with self._tidy_lock:
            before = self._last_tidying()  # before _workers() renews a forked child's pool
            self._tidying = self._workers().submit(job, before)

    def _last_tidying(self) -> Future[None] | None:
        # a forked child inherits the parent's futures but not the threads to finish them
        return self._tidying if self._pool_pid == os.getpid() else None

    def wait_for_tidying(self) -> None:
        """Wait until the staging drops and catalog compactions of finished snapshots
        are done (they run in a worker thread; `maintain` and `table_stats` wait)."""
        job = self._last_tidying()
        if job is not None:
            job.result()

    def _compact_catalog(self) -> None:
        """Merge the catalog's files once CATALOG_COMPACT_FILES have piled up. Best effort
        like the staging drop (it runs after a terminal row): a conflict with a concurrent
        commit or maintain leaves the files to the next finish."""
        with self._catalog_lock:
            # counted, not listed: a refresh and a file listing per finish cost ~5-10 ms
            if self._catalog_appends < CATALOG_COMPACT_FILES:
                return
            self._catalog_appends = 0
        try:
            dt = self._tables.must(CATALOG)
            if len(dt.file_uris()) >= CATALOG_COMPACT_FILES:
                dt.optimize.compact(writer_properties=WRITER_PROPS)
        except Exception as exc:
            self._tables.forget(CATALOG)  # the object may hold the state compaction began at
            log.warning(
                "%s: not compacted (maintain will): %s: %s",
                CATALOG,
                type(exc).__name__,
                str(exc) or "no message",
            )

    def _drop_staged(self, source: str, *snapshot_ids: int) -> None:
        """Best effort, never raises: it runs after a snapshot's terminal row, which must
        stay the finish's outcome. A failure (a concurrent compaction of the partition, a
        refresh racing a checkpoint) leaves harmless rows: readers never look at staged
        rows of finished snapshots, and `maintain` drops them later."""
        ids = ", ".join(str(int(i)) for i in snapshot_ids)
        try:
            dt = self._tables.must(STAGING)
            dt.delete(f"source = '{source}' AND snapshot_id IN ({ids})")
        except CommitFailedError:
            pass  # a concurrent compaction or drop of the same partition won
        except Exception as exc:
            log.warning(
                "%s: staged batches of %s snapshots %s not dropped (maintain will): %s: %s",
                STAGING,
                source,
                ids,
                type(exc).__name__,
                str(exc) or "no message",
            )

    # -- schemas ------------------------------------------------------------------------

    def _logical_schema(self, source: str) -> pa.Schema:
        schema = schemas.entity_schema(source)
        if schema is not None:
            return schema
        dt = self._tables.get(entity_table(source))
        if dt is None:
            return pa.schema([pa.field("entity_id", pa.string())])
        phys = pa.schema(dt.schema().to_arrow())  # type: ignore[arg-type]
        return pa.schema([f for f in phys if f.name not in META_COLUMNS])

    def _input_schema(self, source: str, rows: Rows) -> pa.Schema:
        """For a custom source: known columns keep their type, new ones are inferred."""
        if not is_custom(source):
            return self._logical_schema(source)
        known = {f.name: f for f in self._logical_schema(source)}
        if isinstance(rows, pl.DataFrame):
            inferred = rows.to_arrow().schema
        elif isinstance(rows, pa.Table):
            inferred = rows.schema
        else:
            inferred = pa.Table.from_pylist(list(rows)).schema if rows else pa.schema([])
        fields = [known.get("entity_id", pa.field("entity_id", pa.string()))]
        for f in inferred:
            if f.name in META_COLUMNS or f.name == "entity_id":
                continue
            typ = f.type
            if pa.types.is_large_string(typ) or pa.types.is_null(typ):
                typ = pa.string()  # Delta has no null type; an all-null column starts as text
            fields.append(known.get(f.name, pa.field(f.name, typ)))
        return pa.schema(fields)

    def _logical_columns(self, source: str, listing: pl.DataFrame) -> list[str]:
        cols = list(self._logical_schema(source).names)
        if is_custom(source):
            cols += [c for c in listing.columns if c not in cols and c not in META_COLUMNS]
        return cols

    def _column_types(self, source: str) -> dict[str, pl.DataType]:
        df = pl.from_arrow(self._logical_schema(source).empty_table())
        assert isinstance(df, pl.DataFrame)
        return dict(df.schema)

    def columns(self, source: str) -> list[str]:
        """The logical columns `as_of` returns for `source`."""
        return list(self._logical_schema(source).names)

    # -- reading ------------------------------------------------------------------------

    def _state(
        self,
        source: str,
        snapshot_id: int,
        columns: Sequence[str] | None,
        *,
        keys: Sequence[int] | None = None,
        with_key: bool = False,
        eager: bool = False,
    ) -> pl.LazyFrame:
        cols = list(columns) if columns is not None else self.columns(source)
        dt = self._tables.get(entity_table(source))
        if dt is None:
            df = pl.from_arrow(self._logical_schema(source).empty_table())
            assert isinstance(df, pl.DataFrame)
            if with_key:
                df = df.with_columns(pl.lit(None, pl.Int64).alias(KEY))
            return df.lazy().select(([KEY] if with_key else []) + cols)
        counters = counters_of(source)
        crel = counter_table(source)
        cdt = self._tables.get(crel) if crel is not None else None
        return read_state(
            pl.scan_delta(dt),
            pl.scan_delta(cdt) if cdt is not None else None,
            source,
            snapshot_id,
            self._visible_ids_raw(source),
            self._keyframe_before(source, snapshot_id, "attributes"),
            self._keyframe_before(source, snapshot_id, "counters"),
            cols,
            counters,
            keys=keys,
            with_key=with_key,
            eager=eager,
        )

    def _state_deferred(
        self, source: str, snapshot_id: int, columns: Sequence[str] | None
    ) -> pl.LazyFrame:
        """The state as of a complete snapshot, read when the frame is collected, by
        Polars' in-memory engine over a plan whose change rows are collected first
        (`read_state(eager=True)`): 2.0x a plain Parquet scan at 1M entities where the
        lazy plan under the default (streaming) engine took 2.8-3.1x, paired, same minute
        (docs/storage.md, Session 4). The whole state is then built at once, as a collect
        of the lazy plan did too; the diff's previous state keeps the streaming plan."""
        schema = self._state(source, snapshot_id, columns).collect_schema()

        def read() -> pl.DataFrame:
            lf = self._state(source, snapshot_id, columns, eager=True)
            return lf.collect(engine="in-memory")

        return pl.defer(read, schema=schema)

    def _previous_state(
        self,
        source: str,
        prev_id: int | None,
        attr_cols: Sequence[str],
        types: Mapping[str, pl.DataType],
    ) -> PreviousState | None:
        """The state a finish diffs against: kept in memory after the previous finish of
        this process, else read back from the store (after a restart, or when a custom
        source gained columns, since the attribute hash covers every attribute column)."""
        if prev_id is None:
            return None
        cached = self._last_state.get(source)
        if (
            cached is not None
            and cached.snapshot_id == prev_id
            and cached.attr_cols == tuple(attr_cols)
        ):
            return cached
        have = set(self.columns(source))
        counters = [c for c in counters_of(source) if c in types]
        read = [c for c in [*attr_cols, *counters] if c in have]
        lf = self._state(source, prev_id, read, with_key=True)
        missing = [c for c in [*attr_cols, *counters] if c not in read]
        lf = lf.with_columns([pl.lit(None, types[c]).alias(c) for c in missing])
        lf = lf.with_columns([pl.col(c).cast(types[c]) for c in [*attr_cols, *counters]])
        # hashed inside the query and collected by the streaming engine: only the narrow
        # columns are ever whole in memory, not the wide state (2M Hub rows ~ 700 MB)
        lf = lf.select(
            "entity_id", KEY, hash_expr([c for c in attr_cols if c != "entity_id"]), *counters
        )
        frame = lf.collect(engine="streaming")
        dt = self._tables.must(entity_table(source))
        ids = self._visible_ids_raw(source)
        top = (
            window(pl.scan_delta(dt), source, prev_id, ids, None)
            .select(pl.col(KEY).max())
            .collect()
            .item()
        )
        return PreviousState(prev_id, frame, int(top or 0), tuple(attr_cols))

    def _check_columns(self, source: str, columns: Sequence[str] | None) -> list[str] | None:
        if columns is None:
            return None
        have = self.columns(source)
        for c in columns:
            if c not in have:
                raise ColumnNotFound(
                    f"column {c!r} not in {source!r}; columns are {', '.join(have)}"
                )
        cols = list(columns)
        return cols if "entity_id" in cols else ["entity_id", *cols]

    def as_of(
        self,
        source: str,
        at: int | datetime | date | str | None = None,
        *,
        columns: Sequence[str] | None = None,
        include_partial: bool = False,
    ) -> pl.LazyFrame:
        """The state of `source` as of a snapshot: one row per live entity.

        `entity_id` always comes first, then `columns` (default: every logical column).
        """
        sid = self.resolve_snapshot(source, at, include_partial=include_partial)
        cols = self._check_columns(source, columns)
        status = self.snapshots(source, include_partial=True).filter(pl.col("snapshot_id") == sid)[
            "status"
        ][0]
        if status == "complete":
            return self._state_deferred(source, sid, cols)
        # partial: the previous complete state overlaid with what the partial listing saw
        prev = self._previous_complete(source, sid)
        all_cols = self.columns(source)
        base = (
            self._state(source, prev, None).collect()
            if prev is not None
            else pl.from_arrow(self._logical_schema(source).empty_table())
        )
        assert isinstance(base, pl.DataFrame)
        staged = self._staged_listing(source, sid)
        staged = staged.select([c for c in all_cols if c in staged.columns])
        merged = pl.concat([base.select(all_cols), staged], how="diagonal_relaxed")
        merged = merged.unique("entity_id", keep="last", maintain_order=True)
        out = merged.lazy()
        return out.select(cols) if cols is not None else out

    def sql(self) -> Any:
        """A read-only DuckDB connection over this store (`storage.sql.connect`).

        Returns:
            A `duckdb.DuckDBPyConnection` with a view per source for its newest complete
            state, `<source>_history`, `snapshots`, the `derived_*` tables and the table macro
            `asof(source, at)`; external access is off, so nothing can be written.

        Example:
            >>> store.sql().execute("SELECT count(*) FROM hub_model").fetchone()
        """
        from storage.sql import connect  # duckdb loads only for SQL users

        return connect(self)

    def history(self, source: str, entity_id: str) -> pl.LazyFrame:
        """Every change of one entity: snapshot_id, as_of, op, logical columns.

        One row per complete snapshot where the entity's state differs from the one
        before (`upsert`), or where it vanished (`delete`, columns null). Keyframe copies
        and counter rows that repeat the previous values are not changes.
        """
        self._known(source)
        cols = self.columns(source)
        types = self._column_types(source)
        snaps = self.snapshots(source).select("snapshot_id", "as_of")
        when = dict(zip(snaps["snapshot_id"].to_list(), snaps["as_of"].to_list(), strict=True))
        out_schema: dict[str, Any] = {
            "snapshot_id": pl.Int64,
            "as_of": snaps.schema["as_of"],
            "op": pl.String,
        }
        out_schema.update({c: types.get(c, pl.String) for c in cols})
        dt = self._tables.get(entity_table(source))
        if dt is None:
            return pl.DataFrame(schema=out_schema).lazy()
        counters = [c for c in counters_of(source) if c in cols]
        attr_cols = [c for c in cols if c not in counters]
        attrs = (
            pl.scan_delta(dt)
            .filter((pl.col("source") == source) & (pl.col("entity_id") == entity_id))
            .filter(pl.col("valid_from").is_in(list(when)))
            .select(KEY, "valid_from", "op", *[c for c in attr_cols if c != "entity_id"])
            .sort("valid_from")
            .collect()
        )
        keys = attrs[KEY].unique().to_list()
        crel = counter_table(source)
        cdt = self._tables.get(crel) if crel is not None else None
        cnt: dict[int, list[tuple[int, tuple[Any, ...]]]] = {}
        if cdt is not None and counters and keys:
            crows = (
                pl.scan_delta(cdt)
                .filter((pl.col("source") == source) & pl.col(KEY).is_in(keys))
                .filter(pl.col("valid_from").is_in(list(when)))
                .select(KEY, "valid_from", *counters)
                .sort("valid_from")
                .collect()
            )
            for r in crows.iter_rows():
                cnt.setdefault(r[0], []).append((r[1], tuple(r[2:])))
        arows = attrs.rows()
        times = sorted({r[1] for r in arows} | {t for v in cnt.values() for t, _ in v})
        out: list[dict[str, Any]] = []
        prev: tuple[Any, ...] | None = None
        i = -1
        for t in times:
            while i + 1 < len(arows) and arows[i + 1][1] <= t:
                i += 1
            if i < 0:
                continue
            key, _, op, *values = arows[i]
            if op == OP_DELETE:
                if prev is not None:
                    out.append(
                        {
                            "snapshot_id": t,
                            "as_of": when[t],
                            "op": OP_DELETE,
                            "entity_id": entity_id,
                        }
                    )
                prev = None
                continue
            series = [v for vt, v in cnt.get(key, []) if vt <= t]
            current = series[-1] if series else (None,) * len(counters)
            state = (*values, *current)
            if prev is None or _key_of(state) != _key_of(prev):
                row = dict(zip([c for c in attr_cols if c != "entity_id"], values, strict=True))
                row.update(zip(counters, current, strict=True))
                out.append(
                    {
                        "snapshot_id": t,
                        "as_of": when[t],
                        "op": "upsert",
                        "entity_id": entity_id,
                        **row,
                    }
                )
            prev = state
        frame = (
            pl.DataFrame(out, schema=out_schema, orient="row")
            if out
            else pl.DataFrame(schema=out_schema)
        )
        return frame.select(["snapshot_id", "as_of", "op", *cols]).lazy()

    def _rank(
        self, state: pl.DataFrame, source: str, snapshot_id: int, by: str, k: int
    ) -> pl.DataFrame:
        name = pl.col("name") if "name" in state.columns else pl.lit(None, pl.String)
        return (
            state.lazy()
            .filter(pl.col(by).is_not_null())
            .select(
                pl.col("entity_id"),
                name.alias("name"),
                pl.col(by).cast(pl.Float64).alias("value"),
            )
            # partial selection, then an exact sort of the k winners (ties: entity_id asc)
            .top_k(k, by=["value", "entity_id"], reverse=[False, True])
            .sort(["value", "entity_id"], descending=[True, False])
            .with_row_index("rank", offset=1)
            .select(
                pl.lit(source).alias("source"),
                pl.lit(snapshot_id, pl.Int64).alias("snapshot_id"),
                pl.lit(by).alias("by"),
                pl.col("rank").cast(pl.Int64),
                "entity_id",
                "name",
                "value",
            )
            .collect()
        )

    def top_k(
        self,
        source: str,
        snapshot: int | datetime | date | str | None,
        by: str,
        k: int,
    ) -> pl.LazyFrame:
        """rank, entity_id, name, value: the top `k` by column `by` (ties: entity_id asc)."""
        sid = self.resolve_snapshot(source, snapshot)
        have = self.columns(source)
        if by not in have:
            raise ColumnNotFound(f"column {by!r} not in {source!r}; columns are {', '.join(have)}")
        if k < 1:
            raise ValueError(f"k must be >= 1, got {k}")
        pre = schemas.POPULARITY_COLUMNS.get(source, ())
        cols = ["entity_id", by] + (["name"] if "name" in have and by != "name" else [])
        if by in pre and k <= self.topk_n:
            ranked = self._ranked_members(source, sid, by, cols).head(k)
        else:
            state = self._state(source, sid, cols).collect()
            ranked = self._rank(state, source, sid, by, k)
        return ranked.lazy().select("rank", "entity_id", "name", "value")

    def _ranked_members(self, source: str, sid: int, by: str, cols: list[str]) -> pl.DataFrame:
        """The `derived/topk` members of a complete snapshot, ranked from their state.

        Kept per (source, snapshot, by) for the store's life (`TOPK_CACHE` entries, ~1 MB
        each): a complete snapshot's state never changes, and each ranking reads the
        members' state from the change tables (~0.1 s at 100k entities, ~0.3 s at 1M)."""
        key = (source, sid, by)
        with self._topk_lock:
            hit = self._topk_cache.get(key)
            if hit is not None:
                self._topk_cache.move_to_end(key)
                return hit
        members = (
            pl.scan_delta(self._tables.must(TOPK))
            .filter(
                (pl.col("source") == source) & (pl.col("snapshot_id") == sid) & (pl.col("by") == by)
            )
            .select(KEY)
            .collect()[KEY]
            .to_list()
        )
        state = self._state(source, sid, cols, keys=members).collect()
        ranked = self._rank(state, source, sid, by, self.topk_n)
        with self._topk_lock:
            self._topk_cache[key] = ranked
            while len(self._topk_cache) > TOPK_CACHE:
                self._topk_cache.popitem(last=False)
        return ranked

    def changed(self, source: str, from_snapshot: Any, to_snapshot: Any) -> pl.LazyFrame:
        """entity_id, change (created|updated|renamed|deleted), and the columns (to, or from
        for deleted entities) between two complete snapshots."""
        a = self.resolve_snapshot(source, from_snapshot)
        b = self.resolve_snapshot(source, to_snapshot)
        cols = self.columns(source)
        sa = self._state(source, a, cols).collect()
        sb = self._state(source, b, cols).collect()
        value_cols = [c for c in cols if c != "entity_id"]
        j = sb.join(
            sa.select(
                ["entity_id", *[pl.col(c).alias(c + "__a") for c in value_cols]]
            ).with_columns(__in_a=pl.lit(True)),
            on="entity_id",
            how="left",
        )
        differs = pl.lit(False)
        for c in value_cols:
            differs = differs | pl.col(c).ne_missing(pl.col(c + "__a"))
        renamed = (
            pl.col("name").ne_missing(pl.col("name__a")) if "name" in value_cols else pl.lit(False)
        )
        change = (
            pl.when(pl.col("__in_a").is_null())
            .then(pl.lit("created"))
            .when(renamed)
            .then(pl.lit("renamed"))
            .when(differs)
            .then(pl.lit("updated"))
            .otherwise(None)
        )
        live = j.with_columns(change=change).filter(pl.col("change").is_not_null())
        live = live.select(["entity_id", "change", *value_cols])
        gone = sa.join(sb.select("entity_id"), on="entity_id", how="anti").with_columns(
            change=pl.lit("deleted")
        )
        gone = gone.select(["entity_id", "change", *value_cols])
        return pl.concat([live, gone]).sort("entity_id").lazy()

    # -- details ------------------------------------------------------------------------

    def _complete_pairs(self) -> pl.DataFrame:
        cat = self._catalog().filter(
            pl.col("status").is_in(["complete"]) & pl.col("source").str.starts_with("hub:")
        )
        return cat.select(
            pl.col("source").str.split(":").list.get(1).alias("repo_type"), "snapshot_id"
        )

    def _detail(self, kind: str, repo_type: str | None) -> pl.LazyFrame:
        lf = pl.scan_delta(self._tables.must(f"hub/{kind}"))
        lf = lf.join(self._complete_pairs().lazy(), on=["repo_type", "snapshot_id"], how="semi")
        if repo_type is not None:
            lf = lf.filter(pl.col("repo_type") == repo_type)
        return lf

    def commits(self, repo_type: str | None = None) -> pl.LazyFrame:
        """Every commit once (first snapshot it was seen in)."""
        return (
            self._detail("commits", repo_type)
            .sort("snapshot_id")
            .unique(["repo_type", "entity_id", "commit_id"], keep="first", maintain_order=True)
        )

    def _at_snapshot(self, repo_type: str | None, at: Any) -> int | None:
        if at is None:
            return None
        if repo_type is None:
            raise ValueError("at= needs repo_type= (snapshot ids are per source)")
        return self.resolve_snapshot(f"hub:{repo_type}", at)

    def discussions(self, repo_type: str | None = None, at: Any = None) -> pl.LazyFrame:
        """Newest state per (repo_type, entity_id, num) as of a snapshot (None = newest)."""
        lf = self._detail("discussions", repo_type)
        sid = self._at_snapshot(repo_type, at)
        if sid is not None:
            lf = lf.filter(pl.col("snapshot_id") <= sid)
        return lf.sort("snapshot_id").unique(
            ["repo_type", "entity_id", "num"], keep="last", maintain_order=True
        )

    def cards(self, repo_type: str | None = None, at: Any = None) -> pl.LazyFrame:
        """Newest card per (repo_type, entity_id) as of a snapshot (None = newest)."""
        lf = self._detail("cards", repo_type)
        sid = self._at_snapshot(repo_type, at)
        if sid is not None:
            lf = lf.filter(pl.col("snapshot_id") <= sid)
        return lf.sort("snapshot_id").unique(
            ["repo_type", "entity_id"], keep="last", maintain_order=True
        )

    def events(self, run_id: str | None = None) -> pl.LazyFrame:
        """ops/crawl_events, optionally of one run."""
        lf = pl.scan_delta(self._tables.must(EVENTS))
        if run_id is not None:
            lf = lf.filter(pl.col("run_id") == run_id)
        return lf.sort(["run_id", "seq"])

    # -- housekeeping -------------------------------------------------------------------

    def table_names(self) -> list[str]:
        names = list(FIXED_TABLES)
        for rel in (
            "hub/repos",
            "hub/repo_counters",
            "registry/packages",
            "registry/package_counters",
        ):
            if self._tables.exists(rel):
                names.append(rel)
        for src in self.sources():
            if is_custom(src) and self._tables.exists(entity_table(src)):
                names.append(entity_table(src))
        return names

    def table_stats(self) -> list[TableStats]:
        """rows, files and bytes of every table (current version)."""
        self.wait_for_tidying()
        out = []
        for rel in self.table_names():
            dt = self._tables.must(rel)
            adds = pl.from_arrow(pa.table(dt.get_add_actions(flatten=True)))
            assert isinstance(adds, pl.DataFrame)
            rows = int(adds["num_records"].sum()) if adds.height else 0
            size = int(adds["size_bytes"].sum()) if adds.height else 0
            out.append(TableStats(rel, rows, adds.height, size))
        return out

    def maintain(self, *, retention_hours: int | None = None) -> MaintenanceReport:
        """Compact, checkpoint and vacuum every table (see storage.maintenance)."""
        from storage.maintenance import maintain

        self.wait_for_tidying()
        return maintain(self, retention_hours=retention_hours)
