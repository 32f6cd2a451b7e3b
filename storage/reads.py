"""Every read of the store: as-of state, history, top-k, changes between snapshots, the
Hub details, crawl events, and the ranking both `top_k` and the writer's top-k members
use (`rank`, by `storage.ranking`: value descending, ties `entity_id` ascending).

Functions take the store's internal handle (`core.StoreCore`) and reach the tables and
the catalog only through it. Reads always scan the *current* version of each table
(never time travel), so vacuum can remove old files without breaking as-of reads of any
kept snapshot.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

import polars as pl

from storage import schemas
from storage.catalog import At
from storage.core import StoreCore
from storage.errors import AmbiguousName, ColumnNotFound, ColumnNotUsable, EntityNotFound
from storage.layout import (
    COVERED,
    EVENTS,
    KEY,
    OBSERVED,
    OBSERVED_AT,
    OP_DELETE,
    TOPK,
    DetailKind,
    counter_table,
    counters_of,
    detail_table,
    entity_table,
    is_custom,
    txn_id,
)
from storage.ranking import ranked
from storage.staged import StagedBatches
from storage.state import ROW, PreviousState, hash_expr, read_state, window


def _key_of(state: tuple[Any, ...]) -> tuple[Any, ...]:
    """A state tuple where NaN equals NaN (so a NaN counter is not a change every time)."""
    return tuple("__nan__" if isinstance(v, float) and v != v else v for v in state)


def rejected_count(core: StoreCore, run_id: str) -> int:
    """How many records a run quarantined (its `rejected` crawl events)."""
    df = (
        pl.scan_delta(core.tables.must(EVENTS))
        .filter((pl.col("run_id") == run_id) & (pl.col("kind") == "rejected"))
        .select(pl.len())
        .collect()
    )
    return int(df.item())


def staged_listing(core: StoreCore, source: str, snapshot_id: int) -> pl.DataFrame:
    """The whole staged listing of a snapshot (the partial read; finish streams)."""
    frames = [f for _, f in StagedBatches(core.tables, source, snapshot_id) if f.height]
    if not frames:
        schema = core.logical_schema(source) if not is_custom(source) else None
        if schema is None:
            return pl.DataFrame({"entity_id": pl.Series([], dtype=pl.String)})
        out = pl.from_arrow(schema.empty_table())
        assert isinstance(out, pl.DataFrame)
        return out
    df = pl.concat(frames, how="diagonal_relaxed")
    if df["entity_id"].n_unique() == df.height:
        return df  # the common case, checked 10x faster than the unique below
    # a page fetched again after a resume lands in a later batch: the newest row wins
    return df.unique("entity_id", keep="last", maintain_order=True)


def state_of(
    core: StoreCore,
    source: str,
    snapshot_id: int,
    columns: Sequence[str] | None,
    *,
    keys: Sequence[int] | None = None,
    with_key: bool = False,
    eager: bool = False,
    covered: bool = True,
) -> pl.LazyFrame:
    """The lazy state of `source` as of complete snapshot `snapshot_id` (storage/state.py):
    `columns` (None: every logical column), only the entities `keys` when given, with the
    `entity_key` first when `with_key`; `eager` collects the change rows first.

    Of a `top` snapshot only the entities its listing named (`covered`); the diff's
    previous state asks for all (`covered=False`): the entities a top-N listing did not
    name are carried on, so a later `full` listing can tell who is gone."""
    cols = list(columns) if columns is not None else core.columns(source)
    if covered:
        members = covered_keys(core, source, snapshot_id)
        if members is not None:
            keys = members if keys is None else sorted(set(keys) & set(members))
    dt = core.tables.get(entity_table(source))
    if dt is None:
        df = pl.from_arrow(core.logical_schema(source).empty_table())
        assert isinstance(df, pl.DataFrame)
        if with_key:
            df = df.with_columns(pl.lit(None, pl.Int64).alias(KEY))
        return df.lazy().select(([KEY] if with_key else []) + cols)
    counters = counters_of(source)
    crel = counter_table(source)
    cdt = core.tables.get(crel) if crel is not None else None
    odt = core.tables.get(OBSERVED) if OBSERVED_AT in cols else None
    akf = core.catalog.keyframe_before(source, snapshot_id, "attributes")
    ckf = core.catalog.keyframe_before(source, snapshot_id, "counters")
    okf = observed_keyframe(core, source, snapshot_id) if odt is not None else None
    return read_state(
        pl.scan_delta(dt),
        pl.scan_delta(cdt) if cdt is not None else None,
        source,
        snapshot_id,
        core.catalog.complete_ids(source),
        akf,
        ckf,
        cols,
        counters,
        observed=pl.scan_delta(odt) if odt is not None else None,
        observed_keyframe=okf,
        keys=keys,
        with_key=with_key,
        eager=eager,
    )


def observed_keyframe(core: StoreCore, source: str, snapshot_id: int) -> int | None:
    """The snapshot whose observation rows a read of `snapshot_id` starts from: the newest
    observation keyframe at or before it (its rows give every live entity its time).

    Every counters keyframe (a source without counters: attribute keyframe) is one; so
    is any snapshot whose listing named every live entity with most times new (a Hub
    crawl: every one), said by the version of its `observed` txn (1). Only the complete
    snapshots after the counters keyframe are looked at (at most `keyframe_every`)."""
    if counter_table(source) is not None:
        base = core.catalog.keyframe_before(source, snapshot_id, "counters")
    else:
        base = core.catalog.keyframe_before(source, snapshot_id, "attributes")
    odt = core.tables.get(OBSERVED)
    if odt is None:
        return base
    lo = base if base is not None else 0
    for sid in sorted(core.catalog.complete_ids(source), reverse=True):
        if sid > snapshot_id:
            continue
        if sid <= lo:
            break
        if odt.transaction_version(txn_id(source, sid, "observed")) == 1:
            return sid
    return base


def covered_keys(core: StoreCore, source: str, snapshot_id: int) -> list[int] | None:
    """The entity keys a `top` snapshot's listing named (derived/topk, by `COVERED`); None
    for a `full` or `subset` snapshot (its state is every live entity)."""
    if core.catalog.info(source, snapshot_id).coverage != "top":
        return None
    key = (source, snapshot_id, COVERED)
    hit = core.topk_cache.get(key)
    if hit is None:
        hit = (
            pl.scan_delta(core.tables.must(TOPK))
            .filter(
                (pl.col("source") == source)
                & (pl.col("snapshot_id") == snapshot_id)
                & (pl.col("by") == COVERED)
            )
            .select(KEY)
            .collect()
        )
        core.topk_cache.put(key, hit)
    return [int(k) for k in hit[KEY].to_list()]


def state_deferred(
    core: StoreCore, source: str, snapshot_id: int, columns: Sequence[str] | None
) -> pl.LazyFrame:
    """The state as of a complete snapshot, read when the frame is collected, by
    Polars' in-memory engine over a plan whose change rows are collected first
    (`read_state(eager=True)`): 2.0x a plain Parquet scan at 1M entities where the
    lazy plan under the default (streaming) engine took 2.8-3.1x, paired, same minute
    (docs/storage.md, Session 4). The whole state is then built at once, as a collect
    of the lazy plan did too; the diff's previous state keeps the streaming plan."""
    schema = state_of(core, source, snapshot_id, columns).collect_schema()

    def read() -> pl.DataFrame:
        lf = state_of(core, source, snapshot_id, columns, eager=True)
        return lf.collect(engine="in-memory")

    return pl.defer(read, schema=schema)


