"""The final ``error`` statuses owed to PRs whose review job failed, posted until taken."""

from __future__ import annotations

import asyncio

from auto_review.errors import HostError
from auto_review.hosts import CommitState, CommitStatus, ReviewHost
from auto_review.jobs._models import Job
from auto_review.jobs._queue import JobQueue
from auto_review.logs import get_logger

__all__ = ["pay_owed_statuses"]

_CALL_TIMEOUT_SECS = 30.0
_log = get_logger("jobs.workers")


async def pay_owed_statuses(queue: JobQueue, host: ReviewHost, context: str) -> None:
    """One sweep over every owed status; it stops at the first sign the forge is down."""
    # Paged by id through every owed row: a page of statuses the forge keeps refusing (a
    # repository the bot lost access to) must not starve the rows behind it.
    page = queue.owed_statuses()
    while page:
        if not await _pay(queue, host, context, page):
            return
        page = queue.owed_statuses(after_id=page[-1].id)


async def _pay(queue: JobQueue, host: ReviewHost, context: str, jobs: list[Job]) -> bool:
    """Post the owed statuses of ``jobs``; False once the forge looks down."""
    for job in jobs:
        if job.head_sha is None:
            queue.status_posted(job.id)
            continue
        status = CommitStatus(
            context=context,
            state=CommitState.ERROR,
            description=f"auto-review could not finish: {job.reason or 'unknown error'}"[:140],
        )
        try:
            async with asyncio.timeout(_CALL_TIMEOUT_SECS):
                await host.set_commit_status(job.repo, job.head_sha, status)
        except HostError as exc:
            if exc.status in (400, 404, 422):
                # The repository, PR or commit is gone: retried for ever, such rows kept their
                # own and, a page of them, every later PR's status unpaid (closes: REDTEAM F81).
                _log.warning("error_status_abandoned", job_id=job.id, status=exc.status)
                queue.status_posted(job.id)
                continue
            _log.warning("error_status_not_posted_yet", job_id=job.id)
            if exc.transient:
                return False  # the forge is down: one probe a sweep, not 30 s per status
            continue
        except TimeoutError:
            _log.warning("error_status_not_posted_yet", job_id=job.id)
            return False
        queue.status_posted(job.id)
    return True
