"""The details of listed Hub repos: commits back to the newest stored one, discussions,
and the card (README.md), fetched through `engine.download_async` so they pass the same
downloader middlewares as the listing.

Which repos get which details is `plan_page`'s rule (docs/crawler.md, Details): commits of
every changed repo and the card of every repo whose listed card metadata changed come
first; a detail budget of `detail_budget` requests per changed repo, accrued page by page,
pays for them, and what is left refreshes the discussions (and stale cards) of repos drawn
by a deterministic weighted sample (an exponential race keyed on entity and snapshot), so a
resumed crawl draws the same repos and active repos are refreshed far more often.
"""

from __future__ import annotations

import asyncio
import math
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import numpy as np
import numpy.typing as npt
import polars as pl

from crawler import hub_parse
from crawler.errors import Malformed
from crawler.items import PageResult
from crawler.links import next_link
from crawler.prev import RowState
from crawler.spider_base import FORBIDDEN, GONE, BaseSpider
from storage import Store
from storage.errors import StoreError

_PREFIX = {"model": "", "dataset": "datasets/", "space": "spaces/"}
# the Hub's discussions page size (hub-api.md 5): a refresh of n known discussions costs
# ceil(n / 50) requests
DISCUSSIONS_PAGE = 50
# how long a page waits for the page before it to be planned (planning in page order keeps
# the budget's carry, so the plan, the same in every run); only a bug gets near it
PLAN_ORDER_WAIT_SECONDS = 600.0


@dataclass(frozen=True)
class DetailPlan:
    """The detail requests one listed repo gets in this crawl."""

    commits: bool
    discussions: bool
    card: bool


@dataclass(frozen=True)
class Candidate:
    """One listed repo as the plan sees it."""

    key: int  # 64-bit hash of entity_id (RowState.key)
    changed: bool  # new, or sha / lastModified moved: its new commits are due
    card_now: bool  # an existing repo whose listed card-metadata keys changed
    card_stale: bool  # no stored card, or the stored one was read at another sha
    weight: float  # expected discussion / card activity (`activity`); > 0
    discussion_pages: int  # requests a discussions refresh is expected to take
    due: bool = False  # on the `refresh_days` rotation: refreshed whatever the budget


@dataclass(frozen=True)
class DiscussionStats:
    """Per repo, what the store knows of its discussions (sorted by entity hash)."""

    keys: npt.NDArray[np.uint64]
    count: npt.NDArray[np.int64]
    open: npt.NDArray[np.int64]

    @classmethod
    def empty(cls) -> DiscussionStats:
        z = np.zeros(0, dtype=np.int64)
        return cls(np.zeros(0, dtype=np.uint64), z, z.copy())

    @classmethod
    def load(cls, store: Store, repo_type: str) -> DiscussionStats:
        """From the newest stored state of each discussion (complete snapshots only, so a
        resumed crawl sees the same)."""
        try:
            df = (
                store.discussions(repo_type)
                .group_by("entity_id")
                .agg(
                    pl.len().cast(pl.Int64).alias("n"),
                    pl.col("status").is_in(["open", "draft"]).sum().cast(pl.Int64).alias("o"),
                )
                .collect()
            )
        except StoreError:
            return cls.empty()
        if df.height == 0:
            return cls.empty()
        # the same hash as crawler.prev (`entity_id`, seed 7), so RowState.key finds it
        keys = df.select(pl.col("entity_id").hash(seed=7)).to_series().to_numpy()
        keys = keys.astype(np.uint64)
        order = np.argsort(keys, kind="stable")
        return cls(keys[order], df["n"].to_numpy()[order], df["o"].to_numpy()[order])

    def lookup(self, key: int) -> tuple[int, int]:
        """(known discussions, known open ones) of a repo; (0, 0) when none is stored."""
        if len(self.keys) == 0:
            return 0, 0
        k = np.uint64(key)
        i = int(np.searchsorted(self.keys, k))
        if i < len(self.keys) and self.keys[i] == k:
            return int(self.count[i]), int(self.open[i])
        return 0, 0


