"""SqliteJobQueue: coalescing, supersede, per-PR serialisation, chat uniqueness, recovery."""

from __future__ import annotations

from pathlib import Path

import pytest

from auto_review.errors import JobError
from auto_review.hosts import CommentKind, HeadSha, RepoRef
from auto_review.jobs import (
    ChatRequest,
    JobKind,
    JobState,
    SqliteJobQueue,
    cancel_job,
    list_jobs,
    retry_job,
)
from auto_review.review import Trigger
from auto_review.store import Store

REPO = RepoRef("alice", "demo")
A, B = HeadSha("a" * 40), HeadSha("b" * 40)


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store.open(tmp_path / "state.sqlite3")


def _chat(cid: int, kind: CommentKind = CommentKind.ISSUE, number: int = 1) -> ChatRequest:
    return ChatRequest(REPO, number, cid, "bob", "@auto-review hi", kind)


def test_queue_coalesces_same_head_and_supersedes_older_queued_head(store: Store) -> None:
    q = SqliteJobQueue(store)
    first = q.enqueue_review(REPO, 1, A, trigger=Trigger.CI, force=False)
    again = q.enqueue_review(REPO, 1, A, trigger=Trigger.CI, force=False)
    newer = q.enqueue_review(REPO, 1, B, trigger=Trigger.CI, force=False)
    other_pr = q.enqueue_review(REPO, 2, A, trigger=Trigger.CI, force=False)
    assert (first.created, again.created, first.job_id == again.job_id) == (True, False, True)
    assert q.state_of(first.job_id) is JobState.SUPERSEDED
    assert q.state_of(newer.job_id) is JobState.QUEUED
    assert q.state_of(other_pr.job_id) is JobState.QUEUED  # other PRs are untouched


def test_queue_runs_at_most_one_review_per_pr_at_a_time(store: Store) -> None:
    q = SqliteJobQueue(store)
    q.enqueue_review(REPO, 1, A, trigger=Trigger.CI, force=False)
    running = q.claim([JobKind.REVIEW])
    assert running is not None
    q.enqueue_review(REPO, 1, B, trigger=Trigger.CI, force=False)  # newer head while running
    q.enqueue_review(REPO, 2, A, trigger=Trigger.CI, force=False)
    nxt = q.claim([JobKind.REVIEW])
    assert nxt is not None
    assert nxt.number == 2
    assert q.claim([JobKind.REVIEW]) is None
    assert q.state_of(running.id) is JobState.RUNNING  # a running job is never superseded here
    q.finish(running.id, JobState.DONE, result="posted", reason="ok")
    third = q.claim([JobKind.REVIEW])
    assert third is not None
    assert (third.number, third.head_sha) == (1, B)


def test_queue_coalesces_with_running_job_of_same_head(store: Store) -> None:
    q = SqliteJobQueue(store)
    first = q.enqueue_review(REPO, 1, A, trigger=Trigger.CI, force=False)
    q.claim([JobKind.REVIEW])
    again = q.enqueue_review(REPO, 1, A, trigger=Trigger.CI, force=False)
    assert (again.job_id, again.created) == (first.job_id, False)


def test_queue_chat_job_exists_once_per_comment_kind_and_id(store: Store) -> None:
    q = SqliteJobQueue(store)
    a = q.enqueue_chat(_chat(7))
    b = q.enqueue_chat(_chat(7))
    c = q.enqueue_chat(_chat(7, CommentKind.REVIEW))
    assert (a.created, b.created, c.created) == (True, False, True)
    assert a.job_id == b.job_id != c.job_id
    job = q.claim([JobKind.CHAT])
    assert job is not None
    assert job.chat_request().comment_id == 7


def test_queue_claims_only_the_kinds_asked_for(store: Store) -> None:
    q = SqliteJobQueue(store)
    q.enqueue_chat(_chat(1))
    assert q.claim([JobKind.REVIEW]) is None
    assert q.claim([JobKind.CHAT]) is not None


def test_queue_recover_requeues_with_attempts_left_and_fails_the_rest(store: Store) -> None:
    q = SqliteJobQueue(store, max_attempts=2)
    one = q.enqueue_review(REPO, 1, A, trigger=Trigger.CI, force=False).job_id
    two = q.enqueue_review(REPO, 2, A, trigger=Trigger.CI, force=False).job_id
    q.claim([JobKind.REVIEW])
    q.claim([JobKind.REVIEW])
    q.requeue([two], reason="shutdown")  # interrupted by us: attempt not spent
    q.claim([JobKind.REVIEW])
    with store.write() as conn:  # job one crashed twice already
        conn.execute("UPDATE jobs SET attempts = 2 WHERE id = ?", (one,))
    failed = q.recover()
    assert [j.id for j in failed] == [one]
    assert q.state_of(one) is JobState.FAILED
    assert q.state_of(two) is JobState.QUEUED
    assert [j.id for j in q.owed_statuses()] == [one]
    q.status_posted(one)
    assert q.owed_statuses() == []


