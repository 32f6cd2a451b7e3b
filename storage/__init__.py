"""The snapshot store: Delta tables of change-encoded snapshots under one root URI.

Public API (docs/contracts.md): `Store`, `SnapshotWriter`, `SnapshotInfo`, `CrawlEvent`,
`TableStats`, `MaintenanceReport`, `parse_at` (the date rule), and the errors in `storage.errors`.

The names are exported lazily (PEP 562): `import storage` or `from storage.errors import
StoreError` loads no module that imports pyarrow, so a command that needs only the
errors, or reads the catalog without the facade, does not pay pyarrow's ~170 ms start-up
(issue 15 point 6). `from storage import Store` imports `storage.store` on first use.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from storage.errors import (
    AmbiguousName,
    ColumnNotFound,
    CommitConflict,
    EntityNotFound,
    SchemaViolation,
    ShrinkRefused,
    SnapshotNotFound,
    SnapshotOrder,
    StoreError,
    UnknownSource,
)

if TYPE_CHECKING:  # what the lazy names are, for type checkers and readers
    from storage.catalog import SnapshotInfo, parse_at
    from storage.derived import DerivedFrame
    from storage.store import MaintenanceReport, Store, TableMaintenance, TableStats
    from storage.writer import CrawlEvent, SnapshotWriter

# name -> the module that defines it, imported when the name is first asked for
_LAZY = {
    "DerivedFrame": "storage.derived",
    "SnapshotInfo": "storage.catalog",
    "parse_at": "storage.catalog",
    "MaintenanceReport": "storage.store",
    "Store": "storage.store",
    "TableMaintenance": "storage.store",
    "TableStats": "storage.store",
    "CrawlEvent": "storage.writer",
    "SnapshotWriter": "storage.writer",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        # an AttributeError (not an ImportError) lets `from storage import schemas`
        # fall back to importing the submodule, as it did before the names were lazy
        raise AttributeError(f"module 'storage' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})


__all__ = [
    "AmbiguousName",
    "ColumnNotFound",
    "CommitConflict",
    "CrawlEvent",
    "DerivedFrame",
    "EntityNotFound",
    "MaintenanceReport",
    "SchemaViolation",
    "ShrinkRefused",
    "SnapshotInfo",
    "SnapshotNotFound",
    "SnapshotOrder",
    "SnapshotWriter",
    "Store",
    "StoreError",
    "TableMaintenance",
    "TableStats",
    "UnknownSource",
    "parse_at",
]
