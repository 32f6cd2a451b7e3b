"""A store written by the pre-refactor code (commit 1a62338) opens, reads the same and
resumes its killed crawl under today's code, writing what the old code would have.

The old writer is not frozen as files: the test takes `storage/` of that commit from git
(`git archive`) and runs it as a separate process (tests/storage/old_store.py)."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import polars as pl
import pytest

from storage import Store
from tests.storage import old_store

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = str(Path(__file__).with_name("old_store.py"))
OLD_COMMIT = "1a62338"
TABLES = [
    "catalog/snapshots",
    "staging/batches",
    "hub/repos",
    "hub/repo_counters",
    "hub/commits",
    "derived/topk",
    "ops/crawl_events",
    "custom/papers",
]
CLOCK_COLUMNS = {"started_at", "finished_at", "at"}


def old_package(dest: Path) -> Path:
    """`storage/` as of OLD_COMMIT, extracted under dest (skips without git history)."""
    try:
        blob = subprocess.run(
            ["git", "-C", str(ROOT), "archive", OLD_COMMIT, "storage"],
            capture_output=True,
            check=True,
        ).stdout
    except (OSError, subprocess.CalledProcessError) as exc:
        pytest.skip(f"commit {OLD_COMMIT} not in this clone's history: {exc}")
    with tarfile.open(fileobj=io.BytesIO(blob)) as tar:
        tar.extractall(dest, filter="data")
    return dest


def run_old(pkg: Path, *args: str) -> str:
    env = {**os.environ, "PYTHONPATH": str(pkg)}
    done = subprocess.run(
        [sys.executable, SCRIPT, *args], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.startswith(f"storage: {pkg / 'storage'}"), done.stdout
    return done.stdout.splitlines()[-1]


def frames(folder: Path) -> dict[str, pl.DataFrame]:
    return {p.stem: pl.read_parquet(p) for p in sorted(folder.glob("*.parquet"))}


def table_rows(root: Path, rel: str) -> pl.DataFrame:
    """A table's rows in a comparable order, wall-clock columns left out."""
    df = pl.read_delta(str(root / rel))
    df = df.drop([c for c in df.columns if c in CLOCK_COLUMNS])
    if rel == "catalog/snapshots":
        df = df.drop("run_id")  # the resumed snapshot keeps its own; the rest are given
    flat = [c for c, t in df.schema.items() if not isinstance(t, (pl.List, pl.Binary))]
    return df.sort(flat, nulls_last=True)


def txns(root: Path, rel: str) -> set[tuple[str, int]]:
    """Every (app id, version) the table's log ever recorded."""
    out = set()
    for path in (root / rel / "_delta_log").glob("*.json"):
        for line in path.read_text().splitlines():
            action = json.loads(line)
            if "txn" in action:
                out.add((action["txn"]["appId"], action["txn"]["version"]))
    return out


def test_a_store_of_the_old_code_reads_the_same_and_resumes(tmp_path: Path) -> None:
    pkg = old_package(tmp_path / "old")
    a, b = tmp_path / "a", tmp_path / "b"
    run_old(pkg, "build", str(a))
    shutil.copytree(a, b)
    # reads: the old code and today's give the same frames from the old store
    run_old(pkg, "dump", str(a), str(tmp_path / "old-reads"))
    old_store.dump(str(a), str(tmp_path / "new-reads"))
    old_reads, new_reads = frames(tmp_path / "old-reads"), frames(tmp_path / "new-reads")
    assert sorted(new_reads) == sorted(old_reads)
    assert "asof3" in new_reads and new_reads["asof3"].height > 40
    for name, frame in old_reads.items():
        new = new_reads[name]
        if name == "snapshots":
            # issue 16: the catalog gained coverage columns; old rows read as full listings
            # and an import's id_column and digest (point 6): null for old rows
            added = ["coverage", "top_by", "top_n", "id_column", "digest"]
            assert new.select(added).unique().rows() == [("full", None, None, None, None)]
            new = new.drop(added)
        if "observed_at" in new.columns and "observed_at" not in frame.columns:
            # issue 16: rows may say when they were observed; the old store never did
            assert new["observed_at"].null_count() == new.height, name
            new = new.drop("observed_at")
        assert new.equals(frame), name
    # resume: the old code finishes copy b, today's code finishes a
    old_said = json.loads(run_old(pkg, "resume", str(b)))
    store = Store.open(str(a), keyframe_every=2)
    w = store.resume_snapshot("hub:model")
    assert w is not None
    assert {"seq": w.last_committed_seq, "checkpoint": w.checkpoint} == old_said
    assert old_said == {"seq": 1, "checkpoint": "k4-page2"}
    data = old_store.listing(4, old_store.ROWS)
    for seq in range(2, (len(data) + old_store.BATCH - 1) // old_store.BATCH):
        rows = data[seq * old_store.BATCH : (seq + 1) * old_store.BATCH]
        w.write_batch(seq, rows, checkpoint=f"k4-page{seq + 1}")
    info = w.finish("complete", requests=7, errors=4)
    assert info.status == "complete" and info.entities == len(data)
    store.wait_for_tidying()
    # the same rows and the same transaction ids in every table
    for rel in TABLES:
        rows_a = table_rows(a, rel)
        if rel == "catalog/snapshots":
            # today's rows add the coverage columns (delta-rs merged the schema): the
            # terminal row of the resumed snapshot says full, the old rows read null
            assert set(rows_a["coverage"].to_list()) == {None, "full"}
            # (and an import's id_column and digest: null for a crawl's resumed snapshot)
            assert rows_a.select("id_column", "digest").null_count().row(0) == (10, 10)
            rows_a = rows_a.drop("coverage", "top_by", "top_n", "id_column", "digest")
        assert rows_a.equals(table_rows(b, rel)), rel
        assert txns(a, rel) == txns(b, rel), rel
    got = store.as_of("hub:model", 4).collect().sort("entity_id")
    want = pl.DataFrame(data, schema_overrides={"tags": pl.List(pl.String)}).sort("entity_id")
    assert got.select(want.columns).equals(want)
