"""`Data`: the store as the measures see it — complete snapshots, narrow as-of states, rankings.

Measures ask for the columns they need only (lazy `as_of` with a column list), and a small
cache keeps the states one report run asks for more than once (the same snapshot is read
by several measures). Nothing here writes.
"""

from __future__ import annotations

import math
import os
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Any

import polars as pl

from analytics.errors import NotEnoughData
from analytics.params import Params
from storage import Store, schemas
from storage.errors import UnknownSource
from storage.ranking import ranked

_INTERVALS = (7, 30, 91, 365)  # turnover_interval: a week, a month, a quarter, a year
# numeric columns of a custom source that order it but are no popularity (smaller = better)
_NOT_POPULARITY = frozenset({"rank", "position", "place", "index", "row"})

_CACHE_SIZE = 40  # > series_max: a series over 30 snapshots stays cached for the next one
# ... and at most this many bytes of states (a wide state of 3.2M models is ~1 GB): beyond
# it a new state is read with the asked columns only and not kept, so a series scanning more
# snapshots than fit keeps hitting the ones held instead of evicting each before its next
# use (LRU would thrash)
STATE_CACHE_BYTES = int(float(os.environ.get("HUBTIDE_STATE_CACHE_GB", "2.5")) * 2**30)

# read together in one as-of per snapshot (see Data._wide)
WIDE_COLUMNS = (
    "name", "author", "sha", "last_modified", "latest_version", "created_at", "first_release_at",
    "downloads", "downloads_all_time", "likes", "dependent_packages", "library_name",
    "pipeline_tag", "tags", "license", "base_models",
    "base_model_relation", "card_fields", "space_models", "disabled",
)  # fmt: skip


def sampled_positions(n: int, most: int) -> list[int]:
    """Positions (0 = oldest) of the snapshots a series of `n` snapshots visits: all when
    `n <= most`, else every s-th from the oldest plus the newest, s the smallest power of
    two that keeps them within `most`.

    A power-of-two stride keeps the sample stable as snapshots arrive: a new snapshot
    only adds itself (and drops the previous newest unless it falls on the stride), and
    when the stride doubles the sample shrinks to a subset of itself. So every snapshot a
    series ever visits was visited when it was the newest, and its per-snapshot rows,
    stored then, are never computed again (analytics/stored.py)."""
    if n <= 0:
        return []
    if n <= most:
        return list(range(n))
    if most <= 1:
        return [n - 1]
    stride = 1
    while True:
        picks = list(range(0, n, stride))
        if picks[-1] != n - 1:
            picks.append(n - 1)
        if len(picks) <= most:
            return picks
        stride *= 2


