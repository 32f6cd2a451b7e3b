"""The whole simulated world: clock, authors, Hub repos of three kinds, two registries.

Deterministic: the initial world is drawn from `seed`, and day d's changes from (seed, d),
so two servers with the same seed that advanced the same days hold the same state.
"""

from __future__ import annotations

import gc
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np

from simulator.config import SimConfig
from simulator.hub_gen import create_repos, rename_wave, step_day
from simulator.hub_world import Authors, RepoTable
from simulator.registry_world import PackageTable

KIND_OF_PATH = {"models": "model", "datasets": "dataset", "spaces": "space"}
SOURCES = ("hub:model", "hub:dataset", "hub:space", "npm", "pypi")
# In January 2024 the Hub moved every un-namespaced model under an organisation (`gpt2` ->
# `openai-community/gpt2`) and has listed only `namespace/name` ids since (field-notes §1)
NAMESPACE_MOVE = int(datetime(2024, 1, 1, tzinfo=UTC).timestamp())


class World:
    def __init__(self, config: SimConfig) -> None:
        self.config = config
        self.seed = config.seed
        self.day = 0
        self.live_seconds = 0.0  # simulated seconds into the current day (a live world)
        self.start = int(config.start.timestamp())
        total = config.models + config.datasets + config.spaces
        n_users = max(20, total // 5)
        n_orgs = max(5, total // 40)
        self.authors = Authors(config.seed, n_users, n_orgs)
        self.hub: dict[str, RepoTable] = {
            "model": RepoTable("model", int(config.models * 1.3) + 16),
            "dataset": RepoTable("dataset", int(config.datasets * 1.3) + 16),
            "space": RepoTable("space", int(config.spaces * 1.3) + 16),
        }
        self.packages: dict[str, PackageTable] = {
            "npm": PackageTable("npm", config.seed),
            "pypi": PackageTable("pypi", config.seed),
        }
        self.events: list[dict[str, Any]] = []
        rng = np.random.default_rng([config.seed, 1])
        now = self.now
        m, d, s = self.hub["model"], self.hub["dataset"], self.hub["space"]
        # models are created in slices so later ones can declare earlier ones as their base
        done = 0
        slices = 8 if config.models >= 64 else 1
        for k in range(slices):
            cnt = config.models * (k + 1) // slices - done
            if cnt:
                create_repos(
                    m, self.authors, rng, cnt, day=0, now=now, initial=True, legacy_share=0.01
                )
            done += cnt
        if self.start >= NAMESPACE_MOVE:
            # the Hub's move already happened: every legacy id is listed under its owner and
            # its old name answers a redirect (rename_wave draws nothing from rng)
            rename_wave(m, self.authors, 0, rng)
        if config.datasets:
            create_repos(d, self.authors, rng, config.datasets, day=0, now=now, initial=True)
        if config.spaces:
            create_repos(
                s, self.authors, rng, config.spaces, day=0, now=now, initial=True,
                models=m, datasets=d,
            )  # fmt: skip
        for t in (m, d, s):
            _ensure_every_path(t)
        for eco, count in (("npm", config.npm), ("pypi", config.pypi)):
            if count:
                self.packages[eco].create(rng, count, day=0, now=now, initial=True)
            self.packages[eco].refresh(0)
        _freeze_if_big(total)

    @property
    def now(self) -> int:
        """Simulated unix time of the current day's step: start + days advanced."""
        return self.start + self.day * 86_400

    @property
    def clock_now(self) -> float:
        """Simulated unix time including a live world's seconds into the day."""
        return self.now + self.live_seconds

    def tick(self, seconds: float) -> int:
        """A live world's clock moves `seconds`; each simulated midnight it crosses runs the
        day's step, the same one `advance(1)` runs, so a live world at day d equals a world
        advanced d days (one seed, one history). Returns the days stepped."""
        self.live_seconds += seconds
        days = int(self.live_seconds // 86_400)
        if days:
            self.live_seconds -= days * 86_400
            self.advance(days)
        return days

    def day_of(self, ts: float) -> int:
        """The day whose state the world held at simulated unix time `ts`."""
        return int((ts - self.start) // 86_400)

    @property
    def now_dt(self) -> datetime:
        return datetime.fromtimestamp(self.now, tz=UTC)

    def advance(self, days: int) -> dict[str, Any]:
        """Move the world forward by whole days; returns counts per source."""
        totals: dict[str, dict[str, int]] = {}
        for _ in range(days):
            self.day += 1
            rng = np.random.default_rng([self.seed, 1000 + self.day])
            now = self.now
            m, d, s = self.hub["model"], self.hub["dataset"], self.hub["space"]
            for kind, t in (("model", m), ("dataset", d), ("space", s)):
                if t.n == 0:
                    continue
                counts = step_day(t, self.authors, rng, day=self.day, now=now, models=m, datasets=d)
                _add(totals, f"hub:{kind}", counts)
            # now and then a wave of renames, like the Hub's January 2024 move of
            # un-namespaced models under their organisations
            if self.day % 45 == 0 and m.n:
                n = rename_wave(m, self.authors, self.day, rng)
                _add(totals, "hub:model", {"renamed": n})
            for eco, p in self.packages.items():
                if p.n:
                    _add(totals, eco, p.step_day(rng, day=self.day, now=now))
                p.refresh(self.day)
        _freeze_if_big(sum(t.n for t in self.hub.values()))
        return {"day": self.day, "now": iso(self.now), "changes": totals}

    def clock(self) -> dict[str, Any]:
        return {
            "now": iso(self.clock_now),
            "day": self.day,
            "live": self.config.live_seconds_per_request > 0,
            "start": iso(self.start),
            "seed": self.seed,
            "sizes": {
                "models": int(self.hub["model"].col("alive").sum()),
                "datasets": int(self.hub["dataset"].col("alive").sum()),
                "spaces": int(self.hub["space"].col("alive").sum()),
                "npm": int(self.packages["npm"].alive.sum()),
                "pypi": int(self.packages["pypi"].alive.sum()),
            },
        }


def _ensure_every_path(t: RepoTable) -> None:
    """Small test worlds still hold repos with discussions (and gated models and datasets),
    so every code path of a crawler meets data: the most-liked public repos get them."""
    pub = t.alive_rows()
    if len(pub) < 10:
        return
    by_likes = pub[np.argsort(-t.cols["likes"][pub], kind="stable")]
    with_disc = int((t.cols["n_disc"][pub] > 0).sum())
    for row in by_likes[: max(0, 3 - with_disc)].tolist():
        if t.cols["n_disc"][row] == 0:
            t.cols["n_disc"][row] = t.cols["disc_init"][row] = 2
    if t.kind != "space" and len(pub) >= 50 and not (t.cols["gated"][pub] > 0).any():
        t.cols["gated"][int(by_likes[-1])] = 1
    t.version += 1


def _freeze_if_big(repos: int) -> None:
    """Move the world's millions of long-lived objects out of the cyclic GC's reach.

    Otherwise every full collection (triggered by the dicts a listing page allocates) walks
    all repo names and indexes: 2.5x slower pages at 200k models. Small test worlds skip it."""
    if repos >= 50_000:
        gc.collect()
        gc.freeze()


def _add(totals: dict[str, dict[str, int]], key: str, counts: dict[str, int]) -> None:
    acc = totals.setdefault(key, {})
    for k, v in counts.items():
        acc[k] = acc.get(k, 0) + int(v)


def iso(ts: int | float) -> str:
    """The Hub's timestamp format: `2024-05-01T12:00:00.000Z`."""
    dt = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(seconds=int(ts))
    return dt.strftime("%Y-%m-%dT%H:%M:%S.000Z")
