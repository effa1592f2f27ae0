"""Repository-scoped learnings: short notes maintainers ask the bot to keep in mind.

Invariants: every row belongs to one ``owner/repo``; listing and forgetting never cross
repositories (``forget`` with another repository's id finds nothing); a learning is at most
``MAX_LEARNING_BYTES`` of UTF-8 and a repository holds at most ``MAX_LEARNINGS_PER_REPO``.
The text is untrusted data written by a forge user: prompts must frame it as data, never as an
instruction (see ``Learning.text``), and it can never change settings or verdict rules.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from auto_review.errors import LearningRejected
from auto_review.hosts import RepoRef
from auto_review.store import Store

__all__ = [
    "MAX_LEARNINGS_PER_REPO",
    "MAX_LEARNING_BYTES",
    "Learning",
    "LearningsStore",
    "clean_learning_text",
]

MAX_LEARNING_BYTES = 2000
MAX_LEARNINGS_PER_REPO = 100


@dataclass(frozen=True)
class Learning:
    id: int
    repo: RepoRef
    text: str  # untrusted: frame as data in prompts
    author: str
    source: str  # "chat", "cli"
    number: int | None  # the PR it was added on, if any
    created_at: float


def clean_learning_text(text: str) -> str:
    """``text`` with control characters (except newlines and tabs) removed and ends stripped."""
    return "".join(ch for ch in text if ch in "\n\t" or ch.isprintable()).strip()


class LearningsStore:
    """Learnings in the state database, always addressed by repository."""

    def __init__(
        self,
        store: Store,
        *,
        max_bytes: int = MAX_LEARNING_BYTES,
        max_per_repo: int = MAX_LEARNINGS_PER_REPO,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self._max_bytes = max_bytes
        self._max_per_repo = max_per_repo
        self._clock = clock

    def add(
        self, repo: RepoRef, text: str, *, author: str, source: str, number: int | None = None
    ) -> Learning:
        """Store a learning; ``LearningRejected`` when empty, too large or the repo is full."""
        cleaned = clean_learning_text(text)
        size = len(cleaned.encode("utf-8"))
        if not cleaned:
            raise LearningRejected("a learning needs some text")
        if size > self._max_bytes:
            raise LearningRejected(
                f"a learning is at most {self._max_bytes} bytes; this one has {size}"
            )
        now = self._clock()
        with self._store.write() as conn:
            (count,) = conn.execute(
                "SELECT COUNT(*) FROM learnings WHERE repo = ?", (repo.full_name,)
            ).fetchone()
            if count >= self._max_per_repo:
                raise LearningRejected(
                    f"this repository already has {count} learnings (the limit); forget some first"
                )
            cursor = conn.execute(
                "INSERT INTO learnings (repo, text, author, source, number, created_at)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (repo.full_name, cleaned, author, source, number, now),
            )
            learning_id = int(cursor.lastrowid or 0)
        return Learning(learning_id, repo, cleaned, author, source, number, now)

    def list(self, repo: RepoRef, *, limit: int = MAX_LEARNINGS_PER_REPO) -> list[Learning]:
        """This repository's learnings, oldest first."""
        with self._store.read() as conn:
            rows = conn.execute(
                "SELECT id, text, author, source, number, created_at FROM learnings"
                " WHERE repo = ? ORDER BY id LIMIT ?",
                (repo.full_name, limit),
            ).fetchall()
        return [
            Learning(int(r[0]), repo, str(r[1]), str(r[2]), str(r[3]), r[4], float(r[5]))
            for r in rows
        ]

    def repositories(self) -> tuple[RepoRef, ...]:
        """Repositories that have learnings, by name (for operator listings)."""
        with self._store.read() as conn:
            rows = conn.execute("SELECT DISTINCT repo FROM learnings ORDER BY repo").fetchall()
        return tuple(RepoRef.parse(str(r[0])) for r in rows)

    def forget(self, repo: RepoRef, learning_id: int) -> bool:
        """Delete ``learning_id`` if it belongs to ``repo``; False when it does not exist there."""
        with self._store.write() as conn:
            cursor = conn.execute(
                "DELETE FROM learnings WHERE repo = ? AND id = ?", (repo.full_name, learning_id)
            )
            return cursor.rowcount > 0
