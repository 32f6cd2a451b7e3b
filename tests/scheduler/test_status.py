"""`hubtide status`: the report from a real store, its JSON, and the exit code on staleness."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from scheduler.plan import SourcePlan
from scheduler.status import collect_status
from storage import Store
from tests.scheduler.conftest import model


def _hubtide(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "hubtide", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **(env or {})},
    )


def test_fresh_store_passes_and_json_names_each_source(small_store: Store) -> None:
    env = {"HUBTIDE_SOURCES": "hub:model,npm", "HUBTIDE_DAEMON_LISTEN": "127.0.0.1:9"}
    res = _hubtide("--store", small_store.uri, "status", "--format", "json", env=env)
    assert res.returncode == 0, res.stderr
    doc = json.loads(res.stdout)
    assert doc["ok"] is True and doc["stale_sources"] == []
    by = {s["source"]: s for s in doc["sources"]}
    assert by["hub:model"]["last_snapshot_id"] == 3 and by["npm"]["last_snapshot_id"] == 2
    assert 0 <= by["hub:model"]["age_seconds"] < 3600
    assert doc["store_bytes"] > 0 and doc["store_files"] > 0
    # on disk: the live files plus the logs (and nothing a finish could reclaim)
    assert doc["store_disk_bytes"] > doc["store_bytes"]
    assert doc["daemon"].startswith("no daemon answering")


def test_stale_source_exits_non_zero(small_store: Store, tmp_path: Path) -> None:
    cfg = tmp_path / "h.toml"
    cfg.write_text('[sources."hub:model"]\nstale_after_seconds = 1\n')
    time.sleep(1.1)
    env = {"HUBTIDE_SOURCES": "hub:model,npm", "HUBTIDE_DAEMON_LISTEN": "127.0.0.1:9"}
    res = _hubtide("--config", str(cfg), "--store", small_store.uri, "status", env=env)
    assert res.returncode == 1, res.stdout + res.stderr
    assert "STALE" in res.stdout and "stale: hub:model" in res.stdout
    res = _hubtide(
        "--config", str(cfg), "--store", small_store.uri, "status", "--format", "json", env=env
    )
    assert res.returncode == 1
    assert json.loads(res.stdout)["stale_sources"] == ["hub:model"]


def test_never_crawled_source_is_stale_and_bad_format_is_a_usage_error(small_store: Store) -> None:
    env = {"HUBTIDE_SOURCES": "hub:model,pypi", "HUBTIDE_DAEMON_LISTEN": "127.0.0.1:9"}
    res = _hubtide("--store", small_store.uri, "status", "--format", "json", env=env)
    assert res.returncode == 1
    assert json.loads(res.stdout)["stale_sources"] == ["pypi"]
    res = _hubtide("--store", small_store.uri, "status", "--format", "yaml", env=env)
    assert res.returncode == 2 and "--format" in res.stderr


def test_running_and_failed_snapshots_show_up(tmp_path: Path) -> None:
    store = Store.open(str(tmp_path / "s"))
    w = store.begin_snapshot("hub:model")
    w.write_batch(0, [model(i, 0) for i in range(10)])
    w.finish("complete")
    bad = store.begin_snapshot("hub:model")
    bad.finish("failed", message="upstream 503 for 10 minutes")
    run = store.begin_snapshot("hub:model")
    run.write_batch(0, [model(i, 1) for i in range(5)])
    report = collect_status(store, [SourcePlan("hub:model", stale_after_seconds=3600)])
    (s,) = report.sources
    assert s.last_snapshot_id == 1 and not s.stale
    assert s.running is not None and s.running["snapshot_id"] == 3
    assert [(f["snapshot_id"], f["status"]) for f in report.recent_failures] == [(2, "failed")]
    assert report.recent_failures[0]["message"] == "upstream 503 for 10 minutes"
    # fresh (snapshot 1 is recent) but the newest finished crawl failed: not ok
    assert report.failing_sources == ["hub:model"] and not report.ok


def test_newest_partial_snapshot_exits_non_zero_until_a_complete_one(tmp_path: Path) -> None:
    store = Store.open(str(tmp_path / "s"))
    w = store.begin_snapshot("npm")
    w.finish("complete")
    store.begin_snapshot("npm").finish("partial", message="server outage")
    env = {"HUBTIDE_SOURCES": "npm", "HUBTIDE_DAEMON_LISTEN": "127.0.0.1:9"}
    res = _hubtide("--store", store.uri, "status", env=env)
    assert res.returncode == 1, res.stdout + res.stderr
    assert "FAILING" in res.stdout and "partial or failed: npm" in res.stdout
    res = _hubtide("--store", store.uri, "status", "--format", "json", env=env)
    doc = json.loads(res.stdout)
    assert res.returncode == 1 and doc["failing_sources"] == ["npm"] and doc["ok"] is False
    store.begin_snapshot("npm").finish("complete")
    res = _hubtide("--store", store.uri, "status", env=env)
    assert res.returncode == 0, res.stdout + res.stderr