def previous_state(
    core: StoreCore,
    source: str,
    prev_id: int | None,
    attr_cols: Sequence[str],
    types: Mapping[str, pl.DataType],
) -> PreviousState | None:
    """The state a finish diffs against: kept in memory after the previous finish of
    this process, else read back from the store (after a restart, or when a custom
    source gained columns, since the attribute hash covers every attribute column)."""
    if prev_id is None:
        return None
    cached = core.last_state.get(source)
    if (
        cached is not None
        and cached.snapshot_id == prev_id
        and cached.attr_cols == tuple(attr_cols)
    ):
        return cached
    have = set(core.columns(source))
    counters = [c for c in counters_of(source) if c in types]
    kept = [*counters, OBSERVED_AT]  # the diff's narrow columns besides the hash
    types = {**types, OBSERVED_AT: pl.Datetime("us", "UTC")}
    read = [c for c in [*attr_cols, *kept] if c in have]
    lf = state_of(core, source, prev_id, read, with_key=True, covered=False)
    missing = [c for c in [*attr_cols, *kept] if c not in read]
    lf = lf.with_columns([pl.lit(None, types[c]).alias(c) for c in missing])
    lf = lf.with_columns([pl.col(c).cast(types[c]) for c in [*attr_cols, *kept]])
    # hashed inside the query and collected by the streaming engine: only the narrow
    # columns are ever whole in memory, not the wide state (2M Hub rows ~ 700 MB)
    lf = lf.select("entity_id", KEY, hash_expr([c for c in attr_cols if c != "entity_id"]), *kept)
    frame = lf.collect(engine="streaming")
    dt = core.tables.must(entity_table(source))
    ids = core.catalog.complete_ids(source)
    top = (
        window(pl.scan_delta(dt), source, prev_id, ids, None)
        .select(pl.col(KEY).max())
        .collect()
        .item()
    )
    return PreviousState(prev_id, frame, int(top or 0), tuple(attr_cols))


