from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from auto_review.hosts import RepoRef
from auto_review.review.config import (
    MAX_CONFIG_BYTES,
    MAX_NESTING,
    PathInstruction,
    load_repo_config,
    parse_repo_config,
)
from auto_review.review.findings import Severity

GOOD = """
enabled: true
guidelines: "Prefer explicit errors."
ignored_paths: ["docs/", "*.md", "!keep.md"]
path_instructions:
  - path: "src/db/**"
    instructions: "Check SQL for injection."
severity_floor: note
review_mode: direct
language: de
pr_metadata_check: {enabled: false, checks: {body_required: false}}
override_approvers: [alice]
approve_when_clean: true
"""


def test_parse_repo_config_reads_every_key() -> None:
    loaded = parse_repo_config(GOOD)
    cfg = loaded.config
    assert loaded.problems == ()
    assert loaded.warnings == ()
    assert cfg.guidelines == "Prefer explicit errors."
    assert cfg.is_ignored("docs/x.py")
    assert cfg.is_ignored("a/b.md")
    assert not cfg.is_ignored("keep.md")
    assert not cfg.is_ignored("src/a.py")
    assert cfg.path_instructions == (PathInstruction("src/db/**", "Check SQL for injection."),)
    assert cfg.instructions_for("src/db/q.py") == ("Check SQL for injection.",)
    assert cfg.instructions_for("src/web/q.py") == ()
    assert cfg.severity_floor is Severity.NOTE
    assert cfg.review_mode == "direct"
    assert cfg.language == "de"
    assert not cfg.pr_metadata_check.enabled
    assert cfg.override_approvers == ("alice",)
    assert cfg.approve_when_clean


def test_parse_repo_config_resets_only_the_bad_key() -> None:
    loaded = parse_repo_config("enabled: flase\nignored_paths: ['gen/']\n")
    assert loaded.problems == ("enabled: expected true or false, got str",)
    assert loaded.config.enabled is True
    assert loaded.config.ignored_paths == ("gen/",)


def test_parse_repo_config_warns_unknown_keys_and_strict_refuses_them() -> None:
    assert parse_repo_config("mode: x\n").warnings[0].startswith("unknown key mode")
    strict = parse_repo_config("mode: x\n", strict=True)
    assert strict.problems[0].startswith("unknown key mode")


def test_parse_repo_config_refuses_oversized_files_and_aliases() -> None:
    big = "guidelines: '" + "a" * MAX_CONFIG_BYTES + "'\n"
    assert parse_repo_config(big).problems == (f"larger than {MAX_CONFIG_BYTES} bytes",)
    bomb = "a: &a ['x','x']\nb: [*a,*a]\n"
    assert parse_repo_config(bomb).problems == ("YAML aliases are not allowed",)
    assert parse_repo_config("a: [").problems[0].startswith("not valid YAML")
    assert parse_repo_config("- 1\n").problems == ("the top level must be a mapping",)


def test_parse_repo_config_refuses_deep_nesting_without_parsing_all_of_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Attack: a config under the size cap that nests flow sequences 30,000 deep. PyYAML's
    pure-Python scanner costs time in the nesting depth for every token (tens of seconds of
    CPU for this file, in the gateway's event loop), and loading it overflows the stack.

    Control: events are read one at a time and the parse stops at ``MAX_NESTING``; the
    document is refused with a problem, never raised.
    """
    pulled = 0
    real_parse = yaml.parse

    def counting_parse(*args: Any, **kwargs: Any) -> Iterator[yaml.Event]:
        nonlocal pulled
        for event in real_parse(*args, **kwargs):
            pulled += 1
            yield event

    monkeypatch.setattr(yaml, "parse", counting_parse)
    deep = "a: " + "[" * 30_000 + "]" * 30_000 + "\n"
    assert len(deep.encode()) <= MAX_CONFIG_BYTES
    loaded = parse_repo_config(deep)
    assert loaded.problems == (f"nested deeper than {MAX_NESTING} levels",)
    assert loaded.config == parse_repo_config("").config
    assert pulled < 4 * MAX_NESTING
    # Positive control: the deepest document the schema needs still parses.
    nested = "pr_metadata_check:\n  checks:\n    title: {rules: [a, b]}\n"
    assert not any("nested" in p for p in parse_repo_config(nested).problems)


def test_approve_when_clean_defaults_to_false() -> None:
    assert parse_repo_config("").config.approve_when_clean is False


class _Host:
    def __init__(self, files: dict[tuple[str, str], bytes]) -> None:
        self.files = files
        self.asked: list[tuple[str, str]] = []

    async def get_file(self, repo: RepoRef, path: str, ref: str) -> bytes | None:
        self.asked.append((path, ref))
        return self.files.get((path, ref))


def test_load_repo_config_reads_from_base_sha_and_falls_back_to_yml() -> None:
    base, head = "b" * 40, "h" * 40
    host = _Host(
        {
            (".auto_review.yml", base): b"guidelines: base rules\n",
            (".auto_review.yaml", head): b"enabled: false\n",
        }
    )
    loaded = asyncio.run(load_repo_config(host, RepoRef("o", "r"), base))
    assert loaded.source == ".auto_review.yml"
    assert loaded.config.guidelines == "base rules"
    assert loaded.config.enabled
    assert all(ref == base for _, ref in host.asked)
