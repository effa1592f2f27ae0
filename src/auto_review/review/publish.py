"""Turn verified findings into one forge review and a commit status.

The event is computed here, never taken from the model: REQUEST_CHANGES while an error-level
finding remains (including earlier blocking findings an incremental review carries over),
otherwise COMMENT; APPROVED only when the base-branch config sets ``approve_when_clean`` and
nothing at all remains (``_stages`` withholds the opt-in while an earlier finding is still
open). Each anchored finding becomes an inline comment at its new-side line carrying a hidden
fingerprint marker (see ``guard.py``); a finding without an anchor is listed in the body
instead. If the forge refuses the inline comments (422), the review is posted again without them
and they are listed in the body. Model-written text is defanged before it is posted
(``defang.py``: no live mentions, issue references, images, HTML or HTML comments); a suggestion
is code to apply, so it goes verbatim in a fence it cannot close.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from auto_review.errors import HostError
from auto_review.hosts import (
    CommitState,
    CommitStatus,
    InlineComment,
    RepoRef,
    Review,
    ReviewEvent,
)
from auto_review.llm import UsageTotals
from auto_review.review.defang import code_span, defang, fence_for
from auto_review.review.findings import Finding, Severity
from auto_review.review.guard import finding_marker

__all__ = [
    "STATUS_CONTEXT",
    "ReviewPoster",
    "ReviewReport",
    "compute_event",
    "find_posted",
    "post_review",
    "render_body",
    "render_comment",
    "review_marker",
    "review_marks",
    "status_for",
]

STATUS_CONTEXT = "auto-review"
BODY_CAP = 32 * 1024
MESSAGE_CAP = 4096
STATUS_CAP = 140
_LABEL = {
    Severity.ERROR: "🔴 **Error**",
    Severity.WARNING: "🟡 **Warning**",
    Severity.NOTE: "💡 **Note**",
}


def _cap(text: str, cap: int, marker: str) -> str:
    raw = text.encode("utf-8")
    return text if len(raw) <= cap else raw[:cap].decode("utf-8", "ignore") + f"\n\n{marker}"


def compute_event(
    findings: Sequence[Finding],
    *,
    carried_errors: int,
    approve_when_clean: bool,
    failed_checks: int = 0,
) -> ReviewEvent:
    """REQUEST_CHANGES while anything blocks; APPROVED only when opted in and nothing found."""
    if carried_errors or failed_checks or any(f.severity is Severity.ERROR for f in findings):
        return ReviewEvent.REQUEST_CHANGES
    if approve_when_clean and not findings:
        return ReviewEvent.APPROVED
    return ReviewEvent.COMMENT


def render_comment(finding: Finding) -> str:
    lines = (
        f" (lines {finding.line_start}-{finding.line_end})"
        if finding.line_end > finding.line_start
        else ""
    )
    text = f"{_LABEL[finding.severity]} · {finding.category}{lines}\n\n"
    text += _cap(defang(finding.message), MESSAGE_CAP, "[truncated]")
    if finding.suggestion and finding.suggestion.strip():
        # Verbatim: applied as is, so a zero-width space would land in the file; the forge
        # renders no mention, reference or HTML inside a fence, and this one cannot be closed.
        code = finding.suggestion.rstrip("\n")
        fence = fence_for(code)
        text += f"\n\nSuggested change:\n{fence}suggestion\n{code}\n{fence}"
    return text + "\n\n" + finding_marker(finding)


@dataclass
class ReviewReport:
    """Everything the review body says."""

    head_sha: str
    run: str | None = None  # the job's run key (``ReviewRequest.run``), marked in the body
    summaries: Sequence[str] = ()
    walkthroughs: Sequence[str] = ()
    unanchored: Sequence[Finding] = ()
    carried: Sequence[str] = ()  # earlier blocking findings still open (rendered lines)
    unreviewed: Sequence[tuple[str, str]] = ()
    skipped: Sequence[tuple[str, str]] = ()
    notes: Sequence[str] = ()  # verifier failures, config problems, workspace trouble
    checks: Sequence[str] = ()  # pre-merge check results (markdown lines)
    dropped: dict[str, int] = field(default_factory=dict)
    usage: UsageTotals | None = None
    show_cost: bool = True


def _footer(usage: UsageTotals) -> list[str]:
    rows = ["", "<details><summary>Model usage</summary>", ""]
    for e in usage.entries:
        cost = f"${e.cost_usd:.4f}" if e.priced else "unpriced"
        rows.append(
            f"- {e.tier.value} `{e.model}`: {e.calls} call(s), {e.prompt_tokens} prompt + "
            f"{e.completion_tokens} completion tokens, {cost}"
        )
    rows.append(
        f"- total: {usage.prompt_tokens + usage.completion_tokens} tokens, ${usage.cost_usd:.4f}"
    )
    rows += ["", "</details>"]
    return rows


def render_body(report: ReviewReport) -> str:
    parts: list[str] = ["## auto-review", ""]
    parts += [defang(s) for s in report.summaries] or ["No summary."]
    if report.walkthroughs:
        parts += ["", "### Walkthrough", *(defang(w) for w in report.walkthroughs)]
    if report.carried:
        parts += ["", "### Still open from earlier reviews", *(defang(c) for c in report.carried)]
    if report.unanchored:
        parts += ["", "### Findings outside the diff's lines"]
        parts += [
            f"- {_LABEL[f.severity]} {code_span(f'{f.path}:{f.line_start}')}: "
            f"{defang(f.message)[:MESSAGE_CAP]}"
            for f in report.unanchored
        ]
    if report.unreviewed:
        parts += ["", "### Files not reviewed"]
        parts += [f"- {code_span(path)}: {reason}" for path, reason in report.unreviewed]
    if report.skipped:
        parts += ["", f"<details><summary>{len(report.skipped)} file(s) skipped</summary>", ""]
        parts += [f"- {code_span(path)}: {reason}" for path, reason in report.skipped]
        parts += ["", "</details>"]
    if report.checks:
        parts += ["", "### Pre-merge checks", *(defang(c) for c in report.checks)]
    if report.notes:
        # Ours, but one may quote a crashed analysis child's last line about a hostile file.
        parts += ["", "### Notes", *(f"- {defang(n)}" for n in report.notes)]
    dropped = {k: v for k, v in report.dropped.items() if v}
    if dropped:
        parts += ["", "Filtered: " + ", ".join(f"{v} {k}" for k, v in sorted(dropped.items()))]
    if report.usage is not None and report.show_cost and report.usage.entries:
        parts += _footer(report.usage)
    body = _cap("\n".join(parts), BODY_CAP, "[review body truncated]")
    return f"{body}\n\n{review_marker(report.head_sha, report.run)}"


_MARK = re.compile(r"<!-- auto-review:review head=([0-9a-f]{40,64})(?: run=([0-9]+-[0-9]+))? -->")


def review_marker(head_sha: str, run: str | None = None) -> str:
    """The hidden last line of every pipeline review: which head it reviewed, and in which run.

    Only the bot's own reviews are read for it (chat's override looks for the head, a retried
    job for its run), and model and user text in the bot's posts is defanged, which removes HTML
    comments, so it cannot be forged from inside a review.
    """
    return f"<!-- auto-review:review head={head_sha}{f' run={run}' if run else ''} -->"


def review_marks(body: str) -> list[tuple[str, str | None]]:
    """The (head, run) pairs of the review markers in ``body`` (run None: none was marked)."""
    return [(m[1], m[2]) for m in _MARK.finditer(body)]


def status_for(
    findings: Sequence[Finding], *, carried_errors: int, failed_checks: int = 0
) -> CommitStatus:
    """success when nothing blocks, failure while an error-level finding or check remains."""
    counts = {s: sum(1 for f in findings if f.severity is s) for s in Severity}
    counts[Severity.ERROR] += carried_errors
    bits = [
        f"{n} {s.value}{'s' if n != 1 else ''}"
        for s, n in sorted(counts.items(), key=lambda kv: -kv[0].rank)
        if n
    ]
    if failed_checks:
        bits.insert(0, "PR metadata check failed")
    text = "auto-review: " + (", ".join(bits) if bits else "no findings")
    state = CommitState.FAILURE if counts[Severity.ERROR] or failed_checks else CommitState.SUCCESS
    return CommitStatus(STATUS_CONTEXT, state, text[:STATUS_CAP])


class ReviewPoster(Protocol):
    """The forge calls ``post_review`` and ``find_posted`` need (``ReviewHost`` has them)."""

    async def list_reviews(self, repo: RepoRef, number: int) -> list[Review]: ...

    async def create_review(
        self,
        repo: RepoRef,
        number: int,
        *,
        commit_id: str,
        body: str,
        event: ReviewEvent,
        comments: Sequence[InlineComment],
    ) -> int: ...


async def post_review(
    host: ReviewPoster,
    repo: RepoRef,
    number: int,
    *,
    head_sha: str,
    event: ReviewEvent,
    report: ReviewReport,
    anchored: Sequence[Finding],
) -> tuple[int, bool]:
    """Post one review; on 422 re-post with the inline findings in the body. (id, inline?)"""
    comments = [
        InlineComment(path=f.path, body=render_comment(f), new_line=f.anchor) for f in anchored
    ]
    try:
        review_id = await host.create_review(
            repo,
            number,
            commit_id=head_sha,
            body=render_body(report),
            event=event,
            comments=comments,
        )
        return int(review_id), True
    except HostError as exc:
        if exc.status != 422 or not comments:
            raise
    report.unanchored = [*report.unanchored, *anchored]
    report.notes = [*report.notes, "the forge refused inline comments; findings are listed above"]
    review_id = await host.create_review(
        repo, number, commit_id=head_sha, body=render_body(report), event=event, comments=[]
    )
    return int(review_id), False


async def find_posted(
    host: ReviewPoster, repo: RepoRef, number: int, *, head_sha: str, run: str, bot_login: str
) -> int | None:
    """The id of the review that ``run`` already posted on ``head_sha``, if the forge has one.

    A create whose answer was lost (a timeout or 502 after the forge took the POST) is transient
    for the queue, whose retry would post the review again; the retry keeps the run, a new job
    (a forced re-review of the same head) has another (closes: REDTEAM F87).
    """
    for review in await host.list_reviews(repo, number):
        if review.author_login.lower() != bot_login.lower():
            continue
        if (head_sha, run) in review_marks(review.body):
            return review.id
    return None
