"""gateway/ and jobs/ declare their public surface and import only downward."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

from auto_review import gateway, jobs

# cli -> gateway/jobs -> review/chat -> hosts/llm/memory -> store; sandbox beside.
FORBIDDEN = {
    "gateway": ("auto_review.cli",),
    # jobs sits beside gateway but below it in use: it must not know HTTP, chat or the CLI.
    "jobs": ("auto_review.cli", "auto_review.gateway", "auto_review.chat", "auto_review.sandbox"),
}
MODULES = [
    (package.__name__.rsplit(".", 1)[1], path.stem)
    for package in (gateway, jobs)
    for path in sorted(Path(package.__file__).parent.glob("*.py"))
    if path.stem != "__init__"
]


@pytest.mark.parametrize("package", [gateway, jobs])
def test_every_exported_name_resolves(package: object) -> None:
    for name in package.__all__:  # type: ignore[attr-defined]
        assert hasattr(package, name), name


@pytest.mark.parametrize(("package", "module"), MODULES)
def test_each_module_declares_all_and_imports_only_downward(package: str, module: str) -> None:
    mod = importlib.import_module(f"auto_review.{package}.{module}")
    assert isinstance(mod.__all__, list)
    for name in mod.__all__:
        assert hasattr(mod, name), f"{module}.{name}"
    tree = ast.parse(Path(mod.__file__ or "").read_text())
    imported = [n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module]
    for name in imported:
        assert not name.startswith(FORBIDDEN[package]), f"{package}.{module} imports {name}"
