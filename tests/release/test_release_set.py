"""The release set verifies as docs/RELEASE.md tells operators, and describes what is inside."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
import tarfile
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SIGNER = "release@auto-review"


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _one(release_dir: Path, pattern: str) -> Path:
    found = sorted(release_dir.glob(pattern))
    assert len(found) == 1, f"expected one {pattern} in {release_dir}, found {found}"
    return found[0]


def _pins(path: Path) -> dict[str, str]:
    pins = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        match = re.match(r"^([A-Za-z0-9_.-]+)==([^\s\\]+)", line)
        if match:
            pins[_normalise(match[1])] = match[2]
    return pins


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


@pytest.fixture
def signed_copy(release_dir: Path, tmp_path: Path) -> Path:
    """A copy of the release set signed with a throwaway key by packaging/sign."""
    if shutil.which("ssh-keygen") is None:
        pytest.skip("ssh-keygen is not installed (apt-get install openssh-client)")
    copy = tmp_path / "release"
    copy.mkdir()
    for path in release_dir.iterdir():
        if path.is_file() and path.name not in ("SHA256SUMS.sig", "allowed_signers"):
            shutil.copy2(path, copy / path.name)
    key = tmp_path / "throwaway"
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "throwaway", "-f", str(key)],
        check=True,
    )
    subprocess.run(
        [str(ROOT / "packaging" / "sign"), str(copy)],
        env={"PATH": "/usr/bin:/bin", "AR_RELEASE_SIGNING_KEY": str(key)},
        check=True,
        capture_output=True,
    )
    return copy


def _verify(directory: Path, *, identity: str = SIGNER) -> subprocess.CompletedProcess[str]:
    # Word for word the operator's command in docs/RELEASE.md.
    with (directory / "SHA256SUMS").open("rb") as sums:
        return subprocess.run(
            [
                "ssh-keygen",
                "-Y",
                "verify",
                "-f",
                "allowed_signers",
                "-I",
                identity,
                "-n",
                "file",
                "-s",
                "SHA256SUMS.sig",
            ],
            cwd=directory,
            stdin=sums,
            capture_output=True,
            text=True,
            check=False,
        )


def _sha256sum_check(directory: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["sha256sum", "-c", "SHA256SUMS"],
        cwd=directory,
        capture_output=True,
        text=True,
        check=False,
    )


def test_release_checksums_match_every_listed_file(release_dir: Path) -> None:
    result = _sha256sum_check(release_dir)
    assert result.returncode == 0, result.stdout + result.stderr
    listed = {line.split()[1] for line in (release_dir / "SHA256SUMS").read_text().splitlines()}
    assert "auto-review" in listed
    assert any(name.endswith(".tar.gz") for name in listed)
    assert any(name.endswith(".cdx.json") for name in listed)
    assert any(name.endswith(".intoto.json") for name in listed)


def test_release_checksums_catch_a_changed_executable(signed_copy: Path) -> None:
    assert _sha256sum_check(signed_copy).returncode == 0  # positive control
    with (signed_copy / "auto-review").open("ab") as binary:
        binary.write(b"\0")
    assert _sha256sum_check(signed_copy).returncode != 0


def test_release_signature_verifies_with_the_throwaway_key(signed_copy: Path) -> None:
    result = _verify(signed_copy)
    assert result.returncode == 0, result.stderr
    assert f'Good "file" signature for {SIGNER}' in result.stdout + result.stderr


def test_release_signature_refuses_changed_checksums(signed_copy: Path) -> None:
    sums = signed_copy / "SHA256SUMS"
    sums.write_text(sums.read_text().replace("auto-review", "auto-review-evil", 1))
    assert _verify(signed_copy).returncode != 0


def test_release_signature_refuses_another_identity(signed_copy: Path) -> None:
    assert _verify(signed_copy, identity="someone@else").returncode != 0


def test_release_signature_refuses_another_key(signed_copy: Path, tmp_path: Path) -> None:
    other = tmp_path / "other"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(other)], check=True)
    public = " ".join(other.with_suffix(".pub").read_text().split()[:2])
    (signed_copy / "allowed_signers").write_text(f'{SIGNER} namespaces="file" {public}\n')
    assert _verify(signed_copy).returncode != 0


def test_release_tarball_holds_the_executable_licence_and_readme(
    release_dir: Path, release_binary: Path
) -> None:
    tarball = _one(release_dir, "auto-review-*-linux-x86_64.tar.gz")
    stem = tarball.name.removesuffix(".tar.gz")
    with tarfile.open(tarball) as archive:
        members = {m.name: m for m in archive.getmembers()}
        assert set(members) == {stem, f"{stem}/auto-review", f"{stem}/LICENSE", f"{stem}/README.md"}
        assert members[f"{stem}/auto-review"].mode & 0o111
        assert all(m.uid == 0 and m.gid == 0 for m in members.values())
        inner = archive.extractfile(f"{stem}/auto-review")
        assert inner is not None
        assert hashlib.sha256(inner.read()).hexdigest() == _sha256(release_binary)


def test_release_sbom_has_the_required_cyclonedx_fields(
    release_dir: Path, release_binary: Path
) -> None:
    sbom = json.loads(_one(release_dir, "*.cdx.json").read_text())
    assert sbom["bomFormat"] == "CycloneDX"
    assert sbom["specVersion"] == "1.5"
    assert sbom["version"] >= 1
    assert re.fullmatch(r"urn:uuid:[0-9a-f-]{36}", sbom["serialNumber"])
    main = sbom["metadata"]["component"]
    assert (main["type"], main["name"]) == ("application", "auto-review")
    assert main["hashes"] == [{"alg": "SHA-256", "content": _sha256(release_binary)}]
    refs = [c["bom-ref"] for c in sbom["components"]]
    assert len(refs) == len(set(refs))
    for component in sbom["components"]:
        assert component["type"]
        assert component["name"]


def test_release_sbom_lists_exactly_the_pinned_runtime_dependencies(release_dir: Path) -> None:
    sbom = json.loads(_one(release_dir, "*.cdx.json").read_text())
    pypi = {
        _normalise(c["name"]): c["version"]
        for c in sbom["components"]
        if c.get("purl", "").startswith("pkg:pypi/")
    }
    constraints = _pins(ROOT / "requirements" / "constraints.txt")
    build_tools = _pins(ROOT / "packaging" / "requirements-build.txt")
    # Every bundled distribution is pinned: by the constraints, or (the bootloader) as a build tool.
    for name, version in pypi.items():
        assert constraints.get(name, build_tools.get(name)) == version, name
    # Every direct runtime dependency is inside, at its pinned version.
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    for requirement in project["dependencies"]:
        name = _normalise(re.split(r"[<>=!~\[; ]", requirement, maxsplit=1)[0])
        assert pypi.get(name) == constraints[name], name
    # Test and lint tools never ride along.
    for requirement in project["optional-dependencies"]["dev"]:
        assert _normalise(re.split(r"[<>=!~\[; ]", requirement, maxsplit=1)[0]) not in pypi
    # Wheels are identified by the digest pip verified.
    for component in sbom["components"]:
        if component.get("purl", "").startswith("pkg:pypi/"):
            assert component["hashes"][0]["alg"] == "SHA-256", component["name"]


def _pinned_hashes(path: Path) -> dict[str, str]:
    text = path.read_text(encoding="utf-8")
    found = re.findall(r"^([A-Za-z0-9_.-]+)==\S+ \\\n\s+--hash=sha256:([0-9a-f]{64})", text, re.M)
    return {_normalise(name): digest for name, digest in found}


def test_release_bundles_only_wheels_with_the_pinned_hashes(release_dir: Path) -> None:
    """F90: the bundled distributions are the wheels whose digests the repository pins, not
    whatever the index served for the pinned version."""
    sbom = json.loads(_one(release_dir, "*.cdx.json").read_text())
    pinned = _pinned_hashes(ROOT / "packaging" / "requirements-build.txt")
    pinned |= _pinned_hashes(ROOT / "packaging" / "requirements-release.txt")
    bundled = [c for c in sbom["components"] if c.get("purl", "").startswith("pkg:pypi/")]
    assert bundled
    for component in bundled:
        name = _normalise(component["name"])
        assert component["hashes"][0]["content"] == pinned.get(name), name


def test_release_sbom_names_the_bundled_system_libraries(release_dir: Path) -> None:
    sbom = json.loads(_one(release_dir, "*.cdx.json").read_text())
    debs = {c["name"] for c in sbom["components"] if c.get("purl", "").startswith("pkg:deb/")}
    if not debs:
        pytest.skip("built on a system without dpkg: bundled system files are listed as files")
    assert any(name.startswith("libpython3") for name in debs)
    assert "libssl3" in debs or any(name.startswith("libssl") for name in debs)


def test_release_provenance_names_the_subjects_source_and_dependencies(
    release_dir: Path, release_binary: Path
) -> None:
    statement = json.loads(_one(release_dir, "*.intoto.json").read_text())
    assert statement["_type"] == "https://in-toto.io/Statement/v1"
    assert statement["predicateType"] == "https://slsa.dev/provenance/v1"
    subjects = {s["name"]: s["digest"]["sha256"] for s in statement["subject"]}
    assert subjects["auto-review"] == _sha256(release_binary)
    for name, digest in subjects.items():
        assert _sha256(release_dir / name) == digest, name
    definition = statement["predicate"]["buildDefinition"]
    assert re.fullmatch(
        r"[0-9a-f]{40}", definition["externalParameters"]["source"]["digest"]["gitCommit"]
    )
    assert definition["externalParameters"]["command"].startswith("packaging/build")
    assert definition["internalParameters"]["python"].startswith("3.11")
    dependencies = {d["uri"]: d for d in definition["resolvedDependencies"]}
    pinned = _pins(ROOT / "requirements" / "constraints.txt")
    for name in ("pydantic", "starlette", "uvicorn"):
        entry = dependencies[f"pkg:pypi/{name}@{pinned[name]}"]
        assert re.fullmatch(r"[0-9a-f]{64}", entry["digest"]["sha256"])
    assert statement["predicate"]["runDetails"]["builder"]["id"]
