"""Imports point downward across the whole package (DESIGN.md "Layout"), in one table.

cli -> gateway -> jobs/ops/bench -> chat -> review -> memory -> hosts/llm -> store/settings/logs
-> errors; ``sandbox`` may be used by any layer and imports nothing else of auto_review.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import auto_review

SOURCE = Path(auto_review.__file__).parent

RANK = {
    "__init__": 0,
    "errors": 0,
    "settings": 1,
    "store": 1,
    "logs": 1,
    "_frozen": 1,
    "hosts": 2,
    "llm": 2,
    "memory": 3,
    "review": 4,
    "chat": 5,
    "jobs": 6,
    "ops": 6,
    "bench": 6,
    "gateway": 7,
    "cli": 8,
    "__main__": 9,
}
MODULES = sorted(p for p in SOURCE.rglob("*.py"))


def _layer(path: Path) -> str:
    rel = path.relative_to(SOURCE)
    return rel.parts[0] if len(rel.parts) > 1 else rel.stem


def _project_imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        names = []
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        for name in names:
            parts = name.split(".")
            if parts[0] == "auto_review":
                found.add(parts[1] if len(parts) > 1 else "__init__")
    return found


def test_every_layer_has_a_rank() -> None:
    layers = {_layer(p) for p in MODULES} - {"sandbox", "migrations"}
    assert layers <= RANK.keys(), layers - RANK.keys()


@pytest.mark.parametrize("module", MODULES, ids=lambda p: str(p.relative_to(SOURCE)))
def test_module_imports_only_lower_layers_or_the_sandbox(module: Path) -> None:
    layer = _layer(module)
    imported = _project_imports(module) - {layer}
    if layer == "sandbox":
        assert not imported, f"sandbox/ must import nothing else of auto_review: {imported}"
        return
    upward = {name for name in imported if name != "sandbox" and RANK.get(name, 99) >= RANK[layer]}
    assert not upward, f"{module.relative_to(SOURCE)} imports upward or sideways: {upward}"


def test_the_rule_catches_an_upward_import(tmp_path: Path) -> None:
    """Positive control: the parser sees an import the rule must refuse."""
    probe = tmp_path / "probe.py"
    probe.write_text("from auto_review.gateway import create_app\nimport auto_review.cli.main\n")
    assert _project_imports(probe) == {"gateway", "cli"}


MAX_MODULE_LINES = 420
# The one configuration object (STYLE.md): a field per environment variable, kept together.
LONG_BY_DESIGN = {"settings.py"}


def test_every_module_stays_small() -> None:
    long = {
        str(p.relative_to(SOURCE)): n
        for p in MODULES
        if (n := p.read_text(encoding="utf-8").count("\n")) >= MAX_MODULE_LINES
    }
    assert long.keys() <= LONG_BY_DESIGN, long
