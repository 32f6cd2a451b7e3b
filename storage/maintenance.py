"""`hubtide maintain`: compact small files, checkpoint the logs, vacuum old files.

Safe while a crawl writes and never breaks an as-of read of a kept snapshot because:

* reads never time-travel: they scan the current version, where compaction leaves the
  same rows, so vacuum only removes files no current read can need;
* vacuum keeps files younger than `retention_hours`, floored at `MIN_RETENTION_HOURS`, so a
  file a concurrent writer has written but not yet committed is never removed;
* compaction only rewrites files it read; a concurrent append commits alongside it
  (delta-rs retries append-vs-optimize conflicts), and a conflict here is retried later.

The change-encoded tables (attributes and counters) are compacted per keyframe window
(`compact_windows`), not by delta-rs's bin-packing: that merged every file of a source
into one, so a read of the newest snapshot could no longer skip the files of older
windows by their `valid_from` statistics (docs/storage.md, "Session 4").

It also drops staged batches of snapshots that finished (a kill between the terminal
catalog row and the cleanup leaves them behind).
"""

from __future__ import annotations

import bisect
import contextlib
import functools
import json
import operator
import time
import urllib.parse
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import polars as pl
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as pds
import pyarrow.fs as pafs
import pyarrow.parquet as pq
from deltalake import CommitProperties, DeltaTable, Transaction
from deltalake.exceptions import CommitFailedError, DeltaError
from deltalake.fs import DeltaStorageHandler
from deltalake.transaction import AddAction, RemoveAction

from storage.catalog import TableKind
from storage.core import StoreCore
from storage.errors import StoreError
from storage.layout import COMPACT_APP, KEY, STAGING, counter_table, entity_table
from storage.staged import drop_staged
from storage.tables import NO_HOOKS, ROW_GROUP_ROWS, WRITER_PROPS, ZSTD_LEVEL

# Long enough for any in-flight write (a batch takes seconds) to commit its files.
MIN_RETENTION_HOURS = 1
DEFAULT_RETENTION_HOURS = 168


@dataclass(frozen=True)
class TableMaintenance:
    """What `maintain` did to one table: files and bytes of its current version before
    and after, and how many unreferenced files vacuum removed."""

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


def _size(core: StoreCore, rel: str) -> tuple[int, int]:
    dt = core.tables.must(rel)
    adds = pl.from_arrow(pa.table(dt.get_add_actions(flatten=True)))
    assert isinstance(adds, pl.DataFrame)
    return adds.height, int(adds["size_bytes"].sum()) if adds.height else 0


def drop_finished_staging(core: StoreCore) -> int:
    """Delete staged batches of snapshots that are complete or failed. Returns how many."""
    cat = core.catalog.read()
    done = cat.filter(pl.col("status").is_in(["complete", "failed"])).select(
        "source", "snapshot_id"
    )
    # from the log's partition values, not the files: a writer finishing next to this
    # removes its snapshot's staged files from disk at once (staged.reclaim)
    adds = pa.table(core.tables.must(STAGING).get_add_actions(flatten=True))
    if not adds.num_rows:
        return 0
    staged = pl.DataFrame(
        {
            "source": adds.column("partition.source").to_pylist(),
            "snapshot_id": [int(s) for s in adds.column("partition.snapshot_id").to_pylist()],
        },
        schema={"source": pl.String, "snapshot_id": pl.Int64},
    ).unique()
    gone = staged.join(done, on=["source", "snapshot_id"], how="semi")
    for (source,), part in gone.group_by("source"):
        drop_staged(core.tables, str(source), part["snapshot_id"].to_list())
    return gone.height


