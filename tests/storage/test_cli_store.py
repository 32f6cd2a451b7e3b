"""The store's CLI commands, run as a user would (a subprocess per command)."""

from __future__ import annotations

import contextlib
import io
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import polars as pl
import pytest

from storage import Store


@dataclass
class Result:
    returncode: int
    stdout: str
    stderr: str


def hub(store: Path, *args: str) -> Result:
    """Run `hubtide --store STORE ARGS` in-process through the real entry point."""
    from hubtide.cli import main

    out, err = io.StringIO(), io.StringIO()
    argv = ["hubtide", "--store", str(store), *args]
    code = 0
    old = sys.argv
    sys.argv = argv
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            main()
    except SystemExit as exc:
        code = int(exc.code or 0)
    finally:
        sys.argv = old
    return Result(code, out.getvalue(), err.getvalue())


def test_one_real_subprocess(tmp_path: Path) -> None:
    Store.open(str(tmp_path))  # an empty store (a path with none is refused: test_cli_messages)
    env = {**os.environ, "COLUMNS": "200"}
    res = subprocess.run(
        [sys.executable, "-m", "hubtide", "--store", str(tmp_path), "asof", "hub:model"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert res.returncode == 1
    assert "unknown source 'hub:model'; sources in the store: none yet" in res.stderr


@pytest.fixture(scope="module")
def filled(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("cli")
    store = root / "store"
    day1 = root / "models-1.csv"
    day1.write_text(
        "_id,name,downloads,tags,created_at\n"
        "a1,org/one,10,nlp;en,2024-01-01T00:00:00Z\n"
        "a2,org/two,30,,2024-02-01T00:00:00Z\n"
    )
    day2 = root / "models-2.jsonl"
    day2.write_text(
        json.dumps({"_id": "a1", "name": "org/one-renamed", "downloads": 12})
        + "\n"
        + json.dumps({"_id": "a3", "name": "org/three", "downloads": 5})
        + "\n"
    )
    for f, at in ((day1, "2026-01-01T00:00:00Z"), (day2, "2026-01-02T00:00:00Z")):
        # day 2 drops a2 (one of two: past the shrink guard's 10%), as a full listing may
        res = hub(
            store,
            "import",
            "hub:model",
            str(f),
            "--at",
            at,
            "--id-column",
            "_id",
            "--allow-shrink",
        )
        assert res.returncode == 0, res.stderr
    return store


def test_snapshots_json(filled: Path) -> None:
    res = hub(filled, "snapshots", "--format", "json")
    assert res.returncode == 0, res.stderr
    rows = json.loads(res.stdout)
    assert [(r["snapshot_id"], r["entities"], r["tombstones"]) for r in rows] == [
        (1, 2, 0),
        (2, 2, 1),
    ]


def test_asof_by_date_columns_csv(filled: Path) -> None:
    res = hub(
        filled, "asof", "hub:model", "--at", "2026-01-01", "--columns", "name,tags", "-f", "csv"
    )
    assert res.returncode == 0, res.stderr
    assert res.stdout.splitlines() == [
        "entity_id,name,tags",
        "a1,org/one,nlp;en",
        "a2,org/two,",
    ]


def test_asof_out_parquet(filled: Path, tmp_path: Path) -> None:
    out = tmp_path / "state.parquet"
    res = hub(filled, "asof", "hub:model", "--at", "2", "--out", str(out))
    assert res.returncode == 0, res.stderr
    df = pl.read_parquet(out)
    assert df.select("entity_id", "name").rows() == [("a1", "org/one-renamed"), ("a3", "org/three")]


def test_history_and_top(filled: Path) -> None:
    res = hub(filled, "history", "hub:model", "a2", "-f", "json")
    assert [r["op"] for r in json.loads(res.stdout)] == ["upsert", "delete"]
    res = hub(
        filled, "top", "hub:model", "--by", "downloads", "--k", "1", "--at", "1", "-f", "json"
    )
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout) == [
        {"rank": 1, "entity_id": "a2", "name": "org/two", "value": 30.0}
    ]


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (("asof", "hub:space"), "sources in the store: hub:model"),
        (("asof", "hub:model", "--at", "9"), "complete snapshots: 1-2"),
        (("asof", "hub:model", "--columns", "nope"), "columns are entity_id, name, author"),
        (("top", "hub:model", "--by", "stars"), "column 'stars' not in 'hub:model'"),
        (("history", "npm", "x"), "sources in the store: hub:model"),
        (("asof", "hub:model", "--at", "2025-12-01"), "first is at 2026-01-01"),
    ],
)
def test_unknown_things_list_what_exists(filled: Path, args: tuple[str, ...], needle: str) -> None:
    res = hub(filled, *args)
    assert res.returncode == 1
    assert needle in " ".join(res.stderr.split()), res.stderr


