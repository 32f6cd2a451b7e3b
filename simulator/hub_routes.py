"""Hub API handlers: listings, repo info, commits, discussions, files through resolve.

Paths as the official client builds them (hub-api.md): `/api/{models|datasets|spaces}`,
`/api/{type}s/{repo_id}[/revision/{rev}|/commits/{rev}|/discussions[/{num}]]`, and
`/[datasets/|spaces/]{repo_id}/resolve/{rev}/{path}`. Revisions arrive percent-encoded
(`refs%2Fpr%2F1`), so paths are split on the raw path before decoding.
"""

from __future__ import annotations

import hashlib
from typing import Any
from urllib.parse import quote, unquote, urlencode

import numpy as np
from aiohttp import web

from simulator.faults import FAULT_DRAW, FAULT_KIND
from simulator.http_util import bool_param, hub_error, json_response, repo_not_found
from simulator.hub_listing import Lister, ListingError, Query, parse_sort
from simulator.hub_render import DEFAULT_FIELDS, EXPAND, FULL_EXTRA, LISTING_EXPAND, Renderer
from simulator.hub_world import RepoTable
from simulator.world import KIND_OF_PATH, World, iso

SUBROUTES = ("revision", "commits", "discussions", "tree", "refs", "resolve", "paths-info")


