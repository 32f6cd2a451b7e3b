"""Stored strings stay data in every output (issue 16 point 5): HTML, script, template,
terminal-markup, control-character and CSV payloads in repo names, authors, tags, card
metadata and package names come back unchanged as data (JSON, CSV) and are never read as
markup anywhere (the report's HTML, the HTTP API, the CLI's tables and messages)."""

from __future__ import annotations

import csv
import io
import json
import re
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import pytest

from analytics import write_report
from scheduler.http import build_app
from scheduler.metrics import DaemonMetrics
from storage import Store
from tests.analytics.world import day, hub, pkg, snapshot
from tests.scheduler.server import get, serving
from tests.storage.test_cli_store import hub as cli

SCRIPT = "<script>alert(1)</script>"
ATTR = '"><img src=x onerror=alert(2)>'
TEMPLATE = "{{7*7}}${7*7}<%= 7*7 %>"
RICH = "[link=http://e.x]c[/link][b]x"
CONTROL = "\x1b]8;;http://e.x\x1b\\e\x1b[2J"
CSV = '=HYPERLINK("http://e.x"),"a\nb'
PAYLOADS = [SCRIPT, ATTR, TEMPLATE, RICH, CONTROL, CSV]
# one model per payload, named and authored by it, in the top of every ranking
NAMES = {f"evil{i}": f"u/{p}" for i, p in enumerate(PAYLOADS)}


def models(bump: int) -> list[dict[str, object]]:
    rows = [
        hub(
            eid,
            name,
            author=PAYLOADS[i],
            license=SCRIPT,
            library_name=ATTR,
            pipeline_tag=TEMPLATE,
            tags=[SCRIPT, ATTR],
            card_fields=[ATTR, TEMPLATE],
            base_models=[f"u/{SCRIPT}"],
            base_model_relation="finetune",
            downloads=10_000 - i + bump,
            likes=100 - i,
            created_at=day(-3),
        )
        for i, (eid, name) in enumerate(NAMES.items())
    ]
    return rows + [hub(f"m{j}", downloads=j, likes=j, created_at=day(-5)) for j in range(4)]


def cards() -> list[dict[str, object]]:
    return [
        {
            "repo_type": "model",
            "entity_id": eid,
            "sha": eid,
            "length": 100,
            "headings": [SCRIPT, RICH],
            "metadata_fields": [ATTR, TEMPLATE, CONTROL],
            "text_sample": SCRIPT + ATTR + TEMPLATE,
        }
        for eid in NAMES
    ]


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Store:
    root = tmp_path_factory.mktemp("inert") / "store"
    store = Store.open(str(root))
    for n in range(3):
        snapshot(store, "hub:model", day(n), models(n), {"cards": cards()} if n == 0 else None)
        snapshot(store, "npm", day(n), [pkg(p, downloads=50 + n) for p in PAYLOADS] + [pkg("ok")])
    return store


def test_the_report_shows_payloads_as_text(store: Store, tmp_path: Path) -> None:
    page = write_report(store, tmp_path / "report", params={"group_n": 2})
    html = page.read_text()
    # (a control character is inert in HTML: a browser draws nothing for it)
    for p in (SCRIPT, ATTR):
        assert p not in html, p
    assert "<img" not in html and "alert(1)</script>" not in html
    # the only script elements are the page's own: plotly (inlined) and the JSON specs
    tags = set(re.findall(r"<script[^>]*>", html))
    assert tags <= {"<script>"} | set(re.findall(r"<script type=application/json id=[\w-]+>", html))
    assert html.count("<script") == html.count("</script>")
    # shown, as the characters they are: escaped for HTML, never evaluated
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "{{7*7}}" in html and "[link=http://e.x]" in html
    # every CSV table parses back to whole rows, the payloads intact as values
    seen: set[str] = set()
    for path in sorted((tmp_path / "report" / "tables").glob("*.csv")):
        rows = list(csv.reader(io.StringIO(path.read_text())))
        assert rows and all(len(r) == len(rows[0]) for r in rows), path.name
        seen |= {c for r in rows for c in r}
    assert {f"u/{p}" for p in PAYLOADS} <= seen


@pytest.fixture(scope="module")
def api(store: Store) -> Iterator[str]:
    with serving(build_app(store, DaemonMetrics().registry)) as url:
        yield url


def _json(url: str) -> tuple[int, object]:
    status, headers, body = get(url)
    assert headers["Content-Type"].startswith("application/json"), url
    assert headers["X-Content-Type-Options"] == "nosniff", url
    return status, json.loads(body)


def test_the_api_returns_payloads_as_json_data(api: str) -> None:
    status, body = _json(f"{api}/api/asof/hub:model?limit=100")
    assert status == 200 and isinstance(body, dict)
    rows = {r["entity_id"]: r for r in body["rows"]}
    for i, (eid, name) in enumerate(NAMES.items()):
        assert rows[eid]["name"] == name and rows[eid]["author"] == PAYLOADS[i]
        assert rows[eid]["tags"] == [SCRIPT, ATTR]
    status, top = _json(f"{api}/api/top/npm?by=downloads&k=10")
    assert status == 200 and isinstance(top, dict)
    assert {r["entity_id"] for r in top["rows"]} >= set(PAYLOADS)
    for eid, name in NAMES.items():
        status, hist = _json(f"{api}/api/history/hub:model/{urllib.parse.quote(eid)}")
        assert status == 200 and isinstance(hist, dict)
        assert {r["name"] for r in hist["changes"]} == {name}
    # an error quoting a payload is JSON too (never an HTML page echoing it)
    for p in (SCRIPT, ATTR):
        status, err = _json(f"{api}/api/history/hub:model/{urllib.parse.quote(p, safe='')}")
        assert status == 404 and isinstance(err, dict) and p in err["error"]["message"]


def test_the_cli_keeps_payloads_data_and_never_markup(store: Store) -> None:
    root = Path(store.uri)
    out = cli(root, "asof", "hub:model", "-f", "csv")
    assert out.returncode == 0, out.stderr
    rows = list(csv.DictReader(io.StringIO(out.stdout)))
    by_id = {r["entity_id"]: r for r in rows}
    for i, (eid, name) in enumerate(NAMES.items()):
        assert by_id[eid]["name"] == name and by_id[eid]["author"] == PAYLOADS[i]
    data = json.loads(cli(root, "asof", "hub:model", "-f", "json").stdout)
    assert {r["entity_id"]: r["name"] for r in data if r["entity_id"] in NAMES} == NAMES
    table = cli(root, "asof", "hub:model", "-c", "name")
    assert table.returncode == 0
    assert "\x1b" not in table.stdout  # the ESC of a stored name never reaches the terminal
    assert "\\x1b]8;;http://e.x" in table.stdout  # it is shown as an escape
    assert "[link=http://e.x]c[/link][b]x" in table.stdout  # not read as rich markup
    assert "<script>alert(1)</script>" in table.stdout  # a terminal shows text as text
    named = cli(root, "history", "hub:model", f"u/{RICH}", "-c", "name")
    assert named.returncode == 0, named.stderr
    assert f"'u/{RICH}' is the name of evil3" in named.stderr
    missing = cli(root, "history", "hub:model", CONTROL)
    assert missing.returncode == 1 and "\x1b" not in missing.stderr
    assert "\\x1b]8;;http://e.x" in missing.stderr
