"""`maintain` compacts the change-encoded tables per keyframe window (storage/maintenance.py).

What reads rely on: after maintain no file holds rows of two keyframe windows, so a read
of snapshot S skips every file of an older window by its `valid_from` statistics; the
change files of a window are merged into one; and every as-of state, history and top-k
reads back the same as before (through `as_of` and through the streaming plan a finish
uses). Also: two compactions racing on the same files commit once, and an append made
while a compaction runs survives it.
"""

from __future__ import annotations

import itertools
import re
import shutil
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from deltalake import DeltaTable
from deltalake.exceptions import CommitFailedError

import storage.maintenance as maintenance
from storage import Store, reads
from storage.catalog import TableKind
from storage.state import window

from .conftest import repo, write_snapshot

SRC = "hub:model"
ATTRS = "hub/repos"
COUNTERS = "hub/repo_counters"
N = 8


def listing(day: int) -> list[dict[str, Any]]:
    """N entities; every day a quarter of them change name and half change downloads (so
    attributes keyframe by cost every ~5 days, counters every ~3), entity 0 is gone on
    days 4 and 5 and back (a new key) on day 6."""
    rows = []
    for i in range(N):
        if i == 0 and day in (4, 5):
            continue
        rows.append(
            repo(
                i,
                name=f"org/m{i}-{(i + day) // 4}",  # changes when (i + day) % 4 == 0
                downloads=i * 100 + (i + day) // 2,  # changes when (i + day) is even
                likes=i,
                tags=["t", str(i)] if i % 3 else None,
            )
        )
    return rows


def fill(store: Store, days: int) -> list[int]:
    return [write_snapshot(store, SRC, listing(d), batch=3) for d in range(days)]


def states(store: Store, ids: list[int]) -> dict[int, pl.DataFrame]:
    return {sid: store.as_of(SRC, sid).collect().sort("entity_id") for sid in ids}


def histories(store: Store) -> dict[str, pl.DataFrame]:
    return {f"id{i}": store.history(SRC, f"id{i}").collect() for i in range(N)}


def keyframes(store: Store, flag: TableKind) -> list[int]:
    return store._core.catalog.keyframes(SRC, flag)


def files(store: Store, rel: str) -> list[maintenance.DataFile]:
    return maintenance.live_files(DeltaTable(store._core.tables.uri(rel)))


def windows_of_files(store: Store, rel: str, flag: TableKind) -> list[tuple[int, int]]:
    """(window of the smallest, window of the largest valid_from) of every live file."""
    kf = keyframes(store, flag)
    out = []
    for f in files(store, rel):
        assert f.lo is not None and f.hi is not None, "a file without valid_from statistics"
        out.append((maintenance.window_of(kf, f.lo), maintenance.window_of(kf, f.hi)))
    return out


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[int]]:
    root = tmp_path_factory.mktemp("windows") / "store"
    return root, fill(Store.open(str(root), keyframe_every=50), 11)


@pytest.fixture
def filled(template: tuple[Path, list[int]], tmp_path: Path) -> tuple[Store, list[int]]:
    """A copy of an 11-snapshot store (written once per module: ~2 s)."""
    root, ids = template
    shutil.copytree(root, tmp_path / "store")
    return Store.open(str(tmp_path / "store"), keyframe_every=50), list(ids)


def test_the_world_keyframes_both_tables_more_than_once(filled: tuple[Store, list[int]]) -> None:
    # the other tests need several windows per table, each with two or more change files
    store, _ = filled
    for flag in ("attributes", "counters"):
        kf = keyframes(store, flag)
        assert len(kf) >= 2, (flag, kf)
        assert any(b - a >= 3 for a, b in itertools.pairwise(kf)), (flag, kf)


