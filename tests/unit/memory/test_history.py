from __future__ import annotations

from auto_review.hosts import RepoRef
from auto_review.memory.history import PostedFinding, ReviewHistory, ReviewRun
from auto_review.store import MEMORY, Store

REPO = RepoRef("o", "r")
OTHER = RepoRef("o", "other")


def test_last_reviewed_head_counts_only_posted_runs() -> None:
    history = ReviewHistory(Store.open(MEMORY), clock=lambda: 1.0)
    assert history.last_reviewed_head(REPO, 1) is None
    history.record_run(ReviewRun(REPO, 1, "a" * 40, "posted"))
    history.record_run(ReviewRun(REPO, 1, "b" * 40, "superseded"))
    assert history.last_reviewed_head(REPO, 1) == "a" * 40
    assert history.last_reviewed_head(OTHER, 1) is None
    assert [r.outcome for r in history.runs(REPO, 1)] == ["superseded", "posted"]


def test_posted_findings_are_kept_per_fingerprint_and_repo() -> None:
    history = ReviewHistory(Store.open(MEMORY))
    f1 = PostedFinding("f" * 16, "a.py", 3, "error", "bad", "x = 1", "a" * 40)
    history.record_findings(REPO, 1, [f1])
    history.record_findings(
        REPO, 1, [PostedFinding("f" * 16, "a.py", 5, "error", "bad", "x = 1", "b" * 40)]
    )
    assert [(f.line, f.head_sha) for f in history.posted_findings(REPO, 1)] == [(5, "b" * 40)]
    assert history.posted_findings(OTHER, 1) == []
    history.forget_pr(REPO, 1)
    assert history.posted_findings(REPO, 1) == []
