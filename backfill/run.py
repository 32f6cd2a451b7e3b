"""The backfill driver: an archive's versions, oldest first, one snapshot each."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import polars as pl

from backfill.breaks import break_events
from backfill.readers import ARCHIVES, Listing
from storage import CrawlEvent, Store, schemas

COLUMNS_EVENT = "archive-columns"  # the crawl-event kind recording a version's columns
BATCH_ROWS = 50_000


@dataclass
class Outcome:
    """What happened to one archive version."""

    source: str
    key: str
    observed_at: datetime
    status: str  # imported | already imported | skipped | failed
    snapshot_id: int | None = None
    entities: int = 0
    upserts: int = 0
    tombstones: int = 0
    note: str = ""


@dataclass
class BackfillResult:
    """Every version's outcome, and the bytes read."""

    archive: str
    outcomes: list[Outcome] = field(default_factory=list)
    archive_bytes: int = 0
    rows: int = 0

    def count(self, status: str) -> int:
        """How many versions ended with `status`."""
        return sum(o.status == status for o in self.outcomes)

    def frame(self) -> pl.DataFrame:
        """The summary table: one row per version."""
        return pl.DataFrame([o.__dict__ for o in self.outcomes])


def run_id_of(archive: str, listing: Listing) -> str:
    """The run id that names a version's snapshot: a re-run finds it in the catalog."""
    return f"backfill-{archive}-{listing.key}"


def _known_names(store: Store, source: str, listings: list[Listing]) -> dict[str, str]:
    """name -> the `_id` known for it: the store's current state, then every archive
    version that has `_id` (a later era resolves an earlier one's names). Lazy versions
    are read one at a time for their (name, _id) pairs and let go."""
    known: dict[str, str] = {}
    if source in store.sources():
        cur = store.as_of(source, columns=["name"]).collect()
        known.update(zip(cur["name"].to_list(), cur["entity_id"].to_list(), strict=True))
    for lst in listings:
        if lst.source != source:
            continue
        full = lst.load()
        if not full.by_name:
            pairs = full.rows.select("name", "entity_id").drop_nulls()
            known.update(zip(pairs["name"].to_list(), pairs["entity_id"].to_list(), strict=True))
    return known


def _resolve(rows: pl.DataFrame, known: dict[str, str]) -> tuple[pl.DataFrame, int]:
    """entity_id from name where the era has no `_id`; unresolved names keep the name."""
    missing = rows["entity_id"].is_null()
    if not missing.any():
        return rows, 0
    ids = rows["name"].replace_strict(known, default=None, return_dtype=pl.String)
    unresolved = int((missing & ids.is_null()).sum())
    filled = pl.coalesce(rows["entity_id"], ids, rows["name"])
    out = rows.with_columns(filled.alias("entity_id"))
    return out.unique("entity_id", keep="first", maintain_order=True), unresolved


def with_observed_at(rows: pl.DataFrame) -> pl.DataFrame:
    """Keep a version's per-row observation times (ecosyste.ms `last_synced_at`: rows in
    one dump have different ages) where the store takes them (`storage.schemas.OBSERVED_AT`,
    issue 16); drop them on a store that has no such column. Archives whose rows all date
    from the version's instant pass none: the snapshot's `as_of` already says it."""
    if "observed_at" in rows.columns and getattr(schemas, "OBSERVED_AT", None) is None:
        return rows.drop("observed_at")
    return rows


def run_backfill(
    store: Store,
    archive: str,
    path: str | Path,
    *,
    sources: list[str] | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    max_shrink: float | None = 0.10,
    on_version: Callable[[Outcome, int, int], None] | None = None,
) -> BackfillResult:
    """Import every version of `archive` at `path` missing from the store, oldest first.

    Args:
        store: the store written to (its writer: time order and the shrink guard hold).
        archive: a key of ARCHIVES.
        path: what the user downloaded (a folder of revisions, a git clone, a file).
        sources: only these sources (default: every one the archive describes).
        since, until: only versions observed in [since, until].
        max_shrink: the shrink guard for `full` versions (None: off); a refused version
            ends failed and is reported.
        on_version: called after each version (outcome, index, total): the progress bar.

    Returns:
        The outcome of every version; a re-run reports the done ones `already imported`.
    """
    if archive not in ARCHIVES:
        raise ValueError(f"archive {archive!r} unknown; use {', '.join(ARCHIVES)}")
    listings = [
        x
        for x in ARCHIVES[archive](Path(path))
        if (sources is None or x.source in sources)
        and (since is None or x.observed_at >= since)
        and (until is None or x.observed_at <= until)
    ]
    listings.sort(key=lambda x: (x.observed_at, x.source))
    result = BackfillResult(archive)
    known: dict[str, dict[str, str]] = {}
    for i, lazy in enumerate(listings):
        done = _done(store, archive, lazy)
        lst = done[1] if done else lazy.load()  # one version in memory at a time
        if done is None and lst.by_name and lst.source not in known:
            # an era without `_id`: names resolve through the store and every later version
            known[lst.source] = _known_names(store, lst.source, listings[i + 1 :])
        out = done[0] if done else _one(store, archive, lst, known.get(lst.source, {}), max_shrink)
        result.outcomes.append(out)
        if out.status == "imported":
            result.archive_bytes += lst.archive_bytes
            result.rows += lst.rows.height
        if on_version:
            on_version(out, i + 1, len(listings))
    return result


