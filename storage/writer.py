"""`SnapshotWriter`: one snapshot of one source, from `begin` to `finish`.

Batches are staged, not diffed, as they arrive: `write_batch` queues the batch, and
`flush` appends the waiting batches (each an Arrow IPC blob with its checkpoint) to
`staging/batches` in one commit under txn (`{source}:{id}`, highest seq). Only
`finish("complete")` turns the staged listing into change rows. That keeps every step
idempotent, so a writer killed at any instant can be resumed or finished again: a kill
loses only batches not flushed yet, together with their checkpoints, so the resumed
crawl fetches those pages again.

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
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc

from storage import ranking, reads, schemas
from storage.catalog import (
    COVERAGES,
    Coverage,
    SnapshotInfo,
    TableKind,
    TerminalStatus,
    coverage_of,
    now,
)
from storage.core import StoreCore
from storage.errors import SnapshotOrder, StoreError
from storage.layout import (
    CATALOG,
    COVERED,
    EVENTS,
    KEY,
    OBSERVED,
    OBSERVED_AT,
    OP_DELETE,
    STAGING,
    STAGING_PARTITION,
    STAGING_SCHEMA,
    TOPK,
    DetailKind,
    check_source,
    counter_schema,
    counter_table,
    counters_of,
    detail_table,
    entity_table,
    is_custom,
    partition_of,
    physical_schema,
    txn_id,
)
from storage.records import Rejected, Rows, conform, conform_frame, to_ipc
from storage.staged import StagedBatches
from storage.state import HASH, ROW, SEQ, Diff, PreviousState, hash_expr
from storage.tables import ROW_GROUP_ROWS, STAGING_PROPS

log = logging.getLogger(__name__)

# Staged batches a writer keeps in memory for its finish (estimated Polars bytes). A
# 100k-row Hub listing is ~36 MB, so small and medium listings never read their batches
# back; a 2M-row one is ~700 MB and is read back batch by batch.
STAGED_MEMORY_BYTES = 128 * 1024 * 1024
# Batches wait to be staged together: a Delta commit costs 20-50 ms whatever its size, and
# delta-rs makes every commit slower as a table's log and files grow (it re-reads the
# table's file list after each one). A flush happens when this many bytes wait, when the
# oldest has waited this long (the most crawl work a kill can lose), before every details
# commit (so details never run ahead of the listing by more than a batch), and at finish,
# where it overlaps the diff. STAGE_FLUSH_SECONDS = 0 stages every batch at once.
STAGE_FLUSH_BYTES = 64 * 1024 * 1024
STAGE_FLUSH_SECONDS = 10.0
# The shrink guard's default (config `store.max_shrink`): a complete `full` listing that
# would tombstone more than this share of the previous state does not complete.
MAX_SHRINK = 0.10
# how a snapshot the shrink guard stopped ends: a crawl's `partial`, an import's `failed`
ShrinkStatus = Literal["partial", "failed"]


@dataclass(frozen=True)
class _Waiting:
    """A batch `write_batch` accepted that is not staged yet; its IPC blob is encoded in
    a worker thread meanwhile (lz4 of 100k Hub rows ~35-50 ms, which a flush at finish
    would otherwise add to the diff's wait)."""

    seq: int
    rows: int
    blob: Future[pa.LargeBinaryArray]
    checkpoint: str | None
    rejects: list[Rejected]


class _ListingMoved(Exception):
    """Another writer staged batches this finish thought were only its own."""


class _Shrunk(Exception):
    """The shrink guard stopped a complete finish; the message gives the numbers."""


@dataclass(frozen=True)
class CrawlEvent:
    """Something worth keeping about a crawl: an error, a retry, a rejected record."""

    kind: str
    reason: str
    url: str | None = None
    payload: str | None = None


def append_events(
    core: StoreCore,
    source: str,
    snapshot_id: int,
    run_id: str,
    first_seq: int,
    events: Sequence[CrawlEvent],
) -> None:
    """Append `events` of run `run_id` to `ops/crawl_events`, numbered from `first_seq`."""
    at = now()
    rows = [
        {
            "run_id": run_id,
            "seq": first_seq + i,
            "source": source,
            "snapshot_id": snapshot_id,
            "at": at,
            "kind": ev.kind,
            "reason": ev.reason,
            "url": ev.url,
            "payload": (ev.payload or None) and ev.payload[: 64 * 1024],
        }
        for i, ev in enumerate(events)
    ]
    core.append_plain(EVENTS, pa.Table.from_pylist(rows, schema=schemas.CRAWL_EVENTS))


class SnapshotWriter:
    """Writes one snapshot; get one from `Store.begin_snapshot` or `Store.resume_snapshot`."""

    def __init__(
        self,
        core: StoreCore,
        source: str,
        snapshot_id: int,
        run_id: str,
        as_of: datetime | None,
        started_at: datetime | None,
        last_committed_seq: int = -1,
        checkpoint: str | None = None,
        event_seq: int = 0,
        coverage: Coverage = "full",
        top_by: str | None = None,
        top_n: int | None = None,
        max_shrink: float | None = None,
        on_shrink: ShrinkStatus = "partial",
        id_column: str | None = None,
        digest: str | None = None,
    ) -> None:
        self._core = core
        # an import's provenance, in both catalog rows (storage/importing.py)
        self.id_column = id_column
        self.digest = digest
        self.max_shrink = max_shrink
        self.on_shrink: ShrinkStatus = on_shrink
        # what the listing covers (storage/catalog.py, Coverage): only a `full` one
        # tombstones what it does not name
        self.coverage: Coverage = coverage
        self.top_by = top_by
        self.top_n = top_n
        self.source = source
        self.snapshot_id = snapshot_id
        self.run_id = run_id
        self.as_of = as_of
        self.started_at = started_at
        self.last_committed_seq = last_committed_seq
        self.checkpoint = checkpoint
        self._event_seq = event_seq
        self._finished: SnapshotInfo | None = None
        # batches this object committed itself: finish reuses them instead of reading
        # them back, while they stay under STAGED_MEMORY_BYTES (then none are kept)
        self._mine: dict[int, pl.DataFrame] = {}
        self._mine_bytes = 0
        # seqs 0..n were all committed by this object (a fresh writer, no replays): with
        # the staging txn still at n, `_mine` is then the whole listing
        self._mine_contiguous = last_committed_seq == -1
        # a resumed writer's batches are never the whole listing: it keeps none
        self._keep_mine = self._mine_contiguous
        self._sized = False  # whether the listing's expected size was checked (_remember)
        self._mine_last = -1
        # accepted batches not staged yet (see STAGE_FLUSH_BYTES)
        self._waiting: list[_Waiting] = []
        self._waiting_bytes = 0
        self._waiting_since = 0.0
        self._accepted_seq = last_committed_seq

    def __repr__(self) -> str:
        return f"SnapshotWriter({self.source!r}, snapshot_id={self.snapshot_id})"

    @property
    def _key(self) -> tuple[str, int]:
        return self.source, self.snapshot_id

    @property
    def _app(self) -> str:
        return txn_id(self.source, self.snapshot_id)

    # -- batches ------------------------------------------------------------------------

    def write_batch(self, seq: int, rows: Rows, *, checkpoint: str | None = None) -> bool:
        """Accept one listing batch for staging; False when `seq` (or a later one) was
        already accepted or staged. The batch is staged (durable) by the next `flush`:
        at the latest at `finish` (see STAGE_FLUSH_BYTES for when else)."""
        if seq < 0:
            raise ValueError(f"seq must be >= 0, got {seq}")
        if seq <= self._accepted_seq:
            return False
        if is_custom(self.source):
            rows = _ids_as_text(rows)
        schema = self._core.input_schema(self.source, rows)
        frame = conform_frame(rows, schema) if isinstance(rows, pl.DataFrame) else None
        rejects: list[Rejected] = []
        if frame is not None:
            table = frame.to_arrow()
        else:
            table, rejects = conform(rows, schema)
        if not self._waiting:
            self._waiting_since = time.monotonic()
        blob = self._core.workers().submit(to_ipc, table)
        self._waiting.append(_Waiting(seq, table.num_rows, blob, checkpoint, rejects))
        self._waiting_bytes += table.nbytes
        self._accepted_seq = seq
        self._mine_contiguous = self._mine_contiguous and seq == self._mine_last + 1
        self._mine_last = seq
        self._remember(seq, frame if frame is not None else table)
        if (
            self._waiting_bytes >= STAGE_FLUSH_BYTES
            or time.monotonic() - self._waiting_since >= STAGE_FLUSH_SECONDS
        ):
            self.flush()
        return True

    def flush(self) -> list[int]:
        """Stage the waiting batches in one commit; returns the seqs this call committed
        (a seq another writer of this snapshot staged first is left out)."""
        waiting, waiting_bytes = self._waiting, self._waiting_bytes
        self._waiting, self._waiting_bytes = [], 0
        if not waiting:
            return []
        by_seq = {w.seq: w for w in waiting}

        def blob(seqs: list[int]) -> pa.Table:
            ws = [by_seq[s] for s in seqs]
            return pa.table(
                {
                    "source": [self.source] * len(ws),
                    "snapshot_id": [self.snapshot_id] * len(ws),
                    "seq": seqs,
                    "checkpoint": [w.checkpoint for w in ws],
                    "rows": [w.rows for w in ws],
                    # submitted before this flush, so started before it: never a deadlock
                    "payload": pa.chunked_array([w.blob.result() for w in ws]),
                },
                schema=STAGING_SCHEMA,
            )

        try:
            wrote = self._core.tables.append_versions_once(
                STAGING,
                sorted(by_seq),
                blob,
                self._app,
                partition_by=STAGING_PARTITION,
                writer_properties=STAGING_PROPS,
            )
        except BaseException:
            # not staged, or not known to be: they wait for the next flush (a finish run
            # again), whose txn check leaves out whatever did land; else they were lost
            # and a finish that no longer holds them in memory diffed a short listing
            self._waiting, self._waiting_bytes = waiting + self._waiting, waiting_bytes
            raise
        if len(wrote) < len(waiting):
            self._mine_contiguous = False  # another writer's batches are staged too
        self.last_committed_seq = max(self.last_committed_seq, max(by_seq))
        self.checkpoint = by_seq[max(by_seq)].checkpoint
        for s in wrote:
            if by_seq[s].rejects:
                self._quarantine(by_seq[s].rejects, s)
        return wrote

    def _mine_is_all(self) -> bool:
        """Whether the batches kept in memory are the whole listing: this object accepted
        seqs 0..n itself and kept them all, and the staging txn is still where its own
        flushes left it (the waiting rest is flushed by finish)."""
        if not (self._keep_mine and self._mine_contiguous):
            return False
        staging = self._core.tables.must(STAGING)  # refreshed
        done = staging.transaction_version(self._app)
        return (-1 if done is None else done) == self.last_committed_seq

    def _remember(self, seq: int, rows: pa.Table | pl.DataFrame) -> None:
        """Keep a committed batch for finish, unless the kept ones would pass the cap:
        then keep none (finish reads them back one at a time), so a 2M-row listing is
        never held whole."""
        if not self._keep_mine:
            return
        df = rows if isinstance(rows, pl.DataFrame) else pl.from_arrow(rows)
        assert isinstance(df, pl.DataFrame)
        size = int(df.estimated_size())
        if not self._sized and df.height:
            # a listing the size of the previous complete one would pass the cap: keep
            # none from the start (kept, then dropped at the cap, they only raised the
            # listing's peak: ~250 MB of RSS for 128 MB of frames)
            self._sized = True
            if size / df.height * self._previous_entities() > STAGED_MEMORY_BYTES:
                self._keep_mine = False
                return
        self._mine_bytes += size
        if self._mine_bytes > STAGED_MEMORY_BYTES:
            self._keep_mine = False
            self._mine.clear()
            return
        self._mine[seq] = df

    def _previous_entities(self) -> int:
        """Entities of the source's previous complete snapshot (0: none, or unknown)."""
        try:
            prev = self._core.catalog.previous_complete(self.source, self.snapshot_id)
            return self._core.catalog.info(self.source, prev).entities if prev else 0
        except Exception as exc:  # only a memory hint: never fail a batch for it
            log.debug("%s: previous snapshot's size unknown: %s", self, _describe(exc))
            return 0

    def _quarantine(self, rejects: list[Rejected], seq: int) -> None:
        self.record_events(
            [CrawlEvent("rejected", f"batch {seq}: {r.reason}", None, r.payload) for r in rejects]
        )

    def write_details(self, kind: DetailKind, seq: int, rows: Rows) -> bool:
        """Append commits / discussions / cards rows of this snapshot (Hub sources only)."""
        if kind not in schemas.DETAIL_SCHEMAS:
            raise ValueError(
                f"detail kind {kind!r} unknown; kinds are {', '.join(schemas.DETAIL_SCHEMAS)}"
            )
        self.flush()  # the listing's batches before their details (see STAGE_FLUSH_BYTES)
        table, rejects = details_table(self.source, self.snapshot_id, kind, rows)
        if rejects:
            self._quarantine([Rejected(f"{kind}: {r.reason}", r.payload) for r in rejects], seq)
        rel = detail_table(kind)
        return self._core.tables.append_once(
            rel, table, txn_id(self.source, self.snapshot_id, kind), seq
        )

    def record_events(self, events: list[CrawlEvent]) -> None:
        """Append events to `ops/crawl_events`, numbered per run."""
        if not events:
            return
        append_events(
            self._core, self.source, self.snapshot_id, self.run_id, self._event_seq, events
        )
        self._event_seq += len(events)

    # -- finishing ----------------------------------------------------------------------

    def finish(
        self,
        status: TerminalStatus,
        *,
        message: str | None = None,
        requests: int = 0,
        errors: int = 0,
    ) -> SnapshotInfo:
        """Close the snapshot as complete, partial or failed (idempotent: re-run after a kill)."""
        if status not in ("complete", "partial", "failed"):
            raise ValueError(f"finish status {status!r} unknown; use complete, partial or failed")
        core = self._core
        if status == "failed":
            # a failed snapshot's staged batches are dropped: the waiting ones need no commit
            self._waiting, self._waiting_bytes = [], 0
        try:
            return self._finish(status, message=message, requests=requests, errors=errors)
        except StoreError:
            # a racing writer of the same snapshot may have finished it meanwhile and
            # reclaimed the staged files this one was reading: its terminal row is the
            # outcome (the change rows are the same, keyed by the same txns)
            done = core.catalog.terminal_info(self.source, self.snapshot_id, fresh=True)
            if done is None:
                raise
            self._finished = done
            return done

    def _finish(
        self, status: TerminalStatus, *, message: str | None, requests: int, errors: int
    ) -> SnapshotInfo:
        core = self._core
        # one catalog read for the whole finish (see Catalog.pinned)
        with core.catalog.pinned():
            with self._step("check for a terminal row", CATALOG):
                done = core.catalog.terminal_info(self.source, self.snapshot_id, fresh=False)
            if done is not None:
                return done
            with self._step("read the staged listing", STAGING):
                mine_is_all = self._mine_is_all()
                # the listing is read back from staging, so it must be all in first;
                # otherwise the flush runs beside the diff (_commit_changes waits for it)
                overlap = status == "complete" and mine_is_all and bool(self._waiting)
                if not overlap:
                    self.flush()
                staged = StagedBatches(
                    core.tables,
                    self.source,
                    self.snapshot_id,
                    self._mine,
                    mine_is_all=mine_is_all,
                )
            counts: dict[str, Any] = {"upserts": 0, "tombstones": 0, "keyframe": False}
            if status == "complete":
                flushing = core.workers().submit(self.flush) if overlap else None
                try:
                    counts = self._commit_changes(staged, flushing)
                except _Shrunk as exc:
                    # nothing written: the snapshot ends partial (a crawl) or failed
                    status, message = self.on_shrink, str(exc)
                    self.record_events([CrawlEvent("shrink", message)])
                    if status == "failed":
                        self._waiting, self._waiting_bytes = [], 0
                    with self._step("count the staged entities", STAGING):
                        counts["entities"] = _count_entities(staged)
                except _ListingMoved:
                    # a racing writer staged some of the same seqs first: its batches
                    # are the listing now, so read them back and diff again
                    with self._step("read the staged listing", STAGING):
                        staged = StagedBatches(core.tables, self.source, self.snapshot_id)
                    counts = self._commit_changes(staged, None)
            else:
                with self._step("count the staged entities", STAGING):
                    counts["entities"] = _count_entities(staged)
            # after the flush: it quarantines the rejected records of the batches it stages
            with self._step("count rejected records", EVENTS):
                rejected = reads.rejected_count(core, self.run_id)
        self._mine.clear()  # the snapshot is done with them
        row = {
            "source": self.source,
            "snapshot_id": self.snapshot_id,
            "run_id": self.run_id,
            "status": status,
            "as_of": self.as_of,
            "started_at": self.started_at,
            "finished_at": now(),
            "rejected": rejected,
            "requests": requests,
            "errors": errors,
            "code_version": core.code_version,
            "message": message,
            **self._coverage_row(counts.get("entities")),
            **counts,
            "id_column": self.id_column,
            "digest": self.digest,
        }
        table = pa.Table.from_pylist([row], schema=schemas.CATALOG_SNAPSHOTS)
        with self._step("terminal catalog row", CATALOG):
            # the catalog was refreshed at the start of this finish; a row another writer
            # committed since makes this commit fail (same txn) and append_once re-checks
            wrote = core.catalog.append(table, txn_id(self.source, self.snapshot_id, "catalog"), 1)
        # From here on the snapshot is final: nothing below may turn it into an exception.
        # best effort, in a worker thread: maintain() drops what is left
        core.after_finish(self.source, self.snapshot_id, drop=status != "partial")
        # the row this call committed is the terminal row; else another writer's is
        info = SnapshotInfo.from_row(row) if wrote else self._committed_terminal(row)
        self._finished = info
        return info

    def _check_shrink(self, d: Diff, previous: PreviousState | None, prev_id: int | None) -> None:
        """The shrink guard: _Shrunk when this `full` listing would tombstone more than
        `max_shrink` of the previous state (checked before any change row is written;
        a re-run whose change rows are already in passed it the first time)."""
        if self.max_shrink is None or previous is None or not d.gone.height:
            return
        dt = self._core.tables.get(entity_table(self.source))
        if (
            dt is not None
            and dt.transaction_version(txn_id(self.source, self.snapshot_id, "changes")) is not None
        ):
            return
        before = previous.frame.height
        share = d.gone.height / before if before else 1.0
        if share <= self.max_shrink:
            return
        raise _Shrunk(
            f"{self.source} snapshot {self.snapshot_id} would tombstone {d.gone.height:,} of "
            f"the {before:,} entities of snapshot {prev_id} ({share:.1%}, more than "
            f"store.max_shrink {self.max_shrink:.0%}) while listing {d.rows.height:,}; "
            "not written. If the listing is complete, allow it (import --allow-shrink); "
            "if it lists only the top N or a part, say so (--coverage top --top-by COLUMN, "
            "or --coverage subset)"
        )

    def _coverage_row(self, entities: int | None) -> dict[str, Any]:
        """The catalog's coverage columns; a `top` listing's N is the one begin was
        given, else the entities it listed."""
        top_n = self.top_n
        if self.coverage == "top" and top_n is None:
            top_n = entities
        return {"coverage": self.coverage, "top_by": self.top_by, "top_n": top_n}

    def _committed_terminal(self, row: dict[str, Any]) -> SnapshotInfo:
        """The terminal row another writer of this snapshot committed first (its txn was
        in). Re-read through a freshly loaded catalog when the cached one lags; should
        even that fail, this call's row (same snapshot, same listing) stands in."""
        core = self._core
        for attempt in range(2):
            try:
                info = core.catalog.terminal_info(*self._key)
            except Exception as exc:  # a read after the commit: never fail the finish
                log.warning("finish %s: terminal row not re-read: %s", self, _describe(exc))
                info = None
            if info is not None:
                return info
            if attempt == 0:
                core.tables.forget(CATALOG)
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

    def _commit_changes(
        self, staged: StagedBatches, flushing: Future[list[int]] | None
    ) -> dict[str, Any]:
        """Diff the listing, then append attribute rows, counter rows and top-k members.

        Streams: pass 1 reads the staged batches one at a time and keeps only narrow
        columns (entity_id, attribute hash, counters, position); the diff, the counter
        rows and top-k need nothing else; pass 2 gathers the wide attribute rows to
        write, batch by batch (only the batches holding changed rows, unless a keyframe).

        The three appends are independent, so counters and top-k run in the store's
        worker threads while this thread writes the attributes (delta-rs and Polars
        release the GIL); the catalog row waits for all three. Each append carries its
        own txn; a keyframe is version 1, so a re-run after a kill learns what the first
        run decided and writes the very same rows (the diff and the new keys are
        deterministic), and append_once skips what is already in. `flushing` is the
        flush of the waiting batches running beside pass 1 and the diff.
        """
        core = self._core
        source = self.source
        rel = entity_table(source)
        crel = counter_table(source)
        app = txn_id(source, self.snapshot_id, "changes")
        capp = txn_id(source, self.snapshot_id, "counters")
        counters = counters_of(source)
        with self._step("read the previous state", rel):
            prev_id = core.catalog.previous_complete(source, self.snapshot_id)
            types = core.column_types(source)
            if is_custom(source):
                # batches may differ in columns and types: the listing's are their union
                heads = [pl.DataFrame(schema=sch) for sch in staged.schemas()]
                if heads:
                    types.update(pl.concat(heads, how="diagonal_relaxed").schema)
                columns = core.logical_columns(source, pl.DataFrame(schema=types))
            else:
                columns = core.logical_columns(source, pl.DataFrame(schema=types))
            types = {c: types.get(c, pl.String()) for c in columns}
            # the observation time is kept apart, like a counter (layout.OBSERVED)
            attr_cols = [c for c in columns if c not in counters and c != OBSERVED_AT]
            ccols = [c for c in counters if c in columns]
            narrow_cols = [*ccols, *([OBSERVED_AT] if OBSERVED_AT in columns else [])]
        with self._step("read the previous state", rel):
            previous = reads.previous_state(core, source, prev_id, attr_cols, types)
        # read back from staging: keep the surely changed wide rows from pass 1 (see
        # _narrow), so pass 2 re-reads only batches it still misses rows of
        kept: dict[int, pl.DataFrame] | None = None
        prev_hashes = None
        if not staged.in_memory and previous is not None:
            kept = {}
            prev_hashes = np.sort(previous.frame[HASH].to_numpy())
        with self._step("read the staged listing", STAGING):
            narrow = _narrow(staged, columns, types, attr_cols, narrow_cols, prev_hashes, kept)
        del prev_hashes
        # an empty listing says nothing of who is gone (a header-only file, a dead page):
        # it never tombstones (issue 16 point 4), whatever the shrink guard's setting
        tombstones = self.coverage == "full" and narrow.height > 0
        with self._step("diff the listing", rel):
            d = Diff(narrow, previous, ccols, tombstones=tombstones)
        del narrow
        if flushing is not None:
            # every batch must be staged before the first change row (a re-run after a
            # kill diffs the staged listing again and must find this one)
            with self._step("stage the waiting batches", STAGING):
                flushing.result()
            if not self._mine_contiguous:
                raise _ListingMoved
        self._check_shrink(d, previous, prev_id)
        live = d.rows.height
        # a keyframe copies the listing: one that does not name every live entity (not
        # `full`, or an empty listing carrying the state on) never keyframes, except a
        # source's first snapshot: all there is
        may_keyframe = (self.coverage == "full" and not d.carried.height) or prev_id is None
        keyframe = may_keyframe and self._is_keyframe(
            rel, app, prev_id, d.attribute_changes, live, "attributes"
        )
        ckeyframe = False
        if crel is not None:
            ckeyframe = may_keyframe and self._is_keyframe(
                crel, capp, prev_id, d.counter_changes, live, "counters"
            )
        # observation times keyframe with the counters (custom sources: the attributes),
        # and whenever a listing of every live entity brings most of them a new time (a
        # Hub crawl: each page's answer time is new), at no cost: those rows are written
        # anyway, and a read then starts at this snapshot (reads.observed_keyframe)
        okeyframe = (ckeyframe if crel is not None else keyframe) or (
            may_keyframe and live > 0 and 2 * d.observed_changes >= live
        )
        # one after another in one worker, beside the attributes: at a keyframe each is a
        # table of every live entity, and side by side their peaks added up
        steps: list[tuple[str, str, Callable[[], int]]] = []
        if crel is not None:
            steps.append(("append counter rows", crel, lambda: self._write_counters(d, ckeyframe)))
        steps.append(("append top-k members", TOPK, lambda: self._write_topk(d)))
        steps.append(
            ("append observation times", OBSERVED, lambda: self._write_observed(d, okeyframe))
        )

        def side() -> int:
            crows = 0
            for step, table, write in steps:
                with self._step(step, table):
                    n = write()
                if table == crel:
                    crows = n
            return crows

        job = core.workers().submit(side)
        try:
            with self._step("append attribute rows", rel):
                arows = self._write_attributes(staged, d, columns, types, keyframe, kept)
        finally:
            with self._step("append counter rows, top-k members and observation times", TOPK):
                crows = job.result()
        core.last_state[source] = d.state(self.snapshot_id, attr_cols)
        return {
            "entities": live,
            "upserts": d.changed_entities,
            "tombstones": d.gone.height,
            "keyframe": keyframe,
            "attribute_rows": arows,
            "counter_rows": crows,
            "counters_keyframe": ckeyframe,
        }

    def _write_attributes(
        self,
        staged: StagedBatches,
        d: Diff,
        columns: list[str],
        types: dict[str, pl.DataType],
        keyframe: bool,
        kept: dict[int, pl.DataFrame] | None = None,
    ) -> int:
        """Append the attribute rows (changed rows, or every live one at a keyframe, plus
        tombstones); returns how many. Small listings (batches held in memory) are
        written as one key-sorted table; a keyframe read back from staging is streamed
        to delta-rs batch by batch, each batch sorted by key."""
        core = self._core
        source = self.source
        rel = entity_table(source)
        counters = counters_of(source)
        if is_custom(source):
            arrow = pl.DataFrame(schema=types).to_arrow().schema
            logical = pa.schema(
                [
                    f.with_type(pa.string()) if pa.types.is_large_string(f.type) else f
                    for f in (g.with_nullable(True) for g in arrow)
                ]
            )
        else:
            logical = core.logical_schema(source)
        phys = physical_schema(logical, counters)
        picks = d.picks(keyframe)
        # per seq, a zero-copy slice of the picks (sorted by seq): a partition copied
        # every pick, 3.2M of them at a keyframe
        wanted: dict[int, pl.DataFrame] = {}
        off = 0
        for run in picks[SEQ].rle().to_list():
            wanted[int(run["value"])] = picks.slice(off, run["len"]).drop(SEQ)
            off += run["len"]
        attr_names = [
            c for c in columns if c != "entity_id" and c not in counters and c != OBSERVED_AT
        ]
        tombs = (
            d.gone.select(
                KEY,
                "entity_id",
                pl.lit(OP_DELETE).alias("op"),
                *[pl.lit(None, types[c]).alias(c) for c in attr_names],
            )
            if d.gone.height
            else None
        )
        sid = self.snapshot_id

        def physical(frame: pl.DataFrame) -> pa.Table:
            out = frame.with_columns(
                source=pl.lit(source), valid_from=pl.lit(sid, pl.Int64)
            ).select(phys.names)
            return out.to_arrow().cast(phys)

        def rows_of(seq: int, batch: pl.DataFrame) -> pl.DataFrame:
            p = wanted[seq]
            # gathering in key order: each batch's rows come out sorted by key; gathered
            # first, so only the few changed rows are conformed
            b = _conformed(batch[p[ROW]], columns, types)
            return b.with_columns(p[KEY], p["op"])

        total = picks.height + (tombs.height if tombs is not None else 0)
        data: pa.Table | Callable[[], pa.RecordBatchReader]
        if not keyframe or staged.in_memory:
            parts = []
            missing = []
            for s in sorted(wanted):
                # rows pass 1 kept (read back, not a keyframe): no second read
                k = kept.get(s) if kept is not None else None
                got = None
                if k is not None:
                    got = wanted[s].join(k, on=ROW, how="inner", maintain_order="left")
                if got is not None and got.height == wanted[s].height:
                    parts.append(got)
                else:
                    missing.append(s)
            parts += [rows_of(s, b) for s, b in staged.read(missing)]
            if tombs is not None:
                parts.append(tombs)
            frame = (
                pl.concat(parts, how="diagonal_relaxed").sort(KEY)
                if parts
                else pl.DataFrame(schema={KEY: pl.Int64, "op": pl.String, **types})
            )
            data = physical(frame)
        else:

            def stream() -> Iterator[pa.RecordBatch]:
                for s, b in staged.read(wanted):
                    yield from physical(rows_of(s, b)).to_batches()
                if tombs is not None:
                    yield from physical(tombs).to_batches()

            def data() -> pa.RecordBatchReader:
                return pa.RecordBatchReader.from_batches(phys, stream())

        core.tables.ensure(rel, phys, partition_of(source))
        core.tables.append_once(
            rel,
            data,
            txn_id(source, self.snapshot_id, "changes"),
            1 if keyframe else 0,
            schema_mode="merge" if is_custom(source) else None,
            partition_by=partition_of(source),
            fresh=False,  # refreshed by the txn check in _is_keyframe
        )
        return total

    def _write_counters(self, d: Diff, keyframe: bool) -> int:
        """Append the counter rows (a worker thread); returns how many."""
        core = self._core
        source = self.source
        crel = counter_table(source)
        assert crel is not None
        counters = counters_of(source)
        cschema = counter_schema(core.logical_schema(source), counters)
        cframe = d.counter_rows(keyframe)
        sid = self.snapshot_id

        def physical(part: pl.DataFrame) -> pa.Table:
            out = part.with_columns(source=pl.lit(source), valid_from=pl.lit(sid, pl.Int64))
            return out.select(cschema.names).to_arrow().cast(cschema)

        core.tables.ensure(crel, cschema, partition_of(source))
        core.tables.append_once(
            crel,
            _in_row_groups(cframe, cschema, physical),
            txn_id(self.source, self.snapshot_id, "counters"),
            1 if keyframe else 0,
            partition_by=partition_of(source),
        )
        return cframe.height

    def _write_observed(self, d: Diff, keyframe: bool) -> int:
        """Append the observation-time rows (a worker thread); returns how many. Nothing
        at all when there are none: a store whose listings never carry `observed_at`
        never gets the table."""
        rows = d.observed_rows(keyframe)
        if not rows.height:
            return 0
        core = self._core
        source, sid = self.source, self.snapshot_id

        def physical(part: pl.DataFrame) -> pa.Table:
            out = part.with_columns(source=pl.lit(source), valid_from=pl.lit(sid, pl.Int64))
            return out.select(schemas.OBSERVED.names).to_arrow().cast(schemas.OBSERVED)

        core.tables.ensure(OBSERVED, schemas.OBSERVED, ["source"])
        core.tables.append_once(
            OBSERVED,
            _in_row_groups(rows, schemas.OBSERVED, physical),
            txn_id(self.source, self.snapshot_id, "observed"),
            1 if keyframe else 0,
            partition_by=["source"],
        )
        return rows.height

    def _is_keyframe(
        self, rel: str, app: str, prev_id: int | None, changes: int, live: int, kind: TableKind
    ) -> bool:
        """Whether this finish writes `rel` as a keyframe.

        A re-run after a kill must repeat the first run's choice: if the txn is already in,
        its version says (1 = keyframe); otherwise the cost rule decides.
        """
        dt = self._core.tables.get(rel)
        done = dt.transaction_version(app) if dt is not None else None
        if done is not None:
            return bool(done == 1)
        return wants_keyframe(
            self._core, self.source, self.snapshot_id, prev_id, changes, live, kind
        )

    def _write_topk(self, d: Diff) -> int:
        """The members of the top `topk_n` per popularity column, as sorted entity keys
        (a worker thread; from the narrow rows). Returns how many."""
        core = self._core
        rows = d.rows
        cols = [c for c in schemas.POPULARITY_COLUMNS.get(self.source, ()) if c in rows.columns]
        parts = []
        if self.coverage == "top":
            # the listing's members: an as-of read of a top-N snapshot returns these only
            parts.append(
                rows[KEY]
                .sort()
                .to_frame()
                .with_columns(
                    source=pl.lit(self.source),
                    snapshot_id=pl.lit(self.snapshot_id, pl.Int64),
                    by=pl.lit(COVERED),
                )
            )
        if not cols and not parts:
            return 0
        if self.coverage != "top" and d.carried.height:
            # a subset's (or an empty listing's) state is the listing plus every entity it
            # did not name
            pick = ["entity_id", KEY, *cols]
            rows = pl.concat([rows.select(pick), d.carried.select(pick)], how="vertical_relaxed")
        for by in cols:
            keys = ranking.top_keys(rows, by, core.options.topk_n)
            parts.append(
                keys.to_frame().with_columns(
                    source=pl.lit(self.source),
                    snapshot_id=pl.lit(self.snapshot_id, pl.Int64),
                    by=pl.lit(by),
                )
            )
        table = pl.concat(parts).select(schemas.DERIVED_TOPK.names).to_arrow()
        table = table.cast(schemas.DERIVED_TOPK)
        core.tables.append_once(TOPK, table, txn_id(self.source, self.snapshot_id, "topk"), 0)
        return int(table.num_rows)


def begin(
    core: StoreCore,
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
    """Start a new snapshot of `source` (status running); ids increase per source. Two
    processes racing for an id: the catalog txn lets one win, the other takes the next.
    `coverage` says what the listing covers (`top` needs `top_by`; `top_n` defaults to
    the entities listed); `check_order` keeps the source's snapshots in time order."""
    check_source(source)
    check_coverage(coverage, top_by, top_n)
    started = now()
    as_of = as_of or started
    if as_of.tzinfo is None:
        as_of = as_of.replace(tzinfo=UTC)
    for _ in range(100):
        cat = core.catalog.read().filter(pl.col("source") == source)
        check_order(source, as_of, started, cat)
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
            "code_version": core.code_version,
            "coverage": coverage,
            "top_by": top_by,
            "top_n": top_n,
            "id_column": id_column,
            "digest": digest,
        }
        table = pa.Table.from_pylist([row], schema=schemas.CATALOG_SNAPSHOTS)
        if core.catalog.append(table, txn_id(source, sid, "catalog"), 0):
            return SnapshotWriter(
                core,
                source,
                sid,
                rid,
                as_of,
                started,
                coverage=coverage,
                top_by=top_by,
                top_n=top_n,
                max_shrink=max_shrink,
                on_shrink=on_shrink,
                id_column=id_column,
                digest=digest,
            )
        # another process took this id first: take the next one
    raise StoreError(f"could not allocate a snapshot id for {source!r}")


def check_coverage(coverage: str, top_by: str | None, top_n: int | None) -> None:
    """ValueError unless `coverage` is one of COVERAGES and `top` names its column."""
    if coverage not in COVERAGES:
        raise ValueError(f"coverage {coverage!r} unknown; use {', '.join(COVERAGES)}")
    if coverage == "top" and not top_by:
        raise ValueError("coverage 'top' needs the column it ranks by (top_by, --top-by)")
    if coverage != "top" and (top_by is not None or top_n is not None):
        raise ValueError(f"top_by / top_n go with coverage 'top', not {coverage!r}")
    if top_n is not None and top_n < 1:
        raise ValueError(f"top_n must be >= 1, got {top_n}")


def check_order(source: str, as_of: datetime, now_: datetime, catalog: pl.DataFrame) -> None:
    """Time runs forward: a new snapshot's instant is not in the future and is later than
    every snapshot of `source` that was not failed (`catalog`: the source's rows). A failed
    one holds nothing, so an import that failed may be re-run at the same instant.

    Raises:
        SnapshotOrder: naming the instant and the newest snapshot it would not follow.
    """
    if as_of > now_:
        raise SnapshotOrder(
            f"{source}: a snapshot at {as_of.isoformat()} is in the future (now is "
            f"{now_.isoformat()}); a snapshot describes a listing already seen"
        )
    held = catalog.filter((pl.col("status") != "failed") & pl.col("as_of").is_not_null())
    if held.is_empty():
        return
    newest = held.sort("as_of").row(held.height - 1, named=True)
    if as_of <= newest["as_of"]:
        same = "at the same instant as" if as_of == newest["as_of"] else "before"
        raise SnapshotOrder(
            f"{source}: a snapshot at {as_of.isoformat()} would land {same} the newest "
            f"snapshot {newest['snapshot_id']} ({newest['status']}, at "
            f"{newest['as_of'].isoformat()}); a source's snapshots run forward in time, "
            "so import oldest first"
        )


def resume(core: StoreCore, source: str) -> SnapshotWriter | None:
    """The newest `running` snapshot of `source` as a writer (its last staged seq and
    checkpoint, its next event number), or None."""
    check_source(source)
    cat = core.catalog.read().filter(pl.col("source") == source).sort("snapshot_id")
    if cat.is_empty() or cat["status"][-1] != "running":
        return None
    row = cat.row(cat.height - 1, named=True)
    sid = int(row["snapshot_id"])
    staging = core.tables.must(STAGING)
    last = staging.transaction_version(txn_id(source, sid))
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
        pl.scan_delta(core.tables.must(EVENTS))
        .filter(pl.col("run_id") == row["run_id"])
        .select(pl.col("seq").max())
        .collect()
    )
    next_event = int(ev.item()) + 1 if ev.height and ev.item() is not None else 0
    return SnapshotWriter(
        core,
        source,
        sid,
        str(row["run_id"]),
        row["as_of"],
        row["started_at"],
        last_seq,
        checkpoint,
        next_event,
        coverage=coverage_of(row.get("coverage")),
        top_by=row.get("top_by"),
        top_n=row.get("top_n"),
        id_column=row.get("id_column"),
        digest=row.get("digest"),
    )


