"""Exact column types for imports: no value is ever changed on its way into the store.

Two jobs, both pure functions over Polars series:

* `cast_exact(s, dtype, name)`: `s` as `dtype`, or `SchemaViolation` naming the column,
  the 1-based data row and the value when the cast would change any value (a fraction
  into an integer column, a bool into a number, a timestamp string with more than
  microsecond precision, an integer past 2**53 into a float, a text that does not parse);
* `infer_type(s, name)`: the type a custom source's new column gets, decided by its
  values and never by the file format (docs/storage.md, "Column types of a custom
  source"), so a CSV, a JSONL and a Parquet file of the same values give the same schema.

`parse_schema("col:type,...")` reads `hubtide import --schema`.
"""

from __future__ import annotations

import polars as pl

from storage.errors import SchemaViolation

TS_TYPE = pl.Datetime("us", "UTC")
# what `--schema` accepts: name -> type (aliases included)
SCHEMA_TYPES: dict[str, pl.DataType] = {
    "int64": pl.Int64(),
    "int": pl.Int64(),
    "integer": pl.Int64(),
    "float64": pl.Float64(),
    "float": pl.Float64(),
    "double": pl.Float64(),
    "string": pl.String(),
    "str": pl.String(),
    "text": pl.String(),
    "bool": pl.Boolean(),
    "boolean": pl.Boolean(),
    "timestamp": TS_TYPE,
    "datetime": TS_TYPE,
    "date": pl.Date(),
    "list": pl.List(pl.String()),
    "list<string>": pl.List(pl.String()),
}
# the first name of each type in SCHEMA_TYPES is the one messages use
_TYPE_NAMES = {
    "Int64": "int64",
    "Float64": "float64",
    "String": "string",
    "Boolean": "bool",
    "Date": "date",
}
# integers a float64 holds exactly
_FLOAT_EXACT = 2**53
_INT_TEXT = r"^-?(0|[1-9][0-9]*)$"
_NUMBER_TEXT = r"^-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][-+]?[0-9]+)?$"
_DATE_TEXT = r"^\d{4}-\d{2}-\d{2}$"
_TS_TEXT = r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?$"
_TRUTH = {"true": True, "false": False}
# a Boolean column also reads these texts (the CLI's CSV files write 1/0, yes/no)
_BOOL_TEXT = {**_TRUTH, "1": True, "0": False, "yes": True, "no": False}


def _inner(dtype: pl.List) -> pl.DataType:
    inner = dtype.inner
    return inner() if isinstance(inner, type) else inner


def type_name(dtype: pl.DataType) -> str:
    """`int64`, `float64`, `string`, `bool`, `timestamp`, `date`, `list<string>`, ..."""
    if isinstance(dtype, pl.Datetime):
        return "timestamp"
    if isinstance(dtype, pl.List):
        return f"list<{type_name(_inner(dtype))}>"
    return _TYPE_NAMES.get(type(dtype).__name__, str(dtype).lower())


def parse_schema(text: str) -> dict[str, pl.DataType]:
    """`--schema cites:int64,score:float,tags:list`: column -> type.

    Raises:
        ValueError: an entry that is not `col:type`, a type not in SCHEMA_TYPES, or a
            column named twice.
    """
    out: dict[str, pl.DataType] = {}
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        name, sep, typ = part.rpartition(":")
        name, typ = name.strip(), typ.strip().lower()
        if not sep or not name:
            raise ValueError(f"--schema {part!r}: expected COLUMN:TYPE (e.g. cites:int64)")
        if typ not in SCHEMA_TYPES:
            raise ValueError(
                f"--schema {part!r}: type {typ!r} unknown; use "
                "int64, float64, string, bool, timestamp, date or list"
            )
        if name in out:
            raise ValueError(f"--schema names column {name!r} twice")
        out[name] = SCHEMA_TYPES[typ]
    if not out:
        raise ValueError("--schema is empty; expected COLUMN:TYPE,... (e.g. cites:int64)")
    return out


def _fail(name: str, s: pl.Series, bad: pl.Series, why: str) -> SchemaViolation:
    """The error for the first row flagged in `bad` (a boolean series)."""
    row = int(bad.fill_null(False).arg_true()[0])
    return SchemaViolation(f"column {name!r}, row {row + 1}: {s[row]!r} {why}")


def _check_lossless(name: str, s: pl.Series, out: pl.Series, dtype: pl.DataType) -> pl.Series:
    bad = s.is_not_null() & out.is_null()
    if bad.any():
        raise _fail(name, s, bad, f"is not a valid {type_name(dtype)}")
    return out