class Hub:
    """Handlers bound to one world."""

    def __init__(self, world: World) -> None:
        self.w = world
        self.r = Renderer(world)
        self.lister = Lister(self.r)

    # ---------------------------------------------------------------- listings
    async def listing(self, request: web.Request) -> web.StreamResponse:
        kind = KIND_OF_PATH[request.match_info["kinds"]]
        t = self.w.hub[kind]
        qs = request.rel_url.query
        try:
            q, fields, size = self._listing_query(kind, qs)
            cursor = qs.get("cursor")
            if request.get(FAULT_KIND) == "churn" and cursor:
                self._churn(t, q, cursor)
            rows, nxt = self.lister.page(t, q, cursor, size)
        except ListingError as e:
            return hub_error(400, str(e))
        legacy = not qs.getall("expand", [])
        items = self.r.items(t, rows.tolist(), fields, legacy=legacy)
        if request.get(FAULT_KIND) == "malformed" and items:
            _malform(items, request.get(FAULT_DRAW, 0))
        headers = {}
        if nxt is not None:
            pairs = [(k, v) for k, v in qs.items() if k != "cursor"] + [("cursor", nxt)]
            url = f"{_origin(request)}{request.path}?{urlencode(pairs)}"
            headers["Link"] = f'<{url}>; rel="next"'
        return json_response(items, headers=headers)

    def _listing_query(self, kind: str, qs: Any) -> tuple[Query, tuple[str, ...], int]:
        expand = tuple(qs.getall("expand", []) + qs.getall("expand[]", []))
        full = bool_param(qs.get("full"))
        card = bool_param(qs.get("cardData"))
        if expand:
            bad = [e for e in expand if e not in LISTING_EXPAND[kind]]
            if bad:
                raise ListingError(expand_error(LISTING_EXPAND[kind]))
            if full or card:
                raise ListingError("expand cannot be combined with full or cardData")
            fields = tuple(dict.fromkeys(expand))
        else:
            fields = DEFAULT_FIELDS[kind]
            if full:
                fields = tuple(dict.fromkeys(fields + FULL_EXTRA))
            if card or (full and kind != "model"):
                fields = (*fields, "cardData")
        sort = parse_sort(kind, qs.get("sort"))
        direction = -1
        if qs.get("direction") in ("1", "asc"):
            direction = 1
        filters = list(qs.getall("filter", []))
        for param in ("pipeline_tag", "library", "language", "license"):
            for v in qs.getall(param, []):
                filters.append(v if param in ("pipeline_tag", "library") else f"{param}:{v}")
        for v in qs.getall("other", []):
            filters.append(v)
        gated = qs.get("gated")
        limit = qs.get("limit")
        size = self.w.config.page_size
        if limit is not None:
            try:
                lim = int(limit)
            except ValueError as e:
                raise ListingError(f"limit={limit!r} must be an integer") from e
            if lim < 1:
                raise ListingError(f"limit={limit!r} must be at least 1")
            size = min(size, lim)
        q = Query(
            kind=kind,
            sort=sort,
            direction=direction,
            author=qs.get("author"),
            search=tuple(qs.getall("search", [])),
            filters=tuple(filters),
            gated=None if gated is None else bool_param(gated),
        )
        return q, fields, size

    def _churn(self, t: RepoTable, q: Query, cursor: str) -> None:
        """Delete or rename a repo a few places further down the listing (between pages)."""
        from simulator.hub_gen import delete, rename

        rows, _nxt = self.lister.page(t, q, cursor, 50)
        if len(rows) == 0:
            return
        rng = np.random.default_rng([self.w.seed, 4242, t.version, int(rows[0])])
        row = int(rows[int(rng.integers(0, len(rows)))])
        if rng.random() < 0.5:
            delete(t, row)
        else:
            rename(t, self.w.authors, row, self.w.day, rng)

    # ---------------------------------------------------------------- repo routes
    async def repo_route(self, request: web.Request) -> web.StreamResponse:
        kinds = request.match_info["kinds"]
        kind = KIND_OF_PATH[kinds]
        t = self.w.hub[kind]
        raw = request.rel_url.raw_path.split("/")[3:]  # after ['', 'api', kinds]
        parts = [unquote(p) for p in raw]
        if len(parts) >= 2 and parts[1] in SUBROUTES and t.row_of(parts[0])[0] is not None:
            name, rest = parts[0], parts[1:]
        else:
            name, rest = "/".join(parts[:2]), parts[2:]
        row, moved_to = t.row_of(name)
        if row is None:
            return repo_not_found(kind, name)
        if moved_to is not None:
            return _redirect_moved(request, name, moved_to)
        if t.cols["private"][row]:
            return repo_not_found(kind, name, status=401)
        if t.cols["disabled"][row]:
            return hub_error(403, "Access to this resource is disabled.")
        qs = request.rel_url.query
        if not rest:
            return self._info(t, row, None, qs)
        sub = rest[0]
        if sub == "revision" and len(rest) >= 2:
            return self._info(t, row, "/".join(rest[1:]), qs)
        if sub == "commits":
            rev = "/".join(rest[1:]) or "main"
            return self._commits(request, t, row, rev)
        if sub == "discussions":
            if len(rest) == 1:
                return self._discussions(t, row, qs)
            try:
                num = int(rest[1])
            except ValueError:
                return hub_error(400, f"discussion number {rest[1]!r} must be an integer")
            if not 1 <= num <= int(t.cols["n_disc"][row]):
                return hub_error(404, "Discussion not found")
            return json_response(self.r.discussion_details(t, row, num))
        return hub_error(404, f"Sorry, we can't find the page you are looking for: /{sub}")

    def _info(self, t: RepoTable, row: int, rev: str | None, qs: Any) -> web.Response:
        expand = tuple(qs.getall("expand", []))
        bad = [e for e in expand if e not in EXPAND[t.kind]]
        if bad:
            return hub_error(400, expand_error(EXPAND[t.kind]))
        k = self.r.commit_index(t, row, rev or "main")
        if k is None:
            return hub_error(404, f"Invalid rev id: {rev}", "RevisionNotFound")
        info = self.r.info(t, row, expand or None)
        if rev is not None and "sha" in info:
            info["sha"] = self.r.commit_id(t, row, k)
        if rev is not None and "lastModified" in info:
            info["lastModified"] = iso(self.r.commit_date(t, row, k))
        if bool_param(qs.get("blobs")) and "siblings" in info:
            for s in info["siblings"]:
                s["size"] = self.r.file_size(t, row, s["rfilename"])
                s["blobId"] = hashlib.sha1(
                    s["rfilename"].encode() + info["id"].encode()
                ).hexdigest()
        return json_response(info)

    def _commits(self, request: web.Request, t: RepoTable, row: int, rev: str) -> web.Response:
        k = self.r.commit_index(t, row, rev)
        if k is None:
            return hub_error(404, f"Invalid rev id: {rev}", "RevisionNotFound")
        qs = request.rel_url.query
        size = self.w.config.commits_page_size
        try:
            p = int(qs.get("p", "0"))
            if "limit" in qs:
                size = max(1, min(int(qs["limit"]), 1000))
        except ValueError:
            return hub_error(400, "p and limit must be integers")
        total = k + 1
        start = p * size
        commits = self.r.commits(t, row, k, start, size) if start < total else []
        if qs.get("expand[]") == "formatted" or "formatted" in qs.getall("expand", []):
            for c in commits:
                c["formatted"] = {"title": c["title"], "message": c["message"]}
        headers = {"X-Total-Count": str(total)}
        if start + size < total:
            pairs = [(a, b) for a, b in qs.items() if a != "p"] + [("p", str(p + 1))]
            headers["Link"] = (
                f'<{_origin(request)}{request.rel_url.raw_path}?{urlencode(pairs)}>; rel="next"'
            )
        return json_response(commits, headers=headers)

    def _discussions(self, t: RepoTable, row: int, qs: Any) -> web.Response:
        size = self.w.config.discussions_page_size
        try:
            p = int(qs.get("p", "0"))
        except ValueError:
            return hub_error(400, f"p={qs.get('p')!r} must be an integer")
        dtype = qs.get("type", "all")
        status = qs.get("status", "all")
        author = qs.get("author")
        if dtype not in ("all", "discussion", "pull_request"):
            return hub_error(400, f"type={dtype!r}; allowed: all, discussion, pull_request")
        if status not in ("all", "open", "closed"):
            return hub_error(400, f"status={status!r}; allowed: all, open, closed")
        n = int(t.cols["n_disc"][row])
        items = [self.r.discussion(t, row, num) for num in range(n, 0, -1)]
        if dtype != "all":
            items = [d for d in items if d["isPullRequest"] == (dtype == "pull_request")]
        if status == "open":
            items = [d for d in items if d["status"] in ("open", "draft")]
        elif status == "closed":
            items = [d for d in items if d["status"] in ("closed", "merged")]
        if author:
            items = [d for d in items if d.get("author", {}).get("name") == author]
        start = p * size
        closed = sum(1 for d in items if d["status"] in ("closed", "merged"))
        return json_response(
            {
                "discussions": items[start : start + size],
                "count": len(items),
                "start": start,
                "numClosedDiscussions": closed,
            }
        )

    # ---------------------------------------------------------------- files
    async def resolve(self, request: web.Request) -> web.StreamResponse:
        raw = request.rel_url.raw_path.lstrip("/").split("/")
        kind = "model"
        if raw and raw[0] in ("datasets", "spaces"):
            kind = KIND_OF_PATH[raw[0]]
            raw = raw[1:]
        if "resolve" not in raw:
            return hub_error(404, "Sorry, we can't find the page you are looking for.")
        i = raw.index("resolve")
        name = "/".join(unquote(p) for p in raw[:i])
        if i + 1 >= len(raw):
            return hub_error(404, "Missing revision")
        rev = unquote(raw[i + 1])
        path = "/".join(unquote(p) for p in raw[i + 2 :])
        t = self.w.hub[kind]
        row, moved_to = t.row_of(name)
        if row is None:
            return repo_not_found(kind, name)
        if moved_to is not None:
            return _redirect_moved(request, name, moved_to)
        if t.cols["private"][row]:
            return repo_not_found(kind, name, status=401)
        if t.cols["disabled"][row]:
            return hub_error(403, "Access to this resource is disabled.")
        k = self.r.commit_index(t, row, rev)
        if k is None:
            return hub_error(404, f"Invalid rev id: {rev}", "RevisionNotFound")
        commit = self.r.commit_id(t, row, k)
        files = {s["rfilename"] for s in self.r.siblings(t, row)}
        if path not in files:
            resp = hub_error(404, "Entry not found", "EntryNotFound")
            resp.headers["X-Repo-Commit"] = commit
            return resp
        if t.cols["gated"][row] and path not in ("README.md", ".gitattributes"):
            msg = (
                f"Access to {kind} {name} is restricted. You must have access to it and be "
                "authenticated to access it. Please log in."
            )
            return hub_error(401, msg, "GatedRepo")
        body = self._file_bytes(t, row, path)
        etag = hashlib.sha1(b"blob %d\0" % len(body) + body).hexdigest()
        headers = {
            "X-Repo-Commit": commit,
            "ETag": f'"{etag}"',
            "Accept-Ranges": "bytes",
            "Content-Type": "text/plain; charset=utf-8",
            "Content-Disposition": f'inline; filename="{path.split("/")[-1]}"',
        }
        if request.method == "HEAD":
            headers["Content-Length"] = str(len(body))
            return web.Response(status=200, headers=headers)
        return web.Response(body=body, status=200, headers=headers)

    def _file_bytes(self, t: RepoTable, row: int, path: str) -> bytes:
        if path == "README.md":
            return self.r.readme(t, row) or b""
        if path.endswith(".json"):
            return json_response(
                self.r.field(t, row, "config") if path == "config.json" else {}
            ).body  # type: ignore[return-value]
        # large files are stand-ins: a few bytes, never the advertised size
        return f"{path} of {t.names[row]}\n".encode()


