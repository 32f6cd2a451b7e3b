"""`history` answers or says why: an id, or a current or past name, resolves to its entity;
a name several entities had lists them; an unknown one is exit 1 / 404 with a message.
The CLI, the HTTP API and Python ask one real store."""

from __future__ import annotations

import json
import urllib.parse
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from scheduler.http import build_app
from scheduler.metrics import DaemonMetrics
from storage import AmbiguousName, EntityNotFound, Store
from tests.scheduler.server import get_json, serving
from tests.storage.test_cli_store import hub

T0 = datetime(2026, 1, 1, tzinfo=UTC)
# a1 is renamed org/alpha -> org/alpha-v2; then a2 (was org/beta) takes the name org/alpha
NAMES = [
    {"a1": "org/alpha", "a2": "org/beta"},
    {"a1": "org/alpha-v2", "a2": "org/alpha"},
    {"a1": "org/alpha-v2", "a2": "org/alpha", "a3": "org/gamma"},
]


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("history") / "store"
    store = Store.open(str(path))
    for day, names in enumerate(NAMES):
        w = store.begin_snapshot("hub:model", as_of=T0 + timedelta(days=day))
        rows = [{"entity_id": i, "name": n, "downloads": day} for i, n in names.items()]
        w.write_batch(0, rows)
        w.finish("complete")
    return path


@pytest.fixture(scope="module")
def api(root: Path) -> Iterator[str]:
    with serving(build_app(Store.open(str(root)), DaemonMetrics(version="t").registry)) as url:
        yield url


@pytest.mark.parametrize(
    ("asked", "entity"),
    [("a1", "a1"), ("org/alpha-v2", "a1"), ("org/beta", "a2"), ("ORG/Gamma", "a3")],
)
def test_an_id_or_a_current_or_past_name_gives_that_entitys_history(
    root: Path, api: str, asked: str, entity: str
) -> None:
    assert Store.open(str(root)).resolve_entity("hub:model", asked) == entity
    res = hub(root, "history", "hub:model", asked, "--format", "json")
    assert res.returncode == 0, res.stderr
    changes = json.loads(res.stdout)
    assert changes and {c["entity_id"] for c in changes} == {entity}
    assert [c["name"] for c in changes][-1] == NAMES[-1][entity]
    status, body = get_json(f"{api}/api/history/hub:model/{urllib.parse.quote(asked)}")
    assert status == 200 and body["entity_id"] == entity
    assert [c["snapshot_id"] for c in body["changes"]] == [c["snapshot_id"] for c in changes]


def test_a_name_several_entities_had_lists_them(root: Path, api: str) -> None:
    with pytest.raises(AmbiguousName) as caught:
        Store.open(str(root)).resolve_entity("hub:model", "org/alpha")
    assert caught.value.candidates is not None
    res = hub(root, "history", "hub:model", "org/alpha", "--format", "json")
    assert res.returncode == 1
    assert {c["entity_id"] for c in json.loads(res.stdout)} == {"a1", "a2"}
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and "a1" in lines[0] and "a2" in lines[0], res.stderr
    status, body = get_json(f"{api}/api/history/hub:model/org/alpha")
    assert status == 404 and body["error"]["parameter"] == "id"
    assert "a1" in body["error"]["message"] and "a2" in body["error"]["message"]


def test_an_unknown_id_exits_1_with_a_message(root: Path, api: str) -> None:
    with pytest.raises(EntityNotFound):
        Store.open(str(root)).resolve_entity("hub:model", "nope")
    res = hub(root, "history", "hub:model", "nope")
    assert res.returncode == 1 and res.stdout == ""
    assert res.stderr.strip() == (
        "error: no entity 'nope' in 'hub:model': neither an entity id nor a name one had"
    )
    status, body = get_json(f"{api}/api/history/hub:model/nope")
    assert status == 404 and "nope" in body["error"]["message"]
