"""analytics: every measure of metrics.md over the store, and the report.

Public API (docs/contracts.md): `list_measures`, `compute_measure`, `turnover`,
`write_report`, `MeasureInfo`, `Params`, `NotEnoughData`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import polars as pl

from analytics.catalog import MeasureInfo, applies, registry
from analytics.data import Data
from analytics.errors import NotEnoughData
from analytics.params import Params
from storage import Store

__all__ = [
    "MeasureInfo",
    "NotEnoughData",
    "Params",
    "compute_measure",
    "list_measures",
    "turnover",
    "write_report",
]


def list_measures() -> list[MeasureInfo]:
    """Every measure, in catalog order."""
    return [m.info for m in registry().values()]


def _default_source(info: MeasureInfo) -> str:
    for s in info.sources:
        if "*" not in s:
            return s
    return "hub:model"


def compute_measure(
    store: Store,
    name: str,
    *,
    source: str | None = None,
    at: Any = None,
    params: dict[str, Any] | Params | None = None,
    stored: list[bool] | None = None,
) -> pl.DataFrame:
    """One measure as a frame. `at` picks the complete snapshot of snapshot measures.

    The stored result (`derived/measures`, `hubtide analyze`) of these parameters is read
    when there is one, else the measure is computed now; `stored`, when given, gets True
    or False appended to say which."""
    from analytics.stored import measure_frame

    measures = registry()
    if name not in measures:
        raise ValueError(f"unknown measure {name!r}; measures: {', '.join(measures)}")
    m = measures[name]
    src = source or _default_source(m.info)
    if not applies(m.info, src):
        raise ValueError(
            f"measure {name!r} does not apply to source {src!r}; it applies to "
            f"{', '.join(m.info.sources)}"
        )
    data = Data(store, Params.from_mapping(params))
    if src not in data.sources():
        listed = ", ".join(data.sources()) or "none yet"
        raise ValueError(f"unknown source {src!r}; sources in the store: {listed}")
    frame, was_stored = measure_frame(store, m, data, src, at)
    if stored is not None:
        stored.append(was_stored)
    return frame


def turnover(
    store: Store,
    source: str,
    *,
    k: int = 1000,
    by: str = "downloads",
    renames_as_churn: bool = False,
) -> pl.DataFrame:
    """snapshot_id, as_of, remained, newcomers, returning, left, distinct_ever per pair
    (the result `hubtide analyze` stored for these parameters when there is one)."""
    from analytics import topk as _t
    from analytics.stored import measure_frame
    from storage import schemas

    if by == "downloads" and source in schemas.DEFAULT_POPULARITY:
        by = schemas.DEFAULT_POPULARITY[source]  # spaces have no downloads: ranked by likes
    data = Data(
        store, Params.from_mapping({"k": k, "by": by, "renames_as_churn": renames_as_churn})
    )
    data.resolve(source)  # UnknownSource / NotEnoughData with a clear message
    if by == "downloads" and source not in schemas.BUILTIN_SOURCES:
        # a custom source without `downloads`: the default means its own popularity column
        data = Data(store, Params.from_mapping({"k": k, "renames_as_churn": renames_as_churn}))
    # the result `analyze` stored for these parameters when there is one
    frame, _ = measure_frame(store, registry()["turnover"], data, source)
    return frame.select(_t.TURNOVER_COLUMNS)


def write_report(
    store: Store,
    out_dir: str | Path,
    *,
    sources: list[str] | None = None,
    params: dict[str, Any] | Params | None = None,
    stored: bool = True,
) -> Path:
    """Write index.html and tables/*.parquet|csv under `out_dir`; returns the page's path.
    `stored=False` computes every measure now, ignoring results stored by `analyze`."""
    from analytics.report import build_report

    return build_report(
        store, Path(out_dir), sources=sources, params=Params.from_mapping(params), stored=stored
    )
