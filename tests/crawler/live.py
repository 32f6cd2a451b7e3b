"""Helpers of the crawler's live-world tests: a simulator whose world moves while the crawl
runs, under the Hub's real (free-token, time-scaled) quotas, with a log of every request it
answered; and the judgements a moving world allows: a complete snapshot against the truth at
its crawl's start and at its listing's end, the stored details against the truth of the sha
they were fetched at, and each 429 against the retry it cost."""

from __future__ import annotations

import re
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import polars as pl
from aiohttp import web

from simulator.app import FAULTS, WORLD
from simulator.config import FaultConfig, QuotaConfig, SimConfig
from simulator.quota import bucket_of
from simulator.testing import SimServer
from storage import Store
from tests.crawler.truth import expected_rows, get_json_lines, truth_discussions

# the Hub's free-token quotas (1,000 api / 5,000 resolvers / 200 pages per 5 minutes) with
# windows of 3 s instead of 300 s: the request counts are real, the windows scaled
TIME_SCALE = 100.0
TOKEN = "hf_live_free"  # any token is the free tier
QUOTA = QuotaConfig(token_tier="free", time_scale=TIME_SCALE)
# the live clock: a simulated day per 50 Hub requests, so a listing of 20 pages lives through
# most of a day (creations, deletions, renames and counters cross it) and the details
# drained after it through weeks
LIVE_PACE = 86_400 / 50
# listing pages of a live test's Hub crawls: small, so a listing spans many requests
LIVE_PAGE = 10

_T = re.compile(r"\bt=(\d+)")


@dataclass(frozen=True)
class Answered:
    """One request the simulator answered (the outermost middleware's view)."""

    wall: float  # time.monotonic() when it arrived
    path: str  # path and query
    status: int
    clock: float  # the simulated instant whose state the request saw (after its tick)
    quota_refused: bool  # a 429 of the quota (not a fault's 429)
    reset: int | None  # the RateLimit `t=` of the answer


@dataclass
class LiveSim:
    srv: SimServer
    log: list[Answered] = field(default_factory=list)
    spend_on_arrival: int | None = None  # see `spend_api`

    @property
    def url(self) -> str:
        return self.srv.url

    def mark(self) -> int:
        """Where the log stands now (slice the log of one crawl from it)."""
        return len(self.log)

    def listing_end(self, repo_type: str, since: int) -> float:
        """The simulated instant of the last listing page of `repo_type` since `since`."""
        listing = f"/api/{repo_type}s?"
        return max(a.clock for a in self.log[since:] if a.path.startswith(listing))

    def truth_at(self, source: str, instant: float) -> dict[str, dict[str, Any]]:
        return expected_rows(self.url, source, at=instant)

    def spend_api(self, leave: int) -> None:
        """When the next api request arrives, leave the token's api bucket (the crawl's own)
        `leave` requests in a window starting then, as if another process of the same user
        had spent the rest (set on the server's quota state: sending 1,000 requests would
        move the live world 20 days; set on arrival, so however long the crawl takes to
        start, its first requests meet the spent window)."""
        self.spend_on_arrival = leave


