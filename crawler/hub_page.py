"""Whole Hub listing pages decoded at once: JSON bytes -> typed records (msgspec, checked
in C against exactly the types `hub_parse.checked_row` accepts) -> HUB_REPO rows.

The fast path of the listing's hot loop (docs/crawler.md, Throughput). A page that does
not decode into the typed records (a wrong type, a null, a missing field, a record that is
not an object, a body that is not JSON) or holds a record the typed path does not take
(an empty id, a time not in UTC, a null optional field) gets None: the caller then parses
it record by record with `hub_parse.repo_row` and files each bad record with its reason.
For every page it accepts, the rows equal `repo_row` of each record, and no record is one
`hub_parse.suspicious_nulls` would flag (tests/crawler/test_hub_page.py holds it to that).
"""

from __future__ import annotations

from typing import Any

import msgspec
from msgspec import UNSET, Struct, UnsetType

from crawler.hub_parse import _fast_time, base_models_of, license_of

# JSON names of the fields whose Python names differ
_RENAME = {
    "eid": "_id",
    "name": "id",
    "created": "createdAt",
    "modified": "lastModified",
    "downloads_all": "downloadsAllTime",
    "trending": "trendingScore",
    "card": "cardData",
    "s_models": "models",
    "s_datasets": "datasets",
}


class _RepoRecord(Struct, rename=_RENAME, kw_only=True):
    """The fields every repo type's listing record has."""

    eid: str
    name: str
    # optional in both official clients (hub_parse.OPTIONAL): absent is fine, null suspect
    author: str | UnsetType = UNSET
    sha: str
    created: str  # parsed by `_fast_time` (the same rules as the record-by-record path)
    modified: str
    private: bool
    disabled: bool
    likes: int
    trending: float  # an integer is taken and made a float, as `_float` does
    tags: list[str]
    card: dict[str, Any] | UnsetType = UNSET


class ModelRecord(_RepoRecord, rename=_RENAME, kw_only=True):
    gated: bool | str
    downloads: int
    downloads_all: int
    # optional: absent is fine, null fails the page (a suspect record)
    library_name: str | UnsetType = UNSET
    pipeline_tag: str | UnsetType = UNSET


class DatasetRecord(_RepoRecord, rename=_RENAME, kw_only=True):
    gated: bool | str
    downloads: int
    downloads_all: int
    # not read for datasets, but a null one is a suspect record all the same
    library_name: Any = UNSET
    pipeline_tag: Any = UNSET


class SpaceRecord(_RepoRecord, rename=_RENAME, kw_only=True):
    # optional in both official clients (hub_parse.SPACE_OPTIONAL): absent or null is null
    sdk: str | UnsetType | None = UNSET
    s_models: list[str] | UnsetType | None = UNSET
    s_datasets: list[str] | UnsetType | None = UNSET
    gated: bool | str | None = None  # spaces have none
    library_name: Any = UNSET
    pipeline_tag: Any = UNSET


_DECODERS: dict[str, msgspec.json.Decoder[Any]] = {
    "model": msgspec.json.Decoder(list[ModelRecord]),
    "dataset": msgspec.json.Decoder(list[DatasetRecord]),
    "space": msgspec.json.Decoder(list[SpaceRecord]),
}


def decode_page(body: bytes, repo_type: str) -> list[Any] | None:
    """A listing page's typed records, or None when the page is not made only of records
    of exactly the expected types (the caller then decodes it with `json` and parses it
    record by record)."""
    try:
        out: list[Any] = _DECODERS[repo_type].decode(body)
    except (msgspec.DecodeError, KeyError):
        return None
    return out


def page_rows(records: list[Any], repo_type: str) -> list[dict[str, Any]] | None:
    """HUB_REPO rows of typed records (from `decode_page`), or None when one of them needs
    the record-by-record path (an empty id, a time not in UTC, a null optional field)."""
    rows: list[dict[str, Any]] = []
    append = rows.append
    model, space = repo_type == "model", repo_type == "space"
    for r in records:
        eid, name, card = r.eid, r.name, r.card
        if not eid or not name or r.library_name is None or r.pipeline_tag is None:
            return None
        created, modified = _fast_time(r.created), _fast_time(r.modified)
        if created is None or modified is None:
            return None
        if card is UNSET:
            card = None
        tags = r.tags
        joined = "\x00".join(tags)
        gated = r.gated
        bases: list[str] | None = None
        relation: str | None = None
        library = pipeline = None
        if model:
            library = None if r.library_name is UNSET else r.library_name
            pipeline = None if r.pipeline_tag is UNSET else r.pipeline_tag
            # without a card `base_model` and a `base_model:` tag there is none
            if "base_model:" in joined or (card and "base_model" in card):
                bases, relation = base_models_of(card, tags)
        append(
            {
                "entity_id": eid,
                "name": name,
                "author": None if r.author is UNSET else r.author,
                "created_at": created,
                "last_modified": modified,
                "sha": r.sha,
                "private": r.private,
                "gated": ("true" if gated else "false") if type(gated) is bool else gated,
                "disabled": r.disabled,
                "library_name": library,
                "pipeline_tag": pipeline,
                "tags": tags,
                "license": license_of(card, tags) if card or "license:" in joined else None,
                "base_models": bases,
                "base_model_relation": relation,
                "sdk": None if not space or r.sdk is UNSET else r.sdk,
                "space_models": None if not space or r.s_models is UNSET else r.s_models,
                "space_datasets": None if not space or r.s_datasets is UNSET else r.s_datasets,
                "card_fields": sorted(card) if card is not None else None,
                "downloads": None if space else r.downloads,
                "downloads_all_time": None if space else r.downloads_all,
                "likes": r.likes,
                "trending_score": r.trending,
            }
        )
    return rows
