"""delta-rs's known hazards stay designed out (issue 15, point 4)."""

from __future__ import annotations

import ast
import os
import random
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow as pa
import pytest
from deltalake import DeltaTable, write_deltalake

import storage
import storage.core
import storage.tables
import storage.writer
from storage import CrawlEvent, Store, StoreError
from storage.layout import CATALOG, STAGING
from storage.tables import TABLE_CONFIG
from tests.storage.conftest import day, write_snapshot
from tests.storage.listings import listing

STORAGE = Path(storage.__file__).parent


def _vacuum_calls() -> list[tuple[str, ast.Call]]:
    """Every `.vacuum(...)` call in storage/, with its file name."""
    out = []
    for path in sorted(STORAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr == "vacuum"
            ):
                out.append((path.name, node))
    return out


def test_vacuum_never_full() -> None:
    """delta-rs #3645: a full vacuum during an append deletes the in-flight file, so no
    vacuum call in storage/ passes `full` (its default is False) or spreads **kwargs."""
    calls = _vacuum_calls()
    assert calls, "maintenance vacuums somewhere; the scan must find it"
    for name, call in calls:
        kws = {k.arg for k in call.keywords}
        assert "full" not in kws, f"{name}:{call.lineno} passes full= to vacuum"
        assert None not in kws, f"{name}:{call.lineno} spreads **kwargs into vacuum"
        assert len(call.args) <= 3, f"{name}:{call.lineno} passes full positionally"


def as_of_rows(store: Store) -> list[pl.DataFrame]:
    """Every complete snapshot's as-of state, sorted by id (what a kill must not change)."""
    ids = store.snapshots("hub:model")["snapshot_id"].to_list()
    return [store.as_of("hub:model", s).collect().sort("entity_id") for s in ids]


def _checkpoints(root: Path) -> list[Path]:
    return sorted(root.rglob("_delta_log/*.checkpoint*.parquet"))


def test_a_default_commit_would_checkpoint(tmp_path: Path) -> None:
    """The control for the test below: in this delta-rs, commits with the default hooks
    on a table of `TABLE_CONFIG` do write a checkpoint (so its absence below means the
    flag is honoured, not that checkpoints never happen; delta-rs #3780)."""
    uri = str(tmp_path / "t")
    rows = pa.table({"x": [1]})
    DeltaTable.create(uri, rows.schema, configuration=TABLE_CONFIG)
    for _ in range(11):
        write_deltalake(uri, rows, mode="append")
    assert _checkpoints(tmp_path), "the default hooks wrote no checkpoint after 11 commits"


def test_writers_never_checkpoint_only_maintain_does(tmp_path: Path) -> None:
    """Writers commit with auto-checkpoint and log cleanup off (`NO_HOOKS`): after more
    writer commits than `delta.checkpointInterval` in several tables (catalog, staging,
    attributes, counters, top-k, events), no checkpoint file exists until `maintain`."""
    interval = int(TABLE_CONFIG["delta.checkpointInterval"])
    root = tmp_path / "store"
    store = Store.open(str(root), keyframe_every=3)
    for k in range(1, 9):
        write_snapshot(store, "hub:model", listing(k, 40), at=day(k), batch=10)
    store.wait_for_tidying()
    versions = {rel: DeltaTable(str(root / rel)).version() for rel in store.table_names()}
    busy = [rel for rel, v in versions.items() if v > interval]
    assert {CATALOG, STAGING} <= set(busy), versions
    assert _checkpoints(root) == [], "a writer commit wrote a checkpoint"
    assert not list(root.rglob("_delta_log/_last_checkpoint"))

    store.maintain()
    for rel in busy:
        log = root / rel / "_delta_log"
        assert list(log.glob("*.checkpoint*.parquet")), f"maintain left {rel} without one"
    before, after = as_of_rows(store), as_of_rows(Store.open(str(root)))
    assert len(before) == 8 and all(a.equals(b) for a, b in zip(before, after, strict=True))


# -- delta-rs #2279: after a writer error, re-open and check before the next write ------


def _erring(real: Callable[..., Any], *, after: bool, times: int = 1) -> Callable[..., Any]:
    """`real`, except that its first `times` calls raise: after the real call returned
    (it committed; the error came later, as from a reply lost on the wire) or before it
    (nothing written)."""
    left = [times]

    def call(*args: Any, **kwargs: Any) -> Any:
        if left[0] > 0:
            left[0] -= 1
            if after:
                real(*args, **kwargs)
            raise OSError("injected: connection reset by peer")
        return real(*args, **kwargs)

    return call


