"""M2 turnover on a hand-made world, against sets worked out by hand."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from analytics import compute_measure, turnover
from analytics.errors import NotEnoughData
from storage import Store
from tests.analytics.world import day, hub, snapshot


def _world(tmp_path: Path) -> Store:
    store = Store.open(str(tmp_path / "store"))
    d = {
        1: {"A": 100, "B": 90, "C": 80, "D": 70, "E": 60},
        2: {"A": 100, "D": 95, "E": 85, "B": 10, "C": 5},
        3: {"B": 200, "C": 150, "A": 120, "D": 50, "E": 40},
        4: {"F": 500, "B": 210, "G": 190, "A": 30, "C": 20, "D": 10, "E": 1},
    }
    for n, downloads in d.items():
        rows = []
        for eid, dl in downloads.items():
            name = "org/B2" if (eid == "B" and n == 4) else None  # B is renamed in snapshot 4
            rows.append(hub(eid, name, downloads=dl, likes=dl // 10))
        snapshot(store, "hub:model", day(7 * n), rows)
    return store


def test_turnover_by_entity_matches_hand_counts(tmp_path: Path) -> None:
    store = _world(tmp_path)
    df = turnover(store, "hub:model", k=3)
    assert df.columns == [
        "snapshot_id", "as_of", "remained", "newcomers", "returning", "left", "distinct_ever",
    ]  # fmt: skip
    got = df.select("remained", "newcomers", "returning", "left", "distinct_ever").rows()
    assert got == [(1, 2, 0, 2, 5), (1, 0, 2, 2, 5), (1, 2, 0, 2, 7)]


def test_renames_as_churn_counts_the_rename_as_left_and_newcomer(tmp_path: Path) -> None:
    store = _world(tmp_path)
    df = turnover(store, "hub:model", k=3, renames_as_churn=True)
    assert df.row(2)[2:] == (0, 3, 0, 3, 8)


def test_lifespan_survival_and_rank_correlation(tmp_path: Path) -> None:
    store = _world(tmp_path)
    life = compute_measure(store, "topk_lifespan", source="hub:model", params={"k": 3})
    by = {r["entity"]: r for r in life.to_dicts()}
    # A: in top-3 at snapshots 1,2,3 -> one spell of 3; B: 1, 3, 4 -> spells [1], [3,4]
    assert (by["A"]["snapshots_in_topk"], by["A"]["longest_spell"], by["A"]["spells"]) == (3, 3, 1)
    assert (by["B"]["snapshots_in_topk"], by["B"]["longest_spell"], by["B"]["spells"]) == (3, 2, 2)
    assert by["F"]["in_topk_now"] and not by["A"]["in_topk_now"]
    surv = compute_measure(store, "topk_survival", source="hub:model", params={"k": 3})
    # spells: A[3,ended] B[1,ended] B[2,cens] C[1,e] C[1,e] D[1,e] E[1,e] F[1,c] G[1,c]
    # t=1: at risk 9, ended at 1: B,C,C,D,E = 5 -> S = 4/9
    s1 = surv.filter(pl.col("snapshots") == 1)["survival"][0]
    assert s1 == pytest.approx(4 / 9)
    # t=2: at risk A, B(2) = 2; ended at 2: none -> 4/9 ; t=3: at risk A; A ended -> 0
    assert surv.filter(pl.col("snapshots") == 3)["survival"][0] == pytest.approx(0.0)
    rc = compute_measure(store, "rank_correlation", source="hub:model", params={"k": 5})
    # snapshots 1->2 over all 5: ranks A1 B2 C3 D4 E5 -> A1 D2 E3 B4 C5
    from scipy import stats

    exp = stats.spearmanr([1, 2, 3, 4, 5], [1, 4, 5, 2, 3]).statistic
    assert rc["spearman"][0] == pytest.approx(exp)
    assert rc["kendall"][0] == pytest.approx(
        stats.kendalltau([1, 2, 3, 4, 5], [1, 4, 5, 2, 3]).statistic
    )


def test_per_interval_skips_snapshots_inside_an_interval(tmp_path: Path) -> None:
    store = _world(tmp_path)
    df = compute_measure(
        store, "turnover_interval", source="hub:model", params={"k": 3, "interval_days": 14}
    )
    # boundaries day 7, 21, 35 -> snapshots 1 (day 7), 3 (day 21), 4 (day 28 <= 35)
    assert df["previous_snapshot_id"].to_list() == [1, 3]
    # 1 -> 3: {A,B,C} -> {B,C,A}: all remained
    assert df.row(0, named=True)["remained"] == 3


def test_one_snapshot_is_not_enough(tmp_path: Path) -> None:
    store = Store.open(str(tmp_path / "s"))
    snapshot(store, "npm", day(1), [])
    with pytest.raises(NotEnoughData):
        compute_measure(store, "turnover", source="npm")
