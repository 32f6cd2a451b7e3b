"""The whole simulated world: clock, authors, Hub repos of three kinds, two registries.

Deterministic: the initial world is drawn from `seed`, and day d's changes from (seed, d),
so two servers with the same seed that advanced the same days hold the same state.
"""

from __future__ import annotations

import gc
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import numpy.typing as npt

from simulator.config import SimConfig
from simulator.hub_changes import COUNTERS, DAY, Change, DayLog
from simulator.hub_gen import create_repos, rename_wave, step_day
from simulator.hub_world import Authors, RepoTable
from simulator.registry_world import PackageTable
from simulator.rng import unit

KIND_OF_PATH = {"models": "model", "datasets": "dataset", "spaces": "space"}
SOURCES = ("hub:model", "hub:dataset", "hub:space", "npm", "pypi")
# In January 2024 the Hub moved every un-namespaced model under an organisation (`gpt2` ->
# `openai-community/gpt2`) and has listed only `namespace/name` ids since (field-notes §1)
_SALT_PHASE = 9201  # + the counter's index: the instants of a counter's unit steps
NAMESPACE_MOVE = int(datetime(2024, 1, 1, tzinfo=UTC).timestamp())


class World:
    def __init__(self, config: SimConfig) -> None:
        self.config = config
        self.seed = config.seed
        self.day = 0  # whole days completed since the start
        self.live_seconds = 0.0  # simulated seconds into the day under way (a live world)
        self._live: LiveDay | None = None  # the day under way, once its clock has moved
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

    @property
    def position(self) -> tuple[int, int]:
        """(day, second of the day) of the state the world shows."""
        return self.day, self.shown_seconds(self.live_seconds)

    @property
    def state_ts(self) -> int:
        """Simulated unix time of the state the world shows (the clock, to the resolution)."""
        return self.now + self.shown_seconds(self.live_seconds)

    def tick(self, seconds: float) -> int:
        """A live world's clock moves `seconds`: the day's changes happen as the clock passes
        their instants (see `LiveDay`), and each simulated midnight it crosses completes a
        day, so a live world at midnight d equals a world advanced d days (one seed, one
        history). Returns the midnights crossed."""
        total = self.live_seconds + seconds
        days = int(total // DAY)
        self.move_to(self.day + days, total - days * DAY)
        return days

    def move_to(self, day: int, seconds: float) -> None:
        """Put the clock at `seconds` into day `day` (not before the clock): the state is a
        function of (seed, day, seconds), whatever steps led here."""
        if (day, seconds) < (self.day, self.live_seconds):
            raise ValueError("the clock only moves forward")
        grew = self.day < day
        while self.day < day:
            self._next_day({})
        self.live_seconds = seconds
        if self._catch_up() or grew:
            _freeze_if_big(sum(t.n for t in self.hub.values()))

    def shown_seconds(self, seconds: float) -> int:
        """The second of a day whose state a clock at `seconds` into it shows: the world moves
        in steps of `live_resolution_seconds` (whole seconds)."""
        res = self.config.live_resolution_seconds
        return int(seconds // res) * res

    def day_of(self, ts: float) -> int:
        """The day whose state the world held at simulated unix time `ts`."""
        return int((ts - self.start) // 86_400)

    @property
    def now_dt(self) -> datetime:
        return datetime.fromtimestamp(self.now, tz=UTC)

    def advance(self, days: int) -> dict[str, Any]:
        """Move the world forward by whole days (a live world keeps its time of day); returns
        counts per source."""
        totals: dict[str, dict[str, int]] = {}
        for _ in range(days):
            self._next_day(totals)
        self._catch_up()
        _freeze_if_big(sum(t.n for t in self.hub.values()))
        return {"day": self.day, "now": iso(self.now), "changes": totals}

    def _next_day(self, totals: dict[str, dict[str, int]]) -> None:
        """Complete the day under way: the rest of a live day's changes, or a whole step."""
        live = self._live
        if live is None:
            day = self.day + 1
            rng = np.random.default_rng([self.seed, 1000 + day])
            counts = self.hub_step(day, rng, logs=None)
        else:
            self._live = None
            live.show(self, DAY)
            day, rng, counts = live.day, live.rng, live.totals
        for key, c in counts.items():
            _add(totals, key, c)
        self._end_day(day, rng, totals)

    def hub_step(
        self, day: int, rng: np.random.Generator, logs: dict[str, DayLog] | None
    ) -> dict[str, dict[str, int]]:
        """Day `day`'s step of the Hub's three kinds (dated its last second, `end`)."""
        totals: dict[str, dict[str, int]] = {}
        end = self.start + day * DAY
        m, d = self.hub["model"], self.hub["dataset"]
        for kind, t in self.hub.items():
            if t.n == 0:
                continue
            log = None if logs is None else logs[kind]
            counts = step_day(t, self.authors, rng, day=day, now=end, models=m, datasets=d, log=log)
            _add(totals, f"hub:{kind}", counts)
        return totals

    def _end_day(
        self, day: int, rng: np.random.Generator, totals: dict[str, dict[str, int]]
    ) -> None:
        """What happens at the midnight ending day `day`: a rename wave now and then, the
        registries' day (they count whole days), and the clock's day."""
        m = self.hub["model"]
        # now and then a wave of renames, like the Hub's January 2024 move of
        # un-namespaced models under their organisations (it draws nothing from rng)
        if day % 45 == 0 and m.n:
            n = rename_wave(m, self.authors, day, rng)
            _add(totals, "hub:model", {"renamed": n})
        now = self.start + day * DAY
        for eco, p in self.packages.items():
            if p.n:
                _add(totals, eco, p.step_day(rng, day=day, now=now))
            p.refresh(day)
        self.day = day

    def _catch_up(self) -> bool:
        """Show the state of the clock's instant: begin the day under way if it has not begun
        (its step run, then undone to the day's start) and replay it up to the instant.
        True when it began a day (rows were added)."""
        shown = self.shown_seconds(self.live_seconds)
        if shown <= 0 and self._live is None:
            return False  # at a midnight: the state of a world advanced whole days
        began = self._live is None
        if self._live is None:
            self._live = LiveDay.begin(self)
        self._live.show(self, shown)
        return began

    def clock(self) -> dict[str, Any]:
        return {
            "now": iso(self.clock_now),
            "day": self.day,
            "live": self.config.live_seconds_per_request > 0,
            "state_at": iso(self.state_ts),
            "resolution_seconds": self.config.live_resolution_seconds,
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


@dataclass(frozen=True)
class CounterMove:
    """One counter's move over a live day: the rows it changes, from `before` to `after`."""

    column: str
    rows: npt.NDArray[np.int64]
    before: npt.NDArray[Any]
    after: npt.NDArray[Any]
    phase: npt.NDArray[np.float32] | None  # u in [0, 1) per row (whole-number counters)

    def at(self, share: float) -> npt.NDArray[Any]:
        """The values at `share` of the day (exactly `after` at 1)."""
        if share >= 1.0:
            return self.after
        inc = (self.after.astype(np.float64) - self.before) * share
        if self.phase is not None:
            inc = np.floor(inc + self.phase)
        return self.before + inc


@dataclass
class LiveDay:
    """A day under way in a live world.

    `begin` runs the day's whole step (the same draws as `advance`), records its changes and
    undoes them, back to the day's start. `show(s)` then puts the world at second s of the
    day: every change whose instant is at most s applied, in time order, and each counter of
    `COUNTERS` at its value from the day's start plus the share s / day of the day's increment:
    `floor(s / day * increment + u)` for the whole-number counters, with u in [0, 1) hashed
    from (seed, kind, row, day, counter), so a repo's unit steps fall at its own instants
    through the day (not all at the day's end) and the day ends exactly at its end value. The
    registries' day runs at the closing midnight, from the same rng, so a completed live day
    equals an advanced day."""

    day: int  # the step's number (the world's day + 1)
    start: int  # the day's first simulated second (unix)
    rng: np.random.Generator  # after the Hub's steps: the registries' step continues it
    totals: dict[str, dict[str, int]]
    changes: list[tuple[int, int, str, Change]]  # (instant, order, kind, change), time order
    counters: dict[str, list[CounterMove]]  # kind -> the counters' moves (changed rows only)
    applied: int = 0
    shown: int = 0

    @classmethod
    def begin(cls, w: World) -> LiveDay:
        day = w.day + 1
        rng = np.random.default_rng([w.seed, 1000 + day])
        end = w.start + day * DAY
        n0 = {k: t.n for k, t in w.hub.items()}  # rows created today have no "before"
        before = {k: {c: t.cols[c][: t.n].copy() for c in COUNTERS} for k, t in w.hub.items()}
        logs = {k: DayLog(w.seed, t.code, day, end) for k, t in w.hub.items()}
        totals = w.hub_step(day, rng, logs)
        counters: dict[str, list[CounterMove]] = {}
        for k, t in w.hub.items():
            moves = counters[k] = []
            for j, c in enumerate(COUNTERS):
                b = before[k][c]
                a = t.cols[c][: n0[k]]
                rows = np.flatnonzero(a != b)
                if not len(rows):
                    continue
                phase = None
                if np.issubdtype(b.dtype, np.integer):
                    u = unit(w.seed, t.code, rows, day, _SALT_PHASE + j)
                    phase = u.astype(np.float32)
                moves.append(CounterMove(c, rows, b[rows], a[rows].copy(), phase))
        # back to the day's start: undo in the reverse of the order the step made them
        for k, log in reversed(logs.items()):
            t = w.hub[k]
            for ch in reversed(log.changes):
                ch.undo(t)
            for c in COUNTERS:
                t.cols[c][: n0[k]] = before[k][c]
            t.version += 1
        changes = sorted(
            (ch.at, i, k, ch) for k, log in logs.items() for i, ch in enumerate(log.changes)
        )
        return cls(day, end - DAY, rng, totals, changes, counters)

    def show(self, w: World, seconds: int) -> None:
        """Put the world at `seconds` into this day (forward only)."""
        if seconds <= self.shown:
            return
        self.shown = seconds
        limit = self.start + seconds
        while self.applied < len(self.changes) and self.changes[self.applied][0] <= limit:
            _at, _i, kind, ch = self.changes[self.applied]
            ch.apply(w.hub[kind])
            self.applied += 1
        share = min(seconds / DAY, 1.0)
        for kind, t in w.hub.items():
            for m in self.counters[kind]:
                t.cols[m.column][m.rows] = m.at(share)
            t.version += 1


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
