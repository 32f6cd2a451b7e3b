"""The snapshot store: Delta tables of change-encoded snapshots under one root URI.

Public API (docs/contracts.md): `Store`, `SnapshotWriter`, `SnapshotInfo`, `CrawlEvent`,
`TableStats`, `MaintenanceReport`, `parse_at` (the date rule), and the errors in `storage.errors`.
"""

from storage.catalog import SnapshotInfo, parse_at
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
from storage.store import MaintenanceReport, Store, TableMaintenance, TableStats
from storage.writer import CrawlEvent, SnapshotWriter

__all__ = [
    "AmbiguousName",
    "ColumnNotFound",
    "CommitConflict",
    "CrawlEvent",
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
