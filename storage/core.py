"""`StoreCore`: the one internal handle every part of the store reaches the tables through.

It owns the store's root and options, the `Tables` (Delta table objects, per thread),
the `Catalog`, the two worker threads a finish uses, the caches that outlive one call
(the last complete state per source for the next diff, ranked top-k members), the jobs
that tidy up after a finish, and the schema lookups. `reads`, `writer` and `maintenance`
take a `StoreCore` and touch nothing else of the store; `store.Store` is the public
facade over it. Nothing here imports those modules (no import circle).
"""

from __future__ import annotations

import logging
import os
import threading
import uuid
from collections import OrderedDict
from collections.abc import Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Generic, TypeVar

import polars as pl
import pyarrow as pa
from deltalake import CommitProperties, write_deltalake
from deltalake.exceptions import CommitFailedError, DeltaError

from storage import schemas
from storage.catalog import Catalog
from storage.derived import MEASURES as DERIVED_MEASURES
from storage.errors import StoreError
from storage.layout import (
    FAMILY_TABLES,
    META_COLUMNS,
    OBSERVED,
    OBSERVED_AT,
    OPS_TABLES,
    PURGES,
    entity_table,
    fixed_tables,
    is_custom,
)
from storage.objects import check_conditional_put, delta_options, is_s3
from storage.records import Rows
from storage.staged import drop_staged
from storage.state import PreviousState
from storage.tables import NO_HOOKS, WRITE_ID, WRITER_PROPS, Tables

CODE_VERSION = "hubtide-storage/2"
KEYFRAME_COST = 1.0
# finished snapshots of a source whose staged batches one delete drops (see
# StoreCore.after_finish). 1: grouping 4 saved one commit in 4 but left up to 3 snapshots
# of raw batches in the current version (the bench's store grew from 0.098 to 0.401 of
# the dumps until maintain), for no ingest gain measurable at load 5-6.
STAGING_DROP_EVERY = 1
# a plain append that fails (not a conflict) and did not land is tried this many times
PLAIN_ERROR_TRIES = 3
# ranked top-k member lists kept per (source, snapshot, column): see reads.ranked_members
TOPK_CACHE = 64

log = logging.getLogger(__name__)

K = TypeVar("K")
V = TypeVar("V")


@dataclass(frozen=True)
class StoreOptions:
    """The knobs of one store (docs/storage.md, "Keyframes"); checked when built.

    `keyframe_every`: at most this many snapshots between counter keyframes;
    `keyframe_cost`: a table keyframes when its change rows since its last keyframe exceed
    this many times the live entities; `topk_n`: members kept per popularity column."""

    keyframe_every: int = 7
    topk_n: int = 10_000
    keyframe_cost: float = KEYFRAME_COST

    def __post_init__(self) -> None:
        if self.keyframe_every < 1:
            raise ValueError(f"keyframe_every must be >= 1, got {self.keyframe_every}")
        if self.keyframe_cost <= 0:
            raise ValueError(f"keyframe_cost must be > 0, got {self.keyframe_cost}")


@dataclass(frozen=True)
class TableStats:
    """Size of one Delta table: rows, files and bytes of its current version (live), and
    `disk_bytes`, every file under its folder (old versions' files not yet vacuumed, the
    log, checkpoints): what it costs on disk."""

    table: str
    rows: int
    files: int
    bytes: int
    disk_bytes: int = 0


