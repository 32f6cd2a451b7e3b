"""Purge: take one entity, or one of its fields, out of every table and every snapshot,
and say so in `ops/purges` (`hubtide purge`, `hubtide purges`; docs/storage.md, "Purge").

What a purge of entity E of source S touches, in this order (`steps`):

1. `ops/crawl_events` - events of S naming E (a JSON string equal to its id or one of its
   names, a URL path segment, a quoted word): a JSON payload loses the records that are
   E (a listing page keeps its other records), any other payload naming E is nulled, as
   are a URL naming E, and E's names in `reason` become `[purged]`. A field purge nulls
   the payload of every event naming E (a raw record keeps the field under its API name);
2. `staging/batches` - E's rows in every staged batch of S (running and partial
   snapshots), batch by batch (each blob decoded, filtered, encoded again);
3. `hub/cards`, `hub/discussions`, `hub/commits` (Hub sources) - E's rows;
4. the counters table - the rows of E's entity keys (every incarnation);
5. `derived/topk` - E's keys; a top-k list that had `topk_n` members gets the entity
   ranked next in that snapshot's state in E's place, so `Store.top_k` is what it would
   have been had E never been listed;
6. the attributes table - E's rows (last: E's keys and names are read from it, so a purge
   killed midway finds them again).

A field purge sets column NAME to null in E's rows wherever a table holds that column
(and re-ranks a top-k list by NAME). Every other entity's rows are left byte for byte.

Each table is rewritten file by file (a file without E is not touched; a file's rows keep
their order, so the key's delta encoding and the keyframe windows of
storage/maintenance.py survive) in ONE commit carrying the app transaction
(`layout.purge_app(id)`, 1); the change-encoded tables' commit also carries the next
`COMPACT_APP` version, so a window compaction racing it fails instead of resurrecting
E's rows. Each step is then recorded in `ops/purges` under (`purge_app(id)`, step), so a
killed purge run again (the same SOURCE, ID and field) resumes at the first step not
recorded, and a table whose commit landed is not rewritten twice.

After its commit a table's removed files are deleted from disk at once (only those: a
vacuum cannot be aimed at files, and a short-retention vacuum would delete files a
concurrent writer wrote but has not committed yet), and its log is scrubbed: a
checkpoint, then the log entries and checkpoints before it are deleted, since their add
actions' statistics may hold E's values (min/max of a text column). Reads never
time-travel, so no read needs them; a `DeltaTable` object at an older version reloads
from the new checkpoint.

A purge takes source S's lease (the CLI does), so no crawl or import of S writes
meanwhile. Do not run `maintain` during a purge: its bin-packing of the tables other than
the change-encoded ones does not notice a concurrent rewrite.
"""

from __future__ import annotations

import json
import logging
import re
import time
import urllib.parse
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import polars as pl
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.fs as pafs
import pyarrow.parquet as pq
from deltalake import CommitProperties, DeltaTable, Transaction
from deltalake.exceptions import CommitFailedError, DeltaError
from deltalake.fs import DeltaStorageHandler
from deltalake.transaction import AddAction, RemoveAction

from storage import ranking, reads, schemas
from storage.core import StoreCore
from storage.derived import MEASURES
from storage.errors import ColumnNotFound, CommitConflict, EntityNotFound, StoreError
from storage.layout import (
    BACKLOG,
    COMPACT_APP,
    COVERED,
    EVENTS,
    KEY,
    META_COLUMNS,
    OBSERVED,
    OBSERVED_AT,
    PURGES,
    STAGING,
    TOPK,
    check_source,
    counter_table,
    detail_table,
    entity_table,
    is_custom,
    purge_app,
)
from storage.maintenance import DataFile, file_stats, leaf_paths, live_files
from storage.records import from_ipc, to_ipc
from storage.tables import NO_HOOKS, ROW_GROUP_ROWS, ZSTD_LEVEL

log = logging.getLogger(__name__)

TS = pa.timestamp("us", tz="UTC")
# ops/purges: one row per step of a purge (begin, one per table, done)
PURGES_SCHEMA = pa.schema(
    [
        pa.field("purge_id", pa.int64()),
        pa.field("step", pa.string()),  # begin | table | done
        pa.field("at", TS),
        pa.field("source", pa.string()),
        pa.field("entity_id", pa.string()),
        pa.field("field", pa.string()),  # null: the whole entity
        pa.field("reason", pa.string()),
        pa.field("table", pa.string()),  # a table step: which table
        pa.field("rows", pa.int64()),  # rows removed (entity) or changed (field)
        pa.field("files", pa.int64()),  # data files rewritten (and deleted from disk)
    ]
)
STEP_BEGIN, STEP_TABLE, STEP_DONE = "begin", "table", "done"
# the ops/purges txn versions: begin 0, table step i -> i + 1, done DONE_VERSION
DONE_VERSION = 1_000_000
# commit metadata of a purge's rewrite: which purge, how many rows
PURGE_KEY = "hubtide.purge"
ROWS_KEY = "hubtide.purge_rows"
# columns a field purge may not null: they say which row is which
KEY_COLUMNS = frozenset(
    {*META_COLUMNS, "entity_id", "repo_type", "snapshot_id", "commit_id", "num", "by"}
)
# keys of a raw JSON record that name the record (Hub `_id`/`id`/`modelId`, registries)
ID_KEYS = ("_id", "id", "entity_id", "modelId", "name", "package", "project")
PURGED = "[purged]"
_RETRIES = 5
# a text column's min/max goes into a rewritten file's statistics only when its values
# are this short (a crawl event's payload is up to 64 KiB: a statistic, not a copy)
_STAT_MAX_CHARS = 256


