"""The report never fails on thin stores, states "not enough data", and writes every table."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from analytics import write_report
from storage import Store
from tests.analytics.world import day, hub, pkg, snapshot


def test_report_on_empty_and_single_snapshot_stores(tmp_path: Path) -> None:
    store = Store.open(str(tmp_path / "s"))
    page = write_report(store, tmp_path / "r0")
    assert page.exists() and "hubtide" in page.read_text()
    snapshot(store, "npm", day(1), [pkg("a", downloads=5), pkg("b", downloads=1)])
    snapshot(store, "hub:dataset", day(1), [])  # a complete but empty listing
    snapshot(store, "hub:model", day(1), [hub("m", downloads=3)])  # no detail tables at all
    page = write_report(store, tmp_path / "r1")
    html = page.read_text()
    assert "not enough data" in html
    assert "failed:" not in html, [
        line for line in html.split("<p class=note>") if line.startswith("failed")
    ][:3]
    assert (tmp_path / "r1" / "tables" / "growth__npm.csv").exists()
    assert (tmp_path / "r1" / "tables" / "freshness.parquet").exists()
    fresh = pl.read_parquet(tmp_path / "r1" / "tables" / "freshness.parquet")
    assert set(fresh["source"]) == {"npm", "hub:dataset", "hub:model"}


def test_report_on_paper_world_has_every_measure(paper_store: Store, tmp_path: Path) -> None:
    page = write_report(paper_store, tmp_path / "r", params={"group_n": 2})
    html = page.read_text()
    assert html.count("plotly.js v") == 1  # the bundle is inlined once: the page opens offline
    assert "<script src=" not in html
    assert "failed:" not in html
    timings = pl.read_csv(tmp_path / "r" / "tables" / "timings.csv")
    ok = set(timings.filter(pl.col("status") == "ok")["measure"])
    for name in (
        "turnover",
        "library_preservation",
        "documentation",
        "collaboration_kcore",
        "adoption",
        "churn",
    ):
        assert name in ok
    assert (tmp_path / "r" / "tables" / "collaboration_kcore__hub-model.parquet").exists()
    with pytest.raises(ValueError, match="unknown source"):
        write_report(paper_store, tmp_path / "x", sources=["pypi"])
