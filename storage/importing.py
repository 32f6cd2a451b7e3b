"""`hubtide import`: one listing from a CSV, Parquet or JSONL file as one snapshot.

Stricter than a crawl: the whole file is checked before anything is written, and the first
problem (a value that does not fit its column's type exactly, a missing or duplicate id, a
column the source does not have) is an error naming the column, the 1-based data row and
the value. An import never changes a value (storage/types.py): no rounding, no bool as a
number, no truncated timestamp.

* **The id column.** `--id-column` names it; without it the file's one obvious candidate
  is used (`find_id_column`: the source's own id column, `entity_id`, else the one of
  ID_CANDIDATES that is present and unique). A custom source records the name in the
  catalog (`id_column`), and the CLI's outputs call its `entity_id` by that name.
* **Exact types.** A custom source's column types come from the values (never the file
  format: CSV cells are text and typed by what they hold) unless `--schema` fixes them;
  docs/storage.md, "Column types of a custom source".
* **Once per file and instant.** Each import records the file's SHA-256 (`digest`) in its
  snapshot's catalog rows; the same file at the same instant again is `already imported`
  and writes nothing.
"""

from __future__ import annotations

import calendar
import hashlib
import itertools
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from datetime import time as dtime
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow as pa

from storage.catalog import Coverage, SnapshotInfo, parse_at
from storage.errors import SchemaViolation, ShrinkRefused
from storage.layout import META_COLUMNS, OBSERVED_AT, check_source, is_custom
from storage.store import Store
from storage.types import cast_exact, infer_type, type_name
from storage.writer import MAX_SHRINK, check_coverage

FORMATS = (".csv", ".parquet", ".jsonl", ".ndjson")
# the id columns real dumps use, in the order messages list them (issue 16, point 6)
ID_CANDIDATES = ("id", "_id", "name", "modelId", "project", "package")
ID = "entity_id"  # what the store calls the id column inside


@dataclass(frozen=True)
class Listing:
    """A file's rows as the source's logical columns, and how its id column was chosen."""

    frame: pl.DataFrame
    id_column: str  # the file's column read as the id
    found: bool  # chosen by `find_id_column` (not named by --id-column)


@dataclass(frozen=True)
class Imported:
    """What one `import_file` did."""

    path: Path
    info: SnapshotInfo  # the snapshot written, or the one that already holds the file
    id_column: str  # the file's column read as the id
    found: bool  # chosen among ID_CANDIDATES (not --id-column's, not the source's own)
    already: bool  # the same file at the same instant was imported before: nothing written
    digest: str

    @property
    def status(self) -> str:
        return "already imported" if self.already else "imported"


def digest_of(path: Path) -> str:
    """`sha256:HEX` of the file's bytes."""
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return "sha256:" + h.hexdigest()


def _read(path: Path) -> pl.DataFrame:
    suffix = path.suffix.lower()
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    try:
        if suffix == ".csv":
            # cells are text, typed by what they hold (storage/types.py), as in any format
            return pl.read_csv(path, infer_schema=False)
        if suffix == ".parquet":
            return pl.read_parquet(path)
        if suffix in (".jsonl", ".ndjson"):
            try:
                return pl.read_ndjson(path, infer_schema_length=None)
            except pl.exceptions.PolarsError:
                _mixed_json(path)  # names the row whose value has another type
                raise
    except pl.exceptions.PolarsError as exc:
        raise SchemaViolation(f"{path}: cannot read ({str(exc).splitlines()[0]})") from None
    raise ValueError(f"{path}: unknown file type {suffix!r}; use {', '.join(FORMATS)}")


def _json_kind(v: object) -> str:
    if isinstance(v, bool):
        return "a bool"
    if isinstance(v, (int, float)):
        return "a number"
    if isinstance(v, str):
        return "a string"
    return "a list" if isinstance(v, list) else "an object"


