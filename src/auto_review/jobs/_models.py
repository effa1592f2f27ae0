"""Job queue vocabulary: kinds, states, the job record, chat requests and the clock seam."""

from __future__ import annotations

import time
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from auto_review.hosts import CommentKind, HeadSha, RepoRef
from auto_review.review import Trigger

__all__ = [
    "TERMINAL_STATES",
    "ChatRequest",
    "ChatRunner",
    "Clock",
    "EnqueueResult",
    "Job",
    "JobKind",
    "JobState",
    "QueueStats",
    "SystemClock",
]


class JobKind(StrEnum):
    REVIEW = "review"
    CHAT = "chat"


class JobState(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    SUPERSEDED = "superseded"
    CANCELLED = "cancelled"


TERMINAL_STATES = frozenset(
    {JobState.DONE, JobState.FAILED, JobState.SUPERSEDED, JobState.CANCELLED}
)


@dataclass(frozen=True)
class ChatRequest:
    """A comment that mentions the bot; untrusted text, handed to a ``ChatRunner``."""

    repo: RepoRef
    number: int
    comment_id: int
    author: str
    body: str
    kind: CommentKind
    job_id: int | None = None


class ChatRunner(Protocol):
    """Answers one chat mention. Raises ``HostError``/``LLMError`` (transient ones are retried).

    Returns None once the mention was handled, or why it was left alone (the comment was
    deleted or changed meanwhile): the job then ends ``skipped`` with that reason.
    """

    async def run(self, request: ChatRequest) -> str | None: ...


@dataclass(frozen=True)
class Job:
    """One row of the queue, as read back."""

    id: int
    kind: JobKind
    state: JobState
    repo: RepoRef
    number: int
    head_sha: HeadSha | None
    trigger: Trigger
    force: bool
    full: bool
    comment_id: int | None
    comment_kind: CommentKind | None
    author: str | None
    body: str | None
    attempts: int
    max_attempts: int
    not_before: float
    created_at: float
    updated_at: float
    started_at: float | None
    finished_at: float | None
    result: str | None
    reason: str | None

    def chat_request(self) -> ChatRequest:
        """The chat request this job carries; ``ValueError`` for a review job."""
        if self.kind is not JobKind.CHAT or self.comment_id is None or self.comment_kind is None:
            raise ValueError(f"job {self.id} is not a chat job")
        return ChatRequest(
            repo=self.repo,
            number=self.number,
            comment_id=self.comment_id,
            author=self.author or "",
            body=self.body or "",
            kind=self.comment_kind,
            job_id=self.id,
        )


@dataclass(frozen=True)
class EnqueueResult:
    """The job that now represents a request; ``created`` is False when it was coalesced."""

    job_id: int
    created: bool


@dataclass(frozen=True)
class QueueStats:
    """Job counts by state and kind, e.g. ``counts["queued"]["review"]``."""

    counts: dict[str, dict[str, int]]

    def total(self, state: JobState) -> int:
        return sum(self.counts.get(state.value, {}).values())


class Clock(Protocol):
    """Wall time for records, monotonic time for intervals (injected so tests control it)."""

    def time(self) -> float: ...

    def monotonic(self) -> float: ...


class SystemClock:
    """The real clock."""

    def time(self) -> float:
        return time.time()

    def monotonic(self) -> float:
        return time.monotonic()
