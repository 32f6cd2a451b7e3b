"""What a measure is: one typed declaration (`Measure`) holding its compute function, the
sources it applies to, its chart and its method text.

The declarations themselves are in `analytics.measures.MEASURES`, a plain tuple (nothing
registers itself on import); `registry()` reads it. `list_measures()` and
`compute_measure()` (the contract), the CLI and the report all read the registry, so a
measure added there shows up in `hubtide measure --list`, the CLI and the page, and
`tests/analytics/test_docs.py` fails until docs/analytics.md lists it.
"""

from __future__ import annotations

import string
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import polars as pl

from analytics.data import Data
from analytics.errors import NotEnoughData
from storage import schemas

if TYPE_CHECKING:
    from analytics.charts import Chart
    from analytics.terms import Terms

Compute = Callable[..., pl.DataFrame]  # (data, source, at) for snapshot, (data, source) for series
# (data, source, previous result) -> the result with every complete snapshot since
Update = Callable[[Data, str, pl.DataFrame], pl.DataFrame]
# (data, source, snapshot id) -> one snapshot's rows of a series (NotEnoughData: none)
Rows = Callable[[Data, str, int], pl.DataFrame]
# (data, source, the visited snapshots' rows) -> the series
Combine = Callable[[Data, str, "SeriesRows"], pl.DataFrame]
SAMPLES = ("series", "people", "all")


@dataclass(frozen=True)
class SeriesRows:
    """The per-snapshot rows a series is assembled from, oldest snapshot first.

    `frames[sid]`: the rows of each visited snapshot that has some; `empty[sid]`: why a
    visited snapshot has none (its rows function said "not enough data")."""

    ids: list[int]
    frames: dict[int, pl.DataFrame]
    empty: dict[int, str]

    def concat(self) -> pl.DataFrame:
        """Every visited snapshot's rows, oldest first (an empty frame when none has any)."""
        parts = [self.frames[i] for i in self.ids if i in self.frames and self.frames[i].width]
        return pl.concat(parts, how="vertical_relaxed") if parts else pl.DataFrame()

    def last_reason(self, default: str) -> str:
        return next((self.empty[i] for i in reversed(self.ids) if i in self.empty), default)


def concat_rows(data: Data, source: str, rows: SeriesRows) -> pl.DataFrame:
    """The default `Measure.combine`: the visited snapshots' rows one after another."""
    df = rows.concat()
    if df.is_empty():
        raise NotEnoughData(rows.last_reason(f"not enough data: no rows in {source!r}"))
    return df


ANY = "*"
HUB = "hub:*"
ALL_SOURCES = (ANY,)
PAPERS = ("longitudinal", "A", "B")
KINDS = ("snapshot", "series")


@dataclass(frozen=True)
class MeasureInfo:
    """The public description of a measure (docs/contracts.md)."""

    name: str
    description: str
    paper: str  # "A", "B" or "longitudinal"
    sources: tuple[str, ...]  # source names, "hub:*" (any Hub type) or "*" (any source)
    kind: str  # "snapshot" (one complete snapshot, --at) or "series" (all complete snapshots)
    version: int = 1  # bumped when the definition changes (derived results are keyed by it)


