"""Where each source's rows live, and the physical schemas the store adds to `schemas.py`.

Every entity gets an integer surrogate `entity_key` (int64) per source at first sight:
the previous maximum plus its rank among the sorted new ids, so a finish re-run after a
kill assigns the same keys. An entity that re-appears after a delete gets a new key (a
new incarnation); `entity_id` stays the identity users see.

Two change-encoded tables per source family (docs/storage.md, "Tables"):

* attributes (`hub/repos`, `registry/packages`, `custom/NAME`): `source`, `entity_key`,
  `entity_id`, the slow logical columns, `valid_from` (snapshot id) and `op`:
  `upsert` (new or an attribute changed: the full attribute row), `delete` (tombstone:
  absent from a complete listing), `keep` (a keyframe copy of an unchanged entity);
* counters (`hub/repo_counters`, `registry/package_counters`): `source`, `entity_key`,
  `valid_from` and the fast-moving counters; a row whenever any counter of a live entity
  changed (all of them at a counter keyframe). Rows sorted by key, so the key column's
  delta encoding costs ~1 byte. Custom sources have no counters table.

Observation times (`observed/times`, every source): `source`, `entity_key`, `valid_from`,
`observed_at`, written like a counters table of one column (a row when it changed; every
listed key at an observation keyframe: reads.observed_keyframe), so the answer time that
moves every crawl never makes an attribute or counters row.

Each table is partitioned by `source` (custom tables hold one source and are not).

This module is the one place that spells a table's name and builds a transaction id
(`txn_id`): every other module asks here.
"""

from __future__ import annotations

import re
from typing import Literal

import pyarrow as pa

from storage import schemas
from storage.errors import UnknownSource

OP_UPSERT = "upsert"
OP_DELETE = "delete"
OP_KEEP = "keep"


def counters_of(source: str) -> tuple[str, ...]:
    """Fast-moving columns kept in the source's counters table."""
    if source in schemas.HUB_SOURCES:
        return schemas.HUB_COUNTERS
    if schemas.is_registry_source(source):
        return schemas.REGISTRY_COUNTERS
    return ()


META_COLUMNS = ("source", "valid_from", "op", "entity_key")
KEY = "entity_key"
# observation times of every source, partitioned by source (schemas.OBSERVED); created
# at the first snapshot whose rows carry an `observed_at`
OBSERVED = "observed/times"
OBSERVED_AT = schemas.OBSERVED_AT

CATALOG = "catalog/snapshots"
HEARTBEATS = "catalog/heartbeats"
EVENTS = "ops/crawl_events"
# the audit trail of `hubtide purge` (storage/purge.py): one row per step of each purge
PURGES = "ops/purges"
TOPK = "derived/topk"
# the `by` of the derived/topk rows that list a `top` snapshot's members (every entity its
# listing named): what an as-of read of that snapshot returns
COVERED = "__covered"
STAGING = "staging/batches"
DetailKind = Literal["commits", "discussions", "cards"]
DETAIL_KINDS: tuple[DetailKind, ...] = ("commits", "discussions", "cards")
# the attribute and counter tables of the built-in source families (custom ones: custom/NAME)
FAMILY_TABLES = ("hub/repos", "hub/repo_counters", "registry/packages", "registry/package_counters")
# The app id of a window compaction's commit (storage/maintenance.py, "COMPACT_APP").
COMPACT_APP = "hubtide:compact"


def purge_app(purge_id: int) -> str:
    """The app id of purge `purge_id`'s commits (storage/purge.py): version 1 in each
    table it rewrites, its steps' versions in `ops/purges`."""
    return f"hubtide:purge:{purge_id}"


# partitioned by snapshot so dropping a finished snapshot's batches is a metadata-only delete
STAGING_PARTITION = ["source", "snapshot_id"]
STAGING_SCHEMA = pa.schema(
    [
        pa.field("source", pa.string()),
        pa.field("snapshot_id", pa.int64()),
        pa.field("seq", pa.int64()),
        pa.field("checkpoint", pa.string()),
        pa.field("rows", pa.int64()),
        # the batch's rows as one Arrow IPC stream: one staging table serves every source
        # (custom ones included) and a batch plus its checkpoint land in one atomic commit
        pa.field("payload", pa.large_binary()),
    ]
)

_CUSTOM_NAME = re.compile(r"^[A-Za-z0-9_.\-]+$")


