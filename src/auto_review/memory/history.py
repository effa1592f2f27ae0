"""Review history per PR: finished runs, the last reviewed head, and the findings posted.

Invariants: rows are addressed by ``owner/repo`` and PR number; ``last_reviewed_head`` only
counts runs that posted a review (a failed or superseded run leaves the previous head, so the
next run reviews everything since then); posted findings are kept per fingerprint (the newest
posting wins) so an incremental review can tell which earlier blocking findings are still open.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from auto_review.hosts import RepoRef
from auto_review.store import Store

__all__ = ["PostedFinding", "ReviewHistory", "ReviewRun"]

MAX_FINDINGS_PER_PR = 500


@dataclass(frozen=True)
class ReviewRun:
    repo: RepoRef
    number: int
    head_sha: str
    outcome: str
    event: str | None = None
    errors: int = 0
    warnings: int = 0
    notes: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
    finished_at: float = 0.0


@dataclass(frozen=True)
class PostedFinding:
    fingerprint: str
    path: str
    line: int
    severity: str
    message: str
    evidence: str  # untrusted: quoted code
    head_sha: str


class ReviewHistory:
    """History of reviews in the state database."""

    def __init__(self, store: Store, *, clock: Callable[[], float] = time.time) -> None:
        self._store = store
        self._clock = clock

    def record_run(self, run: ReviewRun) -> None:
        with self._store.write() as conn:
            conn.execute(
                "INSERT INTO review_runs (repo, number, head_sha, outcome, event, errors,"
                " warnings, notes, prompt_tokens, completion_tokens, cost_usd, finished_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    run.repo.full_name,
                    run.number,
                    run.head_sha,
                    run.outcome,
                    run.event,
                    run.errors,
                    run.warnings,
                    run.notes,
                    run.prompt_tokens,
                    run.completion_tokens,
                    run.cost_usd,
                    run.finished_at or self._clock(),
                ),
            )

    def last_reviewed_head(self, repo: RepoRef, number: int) -> str | None:
        """Head SHA of the newest run that posted a review, or None."""
        with self._store.read() as conn:
            row = conn.execute(
                "SELECT head_sha FROM review_runs WHERE repo = ? AND number = ?"
                " AND outcome = 'posted' ORDER BY id DESC LIMIT 1",
                (repo.full_name, number),
            ).fetchone()
        return None if row is None else str(row[0])

    def runs(self, repo: RepoRef, number: int, *, limit: int = 50) -> list[ReviewRun]:
        with self._store.read() as conn:
            rows = conn.execute(
                "SELECT head_sha, outcome, event, errors, warnings, notes, prompt_tokens,"
                " completion_tokens, cost_usd, finished_at FROM review_runs"
                " WHERE repo = ? AND number = ? ORDER BY id DESC LIMIT ?",
                (repo.full_name, number, limit),
            ).fetchall()
        return [
            ReviewRun(
                repo,
                number,
                str(r[0]),
                str(r[1]),
                r[2],
                r[3],
                r[4],
                r[5],
                r[6],
                r[7],
                float(r[8]),
                float(r[9]),
            )
            for r in rows
        ]

    def record_findings(
        self, repo: RepoRef, number: int, findings: Iterable[PostedFinding]
    ) -> None:
        now = self._clock()
        with self._store.write() as conn:
            for f in findings:
                conn.execute(
                    "INSERT INTO review_findings (repo, number, fingerprint, path, line, severity,"
                    " message, evidence, head_sha, posted_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
                    " ON CONFLICT (repo, number, fingerprint) DO UPDATE SET path = excluded.path,"
                    " line = excluded.line, severity = excluded.severity,"
                    " message = excluded.message, head_sha = excluded.head_sha,"
                    " posted_at = excluded.posted_at",
                    (
                        repo.full_name,
                        number,
                        f.fingerprint,
                        f.path,
                        f.line,
                        f.severity,
                        f.message,
                        f.evidence,
                        f.head_sha,
                        now,
                    ),
                )
            # Bound the table per PR: keep the newest postings.
            conn.execute(
                "DELETE FROM review_findings WHERE repo = ? AND number = ? AND fingerprint NOT IN"
                " (SELECT fingerprint FROM review_findings WHERE repo = ? AND number = ?"
                "  ORDER BY posted_at DESC LIMIT ?)",
                (repo.full_name, number, repo.full_name, number, MAX_FINDINGS_PER_PR),
            )

    def posted_findings(self, repo: RepoRef, number: int) -> list[PostedFinding]:
        with self._store.read() as conn:
            rows = conn.execute(
                "SELECT fingerprint, path, line, severity, message, evidence, head_sha"
                " FROM review_findings WHERE repo = ? AND number = ? ORDER BY posted_at, path",
                (repo.full_name, number),
            ).fetchall()
        return [
            PostedFinding(
                str(r[0]), str(r[1]), int(r[2]), str(r[3]), str(r[4]), str(r[5]), str(r[6])
            )
            for r in rows
        ]

    def forget_pr(self, repo: RepoRef, number: int) -> None:
        """Drop a PR's history (the next review is a full one)."""
        with self._store.write() as conn:
            conn.execute(
                "DELETE FROM review_runs WHERE repo = ? AND number = ?", (repo.full_name, number)
            )
            conn.execute(
                "DELETE FROM review_findings WHERE repo = ? AND number = ?",
                (repo.full_name, number),
            )
