"""A snapshot's staged listing, handed out one batch at a time.

`finish` reads the staged listing twice (narrow columns first, then only the rows to
write), and must never hold the whole listing at once: a 2M-model Hub listing is ~700 MB
of Arrow. So batches come either from the writer's own memory (the batches this process
staged, while they stay under `SnapshotWriter`'s cap) or from the staging table, one
Parquet file (one blob) at a time through a pyarrow dataset, which also works on object
stores. `drop_staged` deletes the batches of finished snapshots.
"""

from __future__ import annotations

import logging
import urllib.parse
from collections.abc import Iterable, Iterator, Mapping, Sequence

import polars as pl
import pyarrow as pa
import pyarrow.dataset as pads
from deltalake import DeltaTable
from deltalake.fs import DeltaStorageHandler

from storage.layout import STAGING
from storage.records import from_ipc
from storage.tables import NO_HOOKS, Tables

log = logging.getLogger(__name__)


def drop_staged(tables: Tables, source: str, snapshot_ids: Sequence[int]) -> bool:
    """Delete the staged batches of finished snapshots of `source` in one commit, then
    remove their files from disk at once (`reclaim`).

    Best effort, never raises: it runs after a snapshot's terminal row, which must stay
    the finish's outcome. A failure (a concurrent compaction of the partition, a refresh
    racing a checkpoint) leaves harmless rows: readers never look at staged rows of
    finished snapshots, and `maintain` drops them later. After any error the table is
    loaded afresh and checked (delta-rs #2279: an error does not prove nothing was
    written), so the next staging write never goes through an object the error left
    behind, and the log says whether the rows are still there. Returns whether none of
    those snapshots' batches are left."""
    ids = ", ".join(str(int(i)) for i in snapshot_ids)
    files: list[str] = []
    try:
        dt = tables.must(STAGING)
        files = staged_paths(dt, source, snapshot_ids)
        dt.delete(
            f"source = '{source}' AND snapshot_id IN ({ids})", post_commithook_properties=NO_HOOKS
        )
        reclaim(tables, files)
        return True
    except Exception as exc:
        what = f"{type(exc).__name__}: {str(exc) or 'no message'}"
    tables.forget(STAGING)
    try:
        left = staged_files(tables, source, snapshot_ids)
        if left == 0:
            reclaim(tables, files)
    except Exception as check:
        left = -1
        what += f"; and the check failed: {type(check).__name__}: {check}"
    outcome = "dropped, then" if left == 0 else "not dropped (maintain will)"
    log.warning("%s: staged batches of %s snapshots %s %s: %s", STAGING, source, ids, outcome, what)
    return left == 0


def staged_paths(dt: DeltaTable, source: str, snapshot_ids: Sequence[int]) -> list[str]:
    """The files (paths under the table root, as on disk) of the current version that
    hold staged batches of those snapshots of `source`."""
    adds = pa.table(dt.get_add_actions(flatten=True))
    want = {str(int(i)) for i in snapshot_ids}
    out = []
    for path, src, snap in zip(
        adds.column("path").to_pylist(),
        adds.column("partition.source").to_pylist(),
        adds.column("partition.snapshot_id").to_pylist(),
        strict=True,
    ):
        if src == source and str(snap) in want:
            # the log holds the URL-encoded path ("source=hub%253Amodel"): on disk, once
            out.append(urllib.parse.unquote(path))
    return out


def reclaim(tables: Tables, paths: Sequence[str]) -> int:
    """Remove from disk those of `paths` (staged files of finished snapshots) that the
    current version no longer holds; returns how many. Without this they waited for a
    vacuum past its retention (168 h by default): the store was ~2x its live bytes for a
    week. Safe next to a writer of another snapshot, unlike a vacuum with a short
    retention: only files listed as committed in a finished snapshot's own partition are
    removed, never a file this call did not see in the log (an in-flight one), and reads
    never time-travel to a version that still held them (docs/storage.md, "Reading")."""
    if not paths:
        return 0
    dt = tables.must(STAGING)
    live = {
        urllib.parse.unquote(p) for p in pa.table(dt.get_add_actions()).column("path").to_pylist()
    }
    fs = DeltaStorageHandler(dt.table_uri, tables.storage_options)
    gone = 0
    for path in paths:
        if path in live:
            continue
        try:
            fs.delete_file(path)
            gone += 1
        except Exception as exc:  # gone already (another drop, a vacuum): else vacuum will
            log.debug("%s: %s not removed: %s", STAGING, path, exc)
    return gone