@dataclass(frozen=True)
class Target:
    """What one purge takes out: `entity_id` of `source` (all its `keys`), or its `field`."""

    source: str
    entity_id: str
    field: str | None
    keys: tuple[int, ...]
    names: tuple[str, ...]

    @property
    def tokens(self) -> tuple[str, ...]:
        """The id and every name: what an event must name to be about the entity."""
        return tuple(dict.fromkeys([self.entity_id, *self.names]))


@dataclass(frozen=True)
class PurgeReport:
    """What a purge did (or, `dry_run`, would do): rows per table, data files rewritten."""

    purge_id: int | None
    source: str
    entity_id: str
    field: str | None
    reason: str
    rows: dict[str, int]
    files: dict[str, int]
    resumed: bool = False
    dry_run: bool = False

    @property
    def total(self) -> int:
        return sum(self.rows.values())


@dataclass
class _Rewrite:
    """One table's rewrite: the files it replaces, the new files written (not committed)
    when `write`, and how many rows changed."""

    rel: str
    dt: DeltaTable
    fs: pafs.FileSystem
    # the files to remove, and (`write`) the new files already written in their place:
    # one rewritten file in memory at a time, never the whole table
    replace: list[DataFile] = field(default_factory=list)
    adds: list[AddAction] = field(default_factory=list)
    write: bool = False
    rows: int = 0


# -- the steps -------------------------------------------------------------------------


def steps(source: str) -> list[str]:
    """The tables a purge of `source` goes through, in order (stable: a resume relies on it)."""
    out = [EVENTS, STAGING]
    if source in schemas.HUB_SOURCES:
        out += [detail_table(k) for k in ("cards", "discussions", "commits")]
        out.append(BACKLOG)  # which sha each detail was fetched at (storage/backlog.py)
    crel = counter_table(source)
    if crel is not None:
        out.append(crel)
    if not is_custom(source):
        out.append(TOPK)
    # every stored measure result of the source counted the entity: all go, and the next
    # `analyze` computes them again under new keys (derived.generation)
    out.append(MEASURES)
    # before the attributes table: its keys are read from there (a resume needs them)
    out.append(OBSERVED)
    out.append(entity_table(source))
    return out


def purge(
    core: StoreCore,
    source: str,
    entity_id: str,
    *,
    reason: str,
    field: str | None = None,
    dry_run: bool = False,
) -> PurgeReport:
    """Take `entity_id` (or its `field`) out of every table of the store (module docstring).

    Raises:
        ValueError: no reason given.
        UnknownSource: `source` has no snapshot.
        ColumnNotFound: `field` is held by no table of `source`, or names a key column.
        EntityNotFound: nothing of the entity is in the store (nothing is written).
    """
    check_source(source)
    reason = (reason or "").strip()
    if not reason:
        raise ValueError("a purge needs a reason (--reason TEXT): it goes in ops/purges")
    core.catalog.check_known(source)
    if field is not None:
        _check_field(core, source, field)
    target = _target(core, source, entity_id, field)
    running = _running(core, target)
    if dry_run:
        rows, files = {}, {}
        for rel in steps(source):
            job = _plan(core, rel, target)
            rows[rel] = job.rows if job is not None else 0
            files[rel] = len(job.replace) if job is not None else 0
        if not sum(n for rel, n in rows.items() if rel != MEASURES) and running is None:
            raise _nothing(target)
        return PurgeReport(None, source, entity_id, field, reason, rows, files, dry_run=True)
    resumed = running is not None
    if running is None:
        # nothing of it anywhere: say so before an audit row claims a purge (an entity
        # the attributes table holds is surely there; else, or for a field, look)
        look = field is not None or not target.keys
        # (the source's stored measure results hold no entity: they are no evidence)
        held = [rel for rel in steps(source) if rel != MEASURES]
        if look and not any(_rows_in(core, rel, target) for rel in held):
            raise _nothing(target)
        _ensure_purges(core)
        purge_id = _begin(core, target, reason)
    else:
        purge_id = running
    app = purge_app(purge_id)
    recorded = _recorded(core, purge_id)
    rows_by: dict[str, int] = {}
    files_by: dict[str, int] = {}
    for i, rel in enumerate(steps(source)):
        if rel in recorded:
            rows_by[rel], files_by[rel] = recorded[rel]
        else:
            n, nfiles = _run_step(core, rel, target, purge_id, app)
            _record(
                core, target, reason, purge_id, i + 1, STEP_TABLE, table=rel, rows=n, files=nfiles
            )
            rows_by[rel], files_by[rel] = n, nfiles
        if files_by[rel]:
            # again on a resume: a kill may have come between the record and these
            _reclaim(core, rel, purge_id)
            _scrub_log(core, rel)
    _record(core, target, reason, purge_id, DONE_VERSION, STEP_DONE, rows=sum(rows_by.values()))
    # in-process caches of the old state (the daemon's next diff, ranked top-k lists)
    core.last_state.pop(source, None)
    core.topk_cache.clear()
    return PurgeReport(purge_id, source, entity_id, field, reason, rows_by, files_by, resumed)


