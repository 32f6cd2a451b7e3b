"""`hubtide crawl` as a user runs it: a real process against a real simulator."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from simulator.testing import running_simulator
from storage import Store


def test_crawl_command_writes_complete_snapshots_and_exits(tmp_path: Path) -> None:
    store = tmp_path / "store"
    env = {**os.environ, "HF_TOKEN": "hf_not_a_real_token_but_secret_0000", "COLUMNS": "160"}
    with running_simulator(seed=5, models=120, datasets=30, spaces=30, npm=50, pypi=50) as url:
        res = subprocess.run(
            [sys.executable, "-m", "hubtide", "--store", str(store), "crawl", "--endpoint", url,
             "--source", "hub:model", "--source", "npm", "--no-progress"],
            capture_output=True, text=True, env=env, timeout=180,
        )  # fmt: skip
    assert res.returncode == 0, res.stdout + res.stderr
    assert "crawl summary" in res.stdout
    snaps = Store.open(str(store)).snapshots()
    assert sorted(snaps["source"].to_list()) == ["hub:model", "npm"]
    assert set(snaps["status"].to_list()) == {"complete"}
    # the token went to the Hub, but never into output, events or the store's files
    assert "real_token_but_secret" not in res.stdout + res.stderr
    events = Store.open(str(store)).events().collect()
    for col in ("reason", "url", "payload"):
        assert not any("real_token_but_secret" in (v or "") for v in events[col].to_list())
    for path in store.rglob("*"):  # uncompressed parts (logs, catalog JSON)
        if path.is_file():
            assert b"real_token_but_secret" not in path.read_bytes(), path


def test_crawl_command_rejects_an_unknown_source(tmp_path: Path) -> None:
    res = subprocess.run(
        [sys.executable, "-m", "hubtide", "--store", str(tmp_path), "crawl", "--source", "hub:modle"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert res.returncode != 0
    assert "hub:modle" in res.stderr + res.stdout


def test_crawl_summary_speaks_json(tmp_path: Path) -> None:
    import json

    with running_simulator(seed=6, models=30, datasets=5, spaces=5, npm=10, pypi=5) as url:
        res = subprocess.run(
            [sys.executable, "-m", "hubtide", "--store", str(tmp_path / "store"), "crawl",
             "--endpoint", url, "--source", "npm", "--format", "json"],
            capture_output=True, text=True, timeout=180,
        )  # fmt: skip
    assert res.returncode == 0, res.stdout + res.stderr
    (row,) = json.loads(res.stdout)
    assert row["source"] == "npm" and row["status"] == "complete" and row["items"] == 10
