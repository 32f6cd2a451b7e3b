"""Faults on demand: each kind, the per-client budget, determinism, and the client surviving."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request

import pytest
from huggingface_hub import HfApi

from simulator.testing import simulator_server
from tests.simulator.helpers import get, get_json, truth

SMALL = {"models": 120, "datasets": 60, "spaces": 20, "npm": 30, "pypi": 30, "page_size": 20}


def statuses(url: str, n: int, path: str = "/api/models?limit=5") -> list[int]:
    return [get(url + path)[0] for _ in range(n)]


def test_faults_switch_on_and_off_and_are_counted() -> None:
    with simulator_server(seed=1, **SMALL) as srv:
        url = srv.url
        assert set(statuses(url, 5)) == {200}
        get_json(f"{url}/_sim/faults", "POST", {"server_error": 1.0})
        got = statuses(url, 12)
        assert set(got) <= {500, 502, 503} and len(set(got)) > 1
        assert get(f"{url}/_sim/clock")[0] == 200  # admin routes never fail
        get_json(f"{url}/_sim/faults", "POST", {"rate": 0})
        assert set(statuses(url, 5)) == {200}
        state = get_json(f"{url}/_sim/faults")
        assert state["injected"]["server_error"] == 12
        status, _h, body = get(f"{url}/_sim/faults", "POST", json.dumps({"bogus": 1}).encode())
        assert status == 400 and b"allowed" in body


def test_rate_spread_over_kinds_is_deterministic_per_seed() -> None:
    def run(seed: int) -> list[int]:
        with simulator_server(
            seed=seed, faults={"rate": 0.5, "slow": 0, "drop": 0}, **SMALL
        ) as srv:
            return statuses(srv.url, 40)

    a, b, c = run(3), run(3), run(4)
    assert a == b and a != c
    assert {429} & set(a) and set(a) & {500, 502, 503} and 200 in a


def test_rate_limit_headers() -> None:
    with simulator_server(seed=5, faults={"rate_limit": 1.0, "retry_after": 1}, **SMALL) as srv:
        seen_retry_after = seen_ratelimit = False
        for _ in range(10):
            status, h, _ = get(f"{srv.url}/api/models")
            assert status == 429
            seen_retry_after |= h.get("Retry-After") == "1"
            seen_ratelimit |= h.get("RateLimit") == '"api";r=0;t=1'
        assert seen_retry_after and seen_ratelimit


def test_budget_per_client_window() -> None:
    budget = {"budget": {"requests": 5, "window_seconds": 1.5}}
    with simulator_server(seed=6, faults=budget, **SMALL) as srv:
        heads = [get(f"{srv.url}/api/models?limit=1") for _ in range(7)]
        assert [s for s, _h, _b in heads] == [200] * 5 + [429, 429]
        assert heads[0][1]["RateLimit-Policy"] == '"fixed window";"api";q=5;w=1'
        assert heads[0][1]["RateLimit"].startswith('"api";r=4;t=')
        assert heads[5][1]["RateLimit"].startswith('"api";r=0;t=')
        time.sleep(1.6)
        assert get(f"{srv.url}/api/models?limit=1")[0] == 200


def test_ratelimit_headers_on_every_api_answer(url: str) -> None:
    for path in ("/api/models?limit=2", "/api/datasets", "/api/models/no/such"):
        _s, h, _b = get(url + path)
        assert h["RateLimit"].startswith('"api";r=') and "RateLimit-Policy" in h


def test_drop_truncate_slow() -> None:
    with simulator_server(seed=7, faults={"drop": 1.0}, **SMALL) as srv:
        with pytest.raises((urllib.error.URLError, ConnectionError, OSError)):
            urllib.request.urlopen(f"{srv.url}/api/models", timeout=5).read()
        get_json(f"{srv.url}/_sim/faults", "POST", {"truncate": 1.0})
        status, _h, body = get(f"{srv.url}/api/models?limit=5")
        assert status == 200
        with pytest.raises(json.JSONDecodeError):
            json.loads(body)
        get_json(f"{srv.url}/_sim/faults", "POST", {"slow": 1.0, "slow_seconds": 0.5})
        t0 = time.monotonic()
        assert get(f"{srv.url}/api/models?limit=5")[0] == 200
        assert time.monotonic() - t0 >= 0.5
        with pytest.raises((TimeoutError, urllib.error.URLError)):
            urllib.request.urlopen(f"{srv.url}/api/models?limit=5", timeout=0.2).read()


def test_malformed_items_differ_from_truth() -> None:
    with simulator_server(seed=8, faults={"malformed": 1.0}, **SMALL) as srv:
        want = {r["id"]: r for r in truth(srv.url, "hub:model")}
        items = get_json(
            f"{srv.url}/api/models?expand=likes&expand=downloads&expand=author&expand=sha"
        )
        broken = [
            it for it in items
            if any(it.get(k) != want[it["id"]].get(k) for k in ("likes", "downloads", "author", "sha"))
            or set(it) != {"_id", "id", "likes", "downloads", "author", "sha"}
        ]  # fmt: skip
        assert len(broken) == 1


def test_churn_between_pages() -> None:
    with simulator_server(seed=9, faults={"churn": 1.0}, **SMALL) as srv:
        before = {r["_id"]: r["id"] for r in truth(srv.url, "hub:model")}
        api = HfApi(endpoint=srv.url, token=False)
        listed = {m.id for m in api.list_models(limit=None)}
        after = {r["_id"]: r["id"] for r in truth(srv.url, "hub:model")}
        assert before != after  # repos were deleted or renamed while we paged
        assert listed - set(before.values()) == set() or listed - set(before.values()) <= set(
            after.values()
        )
        assert set(before.values()) - listed  # the crawl missed some names


def test_client_retries_through_rate_limits_and_5xx() -> None:
    faults = {"rate_limit": 0.15, "server_error": 0.15, "retry_after": 0}
    with simulator_server(seed=10, faults=faults, **SMALL) as srv:
        got = {d.id for d in HfApi(endpoint=srv.url, token=False).list_datasets(limit=None)}
        assert got == {r["id"] for r in truth(srv.url, "hub:dataset")}
        assert sum(get_json(f"{srv.url}/_sim/faults")["injected"].values()) > 0
