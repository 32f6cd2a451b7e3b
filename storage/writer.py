"""`SnapshotWriter`: one snapshot of one source, from `begin` to `finish`.

Batches are staged, not diffed, as they arrive: each `write_batch` appends the batch (as
an Arrow IPC blob) and its checkpoint to `staging/batches` in one commit under txn
(`{source}:{id}`, seq). Only `finish("complete")` turns the staged listing into change
rows. That keeps every step idempotent, so a writer killed at any instant can be resumed
or finished again:

1. changes  - diff against the previous complete state (integer keys); attribute rows
              under txn `{source}:{id}:changes`, then counter rows under
              `{source}:{id}:counters` (version 1 for a keyframe, 0 otherwise, so a
              re-run knows which it was);
2. topk     - `derived/topk` (member keys); txn `{source}:{id}:topk`;
3. catalog  - the terminal row, last; txn `{source}:{id}:catalog` version 1;
4. cleanup  - the staged rows are deleted (best effort; `maintain` retries).

Partial and failed snapshots write no change rows at all: a partial listing stays staged
and `as_of(..., include_partial=True)` overlays it on the previous complete state, so it
can never disturb a later complete read.
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

import polars as pl
import pyarrow as pa
import pyarrow.compute as pc

from storage import schemas
from storage.catalog import CATALOG, SnapshotInfo, now
from storage.errors import StoreError
from storage.layout import (
    KEY,
    STAGING,
    STAGING_PARTITION,
    counter_schema,
    counter_table,
    counters_of,
    entity_table,
    is_custom,
    partition_of,
    physical_schema,
)
from storage.records import Rejected, Rows, conform, conform_frame, to_ipc
from storage.state import Diff
from storage.tables import STAGING_PROPS

if TYPE_CHECKING:
    from storage.store import Store

log = logging.getLogger(__name__)

EVENTS = "ops/crawl_events"
TOPK = "derived/topk"


@dataclass(frozen=True)
class CrawlEvent:
    """Something worth keeping about a crawl: an error, a retry, a rejected record."""

    kind: str
    reason: str
    url: str | None = None
    payload: str | None = None


class SnapshotWriter:
    """Writes one snapshot; get one from `Store.begin_snapshot` or `Store.resume_snapshot`."""

    def __init__(
        self,
        store: Store,
        source: str,
        snapshot_id: int,
        run_id: str,
        as_of: datetime | None,
        started_at: datetime | None,
        last_committed_seq: int = -1,
        checkpoint: str | None = None,
        event_seq: int = 0,
    ) -> None:
        self._store = store
        self.source = source
        self.snapshot_id = snapshot_id
        self.run_id = run_id
        self.as_of = as_of
        self.started_at = started_at
        self.last_committed_seq = last_committed_seq
        self.checkpoint = checkpoint
        self._event_seq = event_seq
        self._finished: SnapshotInfo | None = None
        # batches this object committed itself: finish reuses them instead of reading back
        self._mine: dict[int, pa.Table | pl.DataFrame] = {}

    def __repr__(self) -> str:
        return f"SnapshotWriter({self.source!r}, snapshot_id={self.snapshot_id})"

    @property
    def _key(self) -> tuple[str, int]:
        return self.source, self.snapshot_id

    @property
    def _app(self) -> str:
        return f"{self.source}:{self.snapshot_id}"

    # -- batches ------------------------------------------------------------------------

    def write_batch(self, seq: int, rows: Rows, *, checkpoint: str | None = None) -> bool:
        """Stage one listing batch; False when `seq` (or a later one) is already in."""
        if seq < 0:
            raise ValueError(f"seq must be >= 0, got {seq}")
        tables = self._store._tables
        staging = tables.must(STAGING)
        done = staging.transaction_version(self._app)
        if done is not None and done >= seq:
            return False
        if is_custom(self.source):
            rows = _ids_as_text(rows)
        schema = self._store._input_schema(self.source, rows)
        frame = conform_frame(rows, schema) if isinstance(rows, pl.DataFrame) else None
        rejects: list[Rejected] = []
        if frame is not None:
            table = frame.to_arrow()
        else:
            table, rejects = conform(rows, schema)
        blob = pa.table(
            {
                "source": [self.source],
                "snapshot_id": [self.snapshot_id],
                "seq": [seq],
                "checkpoint": [checkpoint],
                "rows": [table.num_rows],
                "payload": pa.array([to_ipc(table)], pa.large_binary()),
            },
            schema=staging_schema(),
        )
        wrote = tables.append_once(
            STAGING,
            blob,
            self._app,
            seq,
            partition_by=STAGING_PARTITION,
            writer_properties=STAGING_PROPS,
            fresh=False,  # refreshed just above
        )
        if wrote:
            self._mine[seq] = table if frame is None else frame
            self.last_committed_seq = seq
            self.checkpoint = checkpoint
            if rejects:
                self._quarantine(rejects, seq)
        else:
            self.last_committed_seq = max(self.last_committed_seq, seq)
        return wrote

    def _quarantine(self, rejects: list[Rejected], seq: int) -> None:
        self.record_events(
            [CrawlEvent("rejected", f"batch {seq}: {r.reason}", None, r.payload) for r in rejects]
        )

    def write_details(self, kind: str, seq: int, rows: Rows) -> bool:
        """Append commits / discussions / cards rows of this snapshot (Hub sources only)."""
        if kind not in schemas.DETAIL_SCHEMAS:
            raise ValueError(
                f"detail kind {kind!r} unknown; kinds are {', '.join(schemas.DETAIL_SCHEMAS)}"
            )
        repo_type = schemas.repo_type_of(self.source)
        schema = schemas.DETAIL_SCHEMAS[kind]
        records = [
            {**r, "repo_type": repo_type, "snapshot_id": self.snapshot_id} for r in _records(rows)
        ]
        loose = pa.schema([f.with_nullable(True) for f in schema])
        table, rejects = _conform_details(records, loose)
        if rejects:
            self._quarantine([Rejected(f"{kind}: {r.reason}", r.payload) for r in rejects], seq)
        table = table.cast(schema)
        rel = f"hub/{kind}"
        return self._store._tables.append_once(rel, table, f"{self._app}:{kind}", seq)

    def record_events(self, events: list[CrawlEvent]) -> None:
        """Append events to `ops/crawl_events`, numbered per run."""
        if not events:
            return
        at = now()
        rows = []
        for ev in events:
            rows.append(
                {
                    "run_id": self.run_id,
                    "seq": self._event_seq,
                    "source": self.source,
                    "snapshot_id": self.snapshot_id,
                    "at": at,
                    "kind": ev.kind,
                    "reason": ev.reason,
                    "url": ev.url,
                    "payload": (ev.payload or None) and ev.payload[: 64 * 1024],
                }
            )
            self._event_seq += 1
        table = pa.Table.from_pylist(rows, schema=schemas.CRAWL_EVENTS)
        self._store._append_plain(EVENTS, table)

    # -- finishing ----------------------------------------------------------------------

    def finish(
        self,
        status: str,
        *,
        message: str | None = None,
        requests: int = 0,
        errors: int = 0,
    ) -> SnapshotInfo:
        """Close the snapshot as complete, partial or failed (idempotent: re-run after a kill)."""
        if status not in ("complete", "partial", "failed"):
            raise ValueError(f"finish status {status!r} unknown; use complete, partial or failed")
        store = self._store
        with self._step("check for a terminal row", CATALOG):
            done = store._terminal_info(self.source, self.snapshot_id)
        if done is not None:
            return done
        with self._step("count rejected records", EVENTS):
            rejected = store._rejected_count(self.run_id, self.snapshot_id)
        with self._step("read the staged listing", STAGING):
            listing = store._staged_listing(self.source, self.snapshot_id, self._mine)
        entities = listing.height
        counts: dict[str, Any] = {"upserts": 0, "tombstones": 0, "keyframe": False}
        if status == "complete":
            with store._pinned_catalog():
                counts = self._commit_changes(listing)
        row = {
            "source": self.source,
            "snapshot_id": self.snapshot_id,
            "run_id": self.run_id,
            "status": status,
            "as_of": self.as_of,
            "started_at": self.started_at,
            "finished_at": now(),
            "entities": entities,
            "rejected": rejected,
            "requests": requests,
            "errors": errors,
            "code_version": store.code_version,
            "message": message,
            **counts,
        }
        table = pa.Table.from_pylist([row], schema=schemas.CATALOG_SNAPSHOTS)
        with self._step("terminal catalog row", CATALOG):
            # the catalog was refreshed at the start of this finish; a row another writer
            # committed since makes this commit fail (same txn) and append_once re-checks
            wrote = store._tables.append_once(
                CATALOG, table, f"{self._app}:catalog", 1, fresh=False
            )
        # From here on the snapshot is final: nothing below may turn it into an exception.
        if status != "partial":
            # best effort, batched: maintain() drops what is left (readers never look)
            store._drop_staged_later(self.source, self.snapshot_id)
        # the row this call committed is the terminal row; else another writer's is
        info = SnapshotInfo.from_row(row) if wrote else self._committed_terminal(row)
        self._finished = info
        return info

    def _committed_terminal(self, row: dict[str, Any]) -> SnapshotInfo:
        """The terminal row another writer of this snapshot committed first (its txn was
        in). Re-read through a freshly loaded catalog when the cached one lags; should
        even that fail, this call's row (same snapshot, same listing) stands in."""
        store = self._store
        for attempt in range(2):
            try:
                info = store._terminal_info(*self._key)
            except Exception as exc:  # a read after the commit: never fail the finish
                log.warning("finish %s: terminal row not re-read: %s", self, _describe(exc))
                info = None
            if info is not None:
                return info
            if attempt == 0:
                store._tables.forget(CATALOG)
        log.warning("finish %s: terminal row committed but not visible yet; using ours", self)
        return SnapshotInfo.from_row(row)

    @contextlib.contextmanager
    def _step(self, step: str, rel: str) -> Iterator[None]:
        """Name the snapshot, step and table in any error a finish step raises."""
        try:
            yield
        except StoreError:
            raise
        except Exception as exc:
            raise StoreError(
                f"finish of {self.source} snapshot {self.snapshot_id}: {step} ({rel}) "
                f"failed: {_describe(exc)}"
            ) from exc

    def _commit_changes(self, listing: pl.DataFrame) -> dict[str, Any]:
        """Diff the listing, append attribute rows, then counter rows, then top-k members.

        Each append carries its own txn; a keyframe is version 1, so a re-run after a kill
        learns what the first run decided and writes the very same rows (the diff and
        the new keys are deterministic), and append_once skips what is already in.
        """
        store = self._store
        source = self.source
        rel = entity_table(source)
        crel = counter_table(source)
        app = f"{self._app}:changes"
        capp = f"{self._app}:counters"
        counters = counters_of(source)
        with self._step("read the previous state", rel):
            prev_id = store._previous_complete(source, self.snapshot_id)
            columns = store._logical_columns(source, listing)
            listing = _with_columns(listing, columns, store._column_types(source))
            attr_cols = [c for c in columns if c not in counters]
            previous = store._previous_state(source, prev_id, attr_cols, dict(listing.schema))
            d = Diff(listing, previous, attr_cols, [c for c in counters if c in columns])
        live = listing.height
        keyframe = self._is_keyframe(rel, app, prev_id, d.attribute_changes, live, "attributes")
        arows = d.attribute_rows(keyframe).with_columns(
            source=pl.lit(source), valid_from=pl.lit(self.snapshot_id, pl.Int64)
        )
        if is_custom(source):
            arrow = arows.select(columns).to_arrow().schema
            logical = pa.schema(
                [
                    f.with_type(pa.string()) if pa.types.is_large_string(f.type) else f
                    for f in (g.with_nullable(True) for g in arrow)
                ]
            )
        else:
            logical = store._logical_schema(source)
        phys = physical_schema(logical, counters)
        table = arows.select(phys.names).to_arrow().cast(phys)
        with self._step("append attribute rows", rel):
            store._tables.ensure(rel, phys, partition_of(source))
            store._tables.append_once(
                rel,
                table,
                app,
                1 if keyframe else 0,
                schema_mode="merge" if is_custom(source) else None,
                partition_by=partition_of(source),
                fresh=False,  # refreshed by the txn check above
            )
        ckeyframe = False
        crows = 0
        if crel is not None:
            ckeyframe = self._is_keyframe(crel, capp, prev_id, d.counter_changes, live, "counters")
            cschema = counter_schema(store._logical_schema(source), counters)
            cframe = d.counter_rows(ckeyframe).with_columns(
                source=pl.lit(source), valid_from=pl.lit(self.snapshot_id, pl.Int64)
            )
            crows = cframe.height
            with self._step("append counter rows", crel):
                store._tables.ensure(crel, cschema, partition_of(source))
                store._tables.append_once(
                    crel,
                    cframe.select(cschema.names).to_arrow().cast(cschema),
                    capp,
                    1 if ckeyframe else 0,
                    partition_by=partition_of(source),
                    fresh=False,  # refreshed by the txn check above
                )
        with self._step("append top-k members", TOPK):
            self._write_topk(d)
        store._last_state[source] = d.state(self.snapshot_id, attr_cols)
        return {
            "upserts": d.changed_entities,
            "tombstones": d.gone.height,
            "keyframe": keyframe,
            "attribute_rows": arows.height,
            "counter_rows": crows,
            "counters_keyframe": ckeyframe,
        }

    def _is_keyframe(
        self, rel: str, app: str, prev_id: int | None, changes: int, live: int, kind: str
    ) -> bool:
        """Whether this finish writes `rel` as a keyframe.

        A re-run after a kill must repeat the first run's choice: if the txn is already in,
        its version says (1 = keyframe); otherwise the cost rule decides.
        """
        dt = self._store._tables.get(rel)
        done = dt.transaction_version(app) if dt is not None else None
        if done is not None:
            return bool(done == 1)
        return self._store._wants_keyframe(
            self.source, self.snapshot_id, prev_id, changes, live, kind
        )

    def _write_topk(self, d: Diff) -> None:
        """The members of the top `topk_n` per popularity column, as sorted entity keys."""
        store = self._store
        rows = d.rows
        cols = [c for c in schemas.POPULARITY_COLUMNS.get(self.source, ()) if c in rows.columns]
        if not cols:
            return
        parts = []
        for by in cols:
            keys = top_keys(rows, by, store.topk_n)
            parts.append(
                keys.to_frame().with_columns(
                    source=pl.lit(self.source),
                    snapshot_id=pl.lit(self.snapshot_id, pl.Int64),
                    by=pl.lit(by),
                )
            )
        table = pl.concat(parts).select(schemas.DERIVED_TOPK.names).to_arrow()
        table = table.cast(schemas.DERIVED_TOPK)
        store._tables.append_once(TOPK, table, f"{self._app}:topk", 0)