class Data:
    """Read access to one store for one set of parameters."""

    def __init__(self, store: Store, params: Params | None = None) -> None:
        self.store = store
        self.params = params or Params()
        self._states: OrderedDict[tuple[Any, ...], pl.DataFrame] = OrderedDict()
        self._state_bytes: dict[tuple[Any, ...], int] = {}
        self._wide_bytes: dict[str, int] = {}  # the size of a source's last wide state
        self._snaps: dict[str, pl.DataFrame] = {}
        self._columns: dict[str, list[str]] = {}
        self._memo: dict[tuple[Any, ...], Any] = {}
        # rank top-K lists from as-of states even when not cached yet: right for the report
        # (every series reads every state anyway), wrong for one `hubtide turnover` call
        self.rank_from_states = False

    # -- catalog ------------------------------------------------------------------------

    def sources(self) -> list[str]:
        return self.store.sources()

    def snapshots(self, source: str) -> pl.DataFrame:
        """snapshot_id, as_of, entities of the complete snapshots of `source`, oldest first."""
        if source not in self._snaps:
            snaps = self.store.snapshots(source)  # UnknownSource lists the sources there are
            want = ("snapshot_id", "as_of", "entities", "coverage", "top_by", "top_n")
            cols = [c for c in want if c in snaps.columns]
            self._snaps[source] = snaps.select(cols).sort("snapshot_id")
        return self._snaps[source]

    def coverage(self, source: str, sid: int) -> tuple[str, str | None, int | None]:
        """What complete snapshot `sid` covers: (`full`|`top`|`subset`, top_by, top_n)."""
        snaps = self.snapshots(source).filter(pl.col("snapshot_id") == sid)
        if snaps.is_empty() or "coverage" not in snaps.columns:
            return "full", None, None
        r = snaps.row(0, named=True)
        return str(r["coverage"] or "full"), r.get("top_by"), r.get("top_n")

    def cadence_days(self, source: str) -> float | None:
        """The median gap between consecutive complete snapshots of `source`, in days
        (None with fewer than two)."""
        times = self.snapshots(source)["as_of"].drop_nulls()
        if times.len() < 2:
            return None
        gaps = times.diff().drop_nulls().dt.total_seconds() / 86400.0
        return float(gaps.median())  # type: ignore[arg-type]

    def interval_days(self, source: str) -> int:
        """The fixed interval of `turnover_interval`: `interval_days` when given, else
        from the snapshot cadence: the first of a week, a month (30 days), a quarter (91)
        or a year that spans at least 2.5 median snapshot gaps (so about three snapshots),
        so a monthly source compares quarters, not weeks it has at most one snapshot in."""
        if self.params.interval_days:
            return self.params.interval_days
        gap = self.cadence_days(source)
        if gap is None:
            return _INTERVALS[0]
        for days in _INTERVALS:
            if days >= 2.5 * gap:
                return days
        return math.ceil(2.5 * gap)

    def popularity(self, source: str) -> str:
        """The popularity column of `source`: `by` when given, the built-in source's
        default (downloads, likes for spaces), else for a custom source `downloads` when
        it has one, the column its top-N snapshots are ranked by, or its first numeric
        column that is not a rank or position."""
        if self.params.by or source in schemas.BUILTIN_SOURCES:
            return self.params.popularity(source)
        return self.memo(("popularity", source), lambda: self._custom_popularity(source))

    def _custom_popularity(self, source: str) -> str:
        cols = self.columns(source)
        if "downloads" in cols or source not in self.sources():
            return "downloads"
        by = self.snapshots(source).get_column("top_by", default=None)
        named = [b for b in by.drop_nulls().to_list() if b in cols] if by is not None else []
        if named:
            return str(named[-1])
        numeric = schemas.rankable_columns(self.store.schema(source))
        usable = [c for c in numeric if c.lower() not in _NOT_POPULARITY]
        return usable[0] if usable else "downloads"

    def snapshot_ids(self, source: str) -> list[int]:
        return [int(i) for i in self.snapshots(source)["snapshot_id"].to_list()]

    def resolve(self, source: str, at: Any = None) -> int:
        """The complete snapshot meant by `at` (None = newest); NotEnoughData when none."""
        if source not in self.sources():
            have = ", ".join(self.sources()) or "none yet"
            raise UnknownSource(f"unknown source {source!r}; sources in the store: {have}")
        if not self.snapshot_ids(source):
            raise NotEnoughData(f"not enough data: {source!r} has no complete snapshot yet")
        return self.store.resolve_snapshot(source, at)

    def as_of_time(self, source: str, sid: int) -> Any:
        snaps = self.snapshots(source).filter(pl.col("snapshot_id") == sid)
        return snaps["as_of"][0] if snaps.height else None

    def series_ids(self, source: str, most: int | None = None) -> list[int]:
        """Complete snapshots a series measure visits: all, or at most `most` (default
        `series_max`) spread over them by `sampled_positions`, always with the newest."""
        ids = self.snapshot_ids(source)
        m = self.params.series_max if most is None else min(most, self.params.series_max)
        return [ids[i] for i in sampled_positions(len(ids), m)]

    def people_ids(self, source: str) -> list[int]:
        """The snapshots the people-based series visit (`people_series_max` of them)."""
        return self.series_ids(source, self.params.people_series_max)

    def columns(self, source: str) -> list[str]:
        if source not in self._columns:
            self._columns[source] = self.store.columns(source)
        return self._columns[source]

    def memo(self, key: tuple[Any, ...], compute: Callable[[], Any]) -> Any:
        """`compute()` once per key for this Data (several measures share one expensive frame)."""
        if key not in self._memo:
            self._memo[key] = compute()
        return self._memo[key]

    def release(self, source: str, sid: int) -> None:
        """Let go of what was memoised and cached for snapshot `sid` of `source` (memo keys
        are `(what, source, sid, ...)`): a run that goes snapshot by snapshot keeps one
        snapshot's frames at a time (a 3.2M-model snapshot's are gigabytes)."""
        for key in [k for k in self._memo if len(k) >= 3 and k[1] == source and k[2] == sid]:
            del self._memo[key]
        for key in [k for k in self._states if k[0] == source and k[1] == sid]:
            del self._states[key]
            self._state_bytes.pop(key, None)

    # -- states -------------------------------------------------------------------------

    def _wide(self, source: str) -> list[str]:
        """The columns most measures read, fetched together so one as-of read per snapshot
        serves them all (lists of tags etc. included; ~12 MB per 100k models)."""
        have = self.columns(source)
        want = ["entity_id", *WIDE_COLUMNS, self.popularity(source)]
        return [c for c in dict.fromkeys(want) if c in have]

    def has_memo(self, key: tuple[Any, ...]) -> bool:
        """Whether `key` is memoised (a measure may take a frame another one already
        built instead of building the same numbers another way)."""
        return key in self._memo

    def state(
        self, source: str, sid: int, columns: Sequence[str], *, keep: bool = True
    ) -> pl.DataFrame:
        """entity_id + `columns` of every live entity as of complete snapshot `sid`.
        `keep=False`: a state read once (a series' older snapshot) is not cached, so it
        does not take the room of the newest snapshot's, which every measure reads."""
        have = self.columns(source)
        cols = [c for c in dict.fromkeys(["entity_id", *columns]) if c in have]
        wide = self._wide(source)
        fetch = wide if set(cols) <= set(wide) else cols
        key = (source, sid, tuple(fetch))
        if key in self._states:
            self._states.move_to_end(key)
            df = self._states[key]
        else:
            held = sum(self._state_bytes.values())
            room = keep and (
                not self._states or held + self._wide_bytes.get(source, 0) <= STATE_CACHE_BYTES
            )
            if not room:  # it would not be kept: read only the columns asked for (~5x less)
                fetch = cols
            df = self.store.as_of(
                source, sid, columns=[c for c in fetch if c != "entity_id"]
            ).collect()
            if room:
                size = int(df.estimated_size())
                if fetch is wide:
                    self._wide_bytes[source] = size
                if not self._states or held + size <= STATE_CACHE_BYTES:
                    self._states[key] = df
                    self._state_bytes[key] = size
                    if len(self._states) > _CACHE_SIZE:
                        old, _ = self._states.popitem(last=False)
                        self._state_bytes.pop(old, None)
        df = df.select(cols)
        missing = [c for c in columns if c not in df.columns]
        if missing:  # a column the source does not have (e.g. downloads of a custom source)
            df = df.with_columns([pl.lit(None).alias(c) for c in missing])
        return df

    def descendants(self, source: str, sid: int) -> pl.DataFrame:
        """entity_id, name, descendants of every model as of `sid` (memoised: M3, M4, their
        series and the ranking by descendants all ask for it)."""
        from analytics.lineage import descendant_counts

        result: pl.DataFrame = self.memo(
            ("descendants", source, sid),
            lambda: descendant_counts(
                self.state(source, sid, ["name", "base_models", "base_model_relation"]),
                self.params.relations,
            ),
        )
        return result

    def top(self, source: str, sid: int, by: str, k: int) -> pl.DataFrame:
        """rank, entity_id, name, value: the top `k` by `by` (ties by entity_id ascending)."""
        result: pl.DataFrame = self.memo(
            ("top", source, sid, by, k), lambda: self._top(source, sid, by, k)
        )
        return result

    def _top(self, source: str, sid: int, by: str, k: int) -> pl.DataFrame:
        if by == "descendants" and source == "hub:model":
            return ranked(self.descendants(source, sid), "descendants", k)
        wide = self._wide(source)
        cached = (source, sid, tuple(wide)) in self._states
        if by in wide and (cached or self.rank_from_states):
            # ranked from the as-of state every series already holds, by the store's one
            # rule (storage.ranking): one sort of a cached frame instead of a read per
            # snapshot
            return ranked(self.state(source, sid, ["name", by]), by, k)
        return self.store.top_k(source, sid, by, k).collect()
