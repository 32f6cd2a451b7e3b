"""The Hub's listing order and keyset cursor: trending-like by default, `sort`/`direction`,
ties broken by `_id`, and a repo whose key moves between two pages crossing the cursor."""

from __future__ import annotations

import json
import urllib.request
from typing import Any

from huggingface_hub import HfApi

from simulator.app import WORLD
from simulator.testing import SimServer, simulator_server
from tests.simulator.helpers import get, truth

SMALL = {"models": 300, "datasets": 60, "spaces": 40, "npm": 10, "pypi": 10, "page_size": 25}


def walk(url: str, between: Any = None) -> list[dict[str, Any]]:
    """Every page of a listing through its Link headers; `between(n)` runs after page n."""
    out: list[dict[str, Any]] = []
    nxt: str | None = url
    n = 0
    while nxt:
        with urllib.request.urlopen(nxt) as r:
            out += json.loads(r.read())
            link = r.headers.get("Link")
        nxt = link.split(";")[0].strip("<>") if link else None
        n += 1
        if between is not None and nxt:
            between(n)
    return out


def ordered_by(items: list[dict[str, Any]], field: str, desc: bool) -> bool:
    keys = [((-1 if desc else 1) * it[field], it["_id"]) for it in items]
    return keys == sorted(keys)


def test_default_order_is_trending_with_id_ties() -> None:
    with simulator_server(seed=5, **SMALL) as srv:
        srv.call(srv.app[WORLD].advance, 2)  # trendingScore grows from day 1 on
        items = walk(f"{srv.url}/api/models?expand=trendingScore&expand=downloads")
        assert len(items) == len(truth(srv.url, "hub:model"))
        assert ordered_by(items, "trendingScore", desc=True)
        assert items[0]["trendingScore"] > items[-1]["trendingScore"]


def test_created_at_ascending_walk_is_complete_and_stable_while_the_world_moves() -> None:
    with simulator_server(seed=6, **SMALL) as srv:
        w = srv.app[WORLD]
        before = {r["_id"] for r in truth(srv.url, "hub:model")}
        items = walk(
            f"{srv.url}/api/models?sort=createdAt&direction=1&expand=createdAt",
            between=lambda n: srv.call(w.advance, 1) if n % 3 == 0 else None,
        )
        after = {r["_id"] for r in truth(srv.url, "hub:model")}
        ids = [it["_id"] for it in items]
        assert len(ids) == len(set(ids))  # nothing repeated
        assert before & after <= set(ids)  # nothing alive throughout was skipped
        assert after - before <= set(ids)  # created after the walk began: at the end
        created = [(it["createdAt"], it["_id"]) for it in items]
        assert created == sorted(created)
        assert w.day > 0


def _page_rows(srv: SimServer, q: str) -> tuple[list[dict[str, Any]], str]:
    status, h, body = get(f"{srv.url}/api/models?{q}")
    assert status == 200
    return json.loads(body), h["Link"].split(";")[0].strip("<>")


def test_a_key_moving_across_the_cursor_is_skipped_or_repeated() -> None:
    with simulator_server(seed=7, **SMALL) as srv:
        w = srv.app[WORLD]
        t = w.hub["model"]
        q = "sort=likes&expand=likes&limit=25"
        first, nxt = _page_rows(srv, q)
        rest_before = walk(nxt)
        riser = rest_before[-1]["id"]  # last of the walk: rises above the first page
        faller = first[0]["id"]  # first of the walk: falls below everything
        top = first[0]["likes"]

        def move() -> None:
            t.cols["likes"][t.by_name[riser]] = top + 1
            t.cols["likes"][t.by_name[faller]] = -1
            t.version += 1

        srv.call(move)
        rest_after = walk(nxt)
        got = [it["id"] for it in rest_after]
        assert riser not in got  # its key rose past the cursor: the walk skips it
        assert got[-1] == faller  # its key fell behind the cursor: the walk meets it again
        assert len(got) == len(rest_before)


def test_sort_and_direction_of_every_kind() -> None:
    with simulator_server(seed=8, **SMALL) as srv:
        for path, field in (("models", "downloads"), ("datasets", "likes"), ("spaces", "likes")):
            for direction, desc in (("-1", True), ("1", False)):
                items = walk(
                    f"{srv.url}/api/{path}?sort={field}&direction={direction}&expand={field}"
                )
                assert ordered_by(items, field, desc), (path, field, direction)
        status, _h, body = get(f"{srv.url}/api/spaces?sort=downloads")
        assert status == 400 and b"allowed" in body


def test_official_client_walks_every_page_by_created_at() -> None:
    with simulator_server(seed=9, **SMALL) as srv:
        api = HfApi(endpoint=srv.url, token=False)
        ms = list(api.list_models(sort="createdAt", expand=["createdAt"], limit=None))
        assert {m.id for m in ms} == {r["id"] for r in truth(srv.url, "hub:model")}
        created = [m.created_at for m in ms]
        assert created == sorted(created, reverse=True)  # type: ignore[type-var]
