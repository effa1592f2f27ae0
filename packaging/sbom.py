"""Write the CycloneDX 1.5 SBOM of the one-file executable from PyInstaller's analysis.

Every file PyInstaller put inside the executable (the table of contents the spec dumps) is traced
to its owner: a Python distribution of the build virtualenv (by its RECORD), a Debian package (by
dpkg's file lists: libpython, the standard library, OpenSSL, zlib, ...), or, failing both, the file
itself. The SBOM therefore lists what is inside, not what pyproject.toml asks for. Python
distributions carry the sha256 of the wheel pip installed (from pip's installation report).

Run by packaging/build with the build venv's Python; it validates the document before writing it.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import re
import subprocess
import sys
import sysconfig
import uuid
import zipfile
from collections import defaultdict
from datetime import UTC, datetime
from importlib.metadata import Distribution, distributions
from pathlib import Path
from typing import Any

SPEC_VERSION = "1.5"
_DPKG_INFO = Path("/var/lib/dpkg/info")
_PRODUCT = "auto-review"


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _distribution_files() -> dict[str, Distribution]:
    owners: dict[str, Distribution] = {}
    for dist in distributions():
        for file in dist.files or ():
            located = Path(str(dist.locate_file(file)))
            owners[os.path.realpath(located)] = dist
            owners[os.path.normpath(located)] = dist
    return owners


def _deb_files() -> dict[str, str]:
    """Path -> 'package:arch' from dpkg's file lists (empty when this is not a Debian system)."""
    owners: dict[str, str] = {}
    if not _DPKG_INFO.is_dir():
        return owners
    for listing in _DPKG_INFO.glob("*.list"):
        package = listing.name.removesuffix(".list")
        for line in listing.read_text(encoding="utf-8", errors="replace").splitlines():
            owners.setdefault(line, package)
    return owners


def _path_variants(path: str) -> list[str]:
    # Debian 12 merged /usr: dpkg may list /lib/... while the loader found /usr/lib/... (or the
    # reverse), and sonames are often symlinks to the real file.
    found = []
    for candidate in (path, os.path.realpath(path)):
        found.append(candidate)
        if candidate.startswith("/usr/"):
            found.append(candidate[4:])
        else:
            found.append("/usr" + candidate)
    return found


def _deb_versions(packages: set[str]) -> dict[str, str]:
    if not packages:
        return {}
    out = subprocess.run(
        ["dpkg-query", "-W", "-f=${Package}:${Architecture} ${Version}\\n", *sorted(packages)],
        capture_output=True,
        text=True,
        check=False,
    ).stdout
    versions = {}
    for line in out.splitlines():
        key, _, version = line.partition(" ")
        versions[key] = version
        versions[key.split(":")[0]] = version
    return versions


def _os_release() -> dict[str, str]:
    info: dict[str, str] = {}
    path = Path("/etc/os-release")
    if path.exists():
        for line in path.read_text(encoding="utf-8").splitlines():
            key, sep, value = line.partition("=")
            if sep:
                info[key] = value.strip().strip('"')
    return info


def _wheel_hashes(report_path: Path) -> dict[str, tuple[str, str]]:
    """Normalised name -> (sha256 of the installed archive, its URL) from pip's report."""
    report = json.loads(report_path.read_text(encoding="utf-8"))
    hashes = {}
    for item in report.get("install", []):
        info = item.get("download_info", {})
        digest = info.get("archive_info", {}).get("hashes", {}).get("sha256")
        if digest:
            hashes[_normalise(item["metadata"]["name"])] = (digest, info.get("url", ""))
    return hashes


def _licence(dist: Distribution) -> list[dict[str, Any]]:
    expression = dist.metadata.get("License-Expression")
    if expression:
        return [{"expression": expression}]
    text = (dist.metadata.get("License") or "").strip()
    if text and len(text) <= 80 and "\n" not in text:
        return [{"license": {"name": text}}]
    classifiers = [
        c.split(" :: ")[-1]
        for c in dist.metadata.get_all("Classifier") or []
        if c.startswith("License ::")
    ]
    return [{"license": {"name": name}} for name in classifiers]


