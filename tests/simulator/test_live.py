"""A live world: each Hub request moves the simulated clock, a day's changes happen as the
clock passes their instants and a day completes at each simulated midnight, the result is a
function of (seed, requests), and truth answers as of now or as of an earlier instant.
(Changes within one day: tests/simulator/test_live_day.py; the official client's walk while
live: tests/simulator/test_hf_client.py.)"""

from __future__ import annotations

from datetime import datetime

from simulator.app import WORLD
from simulator.testing import simulator_server
from tests.simulator.helpers import get, get_json, truth

# a simulated day every 20 requests, so a walk of a few pages crosses several midnights
LIVE = {"models": 200, "datasets": 30, "spaces": 30, "npm": 10, "pypi": 10, "page_size": 20,
        "live_seconds_per_request": 86_400 / 20}  # fmt: skip


def requests(url: str, n: int) -> None:
    for i in range(n):
        get(f"{url}/api/models?limit=3&sort=downloads&skip={i}")


def test_requests_move_the_clock_and_run_the_days() -> None:
    with simulator_server(seed=3, **LIVE) as srv:
        c0 = get_json(f"{srv.url}/_sim/clock")
        requests(srv.url, 50)
        c1 = get_json(f"{srv.url}/_sim/clock")
        assert c0["live"] and c0["day"] == 0 and c1["day"] == 2  # 50 requests = 2.5 days
        assert c1["now"] > c0["now"]
        assert get_json(f"{srv.url}/_sim/clock")["day"] == 2  # admin routes do not tick


def test_live_world_is_a_function_of_seed_and_requests() -> None:
    def run(n: int) -> list[dict]:
        with simulator_server(seed=3, **LIVE) as srv:
            requests(srv.url, n)
            return truth(srv.url, "hub:model")

    a, b = run(45), run(45)
    assert a == b
    with simulator_server(seed=3, **{**LIVE, "live_seconds_per_request": 0.0}) as srv:
        srv.call(srv.app[WORLD].advance, 2)
        # a live world at midnight d (40 requests: 2 days) equals a world advanced d days
        assert truth(srv.url, "hub:model") == run(40)
        # ... and a quarter-day later (45 requests) the world moved the clock there explicitly
        assert truth(srv.url, "hub:model") != a
        get_json(f"{srv.url}/_sim/advance?seconds=21600", method="POST")
        assert truth(srv.url, "hub:model") == a


def test_truth_as_of_an_instant() -> None:
    with simulator_server(seed=4, **LIVE) as srv:
        start = truth(srv.url, "hub:model")
        t0 = get_json(f"{srv.url}/_sim/clock")["now"]
        requests(srv.url, 70)
        now = truth(srv.url, "hub:model")
        assert now != start
        assert truth(srv.url, "hub:model", at=t0) == start
        clock = get_json(f"{srv.url}/_sim/clock")
        assert clock["day"] == 3 and clock["now"] == clock["state_at"]
        assert truth(srv.url, "hub:model", at=clock["now"]) == now  # as of now: this world
        ts = datetime.fromisoformat(t0.replace("Z", "+00:00")).timestamp()
        day1 = truth(srv.url, "hub:model", at=str(ts + 86_400 + 1))
        assert day1 not in (start, now)
        morning = truth(srv.url, "hub:model", at=str(ts + 86_400 * 3 + 5))  # today, earlier
        assert morning not in (start, day1, now)
        future = "2100-01-01T00:00:00Z"
        status, _h, body = get(f"{srv.url}/_sim/truth?source=hub:model&at={future}")
        assert status == 400 and b"after" in body
