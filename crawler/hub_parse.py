"""Hub API JSON -> rows of `storage.schemas` (HUB_REPO, HUB_COMMITS, HUB_DISCUSSIONS,
HUB_CARDS). Pure functions, no I/O; a record that does not fit raises `Malformed` with the
reason, and the caller files it in ops/crawl_events.

Also holds the request vocabulary of the listing: the exact `expand` fields the measures
need per repo type (metrics.md), nothing more.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from crawler.errors import Malformed

# Exactly what the measures need (metrics.md), per repo type. `cardData` carries license,
# base_model(+_relation) and the card metadata keys; tags carry library / license /
# base_model: tags. `_id` and `id` always come back.
EXPAND: dict[str, tuple[str, ...]] = {
    "model": (
        "author",
        "cardData",
        "createdAt",
        "disabled",
        "downloads",
        "downloadsAllTime",
        "gated",
        "lastModified",
        "library_name",
        "likes",
        "pipeline_tag",
        "private",
        "sha",
        "tags",
        "trendingScore",
    ),
    "dataset": (
        "author",
        "cardData",
        "createdAt",
        "disabled",
        "downloads",
        "downloadsAllTime",
        "gated",
        "lastModified",
        "likes",
        "private",
        "sha",
        "tags",
        "trendingScore",
    ),
    "space": (
        "author",
        "cardData",
        "createdAt",
        "datasets",
        "disabled",
        "lastModified",
        "likes",
        "models",
        "private",
        "sdk",
        "sha",
        "tags",
        "trendingScore",
    ),
}

# Fields the Hub sends for every repo of the type when expanded; the rest of EXPAND
# (library_name, pipeline_tag, cardData) it omits for repos that have none. Both official
# clients also treat a repo's `author` and a Space's `sdk`, `models` and `datasets` as
# optional (huggingface_hub `SpaceInfo`, huggingface.js `ApiSpaceInfo`; field-notes §1):
# absent, they are stored as null (unknown), never filled in. A null among OPTIONAL is
# suspect (the Hub omits, it does not send null); a Space's links may be either.
OPTIONAL = frozenset({"library_name", "pipeline_tag", "cardData", "author"})
SPACE_OPTIONAL = frozenset({"sdk", "models", "datasets"})
REQUIRED: dict[str, tuple[str, ...]] = {
    kind: tuple(f for f in fields if f not in OPTIONAL | SPACE_OPTIONAL)
    for kind, fields in EXPAND.items()
}

RELATIONS = ("finetune", "adapter", "quantized", "merge")
CARD_SAMPLE_BYTES = 4096

_YAML_BLOCK = re.compile(r"^(\s*---(?:\r\n|\r|\n))([\S\s]*?)((?:\r\n|\r|\n)---[ \t]*(\r\n|\n|$))")
_HEADING = re.compile(r"^ {0,3}(#{1,6})[ \t]+(.+?)[ \t#]*$")
_SETEXT = re.compile(r"^ {0,3}(=+|-+)[ \t]*$")
_FENCE = re.compile(r"^ {0,3}(```|~~~)")
_TOP_KEY = re.compile(r"^([A-Za-z0-9_][A-Za-z0-9_\-\.]*)[ \t]*:")


def parse_time(value: Any, field: str) -> datetime | None:
    """ISO 8601 (`2024-05-01T12:00:00.000Z`) -> aware UTC datetime; None stays None."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise Malformed(f"{field}: expected an ISO 8601 string, got {type(value).__name__}")
    try:
        dt = datetime.fromisoformat(value)  # 3.11 reads a trailing `Z` itself
    except ValueError:
        raise Malformed(f"{field}: not an ISO 8601 time: {value[:40]!r}") from None
    if dt.tzinfo is None:
        return dt.replace(tzinfo=UTC)
    return dt if dt.tzinfo is UTC else dt.astimezone(UTC)


