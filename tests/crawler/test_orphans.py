"""No orphan `running` rows: a real `hubtide crawl` process SIGKILLed mid-crawl, then
another crawl of the same source (real simulator, real store in tmp, real processes).
By default the new crawl resumes the orphan; with `--no-resume` it marks the orphan failed
with a reason and starts afresh. Either way no row is left `running`.

In-process: a crawl whose snapshot stayed `running` (its finish refused, as on a full
disk) leaves an orphan that the next crawl in the same process finds, and a live writer
(heartbeats fresh, its process alive) is left alone."""

from __future__ import annotations

import asyncio
import os
import subprocess
from pathlib import Path

import polars as pl
import pytest

from crawler import crawl_source
from crawler.budget import reset_budgets
from crawler.heartbeat import HOST, orphan_reason
from crawler.stats import CrawlStats
from simulator.testing import running_simulator
from storage import Store
from tests.crawler.test_kill_resume import _crawl, _env, _kill_after
from tests.crawler.truth import settings_for


def _catalog(store: Path) -> pl.DataFrame:
    return Store.open(str(store)).snapshots("hub:model", all_statuses=True).sort("snapshot_id")


def _killed_then(store: Path, *extra: str) -> pl.DataFrame:
    """SIGKILL a crawl after 2 batches, run `hubtide crawl *extra`; the catalog after."""
    with running_simulator(seed=7, models=300, datasets=5, spaces=5, page_size=20) as url:
        _kill_after(store, url, 2)
        assert _catalog(store)["status"].to_list() == ["running"]  # the kill left it so
        beat = Store.open(str(store)).last_heartbeat("hub:model", 1)
        assert beat is not None and beat.host == HOST and beat.pid != os.getpid()
        res = subprocess.run(
            _crawl(store, url, *extra), env=_env(), capture_output=True, text=True, timeout=300
        )
    assert res.returncode == 0, res.stdout + res.stderr
    return _catalog(store)


@pytest.mark.slow
def test_sigkill_then_crawl_resumes_the_orphan(tmp_path: Path) -> None:
    cat = _killed_then(tmp_path / "store")
    assert cat["status"].to_list() == ["complete"]  # snapshot 1 resumed, no second one


@pytest.mark.slow
def test_sigkill_then_no_resume_marks_the_orphan_failed(tmp_path: Path) -> None:
    cat = _killed_then(tmp_path / "store", "--no-resume")
    assert cat["status"].to_list() == ["failed", "complete"]
    msg = cat["message"][0]
    assert "orphaned and not resumed (--no-resume)" in msg and "is gone" in msg, msg


def test_orphan_of_this_process_and_a_live_writer(tmp_path: Path) -> None:
    store = Store.open(str(tmp_path / "store"))
    # a live writer: begun and beating from a process that exists (this one, writing)
    w = store.begin_snapshot("hub:model")
    store.heartbeat("hub:model", w.snapshot_id, w.run_id, host=HOST, pid=os.getppid())
    assert orphan_reason(store, "hub:model", 30.0) is None
    # the same beat from another host, long silent: an orphan by age
    store.heartbeat("hub:model", w.snapshot_id, w.run_id, host="elsewhere", pid=1)
    assert orphan_reason(store, "hub:model", 30.0) is None  # fresh
    reason = orphan_reason(store, "hub:model", 0.001)
    assert reason is not None and "no heartbeat from pid 1 on elsewhere" in reason
    # this process, no crawl of it writing the snapshot: an orphan at once
    store.heartbeat("hub:model", w.snapshot_id, w.run_id, host=HOST, pid=os.getpid())
    reason = orphan_reason(store, "hub:model", 30.0)
    assert reason is not None and "no crawl of this process" in reason
    with running_simulator(seed=7, models=60) as url:
        reset_budgets()
        s = settings_for(url)
        res = asyncio.run(crawl_source(store, "hub:model", s, resume=False, stats=CrawlStats()))
    assert res.status == "complete"
    cat = store.snapshots("hub:model", all_statuses=True).sort("snapshot_id")
    assert cat["status"].to_list() == ["failed", "complete"]
    assert "no crawl of this process" in cat["message"][0]
