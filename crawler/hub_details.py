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
from dataclasses import dataclass
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
    lam = 0.2 + pop + 2.0 * math.sqrt(open_)
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


def plan_page(
    cands: list[Candidate], *, budget: float, carry: float, snapshot_id: int
) -> tuple[list[DetailPlan], float]:
    """The plans of one listing page and the budget carried to the next page.

    The page adds `budget` requests per changed repo to `carry`. Commits of changed repos,
    cards whose listed metadata changed, and rotation-due refreshes are always planned and
    paid first (the carry may go negative: a debt later pages pay). What is left buys
    refreshes (discussions, plus the card when stale) in race-key order; a refresh that
    does not fit is skipped for cheaper ones. Costs are expected request counts (commits
    1, a card 1, discussions one per 50 known), so the plan depends on the listing and the
    store alone, never on timing or faults.
    """
    left = carry + budget * sum(1 for c in cands if c.changed)
    plans: list[DetailPlan] = []
    for c in cands:
        disc = c.due
        card = c.card_now or (c.due and c.card_stale)
        left -= int(c.changed) + int(card) + (c.discussion_pages if disc else 0)
        plans.append(DetailPlan(c.changed, disc, card))
    if left >= 1:
        order = sorted(
            (
                race_key(c.key, snapshot_id, c.weight, _refresh_cost(c, p)),
                c.key,
                i,
            )
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


def _refresh_cost(c: Candidate, p: DetailPlan) -> int:
    return c.discussion_pages + int(c.card_stale and not p.card)


class HubDetails(BaseSpider):
    """Detail requests of the Hub spider (a base class of `HubSpider`)."""

    repo_type: str
    detail_sem: asyncio.Semaphore | None
    # the detail budget's state, advanced in page order (see `page_details`)
    _carry: float = 0.0
    _plan_next: int | None = None
    _plan_cond: asyncio.Condition | None = None
    _disc_stats: DiscussionStats | None = None

    async def refetch(self, item: Any, name: str | None) -> dict[str, Any] | None:
        """A repo's record fetched again (the listing spider's repo-info request)."""
        raise NotImplementedError  # HubSpider overrides it

    def candidate(self, row: dict[str, Any]) -> Candidate:
        ctx = self.ctx
        st: RowState = row["_state"]
        stats = self._disc_stats or DiscussionStats.empty()
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

    async def plan_rows(self, page: int, rows: list[dict[str, Any]]) -> list[DetailPlan]:
        """The plans of one page's rows, computed strictly in page order: the budget's
        carry passes from page to page, so the order makes the plan deterministic."""
        ctx = self.ctx
        if ctx.prev.initial:
            return [DetailPlan(True, True, True)] * len(rows)  # the first crawl reads all
        if self._plan_cond is None:
            self._plan_cond = asyncio.Condition()
            self._plan_next = ctx.start_page
        cond = self._plan_cond
        async with cond:
            try:
                await asyncio.wait_for(
                    cond.wait_for(lambda: (self._plan_next or 0) >= page),
                    PLAN_ORDER_WAIT_SECONDS,
                )
            except TimeoutError:
                ctx.event("plan", f"page {page} planned before page {self._plan_next}")
            if self._disc_stats is None:
                self._disc_stats = await asyncio.to_thread(
                    DiscussionStats.load, ctx.store, self.repo_type
                )
            cands = [self.candidate(r) for r in rows]
            plans, self._carry = plan_page(
                cands,
                budget=ctx.settings.detail_budget,
                carry=self._carry,
                snapshot_id=ctx.writer.snapshot_id,
            )
            self._plan_next = max(self._plan_next or 0, page + 1)
            cond.notify_all()
        return plans

    async def page_details(self, result: PageResult) -> None:
        ctx = self.ctx
        if self.detail_sem is None:
            self.detail_sem = asyncio.Semaphore(max(1, ctx.settings.concurrency * 2))
        todo: list[tuple[dict[str, Any], DetailPlan]] = []
        plans = await self.plan_rows(result.page, result.rows)
        for r, plan in zip(result.rows, plans, strict=True):
            if r["_state"].changed:
                ctx.changed += 1
            if plan.commits or plan.discussions or plan.card:
                todo.append((r, plan))
        cap = ctx.settings.max_detail_repos
        if cap:
            room = max(0, cap - ctx.detail_repos)
            if len(todo) > room:
                ctx.fail(f"details capped at {cap} repos (max_detail_repos)")
                todo = todo[:room]
        ctx.detail_repos += len(todo)
        outs = await asyncio.gather(*(self.repo_details(r, p) for r, p in todo))
        for (row, _plan), out in zip(todo, outs, strict=True):
            if out is None:
                continue
            commits, discussions, card, card_mismatch = out
            if card_mismatch:
                # the card's front matter says the listing's cardData was cut: fetch again
                again = await self.refetch(row, row["name"])
                if again is not None:
                    i = result.rows.index(row)
                    result.rows[i] = again
            result.commits.extend(commits)
            result.discussions.extend(discussions)
            if card is not None:
                result.cards.append(card)

    async def repo_details(
        self, row: dict[str, Any], plan: DetailPlan
    ) -> tuple[list[dict[str, Any]], list[dict[str, Any]], dict[str, Any] | None, bool] | None:
        assert self.detail_sem is not None
        async with self.detail_sem:
            try:
                return await self._repo_details(row, plan)
            except Malformed as exc:
                self.ctx.error(f"{row['name']}: {exc}")
                self.ctx.fail(f"details of {row['name']}: {exc}")
                return None

    async def _repo_details(
        self, row: dict[str, Any], plan: DetailPlan
    ) -> tuple[list[dict[str, Any]], list[dict[str, Any]], dict[str, Any] | None, bool] | None:
        ctx = self.ctx
        s = ctx.settings
        rt = self.repo_type
        eid, name = row["entity_id"], row["name"]
        sid = ctx.writer.snapshot_id
        api = f"{s.hub_endpoint}/api/{rt}s/{quote(name, safe='/')}"
        commits: list[dict[str, Any]] = []
        if plan.commits:
            # newest first, back to the newest one already stored
            known = ctx.known_commits.get(eid, frozenset())
            url: str | None = f"{api}/commits/main"
            while url:
                body, resp = await self.fetch_json(url, detail="commits", forbidden_ok=True)
                if body is GONE:
                    ctx.event("gone", f"{name}: commits answered 404", url)
                    return [], [], None, False
                if body is FORBIDDEN and resp is not None:
                    reason = (resp.headers.get("X-Error-Message") or b"").decode(errors="replace")
                    ctx.event("forbidden", f"{name}: commits answered {resp.status} {reason}", url)
                    return [], [], None, False
                if body is None or resp is None:
                    ctx.fail(f"commits of {name} could not be fetched")
                    return None
                rows, reached = hub_parse.commit_rows(body, rt, eid, known, sid)
                commits.extend(rows)
                url = None if reached else next_link(resp.headers.get("Link"))
        discussions: list[dict[str, Any]] = []
        if plan.discussions:
            # every page, for their current state
            p = 0
            while True:
                durl = f"{api}/discussions?p={p}"
                body, resp = await self.fetch_json(durl, detail="discussions", forbidden_ok=True)
                if body is GONE or body is FORBIDDEN:
                    break
                if body is None:
                    ctx.fail(f"discussions of {name} could not be fetched")
                    return None
                rows, more = hub_parse.discussion_rows(body, rt, eid, sid)
                discussions.extend(rows)
                if not more or not rows:
                    break
                p += 1
        card = None
        mismatch = False
        if plan.card:
            # the card (README.md); 404 means the repo has none
            curl = f"{s.hub_endpoint}/{_PREFIX[rt]}{quote(name, safe='/')}/resolve/main/README.md"
            resp = await self.fetch(curl, detail="cards")
            if resp is None or resp.status not in (200, 404, 401, 403):
                ctx.fail(f"card of {name} could not be fetched")
                return None
            if resp.status in (200, 404):
                raw = resp.body if resp.status == 200 else None
                card = hub_parse.card_row(raw, rt, eid, row["sha"], sid)
                listed = row.get("card_fields")
                if card["metadata_fields"] and (
                    listed is None or set(listed) != set(card["metadata_fields"])
                ):
                    mismatch = True
        return commits, discussions, card, mismatch