def _rows_in(core: StoreCore, rel: str, target: Target) -> int:
    job = _plan(core, rel, target)
    return job.rows if job is not None else 0


def _nothing(target: Target) -> EntityNotFound:
    what = f"field {target.field!r} of " if target.field else ""
    return EntityNotFound(
        f"nothing to purge: no table holds {what}{target.entity_id!r} of {target.source!r}"
        + (" with a value" if target.field else "")
        + "; nothing was written"
    )


def _check_field(core: StoreCore, source: str, name: str) -> None:
    have = set(core.columns(source))
    if source in schemas.HUB_SOURCES:
        for s in schemas.DETAIL_SCHEMAS.values():
            have |= set(s.names)
    have -= KEY_COLUMNS
    if name in KEY_COLUMNS:
        raise ColumnNotFound(
            f"--field {name!r} is a key column (it says which row is which); purge the "
            "entity instead, or name one of: " + ", ".join(sorted(have))
        )
    if name not in have:
        raise ColumnNotFound(
            f"--field {name!r}: no table of {source!r} has that column; fields are "
            + ", ".join(sorted(have))
        )


def _target(core: StoreCore, source: str, entity_id: str, name: str | None) -> Target:
    """The entity's keys and names, read from the attributes table (untouched until the
    purge's last step, so a resumed purge finds them again)."""
    dt = core.tables.get(entity_table(source))
    keys: list[int] = []
    names: list[str] = []
    if dt is not None:
        cols = [KEY, *(["name"] if "name" in core.columns(source) else [])]
        lf = pl.scan_delta(dt).filter(pl.col("entity_id") == entity_id)
        if not is_custom(source):
            lf = lf.filter(pl.col("source") == source)
        hit = lf.select(cols).collect()
        keys = sorted({int(k) for k in hit[KEY].drop_nulls().to_list()})
        if "name" in hit.columns:
            names = sorted({str(n) for n in hit["name"].drop_nulls().to_list()} - {entity_id})
    return Target(source, entity_id, name, tuple(keys), tuple(names))


# -- ops/purges ------------------------------------------------------------------------


def _ensure_purges(core: StoreCore) -> None:
    core.tables.ensure(PURGES, PURGES_SCHEMA)


def read_purges(core: StoreCore) -> pl.DataFrame:
    """ops/purges, one row per step (empty when no purge ever ran)."""
    dt = core.tables.get(PURGES)
    if dt is None:
        df = pl.from_arrow(PURGES_SCHEMA.empty_table())
        assert isinstance(df, pl.DataFrame)
        return df
    return pl.scan_delta(dt).collect()


def purges(core: StoreCore) -> pl.DataFrame:
    """One row per purge: purge_id, status (done | running: killed, run it again),
    started, finished, source, entity_id, field, reason, rows (total), tables
    (`table: rows` of the tables it changed)."""
    raw = read_purges(core)
    out_schema: dict[str, pl.DataType] = {
        "purge_id": pl.Int64(),
        "status": pl.String(),
        "started": pl.Datetime("us", "UTC"),
        "finished": pl.Datetime("us", "UTC"),
        "source": pl.String(),
        "entity_id": pl.String(),
        "field": pl.String(),
        "reason": pl.String(),
        "rows": pl.Int64(),
        "tables": pl.String(),
    }
    rows = []
    for (pid,), part in raw.sort("at").group_by("purge_id", maintain_order=True):
        begin = part.filter(pl.col("step") == STEP_BEGIN)
        if begin.is_empty():
            continue
        b = begin.row(0, named=True)
        done = part.filter(pl.col("step") == STEP_DONE)
        tables = part.filter((pl.col("step") == STEP_TABLE) & (pl.col("rows") > 0))
        rows.append(
            {
                "purge_id": pid,
                "status": "done" if done.height else "running",
                "started": b["at"],
                "finished": done["at"][0] if done.height else None,
                "source": b["source"],
                "entity_id": b["entity_id"],
                "field": b["field"],
                "reason": b["reason"],
                "rows": int(tables["rows"].sum()) if tables.height else 0,
                "tables": ", ".join(f"{t}: {n}" for t, n in tables.select("table", "rows").rows()),
            }
        )
    if not rows:
        return pl.DataFrame(schema=out_schema)
    return pl.DataFrame(rows, schema=out_schema).sort("purge_id")


