"""Faults on demand and the Hub's per-client request budget, as one aiohttp middleware.

Each public request draws one number from (seed, request counter), so a given seed and
request sequence always meets the same faults. Admin routes (`/_sim/`) are never faulted.
Every Hub API answer carries `RateLimit` / `RateLimit-Policy` headers (IETF draft, as the
Hub sends them) so a crawler can pace itself.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from aiohttp import web

from simulator.config import FAULT_KINDS, FaultConfig
from simulator.http_util import hub_error
from simulator.quota import QuotaState
from simulator.rng import h64

FAULT_KIND = web.RequestKey("sim_fault", str)
FAULT_DRAW = web.RequestKey("sim_fault_draw", int)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass
class FaultState:
    seed: int
    config: FaultConfig
    counter: int = 0
    injected: dict[str, int] = field(default_factory=dict)
    quota: QuotaState | None = None

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
        rl_headers: dict[str, str] = {}
        verdict = None
        if state.quota is not None:
            verdict = state.quota.spend(
                path, request.remote, request.headers.get("Authorization", "")
            )
        bucket = None if verdict is None else verdict.bucket
        if verdict is not None:
            rl_headers = verdict.headers()
            if verdict.exceeded:
                state.injected["budget"] = state.injected.get("budget", 0) + 1
                over = hub_error(429, "You have exceeded our rate limit. Please retry later.")
                over.headers.update(rl_headers)
                # the Hub names no Retry-After; clients wait for the RateLimit reset (t)
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
            failed = hub_error(
                status, "Internal Error - We're working hard to fix this as soon as possible!"
            )
            failed.headers.update(rl_headers)  # the request was counted: say so
            return failed
        if kind == "slow":
            await asyncio.sleep(state.config.slow_seconds)
        if kind == "drop":
            if request.transport is not None:
                request.transport.abort()
            raise ConnectionResetError("simulated dropped connection")
        if kind in ("malformed", "churn"):
            request[FAULT_KIND] = kind
            request[FAULT_DRAW] = h
        try:
            resp = await handler(request)
        except web.HTTPException as exc:  # the router's 404 / 405: counted, so headed too
            for k, v in rl_headers.items():
                exc.headers.setdefault(k, v)
            raise
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