def top_keys(rows: pl.DataFrame, by: str, k: int) -> pl.Series:
    """Keys of the top `k` rows by `by` (nulls never; ties at the boundary: entity_id asc),
    sorted ascending. A numeric threshold first, so ids are only compared among the ties
    at the k-th value (ranking on (value, entity_id) took 27 ms per 100k rows, this 2)."""
    value = pl.col(by).cast(pl.Float64)
    vals = rows.select(value.alias("v")).filter(pl.col("v").is_not_null())["v"]
    if vals.len() <= k:
        return rows.filter(pl.col(by).is_not_null())[KEY].sort()
    threshold = vals.top_k(k).min()
    above = rows.filter(value > threshold)
    ties = rows.filter(value == threshold).sort("entity_id").head(k - above.height)
    return pl.concat([above[KEY], ties[KEY]]).sort()


def _describe(exc: BaseException) -> str:
    """`Type: message`, never empty (an AssertionError or some delta-rs errors have none)."""
    return f"{type(exc).__name__}: {str(exc) or 'no message'}"


def staging_schema() -> pa.Schema:
    from storage.layout import STAGING_SCHEMA

    return STAGING_SCHEMA


def _ids_as_text(rows: Rows) -> Rows:
    """Custom sources key on text: a numeric id column (DOIs, row numbers) becomes text."""
    if isinstance(rows, pl.DataFrame):
        if "entity_id" in rows.columns:
            return rows.with_columns(pl.col("entity_id").cast(pl.String))
        return rows
    if isinstance(rows, pa.Table):
        if "entity_id" in rows.column_names:
            i = rows.schema.get_field_index("entity_id")
            return rows.set_column(i, "entity_id", rows.column(i).cast(pa.string()))
        return rows
    return [
        {**r, "entity_id": str(r["entity_id"])}
        if isinstance(r, dict) and r.get("entity_id") is not None
        else r
        for r in rows
    ]


