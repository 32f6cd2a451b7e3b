"""Shared helpers for storage tests: a fresh store per test and a row builder."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from storage import Store
from tests.s3 import S3Root, s3_root, s3_server  # noqa: F401 - fixtures: a local S3 process

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


@dataclass(frozen=True)
class Root:
    """Where a test's store lives: a folder or `s3://` on the local moto server."""

    uri: str
    storage_options: dict[str, str]

    def open(self, **kw: Any) -> Store:
        return Store.open(self.uri, self.storage_options or None, **kw)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The `s3` variant of a test is slow unless the test is marked `s3_fast` (the fast
    suite keeps a few seconds of S3: lifecycle, exactly-once, the open-time checks)."""
    for item in items:
        params = getattr(item, "callspec", None)
        s3 = params is not None and params.params.get("root") == "s3"
        if s3 and item.get_closest_marker("s3_fast") is None:
            item.add_marker(pytest.mark.slow)


@pytest.fixture(params=["local", "s3"])
def root(request: pytest.FixtureRequest, tmp_path: Path) -> Root:
    """The test's store root, once on a folder and once on `s3://` (tests/s3.py)."""
    if request.param == "local":
        return Root(str(tmp_path / "store"), {})
    s3: S3Root = request.getfixturevalue("s3_root")
    return Root(s3.uri, s3.storage_options)