def check_columns(core: StoreCore, source: str, columns: Sequence[str] | None) -> list[str] | None:
    """`columns` with `entity_id` first; ColumnNotFound naming the columns there are."""
    if columns is None:
        return None
    have = core.columns(source)
    for c in columns:
        if c not in have:
            raise ColumnNotFound(f"column {c!r} not in {source!r}; columns are {', '.join(have)}")
    twice = sorted({c for c in columns if list(columns).count(c) > 1})
    if twice:
        raise ColumnNotUsable(f"column {', '.join(map(repr, twice))} named more than once")
    cols = list(columns)
    return cols if "entity_id" in cols else ["entity_id", *cols]


def as_of(
    core: StoreCore,
    source: str,
    at: At = None,
    *,
    columns: Sequence[str] | None = None,
    include_partial: bool = False,
    max_staleness: timedelta | None = None,
) -> pl.LazyFrame:
    """The state of `source` as of a snapshot: one row per live entity.

    `entity_id` always comes first, then `columns` (default: every logical column).
    `max_staleness` keeps only the rows observed no longer than that before the
    snapshot's instant (`stale_rows`).
    """
    sid = core.catalog.resolve(source, at, include_partial=include_partial)
    if max_staleness is not None:
        check_staleness(max_staleness)
        lf = as_of(core, source, sid, columns=columns, include_partial=include_partial)
        wanted = lf.collect_schema().names()
        if OBSERVED_AT not in wanted:
            lf = as_of(
                core,
                source,
                sid,
                columns=[*wanted, OBSERVED_AT],
                include_partial=include_partial,
            )
        instant = core.catalog.info(source, sid).as_of
        return fresh_rows(lf, instant, max_staleness).select(wanted)
    cols = check_columns(core, source, columns)
    status = core.catalog.snapshots(source, include_partial=True).filter(
        pl.col("snapshot_id") == sid
    )["status"][0]
    if status == "complete":
        return state_deferred(core, source, sid, cols)
    # partial: the previous complete state overlaid with what the partial listing saw
    prev = core.catalog.previous_complete(source, sid)
    all_cols = core.columns(source)
    base = (
        state_of(core, source, prev, None).collect()
        if prev is not None
        else pl.from_arrow(core.logical_schema(source).empty_table())
    )
    assert isinstance(base, pl.DataFrame)
    staged = staged_listing(core, source, sid)
    staged = staged.select([c for c in all_cols if c in staged.columns])
    merged = pl.concat([base.select(all_cols), staged], how="diagonal_relaxed")
    merged = merged.unique("entity_id", keep="last", maintain_order=True)
    out = merged.lazy()
    return out.select(cols) if cols is not None else out


def check_staleness(max_staleness: timedelta) -> None:
    """ValueError for a staleness bound that is not a non-negative timedelta."""
    if not isinstance(max_staleness, timedelta) or max_staleness < timedelta(0):
        raise ValueError(
            f"max_staleness must be a timedelta of zero or more, got {max_staleness!r}"
        )