def _expand(toc: dict[str, list[list[str]]]) -> list[tuple[str, str]]:
    """(name inside, source file) for everything in the executable.

    PyInstaller generates base_library.zip from standard-library modules: each member is traced
    to its source file. The bootloader is not in the table of contents but is inside too.
    """
    entries: list[tuple[str, str]] = []
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    for kind in ("scripts", "pure", "binaries", "datas"):
        for dest, src, _typecode in toc.get(kind, []):
            if src == "-":
                continue  # a namespace package: a name, no file
            if dest == "base_library.zip":
                with zipfile.ZipFile(src) as archive:
                    for member in archive.namelist():
                        if member.endswith(".pyc"):
                            module = member.removesuffix(".pyc")
                            source = stdlib / f"{module}.py"
                            entries.append((f"{dest}/{member}", str(source)))
                continue
            entries.append((dest, src))
    import PyInstaller  # noqa: PLC0415 - only present in the build venv

    bootloader = Path(PyInstaller.__file__).parent / "bootloader" / "Linux-64bit-intel" / "run"
    entries.append(("(bootloader)", str(bootloader)))
    return entries


def build_sbom(
    toc: dict[str, list[list[str]]],
    wheel_hashes: dict[str, tuple[str, str]],
    *,
    executable: Path,
    version: str,
    commit: str,
    source_dir: Path,
) -> dict[str, Any]:
    """The CycloneDX document for the files listed in ``toc``."""
    dist_owner = _distribution_files()
    deb_owner = _deb_files()
    by_dist: dict[str, list[str]] = defaultdict(list)
    by_deb: dict[str, list[str]] = defaultdict(list)
    dists: dict[str, Distribution] = {}
    unowned: list[tuple[str, str]] = []
    source_root = os.path.realpath(source_dir) + os.sep
    for dest, src in _expand(toc):
        real = os.path.realpath(src)
        if real.startswith(source_root):
            by_dist[_PRODUCT].append(dest)  # e.g. the entry script of packaging/
            continue
        dist = dist_owner.get(os.path.normpath(src)) or dist_owner.get(real)
        if dist is not None:
            key = _normalise(dist.metadata["Name"])
            dists[key] = dist
            by_dist[key].append(dest)
            continue
        deb = next((deb_owner[p] for p in _path_variants(src) if p in deb_owner), None)
        if deb is not None:
            by_deb[deb].append(dest)
            continue
        unowned.append((dest, src))

    components: list[dict[str, Any]] = []
    for key in sorted(by_dist):
        if key == _PRODUCT:
            continue
        dist = dists[key]
        name, dist_version = dist.metadata["Name"], dist.version
        purl = f"pkg:pypi/{key}@{dist_version}"
        component: dict[str, Any] = {
            "type": "library",
            "bom-ref": purl,
            "name": name,
            "version": dist_version,
            "purl": purl,
            "properties": [
                {"name": "auto-review:bundled-files", "value": str(len(by_dist[key]))},
                {"name": "auto-review:origin", "value": "pypi"},
            ],
        }
        if key in wheel_hashes:
            digest, url = wheel_hashes[key]
            component["hashes"] = [{"alg": "SHA-256", "content": digest}]
            if url.startswith("http"):
                component["externalReferences"] = [{"type": "distribution", "url": url}]
        licences = _licence(dist)
        if licences:
            component["licenses"] = licences
        components.append(component)

    os_info = _os_release()
    distro = f"{os_info.get('ID', 'debian')}-{os_info.get('VERSION_ID', '')}".rstrip("-")
    deb_versions = _deb_versions(set(by_deb))
    for package in sorted(by_deb):
        name, _, arch = package.partition(":")
        deb_version = deb_versions.get(package) or deb_versions.get(name, "")
        purl = f"pkg:deb/{os_info.get('ID', 'debian')}/{name}@{deb_version}?arch={arch or 'all'}"
        purl += f"&distro={distro}"
        components.append(
            {
                "type": "library",
                "bom-ref": purl,
                "name": name,
                "version": deb_version,
                "purl": purl,
                "properties": [
                    {"name": "auto-review:bundled-files", "value": str(len(by_deb[package]))},
                    {"name": "auto-review:origin", "value": "debian"},
                ],
            }
        )
    for dest, src in sorted(unowned):
        path = Path(src)
        components.append(
            {
                "type": "file",
                "bom-ref": f"file:{dest}",
                "name": dest,
                "hashes": [{"alg": "SHA-256", "content": _sha256(path)}] if path.is_file() else [],
                "properties": [{"name": "auto-review:origin", "value": "build"}],
            }
        )

    exe_digest = _sha256(executable)
    epoch = int(os.environ.get("SOURCE_DATE_EPOCH", "0"))
    product_ref = f"pkg:generic/auto-review@{version}"
    document: dict[str, Any] = {
        "bomFormat": "CycloneDX",
        "specVersion": SPEC_VERSION,
        # Derived from the executable, so the same build yields the same document.
        "serialNumber": f"urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, 'sha256:' + exe_digest)}",
        "version": 1,
        "metadata": {
            "timestamp": datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "tools": {
                "components": [
                    {"type": "application", "name": "auto-review packaging/sbom.py"},
                    *[
                        {"type": "application", "name": d.metadata["Name"], "version": d.version}
                        for d in distributions()
                        if _normalise(d.metadata["Name"]) in {"pyinstaller", "pip"}
                    ],
                ]
            },
            "component": {
                "type": "application",
                "bom-ref": product_ref,
                "name": "auto-review",
                "version": version,
                "purl": product_ref,
                "hashes": [{"alg": "SHA-256", "content": exe_digest}],
                "licenses": [{"expression": "Apache-2.0"}],
                "properties": [
                    {"name": "auto-review:source-commit", "value": commit},
                    {"name": "auto-review:python", "value": platform.python_version()},
                    {"name": "auto-review:platform", "value": "linux-x86_64"},
                    {
                        "name": "auto-review:bundled-files",
                        "value": str(len(by_dist.get(_PRODUCT, []))),
                    },
                ],
            },
        },
        "components": components,
        "dependencies": [
            {"ref": product_ref, "dependsOn": [c["bom-ref"] for c in components]},
        ],
    }
    return document


