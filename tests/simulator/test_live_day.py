"""A live world within one simulated day: counters move between two requests, creations,
deletions and renames happen at their own instants, truth answers as of any instant, a walk
by downloads sees repos cross its cursor, and the same requests give the same bytes."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from datetime import datetime
from typing import Any

import pytest

from simulator.config import SimConfig
from simulator.testing import SimServer, simulator_server
from tests.simulator.helpers import get, get_json, page_bodies, truth

DAY = 86_400
SMALL = {"models": 300, "datasets": 30, "spaces": 30, "npm": 10, "pypi": 10}
# bigger, so a single day holds creations, deletions and renames of models
BUSY = {"models": 4000, "datasets": 10, "spaces": 10, "npm": 10, "pypi": 10}


def ts(iso: str) -> float:
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


def clock(srv: SimServer) -> dict[str, Any]:
    return get_json(f"{srv.url}/_sim/clock")  # type: ignore[no-any-return]


def move(srv: SimServer, seconds: float) -> dict[str, Any]:
    return get_json(f"{srv.url}/_sim/advance?seconds={seconds}", method="POST")  # type: ignore[no-any-return]


def no_redirect(url: str) -> tuple[int, dict[str, str], bytes]:
    """GET without following a redirect (urllib follows 307 by default)."""

    class Keep(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args: Any, **kwargs: Any) -> None:
            return None

    try:
        with urllib.request.build_opener(Keep).open(url, timeout=30) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


def by_id(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {r["_id"]: r for r in rows}


def test_counters_change_between_two_requests_within_one_day() -> None:
    live = {**SMALL, "live_seconds_per_request": 3600.0}  # an hour a request
    with simulator_server(seed=23, **live) as srv:
        move(srv, DAY)  # day 1: trendingScore is 0 everywhere on the first day
        q = "/api/models?sort=downloads&limit=50&expand=downloads&expand=likes&expand=trendingScore"
        _s, _h, a = get(srv.url + q)
        _s, _h, b = get(srv.url + q)
        c = clock(srv)
        assert c["day"] == 1 and c["state_at"] == "2025-01-02T02:00:00.000Z"
        first, second = by_id(json.loads(a)), by_id(json.loads(b))
        same = first.keys() & second.keys()
        moved = {k: (first[k]["downloads"], second[k]["downloads"]) for k in same
                 if first[k]["downloads"] != second[k]["downloads"]}  # fmt: skip
        assert moved, "no counter moved in an hour"
        # likes and trendingScore move slower: over twelve hours of the same day
        for _ in range(12):
            get(srv.url + "/api/models?limit=1")
        assert clock(srv)["day"] == 1
        t0 = ts(c["now"])
        early = by_id(truth(srv.url, "hub:model", at=str(t0)))
        late = by_id(truth(srv.url, "hub:model"))
        both = early.keys() & late.keys()
        assert any(early[k]["trendingScore"] != late[k]["trendingScore"] for k in both)
        assert any(early[k]["likes"] < late[k]["likes"] for k in both)
        assert all(early[k]["likes"] <= late[k]["likes"] for k in both)
        # the move is a share of the day's: by the day's end most have moved further
        move(srv, DAY - 14 * 3600)  # to the next midnight
        assert clock(srv)["day"] == 2
        end = by_id(truth(srv.url, "hub:model"))
        further = [k for k, (x, y) in moved.items() if k in end and abs(end[k]["downloads"] - x) > abs(y - x)]  # fmt: skip
        assert len(further) > len(moved) / 2, (moved, further)


def test_creations_deletions_and_renames_happen_at_their_instants() -> None:
    with simulator_server(seed=22, **BUSY) as srv:
        start = by_id(truth(srv.url, "hub:model"))
        t0 = ts(clock(srv)["now"])
        move(srv, DAY / 2)  # noon
        noon = by_id(truth(srv.url, "hub:model"))
        assert clock(srv)["state_at"] == "2025-01-01T12:00:00.000Z"
        move(srv, DAY / 2)
        end = by_id(truth(srv.url, "hub:model"))
        assert clock(srv)["day"] == 1

        def changes(a: dict[str, Any], b: dict[str, Any]) -> tuple[set[str], set[str], set[str]]:
            created = b.keys() - a.keys()
            deleted = a.keys() - b.keys()
            renamed = {k for k in a.keys() & b.keys() if a[k]["id"] != b[k]["id"]}
            return created, deleted, renamed

        c_noon, d_noon, r_noon = changes(start, noon)
        c_day, d_day, r_day = changes(start, end)
        # some of the day's changes happened by noon, the others after it
        for part, whole in ((c_noon, c_day), (d_noon, d_day), (r_noon, r_day)):
            assert part and part < whole, (len(part), len(whole))
        # a repo exists from its createdAt on
        for k in c_day:
            assert (k in noon) == (ts(end[k]["createdAt"]) <= t0 + DAY / 2)
        # at noon, a morning rename's old name redirects, an afternoon one's still answers
        early = next(iter(r_noon))
        late = next(iter(r_day - r_noon))
        with simulator_server(seed=22, **BUSY) as other:
            move(other, DAY / 2)
            status, h, _b = no_redirect(f"{other.url}/api/models/{start[early]['id']}")
            assert status == 307 and h["Location"].endswith(noon[early]["id"])
            status, _h, body = get(f"{other.url}/api/models/{start[late]['id']}")
            assert status == 200 and json.loads(body)["id"] == start[late]["id"]
            gone = next(iter(d_day - d_noon))  # deleted in the afternoon: still there at noon
            assert get(f"{other.url}/api/models/{start[gone]['id']}")[0] == 200
            unborn = next(iter(c_day - c_noon))  # created in the afternoon: not yet
            assert get(f"{other.url}/api/models/{end[unborn]['id']}")[0] == 404


def test_truth_as_of_an_instant_within_the_day_differs_from_now() -> None:
    with simulator_server(seed=23, **SMALL) as srv:
        t0 = ts(clock(srv)["now"])
        move(srv, 6 * 3600)
        six = truth(srv.url, "hub:model")
        move(srv, 12 * 3600)
        now = truth(srv.url, "hub:model")
        assert clock(srv)["day"] == 0
        at_six = truth(srv.url, "hub:model", at=str(t0 + 6 * 3600))
        assert at_six == six and at_six != now
        assert truth(srv.url, "hub:model", at=str(t0 + 18 * 3600)) == now
        # an instant inside a resolution step shows the step's state (60 s by default)
        assert truth(srv.url, "hub:model", at=str(t0 + 6 * 3600 + 59)) == six


def walk(url: str) -> list[dict[str, Any]]:
    return [item for body in page_bodies(url) for item in json.loads(body)]


def test_a_downloads_walk_while_live_sees_repos_cross_the_cursor() -> None:
    # 30 pages of 10 in 20 simulated hours: the counters move between every two pages
    live = {**SMALL, "live_seconds_per_request": 2400.0}
    with simulator_server(seed=24, **live) as srv:
        before = {r["id"] for r in truth(srv.url, "hub:model")}
        items = walk(f"{srv.url}/api/models?sort=downloads&limit=10&expand=downloads")
        after = {r["id"] for r in truth(srv.url, "hub:model")}
        assert clock(srv)["day"] == 0  # all within one simulated day
        ids = [it["id"] for it in items]
        repeated = {i for i in ids if ids.count(i) > 1}
        skipped = (before & after) - set(ids)
        assert repeated or skipped, "no repo crossed the cursor"
        # a repeated repo was met again because its key fell behind the cursor
        for rid in repeated:
            seen = [it["downloads"] for it in items if it["id"] == rid]
            assert seen[-1] < seen[0], (rid, seen)


def run_sequence(seed: int) -> list[bytes]:
    """A fixed sequence of requests against a fresh live world; every answer's body."""
    live = {**SMALL, "live_seconds_per_request": 1800.0, "page_size": 40}
    with simulator_server(seed=seed, **live) as srv:
        q = "/api/models?sort=downloads&expand=downloads&expand=likes"
        bodies = page_bodies(srv.url + q)  # 8 pages
        ids = [it["id"] for it in json.loads(bodies[0])[:5]]
        for rid in ids:
            bodies.append(get(f"{srv.url}/api/models/{rid}")[2])
        bodies.append(get(f"{srv.url}/api/datasets?sort=likes&expand=likes")[2])
        bodies.append(get(f"{srv.url}/_sim/clock")[2])
        bodies.append(get(f"{srv.url}/_sim/truth?source=hub:model")[2])
        at = ts(json.loads(bodies[-2])["now"]) - 3 * 3600
        bodies.append(get(f"{srv.url}/_sim/truth?source=hub:model&at={at}")[2])
    return bodies