def staleness(instant: datetime | None) -> pl.Expr:
    """How long before `instant` (a snapshot's as_of) each row's values were observed,
    as a Duration (`staleness`); null where `observed_at` is unknown. Negative when the
    page answered after the snapshot's instant (a crawl's pages come after its start)."""
    if instant is None:
        return pl.lit(None, pl.Duration("us")).alias("staleness")
    return (pl.lit(instant, pl.Datetime("us", "UTC")) - pl.col(OBSERVED_AT)).alias("staleness")


def fresh_rows(
    lf: pl.LazyFrame, instant: datetime | None, max_staleness: timedelta
) -> pl.LazyFrame:
    """The rows of `lf` (with `observed_at`) observed at most `max_staleness` before
    `instant`. A row whose observation time is unknown is left out: nothing says it is
    fresh."""
    return lf.filter(staleness(instant) <= max_staleness)


def history(core: StoreCore, source: str, entity_id: str) -> pl.LazyFrame:
    """Every change of one entity: snapshot_id, as_of, op, logical columns.

    One row per complete snapshot where the entity's state differs from the one
    before (`upsert`), or where it vanished (`delete`, columns null). Keyframe copies
    and counter rows that repeat the previous values are not changes, nor is a new
    observation time alone: each row's `observed_at` is when that snapshot observed
    the values (null: unknown).
    """
    core.catalog.check_known(source)
    cols = core.columns(source)
    types = core.column_types(source)
    snaps = core.catalog.snapshots(source).select("snapshot_id", "as_of")
    when = dict(zip(snaps["snapshot_id"].to_list(), snaps["as_of"].to_list(), strict=True))
    out_schema: dict[str, Any] = {
        "snapshot_id": pl.Int64,
        "as_of": snaps.schema["as_of"],
        "op": pl.String,
    }
    out_schema.update({c: types.get(c, pl.String) for c in cols})
    dt = core.tables.get(entity_table(source))
    if dt is None:
        return pl.DataFrame(schema=out_schema).lazy()
    counters = [c for c in counters_of(source) if c in cols]
    attr_cols = [c for c in cols if c not in counters and c != OBSERVED_AT]
    attrs = (
        pl.scan_delta(dt)
        .filter((pl.col("source") == source) & (pl.col("entity_id") == entity_id))
        .filter(pl.col("valid_from").is_in(list(when)))
        .select(KEY, "valid_from", "op", *[c for c in attr_cols if c != "entity_id"])
        .sort("valid_from")
        .collect()
    )
    keys = attrs[KEY].unique().to_list()
    crel = counter_table(source)
    cdt = core.tables.get(crel) if crel is not None else None
    cnt: dict[int, list[tuple[int, tuple[Any, ...]]]] = {}
    if cdt is not None and counters and keys:
        crows = (
            pl.scan_delta(cdt)
            .filter((pl.col("source") == source) & pl.col(KEY).is_in(keys))
            .filter(pl.col("valid_from").is_in(list(when)))
            .select(KEY, "valid_from", *counters)
            .sort("valid_from")
            .collect()
        )
        for r in crows.iter_rows():
            cnt.setdefault(r[0], []).append((r[1], tuple(r[2:])))
    seen = _observed_series(core, source, keys, list(when))
    arows = attrs.rows()
    times = sorted({r[1] for r in arows} | {t for v in cnt.values() for t, _ in v})
    out: list[dict[str, Any]] = []
    prev: tuple[Any, ...] | None = None
    i = -1
    for t in times:
        while i + 1 < len(arows) and arows[i + 1][1] <= t:
            i += 1
        if i < 0:
            continue
        key, _, op, *values = arows[i]
        if op == OP_DELETE:
            if prev is not None:
                out.append(
                    {
                        "snapshot_id": t,
                        "as_of": when[t],
                        "op": OP_DELETE,
                        "entity_id": entity_id,
                    }
                )
            prev = None
            continue
        series = [v for vt, v in cnt.get(key, []) if vt <= t]
        current = series[-1] if series else (None,) * len(counters)
        state = (*values, *current)
        if prev is None or _key_of(state) != _key_of(prev):
            row = dict(zip([c for c in attr_cols if c != "entity_id"], values, strict=True))
            row.update(zip(counters, current, strict=True))
            if OBSERVED_AT in cols:
                row[OBSERVED_AT] = _observed_at(core, source, seen.get(key, []), t)
            out.append(
                {
                    "snapshot_id": t,
                    "as_of": when[t],
                    "op": "upsert",
                    "entity_id": entity_id,
                    **row,
                }
            )
        prev = state
    frame = (
        pl.DataFrame(out, schema=out_schema, orient="row")
        if out
        else pl.DataFrame(schema=out_schema)
    )
    return frame.select(["snapshot_id", "as_of", "op", *cols]).lazy()


