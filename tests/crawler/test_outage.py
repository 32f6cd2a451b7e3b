"""A total server outage (the simulator answering every request with a 5xx or dropping the
connection) ends a crawl `partial` within `crawler.max_outage_seconds`, not after every
retry of every request: a real simulator over HTTP, a real store in tmp, and `hubtide
crawl` as a process with the `HUBTIDE_CRAWLER_MAX_OUTAGE_SECONDS` override."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from crawler import crawl_source
from crawler.budget import reset_budgets
from crawler.stats import CrawlStats
from simulator.testing import running_simulator
from storage import Store
from tests.crawler.truth import settings_for

# back-off as the real defaults have it: 5 retries of 1, 2, 4, 8, 16 s (jittered) per
# request, so without the outage bound one failing request alone could take ~30 s
SLOW_RETRIES = {"backoff_base_seconds": 1.0, "backoff_max_seconds": 60.0, "max_retries": 5}


@pytest.mark.parametrize(
    ("source", "fault"),
    [("hub:model", "server_error"), ("npm", "server_error"), ("pypi", "drop")],
)
def test_total_outage_ends_partial_within_the_bound(
    tmp_path: Path, source: str, fault: str
) -> None:
    store = Store.open(str(tmp_path / "store"))
    with running_simulator(seed=3, models=60, npm=60, pypi=60, faults={fault: 1.0}) as url:
        reset_budgets()
        s = settings_for(url, max_outage_seconds=1.5, **SLOW_RETRIES)
        t0 = time.monotonic()
        res = asyncio.run(crawl_source(store, source, s, stats=CrawlStats()))
        took = time.monotonic() - t0
    assert res.status == "partial", res
    assert res.message is not None and "outage" in res.message, res.message
    assert "max_outage_seconds" in res.message
    assert took < 1.5 + 4.0, took  # the bound plus one timeout-free round, not 30 s
    snaps = store.snapshots(include_partial=True)
    assert snaps["status"].to_list() == ["partial"]
    kinds = store.events().collect()["kind"].to_list()
    assert kinds.count("outage") == 1  # one line saying why, not one per dropped request


def test_a_good_answer_ends_the_outage_clock(tmp_path: Path) -> None:
    """Faults that come and go (25 % 5xx) never add up to an outage: every good answer
    restarts the clock, so the crawl completes through retries."""
    store = Store.open(str(tmp_path / "store"))
    with running_simulator(seed=3, models=60, faults={"server_error": 0.25}) as url:
        reset_budgets()
        s = settings_for(url, max_outage_seconds=0.5, max_retries=8)
        res = asyncio.run(crawl_source(store, "hub:model", s, stats=CrawlStats()))
    assert res.status == "complete", res


def test_crawl_command_reads_the_override_and_exits_partial(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "HUBTIDE_CRAWLER_MAX_OUTAGE_SECONDS": "1",
        "HUBTIDE_CRAWLER_BACKOFF_BASE_SECONDS": "1",
    }
    with running_simulator(seed=3, models=40, npm=40, faults={"server_error": 1.0}) as url:
        t0 = time.monotonic()
        res = subprocess.run(
            [sys.executable, "-m", "hubtide", "--store", str(tmp_path / "store"), "crawl",
             "--endpoint", url, "--source", "npm", "--no-progress"],
            capture_output=True, text=True, env=env, timeout=120,
        )  # fmt: skip
        took = time.monotonic() - t0
    assert res.returncode == 3, res.stdout + res.stderr  # partial, none failed
    assert took < 30, took
    snaps = Store.open(str(tmp_path / "store")).snapshots(include_partial=True)
    assert snaps["status"].to_list() == ["partial"]
