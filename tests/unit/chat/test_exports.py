"""chat's public surface is declared and resolvable, it imports only allowed layers, and the
help text names every command the parser knows."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

from auto_review import chat
from auto_review.chat import CommandKind, help_text, parse_comment
from auto_review.chat._parser import _KEYWORDS, _TWO_WORD_KEYWORDS

PACKAGE_DIR = Path(chat.__file__).parent
MODULES = sorted(p.stem for p in PACKAGE_DIR.glob("*.py") if p.stem != "__init__")
# chat sits beside review (whose shared DTOs, config loader and diff parser it uses) and above
# hosts/llm/memory/store; it never imports jobs, gateway, cli or sandbox (jobs imports chat).
FORBIDDEN = ("auto_review.jobs", "auto_review.gateway", "auto_review.cli", "auto_review.sandbox")


def test_every_exported_name_resolves() -> None:
    for name in chat.__all__:
        assert hasattr(chat, name), name


@pytest.mark.parametrize("module", MODULES)
def test_each_module_declares_all(module: str) -> None:
    mod = importlib.import_module(f"auto_review.chat.{module}")
    assert isinstance(mod.__all__, list)
    for name in mod.__all__:
        assert hasattr(mod, name), f"{module}.{name}"


@pytest.mark.parametrize("module", MODULES)
def test_each_module_imports_no_upper_layer(module: str) -> None:
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
    for name in imported:
        assert not name.startswith(FORBIDDEN), f"{module} imports {name}"


@pytest.mark.parametrize("module", MODULES)
def test_modules_stay_small(module: str) -> None:
    assert len((PACKAGE_DIR / f"{module}.py").read_text().splitlines()) < 400


def test_help_lists_every_command_and_each_parses_back() -> None:
    text = help_text("auto-review")
    listed = [line.split("`")[1] for line in text.splitlines() if line.startswith("- `@")]
    kinds = {parse_comment(entry, "auto-review").commands[0].kind for entry in listed}
    expected = set(_KEYWORDS.values()) | set(_TWO_WORD_KEYWORDS.values())
    assert kinds == expected | {CommandKind.HELP}
    assert CommandKind.UNKNOWN not in kinds
