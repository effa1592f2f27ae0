"""Deterministic triage: which changed files are worth the model's time, and whether any are.

A file is *trivial* when it is a lockfile, vendored, or generated; it is *ignored* when the
base-branch config's ``ignored_paths`` match it. Neither is sent to the model. A whole PR is
skipped when every changed file is trivial or ignored (a draft is left pending before any diff:
``pipeline``); a PR that only deletes files is still reviewed (deleting code can break things).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import PurePosixPath

from auto_review.review.diff import FileDiff

__all__ = ["SkipReason", "TriageResult", "classify", "triage"]


class SkipReason(StrEnum):
    LOCKFILE = "lockfile"
    VENDORED = "vendored"
    GENERATED = "generated"
    IGNORED = "ignored by .auto_review.yaml"
    BINARY = "binary"
    TOO_LARGE = "too large (the pull request's diff is over its line budget)"


_LOCKFILES = frozenset(
    {
        "cargo.lock",
        "package-lock.json",
        "npm-shrinkwrap.json",
        "yarn.lock",
        "pnpm-lock.yaml",
        "bun.lockb",
        "bun.lock",
        "deno.lock",
        "poetry.lock",
        "pipfile.lock",
        "pdm.lock",
        "uv.lock",
        "gemfile.lock",
        "go.sum",
        "go.work.sum",
        "composer.lock",
        "mix.lock",
        "podfile.lock",
        "package.resolved",
        "flake.lock",
        "gradle.lockfile",
        "packages.lock.json",
        "paket.lock",
        "pubspec.lock",
        "cartfile.resolved",
        "conan.lock",
        "stack.yaml.lock",
        "cabal.project.freeze",
        "manifest.toml",  # Julia
        "shard.lock",
        ".terraform.lock.hcl",
        "renv.lock",
        "requirements.lock",
    }
)
_VENDOR_DIRS = frozenset(
    {
        "vendor",
        "vendors",
        "node_modules",
        "third_party",
        "third-party",
        "thirdparty",
        "bower_components",
        "_vendor",
    }
)
_GENERATED_DIRS = frozenset({"generated", "__generated__", "gen", "dist", "build", "out", ".next"})
_GENERATED_SUFFIXES = (
    "_pb2.py",
    "_pb2.pyi",
    "_pb2_grpc.py",
    ".pb.go",
    ".pb.cc",
    ".pb.h",
    ".pb.rs",
    ".pb.swift",
    "_grpc.pb.go",
    ".pb.gw.go",
    ".min.js",
    ".min.css",
    ".map",
    ".bundle.js",
    ".designer.cs",
    ".g.dart",
    ".freezed.dart",
    "_generated.go",
    ".gen.go",
    "_string.go",  # stringer
    ".snap",
    "zz_generated.deepcopy.go",
)
_GENERATED_INFIXES = (".generated.", ".g.cs", ".g.i.cs", ".pb.")


def classify(path: str) -> SkipReason | None:
    """Why ``path`` is trivial (lockfile, vendored, generated), or ``None`` if it is not."""
    lower = path.lower()
    parts = PurePosixPath(lower).parts
    name = parts[-1] if parts else lower
    if name in _LOCKFILES or (name.endswith(".lock") and name.startswith(("yarn", "pnpm"))):
        return SkipReason.LOCKFILE
    if any(part in _VENDOR_DIRS for part in parts[:-1]):
        return SkipReason.VENDORED
    if any(part in _GENERATED_DIRS for part in parts[:-1]):
        return SkipReason.GENERATED
    if name.endswith(_GENERATED_SUFFIXES) or any(infix in name for infix in _GENERATED_INFIXES):
        return SkipReason.GENERATED
    return None


@dataclass(frozen=True)
class TriageResult:
    review: tuple[FileDiff, ...]  # files the model sees
    skipped: tuple[tuple[str, SkipReason], ...]
    skip_pr: str | None  # a reason to skip the whole PR, or None


def triage(files: Sequence[FileDiff], *, is_ignored: Callable[[str], bool]) -> TriageResult:
    """Split the PR's files into reviewed and skipped; decide a whole-PR skip."""
    review: list[FileDiff] = []
    skipped: list[tuple[str, SkipReason]] = []
    for fd in files:
        reason = classify(fd.path)
        if reason is None and is_ignored(fd.path):
            reason = SkipReason.IGNORED
        if reason is None and fd.binary:
            reason = SkipReason.BINARY
        if reason is None and fd.oversized:
            reason = SkipReason.TOO_LARGE
        if reason is None:
            review.append(fd)
        else:
            skipped.append((fd.path, reason))
    skip_pr: str | None = None
    if not files:
        skip_pr = "no changed files"
    elif not review:
        kinds = sorted({str(reason) for _, reason in skipped})
        skip_pr = f"only {', '.join(kinds)} files changed"
    return TriageResult(tuple(review), tuple(skipped), skip_pr)
