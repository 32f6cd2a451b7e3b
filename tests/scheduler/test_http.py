"""The read-only HTTP API over a real store, over real HTTP."""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator

import pytest

from scheduler.http import MAX_K, MAX_LIMIT, build_app
from scheduler.metrics import DaemonMetrics
from storage import Store
from tests.scheduler.conftest import N_MODELS
from tests.scheduler.server import get, get_json, serving


@pytest.fixture(scope="module")
def api(small_store: Store) -> Iterator[str]:
    metrics = DaemonMetrics(version="test")
    metrics.figures.refresh(small_store)
    with serving(build_app(small_store, metrics.registry)) as url:
        yield url


def test_health_and_ready(api: str) -> None:
    assert get_json(f"{api}/healthz") == (200, {"status": "ok"})
    status, body = get_json(f"{api}/readyz")
    assert status == 200 and body["status"] == "ready"


def test_ready_says_503_when_not_ready(small_store: Store) -> None:
    app = build_app(small_store, DaemonMetrics().registry, lambda: (False, "starting"))
    with serving(app) as url:
        assert get_json(f"{url}/readyz") == (503, {"status": "not ready", "reason": "starting"})


def test_snapshots_lists_complete_and_pages(api: str) -> None:
    status, body = get_json(f"{api}/api/snapshots")
    assert status == 200
    assert [(r["source"], r["snapshot_id"]) for r in body["snapshots"]] == [
        ("hub:model", 1),
        ("hub:model", 2),
        ("hub:model", 3),
        ("npm", 1),
        ("npm", 2),
    ]
    _, page = get_json(f"{api}/api/snapshots?source=hub:model&limit=2&offset=1")
    assert [r["snapshot_id"] for r in page["snapshots"]] == [2, 3]
    assert page["next_offset"] is None
    _, first = get_json(f"{api}/api/snapshots?limit=2")
    assert first["next_offset"] == 2


def test_asof_pages_through_every_entity_exactly_once(api: str) -> None:
    seen: list[str] = []
    offset: int | None = 0
    while offset is not None:
        status, body = get_json(
            f"{api}/api/asof/hub:model?columns=entity_id,name&limit=40&offset={offset}"
        )
        assert status == 200 and body["snapshot_id"] == 3
        assert body["columns"] == ["entity_id", "name"]
        seen += [r["entity_id"] for r in body["rows"]]
        offset = body["next_offset"]
    assert len(seen) == len(set(seen)) == N_MODELS - 1  # m0005 was deleted in snapshot 3
    assert "m0005" not in seen


def test_asof_at_an_older_snapshot(api: str) -> None:
    _, by_id = get_json(f"{api}/api/asof/hub:model?at=1&columns=entity_id&limit={MAX_LIMIT}")
    assert by_id["snapshot_id"] == 1 and len(by_id["rows"]) == N_MODELS
    _, by_date = get_json(f"{api}/api/asof/hub:model?at=2026-01-02T12:00:00Z&columns=entity_id")
    assert by_date["snapshot_id"] == 2


def test_history_of_a_renamed_model_and_a_scoped_package(api: str) -> None:
    status, body = get_json(f"{api}/api/history/hub:model/m0003")
    assert status == 200
    names = [c["name"] for c in body["changes"]]
    assert names[0] == "org3/model-3" and names[-1] == "org3/model-3-renamed"
    pkg = urllib.parse.quote("@scope/pkg")
    status, body = get_json(f"{api}/api/history/npm/{pkg}")
    assert status == 200 and body["entity_id"] == "@scope/pkg"
    assert [c["downloads"] for c in body["changes"]] == [10, 110]


def test_top(api: str) -> None:
    status, body = get_json(f"{api}/api/top/hub:model?by=downloads&k=3")
    assert status == 200 and body["by"] == "downloads" and body["snapshot_id"] == 3
    values = [r["value"] for r in body["rows"]]
    assert len(values) == 3 and values == sorted(values, reverse=True)
    assert [r["rank"] for r in body["rows"]] == [1, 2, 3]


def test_status_without_a_daemon_is_empty(api: str) -> None:
    assert get_json(f"{api}/api/status") == (200, {"running": []})


def test_metrics_is_prometheus_text(api: str, small_store: Store) -> None:
    status, headers, body = get(f"{api}/metrics")
    assert status == 200 and headers["Content-Type"].startswith("text/plain")
    text = body.decode()
    assert 'hubtide_build_info{python="' in text
    # rows per table depend on the store's encoding (the storage engineer's to change)
    rows = {t.table: t.rows for t in small_store.table_stats()}["hub/repos"]
    assert rows > 0 and f'hubtide_store_table_rows{{table="hub/repos"}} {float(rows)}' in text
    assert 'hubtide_last_complete_snapshot_id{source="hub:model"} 3.0' in text


