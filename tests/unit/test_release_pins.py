"""The hash-pinned list of what the release bundles agrees with the project's version pins."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
_ENTRY = re.compile(r"^([A-Za-z0-9_.-]+)==(\S+)((?: \\\n\s+--hash=sha256:[0-9a-f]{64})+)$", re.M)


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _requirement_lines(path: Path) -> list[str]:
    text = path.read_text(encoding="utf-8")
    return [line for line in text.splitlines() if line and not line.lstrip().startswith("#")]


def test_release_requirements_pin_every_wheel_by_hash_at_the_constraints_version() -> None:
    """F90: packaging/build installs these with --require-hashes; an entry without a digest, or
    at a version the tests never ran, would fail the build or ship untested code."""
    path = ROOT / "packaging" / "requirements-release.txt"
    text = path.read_text(encoding="utf-8")
    entries = {_normalise(m[1]): m[2] for m in _ENTRY.finditer(text)}
    names = [line for line in _requirement_lines(path) if not line.lstrip().startswith("--hash")]
    assert len(entries) == len(names) > 0, "every requirement carries a --hash"
    pins = _requirement_lines(ROOT / "requirements" / "constraints.txt")
    constraints = {_normalise(name): version for name, version in (p.split("==", 1) for p in pins)}
    for name, version in entries.items():
        assert constraints.get(name) == version, name
    assert "auto-review" not in entries


def test_release_build_installs_the_bundle_in_hash_checking_mode() -> None:
    """F90: the step that installs what the executable bundles requires hashes."""
    script = (ROOT / "packaging" / "build").read_text(encoding="utf-8")
    installs = [c for c in re.split(r"(?<!\\)\n", script) if re.search(r"pip install", c)]
    bundle = [c for c in installs if "requirements-release" in c or "RELEASE_REQUIREMENTS" in c]
    assert bundle, "packaging/build installs packaging/requirements-release.txt"
    assert all("--require-hashes" in c for c in installs), installs