def wants_keyframe(
    core: StoreCore,
    source: str,
    snapshot_id: int,
    prev_id: int | None,
    changes: int,
    live: int,
    which: TableKind,
) -> bool:
    """Keyframes by cost: when the change rows since the table's last keyframe (this
    snapshot's included) exceed `keyframe_cost` x the live entities, so a read scans at
    most about (1 + keyframe_cost) x the state. Counters also keyframe at least every
    `keyframe_every` snapshots (a narrow copy, ~2 bytes per entity)."""
    if prev_id is None:
        return True
    kf = core.catalog.keyframe_before(source, prev_id, which)
    if kf is None:
        return True
    col = "attribute_rows" if which == "attributes" else "counter_rows"
    since = core.catalog.complete_between(source, kf, snapshot_id)
    rows = int(since[col].fill_null(0).sum()) + changes
    if rows > core.options.keyframe_cost * live:
        return True
    return which == "counters" and since.height + 1 >= core.options.keyframe_every


def _in_row_groups(
    frame: pl.DataFrame, schema: pa.Schema, physical: Callable[[pl.DataFrame], pa.Table]
) -> pa.Table | Callable[[], pa.RecordBatchReader]:
    """`frame`'s rows as the physical table (`physical` of each part), handed to delta-rs
    one row group (ROW_GROUP_ROWS) at a time: a keyframe of 3.2M counters rows was a
    ~500 MB Arrow table beside its frame. A small frame goes as one table."""
    if frame.height <= ROW_GROUP_ROWS:
        return physical(frame)

    def stream() -> Iterator[pa.RecordBatch]:
        for off in range(0, frame.height, ROW_GROUP_ROWS):
            yield from physical(frame.slice(off, ROW_GROUP_ROWS)).to_batches()

    def reader() -> pa.RecordBatchReader:
        return pa.RecordBatchReader.from_batches(schema, stream())

    return reader


