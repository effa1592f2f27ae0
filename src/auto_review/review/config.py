"""The repository's own settings: ``.auto_review.yaml`` (or ``.yml``) from the PR's BASE branch.

Read from the base, never from the head: a pull request must not be able to switch off, narrow
or steer its own review (the reference read it from the head). The file is capped at
``MAX_CONFIG_BYTES``, parsed with ``yaml.safe_load`` after refusing aliases (no expansion
bombs) and nesting deeper than ``MAX_NESTING`` (no scanner or stack bombs), and validated key
by key: an unknown key is a warning (a problem under ``strict``), a bad
value is a problem that resets *that key only* to its default, so one typo never silently turns
the whole file into defaults.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import pathspec
import yaml

from auto_review.hosts import RepoRef
from auto_review.review.findings import Severity

__all__ = [
    "CONFIG_NAMES",
    "MAX_CONFIG_BYTES",
    "ConfigHost",
    "LoadedRepoConfig",
    "MetadataCheck",
    "PathInstruction",
    "RepoConfig",
    "load_repo_config",
    "parse_repo_config",
]

CONFIG_NAMES = (".auto_review.yaml", ".auto_review.yml")
MAX_CONFIG_BYTES = 64 * 1024
MAX_GUIDELINES_BYTES = 8 * 1024
MAX_INSTRUCTION_BYTES = 2 * 1024
MAX_LIST_ITEMS = 200
MAX_NESTING = 16  # the schema needs 3; PyYAML scans in time growing with the depth


@dataclass(frozen=True)
class PathInstruction:
    path: str  # gitignore-style pattern
    instructions: str

    def matches(self, rel: str) -> bool:
        return pathspec.GitIgnoreSpec.from_lines([self.path]).match_file(rel)


@dataclass(frozen=True)
class MetadataCheck:
    enabled: bool = False  # opt-in: a failed check blocks the PR (REQUEST_CHANGES)
    body_required: bool = True
    additional_rules: tuple[str, ...] = ()


@dataclass(frozen=True)
class RepoConfig:
    enabled: bool = True
    guidelines: str = ""
    ignored_paths: tuple[str, ...] = ()
    path_instructions: tuple[PathInstruction, ...] = ()
    severity_floor: Severity | None = None
    review_mode: Literal["ci", "direct"] | None = None
    language: str | None = None
    pr_metadata_check: MetadataCheck = field(default_factory=MetadataCheck)
    override_approvers: tuple[str, ...] = ()
    approve_when_clean: bool = False

    def is_ignored(self, rel: str) -> bool:
        if not self.ignored_paths:
            return False
        return pathspec.GitIgnoreSpec.from_lines(self.ignored_paths).match_file(rel)

    def instructions_for(self, rel: str) -> tuple[str, ...]:
        return tuple(pi.instructions for pi in self.path_instructions if pi.matches(rel))


@dataclass(frozen=True)
class LoadedRepoConfig:
    config: RepoConfig
    source: str | None  # the file it came from, or None for defaults
    warnings: tuple[str, ...] = ()
    problems: tuple[str, ...] = ()


_TOP = (
    "enabled",
    "guidelines",
    "ignored_paths",
    "path_instructions",
    "severity_floor",
    "review_mode",
    "language",
    "pr_metadata_check",
    "override_approvers",
    "approve_when_clean",
)


class _Problems:
    def __init__(self) -> None:
        self.warnings: list[str] = []
        self.problems: list[str] = []


def _bool(key: str, value: Any, out: _Problems) -> bool | None:
    if isinstance(value, bool):
        return value
    out.problems.append(f"{key}: expected true or false, got {type(value).__name__}")
    return None


def _text(key: str, value: Any, out: _Problems, cap: int) -> str | None:
    if not isinstance(value, str):
        out.problems.append(f"{key}: expected a string, got {type(value).__name__}")
        return None
    if len(value.encode()) > cap:
        out.problems.append(f"{key}: longer than {cap} bytes")
        return None
    return value


def _strings(key: str, value: Any, out: _Problems) -> tuple[str, ...] | None:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        out.problems.append(f"{key}: expected a list of strings")
        return None
    if len(value) > MAX_LIST_ITEMS:
        out.problems.append(f"{key}: more than {MAX_LIST_ITEMS} entries")
        return None
    return tuple(value)


def _unknown(where: str, keys: Any, allowed: tuple[str, ...], out: _Problems) -> None:
    for key in sorted(str(k) for k in keys if k not in allowed):
        out.warnings.append(f"unknown key {where}{key} (valid: {', '.join(allowed)})")


def _metadata(value: Any, out: _Problems) -> MetadataCheck | None:
    if isinstance(value, bool):
        return MetadataCheck(enabled=value)
    if not isinstance(value, dict):
        out.problems.append("pr_metadata_check: expected true/false or a mapping")
        return None
    _unknown("pr_metadata_check.", value, ("enabled", "checks", "additional_rules"), out)
    result = MetadataCheck(enabled=True)  # a mapping turns the check on unless it says otherwise
    if (
        "enabled" in value
        and (b := _bool("pr_metadata_check.enabled", value["enabled"], out)) is not None
    ):
        result = MetadataCheck(b, result.body_required, result.additional_rules)
    checks = value.get("checks", {})
    if isinstance(checks, dict):
        _unknown("pr_metadata_check.checks.", checks, ("body_required",), out)
        if "body_required" in checks:
            b = _bool("pr_metadata_check.checks.body_required", checks["body_required"], out)
            if b is not None:
                result = MetadataCheck(result.enabled, b, result.additional_rules)
    else:
        out.problems.append("pr_metadata_check.checks: expected a mapping")
    if "additional_rules" in value:
        rules = _strings("pr_metadata_check.additional_rules", value["additional_rules"], out)
        if rules is not None:
            result = MetadataCheck(result.enabled, result.body_required, rules)
    return result


def _path_instructions(value: Any, out: _Problems) -> tuple[PathInstruction, ...] | None:
    if not isinstance(value, list) or len(value) > MAX_LIST_ITEMS:
        out.problems.append("path_instructions: expected a list of {path, instructions}")
        return None
    items: list[PathInstruction] = []
    for index, item in enumerate(value):
        where = f"path_instructions[{index}]"
        if not isinstance(item, dict):
            out.problems.append(f"{where}: expected a mapping with path and instructions")
            continue
        _unknown(f"{where}.", item, ("path", "instructions"), out)
        path = _text(f"{where}.path", item.get("path"), out, 512)
        text = _text(f"{where}.instructions", item.get("instructions"), out, MAX_INSTRUCTION_BYTES)
        if path and text is not None:
            items.append(PathInstruction(path, text))
    return tuple(items)


def _choice(key: str, value: Any, allowed: tuple[str, ...], out: _Problems) -> str | None:
    if isinstance(value, str) and value.lower() in allowed:
        return value.lower()
    out.problems.append(f"{key}: expected one of {', '.join(allowed)}")
    return None


def _language(value: Any, out: _Problems) -> str | None:
    text = _text("language", value, out, 40)
    if text is not None and not all(ch.isalpha() or ch in " -_" for ch in text):
        out.problems.append("language: letters, spaces and dashes only (e.g. en, de, pt-BR)")
        return None
    return text.strip() or None if text is not None else None


def parse_repo_config(text: str | bytes, *, strict: bool = False) -> LoadedRepoConfig:
    """Validate a config document; every problem is listed and only bad keys are reset."""
    out = _Problems()
    raw = text.encode("utf-8", "replace") if isinstance(text, str) else text
    if len(raw) > MAX_CONFIG_BYTES:
        return LoadedRepoConfig(RepoConfig(), None, (), (f"larger than {MAX_CONFIG_BYTES} bytes",))
    try:
        refused = _refused_structure(raw)
        if refused is not None:
            return LoadedRepoConfig(RepoConfig(), None, (), (refused,))
        data = yaml.safe_load(raw)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        return LoadedRepoConfig(RepoConfig(), None, (), (f"not valid YAML{where}",))
    if data is None:
        data = {}
    if not isinstance(data, dict):
        return LoadedRepoConfig(RepoConfig(), None, (), ("the top level must be a mapping",))
    _unknown("", data, _TOP, out)
    values: dict[str, Any] = {}
    parsers: dict[str, Callable[[Any], Any]] = {
        "enabled": lambda v: _bool("enabled", v, out),
        "approve_when_clean": lambda v: _bool("approve_when_clean", v, out),
        "guidelines": lambda v: _text("guidelines", v, out, MAX_GUIDELINES_BYTES),
        "ignored_paths": lambda v: _strings("ignored_paths", v, out),
        "override_approvers": lambda v: _strings("override_approvers", v, out),
        "path_instructions": lambda v: _path_instructions(v, out),
        "severity_floor": lambda v: _severity(v, out),
        "review_mode": lambda v: _choice("review_mode", v, ("ci", "direct"), out),
        "language": lambda v: _language(v, out),
        "pr_metadata_check": lambda v: _metadata(v, out),
    }
    for key, parse in parsers.items():
        if key in data:
            parsed = parse(data[key])
            if parsed is not None:
                values[key] = parsed
    problems = out.problems + (out.warnings if strict else [])
    warnings = [] if strict else out.warnings
    return LoadedRepoConfig(RepoConfig(**values), "", tuple(warnings), tuple(problems))


def _refused_structure(raw: bytes) -> str | None:
    """Why the document's shape is refused before it is loaded, or None.

    Aliases can expand a small file without bound ("billion laughs"). Deep nesting costs PyYAML's
    pure-Python scanner time in the depth for every token (a 64 KiB file of ``[`` takes tens of
    seconds) and overflows the stack when loaded, so events are pulled one at a time and the
    parse stops at the first one too deep.
    """
    depth = 0
    for event in yaml.parse(raw, Loader=yaml.SafeLoader):
        if isinstance(event, yaml.AliasEvent):
            return "YAML aliases are not allowed"
        if isinstance(event, yaml.CollectionStartEvent):
            depth += 1
            if depth > MAX_NESTING:
                return f"nested deeper than {MAX_NESTING} levels"
        elif isinstance(event, yaml.CollectionEndEvent):
            depth -= 1
    return None


def _severity(value: Any, out: _Problems) -> Severity | None:
    choice = _choice("severity_floor", value, ("note", "warning", "error"), out)
    return Severity(choice) if choice else None


class ConfigHost(Protocol):
    """What ``load_repo_config`` needs of a forge (``ReviewHost`` has it)."""

    async def get_file(self, repo: RepoRef, path: str, ref: str) -> bytes | None: ...


async def load_repo_config(host: ConfigHost, repo: RepoRef, base_sha: str) -> LoadedRepoConfig:
    """The base branch's config at ``base_sha``; defaults (with a note) when there is none."""
    for name in CONFIG_NAMES:
        data = await host.get_file(repo, name, base_sha)
        if data is None:
            continue
        # Off the event loop: a 64 KiB document still takes PyYAML about a second.
        loaded = await asyncio.to_thread(parse_repo_config, data)
        return LoadedRepoConfig(loaded.config, name, loaded.warnings, loaded.problems)
    return LoadedRepoConfig(RepoConfig(), None)