def test_the_same_requests_give_the_same_bytes() -> None:
    a, b = run_sequence(25), run_sequence(25)
    assert a == b
    assert json.loads(a[-3])["state_at"] == "2025-01-01T07:00:00.000Z"  # 14 requests of 30 min
    assert a[-1] != a[-2]  # the world moved in the last 3 hours
    assert run_sequence(26) != a


def test_a_day_resolution_keeps_the_midnight_steps() -> None:
    live = {**SMALL, "live_seconds_per_request": 3600.0, "live_resolution_seconds": DAY}
    with simulator_server(seed=21, **live) as srv:
        q = "/api/models?sort=downloads&limit=50&expand=downloads&expand=likes"
        bodies = [get(srv.url + q)[2] for _ in range(23)]
        assert len(set(bodies)) == 1  # nothing moves before midnight
        assert get(srv.url + q)[2] != bodies[0]  # the 24th request crosses it


def test_days_and_seconds_reach_the_same_instant_the_same_way() -> None:
    with simulator_server(seed=27, **SMALL) as a, simulator_server(seed=27, **SMALL) as b:
        move(a, 6 * 3600)
        get_json(f"{a.url}/_sim/advance?days=1", method="POST")  # keeps the time of day
        move(b, DAY + 6 * 3600)
        assert clock(a)["state_at"] == clock(b)["state_at"] == "2025-01-02T06:00:00.000Z"
        assert truth(a.url, "hub:model") == truth(b.url, "hub:model")
        for bad in ("-5", "soon"):
            status, _h, body = get(f"{a.url}/_sim/advance?seconds={bad}", method="POST")
            assert status == 400 and b"seconds" in body
    with pytest.raises(ValueError, match="live_resolution_seconds"):
        SimConfig(live_resolution_seconds=0)