def _mixed_json(path: Path) -> None:
    """SchemaViolation for the first JSON line that is no object, or whose value has
    another kind than the column's first (a bool among numbers: True is not 1)."""
    first: dict[str, tuple[str, int]] = {}
    with path.open(encoding="utf-8") as fh:
        for row, line in enumerate((ln for ln in fh if ln.strip()), start=1):
            try:
                rec = json.loads(line)
            except ValueError:
                raise SchemaViolation(f"{path}, row {row}: not a JSON object") from None
            if not isinstance(rec, dict):
                raise SchemaViolation(f"{path}, row {row}: not a JSON object")
            for name, v in rec.items():
                if v is None:
                    continue
                kind = _json_kind(v)
                seen = first.setdefault(name, (kind, row))
                if seen[0] != kind:
                    raise SchemaViolation(
                        f"column {name!r}, row {row}: {v!r} is {kind} and row {seen[1]} "
                        f"holds {seen[0]} (one type per column: an import never converts)"
                    )


def _is_unique_id(s: pl.Series) -> bool:
    return s.null_count() == 0 and s.n_unique() == s.len()


def find_id_column(df: pl.DataFrame, source: str, stored: str | None = None) -> str:
    """The file's one obvious id column: the source's recorded one (`stored`) if present,
    else `entity_id`, else the one of ID_CANDIDATES that is present with unique values
    (for a Hub source `_id`, the Hub's stable id, wins over `id`, its repo name).

    Raises:
        SchemaViolation: no candidate (the columns are listed), or several (they are
            listed: choose one with --id-column).
    """
    cols = df.columns
    if stored is not None and stored in cols:
        return stored
    if ID in cols:
        return ID
    if source.startswith("hub:") and "_id" in cols and _is_unique_id(df["_id"]):
        return "_id"
    present = [c for c in ID_CANDIDATES if c in cols]
    unique = [c for c in present if _is_unique_id(df[c].cast(pl.String, strict=False))]
    if len(unique) == 1:
        return unique[0]
    if len(unique) > 1:
        raise SchemaViolation(
            f"several columns could be the id: {', '.join(unique)} (each present with "
            f"unique values); choose one with --id-column"
        )
    why = (
        f"; {', '.join(repr(c) for c in present)} "
        f"{'has' if len(present) == 1 else 'have'} missing or repeated values"
        if present
        else ""
    )
    stored_note = f" (the source's id column {stored!r} is not in the file)" if stored else ""
    raise SchemaViolation(
        f"no id column found{stored_note}: none of {', '.join(ID_CANDIDATES)} is present "
        f"with unique values{why}; columns are {', '.join(cols)} (choose one with --id-column)"
    )


def _ids(s: pl.Series, name: str) -> pl.Series:
    """Ids as text: text and integers only (a float or a bool id would be re-spelt)."""
    if s.dtype.is_integer() or s.dtype in (pl.String, pl.Null):
        return s.cast(pl.String)
    if isinstance(s.dtype, (pl.Categorical, pl.Enum)):
        return s.cast(pl.String)
    row = int(s.is_not_null().arg_true()[0]) if s.null_count() < s.len() else 0
    raise SchemaViolation(
        f"column {name!r}, row {row + 1}: ids are text or integers; {s[row]!r} is a "
        f"{type_name(s.dtype)}"
    )


def load_listing(
    path: str | Path,
    source: str,
    *,
    id_column: str | None,
    schema: pa.Schema | None,
    stored_id: str | None = None,
    declared: Mapping[str, pl.DataType] | None = None,
) -> Listing:
    """The file's rows as the source's logical columns; raises SchemaViolation on bad input.

    Args:
        schema: the source's logical schema (a custom source: the columns it has so far,
            or None before its first import).
        stored_id: a custom source's recorded id column (`Catalog.id_column`).
        declared: `--schema`: types for the file's columns; a column the source has keeps
            its stored type, so a declared one must equal it.
    """
    check_source(source)
    path = Path(path)
    custom = is_custom(source)
    df = _read(path)
    found = id_column is None
    id_col = id_column if id_column is not None else find_id_column(df, source, stored_id)
    if id_col not in df.columns:
        raise SchemaViolation(
            f"{path}: no id column {id_col!r}; columns are {', '.join(df.columns)} "
            "(choose one with --id-column)"
        )
    if id_col != ID:
        if ID in df.columns:
            raise SchemaViolation(f"{path}: has both {id_col!r} and {ID!r}; drop one")
        df = df.rename({id_col: ID})
    reserved = [c for c in df.columns if c in META_COLUMNS]
    if reserved:
        raise SchemaViolation(f"{path}: column {reserved[0]!r} is reserved by the store; rename it")
    ids = _ids(df[ID], id_col)
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
    df = df.with_columns(ids.alias(ID))
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
    types = _declared_types(declared or {}, df, known, source, id_col)
    cols = []
    for name in df.columns:
        s = df[name]
        if name in known:
            s = cast_exact(s, known[name], name if name != ID else id_col)
        elif name in types:
            s = cast_exact(s, types[name], name)
        else:
            s = cast_exact(s, infer_type(s, name), name)
        cols.append(s.alias(name))
    return Listing(pl.DataFrame(cols), id_col, found)


