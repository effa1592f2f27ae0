"""Pull requests the bot has seen, and the chat poller's per-PR comment cursors."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

from auto_review.hosts import CommentKind, RepoRef
from auto_review.jobs._models import Clock, SystemClock
from auto_review.store import Store

__all__ = ["PrTracker", "TrackedPr"]

_CURSOR_COLUMN = {CommentKind.ISSUE: "issue_cursor", CommentKind.REVIEW: "review_cursor"}


@dataclass(frozen=True)
class TrackedPr:
    repo: RepoRef
    number: int
    head_sha: str | None
    is_open: bool
    draft: bool
    issue_cursor: int | None  # None: never polled, the first poll only seeds it
    review_cursor: int | None
    refreshed_at: float

    def cursor(self, kind: CommentKind) -> int | None:
        return self.issue_cursor if kind is CommentKind.ISSUE else self.review_cursor


class PrTracker:
    """Records PR sightings (events, CI triggers, reviews) and persists poller cursors."""

    def __init__(self, store: Store, *, clock: Clock | None = None) -> None:
        self._store = store
        self._clock = clock or SystemClock()

    def observe(
        self,
        repo: RepoRef,
        number: int,
        *,
        head_sha: str | None,
        is_open: bool,
        draft: bool = False,
        new_cursor: int | None = None,
    ) -> None:
        """Insert or update what we know of a PR (cursors are kept). ``new_cursor`` seeds both
        cursors of a PR seen for the first time (0: every comment on it is new)."""
        now = self._clock.time()
        with self._store.write() as conn:
            conn.execute(
                "INSERT INTO tracked_prs (owner, repo, number, head_sha, is_open, draft,"
                " issue_cursor, review_cursor, refreshed_at, updated_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (owner, repo, number) DO UPDATE SET"
                " head_sha = COALESCE(excluded.head_sha, head_sha), is_open = excluded.is_open,"
                " draft = excluded.draft, refreshed_at = excluded.refreshed_at,"
                " updated_at = excluded.updated_at",
                (
                    repo.owner,
                    repo.name,
                    number,
                    head_sha,
                    int(is_open),
                    int(draft),
                    new_cursor,
                    new_cursor,
                    now,
                    now,
                ),
            )

    def get(self, repo: RepoRef, number: int) -> TrackedPr | None:
        with self._store.read() as conn:
            row = conn.execute(
                "SELECT * FROM tracked_prs WHERE owner = ? AND repo = ? AND number = ?",
                (repo.owner, repo.name, number),
            ).fetchone()
        return None if row is None else _tracked(row)

    def open_prs(self, *, limit: int = 1000) -> list[TrackedPr]:
        """Open PRs, least recently refreshed first."""
        with self._store.read() as conn:
            rows = conn.execute(
                "SELECT * FROM tracked_prs WHERE is_open = 1 ORDER BY refreshed_at LIMIT ?",
                (limit,),
            ).fetchall()
        return [_tracked(row) for row in rows]

    def count(self) -> dict[str, int]:
        with self._store.read() as conn:
            row = conn.execute(
                "SELECT COUNT(*) AS total, COALESCE(SUM(is_open), 0) AS open FROM tracked_prs"
            ).fetchone()
        return {"total": int(row["total"]), "open": int(row["open"])}

    def advance_cursor(self, repo: RepoRef, number: int, kind: CommentKind, value: int) -> None:
        """Raise a cursor to ``value``; a cursor never moves backwards."""
        column = _CURSOR_COLUMN[kind]
        with self._store.write() as conn:
            conn.execute(
                f"UPDATE tracked_prs SET {column} = MAX(COALESCE({column}, 0), ?)"  # noqa: S608 - column from a fixed map
                " WHERE owner = ? AND repo = ? AND number = ?",
                (value, repo.owner, repo.name, number),
            )


def _tracked(row: sqlite3.Row) -> TrackedPr:
    return TrackedPr(
        repo=RepoRef(row["owner"], row["repo"]),
        number=int(row["number"]),
        head_sha=row["head_sha"],
        is_open=bool(row["is_open"]),
        draft=bool(row["draft"]),
        issue_cursor=row["issue_cursor"],
        review_cursor=row["review_cursor"],
        refreshed_at=float(row["refreshed_at"]),
    )
