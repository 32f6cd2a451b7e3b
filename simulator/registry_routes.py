"""Registry handlers: the ecosyste.ms packages API and the npm / PyPI download-count services.

Mounted under `/ecosystems/api/v1/...`, `/npm-downloads/downloads/...` and
`/pypistats/api/packages/...` (registry-apis.md §3, §1.3, §2.5).

The count services' own limiters are opt-in (`Registries.count_limits`, off by default, so
demos and tests against the simulator run unpaced): per client, fixed windows; over a
limit npm answers 429 with Cloudflare's `error code: 1015` text and no Retry-After,
pypistats 429 with an HTML body, as the real services do.
"""

from __future__ import annotations

import time
from datetime import UTC, date, datetime, timedelta
from typing import Any
from urllib.parse import unquote, urlencode

import numpy as np
from aiohttp import web

from simulator import vocab
from simulator.http_util import json_response
from simulator.registry_world import REGISTRY_NAMES, REGISTRY_PURL, PackageTable
from simulator.world import World, iso

ECO_SORTS = {
    "downloads": "downloads", "dependent_packages_count": "dependents",
    "dependent_repos_count": "dep_repos", "created_at": "created", "updated_at": "latest",
    "latest_release_published_at": "latest", "versions_count": "versions", "name": "name",
}  # fmt: skip
DESC_ONLY = ("downloads", "dependent_packages_count", "dependent_repos_count")
HOUR_LIMITS = {"anonymous": 5000, "polite": 15000}
COUNT_SERVICES = ("npm", "pypi")  # keys of `Registries.count_limits`
PYPISTATS_429 = "<html><head><title>429 Too Many Requests</title></head></html>"


