"""Operator actions on the queue and the history, as plain functions for ``cli/``."""

from __future__ import annotations

from collections.abc import Sequence

from auto_review.errors import JobError
from auto_review.hosts import RepoRef
from auto_review.jobs._history import HistoryEntry, ReviewHistory
from auto_review.jobs._models import Job, JobState
from auto_review.jobs._sqlite import SqliteJobQueue
from auto_review.memory.history import ReviewHistory as ReviewMemory
from auto_review.store import Store

__all__ = [
    "cancel_job",
    "list_history",
    "list_jobs",
    "purge_history",
    "reset_pr_history",
    "retry_job",
]


def list_jobs(
    store: Store, *, states: Sequence[JobState] = (), repo: RepoRef | None = None, limit: int = 50
) -> list[Job]:
    """The newest jobs, optionally filtered by state and repository."""
    return SqliteJobQueue(store).list_jobs(states=states, repo=repo, limit=limit)


def retry_job(store: Store, job_id: int) -> Job:
    """Queue a failed or cancelled job again; ``JobError`` if it is in another state."""
    queue = SqliteJobQueue(store)
    job = queue.get(job_id)
    if job is None:
        raise JobError(f"no job {job_id}")
    if not queue.retry(job_id):
        raise JobError(f"job {job_id} is {job.state.value}; only failed or cancelled jobs retry")
    return _must(queue.get(job_id), job_id)


def cancel_job(store: Store, job_id: int) -> Job:
    """Cancel a queued or running job (a running gateway stops it within a second)."""
    queue = SqliteJobQueue(store)
    job = queue.get(job_id)
    if job is None:
        raise JobError(f"no job {job_id}")
    if not queue.cancel(job_id, reason="cancelled by an operator"):
        raise JobError(f"job {job_id} is already {job.state.value}")
    return _must(queue.get(job_id), job_id)


def list_history(
    store: Store, *, repo: RepoRef | None = None, number: int | None = None, limit: int = 50
) -> list[HistoryEntry]:
    """The newest review outcomes, optionally for one repository or PR."""
    return ReviewHistory(store).list(repo=repo, number=number, limit=limit)


def reset_pr_history(store: Store, repo: RepoRef, number: int) -> int:
    """Forget one PR's review outcomes and its incremental state (the next review is a full
    one); returns the number of outcome rows removed."""
    ReviewMemory(store).forget_pr(repo, number)
    return ReviewHistory(store).reset_pr(repo, number)


def purge_history(store: Store, *, older_than_days: float) -> int:
    """Delete review outcomes older than ``older_than_days``; returns the number removed."""
    if older_than_days < 0:
        raise JobError("the age must not be negative")
    return ReviewHistory(store).purge(older_than_secs=older_than_days * 86400)


def _must(job: Job | None, job_id: int) -> Job:
    if job is None:
        raise JobError(f"job {job_id} vanished")
    return job
