"""``SqliteJobQueue``: the ``JobQueue`` on the shared SQLite store (table ``jobs``).

Every state change runs in one ``Store.write()`` transaction (``BEGIN IMMEDIATE``), so a claim
and the per-PR "nothing else running" check cannot interleave with another writer.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Collection, Sequence

from auto_review.errors import JobError
from auto_review.hosts import CommentKind, HeadSha, RepoRef
from auto_review.jobs._models import (
    ChatRequest,
    Clock,
    EnqueueResult,
    Job,
    JobKind,
    JobState,
    QueueStats,
    SystemClock,
)
from auto_review.review import Trigger
from auto_review.store import Store

__all__ = ["DEFAULT_MAX_ATTEMPTS", "SqliteJobQueue"]

DEFAULT_MAX_ATTEMPTS = 3
_REASON_MAX = 240


class SqliteJobQueue:
    """The durable job queue of one gateway, stored in the state database."""

    def __init__(
        self,
        store: Store,
        *,
        clock: Clock | None = None,
        max_attempts: int = DEFAULT_MAX_ATTEMPTS,
    ) -> None:
        self._store = store
        self._clock = clock or SystemClock()
        self._max_attempts = max_attempts

    # -- intake -----------------------------------------------------------------------------

    def enqueue_review(
        self,
        repo: RepoRef,
        number: int,
        head_sha: HeadSha,
        *,
        trigger: Trigger,
        force: bool,
        full: bool = False,
    ) -> EnqueueResult:
        now = self._clock.time()
        with self._store.write() as conn:
            same = conn.execute(
                "SELECT id, state FROM jobs WHERE kind = 'review' AND owner = ? AND repo = ?"
                " AND number = ? AND head_sha = ? AND state IN ('queued', 'running')"
                " ORDER BY id LIMIT 1",
                (repo.owner, repo.name, number, head_sha),
            ).fetchone()
            _supersede(conn, repo, number, head_sha, now)
            if same is not None:
                if (force or full) and same["state"] == JobState.QUEUED:
                    # The coalesced job takes the strongest request: forced and/or full.
                    conn.execute(
                        "UPDATE jobs SET force = MAX(force, ?), full = MAX(full, ?),"
                        " updated_at = MAX(updated_at, ?) WHERE id = ?",
                        (int(force), int(full), now, same["id"]),
                    )
                return EnqueueResult(job_id=int(same["id"]), created=False)
            cursor = conn.execute(
                "INSERT INTO jobs (kind, state, owner, repo, number, head_sha, trigger, force,"
                " full, max_attempts, not_before, created_at, updated_at)"
                " VALUES ('review', 'queued', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    repo.owner,
                    repo.name,
                    number,
                    head_sha,
                    trigger.value,
                    int(force),
                    int(full),
                    self._max_attempts,
                    now,
                    now,
                    now,
                ),
            )
            return EnqueueResult(job_id=_rowid(cursor), created=True)

    def enqueue_chat(self, request: ChatRequest) -> EnqueueResult:
        return self.enqueue_chats([request])[0]

    def enqueue_chats(self, requests: Sequence[ChatRequest]) -> list[EnqueueResult]:
        now = self._clock.time()
        results = []
        with self._store.write() as conn:
            for request in requests:
                cursor = conn.execute(
                    "INSERT INTO jobs (kind, state, owner, repo, number, trigger, comment_id,"
                    " comment_kind, author, body, max_attempts, not_before, created_at,"
                    " updated_at) VALUES ('chat', 'queued', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
                    " ON CONFLICT DO NOTHING",
                    (
                        request.repo.owner,
                        request.repo.name,
                        request.number,
                        Trigger.CHAT.value,
                        request.comment_id,
                        request.kind.value,
                        request.author,
                        request.body,
                        self._max_attempts,
                        now,
                        now,
                        now,
                    ),
                )
                if cursor.rowcount == 1:
                    results.append(EnqueueResult(job_id=_rowid(cursor), created=True))
                    continue
                row = conn.execute(
                    "SELECT id FROM jobs WHERE kind = 'chat' AND comment_kind = ?"
                    " AND comment_id = ?",
                    (request.kind.value, request.comment_id),
                ).fetchone()
                results.append(EnqueueResult(job_id=int(row["id"]), created=False))
        return results

    # -- workers ----------------------------------------------------------------------------

    def claim(self, kinds: Collection[JobKind]) -> Job | None:
        if not kinds:
            return None
        now = self._clock.time()
        marks = ",".join("?" for _ in kinds)
        with self._store.write() as conn:
            # A row written after ``now`` means the wall clock went back: its ``not_before``
            # would hold the job for as long as the step (an hour's NTP step, an hour's stall),
            # so it runs now, at worst one backoff early (closes: REDTEAM F80).
            row = conn.execute(
                "SELECT * FROM jobs AS j WHERE j.state = 'queued'"  # noqa: S608 - placeholders only
                f" AND (j.not_before <= ? OR j.updated_at > ?) AND j.kind IN ({marks})"
                " AND NOT EXISTS (SELECT 1 FROM jobs AS r"
                " WHERE r.state = 'running' AND r.kind = j.kind AND r.owner = j.owner"
                " AND r.repo = j.repo AND r.number = j.number) ORDER BY j.id LIMIT 1",
                (now, now, *(k.value for k in kinds)),
            ).fetchone()
            if row is None:
                return None
            conn.execute(
                "UPDATE jobs SET state = 'running', attempts = attempts + 1, started_at = ?,"
                " updated_at = ? WHERE id = ?",
                (now, now, row["id"]),
            )
            claimed = conn.execute("SELECT * FROM jobs WHERE id = ?", (row["id"],)).fetchone()
            return _job(claimed)

    def finish(
        self, job_id: int, state: JobState, *, result: str, reason: str, status_owed: bool = False
    ) -> bool:
        if state in (JobState.QUEUED, JobState.RUNNING):
            raise JobError(f"finish() needs a terminal state, not {state.value}")
        now = self._clock.time()
        with self._store.write() as conn:
            cursor = conn.execute(
                "UPDATE jobs SET state = ?, result = ?, reason = ?, finished_at = ?,"
                " updated_at = ?, status_owed = ? WHERE id = ? AND state = 'running'",
                (state.value, result, reason[:_REASON_MAX], now, now, int(status_owed), job_id),
            )
            return cursor.rowcount == 1

    def retry_later(self, job_id: int, *, delay_secs: float, reason: str) -> bool:
        now = self._clock.time()
        with self._store.write() as conn:
            cursor = conn.execute(
                "UPDATE jobs SET state = 'queued', not_before = ?, reason = ?, updated_at = ?"
                " WHERE id = ? AND state = 'running'",
                (now + max(0.0, delay_secs), reason[:_REASON_MAX], now, job_id),
            )
            return cursor.rowcount == 1

    def requeue(self, job_ids: Collection[int], *, reason: str) -> int:
        now = self._clock.time()
        count = 0
        with self._store.write() as conn:
            for job_id in job_ids:
                cursor = conn.execute(
                    "UPDATE jobs SET state = 'queued', attempts = MAX(attempts - 1, 0),"
                    " not_before = ?, reason = ?, updated_at = ?"
                    " WHERE id = ? AND state = 'running'",
                    (now, reason[:_REASON_MAX], now, job_id),
                )
                count += cursor.rowcount
        return count

    def recover(self) -> list[Job]:
        now = self._clock.time()
        with self._store.write() as conn:
            rows = conn.execute("SELECT * FROM jobs WHERE state = 'running'").fetchall()
            failed: list[Job] = []
            for row in rows:
                if row["attempts"] < row["max_attempts"]:
                    conn.execute(
                        "UPDATE jobs SET state = 'queued', not_before = ?, updated_at = ?,"
                        " reason = 'interrupted by a restart; retrying' WHERE id = ?",
                        (now, now, row["id"]),
                    )
                    continue
                conn.execute(
                    "UPDATE jobs SET state = 'failed', result = 'interrupted', finished_at = ?,"
                    " updated_at = ?, status_owed = ?, reason = ? WHERE id = ?",
                    (
                        now,
                        now,
                        int(row["kind"] == JobKind.REVIEW),
                        "interrupted by restarts too often; giving up",
                        row["id"],
                    ),
                )
                failed.append(
                    _job(conn.execute("SELECT * FROM jobs WHERE id = ?", (row["id"],)).fetchone())
                )
            return failed

    def supersede_older(self, repo: RepoRef, number: int, head_sha: HeadSha) -> int:
        with self._store.write() as conn:
            return _supersede(conn, repo, number, head_sha, self._clock.time())

    def cancel_pr(self, repo: RepoRef, number: int, *, reason: str) -> int:
        now = self._clock.time()
        with self._store.write() as conn:
            cursor = conn.execute(
                "UPDATE jobs SET state = 'cancelled', result = 'cancelled', reason = ?,"
                " finished_at = ?, updated_at = ? WHERE owner = ? AND repo = ? AND number = ?"
                " AND state = 'queued'",
                (reason[:_REASON_MAX], now, now, repo.owner, repo.name, number),
            )
            return cursor.rowcount

    # -- reads and operator actions ----------------------------------------------------------

    def state_of(self, job_id: int) -> JobState | None:
        with self._store.read() as conn:
            row = conn.execute("SELECT state FROM jobs WHERE id = ?", (job_id,)).fetchone()
        return None if row is None else JobState(row["state"])

    def get(self, job_id: int) -> Job | None:
        with self._store.read() as conn:
            row = conn.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
        return None if row is None else _job(row)

    def list_jobs(
        self, *, states: Sequence[JobState] = (), repo: RepoRef | None = None, limit: int = 50
    ) -> list[Job]:
        where: list[str] = ["1 = 1"]
        args: list[object] = []
        if states:
            where.append(f"state IN ({','.join('?' for _ in states)})")
            args.extend(s.value for s in states)
        if repo is not None:
            where.append("owner = ? AND repo = ?")
            args.extend((repo.owner, repo.name))
        sql = f"SELECT * FROM jobs WHERE {' AND '.join(where)} ORDER BY id DESC LIMIT ?"  # noqa: S608 - fixed fragments
        with self._store.read() as conn:
            rows = conn.execute(sql, (*args, max(1, limit))).fetchall()
        return [_job(row) for row in rows]

    def retry(self, job_id: int) -> bool:
        now = self._clock.time()
        with self._store.write() as conn:
            cursor = conn.execute(
                "UPDATE jobs SET state = 'queued', attempts = 0, not_before = ?, updated_at = ?,"
                " finished_at = NULL, result = NULL, reason = 'retried by an operator',"
                " status_owed = 0 WHERE id = ? AND state IN ('failed', 'cancelled')",
                (now, now, job_id),
            )
            return cursor.rowcount == 1

    def cancel(self, job_id: int, *, reason: str) -> bool:
        now = self._clock.time()
        with self._store.write() as conn:
            cursor = conn.execute(
                "UPDATE jobs SET state = 'cancelled', result = 'cancelled', reason = ?,"
                " finished_at = ?, updated_at = ? WHERE id = ? AND state IN ('queued', 'running')",
                (reason[:_REASON_MAX], now, now, job_id),
            )
            return cursor.rowcount == 1

    def stats(self) -> QueueStats:
        with self._store.read() as conn:
            rows = conn.execute(
                "SELECT state, kind, COUNT(*) AS n FROM jobs GROUP BY state, kind"
            ).fetchall()
        counts: dict[str, dict[str, int]] = {s.value: {} for s in JobState}
        for row in rows:
            counts[row["state"]][row["kind"]] = int(row["n"])
        return QueueStats(counts=counts)

    def prune_finished(self, *, older_than_secs: float, limit: int) -> int:
        # Finished rows are kept for the operator (``jobs list``, ``jobs retry``) and would
        # otherwise grow the database with every delivery for ever. ``limit`` keeps each
        # write transaction short, so intake and claims are not held up by a large backlog.
        cutoff = self._clock.time() - older_than_secs
        with self._store.write() as conn:
            cursor = conn.execute(
                "DELETE FROM jobs WHERE id IN (SELECT id FROM jobs WHERE state NOT IN"
                " ('queued', 'running') AND status_owed = 0 AND finished_at < ? LIMIT ?)",
                (cutoff, limit),
            )
            return cursor.rowcount

    def owed_statuses(self, *, after_id: int = 0, limit: int = 100) -> list[Job]:
        with self._store.read() as conn:
            rows = conn.execute(
                "SELECT * FROM jobs WHERE status_owed = 1 AND id > ? ORDER BY id LIMIT ?",
                (after_id, max(1, limit)),
            ).fetchall()
        return [_job(row) for row in rows]

    def status_posted(self, job_id: int) -> None:
        with self._store.write() as conn:
            conn.execute("UPDATE jobs SET status_owed = 0 WHERE id = ?", (job_id,))


def _supersede(
    conn: sqlite3.Connection, repo: RepoRef, number: int, head_sha: HeadSha, now: float
) -> int:
    cursor = conn.execute(
        "UPDATE jobs SET state = 'superseded', result = 'superseded', finished_at = ?,"
        " updated_at = ?, reason = 'a newer head was pushed' WHERE kind = 'review'"
        " AND owner = ? AND repo = ? AND number = ? AND state = 'queued' AND head_sha != ?",
        (now, now, repo.owner, repo.name, number, head_sha),
    )
    return cursor.rowcount


def _rowid(cursor: sqlite3.Cursor) -> int:
    if cursor.lastrowid is None:
        raise JobError("the database did not return the new job's id")
    return int(cursor.lastrowid)


def _job(row: sqlite3.Row) -> Job:
    return Job(
        id=int(row["id"]),
        kind=JobKind(row["kind"]),
        state=JobState(row["state"]),
        repo=RepoRef(row["owner"], row["repo"]),
        number=int(row["number"]),
        head_sha=None if row["head_sha"] is None else HeadSha(row["head_sha"]),
        trigger=Trigger(row["trigger"]),
        force=bool(row["force"]),
        full=bool(row["full"]),
        comment_id=row["comment_id"],
        comment_kind=None if row["comment_kind"] is None else CommentKind(row["comment_kind"]),
        author=row["author"],
        body=row["body"],
        attempts=int(row["attempts"]),
        max_attempts=int(row["max_attempts"]),
        not_before=float(row["not_before"]),
        created_at=float(row["created_at"]),
        updated_at=float(row["updated_at"]),
        started_at=row["started_at"],
        finished_at=row["finished_at"],
        result=row["result"],
        reason=row["reason"],
    )