@dataclass(frozen=True)
class Measure:
    """One measure, declared once.

    `compute` is the function of the module that does the work: `(data, source, at)` for a
    snapshot measure, `(data, source)` for a series. `method` is the one paragraph the
    report prints; its `{placeholders}` are the fields of `analytics.terms.Terms`, so it
    names the source's own id, label and popularity columns and its snapshot cadence.
    `chart` draws the frame (None: a table says it better), `x_title` overrides the
    chart's x axis words. `pairs`: the measure compares consecutive complete snapshots and
    says "not enough data" with fewer than two.

    A series made of per-snapshot rows declares `rows` instead of `compute`: `rows(data,
    source, sid)` gives one snapshot's rows, `combine` (default `concat_rows`) makes the
    series of the visited snapshots' rows (`sample`: `series` visits `series_max`
    snapshots, `people` visits `people_series_max`, `all` every one; see
    `Data.series_ids`). Computed
    from scratch or from stored rows, the series is the same frame.

    Stored results (analytics/stored.py): a `rows` series stores each snapshot's rows
    once (`derived/series_rows`) and at a new snapshot computes the new one's only; else
    its result comes from `update(data, source, previous result)` when it has one (the
    new snapshots only), else it is computed again over every snapshot and `across` says
    why the previous result cannot be carried forward (`recompute_reason`).
    """

    name: str
    paper: str
    kind: str
    sources: tuple[str, ...]
    compute: Compute | None
    summary: str
    method: str
    chart: Chart | None = None
    x_title: str | None = None
    version: int = 1
    pairs: bool = False
    update: Update | None = None
    across: str = ""
    rows: Rows | None = None
    combine: Combine = concat_rows
    sample: str = "series"

    def __post_init__(self) -> None:
        if self.paper not in PAPERS:
            raise ValueError(f"measure {self.name!r}: paper {self.paper!r} not in {PAPERS}")
        if self.kind not in KINDS:
            raise ValueError(f"measure {self.name!r}: kind {self.kind!r} not in {KINDS}")
        if not self.sources:
            raise ValueError(f"measure {self.name!r}: no sources")
        if self.version < 1:
            raise ValueError(f"measure {self.name!r}: version must be >= 1")
        if self.kind == "snapshot" and (self.update is not None or self.across):
            raise ValueError(
                f"measure {self.name!r}: update and across are for series measures (a "
                "snapshot measure's result is one snapshot's)"
            )
        if (self.compute is None) == (self.rows is None):
            raise ValueError(f"measure {self.name!r}: give either compute or rows")
        if self.rows is not None and (self.kind != "series" or self.update or self.across):
            raise ValueError(
                f"measure {self.name!r}: rows are for series measures, without update or "
                "across (its stored rows are what carries it forward)"
            )
        if self.kind == "series" and not (self.rows or self.update or self.across):
            raise ValueError(
                f"measure {self.name!r}: a series without rows or update says in `across` "
                "why it is computed anew over every snapshot"
            )
        if self.sample not in SAMPLES:
            raise ValueError(f"measure {self.name!r}: sample {self.sample!r} not in {SAMPLES}")
        unknown = placeholders(self.method) - TERM_FIELDS
        if unknown:
            raise ValueError(
                f"measure {self.name!r}: method names unknown placeholders {sorted(unknown)}; "
                f"known: {sorted(TERM_FIELDS)}"
            )

    @property
    def info(self) -> MeasureInfo:
        return MeasureInfo(
            self.name, self.summary, self.paper, self.sources, self.kind, self.version
        )

    def run(self, data: Data, source: str, at: Any = None) -> pl.DataFrame:
        """The measure's frame for `source` (`at`: the snapshot of a snapshot measure)."""
        self._need_pairs(data, source)
        if self.rows is not None:
            ids = self.visited(data, source)
            return self.assemble(data, source, ids, {i: self.rows_at(data, source, i) for i in ids})
        assert self.compute is not None  # __post_init__: compute or rows
        if self.kind == "series":
            return self.compute(data, source)
        return self.compute(data, source, at)

    def _need_pairs(self, data: Data, source: str) -> None:
        ids = data.snapshot_ids(source)
        if self.pairs and len(ids) < 2:
            have = f"one complete snapshot ({ids[0]})" if ids else "no complete snapshot"
            raise NotEnoughData(
                f"not enough data: nothing to compare: {source!r} has {have}; {self.name} "
                "compares consecutive complete snapshots, so it needs two"
            )

    def visited(self, data: Data, source: str) -> list[int]:
        """The complete snapshots a `rows` series visits (by its `sample`)."""
        if self.sample == "all":
            return data.snapshot_ids(source)
        return data.people_ids(source) if self.sample == "people" else data.series_ids(source)

    def rows_at(self, data: Data, source: str, sid: int) -> pl.DataFrame | str:
        """One snapshot's rows of a `rows` series, or why it has none."""
        assert self.rows is not None
        try:
            df = self.rows(data, source, sid)
        except NotEnoughData as exc:
            return str(exc)
        return df

    def assemble(
        self, data: Data, source: str, ids: list[int], got: dict[int, pl.DataFrame | str]
    ) -> pl.DataFrame:
        """The series from the rows (or reasons) of the visited snapshots `ids`."""
        rows = SeriesRows(
            ids,
            {i: v for i, v in got.items() if isinstance(v, pl.DataFrame)},
            {i: v for i, v in got.items() if isinstance(v, str)},
        )
        if not ids:
            raise NotEnoughData(f"not enough data: {source!r} has no complete snapshot yet")
        self._need_pairs(data, source)
        return self.combine(data, source, rows)

    @property
    def recompute_reason(self) -> str | None:
        """Why a series measure is computed again over every snapshot (None: it is not)."""
        if self.kind != "series" or self.update is not None or self.rows is not None:
            return None
        return self.across

    def run_update(self, data: Data, source: str, previous: pl.DataFrame) -> pl.DataFrame:
        """The series from its `previous` result and the complete snapshots since."""
        if self.update is None:
            raise ValueError(f"measure {self.name!r} has no update; it is computed anew")
        if self.pairs and len(data.snapshot_ids(source)) < 2:
            return self.run(data, source)  # says "not enough data" in the usual words
        return self.update(data, source, previous)

    def method_for(self, terms: Terms) -> str:
        """The method paragraph in the words of one source."""
        return self.method.format(**terms.as_dict())


# the placeholders a method text may use: the fields of analytics.terms.Terms
TERM_FIELDS = frozenset(
    {
        "source",
        "entities",
        "key",
        "label",
        "popularity",
        "popularity_why",
        "created",
        "cadence",
        "cadence_detail",
        "interval",
    }
)


def placeholders(text: str) -> set[str]:
    return {f for _, f, _, _ in string.Formatter().parse(text) if f}


def applies(info: MeasureInfo | Measure, source: str) -> bool:
    """Whether the measure can be computed for `source`."""
    for pattern in info.sources:
        if pattern in (ANY, source):
            return True
        if pattern == HUB and source in schemas.HUB_SOURCES:
            return True
    return False


def registry() -> dict[str, Measure]:
    """Every declared measure by name, in declaration order."""
    from analytics.measures import MEASURES

    out: dict[str, Measure] = {}
    for m in MEASURES:
        if m.name in out:
            raise ValueError(f"measure {m.name!r} declared twice")
        out[m.name] = m
    return out
