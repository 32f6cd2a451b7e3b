"""Shared helpers for storage tests: a fresh store per test and a row builder."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from storage import Store

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def repo(i: int | str, name: str | None = None, **kw: Any) -> dict[str, Any]:
    """A hub:model row with a few columns set."""
    eid = f"id{i}" if isinstance(i, int) else i
    row: dict[str, Any] = {"entity_id": eid, "name": name or f"org/m{i}"}
    row.update(kw)
    return row


def day(n: int) -> datetime:
    return T0 + timedelta(days=n)


def write_snapshot(
    store: Store,
    source: str,
    rows: list[dict[str, Any]],
    *,
    status: str = "complete",
    at: datetime | None = None,
    batch: int = 2,
) -> int:
    w = store.begin_snapshot(source, as_of=at)
    for seq, start in enumerate(range(0, max(len(rows), 1), batch)):
        w.write_batch(seq, rows[start : start + batch], checkpoint=f"page{seq + 1}")
    w.finish(status)
    return w.snapshot_id


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store.open(str(tmp_path / "store"), keyframe_every=3)


# the local S3 (a moto_server process) for the s3:// variants of the storage tests
from tests.s3 import S3Root, s3_root, s3_server  # noqa: E402, F401 - pytest fixtures