def test_maintain_merges_change_files_within_a_window_only(
    filled: tuple[Store, list[int]],
) -> None:
    store, _ = filled
    before = {rel: len(files(store, rel)) for rel in (ATTRS, COUNTERS)}
    store.maintain()
    for rel, flag in ((ATTRS, "attributes"), (COUNTERS, "counters")):
        spans = windows_of_files(store, rel, flag)
        assert all(a == b for a, b in spans), (rel, spans)  # no file spans two windows
        per_window = pl.Series([a for a, _ in spans]).value_counts()["count"]
        assert per_window.max() <= 2, (rel, spans)  # the keyframe file + one change file
        assert len(spans) < before[rel], (rel, before[rel], spans)


def streamed(store: Store, sid: int) -> pl.DataFrame:
    """The state through the lazy plan a finish's previous state streams (`as_of` collects
    change rows first and runs the in-memory engine: both must give one state)."""
    return reads.state_of(store._core, SRC, sid, None).collect(engine="streaming").sort("entity_id")


def test_maintain_keeps_every_read(filled: tuple[Store, list[int]]) -> None:
    store, ids = filled
    want, hist = states(store, ids), histories(store)
    top = store.top_k(SRC, ids[-1], "downloads", 3).collect()
    for sid in ids:
        assert streamed(store, sid).equals(want[sid]), sid
    store.maintain()
    store.maintain()  # a second run finds nothing to merge and changes nothing
    got = states(store, ids)
    for sid in ids:
        assert got[sid].equals(want[sid]), sid
        assert streamed(store, sid).equals(want[sid]), sid
    for eid, h in histories(store).items():
        assert h.equals(hist[eid]), eid
    assert store.top_k(SRC, ids[-1], "downloads", 3).collect().equals(top)


def scanned_files(lf: pl.LazyFrame) -> int:
    """How many files the Parquet scan of `lf`'s plan reads (Polars lists up to two and
    counts the rest as "... N other sources")."""
    plan = lf.explain()
    listed = re.search(r"SCAN \[([^\]]*)\]", plan)
    assert listed is not None, plan
    names = listed.group(1)
    more = re.search(r"\.\.\. (\d+) other sources", names)
    return names.count(".parquet") + (int(more.group(1)) if more else 0)


def test_a_read_after_maintain_scans_only_files_of_its_window(
    filled: tuple[Store, list[int]],
) -> None:
    store, ids = filled
    store.maintain()
    for rel, flag in ((ATTRS, "attributes"), (COUNTERS, "counters")):
        kf = keyframes(store, flag)
        w = maintenance.window_of(kf, ids[-1])
        mine = [f for f in files(store, rel) if maintenance.window_of(kf, f.lo or 0) == w]
        scan = window(
            pl.scan_delta(DeltaTable(store._core.tables.uri(rel))), SRC, ids[-1], ids, kf[w]
        )
        assert scanned_files(scan) == len(mine) < len(files(store, rel)), rel


def test_a_store_compacted_across_windows_is_split_back(filled: tuple[Store, list[int]]) -> None:
    # the old maintain bin-packed every file of a source into one: the next maintain splits
    # such files by window
    store, ids = filled
    want = states(store, ids)
    for rel in (ATTRS, COUNTERS):
        DeltaTable(store._core.tables.uri(rel)).optimize.compact()
        assert len(files(store, rel)) == 1
    store.maintain()
    for rel, flag in ((ATTRS, "attributes"), (COUNTERS, "counters")):
        spans = windows_of_files(store, rel, flag)
        assert all(a == b for a, b in spans) and len(spans) > 1, (rel, spans)
    got = states(store, ids)
    assert all(got[sid].equals(want[sid]) for sid in ids)


def test_two_compactions_of_the_same_files_commit_once(filled: tuple[Store, list[int]]) -> None:
    store, ids = filled
    want = states(store, ids)
    first = maintenance.prepare_compaction(store._core, COUNTERS, "counters", SRC)
    second = maintenance.prepare_compaction(store._core, COUNTERS, "counters", SRC)
    assert first is not None and second is not None
    first.commit()
    with pytest.raises(CommitFailedError):
        second.commit()  # without the txn, delta-rs commits it and every row doubles
    second.discard()
    got = states(store, ids)
    assert all(got[sid].equals(want[sid]) for sid in ids)
    fs = second.fs
    assert all(fs.get_file_info(a.path).size is None for a in second.adds)  # deleted


