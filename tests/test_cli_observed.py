"""`hubtide history` and `hubtide asof --max-staleness` over a store whose rows say when
they were observed (issue 16 point 2); through the real entry point, over a real store."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest

from storage import Store
from tests.storage.conftest import day, repo, write_snapshot
from tests.storage.test_cli_store import hub


@pytest.fixture
def root(tmp_path: Path) -> Path:
    path = tmp_path / "store"
    store = Store.open(str(path))
    write_snapshot(
        store,
        "hub:model",
        [
            repo(1, downloads=1, observed_at=day(0) + timedelta(minutes=3)),
            repo(2, downloads=1, observed_at=day(0) - timedelta(days=3)),
            repo(3, downloads=1),
        ],
        at=day(0),
    )
    write_snapshot(
        store,
        "hub:model",
        [repo(1, downloads=2, observed_at=day(1) + timedelta(minutes=4)), repo(2), repo(3)],
        at=day(1),
    )
    return path


def test_history_shows_when_each_change_was_observed(root: Path) -> None:
    res = hub(root, "history", "hub:model", "id1")
    assert res.returncode == 0, res.stderr
    header = next(line for line in res.stdout.splitlines() if "┃" in line)
    assert "observed_at" in header and "downloads" in header
    assert "2026-01-02 00:04" in res.stdout
    rows = json.loads(hub(root, "history", "hub:model", "id1", "--format", "json").stdout)
    assert [r["observed_at"] for r in rows] == [
        "2026-01-01T00:03:00+00:00",
        "2026-01-02T00:04:00+00:00",
    ]


def test_asof_max_staleness_leaves_out_stale_and_unknown_rows(root: Path) -> None:
    args = ("asof", "hub:model", "--at", "1", "--format", "json")
    res = hub(root, *args, "--max-staleness", "1d")
    assert res.returncode == 0, res.stderr
    assert [r["entity_id"] for r in json.loads(res.stdout)] == ["id1"]
    assert "2 rows left out" in res.stderr
    wide = json.loads(hub(root, *args, "--max-staleness", "4d").stdout)
    assert [r["entity_id"] for r in wide] == ["id1", "id2"]
    bad = hub(root, *args, "--max-staleness", "soon")
    assert bad.returncode == 1
    assert "--max-staleness 'soon'" in bad.stderr