def _str(item: dict[str, Any], key: str, field: str | None = None) -> str | None:
    v = item.get(key)
    if v is None or isinstance(v, str):
        return v
    raise Malformed(f"{field or key}: expected a string, got {type(v).__name__}")


def _int(item: dict[str, Any], key: str) -> int | None:
    v = item.get(key)
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, int):
        raise Malformed(f"{key}: expected an integer, got {type(v).__name__}")
    return v


def _float(item: dict[str, Any], key: str) -> float | None:
    v = item.get(key)
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise Malformed(f"{key}: expected a number, got {type(v).__name__}")
    return float(v)


def _bool(item: dict[str, Any], key: str) -> bool | None:
    v = item.get(key)
    if v is None or isinstance(v, bool):
        return v
    raise Malformed(f"{key}: expected true or false, got {type(v).__name__}")


def _str_list(item: dict[str, Any], key: str) -> list[str] | None:
    v = item.get(key)
    if v is None:
        return None
    if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
        raise Malformed(f"{key}: expected a list of strings")
    return list(v)


def _gated(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    raise Malformed(f"gated: expected false, 'auto' or 'manual', got {value!r}")


def license_of(card: dict[str, Any] | None, tags: list[str] | None) -> str | None:
    """The card's `license`, else the first `license:` tag (metrics.md, Licenses)."""
    if card:
        lic = card.get("license")
        if isinstance(lic, list):
            lic = next((x for x in lic if isinstance(x, str) and x), None)
        if isinstance(lic, str) and lic:
            return lic
    for tag in tags or ():
        if tag.startswith("license:") and len(tag) > len("license:"):
            return tag[len("license:") :]
    return None


def base_models_of(
    card: dict[str, Any] | None, tags: list[str] | None
) -> tuple[list[str] | None, str | None]:
    """Declared base models (card `base_model`, then `base_model:` tags) and the relation.

    The relation is the card's `base_model_relation`, else the one named by a
    `base_model:<relation>:<id>` tag. None when the model declares no base model.
    """
    bases: list[str] = []
    relation: str | None = None
    if card:
        bm = card.get("base_model")
        if isinstance(bm, str) and bm:
            bases.append(bm)
        elif isinstance(bm, list):
            bases.extend(x for x in bm if isinstance(x, str) and x)
        rel = card.get("base_model_relation")
        if isinstance(rel, str) and rel in RELATIONS:
            relation = rel
    for tag in tags or ():
        if not tag.startswith("base_model:"):
            continue
        rest = tag[len("base_model:") :]
        head, sep, tail = rest.partition(":")
        if sep and head in RELATIONS:
            if relation is None:
                relation = head
            rest = tail
        if rest and rest not in bases:
            bases.append(rest)
    unique = list(dict.fromkeys(bases))  # a card may list a base twice
    return (unique or None), (relation if unique else None)


def repo_row(item: Any, repo_type: str) -> dict[str, Any]:
    """One listing (or repo info) item -> a HUB_REPO row. Raises Malformed.

    A well-formed record takes the fast path (`_fast_row`: exact types checked inline);
    anything it does not expect goes the checked way (`checked_row`), which names the
    field. Both give the same row for every record the fast path accepts (a property test
    in tests/crawler/test_parse_fast.py holds them to it).
    """
    row = _fast_row(item, repo_type)
    return row if row is not None else checked_row(item, repo_type)


_str_t, _int_t, _bool_t, _float_t, _list_t, _dict_t = str, int, bool, float, list, dict
_fromiso = datetime.fromisoformat


def _fast_time(v: Any) -> datetime | None:
    """An ISO time already in UTC (the Hub's `...Z`), else None (the checked path)."""
    if type(v) is not _str_t:
        return None
    try:
        dt = _fromiso(v)
    except ValueError:
        return None
    return dt if dt.tzinfo is UTC else None


def _fast_strs(v: Any) -> str | None:
    """A list of strings joined by NUL (for prefix tests), else None."""
    if type(v) is not _list_t:
        return None
    try:
        return "\x00".join(v)
    except TypeError:
        return None


def _fast_row(item: Any, repo_type: str) -> dict[str, Any] | None:
    """The row of a record whose every field has exactly the expected type and whose
    times are UTC; None for anything else (then `checked_row` decides, and names the
    field). One pass of inline checks: the listing's hot loop (docs/crawler.md)."""
    if type(item) is not _dict_t:
        return None
    g = item.get
    eid, name, author, sha = g("_id"), g("id"), g("author"), g("sha")
    if not (
        type(eid) is _str_t
        and eid
        and type(name) is _str_t
        and name
        and (type(author) is _str_t or "author" not in item)  # optional: absent, not null
        and type(sha) is _str_t
    ):
        return None
    private, disabled, gated, likes = g("private"), g("disabled"), g("gated"), g("likes")
    if not (
        type(private) is _bool_t
        and type(disabled) is _bool_t
        and type(likes) is _int_t
        and (
            type(gated) is _bool_t
            or type(gated) is _str_t
            or (gated is None and repo_type == "space")  # spaces have no `gated` field
        )
    ):
        return None
    trending = g("trendingScore")
    if type(trending) is _int_t:
        trending = float(trending)
    elif type(trending) is not _float_t:
        return None
    created, modified = _fast_time(g("createdAt")), _fast_time(g("lastModified"))
    if created is None or modified is None:
        return None
    tags: Any = g("tags")
    joined = _fast_strs(tags)
    if joined is None:
        return None
    card = g("cardData")
    if card is not None and type(card) is not _dict_t:
        return None
    downloads: Any = None
    downloads_all: Any = None
    library: Any = None
    pipeline: Any = None
    sdk: Any = None
    s_models: Any = None
    s_datasets: Any = None
    bases: list[str] | None = None
    relation: str | None = None
    if repo_type != "space":
        downloads, downloads_all = g("downloads"), g("downloadsAllTime")
        if type(downloads) is not _int_t or type(downloads_all) is not _int_t:
            return None
    if repo_type == "model":
        library, pipeline = g("library_name"), g("pipeline_tag")
        if not (
            (library is None or type(library) is _str_t)
            and (pipeline is None or type(pipeline) is _str_t)
        ):
            return None
        # without a card `base_model` and a `base_model:` tag there is none (nor relation)
        if "base_model:" in joined or (card and "base_model" in card):
            bases, relation = base_models_of(card, tags)
    elif repo_type == "space":
        # each optional (SPACE_OPTIONAL): absent or null is stored as null
        sdk, s_models, s_datasets = g("sdk"), g("models"), g("datasets")
        if sdk is not None and type(sdk) is not _str_t:
            return None
        if s_models is not None:
            if _fast_strs(s_models) is None:
                return None
            s_models = list(s_models)
        if s_datasets is not None:
            if _fast_strs(s_datasets) is None:
                return None
            s_datasets = list(s_datasets)
    elif repo_type != "dataset":
        return None
    return {
        "entity_id": eid,
        "name": name,
        "author": author,
        "created_at": created,
        "last_modified": modified,
        "sha": sha,
        "private": private,
        "gated": ("true" if gated else "false") if type(gated) is _bool_t else gated,
        "disabled": disabled,
        "library_name": library,
        "pipeline_tag": pipeline,
        "tags": list(tags),
        "license": license_of(card, tags) if card or "license:" in joined else None,
        "base_models": bases,
        "base_model_relation": relation,
        "sdk": sdk,
        "space_models": s_models,
        "space_datasets": s_datasets,
        "card_fields": sorted(card) if card is not None else None,
        "downloads": downloads,
        "downloads_all_time": downloads_all,
        "likes": likes,
        "trending_score": trending,
    }


def checked_row(item: Any, repo_type: str) -> dict[str, Any]:
    """`repo_row` field by field: every check with its own message. Raises Malformed."""
    if not isinstance(item, dict):
        raise Malformed(f"listing item: expected an object, got {type(item).__name__}")
    entity_id = item.get("_id")
    if not isinstance(entity_id, str) or not entity_id:
        raise Malformed("_id: missing or not a string")
    name = item.get("id")
    if not isinstance(name, str) or not name:
        raise Malformed("id: missing or not a string")
    for key in REQUIRED[repo_type]:
        if item.get(key) is None:
            raise Malformed(f"{key}: {'null' if key in item else 'missing'}")
    card = item.get("cardData")
    if card is not None and not isinstance(card, dict):
        raise Malformed(f"cardData: expected an object, got {type(card).__name__}")
    tags = _str_list(item, "tags")
    bases, relation = base_models_of(card, tags) if repo_type == "model" else (None, None)
    row: dict[str, Any] = {
        "entity_id": entity_id,
        "name": name,
        "author": _str(item, "author"),
        "created_at": parse_time(item.get("createdAt"), "createdAt"),
        "last_modified": parse_time(item.get("lastModified"), "lastModified"),
        "sha": _str(item, "sha"),
        "private": _bool(item, "private"),
        "gated": _gated(item.get("gated")),
        "disabled": _bool(item, "disabled"),
        "library_name": _str(item, "library_name") if repo_type == "model" else None,
        "pipeline_tag": _str(item, "pipeline_tag") if repo_type == "model" else None,
        "tags": tags,
        "license": license_of(card, tags),
        "base_models": bases,
        "base_model_relation": relation,
        "sdk": _str(item, "sdk") if repo_type == "space" else None,
        "space_models": _str_list(item, "models") if repo_type == "space" else None,
        "space_datasets": _str_list(item, "datasets") if repo_type == "space" else None,
        "card_fields": sorted(card) if card is not None else None,
        "downloads": _int(item, "downloads") if repo_type != "space" else None,
        "downloads_all_time": _int(item, "downloadsAllTime") if repo_type != "space" else None,
        "likes": _int(item, "likes"),
        "trending_score": _float(item, "trendingScore"),
    }
    return row


def suspicious_nulls(item: dict[str, Any]) -> list[str]:
    """Optional fields sent as null: the Hub omits them instead, so a null is suspect."""
    return [k for k in OPTIONAL if k in item and item[k] is None]


# Tag prefixes the Hub derives from card metadata only (a repo without cardData has none).
CARD_TAG_PREFIXES = ("license:", "task_categories:", "size_categories:", "language:")


def card_implied_by_tags(row: dict[str, Any]) -> bool:
    """A row without card metadata whose tags say the card has some (a cut record)."""
    if row.get("card_fields") is not None:
        return False
    return any(t.startswith(CARD_TAG_PREFIXES) for t in row.get("tags") or ())


def presence_mask(row: dict[str, Any]) -> int:
    """Which optional fields a row has (bit 1 library, 2 pipeline, 4 card)."""
    return (
        (1 if row.get("library_name") is not None else 0)
        | (2 if row.get("pipeline_tag") is not None else 0)
        | (4 if row.get("card_fields") is not None else 0)
    )


def commit_rows(
    page: Any, repo_type: str, entity_id: str, known: frozenset[str], snapshot_id: int
) -> tuple[list[dict[str, Any]], bool]:
    """A commits page -> (rows newer than every known commit, reached_known)."""
    if not isinstance(page, list):
        raise Malformed(f"commits page: expected a JSON array, got {type(page).__name__}")
    rows: list[dict[str, Any]] = []
    for c in page:
        if not isinstance(c, dict) or not isinstance(c.get("id"), str):
            raise Malformed("commit: missing `id`")
        if c["id"] in known:
            return rows, True
        authors = c.get("authors") or []
        if not isinstance(authors, list):
            raise Malformed("commit authors: expected a list")
        users = []
        for a in authors:
            if not isinstance(a, dict) or not isinstance(a.get("user"), str):
                raise Malformed("commit author: missing `user`")
            users.append(a["user"])
        rows.append(
            {
                "repo_type": repo_type,
                "entity_id": entity_id,
                "commit_id": c["id"],
                "date": parse_time(c.get("date"), "date"),
                "title": _str(c, "title"),
                "authors": users,
                "snapshot_id": snapshot_id,
            }
        )
    return rows, False


def discussion_rows(
    page: Any, repo_type: str, entity_id: str, snapshot_id: int
) -> tuple[list[dict[str, Any]], bool]:
    """A discussions page -> (rows, has_next) using the client's `start + len < count`."""
    if not isinstance(page, dict) or not isinstance(page.get("discussions"), list):
        raise Malformed("discussions page: expected an object with a `discussions` list")
    rows = []
    for d in page["discussions"]:
        if not isinstance(d, dict):
            raise Malformed("discussion: expected an object")
        num = d.get("num")
        if isinstance(num, bool) or not isinstance(num, int):
            raise Malformed("discussion: `num` missing or not an integer")
        author = d.get("author")
        name = author.get("name") if isinstance(author, dict) else None
        is_pr = d.get("isPullRequest")
        if not isinstance(is_pr, bool):
            raise Malformed("discussion: `isPullRequest` missing or not a boolean")
        rows.append(
            {
                "repo_type": repo_type,
                "entity_id": entity_id,
                "num": num,
                "title": _str(d, "title"),
                "author": name if isinstance(name, str) else "deleted",
                "is_pull_request": is_pr,
                "status": _str(d, "status"),
                "created_at": parse_time(d.get("createdAt"), "createdAt"),
                "snapshot_id": snapshot_id,
            }
        )
    count, start = page.get("count"), page.get("start", 0)
    if isinstance(count, bool) or not isinstance(count, int):
        raise Malformed("discussions page: `count` missing or not an integer")
    if isinstance(start, bool) or not isinstance(start, int):
        start = 0
    return rows, start + len(page["discussions"]) < count


def split_card(text: str) -> tuple[list[str], str]:
    """README text -> (YAML front-matter top-level keys, markdown body)."""
    m = _YAML_BLOCK.match(text)
    if not m:
        return [], text
    keys = []
    for line in m.group(2).splitlines():
        km = _TOP_KEY.match(line)
        if km and km.group(1) not in keys:
            keys.append(km.group(1))
    return keys, text[m.end() :]


def headings_of(body: str) -> list[str]:
    """Markdown headings in order: ATX (`## Usage`) and setext, outside code fences."""
    out: list[str] = []
    fenced = False
    prev = ""
    for line in body.splitlines():
        if _FENCE.match(line):
            fenced = not fenced
            prev = ""
            continue
        if fenced:
            continue
        m = _HEADING.match(line)
        if m:
            out.append(m.group(2).strip())
        elif _SETEXT.match(line) and prev.strip() and not _HEADING.match(prev):
            out.append(prev.strip())
        prev = line
    return out


def card_row(
    raw: bytes | None, repo_type: str, entity_id: str, sha: str | None, snapshot_id: int
) -> dict[str, Any]:
    """README.md bytes (None when the repo has none) -> a HUB_CARDS row."""
    if raw is None:
        return {
            "repo_type": repo_type,
            "entity_id": entity_id,
            "sha": sha,
            "snapshot_id": snapshot_id,
            "length": 0,
            "headings": [],
            "metadata_fields": [],
            "text_sample": "",
        }
    text = raw.decode("utf-8-sig", errors="replace")
    fields, body = split_card(text)
    sample = body.lstrip().encode("utf-8")[:CARD_SAMPLE_BYTES].decode("utf-8", errors="ignore")
    return {
        "repo_type": repo_type,
        "entity_id": entity_id,
        "sha": sha,
        "snapshot_id": snapshot_id,
        "length": len(raw),
        "headings": headings_of(body),
        "metadata_fields": fields,
        "text_sample": sample,
    }
