"""docs/CLI.md documents exactly the commands and options ``auto-review --help`` has.

A command's section is a heading ``### `auto-review PATH` ``; every option the command takes
must appear in its section, and every ``--option`` a section names must exist on its command.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import typer
from tests.unit.cli._cli import subcommands

from auto_review.cli.main import app

DOC = Path(__file__).resolve().parents[3] / "docs" / "CLI.md"
_HEADING = re.compile(r"^#{2,4} `(auto-review(?: [a-z][a-z-]*)*)`\s*$", re.M)
_OPTION = re.compile(r"(?<![\w-])--[a-z][a-z0-9-]*")
_ALWAYS = {"--help"}


def _commands(command: Any, path: str) -> dict[str, set[str]]:
    """Command path -> its option names, for the root and every leaf command."""
    found: dict[str, set[str]] = {}
    options = {
        name
        for p in command.params
        if p.param_type_name == "option"
        for name in (*p.opts, *p.secondary_opts)
    }
    subs = subcommands(command)
    if not subs or path == "auto-review":
        found[path] = options
    for name, sub in subs.items():
        found |= _commands(sub, f"{path} {name}")
    return found


def _sections() -> dict[str, str]:
    text = DOC.read_text(encoding="utf-8")
    heads = list(_HEADING.finditer(text))
    sections = {}
    for i, head in enumerate(heads):
        end = heads[i + 1].start() if i + 1 < len(heads) else len(text)
        sections[head.group(1)] = text[head.end() : end]
    return sections


COMMANDS = _commands(typer.main.get_command(app), "auto-review")


def test_every_command_has_a_section_in_cli_md() -> None:
    missing = sorted(set(COMMANDS) - set(_sections()))
    assert not missing, f"commands missing from docs/CLI.md: {missing}"


def test_cli_md_has_no_section_for_a_command_that_does_not_exist() -> None:
    unknown = sorted(set(_sections()) - set(COMMANDS))
    assert not unknown, f"docs/CLI.md documents commands that do not exist: {unknown}"


def test_every_option_is_documented_in_its_command_section() -> None:
    sections = _sections()
    missing = {
        path: sorted(options - set(_OPTION.findall(sections.get(path, ""))) - _ALWAYS)
        for path, options in COMMANDS.items()
    }
    assert not {k: v for k, v in missing.items() if v}, missing


def test_cli_md_names_only_options_its_commands_have() -> None:
    unknown = {
        path: sorted(set(_OPTION.findall(text)) - COMMANDS.get(path, set()) - _ALWAYS)
        for path, text in _sections().items()
    }
    assert not {k: v for k, v in unknown.items() if v}, unknown


def test_the_checker_sees_a_missing_option_and_an_invented_one() -> None:
    # Positive control: the parsing above finds real commands and real options.
    assert COMMANDS["auto-review webhook unregister"] >= {"--id", "--url", "--json"}
    assert "--id" in _OPTION.findall(_sections()["auto-review webhook unregister"])
    assert "--no-such-flag" not in COMMANDS["auto-review webhook unregister"]