def staged_files(tables: Tables, source: str, snapshot_ids: Sequence[int]) -> int:
    """How many files of the staging table hold batches of those snapshots of `source`."""
    dt = tables.must(STAGING)
    return len(
        dt.file_uris(
            file_pruning_predicate=[
                ("source", "=", source),
                ("snapshot_id", "in", [str(int(i)) for i in snapshot_ids]),
            ]
        )
    )


class StagedBatches:
    """The batches staged for (source, snapshot_id), in `seq` order, each as a frame.

    `mine` holds batches this process committed itself (by seq). `mine_is_all` says the
    caller knows they are every staged batch (the writer committed seqs 0..n itself and
    the staging txn is still at n): then nothing is read back, and the staging table is
    not even listed."""

    def __init__(
        self,
        tables: Tables,
        source: str,
        snapshot_id: int,
        mine: Mapping[int, pl.DataFrame] | None = None,
        *,
        mine_is_all: bool = False,
    ) -> None:
        self._tables = tables
        self.source = source
        self.snapshot_id = snapshot_id
        self._fragments: dict[int, pads.Fragment] | None = None
        self.in_memory = mine is not None and mine_is_all
        self._mine = dict(mine) if self.in_memory and mine is not None else {}
        self.seqs: list[int] = sorted(self._mine) if self.in_memory else self._staged_seqs()

    def _dataset(self) -> pads.Dataset:
        dt = self._tables.must(STAGING)
        return dt.to_pyarrow_dataset(
            file_pruning_predicate=[
                ("source", "=", self.source),
                ("snapshot_id", "=", str(self.snapshot_id)),
            ]
        )

    def _staged_seqs(self) -> list[int]:
        """Every committed seq, from the `seq` column alone (payloads are not read)."""
        frags: dict[int, pads.Fragment] = {}
        for frag in self._dataset().get_fragments():
            for s in frag.to_table(columns=["seq"]).column("seq").to_pylist():
                frags[int(s)] = frag
        self._fragments = frags
        return sorted(frags)

    def __len__(self) -> int:
        return len(self.seqs)

    def __iter__(self) -> Iterator[tuple[int, pl.DataFrame]]:
        return self.read(self.seqs)

    def read(self, seqs: Iterable[int]) -> Iterator[tuple[int, pl.DataFrame]]:
        """(seq, rows) of the given seqs, in seq order; one batch in memory at a time (and
        the staged file it comes from: a file holds the consecutive batches one flush
        staged, read once for all of them)."""
        if self.in_memory:
            for s in sorted(set(seqs)):
                yield s, self._mine[s]
            return
        assert self._fragments is not None
        blobs: dict[int, pa.Buffer] = {}
        held: pads.Fragment | None = None
        for s in sorted(set(seqs)):
            frag = self._fragments[s]
            if frag is not held:
                # a new file: its blobs (zero-copy slices of one read), the last one's freed
                blobs, held = {}, frag
                blobs = self._blobs(frag)
            blob = blobs.pop(s, None)
            if blob is None:
                raise KeyError(
                    f"staged batch {s} of {self.source} snapshot {self.snapshot_id} gone"
                )
            df = pl.from_arrow(from_ipc(blob))
            del blob
            assert isinstance(df, pl.DataFrame)
            yield s, df

    def _blobs(self, frag: pads.Fragment) -> dict[int, pa.Buffer]:
        """seq -> IPC blob of every batch a staged file holds (one per row; several when
        maintenance compacted the partition). Reading a file once per batch it holds read
        a 64 MB flush ~13 times over (STAGE_FLUSH_BYTES)."""
        table = frag.to_table(columns=["seq", "payload"])
        seqs = table.column("seq").to_pylist()
        payload = table.column("payload")
        out: dict[int, pa.Buffer] = {}
        i = 0
        for chunk in payload.chunks:
            for j in range(len(chunk)):
                out[int(seqs[i])] = chunk[j].as_buffer()
                i += 1
        return out

    def schemas(self) -> list[pl.Schema]:
        """The schema of every batch (custom sources: batches may differ in columns)."""
        return [df.schema for _, df in self]