def test_a_snapshot_written_while_a_compaction_runs_survives_it(
    filled: tuple[Store, list[int]],
) -> None:
    store, ids = filled
    job = maintenance.prepare_compaction(store._core, ATTRS, "attributes", SRC)
    job2 = maintenance.prepare_compaction(store._core, COUNTERS, "counters", SRC)
    assert job is not None and job2 is not None
    ids.append(write_snapshot(store, SRC, listing(11), batch=3))
    want = states(store, ids)
    job.commit()
    job2.commit()
    got = states(store, ids)
    assert all(got[sid].equals(want[sid]) for sid in ids)
    assert got[ids[-1]].height == len(listing(11))


def test_a_custom_table_that_gained_a_column_compacts_per_window(tmp_path: Path) -> None:
    # custom tables are not partitioned (files at the table root) and gain columns: the
    # merged file of a window mixes files with and without the new column
    store = Store.open(str(tmp_path / "store"), keyframe_every=3)
    src = "custom:foo"
    for d in range(8):
        rows = [
            {
                "entity_id": f"e{i}",
                "v": i + (d if i % 3 == 0 else 0),
                "s": f"x{(i + d) // 5}",
                **({"extra": [d, i]} if d >= 4 and i % 2 else {}),
            }
            for i in range(10)
            if not (i == 2 and d in (3, 4))
        ]
        write_snapshot(store, src, rows, batch=4)
    ids = store._core.catalog.complete_ids(src)
    want = {s: store.as_of(src, s).collect().sort("entity_id") for s in ids}
    n_before = len(files(store, "custom/foo"))
    store.maintain()
    kf = store._core.catalog.keyframes(src, "attributes")
    after = files(store, "custom/foo")
    assert len(kf) >= 2 and len(after) < n_before
    assert all(
        maintenance.window_of(kf, f.lo or 0) == maintenance.window_of(kf, f.hi or 0) for f in after
    )
    for s in ids:
        assert store.as_of(src, s).collect().sort("entity_id").equals(want[s]), s


def test_the_plan_keeps_keyframe_files_and_merges_only_what_it_must() -> None:
    def f(name: str, lo: int | None, hi: int | None) -> maintenance.DataFile:
        return maintenance.DataFile(name, 1, lo, hi, {"source": SRC})

    kf = [1, 5, 9]
    files = [f("k1", 1, 1), f("c2", 2, 2), f("c3", 3, 4), f("k5", 5, 5), f("c6", 6, 6)]
    files += [f("k9", 9, 9), f("c10", 10, 10), f("c11", 11, 11)]
    plan = maintenance.plan_windows(files, kf)
    # window 0 has two change files, window 1 one (left alone), window 2 two
    assert {w: [x.path for x in fs] for w, fs in plan.windows.items()} == {
        0: ["c2", "c3"],
        2: ["c10", "c11"],
    }
    assert not plan.spanning
    # a file across windows 0-1 is split: both windows are rewritten, keyframe files kept
    plan = maintenance.plan_windows([*files, f("old", 2, 7)], kf)
    assert [x.path for x in plan.spanning] == ["old"]
    assert sorted(plan.windows) == [0, 1, 2]
    assert {x.path for x in plan.removed()} == {"c2", "c3", "c6", "c10", "c11", "old"}
    # a file without statistics may hold any window: every window is rewritten
    plan = maintenance.plan_windows([f("k1", 1, 1), f("c2", 2, 2), f("x", None, None)], kf)
    assert sorted(plan.windows) == [-1, 0, 1, 2]
    assert {x.path for x in plan.removed()} == {"c2", "x"}
    # nothing to merge: one change file per window
    assert not maintenance.plan_windows([f("k1", 1, 1), f("c2", 2, 4)], kf).windows