def maintain(core: StoreCore, *, retention_hours: int | None = None) -> MaintenanceReport:
    """Compact, checkpoint and vacuum every table (see the module docstring)."""
    core.wait_for_tidying()
    t0 = time.perf_counter()
    hours = DEFAULT_RETENTION_HOURS if retention_hours is None else retention_hours
    hours = max(hours, MIN_RETENTION_HOURS)
    dropped = drop_finished_staging(core)
    windowed = windowed_tables(core)
    out = []
    for rel in core.table_names():
        try:
            files0, bytes0 = _size(core, rel)
            if rel in windowed:
                compact_windows(core, rel, *windowed[rel])
            else:
                _compact(core, rel)
            dt = core.tables.must(rel)
            with contextlib.suppress(CommitFailedError, DeltaError):
                dt.create_checkpoint()
            removed = dt.vacuum(
                retention_hours=hours, dry_run=False, enforce_retention_duration=False
            )
            with contextlib.suppress(CommitFailedError, DeltaError):
                dt.cleanup_metadata()
            files1, bytes1 = _size(core, rel)
        except Exception as exc:
            raise StoreError(
                f"maintain {rel}: {type(exc).__name__}: {str(exc) or 'no message'}"
            ) from exc
        finally:
            # vacuum and compaction leave the object at the state they started from
            core.tables.forget(rel)
        out.append(TableMaintenance(rel, files0, files1, bytes0, bytes1, len(removed)))
    return MaintenanceReport(out, hours, dropped, time.perf_counter() - t0)


def _compact(core: StoreCore, rel: str, tries: int = 3) -> None:
    """Compact, retrying a conflict with a concurrent commit (a staging drop deleting the
    files it read); still conflicting after `tries`, it is left to the next maintain."""
    for _ in range(tries):
        dt = core.tables.must(rel)
        try:
            # its checkpoint is the explicit step after (one place that checkpoints)
            dt.optimize.compact(writer_properties=WRITER_PROPS, post_commithook_properties=NO_HOOKS)
            return
        except CommitFailedError:
            continue
        except DeltaError:
            return


# -- compaction per keyframe window ----------------------------------------------------

# COMPACT_APP (storage/layout.py) is the app id of a window compaction's commit. delta-rs
# does not notice two commits that remove the same files (measured: two rewrites of the
# same files both committed and the rows doubled), but it does refuse a second commit of
# the same (app id, version): each compaction commits the table's next version of this
# txn, so of two racing, one fails.


def windowed_tables(core: StoreCore) -> dict[str, tuple[TableKind, list[str]]]:
    """The change-encoded tables of the store: rel -> (which kind of table it is, the
    sources it holds)."""
    out: dict[str, tuple[TableKind, list[str]]] = {}
    for src in core.catalog.sources():
        out.setdefault(entity_table(src), ("attributes", []))[1].append(src)
        crel = counter_table(src)
        if crel is not None:
            out.setdefault(crel, ("counters", []))[1].append(src)
    return {rel: v for rel, v in out.items() if core.tables.exists(rel)}


@dataclass(frozen=True)
class DataFile:
    """One live file of a table, as its add action says."""

    path: str  # relative to the table root, not URL-encoded (what add/remove actions take)
    size: int
    lo: int | None  # min and max valid_from (None: no statistics)
    hi: int | None
    partition: dict[str, str | None]


def live_files(dt: DeltaTable) -> list[DataFile]:
    adds = pl.from_arrow(pa.table(dt.get_add_actions(flatten=True)))
    assert isinstance(adds, pl.DataFrame)
    parts = [c for c in adds.columns if c.startswith("partition.")]
    out = []
    for r in adds.iter_rows(named=True):
        out.append(
            DataFile(
                # get_add_actions gives the log's URL-encoded path ("source=hub%253Amodel")
                urllib.parse.unquote(r["path"]),
                int(r["size_bytes"]),
                r.get("min.valid_from"),
                r.get("max.valid_from"),
                {c.removeprefix("partition."): r[c] for c in parts},
            )
        )
    return out


def window_of(keyframes: Sequence[int], valid_from: int) -> int:
    """Index of the keyframe window holding `valid_from` (-1: before the first keyframe)."""
    return bisect.bisect_right(keyframes, valid_from) - 1


@dataclass
class WindowPlan:
    """What one compaction of a partition rewrites: per window, the files whose rows go
    into that window's one new file; `spanning` files hold rows of several windows (an
    older compaction's) and are split among them."""

    windows: dict[int, list[DataFile]]
    spanning: list[DataFile]

    def removed(self) -> list[DataFile]:
        return [f for fs in self.windows.values() for f in fs] + self.spanning


