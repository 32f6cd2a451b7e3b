"""Configuration of a simulated world and its server (sizes, seed, start date, faults)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from typing import Any

FAULT_KINDS = (
    "rate_limit",  # 429 with Retry-After or the Hub's RateLimit headers
    "server_error",  # 500 / 502 / 503
    "slow",  # answer after a delay (a client with a short timeout sees a timeout)
    "drop",  # close the connection without an answer
    "truncate",  # cut the JSON body short
    "malformed",  # one item of a listing with a missing field or a wrong type
    "churn",  # a repo further down a listing deleted or renamed between two pages
)


@dataclass(frozen=True)
class Budget:
    """Per-client request budget, like the Hub's fixed windows (1000 API requests / 300 s)."""

    requests: int = 1000
    window_seconds: float = 300.0


@dataclass(frozen=True)
class FaultConfig:
    """Fault rates. `rate` is spread evenly over every kind; per-kind rates override it."""

    rate: float = 0.0
    kinds: dict[str, float] = field(default_factory=dict)
    budget: Budget | None = None
    slow_seconds: float = 2.0
    retry_after: int = 1

    def rate_of(self, kind: str) -> float:
        if kind in self.kinds:
            return self.kinds[kind]
        return self.rate / len(FAULT_KINDS)

    @property
    def active(self) -> bool:
        return self.rate > 0 or any(v > 0 for v in self.kinds.values())

    @classmethod
    def parse(cls, spec: str | dict[str, Any] | None) -> FaultConfig:
        """From JSON text / dict (`{"rate": 0.05, "server_error": 0.1, "budget": {...}}`) or a
        short form `rate=0.05,server_error=0.1,budget=1000/300`."""
        if spec is None or spec == "" or spec == {}:
            return cls()
        if isinstance(spec, str):
            text = spec.strip()
            spec = json.loads(text) if text.startswith("{") else _parse_short(text)
        assert isinstance(spec, dict)
        rate = 0.0
        kinds: dict[str, float] = {}
        budget: Budget | None = None
        slow = 2.0
        retry_after = 1
        allowed = ("rate", "budget", "slow_seconds", "retry_after", *FAULT_KINDS)
        for key, value in spec.items():
            if key == "rate":
                rate = _rate(key, value)
            elif key in FAULT_KINDS:
                kinds[key] = _rate(key, value)
            elif key == "budget":
                budget = _budget(value)
            elif key == "slow_seconds":
                slow = float(value)
            elif key == "retry_after":
                retry_after = int(value)
            else:
                raise ValueError(f"unknown fault key {key!r}; allowed: {', '.join(allowed)}")
        return cls(rate, kinds, budget, slow, retry_after)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"rate": self.rate, **self.kinds}
        if self.budget is not None:
            out["budget"] = {
                "requests": self.budget.requests,
                "window_seconds": self.budget.window_seconds,
            }
        out["slow_seconds"] = self.slow_seconds
        out["retry_after"] = self.retry_after
        return out


def _rate(key: str, value: Any) -> float:
    v = float(value)
    if not 0.0 <= v <= 1.0:
        raise ValueError(f"fault rate {key}={value!r} must be between 0 and 1")
    return v


def _budget(value: Any) -> Budget | None:
    if value is None or value == 0:
        return None
    if isinstance(value, str):
        req, _, win = value.partition("/")
        return Budget(int(req), float(win or 300))
    if isinstance(value, dict):
        return Budget(int(value.get("requests", 1000)), float(value.get("window_seconds", 300)))
    raise ValueError(f"budget {value!r}: expected {{'requests': N, 'window_seconds': S}} or 'N/S'")


