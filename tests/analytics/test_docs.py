"""docs/analytics.md is checked against the measure registry (as Datasette's test_docs.py)."""

from __future__ import annotations

import re
from pathlib import Path

from analytics.catalog import registry

DOC = Path(__file__).resolve().parents[2] / "docs" / "analytics.md"


def _section(title: str) -> str:
    text = DOC.read_text()
    start = text.index(title)
    end = text.find("\n## ", start + len(title))
    return text[start : end if end != -1 else None]


def test_every_registered_measure_is_documented_by_name() -> None:
    named = set(re.findall(r"`([a-z0-9_]+)`", _section("## Measures")))
    missing = sorted(set(registry()) - named)
    assert not missing, f"measures not named in docs/analytics.md ## Measures: {missing}"


def test_the_module_table_names_existing_modules() -> None:
    table = _section("## Modules")
    modules = re.findall(r"^\| `([a-z_]+\.py)`", table, flags=re.M)
    assert modules
    here = DOC.parents[1] / "analytics"
    assert [m for m in modules if not (here / m).exists()] == []