def plan_windows(files: Sequence[DataFile], keyframes: Sequence[int]) -> WindowPlan:
    """Which files of one partition to merge, per keyframe window.

    A keyframe's own files (every row `valid_from` = the keyframe) are kept as written:
    big, sorted by key, and the read takes their rows by that equality. The other files of
    a window (its change files) become one file once there are two or more. So a read of
    S scans the files of S's window only: older windows are skipped by the `valid_from`
    statistics of the files."""
    changes: dict[int, list[DataFile]] = {}
    spanning = []
    for f in files:
        if f.lo is None or f.hi is None:
            spanning.append(f)
            continue
        w = window_of(keyframes, f.lo)
        if w != window_of(keyframes, f.hi):
            spanning.append(f)
        elif not (w >= 0 and f.lo == f.hi == keyframes[w]):
            changes.setdefault(w, []).append(f)
    touched = {w for w, fs in changes.items() if len(fs) > 1}
    for f in spanning:
        if f.lo is None or f.hi is None:
            touched.update(range(-1, len(keyframes)))  # no statistics: may hold any
        else:
            touched.update(range(window_of(keyframes, f.lo), window_of(keyframes, f.hi) + 1))
    return WindowPlan({w: changes.get(w, []) for w in sorted(touched)}, spanning)


def compact_windows(
    core: StoreCore, rel: str, which: TableKind, sources: Sequence[str], tries: int = 3
) -> None:
    """Compact each source's partition of a change-encoded table window by window
    (`plan_windows`); a conflict with a concurrent commit is retried `tries` times, then
    left to the next maintain."""
    for source in sources:
        for _ in range(tries):
            job = prepare_compaction(core, rel, which, source)
            if job is None:
                break
            try:
                job.commit()
                break
            except CommitFailedError:
                job.discard()
            except BaseException:
                job.discard()
                raise


@dataclass
class Compaction:
    """A window compaction of one partition, its new files written, not yet committed.

    Its commit carries (`COMPACT_APP`, the next version) and is made through the table
    object it read: a compaction of the same table that committed in between makes it fail
    (`CommitFailedError`), a concurrent append does not."""

    dt: DeltaTable
    fs: pafs.FileSystem
    adds: list[AddAction]
    removes: list[RemoveAction]
    partition_by: list[str]

    def commit(self) -> None:
        version = (self.dt.transaction_version(COMPACT_APP) or 0) + 1
        self.dt.create_write_transaction(
            [*self.adds, *self.removes],
            mode="append",
            schema=self.dt.schema(),
            partition_by=self.partition_by or None,
            commit_properties=CommitProperties(
                app_transactions=[Transaction(COMPACT_APP, version)]
            ),
            post_commithook_properties=NO_HOOKS,
        )

    def discard(self) -> None:
        """Delete the new files (not committed, so nothing refers to them)."""
        for a in self.adds:
            with contextlib.suppress(Exception):
                self.fs.delete_file(a.path)


def prepare_compaction(
    core: StoreCore, rel: str, which: TableKind, source: str
) -> Compaction | None:
    """Write the merged file of every window of `source` that `plan_windows` picks; None
    when there is nothing to merge."""
    # a table object of its own, pinned at the version it reads (not the per-thread cache:
    # two compactions must each commit from the version they planned on)
    dt = DeltaTable(core.tables.uri(rel), storage_options=core.tables.storage_options)
    parts = list(dt.metadata().partition_columns)
    files = [f for f in live_files(dt) if not parts or f.partition.get("source") == source]
    keyframes = core.catalog.keyframes(source, which)
    plan = plan_windows(files, keyframes)
    if not plan.windows:
        return None
    fs = pafs.PyFileSystem(DeltaStorageHandler(dt.table_uri, core.tables.storage_options))
    schema = pa.schema(dt.schema().to_arrow())  # an arro3 schema: through the C interface
    schema = pa.schema([schema.field(n) for n in schema.names if n not in parts])
    folder = files[0].path.rpartition("/")[0]  # the partition's folder (hive-style)
    now_ms = int(time.time() * 1000)
    job = Compaction(dt, fs, [], [], parts)
    try:
        for w, own in plan.windows.items():
            lo = keyframes[w] if w >= 0 else None
            hi = keyframes[w + 1] if w + 1 < len(keyframes) else None
            rows = _window_rows(fs, schema, own, plan.spanning, lo, hi)
            if rows.num_rows:
                job.adds.append(_write_file(fs, folder, rows, schema, now_ms, source, parts))
    except BaseException:
        job.discard()
        raise
    job.removes = [
        RemoveAction(f.path, False, now_ms, f.size, f.partition or None) for f in plan.removed()
    ]
    return job


