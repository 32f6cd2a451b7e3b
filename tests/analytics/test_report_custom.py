"""The report on a custom source imported from CSV files (issue 18 point 4, "right for
any source"): monthly top-N lists of packages with their own columns (`project`,
`download_count`, `rank`), no `name`, no `downloads`, no creation date.

Every figure on the page is opened and its data looked at: none may be empty (a chart of
nulls, or a trajectory chart grouped by a `name` the source does not have, was the bug).
The method texts name the source's own id and popularity columns and its monthly cadence,
and the fixed turnover interval follows that cadence (a quarter, not 7 days)."""

from __future__ import annotations

import base64
import itertools
import json
import random
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest

from analytics import compute_measure, write_report
from storage import Store
from storage.importing import import_listing

SOURCE = "custom:pypitop"
MONTHS = 7
LISTED = 12  # each monthly list names the top 12 of a pool of 30


def _month(n: int) -> datetime:
    return datetime(2025, 1 + n, 1, tzinfo=UTC) if n < 12 else datetime(2026, n - 11, 1, tzinfo=UTC)


def _build(root: Path, coverage: str) -> Store:
    store = Store.open(str(root / "store"))
    rng = random.Random(18)
    pool = {f"pkg-{i:02d}": 1000.0 * (30 - i) for i in range(30)}
    for n in range(MONTHS):
        for p in pool:
            pool[p] = max(0.0, pool[p] * rng.uniform(0.6, 1.5))
        ranked = sorted(pool.items(), key=lambda kv: (-kv[1], kv[0]))
        listed = ranked[:LISTED] if coverage == "top" else ranked[: 30 - n]
        csv = root / f"top-{n}.csv"
        pl.DataFrame(
            {
                "project": [p for p, _ in listed],
                "download_count": [int(v) for _, v in listed],
                "rank": list(range(1, len(listed) + 1)),
            }
        ).write_csv(csv)
        import_listing(
            store,
            SOURCE,
            csv,
            at=_month(n),
            id_column="project",
            coverage="top" if coverage == "top" else "full",
            top_by="download_count" if coverage == "top" else None,
            allow_shrink=True,
        )
    return store


def _values(v: Any) -> list[Any]:
    """A plotly JSON array as a flat list (plotly 6 writes numpy arrays as base64)."""
    if isinstance(v, dict) and "bdata" in v:
        return np.frombuffer(base64.b64decode(v["bdata"]), dtype=v["dtype"]).tolist()
    if isinstance(v, list):
        out: list[Any] = []
        for x in v:
            out.extend(_values(x) if isinstance(x, (list, dict)) else [x])
        return out
    return [v]


def _figures(section: str) -> list[dict[str, Any]]:
    specs = re.findall(r"<script type=application/json id=chart-\d+-spec>(.*?)</script>", section)
    return [json.loads(s) for s in specs]


def _section(page: str, source: str) -> str:
    start = page.index(f"<section class=src id='{source.replace(':', '-')}'>")
    return page[start : page.index("</section>", start)]


