"""Delta table plumbing: URIs under the store root, creation, and the exactly-once append.

Every write the store makes goes through `append_once`: delta-rs records application
transactions but does not enforce them (stack-notes §1), so the writer refreshes the table,
compares `transaction_version(app_id)` itself, and writes through the very `DeltaTable` it
checked. A concurrent writer of the same txn makes the commit fail; we refresh and re-check,
so the loser skips instead of doubling rows.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Mapping
from typing import Literal

import pyarrow as pa
import pyarrow.fs as pafs
from deltalake import (
    ColumnProperties,
    CommitProperties,
    DeltaTable,
    PostCommitHookProperties,
    Transaction,
    WriterProperties,
    write_deltalake,
)
from deltalake.exceptions import CommitFailedError, DeltaError, TableNotFoundError
from deltalake.fs import DeltaStorageHandler

from storage.errors import CommitConflict, StoreError

# zstd everywhere: the bench compares against zstd Parquet dumps, and it is the best
# size/speed trade-off pyarrow offers for these mostly-string tables.
# Row groups of 128k rows: Polars decodes row groups in parallel, and a compacted file with
# one huge row group read 1.5-3x slower in the bench than the same rows in 128k groups.
# `entity_key` is written sorted (change rows, counters, top-k members): delta encoding
# stores the small gaps in ~1 byte where a dictionary or plain ints took 3-5 (measured:
# a 100k-row counters keyframe 499 kB default, 166 kB with the key delta-encoded).
ZSTD_LEVEL = 3
ROW_GROUP_ROWS = 131_072
_KEY_PROPS = ColumnProperties(dictionary_enabled=False, encoding="DELTA_BINARY_PACKED")
WRITER_PROPS = WriterProperties(
    compression="ZSTD",
    compression_level=ZSTD_LEVEL,
    max_row_group_size=ROW_GROUP_ROWS,
    column_properties={"entity_key": _KEY_PROPS},
)
# staged batches are zstd-compressed Arrow IPC already, and short-lived: no second codec
# and no statistics or dictionary for the blob: Parquet would otherwise copy it into the
# footer as min and max (a 1 MB batch became a 5 MB file)
STAGING_PROPS = WriterProperties(
    compression="UNCOMPRESSED",
    statistics_truncate_length=64,
    column_properties={
        "payload": ColumnProperties(dictionary_enabled=False, statistics_enabled="NONE")
    },
)
_RETRIES = 50
# A checkpoint every 10 commits (delta-rs's default is 100): every refresh, txn lookup and
# commit replays the log since the last checkpoint. Measured on the staging table's
# pattern (an append and a delete per snapshot): the txn check grew from 3 to 13 ms over
# 90 snapshots at 100 and stayed at ~3 ms at 10, appends 15 -> 10 ms, deletes 11 -> 6 ms.
TABLE_CONFIG = {"delta.checkpointInterval": "10"}
# Writers never checkpoint nor clean up logs after their commits: only `maintain` does
# (delta-rs #2258: a process killed while writing a checkpoint broke opening the table;
# a writer may be killed at any instant, maintenance runs rarely and is tested for it).
# Every write, delete and compaction outside maintenance passes this; so the interval
# above only tells `maintain` nothing, and the log between two maintains is replayed in
# full (see docs/storage.md, "Maintenance").
NO_HOOKS = PostCommitHookProperties(create_checkpoint=False, cleanup_expired_logs=False)
# the commit metadata key naming one plain (txn-less) write, so it can be found after an error
WRITE_ID = "hubtide.write"
# Tables read whole or by partition only (the catalog, staging) keep no column statistics:
# they are parsed for every file on every commit, for no pruning.
NO_STATS = {"delta.dataSkippingNumIndexedCols": "0"}

log = logging.getLogger(__name__)


def join_uri(root: str, rel: str) -> str:
    """`root` + `/` + `rel`, for a local folder or an object-store URI."""
    if "://" in root:
        return root.rstrip("/") + "/" + rel
    return os.path.join(os.path.abspath(root), *rel.split("/"))


class Tables:
    """Opens, creates and caches the `DeltaTable` objects of one store root.

    The cache is per thread: a `DeltaTable` object must never be used by two threads at
    once. delta-rs's vacuum and compaction write the table state they started from back
    into the object when they end, so a commit another thread made through the same
    object meanwhile vanished from it until its next refresh (its txn included: the
    exactly-once check then misses it). The daemon runs `maintain()` in one thread while
    crawls finish snapshots in others, on one `Store`
    (tests/storage/test_maintain_race.py)."""

    def __init__(self, root: str, storage_options: Mapping[str, str] | None = None) -> None:
        self.root = root
        self.storage_options: dict[str, str] | None = dict(storage_options or {}) or None
        self._local = threading.local()

    @property
    def _cache(self) -> dict[str, DeltaTable]:
        cache: dict[str, DeltaTable] | None = getattr(self._local, "cache", None)
        if cache is None:
            cache = self._local.cache = {}
        return cache

    def uri(self, rel: str) -> str:
        return join_uri(self.root, rel)

    def exists(self, rel: str) -> bool:
        if rel in self._cache:
            return True
        return DeltaTable.is_deltatable(self.uri(rel), storage_options=self.storage_options)

    def ensure(
        self,
        rel: str,
        schema: pa.Schema,
        partition_by: list[str] | None = None,
        *,
        stats: bool = True,
    ) -> None:
        """Create the table when missing; a concurrent creator winning the race is fine.
        `stats=False`: no column statistics (see NO_STATS)."""
        if self.exists(rel):
            return
        config = TABLE_CONFIG if stats else {**TABLE_CONFIG, **NO_STATS}
        for _ in range(_RETRIES):
            try:
                DeltaTable.create(
                    self.uri(rel),
                    schema,
                    mode="ignore",
                    partition_by=partition_by,
                    configuration=config,
                    storage_options=self.storage_options,
                    post_commithook_properties=NO_HOOKS,
                )
                return
            except (CommitFailedError, DeltaError):
                if self.exists(rel):
                    return
                time.sleep(0.05)
        raise CommitConflict(f"could not create table {rel} under {self.root}")

    def get(self, rel: str, *, fresh: bool = True) -> DeltaTable | None:
        """The table at `rel`, refreshed to its newest version; None when it does not exist."""
        dt = self._cache.get(rel)
        if dt is None:
            try:
                dt = DeltaTable(self.uri(rel), storage_options=self.storage_options)
            except TableNotFoundError:
                return None
            self._cache[rel] = dt
        elif fresh:
            dt.update_incremental()
        return dt

    def must(self, rel: str) -> DeltaTable:
        dt = self.get(rel)
        if dt is None:
            raise TableNotFoundError(f"table {rel} does not exist under {self.root}")
        return dt

    def append_once(
        self,
        rel: str,
        data: pa.Table | Callable[[], pa.RecordBatchReader],
        app_id: str,
        version: int,
        *,
        schema_mode: Literal["merge"] | None = None,
        partition_by: list[str] | None = None,
        writer_properties: WriterProperties = WRITER_PROPS,
        fresh: bool = True,
    ) -> bool:
        """Append `data` under txn (app_id, version) unless that version (or later) is in.

        Returns True when this call committed, False when the txn was already there.
        `fresh=False` when the caller has just refreshed the table (a commit that lost a
        race fails and is re-checked after a refresh, so staleness can never double rows).
        `data` may be a function giving a fresh stream of batches per attempt, so a large
        append never has to sit in memory whole (a stream is consumed by a try).
        """
        return bool(
            self.append_versions_once(
                rel,
                [version],
                lambda _: data() if callable(data) else data,
                app_id,
                schema_mode=schema_mode,
                partition_by=partition_by,
                writer_properties=writer_properties,
                fresh=fresh,
            )
        )

    def append_versions_once(
        self,
        rel: str,
        versions: list[int],
        data: Callable[[list[int]], pa.Table | pa.RecordBatchReader],
        app_id: str,
        *,
        schema_mode: Literal["merge"] | None = None,
        partition_by: list[str] | None = None,
        writer_properties: WriterProperties = WRITER_PROPS,
        fresh: bool = True,
    ) -> list[int]:
        """Append the rows of several txn versions of `app_id` in one commit, carrying
        the highest; versions already in (the txn at or past them) are left out.

        `data(todo)` gives the rows of the versions still to write; it is asked again
        after a lost race, so a version another writer committed meanwhile is never
        written twice. Returns the versions this call committed (empty: all were in).
        """
        dt = self.get(rel, fresh=fresh)
        if dt is None:
            raise TableNotFoundError(f"table {rel} does not exist under {self.root}")
        for _ in range(_RETRIES):
            done = dt.transaction_version(app_id)
            todo = sorted(v for v in versions if done is None or v > done)
            if not todo:
                return []
            cp = CommitProperties(app_transactions=[Transaction(app_id, todo[-1])])
            try:
                write_deltalake(
                    dt,
                    data(todo),
                    mode="append",
                    schema_mode=schema_mode,
                    partition_by=partition_by,
                    commit_properties=cp,
                    post_commithook_properties=NO_HOOKS,
                    writer_properties=writer_properties,
                )
                return todo
            except CommitFailedError:
                dt.update_incremental()  # the failed object still shows the old version
            except (DeltaError, OSError) as exc:
                # an error after the commit itself (the state update, a reply lost on the
                # wire: delta-rs raises object-store failures as OSError) must not turn a
                # committed row into a failure, nor a retry into a double: look for the
                # txn in a freshly loaded table (delta-rs #2279)
                if self._landed(rel, app_id, todo[-1]):
                    log.warning("%s: txn %s@%s committed, then: %s", rel, app_id, todo[-1], exc)
                    return todo
                # name the table and txn: delta-rs messages can be empty or name only a file
                raise StoreError(
                    f"{rel}: append of txn {app_id}@{todo[-1]} failed: "
                    f"{type(exc).__name__}: {str(exc) or 'no message'}"
                ) from exc
        raise CommitConflict(f"{rel}: txn {app_id}@{max(versions)} kept conflicting; try again")

    def _landed(self, rel: str, app_id: str, version: int) -> bool:
        """Whether txn (app_id, version) is in `rel`, read through a freshly loaded table."""
        self.forget(rel)
        try:
            dt = self.get(rel)
            done = dt.transaction_version(app_id) if dt is not None else None
        except Exception:
            return False
        return done is not None and done >= version

    def wrote(self, rel: str, write_id: str, since: int) -> bool:
        """Whether a commit after version `since` of `rel` carries `write_id` (commit
        metadata `WRITE_ID`), read through a freshly loaded table: how a write without a
        txn learns whether it landed after an error (delta-rs #2279: an error does not
        prove nothing was written). Raises what the reload raises: unknown is not "no"."""
        self.forget(rel)
        dt = self.must(rel)
        n = dt.version() - since
        return n > 0 and any(c.get(WRITE_ID) == write_id for c in dt.history(n))

    def disk_bytes(self, rel: str) -> int:
        """Bytes of every file under the table's folder: data files of the current
        version and of none (removed, not yet vacuumed; or written by a writer that
        died before its commit), the log and its checkpoints. What the table costs on
        disk, where its add actions give the live bytes of its current version."""
        fs = pafs.PyFileSystem(DeltaStorageHandler(self.uri(rel), self.storage_options))
        infos = fs.get_file_info(pafs.FileSelector("", allow_not_found=True, recursive=True))
        return sum(i.size or 0 for i in infos if i.type == pafs.FileType.File)

    def forget(self, rel: str) -> None:
        self._cache.pop(rel, None)
