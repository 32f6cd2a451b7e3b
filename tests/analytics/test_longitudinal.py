"""Longitudinal measures on the paper world, checked against the store's own `changed`,
numpy and hand counts."""

from __future__ import annotations

import math

import numpy as np
import polars as pl
import pytest
from scipy import stats

from analytics import compute_measure
from analytics import stats as ast
from storage import Store


def test_churn_agrees_with_store_changed(paper_store: Store) -> None:
    df = compute_measure(paper_store, "churn", source="hub:model")
    row = df.row(0, named=True)
    ch = paper_store.changed("hub:model", 1, 2).collect()
    counts = dict(ch.group_by("change").len().iter_rows())
    assert (row["created"], row["deleted"], row["renamed"]) == (
        counts["created"], counts["deleted"], counts["renamed"],
    )  # fmt: skip
    assert (row["created"], row["deleted"], row["renamed"], row["updated"]) == (1, 1, 1, 1)
    assert row["share_updated"] == pytest.approx(1 / 6)


def test_growth_counts_and_fit(paper_store: Store) -> None:
    g = compute_measure(paper_store, "growth", source="hub:model")
    assert g["entities"].to_list() == [7, 7]
    assert g["fit_rate_per_day"][0] == pytest.approx(0.0)
    m = compute_measure(paper_store, "growth_monthly", source="hub:model")
    # created_at: two in Nov 2025 (day -40, -35), five in Dec 2025 (m6 deleted -> 4 live + m8 Jan)
    assert dict(zip(m["month"].dt.strftime("%Y-%m").to_list(), m["new"].to_list(), strict=True)) == {
        "2025-11": 2, "2025-12": 4, "2026-01": 1,
    }  # fmt: skip
    fit = ast.exp_fit(np.array([0.0, 10.0, 20.0]), np.array([100.0, 200.0, 400.0]))
    assert fit.doubling_days == pytest.approx(10.0) and fit.r2 == pytest.approx(1.0)


def test_concentration_series_matches_hand(paper_store: Store) -> None:
    c = compute_measure(paper_store, "concentration", source="hub:model")
    first = c.row(0, named=True)
    x = np.array([1000, 500, 100, 50, 10, 5, 1], dtype=float)
    assert first["total"] == x.sum()
    assert first["top1_share"] == pytest.approx(1000 / x.sum())  # ceil(1 % of 7) = 1 repo
    assert first["share_99"] == pytest.approx(4 / 7)  # 1000+500+100+50 = 1650 >= 1649.34
    assert c["snapshot_id"].to_list() == [1, 2]


def test_trajectories_follow_entities_through_renames(paper_store: Store) -> None:
    t = compute_measure(
        paper_store, "trajectories", source="hub:model", params={"entity": "u5/ft-e-v2"}
    )
    assert t["entity_id"].unique().to_list() == ["m7"]
    assert t["name"].to_list() == ["u5/ft-e", "u5/ft-e-v2"]
    # snapshot 2: ft-d (5) is gone and new (3) passes it -> still 7th of 7
    assert t["rank"].to_list() == [7, 7]
    with pytest.raises(ValueError, match="not live"):
        compute_measure(paper_store, "trajectories", source="hub:model", params={"entity": "nope"})


def test_maintenance_per_month(paper_store: Store) -> None:
    m = compute_measure(paper_store, "maintenance", source="hub:model")
    row = m.row(0, named=True)
    assert (row["commits"], row["repos_committed"]) == (11, 3)
    assert row["live_repos"] == 6  # created before 2026-01 and live at the newest snapshot
    assert row["commits_per_repo"] == pytest.approx(11 / 6)


def test_rank_correlation_and_series_helpers() -> None:
    c = ast.correlate(np.array([1, 2, 3, 4.0]), np.array([2, 4, 5, 9.0]))
    assert c.pearson == pytest.approx(stats.pearsonr([1, 2, 3, 4], [2, 4, 5, 9]).statistic)
    assert ast.correlate(np.array([1, 1, 1.0]), np.array([1, 2, 3.0])).pearson is None
    lz = ast.lorenz(np.array([1.0, 1.0, 1.0, 1.0]), points=5)
    assert lz["value_share"].to_list() == pytest.approx([0, 0.25, 0.5, 0.75, 1.0])
    cc = ast.ccdf(np.array([1.0, 2, 2, 4]))
    assert dict(zip(cc["value"].to_list(), cc["ccdf"].to_list(), strict=True)) == {
        1: 1.0,
        2: 0.75,
        4: 0.25,
    }
    assert not math.isnan(ast.gini(np.array([0.0, 0, 1])) or 0)
    assert pl.Series([1]).len() == 1
