"""The Hub's request quotas: three buckets per client, fixed 5-minute windows, tiers.

Facts (hub-docs `docs/hub/rate-limits.md`, Sept 2025; ../shared/docs/hub-api.md §7): every
answer carries `RateLimit: "<bucket>";r=<remaining>;t=<seconds to reset>` and
`RateLimit-Policy: "fixed window";"<bucket>";q=<quota>;w=<window>`, and a spent bucket answers
429. `/api/...` spends the api bucket, `.../resolve/...` the resolvers bucket, any other Hub
path (web pages) the pages bucket. A client is its token when it sends one, else its address.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from simulator.config import QUOTA_TIERS, QUOTA_WINDOW_SECONDS, FaultConfig, QuotaConfig

# advertised (never enforced) when quotas are off, so a client pacing itself on the headers
# does not slow a test down
OPEN_QUOTA = 100_000
# the registries' prefixes have their own limits (registry_routes); admin is never limited
UNMETERED = ("/_sim/", "/ecosystems/", "/npm-downloads/", "/pypistats/")


@dataclass(frozen=True)
class Verdict:
    """One request's effect on its bucket: the headers to send and whether it is refused."""

    bucket: str
    quota: int
    window: float
    remaining: int
    reset: float
    exceeded: bool

    def headers(self) -> dict[str, str]:
        w = max(1, int(self.window))
        # rounded up: a client that waits t seconds finds the window reset
        t = max(1, math.ceil(self.reset))
        return {
            "RateLimit": f'"{self.bucket}";r={self.remaining};t={t}',
            "RateLimit-Policy": f'"fixed window";"{self.bucket}";q={self.quota};w={w}',
        }


def budget_override(cfg: FaultConfig) -> tuple[int, float] | None:
    """A fault budget (`budget=N/S`) replaces the api quota, resolvers getting 5x, and is
    enforced even when quotas are off (the faults' own per-client window)."""
    b = cfg.budget
    return None if b is None else (b.requests, b.window_seconds)


def bucket_of(path: str) -> str | None:
    """The bucket a Hub path spends (None: not metered by the Hub's quotas)."""
    if path.startswith(UNMETERED) or path == "/_sim":
        return None
    if path.startswith("/api/"):
        return "api"
    if "/resolve/" in path:
        return "resolvers"
    return "pages"


def token_of(authorization: str) -> str | None:
    """The token of an `Authorization: Bearer <token>` header (None when anonymous)."""
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


@dataclass
class QuotaState:
    """Fixed windows per (client, bucket). `clock` is injectable so tests need not sleep."""

    config: QuotaConfig
    api_override: tuple[int, float] | None = None  # FaultConfig.budget: (requests, window)
    clock: Callable[[], float] = time.monotonic
    windows: dict[tuple[str, str], tuple[float, int]] = field(default_factory=dict)
    refused: int = 0

    def limits(self, tier: str, bucket: str) -> tuple[int, float]:
        """(quota, window seconds) of a tier's bucket, the window divided by the time scale."""
        if self.api_override is not None:
            req, win = self.api_override
            return (req * 5 if bucket == "resolvers" else req), win
        if not self.config.enabled:
            return OPEN_QUOTA, QUOTA_WINDOW_SECONDS
        return QUOTA_TIERS[tier][bucket], QUOTA_WINDOW_SECONDS / self.config.time_scale

    def spend(self, path: str, remote: str | None, authorization: str) -> Verdict | None:
        """Count one request; None for paths outside the Hub's quotas."""
        bucket = bucket_of(path)
        if bucket is None:
            return None
        token = token_of(authorization)
        tier = self.config.tier_of(token)
        quota, window = self.limits(tier, bucket)
        client = f"token:{token}" if token is not None else f"ip:{remote}"
        now = self.clock()
        start, used = self.windows.get((client, bucket), (now, 0))
        if now - start >= window:
            # a fixed window: the next one starts at a whole number of windows after the first
            start += window * ((now - start) // window)
            used = 0
        used += 1
        self.windows[(client, bucket)] = (start, used)
        enforced = self.config.enabled or self.api_override is not None
        exceeded = enforced and used > quota
        if exceeded:
            self.refused += 1
        return Verdict(bucket, quota, window, max(quota - used, 0), start + window - now, exceeded)
