"""npm and PyPI packages as columns, with daily download counts as a pure function.

A package's downloads on day d are `rate * exp(trend * d) * noise(d)`, so any period the
download-count APIs are asked about is well defined and consistent with the 30-day figure
ecosyste.ms lists. Trends are small, so the registries' top 1000 stays far more stable
than the Hub's (paper A).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from simulator import vocab
from simulator.rng import unit

DAY = 86_400

# host-like registry names, as ecosyste.ms names registries by host; never the real hosts
REGISTRY_NAMES = {"npm": "npm-registry.sim", "pypi": "pypi-registry.sim"}
REGISTRY_PURL = {"npm": "npm", "pypi": "pypi"}


class PackageTable:
    """All packages of one ecosystem."""

    def __init__(self, ecosystem: str, seed: int) -> None:
        self.ecosystem = ecosystem
        self.registry = REGISTRY_NAMES[ecosystem]
        self.seed = seed
        self.code = 10 if ecosystem == "npm" else 11
        self.names: list[str] = []
        self.by_name: dict[str, int] = {}
        self.rate = np.zeros(0, np.float64)  # mean daily downloads at day 0
        self.trend = np.zeros(0, np.float64)  # log growth per day
        self.created = np.zeros(0, np.int64)
        self.latest = np.zeros(0, np.int64)  # latest release time
        self.versions = np.zeros(0, np.int64)
        self.dependents = np.zeros(0, np.int64)
        self.dep_repos = np.zeros(0, np.int64)
        self.license = np.zeros(0, np.int16)
        self.alive = np.zeros(0, np.bool_)
        self.birth_day = np.zeros(0, np.int64)
        self.last_month = np.zeros(0, np.int64)  # cached: 30-day sum as of the current day
        self.version = 0

    @property
    def n(self) -> int:
        return len(self.names)

    def create(
        self, rng: np.random.Generator, count: int, *, day: int, now: int, initial: bool
    ) -> None:
        rate = np.exp(-np.log(rng.random(count)) / 0.55) * 0.3  # Pareto tail of daily rates
        if not initial:
            rate *= 0.2
        trend = rng.normal(0.0, 0.0015, count)
        age = (
            (rng.power(1.5, count) * 4000).astype(np.int64)
            if initial
            else np.zeros(count, np.int64)
        )
        age = np.where(initial, 4000 - age, 0)
        created = now - age * DAY - rng.integers(0, DAY, count)
        latest = created + ((now - created) * rng.random(count) ** 0.3).astype(np.int64)
        versions = 1 + np.floor(np.exp(rng.normal(1.8, 1.2, count))).astype(np.int64)
        dep = np.floor(rate**0.6 * rng.lognormal(0, 1, count)).astype(np.int64)
        dep_repos = np.floor(dep * rng.lognormal(1.0, 0.8, count)).astype(np.int64)
        lw = np.asarray(vocab.PKG_LICENSE_WEIGHTS)
        lic = rng.choice(len(lw), size=count, p=lw / lw.sum()).astype(np.int16)
        lic[rng.random(count) < 0.08] = -1
        self.rate = np.concatenate([self.rate, rate])
        self.trend = np.concatenate([self.trend, trend])
        self.created = np.concatenate([self.created, created])
        self.latest = np.concatenate([self.latest, latest])
        self.versions = np.concatenate([self.versions, versions])
        self.dependents = np.concatenate([self.dependents, dep])
        self.dep_repos = np.concatenate([self.dep_repos, dep_repos])
        self.license = np.concatenate([self.license, lic])
        self.alive = np.concatenate([self.alive, np.ones(count, np.bool_)])
        self.birth_day = np.concatenate([self.birth_day, np.full(count, day) - age])
        words = vocab.NPM_WORDS if self.ecosystem == "npm" else vocab.PYPI_WORDS
        hs = rng.integers(0, 1 << 62, count)
        for h in hs:
            h = int(h)
            base = (
                f"{words[h % len(words)]}-{vocab.PKG_SUFFIXES[(h >> 8) % len(vocab.PKG_SUFFIXES)]}"
            )
            if self.ecosystem == "npm" and (h >> 16) % 6 == 0:
                base = f"@{vocab.SYLLABLES[(h >> 20) % 32]}{vocab.SYLLABLES[(h >> 25) % 32]}/{base}"
            name = base
            k = 2
            while name in self.by_name:
                name = f"{base}{k}" if self.ecosystem == "npm" else f"{base}-{k}"
                k += 1
            self.by_name[name] = len(self.names)
            self.names.append(name)
        self.version += 1

    def daily(self, rows: Any, days: Any) -> npt.NDArray[np.int64]:
        """Downloads of `rows` on simulated `days` (broadcast), 0 before creation."""
        rows = np.asarray(rows)
        days = np.asarray(days)
        noise = 0.75 + 0.5 * unit(self.seed, self.code, rows, days)
        weekday = np.where(np.mod(days, 7) >= 5, 0.7, 1.08)
        v = self.rate[rows] * np.exp(self.trend[rows] * days) * noise * weekday
        v = np.where(days >= self.birth_day[rows], v, 0.0)
        return np.floor(v).astype(np.int64)

    def refresh(self, day: int) -> None:
        """Recompute the cached 30-day sums as of `day` (the days day-30 .. day-1)."""
        rows = np.arange(self.n)
        tot = np.zeros(self.n, np.int64)
        for d in range(day - 30, day):
            tot += self.daily(rows, d)
        self.last_month = tot * self.alive

    def step_day(self, rng: np.random.Generator, *, day: int, now: int) -> dict[str, int]:
        alive = np.flatnonzero(self.alive)
        rel = alive[rng.random(len(alive)) < 0.004 + 0.02 * (self.rate[alive] > 50)]
        self.latest[rel] = now - rng.integers(0, DAY, len(rel))
        self.versions[rel] += 1
        dele = alive[rng.random(len(alive)) < 0.0002]
        self.alive[dele] = False
        for r in dele:
            self.by_name.pop(self.names[int(r)], None)
        created = int(rng.poisson(max(len(alive), 1) * 0.002))
        if created:
            self.create(rng, created, day=day, now=now, initial=False)
        self.version += 1
        return {"created": created, "released": len(rel), "deleted": len(dele)}
