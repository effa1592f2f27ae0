"""``WorkerPool``: claims jobs from the queue and runs them with bounded concurrency.

Guarantees: at most ``concurrency`` jobs run at once; each has a deadline; transient upstream
failures are retried with backoff (honouring ``retry_after``), permanent ones are not; every
review job that ends badly owes its PR a final commit status ``error``, which is posted (and
re-posted until the forge takes it, or given up, logged, once the forge says the PR or its
repository is gone) so a PR is not left ``pending``; review and chat jobs wait in the queue
(never dropped) until a runner for their kind is registered; a job's end the store refused
(disk full) is written again each turn, so its PR's next job is not held. On shutdown, jobs
still running after the grace period are cancelled and requeued without spending an attempt.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import Callable
from typing import Protocol

from auto_review.errors import (
    AutoReviewError,
    HostError,
    LLMBudgetExhausted,
    LLMError,
    ReviewError,
    StoreError,
)
from auto_review.hosts import ReviewHost
from auto_review.jobs._history import HistoryEntry, ReviewHistory
from auto_review.jobs._models import ChatRunner, Clock, Job, JobKind, JobState, SystemClock
from auto_review.jobs._queue import JobQueue
from auto_review.jobs._statuses import pay_owed_statuses
from auto_review.logs import get_logger
from auto_review.review import Outcome, ReviewOutcome, ReviewRequest, ReviewRunner

__all__ = ["STATUS_CONTEXT", "JobObserver", "NullObserver", "WorkerPool"]

STATUS_CONTEXT = "auto-review"
_COALESCE_SECS = 0.005
# Finished jobs past their retention are deleted at most this often, in batches.
_PRUNE_EVERY_SECS = 600.0
_PRUNE_BATCH_ROWS = 5_000
_PRUNE_BATCHES = 10
_log = get_logger("jobs.workers")


class JobObserver(Protocol):
    """Told about each job's end (metrics); ``result`` is one of a small fixed set."""

    def job_finished(
        self, job: Job, *, result: str, duration_secs: float, outcome: ReviewOutcome | None
    ) -> None: ...


class NullObserver:
    def job_finished(
        self, job: Job, *, result: str, duration_secs: float, outcome: ReviewOutcome | None
    ) -> None:
        return None


