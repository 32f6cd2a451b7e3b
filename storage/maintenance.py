"""`hubtide maintain`: compact small files, checkpoint the logs, vacuum old files.

Safe while a crawl writes and never breaks an as-of read of a kept snapshot because:

* reads never time-travel: they scan the current version, where compaction leaves the
  same rows, so vacuum only removes files no current read can need;
* vacuum keeps files younger than `retention_hours`, floored at `MIN_RETENTION_HOURS`, so a
  file a concurrent writer has written but not yet committed is never removed;
* compaction only rewrites files it read; a concurrent append commits alongside it
  (delta-rs retries append-vs-optimize conflicts), and a conflict here is retried later.

It also drops staged batches of snapshots that finished (a kill between the terminal
catalog row and the cleanup leaves them behind).
"""

from __future__ import annotations

import contextlib
import time
from typing import TYPE_CHECKING

import polars as pl
import pyarrow as pa
from deltalake.exceptions import CommitFailedError, DeltaError

from storage.errors import StoreError
from storage.layout import STAGING
from storage.tables import WRITER_PROPS

if TYPE_CHECKING:
    from storage.store import MaintenanceReport, Store

# Long enough for any in-flight write (a batch takes seconds) to commit its files.
MIN_RETENTION_HOURS = 1
DEFAULT_RETENTION_HOURS = 168


def _size(store: Store, rel: str) -> tuple[int, int]:
    dt = store._tables.must(rel)
    adds = pl.from_arrow(pa.table(dt.get_add_actions(flatten=True)))
    assert isinstance(adds, pl.DataFrame)
    return adds.height, int(adds["size_bytes"].sum()) if adds.height else 0


def drop_finished_staging(store: Store) -> int:
    """Delete staged batches of snapshots that are complete or failed. Returns how many."""
    cat = store._catalog()
    done = cat.filter(pl.col("status").is_in(["complete", "failed"])).select(
        "source", "snapshot_id"
    )
    staged = (
        pl.scan_delta(store._tables.must(STAGING))
        .select("source", "snapshot_id")
        .unique()
        .collect()
    )
    gone = staged.join(done, on=["source", "snapshot_id"], how="semi")
    for (source,), part in gone.group_by("source"):
        store._drop_staged(str(source), *part["snapshot_id"].to_list())
    return gone.height


def maintain(store: Store, *, retention_hours: int | None = None) -> MaintenanceReport:
    from storage.store import MaintenanceReport, TableMaintenance

    t0 = time.perf_counter()
    hours = DEFAULT_RETENTION_HOURS if retention_hours is None else retention_hours
    hours = max(hours, MIN_RETENTION_HOURS)
    dropped = drop_finished_staging(store)
    out = []
    for rel in store.table_names():
        try:
            files0, bytes0 = _size(store, rel)
            _compact(store, rel)
            dt = store._tables.must(rel)
            with contextlib.suppress(CommitFailedError, DeltaError):
                dt.create_checkpoint()
            removed = dt.vacuum(
                retention_hours=hours, dry_run=False, enforce_retention_duration=False
            )
            with contextlib.suppress(CommitFailedError, DeltaError):
                dt.cleanup_metadata()
            files1, bytes1 = _size(store, rel)
        except Exception as exc:
            raise StoreError(
                f"maintain {rel}: {type(exc).__name__}: {str(exc) or 'no message'}"
            ) from exc
        finally:
            # vacuum and compaction leave the object at the state they started from
            store._tables.forget(rel)
        out.append(TableMaintenance(rel, files0, files1, bytes0, bytes1, len(removed)))
    return MaintenanceReport(out, hours, dropped, time.perf_counter() - t0)


def _compact(store: Store, rel: str, tries: int = 3) -> None:
    """Compact, retrying a conflict with a concurrent commit (a staging drop deleting the
    files it read); still conflicting after `tries`, it is left to the next maintain."""
    for _ in range(tries):
        dt = store._tables.must(rel)
        try:
            dt.optimize.compact(writer_properties=WRITER_PROPS)
            return
        except CommitFailedError:
            continue
        except DeltaError:
            return
