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


DEFAULT_START = datetime(2025, 1, 1, tzinfo=UTC)


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
    page_size: int = 1000  # max items per Hub listing page
    commits_page_size: int = 50
    discussions_page_size: int = 50

    def with_(self, **changes: Any) -> SimConfig:
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        values.update(changes)
        return SimConfig(**values)