def _parse_short(text: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for part in text.split(","):
        if not part.strip():
            continue
        key, sep, value = part.partition("=")
        if not sep:
            # a bare number is the overall rate
            out["rate"] = key
            continue
        out[key.strip()] = value.strip()
    return out


# The Hub's quotas per fixed 5-minute window (hub-docs `docs/hub/rate-limits.md`, Sept 2025;
# ../shared/docs/hub-api.md §7), per bucket: /api/..., .../resolve/..., web pages.
QUOTA_WINDOW_SECONDS = 300.0
QUOTA_BUCKETS = ("api", "resolvers", "pages")
QUOTA_TIERS: dict[str, dict[str, int]] = {
    "anonymous": {"api": 500, "resolvers": 3_000, "pages": 100},
    "free": {"api": 1_000, "resolvers": 5_000, "pages": 200},
    "pro": {"api": 2_500, "resolvers": 12_000, "pages": 400},
    "team": {"api": 3_000, "resolvers": 20_000, "pages": 400},
    "enterprise": {"api": 6_000, "resolvers": 50_000, "pages": 600},
}


@dataclass(frozen=True)
class QuotaConfig:
    """The Hub's quotas, on by default. A request without a token is `anonymous`; a token is
    `token_tier` (free, as on the Hub for a plain account) unless `tokens` names its tier.
    `time_scale` F divides the window length by F (request counts stay real)."""

    enabled: bool = True
    token_tier: str = "free"
    tokens: tuple[tuple[str, str], ...] = ()
    time_scale: float = 1.0

    def __post_init__(self) -> None:
        for tier in (self.token_tier, *(t for _, t in self.tokens)):
            if tier not in QUOTA_TIERS:
                raise ValueError(f"quota tier {tier!r}; allowed: {', '.join(QUOTA_TIERS)}")
        if not self.time_scale > 0:
            raise ValueError(f"time scale {self.time_scale!r} must be > 0")

    def tier_of(self, token: str | None) -> str:
        """The tier whose quotas a client with this token (None: anonymous) gets."""
        if token is None:
            return "anonymous"
        return dict(self.tokens).get(token, self.token_tier)

    @classmethod
    def parse(cls, spec: str | None, time_scale: float = 1.0) -> QuotaConfig:
        """`off`, `on` (or empty: the Hub's tiers, a token is free), a tier name for every
        token (`pro`), or `token_tier=pro,hf_abc=team` (per-token tiers)."""
        text = (spec or "").strip()
        if text in ("", "on", "hub"):
            return cls(time_scale=time_scale)
        if text == "off":
            return cls(enabled=False, time_scale=time_scale)
        if text in QUOTA_TIERS:
            return cls(token_tier=text, time_scale=time_scale)
        tier = "free"
        tokens: list[tuple[str, str]] = []
        for part in text.split(","):
            key, sep, value = part.strip().partition("=")
            if not sep:
                raise ValueError(f"quota {spec!r}: expected off, on, a tier or KEY=TIER pairs")
            if key == "token_tier":
                tier = value
            else:
                tokens.append((key, value))
        return cls(token_tier=tier, tokens=tuple(tokens), time_scale=time_scale)

    def to_json(self) -> dict[str, Any]:
        return {
            "enabled": self.enabled,
            "token_tier": self.token_tier,
            "tokens": dict(self.tokens),
            "time_scale": self.time_scale,
            "window_seconds": QUOTA_WINDOW_SECONDS / self.time_scale,
        }


# A live world's clock moves this much per Hub request: an anonymous client spending its whole
# api quota (500 per 300 s) sees simulated time pass at the real pace (times the time scale,
# which shortens the window but not the count).
LIVE_SECONDS_PER_REQUEST = QUOTA_WINDOW_SECONDS / QUOTA_TIERS["anonymous"]["api"]

# A minute: 1,440 states a day. A crawl at an anonymous client's pace (0.6 simulated seconds
# a request) meets a new state every 100 requests, so at Hub scale the listing is re-sorted
# once per 100 pages, not on every page.
LIVE_RESOLUTION_SECONDS = 60

DEFAULT_START = datetime(2025, 1, 1, tzinfo=UTC)

# `--scale hub`: the real Hub's sizes (a census listed 3,117,871 models on 2026-10-03;
# datasets about 963k in mid-2026; spaces several hundred thousand; field-notes §1)
SCALES: dict[str, dict[str, int]] = {
    "hub": {"models": 3_200_000, "datasets": 1_000_000, "spaces": 800_000},
}


@dataclass(frozen=True)
class SimConfig:
    """Sizes and seed of a world. Defaults are a small world for tests."""

    seed: int = 0
    models: int = 300
    datasets: int = 100
    spaces: int = 80
    npm: int = 300
    pypi: int = 300
    start: datetime = DEFAULT_START
    faults: FaultConfig = field(default_factory=FaultConfig)
    quota: QuotaConfig = field(default_factory=QuotaConfig)
    # live world: simulated seconds each Hub request moves the clock (0: the clock moves only
    # by /_sim/advance). LIVE_SECONDS_PER_REQUEST is the pace of a client at its quota.
    live_seconds_per_request: float = 0.0
    # a live world's state moves in steps of this many simulated seconds (1 .. 86400): each
    # step applies the changes whose instants it passed and re-prorates the counters (and so
    # re-sorts the listings once). 86400: the whole day's step at each midnight.
    live_resolution_seconds: int = LIVE_RESOLUTION_SECONDS
    # optional fields: the share of Spaces linking no models (datasets) that omit the key,
    # and the share of repos listed without `author` (both clients type them optional)
    space_links_omitted: float = 1.0
    author_omitted: float = 0.01
    page_size: int = 1000  # max items per Hub listing page
    commits_page_size: int = 50
    discussions_page_size: int = 50

    def __post_init__(self) -> None:
        res = self.live_resolution_seconds
        if not (isinstance(res, int) and 1 <= res <= 86_400):
            raise ValueError(f"live_resolution_seconds={res!r} must be a whole number in 1..86400")

    def with_(self, **changes: Any) -> SimConfig:
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        values.update(changes)
        return SimConfig(**values)