def _ts_from_text(s: pl.Series, name: str) -> pl.Series:
    """ISO 8601 text as UTC microseconds; naive means UTC; finer than µs is refused."""
    finer = s.str.extract(r"[T ]\d{2}:\d{2}:\d{2}\.\d{6}(\d+)", 1)
    lost = finer.is_not_null() & finer.str.contains("[1-9]")
    if lost.any():
        raise _fail(name, s, lost, "would be truncated: timestamps keep microseconds")
    out = s.str.to_datetime(time_zone="UTC", strict=False, time_unit="us")
    missed = s.is_not_null() & out.is_null()
    if missed.any():
        # the format polars inferred from the first value does not fit every row: each
        # of those on its own (ISO 8601 with or without a zone, or a bare date)
        from datetime import UTC, datetime

        def one(text: str) -> datetime | None:
            try:
                v = datetime.fromisoformat(text)
            except ValueError:
                return None
            return v.replace(tzinfo=UTC) if v.tzinfo is None else v.astimezone(UTC)

        fixed = pl.Series(
            [one(t) if m else None for t, m in zip(s.to_list(), missed.to_list(), strict=True)],
            dtype=TS_TYPE,
        )
        out = pl.select(pl.when(missed.alias("m")).then(fixed).otherwise(out)).to_series()
    return _check_lossless(name, s, out, TS_TYPE)


def _int_from_float(s: pl.Series, name: str, dtype: pl.DataType) -> pl.Series:
    frac = s.is_not_null() & ~(s.is_finite() & (s == s.floor())).fill_null(False)
    if frac.any():
        raise _fail(
            name,
            s,
            frac,
            f"is not a whole number and the column is {type_name(dtype)}: an import never "
            "rounds (a column that holds fractions is float64: --schema on its first import)",
        )
    return _check_lossless(name, s, s.cast(dtype, strict=False), dtype)


def _float_from_int(s: pl.Series, name: str) -> pl.Series:
    as_float = s.cast(pl.Float64)
    back = as_float.cast(pl.Int64, strict=False)
    big = s.is_not_null() & (back.is_null() | (back != s.cast(pl.Int64, strict=False)))
    if big.any():
        raise _fail(name, s, big, "would lose digits as a float64 (exact to 2**53 only)")
    return s.cast(pl.Float64)


def cast_exact(s: pl.Series, dtype: pl.DataType, name: str) -> pl.Series:
    """`s` as `dtype` with every value unchanged.

    Raises:
        SchemaViolation: the first row whose value does not fit, naming column, 1-based
            row and value, and why (not a valid X, a fraction, a bool, truncation).
    """
    src = s.dtype
    if src == dtype:
        return s
    if src == pl.Null:
        return s.cast(dtype)
    if isinstance(src, (pl.Categorical, pl.Enum)):
        return cast_exact(s.cast(pl.String), dtype, name)
    if isinstance(dtype, pl.List):
        if src == pl.String:
            return cast_exact(s.str.split(";"), dtype, name)
        if isinstance(src, pl.List):
            cast_exact(s.explode(), _inner(dtype), name)  # each element fits, or the error
            return s.cast(dtype)
        raise _fail(name, s, s.is_not_null(), f"is a {type_name(src)}, not a list")
    if src == pl.Boolean and dtype != pl.String:
        # True is not 1: a bool never becomes a number, a date or a text of digits
        raise _fail(name, s, s.is_not_null(), f"is a bool and the column is {type_name(dtype)}")
    if dtype == pl.Boolean:
        if src == pl.String:
            out = s.str.to_lowercase().replace_strict(
                _BOOL_TEXT, default=None, return_dtype=pl.Boolean
            )
            return _check_lossless(name, s, out, dtype)
        raise _fail(name, s, s.is_not_null(), f"is a {type_name(src)} and the column is bool")
    if isinstance(dtype, pl.Datetime):
        if src == pl.String:
            return cast_exact(_ts_from_text(s, name), dtype, name)
        if isinstance(src, pl.Datetime):
            zoned = s.dt.replace_time_zone("UTC") if src.time_zone is None else s
            if src.time_unit == "ns":
                lost = s.is_not_null() & (s.dt.nanosecond() % 1000 != 0)
                if lost.any():
                    raise _fail(name, s, lost, "would be truncated: timestamps keep microseconds")
            return zoned.dt.convert_time_zone(dtype.time_zone or "UTC").dt.cast_time_unit(
                dtype.time_unit or "us"
            )
        if src == pl.Date:
            return s.cast(pl.Datetime("us")).dt.replace_time_zone(dtype.time_zone or "UTC")
        raise _fail(name, s, s.is_not_null(), f"is a {type_name(src)}, not a timestamp")
    if dtype == pl.Date:
        if src == pl.String:
            return _check_lossless(name, s, s.str.to_date("%Y-%m-%d", strict=False), dtype)
        raise _fail(name, s, s.is_not_null(), f"is a {type_name(src)}, not a date")
    if dtype.is_integer():
        if src.is_integer():
            return _check_lossless(name, s, s.cast(dtype, strict=False), dtype)
        if src.is_float():
            return _int_from_float(s, name, dtype)
        if src == pl.String:
            out = s.str.strip_chars().cast(dtype, strict=False)
            # "3.0" in an integer column is 3; "2.7" is refused as a fraction
            as_float = s.str.strip_chars().cast(pl.Float64, strict=False)
            nums = s.is_not_null() & out.is_null() & as_float.is_not_null()
            if nums.any():
                whole = _int_from_float(
                    pl.select(pl.when(nums).then(as_float)).to_series(), name, dtype
                )
                out = pl.select(pl.when(nums).then(whole).otherwise(out)).to_series()
            return _check_lossless(name, s, out, dtype)
    if dtype.is_float():
        if src.is_integer():
            return _float_from_int(s, name).cast(dtype)
        if src.is_float():
            return s.cast(dtype)
        if src == pl.String:
            return _check_lossless(name, s, s.str.strip_chars().cast(dtype, strict=False), dtype)
    if dtype == pl.String:
        if src.is_integer() or src == pl.Boolean:
            return s.cast(pl.String)  # 12 is "12", True is "true": nothing lost
        raise _fail(
            name,
            s,
            s.is_not_null(),
            f"is a {type_name(src)} and the column is string (its text form is not unique)",
        )
    raise _fail(
        name, s, s.is_not_null(), f"is a {type_name(src)} and the column is {type_name(dtype)}"
    )


