"""``PreparedReview``: what a review would post, before posting (shared by stages and CLI)."""

from __future__ import annotations

from dataclasses import dataclass, field

from auto_review.hosts import CommitStatus, PullRequest, ReviewEvent
from auto_review.review.findings import Finding
from auto_review.review.publish import ReviewReport, render_body, render_comment

__all__ = ["PreparedReview"]


@dataclass
class PreparedReview:
    """Everything that would be posted; ``ReviewPipeline.run`` posts it, a dry run prints it."""

    pr: PullRequest
    event: ReviewEvent
    report: ReviewReport
    anchored: list[Finding]
    status: CommitStatus
    findings: list[Finding]
    carried_errors: int
    dropped_by_verifier: int
    unreviewed: list[tuple[str, str]] = field(default_factory=list)
    incremental_since: str | None = None
    bound: bool = True  # the diff is the head's own (``_diffsource``)

    def body(self) -> str:
        return render_body(self.report)

    def comments(self) -> list[tuple[str, int | None, str]]:
        return [(f.path, f.anchor, render_comment(f)) for f in self.anchored]
