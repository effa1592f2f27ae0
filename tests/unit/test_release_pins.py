"""The hash-pinned lists (the release bundle, the source install's lock) match the version pins."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
_ENTRY = re.compile(r"^([A-Za-z0-9_.-]+)==(\S+)((?: \\\n\s+--hash=sha256:[0-9a-f]{64})+)$", re.M)


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _requirement_lines(path: Path) -> list[str]:
    text = path.read_text(encoding="utf-8")
    return [line for line in text.splitlines() if line and not line.lstrip().startswith("#")]


def _hashed(path: Path) -> dict[str, tuple[str, set[str]]]:
    """Normalised name -> (version, sha256 digests) of a requirements file in hash-pinned form."""
    text = path.read_text(encoding="utf-8")
    return {
        _normalise(m[1]): (m[2], set(re.findall(r"[0-9a-f]{64}", m[3])))
        for m in _ENTRY.finditer(text)
    }


def _constraints() -> dict[str, str]:
    pins = _requirement_lines(ROOT / "requirements" / "constraints.txt")
    return {_normalise(name): version for name, version in (p.split("==", 1) for p in pins)}


def test_release_requirements_pin_every_wheel_by_hash_at_the_constraints_version() -> None:
    """F90: packaging/build installs these with --require-hashes; an entry without a digest, or
    at a version the tests never ran, would fail the build or ship untested code."""
    path = ROOT / "packaging" / "requirements-release.txt"
    text = path.read_text(encoding="utf-8")
    entries = {_normalise(m[1]): m[2] for m in _ENTRY.finditer(text)}
    names = [line for line in _requirement_lines(path) if not line.lstrip().startswith("--hash")]
    assert len(entries) == len(names) > 0, "every requirement carries a --hash"
    constraints = _constraints()
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


def test_lock_pins_exactly_the_constraints_each_with_its_published_digests() -> None:
    """F94: scripts/install and scripts/test install requirements/lock.txt with --require-hashes;
    a pin missing from it, or without a digest, fails the install, and one at another version
    installs what the tests never ran."""
    lock_path = ROOT / "requirements" / "lock.txt"
    lock = _hashed(lock_path)
    names = [
        line for line in _requirement_lines(lock_path) if not line.lstrip().startswith("--hash")
    ]
    assert len(lock) == len(names) > 0, "every requirement carries a --hash"
    assert {name: version for name, (version, _) in lock.items()} == _constraints()
    # The editable install builds without isolation, so the backend must be in the locked set.
    backend = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["build-system"]
    for requirement in [*backend["requires"], "editables"]:
        assert _normalise(re.split(r"[<>=!~\[; ]", requirement, maxsplit=1)[0]) in lock, requirement
    # The lock holds every published file, so the release platform's wheels are among them.
    for release_list in ("requirements-release.txt", "requirements-build.txt"):
        for name, (version, digests) in _hashed(ROOT / "packaging" / release_list).items():
            if name in lock and lock[name][0] == version:
                assert digests <= lock[name][1], name


def test_source_install_checks_every_download_against_the_lock() -> None:
    """F94: make_venv (scripts/install, scripts/test) installs dependencies only in hash-checking
    mode; the project itself is built from the checkout with nothing more fetched."""
    script = (ROOT / "scripts" / "_env.sh").read_text(encoding="utf-8")
    body = script[script.index("make_venv() {") :]
    body = body[: body.index("\n}\n")]
    # Spell out the shared pip command, so each line below is one whole pip invocation.
    shared = re.search(r"pip=\(([^)]*)\)", body)
    if shared:
        body = body.replace('"${pip[@]}"', shared[1])
    installs = [
        line for line in body.splitlines() if "-m pip install" in line and "pip=(" not in line
    ]
    assert installs, "make_venv installs with pip"
    assert any('--require-hashes -r "$lock"' in line for line in installs), installs
    for line in installs:
        from_lock = "--require-hashes" in line
        project_only = "--no-deps --no-build-isolation -e" in line
        assert from_lock or project_only, line
