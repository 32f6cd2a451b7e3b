"""Every expected error of the read commands is one line on stderr and exit code 1, without
`--debug`: bad columns, sorts by text, repeated columns, bad dates, unknown sources."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.scheduler.conftest import build_store
from tests.storage.test_cli_store import hub

BAD = [
    ("top", "npm", "--by", "name"),  # not a number: was a Polars traceback
    ("top", "hub:model", "--by", "tags"),
    ("asof", "npm", "--columns", "name,name"),  # repeated: was a Polars traceback
    ("asof", "npm", "--columns", "nope"),
    ("asof", "npm", "--at", "tomorrow"),
    ("asof", "npm", "--at", "1999-01-01"),
    ("asof", "npm", "--out", "x.txt"),
    ("top", "nope"),
    ("turnover", "npm", "--by", "name"),
    ("snapshots", "--source", "nope"),
]


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("cli-errors") / "store"
    build_store(path)
    return path


@pytest.mark.parametrize("args", BAD, ids=" ".join)
def test_an_expected_error_is_one_line_and_exit_1(root: Path, args: tuple[str, ...]) -> None:
    res = hub(root, *args)
    lines = res.stderr.strip().splitlines()
    assert res.returncode == 1, res.stderr
    assert len(lines) == 1 and lines[0].startswith("error: "), res.stderr
    assert "Traceback" not in res.stderr and "polars" not in res.stderr.lower()