def _running(core: StoreCore, target: Target) -> int | None:
    """The id of a purge of the same entity and field that began and never finished."""
    raw = read_purges(core)
    if raw.is_empty():
        return None
    same = raw.filter(
        (pl.col("source") == target.source)
        & (pl.col("entity_id") == target.entity_id)
        & pl.col("field").eq_missing(target.field)
    )
    done = set(same.filter(pl.col("step") == STEP_DONE)["purge_id"].to_list())
    begun = sorted(set(same.filter(pl.col("step") == STEP_BEGIN)["purge_id"].to_list()) - done)
    return int(begun[-1]) if begun else None


def _recorded(core: StoreCore, purge_id: int) -> dict[str, tuple[int, int]]:
    raw = read_purges(core).filter(
        (pl.col("purge_id") == purge_id) & (pl.col("step") == STEP_TABLE)
    )
    return {
        str(t): (int(r or 0), int(f or 0))
        for t, r, f in raw.select("table", "rows", "files").rows()
    }


def _row(target: Target, reason: str, purge_id: int, step: str, **kw: Any) -> pa.Table:
    row = {
        "purge_id": purge_id,
        "step": step,
        "at": datetime.now(UTC),
        "source": target.source,
        "entity_id": target.entity_id,
        "field": target.field,
        "reason": reason,
        "table": kw.get("table"),
        "rows": kw.get("rows"),
        "files": kw.get("files"),
    }
    return pa.Table.from_pylist([row], schema=PURGES_SCHEMA)


def _begin(core: StoreCore, target: Target, reason: str) -> int:
    """A new purge id (the highest + 1), claimed by its begin row under its txn."""
    for _ in range(100):
        raw = read_purges(core)
        top = raw["purge_id"].max() if raw.height else None
        pid = int(top) + 1 if isinstance(top, int) else 1
        if core.tables.append_once(
            PURGES, _row(target, reason, pid, STEP_BEGIN), purge_app(pid), 0
        ):
            return pid
    raise StoreError("could not allocate a purge id")


def _record(
    core: StoreCore, target: Target, reason: str, purge_id: int, version: int, step: str, **kw: Any
) -> None:
    core.tables.append_once(
        PURGES, _row(target, reason, purge_id, step, **kw), purge_app(purge_id), version
    )


# -- one table -------------------------------------------------------------------------


def _run_step(
    core: StoreCore, rel: str, target: Target, purge_id: int, app: str
) -> tuple[int, int]:
    """Rewrite `rel` under txn (app, 1) unless it is in already; (rows, files) changed."""
    for _ in range(_RETRIES):
        if not core.tables.exists(rel):
            return 0, 0
        dt = DeltaTable(core.tables.uri(rel), storage_options=core.tables.storage_options)
        if (dt.transaction_version(app) or 0) >= 1:
            return _landed_counts(dt, purge_id)
        job = _plan(core, rel, target, dt, write=True)
        if job is None or not job.rows:
            if job is not None:
                _discard(job.fs, job.adds)
            return 0, 0
        try:
            _commit(job, purge_id, app)
            core.tables.forget(rel)
            return job.rows, len(job.replace)
        except CommitFailedError:
            _discard(job.fs, job.adds)  # a concurrent commit: plan again on the new version
        except (DeltaError, OSError) as exc:
            fresh = DeltaTable(core.tables.uri(rel), storage_options=core.tables.storage_options)
            if (fresh.transaction_version(app) or 0) >= 1:  # it landed (delta-rs #2279)
                core.tables.forget(rel)
                return job.rows, len(job.replace)
            _discard(job.fs, job.adds)
            raise StoreError(f"purge {purge_id}: {rel}: {type(exc).__name__}: {exc}") from exc
        except BaseException:
            _discard(job.fs, job.adds)
            raise
    raise CommitConflict(f"purge {purge_id}: {rel} kept changing under the purge; run it again")


def _landed_counts(dt: DeltaTable, purge_id: int) -> tuple[int, int]:
    """(rows, files) of purge `purge_id`'s commit in a table, from its commit metadata."""
    for h in dt.history():
        if h.get(PURGE_KEY) == str(purge_id):
            return int(h.get(ROWS_KEY) or 0), int(h.get("hubtide.purge_files") or 0)
    return 0, 0  # its log scrubbed already: the counts were recorded in ops/purges


def _fs(core: StoreCore, dt: DeltaTable) -> pafs.FileSystem:
    return pafs.PyFileSystem(DeltaStorageHandler(dt.table_uri, core.tables.storage_options))