def _declared_types(
    declared: Mapping[str, pl.DataType],
    df: pl.DataFrame,
    known: Mapping[str, pl.DataType],
    source: str,
    id_col: str,
) -> dict[str, pl.DataType]:
    """`--schema`, checked: only a custom source's own columns, the id as text, and a
    column the source already has only with the type it has."""
    if not declared:
        return {}
    if not is_custom(source):
        raise SchemaViolation(
            f"--schema: {source}'s column types are fixed (hubtide asof {source} --columns "
            "lists them); --schema is for custom:NAME sources"
        )
    out: dict[str, pl.DataType] = {}
    for name, dtype in declared.items():
        col = ID if name == id_col else name
        if col not in df.columns:
            raise SchemaViolation(
                f"--schema names {name!r}, which the file does not have; columns are "
                f"{', '.join(id_col if c == ID else c for c in df.columns)}"
            )
        if col == ID and dtype != pl.String:
            raise SchemaViolation(f"--schema {name}:{type_name(dtype)}: ids are stored as text")
        if col in known and known[col] != dtype:
            raise SchemaViolation(
                f"--schema {name}:{type_name(dtype)}: {source} stores {name!r} as "
                f"{type_name(known[col])} since its first import; a stored column's type "
                "never changes (import into a new custom source to change it)"
            )
        out[col] = dtype
    return out


def import_file(
    store: Store,
    source: str,
    path: str | Path,
    *,
    at: datetime,
    id_column: str | None = None,
    schema: Mapping[str, pl.DataType] | None = None,
    batch_rows: int = 50_000,
    coverage: Coverage = "full",
    top_by: str | None = None,
    max_shrink: float = MAX_SHRINK,
    allow_shrink: bool = False,
) -> Imported:
    """Validate the whole file, then write it as one complete snapshot of `source`.

    Args:
        id_column: the file's id column (None: `find_id_column` picks the obvious one).
        schema: `--schema`: column types for a custom source's new columns.
        coverage: what the file lists (storage/catalog.py, Coverage): `full` (the
            default: an entity it does not name is gone), `top` (the top N by column
            `top_by`, N = its rows) or `subset` (a filtered listing); only `full` writes
            tombstones.

    Returns:
        What happened; `already` when this file (same bytes) was imported at `at` before.

    Raises:
        SchemaViolation: a value, id or column that does not fit (nothing written).
        SnapshotOrder: `at` is in the future or not after the source's newest snapshot.
        ShrinkRefused: a `full` file would tombstone more than `max_shrink` of the
            previous state (unless `allow_shrink`); the snapshot ends failed, so the same
            import may be re-run at the same instant.

    Example:
        >>> import_file(store, "custom:papers", "p-2026-01.csv", at=day).id_column
        'doi'
    """
    check_source(source)
    check_coverage(coverage, top_by, None)
    path = Path(path)
    at = (at if at.tzinfo else at.replace(tzinfo=UTC)).astimezone(UTC)
    digest = digest_of(path)
    existing = source in store.sources()
    stored_id = store.id_column(source) if existing else None
    done = store.imported(source, at, digest) if existing else None
    if done is not None:
        name = stored_id or id_column or ID
        return Imported(path, done, name, id_column is None, True, digest)
    schema_ = store.schema(source) if (existing or not is_custom(source)) else None
    listing = load_listing(
        path, source, id_column=id_column, schema=schema_, stored_id=stored_id, declared=schema
    )
    df = listing.frame
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
        id_column=(stored_id or listing.id_column) if is_custom(source) else None,
        digest=digest,
    )
    for seq, start in enumerate(range(0, max(df.height, 1), batch_rows)):
        w.write_batch(seq, df.slice(start, batch_rows))
    info = w.finish("complete")
    if info.status != "complete":
        raise ShrinkRefused(f"{path}: {info.message}")
    # the source's own id column needs no word; a column found among the candidates does
    found = listing.found and listing.id_column != stored_id
    return Imported(path, info, listing.id_column, found, False, digest)