def _window_rows(
    fs: pafs.FileSystem,
    schema: pa.Schema,
    own: Sequence[DataFile],
    spanning: Sequence[DataFile],
    lo: int | None,
    hi: int | None,
) -> pa.Table:
    """The rows of one window: all of its own files, those of the spanning files with
    `valid_from` in [lo, hi); sorted by (`valid_from`, `entity_key`), so each snapshot's
    rows are one run of sorted keys (the key's delta encoding stays ~1 byte)."""
    pieces = []
    if own:
        pieces.append(pds.dataset([f.path for f in own], schema=schema, filesystem=fs).to_table())
    if spanning:
        ds = pds.dataset([f.path for f in spanning], schema=schema, filesystem=fs)
        vf = pc.field("valid_from")
        bounds = [vf >= lo] if lo is not None else []
        bounds += [vf < hi] if hi is not None else []
        keep = functools.reduce(operator.and_, bounds) if bounds else None
        pieces.append(ds.to_table(filter=keep))
    rows = pa.concat_tables(pieces)
    return rows.sort_by([("valid_from", "ascending"), (KEY, "ascending")])


def _write_file(
    fs: pafs.FileSystem,
    folder: str,
    rows: pa.Table,
    schema: pa.Schema,
    now_ms: int,
    source: str,
    parts: list[str],
) -> AddAction:
    name = f"part-00000-{uuid.uuid4()}-c000.zstd.parquet"
    path = f"{folder}/{name}" if folder else name
    with fs.open_output_stream(path) as out:
        pq.write_table(
            rows,
            out,
            # storage.tables.WRITER_PROPS in pyarrow's terms
            compression="zstd",
            compression_level=ZSTD_LEVEL,
            row_group_size=ROW_GROUP_ROWS,
            use_dictionary=[p for f in schema for p in leaf_paths(f.name, f.type) if p != KEY],
            column_encoding={KEY: "DELTA_BINARY_PACKED"},
        )
    size = fs.get_file_info(path).size
    assert size is not None
    partition: dict[str, str | None] = {"source": source} if parts else {}
    return AddAction(path, size, partition, now_ms, False, json.dumps(file_stats(rows)))


def leaf_paths(name: str, t: pa.DataType) -> list[str]:
    """Parquet's paths of a column's leaves (`tags.list.element`): pyarrow applies a
    per-column `use_dictionary` to leaves, so a list column named by its top-level name
    got no dictionary (the change file of the bench's 100k x 30 run: 1.62 MB, 1.50 with)."""
    if pa.types.is_list(t) or pa.types.is_large_list(t):
        return leaf_paths(f"{name}.list.{t.value_field.name}", t.value_type)
    if pa.types.is_struct(t):
        return [p for f in t for p in leaf_paths(f"{name}.{f.name}", f.type)]
    return [name]


_STAT_TYPES = (pa.types.is_integer, pa.types.is_string, pa.types.is_large_string)


def file_stats(rows: pa.Table, *, max_text_chars: int | None = None) -> dict[str, Any]:
    """Delta statistics of a file: record count, null counts of the flat columns, min and
    max of the integer and string ones (what reads filter on: `valid_from`, `entity_key`,
    `entity_id`). A column without min/max is read, never skipped. `max_text_chars`: a
    text column with a longer value gets no min/max (the statistics live in the log: a
    purge must not copy a long text there)."""
    mins: dict[str, Any] = {}
    maxs: dict[str, Any] = {}
    nulls: dict[str, int] = {}
    for name, col in zip(rows.column_names, rows.columns, strict=True):
        t = col.type
        if pa.types.is_nested(t):
            continue
        nulls[name] = col.null_count
        text = pa.types.is_string(t) or pa.types.is_large_string(t)
        long = (
            text
            and max_text_chars is not None
            and col.null_count < len(col)
            and (pc.max(pc.utf8_length(col)).as_py() or 0) > max_text_chars
        )
        if long:
            continue
        if any(is_(t) for is_ in _STAT_TYPES) and col.null_count < len(col):
            mm = pc.min_max(col)
            mins[name] = mm["min"].as_py()
            maxs[name] = mm["max"].as_py()
    return {"numRecords": rows.num_rows, "minValues": mins, "maxValues": maxs, "nullCount": nulls}