def check_source(source: str) -> None:
    """Raise UnknownSource for a name that is not a valid source name."""
    if source in schemas.BUILTIN_SOURCES or source.startswith("registry:"):
        if source.startswith("registry:") and not source.split(":", 1)[1]:
            raise UnknownSource(f"source {source!r}: empty registry name")
        return
    if source.startswith(schemas.CUSTOM_PREFIX):
        name = source[len(schemas.CUSTOM_PREFIX) :]
        if _CUSTOM_NAME.match(name):
            return
        raise UnknownSource(
            f"source {source!r}: custom names use letters, digits, '_', '.', '-' only"
        )
    raise UnknownSource(
        f"source {source!r} is not valid; use {', '.join(schemas.BUILTIN_SOURCES)}, "
        "registry:NAME or custom:NAME"
    )


def entity_table(source: str) -> str:
    """The relative path of the change-encoded table holding `source`."""
    check_source(source)
    if source in schemas.HUB_SOURCES:
        return "hub/repos"
    if schemas.is_registry_source(source):
        return "registry/packages"
    return "custom/" + source[len(schemas.CUSTOM_PREFIX) :]


def counter_table(source: str) -> str | None:
    """The relative path of the counters table of `source`; None for custom sources."""
    if source in schemas.HUB_SOURCES:
        return "hub/repo_counters"
    if schemas.is_registry_source(source):
        return "registry/package_counters"
    return None


def is_custom(source: str) -> bool:
    return source.startswith(schemas.CUSTOM_PREFIX)


def physical_schema(logical: pa.Schema, counters: tuple[str, ...] = ()) -> pa.Schema:
    """Attributes table: `source`, `entity_key`, `entity_id`, the logical columns that are
    not counters, `valid_from`, `op`."""
    # all nullable: frames coming back from Polars lose the flag, and delta-rs would then
    # refuse the append; the writer guarantees entity_key/valid_from/op are never null
    fields = [pa.field("source", pa.string()), pa.field(KEY, pa.int64())]
    fields += [
        f.with_nullable(True)
        for f in logical
        if f.name not in (*META_COLUMNS, *counters, OBSERVED_AT)
    ]
    fields += [pa.field("valid_from", pa.int64()), pa.field("op", pa.string())]
    return pa.schema(fields)


def counter_schema(logical: pa.Schema, counters: tuple[str, ...]) -> pa.Schema:
    """Counters table: `source`, `entity_key`, `valid_from`, the counters."""
    fields = [pa.field("source", pa.string()), pa.field(KEY, pa.int64())]
    fields.append(pa.field("valid_from", pa.int64()))
    fields += [logical.field(c).with_nullable(True) for c in counters]
    return pa.schema(fields)


def partition_of(source: str) -> list[str] | None:
    return None if is_custom(source) else ["source"]


def detail_table(kind: DetailKind) -> str:
    """The relative path of a Hub details table (`hub/commits`, ...)."""
    return f"hub/{kind}"


TxnPart = Literal[
    "catalog",
    "changes",
    "counters",
    "observed",
    "topk",
    "commits",
    "discussions",
    "cards",
    "heartbeat",
]


def txn_id(source: str, snapshot_id: int, part: TxnPart | None = None) -> str:
    """The app id of a snapshot's transactions (the exactly-once key; part of the disk
    format, so stores written before keep resuming).

    `{source}:{id}` for its staged batches (version = the highest seq staged), and
    `{source}:{id}:{part}` for its catalog rows (0 running, 1 terminal), its change rows
    (1 keyframe, 0 not), counters and observation times (the same), top-k members and each details kind (version = batch
    seq), and its heartbeats (version = the beat's Unix time in ms)."""
    app = f"{source}:{snapshot_id}"
    return app if part is None else f"{app}:{part}"


def fixed_tables() -> dict[str, tuple[pa.Schema, list[str] | None, bool]]:
    """The tables every store has from its first open: rel -> (schema, partition columns,
    whether column statistics are kept: not for tables read whole or by partition)."""
    tables: dict[str, tuple[pa.Schema, list[str] | None, bool]] = {
        CATALOG: (schemas.CATALOG_SNAPSHOTS, None, False),
        STAGING: (STAGING_SCHEMA, STAGING_PARTITION, False),
    }
    for kind in DETAIL_KINDS:
        tables[detail_table(kind)] = (schemas.DETAIL_SCHEMAS[kind], None, True)
    tables[TOPK] = (schemas.DERIVED_TOPK, None, True)
    tables[EVENTS] = (schemas.CRAWL_EVENTS, None, True)
    tables[HEARTBEATS] = (schemas.HEARTBEATS, None, False)
    return tables
