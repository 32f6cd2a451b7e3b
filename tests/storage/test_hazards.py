"""delta-rs's known hazards stay designed out (issue 15, point 4)."""

from __future__ import annotations

import ast
from pathlib import Path

import storage

STORAGE = Path(storage.__file__).parent


def _vacuum_calls() -> list[tuple[str, ast.Call]]:
    """Every `.vacuum(...)` call in storage/, with its file name."""
    out = []
    for path in sorted(STORAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr == "vacuum"
            ):
                out.append((path.name, node))
    return out


def test_vacuum_never_full() -> None:
    """delta-rs #3645: a full vacuum during an append deletes the in-flight file, so no
    vacuum call in storage/ passes `full` (its default is False) or spreads **kwargs."""
    calls = _vacuum_calls()
    assert calls, "maintenance vacuums somewhere; the scan must find it"
    for name, call in calls:
        kws = {k.arg for k in call.keywords}
        assert "full" not in kws, f"{name}:{call.lineno} passes full= to vacuum"
        assert None not in kws, f"{name}:{call.lineno} spreads **kwargs into vacuum"
        assert len(call.args) <= 3, f"{name}:{call.lineno} passes full positionally"
