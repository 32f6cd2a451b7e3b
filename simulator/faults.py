"""Faults on demand and the Hub's per-client request budget, as one aiohttp middleware.

Each public request draws one number from (seed, request counter), so a given seed and
request sequence always meets the same faults. Admin routes (`/_sim/`) are never faulted.
Every Hub API answer carries `RateLimit` / `RateLimit-Policy` headers (IETF draft, as the
Hub sends them) so a crawler can pace itself.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from aiohttp import web

from simulator.config import FAULT_KINDS, FaultConfig
from simulator.http_util import hub_error
from simulator.rng import h64

FAULT_KIND = web.RequestKey("sim_fault", str)
FAULT_DRAW = web.RequestKey("sim_fault_draw", int)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
# quota advertised when no budget is configured (never enforced)
OPEN_QUOTA = 100_000
OPEN_WINDOW = 300


@dataclass
class FaultState:
    seed: int
    config: FaultConfig
    counter: int = 0
    injected: dict[str, int] = field(default_factory=dict)
    windows: dict[tuple[str, str], tuple[float, int]] = field(default_factory=dict)

    def draw(self) -> tuple[str | None, int]:
        """The fault kind for the next request (or None) and a number for its details."""
        self.counter += 1
        h = h64(self.seed, 555, self.counter)
        u = (h >> 11) / float(1 << 53)
        acc = 0.0
        for kind in FAULT_KINDS:
            acc += self.config.rate_of(kind)
            if u < acc:
                return kind, h
        return None, h

    def budget(self, client: str, bucket: str) -> tuple[int, int, int, int, bool]:
        """(quota, window seconds, remaining, seconds to reset, exceeded) for a client."""
        b = self.config.budget
        quota, window = (b.requests, b.window_seconds) if b else (OPEN_QUOTA, OPEN_WINDOW)
        if bucket == "resolvers":
            quota *= 5
        now = time.monotonic()
        start, used = self.windows.get((client, bucket), (now, 0))
        if now - start >= window:
            start, used = now, 0
        used += 1
        self.windows[(client, bucket)] = (start, used)
        reset = max(1, round(start + window - now))
        exceeded = b is not None and used > quota
        return quota, int(window) or 1, max(quota - used, 0), reset, exceeded


def _bucket(path: str) -> str | None:
    if path.startswith("/api/"):
        return "api"
    if "/resolve/" in path:
        return "resolvers"
    return None


def _listing(path: str) -> bool:
    return path in ("/api/models", "/api/datasets", "/api/spaces") or path.endswith("/packages")


def make_middleware(
    state: FaultState,
) -> Callable[[web.Request, Handler], Awaitable[web.StreamResponse]]:
    @web.middleware
    async def faults(request: web.Request, handler: Handler) -> web.StreamResponse:
        path = request.path
        if path.startswith("/_sim/"):
            return await handler(request)
        bucket = _bucket(path)
        rl_headers: dict[str, str] = {}
        if bucket is not None:
            client = f"{request.remote}|{request.headers.get('Authorization', '')}"
            quota, window, remaining, reset, exceeded = state.budget(client, bucket)
            rl_headers = {
                "RateLimit": f'"{bucket}";r={remaining};t={reset}',
                "RateLimit-Policy": f'"fixed window";"{bucket}";q={quota};w={window}',
            }
            if exceeded:
                state.injected["budget"] = state.injected.get("budget", 0) + 1
                over = hub_error(429, "You have exceeded our rate limit. Please retry later.")
                over.headers.update(rl_headers)
                return over
        kind, h = state.draw() if state.config.active else (None, 0)
        if kind in ("malformed", "churn") and not _listing(path):
            kind = None
        if kind is not None:
            state.injected[kind] = state.injected.get(kind, 0) + 1
        if kind == "rate_limit":
            limited = hub_error(429, "You have exceeded our rate limit. Please retry later.")
            wait = state.config.retry_after
            if h % 2 and bucket is not None:
                limited.headers["RateLimit"] = f'"{bucket}";r=0;t={wait}'
                limited.headers["RateLimit-Policy"] = rl_headers.get("RateLimit-Policy", "")
            else:
                limited.headers["Retry-After"] = str(wait)
            return limited
        if kind == "server_error":
            status = (500, 502, 503)[(h >> 8) % 3]
            return hub_error(
                status, "Internal Error - We're working hard to fix this as soon as possible!"
            )
        if kind == "slow":
            await asyncio.sleep(state.config.slow_seconds)
        if kind == "drop":
            if request.transport is not None:
                request.transport.abort()
            raise ConnectionResetError("simulated dropped connection")
        if kind in ("malformed", "churn"):
            request[FAULT_KIND] = kind
            request[FAULT_DRAW] = h
        resp = await handler(request)
        for k, v in rl_headers.items():
            resp.headers.setdefault(k, v)
        if kind == "truncate" and isinstance(resp, web.Response) and resp.body:
            body = bytes(resp.body)  # type: ignore[arg-type]
            cut = web.Response(
                body=body[: max(1, len(body) // 2)],
                status=resp.status,
                headers={k: v for k, v in resp.headers.items() if k.lower() != "content-length"},
            )
            return cut
        return resp

    return faults