def activity(row: dict[str, Any], known: int, open_: int, changed: bool) -> float:
    """Expected discussion / card activity of a repo, from honest signals only.

    New discussions come to popular repos (log downloads and likes: the listing's own
    counters), state changes to repos with open discussions (the store's), and on the Hub
    a merged pull request is a commit, so a changed repo is likelier to have moved.
    """
    downloads = row.get("downloads") or 0
    likes = row.get("likes") or 0
    pop = math.log1p(max(downloads, 0)) / 10 + math.log1p(max(likes, 0)) / 5
    lam = 0.2 + pop + 4.0 * math.sqrt(open_)
    if changed:
        lam *= 2.0
    return lam


def discussion_pages(known: int) -> int:
    return max(1, -(-known // DISCUSSIONS_PAGE))


def _mix(x: int) -> int:
    """splitmix64's finaliser: a well-spread 64-bit hash of a 64-bit integer."""
    x &= 0xFFFFFFFFFFFFFFFF
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & 0xFFFFFFFFFFFFFFFF
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & 0xFFFFFFFFFFFFFFFF
    return x ^ (x >> 31)


def race_key(key: int, snapshot_id: int, weight: float, cost: int) -> float:
    """Exponential-race key: smallest first. With u uniform from (entity, snapshot),
    -ln(u) * cost / weight is exponential with rate weight / cost, so a repo is drawn
    with a probability growing with its weight per request, and the same one every run."""
    u = (_mix(key ^ _mix(snapshot_id + 0x9E3779B97F4A7C15)) >> 11) + 1  # 1 .. 2^53
    return -math.log(u / float(1 << 53)) * cost / weight


def mandatory(c: Candidate) -> DetailPlan:
    """What a repo gets whatever the budget: the commits of a changed repo, the card whose
    listed metadata keys changed, and a rotation-due refresh."""
    return DetailPlan(c.changed, c.due, c.card_now or (c.due and c.card_stale))


def plan_cost(c: Candidate, p: DetailPlan) -> int:
    """Expected requests of a plan: commits 1 (usually one page back to the newest stored),
    a card 1, discussions one per 50 known."""
    return int(p.commits) + int(p.card) + (c.discussion_pages if p.discussions else 0)


def choose_refreshes(
    cands: list[Candidate], plans: list[DetailPlan], left: float, snapshot_id: int
) -> tuple[list[DetailPlan], float]:
    """Spend `left` requests on refreshes (discussions, plus the card when stale) of the
    repos not refreshed yet, in race-key order; one that does not fit is skipped for
    cheaper ones. Returns the plans with the refreshes and what is left (by expected
    cost)."""
    plans = list(plans)
    if left < 1:
        return plans, left
    order = sorted(
        (race_key(c.key, snapshot_id, c.weight, _refresh_cost(c, p)), c.key, i)
        for i, (c, p) in enumerate(zip(cands, plans, strict=True))
        if not p.discussions
    )
    for _rk, _key, i in order:
        c, p = cands[i], plans[i]
        cost = _refresh_cost(c, p)
        if cost <= left:
            left -= cost
            plans[i] = DetailPlan(p.commits, True, p.card or c.card_stale)
            if left < 1:
                break
    return plans, left


def plan_page(
    cands: list[Candidate], *, budget: float, carry: float, snapshot_id: int
) -> tuple[list[DetailPlan], float]:
    """The plans of one listing page and the budget carried to the next, by expected costs.

    The page adds `budget` requests per changed repo to `carry`. The mandatory details are
    planned and paid first (the carry may go negative: a debt later pages pay first); what
    is left buys refreshes (`choose_refreshes`). The crawl (`HubDetails.page_details`) runs
    the same rule in two steps and charges what the mandatory details actually took
    (commit paging) before choosing, and what the refreshes took after.
    """
    left = carry + budget * sum(1 for c in cands if c.changed)
    plans = [mandatory(c) for c in cands]
    left -= sum(plan_cost(c, p) for c, p in zip(cands, plans, strict=True))
    return choose_refreshes(cands, plans, left, snapshot_id)


def _refresh_cost(c: Candidate, p: DetailPlan) -> int:
    return c.discussion_pages + int(c.card_stale and not p.card)


@dataclass
class Fetched:
    """The detail rows of one repo, and the requests they took (retries not counted:
    the budget charges what the data needed, so the same world gives the same plan)."""

    commits: list[dict[str, Any]] = field(default_factory=list)
    discussions: list[dict[str, Any]] = field(default_factory=list)
    card: dict[str, Any] | None = None
    card_mismatch: bool = False
    requests: int = 0
    ok: bool = True  # False: a detail could not be had (the snapshot is partial)


class HubDetails(BaseSpider):
    """Detail requests of the Hub spider (a base class of `HubSpider`)."""

    repo_type: str
    detail_sem: asyncio.Semaphore | None
    # the detail budget's state, passed from page to page in page order (`page_details`)
    _carry: float = 0.0
    _plan_next: int | None = None
    _plan_cond: asyncio.Condition | None = None
    _disc_stats: DiscussionStats | None = None
    _stats_lock: asyncio.Lock | None = None

    async def refetch(self, item: Any, name: str | None) -> dict[str, Any] | None:
        """A repo's record fetched again (the listing spider's repo-info request)."""
        raise NotImplementedError  # HubSpider overrides it

    def candidate(self, row: dict[str, Any], stats: DiscussionStats) -> Candidate:
        ctx = self.ctx
        st: RowState = row["_state"]
        known, open_ = stats.lookup(st.key)
        period = ctx.settings.refresh_days
        due = period > 0 and st.key % period == ctx.writer.snapshot_id % period
        return Candidate(
            key=st.key,
            changed=st.changed,
            card_now=st.card_keys_changed and not st.new,
            card_stale=st.card_stale,
            weight=activity(row, known, open_, st.changed),
            discussion_pages=discussion_pages(known),
            due=due,
        )

    async def discussion_stats(self) -> DiscussionStats:
        """The store's discussions per repo, loaded once per crawl."""
        if self._stats_lock is None:
            self._stats_lock = asyncio.Lock()
        async with self._stats_lock:
            if self._disc_stats is None:
                self._disc_stats = await asyncio.to_thread(
                    DiscussionStats.load, self.ctx.store, self.repo_type
                )
        return self._disc_stats

    async def page_details(self, result: PageResult) -> None:
        """Fetch the details of one listing page, in two steps.

        1. The mandatory details (`mandatory`) of every repo at once, concurrently with
           other pages. 2. In page order (each page waits until the one before has done its
           step 2, so the budget's carry passes on deterministically): the page's budget,
           less what step 1 actually took, buys refreshes (`choose_refreshes`); what those
           actually take is charged and the rest carried to the next page. The first crawl
           of a source reads everything.
        """
        ctx = self.ctx
        if self.detail_sem is None:
            self.detail_sem = asyncio.Semaphore(max(1, ctx.settings.concurrency * 2))
        rows = result.rows
        ctx.changed += sum(1 for r in rows if r["_state"].changed)
        if ctx.prev.initial:
            everything = DetailPlan(True, True, True)
            await self._run(result, [(r, everything) for r in rows])
            return
        stats = await self.discussion_stats()
        cands = [self.candidate(r, stats) for r in rows]
        plans = [mandatory(c) for c in cands]
        spent = await self._run(result, self._todo(rows, plans))
        if self._plan_cond is None:
            self._plan_cond = asyncio.Condition()
            self._plan_next = ctx.start_page
            self._carry = ctx.start_carry  # a resumed crawl goes on with its balance
        cond = self._plan_cond
        async with cond:
            try:
                await asyncio.wait_for(
                    cond.wait_for(lambda: (self._plan_next or 0) >= result.page),
                    PLAN_ORDER_WAIT_SECONDS,
                )
            except TimeoutError:
                ctx.event("plan", f"page {result.page} planned before page {self._plan_next}")
            try:
                changed = sum(1 for c in cands if c.changed)
                left = self._carry + ctx.settings.detail_budget * changed - spent
                more, _ = choose_refreshes(cands, plans, left, ctx.writer.snapshot_id)
                extra = [
                    DetailPlan(False, m.discussions and not p.discussions, m.card and not p.card)
                    for p, m in zip(plans, more, strict=True)
                ]
                left -= await self._run(result, self._todo(rows, extra), capped=False)
                self._carry = result.carry = left
            finally:
                self._plan_next = max(self._plan_next or 0, result.page + 1)
                cond.notify_all()

    @staticmethod
    def _todo(
        rows: list[dict[str, Any]], plans: list[DetailPlan]
    ) -> list[tuple[dict[str, Any], DetailPlan]]:
        return [
            (r, p) for r, p in zip(rows, plans, strict=True) if p.commits or p.discussions or p.card
        ]

    async def _run(
        self,
        result: PageResult,
        todo: list[tuple[dict[str, Any], DetailPlan]],
        *,
        capped: bool = True,
    ) -> int:
        """Fetch the planned details of some of a page's repos into the page's result;
        returns the requests they took. `max_detail_repos` caps the mandatory details (a
        guard against everything looking changed); refreshes are bounded by the budget
        already, and skipping one would not make the snapshot incomplete."""
        ctx = self.ctx
        cap = ctx.settings.max_detail_repos
        if cap and capped:
            room = max(0, cap - ctx.detail_repos)
            if len(todo) > room:
                ctx.fail(f"details capped at {cap} repos (max_detail_repos)")
                todo = todo[:room]
        if capped:
            ctx.detail_repos += len(todo)
        outs = await asyncio.gather(*(self.repo_details(r, p) for r, p in todo))
        for (row, _plan), out in zip(todo, outs, strict=True):
            if not out.ok:
                continue
            if out.card_mismatch:
                # the card's front matter says the listing's cardData was cut: fetch again
                again = await self.refetch(row, row["name"])
                if again is not None and row in result.rows:
                    i = result.rows.index(row)
                    result.rows[i] = again
            result.commits.extend(out.commits)
            result.discussions.extend(out.discussions)
            if out.card is not None:
                result.cards.append(out.card)
        return sum(out.requests for out in outs)

    async def repo_details(self, row: dict[str, Any], plan: DetailPlan) -> Fetched:
        assert self.detail_sem is not None
        out = Fetched()
        async with self.detail_sem:
            try:
                await self._repo_details(row, plan, out)
            except Malformed as exc:
                self.ctx.error(f"{row['name']}: {exc}")
                self.ctx.fail(f"details of {row['name']}: {exc}")
                out.ok = False
        return out

    async def _repo_details(self, row: dict[str, Any], plan: DetailPlan, out: Fetched) -> None:
        ctx = self.ctx
        s = ctx.settings
        rt = self.repo_type
        eid, name = row["entity_id"], row["name"]
        sid = ctx.writer.snapshot_id
        api = f"{s.hub_endpoint}/api/{rt}s/{quote(name, safe='/')}"
        if plan.commits:
            # newest first, back to the newest one already stored
            known = ctx.known_commits.get(eid, frozenset())
            url: str | None = f"{api}/commits/main"
            while url:
                out.requests += 1
                body, resp = await self.fetch_json(url, detail="commits", forbidden_ok=True)
                if body is GONE:
                    ctx.event("gone", f"{name}: commits answered 404", url)
                    out.commits = []
                    return
                if body is FORBIDDEN and resp is not None:
                    reason = (resp.headers.get("X-Error-Message") or b"").decode(errors="replace")
                    ctx.event("forbidden", f"{name}: commits answered {resp.status} {reason}", url)
                    out.commits = []
                    return
                if body is None or resp is None:
                    ctx.fail(f"commits of {name} could not be fetched")
                    out.ok = False
                    return
                rows, reached = hub_parse.commit_rows(body, rt, eid, known, sid)
                out.commits.extend(rows)
                url = None if reached else next_link(resp.headers.get("Link"))
        if plan.discussions:
            # every page, for their current state
            p = 0
            while True:
                durl = f"{api}/discussions?p={p}"
                out.requests += 1
                body, resp = await self.fetch_json(durl, detail="discussions", forbidden_ok=True)
                if body is GONE or body is FORBIDDEN:
                    break
                if body is None:
                    ctx.fail(f"discussions of {name} could not be fetched")
                    out.ok = False
                    return
                rows, more = hub_parse.discussion_rows(body, rt, eid, sid)
                out.discussions.extend(rows)
                if not more or not rows:
                    break
                p += 1
        if plan.card:
            # the card (README.md); 404 means the repo has none
            curl = f"{s.hub_endpoint}/{_PREFIX[rt]}{quote(name, safe='/')}/resolve/main/README.md"
            out.requests += 1
            resp = await self.fetch(curl, detail="cards")
            if resp is None or resp.status not in (200, 404, 401, 403):
                ctx.fail(f"card of {name} could not be fetched")
                out.ok = False
                return
            if resp.status in (200, 404):
                raw = resp.body if resp.status == 200 else None
                out.card = hub_parse.card_row(raw, rt, eid, row["sha"], sid)
                listed = row.get("card_fields")
                if out.card["metadata_fields"] and (
                    listed is None or set(listed) != set(out.card["metadata_fields"])
                ):
                    out.card_mismatch = True
