"""Write the in-toto statement (SLSA provenance v1 predicate) of a release build.

It records what was built (the subjects and their sha256), from what (source repository and
commit, whether the tree was the commit or a working tree), how (the build command, the
reproducibility settings), with what (Python, build tools and every installed dependency with the
sha256 of its archive) and by whom (this builder, when). Run by packaging/build.
"""

from __future__ import annotations

import argparse
import getpass
import hashlib
import json
import os
import platform
import re
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
PREDICATE_TYPE = "https://slsa.dev/provenance/v1"
BUILD_TYPE = "urn:auto-review:build-type:packaging-build:v1"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _installed(report_path: Path) -> list[dict[str, Any]]:
    report = json.loads(report_path.read_text(encoding="utf-8"))
    resolved = []
    for item in sorted(report.get("install", []), key=lambda i: i["metadata"]["name"].lower()):
        name, version = item["metadata"]["name"], item["metadata"]["version"]
        info = item.get("download_info", {})
        digest = info.get("archive_info", {}).get("hashes", {}).get("sha256")
        entry: dict[str, Any] = {"uri": f"pkg:pypi/{name.lower()}@{version}", "name": name}
        if digest:
            entry["digest"] = {"sha256": digest}
        if info.get("url", "").startswith("http"):
            entry["annotations"] = {"downloadLocation": info["url"]}
        elif info.get("url"):
            # Our own wheel, built from the source above in this run.
            entry["annotations"] = {"builtFrom": "source"}
        resolved.append(entry)
    return resolved


def _build_tools(requirements: Path) -> list[dict[str, Any]]:
    tools = []
    pattern = re.compile(r"^([A-Za-z0-9_.-]+)==(\S+)\s*\\?\s*$")
    lines = requirements.read_text(encoding="utf-8").splitlines()
    for index, line in enumerate(lines):
        match = pattern.match(line)
        if not match:
            continue
        following = lines[index + 1] if index + 1 < len(lines) else ""
        digest = re.search(r"sha256:([0-9a-f]{64})", following)
        entry: dict[str, Any] = {"uri": f"pkg:pypi/{match[1].lower()}@{match[2]}", "name": match[1]}
        if digest:
            entry["digest"] = {"sha256": digest[1]}
        entry["annotations"] = {"role": "build-tool"}
        tools.append(entry)
    return tools


def _interpreter(python: str) -> dict[str, Any]:
    real = os.path.realpath(python)
    entry: dict[str, Any] = {
        "uri": f"file://{real}",
        "name": "cpython",
        "digest": {"sha256": _sha256(Path(real))},
        "annotations": {"version": platform.python_version()},
    }
    try:
        owner = subprocess.run(
            ["dpkg-query", "-S", real], capture_output=True, text=True, check=True
        ).stdout.split(":")[0]
        deb_version = subprocess.run(
            ["dpkg-query", "-W", "-f=${Version}", owner], capture_output=True, text=True, check=True
        ).stdout
        entry["annotations"]["debianPackage"] = f"{owner}={deb_version}"
    except (OSError, subprocess.CalledProcessError):
        pass
    return entry


def build_statement(args: argparse.Namespace) -> dict[str, Any]:
    """The in-toto statement for this build."""
    subjects = [{"name": path.name, "digest": {"sha256": _sha256(path)}} for path in args.subject]
    source: dict[str, Any] = {"uri": args.source_uri, "digest": {"gitCommit": args.commit}}
    return {
        "_type": STATEMENT_TYPE,
        "subject": subjects,
        "predicateType": PREDICATE_TYPE,
        "predicate": {
            "buildDefinition": {
                "buildType": BUILD_TYPE,
                "externalParameters": {
                    "source": source,
                    "treeState": args.tree_state,
                    "command": args.command,
                    "platform": "linux-x86_64",
                },
                "internalParameters": {
                    "SOURCE_DATE_EPOCH": os.environ.get("SOURCE_DATE_EPOCH", ""),
                    "PYTHONHASHSEED": os.environ.get("PYTHONHASHSEED", ""),
                    "python": platform.python_version(),
                    "pythonImplementation": platform.python_implementation(),
                    "pyinstaller": {"onefile": True, "strip": True, "upx": False},
                },
                "resolvedDependencies": [
                    {"uri": source["uri"], "digest": source["digest"], "name": "source"},
                    _interpreter(args.python),
                    *_build_tools(args.build_requirements),
                    *_installed(args.pip_report),
                ],
            },
            "runDetails": {
                "builder": {
                    "id": f"urn:auto-review:builder:{getpass.getuser()}@{socket.gethostname()}",
                    "version": {"kernel": platform.release(), "glibc": platform.libc_ver()[1]},
                },
                "metadata": {
                    "invocationId": f"{args.commit}:{args.started_on}",
                    "startedOn": args.started_on,
                    "finishedOn": args.finished_on,
                },
            },
        },
    }


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pip-report", type=Path, required=True)
    parser.add_argument("--build-requirements", type=Path, required=True)
    parser.add_argument("--source-uri", required=True)
    parser.add_argument("--commit", required=True)
    parser.add_argument("--tree-state", choices=["commit", "worktree"], required=True)
    parser.add_argument("--command", required=True)
    parser.add_argument("--python", required=True)
    parser.add_argument("--started-on", required=True)
    parser.add_argument("--finished-on", required=True)
    parser.add_argument("--subject", type=Path, action="append", required=True)
    parser.add_argument("--output", type=Path, required=True)
    args = parser.parse_args(argv)
    statement = build_statement(args)
    args.output.write_text(json.dumps(statement, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    deps = statement["predicate"]["buildDefinition"]["resolvedDependencies"]
    subjects = len(statement["subject"])
    print(f"provenance: {subjects} subjects, {len(deps)} dependencies -> {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
