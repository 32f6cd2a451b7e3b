"""The listing's fast record parser gives exactly the checked parser's rows, and leaves
every record it does not expect (wrong types, nulls, missing fields, non-UTC times) to
the checked parser, which names the field."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crawler.errors import Malformed
from crawler.hub_parse import EXPAND, _fast_row, checked_row, repo_row
from crawler.pipeline import as_table
from tests.crawler.test_parse import GOOD

# the checked parser's good record, with every field any repo type lists
BASE: dict[str, Any] = {
    **GOOD,
    "id": "org/repo",
    "gated": False,
    "tags": ["transformers", "license:mit", "base_model:finetune:base/m", "region:us"],
    "cardData": {"license": "apache-2.0", "base_model": "base/m", "language": ["en"]},
    "sdk": "gradio",
    "models": ["org/m"],
    "datasets": ["org/d"],
}
FIELDS = sorted(set(BASE) | {f for fields in EXPAND.values() for f in fields})
SOURCES = {"model": "hub:model", "dataset": "hub:dataset", "space": "hub:space"}

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=False),
    st.sampled_from(
        [
            "",
            "x",
            "license:mit",
            "base_model:adapter:a/b",
            "base_model:c/d",
            "2024-05-01T12:00:00Z",
            "2024-05-01T14:00:00+02:00",
            "2024-05-01T12:00:00",
            "yesterday",
            "manual",
        ]
    ),
)
values = st.one_of(
    scalars,
    st.lists(scalars, max_size=4),
    st.dictionaries(
        st.sampled_from(["license", "base_model", "base_model_relation", "language"]),
        st.one_of(scalars, st.lists(scalars, max_size=3)),
        max_size=4,
    ),
)
DELETE = object()


def probed_records() -> Iterator[tuple[str, Any, dict[str, Any]]]:
    """(field, probe, BASE with that field set to the probe or, for DELETE, left out)."""
    for key in FIELDS:
        for probe in PROBES:
            item = {k: v for k, v in BASE.items() if k != key}
            if probe is not DELETE:
                item[key] = probe
            yield key, probe, item


def outcome(fn: Any, item: Any, repo_type: str) -> tuple[str, Any]:
    try:
        return "row", fn(item, repo_type)
    except Malformed as exc:
        return "malformed", str(exc)


@settings(max_examples=600, deadline=None)
@given(
    repo_type=st.sampled_from(sorted(SOURCES)),
    changes=st.dictionaries(
        st.sampled_from(FIELDS), st.one_of(st.just(DELETE), values), max_size=4
    ),
)
def test_fast_and_checked_agree(repo_type: str, changes: dict[str, Any]) -> None:
    item = dict(BASE)
    for key, value in changes.items():
        if value is DELETE:
            item.pop(key, None)
        else:
            item[key] = value
    fast = _fast_row(item, repo_type)
    if fast is not None:
        # accepted by the fast path: the same row (one that does not fit the store's
        # schema, e.g. an integer past int64, is the store's to quarantine either way)
        assert fast == checked_row(item, repo_type)
    assert outcome(repo_row, item, repo_type) == outcome(checked_row, item, repo_type)


@pytest.mark.parametrize("repo_type", sorted(SOURCES))
def test_a_well_formed_record_takes_the_fast_path(repo_type: str) -> None:
    # the test above would pass with a fast path that accepts nothing
    row = _fast_row(BASE, repo_type)
    assert row is not None and row == checked_row(BASE, repo_type)
    assert not isinstance(as_table(SOURCES[repo_type], [row]), list)  # fits the schema
    assert _fast_row({**BASE, "cardData": None, "tags": []}, repo_type) is not None


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"likes": True}, "likes: expected an integer, got bool"),
        ({"sha": None}, "sha: null"),
        ({"tags": ["a", 1]}, "tags: expected a list of strings"),
        ({"createdAt": "yesterday"}, "createdAt: not an ISO 8601 time"),
    ],
)
def test_what_the_fast_path_refuses_is_named_by_the_checked_one(
    change: dict[str, Any], reason: str
) -> None:
    item = {**BASE, **change}
    assert _fast_row(item, "model") is None
    with pytest.raises(Malformed, match=reason):
        repo_row(item, "model")


def test_times_in_other_zones_are_converted() -> None:
    item = {**BASE, "lastModified": "2024-05-01T14:00:00+02:00"}
    assert _fast_row(item, "model") is None  # not UTC: the checked path converts it
    assert repo_row(item, "model")["last_modified"].hour == 12


# every field set to each kind of JSON value (or removed), one at a time: the type
# confusions a random search can miss
PROBES: list[Any] = [
    DELETE,
    None,
    True,
    False,
    0,
    1.5,
    2**70,
    "",
    "x",
    "2024-05-01T12:00:00Z",
    [],
    ["a"],
    [1],
    {},
    {"license": "mit", "base_model": "a/b"},
]


@pytest.mark.parametrize("repo_type", sorted(SOURCES))
def test_each_field_probed_with_each_kind_of_value(repo_type: str) -> None:
    for key, probe, item in probed_records():
        fast = _fast_row(item, repo_type)
        if fast is not None:
            assert fast == checked_row(item, repo_type), (key, probe)
        assert outcome(repo_row, item, repo_type) == outcome(checked_row, item, repo_type)
