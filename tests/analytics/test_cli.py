"""The analytics commands end to end: `hubtide turnover`, `measure`, `report`.

One real subprocess; the rest run in-process through the real entry point (`main`), which
turns errors into one line and an exit code exactly as the installed command does.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from tests.analytics.test_turnover import _world


@dataclass
class Result:
    returncode: int
    stdout: str
    stderr: str


def subprocess_run(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "160"}
    return subprocess.run(
        [sys.executable, "-m", "hubtide", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )


def run(*args: str) -> Result:
    from hubtide.cli import main

    out, err = io.StringIO(), io.StringIO()
    code = 0
    old = sys.argv
    sys.argv = ["hubtide", *args]
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            main()
    except SystemExit as exc:
        code = int(exc.code or 0)
    finally:
        sys.argv = old
    return Result(code, out.getvalue(), err.getvalue())


def test_turnover_measure_and_report_commands(tmp_path: Path) -> None:
    _world(tmp_path)
    store = str(tmp_path / "store")
    res = subprocess_run("--store", store, "turnover", "hub:model", "--k", "3", "--format", "json")
    assert res.returncode == 0, res.stderr
    rows = json.loads(res.stdout)
    assert [r["newcomers"] for r in rows] == [2, 0, 2]
    assert set(rows[0]) == {
        "snapshot_id",
        "as_of",
        "remained",
        "newcomers",
        "returning",
        "left",
        "distinct_ever",
    }

    res = run(
        "--store",
        store,
        "turnover",
        "hub:model",
        "--k",
        "3",
        "--renames-as-churn",
        "--format",
        "csv",
    )
    assert res.returncode == 0, res.stderr
    last = list(csv.DictReader(io.StringIO(res.stdout)))[-1]
    assert (last["newcomers"], last["distinct_ever"]) == ("3", "8")

    res = run("--store", store, "measure", "--list")
    assert res.returncode == 0 and "turnover" in res.stdout and "concentration" in res.stdout

    res = run("--store", store, "measure", "growth", "--source", "hub:model", "--format", "json")
    assert res.returncode == 0, res.stderr
    assert [r["entities"] for r in json.loads(res.stdout)] == [5, 5, 5, 7]

    res = run("--store", store, "measure", "nope")
    assert (
        res.returncode == 1 and "unknown measure 'nope'" in res.stderr and "turnover" in res.stderr
    )

    res = run("--store", store, "turnover", "npm")
    assert res.returncode == 1 and "unknown source 'npm'" in res.stderr

    out = tmp_path / "rep"
    res = run("--store", store, "report", "--out", str(out))
    assert res.returncode == 0, res.stderr
    page = (out / "index.html").read_text()
    assert page.count("plotly.js v") == 1 and "<script src=" not in page
    assert (out / "tables" / "turnover__hub-model.parquet").exists()
    assert (out / "tables" / "turnover__hub-model.csv").exists()