def _plan(
    core: StoreCore, rel: str, target: Target, dt: DeltaTable | None = None, *, write: bool = False
) -> _Rewrite | None:
    """What a rewrite of `rel` changes (None: the table does not exist); `write`: the new
    files are written as it goes (the caller commits or discards them)."""
    if dt is None:
        if not core.tables.exists(rel):
            return None
        dt = DeltaTable(core.tables.uri(rel), storage_options=core.tables.storage_options)
    job = _Rewrite(rel, dt, _fs(core, dt), write=write)
    try:
        _plan_files(core, job, target)
    except BaseException:
        _discard(job.fs, job.adds)
        raise
    return job


def _plan_files(core: StoreCore, job: _Rewrite, target: Target) -> None:
    rel, dt = job.rel, job.dt
    transform, columns = _transform_of(core, rel, target)
    if transform is None:
        return
    src_partitioned = "source" in dt.metadata().partition_columns
    topk_groups: set[tuple[int, str]] = set()
    for f in live_files(dt):
        # the log's partition values are text (a flattened add action gives ints)
        f = DataFile(
            f.path,
            f.size,
            f.lo,
            f.hi,
            {k: None if v is None else str(v) for k, v in f.partition.items()},
        )
        if src_partitioned and f.partition.get("source") != target.source:
            continue
        handle = pq.ParquetFile(job.fs.open_input_file(f.path))
        probe = handle.read(columns=[c for c in columns if c in handle.schema_arrow.names])
        if not _might_hold(rel, probe, target):
            continue
        table = handle.read()
        new, n = transform(table, f.partition)
        if n:
            if rel == TOPK:
                topk_groups |= _groups(table, target)
            job.replace.append(f)
            job.rows += n
            if job.write and new is not None and new.num_rows:
                _add(job, f.path.rpartition("/")[0], new, f.partition)
    if rel == TOPK and topk_groups and job.write:
        extra = _refill(core, target, topk_groups)
        if extra is not None:
            _add(job, "", extra, {})


def _might_hold(rel: str, probe: pa.Table, target: Target) -> bool:
    """Whether a file's identifying columns can hold the entity (a cheap first look)."""
    if rel == STAGING:
        return True  # blobs: the transform looks
    if rel == EVENTS:
        # `mentions` needs the id or a name somewhere in the text: a vectorised first look
        for name in ("payload", "url", "reason"):
            col = probe[name]
            for tok in target.tokens:
                if pc.any(pc.match_substring(col, tok)).as_py():
                    return True
        return False
    if rel == MEASURES:
        return pc.any(pc.equal(probe["source"], target.source)).as_py() is True
    if KEY in probe.column_names and "entity_id" not in probe.column_names:
        return (
            bool(target.keys)
            and pc.any(pc.is_in(probe[KEY], pa.array(target.keys))).as_py() is True
        )
    return pc.any(pc.equal(probe["entity_id"], target.entity_id)).as_py() is True


Transform = Callable[[pa.Table, dict[str, str | None]], tuple[pa.Table | None, int]]


def _transform_of(core: StoreCore, rel: str, target: Target) -> tuple[Transform | None, list[str]]:
    """The function turning one file's rows into its purged rows, and the columns the
    first look reads."""
    if rel == EVENTS:
        return (lambda t, _p: _events(t, target)), ["payload", "url", "reason"]
    if rel == STAGING:
        return (lambda t, _p: _staged(t, target)), ["seq"]
    if rel.startswith("hub/") and rel.removeprefix("hub/") in schemas.DETAIL_SCHEMAS:
        repo_type = schemas.repo_type_of(target.source)

        def detail(t: pa.Table, _p: dict[str, str | None]) -> tuple[pa.Table | None, int]:
            mask = pc.and_(
                pc.equal(t["repo_type"], repo_type), pc.equal(t["entity_id"], target.entity_id)
            )
            return _apply(t, mask, target.field)

        return detail, ["entity_id"]
    if rel == TOPK:
        pop = schemas.POPULARITY_COLUMNS.get(target.source, ())
        if target.field is not None and target.field not in pop:
            return None, []

        def topk(t: pa.Table, _p: dict[str, str | None]) -> tuple[pa.Table | None, int]:
            mask = _topk_mask(t, target)
            n = int(pc.sum(pc.cast(mask, pa.int64())).as_py() or 0)
            return (t.filter(pc.invert(mask)), n) if n else (None, 0)

        return topk, [KEY]
    if rel == MEASURES:

        def results(t: pa.Table, _p: dict[str, str | None]) -> tuple[pa.Table | None, int]:
            return _apply(t, pc.equal(t["source"], target.source), None)

        return results, ["source"]
    if rel == OBSERVED:
        if target.field is not None and target.field != OBSERVED_AT:
            return None, []  # the table holds no other field

        def observed(t: pa.Table, _p: dict[str, str | None]) -> tuple[pa.Table | None, int]:
            if not target.keys:
                return None, 0
            mask = pc.is_in(t[KEY], pa.array(target.keys, pa.int64()))
            if "source" in t.column_names:  # a partition column is not in the file
                mask = pc.and_(mask, pc.equal(t["source"], target.source))
            return _apply(t, mask, target.field)

        return observed, [KEY]
    if rel == counter_table(target.source):

        def counters(t: pa.Table, _p: dict[str, str | None]) -> tuple[pa.Table | None, int]:
            if not target.keys:
                return None, 0
            return _apply(t, pc.is_in(t[KEY], pa.array(target.keys, pa.int64())), target.field)

        return counters, [KEY]

    def attributes(t: pa.Table, p: dict[str, str | None]) -> tuple[pa.Table | None, int]:
        mask = pc.equal(t["entity_id"], target.entity_id)
        if "source" in t.column_names:
            mask = pc.and_(mask, pc.equal(t["source"], target.source))
        return _apply(t, mask, target.field)

    return attributes, ["entity_id"]


