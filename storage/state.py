"""Reconstructing a source's state as of a snapshot, and diffing a listing against it.

State as of S, on integer keys (layout.py):

* attributes: per `entity_key` the newest row with `valid_from <= S` among rows of
  *complete* snapshots no older than the newest attribute keyframe `Ka <= S`; tombstones
  dropped;
* counters: per `entity_key` the newest counters row among rows of complete snapshots in
  `[Kc, S]` (`Kc` the newest counters keyframe), joined onto the attributes by key. No
  row means all counters null: a new key gets a row only when some counter is not null,
  a keyframe copies every live key, and a key dies with its entity (a re-appearance
  gets a new key), so a counters row can never attach to the wrong incarnation.
* observed_at: the same as a counter, from the observation table (layout.OBSERVED) in
  `[Ko, S]`: `Ko` the newest observation keyframe, a snapshot that wrote every listed
  key's time (reads.observed_keyframe).

Rows of snapshots that never completed (a finish killed midway) are dropped by the
`is_in` filter, so they can never leak into a read. Each (entity_key, valid_from) pair
has at most one row, so "newest per key" is exact with the window pattern.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import polars as pl

from storage.layout import KEY, OBSERVED_AT, OP_DELETE, OP_KEEP, OP_UPSERT

HASH = "__h"
OBSERVED_TYPE = pl.Datetime("us", "UTC")
# where a listing row sits in the staged batches: batch seq, row within the batch
SEQ = "__seq"
ROW = "__row"


def _latest(lf: pl.LazyFrame) -> pl.LazyFrame:
    return lf.filter(pl.col("valid_from") == pl.col("valid_from").max().over(KEY))


def _newest(lf: pl.LazyFrame, keyframe: int | None) -> pl.LazyFrame:
    """Newest row per key among `lf` (rows in [keyframe, S]).

    The keyframe holds at most one row per key and is most of the rows, so: the keyframe
    rows whose key has no later row, plus the newest of the (few) later rows. Measured at
    1M entities (docs/storage.md): 1.6 s where one window over all rows took 4.1 s (the
    window is cheap; gathering wide rows through its filter is not), group_by().last()
    22.5 s and sort+unique 18.2 s.
    """
    if keyframe is None:
        return _latest(lf)
    base = lf.filter(pl.col("valid_from") == keyframe)
    rest = lf.filter(pl.col("valid_from") > keyframe)
    return pl.concat([base.join(rest.select(KEY), on=KEY, how="anti"), _latest(rest)])


def _newest_now(lf: pl.LazyFrame, keyframe: int | None) -> pl.LazyFrame:
    """`_newest`, with the rows after the keyframe (a few percent of the window) collected
    first: the keyframe rows are then dropped by an `is_in` on those keys, a predicate the
    Parquet scan applies while decoding (an anti-join gathers every wide keyframe row
    first). Measured at 1M entities, paired, load 4-5: 2.0x a plain scan where the
    anti-join plan took 2.8-3.1x (docs/storage.md, Session 4)."""
    if keyframe is None:
        return _latest(lf)
    rest = _latest(lf.filter(pl.col("valid_from") > keyframe)).collect(engine="in-memory")
    base = lf.filter((pl.col("valid_from") == keyframe) & ~pl.col(KEY).is_in(rest[KEY].implode()))
    return pl.concat([base, rest.lazy()])


def window(
    scan: pl.LazyFrame,
    source: str,
    snapshot_id: int,
    visible: Sequence[int],
    keyframe: int | None,
    keys: Sequence[int] | None = None,
) -> pl.LazyFrame:
    """Rows of `scan` that a read of `snapshot_id` needs: complete ids in [keyframe, S]."""
    lo = keyframe if keyframe is not None else 0
    ids = [i for i in visible if lo <= i <= snapshot_id]
    lf = scan.filter(
        (pl.col("source") == source)
        & (pl.col("valid_from") >= lo)
        & (pl.col("valid_from") <= snapshot_id)
    )
    if len(ids) != snapshot_id - lo + 1:  # some ids in range are not complete: drop them
        lf = lf.filter(pl.col("valid_from").is_in(ids))
    if keys is not None:
        lf = lf.filter(pl.col(KEY).is_in(list(keys)))
    return lf


def read_state(
    attrs: pl.LazyFrame,
    counters: pl.LazyFrame | None,
    source: str,
    snapshot_id: int,
    visible: Sequence[int],
    attr_keyframe: int | None,
    counter_keyframe: int | None,
    columns: Sequence[str],
    counter_cols: Sequence[str] = (),
    *,
    observed: pl.LazyFrame | None = None,
    observed_keyframe: int | None = None,
    keys: Sequence[int] | None = None,
    with_key: bool = False,
    eager: bool = False,
) -> pl.LazyFrame:
    """The logical `columns` (plus `entity_key` first when `with_key`) as of `snapshot_id`.

    `attrs` / `counters` / `observed` are the scanned tables (None: not written yet, so
    those columns are null); `visible` the complete ids of the source;
    `keys` restricts the read to those entity keys (top-k members). `eager` collects the
    rows after each keyframe now (`_newest_now`): for a read that is collected whole at
    once; a plan for the streaming engine (the previous state of a diff) keeps `eager`
    off, so nothing wide is ever held.
    """
    newest = _newest_now if eager else _newest
    wanted = [c for c in columns if c in counter_cols]
    attr_cols = [c for c in columns if c not in counter_cols and c != OBSERVED_AT]
    a = window(attrs, source, snapshot_id, visible, attr_keyframe, keys)
    a = newest(a.select([KEY, "valid_from", "op", *attr_cols]), attr_keyframe)
    a = a.filter(pl.col("op") != OP_DELETE)
    # (table, its columns wanted, its keyframe, the type of a column not written yet)
    apart: list[tuple[pl.LazyFrame | None, list[str], int | None, pl.DataType | None]]
    apart = [(counters, wanted, counter_keyframe, None)]
    if OBSERVED_AT in columns:
        apart.append((observed, [OBSERVED_AT], observed_keyframe, OBSERVED_TYPE))
    for table, cols, kf, null_type in apart:
        if not cols:
            continue
        if table is None:
            a = a.with_columns([pl.lit(None, null_type).alias(c) for c in cols])
            continue
        c = window(table, source, snapshot_id, visible, kf, keys)
        c = newest(c.select([KEY, "valid_from", *cols]), kf)
        c = c.drop("valid_from")
        # keeping the attributes' order lets Polars skip gathering the wide rows:
        # 1.5-1.9 s at 1M entities where the default join took 3.2-3.8 s
        a = a.join(c, on=KEY, how="left", maintain_order="left")
    out = ([KEY] if with_key else []) + list(columns)
    return a.select(out)


def hash_expr(attr_cols: Sequence[str]) -> pl.Expr:
    """A 64-bit hash per row of the attribute columns (not entity_id, not counters).

    Equal hashes are taken as equal attributes: a false "unchanged" needs a 64-bit
    collision between an entity's old and new attributes (~5e-20 per changed row). The
    column hashes tell null from [] and "" and [None] (tested); they are combined as a
    polynomial (x * 31 + next, wrapping), so the same value moving to another column
    changes the hash. Per-column hashes combined this way took 20 ms per 100k Hub rows
    where `pl.struct(...).hash()` took 51 ms. Only ever compared within one process (the
    in-memory previous state, or one this process rebuilt from the store).
    """
    if not attr_cols:
        return pl.lit(0, pl.UInt64).alias(HASH)
    parts = [pl.col(c).hash(seed=i) for i, c in enumerate(attr_cols)]
    return pl.reduce(lambda acc, x: acc * 31 + x, parts).alias(HASH)


def attribute_hash(df: pl.DataFrame, attr_cols: Sequence[str]) -> pl.Series:
    """`hash_expr` over a frame, as a Series named `__h`."""
    if not attr_cols:
        return pl.Series(HASH, [0] * df.height, dtype=pl.UInt64)
    return df.select(hash_expr(attr_cols)).to_series()


@dataclass(frozen=True)
class PreviousState:
    """What a diff needs of the previous complete snapshot: per live entity its key, the
    hash of its attributes and its counters; and the largest key ever assigned."""

    snapshot_id: int
    frame: pl.DataFrame  # entity_id, entity_key, __h, counters..., observed_at
    max_key: int
    attr_cols: tuple[str, ...]


class Diff:
    """A complete listing against the previous complete state, on integer keys.

    Works on the listing's *narrow* columns only: `entity_id`, the attribute hash `__h`,
    the counters, `observed_at`, and where each row sits in the staged batches (`__seq`,
    `__row`), so a 2M-row listing costs ~100 bytes a row here; the wide rows to write
    are gathered batch by batch afterwards (`picks`).
    """

    def __init__(
        self,
        narrow: pl.DataFrame,
        previous: PreviousState | None,
        counter_cols: Sequence[str],
        *,
        tombstones: bool = True,
    ) -> None:
        """`tombstones=False` for a listing that is not `full` (a top-N or a subset):
        absence then says nothing, so nothing is gone and the new state keeps every
        entity of the previous one that the listing did not name."""
        self.counter_cols = list(counter_cols)
        if OBSERVED_AT not in narrow.columns:
            narrow = narrow.with_columns(pl.lit(None, OBSERVED_TYPE).alias(OBSERVED_AT))
        self.kept_cols = [*self.counter_cols, OBSERVED_AT]  # what the state keeps apart
        max_key = previous.max_key if previous is not None else 0
        prev_cols = {HASH: "__hp", **{c: c + "__p" for c in self.kept_cols}}
        if previous is None:
            p = pl.DataFrame(
                schema={
                    "entity_id": pl.String,
                    KEY: pl.Int64,
                    HASH: pl.UInt64,
                    **{c: narrow.schema[c] for c in self.kept_cols},
                }
            )
        else:
            p = previous.frame
            if OBSERVED_AT not in p.columns:
                p = p.with_columns(pl.lit(None, OBSERVED_TYPE).alias(OBSERVED_AT))
        # where each listed id sits in the previous state (null: new), then its previous
        # key and values gathered beside the listing's columns: a join copied the whole
        # narrow listing too (~70 bytes a row, 220 MB at 3.2M rows)
        at = narrow.select("entity_id").join(
            p.select("entity_id").with_row_index("__i"),
            on="entity_id",
            how="left",
            maintain_order="left",
        )["__i"]
        j = narrow.with_columns(p.select(KEY, *prev_cols)[at].rename(prev_cols))
        keys = j[KEY]
        new_at = keys.is_null().arg_true()
        if new_at.len():
            # new keys: the previous maximum + rank among the sorted new ids (deterministic,
            # so a finish re-run after a kill assigns the same keys)
            ranks = j["entity_id"].gather(new_at).rank("ordinal").cast(pl.Int64) + max_key
            keys = keys.scatter(new_at, ranks)
        self.max_key = max_key + new_at.len()
        # a new row has null previous values, so ne_missing marks it: attributes always,
        # counters when any is not null (an all-null counters row is what no row means)
        cnt_changed = pl.lit(False)
        for c in self.counter_cols:
            cnt_changed = cnt_changed | pl.col(c).ne_missing(pl.col(c + "__p"))
        self.rows = j.with_columns(
            keys.alias(KEY),
            __attr=pl.col(HASH).ne_missing(pl.col("__hp")),
            __cnt=cnt_changed,
            __obs=pl.col(OBSERVED_AT).ne_missing(pl.col(OBSERVED_AT + "__p")),
        ).drop(*prev_cols.values())
        # the previous rows no listed id matched (each is matched at most once)
        unmatched = np.ones(p.height, dtype=bool)
        unmatched[at.drop_nulls().to_numpy()] = False
        absent = p.filter(pl.Series(unmatched))
        # not named by a partial-coverage listing: carried on unchanged (see state)
        self.carried = absent if not tombstones else absent.clear()
        self.gone = (absent if tombstones else absent.clear()).select("entity_id", KEY)
        self.attribute_changes = int(self.rows["__attr"].sum()) + self.gone.height
        self.counter_changes = int(self.rows["__cnt"].sum())
        self.observed_changes = int(self.rows["__obs"].sum())
        self.changed_entities = int((self.rows["__attr"] | self.rows["__cnt"]).sum())

    def picks(self, keyframe: bool) -> pl.DataFrame:
        """Where the attribute rows to write sit in the staged batches: `__seq`, `__row`,
        `entity_key`, `op`; sorted by (`__seq`, `entity_key`). A keyframe copies every
        live entity (`keep` when unchanged); tombstones are apart (`gone`)."""
        live = self.rows if keyframe else self.rows.filter(pl.col("__attr"))
        return live.select(
            SEQ,
            ROW,
            KEY,
            op=pl.when(pl.col("__attr")).then(pl.lit(OP_UPSERT)).otherwise(pl.lit(OP_KEEP)),
        ).sort(SEQ, KEY)

    def counter_rows(self, keyframe: bool) -> pl.DataFrame:
        """entity_key and counters of every live entity whose counters changed (all of them
        at a keyframe); sorted by key."""
        rows = self.rows if keyframe else self.rows.filter(pl.col("__cnt"))
        return rows.select(KEY, *self.counter_cols).sort(KEY)

    def observed_rows(self, keyframe: bool) -> pl.DataFrame:
        """entity_key and observed_at of every listed entity whose observation time
        changed (at a keyframe: every listed one that has one, too); sorted by key. A
        time gone null is a row too (unknown now), so the newest row at or before a
        snapshot is always its time; a new key without one gets none."""
        if keyframe:
            rows = self.rows.filter(pl.col(OBSERVED_AT).is_not_null() | pl.col("__obs"))
        else:
            rows = self.rows.filter(pl.col("__obs"))
        return rows.select(KEY, OBSERVED_AT).sort(KEY)

    def state(self, snapshot_id: int, attr_cols: Sequence[str]) -> PreviousState:
        """The new state, for the next diff."""
        frame = self.rows.select("entity_id", KEY, HASH, *self.kept_cols)
        if self.carried.height:
            carried = self.carried.select("entity_id", KEY, HASH, *self.kept_cols)
            frame = pl.concat([frame, carried], how="vertical_relaxed")
        return PreviousState(snapshot_id, frame, self.max_key, tuple(attr_cols))
