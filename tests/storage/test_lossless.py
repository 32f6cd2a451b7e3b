"""Lossless: for random snapshot sequences, every complete snapshot reads back exactly.

Sequences mix nulls, empty and null lists, deletions, re-appearances, renames (same id,
new name), partial and failed snapshots between complete ones, replayed batches, and any
keyframe interval, and `maintain` (window compaction, checkpoint, vacuum) run after any
snapshot or not at all. The fast suite runs a few examples; the slow suite at least 200.
"""

from __future__ import annotations

import tempfile
from datetime import UTC, datetime
from typing import Any

import polars as pl
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

import storage.writer as writer
from storage import Store

SRC = "hub:model"
COLS = ["entity_id", "name", "downloads", "tags", "trending_score", "private", "created_at"]

ids = st.sampled_from([f"id{i}" for i in range(8)])
row_values = st.fixed_dictionaries(
    {
        "name": st.sampled_from(["a/x", "a/y", "b/x", None]),
        "downloads": st.one_of(st.none(), st.integers(-(2**40), 2**40)),
        "tags": st.one_of(st.none(), st.lists(st.sampled_from(["", "t1", "t2", "ü"]), max_size=3)),
        "trending_score": st.one_of(st.none(), st.floats(allow_nan=False, width=64)),
        "private": st.one_of(st.none(), st.booleans()),
        "created_at": st.one_of(
            st.none(),
            st.datetimes(
                min_value=datetime(2000, 1, 1),
                max_value=datetime(2030, 1, 1),
                timezones=st.just(UTC),
            ),
        ),
    }
)
EMPTY_ROW: dict[str, Any] = dict.fromkeys(COLS[1:])
listing = st.dictionaries(ids, row_values, max_size=8)
snapshot = st.tuples(
    listing,
    st.sampled_from(["complete", "complete", "complete", "partial", "failed"]),
    st.integers(1, 4),  # batch size
    st.booleans(),  # replay a batch
)
sequence = st.tuples(
    st.lists(snapshot, min_size=1, max_size=5),
    st.integers(1, 4),  # keyframe_every
    st.booleans(),  # finish reads every batch back from staging (none kept in memory)
    st.one_of(st.none(), st.integers(0, 4)),  # maintain after that many snapshots
)


def frame(rows: dict[str, dict[str, Any]]) -> pl.DataFrame:
    recs = [{"entity_id": k, **v} for k, v in sorted(rows.items())]
    schema = {
        "entity_id": pl.String,
        "name": pl.String,
        "downloads": pl.Int64,
        "tags": pl.List(pl.String),
        "trending_score": pl.Float64,
        "private": pl.Boolean,
        "created_at": pl.Datetime("us", "UTC"),
    }
    return pl.DataFrame(recs, schema=schema, orient="row") if recs else pl.DataFrame(schema=schema)


def run(
    seq: list[tuple[dict[str, dict[str, Any]], str, int, bool]],
    keyframe_every: int,
    read_back: bool = False,
    maintain_after: int | None = None,
) -> None:
    cap = writer.STAGED_MEMORY_BYTES
    if read_back:
        writer.STAGED_MEMORY_BYTES = 0
    try:
        _run(seq, keyframe_every, maintain_after)
    finally:
        writer.STAGED_MEMORY_BYTES = cap


def _run(
    seq: list[tuple[dict[str, dict[str, Any]], str, int, bool]],
    keyframe_every: int,
    maintain_after: int | None,
) -> None:
    with tempfile.TemporaryDirectory() as root:
        store = Store.open(root, keyframe_every=keyframe_every)
        truth: dict[int, pl.DataFrame] = {}
        partial: dict[int, pl.DataFrame] = {}
        last_complete: dict[str, dict[str, Any]] = {}
        for n_done, (rows, status, batch, replay) in enumerate(seq):
            if n_done == maintain_after:
                store.maintain()
            w = store.begin_snapshot(SRC)
            recs = [{"entity_id": k, **v} for k, v in rows.items()]
            chunks = [recs[i : i + batch] for i in range(0, len(recs), batch)] or [[]]
            for n, chunk in enumerate(chunks):
                assert w.write_batch(n, chunk)
                if replay:
                    assert not w.write_batch(n, chunk)
            w.finish(status)
            if status == "complete":
                # an empty listing is no evidence that anything is gone: the state stays
                last_complete = rows if rows else last_complete
                truth[w.snapshot_id] = frame(last_complete)
            elif status == "partial":
                partial[w.snapshot_id] = frame({**last_complete, **rows})
        if maintain_after is not None and maintain_after >= len(seq):
            store.maintain()
        for sid, want in truth.items():
            got = store.as_of(SRC, sid, columns=COLS[1:]).collect().sort("entity_id")
            assert got.equals(want), (sid, got, want)
        for sid, want in partial.items():
            got = store.as_of(SRC, sid, columns=COLS[1:], include_partial=True).collect()
            assert got.sort("entity_id").equals(want), (sid, got, want)
        # history replays to the same states: the newest change <= S per entity
        ids_seen = {k for f in truth.values() for k in f["entity_id"].to_list()}
        for eid in ids_seen:
            hist = store.history(SRC, eid).collect()
            for sid, want in truth.items():
                upto = hist.filter(pl.col("snapshot_id") <= sid)
                alive = upto.height and upto["op"][-1] == "upsert"
                assert bool(alive) == (eid in want["entity_id"].to_list())


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(sequence)
# found by CI: an empty complete listing after one row, keyframing every snapshot, once
# wrote a counters keyframe without the carried entity (its counters read back null)
@example(
    (
        [
            ({"id0": {**EMPTY_ROW, "name": "a/x", "trending_score": 0.0}}, "complete", 1, False),
            ({}, "complete", 1, False),
        ],
        1,
        False,
        None,
    )
)
def test_lossless_quick(case: tuple[list[Any], int, bool]) -> None:
    run(*case)


@pytest.mark.slow
@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(sequence)
def test_lossless_200(case: tuple[list[Any], int, bool]) -> None:
    run(*case)