def _apply(t: pa.Table, mask: pa.ChunkedArray, name: str | None) -> tuple[pa.Table | None, int]:
    """Rows of `t` without those `mask` picks (a field: that column nulled in them);
    (None, 0) when nothing changes."""
    mask = pc.fill_null(mask, False)
    if name is None:
        n = int(pc.sum(pc.cast(mask, pa.int64())).as_py() or 0)
        return (t.filter(pc.invert(mask)), n) if n else (None, 0)
    if name not in t.column_names:
        return None, 0
    col = t[name]
    hit = pc.and_(mask, pc.is_valid(col))
    n = int(pc.sum(pc.cast(hit, pa.int64())).as_py() or 0)
    if not n:
        return None, 0
    nulled = pc.if_else(hit, pa.scalar(None, col.type), col)
    return t.set_column(t.schema.get_field_index(name), t.schema.field(name), nulled), n


def _topk_mask(t: pa.Table, target: Target) -> pa.ChunkedArray:
    mask = pc.and_(
        pc.equal(t["source"], target.source),
        pc.is_in(t[KEY], pa.array(target.keys, pa.int64())),
    )
    if target.field is not None:
        mask = pc.and_(mask, pc.equal(t["by"], target.field))
    return pc.fill_null(mask, False)


def _groups(t: pa.Table, target: Target) -> set[tuple[int, str]]:
    """(snapshot_id, by) of the ranked lists (not a top listing's members) holding E."""
    hit = t.filter(_topk_mask(t, target))
    return {
        (int(s), str(b))
        for s, b in zip(hit["snapshot_id"].to_pylist(), hit["by"].to_pylist(), strict=True)
        if b != COVERED
    }


def _refill(core: StoreCore, target: Target, groups: set[tuple[int, str]]) -> pa.Table | None:
    """The members a ranked top-k list gains once E is out: the next in that snapshot's
    state, for the lists that were full (`topk_n` members; a shorter list held every
    ranked entity already)."""
    dt = core.tables.must(TOPK)
    cur = (
        pl.scan_delta(dt)
        .filter(pl.col("source") == target.source)
        .filter(pl.col("snapshot_id").is_in([s for s, _ in groups]))
        .select("snapshot_id", "by", KEY)
        .collect()
    )
    purged = list(target.keys)
    parts = []
    for sid, by in sorted(groups):
        members = cur.filter((pl.col("snapshot_id") == sid) & (pl.col("by") == by))[KEY]
        if members.len() < core.options.topk_n:
            continue
        state = (
            reads.state_of(core, target.source, sid, ["entity_id", by], with_key=True)
            .filter(~pl.col(KEY).is_in(purged))
            .collect()
        )
        if target.field == by:
            state = state.with_columns(
                pl.when(pl.col(KEY).is_in(purged)).then(None).otherwise(pl.col(by)).alias(by)
            )
        new = ranking.top_keys(state, by, core.options.topk_n)
        gained = sorted(set(new.to_list()) - set(members.to_list()) - set(purged))
        if gained:
            parts.append(
                pl.DataFrame(
                    {
                        "source": [target.source] * len(gained),
                        "snapshot_id": [sid] * len(gained),
                        "by": [by] * len(gained),
                        KEY: gained,
                    },
                    schema={
                        "source": pl.String,
                        "snapshot_id": pl.Int64,
                        "by": pl.String,
                        KEY: pl.Int64,
                    },
                )
            )
    if not parts:
        return None
    return pl.concat(parts).to_arrow().cast(schemas.DERIVED_TOPK)


# -- staged batches and crawl events ---------------------------------------------------


