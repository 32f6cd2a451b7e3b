"""Small HTTP helpers for the simulator tests (stdlib only)."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any


def get(
    url: str, method: str = "GET", body: bytes | None = None
) -> tuple[int, dict[str, str], bytes]:
    req = urllib.request.Request(url, method=method, data=body)
    if body is not None:
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


def get_json(url: str, method: str = "GET", body: Any = None) -> Any:
    status, _h, raw = get(url, method, None if body is None else json.dumps(body).encode())
    assert status == 200, (status, raw[:200])
    return json.loads(raw)


def truth(url: str, source: str, **params: str) -> list[dict[str, Any]]:
    q = "&".join(f"{k}={v}" for k, v in params.items())
    status, _h, raw = get(f"{url}/_sim/truth?source={source}&{q}")
    assert status == 200, raw[:200]
    return [json.loads(line) for line in raw.decode().splitlines() if line]


def page_bodies(url: str) -> list[bytes]:
    """Follow a listing's `Link: <...>; rel="next"` from `url` to its end; each page's body."""
    bodies: list[bytes] = []
    nxt: str | None = url
    while nxt:
        _s, h, body = get(nxt)
        bodies.append(body)
        link = h.get("Link")
        nxt = link.split(";")[0].strip("<>") if link else None
    return bodies
