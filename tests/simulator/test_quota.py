"""The Hub's quotas: three buckets per client (token or address), the tiers' quotas, the
RateLimit headers on every answer, 429 when spent, `quota off`, `time_scale` (the official
client waiting out a 429: tests/simulator/test_hf_client.py)."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from simulator.app import FAULTS, WORLD
from simulator.config import QUOTA_TIERS, QuotaConfig
from simulator.quota import OPEN_QUOTA, QuotaState
from simulator.testing import SimServer, simulator_server
from tests.simulator.helpers import get_json

SMALL = {"models": 60, "datasets": 20, "spaces": 20, "npm": 10, "pypi": 10, "page_size": 20}


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


OPENER = urllib.request.build_opener(NoRedirect)


def call(url: str, token: str | None = None, method: str = "GET") -> tuple[int, dict[str, str]]:
    """One request, redirects not followed; (status, headers)."""
    req = urllib.request.Request(url, method=method)
    if token is not None:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with OPENER.open(req, timeout=30) as r:
            r.read()
            return r.status, dict(r.headers)
    except urllib.error.HTTPError as e:
        e.read()
        return e.code, dict(e.headers)


@pytest.fixture(scope="module")
def hub() -> Iterator[tuple[SimServer, FakeClock]]:
    cfg = QuotaConfig(tokens=(("hf_pro", "pro"),))
    with simulator_server(seed=4, quota=cfg, **SMALL) as srv:
        clock = FakeClock()
        quota = srv.app[FAULTS].quota
        assert quota is not None
        quota.clock = clock
        yield srv, clock


def fresh(hub: tuple[SimServer, FakeClock]) -> str:
    """Move the fake clock past every window so a test starts with full buckets."""
    srv, clock = hub
    clock.now += 30_000  # a whole number of windows: each starts afresh
    return srv.url


def test_every_bucket_has_its_headers_and_the_anonymous_quota(hub) -> None:
    url = fresh(hub)
    repo = call(f"{url}/api/models?limit=1")
    assert repo[0] == 200
    assert repo[1]["RateLimit-Policy"] == '"fixed window";"api";q=500;w=300'
    assert repo[1]["RateLimit"] == '"api";r=499;t=300'
    first = json.loads(urllib.request.urlopen(f"{url}/api/models?limit=1").read())[0]["id"]
    status, h = call(f"{url}/{first}/resolve/main/README.md")
    assert h["RateLimit-Policy"] == '"fixed window";"resolvers";q=3000;w=300', status
    status, h = call(f"{url}/{first}")  # a web page: the pages bucket, even when it is a 404
    assert h["RateLimit-Policy"] == '"fixed window";"pages";q=100;w=300', status
    status, h = call(f"{url}/_sim/clock")
    assert status == 200 and "RateLimit" not in h  # admin is never metered


def test_every_kind_of_answer_names_its_bucket(hub) -> None:
    url = fresh(hub)
    srv, _clock = hub
    t = srv.app[WORLD].hub["model"]
    rid = t.names[0]
    old = next(iter(t.moved))  # a legacy id moved under its owner: a 307
    answers = {
        "listing": call(f"{url}/api/models?limit=1"),
        "bad expand": call(f"{url}/api/models?expand=usedStorage"),
        "bad sort": call(f"{url}/api/models?sort=bogus"),
        "no repo": call(f"{url}/api/models/nobody/nothing"),
        "old name": call(f"{url}/api/models/{old}"),
        "method": call(f"{url}/api/models/{rid}", method="POST"),  # the router's own 405
        "no route": call(f"{url}/api/nothing-here"),
        "file": call(f"{url}/{rid}/resolve/main/README.md", method="HEAD"),
        "no file": call(f"{url}/{rid}/resolve/main/nope.bin"),
        "page": call(f"{url}/{rid}"),
    }
    statuses = {k: s for k, (s, _h) in answers.items()}
    assert statuses == {"listing": 200, "bad expand": 400, "bad sort": 400, "no repo": 404,
                        "old name": 307, "method": 405, "no route": 404, "file": 200,
                        "no file": 404, "page": 404}  # fmt: skip
    buckets = {k: h.get("RateLimit-Policy", "").split(";")[1] for k, (_s, h) in answers.items()}
    want = {k: '"resolvers"' if "file" in k else '"pages"' if k == "page" else '"api"'
            for k in answers}  # fmt: skip
    assert buckets == want
    # ten api requests so far in this window, each counted and headed in turn
    assert answers["no route"][1]["RateLimit"].startswith('"api";r=493;')
    # a fault's 5xx was counted too, so it carries the headers (setting faults starts every
    # window afresh: this is the window's first request)
    get_json(f"{url}/_sim/faults", "POST", {"server_error": 1.0})
    try:
        status, h = call(f"{url}/api/models?limit=1")
    finally:
        get_json(f"{url}/_sim/faults", "POST", {"rate": 0})
    assert status in (500, 502, 503) and h["RateLimit"].startswith('"api";r=499;')


def test_pages_bucket_spent_answers_429_until_the_window_ends(hub) -> None:
    url = fresh(hub)
    _srv, clock = hub
    quota = QUOTA_TIERS["anonymous"]["pages"]
    got = [call(f"{url}/some-page")[0] for _ in range(quota)]
    assert 429 not in got
    status, h = call(f"{url}/some-page")
    assert status == 429 and h["RateLimit"] == '"pages";r=0;t=300'
    # the other buckets of the same client are untouched
    assert call(f"{url}/api/models?limit=1")[0] == 200
    clock.now += 150
    status, h = call(f"{url}/some-page")
    assert status == 429 and h["RateLimit"] == '"pages";r=0;t=150'
    clock.now += 150  # a fixed window: full again exactly 300 s after its first request
    status, h = call(f"{url}/some-page")
    assert status == 200 or status == 404
    assert h["RateLimit"] == f'"pages";r={quota - 1};t=300'


def test_a_token_is_its_own_client_with_its_tier(hub) -> None:
    url = fresh(hub)
    _s, anon = call(f"{url}/api/models?limit=1")
    _s, free = call(f"{url}/api/models?limit=1", token="hf_someone")
    _s, free2 = call(f"{url}/api/models?limit=1", token="hf_someone")
    _s, pro = call(f"{url}/api/models?limit=1", token="hf_pro")
    assert "q=500;" in anon["RateLimit-Policy"]
    assert "q=1000;" in free["RateLimit-Policy"] and free["RateLimit"].startswith('"api";r=999;')
    assert free2["RateLimit"].startswith('"api";r=998;')
    assert "q=2500;" in pro["RateLimit-Policy"] and pro["RateLimit"].startswith('"api";r=2499;')


def test_quota_state_spends_api_and_refuses_past_the_quota() -> None:
    clock = FakeClock()
    q = QuotaState(QuotaConfig(token_tier="pro"), clock=clock)
    verdicts = [q.spend("/api/models", "1.2.3.4", "Bearer t") for _ in range(2501)]
    assert all(v is not None for v in verdicts)
    assert [v.exceeded for v in verdicts if v is not None].count(True) == 1
    assert verdicts[-1] is not None and verdicts[-1].exceeded and q.refused == 1
    assert q.spend("/ecosystems/api/v1/registries", "1.2.3.4", "") is None


def test_time_scale_divides_the_window_only() -> None:
    with simulator_server(seed=4, quota=QuotaConfig(time_scale=60.0), **SMALL) as srv:
        _s, h = call(f"{srv.url}/api/models?limit=1")
        assert h["RateLimit-Policy"] == '"fixed window";"api";q=500;w=5'
        t0 = time.monotonic()
        for _ in range(100):
            call(f"{srv.url}/x")
        status, h = call(f"{srv.url}/x")
        assert time.monotonic() - t0 < 5 and status == 429  # counts stay real: 100 pages
        time.sleep(int(h["RateLimit"].rsplit("=", 1)[1]) + 0.1)  # one scaled window (300/60 s)
        assert call(f"{srv.url}/x")[0] == 404


def test_quota_off_advertises_an_open_quota_and_never_refuses() -> None:
    with simulator_server(seed=4, quota="off", **SMALL) as srv:
        got = [call(f"{srv.url}/x") for _ in range(QUOTA_TIERS["anonymous"]["pages"] + 5)]
        assert {s for s, _h in got} == {404}
        assert f"q={OPEN_QUOTA};" in got[-1][1]["RateLimit-Policy"]


def test_parse_forms() -> None:
    assert not QuotaConfig.parse("off").enabled
    assert QuotaConfig.parse("").token_tier == "free"
    assert QuotaConfig.parse("pro").tier_of("x") == "pro"
    q = QuotaConfig.parse("token_tier=team,hf_a=enterprise", 10)
    assert q.tier_of("hf_a") == "enterprise" and q.tier_of("b") == "team" and q.time_scale == 10
    assert q.tier_of(None) == "anonymous"
    with pytest.raises(ValueError, match="expected off, on"):
        QuotaConfig.parse("gold")
    with pytest.raises(ValueError, match="allowed: anonymous"):
        QuotaConfig.parse("token_tier=gold")
    with pytest.raises(ValueError, match="> 0"):
        QuotaConfig.parse("on", 0)
