"""The llm package's public surface is declared, resolvable, and imports only downward."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

from auto_review import llm

PACKAGE_DIR = Path(llm.__file__).parent
MODULES = sorted(p.stem for p in PACKAGE_DIR.glob("*.py") if p.stem != "__init__")
# llm sits above store and beside hosts/memory: it may use only these parts of the project.
ALLOWED = ("auto_review.errors", "auto_review.settings", "auto_review.logs", "auto_review.llm")


def test_every_exported_name_resolves() -> None:
    for name in llm.__all__:
        assert hasattr(llm, name), name


@pytest.mark.parametrize("module", MODULES)
def test_each_module_declares_all_and_the_package_reexports_it(module: str) -> None:
    mod = importlib.import_module(f"auto_review.llm.{module}")
    assert isinstance(mod.__all__, list)
    for name in mod.__all__:
        assert hasattr(mod, name), f"{module}.{name}"
        assert name in llm.__all__, f"{module}.{name} is not re-exported"


@pytest.mark.parametrize("module", MODULES)
def test_each_module_imports_only_downward(module: str) -> None:
    tree = ast.parse((PACKAGE_DIR / f"{module}.py").read_text())
    imported = [
        node.module
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and node.module is not None
    ] + [
        alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.Import)
        for alias in node.names
    ]
    project = [
        name for name in imported if name == "auto_review" or name.startswith("auto_review.")
    ]
    for name in project:
        assert name == "auto_review" or name.startswith(ALLOWED), f"{module} imports {name}"