def _iso_eco(ts: int) -> str:
    return datetime.fromtimestamp(ts, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")


class Registries:
    def __init__(self, world: World) -> None:
        self.w = world
        self._hour: dict[tuple[str, str], tuple[int, int]] = {}
        self._sorted: dict[tuple[str, str, str], tuple[int, Any]] = {}
        # "npm" | "pypi" -> ((quota, window seconds), ...) per client; empty: no limiter
        # (pypistats' real ones: ((5, 1), (30, 60)); npm's: about one request a second)
        self.count_limits: dict[str, tuple[tuple[int, float], ...]] = {}
        self.count_limited: dict[str, int] = {}  # 429s served, per service
        self._count_windows: dict[tuple[str, str, float], tuple[float, int]] = {}

    def count_limit_hit(self, service: str, request: web.Request) -> bool:
        """Count one request of `service` for its client; True when over a limit."""
        limits = self.count_limits.get(service, ())
        if not limits:
            return False
        now = time.monotonic()
        client = request.remote or "?"
        over = False
        for quota, window in limits:
            key = (service, client, window)
            start, used = self._count_windows.get(key, (now, 0))
            if now - start >= window:
                start, used = now, 0
            used += 1
            self._count_windows[key] = (start, used)
            over = over or used > quota
        if over:
            self.count_limited[service] = self.count_limited.get(service, 0) + 1
        return over

    def table(self, registry: str) -> PackageTable | None:
        for eco, name in REGISTRY_NAMES.items():
            if registry in (name, eco):
                return self.w.packages[eco]
        return None

    # ---------------------------------------------------------------- ecosyste.ms
    def _limits(self, request: web.Request) -> dict[str, str]:
        polite = "mailto" in request.rel_url.query or "mailto:" in request.headers.get(
            "User-Agent", ""
        )
        tier = "polite" if polite else "anonymous"
        now = int(time.time())
        reset = now - now % 3600 + 3600
        key = (request.remote or "?", tier)
        win, used = self._hour.get(key, (reset, 0))
        if win != reset:
            used = 0
        used += 1
        self._hour[key] = (reset, used)
        limit = HOUR_LIMITS[tier]
        return {
            "x-ratelimit-limit": str(limit),
            "x-ratelimit-remaining": str(max(limit - used, 0)),
            "x-ratelimit-reset": str(reset),
            "x-ratelimit-tier": tier,
            "Cache-Control": "public, max-age=300, s-maxage=3600",
        }

    def registry_json(self, request: web.Request, eco: str) -> dict[str, Any]:
        p = self.w.packages[eco]
        name = REGISTRY_NAMES[eco]
        base = f"{request.scheme}://{request.host}/ecosystems/api/v1/registries/{name}"
        return {
            "name": name,
            "url": f"https://{name}",
            "ecosystem": eco,
            "default": True,
            "packages_count": int(p.alive.sum()),
            "versions_count": int(p.versions[p.alive].sum()) if p.n else 0,
            "downloads": int(p.last_month.sum()),
            "maintainers_count": int(p.alive.sum() // 2),
            "namespaces_count": 0,
            "keywords_count": 0,
            "github": eco,
            "metadata": {},
            "icon_url": None,
            "created_at": "2022-01-01T00:00:00.000Z",
            "updated_at": iso(self.w.now),
            "purl_type": REGISTRY_PURL[eco],
            "packages_url": f"{base}/packages",
            "maintainers_url": f"{base}/maintainers",
            "namespaces_url": f"{base}/namespaces",
        }

    async def registries(self, request: web.Request) -> web.Response:
        out = [self.registry_json(request, eco) for eco in ("npm", "pypi")]
        out.sort(key=lambda r: -int(r["packages_count"]))
        return json_response(out, headers=self._limits(request))

    async def registry(self, request: web.Request) -> web.Response:
        name = request.match_info["registry"]
        t = self.table(name)
        if t is None:
            return json_response({"error": "not found"}, status=404, headers=self._limits(request))
        return json_response(
            self.registry_json(request, t.ecosystem), headers=self._limits(request)
        )

    def package_json(self, p: PackageTable, row: int) -> dict[str, Any]:
        name = p.names[row]
        eco = p.ecosystem
        ns = name[1:].split("/")[0] if name.startswith("@") else None
        lic = int(p.license[row])
        repo_url = f"https://github.com/{(ns or name.split('-')[0])}/{name.split('/')[-1]}"
        latest_v = f"{1 + int(p.versions[row]) // 10}.{int(p.versions[row]) % 10}.0"
        return {
            "id": int(p.code) * 100_000_000 + row,
            "name": name,
            "ecosystem": eco,
            "description": f"{name}: simulated {eco} package",
            "homepage": repo_url,
            "licenses": vocab.PKG_LICENSES[lic] if lic >= 0 else None,
            "normalized_licenses": [vocab.PKG_LICENSES[lic]] if lic >= 0 else [],
            "repository_url": repo_url,
            "keywords_array": [],
            "namespace": ns,
            "versions_count": int(p.versions[row]),
            "first_release_published_at": _iso_eco(int(p.created[row])),
            "latest_release_published_at": _iso_eco(int(p.latest[row])),
            "latest_release_number": latest_v,
            "last_synced_at": _iso_eco(self.w.now),
            "created_at": _iso_eco(int(p.created[row])),
            "updated_at": _iso_eco(max(int(p.latest[row]), int(p.created[row]))),
            "registry_url": f"https://{p.registry}/{name}",
            "install_command": f"npm install {name}" if eco == "npm" else f"pip install {name}",
            "documentation_url": None,
            "metadata": {},
            "repo_metadata": None,
            "repo_metadata_updated_at": None,
            "dependent_packages_count": int(p.dependents[row]),
            "downloads": int(p.last_month[row]),
            "downloads_period": "last-month",
            "dependent_repos_count": int(p.dep_repos[row]),
            "rankings": {},
            "purl": f"pkg:{REGISTRY_PURL[eco]}/{name.replace('@', '%40')}",
            "advisories": [],
            "docker_usage_url": None,
            "docker_dependents_count": 0,
            "docker_downloads_count": 0,
            "usage_url": None,
            "dependent_repositories_url": None,
            "status": None,
            "funding_links": [],
            "critical": bool(p.last_month[row] > 10_000_000),
            "maintainers": [],
        }

    async def packages(self, request: web.Request) -> web.Response:
        name = request.match_info["registry"]
        limits = self._limits(request)
        p = self.table(name)
        if p is None:
            return json_response({"error": "not found"}, status=404, headers=limits)
        qs = request.rel_url.query
        sort = qs.get("sort", "updated_at")
        order = qs.get("order", "desc")
        if sort not in ECO_SORTS:
            sort = "updated_at"  # ecosyste.ms ignores unknown sorts
        if order not in ("asc", "desc"):
            order = "desc"
        if sort in DESC_ONLY and order == "asc":
            return json_response(
                {"error": f"{sort.split('_count')[0]} only supports descending order"},
                status=422,
                headers=limits,
            )
        try:
            per_page = min(max(int(qs.get("per_page", "100")), 1), 1000)
            page = max(int(qs.get("page", "1")), 1)
        except ValueError:
            return json_response({"error": "page and per_page must be integers"}, status=400)
        rows = self._order(p, sort, order)
        chunk = rows[(page - 1) * per_page : page * per_page]
        out = [self.package_json(p, int(r)) for r in chunk]
        base = f"{request.scheme}://{request.host}{request.path}"

        def link(pg: int) -> str:
            pairs = [(k, v) for k, v in qs.items() if k != "page"] + [("page", str(pg))]
            return f"<{base}?{urlencode(pairs)}>"

        links = [f'{link(page + 1)}; rel="next"']
        if page > 1:
            links.append(f'{link(page - 1)}; rel="prev"')
        limits["Link"] = ", ".join(links)
        return json_response(out, headers=limits)

    def _order(self, p: PackageTable, sort: str, order: str) -> Any:
        key = (p.ecosystem, sort, order)
        hit = self._sorted.get(key)
        if hit is not None and hit[0] == p.version:
            return hit[1]
        alive = np.flatnonzero(p.alive)
        col = ECO_SORTS[sort]
        if col == "name":
            idx = sorted(alive.tolist(), key=lambda r: p.names[r], reverse=order == "desc")
            rows = np.asarray(idx, dtype=np.int64)
        else:
            vals = {
                "downloads": p.last_month,
                "dependents": p.dependents,
                "dep_repos": p.dep_repos,
                "created": p.created,
                "latest": p.latest,
                "versions": p.versions,
            }[col][alive].astype(np.float64)
            keys = -vals if order == "desc" else vals
            rows = alive[np.lexsort((alive, keys))]
        self._sorted[key] = (p.version, rows)
        return rows

    async def package(self, request: web.Request) -> web.Response:
        limits = self._limits(request)
        p = self.table(request.match_info["registry"])
        raw = request.rel_url.raw_path.split("/packages/", 1)[1]
        name = unquote(raw)
        row = p.by_name.get(name) if p is not None else None
        if p is None or row is None:
            return json_response({"error": "not found"}, status=404, headers=limits)
        return json_response(self.package_json(p, row), headers=limits)

    async def lookup(self, request: web.Request) -> web.Response:
        limits = self._limits(request)
        qs = request.rel_url.query
        eco = qs.get("ecosystem", "")
        name = qs.get("name", "")
        purl = qs.get("purl")
        if purl and purl.startswith("pkg:"):
            eco, _, name = purl[4:].partition("/")
            name = unquote(name)
        p = self.w.packages.get(eco)
        row = p.by_name.get(name) if p is not None else None
        if p is None or row is None:
            return json_response([], headers=limits)
        return json_response([self.package_json(p, row)], headers=limits)

    # ---------------------------------------------------------------- npm downloads
    def _yesterday(self) -> date:
        return (self.w.now_dt - timedelta(days=1)).date()

    def _day_index(self, d: date) -> int:
        return (d - self.w.config.start.date()).days

    def _period(self, period: str) -> tuple[date, date] | str:
        last = self._yesterday()
        spans = {"last-day": 1, "last-week": 7, "last-month": 30, "last-year": 365}
        if period in spans:
            return last - timedelta(days=spans[period] - 1), last
        try:
            if ":" in period:
                a, b = period.split(":", 1)
                start, end = date.fromisoformat(a), date.fromisoformat(b)
            else:
                start = end = date.fromisoformat(period)
        except ValueError:
            return f"Invalid period: {period}"
        if end < start:
            return "end date > start date"
        if (end - start).days > 549:
            return "range cannot exceed 18 months"
        return start, min(end, last) if end > last else end

    async def npm_downloads(self, request: web.Request) -> web.Response:
        if self.count_limit_hit("npm", request):
            return web.Response(status=429, text="error code: 1015")
        mode = request.match_info["mode"]
        tail = request.rel_url.raw_path.split(f"/downloads/{mode}/", 1)[1]
        period, _, pkg_part = tail.partition("/")
        pkg_part = unquote(pkg_part)
        span = self._period(unquote(period))
        if isinstance(span, str):
            return json_response({"error": span}, status=400)
        start, end = span
        p = self.w.packages["npm"]
        if not pkg_part:
            total = int(
                sum(self._series(p, r, start, end).sum() for r in np.flatnonzero(p.alive).tolist())
            )
            return json_response({"downloads": total, "start": str(start), "end": str(end)})
        names = pkg_part.split(",") if "," in pkg_part else [pkg_part]
        if len(names) > 1:
            if len(names) > 128:
                return json_response(
                    {"error": "bulk queries are limited to 128 packages"}, status=400
                )
            if any(n.startswith("@") for n in names):
                return json_response(
                    {"error": "scoped packages are not supported in bulk queries"}, status=400
                )
            if (end - start).days >= 365:
                return json_response({"error": "bulk queries are limited to 365 days"}, status=400)
            bulk: dict[str, Any] = {}
            for n in names:
                row = p.by_name.get(n)
                bulk[n] = None if row is None else self._npm_body(p, row, n, start, end, mode)
            return json_response(bulk)
        name = names[0]
        row = p.by_name.get(name)
        if row is None:
            return json_response({"error": f"package {name} not found"}, status=404)
        return json_response(self._npm_body(p, row, name, start, end, mode))

    def _series(self, p: PackageTable, row: int, start: date, end: date) -> Any:
        d0, d1 = self._day_index(start), self._day_index(end)
        if d1 < d0:
            return np.zeros(0, dtype=np.int64)
        return p.daily(np.full(d1 - d0 + 1, row), np.arange(d0, d1 + 1))

    def _npm_body(
        self, p: PackageTable, row: int, name: str, start: date, end: date, mode: str
    ) -> dict[str, Any]:
        s = self._series(p, row, start, end)
        if mode == "point":
            return {
                "downloads": int(s.sum()),
                "start": str(start),
                "end": str(end),
                "package": name,
            }
        days = [
            {"downloads": int(v), "day": str(start + timedelta(days=i))} for i, v in enumerate(s)
        ]
        return {"start": str(start), "end": str(end), "package": name, "downloads": days}

    # ---------------------------------------------------------------- pypistats
    def _pypi_row(self, name: str) -> int | None:
        p = self.w.packages["pypi"]
        norm = name.lower().replace("_", "-").replace(".", "-")
        return p.by_name.get(norm)

    async def pypistats(self, request: web.Request) -> web.Response:
        if self.count_limit_hit("pypi", request):
            return web.Response(status=429, text=PYPISTATS_429, content_type="text/html")
        name = request.match_info["package"]
        what = request.match_info["what"]
        row = self._pypi_row(name)
        if row is None:
            return web.Response(status=404, text="404")
        p = self.w.packages["pypi"]
        last = self._yesterday()
        norm = p.names[row]
        if what == "recent":
            period = request.rel_url.query.get("period")
            data = {
                "last_day": int(self._series(p, row, last, last).sum()),
                "last_week": int(self._series(p, row, last - timedelta(days=6), last).sum()),
                "last_month": int(self._series(p, row, last - timedelta(days=29), last).sum()),
            }
            if period is not None:
                key = f"last_{period}"
                if key not in data:
                    return web.Response(status=404, text="404")
                data = {key: data[key]}
            return json_response({"data": data, "package": norm, "type": "recent_downloads"})
        if what == "overall":
            start = last - timedelta(days=179)
            s = self._series(p, row, start, last)
            rows: list[dict[str, Any]] = []
            for i, v in enumerate(s.tolist()):
                day = str(start + timedelta(days=i))
                rows.append({"category": "with_mirrors", "date": day, "downloads": int(v * 1.1)})
                rows.append({"category": "without_mirrors", "date": day, "downloads": int(v)})
            return json_response({"data": rows, "package": norm, "type": "overall_downloads"})
        return web.Response(status=404, text="404")


REGISTRIES = web.AppKey("registries", Registries)


def add_routes(app: web.Application, world: World) -> Registries:
    r = Registries(world)
    app[REGISTRIES] = r
    eco = "/ecosystems/api/v1"
    app.router.add_get(f"{eco}/registries", r.registries)
    app.router.add_get(f"{eco}/registries/{{registry}}", r.registry)
    app.router.add_get(f"{eco}/registries/{{registry}}/packages", r.packages)
    app.router.add_get(f"{eco}/registries/{{registry}}/packages/{{package:.+}}", r.package)
    app.router.add_get(f"{eco}/packages/lookup", r.lookup)
    app.router.add_get("/npm-downloads/downloads/{mode:point|range}/{tail:.+}", r.npm_downloads)
    app.router.add_get("/pypistats/api/packages/{package}/{what}", r.pypistats)
    return r
