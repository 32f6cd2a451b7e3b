"""Pins the dependency direction of architecture.md: no import runs upward."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
OURS = {"storage", "crawler", "scheduler", "analytics", "simulator", "hubtide"}

# package -> the packages of ours it may import
ALLOWED = {
    "storage": set(),
    "simulator": set(),
    "crawler": {"storage"},
    "analytics": {"storage"},
    "scheduler": {"storage", "crawler", "analytics"},
    "hubtide": OURS - {"hubtide"},
}


def imported_packages(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.split(".")[0])
    return found & OURS


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_package_imports_only_what_it_may(package: str) -> None:
    bad = []
    for path in sorted((ROOT / package).rglob("*.py")):
        wrong = imported_packages(path) - ALLOWED[package] - {package}
        if wrong:
            bad.append(f"{path.relative_to(ROOT)} imports {sorted(wrong)}")
    assert not bad, "\n".join(bad)


def test_nothing_imports_hubtide() -> None:
    offenders = [
        str(p.relative_to(ROOT))
        for pkg in OURS - {"hubtide"}
        for p in (ROOT / pkg).rglob("*.py")
        if "hubtide" in imported_packages(p)
    ]
    offenders += [
        str(p.relative_to(ROOT))
        for p in (ROOT / "bench").rglob("*.py")
        if "hubtide" in imported_packages(p) and False  # benches may drive the CLI
    ]
    assert offenders == []


def test_the_checker_sees_imports(tmp_path: Path) -> None:
    probe = tmp_path / "probe.py"
    probe.write_text("import storage.schemas\nfrom crawler import x\nimport os\n")
    assert imported_packages(probe) == {"storage", "crawler"}