def _conformed(
    batch: pl.DataFrame, columns: list[str], types: dict[str, pl.DataType]
) -> pl.DataFrame:
    """A staged batch with exactly the listing's columns and types (missing: null)."""
    have = batch.schema  # a Schema object is built per `.schema` call: once
    cols = []
    for c in columns:
        if c not in have:
            cols.append(pl.lit(None, types[c]).alias(c))
        elif have[c] != types[c]:
            cols.append(pl.col(c).cast(types[c]))
        else:
            cols.append(pl.col(c))
    return batch.select(cols)


def _narrow(
    staged: StagedBatches,
    columns: list[str],
    types: dict[str, pl.DataType],
    attr_cols: list[str],
    counters: list[str],
    prev_hashes: np.ndarray | None = None,
    kept: dict[int, pl.DataFrame] | None = None,
) -> pl.DataFrame:
    """Pass 1 over the staged batches: entity_id, attribute hash, counters and position
    (`__seq`, `__row`) of every listing row; one wide batch in memory at a time. A
    duplicate entity_id across batches: the newest batch wins (a page fetched again after
    a resume lands in a later batch).

    With `prev_hashes` (the previous state's attribute hashes, sorted) and `kept`, the
    wide rows whose hash is none of them (surely new or changed: ~1-3 % a day) are kept
    per seq with their `__row`, so pass 2 need not read those batches again."""
    hashed = [c for c in attr_cols if c != "entity_id"]
    parts = []
    for seq, batch in staged:
        if not batch.height:
            continue
        b = _conformed(batch, columns, types)
        part = b.select(
            "entity_id",
            hash_expr(hashed),
            *counters,
            pl.lit(seq, pl.Int64).alias(SEQ),
            pl.int_range(pl.len(), dtype=pl.UInt32).alias(ROW),
        )
        parts.append(part)
        if prev_hashes is not None and kept is not None:
            h = part[HASH].to_numpy()
            at = np.searchsorted(prev_hashes, h).clip(0, max(len(prev_hashes) - 1, 0))
            known = prev_hashes[at] == h if len(prev_hashes) else np.zeros(len(h), bool)
            fresh = b.with_columns(part[ROW]).filter(pl.Series(~known))
            # a filtered frame still points into the whole batch's string buffers (Polars
            # string views): copy the few rows out, or every batch stays alive
            copy = pl.from_arrow(fresh.to_arrow())
            assert isinstance(copy, pl.DataFrame)
            kept[seq] = copy
    if not parts:
        return pl.DataFrame(
            schema={
                "entity_id": pl.String,
                HASH: pl.UInt64,
                **{c: types[c] for c in counters},
                SEQ: pl.Int64,
                ROW: pl.UInt32,
            }
        )
    # not rechunked: a contiguous copy beside the parts doubled the narrow listing
    narrow = pl.concat(parts, rechunk=False)
    if narrow["entity_id"].n_unique() == narrow.height:
        return narrow  # the common case, checked 10x faster than the unique below
    return narrow.unique("entity_id", keep="last", maintain_order=True)


