"""Measures computed once (issue 18 point 1): `analyze` stores every measure's result per
complete snapshot in derived/measures, a re-run writes nothing, a version bump recomputes
only that measure, a failing measure is counted while the others are stored, and readers
(`compute_measure`, `hubtide measure`) use the stored result.

Real Delta tables on the hand-made paper world (tests/analytics/world.py).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from analytics import compute_measure
from analytics.catalog import Measure, registry
from analytics.data import Data
from analytics.errors import NotEnoughData
from analytics.params import Params
from analytics.stored import TABLE, analyze, params_digest
from storage import DerivedFrame, Store
from tests.analytics.test_cli import run
from tests.analytics.test_turnover import _world
from tests.analytics.world import paper_world


@pytest.fixture(scope="module")
def analyzed(tmp_path_factory: pytest.TempPathFactory) -> Store:
    store = paper_world(Store.open(str(tmp_path_factory.mktemp("stored") / "store")))
    summary = analyze(store)
    assert summary.failures == {}
    assert summary.written == summary.keys > 0
    return store


def _version(store: Store) -> int:
    dt = store._core.tables.must(TABLE)
    return int(dt.version())


def test_stored_results_equal_the_computation_from_scratch(analyzed: Store) -> None:
    index = analyzed.derived_index(TABLE)
    measures = registry()
    digest = params_digest(Params())
    seen_kinds = set()
    for row in index.iter_rows(named=True):
        m = measures[row["name"]]
        seen_kinds.add(m.kind)
        key = DerivedFrame(
            row["source"], row["snapshot_id"], m.name, m.version, digest, None, status="empty"
        )
        stored = analyzed.read_derived(TABLE, key)
        assert stored is not None
        fresh = Data(analyzed)  # a new Data: nothing memoised from the analyze run
        if stored.status == "empty":
            with pytest.raises(NotEnoughData):
                m.run(fresh, row["source"], row["snapshot_id"])
            continue
        at = None if m.kind == "series" else row["snapshot_id"]
        expect = m.run(fresh, row["source"], at)
        assert stored.frame is not None
        # some measures leave the order of tied rows open: the same rows, any order
        assert_frame_equal(stored.frame, expect, check_row_order=False)
    assert seen_kinds == {"snapshot", "series"}
    # every snapshot of a snapshot measure, the newest of a series one
    snaps = {s: analyzed.snapshots(s)["snapshot_id"].to_list() for s in analyzed.sources()}
    growth = index.filter(pl.col("name") == "growth_monthly", pl.col("source") == "hub:model")
    assert growth["snapshot_id"].to_list() == snaps["hub:model"]
    churn = index.filter(pl.col("name") == "churn", pl.col("source") == "hub:model")
    assert churn["snapshot_id"].to_list() == [max(snaps["hub:model"])]


def test_a_rerun_writes_nothing(analyzed: Store) -> None:
    before = _version(analyzed)
    rows = analyzed.derived_index(TABLE).height
    summary = analyze(analyzed)
    assert (summary.written, summary.already) == (0, summary.keys)
    assert summary.seconds == {}  # nothing was even computed
    assert _version(analyzed) == before
    assert analyzed.derived_index(TABLE).height == rows


def test_a_version_bump_recomputes_only_that_measure(tmp_path: Path) -> None:
    store = _world(tmp_path)
    assert analyze(store).failures == {}
    cat = registry()
    keys_of_growth = analyze(store, measures=["growth_monthly"]).keys
    assert keys_of_growth == 4  # one per complete snapshot
    cat["growth_monthly"] = replace(cat["growth_monthly"], version=7)
    summary = analyze(store, catalog=cat)
    assert summary.written == keys_of_growth
    assert set(summary.seconds) == {"growth_monthly"}
    index = store.derived_index(TABLE)
    v7 = index.filter(pl.col("version") == 7)
    assert set(v7["name"]) == {"growth_monthly"} and v7.height == 4
    # the old rows stay (a reader of version 1 still finds them); nothing else changed
    assert index.filter(pl.col("name") == "growth_monthly", pl.col("version") == 1).height == 4
    assert analyze(store, catalog=cat).written == 0


def test_a_failing_measure_is_counted_and_the_others_are_stored(tmp_path: Path) -> None:
    store = _world(tmp_path)

    def boom(data: Data, source: str, at: object = None) -> pl.DataFrame:
        raise RuntimeError("measure exploded")

    cat = registry()
    cat["broken"] = Measure(
        "broken", "longitudinal", "snapshot", ("*",), boom, "always fails", "Fails."
    )
    summary = analyze(store, catalog=cat)
    assert summary.failed_measures == {"broken": 4}
    assert all("measure exploded" in why for why in summary.failures.values())
    index = store.derived_index(TABLE)
    assert "broken" not in set(index["name"])
    assert {"growth", "growth_monthly", "turnover", "churn"} <= set(index["name"])
    # the failed keys are not stored: the next run tries them again, and only them
    again = analyze(store, catalog=cat)
    assert again.failed_measures == {"broken": 4} and again.written == 0


def test_resumable_only_missing_keys_are_computed(tmp_path: Path) -> None:
    store = _world(tmp_path)
    first = analyze(store, sources=["hub:model"], measures=["growth_monthly", "turnover"])
    assert first.written == 5  # 4 snapshots + the series at the newest
    rest = analyze(store)
    assert rest.already == 5 and rest.written == rest.keys - 5
    assert "growth_monthly" not in rest.seconds and "turnover" not in rest.seconds
    # every stored row, no doubles, is in SQL too
    n = store.sql().execute("SELECT count(*) FROM derived_measures").fetchone()
    assert n == (rest.keys,)


def test_readers_use_the_stored_result_and_say_when_they_compute(tmp_path: Path) -> None:
    store = _world(tmp_path)
    flag: list[bool] = []
    computed = compute_measure(store, "growth", source="hub:model", stored=flag)
    assert flag == [False]
    analyze(store, measures=["growth"])
    flag.clear()
    read = compute_measure(store, "growth", source="hub:model", stored=flag)
    assert flag == [True]
    assert_frame_equal(read, computed)
    # other parameters are another key: computed, not read
    flag.clear()
    compute_measure(store, "growth", source="hub:model", params={"k": 3}, stored=flag)
    assert flag == [False]

    res = run("--store", str(tmp_path / "store"), "measure", "churn", "--source", "hub:model")
    assert res.returncode == 0 and "computed now" in res.stderr
    res = run("--store", str(tmp_path / "store"), "analyze", "--measure", "churn")
    assert res.returncode == 0, res.stderr
    assert "1 written" in res.stderr and "churn" in res.stdout
    res = run("--store", str(tmp_path / "store"), "measure", "churn", "--source", "hub:model")
    assert res.returncode == 0 and "computed now" not in res.stderr
    res = run("--store", str(tmp_path / "store"), "analyze", "--measure", "churn")
    assert res.returncode == 0 and "0 computed" in res.stderr and "1 already stored" in res.stderr
    res = run("--store", str(tmp_path / "store"), "analyze", "--measure", "concentration")
    assert res.returncode == 0, res.stderr  # 4 snapshots' rows, then the series from them
    assert "series of per-snapshot rows: 4 snapshots' rows computed, 0 read back" in res.stderr
    res = run("--store", str(tmp_path / "store"), "analyze", "--measure", "nope")
    assert res.returncode == 1 and "unknown measure 'nope'" in res.stderr
    res = run("--store", str(tmp_path / "store"), "analyze", "--source", "npm")
    assert (
        res.returncode == 1 and "unknown source 'npm'" in res.stderr and "hub:model" in res.stderr
    )


def test_the_report_reads_the_stored_results(analyzed: Store, tmp_path: Path) -> None:
    from analytics import write_report

    write_report(analyzed, tmp_path / "r")
    timings = pl.read_csv(tmp_path / "r" / "tables" / "timings.csv")
    ok = timings.filter(pl.col("status") == "ok")
    assert ok.height > 20
    assert set(ok["result"]) == {"stored"}
    # other parameters are other keys: the report computes them and says so
    write_report(analyzed, tmp_path / "k", params={"k": 2})
    other = pl.read_csv(tmp_path / "k" / "tables" / "timings.csv")
    assert set(other.filter(pl.col("status") == "ok")["result"]) == {"computed"}
    assert "computed now" in (tmp_path / "k" / "index.html").read_text()


def test_a_series_with_an_update_carries_its_previous_result_forward(tmp_path: Path) -> None:
    from tests.analytics.world import day, hub, snapshot

    store = _world(tmp_path)
    carried = ["growth", "churn", "rank_correlation"]
    first = analyze(store, measures=carried)
    assert (first.written, first.updated) == (3, 0)
    rows = [hub(e, downloads=d) for e, d in (("A", 5), ("B", 4), ("Z", 1))]
    sid = snapshot(store, "hub:model", day(60), rows)
    second = analyze(store, measures=carried)
    assert (second.written, second.updated) == (3, 3)
    for name in carried:
        key = DerivedFrame("hub:model", sid, name, 1, params_digest(Params()), None, "empty")
        got = store.read_derived(TABLE, key)
        assert got is not None and got.frame is not None
        assert_frame_equal(got.frame, registry()[name].run(Data(store), "hub:model"))
        if name == "growth":
            assert got.frame["entities"].to_list() == [5, 5, 5, 7, 3]
        elif name == "churn":  # the new pair: F, G, C, D, E gone, Z new
            last = got.frame.row(-1, named=True)
            assert (last["previous_snapshot_id"], last["created"], last["deleted"]) == (4, 1, 5)
    # a series without one says why it is computed anew
    assert registry()["growth"].recompute_reason is None
    assert registry()["turnover"].recompute_reason is None  # per-snapshot top-K rows
    assert "newest snapshot" in (registry()["trajectories"].recompute_reason or "")
    assert registry()["concentration"].recompute_reason is None  # per-snapshot rows


@pytest.mark.slow
def test_a_killed_analyze_redoes_only_the_missing_keys(tmp_path: Path) -> None:
    import os
    import signal
    import subprocess
    import sys
    import time

    root = tmp_path / "store"
    store = paper_world(Store.open(str(root)))
    log = root / "derived" / "measures" / "_delta_log"
    proc = subprocess.Popen(
        [sys.executable, "-m", "hubtide", "--store", str(root), "analyze"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 120
    # the table's creation is commit 0; kill once the first results (commit 1) are in
    while not (log / f"{1:020d}.json").exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, "analyze ended before it could be killed"
    done_before = store.derived_index(TABLE).height
    summary = analyze(store)
    assert 0 < done_before == summary.already < summary.keys
    assert summary.written == summary.keys - done_before and summary.failures == {}
    index = store.derived_index(TABLE)
    assert index.height == summary.keys
    assert (
        index.select("source", "snapshot_id", "name", "version", "params").is_duplicated().sum()
        == 0
    )


def test_newest_only_stores_each_source_newest_snapshot(tmp_path: Path) -> None:
    store = _world(tmp_path)
    summary = analyze(store, newest=True)
    assert summary.failures == {} and summary.written == summary.keys > 0
    index = store.derived_index(TABLE)
    newest = {s: int(store.snapshots(s)["snapshot_id"].max()) for s in store.sources()}  # type: ignore[arg-type]
    assert {(r["source"], r["snapshot_id"]) for r in index.iter_rows(named=True)} == set(
        newest.items()
    )
    # the full catch-up then computes only the older snapshots' snapshot measures
    rest = analyze(store)
    assert rest.already == summary.keys and rest.written > 0
    assert all(registry()[n].kind == "snapshot" for n in rest.seconds), (
        "series were stored at the newest already"
    )


def test_the_report_from_scratch_ignores_stored_results_and_gives_the_same_tables(
    analyzed: Store, tmp_path: Path
) -> None:
    from analytics import write_report

    write_report(analyzed, tmp_path / "stored")
    write_report(analyzed, tmp_path / "scratch", stored=False)
    timings = pl.read_csv(tmp_path / "scratch" / "tables" / "timings.csv")
    assert set(timings["result"]) == {"computed"}
    names = sorted(p.name for p in (tmp_path / "stored" / "tables").glob("*.parquet"))
    assert names == sorted(p.name for p in (tmp_path / "scratch" / "tables").glob("*.parquet"))
    assert len(names) > 20
    for name in names:
        if name not in ("timings.parquet", "freshness.parquet"):  # seconds; ages by the clock
            a = pl.read_parquet(tmp_path / "stored" / "tables" / name)
            b = pl.read_parquet(tmp_path / "scratch" / "tables" / name)
            assert_frame_equal(a, b, check_row_order=False)


def test_a_state_cache_over_its_byte_budget_keeps_what_it_holds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import analytics.data as data_mod

    analyzed = _world(tmp_path)
    ids = analyzed.snapshots("hub:model")["snapshot_id"].to_list()
    assert len(ids) >= 3
    first = Data(analyzed).state("hub:model", ids[0], ["name", "downloads"])
    monkeypatch.setattr(data_mod, "STATE_CACHE_BYTES", int(first.estimated_size()) + 1)
    d = Data(analyzed)
    got = [d.state("hub:model", sid, ["name", "downloads"]) for sid in ids]
    assert len(d._states) == 1  # the first state fits, the others are used and dropped
    assert next(iter(d._states))[1] == ids[0]
    unbounded = Data(analyzed)
    for sid, frame in zip(ids, got, strict=True):
        assert_frame_equal(frame, unbounded.state("hub:model", sid, ["name", "downloads"]))
    # a measure over every snapshot gives the same frame either way
    for name in ("concentration", "turnover", "churn"):
        assert_frame_equal(
            registry()[name].run(Data(analyzed), "hub:model"),
            registry()[name].run(unbounded, "hub:model"),
        )


def test_a_rows_series_computes_only_the_new_snapshots_rows_and_equals_scratch(
    tmp_path: Path,
) -> None:
    """A catch-up over 7 snapshots, then the daemon's pace: a snapshot arrives, `analyze`
    runs. A series of per-snapshot rows computes the catch-up's sample and then only the
    new snapshot's rows (its sample is stable: every snapshot it later visits was visited
    before or is the new one), and its stored result is the frame computed from scratch,
    over the snapshots `sampled_positions` names."""
    from analytics.catalog import applies
    from analytics.data import sampled_positions
    from analytics.stored import ROWS, stored_frame
    from tests.analytics.world import _commit, day, hub, snapshot

    def add(i: int) -> None:
        downloads = {f"E{j}": (j * 37 + i * 11) % 50 for j in range(6)}
        rows = [hub(e, downloads=d, likes=d // 3, license="mit") for e, d in downloads.items()]
        commits = [
            _commit("E1", i, ["ann", "bob"], day(7 * i - 1)),
            _commit("E2", i, ["bob"], day(7 * i)),
        ]
        snapshot(store, "hub:model", day(7 * i), rows, {"commits": commits})

    store = _world(tmp_path)  # 4 snapshots
    for i in (5, 6, 7):
        add(i)
    params = Params.from_mapping({"series_max": 3, "people_series_max": 2})
    most = {"series": params.series_max, "people": params.people_series_max}
    cat = registry()
    names = [n for n, m in cat.items() if m.rows is not None and applies(m, "hub:model")]
    assert {"concentration", "activity_series", "collaboration_kcore_series"} <= set(names)
    first = analyze(store, sources=["hub:model"], measures=names, params=params)
    assert first.failures == {}
    sample = {k: len(sampled_positions(7, v)) for k, v in most.items()}  # 3 and 2 of 7
    sample["all"] = 7
    assert first.rows_computed == sum(sample[cat[n].sample] for n in names)
    for i in range(8, 15):
        add(i)
        s = analyze(store, sources=["hub:model"], measures=names, params=params)
        assert s.failures == {}
        assert (s.rows_computed, s.written) == (len(names), len(names))  # the new one's only
        fresh = Data(store, params)
        ids = fresh.snapshot_ids("hub:model")
        for name in names:
            m = cat[name]
            try:
                scratch = m.run(Data(store, params), "hub:model")
            except NotEnoughData:
                with pytest.raises(NotEnoughData):
                    stored_frame(store, m, fresh, "hub:model")
                continue
            got = stored_frame(store, m, fresh, "hub:model")
            assert got is not None
            assert_frame_equal(got, scratch)
        visited = store.derived_index(ROWS, name="concentration")["snapshot_id"].to_list()
        assert len(visited) == len(set(visited))  # a snapshot's rows are computed once, ever
        conc = stored_frame(store, cat["concentration"], fresh, "hub:model")
        assert conc is not None
        assert conc["snapshot_id"].to_list() == [
            ids[p] for p in sampled_positions(len(ids), most["series"])
        ]
        kc = stored_frame(store, cat["collaboration_kcore_series"], fresh, "hub:model")
        assert kc is not None
        people = [ids[p] for p in sampled_positions(len(ids), most["people"])]
        # the first four snapshots have no commits: no k-core rows
        assert sorted(set(kc["snapshot_id"])) == [i for i in people if i > 4]