def expand_error(allowed: tuple[str, ...]) -> str:
    """The 400 message for an `expand` outside the allowlist, in the Hub's validator wording
    (`"expand" must be one of [...]`, as a third-party client's test of the Hub records it;
    unverified beyond that). It lists the allowlist, so a client can read it back."""
    return f'"expand" must be one of [{", ".join(allowed)}]'


def _origin(request: web.Request) -> str:
    return f"{request.scheme}://{request.host}"


def _redirect_moved(request: web.Request, old: str, new: str) -> web.Response:
    """The Hub answers a moved repo's old name with a relative redirect to the new one."""
    raw = request.rel_url.raw_path
    target = raw.replace(quote(old, safe="/"), quote(new, safe="/"), 1)
    if request.rel_url.raw_query_string:
        target += "?" + request.rel_url.raw_query_string
    return web.Response(
        status=307,
        headers={"Location": target, "X-Error-Message": f"Repository moved to {new}"},
    )


_MAY_BE_ABSENT = ("author", "sdk", "models", "datasets", "library_name", "pipeline_tag", "cardData")


def _malform(items: list[dict[str, Any]], draw: int) -> None:
    """Break one item the way a flaky API does: a missing field or a wrong type."""
    it = items[draw % len(items)]
    # a field the Hub may omit anyway (author, a Space's sdk/models/datasets, the model
    # fields it leaves out when unset) is no fault when missing: break the others
    keys = [k for k in it if k not in ("_id", "id", *_MAY_BE_ABSENT)]
    if not keys:
        it.pop("id", None)
        return
    k = keys[(draw >> 8) % len(keys)]
    mode = (draw >> 16) % 3
    if mode == 0:
        del it[k]
    elif mode == 1:
        it[k] = str(it[k]) if not isinstance(it[k], str) else 12345
    else:
        it[k] = None


def add_routes(app: web.Application, world: World) -> Hub:
    hub = Hub(world)
    app.router.add_get("/api/{kinds:models|datasets|spaces}", hub.listing)
    app.router.add_get("/api/{kinds:models|datasets|spaces}/{rest:.+}", hub.repo_route)
    return hub


def add_resolve_route(app: web.Application, hub: Hub) -> None:
    """Last: the catch-all for `/{repo}/resolve/...` (any depth)."""
    app.router.add_route("GET", "/{tail:.+}", hub.resolve)
    app.router.add_route("HEAD", "/{tail:.+}", hub.resolve)
