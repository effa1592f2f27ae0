from __future__ import annotations

import pytest

from auto_review.review.diff import FileDiff
from auto_review.review.triage import SkipReason, classify, triage


def _fd(path: str, status: str = "modified") -> FileDiff:
    return FileDiff(path, None, status, ())  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("path", "reason"),
    [
        ("Cargo.lock", SkipReason.LOCKFILE),
        ("web/package-lock.json", SkipReason.LOCKFILE),
        ("Pipfile.lock", SkipReason.LOCKFILE),
        ("app/gradle.lockfile", SkipReason.LOCKFILE),
        ("go.sum", SkipReason.LOCKFILE),
        ("vendor/github.com/x/y.go", SkipReason.VENDORED),
        ("ui/node_modules/a/index.js", SkipReason.VENDORED),
        ("api/user_pb2.py", SkipReason.GENERATED),
        ("src/schema.generated.ts", SkipReason.GENERATED),
        ("static/app.min.js", SkipReason.GENERATED),
        ("dist/bundle.js", SkipReason.GENERATED),
        ("proto/x.pb.go", SkipReason.GENERATED),
    ],
)
def test_classify_marks_trivial_files(path: str, reason: SkipReason) -> None:
    assert classify(path) == reason


@pytest.mark.parametrize(
    "path", ["src/app.py", "lock.py", "docs/vendor.md", "distance.go", "src/build_graph.rs"]
)
def test_classify_keeps_ordinary_source_files(path: str) -> None:
    assert classify(path) is None


def test_triage_skips_whole_pr_only_when_every_file_is_trivial() -> None:
    only_locks = triage([_fd("yarn.lock"), _fd("go.sum")], is_ignored=lambda p: False)
    assert only_locks.skip_pr == "only lockfile files changed"
    mixed = triage([_fd("yarn.lock"), _fd("src/a.ts")], is_ignored=lambda p: False)
    assert mixed.skip_pr is None
    assert [f.path for f in mixed.review] == ["src/a.ts"]
    assert mixed.skipped == (("yarn.lock", SkipReason.LOCKFILE),)


def test_triage_applies_ignored_paths() -> None:
    result = triage([_fd("docs/a.md"), _fd("src/a.py")], is_ignored=lambda p: p.startswith("docs/"))
    assert [f.path for f in result.review] == ["src/a.py"]
    assert result.skipped == (("docs/a.md", SkipReason.IGNORED),)


def test_triage_reviews_pure_deletion_pr() -> None:
    result = triage([_fd("src/old.py", "removed")], is_ignored=lambda p: False)
    assert result.skip_pr is None
