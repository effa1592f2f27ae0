"""WorkerPool: outcomes recorded, retries, deadlines, error statuses, chat dispatch, shutdown."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from tests.unit.gateway.support import MemoryHost, RecordingChat, ScriptedRunner, wait_for

from auto_review.errors import (
    HostAuthError,
    HostRateLimited,
    HostUnavailable,
    LLMUnavailable,
    ReviewError,
)
from auto_review.hosts import CommentKind, HeadSha, RepoRef
from auto_review.jobs import (
    ChatRequest,
    Job,
    JobKind,
    JobState,
    ReviewHistory,
    SqliteJobQueue,
    WorkerPool,
)
from auto_review.review import Outcome, ReviewOutcome, Trigger
from auto_review.store import Store

pytestmark = pytest.mark.anyio

REPO = RepoRef("alice", "demo")
A, B = HeadSha("a" * 40), HeadSha("b" * 40)


class _Parts:
    def __init__(self, tmp_path: Path, runner: ScriptedRunner, **kw: object) -> None:
        self.store = Store.open(tmp_path / "state.sqlite3")
        self.queue = SqliteJobQueue(self.store)
        self.history = ReviewHistory(self.store)
        self.host = MemoryHost()
        self.runner = runner
        options: dict[str, object] = {
            "concurrency": 2,
            "timeout_secs": 30,
            "poll_secs": 0.02,
            "backoff_base_secs": 0.0,
        }
        options.update(kw)
        self.pool = WorkerPool(
            self.queue,
            review_runner=runner,
            host=self.host,
            history=self.history,
            **options,  # type: ignore[arg-type]
        )

    def review(self, number: int = 1, head: HeadSha = A) -> int:
        return self.queue.enqueue_review(REPO, number, head, trigger=Trigger.CI, force=False).job_id

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        await self.pool.recover()
        task = asyncio.create_task(self.pool.run())
        try:
            yield
        finally:
            await self.pool.shutdown(0.5)
            await task


async def test_worker_records_posted_outcome_with_tokens_in_history(tmp_path: Path) -> None:
    parts = _Parts(
        tmp_path,
        ScriptedRunner(
            [
                ReviewOutcome(
                    Outcome.POSTED,
                    "posted",
                    errors=2,
                    prompt_tokens=100,
                    completion_tokens=20,
                    cost_usd=0.5,
                )
            ]
        ),
    )
    jid = parts.review()
    async with parts.running():
        await wait_for(lambda: parts.queue.state_of(jid) is JobState.DONE)
    [entry] = parts.history.list()
    assert (entry.outcome, entry.errors, entry.prompt_tokens, entry.cost_usd) == (
        "posted",
        2,
        100,
        0.5,
    )
    assert parts.runner.requests[0].job_id == jid


async def test_worker_records_superseded_outcome_of_a_stale_running_job(tmp_path: Path) -> None:
    parts = _Parts(tmp_path, ScriptedRunner([ReviewOutcome(Outcome.SUPERSEDED, "head moved")]))
    jid = parts.review()
    async with parts.running():
        await wait_for(lambda: parts.queue.state_of(jid) is JobState.SUPERSEDED)
    assert parts.history.list()[0].outcome == "superseded"
    assert parts.host.statuses == []  # nothing posted over the newer head


async def test_worker_retries_transient_failure_then_succeeds(tmp_path: Path) -> None:
    parts = _Parts(tmp_path, ScriptedRunner([LLMUnavailable("down", status=503)]))
    jid = parts.review()
    async with parts.running():
        await wait_for(lambda: parts.queue.state_of(jid) is JobState.DONE)
    assert len(parts.runner.requests) == 2
    job = parts.queue.get(jid)
    assert job is not None
    assert job.attempts == 2


async def test_a_review_job_keeps_its_run_across_retries_and_a_new_job_gets_another(
    tmp_path: Path,
) -> None:
    # REDTEAM F87: the run is marked in the posted review, so a retry finds the review a lost
    # answer hid, while a forced re-review of the same head (another job) posts its own.
    parts = _Parts(tmp_path, ScriptedRunner([HostUnavailable("HTTP 502", status=502)]))
    first = parts.review()
    async with parts.running():
        await wait_for(lambda: parts.queue.state_of(first) is JobState.DONE)
        again = parts.queue.enqueue_review(REPO, 1, A, trigger=Trigger.CHAT, force=True).job_id
        await wait_for(lambda: parts.queue.state_of(again) is JobState.DONE)
    runs = [r.run for r in parts.runner.requests]
    assert len(runs) == 3
    assert runs[0] == runs[1] != runs[2]
    assert str(runs[0]).startswith(f"{first}-")
    assert str(runs[2]).startswith(f"{again}-")


async def test_worker_honours_retry_after_of_rate_limited_upstream(tmp_path: Path) -> None:
    parts = _Parts(tmp_path, ScriptedRunner([HostRateLimited("slow down", retry_after=600)]))
    jid = parts.review()
    async with parts.running():
        await wait_for(lambda: len(parts.runner.requests) == 1)
        await wait_for(lambda: parts.queue.state_of(jid) is JobState.QUEUED)
    job = parts.queue.get(jid)
    assert job is not None
    assert job.not_before - job.updated_at >= 600


async def test_worker_permanent_failure_is_not_retried_and_posts_error_status(
    tmp_path: Path,
) -> None:
    parts = _Parts(tmp_path, ScriptedRunner([HostAuthError("bad token <secret body>", status=401)]))
    jid = parts.review()
    async with parts.running():
        await wait_for(lambda: len(parts.host.statuses) == 1)
    assert parts.queue.state_of(jid) is JobState.FAILED
    assert len(parts.runner.requests) == 1
    _, sha, status = parts.host.statuses[0]
    assert (sha, status.state.value) == (A, "error")
    assert "secret body" not in status.description
    assert parts.history.list()[0].outcome == "failed_host"


async def test_worker_exhausted_retries_end_in_failed_with_error_status(tmp_path: Path) -> None:
    parts = _Parts(tmp_path, ScriptedRunner([LLMUnavailable("x")] * 3))
    jid = parts.review()
    async with parts.running():
        await wait_for(lambda: parts.queue.state_of(jid) is JobState.FAILED)
        await wait_for(lambda: len(parts.host.statuses) == 1)
    assert len(parts.runner.requests) == 3


async def test_worker_deadline_fails_the_job_and_says_why(tmp_path: Path) -> None:
    runner = ScriptedRunner(gate=asyncio.Event())
    parts = _Parts(tmp_path, runner, timeout_secs=0.1)
    jid = parts.review()
    async with parts.running():
        await wait_for(lambda: len(parts.host.statuses) == 1)
    job = parts.queue.get(jid)
    assert job is not None
    assert (job.state, job.result) == (JobState.FAILED, "timeout")
    assert "timed out" in parts.host.statuses[0][2].description


async def test_worker_error_status_is_reposted_until_the_forge_takes_it(tmp_path: Path) -> None:
    parts = _Parts(tmp_path, ScriptedRunner([ReviewError("diff too large")]))
    parts.host.status_failures = 1
    jid = parts.review()
    async with parts.running():
        await wait_for(lambda: parts.queue.state_of(jid) is JobState.FAILED)
        await wait_for(lambda: parts.host.status_failures == 0)  # the forge refused it once
    assert parts.host.statuses == []
    assert [j.id for j in parts.queue.owed_statuses()] == [jid]
    async with parts.running():  # e.g. after a restart: recover() pays what is owed
        await wait_for(lambda: len(parts.host.statuses) == 1)
    assert "diff too large" in parts.host.statuses[0][2].description


async def test_worker_concurrency_is_bounded(tmp_path: Path) -> None:
    gate = asyncio.Event()
    runner = ScriptedRunner(gate=gate)
    parts = _Parts(tmp_path, runner, concurrency=2)
    for n in range(1, 6):
        parts.review(number=n)
    async with parts.running():
        await wait_for(lambda: len(runner.requests) == 2)
        await asyncio.sleep(0.1)
        assert len(runner.requests) == 2
        assert parts.pool.in_flight == 2
        gate.set()
        await wait_for(lambda: parts.queue.stats().total(JobState.DONE) == 5)


async def test_chat_jobs_wait_until_a_chat_runner_is_registered(tmp_path: Path) -> None:
    parts = _Parts(tmp_path, ScriptedRunner())
    request = ChatRequest(REPO, 1, 5, "bob", "@auto-review hi", CommentKind.ISSUE)
    jid = parts.queue.enqueue_chat(request).job_id
    chat = RecordingChat()
    async with parts.running():
        await asyncio.sleep(0.1)
        assert parts.queue.state_of(jid) is JobState.QUEUED  # kept, never dropped
        parts.pool.register_chat_runner(chat)
        await wait_for(lambda: parts.queue.state_of(jid) is JobState.DONE)
    assert [r.comment_id for r in chat.requests] == [5]


async def test_a_chat_job_its_runner_left_alone_ends_skipped_with_the_reason(
    tmp_path: Path,
) -> None:
    finished: list[tuple[JobKind, str]] = []

    class Observer:
        def job_finished(
            self, job: Job, *, result: str, duration_secs: float, outcome: object
        ) -> None:
            finished.append((job.kind, result))

    chat = RecordingChat(skip="the comment was deleted before it was answered")
    parts = _Parts(tmp_path, ScriptedRunner(), chat_runner=chat, observer=Observer())
    request = ChatRequest(REPO, 1, 5, "bob", "@auto-review help", CommentKind.ISSUE)
    jid = parts.queue.enqueue_chat(request).job_id
    async with parts.running():
        await wait_for(lambda: parts.queue.state_of(jid) is JobState.DONE)
    job = parts.queue.get(jid)
    assert job is not None
    assert (job.result, job.reason) == ("skipped", "the comment was deleted before it was answered")
    assert finished == [(JobKind.CHAT, "skipped")]  # the metrics' jobs_finished{result=skipped}


async def test_shutdown_requeues_running_jobs_past_the_grace_period(tmp_path: Path) -> None:
    runner = ScriptedRunner(gate=asyncio.Event())
    parts = _Parts(tmp_path, runner)
    jid = parts.review()
    async with parts.running():
        await wait_for(lambda: len(runner.requests) == 1)
    job = parts.queue.get(jid)
    assert job is not None
    assert (job.state, job.attempts) == (JobState.QUEUED, 0)


async def test_operator_cancel_stops_a_running_job(tmp_path: Path) -> None:
    runner = ScriptedRunner(gate=asyncio.Event())
    parts = _Parts(tmp_path, runner)
    jid = parts.review()
    async with parts.running():
        await wait_for(lambda: len(runner.requests) == 1)
        parts.queue.cancel(jid, reason="operator")
        await wait_for(lambda: parts.pool.in_flight == 0)
    assert parts.queue.state_of(jid) is JobState.CANCELLED
    assert parts.history.list()[0].outcome == "cancelled"


async def test_worker_loop_survives_a_store_error_and_runs_the_job_later(tmp_path: Path) -> None:
    from auto_review.errors import StoreError

    parts = _Parts(tmp_path, ScriptedRunner())
    real_claim = parts.queue.claim
    failures = [StoreError("database is locked")]

    def flaky_claim(kinds: object) -> object:
        if failures:
            raise failures.pop()
        return real_claim(kinds)  # type: ignore[arg-type]

    parts.queue.claim = flaky_claim  # type: ignore[method-assign]
    jid = parts.review()
    async with parts.running():
        await wait_for(lambda: parts.queue.state_of(jid) is JobState.DONE)
    assert failures == []  # the error happened, and the loop carried on


async def test_worker_pool_prunes_finished_jobs_past_their_retention(tmp_path: Path) -> None:
    parts = _Parts(tmp_path, ScriptedRunner([]), retention_secs=0.0)
    job_id = parts.review()
    claimed = parts.queue.claim([JobKind.REVIEW])
    assert claimed is not None
    assert claimed.id == job_id
    parts.queue.finish(job_id, JobState.DONE, result="posted", reason="")
    async with parts.running():
        for _ in range(200):  # the first loop pass prunes; this only detects a hang
            if parts.queue.get(job_id) is None:
                break
            await asyncio.sleep(0.01)
    assert parts.queue.get(job_id) is None


def _owed(parts: _Parts, repo: RepoRef, number: int) -> int:
    jid = parts.queue.enqueue_review(repo, number, A, trigger=Trigger.CI, force=False).job_id
    assert parts.queue.claim([JobKind.REVIEW]) is not None
    parts.queue.finish(jid, JobState.FAILED, result="failed_host", reason="x", status_owed=True)
    return jid


async def test_an_error_status_the_forge_can_never_take_is_given_up_not_blocking_others(
    tmp_path: Path,
) -> None:
    # REDTEAM F81: a deleted repository answers 404 for ever; its owed statuses were retried
    # every 30 s for ever, and 100 of them (the sweep's page) starved every later PR's status.
    from auto_review.errors import HostNotFound

    parts = _Parts(tmp_path, ScriptedRunner())
    gone, barred = RepoRef("alice", "deleted"), RepoRef("alice", "barred")
    real = parts.host.set_commit_status

    async def set_status(repo: RepoRef, sha: str, status: object) -> None:
        if repo == gone:
            raise HostNotFound("HTTP 404", status=404)
        if repo == barred:  # the bot lost write access there: kept, maybe it comes back
            raise HostAuthError("HTTP 403", status=403)
        await real(repo, sha, status)  # type: ignore[arg-type]

    parts.host.set_commit_status = set_status  # type: ignore[method-assign]
    for number in range(1, 101):
        _owed(parts, gone, number)
    kept = [_owed(parts, barred, number) for number in range(1, 101)]
    _owed(parts, REPO, 500)
    await parts.pool.recover()  # one sweep
    assert [(r, s.state.value) for r, _, s in parts.host.statuses] == [(str(REPO), "error")]
    assert [j.id for j in parts.queue.owed_statuses(limit=1000)] == kept


async def test_an_unreachable_forge_costs_the_status_sweep_one_call_not_one_per_job(
    tmp_path: Path,
) -> None:
    # Each call may wait 30 s for a hung forge; the sweep runs in the claim loop, so 100 owed
    # statuses held every other job back for up to 50 minutes.
    parts = _Parts(tmp_path, ScriptedRunner())
    calls: list[str] = []

    async def set_status(repo: RepoRef, sha: str, status: object) -> None:
        calls.append(sha)
        raise HostUnavailable("the forge timed out")

    parts.host.set_commit_status = set_status  # type: ignore[method-assign]
    owed = [_owed(parts, REPO, number) for number in range(1, 6)]
    await parts.pool.recover()
    assert len(calls) == 1
    assert [j.id for j in parts.queue.owed_statuses()] == owed  # still owed, paid later


async def test_a_job_end_the_store_refused_is_recorded_later_and_frees_its_pr(
    tmp_path: Path,
) -> None:
    # REDTEAM F82: a moment of disk full as a job ended left its row 'running' until the next
    # restart, and with it every later review of that PR unclaimed (one running per PR).
    from auto_review.errors import StoreError

    parts = _Parts(tmp_path, ScriptedRunner())
    real_finish = parts.queue.finish
    failures = [StoreError("database or disk is full")]

    def flaky_finish(job_id: int, state: JobState, **kw: object) -> bool:
        if failures:
            raise failures.pop()
        return real_finish(job_id, state, **kw)  # type: ignore[arg-type]

    parts.queue.finish = flaky_finish  # type: ignore[method-assign]
    first = parts.review(head=A)
    async with parts.running():
        await wait_for(lambda: not failures)
        second = parts.review(head=B)
        await wait_for(lambda: parts.queue.state_of(second) is JobState.DONE)
        await wait_for(lambda: parts.queue.state_of(first) is JobState.DONE)
    assert [r.head_sha for r in parts.runner.requests] == [A, B]  # the first ran once
    assert sorted(e.job_id or 0 for e in parts.history.list()) == [first, second]
