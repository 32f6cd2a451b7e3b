"""The details of listed Hub repos: commits back to the newest stored one, discussions,
and the card (README.md), fetched through `engine.download_async` so they pass the same
downloader middlewares as the listing. Which repos get which details is `plan`'s rule.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from crawler import hub_parse
from crawler.errors import Malformed
from crawler.items import PageResult
from crawler.links import next_link
from crawler.prev import RowState
from crawler.spider_base import FORBIDDEN, GONE, BaseSpider

_PREFIX = {"model": "", "dataset": "datasets/", "space": "spaces/"}


@dataclass(frozen=True)
class DetailPlan:
    """The detail requests one listed repo gets in this crawl."""

    commits: bool
    discussions: bool
    card: bool


class HubDetails(BaseSpider):
    """Detail requests of the Hub spider (a base class of `HubSpider`)."""

    repo_type: str
    detail_sem: asyncio.Semaphore | None

    async def refetch(self, item: Any, name: str | None) -> dict[str, Any] | None:
        """A repo's record fetched again (the listing spider's repo-info request)."""
        raise NotImplementedError  # HubSpider overrides it

    def plan(self, row: dict[str, Any]) -> DetailPlan:
        """Which details of a listed repo this crawl fetches (docs/crawler.md, Details).

        Commits whenever the repo is new or its sha / lastModified moved: that is the only
        way to see new commits. Discussions change without a commit and the card's body
        without a metadata change, and the listing shows neither; so both are refreshed on
        a rotation: the repos whose entity hash falls in this snapshot's slot (one in
        `refresh_days`) get their discussions, and their card when it was read at an older
        sha. A card whose metadata keys changed is read at once. The first crawl of a
        source reads everything.
        """
        ctx = self.ctx
        st: RowState = row["_state"]
        if ctx.prev.initial:
            return DetailPlan(True, True, True)
        period = ctx.settings.refresh_days
        in_slot = period > 0 and st.key % period == ctx.writer.snapshot_id % period
        card = (st.card_keys_changed and not st.new) or (in_slot and st.card_stale)
        return DetailPlan(st.changed, in_slot, card)

    async def page_details(self, result: PageResult) -> None:
        ctx = self.ctx
        if self.detail_sem is None:
            self.detail_sem = asyncio.Semaphore(max(1, ctx.settings.concurrency * 2))
        todo: list[tuple[dict[str, Any], DetailPlan]] = []
        for r in result.rows:
            plan = self.plan(r)
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
