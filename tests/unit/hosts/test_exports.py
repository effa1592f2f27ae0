"""The hosts package's public surface is declared, resolvable, and imports only downward."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

from auto_review import hosts

PACKAGE_DIR = Path(hosts.__file__).parent
MODULES = sorted(p.stem for p in PACKAGE_DIR.glob("*.py") if p.stem != "__init__")
# hosts sits above store, beside llm/memory: only the foundation modules are below it.
ALLOWED = ("auto_review.errors", "auto_review.settings", "auto_review.logs", "auto_review.hosts")


def test_every_exported_name_resolves() -> None:
    for name in hosts.__all__:
        assert hasattr(hosts, name), name


def test_the_package_exports_the_adapter_and_its_helpers() -> None:
    for name in ("ForgejoHost", "forgejo_host", "create_access_token", "RetryPolicy"):
        assert name in hosts.__all__


@pytest.mark.parametrize("module", MODULES)
def test_each_module_declares_all_and_its_names_resolve(module: str) -> None:
    mod = importlib.import_module(f"auto_review.hosts.{module}")
    assert isinstance(mod.__all__, list)
    for name in mod.__all__:
        assert hasattr(mod, name), f"{module}.{name}"


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
    project = [n for n in imported if n == "auto_review" or n.startswith("auto_review.")]
    for name in project:
        assert name == "auto_review" or name.startswith(ALLOWED), f"{module} imports {name}"


@pytest.mark.parametrize("module", MODULES)
def test_only_the_http_boundary_handles_httpx_errors(module: str) -> None:
    source = (PACKAGE_DIR / f"{module}.py").read_text()
    catches_httpx = "except httpx" in source or "except (httpx" in source
    assert catches_httpx == (module == "_http"), module