def _staged(t: pa.Table, target: Target) -> tuple[pa.Table | None, int]:
    """Each staged batch (an IPC blob) without E's rows (or with its field nulled)."""
    blobs = t["payload"].to_pylist()
    counts = t["rows"].to_pylist()
    total = 0
    for i, blob in enumerate(blobs):
        if blob is None:
            continue
        batch = from_ipc(blob)
        if "entity_id" not in batch.column_names:
            continue
        mask = pc.equal(pc.cast(batch["entity_id"], pa.string()), target.entity_id)
        new, n = _apply(batch, mask, target.field)
        if n and new is not None:
            total += n
            blobs[i] = to_ipc(new)[0].as_py()
            counts[i] = new.num_rows
    if not total:
        return None, 0
    i_p = t.schema.get_field_index("payload")
    t = t.set_column(i_p, t.schema.field("payload"), pa.array(blobs, pa.large_binary()))
    i_r = t.schema.get_field_index("rows")
    return t.set_column(i_r, t.schema.field("rows"), pa.array(counts, pa.int64())), total


def _quoted(token: str) -> list[str]:
    return [json.dumps(token), json.dumps(token, ensure_ascii=False), f"'{token}'"]


def mentions(text: str | None, tokens: Sequence[str]) -> bool:
    """Whether `text` names one of `tokens` as a whole: a JSON or quoted string, or a URL
    path segment (plain or percent-encoded). Never a bare substring: a short name
    (`a`) would otherwise match every payload."""
    if not text:
        return False
    for tok in tokens:
        if not tok:
            continue
        if any(q in text for q in _quoted(tok)):
            return True
        for form in {tok, urllib.parse.quote(tok, safe="/"), urllib.parse.quote(tok, safe="")}:
            if re.search(r"/" + re.escape(form) + r"(?=$|[/?#&])", text):
                return True
    return False


_DROP = object()


def _without(value: Any, tokens: Sequence[str]) -> Any:
    """A parsed JSON value without the records that are the entity (`_DROP`: all of it)."""
    if isinstance(value, dict):
        if any(isinstance(value.get(k), str) and value[k] in tokens for k in ID_KEYS):
            return _DROP
        out = {}
        for k, v in value.items():
            w = _without(v, tokens)
            if w is not _DROP:
                out[k] = w
        return out
    if isinstance(value, list):
        kept = [_without(v, tokens) for v in value]
        return [v for v in kept if v is not _DROP]
    return value


def scrub_payload(payload: str | None, tokens: Sequence[str], *, whole: bool) -> str | None:
    """A raw payload without the entity: its records cut out of a JSON payload (`whole`:
    the payload dropped whenever it names the entity); None when nothing safe is left."""
    if not mentions(payload, tokens):
        return payload
    if whole or payload is None:
        return None
    try:
        parsed = json.loads(payload)
    except ValueError:
        return None  # cut at 64 KiB, or not JSON: what is left cannot be told apart
    kept = _without(parsed, tokens)
    if kept is _DROP:
        return None
    text = json.dumps(kept, ensure_ascii=False)
    return None if mentions(text, tokens) else text


def _scrub_text(text: str | None, tokens: Sequence[str]) -> str | None:
    if text is None:
        return None
    for tok in sorted(tokens, key=len, reverse=True):
        for q in _quoted(tok):
            text = text.replace(q, q[0] + PURGED + q[-1])
    return text


def _events(t: pa.Table, target: Target) -> tuple[pa.Table | None, int]:
    """Crawl events of the source naming E, with E taken out of payload, url and reason."""
    tokens = target.tokens
    sources = t["source"].to_pylist()
    payloads = t["payload"].to_pylist()
    urls = t["url"].to_pylist()
    why = t["reason"].to_pylist()
    changed = 0
    for i, src in enumerate(sources):
        if src not in (target.source, None):
            continue
        p = scrub_payload(payloads[i], tokens, whole=target.field is not None)
        u = urls[i]
        r = why[i]
        if target.field is None:
            u = None if mentions(u, tokens) else u
            r = _scrub_text(r, tokens)
        if (p, u, r) != (payloads[i], urls[i], why[i]):
            payloads[i], urls[i], why[i] = p, u, r
            changed += 1
    if not changed:
        return None, 0
    for name, values in (("payload", payloads), ("url", urls), ("reason", why)):
        i = t.schema.get_field_index(name)
        t = t.set_column(i, t.schema.field(name), pa.array(values, t.schema.field(name).type))
    return t, changed


# -- writing and committing ------------------------------------------------------------


def _add(job: _Rewrite, folder: str, rows: pa.Table, partition: dict[str, str | None]) -> None:
    """Write one new file of a rewrite (not committed yet) into `folder`."""
    stats_off = job.dt.metadata().configuration.get("delta.dataSkippingNumIndexedCols") == "0"
    now_ms = int(time.time() * 1000)
    job.adds.append(_write_file(job, folder, rows, partition, now_ms, stats_off))


