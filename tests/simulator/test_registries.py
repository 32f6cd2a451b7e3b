"""ecosyste.ms, npm download counts and pypistats as registry-apis.md describes them."""

from __future__ import annotations

from datetime import date, timedelta

from tests.simulator.helpers import get, get_json, truth

ECO = "/ecosystems/api/v1"


def test_registries_resolved_by_ecosystem(url: str) -> None:
    regs = get_json(f"{url}{ECO}/registries")
    by_eco = {r["ecosystem"]: r for r in regs}
    assert set(by_eco) >= {"npm", "pypi"}
    assert by_eco["npm"]["packages_count"] == len(truth(url, "npm"))


def test_top_packages_by_downloads_paged(url: str) -> None:
    name = next(r["name"] for r in get_json(f"{url}{ECO}/registries") if r["ecosystem"] == "pypi")
    seen: list[dict] = []
    page = 1
    while True:
        status, headers, _ = get(
            f"{url}{ECO}/registries/{name}/packages?sort=downloads&order=desc&per_page=60&page={page}"
        )
        assert status == 200 and 'rel="next"' in headers["Link"]
        assert (
            headers["x-ratelimit-tier"] == "anonymous" and int(headers["x-ratelimit-remaining"]) > 0
        )
        items = get_json(
            f"{url}{ECO}/registries/{name}/packages?sort=downloads&order=desc&per_page=60&page={page}"
        )
        if not items:
            break
        seen += items
        page += 1
    downloads = [p["downloads"] for p in seen]
    assert downloads == sorted(downloads, reverse=True)
    assert {p["name"] for p in seen} == {p["name"] for p in truth(url, "pypi")}
    assert all(p["downloads_period"] == "last-month" for p in seen)


def test_ascending_downloads_is_422_and_polite_tier(url: str) -> None:
    name = next(r["name"] for r in get_json(f"{url}{ECO}/registries") if r["ecosystem"] == "npm")
    status, _h, body = get(f"{url}{ECO}/registries/{name}/packages?sort=downloads&order=asc")
    assert status == 422 and b"descending" in body
    status, h, _ = get(f"{url}{ECO}/registries/{name}/packages?per_page=5000&mailto=a@b.c")
    assert status == 200 and h["x-ratelimit-tier"] == "polite" and h["x-ratelimit-limit"] == "15000"
    status, _h, body = get(f"{url}{ECO}/registries/nope.example/packages")
    assert status == 404 and b"not found" in body


def test_npm_downloads_agree_with_ecosystems(url: str) -> None:
    pkgs = truth(url, "npm")
    top = max(pkgs, key=lambda p: p["downloads"])
    point = get_json(f"{url}/npm-downloads/downloads/point/last-month/{top['name']}")
    assert point["downloads"] == top["downloads"] and point["package"] == top["name"]
    rng = get_json(f"{url}/npm-downloads/downloads/range/last-month/{top['name']}")
    assert (
        len(rng["downloads"]) == 30
        and sum(d["downloads"] for d in rng["downloads"]) == top["downloads"]
    )
    clock = get_json(f"{url}/_sim/clock")
    today = date.fromisoformat(clock["now"][:10])
    assert rng["end"] == str(today - timedelta(days=1))
    unscoped = [p["name"] for p in pkgs if not p["name"].startswith("@")][:5]
    bulk = get_json(
        f"{url}/npm-downloads/downloads/point/last-week/{','.join([*unscoped, 'no-such-pkg'])}"
    )
    assert set(bulk) == {*unscoped, "no-such-pkg"} and bulk["no-such-pkg"] is None
    status, _h, body = get(f"{url}/npm-downloads/downloads/point/last-week/no-such-pkg")
    assert status == 404 and b"package no-such-pkg not found" in body
    scoped = [p["name"] for p in pkgs if p["name"].startswith("@")]
    if scoped:
        status, _h, _b = get(
            f"{url}/npm-downloads/downloads/point/last-week/{scoped[0]},{unscoped[0]}"
        )
        assert status == 400
        one = get_json(f"{url}/npm-downloads/downloads/point/last-week/{scoped[0]}")
        assert one["package"] == scoped[0]


def test_pypistats_recent(url: str) -> None:
    pkgs = truth(url, "pypi")
    top = max(pkgs, key=lambda p: p["downloads"])
    body = get_json(f"{url}/pypistats/api/packages/{top['name'].upper().replace('-', '_')}/recent")
    assert body["type"] == "recent_downloads" and body["package"] == top["name"]
    assert body["data"]["last_month"] == top["downloads"]
    assert body["data"]["last_day"] <= body["data"]["last_week"] <= body["data"]["last_month"]
    status, _h, raw = get(f"{url}/pypistats/api/packages/not-a-package/recent")
    assert status == 404 and raw == b"404"
