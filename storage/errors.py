"""The store's exception tree: every error the storage package raises on purpose."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import polars as pl


class StoreError(Exception):
    """Base of every storage error. Messages say what failed and what to try."""


class UnknownSource(StoreError, KeyError):
    """No such source in the store; the message lists the sources that exist."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class SnapshotNotFound(StoreError, LookupError):
    """No such (complete) snapshot; the message lists what exists."""


class ColumnNotFound(StoreError, LookupError):
    """No such column; the message lists the columns that exist."""


class ColumnNotUsable(ColumnNotFound):
    """A column named twice, or ranked by though it is not a number; the message says which
    columns would do."""


class EntityNotFound(StoreError, LookupError):
    """No entity has that id, nor ever had that name."""


class AmbiguousName(EntityNotFound):
    """Several entities had that name; `candidates` lists them (entity_id, name, named_in)."""

    def __init__(self, message: str, candidates: pl.DataFrame | None = None) -> None:
        super().__init__(message)
        self.candidates = candidates


class CommitConflict(StoreError):
    """Another writer committed the same batch first (the batch is already in)."""


class SchemaViolation(StoreError, ValueError):
    """Input that does not fit a schema: names the column and the row."""


class SnapshotOrder(StoreError, ValueError):
    """A snapshot that would not run forward in time: dated in the future, or at or before
    the source's newest snapshot (named in the message)."""


class ShrinkRefused(StoreError, ValueError):
    """A complete `full` listing that would tombstone more than `store.max_shrink` of the
    previous state: the message gives the numbers and the flags that say otherwise."""