def _text_type(s: pl.Series) -> pl.DataType:
    """The type text values stand for: all canonical integers, numbers, true/false, ISO
    dates or timestamps; anything else (leading zeros, `+5`, mixed) stays text."""
    vals = s.drop_nulls()
    if vals.is_empty():
        return pl.String()
    if vals.str.contains(_INT_TEXT).all():
        if vals.cast(pl.Int64, strict=False).is_not_null().all():
            return pl.Int64()
        return pl.String()  # past int64: kept as the digits it is
    if vals.str.contains(_NUMBER_TEXT).all():
        return _float_type(vals.cast(pl.Float64))
    if vals.str.to_lowercase().is_in(list(_TRUTH)).all():
        return pl.Boolean()
    if vals.str.contains(_DATE_TEXT).all():
        # 2026-13-45 looks like a date and is none: such a column stays text
        ok = vals.str.to_date("%Y-%m-%d", strict=False).is_not_null().all()
        return pl.Date() if ok else pl.String()
    if vals.str.contains(_TS_TEXT).all():
        try:
            _ts_from_text(vals, "")
        except SchemaViolation:
            return pl.String()  # no valid instant, or finer than µs: the text is exact
        return TS_TYPE
    return pl.String()


def _float_type(vals: pl.Series) -> pl.DataType:
    """Whole numbers (within 2**53) are int64 whichever format wrote them as floats."""
    vals = vals.drop_nulls()
    if vals.is_empty():
        return pl.Float64()
    finite = vals.is_finite().all()
    if finite and (vals == vals.floor()).all() and vals.abs().max() <= _FLOAT_EXACT:  # type: ignore[operator]
        return pl.Int64()
    return pl.Float64()


def infer_type(s: pl.Series, name: str) -> pl.DataType:
    """The stored type of a new custom column, from its values (docs/storage.md).

    Raises:
        SchemaViolation: a type the store does not keep (nested objects, binary, ...).
    """
    src = s.dtype
    if src == pl.Null:
        return pl.String()
    if src == pl.String or isinstance(src, (pl.Categorical, pl.Enum)):
        return _text_type(s.cast(pl.String))
    if src == pl.Boolean:
        return pl.Boolean()
    if src.is_integer():
        return pl.Int64()
    if src.is_float():
        return _float_type(s)
    if isinstance(src, pl.Datetime):
        return TS_TYPE
    if src == pl.Date:
        return pl.Date()
    if isinstance(src, pl.List):
        inner = s.explode()
        return pl.List(infer_type(inner, name) if inner.len() else pl.String())
    raise SchemaViolation(
        f"column {name!r}: type {src} is not kept by the store (it keeps int64, float64, "
        "string, bool, timestamp, date and lists); flatten it first"
    )


__all__ = ["SCHEMA_TYPES", "TS_TYPE", "cast_exact", "infer_type", "parse_schema", "type_name"]