def _observed_series(
    core: StoreCore, source: str, keys: Sequence[int], ids: Sequence[int]
) -> dict[int, list[tuple[int, Any]]]:
    """Per entity key, its observation rows (valid_from, observed_at) among the complete
    snapshots `ids`, oldest first."""
    odt = core.tables.get(OBSERVED)
    if odt is None or not keys:
        return {}
    rows = (
        pl.scan_delta(odt)
        .filter((pl.col("source") == source) & pl.col(KEY).is_in(list(keys)))
        .filter(pl.col("valid_from").is_in(list(ids)))
        .select(KEY, "valid_from", OBSERVED_AT)
        .sort("valid_from")
        .collect()
    )
    out: dict[int, list[tuple[int, Any]]] = {}
    for k, vf, at in rows.iter_rows():
        out.setdefault(k, []).append((vf, at))
    return out


def _observed_at(core: StoreCore, source: str, series: list[tuple[int, Any]], t: int) -> Any:
    """The observation time of snapshot `t` from one key's rows: the newest at or before
    `t` and not before its keyframe (as `read_state` reads it)."""
    lo = observed_keyframe(core, source, t) or 0
    hits = [at for vf, at in series if lo <= vf <= t]
    return hits[-1] if hits else None


def named(core: StoreCore, source: str, name: str) -> pl.DataFrame:
    """Every entity of `source` that ever had `name` in a complete snapshot: entity_id, name
    (its newest), named_in (the newest snapshot that recorded it under `name`), newest first.

    An exact match first; without one, case-insensitive (Hub names are). Empty when nothing
    matches or `source` has no `name` column.
    """
    core.catalog.check_known(source)
    out = pl.DataFrame(schema={"entity_id": pl.String, "name": pl.String, "named_in": pl.Int64})
    dt = core.tables.get(entity_table(source))
    if dt is None or "name" not in core.columns(source):
        return out
    ids = core.catalog.snapshots(source)["snapshot_id"].to_list()
    rows = (
        pl.scan_delta(dt)
        .filter((pl.col("source") == source) & pl.col("valid_from").is_in(ids))
        .filter(pl.col("name").is_not_null())
        .select("entity_id", "valid_from", "name")
    )
    hits = rows.filter(pl.col("name") == name).collect()
    if hits.is_empty():
        hits = rows.filter(pl.col("name").str.to_lowercase() == name.lower()).collect()
    if hits.is_empty():
        return out
    found = hits.group_by("entity_id").agg(pl.col("valid_from").max().alias("named_in"))
    newest = (
        rows.filter(pl.col("entity_id").is_in(found["entity_id"].to_list()))
        .sort("valid_from")
        .group_by("entity_id")
        .agg(pl.col("name").last())
        .collect()
    )
    joined = found.join(newest, on="entity_id").sort(
        ["named_in", "entity_id"], descending=[True, False]
    )
    return joined.select(out.columns).cast(dict(out.schema))  # type: ignore[arg-type]


def resolve_entity(core: StoreCore, source: str, id_or_name: str) -> str:
    """The entity_id meant by `id_or_name`: an id the source holds, else the one entity that
    ever had that name (`named`). EntityNotFound when none, AmbiguousName when several."""
    core.catalog.check_known(source)
    dt = core.tables.get(entity_table(source))
    if dt is not None:
        hit = (
            pl.scan_delta(dt)
            .filter((pl.col("source") == source) & (pl.col("entity_id") == id_or_name))
            .select("entity_id")
            .head(1)
            .collect()
        )
        if hit.height:
            return id_or_name
    found = named(core, source, id_or_name)
    if found.height == 1:
        return str(found["entity_id"][0])
    if found.height == 0:
        raise EntityNotFound(
            f"no entity {id_or_name!r} in {source!r}: neither an entity id nor a name one had"
        )
    listed = "; ".join(f"{r['entity_id']} (now {r['name']})" for r in found.iter_rows(named=True))
    raise AmbiguousName(
        f"{found.height} entities of {source!r} were named {id_or_name!r}: {listed}; "
        "ask for one by its id",
        candidates=found,
    )


