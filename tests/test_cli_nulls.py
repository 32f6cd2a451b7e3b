"""Issue 16, point 8: what is left out is said (top's nulls, turnover's single snapshot,
--renames-as-churn without names)."""

from __future__ import annotations

from pathlib import Path

import pytest

from analytics import turnover
from analytics.errors import NotEnoughData
from storage import Store
from tests.storage.conftest import day, repo, write_snapshot
from tests.storage.test_cli_store import hub


def test_top_says_how_many_had_no_value(tmp_path: Path) -> None:
    root = tmp_path / "s"
    store = Store.open(str(root))
    rows = [repo(1, downloads=5), repo(2, downloads=None), repo(3), repo(4, downloads=9)]
    write_snapshot(store, "hub:model", rows, at=day(1))
    res = hub(root, "top", "hub:model", "--by", "downloads", "--format", "json")
    assert res.returncode == 0, res.stderr
    assert "2 entities of hub:model have no downloads (null) and are not ranked" in res.stderr
    assert res.stdout.count('"entity_id"') == 2


def test_turnover_of_one_snapshot_says_there_is_nothing_to_compare(tmp_path: Path) -> None:
    root = tmp_path / "s"
    store = Store.open(str(root))
    write_snapshot(store, "npm", [{"entity_id": "a", "downloads": 1}], at=day(1))
    with pytest.raises(NotEnoughData, match=r"nothing to compare: 'npm' has one complete"):
        turnover(store, "npm", k=1)
    res = hub(root, "turnover", "npm", "--k", "1")
    assert res.returncode == 1
    assert "nothing to compare" in res.stderr and "[]" not in res.stdout


def test_renames_as_churn_without_names_refuses(tmp_path: Path) -> None:
    store = Store.open(str(tmp_path / "s"))
    for d in (1, 2):
        w = store.begin_snapshot("custom:pkgs", as_of=day(d))
        w.write_batch(0, [{"entity_id": f"p{i}", "downloads": i + d} for i in range(3)])
        w.finish("complete")
    with pytest.raises(ValueError, match="has no name column"):
        turnover(store, "custom:pkgs", k=2, by="downloads", renames_as_churn=True)
    # without the flag: entities are their ids, 2 of 2 remained
    assert turnover(store, "custom:pkgs", k=2, by="downloads")["remained"].to_list() == [2]