def _done(store: Store, archive: str, lst: Listing) -> tuple[Outcome, Listing] | None:
    """The outcome of a version that needs no reading: imported before, or not after the
    store's newest snapshot (time runs forward); None when it is to be imported."""
    out = Outcome(lst.source, lst.key, lst.observed_at, "skipped")
    cat = store.snapshots(lst.source, all_statuses=True)
    mine = cat.filter(
        (pl.col("run_id") == run_id_of(archive, lst)) & (pl.col("status") == "complete")
    )
    if mine.height:
        out.status, out.snapshot_id = "already imported", int(mine["snapshot_id"][0])
        return out, lst
    held = cat.filter(pl.col("status") != "failed")["as_of"].drop_nulls()
    if held.len() and lst.observed_at <= held.max():  # type: ignore[operator]
        same = lst.observed_at == held.max()
        out.note = (
            "repeats the instant of an earlier version"
            if same
            else "before the store's newest snapshot (time runs forward)"
        )
        return out, lst
    return None


def _one(
    store: Store, archive: str, lst: Listing, known: dict[str, str], max_shrink: float | None
) -> Outcome:
    run_id = run_id_of(archive, lst)
    out = Outcome(lst.source, lst.key, lst.observed_at, "skipped")
    rows, unresolved = _resolve(lst.rows, known) if lst.source.startswith("hub:") else (lst.rows, 0)
    rows = with_observed_at(rows)
    full = lst.coverage == "full"
    w = store.begin_snapshot(
        lst.source,
        as_of=lst.observed_at,
        run_id=run_id,
        coverage=lst.coverage,
        top_by=lst.top_by,
        max_shrink=max_shrink if full else None,
        on_shrink="failed",
    )
    for seq, start in enumerate(range(0, max(rows.height, 1), BATCH_ROWS)):
        w.write_batch(seq, rows.slice(start, BATCH_ROWS))
    present = [c for c in rows.columns if rows[c].null_count() < rows.height]
    absent = [c for c in rows.columns if c not in present]
    # the known methodology breaks of this source go in with its first imported snapshot
    w.record_events(
        [
            *break_events(store, lst.source),
            CrawlEvent(
                COLUMNS_EVENT,
                f"{archive} {lst.key}",
                payload=json.dumps(
                    {
                        "archive_columns": lst.archive_columns,
                        "absent": absent,
                        "instant": lst.instant_rule,
                        "unresolved_names": unresolved,
                        "notes": lst.notes,
                    }
                ),
            ),
        ]
    )
    info = w.finish("complete", message=f"backfill {archive} {lst.key} ({lst.instant_rule})")
    out.status = "imported" if info.status == "complete" else "failed"
    out.snapshot_id = info.snapshot_id
    out.entities, out.upserts, out.tombstones = info.entities or 0, info.upserts, info.tombstones
    out.note = info.message or ""
    if unresolved:
        out.note += f"; {unresolved} names without a known _id keyed by name"
    return out


def archive_columns(store: Store, source: str) -> pl.DataFrame:
    """snapshot_id, version, archive_columns, absent: which columns each backfilled
    snapshot's archive version had (absent ones are unknown there, not zero)."""
    ev = (
        store.events()
        .filter((pl.col("kind") == COLUMNS_EVENT) & (pl.col("source") == source))
        .collect()
    )
    rows = []
    for r in ev.iter_rows(named=True):
        p = json.loads(r["payload"])
        rows.append(
            {
                "snapshot_id": r["snapshot_id"],
                "version": r["reason"],
                "archive_columns": p["archive_columns"],
                "absent": p["absent"],
                "instant": p["instant"],
            }
        )
    schema: dict[str, pl.DataType | type[pl.DataType]] = {
        "snapshot_id": pl.Int64,
        "version": pl.String,
        "archive_columns": pl.List(pl.String),
        "absent": pl.List(pl.String),
        "instant": pl.String,
    }
    return pl.DataFrame(rows, schema=schema).sort("snapshot_id")