def import_listing(
    store: Store, source: str, path: str | Path, *, at: datetime, **options: Any
) -> SnapshotInfo:
    """`import_file(...).info`: the snapshot written, or the one already holding the file
    (the options are `import_file`'s)."""
    return import_file(store, source, path, at=at, **options).info


# a date in a file's name: 2026-01-31, 2026_01_31, 20260131 or a month, 2026-01
_NAME_DAY = re.compile(r"(?<!\d)(\d{4})([-_]?)(\d{2})\2(\d{2})(?!\d)")
_NAME_MONTH = re.compile(r"(?<!\d)(\d{4})[-_](\d{2})(?![-_]?\d)")


def at_from_name(path: str | Path) -> datetime:
    """The instant a file's name gives (`--at-from-name`), by the store's date rule: a
    day (2026-01-31, 2026_01_31, 20260131) is the end of that UTC day; a month (2026-01)
    the end of its last day.

    Raises:
        ValueError: no date in the name, or several different ones.
    """
    name = Path(path).name
    found: set[date] = set()
    spans: list[tuple[int, int]] = []
    for m in _NAME_DAY.finditer(name):
        try:
            found.add(date(int(m[1]), int(m[3]), int(m[4])))
            spans.append(m.span())
        except ValueError:
            continue
    for m in _NAME_MONTH.finditer(name):
        if any(a <= m.start() < b for a, b in spans):
            continue
        year, month = int(m[1]), int(m[2])
        if 1 <= month <= 12:
            found.add(date(year, month, calendar.monthrange(year, month)[1]))
    if not found:
        raise ValueError(
            f"{name}: no date in the file name (--at-from-name reads 2026-01-31, 20260131 "
            "or a month, 2026-01); give --at, or a --manifest CSV of file,at"
        )
    if len(found) > 1:
        days = ", ".join(d.isoformat() for d in sorted(found))
        raise ValueError(f"{name}: several dates in the file name ({days}); use a --manifest")
    return datetime.combine(found.pop(), dtime.max, UTC)


def read_manifest(path: str | Path) -> list[tuple[Path, datetime]]:
    """`--manifest`: a CSV with columns `file,at` (a file relative to the manifest's
    folder; `at` by the date rule, `storage.parse_at`), one import per row.

    Raises:
        ValueError: a missing column, an empty manifest or an `at` that is no instant
            (naming the 1-based row).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    rows = pl.read_csv(path, infer_schema=False)
    missing = [c for c in ("file", "at") if c not in rows.columns]
    if missing:
        raise ValueError(
            f"{path}: the manifest needs the columns file,at; it has {', '.join(rows.columns)}"
        )
    if rows.is_empty():
        raise ValueError(f"{path}: the manifest lists no file")
    out = []
    for i, r in enumerate(rows.iter_rows(named=True), start=1):
        if not r["file"] or not r["at"]:
            raise ValueError(f"{path}, row {i}: empty file or at")
        at = parse_at(r["at"])
        if isinstance(at, int):
            raise ValueError(f"{path}, row {i}: at {r['at']!r} is an id; give a date or time")
        f = Path(r["file"])
        out.append((f if f.is_absolute() else path.parent / f, at))
    return out


def in_time_order(jobs: list[tuple[Path, datetime]]) -> list[tuple[Path, datetime]]:
    """The imports oldest first (a source's snapshots run forward in time).

    Raises:
        FileNotFoundError: a file that is not there (before anything is imported).
        ValueError: two files at the same instant.
    """
    missing = [str(p) for p, _ in jobs if not p.is_file()]
    if missing:
        raise FileNotFoundError(f"no such file: {', '.join(missing)} (nothing imported)")
    jobs = sorted(jobs, key=lambda j: j[1])
    for (a, t), (b, u) in itertools.pairwise(jobs):
        if t == u:
            raise ValueError(
                f"{a.name} and {b.name} are both at {t.isoformat()}: one snapshot each"
            )
    return jobs