@pytest.mark.parametrize("after", [True, False], ids=["after-commit", "before-commit"])
def test_an_event_append_that_errs_lands_exactly_once(
    store: Store, monkeypatch: pytest.MonkeyPatch, after: bool
) -> None:
    """A plain append (crawl events, no txn) whose write raised is checked in a freshly
    loaded table: committed before the error, it is not written again (no duplicate);
    not committed, it is written on the fresh table (nothing lost)."""
    w = store.begin_snapshot("hub:model", as_of=day(1))
    w.record_events([CrawlEvent("retry", "first")])
    monkeypatch.setattr(storage.core, "write_deltalake", _erring(write_deltalake, after=after))
    w.record_events([CrawlEvent("retry", "erring"), CrawlEvent("retry", "erring too")])
    monkeypatch.undo()
    w.record_events([CrawlEvent("retry", "last")])
    w.write_batch(0, listing(1, 10))
    w.finish("complete")
    reasons = Store.open(store.uri).events(w.run_id).collect()["reason"].to_list()
    assert reasons == ["first", "erring", "erring too", "last"]


def test_an_event_append_whose_check_cannot_tell_raises(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """When the write raised and the fresh load raises too, the append does not write
    again blindly (it could double the rows): a StoreError naming the table."""
    w = store.begin_snapshot("hub:model", as_of=day(1))
    monkeypatch.setattr(storage.core, "write_deltalake", _erring(write_deltalake, after=True))
    monkeypatch.setattr(storage.tables.Tables, "wrote", _erring(lambda *a: True, after=False))
    with pytest.raises(StoreError, match=r"ops/crawl_events: append failed .* unknown"):
        w.record_events([CrawlEvent("retry", "x")])
    monkeypatch.undo()
    assert Store.open(store.uri).events(w.run_id).collect()["reason"].to_list() == ["x"]


@pytest.mark.parametrize("after", [True, False], ids=["after-commit", "before-commit"])
def test_a_staging_drop_that_errs_is_checked_and_the_next_snapshot_is_whole(
    store: Store,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    after: bool,
) -> None:
    """The staging delete after a finish raises (after it committed, or before): the
    table is re-opened and checked (the log says which), the next snapshot stages and
    finishes through the fresh table, every as-of read holds, and what was left is
    dropped by `maintain`."""
    root = Path(store.uri)
    monkeypatch.setattr(DeltaTable, "delete", _erring(DeltaTable.delete, after=after))
    write_snapshot(store, "hub:model", listing(1, 30), at=day(1), batch=10)
    store.wait_for_tidying()
    monkeypatch.undo()
    said = "dropped, then" if after else "not dropped (maintain will)"
    assert any(said in r.getMessage() for r in caplog.records), caplog.text
    left = len(list((root / STAGING).rglob("snapshot_id=1/*.parquet")))
    live = pl.scan_delta(str(root / STAGING)).filter(pl.col("snapshot_id") == 1).collect()
    # landed: checked, and its files reclaimed at once; not: rows and files stay
    assert (live.height, left > 0) == ((0, False) if after else (3, True))
    write_snapshot(store, "hub:model", listing(2, 30), at=day(2), batch=10)
    store.wait_for_tidying()
    control = Store.open(str(tmp_path / "control"), keyframe_every=3)
    for k in (1, 2):
        write_snapshot(control, "hub:model", listing(k, 30), at=day(k), batch=10)
    fresh = Store.open(store.uri)
    got, want = as_of_rows(fresh), as_of_rows(control)
    assert len(got) == 2 and all(a.equals(b) for a, b in zip(got, want, strict=True))
    fresh.maintain()
    assert pl.scan_delta(str(root / STAGING)).collect().height == 0


def _nth_erring(real: Callable[..., Any], nth: int, *, after: bool) -> Callable[..., Any]:
    """`real`, except that its `nth` call (0-based, counted across threads) raises,
    after the real call returned (it committed) or before it."""
    calls = [0]
    lock = threading.Lock()

    def call(*args: Any, **kwargs: Any) -> Any:
        with lock:
            mine, calls[0] = calls[0], calls[0] + 1
        if mine == nth:
            if after:
                real(*args, **kwargs)
            raise OSError("injected: connection reset by peer")
        return real(*args, **kwargs)

    return call


def _row_counts(root: Path, tables: list[str]) -> dict[str, int]:
    return {rel: pl.scan_delta(str(root / rel)).select(pl.len()).collect().item() for rel in tables}


# The txn'd commits of a finish: the staging flush, then changes, counters and top-k (three
# threads, in any order), then the catalog row. `kept`: the finish holds the batches it
# accepted in memory (a listing under STAGED_MEMORY_BYTES) or reads them back from staging.
@pytest.mark.parametrize(
    ("nth", "kept"),
    [(0, True), (0, False), (1, True), (2, True), (3, True), (4, True)],
    ids=["staging", "staging-read-back", "commit1", "commit2", "commit3", "catalog"],
)
@pytest.mark.parametrize("after", [True, False], ids=["after-commit", "before-commit"])
def test_a_txn_append_that_errs_is_checked_in_a_fresh_table(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, nth: int, kept: bool, after: bool
) -> None:
    """One txn'd commit of a finish raises an I/O error (as a reply lost on the wire),
    after it committed or before: the txn is looked up in a freshly loaded table. Landed,
    the finish goes on; not landed, the finish raises a StoreError naming the table and
    a second finish writes what is missing (a staging flush keeps its batches waiting).
    Either way no row is doubled or lost: every table holds the rows of a store that
    never erred, and every as-of read equals its."""
    if not kept:
        monkeypatch.setattr(storage.writer, "STAGED_MEMORY_BYTES", 0)
    root = tmp_path / "store"
    store = Store.open(str(root), keyframe_every=3)
    control_root = tmp_path / "control"
    control = Store.open(str(control_root), keyframe_every=3)
    for k in (1, 2):
        write_snapshot(store, "hub:model", listing(k, 30), at=day(k), batch=10)
        write_snapshot(control, "hub:model", listing(k, 30), at=day(k), batch=10)
    w = store.begin_snapshot("hub:model", as_of=day(3))
    for seq in range(3):
        w.write_batch(seq, listing(3, 30)[seq * 10 : seq * 10 + 10])
    erring = _nth_erring(storage.tables.write_deltalake, nth, after=after)
    with monkeypatch.context() as patch:
        patch.setattr(storage.tables, "write_deltalake", erring)
        if after:
            w.finish("complete")
        else:
            with pytest.raises(StoreError, match=r"append of txn .* failed: OSError: injected"):
                w.finish("complete")
    if not after:
        w.finish("complete")
    write_snapshot(control, "hub:model", listing(3, 30), at=day(3), batch=10)
    store.wait_for_tidying()
    control.wait_for_tidying()
    tables = sorted(set(store.table_names()) | set(control.table_names()))
    assert _row_counts(root, tables) == _row_counts(control_root, tables)
    got, want = as_of_rows(Store.open(str(root))), as_of_rows(control)
    assert len(got) == 3 and all(a.equals(b) for a, b in zip(got, want, strict=True))


# -- delta-rs #2258: a kill mid-checkpoint broke opening the table ------------------------

MAINTAINER = str(Path(__file__).with_name("maintain_proc.py"))


def _every_table_opens(root: Path, tables: list[str]) -> None:
    for rel in tables:
        dt = DeltaTable(str(root / rel))
        assert dt.version() >= 0
        pa.table(dt.get_add_actions())  # the state replays (checkpoint + log)


@pytest.mark.slow
def test_sigkill_during_checkpoint_or_vacuum_keeps_every_table_and_read(tmp_path: Path) -> None:
    """A `maintain` process is SIGKILLed during delta-rs's checkpoint or vacuum of a
    table picked at random, 0-30 ms into the call, on a copy of a real 12-snapshot store
    (logs past the checkpoint interval, files to vacuum). Every table then opens, every
    as-of read equals the one before, a writer can add a snapshot, and a second
    `maintain` completes with the reads unchanged."""
    base = tmp_path / "base"
    store = Store.open(str(base), keyframe_every=2)
    for k in range(1, 13):
        write_snapshot(store, "hub:model", listing(k, 300), at=day(k), batch=50)
    store.wait_for_tidying()
    tables = store.table_names()
    want = as_of_rows(store)
    rng = random.Random(2258)
    landed: set[tuple[str, str]] = set()
    ckpts: list[bool] = []
    for trial in range(18):
        phase = "checkpoint" if trial % 3 else "vacuum"
        root = tmp_path / f"t{trial}"
        shutil.copytree(base, root)
        proc = subprocess.Popen(
            [sys.executable, MAINTAINER, str(root)], stdout=subprocess.PIPE, text=True
        )
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "go"
        target, seen, killed = rng.randrange(len(tables)), 0, ""
        while not killed:
            line = proc.stdout.readline()
            assert line and line.strip() != "done", f"trial {trial}: maintain ended unkilled"
            what, _, uri = line.strip().partition(" ")
            if what == phase:
                if seen == target:
                    time.sleep(rng.choice([0.0, 0.0005, 0.001, 0.002, 0.004, 0.008, 0.03]))
                    os.kill(proc.pid, signal.SIGKILL)
                    killed = uri.removeprefix("file://").split(f"/{root.name}/", 1)[1]
                seen += 1
        proc.wait(timeout=60)
        landed.add((phase, killed))
        log = root / killed / "_delta_log"
        if phase == "checkpoint":  # killed before the checkpoint was written, or after
            ckpts.append(bool(list(log.glob("*.checkpoint*.parquet"))))
        _every_table_opens(root, tables)
        fresh = Store.open(str(root), keyframe_every=2)
        got = as_of_rows(fresh)
        assert len(got) == 12 and all(a.equals(b) for a, b in zip(got, want, strict=True)), trial
        if trial % 4 == 0:  # the store goes on: a new snapshot, then a whole maintain
            write_snapshot(fresh, "hub:model", listing(13, 300), at=day(13), batch=50)
            fresh.maintain()
            _every_table_opens(root, tables)
            again = as_of_rows(Store.open(str(root), keyframe_every=2))
            assert len(again) == 13 and all(a.equals(b) for a, b in zip(again, want, strict=False))
        shutil.rmtree(root)
    assert len(landed) >= 8, landed  # the kills hit many tables in both phases
    # some kills came before the table's checkpoint was on disk, some after
    assert True in ckpts and False in ckpts, ckpts