def test_openapi_lists_every_route_and_each_answers(api: str) -> None:
    status, doc = get_json(f"{api}/api/openapi.json")
    assert status == 200 and doc["openapi"].startswith("3.")
    _, listed = get_json(f"{api}/api/snapshots")
    in_store = {r["source"] for r in listed["snapshots"]}
    for path in doc["paths"]:
        concrete = path.replace("{source}", "npm").replace("{id}", "react")
        source = concrete.split("/")[3] if concrete.startswith(("/api/asof/", "/api/top/")) else ""
        code, _, _ = get(f"{api}{concrete}")
        # a built-in source's own path answers 404 while the store has no snapshot of it
        assert code == (404 if source and source not in in_store else 200), path


def test_openapi_enumerates_columns_and_by_of_builtin_sources(api: str) -> None:
    _, doc = get_json(f"{api}/api/openapi.json")
    top = {p["name"]: p["schema"] for p in doc["paths"]["/api/top/npm"]["get"]["parameters"]}
    assert "downloads" in top["by"]["enum"] and "name" not in top["by"]["enum"]
    asof = {p["name"]: p for p in doc["paths"]["/api/asof/hub:model"]["get"]["parameters"]}
    assert "likes" in asof["columns"]["schema"]["items"]["enum"]
    assert asof["columns"]["schema"]["uniqueItems"] is True


def test_a_wrong_method_is_a_json_405_with_allow(api: str) -> None:
    req = urllib.request.Request(f"{api}/api/snapshots", method="POST", data=b"")
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(req, timeout=30)
    assert caught.value.code == 405
    assert "GET" in caught.value.headers["Allow"]
    assert json.loads(caught.value.read())["error"]["status"] == 405


# Every way a parameter can be wrong, each with the parameter the error must name.
BAD = [
    ("/api/snapshots?limit=0", 400, "limit"),
    (f"/api/snapshots?limit={MAX_LIMIT + 1}", 400, "limit"),
    ("/api/snapshots?limit=ten", 400, "limit"),
    ("/api/snapshots?offset=-1", 400, "offset"),
    ("/api/snapshots?include_partial=maybe", 400, "include_partial"),
    ("/api/snapshots?source=nope", 404, "source"),
    ("/api/snapshots?sql=select", 400, "sql"),
    ("/api/asof/nope", 404, "source"),
    ("/api/asof/hub:model?at=yesterday", 400, "at"),
    ("/api/asof/hub:model?at=99", 404, "at"),
    ("/api/asof/hub:model?at=1999-01-01", 404, "at"),
    ("/api/asof/hub:model?columns=name,bogus", 400, "columns"),
    ("/api/asof/hub:model?columns=name,,likes", 400, "columns"),
    ("/api/asof/hub:model?limit=100000", 400, "limit"),
    ("/api/asof/hub:model?offset=x", 400, "offset"),
    ("/api/asof/hub:model?path=/etc/passwd", 400, "path"),
    ("/api/history/nope/x", 404, "source"),
    ("/api/history/hub:model/no-such-id", 404, "id"),
    ("/api/history/hub:model/m0001?limit=0", 400, "limit"),
    ("/api/top/nope", 404, "source"),
    ("/api/top/hub:model?by=bogus", 400, "by"),
    ("/api/top/npm?by=name", 400, "by"),  # not a number
    ("/api/top/hub:model?by=tags", 400, "by"),
    ("/api/asof/npm?columns=name,name", 400, "columns"),  # repeated
    ("/api/asof/npm?columns=entity_id,%20entity_id", 400, "columns"),
    ("/api/snapshots?offset=99999999999999999999999", 400, "offset"),  # beyond an i64
    ("/api/asof/npm?offset=99999999999999999999999", 400, "offset"),
    ("/api/history/npm/react?offset=99999999999999999999999", 400, "offset"),
    ("/api/top/hub:model?k=0", 400, "k"),
    (f"/api/top/hub:model?k={MAX_K + 1}", 400, "k"),
    ("/api/top/hub:model?at=nope", 400, "at"),
    ("/api/status?x=1", 400, "x"),
    ("/api/nothing-here", 404, None),
]


@pytest.mark.parametrize(("path", "code", "param"), BAD)
def test_bad_parameters_get_one_json_error_shape(
    api: str, path: str, code: int, param: str | None
) -> None:
    status, body = get_json(f"{api}{path}")
    assert status == code, body
    assert set(body) == {"error"}
    err = body["error"]
    assert set(err) == {"status", "parameter", "message"}
    assert err["status"] == code and err["parameter"] == param
    assert err["message"] and "\n" not in err["message"]
    assert "Traceback" not in err["message"]


def test_every_api_route_has_an_error_case() -> None:
    routes = {p.split("?")[0].split("/")[2] for p, _, _ in BAD if p.startswith("/api/")}
    assert {"snapshots", "asof", "history", "top", "status"} <= routes