def rank(state: pl.DataFrame, source: str, snapshot_id: int, by: str, k: int) -> pl.DataFrame:
    """source, snapshot_id, by, rank, entity_id, name, value: `storage.ranking`'s rule."""
    return ranked(state, by, k).select(
        pl.lit(source).alias("source"),
        pl.lit(snapshot_id, pl.Int64).alias("snapshot_id"),
        pl.lit(by).alias("by"),
        "rank",
        "entity_id",
        "name",
        "value",
    )


def top_k(
    core: StoreCore,
    source: str,
    snapshot: At,
    by: str,
    k: int,
) -> pl.LazyFrame:
    """rank, entity_id, name, value: the top `k` by column `by` (ties: entity_id asc)."""
    sid = core.catalog.resolve(source, snapshot)
    have = core.columns(source)
    if by not in have:
        raise ColumnNotFound(f"column {by!r} not in {source!r}; columns are {', '.join(have)}")
    numeric = schemas.rankable_columns(core.logical_schema(source))
    if by not in numeric:
        raise ColumnNotUsable(
            f"column {by!r} of {source!r} is not a number; rank by one of {', '.join(numeric)}"
        )
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    pre = schemas.POPULARITY_COLUMNS.get(source, ())
    cols = ["entity_id", by] + (["name"] if "name" in have and by != "name" else [])
    if by in pre and k <= core.options.topk_n:
        ranked = ranked_members(core, source, sid, by, cols).head(k)
    else:
        state = state_of(core, source, sid, cols).collect()
        ranked = rank(state, source, sid, by, k)
    return ranked.lazy().select("rank", "entity_id", "name", "value")


def ranked_members(
    core: StoreCore, source: str, sid: int, by: str, cols: list[str]
) -> pl.DataFrame:
    """The `derived/topk` members of a complete snapshot, ranked from their state.

    Kept per (source, snapshot, by) for the store's life (`TOPK_CACHE` entries, ~1 MB
    each): a complete snapshot's state never changes, and each ranking reads the
    members' state from the change tables (~0.1 s at 100k entities, ~0.3 s at 1M)."""
    key = (source, sid, by)
    hit = core.topk_cache.get(key)
    if hit is not None:
        return hit
    members = (
        pl.scan_delta(core.tables.must(TOPK))
        .filter(
            (pl.col("source") == source) & (pl.col("snapshot_id") == sid) & (pl.col("by") == by)
        )
        .select(KEY)
        .collect()[KEY]
        .to_list()
    )
    state = state_of(core, source, sid, cols, keys=members).collect()
    ranked = rank(state, source, sid, by, core.options.topk_n)
    core.topk_cache.put(key, ranked)
    return ranked


def changed(core: StoreCore, source: str, from_snapshot: At, to_snapshot: At) -> pl.LazyFrame:
    """entity_id, change (created|updated|renamed|deleted), and the columns (to, or from
    for deleted entities) between two complete snapshots.

    A snapshot that is not a full listing (coverage top or subset) cannot see creations or
    deletions: an entity absent from the later one `left` its listing (it may well exist),
    one absent from the earlier one `entered` it."""
    a = core.catalog.resolve(source, from_snapshot)
    b = core.catalog.resolve(source, to_snapshot)
    a_full = core.catalog.info(source, a).coverage == "full"
    b_full = core.catalog.info(source, b).coverage == "full"
    cols = core.columns(source)
    sa = state_of(core, source, a, cols).collect()
    sb = state_of(core, source, b, cols).collect()
    value_cols = [c for c in cols if c != "entity_id"]
    j = sb.join(
        sa.select(["entity_id", *[pl.col(c).alias(c + "__a") for c in value_cols]]).with_columns(
            __in_a=pl.lit(True)
        ),
        on="entity_id",
        how="left",
    )
    differs = pl.lit(False)
    for c in value_cols:
        if c == OBSERVED_AT:
            continue  # a new observation of the same values is no change
        differs = differs | pl.col(c).ne_missing(pl.col(c + "__a"))
    renamed = (
        pl.col("name").ne_missing(pl.col("name__a")) if "name" in value_cols else pl.lit(False)
    )
    change = (
        pl.when(pl.col("__in_a").is_null())
        .then(pl.lit("created" if a_full else "entered"))
        .when(renamed)
        .then(pl.lit("renamed"))
        .when(differs)
        .then(pl.lit("updated"))
        .otherwise(None)
    )
    live = j.with_columns(change=change).filter(pl.col("change").is_not_null())
    live = live.select(["entity_id", "change", *value_cols])
    gone = sa.join(sb.select("entity_id"), on="entity_id", how="anti").with_columns(
        change=pl.lit("deleted" if b_full else "left")
    )
    gone = gone.select(["entity_id", "change", *value_cols])
    return pl.concat([live, gone]).sort("entity_id").lazy()