def validate(document: dict[str, Any]) -> list[str]:
    """Problems with the fields CycloneDX 1.5 requires (and those this project relies on)."""
    problems = []
    if document.get("bomFormat") != "CycloneDX":
        problems.append("bomFormat must be CycloneDX")
    if document.get("specVersion") != SPEC_VERSION:
        problems.append(f"specVersion must be {SPEC_VERSION}")
    if not isinstance(document.get("version"), int) or document["version"] < 1:
        problems.append("version must be a positive integer")
    if not re.fullmatch(r"urn:uuid:[0-9a-f-]{36}", str(document.get("serialNumber", ""))):
        problems.append("serialNumber must be a urn:uuid")
    main = document.get("metadata", {}).get("component", {})
    if not main.get("name") or not main.get("type"):
        problems.append("metadata.component needs type and name")
    refs = set()
    for index, component in enumerate(document.get("components", [])):
        for field in ("type", "name", "bom-ref"):
            if not component.get(field):
                problems.append(f"components[{index}] has no {field}")
        if component.get("type") not in {"library", "application", "file", "framework"}:
            problems.append(f"components[{index}] has an unexpected type")
        if component.get("bom-ref") in refs:
            problems.append(f"components[{index}] repeats bom-ref {component.get('bom-ref')}")
        refs.add(component.get("bom-ref"))
        for digest in component.get("hashes", []):
            well_formed = re.fullmatch(r"[0-9a-f]{64}", str(digest.get("content", "")))
            if digest.get("alg") != "SHA-256" or not well_formed:
                problems.append(f"components[{index}] has a malformed hash")
    return problems


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--toc", type=Path, required=True)
    parser.add_argument("--pip-report", type=Path, action="append", required=True)
    parser.add_argument("--executable", type=Path, required=True)
    parser.add_argument("--version", required=True)
    parser.add_argument("--commit", required=True)
    parser.add_argument("--source-dir", type=Path, required=True)
    parser.add_argument("--output", type=Path, required=True)
    args = parser.parse_args(argv)
    toc = json.loads(args.toc.read_text(encoding="utf-8"))
    document = build_sbom(
        toc,
        {k: v for report in args.pip_report for k, v in _wheel_hashes(report).items()},
        executable=args.executable,
        version=args.version,
        commit=args.commit,
        source_dir=args.source_dir,
    )
    problems = validate(document)
    if problems:
        for problem in problems:
            print(f"sbom: {problem}", file=sys.stderr)
        return 1
    args.output.write_text(json.dumps(document, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    counts = defaultdict(int)
    for component in document["components"]:
        properties = {p["name"]: p["value"] for p in component["properties"]}
        origin = properties["auto-review:origin"]
        counts[origin] += 1
    summary = ", ".join(f"{n} {origin}" for origin, n in sorted(counts.items()))
    print(f"sbom: {len(document['components'])} components ({summary}) -> {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
