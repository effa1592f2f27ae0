"""Labelled PR fixtures for ``bench run``: a JSON file per pull request.

Shape (unknown keys are refused so a typo cannot silently drop a label)::

    {"name": "py-off-by-one", "title": "...", "body": "...", "diff": "<unified diff>",
     "files": {"path": "full head text", ...},          # optional: the checkout the stages read
     "config": ".auto_review.yaml text",                 # optional: the base branch's config
     "expected": [{"path": "src/a.py", "line": 12, "severity": "error"}, ...],
     "must_be_silent": false}

``expected`` lists the real problems (new-file line numbers); a fixture with
``must_be_silent`` is a clean PR on which every finding is a false positive.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from auto_review.errors import ConfigError

__all__ = ["Expected", "Fixture", "load_fixtures"]

MAX_FIXTURE_BYTES = 2 * 1024 * 1024
_KEYS = frozenset({"name", "title", "body", "diff", "files", "config", "expected",
                   "must_be_silent"})  # fmt: skip
_SEVERITIES = frozenset({"note", "warning", "error"})


@dataclass(frozen=True)
class Expected:
    path: str
    line: int
    severity: str | None = None


@dataclass(frozen=True)
class Fixture:
    name: str
    title: str
    body: str
    diff: str
    expected: tuple[Expected, ...]
    must_be_silent: bool = False
    files: Mapping[str, str] = field(default_factory=dict)
    config: str | None = None


def _expected(item: Any, where: str) -> Expected:
    if not isinstance(item, dict) or not {"path", "line"} <= item.keys():
        raise ConfigError(f"{where}: each expected finding needs path and line")
    path, line, severity = item["path"], item["line"], item.get("severity")
    if not isinstance(path, str) or not path or isinstance(line, bool) or not isinstance(line, int):
        raise ConfigError(f"{where}: expected path must be text and line a number")
    if line < 1 or (severity is not None and severity not in _SEVERITIES):
        raise ConfigError(f"{where}: expected line must be >= 1, severity note|warning|error")
    return Expected(path, line, severity)


def _parse(data: Any, where: str) -> Fixture:
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: a fixture is a JSON object")
    unknown = sorted(set(data) - _KEYS)
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {', '.join(unknown)}")
    for key in ("name", "title", "diff"):
        if not isinstance(data.get(key), str) or not data[key]:
            raise ConfigError(f"{where}: {key} must be non-empty text")
    files = data.get("files") or {}
    if not isinstance(files, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in files.items()
    ):
        raise ConfigError(f"{where}: files maps paths to their full text")
    expected = data.get("expected") or []
    silent = data.get("must_be_silent", False)
    if not isinstance(expected, list) or not isinstance(silent, bool):
        raise ConfigError(f"{where}: expected is a list, must_be_silent true or false")
    if silent and expected:
        raise ConfigError(f"{where}: a must_be_silent fixture cannot expect findings")
    config = data.get("config")
    if config is not None and not isinstance(config, str):
        raise ConfigError(f"{where}: config is the text of a .auto_review.yaml")
    return Fixture(
        name=data["name"], title=data["title"], body=str(data.get("body") or ""),
        diff=data["diff"], expected=tuple(_expected(e, where) for e in expected),
        must_be_silent=silent, files=dict(files), config=config,
    )  # fmt: skip


def _files(paths: Iterable[Path]) -> list[Path]:
    found: list[Path] = []
    for path in paths:
        found.extend(sorted(path.glob("*.json")) if path.is_dir() else [path])
    return found


def load_fixtures(paths: Iterable[Path]) -> list[Fixture]:
    """Every fixture in ``paths`` (files, or directories of ``*.json``); ``ConfigError`` if bad."""
    fixtures = []
    for path in _files(paths):
        try:
            with path.open("rb") as fh:
                raw = fh.read(MAX_FIXTURE_BYTES + 1)
        except OSError as exc:
            raise ConfigError(f"cannot read fixture {path}: {exc.strerror}") from exc
        if len(raw) > MAX_FIXTURE_BYTES:
            raise ConfigError(f"{path}: larger than {MAX_FIXTURE_BYTES} bytes")
        try:
            data = json.loads(raw)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ConfigError(f"{path}: not JSON ({exc})") from exc
        fixtures.append(_parse(data, str(path)))
    if not fixtures:
        raise ConfigError("no fixtures found", ("pass fixture files or directories of *.json",))
    names = [f.name for f in fixtures]
    if len(set(names)) != len(names):
        raise ConfigError("fixture names must be unique")
    return fixtures
