"""Methodology breaks: written into the store by a backfill, read back by analytics (through
storage only), and shown by the report on the series they fall inside, and only there."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest

from analytics import write_report
from analytics.breaks import recorded, series_note, within
from analytics.data import Data
from analytics.params import Params
from backfill import BREAKS, run_backfill
from storage import Store
from tests.backfill.test_readers import commit, git_repo


def _hub_day(repo: Path, day: datetime, n: int, with_total: bool) -> None:
    for name in ("models.parquet", "datasets.parquet"):
        rows = [
            {
                "_id": f"{name[0]}{i:05d}",
                "id": f"org/{name[0]}{i}",
                "lastModified": day - timedelta(days=1),
                "downloads": (i + 1) * (10 + day.day),
                "likes": i,
                **({"downloadsAllTime": (i + 1) * 100 * day.toordinal()} if with_total else {}),
            }
            for i in range(n)
        ]
        f = repo.parent / name
        pl.DataFrame(rows).write_parquet(f)
        commit(repo, name, f.read_bytes(), day.isoformat())


def section(page: str, source: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", source.lower()).strip("-")
    start = page.index(f"<section class=src id='{slug}'>")
    return page[start : page.index("</section>", start)]


def backfilled(tmp_path: Path) -> tuple[Store, list[datetime]]:
    """hub-stats over 2024-08 .. 2024-09 (dataset downloads redefined 2024-09-01), then
    2025-02-20 .. 03-02 (downloadsAllTime from 2025-02-26), imported in two runs."""
    repo = git_repo(tmp_path / "hub-stats")
    days = [datetime(2024, 8, 20, 13, tzinfo=UTC), datetime(2024, 9, 10, 13, tzinfo=UTC)]
    days += [datetime(2025, 2, 20, 13, tzinfo=UTC) + timedelta(days=5 * k) for k in range(3)]
    for day in days[:3]:
        _hub_day(repo, day, 8, with_total=day >= datetime(2025, 2, 26, tzinfo=UTC))
    store = Store.open(str(tmp_path / "store"))
    assert run_backfill(store, "hub-stats", repo).count("imported") == 6
    for day in days[3:]:
        _hub_day(repo, day, 8, with_total=True)
    assert run_backfill(store, "hub-stats", repo).count("imported") == 4
    return store, days


def test_breaks_are_stored_once_and_found_inside_a_series(tmp_path: Path) -> None:
    store, days = backfilled(tmp_path)
    held = recorded(store)
    want = {
        (b.source, b.column, b.start) for b in BREAKS if b.source in ("hub:model", "hub:dataset")
    }
    # every break of the imported sources, once, though two runs imported them
    assert set(zip(held["source"], held["column"], held["start"], strict=True)) == want
    assert held.height == len(want)
    assert recorded(store, "pypi").height == 0  # nothing of pypi imported
    span = within(recorded(store, "hub:dataset"), days[0], days[1])
    assert span["start"].to_list() == [date(2024, 9, 1)]  # downloadsAllTime's is after it
    assert within(recorded(store, "hub:dataset"), days[2], days[4])["start"].to_list() == [
        date(2025, 2, 26)
    ]
    data = Data(store, Params())
    early = pl.DataFrame({"as_of": days[:2], "entities": [8, 8]})
    note = series_note(data, "hub:dataset", early)
    assert "Methodology break" in note and "2024-09-01" in note and "2025-02-26" not in note
    late = pl.DataFrame({"as_of": days[2:], "entities": [8, 8, 8]})
    assert "2024-09-01" not in series_note(data, "hub:dataset", late)
    assert series_note(data, "hub:model", early) == ""  # no break of hub:model in 2024-08/09
    # a series without as_of (one row per entity) spans every snapshot
    per_entity = pl.DataFrame({"entity_id": ["d00000"], "snapshots": [5]})
    assert "2024-09-01" in series_note(data, "hub:dataset", per_entity)


@pytest.mark.slow
def test_the_report_shows_breaks_on_every_affected_series(tmp_path: Path) -> None:
    store, _days = backfilled(tmp_path)
    page = write_report(store, tmp_path / "report", sources=["hub:model", "hub:dataset"])
    html = page.read_text(encoding="utf-8")
    ds, md = section(html, "hub:dataset"), section(html, "hub:model")
    assert "2024-09-01" in ds and "every file GET/HEAD" in ds
    assert "2025-02-26" in md and "downloadsAllTime exists from here on" in md
    assert "2024-09-01" not in md  # hub:model has no break of its own there
    # on every series card of the source, never on a snapshot measure's card
    cards = ds.split("<div class=card id=")[1:]
    # (a series that could not be computed has no card body to annotate)
    series = [c for c in cards if re.search(r"\(paper [^,]+, series[,)]", c) and " rows · " in c]
    missing = [c[:40] for c in series if "Methodology break inside this series" not in c]
    assert series and not missing, missing
    snapshot = [c for c in cards if re.search(r"\(paper [^,]+, snapshot[,)]", c)]
    assert snapshot and all("Methodology break" not in c for c in snapshot)
