"""The durable job queue: review and chat jobs, per-PR serialisation, workers, recovery."""

from auto_review.jobs._history import HistoryEntry, ReviewHistory
from auto_review.jobs._models import (
    TERMINAL_STATES,
    ChatRequest,
    ChatRunner,
    Clock,
    EnqueueResult,
    Job,
    JobKind,
    JobState,
    QueueStats,
    SystemClock,
)
from auto_review.jobs._ops import (
    cancel_job,
    list_history,
    list_jobs,
    purge_history,
    reset_pr_history,
    retry_job,
)
from auto_review.jobs._queue import JobQueue
from auto_review.jobs._sqlite import DEFAULT_MAX_ATTEMPTS, SqliteJobQueue
from auto_review.jobs._tracking import PrTracker, TrackedPr
from auto_review.jobs._workers import STATUS_CONTEXT, JobObserver, NullObserver, WorkerPool

__all__ = [
    "DEFAULT_MAX_ATTEMPTS",
    "STATUS_CONTEXT",
    "TERMINAL_STATES",
    "ChatRequest",
    "ChatRunner",
    "Clock",
    "EnqueueResult",
    "HistoryEntry",
    "Job",
    "JobKind",
    "JobObserver",
    "JobQueue",
    "JobState",
    "NullObserver",
    "PrTracker",
    "QueueStats",
    "ReviewHistory",
    "SqliteJobQueue",
    "SystemClock",
    "TrackedPr",
    "WorkerPool",
    "cancel_job",
    "list_history",
    "list_jobs",
    "purge_history",
    "reset_pr_history",
    "retry_job",
]