class WorkerPool:
    """Runs queued jobs until ``shutdown``; see the module docstring for the guarantees."""

    def __init__(
        self,
        queue: JobQueue,
        *,
        review_runner: ReviewRunner | None,
        host: ReviewHost,
        history: ReviewHistory,
        concurrency: int,
        timeout_secs: float,
        chat_runner: ChatRunner | None = None,
        observer: JobObserver | None = None,
        clock: Clock | None = None,
        poll_secs: float = 1.0,
        backoff_base_secs: float = 5.0,
        backoff_max_secs: float = 300.0,
        status_context: str = STATUS_CONTEXT,
        retention_secs: float | None = None,
    ) -> None:
        self._queue = queue
        self._review_runner = review_runner
        self._chat_runner = chat_runner
        self._host = host
        self._history = history
        self._concurrency = max(1, concurrency)
        self._timeout = timeout_secs
        self._observer: JobObserver = observer or NullObserver()
        self._clock = clock or SystemClock()
        self._poll = poll_secs
        self._backoff_base = backoff_base_secs
        self._backoff_max = backoff_max_secs
        self._context = status_context
        self._tasks: dict[int, asyncio.Task[None]] = {}
        self._unsettled: dict[int, Callable[[], None]] = {}
        self._wake = asyncio.Event()
        self._stopping = False
        self._last_status_sweep = float("-inf")
        self._retention = retention_secs
        self._last_prune = float("-inf")

    @property
    def in_flight(self) -> int:
        return len(self._tasks)

    @property
    def chat_enabled(self) -> bool:
        return self._chat_runner is not None

    @property
    def review_enabled(self) -> bool:
        return self._review_runner is not None

    def register_review_runner(self, runner: ReviewRunner) -> None:
        """Start dispatching review jobs (they wait in the queue until this is called)."""
        self._review_runner = runner
        self.notify()

    def register_chat_runner(self, runner: ChatRunner) -> None:
        """Start dispatching chat jobs (they wait in the queue until this is called)."""
        self._chat_runner = runner
        self.notify()

    def notify(self) -> None:
        """Wake the claim loop now (new work was queued)."""
        self._wake.set()

    async def recover(self) -> None:
        """After a restart: requeue or fail interrupted jobs and post the statuses owed."""
        failed = self._queue.recover()
        for job in failed:
            _log.warning("job_abandoned", job_id=job.id, kind=job.kind.value, reason=job.reason)
            if job.kind is JobKind.REVIEW and job.head_sha is not None:
                self._record(job, "failed", job.reason or "interrupted", 0.0, None)
        await self._pay_owed_statuses()

    async def run(self) -> None:
        """The claim loop; returns once ``shutdown`` has been requested."""
        while not self._stopping:
            try:
                self._stop_cancelled_jobs()
                if self._clock.monotonic() - self._last_status_sweep >= 30.0:
                    self._last_status_sweep = self._clock.monotonic()
                    await self._pay_owed_statuses()
                self._prune_when_due()
                self._settle_unsettled()
                self._claim_some()
            except StoreError:
                # The database is briefly unusable (locked, disk full): keep the loop alive
                # and try again after the poll interval; queued work stays queued.
                _log.warning("worker_loop_store_error")
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._poll):
                    await self._wake.wait()
                # Woken by new work: let a burst of enqueues land first, so a webhook flood
                # costs one claim pass per few milliseconds instead of one per delivery.
                await asyncio.sleep(_COALESCE_SECS)

    async def shutdown(self, grace_secs: float) -> None:
        """Stop claiming; give running jobs ``grace_secs``; cancel and requeue the rest."""
        self._stopping = True
        self._wake.set()
        pending = set(self._tasks.values())
        if pending:
            _, still = await asyncio.wait(pending, timeout=grace_secs)
            interrupted = [jid for jid, task in self._tasks.items() if task in still]
            for task in still:
                task.cancel()
            await asyncio.gather(*still, return_exceptions=True)
            if interrupted:
                count = self._queue.requeue(interrupted, reason="interrupted by shutdown")
                _log.info("jobs_requeued_at_shutdown", count=count)
        with contextlib.suppress(StoreError):  # else the next start's recover() retries them
            self._settle_unsettled()

    # -- internals --------------------------------------------------------------------------

    def _prune_when_due(self) -> None:
        if self._retention is None:
            return
        if self._clock.monotonic() - self._last_prune < _PRUNE_EVERY_SECS:
            return
        self._last_prune = self._clock.monotonic()
        removed = 0
        # A few short transactions per sweep: a backlog is worked off over several sweeps
        # instead of holding the write lock while webhooks wait.
        for _ in range(_PRUNE_BATCHES):
            batch = self._queue.prune_finished(
                older_than_secs=self._retention, limit=_PRUNE_BATCH_ROWS
            )
            removed += batch
            if batch < _PRUNE_BATCH_ROWS:
                break
        if removed:
            _log.info("jobs_pruned", count=removed)

    def _claim_some(self) -> None:
        kinds = [JobKind.REVIEW] if self._review_runner is not None else []
        if self._chat_runner is not None:
            kinds.append(JobKind.CHAT)
        while len(self._tasks) < self._concurrency and not self._stopping:
            job = self._queue.claim(kinds)
            if job is None:
                return
            task = asyncio.create_task(self._run(job), name=f"job-{job.id}")
            self._tasks[job.id] = task
            task.add_done_callback(functools.partial(self._done, job.id))

    def _done(self, job_id: int, task: asyncio.Task[None]) -> None:
        self._tasks.pop(job_id, None)
        self._wake.set()
        if not task.cancelled() and task.exception() is not None:
            # Recording the end failed otherwise than by a refused store write (which _run keeps
            # and writes again); the row stays ``running`` and the next start's recover()
            # retries or fails it, so the job is not lost.
            _log.error("job_end_not_recorded", job_id=job_id, error=repr(task.exception()))

    def _stop_cancelled_jobs(self) -> None:
        # An operator cancel flips the row; the worker notices here and stops the task.
        for job_id, task in list(self._tasks.items()):
            if self._queue.state_of(job_id) is JobState.CANCELLED:
                task.cancel()

    async def _run(self, job: Job) -> None:
        started = self._clock.monotonic()
        settle = await self._attempt(job, started)
        try:
            settle()
        except StoreError:
            # The store refused the end (disk full, locked): the claim loop writes it again, as a
            # row left 'running' held the PR's later jobs until a restart (closes: REDTEAM F82).
            _log.warning("job_end_not_recorded_yet", job_id=job.id)
            self._unsettled[job.id] = settle

    async def _attempt(self, job: Job, started: float) -> Callable[[], None]:
        """Run ``job``; what records its end (retried until the store takes it)."""
        end = functools.partial
        try:
            async with asyncio.timeout(self._timeout):
                outcome = await self._execute(job)
        except TimeoutError:
            return end(
                self._fail, job, "timeout", f"review timed out after {self._timeout:g} s", started
            )
        except asyncio.CancelledError:
            if not self._stopping:
                self._end(job, "cancelled", "cancelled by an operator", started, None)
            raise
        except (HostError, LLMError) as exc:
            if exc.transient and job.attempts < job.max_attempts:
                delay = self._backoff(job.attempts, getattr(exc, "retry_after", None))
                return end(self._retry, job, delay, _safe_reason(exc), started)
            return end(self._fail, job, _failure_class(exc), _safe_reason(exc), started)
        except AutoReviewError as exc:
            return end(self._fail, job, _failure_class(exc), _safe_reason(exc), started)
        except Exception:
            _log.exception("job_crashed", job_id=job.id)
            return end(
                self._fail, job, "failed_internal", "internal error; see the gateway log", started
            )
        if outcome is None:
            return end(self._end, job, "done", "answered", started, None)
        return end(self._end, job, outcome.outcome.value, outcome.reason, started, outcome)

    def _retry(self, job: Job, delay: float, reason: str, started: float) -> None:
        self._queue.retry_later(job.id, delay_secs=delay, reason=reason)
        self._observer.job_finished(
            job, result="retried", duration_secs=self._since(started), outcome=None
        )
        _log.info("job_retry_scheduled", job_id=job.id, delay_secs=delay)

    def _settle_unsettled(self) -> None:
        for job_id, settle in list(self._unsettled.items()):
            settle()  # a StoreError leaves this and the rest for the next turn
            del self._unsettled[job_id]

    async def _execute(self, job: Job) -> ReviewOutcome | None:
        if job.kind is JobKind.CHAT:
            if self._chat_runner is None:  # unreachable: chat jobs are claimed only with a runner
                raise ReviewError("no chat handler is registered")
            skipped = await self._chat_runner.run(job.chat_request())
            return None if skipped is None else ReviewOutcome(Outcome.SKIPPED, skipped)
        if job.head_sha is None or self._review_runner is None:
            raise ReviewError("review job has no head commit or no pipeline")
        return await self._review_runner.run(
            ReviewRequest(
                repo=job.repo,
                number=job.number,
                head_sha=job.head_sha,
                trigger=job.trigger,
                force=job.force,
                full=job.full,
                job_id=job.id,
                # Kept by the queue's retries, recover() and `jobs retry`; new for a new job. The
                # creation time too, as a plain rowid repeats once the newest rows were pruned.
                run=f"{job.id}-{round(job.created_at * 1000)}",
            )
        )

    def _end(
        self, job: Job, result: str, reason: str, started: float, outcome: ReviewOutcome | None
    ) -> None:
        state = {
            "superseded": JobState.SUPERSEDED,
            "cancelled": JobState.CANCELLED,
        }.get(result, JobState.DONE)
        if result != "cancelled":
            self._queue.finish(job.id, state, result=result, reason=reason)
        duration = self._since(started)
        if job.kind is JobKind.REVIEW:
            self._record(job, result, reason, duration, outcome)
        self._observer.job_finished(job, result=result, duration_secs=duration, outcome=outcome)

    def _fail(self, job: Job, result: str, reason: str, started: float) -> None:
        owed = job.kind is JobKind.REVIEW
        if not self._queue.finish(
            job.id, JobState.FAILED, result=result, reason=reason, status_owed=owed
        ):
            return  # cancelled meanwhile; nothing more to say
        duration = self._since(started)
        _log.warning("job_failed", job_id=job.id, kind=job.kind.value, result=result)
        if owed:
            self._record(job, result, reason, duration, None)
            self._wake.set()
            self._last_status_sweep = float("-inf")  # post the error status on the next turn
        self._observer.job_finished(job, result=result, duration_secs=duration, outcome=None)

    def _record(
        self, job: Job, outcome: str, reason: str, duration: float, result: ReviewOutcome | None
    ) -> None:
        r = result or ReviewOutcome(outcome=Outcome.SKIPPED, reason=reason)
        self._history.record(
            HistoryEntry(
                repo=job.repo,
                number=job.number,
                head_sha=job.head_sha or "",
                trigger=job.trigger.value,
                outcome=outcome,
                reason=reason,
                job_id=job.id,
                errors=r.errors,
                warnings=r.warnings,
                notes=r.notes,
                dropped=r.dropped_by_verifier,
                prompt_tokens=r.prompt_tokens,
                completion_tokens=r.completion_tokens,
                cost_usd=r.cost_usd,
                duration_secs=duration,
            )
        )

    async def _pay_owed_statuses(self) -> None:
        await pay_owed_statuses(self._queue, self._host, self._context)

    def _backoff(self, attempts: int, retry_after: float | None) -> float:
        delay: float = min(self._backoff_max, self._backoff_base * 2.0 ** max(0, attempts - 1))
        if retry_after is not None:
            delay = max(delay, min(float(retry_after), self._backoff_max * 4))
        return delay

    def _since(self, started: float) -> float:
        return max(0.0, self._clock.monotonic() - started)


def _failure_class(exc: AutoReviewError) -> str:
    if isinstance(exc, HostError):
        return "failed_host"
    if isinstance(exc, LLMError):
        return "failed_llm"
    if isinstance(exc, ReviewError):
        return "failed_review"
    return "failed_internal"


def _safe_reason(exc: AutoReviewError) -> str:
    # Upstream messages can carry response bodies; only ReviewError is written to be shown.
    if isinstance(exc, ReviewError):
        return exc.message[:200]
    if isinstance(exc, HostError):
        return f"the forge failed (HTTP {exc.status})" if exc.status else "the forge failed"
    if isinstance(exc, LLMBudgetExhausted):
        return "the review used up its model requests (AR_MAX_MODEL_REQUESTS)"
    if isinstance(exc, LLMError):
        return "the model endpoint failed" + (f" (HTTP {exc.status})" if exc.status else "")
    return "internal error; see the gateway log"
