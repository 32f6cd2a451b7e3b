"""End-to-end: crawl a simulated world day after day and compare every as-of state with
the simulator's truth, field by field. Real simulator over HTTP, real store in tmp.

Each test runs twice: against a still world (it moves only between crawls, quotas off:
every state equals the truth exactly) and against a live one (it moves while the crawl
runs, under the Hub's free-token quotas, time-scaled: tests/crawler/live.py). A live Hub
snapshot is judged against the truth at its crawl's start and at its listing's end, its
stored details against the truth of the sha they were fetched at, and every 429 against
the one retry it may cost; the registries do not move during their crawl, so they still
equal the truth exactly."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from crawler import crawl_source
from crawler.budget import reset_budgets
from crawler.stats import CrawlStats
from simulator.testing import running_simulator
from storage import Store
from tests.crawler.live import (
    LIVE_PAGE,
    TOKEN,
    LiveSim,
    Verdict,
    details_against_truth,
    judge,
    live_simulator,
    moved,
    rate_limit_costs,
)
from tests.crawler.truth import (
    advance,
    compare_state,
    expected_rows,
    settings_for,
    stored_commits,
    stored_discussions,
    truth_commits,
    truth_discussions,
)

SOURCES = ("hub:model", "hub:dataset", "hub:space", "npm", "pypi")
WORLD = {"models": 220, "datasets": 60, "spaces": 50, "npm": 90, "pypi": 80}


def crawl(store: Store, source: str, url: str, stats: CrawlStats | None = None, **kw: object):  # type: ignore[no-untyped-def]
    s = settings_for(url, registry_page_size=25, **kw)  # type: ignore[arg-type]
    return asyncio.run(crawl_source(store, source, s, stats=stats or CrawlStats()))


@contextmanager
def world(kind: str, seed: int, faults: dict[str, Any] | None = None) -> Iterator[LiveSim | str]:
    """A still world (its URL) or a live one under real quotas (a `LiveSim`)."""
    if kind == "live":
        with live_simulator(seed, page_size=40, faults=faults, **WORLD) as sim:
            yield sim
    else:
        with running_simulator(seed=seed, page_size=40, faults=faults, **WORLD) as url:
            yield url


class LiveDays:
    """Crawls of a live world, each Hub snapshot judged as it completes."""

    def __init__(self, sim: LiveSim, store: Store) -> None:
        self.sim, self.store = sim, store
        self.prev: dict[str, int] = {}
        self.verdicts: list[Verdict] = []
        self.moved: Counter[str] = Counter()  # what changed in the truth during the crawls
        self.checked_details = 0
        self.refused = 0  # requests the quota refused

    def crawl(self, source: str, spend: int | None = None, **kw: object):  # type: ignore[no-untyped-def]
        """Crawl `source` and judge it; `spend`: first spend the token's api bucket down to
        that many requests (the crawl meets the quota's 429 and its reset)."""
        sim, store = self.sim, self.store
        if spend is not None:
            sim.spend_api(spend)
        mark = sim.mark()
        before = expected_rows(sim.url, source)
        stats = CrawlStats()
        r = crawl(store, source, sim.url, stats, hub_token=TOKEN, hub_page_size=LIVE_PAGE, **kw)
        log = sim.log[mark:]
        # every 429 the server sent, the crawl saw; each cost one retry after its reset
        assert sum(stats.rate_limited.values()) == sum(a.status == 429 for a in log)
        assert rate_limit_costs(log) == [], rate_limit_costs(log)
        self.refused += sum(a.quota_refused for a in log)
        if r.status != "complete":
            return r
        if source.startswith("hub:"):
            after = sim.truth_at(source, sim.listing_end(source.split(":")[1], mark))
            v = judge(store, source, r.snapshot_id, before, after, self.prev.get(source))
            assert v.clean, (source, v)
            self.verdicts.append(v)
            wrong, n = details_against_truth(store, sim.url, source.split(":")[1])
            assert wrong == [], (source, wrong)
            self.checked_details += n
            self.moved.update(moved(before, expected_rows(sim.url, source)))
        else:
            # the registries are not metered: their world stands still during their crawl
            diffs = compare_state(store, source, r.snapshot_id, expected_rows(sim.url, source))
            assert diffs == [], f"{source}: " + "; ".join(diffs)
        self.prev[source] = r.snapshot_id
        return r

    def moved_every_way(self) -> None:
        """The world moved during the crawls, every way (else the judgement proves nothing)."""
        for kind in ("created", "deleted", "renamed", "counters"):
            assert self.moved[kind] > 0, (kind, self.moved)
        # and during the listings themselves
        assert sum(sum(v.moved.values()) for v in self.verdicts) > 0, self.verdicts
        assert self.checked_details > 0


def check_day(store: Store, url: str, results: dict[str, object]) -> None:
    for source in SOURCES:
        r = results[source]
        assert r.status == "complete", (source, r)  # type: ignore[attr-defined]
        diffs = compare_state(store, source, r.snapshot_id, expected_rows(url, source))  # type: ignore[attr-defined]
        assert diffs == [], f"{source}: " + "; ".join(diffs)
    for rt in ("model", "dataset", "space"):
        sid = results[f"hub:{rt}"].snapshot_id  # type: ignore[attr-defined]
        # commits of repos deleted since stay in the store (history); truth lists live ones
        live = set(expected_rows(url, f"hub:{rt}"))
        stored = {c for c in stored_commits(store, rt) if c[0] in live}
        truth_c = truth_commits(url, rt)
        if sid != 1:
            # the simulator re-derives a renamed repo's past commit authors from its new
            # owner; stored history keeps the authors seen then. Compare authors on day 0.
            stored = {c[:4] for c in stored}
            truth_c = {c[:4] for c in truth_c}
        assert stored == truth_c, (rt, sorted(stored ^ truth_c)[:3])
        got = stored_discussions(store, rt, sid)
        truth = truth_discussions(url, rt)
        if rt == "model" and sid == 1:
            assert got, "no discussions stored on day 0"
        wrong = {k: (v, truth.get(k)) for k, v in got.items() if truth.get(k) != v}
        assert not wrong, f"{rt}: {list(wrong.items())[:3]}"
        # every discussion of a repo crawled in this snapshot is there
        crawled = {eid for eid, _ in got}
        missing = [k for k in truth if k[0] in crawled and k not in got]
        assert not missing, missing[:5]


@pytest.mark.parametrize("kind", ["still", pytest.param("live", marks=pytest.mark.slow)])
def test_days_equal_truth_with_faults_off(tmp_path: Path, kind: str) -> None:
    reset_budgets()
    store = Store.open(str(tmp_path / "store"))
    detail_per_changed: list[float] = []
    with world(kind, seed=11) as w:
        url = w.url if isinstance(w, LiveSim) else w
        live = LiveDays(w, store) if isinstance(w, LiveSim) else None
        for day in range(3):
            if day:
                advance(url, 1)
            if live is not None:
                # day 1: each Hub crawl meets a spent api bucket, its first request refused
                spent = {s: 0 if day == 1 and s.startswith("hub:") else None for s in SOURCES}
                results = {s: live.crawl(s, spend=spent[s]) for s in SOURCES}
                assert all(r.status == "complete" for r in results.values()), results
            else:
                results = {s: crawl(store, s, url) for s in SOURCES}
                check_day(store, url, results)
            if day and live is None:
                # (a live world lives weeks between two crawls: most repos have changed)
                m = results["hub:model"]
                detail_per_changed.append(m.detail_requests)  # type: ignore[attr-defined]
        if live is not None:
            live.moved_every_way()
            # one refusal per spent bucket: after it the crawl waits for the reset
            assert live.refused == 3, live.refused
    # day 1+: details only for changed repos (a few %), so far fewer than day 0
    assert all(d < 0.5 * WORLD["models"] for d in detail_per_changed), detail_per_changed


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["still", "live"])
def test_days_with_five_percent_faults(tmp_path: Path, kind: str) -> None:
    reset_budgets()
    store = Store.open(str(tmp_path / "store"))
    faults = {"rate": 0.05, "slow_seconds": 1.5, "retry_after": 1}
    if kind == "live":
        # churn faults edit the world from outside its day steps, which the truth `at=` an
        # instant cannot replay (docs/simulator.md); the live world churns by itself
        faults["churn"] = 0.0
    statuses: list[tuple[int, str, str]] = []
    with world(kind, seed=5, faults=faults) as w:
        url = w.url if isinstance(w, LiveSim) else w
        live = LiveDays(w, store) if isinstance(w, LiveSim) else None
        # a live world lives weeks per crawl day: two of them (the second judged against
        # the first's state: tombstones, the backlog carried over) keep the test short
        for day in range(4 if live is None else 2):
            if day:
                advance(url, 1)
            for source in SOURCES:
                if live is not None:
                    r = live.crawl(source, timeout_seconds=1.0)
                    statuses.append((day, source, r.status))
                    assert r.status in ("complete", "partial"), r
                    continue
                r = crawl(store, source, url, timeout_seconds=1.0)
                statuses.append((day, source, r.status))
                if r.status == "complete":
                    diffs = compare_state(store, source, r.snapshot_id, expected_rows(url, source))
                    assert diffs == [], f"day {day} {source}: " + "; ".join(diffs)
                else:
                    assert r.status == "partial", r
        if live is not None:
            # the retries of every fault went through the same buckets: none was refused
            assert live.refused == 0, live.refused
            live.moved_every_way()
    assert any(st == "complete" for _, _, st in statuses)
