"""Hand-made worlds written THROUGH the store, for the analytics tests.

`hub(name, **fields)` and `pkg(name, **fields)` build listing rows with every logical column
(unset ones null); `snapshot(store, source, day, rows, details)` writes one complete
snapshot with its detail tables.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from storage import Store, schemas

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def day(n: float) -> datetime:
    return T0 + timedelta(days=n)


def hub(entity_id: str, name: str | None = None, **fields: Any) -> dict[str, Any]:
    row: dict[str, Any] = dict.fromkeys(schemas.HUB_REPO.names)
    row.update(entity_id=entity_id, name=name or f"org/{entity_id}", author="org")
    row.update(fields)
    return row


def pkg(name: str, **fields: Any) -> dict[str, Any]:
    row: dict[str, Any] = dict.fromkeys(schemas.REGISTRY_PACKAGE.names)
    row.update(entity_id=name, name=name, ecosystem="npm")
    row.update(fields)
    return row


def snapshot(
    store: Store,
    source: str,
    at: datetime,
    rows: list[dict[str, Any]],
    details: dict[str, list[dict[str, Any]]] | None = None,
) -> int:
    """Write one complete snapshot of `source` as of `at`; returns its id."""
    w = store.begin_snapshot(source, as_of=at)
    assert w.write_batch(0, rows)
    for kind, drows in (details or {}).items():
        filled = []
        for d in drows:
            full: dict[str, Any] = dict.fromkeys(schemas.DETAIL_SCHEMAS[kind].names)
            full.update(snapshot_id=w.snapshot_id)
            full.update(d)
            filled.append(full)
        assert w.write_details(kind, 0, filled)
    info = w.finish("complete")
    return int(info.snapshot_id)
