"""Whole-page decoding (crawler/hub_page.py): for every page it takes, the rows equal the
record-by-record parser's and no record is one that path would flag; every other page is
left to that path."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crawler.errors import Malformed
from crawler.hub_page import decode_page, page_rows
from crawler.hub_parse import checked_row, suspicious_nulls
from tests.crawler.test_parse_fast import BASE, DELETE, FIELDS, probed_records, values

OPTIONAL_KEYS = ["library_name", "pipeline_tag", "cardData"]


def records_path(body: bytes, repo_type: str) -> list[dict[str, Any]] | None:
    """What the record-by-record path makes of a page when every record passes: its rows;
    None when any record is malformed or suspect (or the page is not a list)."""
    try:
        data = json.loads(body)
    except ValueError:
        return None
    if not isinstance(data, list):
        return None
    rows = []
    for item in data:
        try:
            row = checked_row(item, repo_type)
        except Malformed:
            return None
        if suspicious_nulls(item):
            return None
        rows.append(row)
    return rows


def fast_path(body: bytes, repo_type: str) -> list[dict[str, Any]] | None:
    records = decode_page(body, repo_type)
    return None if records is None else page_rows(records, repo_type)


record = st.builds(
    lambda changes: {
        **{k: v for k, v in BASE.items() if changes.get(k, 0) is not DELETE},
        **{k: v for k, v in changes.items() if v is not DELETE},
    },
    st.dictionaries(st.sampled_from(FIELDS), st.one_of(st.just(DELETE), values), max_size=3),
)


@settings(max_examples=500, deadline=None)
@given(
    repo_type=st.sampled_from(["model", "dataset", "space"]),
    page=st.lists(record, max_size=4),
)
def test_a_page_taken_whole_equals_the_record_path(
    repo_type: str, page: list[dict[str, Any]]
) -> None:
    body = json.dumps(page).encode()
    fast = fast_path(body, repo_type)
    if fast is not None:
        assert fast == records_path(body, repo_type)


@pytest.mark.parametrize("repo_type", ["model", "dataset", "space"])
def test_a_well_formed_page_is_taken(repo_type: str) -> None:
    # the property above would hold for a fast path that takes nothing
    page = [BASE, {**BASE, "_id": "x2", "cardData": {}, "tags": []}, {**BASE, "_id": "x3"}]
    for key in OPTIONAL_KEYS + (["gated"] if repo_type == "space" else []):
        del page[2][key]
    body = json.dumps(page).encode()
    fast = fast_path(body, repo_type)
    assert fast is not None and len(fast) == 3
    assert fast == records_path(body, repo_type)


@pytest.mark.parametrize(
    "change",
    [
        {"likes": True},  # a bool where an integer belongs
        {"pipeline_tag": None},  # a null optional field: a suspect record
        {"cardData": None},
        {"_id": ""},
        {"lastModified": "2024-05-01T14:00:00+02:00"},  # not UTC: converted record by record
        {"tags": ["a", 1]},
    ],
)
def test_pages_with_an_odd_record_go_record_by_record(change: dict[str, Any]) -> None:
    body = json.dumps([BASE, {**BASE, **change}]).encode()
    assert fast_path(body, "model") is None
    assert fast_path(b"{not json", "model") is None
    assert fast_path(b'{"a": 1}', "model") is None  # not a list


@pytest.mark.parametrize("repo_type", ["model", "dataset", "space"])
def test_each_field_probed_with_each_kind_of_value(repo_type: str) -> None:
    for key, probe, item in probed_records():
        body = json.dumps([BASE, item]).encode()
        fast = fast_path(body, repo_type)
        if fast is not None:
            assert fast == records_path(body, repo_type), (key, probe)
