"""A real `hubtide crawl` process SIGKILLed mid-crawl, then `hubtide crawl --resume`: the
final state equals the simulator's truth, nothing lost or doubled. Real simulator, real
store in tmp, real processes.

Twice: in a still world (it moves only between the days: the state equals the truth), and
in a live one under the Hub's free-token quotas, time-scaled (tests/crawler/live.py): it
moves while both processes crawl, so the resumed snapshot is judged against the truth at
the killed crawl's start and at the resumed listing's end, its details against the truth
of the sha they were fetched at, and each 429 against the one retry it may cost."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from simulator.testing import running_simulator
from storage import Store
from tests.crawler.live import (
    TOKEN,
    LiveSim,
    details_against_truth,
    judge,
    live_simulator,
    rate_limit_costs,
)
from tests.crawler.truth import (
    advance,
    compare_state,
    expected_rows,
    kill_when,
    stored_commits,
    truth_commits,
    truth_discussions,
)


def _env() -> dict[str, str]:
    # one listing page per batch, so a crawl commits many batches; the token makes the
    # crawl a free-token client of a simulator with quotas
    return {
        **os.environ,
        "HUBTIDE_STORE_BATCH_ROWS": "20",
        "HUBTIDE_CRAWLER_CONCURRENCY": "2",
        "HF_TOKEN": TOKEN,
    }


def _crawl(store: Path, url: str, *extra: str) -> list[str]:
    return [
        sys.executable, "-m", "hubtide", "--store", str(store), "crawl", "--endpoint", url,
        "--source", "hub:model", "--no-progress", *extra,
    ]  # fmt: skip


def _batches(store: Path) -> int:
    """hub:model listing batches committed so far: Delta log entries of the staging table
    carrying the writer's transaction id (`appId` hub:model:<snapshot>, version = seq)."""
    logs = store / "staging" / "batches" / "_delta_log"
    if not logs.exists():
        return 0
    n = 0
    for f in logs.glob("*.json"):
        try:
            n += '"appId":"hub:model:' in f.read_text().replace(" ", "")
        except OSError:  # being written
            continue
    return n


def _paced(**extra: str) -> dict[str, str]:
    """The killed run's Hub quota, one request a second: a listing without details (they
    are drained after it) is over in a blink otherwise, and its batches wait up to the
    writer's STAGE_FLUSH_SECONDS (10 s) to be staged together, so a kill after a staged
    commit lands mid-listing only in a listing that takes longer (15 pages: ~15 s)."""
    return {
        **_env(),
        **extra,
        "HUBTIDE_CRAWLER_HUB_REQUESTS_PER_WINDOW": "1",
        "HUBTIDE_CRAWLER_HUB_WINDOW_SECONDS": "1",
    }


def _kill_after(store: Path, url: str, more_batches: int, **extra: str) -> None:
    """Start a crawl and SIGKILL it once `more_batches` further batches are committed."""
    start = _batches(store)
    kill_when(
        _crawl(store, url),
        _paced(**extra),
        lambda: _batches(store) >= start + more_batches,
        f"{more_batches} more batches committed (from {start})",
    )


def _check(store_path: Path, url: str, day: int) -> None:
    store = Store.open(str(store_path))
    snaps = store.snapshots("hub:model", include_partial=True)
    assert snaps["status"].to_list()[-1] == "complete", snaps
    sid = int(snaps["snapshot_id"].to_list()[-1])
    assert compare_state(store, "hub:model", sid, expected_rows(url, "hub:model")) == []
    live = set(expected_rows(url, "hub:model"))
    stored = {c for c in stored_commits(store, "model") if c[0] in live}
    truth = truth_commits(url, "model")
    if day:  # a renamed repo's past commit authors are re-derived by the simulator
        stored, truth = {c[:4] for c in stored}, {c[:4] for c in truth}
    assert stored == truth
    # discussions read in this snapshot (all of them on day 0) equal the truth
    got = store.discussions("model", at=sid).filter(pl.col("snapshot_id") == sid).collect()
    want = truth_discussions(url, "model")
    keys = list(zip(got["entity_id"].to_list(), got["num"].to_list(), strict=True))
    assert len(keys) == len(set(keys)), "a discussion stored twice in one snapshot"
    if day == 0:
        assert set(keys) == set(want)
    # nothing doubled: one row per entity in the as-of state
    state = store.as_of("hub:model", sid).collect()
    assert state["entity_id"].n_unique() == state.height == len(live)


def _judge_live(store_path: Path, sim: LiveSim, before: dict[str, Any], mark: int) -> None:
    """The resumed snapshot of a live world, judged (it cannot equal one truth)."""
    store = Store.open(str(store_path))
    snaps = store.snapshots("hub:model", include_partial=True)
    assert snaps["status"].to_list()[-1] == "complete", snaps
    sids = [int(x) for x in snaps["snapshot_id"].to_list()]
    after = sim.truth_at("hub:model", sim.listing_end("model", mark))
    prev = sids[-2] if len(sids) > 1 else None
    v = judge(store, "hub:model", sids[-1], before, after, prev)
    assert v.clean, v
    assert sum(v.moved.values()) > 0, v  # the world moved under the two processes
    wrong, checked = details_against_truth(store, sim.url, "model")
    assert wrong == [] and checked > 0, (wrong, checked)
    assert rate_limit_costs(sim.log[mark:]) == []


@contextmanager
def _world(kind: str) -> Iterator[tuple[str, LiveSim | None]]:
    world = {"seed": 21, "models": 300, "datasets": 5, "spaces": 5, "page_size": 20}
    if kind == "live":
        with live_simulator(**world) as sim:  # type: ignore[arg-type]
            yield sim.url, sim
    else:
        with running_simulator(**world) as url:  # type: ignore[arg-type]
            yield url, None


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["still", "live"])
def test_sigkill_mid_crawl_then_resume_equals_truth(tmp_path: Path, kind: str) -> None:
    store = tmp_path / "store"
    with _world(kind) as (url, sim):
        for day in range(2):
            if day:
                advance(url, 1)
            mark = sim.mark() if sim is not None else 0
            before = expected_rows(url, "hub:model")
            # live: a third of the repos' details a day (the drain's requests move the world
            # weeks on; the backlog carries the rest over)
            extra = {"HUBTIDE_CRAWLER_DETAILS_PER_CRAWL": "300"} if sim is not None else {}
            _kill_after(store, url, more_batches=1, **extra)
            done = Store.open(str(store)).snapshots("hub:model", include_partial=True)
            assert done.filter(pl.col("status") == "complete").height == day, "killed too late"
            res = subprocess.run(
                _crawl(store, url, "--resume"),
                env={**_env(), **extra}, capture_output=True, text=True, timeout=300,
            )  # fmt: skip
            assert res.returncode == 0, res.stdout + res.stderr
            if sim is not None:
                _judge_live(store, sim, before, mark)
            else:
                _check(store, url, day)
        snaps = Store.open(str(store)).snapshots("hub:model", include_partial=True)
        # the killed crawls were continued, not restarted: one snapshot per day
        assert snaps.height == 2, snaps
