"""Issue 16, point 3: an import never changes a value, and a custom source's column types do
not depend on the format of its first file (docs/storage.md, "Column types of a custom
source"); `--schema` fixes them. Every case runs the real CLI on a real Delta store."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pyarrow as pa
import pytest

from storage import Store
from storage.types import parse_schema
from tests.storage.test_cli_store import hub


def _nothing_written(store: Path) -> None:
    if not store.exists():
        return  # refused before the store was even created
    res = hub(store, "snapshots", "--all", "-f", "json")
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout) == []


def _jsonl(path: Path, rows: list[dict[str, object]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


@pytest.mark.parametrize(
    ("rows", "needle"),
    [
        # a fraction into an integer column: 1.5 used to be stored as 1, 2.7 as 2
        (
            [{"_id": "a", "downloads": 3}, {"_id": "b", "downloads": 1.5}],
            "column 'downloads', row 2: 1.5 is not a whole number and the column is int64",
        ),
        (
            [{"_id": "a", "likes": 2.7}],
            "column 'likes', row 1: 2.7 is not a whole number",
        ),
        # a bool into a number: True used to be stored as 1
        (
            [{"_id": "a", "downloads": 4}, {"_id": "b", "downloads": True}],
            "column 'downloads', row 2: True is a bool and row 1 holds a number",
        ),
        (
            [{"_id": "a", "trending_score": False}],
            "column 'trending_score', row 1: False is a bool and the column is float64",
        ),
        # a timestamp string with nanoseconds would be truncated to microseconds
        (
            [
                {"_id": "a", "created_at": "2024-01-01T00:00:00Z"},
                {"_id": "b", "created_at": "2024-01-01T00:00:00.1234567Z"},
            ],
            "column 'created_at', row 2: '2024-01-01T00:00:00.1234567Z' would be truncated",
        ),
        # a float into a text column has no one text form
        (
            [{"_id": "a", "name": 1.25}],
            "column 'name', row 1: 1.25 is a float64 and the column is string",
        ),
        # a bool into a timestamp column
        ([{"_id": "a", "created_at": True}], "column 'created_at', row 1: True is a bool"),
    ],
)
def test_a_value_that_would_change_fails_naming_column_row_value(
    tmp_path: Path, rows: list[dict[str, object]], needle: str
) -> None:
    f = _jsonl(tmp_path / "bad.jsonl", rows)
    store = tmp_path / "store"
    res = hub(store, "import", "hub:model", str(f), "--at", "2026-01-01")
    assert res.returncode == 1
    assert needle in " ".join(res.stderr.split()), res.stderr
    assert "Traceback" not in res.stderr
    _nothing_written(store)


def test_csv_text_of_fractions_and_bools_fails_too(tmp_path: Path) -> None:
    """CSV cells are text: '2.7' into an integer column is a fraction, 'true' is no number;
    '3.0' is the whole number 3 and is kept as 3."""
    store = tmp_path / "store"
    bad = tmp_path / "bad.csv"
    bad.write_text("_id,downloads\na,3.0\nb,2.7\n")
    res = hub(store, "import", "hub:model", str(bad), "--at", "2026-01-01")
    assert res.returncode == 1
    assert "column 'downloads', row 2: 2.7 is not a whole number" in " ".join(res.stderr.split())
    bad.write_text("_id,downloads\na,true\n")
    res = hub(store, "import", "hub:model", str(bad), "--at", "2026-01-01")
    assert res.returncode == 1
    assert "column 'downloads', row 1: 'true' is not a valid int64" in res.stderr
    _nothing_written(store)
    good = tmp_path / "good.csv"
    good.write_text("_id,downloads\na,3.0\nb,7\n")
    res = hub(store, "import", "hub:model", str(good), "--at", "2026-01-01")
    assert res.returncode == 0, res.stderr
    out = json.loads(hub(store, "asof", "hub:model", "-c", "downloads", "-f", "json").stdout)
    assert out == [{"entity_id": "a", "downloads": 3}, {"entity_id": "b", "downloads": 7}]


def test_a_custom_int_column_refuses_a_later_fraction_and_bool(tmp_path: Path) -> None:
    store = tmp_path / "store"
    first = tmp_path / "p1.csv"
    first.write_text("doi,cites\n10/x,1\n10/y,2\n")
    res = hub(
        store, "import", "custom:papers", str(first), "--at", "2026-01-01", "--id-column", "doi"
    )
    assert res.returncode == 0, res.stderr
    for n, rows in enumerate(
        [
            [{"doi": "10/x", "cites": 1}, {"doi": "10/y", "cites": 2.5}],
            [{"doi": "10/x", "cites": True}, {"doi": "10/y", "cites": 2}],
        ]
    ):
        f = _jsonl(tmp_path / f"p{n + 2}.jsonl", rows)
        res = hub(store, "import", "custom:papers", str(f), "--at", f"2026-01-0{n + 2}")
        assert res.returncode == 1
        assert "column 'cites', row" in res.stderr
    snaps = json.loads(hub(store, "snapshots", "--all", "-f", "json").stdout)
    assert [s["snapshot_id"] for s in snaps] == [1]  # the refused files wrote nothing
    big = _jsonl(tmp_path / "big.jsonl", [{"doi": "10/x", "cites": 1, "score": 2**53 + 1}])
    res = hub(
        store,
        "import",
        "custom:papers",
        str(big),
        "--at",
        "2026-01-05",
        "--schema",
        "score:float64",
    )
    assert res.returncode == 1
    assert "column 'score', row 1: 9007199254740993 would lose digits as a float64" in res.stderr


# the same values in three formats: Parquet's floats and int32, JSON's numbers, CSV's text
VALUES = {
    "key": ["a", "b", "c"],
    "stars": [1, 2, None],  # whole numbers
    "score": [0.5, 2.0, 3.25],  # fractions
    "open": [True, False, None],
    "zip": ["007", "010", "123"],  # leading zeros: text
    "seen": ["2026-01-01T00:00:00Z", "2026-01-02T12:30:00Z", None],
    "day": ["2026-01-01", "2026-01-02", "2026-01-03"],
    "note": ["x", "y", "z"],
}


def _three_formats(tmp_path: Path) -> dict[str, Path]:
    base = pl.DataFrame(VALUES)
    csv = tmp_path / "same.csv"
    base.write_csv(csv)
    jsonl = tmp_path / "same.jsonl"
    base.write_ndjson(jsonl)
    parquet = tmp_path / "same.parquet"
    # what a pandas dump looks like: whole numbers as float64 (they had nulls), int32,
    # real timestamps and dates, a categorical
    base.with_columns(
        pl.col("stars").cast(pl.Float64),
        pl.col("seen").str.to_datetime(time_zone="UTC", time_unit="ns"),
        pl.col("day").str.to_date(),
        pl.col("note").cast(pl.Categorical),
    ).write_parquet(parquet)
    return {"csv": csv, "jsonl": jsonl, "parquet": parquet}


def test_column_types_do_not_depend_on_the_first_files_format(tmp_path: Path) -> None:
    store_dir = tmp_path / "store"
    files = _three_formats(tmp_path)
    for fmt, f in files.items():
        res = hub(
            store_dir, "import", f"custom:{fmt}", str(f), "--at", "2026-01-10", "--id-column", "key"
        )
        assert res.returncode == 0, res.stderr
    store = Store.open(str(store_dir))
    schemas = {fmt: store.schema(f"custom:{fmt}") for fmt in files}
    expected = pa.schema(
        [
            ("entity_id", pa.string()),
            ("stars", pa.int64()),
            ("score", pa.float64()),
            ("open", pa.bool_()),
            ("zip", pa.string()),
            ("seen", pa.timestamp("us", tz="UTC")),
            ("day", pa.date32()),
            ("note", pa.string()),
            ("observed_at", pa.timestamp("us", tz="UTC")),  # every source has it
        ]
    )
    for fmt, schema in schemas.items():
        assert schema.equals(expected), (fmt, schema)
    states = {fmt: store.as_of(f"custom:{fmt}").collect().sort("entity_id") for fmt in files}
    assert states["csv"].equals(states["jsonl"]) and states["csv"].equals(states["parquet"])
    assert states["csv"]["zip"].to_list() == ["007", "010", "123"]  # never 7, 10


def test_schema_fixes_types_on_the_first_import(tmp_path: Path) -> None:
    store_dir = tmp_path / "store"
    first = tmp_path / "m1.csv"
    first.write_text("project,downloads,zip\np1,10,12\np2,20,34\n")
    res = hub(
        store_dir,
        "import",
        "custom:pypi",
        str(first),
        "--at",
        "2026-01-01",
        "--schema",
        "downloads:float64,zip:string",
    )
    assert res.returncode == 0, res.stderr
    store = Store.open(str(store_dir))
    schema = store.schema("custom:pypi")
    assert schema.field("downloads").type == pa.float64()
    assert schema.field("zip").type == pa.string()
    # a fraction later on is fine in the float column
    second = tmp_path / "m2.csv"
    second.write_text("project,downloads,zip\np1,10.5,12\np2,20,34\n")
    assert (
        hub(store_dir, "import", "custom:pypi", str(second), "--at", "2026-01-02").returncode == 0
    )
    out = json.loads(hub(store_dir, "asof", "custom:pypi", "-f", "json").stdout)
    assert out[0] == {"project": "p1", "downloads": 10.5, "zip": "12", "observed_at": None}
    # a stored column's type never changes
    third = tmp_path / "m3.csv"
    third.write_text("project,downloads,zip\np1,11,12\np2,21,34\n")
    res = hub(
        store_dir,
        "import",
        "custom:pypi",
        str(third),
        "--at",
        "2026-01-03",
        "--schema",
        "downloads:int64",
    )
    assert res.returncode == 1
    assert "stores 'downloads' as float64 since its first import" in " ".join(res.stderr.split())


@pytest.mark.parametrize(
    ("source", "schema", "needle"),
    [
        ("custom:x", "n:decimal", "type 'decimal' unknown"),
        ("custom:x", "n", "expected COLUMN:TYPE"),
        ("custom:x", "nope:int64", "--schema names 'nope', which the file does not have"),
        ("custom:x", "id:int64", "ids are stored as text"),
        ("hub:model", "downloads:float64", "hub:model's column types are fixed"),
    ],
)
def test_bad_schema_is_refused(tmp_path: Path, source: str, schema: str, needle: str) -> None:
    f = tmp_path / "f.csv"
    f.write_text("id,n\na,1\n" if source.startswith("custom") else "_id,downloads\na,1\n")
    store = tmp_path / "store"
    res = hub(store, "import", source, str(f), "--at", "2026-01-01", "--schema", schema)
    assert res.returncode == 1
    assert needle in " ".join(res.stderr.split()), res.stderr
    _nothing_written(store)


def test_parse_schema_aliases() -> None:
    got = parse_schema("a:int, b:FLOAT ,c:text,d:list,e:timestamp")
    assert got == {
        "a": pl.Int64(),
        "b": pl.Float64(),
        "c": pl.String(),
        "d": pl.List(pl.String()),
        "e": pl.Datetime("us", "UTC"),
    }


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        (["1", "-20", None], pl.Int64()),
        (["1.0", "2"], pl.Int64()),  # whole numbers, however spelt
        (["1.5", "2"], pl.Float64()),
        (["007", "12"], pl.String()),  # leading zeros are not a number's
        (["+5"], pl.String()),
        (["TRUE", "false"], pl.Boolean()),
        (["2026-01-31"], pl.Date()),
        (["2026-13-45"], pl.String()),  # looks like a date, is none
        (["2026-01-01T00:00:00Z", "2026-01-02 10:00"], pl.Datetime("us", "UTC")),
        (["2026-01-01T00:00:00.1234567Z"], pl.String()),  # finer than µs: the text is exact
        (["99999999999999999999"], pl.String()),  # past int64: kept as its digits
        ([None, None], pl.String()),
    ],
)
def test_text_is_typed_by_its_values(values: list[str | None], expected: pl.DataType) -> None:
    from storage.types import infer_type

    assert infer_type(pl.Series(values, dtype=pl.String), "c") == expected
