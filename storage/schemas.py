"""Every table's pyarrow schema and every source's logical columns, defined once.

Two layers live here:

* **Logical entity schemas** (`HUB_REPO`, `REGISTRY_PACKAGE`): the columns a crawler or an
  import hands to the snapshot writer, and the columns `Store.as_of` returns. These are the
  contract between crawler, storage and analytics.
* **Physical table schemas** (`CATALOG_SNAPSHOTS`, `HUB_COMMITS`, ...): what is on disk.
  Change-encoded tables add `entity_key`, `valid_from` (the snapshot id) and `op` to
  the logical columns, with counters in a table apart (storage/layout.py).

Timestamps are UTC microseconds. Lists are `list<string>`. `entity_id` is the stable key:
the Hub's `_id` for repos (the repo name `name` is an attribute that can change, so a
rename is an update), the package name for registries.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pyarrow as pa

TS = pa.timestamp("us", tz="UTC")
STR_LIST = pa.list_(pa.string())
# When a row's values were observed (the listing page's answer time, ecosyste.ms's
# `last_synced_at`), apart from the snapshot's instant: every source's rows may carry it
# and as-of reads return it (null: unknown). Never an attribute: it is kept in a table of
# its own (`OBSERVED`), so a crawl that sees nothing change writes no change rows.
OBSERVED_AT = "observed_at"
OBSERVED_FIELD = pa.field(OBSERVED_AT, TS)

# ---------------------------------------------------------------------------------------
# Sources
# ---------------------------------------------------------------------------------------

HUB_SOURCES = ("hub:model", "hub:dataset", "hub:space")
REGISTRY_SOURCES = ("npm", "pypi")
BUILTIN_SOURCES = HUB_SOURCES + REGISTRY_SOURCES
CUSTOM_PREFIX = "custom:"


def repo_type_of(source: str) -> str:
    """`hub:model` -> `model`. Raises ValueError for a non-Hub source."""
    if source not in HUB_SOURCES:
        raise ValueError(
            f"{source!r} is not a Hub source; Hub sources are {', '.join(HUB_SOURCES)}"
        )
    return source.split(":", 1)[1]


def is_registry_source(source: str) -> bool:
    """npm, pypi, and any other ecosyste.ms registry configured as `registry:NAME` or a bare name."""
    return source in REGISTRY_SOURCES or source.startswith("registry:")


# ---------------------------------------------------------------------------------------
# Logical entity schemas (writer input, as_of output)
# ---------------------------------------------------------------------------------------

HUB_REPO = pa.schema(
    [
        pa.field("entity_id", pa.string(), nullable=False),  # the Hub's `_id`
        pa.field("name", pa.string()),  # `namespace/name`; changes on rename
        pa.field("author", pa.string()),
        pa.field("created_at", TS),
        pa.field("last_modified", TS),
        pa.field("sha", pa.string()),
        pa.field("private", pa.bool_()),
        pa.field("gated", pa.string()),  # "false" | "auto" | "manual"
        pa.field("disabled", pa.bool_()),
        pa.field("library_name", pa.string()),  # models
        pa.field("pipeline_tag", pa.string()),  # models
        pa.field("tags", STR_LIST),
        pa.field("license", pa.string()),  # card `license`, else a `license:` tag
        pa.field("base_models", STR_LIST),  # declared base models (card + base_model: tags)
        pa.field("base_model_relation", pa.string()),  # finetune|adapter|quantized|merge
        pa.field("sdk", pa.string()),  # spaces
        pa.field("space_models", STR_LIST),  # spaces: models they declare
        pa.field("space_datasets", STR_LIST),  # spaces: datasets they declare
        pa.field("card_fields", STR_LIST),  # card metadata keys present (cardData keys)
        # fast-moving counters
        pa.field("downloads", pa.int64()),  # rolling 30 days; null for spaces
        pa.field("downloads_all_time", pa.int64()),
        pa.field("likes", pa.int64()),
        pa.field("trending_score", pa.float64()),
        OBSERVED_FIELD,  # when the listing page carrying the row answered
    ]
)

REGISTRY_PACKAGE = pa.schema(
    [
        pa.field("entity_id", pa.string(), nullable=False),  # package name
        pa.field("name", pa.string()),
        pa.field("ecosystem", pa.string()),
        pa.field("description", pa.string()),
        pa.field("licenses", pa.string()),
        pa.field("repository_url", pa.string()),
        pa.field("latest_version", pa.string()),
        pa.field("latest_release_at", TS),
        pa.field("first_release_at", TS),
        pa.field("versions_count", pa.int64()),
        pa.field("downloads_period", pa.string()),  # "last-month" | "total" | null
        # fast-moving counters
        pa.field("downloads", pa.int64()),
        pa.field("dependent_packages", pa.int64()),
        pa.field("dependent_repos", pa.int64()),
        OBSERVED_FIELD,  # ecosyste.ms's `last_synced_at`, else the page's answer time
    ]
)

# Counters change every day for a third of the Hub; attributes for ~1 %. Storage keeps
# them in a narrow table apart (measured: docs/storage.md).
HUB_COUNTERS = ("downloads", "downloads_all_time", "likes", "trending_score")
REGISTRY_COUNTERS = ("downloads", "dependent_packages", "dependent_repos")

# Popularity columns ranked into derived/topk when a snapshot completes.
POPULARITY_COLUMNS: dict[str, tuple[str, ...]] = {
    "hub:model": ("downloads", "likes", "downloads_all_time"),
    "hub:dataset": ("downloads", "likes", "downloads_all_time"),
    "hub:space": ("likes",),
    "npm": ("downloads", "dependent_packages"),
    "pypi": ("downloads", "dependent_packages"),
}
DEFAULT_POPULARITY: dict[str, str] = {"hub:space": "likes"}  # everything else: downloads


def entity_schema(source: str) -> pa.Schema | None:
    """The logical schema of a built-in source, or None for a `custom:` source."""
    if source in HUB_SOURCES:
        return HUB_REPO
    if is_registry_source(source):
        return REGISTRY_PACKAGE
    return None


def rankable_columns(schema: pa.Schema) -> list[str]:
    """The columns a ranking (`top_k`'s `by`) may use: the integer and float ones."""
    return [f.name for f in schema if pa.types.is_integer(f.type) or pa.types.is_floating(f.type)]


# ---------------------------------------------------------------------------------------
# Physical tables
# ---------------------------------------------------------------------------------------

SNAPSHOT_STATUSES = ("running", "complete", "partial", "failed")

CATALOG_SNAPSHOTS = pa.schema(
    [
        pa.field("source", pa.string(), nullable=False),
        pa.field("snapshot_id", pa.int64(), nullable=False),  # increasing per source
        pa.field("run_id", pa.string()),
        pa.field("status", pa.string(), nullable=False),  # one of SNAPSHOT_STATUSES
        pa.field("as_of", TS),  # the instant the listing describes (crawl start, or import --at)
        pa.field("started_at", TS),
        pa.field("finished_at", TS),
        pa.field("entities", pa.int64()),  # entities in the listing
        pa.field("upserts", pa.int64()),
        pa.field("tombstones", pa.int64()),
        pa.field("rejected", pa.int64()),
        pa.field("requests", pa.int64()),
        pa.field("errors", pa.int64()),
        pa.field("keyframe", pa.bool_()),  # the attributes table got a full copy
        pa.field("code_version", pa.string()),
        pa.field("message", pa.string()),  # why partial / failed
        # change rows this snapshot wrote to the attributes / counters table, and whether
        # the counters table got a full copy: keyframes are written by cost (storage/)
        pa.field("attribute_rows", pa.int64()),
        pa.field("counter_rows", pa.int64()),
        pa.field("counters_keyframe", pa.bool_()),
        # what the listing covers (storage/catalog.py, COVERAGES): `full` (absence means
        # gone), `top` (the top `top_n` by `top_by`: absence means "not in the top") or
        # `subset` (a filtered listing); null in stores written before: `full`
        pa.field("coverage", pa.string()),
        pa.field("top_by", pa.string()),
        pa.field("top_n", pa.int64()),
        # an import's provenance (storage/importing.py): a custom source's id column name
        # (what its outputs call entity_id) and the imported file's `sha256:HEX`, so the
        # same file at the same instant is not imported twice; null for crawls
        pa.field("id_column", pa.string()),
        pa.field("digest", pa.string()),
    ]
)

HUB_COMMITS = pa.schema(
    [
        pa.field("repo_type", pa.string(), nullable=False),
        pa.field("entity_id", pa.string(), nullable=False),
        pa.field("commit_id", pa.string(), nullable=False),
        pa.field("date", TS),
        pa.field("title", pa.string()),
        pa.field("authors", STR_LIST),  # `authors[].user`
        pa.field("snapshot_id", pa.int64()),  # first seen in
    ]
)

HUB_DISCUSSIONS = pa.schema(
    [
        pa.field("repo_type", pa.string(), nullable=False),
        pa.field("entity_id", pa.string(), nullable=False),
        pa.field("num", pa.int64(), nullable=False),
        pa.field("title", pa.string()),
        pa.field("author", pa.string()),  # "deleted" when the Hub omits it
        pa.field("is_pull_request", pa.bool_()),
        pa.field("status", pa.string()),  # open|closed|merged|draft
        pa.field("created_at", TS),
        pa.field("snapshot_id", pa.int64()),  # state as seen in this snapshot
    ]
)

HUB_CARDS = pa.schema(
    [
        pa.field("repo_type", pa.string(), nullable=False),
        pa.field("entity_id", pa.string(), nullable=False),
        pa.field("sha", pa.string()),
        pa.field("snapshot_id", pa.int64()),
        pa.field("length", pa.int64()),  # bytes of README.md; 0 when there is none
        pa.field("headings", STR_LIST),  # markdown headings, in order
        pa.field("metadata_fields", STR_LIST),  # YAML front-matter keys present
        pa.field("text_sample", pa.string()),  # first 4 KiB of body text (section rules)
    ]
)

# The members of the top `topk_n` per popularity column, as the source's integer entity
# keys sorted ascending (delta encoding: ~1 byte each). Ranks, names and values are not
# stored: `Store.top_k` reads them back exactly from the state of that snapshot (ties by
# entity_id ascending), for the members only.
DERIVED_TOPK = pa.schema(
    [
        pa.field("source", pa.string(), nullable=False),
        pa.field("snapshot_id", pa.int64(), nullable=False),
        pa.field("by", pa.string(), nullable=False),
        pa.field("entity_key", pa.int64(), nullable=False),
    ]
)

# derived/measures (storage/derived.py): one row per (source, snapshot_id, name, version,
# params) key, the result frame as an Arrow IPC stream in `payload`
DERIVED_MEASURES = pa.schema(
    [
        pa.field("source", pa.string(), nullable=False),
        pa.field("snapshot_id", pa.int64(), nullable=False),
        pa.field("name", pa.string(), nullable=False),
        pa.field("version", pa.int64(), nullable=False),
        pa.field("params", pa.string(), nullable=False),
        pa.field("status", pa.string(), nullable=False),
        pa.field("message", pa.string()),
        pa.field("rows", pa.int64()),
        pa.field("seconds", pa.float64()),
        pa.field("computed_at", pa.timestamp("us", tz="UTC"), nullable=False),
        pa.field("payload", pa.large_binary()),
    ]
)

# Observation times (storage/layout.py, OBSERVED), change-encoded like counters: a row
# per (source, entity_key) whenever the entity's `observed_at` changed (every listed key
# at an observation keyframe: reads.observed_keyframe). Rows sorted by key:
# a Hub crawl pages in creation order, so a page's rows hold consecutive keys and one
# answer time, and the Parquet dictionary's run-length encoding stores a page's times
# in a few bytes (measured: docs/storage.md, "Observation time").
OBSERVED = pa.schema(
    [
        pa.field("source", pa.string()),
        pa.field("entity_key", pa.int64()),
        pa.field("valid_from", pa.int64()),
        OBSERVED_FIELD,
    ]
)

CRAWL_EVENTS = pa.schema(
    [
        pa.field("run_id", pa.string(), nullable=False),
        pa.field("seq", pa.int64(), nullable=False),
        pa.field("source", pa.string()),
        pa.field("snapshot_id", pa.int64()),
        pa.field("at", TS),
        # rejected | malformed | error | retry | gone | forbidden | fallback | plan
        pa.field("kind", pa.string()),
        pa.field("reason", pa.string()),
        pa.field("url", pa.string()),  # never carries a token
        pa.field("payload", pa.string()),  # the raw record or body, truncated to 64 KiB
    ]
)

# catalog/heartbeats: a running snapshot's writer says "still here" every
# crawler.heartbeat_seconds (crawler/heartbeat.py); a new crawl reads the newest beat of a
# running snapshot to tell a live writer from an orphan (its process gone)
HEARTBEATS = pa.schema(
    [
        pa.field("source", pa.string(), nullable=False),
        pa.field("snapshot_id", pa.int64(), nullable=False),
        pa.field("run_id", pa.string()),
        pa.field("host", pa.string()),
        pa.field("pid", pa.int64()),
        pa.field("at", TS),
    ]
)

DETAIL_SCHEMAS: dict[str, pa.Schema] = {
    "commits": HUB_COMMITS,
    "discussions": HUB_DISCUSSIONS,
    "cards": HUB_CARDS,
}


@dataclass(frozen=True)
class TableInfo:
    """One Delta table under the store root."""

    path: str  # relative to the store root
    schema: pa.Schema
    key: tuple[str, ...] = field(default_factory=tuple)


TABLES: dict[str, TableInfo] = {
    "catalog/snapshots": TableInfo(
        "catalog/snapshots", CATALOG_SNAPSHOTS, ("source", "snapshot_id")
    ),
    "hub/commits": TableInfo("hub/commits", HUB_COMMITS, ("repo_type", "entity_id", "commit_id")),
    "hub/discussions": TableInfo(
        "hub/discussions", HUB_DISCUSSIONS, ("repo_type", "entity_id", "num", "snapshot_id")
    ),
    "hub/cards": TableInfo("hub/cards", HUB_CARDS, ("repo_type", "entity_id", "sha")),
    "derived/topk": TableInfo(
        "derived/topk", DERIVED_TOPK, ("source", "snapshot_id", "by", "entity_key")
    ),
    "derived/measures": TableInfo(
        "derived/measures",
        DERIVED_MEASURES,
        ("source", "snapshot_id", "name", "version", "params"),
    ),
    "ops/crawl_events": TableInfo("ops/crawl_events", CRAWL_EVENTS, ("run_id", "seq")),
}
