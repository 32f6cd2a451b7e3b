"""The catalog of measures: name -> what it is, which sources it applies to, how to compute it.

`list_measures()` and `compute_measure()` (the contract) read this table, and so does the
report, so a measure added here shows up in `hubtide measure --list`, the CLI and the page.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import polars as pl

from analytics.data import Data
from storage import schemas

Compute = Callable[[Data, str, Any], pl.DataFrame]

ANY = "*"
HUB = "hub:*"
ALL_SOURCES = (ANY,)


@dataclass(frozen=True)
class MeasureInfo:
    name: str
    description: str
    paper: str  # "A", "B" or "longitudinal"
    sources: tuple[str, ...]  # source names, "hub:*" (any Hub type) or "*" (any source)
    kind: str  # "snapshot" (one complete snapshot, --at) or "series" (all complete snapshots)


@dataclass(frozen=True)
class Measure:
    info: MeasureInfo
    compute: Compute


def applies(info: MeasureInfo, source: str) -> bool:
    """Whether the measure can be computed for `source`."""
    for pattern in info.sources:
        if pattern in (ANY, source):
            return True
        if pattern == HUB and source in schemas.HUB_SOURCES:
            return True
    return False


_REGISTRY: dict[str, Measure] = {}


def register(
    name: str, description: str, paper: str, sources: tuple[str, ...], kind: str
) -> Callable[[Compute], Compute]:
    """Decorator: add a compute function to the catalog under `name`."""

    def wrap(fn: Compute) -> Compute:
        if name in _REGISTRY:
            raise ValueError(f"measure {name!r} registered twice")
        _REGISTRY[name] = Measure(MeasureInfo(name, description, paper, sources, kind), fn)
        return fn

    return wrap


def registry() -> dict[str, Measure]:
    from analytics import measures  # noqa: F401  (registers every measure on import)

    return _REGISTRY