def _write_file(
    job: _Rewrite,
    folder: str,
    rows: pa.Table,
    partition: dict[str, str | None],
    now_ms: int,
    stats_off: bool,
) -> AddAction:
    name = f"part-00000-{uuid.uuid4()}-c000.zstd.parquet"
    path = f"{folder}/{name}" if folder else name
    opts: dict[str, Any] = {"compression": "zstd", "compression_level": ZSTD_LEVEL}
    if KEY in rows.column_names:  # storage.tables.WRITER_PROPS in pyarrow's terms
        opts["use_dictionary"] = [
            p for f in rows.schema for p in leaf_paths(f.name, f.type) if p != KEY
        ]
        opts["column_encoding"] = {KEY: "DELTA_BINARY_PACKED"}
    if job.rel == STAGING:  # storage.tables.STAGING_PROPS
        opts = {
            "compression": "none",
            "use_dictionary": False,
            "write_statistics": [c for c in rows.column_names if c != "payload"],
        }
    with job.fs.open_output_stream(path) as out:
        pq.write_table(rows, out, row_group_size=ROW_GROUP_ROWS, **opts)
    size = job.fs.get_file_info(path).size
    assert size is not None
    stats = (
        {"numRecords": rows.num_rows}
        if stats_off
        else file_stats(rows, max_text_chars=_STAT_MAX_CHARS)
    )
    return AddAction(path, size, partition, now_ms, True, json.dumps(stats))


def _commit(job: _Rewrite, purge_id: int, app: str) -> None:
    dt = job.dt
    now_ms = int(time.time() * 1000)
    removes = [RemoveAction(f.path, True, now_ms, f.size, f.partition or None) for f in job.replace]
    txns = [Transaction(app, 1)]
    if KEY in dt.schema().to_arrow().names and job.rel != TOPK:  # str(field) names
        # a change-encoded table: fail a window compaction racing this (maintenance.py)
        txns.append(Transaction(COMPACT_APP, (dt.transaction_version(COMPACT_APP) or 0) + 1))
    meta = {
        PURGE_KEY: str(purge_id),
        ROWS_KEY: str(job.rows),
        "hubtide.purge_files": str(len(job.replace)),
    }
    dt.create_write_transaction(
        [*job.adds, *removes],
        mode="append",
        schema=dt.schema(),
        partition_by=list(dt.metadata().partition_columns) or None,
        commit_properties=CommitProperties(custom_metadata=meta, app_transactions=txns),
        post_commithook_properties=NO_HOOKS,
    )


def _discard(fs: pafs.FileSystem, adds: Iterable[AddAction]) -> None:
    for a in adds:
        try:
            fs.delete_file(a.path)
        except Exception as exc:  # never committed: at worst an orphan vacuum removes
            log.debug("purge: %s not removed: %s", a.path, exc)


# -- off the disk ----------------------------------------------------------------------


def _reclaim(core: StoreCore, rel: str, purge_id: int) -> int:
    """Delete from disk the files purge `purge_id`'s commit removed from `rel` (read
    from that commit's log entry); returns how many were still there."""
    dt = DeltaTable(core.tables.uri(rel), storage_options=core.tables.storage_options)
    version = next(
        (int(h["version"]) for h in dt.history() if h.get(PURGE_KEY) == str(purge_id)), None
    )
    if version is None:
        return 0  # its log entry scrubbed: the files went before it
    fs = _fs(core, dt)
    with fs.open_input_stream(f"_delta_log/{version:020d}.json") as f:
        entry = f.read().decode()
    live = {f.path for f in live_files(dt)}
    gone = 0
    for line in entry.splitlines():
        action = json.loads(line) if line.strip() else {}
        path = action.get("remove", {}).get("path")
        if path is None:
            continue
        path = urllib.parse.unquote(path)
        if path in live:
            continue
        try:
            fs.delete_file(path)
            gone += 1
        except Exception as exc:  # gone already (a run before this one)
            log.debug("purge: %s: %s not removed: %s", rel, path, exc)
    return gone


def _scrub_log(core: StoreCore, rel: str) -> int:
    """Checkpoint `rel`, then delete its log entries and checkpoints older than that
    checkpoint (their add actions' statistics may hold purged values); returns how many."""
    dt = DeltaTable(core.tables.uri(rel), storage_options=core.tables.storage_options)
    dt.create_checkpoint()
    keep = dt.version()
    fs = _fs(core, dt)
    infos = fs.get_file_info(pafs.FileSelector("_delta_log", allow_not_found=True))
    gone = 0
    for info in infos:
        name = info.path.rsplit("/", 1)[-1]
        m = re.match(
            r"^(\d{20})\.(json|checkpoint\.parquet|checkpoint\.\d+\.\d+\.parquet|crc)$", name
        )
        if m is None or int(m.group(1)) >= keep:
            continue
        try:
            fs.delete_file(info.path)
            gone += 1
        except Exception as exc:
            log.debug("purge: %s: log file %s not removed: %s", rel, name, exc)
    core.tables.forget(rel)
    return gone