def _logger(sim: LiveSim, seconds_per_request: float) -> Any:
    app = sim.srv.app
    world, faults = app[WORLD], app[FAULTS]

    @web.middleware
    async def log(
        request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        bucket = bucket_of(request.path)
        if bucket is None:
            return await handler(request)
        quota = faults.quota
        if bucket == "api" and sim.spend_on_arrival is not None and quota is not None:
            size, _window = quota.limits(QUOTA.token_tier, "api")
            quota.windows[(f"token:{TOKEN}", "api")] = (quota.clock(), size - sim.spend_on_arrival)
            sim.spend_on_arrival = None
        refused = quota.refused if quota is not None else 0
        wall = time.monotonic()
        # the live middleware ticks first thing: the state this request sees
        clock = world.clock_now + seconds_per_request
        status = 0
        reset = None
        try:
            resp = await handler(request)
            status = resp.status
            m = _T.search(resp.headers.get("RateLimit", ""))
            reset = int(m.group(1)) if m else None
            return resp
        except web.HTTPException as exc:
            status = exc.status
            raise
        finally:
            # a 429 (of the quota or a fault) is answered without awaiting anything, so no
            # other request ran in between: a quota refusal moved the count by exactly one
            now_refused = quota.refused if quota is not None else 0
            sim.log.append(
                Answered(
                    wall,
                    request.path_qs,
                    status,
                    clock,
                    status == 429 and now_refused > refused,
                    reset,
                )
            )

    return log


@contextmanager
def live_simulator(
    seed: int, *, faults: dict[str, Any] | None = None, **config: Any
) -> Iterator[LiveSim]:
    """A live world under the Hub's free-token quotas (time-scaled), logging its requests."""
    config.setdefault("live_seconds_per_request", LIVE_PACE)
    cfg = SimConfig(seed=seed, faults=FaultConfig.parse(faults), quota=QUOTA, **config)
    srv = SimServer(cfg)
    sim = LiveSim(srv)
    # outermost, before the app is frozen by the start
    srv.app.middlewares.insert(0, _logger(sim, cfg.live_seconds_per_request))
    srv.start()
    try:
        yield sim
    finally:
        srv.stop()


# ---------------------------------------------------------------- snapshots


@dataclass(frozen=True)
class Verdict:
    """One complete snapshot judged against the truth at its crawl's start and end."""

    missing: int  # alive at both ends, absent from the snapshot (skipped)
    invented: int  # alive at neither end, present
    repeats: int  # listed more than once (the crawler's `repeat` events)
    false_tombstones: int  # tombstoned by this snapshot yet alive at the crawl's end
    moved: dict[str, int]  # what changed in the truth during the crawl

    @property
    def clean(self) -> bool:
        return not (self.missing or self.invented or self.repeats or self.false_tombstones)


def repeats(store: Store, source: str, snapshot_id: int) -> int:
    cat = store.snapshots(source, all_statuses=True)
    run_id = cat.filter(pl.col("snapshot_id") == snapshot_id)["run_id"][0]
    ev = store.events(run_id).filter(pl.col("kind") == "repeat").collect()
    return sum(int(r.split(" ", 1)[0]) for r in ev["reason"].to_list())


def moved(before: dict[str, dict[str, Any]], after: dict[str, dict[str, Any]]) -> dict[str, int]:
    both = before.keys() & after.keys()
    return {
        "created": len(after.keys() - before.keys()),
        "deleted": len(before.keys() - after.keys()),
        "renamed": sum(before[i]["name"] != after[i]["name"] for i in both),
        "counters": sum(
            (before[i]["downloads"], before[i]["likes"])
            != (after[i]["downloads"], after[i]["likes"])
            for i in both
        ),
    }


def judge(
    store: Store,
    source: str,
    snapshot_id: int,
    before: dict[str, dict[str, Any]],
    after: dict[str, dict[str, Any]],
    prev: int | None,
) -> Verdict:
    """A complete snapshot against the truth at its crawl's start (`before`) and its
    listing's end (`after`); `prev` is the complete snapshot it follows (tombstones)."""
    state = store.as_of(source, snapshot_id).collect()
    ids = set(state["entity_id"].to_list())
    gone: set[str] = set()
    if prev is not None:
        ch = store.changed(source, prev, snapshot_id).collect()
        gone = set(ch.filter(pl.col("change") == "deleted")["entity_id"].to_list())
    return Verdict(
        missing=len((before.keys() & after.keys()) - ids),
        invented=len(ids - (before.keys() | after.keys())),
        # listed twice by the walk, or held twice by the as-of state
        repeats=repeats(store, source, snapshot_id) + (state.height - len(ids)),
        # an `_id` never comes back: one alive at the end was alive all along
        false_tombstones=len(gone & after.keys()),
        moved=moved(before, after),
    )


# ---------------------------------------------------------------- details


def details_against_truth(store: Store, url: str, repo_type: str) -> tuple[list[str], int]:
    """(what is wrong, repos checked): every stored detail of a repo alive now against the
    truth of the sha the store says it was fetched at: its commits are exactly that sha and
    its ancestors, its card carries that sha and the truth's front matter keys, its
    discussions exist in the truth with the same immutable fields; no row twice."""
    source = f"hub:{repo_type}"
    wrong: list[str] = []
    done = store.detailed(source)
    fetched = {
        (r["entity_id"], r["detail"]): r["sha"] for r in done.to_dicts() if r["sha"] is not None
    }
    truth_repos = expected_rows(url, source)
    history: dict[str, list[tuple[str, Any, str]]] = {}
    for c in get_json_lines(f"{url}/_sim/truth?source=commits&type={repo_type}"):
        # newest first; the authors of a renamed repo's past commits are re-derived by the
        # simulator from its new owner, so they are not compared
        history.setdefault(c["_id"], []).append((c["id"], _ts(c["date"]), c["title"]))
    commits = store.commits(repo_type).collect()
    keys = list(zip(commits["entity_id"].to_list(), commits["commit_id"].to_list(), strict=True))
    for k, n in Counter(keys).items():
        if n > 1:
            wrong.append(f"commit {k} stored {n} times")
    stored: dict[str, set[tuple[str, Any, str]]] = {}
    for r in commits.select("entity_id", "commit_id", "date", "title").to_dicts():
        stored.setdefault(r["entity_id"], set()).add((r["commit_id"], _ts(r["date"]), r["title"]))
    checked = 0
    for (eid, kind), sha in sorted(fetched.items()):
        if kind != "commits" or eid not in truth_repos or truth_repos[eid].get("disabled"):
            continue  # gone, or disabled (its commits answer 403: the truth lists none)
        chain = [c[0] for c in history.get(eid, [])]
        if sha not in chain:
            wrong.append(
                f"{eid}: commits fetched at {sha}, which the truth does not hold"
                f" (its head {truth_repos[eid]['sha']}, {len(chain)} commits;"
                f" stored {sorted(c[0] for c in stored.get(eid, set()))})"
            )
            continue
        want = set(history[eid][chain.index(sha) :])
        got = stored.get(eid, set())
        checked += 1
        if got != want:
            extra = sorted(c[0] for c in got - want)[:2]
            lost = sorted(c[0] for c in want - got)[:2]
            wrong.append(f"{eid} at {sha[:8]}: commits beyond it {extra}, missing {lost}")
    cards = store.cards(repo_type).collect()
    if cards["entity_id"].n_unique() != cards.height:
        wrong.append("a repo has two newest cards")
    for r in cards.to_dicts():
        eid = r["entity_id"]
        sha = fetched.get((eid, "cards"))
        if eid not in truth_repos or sha is None:
            continue
        if r["sha"] != sha:
            wrong.append(f"{eid}: card read at {r['sha']} but marked fetched at {sha}")
        want_fields = sorted(truth_repos[eid].get("card_fields") or [])
        if want_fields and sorted(r["metadata_fields"] or []) != want_fields:
            wrong.append(f"{eid}: card fields {r['metadata_fields']} != truth {want_fields}")
    # (title, author, is_pull_request, status, created_at): the status moves, the rest not
    disc_truth = {k: v[:3] + v[4:] for k, v in truth_discussions(url, repo_type).items()}
    disc = store.discussions(repo_type).collect()
    dk = list(
        zip(
            disc["snapshot_id"].to_list(),
            disc["entity_id"].to_list(),
            disc["num"].to_list(),
            strict=True,
        )
    )
    for k, n in Counter(dk).items():
        if n > 1:
            wrong.append(f"discussion {k} stored {n} times in one snapshot")
    for r in disc.to_dicts():
        key = (r["entity_id"], r["num"])
        if r["entity_id"] not in truth_repos or truth_repos[r["entity_id"]].get("disabled"):
            continue
        want_d = disc_truth.get(key)
        got_d = (r["title"], r["author"], r["is_pull_request"], r["created_at"])
        if want_d != got_d:
            wrong.append(f"discussion {key}: stored {got_d} != truth {want_d}")
    return wrong[:20], checked


def _ts(v: Any) -> float:
    if isinstance(v, datetime):
        return v.replace(tzinfo=v.tzinfo or UTC).timestamp()
    return datetime.fromisoformat(str(v).replace("Z", "+00:00")).timestamp()


# ---------------------------------------------------------------- 429s


def rate_limit_costs(log: list[Answered]) -> list[str]:
    """What is wrong with the 429s of a crawl's log: a request the quota refused must be sent
    again once, after its window reset (the `t=` it was told, less its rounding), and that
    retry must not be refused again."""
    wrong = []
    for i, a in enumerate(log):
        if not a.quota_refused:
            continue
        later = [b for b in log[i + 1 :] if b.path == a.path]
        if not later:
            wrong.append(f"{a.path}: refused by the quota, never retried")
            continue
        retry = later[0]
        if a.reset is not None and retry.wall < a.wall + a.reset - 1.0:
            wrong.append(f"{a.path}: retried {retry.wall - a.wall:.2f} s later, reset {a.reset}")
        if retry.quota_refused:
            wrong.append(f"{a.path}: its retry was refused again")
    return wrong
