"""Review history: one row per finished review job (table ``review_outcomes``)."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

from auto_review.hosts import RepoRef
from auto_review.jobs._models import Clock, SystemClock
from auto_review.store import Store

__all__ = ["HistoryEntry", "ReviewHistory"]


@dataclass(frozen=True)
class HistoryEntry:
    """What happened to one head of one PR, and what it cost."""

    repo: RepoRef
    number: int
    head_sha: str
    trigger: str
    outcome: str  # posted | skipped | superseded | failed | timeout | cancelled
    reason: str
    job_id: int | None = None
    errors: int = 0
    warnings: int = 0
    notes: int = 0
    dropped: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
    duration_secs: float = 0.0
    finished_at: float = 0.0


class ReviewHistory:
    """Append-only record of review outcomes, with operator reset and purge."""

    def __init__(self, store: Store, *, clock: Clock | None = None) -> None:
        self._store = store
        self._clock = clock or SystemClock()

    def record(self, entry: HistoryEntry) -> None:
        with self._store.write() as conn:
            conn.execute(
                "INSERT INTO review_outcomes (job_id, owner, repo, number, head_sha, trigger,"
                " outcome, reason, errors, warnings, notes, dropped, prompt_tokens,"
                " completion_tokens, cost_usd, duration_secs, finished_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    entry.job_id,
                    entry.repo.owner,
                    entry.repo.name,
                    entry.number,
                    entry.head_sha,
                    entry.trigger,
                    entry.outcome,
                    entry.reason[:240],
                    entry.errors,
                    entry.warnings,
                    entry.notes,
                    entry.dropped,
                    entry.prompt_tokens,
                    entry.completion_tokens,
                    entry.cost_usd,
                    entry.duration_secs,
                    entry.finished_at or self._clock.time(),
                ),
            )

    def list(
        self, *, repo: RepoRef | None = None, number: int | None = None, limit: int = 50
    ) -> list[HistoryEntry]:
        where: list[str] = ["1 = 1"]
        args: list[object] = []
        if repo is not None:
            where.append("owner = ? AND repo = ?")
            args.extend((repo.owner, repo.name))
        if number is not None:
            where.append("number = ?")
            args.append(number)
        sql = (
            f"SELECT * FROM review_outcomes WHERE {' AND '.join(where)}"  # noqa: S608 - fixed fragments
            " ORDER BY id DESC LIMIT ?"
        )
        with self._store.read() as conn:
            rows = conn.execute(sql, (*args, max(1, limit))).fetchall()
        return [_entry(row) for row in rows]

    def reset_pr(self, repo: RepoRef, number: int) -> int:
        """Forget every outcome of one PR; returns how many rows went."""
        with self._store.write() as conn:
            cursor = conn.execute(
                "DELETE FROM review_outcomes WHERE owner = ? AND repo = ? AND number = ?",
                (repo.owner, repo.name, number),
            )
            return cursor.rowcount

    def purge(self, *, older_than_secs: float) -> int:
        """Delete outcomes older than the given age; returns how many rows went."""
        cutoff = self._clock.time() - older_than_secs
        with self._store.write() as conn:
            cursor = conn.execute("DELETE FROM review_outcomes WHERE finished_at < ?", (cutoff,))
            return cursor.rowcount


def _entry(row: sqlite3.Row) -> HistoryEntry:
    return HistoryEntry(
        repo=RepoRef(row["owner"], row["repo"]),
        number=int(row["number"]),
        head_sha=row["head_sha"],
        trigger=row["trigger"],
        outcome=row["outcome"],
        reason=row["reason"],
        job_id=row["job_id"],
        errors=row["errors"],
        warnings=row["warnings"],
        notes=row["notes"],
        dropped=row["dropped"],
        prompt_tokens=row["prompt_tokens"],
        completion_tokens=row["completion_tokens"],
        cost_usd=row["cost_usd"],
        duration_secs=row["duration_secs"],
        finished_at=row["finished_at"],
    )
