"""The details backlog against the simulator over real HTTP, real store: a first crawl's
listing snapshot completes before any detail is fetched; repeated drains raise the details
coverage to 100 % without fetching a sha twice; a sha change re-queues a repo; a crawl
SIGKILLed mid-drain resumes the backlog without a detail row twice."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from prometheus_client import generate_latest

from crawler import crawl_source
from crawler.backlog import coverage_line, pending, weight
from crawler.budget import reset_budgets
from crawler.stats import CrawlStats
from scheduler.metrics import DaemonMetrics
from simulator.testing import running_simulator
from storage import Store
from tests.crawler.truth import (
    advance,
    expected_rows,
    kill_when,
    settings_for,
    stored_commits,
    truth_commits,
    truth_discussions,
)

WORLD: dict[str, Any] = {"models": 300, "datasets": 5, "spaces": 5, "npm": 5, "pypi": 5}


def _crawl(store: Store, url: str, per_crawl: int) -> Any:
    s = settings_for(url, details_per_crawl=per_crawl)
    return asyncio.run(crawl_source(store, "hub:model", s, stats=CrawlStats()))


def _ratio(store: Store, sid: int, detail: str = "commits", scope: str = "all") -> float:
    cov = store.detail_coverage("hub:model").filter(
        (pl.col("snapshot_id") == sid) & (pl.col("detail") == detail) & (pl.col("scope") == scope)
    )
    assert cov.height == 1, cov
    return float(cov["ratio"][0])


def _done(store: Store) -> pl.DataFrame:
    """The backlog's done rows: one per (repo, detail, sha) fetched."""
    return pl.read_delta(str(Path(store.uri) / "ops" / "detail_backlog")).filter(
        pl.col("entry") == "done"
    )


def _no_detail_twice(store: Store) -> None:
    root = Path(store.uri) / "hub"
    commits = pl.read_delta(str(root / "commits"))
    assert commits.height == commits.unique(["entity_id", "commit_id"]).height
    cards = pl.read_delta(str(root / "cards"))
    assert cards.height == cards.unique(["entity_id", "sha"]).height
    disc = pl.read_delta(str(root / "discussions"))
    assert disc.height == disc.unique(["entity_id", "num", "snapshot_id"]).height
    done = _done(store)
    assert done.height == done.unique(["entity_id", "detail", "sha"]).height


def test_first_snapshot_does_not_wait_and_drains_reach_full_coverage(tmp_path: Path) -> None:
    reset_budgets()
    store = Store.open(str(tmp_path / "store"))
    with running_simulator(seed=3, page_size=40, **WORLD) as url:
        first = _crawl(store, url, per_crawl=60)
        assert first.status == "complete", first
        assert first.listing_detail_requests == 0  # the listing waited for no detail
        assert 0 < first.detail_requests <= 60 + 3, first.detail_requests  # one repo over
        info = store.snapshot_info("hub:model", first.snapshot_id)
        claimed = pl.read_delta(str(Path(store.uri) / "ops" / "detail_backlog"))["at"].min()
        assert info.finished_at is not None and info.finished_at <= claimed
        # most valuable first: the drained repos outrank every repo still waiting
        waiting = pending(store, "hub:model", first.snapshot_id)
        got = set(_done(store)["entity_id"].to_list())
        # (no discussions were stored when the batch was drawn: its weights had open = 0)
        state = store.as_of("hub:model", first.snapshot_id).collect()
        w = state.with_columns(pl.lit(0).alias("open")).select("entity_id", weight().alias("w"))
        drawn = w.filter(pl.col("entity_id").is_in(list(got)))["w"].min()
        assert drawn >= waiting["weight"].max(), (drawn, waiting["weight"].max())  # type: ignore[operator]
        low = _ratio(store, first.snapshot_id)
        assert 0 < low < 0.3, low
        assert first.details_pending == waiting.height > 0
        # repeated crawls of the same world: coverage rises to 100 %, no sha twice
        ratios = [low]
        commit_requests = first.detail_kinds.get("commits", 0)
        for _ in range(6):
            r = _crawl(store, url, per_crawl=150)
            assert r.status == "complete", r
            commit_requests += r.detail_kinds.get("commits", 0)
            ratios.append(_ratio(store, r.snapshot_id))
            if ratios[-1] == 1.0:
                break
        assert ratios == sorted(ratios) and ratios[-1] == 1.0, ratios
        assert _ratio(store, r.snapshot_id, "discussions", "top10000_downloads") == 1.0
        n = len(expected_rows(url, "hub:model"))
        # each repo's commits fetched once (a long history takes a page or two more)
        assert (_done(store)["detail"] == "commits").sum() == n
        assert n <= commit_requests < 1.05 * n, (commit_requests, n)
        again = _crawl(store, url, per_crawl=150)  # nothing left: no detail request
        assert again.detail_requests == 0 and again.details_pending == 0
        assert "commits complete for 100 % of repos" in coverage_line(again.details_coverage)
        _no_detail_twice(store)
        assert {c[:4] for c in stored_commits(store, "model")} == {
            c[:4] for c in truth_commits(url, "model")
        }
        _shown(store, again.snapshot_id)
        # a day's changes: only the repos whose sha moved are fetched again
        advance(url, 1)
        day = _crawl(store, url, per_crawl=2000)
        assert day.status == "complete" and day.changed > 0, day
        assert day.detail_kinds.get("commits", 0) <= day.changed
        assert _ratio(store, day.snapshot_id) == 1.0
        _no_detail_twice(store)
        stored = {c[:4] for c in stored_commits(store, "model")}
        live = set(expected_rows(url, "hub:model"))
        assert {c for c in stored if c[0] in live} == {c[:4] for c in truth_commits(url, "model")}


