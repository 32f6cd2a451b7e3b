"""Each reader on generated files of exactly its archive's shapes and eras."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import polars as pl

from backfill import ARCHIVES, breaks_frame, daily_deltas, run_backfill
from backfill.readers import parse_top_download, read_ecosystems
from backfill.run import archive_columns
from storage import Store


def commit(repo: Path, rel: str, data: bytes, when: str) -> None:
    """Commit `data` as `rel` in `repo` at commit time `when` (git's own history)."""
    (repo / rel).parent.mkdir(parents=True, exist_ok=True)
    (repo / rel).write_bytes(data)
    env = {
        **os.environ,
        "GIT_COMMITTER_DATE": when,
        "GIT_AUTHOR_DATE": when,
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@t",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@t",
    }
    subprocess.run(["git", "-C", str(repo), "add", rel], check=True, env=env)
    subprocess.run(["git", "-C", str(repo), "commit", "-qm", when], check=True, env=env)


def git_repo(path: Path) -> Path:
    path.mkdir()
    subprocess.run(["git", "init", "-q", str(path)], check=True)
    return path


def test_top_pypi_three_formats_from_git_history(tmp_path: Path) -> None:
    repo = git_repo(tmp_path / "top-pypi-packages")
    f = "top-pypi-packages-30-days.json"
    bare = [
        {"download_count": 900, "project": "urllib3"},
        {"download_count": 800, "project": "six"},
    ]
    commit(repo, f, json.dumps(bare).encode(), "2018-02-05T10:00:00Z")
    bq = {
        "last_update": "2018-03-01 08:00:00",
        "query": {"bytes_billed": 1},
        "rows": [
            {"download_count": 1000, "project": "six"},
            {"download_count": 950, "project": "urllib3"},
            {"download_count": 10, "project": "requests"},
        ],
    }
    commit(repo, f, json.dumps(bq).encode(), "2018-03-02T10:00:00Z")
    ch = {
        "last_update": "2025-07-01 03:00:00",
        "source": "ClickHouse",
        "meta": [],
        "rows": [{"download_count": 5000, "project": "boto3"}],
        "total_rows": 1,
        "rows_before_limit_at_least": 1,
        "statistics": {},
    }
    commit(repo, f, json.dumps(ch).encode(), "2025-07-02T10:00:00Z")
    store = Store.open(str(tmp_path / "store"))
    res = run_backfill(store, "top-pypi", repo)
    assert [o.status for o in res.outcomes] == ["imported"] * 3
    snaps = store.snapshots("pypi")
    assert snaps["as_of"].to_list() == [
        datetime(2018, 2, 5, 10, tzinfo=UTC),  # bare list: commit time
        datetime(2018, 3, 1, 8, tzinfo=UTC),  # last_update, not the commit time
        datetime(2025, 7, 1, 3, tzinfo=UTC),
    ]
    assert snaps["coverage"].to_list() == ["top"] * 3
    # leaving a top list is not a deletion
    assert snaps["tombstones"].to_list() == [0, 0, 0]
    assert store.as_of("pypi", 2, columns=["downloads"]).collect().sort("entity_id")[
        "downloads"
    ].to_list() == [10, 1000, 950]
    again = run_backfill(store, "top-pypi", repo)
    assert [o.status for o in again.outcomes] == ["already imported"] * 3
    assert store.snapshots("pypi").height == 3


def test_npm_high_impact_is_parsed_as_text_never_run(tmp_path: Path) -> None:
    js = (
        "/** generated */\nexport const topDownload = [\n  'semver',\n  \"@babel/core\",\n"
        "  'it\\'s',\n  'x' + require('child_process').execSync('touch PWNED'),\n]\n"
    )
    names = parse_top_download(js)
    assert names[:3] == ["semver", "@babel/core", "it's"]
    repo = git_repo(tmp_path / "npm-high-impact")
    commit(repo, "lib/top-download.js", js.encode(), "2022-11-20T00:00:00Z")
    commit(
        repo,
        "lib/top-download.js",
        b"export const topDownload = ['semver']\n",
        "2023-02-20T00:00:00Z",
    )
    store = Store.open(str(tmp_path / "store"))
    res = run_backfill(store, "npm-high-impact", repo)
    assert res.count("imported") == 2
    assert not (Path.cwd() / "PWNED").exists()
    assert store.snapshots("npm")["tombstones"].to_list() == [0, 0]  # top: no tombstones


def hub_file(path: Path, rows: list[dict[str, object]]) -> bytes:
    pl.DataFrame(rows).write_parquet(path)
    return path.read_bytes()


def test_hub_stats_eras_rename_and_deltas(tmp_path: Path) -> None:
    repo = git_repo(tmp_path / "hub-stats")
    scratch = tmp_path / "x.parquet"
    ts = datetime(2023, 5, 1, tzinfo=UTC)
    # era 1 (2023): no `_id`, no downloadsAllTime, no trendingScore
    era1 = [
        {
            "id": "org/a",
            "author": "org",
            "lastModified": ts,
            "downloads": 10,
            "likes": 1,
            "tags": ["license:mit"],
        },
        {
            "id": "org/b",
            "author": "org",
            "lastModified": ts,
            "downloads": 5,
            "likes": 0,
            "tags": [],
        },
    ]
    commit(repo, "models.parquet", hub_file(scratch, era1), "2023-06-01T13:00:00Z")
    # era 2: `_id` appears; org/a is renamed to org/a2 (an update, not delete + create)
    era2 = [
        {
            "_id": "64a",
            "id": "org/a2",
            "author": "org",
            "lastModified": ts,
            "downloads": 20,
            "likes": 2,
            "tags": [],
            "trendingScore": 1.5,
            "cardData": json.dumps({"license": "apache-2.0", "language": "en"}),
        },
        {
            "_id": "64b",
            "id": "org/b",
            "author": "org",
            "lastModified": ts,
            "downloads": 6,
            "likes": 0,
            "tags": [],
            "trendingScore": 0.0,
            "cardData": None,
        },
    ]
    # era 2 under the old name first: a name-only era resolves through it
    before = [{**era2[0], "id": "org/a"}, era2[1]]
    commit(repo, "models.parquet", hub_file(scratch, before), "2024-10-01T13:00:00Z")
    commit(repo, "models.parquet", hub_file(scratch, era2), "2024-10-02T13:00:00Z")
    # era 3: downloadsAllTime, three days in a row; 64a stalls then catches up
    for day, (a, b) in enumerate([(100, 50), (100, 60), (190, 70)]):
        rows = [{**r, "downloadsAllTime": v} for r, v in zip(era2, (a, b), strict=True)]
        commit(repo, "models.parquet", hub_file(scratch, rows), f"2025-03-0{day + 1}T13:00:00Z")
    # a day of real hub-stats is up to 1.6 GB: versions are read one at a time, when imported
    assert all(x.frame is None for x in ARCHIVES["hub-stats"](repo))
    store = Store.open(str(tmp_path / "store"))
    res = run_backfill(store, "hub-stats", repo)
    assert res.count("imported") == 6
    hist = store.history("hub:model", "64a").collect()
    assert hist["op"].to_list().count("delete") == 0
    assert hist["snapshot_id"][0] == 1  # era 1 resolved to the later era's _id
    assert hist["name"].unique(maintain_order=True).to_list() == ["org/a", "org/a2"]
    assert store.changed("hub:model", 2, 3).collect().filter(pl.col("entity_id") == "64a")[
        "change"
    ].to_list() == ["renamed"]
    cols = archive_columns(store, "hub:model")
    assert "_id" not in cols["archive_columns"][0]
    assert "downloads_all_time" in cols["absent"][1] and "trending_score" in cols["absent"][0]
    assert "trending_score" not in cols["absent"][1]
    d = daily_deltas(store).filter(pl.col("entity_id") == "64a").sort("snapshot_id")
    assert d["delta"].to_list() == [0, 90]
    assert d["flag"].to_list()[1] is None or d["flag"].to_list() == [None, None]
    assert (daily_deltas(store)["delta"] >= 0).all()
    assert run_backfill(store, "hub-stats", repo).count("already imported") == 6


def test_hub_weekly_time_is_not_the_folder_label(tmp_path: Path) -> None:
    root = tmp_path / "hub_weekly_snapshots"
    for label, seen in (
        ("2024-07-24", datetime(2024, 7, 27, 9, tzinfo=UTC)),
        ("2024-07-31", datetime(2024, 8, 2, 9, tzinfo=UTC)),
        ("2024-08-07", datetime(2024, 8, 2, 9, tzinfo=UTC)),
    ):  # a repeat
        (root / "models" / label).mkdir(parents=True)
        hub_file(
            root / "models" / label / "models.parquet",
            [{"_id": "1", "id": "o/m", "lastModified": seen, "downloads": 3}],
        )
    store = Store.open(str(tmp_path / "store"))
    res = run_backfill(store, "hub-weekly", root / "models")
    assert [o.status for o in res.outcomes] == ["imported", "imported", "skipped"]
    assert "repeats" in res.outcomes[2].note
    assert store.snapshots("hub:model")["as_of"].to_list()[0] == datetime(
        2024, 7, 27, 9, tzinfo=UTC
    )


def test_ecosystems_csv_and_peatmoss(tmp_path: Path) -> None:
    csv = tmp_path / "packages-2024-01-01.csv"
    pl.DataFrame(
        {
            "registry_id": [1, 2],
            "name": ["requests", "left-pad"],
            "ecosystem": ["pypi", "npm"],
            "downloads": [100, 7],
            "downloads_period": ["last-month", "last-month"],
            "dependent_packages_count": [3, 1],
            "dependent_repos_count": [9, 2],
            "latest_release_number": ["2.0", "1.3.0"],
            "latest_release_published_at": ["2023-12-01T00:00:00Z", "2016-03-01T00:00:00Z"],
            "last_synced_at": ["2023-12-30T00:00:00Z", "2023-12-31T00:00:00Z"],
            "status": [None, None],
            "registry_name": ["pypi-mirror", "npm-mirror"],
            "registry_ecosystem": ["pypi", "npm"],
        }
    ).write_csv(csv)
    store = Store.open(str(tmp_path / "store"))
    res = run_backfill(store, "ecosystems-dump", csv)
    assert sorted(o.source for o in res.outcomes) == ["npm", "pypi"]
    assert store.snapshot_info("pypi").coverage == "full"
    assert store.snapshots("npm")["as_of"][0] == datetime(2023, 12, 31, tzinfo=UTC)
    # a dump mixes figures of different ages: each row says its own
    got = store.as_of("pypi", columns=["observed_at"]).collect().rows()
    assert got == [("requests", datetime(2023, 12, 30, tzinfo=UTC))]
    # the reader carries it per row
    pypi = next(x for x in read_ecosystems(csv) if x.source == "pypi")
    assert pypi.rows["observed_at"].to_list() == [datetime(2023, 12, 30, tzinfo=UTC)]
    db = tmp_path / "PeaTMOSS-2023-09-01.db"
    con = sqlite3.connect(db)
    con.execute(
        "CREATE TABLE model(id INTEGER, context_id TEXT, sha TEXT, downloads INT, likes INT)"
    )
    con.execute("INSERT INTO model VALUES (1, 'org/a', 's', 40, 2)")
    con.commit()
    con.close()
    res = run_backfill(store, "peatmoss", db)
    assert res.outcomes[0].status == "imported"
    assert store.snapshot_info("hub:model").coverage == "subset"


def test_breaks_are_data() -> None:
    b = breaks_frame("hub:dataset")
    assert "2024-09-01" in [str(d) for d in b["start"]]