def test_bad_format_is_usage_error(filled: Path) -> None:
    res = hub(filled, "snapshots", "--format", "xml")
    assert res.returncode == 2
    assert "xml" in res.stderr


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ("_id,downloads\na,1\nb,lots\n", "column 'downloads', row 2: 'lots' is not a valid"),
        ("_id,downloads\na,1\na,2\n", "column '_id', row 2: duplicate id 'a' (first at row 1)"),
        ("_id,downloads\na,1\n,2\n", "column '_id', row 2: missing id"),
        ("_id,stars\na,1\n", "column 'stars' is not a column of hub:model"),
        ("name,downloads\na,1\n", "no id column '_id'; columns are name, downloads"),
    ],
)
def test_import_errors_name_column_and_row(tmp_path: Path, body: str, needle: str) -> None:
    f = tmp_path / "bad.csv"
    f.write_text(body)
    store = tmp_path / "store"
    res = hub(store, "import", "hub:model", str(f), "--at", "2026-01-01", "--id-column", "_id")
    assert res.returncode == 1
    assert needle in " ".join(res.stderr.split()), res.stderr
    # nothing written
    res = hub(store, "snapshots", "--all", "-f", "json")
    assert json.loads(res.stdout) == []


def test_import_custom_source_then_gain_column(tmp_path: Path) -> None:
    store = tmp_path / "store"
    a = tmp_path / "a.parquet"
    pl.DataFrame({"doi": ["10/x", "10/y"], "cites": [1, 2]}).write_parquet(a)
    b = tmp_path / "b.parquet"
    pl.DataFrame({"doi": ["10/x"], "cites": [3], "venue": ["ACL"]}).write_parquet(b)
    for f, at in ((a, "2026-01-01"), (b, "2026-01-02")):
        res = hub(
            store,
            "import",
            "custom:papers",
            str(f),
            "--at",
            at,
            "--id-column",
            "doi",
            "--allow-shrink",  # b drops 10/y: one of two, past the shrink guard's 10%
        )
        assert res.returncode == 0, res.stderr
    res = hub(store, "asof", "custom:papers", "--at", "1", "-f", "json")
    # the output keeps the user's id column name (issue 16, point 6), and every source's
    # rows may say when they were observed: null, these files did not
    assert json.loads(res.stdout) == [
        {"doi": "10/x", "cites": 1, "venue": None, "observed_at": None},
        {"doi": "10/y", "cites": 2, "venue": None, "observed_at": None},
    ]
    bad = tmp_path / "c.csv"
    bad.write_text("doi,cites\n10/z,many\n")
    res = hub(
        store, "import", "custom:papers", str(bad), "--at", "2026-01-03", "--id-column", "doi"
    )
    assert res.returncode == 1
    assert "column 'cites', row 1" in res.stderr


def test_maintain_keeps_reads(filled: Path) -> None:
    before = hub(filled, "asof", "hub:model", "--at", "1", "-f", "json").stdout
    res = hub(filled, "maintain", "--retention-hours", "1", "-f", "json")
    assert res.returncode == 0, res.stderr
    tables = {r["table"] for r in json.loads(res.stdout)}
    assert {"catalog/snapshots", "hub/repos"} <= tables
    assert hub(filled, "asof", "hub:model", "--at", "1", "-f", "json").stdout == before


def test_maintain_refuses_retention_below_floor(filled: Path) -> None:
    """`--retention-hours 0` is refused with the floor named, never raised to 1 h silently."""
    res = hub(filled, "maintain", "--retention-hours", "0")
    assert res.returncode == 1
    assert "below the floor of 1 h" in res.stderr
    assert "Traceback" not in res.stderr
    assert "retention 1 h" not in res.stdout  # no table titled with hours it never used


def test_config_retention_below_the_floor_is_refused() -> None:
    """The daemon's maintenance reads `store.vacuum_retention_hours`: below the floor the
    config is refused (naming the key), so no job floors it silently either."""
    from hubtide.config import ConfigError, load_settings
    from storage.maintenance import MIN_RETENTION_HOURS

    env = {"HUBTIDE_STORE_VACUUM_RETENTION_HOURS": str(MIN_RETENTION_HOURS - 1)}
    with pytest.raises(ConfigError, match="VACUUM_RETENTION_HOURS: must be at least 1"):
        load_settings(env=env)
    floor = {"HUBTIDE_STORE_VACUUM_RETENTION_HOURS": str(MIN_RETENTION_HOURS)}
    assert load_settings(env=floor).store.vacuum_retention_hours == MIN_RETENTION_HOURS
