"""The parameters every measure reads, with the defaults metrics.md names.

One frozen record, built from a mapping (the daemon passes `[analytics]` of the config,
the CLI passes its flags). Unknown keys are an error that lists the known ones, so a typo
never silently falls back to a default.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from typing import Any

from storage import schemas


@dataclass(frozen=True)
class Params:
    k: int = 1000  # M2: K of top-K turnover
    by: str | None = None  # popularity column; None = downloads (likes for spaces)
    top_n: int = 15000  # M3/M4: the top-N models (paper A: 15,000)
    group_n: int = 1000  # M4: size of the top and bottom groups compared
    renames_as_churn: bool = False  # M2: key by name (paper A) instead of the Hub `_id`
    # M2 per fixed interval, in days; 0 = from the source's snapshot cadence (Data.interval_days:
    # a week for daily snapshots, a quarter for monthly ones)
    interval_days: int = 0
    bots: tuple[str, ...] = ()  # extra bot accounts, besides analytics.people.BOTS
    identity_overrides: str = ""  # CSV author,merged_into (empty merged_into = never merge)
    similarity: float = 0.9  # identity merging: name similarity threshold
    # n_commits leaves out commits with no non-bot author (hubtide's earlier count); the
    # default counts every commit, bots' too, as paper B section 3.3 does
    commits_without_bots: bool = False
    heatmap_bins: int = 20  # M3: bins per log axis
    series_max: int = (
        30  # snapshots per series measure (subsampled beyond that: data.sampled_positions)
    )
    people_series_max: int = 10  # snapshots the people-based series sample (merging, networks)
    relations: tuple[str, ...] = ()  # descendant relations used by M1/M3; empty = all
    entity: str | None = None  # trajectories: one entity id or name; None = the top N
    trajectory_n: int = 10  # trajectories: how many top entities

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any] | Params | None) -> Params:
        """Params from a mapping; unknown keys raise ValueError naming the known ones."""
        if values is None:
            return cls()
        if isinstance(values, Params):
            return values
        known = {f.name: f for f in fields(cls)}
        kwargs: dict[str, Any] = {}
        for key, value in values.items():
            if key not in known:
                raise ValueError(
                    f"unknown analytics parameter {key!r}; known: {', '.join(sorted(known))}"
                )
            if key in ("bots", "relations") and value is not None:
                value = tuple(value)
            kwargs[key] = value
        out = replace(cls(), **kwargs)
        for name in (
            "k",
            "top_n",
            "group_n",
            "heatmap_bins",
            "series_max",
            "people_series_max",
        ):
            if int(getattr(out, name)) < 1:
                raise ValueError(
                    f"analytics parameter {name} must be >= 1, got {getattr(out, name)}"
                )
        if int(out.interval_days) < 0:
            raise ValueError(
                f"analytics parameter interval_days must be >= 0 (0 = from the snapshot "
                f"cadence), got {out.interval_days}"
            )
        return out

    def popularity(self, source: str) -> str:
        """The popularity column of `source`: `by` when given, else the source default."""
        if self.by:
            return self.by
        return schemas.DEFAULT_POPULARITY.get(source, "downloads")

    def as_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}
