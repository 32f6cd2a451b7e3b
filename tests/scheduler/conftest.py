"""A small real store (Delta tables in a tmp dir) with three snapshots of hub:model and two
of npm, shared by the HTTP, metrics and status tests."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from storage import Store

T0 = datetime(2026, 1, 1, tzinfo=UTC)
N_MODELS = 250


def model(i: int, day: int) -> dict[str, Any]:
    return {
        "entity_id": f"m{i:04d}",
        "name": f"org{i % 7}/model-{i}" + ("-renamed" if i == 3 and day >= 2 else ""),
        "author": f"org{i % 7}",
        "downloads": (i * 37 + day * 11) % 1000,
        "likes": i % 50,
        "tags": ["a", "b"],
    }


def package(name: str, day: int) -> dict[str, Any]:
    return {"entity_id": name, "name": name, "ecosystem": "npm", "downloads": 100 * day + len(name)}


def build_store(root: Path) -> Store:
    store = Store.open(str(root))
    for day in range(3):
        w = store.begin_snapshot("hub:model", as_of=T0 + timedelta(days=day))
        ids = [i for i in range(N_MODELS) if not (day == 2 and i == 5)]  # m0005 deleted on day 2
        w.write_batch(0, [model(i, day) for i in ids[:100]])
        w.write_batch(1, [model(i, day) for i in ids[100:]])
        w.finish("complete")
    for day in range(2):
        w = store.begin_snapshot("npm", as_of=T0 + timedelta(days=day))
        w.write_batch(0, [package(n, day) for n in ("left-pad", "@scope/pkg", "react")])
        w.finish("complete")
    return store


@pytest.fixture(scope="session")
def small_store(tmp_path_factory: pytest.TempPathFactory) -> Store:
    return build_store(tmp_path_factory.mktemp("store"))


@pytest.fixture(scope="session", autouse=True)
def _release_reactor_threads() -> Iterator[None]:
    """Daemons run real crawls in this process: stop Twisted's pool threads at the end, or
    pytest hangs."""
    yield
    from crawler.engine import release_reactor_threads

    release_reactor_threads()
