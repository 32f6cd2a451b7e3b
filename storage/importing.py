"""`hubtide import`: one full listing from a CSV, Parquet or JSONL file as one snapshot.

Stricter than a crawl: the whole file is checked before anything is written, and the first
problem (a value that does not fit its column's type, a missing or duplicate id, a column
the source does not have) is an error naming the column and the 1-based data row.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import polars as pl
import pyarrow as pa

from storage.catalog import Coverage, SnapshotInfo
from storage.errors import SchemaViolation, ShrinkRefused
from storage.layout import META_COLUMNS, OBSERVED_AT, check_source, is_custom
from storage.store import Store
from storage.writer import MAX_SHRINK, check_coverage

FORMATS = (".csv", ".parquet", ".jsonl", ".ndjson")


def _read(path: Path, typed: bool) -> pl.DataFrame:
    suffix = path.suffix.lower()
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    try:
        if suffix == ".csv":
            # built-in sources: read text and cast per column, so errors can name the row
            if typed:
                return pl.read_csv(path, infer_schema_length=10_000)
            return pl.read_csv(path, infer_schema=False)
        if suffix == ".parquet":
            return pl.read_parquet(path)
        if suffix in (".jsonl", ".ndjson"):
            return pl.read_ndjson(path, infer_schema_length=None)
    except pl.exceptions.PolarsError as exc:
        raise SchemaViolation(f"{path}: cannot read ({str(exc).splitlines()[0]})") from None
    raise ValueError(f"{path}: unknown file type {suffix!r}; use {', '.join(FORMATS)}")


def _cast_column(s: pl.Series, dtype: pl.DataType, name: str) -> pl.Series:
    """`s` cast to `dtype`; SchemaViolation naming the first row that does not fit."""
    if s.dtype == dtype:
        return s
    if s.dtype == pl.String and isinstance(dtype, pl.List):
        out = s.str.split(";")
        return out.cast(dtype)
    if s.dtype == pl.String and isinstance(dtype, pl.Datetime):
        out = s.str.to_datetime(time_zone="UTC", strict=False, time_unit="us")
    elif s.dtype == pl.String and dtype == pl.Boolean:
        truth = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}
        out = s.str.to_lowercase().replace_strict(truth, default=None, return_dtype=pl.Boolean)
    elif isinstance(s.dtype, pl.Datetime) and isinstance(dtype, pl.Datetime):
        out = (
            (s.dt.replace_time_zone("UTC") if s.dtype.time_zone is None else s)
            .dt.convert_time_zone("UTC")
            .dt.cast_time_unit("us")
        )
    else:
        try:
            out = s.cast(dtype, strict=False)
        except pl.exceptions.PolarsError:
            raise SchemaViolation(
                f"column {name!r}: type {s.dtype} cannot become {dtype}"
            ) from None
    bad = (s.is_not_null() & out.is_null()).arg_true()
    if len(bad):
        row = int(bad[0])
        raise SchemaViolation(f"column {name!r}, row {row + 1}: {s[row]!r} is not a valid {dtype}")
    return out


def load_listing(
    path: str | Path,
    source: str,
    *,
    id_column: str | None,
    schema: pa.Schema | None,
) -> pl.DataFrame:
    """The file's rows as the source's logical columns; raises SchemaViolation on bad input.

    `schema` is the source's logical schema (for a custom source: the columns it has so
    far, or None before its first import).
    """
    check_source(source)
    path = Path(path)
    custom = is_custom(source)
    df = _read(path, typed=custom)
    id_col = id_column or "entity_id"
    if id_col not in df.columns:
        raise SchemaViolation(
            f"{path}: no id column {id_col!r}; columns are {', '.join(df.columns)} "
            "(choose one with --id-column)"
        )
    if id_col != "entity_id":
        if "entity_id" in df.columns:
            raise SchemaViolation(f"{path}: has both {id_col!r} and 'entity_id'; drop one")
        df = df.rename({id_col: "entity_id"})
    reserved = [c for c in df.columns if c in META_COLUMNS]
    if reserved:
        raise SchemaViolation(f"{path}: column {reserved[0]!r} is reserved by the store; rename it")
    ids = df["entity_id"].cast(pl.String, strict=False)
    missing = ids.is_null().arg_true()
    if len(missing):
        raise SchemaViolation(f"column {id_col!r}, row {int(missing[0]) + 1}: missing id")
    dup = ids.is_duplicated() & ~ids.is_first_distinct()
    if dup.any():
        row = int(dup.arg_true()[0])
        first = int((ids == ids[row]).arg_true()[0])
        raise SchemaViolation(
            f"column {id_col!r}, row {row + 1}: duplicate id {ids[row]!r} "
            f"(first at row {first + 1})"
        )
    df = df.with_columns(ids.alias("entity_id"))
    known: dict[str, pl.DataType] = {}
    if schema is not None:
        empty = pl.from_arrow(schema.empty_table())
        assert isinstance(empty, pl.DataFrame)
        known = dict(empty.schema)
    # an optional column of every source: when the row's values were observed
    known.setdefault(OBSERVED_AT, pl.Datetime("us", "UTC"))
    if not custom:
        unknown = [c for c in df.columns if c not in known]
        if unknown:
            raise SchemaViolation(
                f"column {unknown[0]!r} is not a column of {source}; columns are {', '.join(known)}"
            )
    cols = []
    for name in df.columns:
        s = df[name]
        if name in known:
            s = _cast_column(s, known[name], name)
        elif s.dtype == pl.Null:
            s = s.cast(pl.String)
        cols.append(s.alias(name))
    return pl.DataFrame(cols)


def import_listing(
    store: Store,
    source: str,
    path: str | Path,
    *,
    at: datetime,
    id_column: str | None = None,
    batch_rows: int = 50_000,
    coverage: Coverage = "full",
    top_by: str | None = None,
    max_shrink: float = MAX_SHRINK,
    allow_shrink: bool = False,
) -> SnapshotInfo:
    """Validate the whole file, then write it as one complete snapshot of `source`.

    `coverage` says what the file lists (storage/catalog.py, Coverage): `full` (the
    default: an entity it does not name is gone), `top` (the top N by column `top_by`,
    N = its rows) or `subset` (a filtered listing); only `full` writes tombstones.

    Raises:
        ShrinkRefused: a `full` file would tombstone more than `max_shrink` of the
            previous state (unless `allow_shrink`); the snapshot ends failed, so the same
            import may be re-run at the same instant.
    """
    check_source(source)
    check_coverage(coverage, top_by, None)
    existing = source in store.sources()
    schema = store.schema(source) if (existing or not is_custom(source)) else None
    df = load_listing(path, source, id_column=id_column, schema=schema)
    if top_by is not None and top_by not in df.columns:
        raise SchemaViolation(
            f"--top-by {top_by!r} is not a column of {path}; columns are {', '.join(df.columns)}"
        )
    w = store.begin_snapshot(
        source,
        as_of=at,
        coverage=coverage,
        top_by=top_by,
        max_shrink=None if allow_shrink else max_shrink,
        on_shrink="failed",
    )
    for seq, start in enumerate(range(0, max(df.height, 1), batch_rows)):
        w.write_batch(seq, df.slice(start, batch_rows))
    info = w.finish("complete")
    if info.status != "complete":
        raise ShrinkRefused(f"{path}: {info.message}")
    return info
