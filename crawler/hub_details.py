"""The details of listed Hub repos: commits back to the newest stored one, discussions,
and the card (README.md), fetched through `engine.download_async` so they pass the same
downloader middlewares as the listing (`HubDetails.repo_details`).

Which repos get them, and when, is the details backlog's rule (crawler/backlog.py,
docs/crawler.md Details): after the listing snapshot, most valuable first by `activity`,
once per sha. `plan_page` / `choose_refreshes` are the budgeted refresh draw of earlier
versions (a deterministic weighted sample, an exponential race keyed on entity and
snapshot), kept with their tests but no longer run by a crawl.
"""

from __future__ import annotations

import asyncio
import hashlib
import math
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import numpy as np
import numpy.typing as npt
import polars as pl

from crawler import hub_parse
from crawler.errors import Malformed
from crawler.links import next_link
from crawler.spider_base import FORBIDDEN, GONE, BaseSpider
from storage import Store
from storage.errors import StoreError

_PREFIX = {"model": "", "dataset": "datasets/", "space": "spaces/"}
# the Hub's discussions page size (hub-api.md 5): a refresh of n known discussions costs
# ceil(n / 50) requests
DISCUSSIONS_PAGE = 50


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
    """Detail requests of one Hub repo (a base class of the backlog's `DrainSpider`)."""

    repo_type: str
    detail_sem: asyncio.Semaphore | None
    snapshot_id: int  # the complete snapshot whose listed shas are detailed

    async def fetch_file(self, url: str, *, detail: str) -> Any:
        """GET a repo file, retrying a body its ETag disowns (cut short on the way: a
        whole 200 on the wire, half the file); None when it kept failing."""
        s = self.ctx.settings
        for attempt in range(s.max_retries + 1):
            resp = await self.fetch(url, detail=detail)
            if resp is None or resp.status != 200 or _blob_matches(resp):
                return resp
            self.ctx.event("malformed", "body does not match its ETag (truncated)", url)
            if attempt < s.max_retries:
                from crawler.middlewares import backoff

                await asyncio.sleep(backoff(attempt, s.backoff_base_seconds, s.backoff_max_seconds))
        self.ctx.error("body kept failing to match its ETag", url)
        return None

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
        sid = self.snapshot_id
        api = f"{s.hub_endpoint}/api/{rt}s/{quote(name, safe='/')}"
        # at the listed sha, the one the backlog marks them fetched at: `main` may have moved
        # on since the listing, and its newer commits (card) would be filed under the old sha
        rev = quote(row["sha"], safe="") if row.get("sha") else "main"
        if plan.commits:
            # newest first, back to the newest one already stored
            known = ctx.known_commits.get(eid, frozenset())
            url: str | None = f"{api}/commits/{rev}"
            at_sha = rev != "main"
            while url:
                out.requests += 1
                body, resp = await self.fetch_json(url, detail="commits", forbidden_ok=True)
                if body is GONE and at_sha and not out.commits:
                    # the sha is gone from the history (a force push): the branch as it is
                    at_sha, rev, url = False, "main", f"{api}/commits/main"
                    continue
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
            repo = f"{s.hub_endpoint}/{_PREFIX[rt]}{quote(name, safe='/')}"
            out.requests += 1
            resp = await self.fetch_file(f"{repo}/resolve/{rev}/README.md", detail="cards")
            if resp is not None and _revision_not_found(resp) and rev != "main":
                out.requests += 1
                resp = await self.fetch_file(f"{repo}/resolve/main/README.md", detail="cards")
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


def _blob_matches(resp: Any) -> bool:
    """The body is the file its ETag names: a git blob id (40 hex; the Hub's ETag of a file
    kept in git) is the SHA-1 of `blob <size>\\0<body>`. Any other ETag (an LFS sha256,
    none at all) cannot be checked, so it passes."""
    raw = (resp.headers.get("ETag") or b"").decode(errors="replace")
    etag = raw.removeprefix("W/").strip('"').lower()
    if len(etag) != 40 or any(c not in "0123456789abcdef" for c in etag):
        return True
    body = bytes(resp.body)
    return hashlib.sha1(b"blob %d\0" % len(body) + body).hexdigest() == etag


def _revision_not_found(resp: Any) -> bool:
    """A 404 saying the revision, not the file, is missing (the Hub's `X-Error-Code`)."""
    code = resp.headers.get("X-Error-Code") or b""
    return bool(resp.status == 404 and code.decode(errors="replace") == "RevisionNotFound")
