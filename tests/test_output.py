"""Output people can read: every default table fits 100 columns with one line per row,
integers print as integers, instants to the minute, `--columns` picks other columns, and
`--format csv|json` works everywhere including `status`. Run through the real entry point
over a real store."""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from hubtide import output
from tests.scheduler.conftest import build_store
from tests.storage.test_cli_store import hub

WIDTH = output.TABLE_WIDTH


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("output") / "store"
    build_store(path)
    return path


@pytest.fixture(autouse=True)
def width_100() -> Iterator[None]:
    old = output.console.width
    output.console.width = WIDTH
    yield
    output.console.width = old


def table(root: Path, *args: str) -> list[str]:
    res = hub(root, *args)
    assert res.returncode == 0, res.stderr
    return res.stdout.splitlines()


def json_rows(root: Path, *args: str) -> list[dict[str, object]]:
    res = hub(root, *args, "--format", "json")
    assert res.returncode == 0, res.stderr
    rows = json.loads(res.stdout)
    assert isinstance(rows, list)
    return rows


COMMANDS = [
    ("snapshots",),
    ("asof", "hub:model"),
    ("asof", "npm"),
    ("history", "hub:model", "m0003"),  # renamed, counters changing: was 26 squeezed columns
    ("top", "hub:model", "--k", "5"),
    ("turnover", "hub:model", "--k", "10"),
    ("measure", "concentration", "--source", "hub:model"),
]


@pytest.mark.parametrize("args", COMMANDS, ids=" ".join)
def test_a_default_table_fits_100_columns_one_line_per_row(
    root: Path, args: tuple[str, ...]
) -> None:
    lines = table(root, *args)
    assert max(len(line) for line in lines) <= WIDTH, "\n".join(lines)
    body = [line for line in lines if line.startswith("│")]
    assert len(body) == len(json_rows(root, *args)), "a row wraps:\n" + "\n".join(lines)
    header = [line for line in lines if line.startswith("┃")]
    assert len(header) == 1, "a header wraps:\n" + "\n".join(lines)
    text = "\n".join(lines)
    assert not re.search(r"\d\.\d+e[+-]\d+", text), text  # no 1.246e+05
    assert not re.search(r"\d{2}:\d{2}:\d{2}", text), text  # instants to the minute


def test_integers_print_as_integers_and_instants_compactly() -> None:
    assert output._cell(124600.0) == "124600"
    assert output._cell(124612.7) == "124613"
    assert output._cell(0.06533) == "0.06533"
    assert output._cell(datetime(2026, 1, 31, tzinfo=UTC)) == "2026-01-31"
    assert output._cell(datetime(2026, 1, 31, 6, 5, 59, tzinfo=UTC)) == "2026-01-31 06:05"


def test_history_shows_what_changed(root: Path) -> None:
    header = next(line for line in table(root, "history", "hub:model", "m0003") if "┃" in line)
    assert "name" in header and "downloads" in header
    assert "sha" not in header and "card_fields" not in header  # never changed here


@pytest.mark.parametrize(
    ("args", "column"),
    [
        (("asof", "hub:model", "--columns", "tags"), "tags"),
        (("snapshots", "--columns", "source,keyframe"), "keyframe"),
        (("history", "hub:model", "m0003", "--columns", "author"), "author"),
        (("measure", "concentration", "--source", "hub:model", "--columns", "gini"), "gini"),
    ],
)
def test_columns_picks_others(root: Path, args: tuple[str, ...], column: str) -> None:
    header = next(line for line in table(root, *args) if line.startswith("┃"))
    assert column in header


def test_json_and_csv_carry_every_column(root: Path) -> None:
    rows = json_rows(root, "asof", "hub:model")
    assert {"sha", "tags", "downloads_all_time"} <= set(rows[0])
    res = hub(root, "history", "hub:model", "m0003", "--format", "csv")
    assert "card_fields" in next(csv.reader(io.StringIO(res.stdout)))


def test_status_speaks_csv_and_json(root: Path) -> None:
    res = hub(root, "status", "--format", "csv")
    rows = list(csv.DictReader(io.StringIO(res.stdout)))
    assert {r["source"] for r in rows} >= {"hub:model", "npm"}, res.stdout + res.stderr
    res = hub(root, "status", "--format", "json")
    assert json.loads(res.stdout)["sources"]
