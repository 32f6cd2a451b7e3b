"""Parsers: Hub and registry JSON -> rows; a malformed record raises `Malformed` with a
reason naming the field, and a crawl files it in ops/crawl_events and goes on."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from crawler import crawl_source
from crawler.budget import reset_budgets
from crawler.errors import Malformed
from crawler.hub_parse import (
    card_implied_by_tags,
    card_row,
    commit_rows,
    discussion_rows,
    parse_time,
    repo_row,
)
from crawler.pipeline import as_table
from crawler.prev import PrevState
from crawler.registry_parse import package_row
from crawler.stats import CrawlStats
from simulator.testing import running_simulator
from storage import Store
from tests.crawler.truth import compare_state, expected_rows, set_faults, settings_for

GOOD: dict[str, Any] = {
    "_id": "65f0a1b2c3d4e5f6a7b8c9d0",
    "id": "org/model",
    "author": "org",
    "sha": "a" * 40,
    "lastModified": "2024-05-01T12:00:00.000Z",
    "createdAt": "2023-01-02T03:04:05.000Z",
    "private": False,
    "gated": "manual",
    "disabled": False,
    "downloads": 10,
    "downloadsAllTime": 100,
    "likes": 3,
    "trendingScore": 1,
    "library_name": "transformers",
    "pipeline_tag": "text-generation",
    "tags": ["transformers", "license:mit", "base_model:adapter:base/m"],
    "cardData": {"license": "apache-2.0", "base_model": ["base/m", "base/m"]},
}


def test_a_good_record_becomes_a_row() -> None:
    row = repo_row(GOOD, "model")
    assert row["license"] == "apache-2.0"  # the card wins over the tag
    assert row["base_models"] == ["base/m"] and row["base_model_relation"] == "adapter"
    assert row["card_fields"] == ["base_model", "license"]
    assert row["last_modified"] == datetime(2024, 5, 1, 12, tzinfo=UTC)
    assert row["trending_score"] == 1.0 and row["gated"] == "manual"
    # and it fits the store's schema column by column
    assert as_table("hub:model", [row]).num_rows == 1  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"_id": None}, "_id: missing"),
        ({"id": 7}, "id: missing or not a string"),
        ({"sha": None}, "sha: null"),
        ({"downloads": "10"}, "downloads: expected an integer, got str"),
        ({"likes": True}, "likes: expected an integer, got bool"),
        ({"lastModified": "yesterday"}, "lastModified: not an ISO 8601 time"),
        ({"createdAt": 5}, "createdAt: expected an ISO 8601 string, got int"),
        ({"tags": ["a", 1]}, "tags: expected a list of strings"),
        ({"cardData": "license: mit"}, "cardData: expected an object, got str"),
        ({"gated": 3}, "gated: expected false, 'auto' or 'manual'"),
    ],
)
def test_a_malformed_record_names_the_field(change: dict[str, Any], reason: str) -> None:
    item = {**GOOD, **change}
    with pytest.raises(Malformed, match=reason):
        repo_row(item, "model")


def test_a_missing_required_field_and_a_non_object() -> None:
    item = dict(GOOD)
    del item["downloads"]
    with pytest.raises(Malformed, match="downloads: missing"):
        repo_row(item, "model")
    with pytest.raises(Malformed, match="expected an object, got list"):
        repo_row([GOOD], "model")


def test_optional_author_and_space_links_are_null_when_absent() -> None:
    # both official clients treat these as optional; the simulator omits them as the Hub may
    item = dict(GOOD)
    del item["author"]
    row = repo_row(item, "model")
    assert row["author"] is None and row["name"] == "org/model"  # never filled in
    space = {k: v for k, v in GOOD.items() if k not in ("downloads", "downloadsAllTime")}
    space.pop("gated")
    row = repo_row(space, "space")
    assert row["sdk"] is None and row["space_models"] is None and row["space_datasets"] is None
    assert as_table("hub:space", [row]).num_rows == 1  # type: ignore[union-attr]


def test_times_are_utc() -> None:
    assert parse_time("2024-05-01T14:00:00+02:00", "t") == datetime(2024, 5, 1, 12, tzinfo=UTC)
    assert parse_time("2024-05-01T12:00:00", "t") == datetime(2024, 5, 1, 12, tzinfo=UTC)
    assert parse_time(None, "t") is None


def test_commits_stop_at_the_newest_known_one() -> None:
    page = [
        {"id": "c3", "title": "t3", "date": "2024-01-03T00:00:00Z", "authors": [{"user": "a"}]},
        {"id": "c2", "title": "t2", "date": "2024-01-02T00:00:00Z", "authors": []},
        {"id": "c1", "title": "t1", "date": "2024-01-01T00:00:00Z", "authors": []},
    ]
    rows, reached = commit_rows(page, "model", "e", frozenset({"c2"}), 4)
    assert [r["commit_id"] for r in rows] == ["c3"] and reached
    assert rows[0]["authors"] == ["a"] and rows[0]["snapshot_id"] == 4
    rows, reached = commit_rows(page, "model", "e", frozenset(), 4)
    assert len(rows) == 3 and not reached
    with pytest.raises(Malformed, match="commit author: missing `user`"):
        commit_rows([{"id": "x", "authors": [{"name": "a"}]}], "model", "e", frozenset(), 1)
    with pytest.raises(Malformed, match="commits page: expected a JSON array, got dict"):
        commit_rows({"id": "x"}, "model", "e", frozenset(), 1)


def test_discussions_page_and_has_next() -> None:
    d = {
        "num": 2,
        "title": "t",
        "status": "open",
        "createdAt": "2024-01-01T00:00:00Z",
        "isPullRequest": False,
    }
    rows, more = discussion_rows({"discussions": [d], "count": 3, "start": 0}, "model", "e", 1)
    assert rows[0]["author"] == "deleted" and more  # no author object: a deleted user
    _, more = discussion_rows({"discussions": [d], "count": 3, "start": 2}, "model", "e", 1)
    assert not more
    with pytest.raises(Malformed, match="isPullRequest"):
        discussion_rows({"discussions": [{"num": 1}], "count": 1}, "model", "e", 1)
    with pytest.raises(Malformed, match="`count` missing"):
        discussion_rows({"discussions": [d]}, "model", "e", 1)


def test_card_sections_and_metadata() -> None:
    text = b"---\nlicense: mit\ntags:\n- a\n---\n# Title\n\n## Usage\n```\n# not a heading\n```\nIntro\n---\n"
    row = card_row(text, "model", "e", "s", 1)
    assert row["metadata_fields"] == ["license", "tags"]
    assert row["headings"] == ["Title", "Usage", "Intro"]  # the last one setext
    assert row["length"] == len(text)
    assert card_row(None, "model", "e", "s", 1)["length"] == 0


def test_tags_that_imply_a_card() -> None:
    row = repo_row({**GOOD, "cardData": None}, "model")
    assert card_implied_by_tags(row)  # license:mit without cardData: a cut record
    assert not card_implied_by_tags(repo_row(GOOD, "model"))
    assert not card_implied_by_tags(repo_row({**GOOD, "cardData": None, "tags": []}, "model"))


def test_package_rows() -> None:
    with pytest.raises(Malformed):
        package_row({"name": 5}, "npm")


def test_change_detection_classifies_rows() -> None:
    row = repo_row(GOOD, "model")
    empty = PrevState.empty()
    (st,) = empty.classify([row])
    assert empty.initial and st.new and st.changed


def test_malformed_records_go_to_events_and_the_crawl_recovers(tmp_path: Path) -> None:
    """Every listing page malformed: each bad record is filed with its reason and raw
    payload, fetched again through repo info, and the snapshot still equals the truth."""
    reset_budgets()
    store = Store.open(str(tmp_path / "store"))
    with running_simulator(seed=4, models=60, datasets=5, spaces=5, page_size=20) as url:
        set_faults(url, {"malformed": 1.0})
        s = settings_for(url, details=False)
        res = asyncio.run(crawl_source(store, "hub:model", s, stats=CrawlStats()))
        set_faults(url, {"rate": 0})
        assert res.status == "complete", res
        assert (
            compare_state(store, "hub:model", res.snapshot_id, expected_rows(url, "hub:model"))
            == []
        )
    events = store.events().filter(pl.col("kind") == "malformed").collect()
    assert events.height >= 3  # one per page
    assert all(r for r in events["reason"].to_list())
    assert all(p and p.startswith("{") for p in events["payload"].to_list() if p is not None)
    assert events["payload"].null_count() < events.height
    assert res.detail_kinds.get("repo_info", 0) >= 3  # fetched again, one request each
