"""What the job queue hands the pipeline, and what the pipeline hands back."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol

from auto_review.hosts import HeadSha, RepoRef

__all__ = ["Outcome", "ReviewOutcome", "ReviewRequest", "ReviewRunner", "TierUsage", "Trigger"]


class Trigger(StrEnum):
    CI = "ci"  # POST /reviews/ci
    WEBHOOK = "webhook"  # pull_request event in direct mode
    CHAT = "chat"  # @bot review
    REQUEST = "review_request"  # someone requested the bot's review on the forge
    CLI = "cli"  # auto-review review once


@dataclass(frozen=True)
class ReviewRequest:
    repo: RepoRef
    number: int
    head_sha: HeadSha
    trigger: Trigger
    force: bool = False  # review even if this head was already reviewed
    full: bool = False  # ignore incremental state: review the whole PR
    dry_run: bool = False  # compute everything, post nothing
    job_id: int | None = None
    # One per job, the same in all its attempts: marked in the review so a retry finds its own.
    run: str | None = None


class Outcome(StrEnum):
    POSTED = "posted"  # a review and a final status were posted (or printed, in a dry run)
    SKIPPED = "skipped"  # nothing to do (same head, trivial files, disabled, paused, draft)
    SUPERSEDED = "superseded"  # the PR moved to a newer head before posting; nothing posted


@dataclass(frozen=True)
class TierUsage:
    """Model usage of one review on one tier (reasoning, cheap or embedding)."""

    tier: str
    prompt_tokens: int
    completion_tokens: int
    cost_usd: float


@dataclass(frozen=True)
class ReviewOutcome:
    outcome: Outcome
    reason: str  # short, safe to show on the PR and in logs
    review_id: int | None = None
    errors: int = 0
    warnings: int = 0
    notes: int = 0
    dropped_by_verifier: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
    unreviewed_files: tuple[str, ...] = field(default_factory=tuple)
    usage_by_tier: tuple[TierUsage, ...] = field(default_factory=tuple)


class ReviewRunner(Protocol):
    """Runs one review. Raises ``HostError``/``LLMError`` (transient ones are retried by the
    queue) or ``ReviewError``; returns an outcome otherwise."""

    async def run(self, request: ReviewRequest) -> ReviewOutcome: ...
