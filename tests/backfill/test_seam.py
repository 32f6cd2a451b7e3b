"""End-to-end: two archives backfilled, then a crawl of the simulator into the same store.

hub_weekly_snapshots-shaped folders (2024) and a hub-stats-shaped git history (2025) are
generated from the simulator's own world (same `_id`s, other counts, a few repos created
later, a few deleted since, one renamed), backfilled, and the simulator is then crawled
over real HTTP. The history must read on across the seam, and top-K turnover across it
must equal a computation by hand from the generated files and `/_sim/truth`.
"""

from __future__ import annotations

import asyncio
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import polars as pl

from analytics import turnover
from backfill import daily_deltas, run_backfill
from crawler import crawl_source
from crawler.budget import reset_budgets
from crawler.stats import CrawlStats
from simulator.testing import running_simulator
from storage import Store
from tests.backfill.test_readers import commit, git_repo
from tests.crawler.truth import get_json_lines, settings_for

K = 20
WEEKS = ("2024-07-24", "2024-07-31")
DAYS = ("2025-03-01T13:00:00Z", "2025-03-02T13:00:00Z")
GONE = [f"ffffffffffffffffffff{i:04d}" for i in range(4)]  # in the archives, deleted since


def _day(label: str) -> datetime:
    return datetime.fromisoformat(label).replace(tzinfo=UTC)


