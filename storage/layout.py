"""Where each source's rows live, and the physical schemas the store adds to `schemas.py`.

Change-encoded entity tables hold `source`, the logical columns, `valid_from` (the
snapshot id) and `op`:

* `upsert` - the entity is new or changed in that snapshot;
* `delete` - a tombstone: the entity was absent from that complete listing;
* `keep`   - a keyframe copy of an unchanged entity (not a change; skipped by history);
* `count`  - only counters (downloads, likes, ...) changed: `entity_id` and the counters,
  every attribute null. A third of the Hub changes counters daily and ~1 % anything else,
  so these narrow rows are most of the change rows; they compress ~7x better than full
  rows and decode far faster (measured: docs/storage.md).

Hub sources share `hub/repos` and registries share `registry/packages`, each partitioned by
`source`; a `custom:NAME` source gets `custom/NAME` with the columns of its first import.
"""

from __future__ import annotations

import re

import pyarrow as pa

from storage import schemas
from storage.errors import UnknownSource

OP_UPSERT = "upsert"
OP_DELETE = "delete"
OP_KEEP = "keep"
OP_COUNT = "count"


def counters_of(source: str) -> tuple[str, ...]:
    """Fast-moving columns that may change alone in an `op = count` row."""
    if source in schemas.HUB_SOURCES:
        return schemas.HUB_COUNTERS
    if schemas.is_registry_source(source):
        return schemas.REGISTRY_COUNTERS
    return ()


META_COLUMNS = ("source", "valid_from", "op")

STAGING = "staging/batches"
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


def is_custom(source: str) -> bool:
    return source.startswith(schemas.CUSTOM_PREFIX)


def physical_schema(logical: pa.Schema) -> pa.Schema:
    """`source` + logical columns + `valid_from` + `op`."""
    # all nullable: frames coming back from Polars lose the flag, and delta-rs would then
    # refuse the append; the writer guarantees entity_id/valid_from/op are never null
    fields = [pa.field("source", pa.string())]
    fields += [f.with_nullable(True) for f in logical if f.name not in META_COLUMNS]
    fields += [pa.field("valid_from", pa.int64()), pa.field("op", pa.string())]
    return pa.schema(fields)


def partition_of(source: str) -> list[str] | None:
    return None if is_custom(source) else ["source"]