@pytest.mark.parametrize("coverage", ["top", "full"])
def test_report_on_an_imported_custom_source_has_no_empty_chart(
    tmp_path: Path, coverage: str
) -> None:
    store = _build(tmp_path, coverage)
    page = write_report(store, tmp_path / "report", params={"k": 5}).read_text()
    section = _section(page, SOURCE)
    figures = _figures(section)
    titles = [f["layout"]["title"]["text"] for f in figures]
    # the measures that apply to any source and can be computed here all draw a chart
    expected = {
        "Top-K newcomers, returning and left per snapshot",
        "Top-K newcomers, returning and left per interval",
        "Survival in the top-K (Kaplan-Meier)",
        "Snapshots spent in the top-K (entities ever in it)",
        "Rank correlation between consecutive top-K",
        "Concentration over time",
        "Rank over time (1 = most popular)",
        "Churn per snapshot pair",
    }
    if coverage == "full":
        expected.add("Entities per snapshot and exponential fit")
    assert set(titles) == expected, titles
    for fig, title in zip(figures, titles, strict=True):
        assert fig["data"], f"{title}: no trace"
        for trace in fig["data"]:
            key = "z" if "z" in trace else "y"
            values = [v for v in _values(trace.get(key, [])) if v is not None]
            assert values, f"{title}: trace {trace.get('name')!r} has no {key} value"
            assert _values(trace.get("x", [])), f"{title}: trace {trace.get('name')!r} has no x"
    # trajectories are grouped by a label that exists: the entity id (no name column)
    rank = figures[titles.index("Rank over time (1 = most popular)")]
    names = [t["name"] for t in rank["data"]]
    assert len(names) == 10 and all(n.startswith("pkg-") for n in names), names
    # growth of top-N listings says nothing of the source: no chart, entities null
    growth = pl.read_parquet(tmp_path / "report/tables/growth__custom-pypitop.parquet")
    assert growth["entities"].null_count() == (MONTHS if coverage == "top" else 0)
    churn = pl.read_parquet(tmp_path / "report/tables/churn__custom-pypitop.parquet")
    assert churn["created"].null_count() == (MONTHS - 1 if coverage == "top" else 0)
    if coverage == "full":
        assert churn["deleted"].to_list() == [1] * (MONTHS - 1)  # one package fewer a month

    # the method texts speak of this source's columns and cadence, never the Hub's
    text = re.sub(r"<script.*?</script>", "", section, flags=re.S)
    assert "<code>download_count</code>" in text
    assert "<code>entity_id</code>, the imported listing's id column" in text
    assert "monthly" in text
    assert "91 days" in text
    for hub_word in ("downloads", "Hub", "_id`", "likes", "7 days"):
        assert hub_word not in text, f"{hub_word!r} in the custom source's section"
    interval = pl.read_parquet(tmp_path / "report/tables/turnover_interval__custom-pypitop.parquet")
    assert set(interval["interval_days"].to_list()) == {91}


def test_custom_popularity_is_the_ranked_column_and_interval_follows_cadence(
    tmp_path: Path,
) -> None:
    store = _build(tmp_path, "top")
    conc = compute_measure(store, "concentration", source=SOURCE)
    assert set(conc["by"].to_list()) == {"download_count"}  # not `rank`, not `downloads`
    assert set(conc["coverage"].to_list()) == {"top"}  # shares within each top-12 list
    traj = compute_measure(store, "trajectories", source=SOURCE, params={"trajectory_n": 3})
    newest = pl.read_csv(tmp_path / f"top-{MONTHS - 1}.csv")
    assert set(traj["label"].to_list()) == set(newest["project"].head(3).to_list())
    assert traj["label"].null_count() == 0
    # an explicit interval wins over the cadence
    fixed = compute_measure(
        store, "turnover_interval", source=SOURCE, params={"k": 5, "interval_days": 28}
    )
    assert set(fixed["interval_days"].to_list()) == {28}
    assert fixed.height == MONTHS - 1
    quarterly = compute_measure(store, "turnover_interval", source=SOURCE, params={"k": 5})
    assert quarterly.height < fixed.height


def test_turnover_of_a_custom_source_ranks_by_its_own_popularity(tmp_path: Path) -> None:
    from analytics import turnover

    store = _build(tmp_path, "top")
    df = turnover(store, SOURCE, k=5)  # by="downloads", the default, is not a column here
    assert df.height == MONTHS - 1
    lists = [pl.read_csv(tmp_path / f"top-{n}.csv")["project"].head(5) for n in range(MONTHS)]
    left = [len(set(a) - set(b)) for a, b in itertools.pairwise(lists)]
    assert df["left"].to_list() == left


@pytest.mark.parametrize(("gap_days", "interval"), [(1, 7), (7, 30), (30, 91), (91, 365)])
def test_the_turnover_interval_follows_the_snapshot_cadence(
    tmp_path: Path, gap_days: int, interval: int
) -> None:
    from analytics.data import Data
    from analytics.params import Params
    from tests.analytics.world import day, pkg, snapshot

    store = Store.open(str(tmp_path / "store"))
    for n in range(4):
        snapshot(store, "npm", day(gap_days * n), [pkg(f"p{j}", downloads=j) for j in range(5)])
    assert Data(store).interval_days("npm") == interval
    assert Data(store, Params(interval_days=14)).interval_days("npm") == 14  # set: kept
