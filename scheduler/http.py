"""The daemon's HTTP server (aiohttp): health, Prometheus metrics, and a read-only JSON API.

Routes: `/healthz`, `/readyz`, `/metrics`, `/api/snapshots`, `/api/asof/{source}`,
`/api/history/{source}/{id}`, `/api/top/{source}`, `/api/openapi.json`.

Bounded by construction: every listing pages (`limit` is capped at `MAX_LIMIT`, `k` at
`MAX_K`) and the page is pushed into the store's lazy frame (`slice`), so one request reads
at most a page of rows, never the whole store. Only named columns, sources and snapshot
ids come in; no SQL, no paths. Store reads block, so they run in a worker thread and the
loop keeps serving health checks during a long read.

Every error is one JSON shape: `{"error": {"status": 400, "parameter": "limit",
"message": "..."}}` (`parameter` is null when no parameter is to blame).
"""

from __future__ import annotations

import asyncio
import json
import math
from collections.abc import Awaitable, Callable
from datetime import date, datetime
from typing import Any

import polars as pl
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from crawler.stats import waiting_text
from storage import parse_at as storage_parse_at
from storage.errors import (
    ColumnNotFound,
    EntityNotFound,
    SnapshotNotFound,
    StoreError,
    UnknownSource,
)

MAX_LIMIT = 1000
DEFAULT_LIMIT = 100
MAX_K = 1000
DEFAULT_K = 10
# beyond any store's rows, and below the 2**63 a frame's slice takes: a larger one is a 400
MAX_OFFSET = 10**12

ReadyCheck = Callable[[], tuple[bool, str]]

STORE_KEY: web.AppKey[Any] = web.AppKey("store")
REGISTRY_KEY = web.AppKey("registry", CollectorRegistry)
READY_KEY: web.AppKey[Any] = web.AppKey("ready")
LIVE_KEY: web.AppKey[Any] = web.AppKey("live")


