"""Issue 16, point 6: ids users have. `import` finds the id column by itself, custom sources
keep its name in every output, a re-run import is a no-op, several files go in one call.
Every case runs the real CLI (its entry point) on a real Delta store."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from datetime import time as dtime
from pathlib import Path

import polars as pl
import pytest

from storage import Store
from storage.importing import at_from_name
from tests.storage.test_cli_store import hub


def _snaps(store: Path) -> list[dict[str, object]]:
    res = hub(store, "snapshots", "--all", "-f", "json")
    assert res.returncode == 0, res.stderr
    return json.loads(res.stdout)


def _top(path: Path, rows: list[tuple[str, int]]) -> Path:
    path.write_text("project,downloads\n" + "".join(f"{p},{d}\n" for p, d in rows))
    return path


def test_the_one_obvious_id_column_is_found_and_kept_in_every_output(tmp_path: Path) -> None:
    store = tmp_path / "store"
    f = _top(tmp_path / "top.csv", [("numpy", 30), ("requests", 20), ("six", 10)])
    res = hub(store, "import", "custom:pypi", str(f), "--at", "2026-01-31")
    assert res.returncode == 0, res.stderr
    assert "id column: 'project'" in res.stderr
    f2 = _top(tmp_path / "top2.csv", [("numpy", 31), ("requests", 20), ("six", 12)])
    res = hub(store, "import", "custom:pypi", str(f2), "--at", "2026-02-28")
    assert res.returncode == 0, res.stderr
    assert Store.open(str(store)).id_column("custom:pypi") == "project"

    asof = json.loads(hub(store, "asof", "custom:pypi", "-f", "json").stdout)
    # every source's rows may say when they were observed: null, these files did not
    assert asof[0] == {"project": "numpy", "downloads": 31, "observed_at": None}
    csv = hub(store, "asof", "custom:pypi", "-f", "csv").stdout.splitlines()
    assert csv[0] == "project,downloads,observed_at"
    # --columns takes the user's name for the id
    picked = json.loads(
        hub(
            store, "asof", "custom:pypi", "-c", "project,downloads,observed_at", "-f", "json"
        ).stdout
    )
    assert picked == asof
    out = tmp_path / "state.parquet"
    assert hub(store, "asof", "custom:pypi", "--out", str(out)).returncode == 0
    assert pl.read_parquet(out).columns == ["project", "downloads", "observed_at"]
    out_csv = tmp_path / "state.csv"
    assert hub(store, "asof", "custom:pypi", "--out", str(out_csv)).returncode == 0
    assert out_csv.read_text().splitlines()[0] == "project,downloads,observed_at"

    hist = json.loads(hub(store, "history", "custom:pypi", "six", "-f", "json").stdout)
    assert [(r["project"], r["downloads"]) for r in hist] == [("six", 10), ("six", 12)]
    assert all("entity_id" not in r for r in hist)
    top = json.loads(
        hub(store, "top", "custom:pypi", "--by", "downloads", "-k", "1", "-f", "json").stdout
    )
    assert top == [{"rank": 1, "project": "numpy", "name": None, "value": 31.0}]
    table = hub(store, "top", "custom:pypi", "--by", "downloads", "-k", "1").stdout
    assert "project" in table and "entity_id" not in table


def test_id_column_flag_wins_and_several_candidates_are_listed(tmp_path: Path) -> None:
    store = tmp_path / "store"
    f = tmp_path / "models.csv"
    f.write_text("id,name,modelId,likes\nm1,a/one,a/one,3\nm2,a/two,a/two,5\n")
    res = hub(store, "import", "custom:models", str(f), "--at", "2026-01-31")
    assert res.returncode == 1
    msg = " ".join(res.stderr.split())
    assert "several columns could be the id: id, name, modelId" in msg
    assert "--id-column" in msg
    assert not store.exists() or _snaps(store) == []
    res = hub(
        store, "import", "custom:models", str(f), "--at", "2026-01-31", "--id-column", "modelId"
    )
    assert res.returncode == 0, res.stderr
    assert "id column:" not in res.stderr  # named, not found: nothing to say
    rows = json.loads(hub(store, "asof", "custom:models", "-f", "json").stdout)
    assert rows[0] == {
        "modelId": "a/one",
        "id": "m1",
        "name": "a/one",
        "likes": 3,
        "observed_at": None,
    }


def test_a_candidate_with_repeated_values_is_no_candidate(tmp_path: Path) -> None:
    store = tmp_path / "store"
    f = tmp_path / "pkgs.jsonl"
    f.write_text(
        "".join(
            json.dumps(r) + "\n"
            for r in [
                {"package": "left-pad", "name": "pad", "n": 1},
                {"package": "is-odd", "name": "pad", "n": 2},
            ]
        )
    )
    res = hub(store, "import", "custom:npm", str(f), "--at", "2026-01-31")
    assert res.returncode == 0, res.stderr
    assert "id column: 'package'" in res.stderr
    none = tmp_path / "none.csv"
    none.write_text("doi,cites\n10/x,1\n")
    res = hub(store, "import", "custom:papers", str(none), "--at", "2026-01-31")
    assert res.returncode == 1
    msg = " ".join(res.stderr.split())
    assert "no id column found" in msg and "columns are doi, cites" in msg
    dup = tmp_path / "dup.csv"
    dup.write_text("name,n\na,1\na,2\n")
    res = hub(store, "import", "custom:dup", str(dup), "--at", "2026-01-31")
    assert res.returncode == 1
    assert "'name' has missing or repeated values" in " ".join(res.stderr.split())


def test_a_hub_dump_keys_on_the_hubs_id(tmp_path: Path) -> None:
    """A Hub listing has `_id` (stable) and often `id`-like names too: `_id` is obvious."""
    store = tmp_path / "store"
    f = tmp_path / "hub.csv"
    f.write_text("_id,name,downloads\n65f1,org/a,3\n65f2,org/b,4\n")
    res = hub(store, "import", "hub:model", str(f), "--at", "2026-01-31")
    assert res.returncode == 0, res.stderr
    assert "id column: '_id'" in res.stderr
    rows = json.loads(hub(store, "asof", "hub:model", "-c", "name", "-f", "json").stdout)
    assert rows == [{"entity_id": "65f1", "name": "org/a"}, {"entity_id": "65f2", "name": "org/b"}]


def test_the_same_file_at_the_same_instant_is_already_imported(tmp_path: Path) -> None:
    store = tmp_path / "store"
    f = _top(tmp_path / "top-2026-01.csv", [("numpy", 30), ("six", 10)])
    args = ("import", "custom:pypi", str(f), "--at", "2026-01-31", "-f", "json")
    first = hub(store, *args)
    assert first.returncode == 0, first.stderr
    again = hub(store, *args)
    assert again.returncode == 0, again.stderr
    said = " ".join(again.stderr.split())
    assert (
        "already imported at 2026-01-31T23:59:59.999999+00:00 (snapshot 1); nothing written" in said
    )
    row = json.loads(again.stdout)[0]
    assert (row["status"], row["snapshot_id"], row["upserts"]) == ("already imported", 1, 0)
    assert len(_snaps(store)) == 1
    digest = Store.open(str(store)).snapshots("custom:pypi")["digest"][0]
    assert digest.startswith("sha256:") and len(digest) == 7 + 64
    # other bytes at the same instant are a second listing of it: refused (time order)
    other = _top(tmp_path / "other.csv", [("numpy", 31), ("six", 10)])
    res = hub(store, "import", "custom:pypi", str(other), "--at", "2026-01-31")
    assert res.returncode == 1
    assert "at the same instant as the newest snapshot 1" in " ".join(res.stderr.split())
    # the same bytes at a later instant are a new snapshot (an unchanged listing)
    res = hub(store, "import", "custom:pypi", str(f), "--at", "2026-02-28")
    assert res.returncode == 0 and "already imported" not in res.stderr
    assert [s["snapshot_id"] for s in _snaps(store)] == [1, 2]


def _end_of(y: int, m: int, d: int) -> datetime:
    return datetime.combine(datetime(y, m, d).date(), dtime.max, UTC)


def test_several_files_at_their_names_dates_in_one_call(tmp_path: Path) -> None:
    store = tmp_path / "store"
    months = [
        _top(tmp_path / "top-2026-03-15.csv", [("numpy", 33), ("six", 9), ("attrs", 2)]),
        _top(tmp_path / "top-2026-01.csv", [("numpy", 30), ("six", 10), ("attrs", 1)]),
        _top(tmp_path / "top_20260228.csv", [("numpy", 31), ("six", 12), ("attrs", 1)]),
    ]
    res = hub(store, "import", "custom:pypi", *map(str, months), "--at-from-name", "-f", "json")
    assert res.returncode == 0, res.stderr
    done = json.loads(res.stdout)
    assert [Path(str(r["file"])).name for r in done] == [
        "top-2026-01.csv",
        "top_20260228.csv",
        "top-2026-03-15.csv",
    ]
    assert [r["status"] for r in done] == ["complete"] * 3
    assert "3/3" in res.stderr  # the progress bar's last state
    snaps = Store.open(str(store)).snapshots("custom:pypi").sort("snapshot_id")
    assert snaps["as_of"].to_list() == [
        _end_of(2026, 1, 31),
        _end_of(2026, 2, 28),
        _end_of(2026, 3, 15),
    ]
    # a re-run of the loop with one more month: the done ones say so, the new one lands
    months.append(_top(tmp_path / "top-2026-04.csv", [("numpy", 34), ("six", 9), ("attrs", 3)]))
    res = hub(store, "import", "custom:pypi", *map(str, months), "--at-from-name", "-f", "json")
    assert res.returncode == 0, res.stderr
    assert [r["status"] for r in json.loads(res.stdout)] == ["already imported"] * 3 + ["complete"]
    assert len(_snaps(store)) == 4


def test_a_manifest_lists_file_and_at(tmp_path: Path) -> None:
    store = tmp_path / "store"
    (tmp_path / "dumps").mkdir()
    a = _top(tmp_path / "dumps" / "a.csv", [("numpy", 30), ("six", 10)])
    b = _top(tmp_path / "dumps" / "b.csv", [("numpy", 31), ("six", 11)])
    manifest = tmp_path / "dumps" / "months.csv"
    manifest.write_text(f"file,at\nb.csv,2026-02-01T00:00:00Z\n{a},2026-01-01\n")
    res = hub(store, "import", "custom:pypi", "--manifest", str(manifest), "-f", "json")
    assert res.returncode == 0, res.stderr
    done = json.loads(res.stdout)
    assert [(Path(str(r["file"])).name, r["snapshot_id"]) for r in done] == [
        ("a.csv", 1),
        ("b.csv", 2),
    ]
    assert b.exists()
    snaps = Store.open(str(store)).snapshots("custom:pypi").sort("snapshot_id")
    assert snaps["as_of"][1] == datetime(2026, 2, 1, tzinfo=UTC)


def test_a_failing_file_in_a_batch_stops_there_and_a_rerun_resumes(tmp_path: Path) -> None:
    store = tmp_path / "store"
    a = _top(tmp_path / "top-2026-01.csv", [("numpy", 30), ("six", 10)])
    b = tmp_path / "top-2026-02.csv"
    b.write_text("project,downloads\nnumpy,31.5\nsix,10\n")
    c = _top(tmp_path / "top-2026-03.csv", [("numpy", 32), ("six", 10)])
    res = hub(store, "import", "custom:pypi", str(a), str(b), str(c), "--at-from-name")
    assert res.returncode == 1
    msg = " ".join(res.stderr.split())
    assert "file 2 of 3" in msg and "column 'downloads', row 1: 31.5 is not a whole number" in msg
    assert len(_snaps(store)) == 1
    b.write_text("project,downloads\nnumpy,31\nsix,10\n")
    res = hub(
        store, "import", "custom:pypi", str(a), str(b), str(c), "--at-from-name", "-f", "json"
    )
    assert res.returncode == 0, res.stderr
    assert [r["status"] for r in json.loads(res.stdout)] == [
        "already imported",
        "complete",
        "complete",
    ]


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (("a.csv", "b.csv", "--at", "2026-01-01"), "--at gives one instant for 2 files"),
        (("a.csv",), "say when the listings are: --at"),
        (("a.csv", "--at", "2026-01-01", "--at-from-name"), "not --at and --at-from-name"),
        (("nodate.csv", "--at-from-name"), "nodate.csv: no date in the file name"),
        (("--manifest", "m.csv", "a.csv"), "give no FILE besides it"),
        (("x-2026-01.csv", "y-2026-01.csv", "--at-from-name"), "are both at 2026-01-31"),
        (
            ("a-2026-01.csv", "gone-2026-02.csv", "--at-from-name"),
            "gone-2026-02.csv (nothing imported)",
        ),
    ],
)
def test_bad_file_and_time_flags(tmp_path: Path, args: tuple[str, ...], needle: str) -> None:
    for name in ("a.csv", "b.csv", "nodate.csv", "x-2026-01.csv", "y-2026-01.csv", "a-2026-01.csv"):
        _top(tmp_path / name, [("numpy", 1)])
    (tmp_path / "m.csv").write_text("file,at\na.csv,2026-01-01\n")
    full = [str(tmp_path / a) if a.endswith(".csv") else a for a in args]
    res = hub(tmp_path / "store", "import", "custom:pypi", *full)
    assert res.returncode == 1
    assert needle in " ".join(res.stderr.split()), res.stderr
    assert not (tmp_path / "store").exists()


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("top-pypi-2026-01-31.csv", (2026, 1, 31)),
        ("hub_20240229.parquet", (2024, 2, 29)),
        ("top-2024-02.csv", (2024, 2, 29)),
        ("2021_05_01_models.jsonl", (2021, 5, 1)),
    ],
)
def test_at_from_name(name: str, expected: tuple[int, int, int]) -> None:
    assert at_from_name(name) == _end_of(*expected)


def test_at_from_name_refuses_two_dates() -> None:
    with pytest.raises(ValueError, match="several dates in the file name"):
        at_from_name("models-2021-05-01-to-2021-06-01.csv")


def test_an_at_with_an_offset_is_the_same_instant_on_a_rerun(tmp_path: Path) -> None:
    store = tmp_path / "store"
    f = _top(tmp_path / "top.csv", [("numpy", 30)])
    args = ("import", "custom:pypi", str(f), "--at", "2026-01-31T06:00:00+02:00")
    assert hub(store, *args).returncode == 0
    again = hub(store, *args)
    assert again.returncode == 0, again.stderr
    said = " ".join(again.stderr.split())
    assert "already imported at 2026-01-31T04:00:00+00:00 (snapshot 1)" in said


def test_a_float_id_is_refused_rather_than_respelt(tmp_path: Path) -> None:
    f = tmp_path / "f.jsonl"
    f.write_text('{"id": null, "n": 1}\n{"id": 1.5, "n": 2}\n')
    res = hub(
        tmp_path / "store", "import", "custom:x", str(f), "--at", "2026-01-01", "--id-column", "id"
    )
    assert res.returncode == 1
    assert "column 'id', row 2: ids are text or integers; 1.5 is a float64" in " ".join(
        res.stderr.split()
    )


def test_a_later_import_uses_the_sources_id_column_without_a_word(tmp_path: Path) -> None:
    store = tmp_path / "store"
    a = tmp_path / "a.csv"
    a.write_text("doi,id,cites\n10/x,1,5\n10/y,2,6\n")
    res = hub(store, "import", "custom:papers", str(a), "--at", "2026-01-01", "--id-column", "doi")
    assert res.returncode == 0, res.stderr
    # `id` is a unique candidate too, but the source keys on doi
    b = tmp_path / "b.csv"
    b.write_text("doi,id,cites\n10/x,1,7\n10/y,2,6\n")
    res = hub(store, "import", "custom:papers", str(b), "--at", "2026-01-02")
    assert res.returncode == 0, res.stderr
    assert "id column" not in res.stderr
    rows = json.loads(hub(store, "asof", "custom:papers", "-f", "json").stdout)
    assert rows[0] == {"doi": "10/x", "id": 1, "cites": 7, "observed_at": None}