# -- details ------------------------------------------------------------------------


def _complete_pairs(core: StoreCore) -> pl.DataFrame:
    cat = core.catalog.read().filter(
        pl.col("status").is_in(["complete"]) & pl.col("source").str.starts_with("hub:")
    )
    return cat.select(pl.col("source").str.split(":").list.get(1).alias("repo_type"), "snapshot_id")


def _detail(core: StoreCore, kind: DetailKind, repo_type: str | None) -> pl.LazyFrame:
    lf = pl.scan_delta(core.tables.must(detail_table(kind)))
    lf = lf.join(_complete_pairs(core).lazy(), on=["repo_type", "snapshot_id"], how="semi")
    if repo_type is not None:
        lf = lf.filter(pl.col("repo_type") == repo_type)
    return lf


def commits(core: StoreCore, repo_type: str | None = None) -> pl.LazyFrame:
    """Every commit once (the first complete snapshot it was seen in), in snapshot order
    (rows of one snapshot in the table's order)."""
    lf = _detail(core, "commits", repo_type).with_row_index(ROW)
    # A commit id the table holds once is one commit of one repo, so only the ids it holds
    # more than once (a commit read again, a repo copy sharing history, a hash collision)
    # go through the whole key's dedup. Repeats are found on the ids' u64 hashes, sorted:
    # a year of daily Hub snapshots holds ~27M ids, and Polars' unique or is_duplicated
    # over them took 1.1 GB beyond the read itself at 18.9M, the hashes sorted 0.3 GB.
    hashed = pl.col("commit_id").hash(seed=0)
    ordered = hashed.sort()
    repeated = hashed.is_in(ordered.filter(ordered == ordered.shift(1)).implode())
    again = (
        lf.filter(repeated)
        .sort("snapshot_id", ROW)
        .unique(["repo_type", "entity_id", "commit_id"], keep="first", maintain_order=True)
    )
    return pl.concat([lf.filter(~repeated), again]).sort("snapshot_id", ROW).drop(ROW)


def _newest_details(
    core: StoreCore, kind: DetailKind, repo_type: str | None, at: At, key: list[str]
) -> pl.LazyFrame:
    """The newest row per `key` of a details table, as of a snapshot (None = newest)."""
    lf = _detail(core, kind, repo_type)
    if at is not None:
        if repo_type is None:
            raise ValueError("at= needs repo_type= (snapshot ids are per source)")
        sid = core.catalog.resolve(f"hub:{repo_type}", at)
        lf = lf.filter(pl.col("snapshot_id") <= sid)
    return lf.sort("snapshot_id").unique(["repo_type", *key], keep="last", maintain_order=True)


def discussions(core: StoreCore, repo_type: str | None = None, at: At = None) -> pl.LazyFrame:
    """Newest state per (repo_type, entity_id, num) as of a snapshot (None = newest)."""
    return _newest_details(core, "discussions", repo_type, at, ["entity_id", "num"])


def cards(core: StoreCore, repo_type: str | None = None, at: At = None) -> pl.LazyFrame:
    """Newest card per (repo_type, entity_id) as of a snapshot (None = newest)."""
    return _newest_details(core, "cards", repo_type, at, ["entity_id"])


def events(core: StoreCore, run_id: str | None = None) -> pl.LazyFrame:
    """ops/crawl_events, optionally of one run."""
    lf = pl.scan_delta(core.tables.must(EVENTS))
    if run_id is not None:
        lf = lf.filter(pl.col("run_id") == run_id)
    return lf.sort(["run_id", "seq"])
