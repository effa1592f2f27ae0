"""Chat's durable records: replies (idempotency), one-time notices, usage, approval overrides.

Invariants:
- a (repo, comment kind, comment id, command index) is answered once: ``claim`` inserts the row
  under its primary key, so a redelivered or re-polled comment finds it and stops;
- once ``done`` it is never answered again; a claim is released when handling failed before any
  reply was posted, so the queue's retry answers it;
- a ``started`` claim of another holder (a process killed mid-command) is retaken: the job queue
  runs at most one job per comment, so such a claim has no live owner. A kill between posting
  and ``finish`` can therefore repeat one reply; losing the answer would be worse;
- usage rows are what the hourly rate limits count, each under its tier (model-spending
  commands and the free ones have separate limits); they are pruned after a day.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from auto_review.hosts import CommentKind, RepoRef
from auto_review.store import Store

__all__ = ["ChatLedger", "OverrideRecord", "ReplyKey", "UsageTier"]

_HOUR = 3600.0
_USAGE_KEEP_SECS = 24 * _HOUR

# The limits a usage row counts against: "model" (spends model budget) or "free" (commands
# anyone may run, which spend none but make the bot post).
UsageTier = Literal["model", "free"]


@dataclass(frozen=True)
class ReplyKey:
    """Which command of which comment a reply answers."""

    repo: RepoRef
    comment_kind: CommentKind
    comment_id: int
    command_index: int


@dataclass(frozen=True)
class OverrideRecord:
    repo: RepoRef
    number: int
    head_sha: str
    login: str
    reason: str
    review_id: int  # the bot's review that requested changes
    created_at: float
    approval_id: int | None = None  # the approving review the override posted


class ChatLedger:
    """Reads and writes chat's tables in the state database."""

    def __init__(
        self,
        store: Store,
        *,
        clock: Callable[[], float] = time.time,
        holder: str | None = None,
    ) -> None:
        self._store = store
        self._clock = clock
        self._holder = holder or uuid.uuid4().hex

    # -- replies ---------------------------------------------------------------------------------

    def claim(self, key: ReplyKey, *, number: int, author: str, command: str) -> bool:
        """Take on a command; False when it was answered or is being answered here."""
        with self._store.write() as conn:
            cursor = conn.execute(
                "INSERT OR IGNORE INTO chat_replies (repo, comment_kind, comment_id,"
                " command_index, number, author, command, state, holder, created_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, 'started', ?, ?)",
                (
                    key.repo.full_name,
                    key.comment_kind.value,
                    key.comment_id,
                    key.command_index,
                    number,
                    author,
                    command,
                    self._holder,
                    self._clock(),
                ),
            )
            if cursor.rowcount == 1:
                return True
            retaken = conn.execute(
                "UPDATE chat_replies SET holder = ?, created_at = ? WHERE state = 'started'"
                " AND holder != ? AND repo = ? AND comment_kind = ? AND comment_id = ?"
                " AND command_index = ?",
                (self._holder, self._clock(), self._holder, *_key_values(key)),
            )
            return retaken.rowcount == 1

    def finish(self, key: ReplyKey, *, reply_ref: str) -> None:
        """Mark a command answered; ``reply_ref`` names the reply (e.g. ``comment:42``)."""
        with self._store.write() as conn:
            conn.execute(
                "UPDATE chat_replies SET state = 'done', reply_ref = ? WHERE repo = ?"
                " AND comment_kind = ? AND comment_id = ? AND command_index = ?",
                (reply_ref, *_key_values(key)),
            )

    def release(self, key: ReplyKey) -> None:
        """Forget an unanswered claim so a retry of the job can answer it."""
        with self._store.write() as conn:
            conn.execute(
                "DELETE FROM chat_replies WHERE state = 'started' AND repo = ?"
                " AND comment_kind = ? AND comment_id = ? AND command_index = ?",
                _key_values(key),
            )

    def settled(self, key: ReplyKey) -> bool:
        """Whether ``key`` needs no work: answered, or being answered by this holder."""
        with self._store.read() as conn:
            row = conn.execute(
                "SELECT state, holder FROM chat_replies WHERE repo = ? AND comment_kind = ?"
                " AND comment_id = ? AND command_index = ?",
                _key_values(key),
            ).fetchone()
        return row is not None and (row[0] == "done" or row[1] == self._holder)

    def reply_ref(self, key: ReplyKey) -> str | None:
        """The reply recorded for ``key``, if it was answered."""
        with self._store.read() as conn:
            row = conn.execute(
                "SELECT reply_ref FROM chat_replies WHERE repo = ? AND comment_kind = ?"
                " AND comment_id = ? AND command_index = ?",
                _key_values(key),
            ).fetchone()
        return None if row is None else row[0]

    # -- one-time notices -------------------------------------------------------------------------

    def notice_once(
        self, repo: RepoRef, number: int, login: str, notice: str, *, hourly: bool = False
    ) -> bool:
        """True the first time (per hour with ``hourly``) this notice goes to this user here."""
        bucket = int(self._clock() // _HOUR) if hourly else 0
        with self._store.write() as conn:
            cursor = conn.execute(
                "INSERT OR IGNORE INTO chat_notices (repo, number, login, notice, bucket,"
                " created_at) VALUES (?, ?, ?, ?, ?, ?)",
                (repo.full_name, number, login.lower(), notice, bucket, self._clock()),
            )
            return cursor.rowcount == 1

    # -- usage (rate limits) ----------------------------------------------------------------------

    def usage_last_hour(
        self, repo: RepoRef, number: int, login: str, *, tier: UsageTier = "model"
    ) -> tuple[int, int]:
        """(``tier`` commands by ``login`` anywhere, on this PR) in the last hour."""
        since = self._clock() - _HOUR
        with self._store.read() as conn:
            (by_user,) = conn.execute(
                "SELECT COUNT(*) FROM chat_usage WHERE login = ? AND at > ? AND tier = ?",
                (login.lower(), since, tier),
            ).fetchone()
            (on_pr,) = conn.execute(
                "SELECT COUNT(*) FROM chat_usage WHERE repo = ? AND number = ? AND at > ?"
                " AND tier = ?",
                (repo.full_name, number, since, tier),
            ).fetchone()
        return int(by_user), int(on_pr)

    def oldest_usage_age(
        self, repo: RepoRef, number: int, login: str, *, tier: UsageTier = "model"
    ) -> float:
        """Seconds since the oldest counted ``tier`` command of this user or PR in the hour."""
        now = self._clock()
        with self._store.read() as conn:
            (oldest,) = conn.execute(
                "SELECT MIN(at) FROM chat_usage WHERE at > ? AND tier = ? AND (login = ?"
                " OR (repo = ? AND number = ?))",
                (now - _HOUR, tier, login.lower(), repo.full_name, number),
            ).fetchone()
        return 0.0 if oldest is None else now - float(oldest)

    def record_usage(
        self, repo: RepoRef, number: int, login: str, command: str, *, tier: UsageTier = "model"
    ) -> None:
        now = self._clock()
        with self._store.write() as conn:
            conn.execute(
                "INSERT INTO chat_usage (repo, number, login, command, tier, at)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (repo.full_name, number, login.lower(), command, tier, now),
            )
            conn.execute("DELETE FROM chat_usage WHERE at < ?", (now - _USAGE_KEEP_SECS,))

    # -- approval overrides -----------------------------------------------------------------------

    def record_override(self, record: OverrideRecord) -> None:
        with self._store.write() as conn:
            conn.execute(
                "INSERT INTO chat_overrides (repo, number, head_sha, login, reason, review_id,"
                " approval_id, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    record.repo.full_name,
                    record.number,
                    record.head_sha,
                    record.login,
                    record.reason,
                    record.review_id,
                    record.approval_id,
                    record.created_at,
                ),
            )

    def overrides(self, repo: RepoRef, number: int) -> list[OverrideRecord]:
        with self._store.read() as conn:
            rows = conn.execute(
                "SELECT head_sha, login, reason, review_id, created_at, approval_id"
                " FROM chat_overrides"
                " WHERE repo = ? AND number = ? ORDER BY id",
                (repo.full_name, number),
            ).fetchall()
        return [
            OverrideRecord(
                repo, number, str(r[0]), str(r[1]), str(r[2]), int(r[3]), float(r[4]), r[5]
            )
            for r in rows
        ]

    def now(self) -> float:
        return self._clock()


def _key_values(key: ReplyKey) -> tuple[str, str, int, int]:
    return (key.repo.full_name, key.comment_kind.value, key.comment_id, key.command_index)
