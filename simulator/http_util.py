"""JSON bodies and the Hub's error responses."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

try:  # orjson is about 3x faster on listing pages when present
    import orjson

    def dumps(data: Any) -> bytes:
        return orjson.dumps(data)

except ImportError:  # pragma: no cover - depends on the environment

    def dumps(data: Any) -> bytes:
        return json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode()


def json_response(
    data: Any, *, status: int = 200, headers: dict[str, str] | None = None
) -> web.Response:
    return web.Response(
        body=dumps(data), status=status, headers=headers, content_type="application/json"
    )


def hub_error(status: int, message: str, code: str | None = None) -> web.Response:
    """An error as the Hub sends it: X-Error-Code / X-Error-Message and `{"error": ...}`."""
    headers = {"X-Error-Message": message}
    if code:
        headers["X-Error-Code"] = code
    return json_response({"error": message}, status=status, headers=headers)


def repo_not_found(kind: str, name: str, status: int = 404) -> web.Response:
    return hub_error(status, "Repository not found", "RepoNotFound")


def bool_param(value: str | None) -> bool:
    return value is not None and value.lower() in ("1", "true", "yes", "on")