class LruCache(Generic[K, V]):
    """A small thread-safe least-recently-used map."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._items: OrderedDict[K, V] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: K) -> V | None:
        with self._lock:
            hit = self._items.get(key)
            if hit is not None:
                self._items.move_to_end(key)
            return hit

    def clear(self) -> None:
        with self._lock:
            self._items.clear()

    def put(self, key: K, value: V) -> None:
        with self._lock:
            self._items[key] = value
            while len(self._items) > self._size:
                self._items.popitem(last=False)


class StoreCore:
    """The internal handle of one store root (see the module docstring)."""

    code_version = CODE_VERSION

    def __init__(
        self,
        uri: str,
        storage_options: Mapping[str, str] | None,
        options: StoreOptions,
        *,
        allow_instance_metadata: bool = False,
    ) -> None:
        self.uri = uri
        # checked before any table is touched: a store that would lose commits, or has no
        # credentials, fails here in one line (storage/objects.py)
        self.storage_options = delta_options(
            uri, storage_options, allow_instance_metadata=allow_instance_metadata
        )
        if is_s3(uri):
            check_conditional_put(uri, self.storage_options)
        self.options = options
        self.tables = Tables(uri, self.storage_options)
        self.catalog = Catalog(self.tables)
        # the last complete state per source, kept after a finish: the next diff needs it
        self.last_state: dict[str, PreviousState] = {}
        self.topk_cache: LruCache[tuple[str, int, str], pl.DataFrame] = LruCache(TOPK_CACHE)
        # finished snapshots whose staged batches are still in (see after_finish)
        self._undropped: dict[str, list[int]] = {}
        self._undropped_lock = threading.Lock()
        self._tidying: Future[None] | None = None
        self._tidy_lock = threading.Lock()
        self._pool: ThreadPoolExecutor | None = None
        self._pool_pid = 0
        self._pool_lock = threading.Lock()
        for rel, (schema, partition_by, stats) in fixed_tables().items():
            self.tables.ensure(rel, schema, partition_by, stats=stats)

    # -- worker threads -------------------------------------------------------------

    def workers(self) -> ThreadPoolExecutor:
        """Two threads a finish hands its counters and top-k appends to. Kept for the
        store's life: each thread's DeltaTable cache then survives from one finish to the
        next (opening a table costs ~40 ms; a refresh ~5)."""
        with self._pool_lock:
            # a forked child inherits the pool object but not its threads: a new pool
            if self._pool is None or self._pool_pid != os.getpid():
                self._pool = ThreadPoolExecutor(2, thread_name_prefix="hubtide-finish")
                self._pool_pid = os.getpid()
            return self._pool

    def after_finish(self, source: str, snapshot_id: int, *, drop: bool) -> None:
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
                drop_staged(self.tables, source, ids)
            self.catalog.compact()

        with self._tidy_lock:
            before = self._last_tidying()  # before workers() renews a forked child's pool
            self._tidying = self.workers().submit(job, before)

    def _last_tidying(self) -> Future[None] | None:
        # a forked child inherits the parent's futures but not the threads to finish them
        return self._tidying if self._pool_pid == os.getpid() else None

    def wait_for_tidying(self) -> None:
        """Wait until the staging drops and catalog compactions of finished snapshots
        are done (they run in a worker thread; `maintain` and `table_stats` wait)."""
        job = self._last_tidying()
        if job is not None:
            job.result()

    # -- plain writes ---------------------------------------------------------------

    def append_plain(self, rel: str, table: pa.Table) -> None:
        """Append without a txn (crawl events: numbered per run, a replay is harmless).

        After any error but a commit conflict, the table is loaded afresh and its commits
        since the attempt are searched for this write's id (commit metadata) before
        anything else is written (delta-rs #2279: an error does not prove nothing was
        written): found, the append is done (the error is logged); not found, it is tried
        again on the fresh table, up to PLAIN_ERROR_TRIES times; the check itself failing
        raises, since writing again could double the rows."""
        write_id = uuid.uuid4().hex
        cp = CommitProperties(custom_metadata={WRITE_ID: write_id})
        errors = 0
        for _ in range(50):
            dt = self.tables.must(rel)
            since = dt.version()
            try:
                write_deltalake(
                    dt,
                    table,
                    mode="append",
                    writer_properties=WRITER_PROPS,
                    commit_properties=cp,
                    post_commithook_properties=NO_HOOKS,
                )
                return
            except CommitFailedError:
                dt.update_incremental()
            except (DeltaError, OSError) as exc:
                what = f"{type(exc).__name__}: {str(exc) or 'no message'}"
                try:
                    landed = self.tables.wrote(rel, write_id, since)
                except Exception as check:
                    raise StoreError(
                        f"{rel}: append failed ({what}) and whether it landed is unknown: "
                        f"{type(check).__name__}: {check}"
                    ) from exc
                if landed:
                    log.warning("%s: append %s committed, then: %s", rel, write_id, what)
                    return
                errors += 1
                if errors >= PLAIN_ERROR_TRIES:
                    raise StoreError(f"{rel}: append failed: {what}") from exc
        raise StoreError(f"{rel}: append kept conflicting; try again")

    # -- schemas --------------------------------------------------------------------

    def logical_schema(self, source: str) -> pa.Schema:
        """The logical columns of `source` (a custom source: what its table holds)."""
        schema = schemas.entity_schema(source)
        if schema is not None:
            return schema
        dt = self.tables.get(entity_table(source))
        if dt is None:
            return pa.schema([pa.field("entity_id", pa.string()), schemas.OBSERVED_FIELD])
        phys = pa.schema(dt.schema().to_arrow())
        fields = [f for f in phys if f.name not in META_COLUMNS and f.name != OBSERVED_AT]
        # the observation time lives apart (layout.OBSERVED): last, as in the built-ins
        return pa.schema([*fields, schemas.OBSERVED_FIELD])

    def input_schema(self, source: str, rows: Rows) -> pa.Schema:
        """For a custom source: known columns keep their type, new ones are inferred."""
        if not is_custom(source):
            return self.logical_schema(source)
        known = {f.name: f for f in self.logical_schema(source)}
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

    def logical_columns(self, source: str, listing: pl.DataFrame) -> list[str]:
        """The columns a listing of `source` is diffed on (custom: plus its new ones)."""
        cols = list(self.logical_schema(source).names)
        if is_custom(source):
            cols += [c for c in listing.columns if c not in cols and c not in META_COLUMNS]
        return cols

    def column_types(self, source: str) -> dict[str, pl.DataType]:
        """The Polars type of each logical column of `source`."""
        df = pl.from_arrow(self.logical_schema(source).empty_table())
        assert isinstance(df, pl.DataFrame)
        return dict(df.schema)

    def columns(self, source: str) -> list[str]:
        """The logical columns `as_of` returns for `source`."""
        return list(self.logical_schema(source).names)

    # -- tables ---------------------------------------------------------------------

    def table_names(self) -> list[str]:
        """Every table of the store that exists, fixed ones first."""
        names = list(fixed_tables())
        names += [rel for rel in (*FAMILY_TABLES, *OPS_TABLES) if self.tables.exists(rel)]
        if self.tables.exists(OBSERVED):
            names.append(OBSERVED)
        if self.tables.exists(DERIVED_MEASURES):
            names.append(DERIVED_MEASURES)
        for src in self.catalog.sources():
            if is_custom(src) and self.tables.exists(entity_table(src)):
                names.append(entity_table(src))
        if self.tables.exists(PURGES):  # made by the first purge (storage/purge.py)
            names.append(PURGES)
        return names

    def table_stats(self) -> list[TableStats]:
        """rows, files and bytes of every table (current version), and its bytes on disk."""
        self.wait_for_tidying()
        out = []
        for rel in self.table_names():
            dt = self.tables.must(rel)
            adds = pl.from_arrow(pa.table(dt.get_add_actions(flatten=True)))
            assert isinstance(adds, pl.DataFrame)
            rows = int(adds["num_records"].sum()) if adds.height else 0
            size = int(adds["size_bytes"].sum()) if adds.height else 0
            out.append(TableStats(rel, rows, adds.height, size, self.tables.disk_bytes(rel)))
        return out