def test_queue_finished_job_cannot_be_overwritten(store: Store) -> None:
    q = SqliteJobQueue(store)
    jid = q.enqueue_review(REPO, 1, A, trigger=Trigger.CI, force=False).job_id
    q.claim([JobKind.REVIEW])
    assert q.cancel(jid, reason="operator")
    assert not q.finish(jid, JobState.DONE, result="posted", reason="late")
    assert q.state_of(jid) is JobState.CANCELLED
    with pytest.raises(JobError):
        q.finish(jid, JobState.RUNNING, result="x", reason="x")


def test_queue_cancel_pr_cancels_only_queued_work(store: Store) -> None:
    q = SqliteJobQueue(store)
    q.enqueue_review(REPO, 1, A, trigger=Trigger.CI, force=False)
    q.enqueue_chat(_chat(3))
    q.enqueue_chat(_chat(4, number=2))
    assert q.cancel_pr(REPO, 1, reason="closed") == 2
    assert q.stats().total(JobState.QUEUED) == 1


def test_operator_retry_and_cancel_functions(store: Store) -> None:
    q = SqliteJobQueue(store)
    jid = q.enqueue_review(REPO, 1, A, trigger=Trigger.CI, force=False).job_id
    with pytest.raises(JobError):
        retry_job(store, jid)  # queued jobs are not retried
    assert cancel_job(store, jid).state is JobState.CANCELLED
    with pytest.raises(JobError):
        cancel_job(store, jid)
    assert retry_job(store, jid).state is JobState.QUEUED
    assert [j.id for j in list_jobs(store, states=[JobState.QUEUED])] == [jid]
    with pytest.raises(JobError):
        retry_job(store, 999)


class _Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def time(self) -> float:
        return self.now

    def monotonic(self) -> float:
        return self.now


def test_queue_prunes_only_old_finished_jobs_that_owe_no_status(store: Store) -> None:
    # Every accepted delivery leaves a row; without pruning the database grows for ever.
    clock = _Clock()
    queue = SqliteJobQueue(store, clock=clock)
    old = [queue.enqueue_chat(_chat(cid)).job_id for cid in range(1, 6)]
    for _ in old:
        job = queue.claim([JobKind.CHAT])
        assert job is not None
        queue.finish(job.id, JobState.DONE, result="done", reason="", status_owed=job.id == old[0])
    waiting = queue.enqueue_chat(_chat(10)).job_id  # queued long ago, never run
    clock.now += 31 * 86400
    recent = queue.enqueue_chat(_chat(11, number=2)).job_id  # another PR: may run alongside
    running = queue.claim([JobKind.CHAT])
    assert running is not None
    assert running.id == waiting
    finished_now = queue.claim([JobKind.CHAT])
    assert finished_now is not None
    assert finished_now.id == recent
    queue.finish(recent, JobState.DONE, result="done", reason="")

    assert queue.prune_finished(older_than_secs=30 * 86400, limit=3) == 3  # the batch limit
    assert queue.prune_finished(older_than_secs=30 * 86400, limit=3) == 1
    assert queue.prune_finished(older_than_secs=30 * 86400, limit=3) == 0
    left = {job.id for job in list_jobs(store, limit=100)}
    # Kept: the job that still owes its status, the running one, the one finished just now.
    assert left == {old[0], waiting, recent}


def test_queue_claims_jobs_queued_before_the_clock_went_backwards(store: Store) -> None:
    # REDTEAM F80: not_before is wall time; an NTP step back of an hour left every job queued
    # before it unclaimable for that hour, while new ones ran.
    clock = _Clock()
    queue = SqliteJobQueue(store, clock=clock)
    early = queue.enqueue_review(REPO, 1, A, trigger=Trigger.CI, force=False).job_id
    clock.now -= 3600.0
    # A coalesced forced request after the jump must not hide the jump either.
    queue.enqueue_review(REPO, 1, A, trigger=Trigger.REQUEST, force=True)
    job = queue.claim([JobKind.REVIEW])
    assert job is not None
    assert job.id == early


def test_queue_backoff_scheduled_after_the_clock_went_backwards_is_kept(store: Store) -> None:
    clock = _Clock()
    queue = SqliteJobQueue(store, clock=clock)
    jid = queue.enqueue_review(REPO, 1, A, trigger=Trigger.CI, force=False).job_id
    clock.now -= 3600.0
    assert queue.claim([JobKind.REVIEW]) is not None
    assert queue.retry_later(jid, delay_secs=60.0, reason="forge down")
    clock.now += 30.0
    assert queue.claim([JobKind.REVIEW]) is None  # the backoff still holds
    clock.now += 31.0
    job = queue.claim([JobKind.REVIEW])
    assert job is not None
    assert job.id == jid
