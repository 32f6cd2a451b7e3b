"""docs/analytics.md is checked against the measure registry, as Datasette's
tests/test_docs.py checks its documentation against the code: every declared measure has
a row of the Measures table, no row names a measure that is not declared, and each row's
paper, kind, sources and version are the declaration's."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from analytics.catalog import TERM_FIELDS, placeholders, registry
from analytics.terms import Terms

DOC = Path(__file__).resolve().parents[2] / "docs" / "analytics.md"
_ROW = re.compile(r"^\| `([a-z0-9_]+)` \| ([^|]+) \| ([^|]+) \| ([^|]+) \| ([^|]+) \| (.+) \|$")


def _section(title: str) -> str:
    text = DOC.read_text()
    start = text.index(title)
    end = text.find("\n## ", start + len(title))
    return text[start : end if end != -1 else None]


def _rows() -> dict[str, tuple[str, ...]]:
    rows: dict[str, tuple[str, ...]] = {}
    for line in _section("## Measures").splitlines():
        m = _ROW.match(line)
        if m:
            assert m.group(1) not in rows, f"{m.group(1)} documented twice"
            rows[m.group(1)] = tuple(g.strip() for g in m.groups()[1:])
    return rows


def test_every_declared_measure_is_documented_and_no_stale_entry() -> None:
    rows = _rows()
    declared = registry()
    assert len(declared) >= 38
    missing = sorted(set(declared) - set(rows))
    stale = sorted(set(rows) - set(declared))
    assert not missing, f"measures not in docs/analytics.md ## Measures: {missing}"
    assert not stale, f"docs/analytics.md ## Measures names undeclared measures: {stale}"


@pytest.mark.parametrize("name", sorted(registry()))
def test_each_row_says_what_the_declaration_says(name: str) -> None:
    m = registry()[name]
    paper, kind, sources, version, what = _rows()[name]
    assert paper == m.paper
    assert kind == m.kind
    assert re.findall(r"`([^`]+)`", sources) == list(m.sources)
    assert int(version) == m.version
    assert what


@pytest.mark.parametrize("name", sorted(registry()))
def test_each_declaration_is_complete(name: str) -> None:
    """One paragraph of method text whose placeholders are all Terms fields."""
    m = registry()[name]
    # the compute function is the module's own, not a wrapper written again in measures.py
    for fn in (m.compute, m.rows, m.combine if m.rows else None):
        if fn is not None:
            assert fn.__module__.startswith("analytics."), fn
            assert fn.__module__ != "analytics.measures", fn
    assert m.summary and m.method and "\n" not in m.method
    assert placeholders(m.method) <= TERM_FIELDS
    words = Terms(**{f: f"<{f}>" for f in TERM_FIELDS})
    assert "{" not in m.method_for(words)


def test_term_fields_are_the_terms_record() -> None:
    from dataclasses import fields

    assert {f.name for f in fields(Terms)} == TERM_FIELDS


def test_the_module_table_names_existing_modules() -> None:
    table = _section("## Modules")
    modules = re.findall(r"^\| `([a-z_]+\.py)`", table, flags=re.M)
    assert modules
    here = DOC.parents[1] / "analytics"
    assert [m for m in modules if not (here / m).exists()] == []
