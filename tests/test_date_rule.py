"""One date rule: the CLI, the HTTP API and Python answer the same `at` questions alike.

The rule (docs/contracts.md, "The date rule"; `storage.parse_at`): digits are a snapshot id,
a bare date is the end of that UTC day, anything else an ISO instant (UTC when it has no
zone); the answer is the newest complete snapshot at or before it. The snapshots here sit
at noon, so a bare date read as the start of its day would answer differently.
"""

from __future__ import annotations

import json
import urllib.parse
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from scheduler.http import build_app
from scheduler.metrics import DaemonMetrics
from storage import SnapshotNotFound, Store
from tests.scheduler.server import get_json, serving
from tests.storage.test_cli_store import hub

AS_OF = [
    datetime(2026, 1, 1, 12, tzinfo=UTC),
    datetime(2026, 1, 2, 12, tzinfo=UTC),
    datetime(2026, 1, 3, 0, tzinfo=UTC),
]

# question -> the snapshot id, "none" (nothing at or before it) or "bad" (not a date)
QUESTIONS: dict[str, int | str] = {
    "2025-12-31": "none",
    "2026-01-01": 1,  # the end of Jan 1 includes its noon snapshot
    "2026-01-02": 2,
    "2026-01-03": 3,
    "2026-01-01T11:59:59Z": "none",
    "2026-01-01T12:00:00": 1,  # no zone: UTC
    "2026-01-02T13:00:00+01:00": 2,
    "2026-01-02T23:59:59.999999Z": 2,
    "2026-01-03T00:00:00Z": 3,
    "2": 2,
    "9": "none",
    "tomorrow": "bad",
    "2026-02-30": "bad",
}


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("date-rule") / "store"
    store = Store.open(str(path))
    for i, when in enumerate(AS_OF, start=1):
        w = store.begin_snapshot("hub:model", as_of=when)
        # downloads = the snapshot id, so an as-of answer names its snapshot
        w.write_batch(0, [{"entity_id": "m1", "name": "org/m1", "downloads": i}])
        w.finish("complete")
    return path


@pytest.fixture(scope="module")
def api(root: Path) -> Iterator[str]:
    store = Store.open(str(root))
    with serving(build_app(store, DaemonMetrics(version="test").registry)) as url:
        yield url


def python_answer(root: Path, at: str | date) -> int | str:
    try:
        return Store.open(str(root)).resolve_snapshot("hub:model", at)
    except SnapshotNotFound:
        return "none"
    except ValueError:
        return "bad"


def http_answer(api: str, at: str) -> int | str:
    status, body = get_json(f"{api}/api/asof/hub:model?at={urllib.parse.quote(at)}")
    if status == 200:
        return int(body["snapshot_id"])
    assert body["error"]["parameter"] == "at", body
    return {404: "none", 400: "bad"}[status]


def cli_answer(root: Path, at: str) -> int | str:
    res = hub(root, "asof", "hub:model", "--at", at, "--format", "json")
    if res.returncode == 0:
        return int(json.loads(res.stdout)[0]["downloads"])
    assert res.returncode == 1 and len(res.stderr.strip().splitlines()) == 1, res.stderr
    return "bad" if "expected a snapshot id" in res.stderr else "none"


def test_cli_http_and_python_give_the_same_answers(root: Path, api: str) -> None:
    answers = {
        q: (python_answer(root, q), http_answer(api, q), cli_answer(root, q)) for q in QUESTIONS
    }
    expected = {q: (a, a, a) for q, a in QUESTIONS.items()}
    assert answers == expected


def test_a_python_date_follows_the_same_rule(root: Path) -> None:
    assert python_answer(root, date(2026, 1, 1)) == QUESTIONS["2026-01-01"]
    assert python_answer(root, date(2025, 12, 31)) == "none"
