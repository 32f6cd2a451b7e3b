"""The OpenAPI 3.1 document of the daemon's HTTP API, served at `/api/openapi.json`.

Kept next to the handlers' limits (`scheduler.http`) so the documented caps are the real ones;
a test visits every path listed here.
"""

from __future__ import annotations

from typing import Any

from scheduler.http import DEFAULT_K, DEFAULT_LIMIT, MAX_K, MAX_LIMIT


def _param(
    name: str, where: str, schema: dict[str, Any], doc: str, required: bool = False
) -> dict[str, Any]:
    return {
        "name": name,
        "in": where,
        "required": required or where == "path",
        "schema": schema,
        "description": doc,
    }


_SOURCE = _param(
    "source", "path", {"type": "string"}, "A source in the store, e.g. hub:model or npm."
)
_LIMIT = _param(
    "limit",
    "query",
    {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": DEFAULT_LIMIT},
    "Rows per page.",
)
_OFFSET = _param(
    "offset", "query", {"type": "integer", "minimum": 0, "default": 0}, "Rows to skip."
)
_AT = _param(
    "at",
    "query",
    {"type": "string"},
    "A snapshot id, a date (the end of that UTC day) or an ISO 8601 instant (UTC when no zone): the newest complete snapshot at or before it. Default: the latest.",
)

_ERROR = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["status", "parameter", "message"],
            "properties": {
                "status": {"type": "integer"},
                "parameter": {
                    "type": ["string", "null"],
                    "description": "The parameter to blame, if any.",
                },
                "message": {"type": "string"},
            },
        }
    },
}


def _ok(doc: str) -> dict[str, Any]:
    return {
        "200": {
            "description": doc,
            "content": {"application/json": {"schema": {"type": "object"}}},
        },
        "400": {
            "description": "A bad parameter.",
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
        },
        "404": {
            "description": "No such source, snapshot or entity.",
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
        },
    }


def openapi_document() -> dict[str, Any]:
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "hubtide",
            "version": "1",
            "description": "Read-only access to the snapshots hubtide keeps. Every listing pages; limits are capped.",
        },
        "paths": {
            "/healthz": {
                "get": {
                    "summary": "The process is alive.",
                    "responses": {"200": {"description": "ok"}},
                }
            },
            "/readyz": {
                "get": {
                    "summary": "The store is open and the scheduler runs.",
                    "responses": {
                        "200": {"description": "ready"},
                        "503": {"description": "not ready"},
                    },
                }
            },
            "/metrics": {
                "get": {
                    "summary": "Prometheus metrics (text format).",
                    "responses": {"200": {"description": "metrics"}},
                }
            },
            "/api/snapshots": {
                "get": {
                    "summary": "Snapshots in the catalog (complete only unless include_partial).",
                    "parameters": [
                        _param("source", "query", {"type": "string"}, "Only this source."),
                        _param(
                            "include_partial",
                            "query",
                            {"type": "boolean", "default": False},
                            "Also running, partial and failed snapshots.",
                        ),
                        _LIMIT,
                        _OFFSET,
                    ],
                    "responses": _ok("{snapshots, limit, offset, next_offset}"),
                }
            },
            "/api/asof/{source}": {
                "get": {
                    "summary": "Entities of a source as of a snapshot, one page.",
                    "parameters": [
                        _SOURCE,
                        _AT,
                        _param(
                            "columns",
                            "query",
                            {"type": "string"},
                            "Comma-separated logical columns; default all.",
                        ),
                        _LIMIT,
                        _OFFSET,
                    ],
                    "responses": _ok(
                        "{source, snapshot_id, columns, rows, limit, offset, next_offset}"
                    ),
                }
            },
            "/api/history/{source}/{id}": {
                "get": {
                    "summary": "Every change of one entity, oldest first, one page.",
                    "parameters": [
                        _SOURCE,
                        _param(
                            "id", "path", {"type": "string"}, "The entity_id (may contain '/')."
                        ),
                        _LIMIT,
                        _OFFSET,
                    ],
                    "responses": _ok("{source, entity_id, changes, limit, offset, next_offset}"),
                }
            },
            "/api/top/{source}": {
                "get": {
                    "summary": "The top k entities of a snapshot by a popularity column.",
                    "parameters": [
                        _SOURCE,
                        _param(
                            "by",
                            "query",
                            {"type": "string"},
                            "Popularity column; default downloads (likes for hub:space).",
                        ),
                        _param(
                            "k",
                            "query",
                            {
                                "type": "integer",
                                "minimum": 1,
                                "maximum": MAX_K,
                                "default": DEFAULT_K,
                            },
                            "How many.",
                        ),
                        _AT,
                    ],
                    "responses": _ok("{source, snapshot_id, by, k, rows}"),
                }
            },
            "/api/status": {
                "get": {
                    "summary": "Crawls in flight with progress, recent failures, last report.",
                    "responses": _ok("{running, recent_failures, recent_crawls, last_report}"),
                }
            },
            "/api/openapi.json": {
                "get": {
                    "summary": "This document.",
                    "responses": {"200": {"description": "OpenAPI 3.1"}},
                }
            },
        },
        "components": {"schemas": {"Error": _ERROR}},
    }