def _utc(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def archive_rows(
    truth: list[dict[str, Any]], version: int, at: datetime, *, weekly: bool
) -> list[dict[str, Any]]:
    """One archive version's models: the world's repos with this version's counts."""
    rng = random.Random(version)
    rows = []
    for i, r in enumerate(truth):
        if weekly and i % 9 == 4:
            continue  # created after the weekly era: first seen in hub-stats
        name = "old-org/" + r["id"].split("/")[1] if i == 1 else r["id"]  # renamed since
        modified = min(_utc(r["lastModified"]), at)
        rows.append(
            {
                "_id": r["_id"],
                "id": name,
                "author": name.split("/")[0],
                "createdAt": min(_utc(r["createdAt"]), modified),
                "lastModified": modified,
                "downloads": rng.randrange(0, 5000),
                "likes": rng.randrange(0, 50),
                "tags": list(r["tags"]),
            }
        )
    for j, gid in enumerate(GONE):
        rows.append(
            {
                "_id": gid,
                "id": f"gone/m{j}",
                "author": "gone",
                "createdAt": at - timedelta(days=400),
                "lastModified": at - timedelta(days=300),
                "downloads": rng.randrange(0, 5000),
                "likes": 0,
                "tags": [],
            }
        )
    return rows


def top_keys(counts: dict[str, int], k: int) -> set[str]:
    """The top k by downloads, ties by entity_id ascending (docs/storage.md's rule)."""
    return {e for _, e in sorted((-v, e) for e, v in counts.items())[:k]}


def turnover_by_hand(sets: list[set[str]]) -> list[dict[str, int]]:
    """Paper A's M2 from plain sets: remained, newcomers, returning, left, distinct_ever;
    S_history is every top-K set before S_last."""
    return [
        {
            "remained": len(sets[i - 1] & sets[i]),
            "newcomers": len(sets[i] - set().union(*sets[:i])),
            "returning": len((set().union(*sets[: i - 1]) - sets[i - 1]) & sets[i]),
            "left": len(sets[i - 1] - sets[i]),
            "distinct_ever": len(set().union(*sets[: i + 1])),
        }
        for i in range(1, len(sets))
    ]


def write_weekly(root: Path, truth: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """models/<week>/models.parquet; the file's newest lastModified is 2 days past the
    label (the folder date is the week's start, not the observation)."""
    versions = []
    for v, label in enumerate(WEEKS):
        seen = _day(label) + timedelta(days=2, hours=9)
        rows = archive_rows(truth, v, _day(label), weekly=True)
        rows[0]["lastModified"] = seen
        folder = root / "models" / label
        folder.mkdir(parents=True)
        pl.DataFrame(rows).write_parquet(folder / "models.parquet")
        versions.append(rows)
    return versions


def write_hub_stats(repo: Path, truth: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """models.parquet committed once a day, with downloadsAllTime below the world's."""
    versions = []
    scratch = repo.parent / "scratch.parquet"
    for v, when in enumerate(DAYS):
        rows = archive_rows(truth, 10 + v, _utc(when), weekly=False)
        total = {r["_id"]: int(r["downloadsAllTime"]) for r in truth}
        for r in rows:  # the counter grows towards the world's value at the crawl
            r["downloadsAllTime"] = total.get(r["_id"], 10_000) * (v + 1) // 3
        pl.DataFrame(rows).write_parquet(scratch)
        commit(repo, "models.parquet", scratch.read_bytes(), when)
        versions.append(rows)
    return versions


def test_backfilled_history_continues_into_a_crawl(tmp_path: Path) -> None:
    reset_budgets()
    store = Store.open(str(tmp_path / "store"))
    with running_simulator(
        seed=7, models=120, datasets=5, spaces=5, npm=5, pypi=5, page_size=40
    ) as url:
        truth = sorted(get_json_lines(f"{url}/_sim/truth?source=hub:model"), key=lambda r: r["_id"])
        weekly = write_weekly(tmp_path / "hub_weekly_snapshots", truth)
        daily = write_hub_stats(git_repo(tmp_path / "hub-stats"), truth)
        w = run_backfill(store, "hub-weekly", tmp_path / "hub_weekly_snapshots" / "models")
        d = run_backfill(store, "hub-stats", tmp_path / "hub-stats")
        assert [o.status for o in w.outcomes + d.outcomes] == ["imported"] * 4
        s = settings_for(url, details=False)
        crawled = asyncio.run(crawl_source(store, "hub:model", s, stats=CrawlStats()))
        assert crawled.status == "complete", crawled
    snaps = store.snapshots("hub:model")
    ids = snaps["snapshot_id"].to_list()
    assert len(ids) == 5 and ids[-1] == crawled.snapshot_id
    assert snaps["as_of"].to_list()[:4] == [
        _day("2024-07-26") + timedelta(hours=9),  # never the folder label
        _day("2024-08-02") + timedelta(hours=9),
        *(_utc(x) for x in DAYS),  # commit time
    ]
    # what each snapshot should hold, by entity `_id`: the files, then the world
    expected = [{r["_id"]: r["downloads"] for r in rows} for rows in [*weekly, *daily]]
    expected.append({r["_id"]: r["downloads"] for r in truth})
    for sid, want in zip(ids, expected, strict=True):
        got = store.as_of("hub:model", sid, columns=["downloads"]).collect()
        assert dict(zip(got["entity_id"], got["downloads"], strict=True)) == want, sid

    # continuity: one entity, one `_id`, before and after the seam (no delete + create)
    renamed = truth[1]["_id"]
    h = store.history("hub:model", renamed).collect()
    assert h["op"].to_list() == ["upsert"] * 5
    assert h["name"].to_list() == ["old-org/" + truth[1]["id"].split("/")[1]] * 4 + [truth[1]["id"]]
    change = store.changed("hub:model", ids[3], ids[4]).collect()
    assert change.filter(pl.col("entity_id") == renamed)["change"].to_list() == ["renamed"]
    late = truth[4]["_id"]
    assert store.history("hub:model", late).collect()["snapshot_id"][0] == ids[2]
    gone = store.history("hub:model", GONE[0]).collect()
    assert gone["op"].to_list()[-1] == "delete" and gone["snapshot_id"][-1] == ids[4]

    # turnover across the seam, by hand from the files and the truth
    sets = [top_keys(e, K) for e in expected]
    t = turnover(store, "hub:model", k=K)
    cols = ["remained", "newcomers", "returning", "left", "distinct_ever"]
    assert t.select(cols).to_dicts() == turnover_by_hand(sets)
    assert t["snapshot_id"].to_list() == ids[1:]

    # daily download deltas read across the seam too: the world's counter minus the file's
    dl = daily_deltas(store).filter(pl.col("snapshot_id") == ids[4])
    last_file = {r["_id"]: r["downloadsAllTime"] for r in daily[1]}
    want_delta = {
        r["_id"]: max(0, int(r["downloadsAllTime"]) - last_file[r["_id"]])
        for r in truth
        if r["_id"] in last_file
    }
    assert dict(zip(dl["entity_id"], dl["delta"], strict=True)) == want_delta
