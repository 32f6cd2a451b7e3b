"""Pins the dependency direction of architecture.md: no import runs upward."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
OURS = {"storage", "backfill", "crawler", "scheduler", "analytics", "simulator", "hubtide"}

# package -> the packages of ours it may import
ALLOWED = {
    "storage": set(),
    "simulator": set(),
    "backfill": {"storage"},
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


# -- inside storage/: no import circle, no module reaching another's private names -----

STORAGE = ROOT / "storage"


def storage_imports(path: Path) -> set[str]:
    """The storage modules `path` imports (any import, in functions and TYPE_CHECKING
    blocks too): `storage.x`, or `storage` itself for a name of the package's __init__."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    modules = {p.stem for p in STORAGE.glob("*.py")} - {"__init__"}
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("storage.")}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if node.module == "storage":
                for a in node.names:
                    found.add(f"storage.{a.name}" if a.name in modules else "storage")
            elif node.module.startswith("storage."):
                found.add(node.module)
    return found


def module_name(path: Path) -> str:
    return "storage" if path.stem == "__init__" else f"storage.{path.stem}"


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import circle of `graph` (module -> modules it imports), or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_storage_has_no_import_circle() -> None:
    graph = {module_name(p): storage_imports(p) for p in sorted(STORAGE.glob("*.py"))}
    assert graph["storage.writer"] and graph["storage.store"], "the checker sees imports"
    assert find_cycle(graph) is None, " -> ".join(find_cycle(graph) or [])


def private_reaches(path: Path) -> list[str]:
    """`x._name` in `path` where `_name` is not defined in that module (so it belongs
    to another module's object), and `from storage.m import _name`."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    own: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            own.add(node.name)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            own.add(node.id)
        elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
            own.add(node.attr)
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            own.add(node.target.id)
    bad = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute):
            name = node.attr
            if name.startswith("_") and not name.startswith("__") and name not in own:
                bad.append(f"{path.name}:{node.lineno} .{name}")
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("storage"):
            bad += [
                f"{path.name}:{node.lineno} imports {a.name}"
                for a in node.names
                if a.name.startswith("_")
            ]
    return bad


def test_no_storage_module_reaches_another_ones_private_names() -> None:
    bad = [b for p in sorted(STORAGE.glob("*.py")) for b in private_reaches(p)]
    assert not bad, "\n".join(bad)


def test_the_storage_checkers_see_circles_and_private_reaches(tmp_path: Path) -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None
    probe = tmp_path / "probe.py"
    probe.write_text(
        "from storage.core import _hidden\n"
        "class A:\n    def __init__(self):\n        self._mine = 1\n"
        "def f(store, a):\n    return store._tables, a._mine\n"
    )
    assert private_reaches(probe) == ["probe.py:1 imports _hidden", "probe.py:6 ._tables"]