class ApiError(Exception):
    """A request the API refuses; rendered as the one JSON error shape."""

    def __init__(self, status: int, parameter: str | None, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.parameter = parameter
        self.message = message


def error_body(status: int, parameter: str | None, message: str) -> dict[str, Any]:
    return {"error": {"status": status, "parameter": parameter, "message": message}}


def _json_default(value: Any) -> Any:
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return str(value)


def _clean(value: Any) -> Any:
    # json.dumps writes NaN/Infinity, which is not JSON; make them null
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def json_response(body: Any, status: int = 200) -> web.Response:
    text = json.dumps(body, default=_json_default, allow_nan=False)
    # nosniff: a browser never reads a body as HTML, whatever stored text it quotes
    return web.Response(
        text=text,
        status=status,
        content_type="application/json",
        headers={"X-Content-Type-Options": "nosniff"},
    )


def _rows(df: pl.DataFrame) -> list[dict[str, Any]]:
    return [{k: _clean(v) for k, v in row.items()} for row in df.iter_rows(named=True)]


# ---- parameters ---------------------------------------------------------------------------


def _int_param(
    request: web.Request, name: str, default: int, lo: int, hi: int | None = None
) -> int:
    raw = request.query.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ApiError(400, name, f"{name}={raw!r}: expected an integer") from None
    if value < lo or (hi is not None and value > hi):
        bound = f"between {lo} and {hi}" if hi is not None else f"at least {lo}"
        raise ApiError(400, name, f"{name}={value}: must be {bound}")
    return value


def _bool_param(request: web.Request, name: str) -> bool:
    if name not in request.query:
        return False
    raw = request.query[name].strip().lower()
    if raw in ("0", "false", "no"):
        return False
    if raw in ("1", "true", "yes"):
        return True
    raise ApiError(400, name, f"{name}={raw!r}: expected true or false")


def parse_at(raw: str | None) -> int | datetime | None:
    """`at`: `storage.parse_at`, the one date rule (a bare date = the end of that UTC day);
    None (left out) = the latest snapshot. An empty value is a 400, as every parameter's is:
    the OpenAPI document allows none, and generated tests hold the API to it."""
    if raw is None:
        return None
    try:
        return storage_parse_at(raw)
    except ValueError as exc:
        raise ApiError(400, "at", str(exc)) from None


def _columns_param(request: web.Request) -> list[str] | None:
    raw = request.query.get("columns")
    if raw is None:
        return None
    cols = [c.strip() for c in raw.split(",")]
    if any(not c for c in cols):
        raise ApiError(400, "columns", f"columns={raw!r}: empty column name in the list")
    return cols


def _check_unknown(request: web.Request, allowed: tuple[str, ...]) -> None:
    for name in request.query:
        if name not in allowed:
            listed = ", ".join(allowed) if allowed else "none"
            raise ApiError(400, name, f"{name}: unknown parameter; allowed are {listed}")


def _source(request: web.Request, store: Any) -> str:
    source = request.match_info["source"]
    sources = store.sources()
    if source not in sources:
        listed = ", ".join(sources) if sources else "none yet"
        raise ApiError(404, "source", f"source {source!r}: not in the store; sources: {listed}")
    return source


# ---- handlers -----------------------------------------------------------------------------


async def _in_thread(fn: Callable[[], Any]) -> Any:
    return await asyncio.get_running_loop().run_in_executor(None, fn)


def _page(lf: pl.LazyFrame, limit: int, offset: int) -> tuple[pl.DataFrame, int | None]:
    # one row more than asked tells whether a next page exists, without counting them all
    df = lf.slice(offset, limit + 1).collect()
    more = df.height > limit
    return df.head(limit), (offset + limit if more else None)


async def healthz(request: web.Request) -> web.Response:
    return json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    check = request.app[READY_KEY]
    ok, reason = check() if callable(check) else (True, "ready")
    if ok:
        return json_response({"status": "ready", "reason": reason})
    return json_response({"status": "not ready", "reason": reason}, status=503)


async def metrics(request: web.Request) -> web.Response:
    registry = request.app[REGISTRY_KEY]
    body = await _in_thread(lambda: generate_latest(registry))
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


async def snapshots(request: web.Request) -> web.Response:
    _check_unknown(request, ("source", "include_partial", "limit", "offset"))
    store = request.app[STORE_KEY]
    limit = _int_param(request, "limit", DEFAULT_LIMIT, 1, MAX_LIMIT)
    offset = _int_param(request, "offset", 0, 0, MAX_OFFSET)
    partial = _bool_param(request, "include_partial")
    source = request.query.get("source") or None

    def read() -> tuple[pl.DataFrame, int | None]:
        if source is not None and source not in store.sources():
            listed = ", ".join(store.sources()) or "none yet"
            raise ApiError(404, "source", f"source {source!r}: not in the store; sources: {listed}")
        df = store.snapshots(source, include_partial=partial)
        return _page(df.lazy(), limit, offset)

    df, nxt = await _in_thread(read)
    return json_response(
        {"snapshots": _rows(df), "limit": limit, "offset": offset, "next_offset": nxt}
    )


async def asof(request: web.Request) -> web.Response:
    _check_unknown(request, ("at", "columns", "limit", "offset"))
    store = request.app[STORE_KEY]
    limit = _int_param(request, "limit", DEFAULT_LIMIT, 1, MAX_LIMIT)
    offset = _int_param(request, "offset", 0, 0, MAX_OFFSET)
    at = parse_at(request.query.get("at"))
    columns = _columns_param(request)

    def read() -> tuple[str, int, pl.DataFrame, int | None]:
        source = _source(request, store)
        snap = store.resolve_snapshot(source, at)
        lf = store.as_of(source, snap, columns=columns)
        df, nxt = _page(lf, limit, offset)
        return source, snap, df, nxt

    source, snap, df, nxt = await _in_thread(read)
    return json_response(
        {
            "source": source,
            "snapshot_id": snap,
            "columns": df.columns,
            "rows": _rows(df),
            "limit": limit,
            "offset": offset,
            "next_offset": nxt,
        }
    )


async def history(request: web.Request) -> web.Response:
    _check_unknown(request, ("limit", "offset"))
    store = request.app[STORE_KEY]
    limit = _int_param(request, "limit", DEFAULT_LIMIT, 1, MAX_LIMIT)
    offset = _int_param(request, "offset", 0, 0, MAX_OFFSET)
    asked = request.match_info["id"]

    def read() -> tuple[str, str, pl.DataFrame, int | None]:
        source = _source(request, store)
        try:  # an id, or a name the entity has or had (several: a 404 listing them)
            entity_id = store.resolve_entity(source, asked)
        except EntityNotFound as exc:
            raise ApiError(404, "id", str(exc)) from None
        df, nxt = _page(store.history(source, entity_id), limit, offset)
        return source, entity_id, df, nxt

    source, entity_id, df, nxt = await _in_thread(read)
    return json_response(
        {
            "source": source,
            "entity_id": entity_id,
            "changes": _rows(df),
            "limit": limit,
            "offset": offset,
            "next_offset": nxt,
        }
    )


async def top(request: web.Request) -> web.Response:
    _check_unknown(request, ("by", "k", "at"))
    store = request.app[STORE_KEY]
    k = _int_param(request, "k", DEFAULT_K, 1, MAX_K)
    at = parse_at(request.query.get("at"))
    by = request.query.get("by")
    if by == "":
        raise ApiError(400, "by", "by is empty: name a numeric column, or leave it out")

    def read() -> tuple[str, int, str, pl.DataFrame]:
        source = _source(request, store)
        col = by or _default_by(source)
        snap = store.resolve_snapshot(source, at)
        df = store.top_k(source, snap, col, k).head(k).collect()
        return source, snap, col, df

    source, snap, col, df = await _in_thread(read)
    return json_response(
        {"source": source, "snapshot_id": snap, "by": col, "k": k, "rows": _rows(df)}
    )


def _default_by(source: str) -> str:
    from storage.schemas import DEFAULT_POPULARITY

    return DEFAULT_POPULARITY.get(source, "downloads")


async def status(request: web.Request) -> web.Response:
    _check_unknown(request, ())
    live = request.app[LIVE_KEY]
    if live is None:
        return json_response({"running": []})
    body = live.to_json()
    # a crawl pacing to a quota says so: {"bucket", "seconds", "text"}, else null
    waits: dict[str, tuple[str, float]] = {}
    for source, bucket, left in live.stats.waiting():
        if source not in waits or left > waits[source][1]:
            waits[source] = (bucket, left)
    for run in body.get("running", []):
        w = waits.get(run["source"])
        run["waiting"] = (
            None
            if w is None
            else {"bucket": w[0], "seconds": round(w[1], 1), "text": waiting_text(*w)}
        )
    return json_response(body)


async def openapi(request: web.Request) -> web.Response:
    from scheduler.openapi import openapi_document

    return json_response(openapi_document())


# ---- errors -------------------------------------------------------------------------------

_STORE_ERRORS: dict[type[Exception], tuple[int, str | None]] = {
    UnknownSource: (404, "source"),
    SnapshotNotFound: (404, "at"),
    ColumnNotFound: (400, "columns"),
}


def _store_error_param(request: web.Request, exc: StoreError) -> tuple[int, str | None]:
    for cls, (status, param) in _STORE_ERRORS.items():
        if isinstance(exc, cls):
            if cls is ColumnNotFound and request.path.startswith("/api/top/"):
                return status, "by"
            return status, param
    return 500, None


@web.middleware
async def errors_middleware(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    try:
        return await handler(request)
    except ApiError as exc:
        return json_response(error_body(exc.status, exc.parameter, exc.message), exc.status)
    except StoreError as exc:
        status, param = _store_error_param(request, exc)
        msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        return json_response(error_body(status, param, msg), status)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        msg = f"{request.method} {request.path}: {exc.reason}"
        if exc.status == 404:
            msg += "; routes are listed at /api/openapi.json"
        response = json_response(error_body(exc.status, None, msg), exc.status)
        if "Allow" in exc.headers:  # a 405 says which methods the route takes
            response.headers["Allow"] = exc.headers["Allow"]
        return response


def build_app(
    store: Any,
    registry: CollectorRegistry,
    ready: ReadyCheck | None = None,
    *,
    live: Any = None,
) -> web.Application:
    """The aiohttp application over `store` (a `storage.Store`) and `registry`;
    `live` (a `scheduler.live.LiveState`) feeds `/api/status`."""
    app = web.Application(middlewares=[errors_middleware])
    app[STORE_KEY] = store
    app[REGISTRY_KEY] = registry
    app[READY_KEY] = ready if ready is not None else (lambda: (True, "ready"))
    app[LIVE_KEY] = live
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/api/snapshots", snapshots)
    app.router.add_get("/api/asof/{source}", asof)
    # npm entity ids carry a slash (`@scope/name`): the id is the rest of the path
    app.router.add_get("/api/history/{source}/{id:.+}", history)
    app.router.add_get("/api/top/{source}", top)
    app.router.add_get("/api/status", status)
    app.router.add_get("/api/openapi.json", openapi)
    return app
