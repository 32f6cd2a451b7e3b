"""simulator/ imports nothing else of hubtide (it must run on its own)."""

from __future__ import annotations

import ast
from pathlib import Path

import simulator

OURS = {"hubtide", "storage", "crawler", "analytics", "scheduler"}


def test_simulator_imports_nothing_of_ours() -> None:
    root = Path(simulator.__file__).parent
    bad: list[str] = []
    files = list(root.rglob("*.py"))
    assert len(files) > 5
    for f in files:
        for node in ast.walk(ast.parse(f.read_text())):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            bad += [f"{f.name}: {n}" for n in names if n.split(".")[0] in OURS]
    assert bad == []
