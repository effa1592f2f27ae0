"""``JobQueue``: the durable queue's contract, kept narrow so PostgreSQL could replace SQLite.

Invariants every implementation keeps:

- at most one ``running`` job per (PR, kind); claims are atomic (SQLite: an immediate
  transaction; PostgreSQL: ``FOR UPDATE SKIP LOCKED``);
- a review request for a head that already has a queued or running review returns that job
  (coalescing); one for a new head marks older *queued* reviews of the PR ``superseded``;
- a chat job exists at most once per (comment kind, comment id);
- state changes of a finished job are refused, so a late worker cannot overwrite a cancel.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Protocol

from auto_review.hosts import HeadSha, RepoRef
from auto_review.jobs._models import (
    ChatRequest,
    EnqueueResult,
    Job,
    JobKind,
    JobState,
    QueueStats,
)
from auto_review.review import Trigger

__all__ = ["JobQueue"]


class JobQueue(Protocol):
    """A durable, per-PR serialising job queue. Methods raise ``StoreError`` or ``JobError``."""

    def enqueue_review(
        self,
        repo: RepoRef,
        number: int,
        head_sha: HeadSha,
        *,
        trigger: Trigger,
        force: bool,
        full: bool = False,
    ) -> EnqueueResult: ...

    def enqueue_chat(self, request: ChatRequest) -> EnqueueResult: ...

    def enqueue_chats(self, requests: Sequence[ChatRequest]) -> list[EnqueueResult]:
        """Several chat jobs in one transaction (group commit); results in request order."""
        ...

    def claim(self, kinds: Collection[JobKind]) -> Job | None:
        """Mark the oldest runnable job of ``kinds`` running and return it, or ``None``."""
        ...

    def finish(
        self, job_id: int, state: JobState, *, result: str, reason: str, status_owed: bool = False
    ) -> bool:
        """Move a running job to a terminal state; False if it was no longer running."""
        ...

    def retry_later(self, job_id: int, *, delay_secs: float, reason: str) -> bool:
        """Put a running job back in the queue, runnable after ``delay_secs``."""
        ...

    def requeue(self, job_ids: Collection[int], *, reason: str) -> int:
        """Return interrupted running jobs to the queue without spending an attempt."""
        ...

    def recover(self) -> list[Job]:
        """After a restart: requeue running jobs with attempts left, fail the rest (returned)."""
        ...

    def supersede_older(self, repo: RepoRef, number: int, head_sha: HeadSha) -> int: ...

    def prune_finished(self, *, older_than_secs: float, limit: int) -> int:
        """Delete up to ``limit`` jobs that finished over ``older_than_secs`` ago and owe no
        status; how many were deleted (a full ``limit`` means more may be due)."""
        ...

    def cancel_pr(self, repo: RepoRef, number: int, *, reason: str) -> int: ...

    def state_of(self, job_id: int) -> JobState | None: ...

    def get(self, job_id: int) -> Job | None: ...

    def list_jobs(
        self, *, states: Sequence[JobState] = (), repo: RepoRef | None = None, limit: int = 50
    ) -> list[Job]: ...

    def retry(self, job_id: int) -> bool:
        """Operator retry: a failed or cancelled job is queued again with fresh attempts."""
        ...

    def cancel(self, job_id: int, *, reason: str) -> bool:
        """Operator cancel of a queued or running job (a running one is stopped by its worker)."""
        ...

    def stats(self) -> QueueStats: ...

    def owed_statuses(self, *, after_id: int = 0, limit: int = 100) -> list[Job]:
        """Finished review jobs whose commit status ``error`` has not been posted yet, by id
        from past ``after_id`` (a page)."""
        ...

    def status_posted(self, job_id: int) -> None: ...
