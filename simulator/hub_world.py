"""The Hub's repos as columns: one numpy array per attribute, one row per repo ever created.

Rows are never removed (a deleted repo has `alive=False`) so a row index is a stable internal
id, and `_id` is derived from it. Everything a client can see that is not a column here
(commit ids, discussions, card text, siblings) is recomputed from the row by
`simulator.hub_render` through `simulator.rng`, so 2M models fit in a few hundred MB.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from simulator import vocab
from simulator.rng import hash_ints

KINDS = ("model", "dataset", "space")
KIND_CODE = {"model": 1, "dataset": 2, "space": 3}
GATED = ("false", "auto", "manual")

# Columns and their dtypes; created/modified are unix seconds.
COLUMNS: dict[str, Any] = {
    "author": np.int32,  # index into Authors
    "created": np.int64,
    "modified": np.int64,
    "n_commits": np.int32,
    "n_disc": np.int32,
    "likes": np.int64,
    "downloads": np.int64,  # rolling 30 days
    "downloads_all": np.int64,
    "mu": np.float32,  # intrinsic log-popularity
    "shock": np.float32,  # AR(1) state of log-downloads
    "birth_day": np.int32,  # simulated day of creation (negative: before the start)
    "library": np.int16,  # -1: none
    "pipeline": np.int16,
    "license": np.int16,
    "base": np.int32,  # row of the base model, -1 none (models only)
    "relation": np.int8,
    "gated": np.int8,
    "private": np.bool_,
    "disabled": np.bool_,
    "alive": np.bool_,
    "sdk": np.int8,
    "has_card": np.bool_,
    "trending": np.float32,
    "n_committers": np.int16,
    "extra_disc_authors": np.int16,
    "n_init": np.int32,  # commits made before the repo's first simulated day
    "mod_init": np.int64,  # date of the newest of those
    "disc_init": np.int32,  # discussions opened before the first simulated day
}


class Authors:
    """Users and organisations. Users have a popularity weight (the collaboration core)."""

    def __init__(self, seed: int, n_users: int, n_orgs: int) -> None:
        self.names: list[str] = []
        self.is_org: list[bool] = []
        self.index: dict[str, int] = {}
        syl = vocab.SYLLABLES
        total = n_users + n_orgs
        hs = (hash_ints(seed, 71, np.arange(total)) >> np.uint64(1)).astype(np.int64).tolist()
        counters: dict[str, int] = {}
        for i, h in enumerate(hs):
            org = i >= n_users
            base = "".join(syl[(h >> (5 * k)) % 32] for k in range(2 + (h >> 40) % 3))
            if org:
                base += vocab.ORG_SUFFIXES[(h >> 50) % len(vocab.ORG_SUFFIXES)]
            elif (h >> 45) % 3 == 0:
                base += str((h >> 20) % 100)
            name = base
            if name in self.index:
                k = counters.get(base, 2)
                while f"{base}{k}" in self.index:
                    k += 1
                counters[base] = k + 1
                name = f"{base}{k}"
            self.index[name] = i
            self.names.append(name)
            self.is_org.append(org)
        self.n_users = n_users
        rng = np.random.default_rng([seed, 72])
        # Zipf-like user weights: a few core developers commit across many repos.
        w = 1.0 / np.arange(1, n_users + 1) ** 1.1
        rng.shuffle(w)
        self.user_weights = w / w.sum()
        self.user_cdf = np.cumsum(self.user_weights)

    def pick_user(self, u: float) -> int:
        return min(int(np.searchsorted(self.user_cdf, u)), self.n_users - 1)


@dataclass
class Moved:
    """An old name of a renamed repo: it still answers (redirects) to the row."""

    row: int
    day: int


class RepoTable:
    """All repos of one kind."""

    def __init__(self, kind: str, capacity: int) -> None:
        self.kind = kind
        self.code = KIND_CODE[kind]
        self.n = 0
        self.cols: dict[str, npt.NDArray[Any]] = {
            name: np.zeros(max(capacity, 16), dtype=dt) for name, dt in COLUMNS.items()
        }
        self.names: list[str] = []
        self.by_name: dict[str, int] = {}
        self.moved: dict[str, Moved] = {}
        self.stem_counter: dict[str, int] = {}  # next free `-N` suffix per clashing name
        self.links: dict[
            int, tuple[tuple[int, ...], tuple[int, ...]]
        ] = {}  # spaces -> models, datasets
        self.children: dict[int, int] = {}  # models: row -> number of descendants (alive)
        # commits and discussions made while the world runs: row -> [(first index, count, ts)]
        self.commit_log: dict[int, list[tuple[int, int, int]]] = {}
        self.disc_log: dict[int, list[int]] = {}  # row -> creation times of later discussions
        self.disc_closed: dict[int, dict[int, int]] = {}  # row -> {num: time closed / merged}
        self.version = 0  # bumps on every change, invalidates caches

    def __getattr__(self, name: str) -> npt.NDArray[Any]:
        cols = self.__dict__.get("cols")
        if cols is not None and name in cols:
            return cols[name][: self.__dict__["n"]]
        raise AttributeError(name)

    def col(self, name: str) -> npt.NDArray[Any]:
        return self.cols[name][: self.n]

    def append(self, count: int) -> slice:
        """Reserve `count` new rows (zeroed) and return their slice."""
        need = self.n + count
        cap = len(self.cols["alive"])
        if need > cap:
            new_cap = max(need, int(cap * 1.5))
            for name, arr in self.cols.items():
                grown = np.zeros(new_cap, dtype=arr.dtype)
                grown[: self.n] = arr[: self.n]
                self.cols[name] = grown
        s = slice(self.n, need)
        self.n = need
        return s

    def row_of(self, name: str) -> tuple[int | None, str | None]:
        """(row, current name if `name` is an old name of a moved repo)."""
        row = self.by_name.get(name)
        if row is not None:
            return row, None
        mv = self.moved.get(name)
        if mv is not None and self.cols["alive"][mv.row]:
            return mv.row, self.names[mv.row]
        return None, None

    def alive_rows(self) -> npt.NDArray[np.int64]:
        return np.flatnonzero(self.col("alive") & ~self.col("private"))
