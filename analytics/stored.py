"""Measures computed once: every measure's result per complete snapshot, stored in
`derived/measures` and read back by `hubtide measure`, the report and the series.

A result is keyed by (source, snapshot_id, measure, version, params): `params` is a digest
of the `Params` it was computed with, so a result of other parameters is never read as
this one's. A snapshot measure has a row per complete snapshot; a series measure has a row
per newest complete snapshot, holding the whole series up to it. A series of per-snapshot
rows (`Measure.rows`) keeps each snapshot's rows in `derived/series_rows` under the same
key and, at a new snapshot, computes the new one's rows only (its sample is stable:
`analytics.data.sampled_positions`); one with `Measure.update` carries its previous result
forward; the others are recomputed over every snapshot (`Measure.across` says why).
Bumping a measure's `version` leaves its old rows alone and makes `analyze` compute it
(and only it) again.

`analyze()` catches up whatever key is missing; it is what `hubtide analyze` and the
daemon's job after each complete snapshot run. A measure that raises is logged and
counted in the summary, and the others are stored all the same; one that says "not
enough data" is stored as `empty` with its message, so a re-run asks it nothing.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import polars as pl

from analytics.catalog import Measure, applies, registry
from analytics.data import Data
from analytics.errors import NotEnoughData
from analytics.params import Params
from storage import DerivedFrame, Store
from storage.derived import MEASURES as TABLE
from storage.derived import SERIES_ROWS as ROWS

log = logging.getLogger(__name__)

Progress = Callable[[int, int, str], None]  # (done, total, what is being computed)


def params_digest(params: Params) -> str:
    """A short, stable digest of every parameter value (the `params` of a stored key)."""
    text = json.dumps(params.as_dict(), sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass
class Summary:
    """What one `analyze` run did."""

    keys: int = 0  # keys the run looked at
    already: int = 0  # already stored
    written: int = 0  # rows written (ok + empty)
    empty: int = 0  # of those, "not enough data"
    updated: int = 0  # series carried forward from their previous result (Measure.update)
    rows_computed: int = 0  # per-snapshot rows of `rows` series computed and stored now
    rows_reused: int = 0  # ... read back as stored by an earlier run
    failures: dict[str, str] = field(default_factory=dict)  # "measure source@sid" -> error
    failed_measures: dict[str, int] = field(default_factory=dict)  # measure -> failures
    seconds: dict[str, float] = field(default_factory=dict)  # measure -> compute seconds

    def frame(self) -> pl.DataFrame:
        names = sorted(set(self.seconds) | set(self.failed_measures))
        return pl.DataFrame(
            {
                "measure": names,
                "seconds": [round(self.seconds.get(n, 0.0), 3) for n in names],
                "failures": [self.failed_measures.get(n, 0) for n in names],
            },
            schema={"measure": pl.String, "seconds": pl.Float64, "failures": pl.Int64},
        )


@dataclass(frozen=True)
class _Key:
    measure: Measure
    source: str
    snapshot_id: int

    def frame(self, digest: str) -> DerivedFrame:
        # a key only: has() reads no frame (status "empty" needs none)
        return DerivedFrame(
            self.source,
            self.snapshot_id,
            self.measure.name,
            self.measure.version,
            digest,
            None,
            status="empty",
        )


def _keys(
    data: Data, sources: list[str], measures: Mapping[str, Measure], newest: bool = False
) -> list[_Key]:
    keys: list[_Key] = []
    for src in sources:
        ids = data.snapshot_ids(src)  # cached for the run: a snapshot completing meanwhile waits
        if not ids:
            continue
        for m in measures.values():
            if not applies(m, src):
                continue
            if m.kind == "series" or newest:
                keys.append(_Key(m, src, ids[-1]))
            else:
                keys.extend(_Key(m, src, sid) for sid in ids)
    return keys


def analyze(
    store: Store,
    *,
    sources: list[str] | None = None,
    measures: list[str] | None = None,
    params: Mapping[str, Any] | Params | None = None,
    catalog: Mapping[str, Measure] | None = None,
    progress: Progress | None = None,
    newest: bool = False,
) -> Summary:
    """Compute and store every missing (source, snapshot, measure, version) result.

    `sources` / `measures` narrow the run (unknown names raise ValueError listing the
    known ones); `catalog` replaces the registry (a plug-in's measures). Resumable: keys
    stored by an earlier (even killed) run are skipped, each snapshot's results are
    committed as soon as they are computed. `newest`: each source's newest complete
    snapshot only (what a daemon that kept up computes after a snapshot completes)."""
    cat = dict(catalog if catalog is not None else registry())
    if measures:
        unknown = [m for m in measures if m not in cat]
        if unknown:
            raise ValueError(f"unknown measure {unknown[0]!r}; measures: {', '.join(cat)}")
        cat = {n: m for n, m in cat.items() if n in measures}
    p = Params.from_mapping(params)
    digest = params_digest(p)
    data = Data(store, p)
    # top-K lists come from derived/topk unless the state is cached: at the daemon's pace
    # a run reads the newest state only, and ranking every snapshot's state for turnover
    # would read a year of 3.2M-model states
    data.rank_from_states = False
    have = data.sources()
    if sources:
        unknown = [s for s in sources if s not in have]
        if unknown:
            listed = ", ".join(have) or "none yet"
            raise ValueError(f"unknown source {unknown[0]!r}; sources in the store: {listed}")
        have = [s for s in have if s in sources]
    keys = _keys(data, have, cat, newest)
    summary = Summary(keys=len(keys))
    stored = store.derived_stored(TABLE, [k.frame(digest) for k in keys]) if keys else []
    todo = [k for k, done in zip(keys, stored, strict=True) if not done]
    summary.already = len(keys) - len(todo)
    # one commit per (source, snapshot): a kill loses at most that snapshot's work
    groups: dict[tuple[str, int], list[_Key]] = {}
    for k in todo:
        groups.setdefault((k.source, k.snapshot_id), []).append(k)
    _rows_first(data, todo, digest, summary, progress)
    done = 0
    for (src, sid), group in groups.items():
        out: list[DerivedFrame] = []
        for k in group:
            if progress is not None:
                progress(done, len(todo), f"{k.measure.name} {src}@{sid}")
            item = _compute(data, k, digest, summary)
            if item is not None:
                out.append(item)
            done += 1
        if out:
            summary.written += store.write_derived(TABLE, out)
    if progress is not None:
        progress(done, len(todo), "done")
    return summary


def _rows_first(
    data: Data, todo: list[_Key], digest: str, summary: Summary, progress: Progress | None
) -> None:
    """The missing per-snapshot rows of every `rows` series in `todo`, computed snapshot by
    snapshot, before any series is assembled: one state read and one set of memos serve
    every series at a snapshot (measure by measure, each would read every state again),
    the memos of a snapshot other than the newest are let go once its rows are stored,
    and each snapshot's rows are one commit (a killed catch-up keeps what it stored). A
    rows function that raises is left to `_assemble`, which counts the failure."""
    plan: dict[tuple[str, int], list[Measure]] = {}
    for k in todo:
        m = k.measure
        if m.rows is None:
            continue
        ids = m.visited(data, k.source)
        have = data.store.read_derived_many(
            ROWS, source=k.source, name=m.name, version=m.version, params=digest, snapshot_ids=ids
        )
        summary.rows_reused += len(have)
        newest = data.snapshot_ids(k.source)[-1]
        for sid in ids:
            # the newest's rows wait for `_assemble`, in catalog order: after the snapshot
            # measures, whose memos (the snapshot's people, its networks) they can take
            if sid not in have and sid != newest:
                plan.setdefault((k.source, sid), []).append(m)
    total = sum(len(ms) for ms in plan.values())
    done = 0
    for (src, sid), ms in sorted(plan.items()):
        items: list[DerivedFrame] = []
        for m in ms:
            if progress is not None:
                progress(done, total, f"{m.name} rows {src}@{sid}")
            done += 1
            t0 = time.perf_counter()
            try:
                value = m.rows_at(data, src, sid)
            except Exception:  # _assemble computes it again and reports it
                continue
            finally:
                took = time.perf_counter() - t0
                summary.seconds[m.name] = summary.seconds.get(m.name, 0.0) + took
            items.append(_rows_frame(m, src, sid, digest, value, took))
        if items:
            summary.rows_computed += data.store.write_derived(ROWS, items)
        if sid != data.snapshot_ids(src)[-1]:
            data.release(src, sid)


def _rows_frame(
    m: Measure, source: str, sid: int, digest: str, value: pl.DataFrame | str, took: float
) -> DerivedFrame:
    if isinstance(value, pl.DataFrame):
        return DerivedFrame(source, sid, m.name, m.version, digest, value, seconds=took)
    return DerivedFrame(
        source, sid, m.name, m.version, digest, None, status="empty", message=value, seconds=took
    )


def _compute(data: Data, k: _Key, digest: str, summary: Summary) -> DerivedFrame | None:
    m = k.measure
    t0 = time.perf_counter()
    try:
        if m.rows is not None:
            frame = _assemble(data, k, digest, summary)
        elif m.kind == "series":
            previous = _previous(data, k, digest) if m.update is not None else None
            if previous is not None:
                frame = m.run_update(data, k.source, previous)
                summary.updated += 1
            else:
                frame = m.run(data, k.source)
        else:
            frame = m.run(data, k.source, k.snapshot_id)
        status, message = "ok", None
    except NotEnoughData as exc:
        frame, status, message = None, "empty", str(exc)
    except Exception as exc:  # a failing measure never stops the others
        took = time.perf_counter() - t0
        summary.seconds[m.name] = summary.seconds.get(m.name, 0.0) + took
        summary.failed_measures[m.name] = summary.failed_measures.get(m.name, 0) + 1
        summary.failures[f"{m.name} {k.source}@{k.snapshot_id}"] = f"{type(exc).__name__}: {exc}"
        log.error("measure %s on %s@%s failed: %s", m.name, k.source, k.snapshot_id, exc)
        return None
    took = time.perf_counter() - t0
    summary.seconds[m.name] = summary.seconds.get(m.name, 0.0) + took
    if status == "empty":
        summary.empty += 1
    return DerivedFrame(
        k.source,
        k.snapshot_id,
        m.name,
        m.version,
        digest,
        frame,
        status=status,
        message=message,
        seconds=took,
    )


def _assemble(data: Data, k: _Key, digest: str, summary: Summary) -> pl.DataFrame:
    """A `rows` series at `k`: the stored rows of the snapshots it visits, the missing
    ones computed and stored (at the daemon's pace: the newest only), then combined."""
    m = k.measure
    ids = m.visited(data, k.source)
    stored = data.store.read_derived_many(
        ROWS,
        source=k.source,
        name=m.name,
        version=m.version,
        params=digest,
        snapshot_ids=ids,
    )
    got: dict[int, pl.DataFrame | str] = {}
    new: list[DerivedFrame] = []
    for sid in ids:
        row = stored.get(sid)
        if row is not None:
            got[sid] = row.frame if row.frame is not None else (row.message or "no rows")
            continue
        t0 = time.perf_counter()  # not computed by _rows_first: its rows function raised
        value = m.rows_at(data, k.source, sid)
        got[sid] = value
        new.append(_rows_frame(m, k.source, sid, digest, value, time.perf_counter() - t0))
    if new:  # stored before combining: a combine that fails keeps the rows it was given
        summary.rows_computed += data.store.write_derived(ROWS, new)
    return m.assemble(data, k.source, ids, got)


def _previous(data: Data, k: _Key, digest: str) -> pl.DataFrame | None:
    """The newest stored result of a series before `k` (same version and params)."""
    index = data.store.derived_index(
        TABLE, source=k.source, name=k.measure.name, version=k.measure.version, params=digest
    ).filter(pl.col("status") == "ok", pl.col("snapshot_id") < k.snapshot_id)
    if index.is_empty():
        return None
    before = _Key(k.measure, k.source, int(index["snapshot_id"].max()))  # type: ignore[arg-type]
    row = data.store.read_derived(TABLE, before.frame(digest))
    return row.frame if row is not None else None


def stored_frame(
    store: Store, m: Measure, data: Data, source: str, at: Any = None
) -> pl.DataFrame | None:
    """The stored result of `m` for `source` (at snapshot `at`, newest for a series), or
    None when it is not stored; a stored "not enough data" raises NotEnoughData again."""
    if m.kind == "series":
        ids = data.snapshot_ids(source)
        if not ids:
            return None
        sid = ids[-1]
    else:
        sid = data.resolve(source, at)
    row = store.read_derived(TABLE, _Key(m, source, sid).frame(params_digest(data.params)))
    if row is None:
        return None
    if row.status == "empty":
        raise NotEnoughData(row.message or f"not enough data for {m.name} on {source}")
    return row.frame


def measure_frame(
    store: Store, m: Measure, data: Data, source: str, at: Any = None
) -> tuple[pl.DataFrame, bool]:
    """(frame, stored): the stored result when there is one, else computed now."""
    frame = stored_frame(store, m, data, source, at)
    if frame is not None:
        return frame, True
    return m.run(data, source, at), False
