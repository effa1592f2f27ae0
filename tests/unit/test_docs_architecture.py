"""docs/ARCHITECTURE.md cannot drift: its package-imports table and migration table match src.

The imports table lists, per package, the other project packages it imports (``errors``,
``logs``, ``settings``, ``_frozen`` and ``__version__`` are shared by all and left out); it is
compared with the ``import`` statements found by AST. The migrations table must name every
file in ``src/auto_review/migrations``.
"""

from __future__ import annotations

import ast
import re
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SRC = ROOT / "src" / "auto_review"
DOC = ROOT / "docs" / "ARCHITECTURE.md"

_SHARED = frozenset({"errors", "logs", "settings", "_frozen", "__version__", "__main__"})
_ROW = re.compile(r"^\| `(?P<pkg>[a-z_]+)(?:/|\.py)` \|(?P<what>[^|]*)\|(?P<imports>[^|]*)\|\s*$")


def _package_of(path: Path) -> str:
    rel = path.relative_to(SRC)
    return rel.parts[0] if len(rel.parts) > 1 else rel.stem


def _imports() -> dict[str, set[str]]:
    """Project packages each package imports, from the source."""
    found: dict[str, set[str]] = defaultdict(set)
    for path in SRC.rglob("*.py"):
        own = _package_of(path)
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                if node.module == "auto_review":
                    names = [f"auto_review.{alias.name}" for alias in node.names]
                else:
                    names = [node.module]
            for name in names:
                parts = name.split(".")
                if parts[0] == "auto_review" and len(parts) > 1 and parts[1] != own:
                    found[own].add(parts[1])
    return {pkg: deps - _SHARED for pkg, deps in found.items()}


def _documented() -> dict[str, str]:
    rows = {}
    for line in DOC.read_text(encoding="utf-8").splitlines():
        match = _ROW.match(line)
        if match:
            rows[match["pkg"]] = match["imports"]
    return rows


def test_architecture_imports_table_matches_the_source() -> None:
    documented = _documented()
    actual = _imports()
    assert documented, "docs/ARCHITECTURE.md has no package table"
    wrong = []
    for pkg, cell in documented.items():
        if "everything" in cell:
            continue
        named = set(re.findall(r"`([a-z_]+)`", cell))
        if named != actual.get(pkg, set()):
            wrong.append(f"{pkg}: doc {sorted(named)} != source {sorted(actual.get(pkg, set()))}")
    assert wrong == [], "ARCHITECTURE.md imports table is out of date:\n" + "\n".join(wrong)


def test_sandbox_is_documented_as_importing_nothing_and_does_not() -> None:
    assert _imports().get("sandbox", set()) == set()
    assert "none" in _documented()["sandbox"]


def test_architecture_lists_every_migration() -> None:
    text = DOC.read_text(encoding="utf-8")
    missing = [
        path.stem
        for path in sorted((SRC / "migrations").glob("*.sql"))
        if f"| {path.stem} |" not in text
    ]
    assert missing == [], f"migrations missing from ARCHITECTURE.md: {missing}"
