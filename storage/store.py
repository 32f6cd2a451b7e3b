"""`Store`: the snapshot store's public facade (docs/contracts.md, docs/storage.md).

Each method is a few lines over the internal handle (`storage.core.StoreCore`): reads are
in `storage.reads`, writing in `storage.writer`, maintenance in `storage.maintenance`,
the catalog in `storage.catalog`. Reads always scan the *current* version of each table
(never time travel), so vacuum can remove old files without breaking as-of reads of any
kept snapshot.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import polars as pl
import pyarrow as pa

from storage import backlog, derived, lease, maintenance, purge, reads, writer
from storage.catalog import At, Coverage, Heartbeat, SnapshotInfo
from storage.core import CODE_VERSION, KEYFRAME_COST, StoreCore, StoreOptions, TableStats
from storage.derived import DerivedFrame
from storage.layout import DetailKind, check_source
from storage.lease import Lease, LeaseHeld, LeaseState
from storage.maintenance import MaintenanceReport, TableMaintenance
from storage.purge import PurgeReport
from storage.writer import CrawlEvent, ShrinkStatus, SnapshotWriter

if TYPE_CHECKING:
    import duckdb

__all__ = ["MaintenanceReport", "Store", "TableMaintenance", "TableStats"]


class Store:
    """All tables of one store under one root URI (a folder or an object-store URI).

    Example:
        >>> store = Store.open("./data/store")
        >>> w = store.begin_snapshot("hub:model")
        >>> w.write_batch(0, [{"entity_id": "a/b", "name": "a/b", "downloads": 3}])
        True
        >>> w.finish("complete").status
        'complete'
        >>> store.as_of("hub:model", columns=["downloads"]).collect().height
        1
    """

    code_version = CODE_VERSION

    def __init__(
        self,
        uri: str,
        storage_options: Mapping[str, str] | None = None,
        *,
        keyframe_every: int = 7,
        topk_n: int = 10_000,
        keyframe_cost: float = KEYFRAME_COST,
        allow_instance_metadata: bool = False,
    ) -> None:
        """Open (creating when needed) the store at `uri`; prefer `Store.open`."""
        options = StoreOptions(
            keyframe_every=keyframe_every, topk_n=topk_n, keyframe_cost=keyframe_cost
        )
        self._core = StoreCore(
            uri, storage_options, options, allow_instance_metadata=allow_instance_metadata
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
        allow_instance_metadata: bool = False,
    ) -> Store:
        """Open (creating when needed) the store at `uri`.

        Args:
            uri: a folder, or an object-store URI (`s3://bucket/prefix`).
            storage_options: delta-rs object-store options (endpoint, credentials); on
                `s3://` the instance-metadata lookup is turned off in them unless allowed.
            keyframe_every: at most this many snapshots between counter keyframes (>= 1).
            topk_n: entities per popularity column kept in `derived/topk`.
            keyframe_cost: a table keyframes when its change rows since its last keyframe
                exceed this many times the live entities (> 0; docs/storage.md).
            allow_instance_metadata: on `s3://`, let the AWS credential chain ask the
                cloud's instance-metadata endpoint (off: credentials must be given).

        Returns:
            The store; its fixed tables exist once this returns.

        Raises:
            ValueError: an option out of range.
            StoreError: the root cannot be opened or created; on `s3://`, no credentials
                (`NoCredentials`) or an object store that does not refuse a second
                conditional put of a key (`ConditionalPutUnsupported`: it would lose
                concurrent commits).

        Example:
            >>> Store.open("./data/store", keyframe_every=3).keyframe_every
            3
        """
        return cls(
            uri,
            storage_options,
            keyframe_every=keyframe_every,
            topk_n=topk_n,
            keyframe_cost=keyframe_cost,
            allow_instance_metadata=allow_instance_metadata,
        )

    def __repr__(self) -> str:
        return f"Store({self.uri!r})"

    @property
    def uri(self) -> str:
        """The root URI the store was opened at."""
        return self._core.uri

    @property
    def storage_options(self) -> dict[str, str]:
        """The object-store options delta-rs is given (as opened, plus hubtide's defaults)."""
        return self._core.storage_options

    @property
    def keyframe_every(self) -> int:
        """At most this many snapshots between counter keyframes."""
        return self._core.options.keyframe_every

    @property
    def keyframe_cost(self) -> float:
        """Change rows per live entity that make a table keyframe."""
        return self._core.options.keyframe_cost

    @property
    def topk_n(self) -> int:
        """Entities per popularity column kept in `derived/topk`."""
        return self._core.options.topk_n

    # -- the catalog ------------------------------------------------------------------

    def sources(self) -> list[str]:
        """Sources with at least one snapshot (of any status), sorted.

        Example:
            >>> store.sources()
            ['hub:model', 'pypi']
        """
        return self._core.catalog.sources()

    def snapshots(
        self,
        source: str | None = None,
        *,
        include_partial: bool = False,
        all_statuses: bool = False,
    ) -> pl.DataFrame:
        """The catalog: one row per snapshot (schemas.CATALOG_SNAPSHOTS), by source and id.

        Args:
            source: only this source (None: every source).
            include_partial: partial snapshots too (default: complete ones only).
            all_statuses: every status, running and failed included.

        Returns:
            The rows; a valid source name without snapshots gives an empty frame.

        Raises:
            UnknownSource: `source` is not a valid source name.

        Example:
            >>> store.snapshots("hub:model")["snapshot_id"].to_list()
            [1, 2, 3]
        """
        return self._core.catalog.snapshots(
            source, include_partial=include_partial, all_statuses=all_statuses
        )

    def resolve_snapshot(self, source: str, at: At = None, *, include_partial: bool = False) -> int:
        """The snapshot id meant by `at`.

        Args:
            source: a source with snapshots.
            at: a snapshot id, a datetime or date (the newest snapshot at or before it),
                an ISO string or digits, or None for the newest.
            include_partial: partial snapshots count too.

        Returns:
            The snapshot id.

        Raises:
            UnknownSource: no snapshot of `source` at all.
            SnapshotNotFound: nothing matches `at` (the message lists what exists).
            ValueError: `at` is text that is neither an id nor an ISO date or instant.

        Example:
            >>> store.resolve_snapshot("hub:model", "2026-01-02")
            2
        """
        return self._core.catalog.resolve(source, at, include_partial=include_partial)

    # -- writing ----------------------------------------------------------------------

    def begin_snapshot(
        self,
        source: str,
        *,
        as_of: datetime | None = None,
        run_id: str | None = None,
        coverage: Coverage = "full",
        top_by: str | None = None,
        top_n: int | None = None,
        max_shrink: float | None = None,
        on_shrink: ShrinkStatus = "partial",
        id_column: str | None = None,
        digest: str | None = None,
    ) -> SnapshotWriter:
        """Start a new snapshot of `source` (status running); ids increase per source.

        Args:
            source: `hub:model`, `npm`, `registry:NAME`, `custom:NAME`, ...
            as_of: the instant the listing describes (default: now; naive means UTC).
            run_id: the crawl run's id (default: `{source}-{id}-{random}`).
            coverage: what the listing covers: `full` (every entity; absence is a
                tombstone), `top` (the top `top_n` by column `top_by`; absence means
                "not in the top") or `subset` (a filtered listing; no tombstones).
            top_by: the column a `top` listing is ranked by.
            top_n: its N (default: the entities the listing names).
            max_shrink: the shrink guard: a `full` listing that would tombstone more
                than this share of the previous state does not complete; None (the
                default here) = off; the crawler and `hubtide import` pass the config's
                `store.max_shrink` (0.10, `MAX_SHRINK`).
            on_shrink: how such a snapshot ends instead: `partial` (a crawl: its pages
                stay staged) or `failed` (an import); either way a `shrink` crawl event
                and the terminal row's message give the numbers.
            id_column: a custom source's id column name (`Store.id_column`), recorded
                in the catalog by its imports.
            digest: the imported file's `sha256:HEX` (`Store.imported`).

        Returns:
            A writer for the new snapshot.

        Raises:
            UnknownSource: `source` is not a valid source name.
            SnapshotOrder: `as_of` is in the future, or not after the instant of the
                source's newest snapshot that did not fail (time runs forward).
            StoreError: no id could be allocated (100 racing writers took them all).

        Example:
            >>> w = store.begin_snapshot("hub:model")
            >>> w.snapshot_id
            4
        """
        return writer.begin(
            self._core,
            source,
            as_of=as_of,
            run_id=run_id,
            coverage=coverage,
            top_by=top_by,
            top_n=top_n,
            max_shrink=max_shrink,
            on_shrink=on_shrink,
            id_column=id_column,
            digest=digest,
        )

    def id_column(self, source: str) -> str | None:
        """A custom source's id column name, as its first import recorded it: what the
        CLI's outputs call `entity_id`; None for a source without one (built-in, crawled).

        Example:
            >>> store.id_column("custom:papers")
            'doi'
        """
        return self._core.catalog.id_column(source)

    def imported(self, source: str, as_of: datetime, digest: str) -> SnapshotInfo | None:
        """The complete snapshot an import of the file with `digest` wrote at `as_of`.

        Example:
            >>> store.imported("custom:papers", day, "sha256:9f86d0...").snapshot_id
            3
        """
        return self._core.catalog.imported(source, as_of, digest)

    def snapshot_info(
        self, source: str, at: At = None, *, include_partial: bool = False
    ) -> SnapshotInfo:
        """The catalog row of the snapshot `at` means (what it covers among the rest).

        Args:
            source: a source with a snapshot.
            at: a snapshot id, instant, date or ISO text; None = the newest complete one.
            include_partial: let `at` resolve to a partial snapshot too.

        Returns:
            Its `SnapshotInfo` (`coverage`, `top_by`, `top_n`, counts, instants).

        Raises:
            UnknownSource, SnapshotNotFound: as `resolve_snapshot`.

        Example:
            >>> store.snapshot_info("hub:model").coverage
            'full'
        """
        sid = self._core.catalog.resolve(source, at, include_partial=include_partial)
        return self._core.catalog.info(source, sid)

    def resume_snapshot(self, source: str) -> SnapshotWriter | None:
        """The newest `running` snapshot of `source` as a writer, or None.

        The writer knows the last staged batch (`last_committed_seq`) and its
        `checkpoint`, so a crawl killed midway re-fetches only what was not staged.

        Raises:
            UnknownSource: `source` is not a valid source name.

        Example:
            >>> w = store.resume_snapshot("hub:model")
            >>> (w.last_committed_seq, w.checkpoint) if w else None
            (1, 'page2')
        """
        return writer.resume(self._core, source)

    def heartbeat(self, source: str, snapshot_id: int, run_id: str, *, host: str, pid: int) -> None:
        """Record that the writer of running snapshot `snapshot_id` is alive.

        Example:
            >>> store.heartbeat("hub:model", 4, w.run_id, host="box", pid=1234)
        """
        self._core.catalog.beat(source, snapshot_id, run_id, host, pid)

    def last_heartbeat(self, source: str, snapshot_id: int) -> Heartbeat | None:
        """The newest heartbeat of a snapshot (host, pid, at), or None when it has none.

        Example:
            >>> store.last_heartbeat("hub:model", 4).pid
            1234
        """
        return self._core.catalog.last_beat(source, snapshot_id)

    def acquire_lease(
        self,
        source: str,
        *,
        purpose: str = "crawl",
        ttl_seconds: float = 60.0,
        wait_seconds: float = 0.0,
        on_wait: Callable[[LeaseHeld], None] | None = None,
    ) -> Lease:
        """Take the one-writer lease of `source` (storage/lease.py) before writing it.

        Args:
            source: the source about to be written.
            purpose: what the writer is (`crawl`, `daemon`, `import`), shown to contenders.
            ttl_seconds: it expires this long after its last renewal (`Lease.keep_renewed`).
            wait_seconds: wait this long for a held lease (0: refuse at once).
            on_wait: called once when waiting begins.

        Returns:
            The held lease; `release()` it (or use it as a context manager) when done.

        Raises:
            LeaseHeld: another live writer holds it (the message names it).
            StoreError: the lease could not be read or written.

        Example:
            >>> with store.acquire_lease("npm").keep_renewed():
            ...     store.begin_snapshot("npm").finish("complete").status
            'complete'
        """
        check_source(source)
        return lease.acquire(
            self.uri,
            self.storage_options,
            source,
            purpose=purpose,
            ttl_seconds=ttl_seconds,
            wait_seconds=wait_seconds,
            on_wait=on_wait,
        )

    def lease_state(self, source: str) -> LeaseState | None:
        """The newest state of `source`'s lease (held, expired or released), or None.

        Example:
            >>> store.lease_state("npm").holder.purpose
            'daemon'
        """
        return lease.current(self.uri, self.storage_options, source)

    # -- reading ----------------------------------------------------------------------

    def columns(self, source: str) -> list[str]:
        """The logical columns `as_of` returns for `source` (`entity_id` first).

        Example:
            >>> store.columns("custom:papers")
            ['entity_id', 'title', 'n']
        """
        return self._core.columns(source)

    def schema(self, source: str) -> pa.Schema:
        """The logical Arrow schema of `source` (a custom source: what its table holds
        so far; just `entity_id` before its first snapshot).

        Example:
            >>> store.schema("custom:papers").names
            ['entity_id', 'title', 'n']
        """
        return self._core.logical_schema(source)

    def as_of(
        self,
        source: str,
        at: At = None,
        *,
        columns: Sequence[str] | None = None,
        include_partial: bool = False,
        max_staleness: timedelta | None = None,
    ) -> pl.LazyFrame:
        """The state of `source` as of a snapshot: one row per live entity.

        Args:
            source: a source with snapshots.
            at: which snapshot (see `resolve_snapshot`; None: the newest complete one).
            columns: the columns wanted (default: every logical column); `entity_id`
                always comes first.
            include_partial: a partial snapshot may be meant; its state is the previous
                complete state overlaid with what the partial listing saw.
            max_staleness: only the rows whose values were observed (`observed_at`) at
                most this long before the snapshot's instant; a row observed at an
                unknown time is left out.

        Returns:
            A lazy frame, read when collected.

        Raises:
            UnknownSource, SnapshotNotFound: as `resolve_snapshot`.
            ColumnNotFound: a column `source` does not have.
            ValueError: a negative `max_staleness`.

        Example:
            >>> store.as_of("hub:model", 2, columns=["downloads"]).collect().columns
            ['entity_id', 'downloads']
        """
        return reads.as_of(
            self._core,
            source,
            at,
            columns=columns,
            include_partial=include_partial,
            max_staleness=max_staleness,
        )

    def sql(self) -> duckdb.DuckDBPyConnection:
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
        """Every change of one entity: snapshot_id, as_of, op, the logical columns.

        One row per complete snapshot where the entity's state differs from the one
        before (`upsert`), or where it vanished (`delete`, columns null). Keyframe copies
        and counter rows that repeat the previous values are not changes.

        Raises:
            UnknownSource: no snapshot of `source`.

        Example:
            >>> store.history("hub:model", "a/b").collect()["op"].to_list()
            ['upsert', 'delete']
        """
        return reads.history(self._core, source, entity_id)

    def top_k(self, source: str, snapshot: At, by: str, k: int) -> pl.LazyFrame:
        """rank, entity_id, name, value: the top `k` by column `by` (ties: entity_id asc).

        Args:
            source: a source with snapshots.
            snapshot: which complete snapshot (see `resolve_snapshot`).
            by: the column ranked on (values cast to float; nulls never ranked).
            k: how many (>= 1); within `topk_n` for a popularity column, it reads the
                members kept at finish only.

        Raises:
            ColumnNotFound: `source` has no column `by`.
            ValueError: k < 1.

        Example:
            >>> store.top_k("hub:model", None, "downloads", 3).collect()["rank"].to_list()
            [1, 2, 3]
        """
        return reads.top_k(self._core, source, snapshot, by, k)

    def named(self, source: str, name: str) -> pl.DataFrame:
        """The entities that ever had `name` (current or past; exact, else case-insensitive).

        Returns:
            entity_id, name (its newest), named_in (the newest snapshot recording `name` for
            it), newest first; empty when none did.

        Raises:
            UnknownSource: no snapshot of `source` at all.

        Example:
            >>> store.named("hub:model", "org/old-name")["entity_id"].to_list()
            ['65f1c0ffee']
        """
        return reads.named(self._core, source, name)

    def resolve_entity(self, source: str, id_or_name: str) -> str:
        """The entity_id meant by an id or a current or past name (a Hub repo's `_id`).

        Raises:
            UnknownSource: no snapshot of `source` at all.
            EntityNotFound: no such id, and no entity ever had that name.
            AmbiguousName: several did (`candidates`: the frame of `named`).

        Example:
            >>> store.resolve_entity("hub:model", "org/old-name")
            '65f1c0ffee'
        """
        return reads.resolve_entity(self._core, source, id_or_name)

    def changed(self, source: str, from_snapshot: At, to_snapshot: At) -> pl.LazyFrame:
        """entity_id, change (created|updated|renamed|deleted) and the columns (of
        `to_snapshot`, or of `from_snapshot` for deleted entities) between two complete
        snapshots. Where either snapshot is not a full listing (coverage top or subset), an
        entity absent from the later one is `left`, one absent from the earlier `entered`:
        a top-N list cannot tell a deletion from a fall out of the list.

        Raises:
            UnknownSource, SnapshotNotFound: as `resolve_snapshot`.

        Example:
            >>> store.changed("hub:model", 1, 2).collect()["change"].to_list()
            ['created', 'deleted']
        """
        return reads.changed(self._core, source, from_snapshot, to_snapshot)

    def commits(self, repo_type: str | None = None) -> pl.LazyFrame:
        """Every commit once (the first complete snapshot it was seen in).

        Example:
            >>> store.commits("model").collect().columns[:3]
            ['repo_type', 'entity_id', 'snapshot_id']
        """
        return reads.commits(self._core, repo_type)

    def discussions(self, repo_type: str | None = None, at: At = None) -> pl.LazyFrame:
        """Newest state per (repo_type, entity_id, num) as of a snapshot (None = newest).

        Raises:
            ValueError: `at` without `repo_type` (snapshot ids are per source).

        Example:
            >>> store.discussions("model", at=2).collect().height
            5
        """
        return reads.discussions(self._core, repo_type, at)

    def cards(self, repo_type: str | None = None, at: At = None) -> pl.LazyFrame:
        """Newest card per (repo_type, entity_id) as of a snapshot (None = newest).

        Raises:
            ValueError: `at` without `repo_type` (snapshot ids are per source).

        Example:
            >>> store.cards("model").collect().height
            12
        """
        return reads.cards(self._core, repo_type, at)

    def events(self, run_id: str | None = None) -> pl.LazyFrame:
        """`ops/crawl_events` (errors, retries, quarantined records), of one run if given.

        Example:
            >>> store.events("hub:model-3-1a2b3c4d").collect()["kind"].unique().to_list()
            ['rejected']
        """
        return reads.events(self._core, run_id)

    # -- the details backlog (storage/backlog.py) -----------------------------------

    def detailed(self, source: str) -> pl.DataFrame:
        """entity_id, detail, sha: the sha each repo's each detail was last fetched at
        (the `done` rows of `ops/detail_backlog`).

        Example:
            >>> store.detailed("hub:model").columns
            ['entity_id', 'detail', 'sha']
        """
        return backlog.detailed(self._core, source)

    def open_detail_batch(self, source: str) -> tuple[int, pl.DataFrame | None]:
        """(the next drain batch number, the claim rows of a batch claimed but not marked
        done: a drain killed mid-batch, to be finished first; None when there is none).

        Example:
            >>> store.open_detail_batch("hub:model")
            (1, None)
        """
        return backlog.open_claim(self._core, source)

    def mark_details(
        self,
        source: str,
        batch: int,
        entry: str,
        snapshot_id: int,
        rows: Sequence[dict[str, Any]],
    ) -> bool:
        """Append a drain batch's `claim` (before fetching) or `done` (after its detail
        rows are in) rows, each `{entity_id, name, detail, sha}`; once per (source, entry,
        batch). Returns False when that batch's rows were already there.

        Raises:
            ValueError: an unknown entry or detail kind, or a batch below 1.
        """
        return backlog.mark(self._core, source, batch, entry, snapshot_id, rows)

    def append_details(
        self,
        source: str,
        snapshot_id: int,
        kind: DetailKind,
        batch: int,
        rows: Sequence[dict[str, Any]],
    ) -> bool:
        """Append a drain batch's commits / discussions / cards rows, attributed to the
        complete snapshot `snapshot_id`; once per (source, kind, batch).

        Raises:
            ValueError: an unknown kind, a batch below 1, or a snapshot not complete.
        """
        return backlog.append_details(self._core, source, snapshot_id, kind, batch, rows)

    def record_detail_coverage(
        self, source: str, snapshot_id: int, rows: Sequence[dict[str, Any]]
    ) -> None:
        """Record a snapshot's details coverage: rows `{detail, scope, covered, total}`
        (`ops/detail_coverage`; measured again later, the newest row counts).

        Raises:
            ValueError: an unknown detail kind, or covered outside 0..total.
        """
        backlog.record_coverage(self._core, source, snapshot_id, rows)

    def record_events(
        self, source: str, snapshot_id: int, run_id: str, events: Sequence[CrawlEvent]
    ) -> None:
        """Append `events` (numbered from 0) to `ops/crawl_events` under `run_id`, for work
        done on a snapshot after it closed by a run of its own: a details drain between
        crawls (crawler/backlog.py, `drain_source`).

        Raises:
            UnknownSource: `source` is not a source.
        """
        check_source(source)
        writer.append_events(self._core, source, snapshot_id, run_id, 0, list(events))

    def detail_coverage(self, source: str | None = None) -> pl.DataFrame:
        """source, snapshot_id, detail, scope, covered, total, at, ratio: the newest
        measure of each snapshot's details coverage.

        Example:
            >>> store.detail_coverage("hub:model")["scope"].to_list()[:2]
            ['all', 'top10000_downloads']
        """
        return backlog.coverage(self._core, source)

    # -- derived results ----------------------------------------------------------------

    def write_derived(self, table: str, frames: Iterable[DerivedFrame]) -> int:
        """Store results computed from the store under `derived/NAME` (storage/derived.py),
        one row per (source, snapshot_id, name, version, params) key, exactly once: a key
        already stored at its version is left out (each key carries its own txn). Returns
        the rows this call wrote.

        Example:
            >>> store.write_derived("derived/measures", [frame])
            1
        """
        return derived.write(self._core.tables, table, frames)

    def derived_stored(self, table: str, keys: Iterable[DerivedFrame]) -> list[bool]:
        """Per key (its frame unread): whether `table` holds it at its version."""
        return derived.has(self._core.tables, table, keys)

    def derived_index(self, table: str, **match: str | int | None) -> pl.DataFrame:
        """The stored keys of `table` (no frames) whose parts equal those given (source,
        name, snapshot_id, version, params; None = any)."""
        return derived.index(self._core.tables, table, **match)

    def read_derived(self, table: str, key: DerivedFrame) -> DerivedFrame | None:
        """The stored row of `key` (its source, snapshot_id, name, version and params),
        with its frame; None when it is not stored."""
        return derived.read(self._core.tables, table, key)

    def read_derived_many(
        self,
        table: str,
        *,
        source: str,
        name: str,
        version: int,
        params: str,
        snapshot_ids: Sequence[int],
    ) -> dict[int, DerivedFrame]:
        """The stored rows of one (source, name, version, params) at those of
        `snapshot_ids` that have one, with their frames, by snapshot id (one scan)."""
        return derived.read_many(
            self._core.tables,
            table,
            source=source,
            name=name,
            version=version,
            params=params,
            snapshot_ids=snapshot_ids,
        )

    # -- housekeeping -----------------------------------------------------------------

    def table_names(self) -> list[str]:
        """Every table of the store that exists (relative paths), fixed ones first.

        Example:
            >>> store.table_names()[:2]
            ['catalog/snapshots', 'staging/batches']
        """
        return self._core.table_names()

    def table_stats(self) -> list[TableStats]:
        """Rows, files and bytes of every table's current version (after waiting for the
        finished snapshots' tidying), and `disk_bytes`: every file under the table's
        folder (what it costs on disk: the live bytes plus files no version needs until
        a vacuum, the log and checkpoints).

        Example:
            >>> {s.table: s.rows for s in store.table_stats()}["catalog/snapshots"]
            6
        """
        return self._core.table_stats()

    def maintain(self, *, retention_hours: int | None = None) -> MaintenanceReport:
        """Compact, checkpoint and vacuum every table (storage/maintenance.py); safe
        while crawls write.

        Args:
            retention_hours: vacuum keeps unreferenced files younger than this (default
                168; floored at `maintenance.MIN_RETENTION_HOURS`).

        Returns:
            What it did, per table.

        Raises:
            StoreError: a table could not be maintained (named in the message).

        Example:
            >>> store.maintain(retention_hours=24).retention_hours
            24
        """
        return maintenance.maintain(self._core, retention_hours=retention_hours)

    def purge(
        self,
        source: str,
        entity_id: str,
        *,
        reason: str,
        field: str | None = None,
        dry_run: bool = False,
    ) -> PurgeReport:
        """Take an entity (or one of its fields) out of every table and snapshot, with an
        audit row in `ops/purges` (storage/purge.py). Run again after a kill, it resumes.

        Hold the source's lease (`acquire_lease(source, purpose="purge")`) meanwhile, and
        do not run `maintain` at the same time.

        Args:
            source: the entity's source.
            entity_id: its stable id (`resolve_entity` turns a name into it).
            reason: why; kept in the audit row.
            field: only this column, set to null in every row of the entity.
            dry_run: count what would change, write nothing.

        Returns:
            Rows removed (or changed) and files rewritten, per table.

        Raises:
            ValueError: an empty reason.
            UnknownSource: no snapshot of `source`.
            ColumnNotFound: `field` is no column of the source's tables, or a key column.
            EntityNotFound: no table holds the entity (nothing written).

        Example:
            >>> store.purge("hub:model", "65f1c0ffee", reason="takedown").rows["hub/repos"]
            3
        """
        return purge.purge(
            self._core, source, entity_id, reason=reason, field=field, dry_run=dry_run
        )

    def purges(self) -> pl.DataFrame:
        """The audit trail: one row per purge (purge_id, status, started, finished, source,
        entity_id, field, reason, rows, tables).

        Example:
            >>> store.purges()["reason"].to_list()
            ['takedown']
        """
        return purge.purges(self._core)

    def wait_for_tidying(self) -> None:
        """Wait until the staging drops and catalog compactions of finished snapshots
        are done (they run in a worker thread after each finish).

        Example:
            >>> store.wait_for_tidying()
        """
        self._core.wait_for_tidying()