def _count_entities(staged: StagedBatches) -> int:
    """Distinct entity ids staged (a partial or failed finish reports them)."""
    ids = [b["entity_id"] for _, b in staged if b.height]
    return int(pl.concat(ids).n_unique()) if ids else 0


def _describe(exc: BaseException) -> str:
    """`Type: message`, never empty (an AssertionError or some delta-rs errors have none)."""
    return f"{type(exc).__name__}: {str(exc) or 'no message'}"


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


def details_table(
    source: str, snapshot_id: int, kind: DetailKind, rows: Rows
) -> tuple[pa.Table, list[Rejected]]:
    """Detail rows of a Hub source's snapshot as a table of the kind's schema, and the rows
    that do not fit it (a missing key column, a wrong type)."""
    repo_type = schemas.repo_type_of(source)
    schema = schemas.DETAIL_SCHEMAS[kind]
    records = [{**r, "repo_type": repo_type, "snapshot_id": snapshot_id} for r in _records(rows)]
    loose = pa.schema([f.with_nullable(True) for f in schema])
    table, rejects = _conform_details(records, loose)
    return table.cast(schema), rejects


def _records(rows: Rows) -> list[dict[str, Any]]:
    if isinstance(rows, pl.DataFrame):
        return rows.to_dicts()
    if isinstance(rows, pa.Table):
        records: list[dict[str, Any]] = rows.to_pylist()
        return records
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
