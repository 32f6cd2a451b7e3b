"""The OpenAPI 3.1 document of the daemon's HTTP API, served at `/api/openapi.json`.

Kept next to the handlers' limits (`scheduler.http`) so the documented caps are the real ones;
a test visits every path listed here.

The built-in sources get paths of their own (`/api/asof/hub:model`, `/api/top/npm`, ...)
whose `columns` and `by` are enumerations from their schemas (`storage.schemas`), so a
generated test (schemathesis, tests/scheduler/test_schemathesis.py) knows what is allowed
and what is a violation; `{source}` stays for `custom:` sources, whose columns only their
table knows.
"""

from __future__ import annotations

from typing import Any

from scheduler.http import DEFAULT_K, DEFAULT_LIMIT, MAX_K, MAX_LIMIT, MAX_OFFSET
from storage import schemas


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
    "offset",
    "query",
    {"type": "integer", "minimum": 0, "maximum": MAX_OFFSET, "default": 0},
    "Rows to skip.",
)
_AT = _param(
    "at",
    "query",
    {
        "anyOf": [
            {"type": "integer", "minimum": 0},
            {"type": "string", "format": "date"},
            {"type": "string", "format": "date-time"},
        ]
    },
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


_ERROR_JSON = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}


def _ok(doc: str) -> dict[str, Any]:
    return {
        "200": {
            "description": doc,
            "content": {"application/json": {"schema": {"type": "object"}}},
        },
        "400": {
            "description": "A bad parameter.",
            "content": _ERROR_JSON,
        },
        "404": {
            "description": "No such source, snapshot or entity.",
            "content": _ERROR_JSON,
        },
    }


def _asof(source: dict[str, Any] | None, columns: dict[str, Any]) -> dict[str, Any]:
    return {
        "get": {
            "summary": "Entities of a source as of a snapshot, one page.",
            "parameters": [
                *([source] if source else []),
                _AT,
                {
                    **_param(
                        "columns", "query", columns, "Comma-separated logical columns; default all."
                    ),
                    "style": "form",
                    "explode": False,
                },
                _LIMIT,
                _OFFSET,
            ],
            "responses": _ok("{source, snapshot_id, columns, rows, limit, offset, next_offset}"),
        }
    }


def _top(source: dict[str, Any] | None, by: dict[str, Any]) -> dict[str, Any]:
    return {
        "get": {
            "summary": "The top k entities of a snapshot by a numeric column.",
            "parameters": [
                *([source] if source else []),
                _param(
                    "by", "query", by, "Numeric column; default downloads (likes for hub:space)."
                ),
                _param(
                    "k",
                    "query",
                    {"type": "integer", "minimum": 1, "maximum": MAX_K, "default": DEFAULT_K},
                    "How many.",
                ),
                _AT,
            ],
            "responses": _ok("{source, snapshot_id, by, k, rows}"),
        }
    }


def _per_source() -> dict[str, Any]:
    """`/api/asof/SOURCE` and `/api/top/SOURCE` of each built-in source, with its columns."""
    paths: dict[str, Any] = {}
    for source in schemas.BUILTIN_SOURCES:
        schema = schemas.entity_schema(source)
        assert schema is not None  # a built-in source has one
        columns = {
            "type": "array",
            "items": {"type": "string", "enum": list(schema.names)},
            "uniqueItems": True,
            "minItems": 1,
        }
        by = {"type": "string", "enum": schemas.rankable_columns(schema)}
        paths[f"/api/asof/{source}"] = _asof(None, columns)
        paths[f"/api/top/{source}"] = _top(None, by)
    return paths


def openapi_document() -> dict[str, Any]:
    """The document: every route, its parameters with their bounds, and the error shape."""
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
            "/api/asof/{source}": _asof(_SOURCE, {"type": "string", "pattern": "^[^,]+(,[^,]+)*$"}),
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
            "/api/top/{source}": _top(_SOURCE, {"type": "string", "minLength": 1}),
            **_per_source(),
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