def _records(rows: Rows) -> list[dict[str, Any]]:
    if isinstance(rows, pl.DataFrame):
        return rows.to_dicts()
    if isinstance(rows, pa.Table):
        return rows.to_pylist()
    return [dict(r) for r in rows]


def _conform_details(
    records: list[dict[str, Any]], schema: pa.Schema
) -> tuple[pa.Table, list[Rejected]]:
    good: list[pa.Table] = []
    rejects: list[Rejected] = []
    try:
        good.append(_pylist(records, schema))
    except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError):
        for rec in records:
            try:
                good.append(_pylist([rec], schema))
            except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError) as exc:
                rejects.append(Rejected(str(exc).splitlines()[0], json.dumps(rec, default=str)))
    table = pa.concat_tables(good) if good else schema.empty_table()
    required = [f.name for f in schema if f.name in ("repo_type", "entity_id", "commit_id", "num")]
    mask = None
    for name in required:
        m = table.column(name).is_valid()
        mask = m if mask is None else pc.and_(mask, m)
    if mask is not None and not pc.all(mask).as_py():
        bad = table.filter(pc.invert(mask))
        for rec in bad.to_pylist():
            rejects.append(Rejected("missing key column", json.dumps(rec, default=str)))
        table = table.filter(mask)
    return table, rejects


def _pylist(records: list[dict[str, Any]], schema: pa.Schema) -> pa.Table:
    fixed = []
    for r in records:
        out = {}
        for f in schema:
            v = r.get(f.name)
            if isinstance(v, str) and pa.types.is_timestamp(f.type):
                v = datetime.fromisoformat(v)
            out[f.name] = v
        fixed.append(out)
    return pa.Table.from_pylist(fixed, schema=schema)


def _with_columns(
    df: pl.DataFrame, columns: list[str], types: dict[str, pl.DataType]
) -> pl.DataFrame:
    missing = [c for c in columns if c not in df.columns]
    if missing:
        df = df.with_columns([pl.lit(None, types.get(c, pl.String)).alias(c) for c in missing])
    return df.select(columns)