def _shown(store: Store, sid: int) -> None:
    """`hubtide status` and `/metrics` show the coverage of the newest complete snapshot."""
    res = subprocess.run(
        [sys.executable, "-m", "hubtide", "--store", store.uri, "status", "--format", "json"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    src = {s["source"]: s for s in json.loads(res.stdout)["sources"]}["hub:model"]
    assert src["last_snapshot_id"] == sid
    assert src["details"].startswith("commits 100 % (top10000_downloads 100 %)"), src
    rows = {(r["detail"], r["scope"]): r for r in src["details_coverage"]}
    assert rows[("cards", "all")]["covered"] == rows[("cards", "all")]["total"] > 0
    metrics = DaemonMetrics(CrawlStats())
    metrics.figures.refresh(store)
    text = generate_latest(metrics.registry).decode()
    want = 'hubtide_details_coverage_ratio{detail="discussions",scope="all",source="hub:model"} 1.0'
    assert want in text, [ln for ln in text.splitlines() if "coverage" in ln]


# -- a SIGKILL mid-drain -------------------------------------------------------------


def _env(per_crawl: int) -> dict[str, str]:
    return {
        **os.environ,
        "HUBTIDE_CRAWLER_CONCURRENCY": "2",
        "HUBTIDE_CRAWLER_DETAILS_PER_CRAWL": str(per_crawl),
    }


def _cmd(store: Path, url: str) -> list[str]:
    return [
        sys.executable, "-m", "hubtide", "--store", str(store), "crawl", "--endpoint", url,
        "--source", "hub:model", "--no-progress",
    ]  # fmt: skip


def _claims(store: Path) -> int:
    """Drain batches claimed so far (Delta log entries of the backlog's claim txn)."""
    logs = store / "ops" / "detail_backlog" / "_delta_log"
    n = 0
    for f in logs.glob("*.json") if logs.exists() else []:
        try:
            n += '"appId":"backlog:hub:model:claim"' in f.read_text().replace(" ", "")
        except OSError:
            continue
    return n


@pytest.mark.slow
def test_sigkill_mid_drain_resumes_the_backlog(tmp_path: Path) -> None:
    path = tmp_path / "store"
    with running_simulator(seed=21, page_size=50, **WORLD) as url:
        kill_when(_cmd(path, url), _env(100_000), lambda: _claims(path) >= 2, "drain batch")
        store = Store.open(str(path))
        assert store.snapshots("hub:model")["status"].to_list() == ["complete"]
        before = _done(store)["entity_id"].n_unique()
        assert before < WORLD["models"]
        _batch, claim = store.open_detail_batch("hub:model")
        assert claim is not None and claim.height, "killed outside a batch"
        res = subprocess.run(
            _cmd(path, url), env=_env(100_000), capture_output=True, text=True, timeout=300
        )
        assert res.returncode == 0, res.stdout + res.stderr
        assert "hub:model details: commits complete for 100 % of repos" in res.stdout, res.stdout
        store = Store.open(str(path))
        sid = int(store.snapshots("hub:model")["snapshot_id"][-1])
        _no_detail_twice(store)
        assert _ratio(store, sid) == 1.0
        # every commit and discussion of the truth is stored once
        assert {c[:4] for c in stored_commits(store, "model")} == {
            c[:4] for c in truth_commits(url, "model")
        }
        disc = store.discussions("model").collect()
        keys = set(zip(disc["entity_id"].to_list(), disc["num"].to_list(), strict=True))
        assert keys == set(truth_discussions(url, "model"))


def test_max_detail_repos_caps_what_a_drain_takes_on(tmp_path: Path) -> None:
    reset_budgets()
    store = Store.open(str(tmp_path / "store"))
    with running_simulator(seed=5, models=40, datasets=5, spaces=5, npm=5, pypi=5) as url:
        s = settings_for(url, max_detail_repos=7)
        r = asyncio.run(crawl_source(store, "hub:model", s, stats=CrawlStats()))
    assert r.status == "complete", r
    assert _done(store)["entity_id"].n_unique() == 7
    assert r.details_pending == r.items - 7 > 0


# -- `hubtide drain`: details without a listing -----------------------------------------


def _hubtide(store: Path, *args: str, per_crawl: int = 0) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "hubtide", "--store", str(store), *args]
    return subprocess.run(cmd, env=_env(per_crawl), capture_output=True, text=True, timeout=300)


def test_hubtide_drain_spends_its_requests_then_empties_the_backlogs(tmp_path: Path) -> None:
    path = tmp_path / "store"
    with running_simulator(seed=8, models=60, datasets=20, spaces=5, npm=5, pypi=5) as url:
        crawl = [
            *("crawl", "--endpoint", url, "--no-progress"),
            "-s",
            "hub:model",
            "-s",
            "hub:dataset",
        ]
        res = _hubtide(path, *crawl)  # details_per_crawl 0: listings only
        assert res.returncode == 0, res.stdout + res.stderr
        drain = ["drain", "--endpoint", url, "-s", "hub:model", "-s", "hub:dataset"]
        first = _hubtide(path, *drain, "--requests", "30", "--format", "json", per_crawl=12)
        assert first.returncode == 0, first.stdout + first.stderr
        rows = {r["source"]: r for r in json.loads(first.stdout)}
        spent = sum(r["requests"] for r in rows.values())
        assert 30 <= spent <= 30 + 12, rows  # the last pass may overrun by one repo's pages
        assert sum(r["repos"] for r in rows.values()) >= 8
        rest = _hubtide(path, *drain, "--requests", "100000", "--format", "json", per_crawl=50)
        assert rest.returncode == 0, rest.stdout + rest.stderr
        after = {r["source"]: r for r in json.loads(rest.stdout)}
        assert all(r["pending"] == 0 for r in after.values()), after
        assert all("100 % of repos" in r["coverage"] for r in after.values()), after
        store = Store.open(str(path))
        assert store.snapshots("hub:model")["snapshot_id"].to_list() == [1]  # no new listing
        _no_detail_twice(store)
        assert {c[:4] for c in stored_commits(store, "model")} == {
            c[:4] for c in truth_commits(url, "model")
        }
        bad = _hubtide(path, "drain", "--endpoint", url, "-s", "npm")
        assert bad.returncode == 2
        assert "npm: only Hub sources have a details backlog" in bad.stderr, bad.stderr
